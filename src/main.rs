//! The `meridian` command: parses the command line, sets up logging, loads the config and hands
//! over to the library. Errors are printed as `error: …` with their cause chain (exit 1).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Check { config } => check(config),
        Command::Serve { config } => serve(config),
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
        let listeners = Listeners::bind(&model.dns.listen)?;
        if let (Some(addr), Some(name)) = (listeners.udp_addrs().first(), example_name(&model)) {
            info!("try: dig @{} -p {} {name} A", addr.ip(), addr.port());
        }
        let state = Arc::new(SharedState::new(model));
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        meridian::run(state, listeners, shutdown).await?;
        Ok(())
    })
}

/// A name worth querying: the first service, else the first zone's apex.
fn example_name(model: &Model) -> Option<String> {
    model
        .services
        .first()
        .map(|s| s.name.to_string())
        .or_else(|| model.zones.iter().next().map(|z| z.origin.to_string()))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
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
