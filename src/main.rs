//! The `meridian` command: parses the command line, sets up logging, loads the config and hands
//! over to the library. Errors are printed as `error: …` with their cause chain (exit 1).

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use meridian::prober::HealthControl;
use meridian::prober::probe::NetProbe;
use meridian::{Listeners, Model, SharedState, Telemetry};
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
    /// Show the answer a client would get for a service name, and why.
    Explain {
        /// Path to meridian.toml.
        #[arg(short, long)]
        config: PathBuf,
        /// The service name (`www.example.test.`).
        name: String,
        /// A or AAAA.
        qtype: String,
        /// The resolver's (or connecting client's) address.
        #[arg(long)]
        client: IpAddr,
        /// An EDNS Client Subnet the resolver sends (`192.0.2.0/24`); decisions use it.
        #[arg(long)]
        ecs: Option<ipnet::IpNet>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a running Meridian's overrides, or reload its config, through its HTTP admin API.
    Admin {
        /// Path to meridian.toml (for `[http] listen` and `admin_token_file`).
        #[arg(short, long)]
        config: PathBuf,
        /// drain, undrain, force-down, force-up, clear (for a pool or member), or reload.
        action: String,
        /// The pool (not for reload).
        pool: Option<String>,
        /// One member's address (`192.0.2.10`, or `192.0.2.10:8080`); all members when absent.
        member: Option<String>,
    },
    /// DNSSEC keys: make one, or print the DS a parent zone needs.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DnssecCommand {
    /// Write a new signing key (PKCS#8 PEM, mode 0600) and print its DNSKEY and DS records.
    Keygen {
        /// The zone the key signs (`gslb.example.`).
        #[arg(long)]
        zone: String,
        /// The algorithm.
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Ecdsap256sha256)]
        algorithm: KeyAlgorithm,
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the DNSKEY and DS records of a signed zone of the config.
    Ds {
        /// Path to meridian.toml.
        #[arg(short, long)]
        config: PathBuf,
        /// The signed zone (`gslb.example.`).
        #[arg(long)]
        zone: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (algorithm 13).
    Ecdsap256sha256,
    /// Ed25519 (algorithm 15).
    Ed25519,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Check { config } => check(config),
        Command::Serve { config } => serve(config),
        Command::Explain {
            config,
            name,
            qtype,
            client,
            ecs,
            json,
        } => explain(config, &name, &qtype, client, ecs, json),
        Command::Admin {
            config,
            action,
            pool,
            member,
        } => admin(config, &action, pool.as_deref(), member.as_deref()),
        Command::Dnssec {
            command:
                DnssecCommand::Keygen {
                    zone,
                    algorithm,
                    out,
                },
        } => keygen(&zone, algorithm, &out),
        Command::Dnssec {
            command: DnssecCommand::Ds { config, zone },
        } => print_ds(config, &zone),
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
    for w in model.http.iter().flat_map(|h| h.warnings()) {
        println!("{}: warning: {w}", config.display());
    }
    Ok(())
}

fn zone_name(zone: &str) -> Result<hickory_proto::rr::Name, Box<dyn std::error::Error>> {
    let name = hickory_proto::rr::Name::from_ascii(zone)?.to_lowercase();
    if !name.is_fqdn() {
        return Err(format!("zone {zone:?} must be fully qualified (end with a dot)").into());
    }
    Ok(name)
}

fn keygen(
    zone: &str,
    algorithm: KeyAlgorithm,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let origin = zone_name(zone)?;
    let algorithm = match algorithm {
        KeyAlgorithm::Ecdsap256sha256 => hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
        KeyAlgorithm::Ed25519 => hickory_proto::dnssec::Algorithm::ED25519,
    };
    let der = meridian::dnssec::generate(algorithm)?;
    let signer = meridian::dnssec::Signer::new(
        origin,
        meridian::dnssec::load_key(&der)?,
        meridian::model::DEFAULT_SIGNATURE_LIFETIME.as_secs() as u32,
    )?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.write_all(meridian::dnssec::pem_encode(&der).as_bytes())?;
    file.sync_all()?;
    eprintln!("wrote {}", out.display());
    print!("{}", signer.presentation());
    Ok(())
}

fn print_ds(config: PathBuf, zone: &str) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&config)?;
    let origin = zone_name(zone)?;
    let signer = model
        .zones
        .signer_of(&origin)
        .ok_or_else(|| format!("{origin} is not a signed zone of {}", config.display()))?;
    print!("{}", signer.presentation());
    Ok(())
}

fn serve(config: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(&config)?;
    // DNS over UDP runs on its own worker threads; DNS over TCP, the directors and the API share
    // this runtime, with as many threads as there are DNS workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(model.dns.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        info!("loaded {}: {}", config.display(), model.summary());
        let http = model.http.as_ref().map(|h| h.listen);
        let listeners = Listeners::bind(&model.dns.listen, model.dns.workers, http)?
            .with_directors(&model.director_listen())?;
        if let (Some(addr), Some(name)) = (listeners.udp_addrs().first(), example_name(&model)) {
            info!("try: dig @{} -p {} {name} A", addr.ip(), addr.port());
        }
        let table = meridian::health::overrides::restored(&model)?;
        let state = Arc::new(SharedState::with_health(model, Arc::new(table)));
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
        let (control, inbox) = HealthControl::new();
        let telemetry = Telemetry::new(&state, meridian::director::stats::DirectorStats::new());
        #[cfg(unix)]
        tokio::spawn(reload_on_sighup(
            hup,
            state.clone(),
            control.clone(),
            telemetry.clone(),
        ));
        let probe = Arc::new(NetProbe::new()?);
        meridian::run(
            state,
            listeners,
            probe,
            (control, inbox),
            telemetry,
            shutdown,
        )
        .await?;
        Ok(())
    })
}

