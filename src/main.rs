//! The `meridian` command: parses the command line, sets up logging, loads the config and hands
//! over to the library. Errors are printed as `error: …` with their cause chain (exit 1).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use meridian::health::probe::NetProbe;
use meridian::health::prober::HealthControl;
use meridian::{Listeners, Model, SharedState};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Authoritative DNS global server load balancer.
#[derive(Debug, Parser)]
#[command(name = "meridian", version, about)]
struct Cli {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve DNS until SIGINT or SIGTERM.
    Serve {
        /// Path to meridian.toml.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate the config and every zone file, then exit (0 when valid).
    Check {
        /// Path to meridian.toml.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Change a running Meridian's overrides through its HTTP admin API.
    Admin {
        /// Path to meridian.toml (for `[http] listen` and `admin_token_file`).
        #[arg(short, long)]
        config: PathBuf,
        /// drain, undrain, force-down, force-up or clear.
        action: String,
        /// The pool.
        pool: String,
        /// One member's address (`192.0.2.10`, or `192.0.2.10:8080`); all members when absent.
        member: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Check { config } => check(config),
        Command::Serve { config } => serve(config),
        Command::Admin {
            config,
            action,
            pool,
            member,
        } => admin(config, &action, &pool, member.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                msg.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn check(config: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&config)?;
    println!("{}: ok: {}", config.display(), model.summary());
    Ok(())
}

fn serve(config: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        info!("loaded {}: {}", config.display(), model.summary());
        let listeners = Listeners::bind(&model.dns.listen, model.http.as_ref().map(|h| h.listen))?
            .with_directors(&model.director_listen())?;
        if let (Some(addr), Some(name)) = (listeners.udp_addrs().first(), example_name(&model)) {
            info!("try: dig @{} -p {} {name} A", addr.ip(), addr.port());
        }
        let state = Arc::new(SharedState::restore(model)?);
        let shutdown = CancellationToken::new();
        // Handlers are installed before anything is served, so an early signal is not lost
        // (or, for SIGHUP, fatal).
        #[cfg(unix)]
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        #[cfg(unix)]
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(stop_on_signal(
            shutdown.clone(),
            #[cfg(unix)]
            term,
        ));
        let (control, commands) = HealthControl::new();
        #[cfg(unix)]
        tokio::spawn(reload_on_sighup(
            hup,
            config.clone(),
            state.clone(),
            control.clone(),
        ));
        let probe = Arc::new(NetProbe::new()?);
        meridian::run(state, listeners, probe, (control, commands), shutdown).await?;
        Ok(())
    })
}

fn admin(
    config: PathBuf,
    action: &str,
    pool: &str,
    member: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&config)?;
    let http = model.http.as_ref().ok_or_else(|| {
        format!(
            "{}: no [http] section, so there is no admin API to call",
            config.display()
        )
    })?;
    let token = http.admin_token.as_ref().ok_or_else(|| {
        format!(
            "{}: [http] has no admin_token_file, so admin calls are disabled",
            config.display()
        )
    })?;
    let seg = |s: &str| s.replace('%', "%25").replace('/', "%2F");
    let url = match member {
        Some(m) => format!(
            "http://{}/api/v1/pools/{}/members/{}/{}",
            http.listen,
            seg(pool),
            seg(m),
            seg(action)
        ),
        None => format!(
            "http://{}/api/v1/pools/{}/{}",
            http.listen,
            seg(pool),
            seg(action)
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body): (u16, serde_json::Value) = runtime.block_on(async {
        let client = meridian::health::probe::plain_http_client()?;
        let resp = client
            .post(&url)
            .bearer_auth(&token.0)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok::<_, Box<dyn std::error::Error>>((status, body))
    })?;
    if status != 200 {
        let msg = body["error"].as_str().unwrap_or("no details");
        return Err(format!("{action} failed (HTTP {status}): {msg}").into());
    }
    for c in body["changed"].as_array().into_iter().flatten() {
        println!(
            "member {} of pool {}: {} -> {}",
            c["member"].as_str().unwrap_or("?"),
            c["pool"].as_str().unwrap_or("?"),
            c["from"].as_str().unwrap_or("?"),
            c["to"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

/// A name worth querying: the first service, else the first zone's apex.
fn example_name(model: &Model) -> Option<String> {
    model
        .services
        .first()
        .map(|s| s.name.to_string())
        .or_else(|| model.zones.iter().next().map(|z| z.origin.to_string()))
}

/// Reloads config and zones on SIGHUP: everything is parsed and validated first; a bad config
/// is logged with its file and line and the running one stays in service.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    config: PathBuf,
    state: Arc<SharedState>,
    control: HealthControl,
) {
    while hup.recv().await.is_some() {
        info!("SIGHUP received, reloading {}", config.display());
        let path = config.clone();
        let loaded = tokio::task::spawn_blocking(move || Model::load(&path)).await;
        match loaded {
            Ok(Ok(model)) => {
                let running = state.load();
                if model.dns.listen != running.model.dns.listen
                    || model.http.as_ref().map(|h| h.listen)
                        != running.model.http.as_ref().map(|h| h.listen)
                {
                    tracing::warn!(
                        "listen addresses changed: they take effect at the next restart"
                    );
                }
                let running_directors = running.model.director_listen();
                let added: Vec<String> = model
                    .director_listen()
                    .iter()
                    .filter(|a| !running_directors.contains(a))
                    .map(|a| a.to_string())
                    .collect();
                if !added.is_empty() {
                    tracing::warn!(
                        "new director listen addresses {} are bound at the next restart",
                        added.join(", ")
                    );
                }
                drop(running);
                let summary = model.summary();
                match control.reload(model).await {
                    Ok(generation) => info!(generation, "reloaded: {summary}"),
                    Err(e) => tracing::error!("reload failed: {e}"),
                }
            }
            Ok(Err(e)) => tracing::error!("reload failed, keeping the running config: {e}"),
            Err(e) => tracing::error!("reload failed: {e}"),
        }
    }
}

async fn stop_on_signal(
    shutdown: CancellationToken,
    #[cfg(unix)] mut term: tokio::signal::unix::Signal,
) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        tokio::select! {
            _ = ctrl_c => info!("SIGINT received, shutting down"),
            _ = term.recv() => info!("SIGTERM received, shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        info!("interrupt received, shutting down");
    }
    shutdown.cancel();
}
