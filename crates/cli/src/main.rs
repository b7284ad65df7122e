//! `egov`: the simulator's command line.
#![forbid(unsafe_code)]

mod audit;
mod commands;
mod config;
mod domain;
mod fixtures;
mod incidents;
mod monitor;
mod print;
mod replay;
mod sla;

use std::path::PathBuf;

/// With `--features alloc-counting`, every allocation is counted, for the bench's allocation figures.
#[cfg(feature = "alloc-counting")]
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

#[cfg(feature = "alloc-counting")]
fn allocated() -> (u64, u64) {
    let stats = ALLOCATOR.stats();
    (stats.bytes_allocated as u64, stats.allocations as u64)
}

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "egov",
    version,
    about = "A simulator of the exchange between Kazakhstan's State Corporation and a regional e-government gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    addresses: Addresses,
    #[command(flatten)]
    tls: Tls,
    /// How log lines on stderr are written: `text` for people, `json` (one object a line) for machines.
    #[arg(long, global = true, env = "EGOV_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// A config file for what the flags set (docs/configuration.md); a flag or
    /// its EGOV_* environment variable overrides it.
    #[arg(long, global = true, env = "EGOV_CONFIG")]
    config: Option<PathBuf>,
    /// How long a client sends a call again, the same signed message each time, while
    /// the participant is unreachable or restarting (0: once); then it names the step not done.
    #[arg(long, global = true, env = "EGOV_RETRY_SECONDS", default_value_t = 30)]
    retry_seconds: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// Where the running participants listen (defaults: 127.0.0.1:50051 to 50055).
#[derive(clap::Args, Clone, Debug)]
pub struct Addresses {
    /// A TOML file with the five addresses (workstation, gateway, individuals, notary, regional).
    #[arg(long, global = true, env = "EGOV_TOPOLOGY")]
    pub topology: Option<PathBuf>,
    #[arg(long, global = true, env = "EGOV_WORKSTATION")]
    pub workstation: Option<String>,
    #[arg(long, global = true, env = "EGOV_GATEWAY")]
    pub gateway: Option<String>,
    #[arg(long, global = true, env = "EGOV_INDIVIDUALS")]
    pub individuals: Option<String>,
    #[arg(long, global = true, env = "EGOV_NOTARY")]
    pub notary: Option<String>,
    #[arg(long, global = true, env = "EGOV_REGIONAL")]
    pub regional: Option<String>,
}

/// mTLS on every connection the command serves or makes (docs/tls.md).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Tls {
    /// TLS with client certificates: `egov serve` serves it, the clients call with it,
    /// `egov keys init` also makes the certificates.
    #[arg(long, global = true, env = "EGOV_TLS")]
    pub tls: bool,
    /// Where the certificates are (default: the key directory's `tls`, e.g. `keys/tls`).
    #[arg(long, global = true, env = "EGOV_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// The member whose certificate the calls that carry no envelope present
    /// (status, staff queue, incidents); default: the participant's called.
    #[arg(long, global = true, env = "EGOV_TLS_AS")]
    pub tls_as: Option<String>,
}

impl Tls {
    /// The certificates, when TLS is on: `--tls-dir`, else `keys/tls`.
    pub fn dir(&self, keys: &std::path::Path) -> Option<egov_runtime::tls::TlsDir> {
        self.tls.then(|| egov_runtime::tls::TlsDir::new(self.tls_dir.clone().unwrap_or_else(|| keys.join("tls"))))
    }