fn explain(
    config: PathBuf,
    name: &str,
    qtype: &str,
    client: IpAddr,
    ecs: Option<ipnet::IpNet>,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = hickory_proto::rr::Name::from_ascii(name)
        .map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
    let qtype: hickory_proto::rr::RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{qtype:?} is not a record type"))?;
    let model = Model::load(&config)?;
    let explained = match live_explain(&model, &name, qtype, client, ecs) {
        Some(explained) => explained?,
        None => {
            let who = match ecs {
                Some(net) if net.prefix_len() > 0 => {
                    meridian::select::Client::from_subnet(net.trunc().addr(), net.prefix_len())
                }
                _ => meridian::select::Client::from_addr(&model, client),
            };
            let snap = meridian::explain::offline_snapshot(model)?;
            meridian::explain::explain(
                &snap,
                &name,
                qtype,
                &who,
                meridian::explain::OFFLINE_HEALTH,
                &mut rand::rng(),
            )?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&explained)?);
    } else {
        println!("{explained}");
    }
    Ok(())
}

/// Asks the running server (`[http] listen`) for the explanation, so it reflects live health.
/// `None` when no server answers there (then `explain` works offline).
fn live_explain(
    model: &Model,
    name: &hickory_proto::rr::Name,
    qtype: hickory_proto::rr::RecordType,
    client: IpAddr,
    ecs: Option<ipnet::IpNet>,
) -> Option<Result<meridian::explain::Explanation, Box<dyn std::error::Error>>> {
    let http = model.http.as_ref()?;
    let (api, base) = match meridian::api::client(http) {
        Ok(c) => c,
        Err(e) => return Some(Err(e.into())),
    };
    let mut url = format!(
        "{base}/api/v1/explain?name={}&type={qtype}&client={client}",
        name.to_ascii()
    );
    if let Some(net) = ecs {
        url.push_str(&format!("&ecs={}", net.to_string().replace('/', "%2F")));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let resp = api
            .get(&url)
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = resp.status();
        let body: serde_json::Value = match resp.json().await {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("{url}: {e}").into())),
        };
        if !status.is_success() {
            let msg = body["error"].as_str().unwrap_or("no details").to_string();
            return Some(Err(msg.into()));
        }
        Some(serde_json::from_value(body).map_err(|e| format!("{url}: {e}").into()))
    })
}

fn admin(
    config: PathBuf,
    action: &str,
    pool: Option<&str>,
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
    let (client, base) = meridian::api::client(http)?;
    let url = match (action, pool, member) {
        ("reload", None, None) => format!("{base}/api/v1/reload"),
        ("reload", _, _) => return Err("reload takes no pool or member".into()),
        (_, None, _) => {
            return Err(format!("{action} needs a pool (and optionally a member)").into());
        }
        (_, Some(pool), Some(m)) => format!(
            "{base}/api/v1/pools/{}/members/{}/{}",
            seg(pool),
            seg(m),
            seg(action)
        ),
        (_, Some(pool), None) => format!("{base}/api/v1/pools/{}/{}", seg(pool), seg(action)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body): (u16, serde_json::Value) = runtime.block_on(async {
        let resp = client
            .post(&url)
            .bearer_auth(&token.0)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", causes(&e)))?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok::<_, Box<dyn std::error::Error>>((status, body))
    })?;
    if status != 200 {
        let msg = body["error"].as_str().unwrap_or("no details");
        return Err(format!("{action} failed (HTTP {status}): {msg}").into());
    }
    if action == "reload" {
        println!(
            "reloaded (generation {}): {}",
            body["generation"],
            body["summary"].as_str().unwrap_or("?")
        );
        for w in body["warnings"].as_array().into_iter().flatten() {
            println!("warning: {}", w.as_str().unwrap_or("?"));
        }
        return Ok(());
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

/// An error and its sources, so a TLS failure says why (`error sending request: … : invalid
/// peer certificate: …`).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A name worth querying: the first service, else the first zone's apex.
fn example_name(model: &Model) -> Option<String> {
    model
        .services
        .first()
        .map(|s| s.name.to_string())
        .or_else(|| model.zones.iter().next().map(|z| z.origin.to_string()))
}

/// Reloads config and zones on SIGHUP, as `POST /api/v1/reload` does ([`meridian::reload`]):
/// a bad config is logged with its file and line and the running one stays in service.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    state: Arc<SharedState>,
    control: HealthControl,
    telemetry: Telemetry,
) {
    while hup.recv().await.is_some() {
        info!("SIGHUP received");
        // The outcome is logged and counted by `reload` itself.
        let _ = meridian::reload::reload(&state, &control, &telemetry).await;
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