    /// Who presents a certificate on a call that carries no envelope to `participant` (a member id).
    pub fn reader<'a>(&'a self, participant: &'a str) -> &'a str {
        self.tls_as.as_deref().unwrap_or(participant)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the participants (all five by default), each on its own port.
    Serve(Box<commands::ServeArgs>),
    /// Replay fixture scenarios, each on its own simulated clock, and check every outcome, notice and deadline.
    Replay(replay::ReplayArgs),
    /// Drive one application through the whole route on a fresh in-process stack and print its path.
    Demo(replay::DemoArgs),
    /// Key directory: `egov keys init` creates a key for every member.
    #[command(subcommand)]
    Keys(commands::KeysCommand),
    /// The State Corporation operator's client.
    #[command(subcommand)]
    Operator(commands::OperatorCommand),
    /// The provider staff's client at the regional gateway ARM.
    #[command(subcommand)]
    Staff(commands::StaffCommand),
    /// An application's state and path, as the State Corporation workstation sees it.
    Status(commands::StatusArgs),
    /// Deliveries that failed every attempt (`--all`: every pending one); `retry ID` retries one.
    Incidents(incidents::IncidentsArgs),
    /// The participants' operational monitoring records: every message each received or sent, with its four timestamps.
    Monitor(monitor::MonitorArgs),
    /// Service-level reports: the applications with missed or at-risk deadlines.
    #[command(subcommand)]
    Sla(sla::SlaCommand),
    /// Offline checks of the participants' message logs and signatures.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// A participant's store, offline: check all of it, or rebuild sled's index from the log.
    #[command(subcommand)]
    Store(audit::StoreCommand),
    /// The working-day calendar of Kazakhstan: working days, days off, counting.
    #[command(subcommand)]
    Calendar(domain::CalendarCommand),
    /// The individual identification number: check one.
    #[command(subcommand)]
    Iin(domain::IinCommand),
    /// The process definition: draw it, or check a definition file.
    #[command(subcommand)]
    Regulation(domain::RegulationCommand),
    /// Generated fixtures: a valid, varied population of records and scenarios for load and soak runs.
    #[command(subcommand)]
    Fixtures(fixtures::FixturesCommand),
    /// Throughput, latency, memory and start-up figures, each with a baseline measured in the same run.
    Bench(egov_bench::BenchArgs),
    /// The gateway's SHEP face: its senders, and posting a SOAP file to it (docs/shep.md).
    #[command(subcommand)]
    Shep(commands::ShepCommand),
}

fn main() -> std::process::ExitCode {
    #[cfg(feature = "alloc-counting")]
    egov_bench::allocations::count_with(allocated);
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let config = match cli.config.as_deref().map(config::Config::load).transpose() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(config) = &config {
        config.log_format(&matches, &mut cli.log_format);
        config.addresses(&matches, &mut cli.addresses);
        config.tls(&matches, &mut cli.tls);
        config.retry_seconds(&matches, &mut cli.retry_seconds);
        if let Command::Keys(commands::KeysCommand::Init { valid_from, .. }) = &mut cli.command {
            config.keys_valid_from(&matches, valid_from);
        }
        if let Command::Serve(args) = &mut cli.command
            && let Some(serve) = matches.subcommand_matches("serve")
        {
            args.configure(serve, config.serve());
            args.configure_shep(serve, config.shep());
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let otlp = match &cli.command {
        Command::Serve(args) => args.otlp(),
        _ => None,
    };
    // The exporter's client runs on the runtime.
    let exporter =
        match otlp.map(|endpoint| runtime.block_on(async { egov_runtime::trace::Exporter::start(endpoint, "egov") })) {
            None => None,
            Some(Ok(exporter)) => Some(exporter),
            Some(Err(error)) => {
                eprintln!("error: {error:#}");
                return std::process::ExitCode::FAILURE;
            }
        };
    init_logs(cli.log_format, exporter.as_ref());
    let tls = cli.tls.tls;
    let persistence = egov_client::Persistence::within(std::time::Duration::from_secs(cli.retry_seconds));
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve(*args, &cli.addresses, &cli.tls).await,
            Command::Replay(args) => replay::replay(args, &cli.addresses, &cli.tls, persistence).await,
            Command::Demo(args) => replay::demo(args, &cli.addresses, &cli.tls).await,
            Command::Keys(command) => commands::keys(command, &cli.tls),
            Command::Shep(command) => commands::shep(command).await,
            Command::Operator(command) => commands::operator(command, &cli.addresses, &cli.tls, persistence).await,
            Command::Staff(command) => commands::staff(command, &cli.addresses, &cli.tls, persistence).await,
            Command::Status(args) => commands::status(args, &cli.addresses, &cli.tls, persistence).await,
            Command::Audit(command) => audit::audit(command),
            Command::Store(command) => audit::store(command),
            Command::Sla(command) => sla::sla(command),
            Command::Incidents(args) => incidents::incidents(args, &cli.addresses, &cli.tls).await,
            Command::Monitor(args) => monitor::monitor(args, &cli.addresses, &cli.tls).await,
            Command::Calendar(command) => domain::calendar(command),
            Command::Iin(command) => domain::iin(command),
            Command::Regulation(command) => domain::regulation(command),
            Command::Fixtures(command) => fixtures::fixtures(command),
            Command::Bench(args) => egov_bench::bench(args).await,
        }
    });
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            let text = format!("{error:#}");
            eprintln!("error: {text}");
            if let Some(hint) = egov_runtime::tls::hint(&text, tls) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log lines on stderr (`RUST_LOG`, `warn` by default), and, with an exporter,
/// every span at level info and above as an OpenTelemetry span, whatever `RUST_LOG` says.
fn init_logs(format: LogFormat, exporter: Option<&egov_runtime::trace::Exporter>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
    };
    let spans = exporter.map(|exporter| exporter.layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    tracing_subscriber::registry().with(logs).with(spans).init();
}
