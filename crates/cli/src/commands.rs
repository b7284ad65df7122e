//! The subcommands.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use egov_client::{
    ApplicationPlan, Decision, DocumentPlan, OperatorClient, Persistence, RealTime, RepresentativePlan, RouteError,
    StaffClient,
};
use egov_envelope::Signer;
use egov_regulation::{Definition, StepKind};
use egov_runtime::{Clock, KeyDir, SystemClock, Topology, ids};

use crate::Addresses;
use egov_cli::stack::{Role, Stack, StackConfig};

pub fn topology(addresses: &Addresses) -> anyhow::Result<Topology> {
    let mut topology = match &addresses.topology {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Topology::default(),
    };
    for (value, slot) in [
        (&addresses.workstation, &mut topology.workstation),
        (&addresses.gateway, &mut topology.gateway),
        (&addresses.individuals, &mut topology.individuals),
        (&addresses.notary, &mut topology.notary),
        (&addresses.regional, &mut topology.regional),
    ] {
        if let Some(value) = value {
            value.clone_into(slot);
        }
    }
    Ok(topology)
}

pub fn definition(path: Option<&PathBuf>) -> anyhow::Result<Arc<Definition>> {
    match path {
        None => Ok(Arc::new(Definition::default_definition().clone())),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Arc::new(Definition::from_toml(&text).with_context(|| format!("in {}", path.display()))?))
        }
    }
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Each participant keeps its sled store in DATA/ROLE.
    #[arg(long, env = "EGOV_DATA", default_value = "data")]
    data: PathBuf,
    /// Keep the state in this PostgreSQL database instead (`postgres://user@host:port/db`),
    /// each participant in the schema of its role, shared with its replicas (docs/scale-out.md).
    #[arg(long, env = "EGOV_STORE")]
    store: Option<String>,
    /// On PostgreSQL: the connections (each with a thread) each participant keeps.
    #[arg(long, env = "EGOV_STORE_POOL", default_value_t = egov_store::PostgresSettings::DEFAULT_POOL)]
    store_pool: usize,
    /// On PostgreSQL: how long a replica's claim on an outbox item holds before another replica may take it.
    #[arg(long, env = "EGOV_STORE_LEASE_SECONDS", default_value_t = 30)]
    store_lease_seconds: u64,
    /// On PostgreSQL: `statement_timeout` of every connection, in milliseconds (0: none).
    #[arg(long, env = "EGOV_STORE_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    store_statement_timeout_ms: u64,
    /// On PostgreSQL: `lock_timeout` of every connection, in milliseconds (0: none).
    #[arg(long, env = "EGOV_STORE_LOCK_TIMEOUT_MS", default_value_t = 10_000)]
    store_lock_timeout_ms: u64,
    /// On PostgreSQL: who this replica is in its claims on outbox items, the same across its
    /// restarts and unlike any other replica running (default: HOST/ADDRESS, the host's name
    /// and the address each participant listens on).
    #[arg(long, env = "EGOV_REPLICA_ID")]
    replica_id: Option<String>,
    /// The key directory (`egov keys init` makes one).
    #[arg(long, env = "EGOV_KEYS", default_value = "keys")]
    keys: PathBuf,
    /// Where individuals.json, powers_of_attorney.json and operators.json are.
    #[arg(long, env = "EGOV_FIXTURES", default_value = "fixtures")]
    fixtures: PathBuf,
    /// The participants to run here, comma-separated: individuals, notary, gateway, regional, workstation.
    #[arg(
        long,
        env = "EGOV_ROLES",
        value_delimiter = ',',
        default_value = "individuals,notary,gateway,regional,workstation"
    )]
    roles: Vec<String>,
    /// Let the system choose free ports for the participants run here.
    #[arg(long, env = "EGOV_ANY_PORT")]
    any_port: bool,
    /// The process definition to run instead of the embedded one.
    #[arg(long, env = "EGOV_REGULATION")]
    regulation: Option<PathBuf>,
    /// The largest envelope body accepted, checked before anything is decoded.
    #[arg(long, env = "EGOV_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    max_body_bytes: usize,
    /// How far a message time may be from the receiver's clock, in milliseconds.
    #[arg(long, env = "EGOV_FRESHNESS_WINDOW_MS", default_value_t = 5 * 60 * 1000)]
    freshness_window_ms: i64,
    /// Run on simulated time: every event happens at the message time of the envelope
    /// that causes it, so a replay can set the clock (turns the freshness check off).
    #[arg(long, env = "EGOV_SIMULATED_TIME")]
    simulated_time: bool,
    /// Inject faults into what a participant receives, e.g.
    /// `individuals:unavailable=0.2,latency=20ms`, `regional:down=1s+3s`, `notary:timeout=0.05` (repeat).
    #[arg(long = "fault", value_parser = Role::parse_fault)]
    faults: Vec<(Role, egov_runtime::fault::Faults)>,
    /// Seeds the fault injection.
    #[arg(long, env = "EGOV_FAULT_SEED", default_value_t = 1)]
    fault_seed: u64,
    /// Before serving, check every store whole: every frame's CRC, the Merkle tree,
    /// every signature and the index against the log (`egov store check`; the
    /// default start check reads the newest 1,000 entries: docs/storage.md).
    #[arg(long, env = "EGOV_VERIFY_ALL")]
    verify_all: bool,
    /// Each participant's integrator signs a checkpoint of its log's Merkle tree after this
    /// many entries since the last one (docs/storage.md).
    #[arg(long, env = "EGOV_CHECKPOINT_ENTRIES", default_value_t = 1000)]
    checkpoint_entries: u64,
    /// ... or this many milliseconds after the last one, when entries came since (0: only
    /// at a graceful stop).
    #[arg(long, env = "EGOV_CHECKPOINT_MS", default_value_t = 1000)]
    checkpoint_ms: u64,
    /// sled's page cache per store, in MiB (the index's; what the log's segments
    /// hold lately is in the kernel's page cache, not the process's memory).
    #[arg(long, env = "EGOV_CACHE_MIB", default_value_t = 8)]
    cache_mib: u64,
    /// On SIGTERM or Ctrl-C: how long the participants may take to answer the
    /// calls in flight (they stop accepting new ones at once) before those are cut.
    #[arg(long, env = "EGOV_DRAIN_SECONDS", default_value_t = 10)]
    drain_seconds: u64,
    /// Serve Prometheus metrics of the participants run here on http://ADDR/metrics.
    #[arg(long, env = "EGOV_METRICS")]
    metrics: Option<String>,
    /// Serve the web console on http://ADDR/ (`off`: no console). Default: on at
    /// 127.0.0.1:50080 when all five participants run here (a free port with
    /// --any-port), off otherwise (docs/console.md).
    #[arg(long, env = "EGOV_CONSOLE")]
    console: Option<String>,
    /// Export OpenTelemetry traces over OTLP/gRPC to ENDPOINT (`http://host:4317`):
    /// each call a participant serves or delivers is a span, one trace per application.
    #[arg(long, env = "EGOV_OTLP")]
    otlp: Option<String>,
    /// Operational monitoring: the records each participant keeps, the oldest
    /// dropped first (0: monitoring off; `egov monitor` reads them).
    #[arg(long, env = "EGOV_MONITOR_KEEP", default_value_t = 10_000)]
    monitor_keep: usize,
    /// Monitoring records older than this many seconds are dropped.
    #[arg(long, env = "EGOV_MONITOR_KEEP_SECONDS", default_value_t = 24 * 3600)]
    monitor_keep_seconds: u64,
    /// Append every monitoring record to FILE as a JSON line.
    #[arg(long, env = "EGOV_MONITOR_EXPORT")]
    monitor_export: Option<PathBuf>,
    /// Serve the gateway's SHEP face (SOAP: /bip-sync-wss-gost/, /bip-async/) on
    /// http://ADDR/ (`off`: none). Default: on at 127.0.0.1:50056 when all five
    /// participants run here (a free port with --any-port), off otherwise (docs/shep.md).
    #[arg(long, env = "EGOV_SHEP")]
    shep: Option<String>,
    /// Where the SHEP edge's gRPC inbox (for the roles served by external systems)
    /// and admin service listen. Default: 127.0.0.1:50057 (a free port with --any-port).
    #[arg(long, env = "EGOV_SHEP_GRPC")]
    shep_grpc: Option<String>,
    /// The SHEP serviceIds and the services they map onto, instead of the embedded table.
    #[arg(long, env = "EGOV_SHEP_SERVICES")]
    shep_services: Option<PathBuf>,
    /// Refuse a sync SendMessage without a wsse:Security header (`shep.unsigned`).
    #[arg(long, env = "EGOV_SHEP_REQUIRE_SIGNED_SYNC")]
    shep_require_signed_sync: bool,
    /// A role served by an external SHEP system instead of a participant here:
    /// `workstation=poll` (it fetches with getMessages) or `regional=push:http://HOST:PORT/PATH`
    /// (the edge calls its sendMessage); repeat for both.
    #[arg(long = "external", value_parser = egov_shep::edge::parse_external)]
    external: Vec<(String, egov_shep::External)>,
}

impl ServeArgs {
    /// Where traces are exported, if anywhere (`--otlp`).
    pub fn otlp(&self) -> Option<&str> {
        self.otlp.as_deref()
    }

    /// Takes from the config file's `[serve]` what the command line and the
    /// environment do not set (`matches`: the `serve` subcommand's).
    pub fn configure(&mut self, matches: &clap::ArgMatches, file: &crate::config::ServeSection) {
        use crate::config::set;
        set(matches, "data", &mut self.data, &file.data);
        if file.store.is_some() {
            set(matches, "store", &mut self.store, &Some(file.store.clone()));
        }
        set(matches, "store_pool", &mut self.store_pool, &file.store_pool);
        set(matches, "store_lease_seconds", &mut self.store_lease_seconds, &file.store_lease_seconds);
        set(
            matches,
            "store_statement_timeout_ms",
            &mut self.store_statement_timeout_ms,
            &file.store_statement_timeout_ms,
        );
        set(matches, "store_lock_timeout_ms", &mut self.store_lock_timeout_ms, &file.store_lock_timeout_ms);
        if file.replica_id.is_some() {
            set(matches, "replica_id", &mut self.replica_id, &Some(file.replica_id.clone()));
        }
        set(matches, "keys", &mut self.keys, &file.keys);
        set(matches, "fixtures", &mut self.fixtures, &file.fixtures);
        set(matches, "roles", &mut self.roles, &file.roles.as_ref().map(|roles| roles.get_ref().clone()));
        set(matches, "any_port", &mut self.any_port, &file.any_port);
        if file.regulation.is_some() {
            set(matches, "regulation", &mut self.regulation, &Some(file.regulation.clone()));
        }
        set(matches, "max_body_bytes", &mut self.max_body_bytes, &file.max_body_bytes);
        set(matches, "freshness_window_ms", &mut self.freshness_window_ms, &file.freshness_window_ms);
        set(matches, "simulated_time", &mut self.simulated_time, &file.simulated_time);
        // Checked when the file was loaded.
        let faults = file.faults.as_ref().map(|faults| {
            faults.get_ref().iter().filter_map(|fault| Role::parse_fault(fault).ok()).collect::<Vec<_>>()
        });
        set(matches, "faults", &mut self.faults, &faults);
        set(matches, "fault_seed", &mut self.fault_seed, &file.fault_seed);
        set(matches, "cache_mib", &mut self.cache_mib, &file.cache_mib);
        set(matches, "verify_all", &mut self.verify_all, &file.verify_all);
        set(matches, "checkpoint_entries", &mut self.checkpoint_entries, &file.checkpoint_entries);
        set(matches, "checkpoint_ms", &mut self.checkpoint_ms, &file.checkpoint_ms);
        set(matches, "drain_seconds", &mut self.drain_seconds, &file.drain_seconds);
        if file.metrics.is_some() {
            set(matches, "metrics", &mut self.metrics, &Some(file.metrics.clone()));
        }
        if file.console.is_some() {
            set(matches, "console", &mut self.console, &Some(file.console.clone()));
        }
        if file.otlp.is_some() {
            set(matches, "otlp", &mut self.otlp, &Some(file.otlp.clone()));
        }
        set(matches, "monitor_keep", &mut self.monitor_keep, &file.monitor_keep);
        set(matches, "monitor_keep_seconds", &mut self.monitor_keep_seconds, &file.monitor_keep_seconds);
        if file.monitor_export.is_some() {
            set(matches, "monitor_export", &mut self.monitor_export, &Some(file.monitor_export.clone()));
        }
    }

    /// Takes from the config file's `[shep]` what the command line and the environment do not set.
    pub fn configure_shep(&mut self, matches: &clap::ArgMatches, file: &crate::config::ShepSection) {
        use crate::config::set;
        if file.address.is_some() {
            set(matches, "shep", &mut self.shep, &Some(file.address.clone()));
        }
        if file.grpc_address.is_some() {
            set(matches, "shep_grpc", &mut self.shep_grpc, &Some(file.grpc_address.clone()));
        }
        if file.services.is_some() {
            set(matches, "shep_services", &mut self.shep_services, &Some(file.services.clone()));
        }
        set(matches, "shep_require_signed_sync", &mut self.shep_require_signed_sync, &file.require_signed_sync);
        // Checked when the file was loaded.
        let external = file.external.as_ref().map(|external| {
            external
                .iter()
                .filter_map(|(role, how)| egov_shep::edge::parse_external(&format!("{role}={}", how.get_ref())).ok())
                .collect::<Vec<_>>()
        });
        set(matches, "external", &mut self.external, &external);
    }
}

/// Where the console listens by default: beside the participants' 50051..50055.
const DEFAULT_CONSOLE: &str = "127.0.0.1:50080";

/// Where the SHEP edge's gRPC inbox listens by default.
const DEFAULT_SHEP_GRPC: &str = "127.0.0.1:50057";

pub async fn serve(args: ServeArgs, addresses: &Addresses, tls: &crate::Tls) -> anyhow::Result<ExitCode> {
    let keys = KeyDir::new(&args.keys);
    if !keys.exists() {
        bail!(
            "no key directory at {}: create one with `egov keys init --dir {}`",
            args.keys.display(),
            args.keys.display()
        );
    }
    let mut roles = BTreeSet::new();
    for name in &args.roles {
        roles.insert(Role::parse(name.trim()).with_context(|| {
            format!("unknown role {name:?}: use individuals, notary, gateway, regional, workstation")
        })?);
    }
    let mut config = StackConfig::local(args.data.clone(), keys, args.fixtures.clone());
    config.tls = tls.dir(&args.keys);
    if let Some(url) = &args.store {
        egov_stack::check_store_url(url)?;
    }
    config.database = args.store.clone();
    if args.store_pool == 0 {
        bail!("--store-pool must be at least 1");
    }
    config.postgres = egov_store::PostgresSettings {
        pool: args.store_pool,
        lease: std::time::Duration::from_secs(args.store_lease_seconds.max(1)),
        statement_timeout: std::time::Duration::from_millis(args.store_statement_timeout_ms),
        lock_timeout: std::time::Duration::from_millis(args.store_lock_timeout_ms),
        replica: args.replica_id.clone(),
        migrate: true,
    };
    config.definition = definition(args.regulation.as_ref())?;
    config.simulated_time = args.simulated_time;
    config.faults = args.faults.into_iter().collect();
    config.fault_seed = args.fault_seed;
    config.cache_bytes = args.cache_mib << 20;
    config.verify_all = args.verify_all;
    config.checkpoints =
        egov_stack::CheckpointSettings { every_entries: args.checkpoint_entries.max(1), every_ms: args.checkpoint_ms };
    config.monitor = egov_runtime::monitor::MonitorConfig {
        keep: args.monitor_keep,
        keep_for: std::time::Duration::from_secs(args.monitor_keep_seconds),
        export: args.monitor_export.clone(),
    };
    config.checks = egov_envelope::Checks {
        max_body_bytes: args.max_body_bytes,
        freshness_window_ms: Some(args.freshness_window_ms),
    };
    config.topology = topology(addresses)?;
    if args.any_port {
        let mut topology = config.topology.clone();
        for slot in [
            &mut topology.workstation,
            &mut topology.gateway,
            &mut topology.individuals,
            &mut topology.notary,
            &mut topology.regional,
        ] {
            let host = slot.rsplit_once(':').map_or("127.0.0.1", |(host, _)| host).to_owned();
            *slot = format!("{host}:0");
        }
        for role in Role::ALL.into_iter().filter(|role| !roles.contains(role)) {
            // Roles run elsewhere keep their configured address.
            let configured = role_address(&config.topology, role).to_owned();
            set_role_address(&mut topology, role, configured);
        }
        config.topology = topology;
    }
    config.roles = roles;
    let metrics = match &args.metrics {
        None => None,
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("the metrics cannot listen on {address}"))?;
            let metrics = Arc::new(egov_runtime::metrics::Metrics::new());
            config.metrics = Some(Arc::clone(&metrics));
            Some((listener, metrics))
        }
    };
    // The console, on by default for the all-in-one stack; bound before the
    // participants start, so an address in use stops the start.
    let console_address = match args.console.as_deref().map(str::trim) {
        Some("off") => None,
        Some(address) => Some(address.to_owned()),
        None if config.roles.len() == Role::ALL.len() => {
            Some(if args.any_port { "127.0.0.1:0" } else { DEFAULT_CONSOLE }.to_owned())
        }
        None => None,
    };
    let console = match &console_address {
        None => None,
        Some(address) => Some(tokio::net::TcpListener::bind(address).await.with_context(|| {
            format!("the console cannot listen on {address} (--console ADDR to choose another, --console off for none)")
        })?),
    };
    // The SHEP face, on by default for the all-in-one stack.
    let shep_address = match args.shep.as_deref().map(str::trim) {
        Some("off") => None,
        Some(address) => Some(address.to_owned()),
        None if config.roles.len() == Role::ALL.len() => {
            Some(if args.any_port { "127.0.0.1:0" } else { egov_shep::edge::DEFAULT_ADDRESS }.to_owned())
        }
        None => None,
    };
    if let Some(address) = shep_address {
        let grpc_address = args
            .shep_grpc
            .clone()
            .unwrap_or_else(|| if args.any_port { "127.0.0.1:0" } else { DEFAULT_SHEP_GRPC }.to_owned());
        config.shep = Some(egov_shep::EdgeSettings {
            address,
            grpc_address,
            services_file: args.shep_services.clone(),
            require_signed_sync: args.shep_require_signed_sync,
            external: args.external.iter().cloned().collect(),
            ..egov_shep::EdgeSettings::default()
        });
    } else if !args.external.is_empty() {
        bail!("--external needs the SHEP face (--shep ADDR)");
    }
    let definition = Arc::clone(&config.definition);
    let stack = Stack::start(config).await?;
    let scheme = if tls.tls { " (mTLS)" } else { "" };
    for role in stack.roles() {
        println!("listening {} {}{scheme}", role.name(), role_address(stack.topology(), *role));
    }
    if let (Some(http), Some(grpc)) = (stack.shep_address(), stack.shep_grpc_address()) {
        println!("listening shep http://{http}/");
        println!("listening shep-inbox {grpc}{scheme}");
    }
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some((listener, metrics)) = metrics {
        println!("listening metrics http://{}/metrics", listener.local_addr()?);
        tokio::spawn(async move {
            let stopped = async move {
                let _ = metrics_stopped.await;
            };
            if let Err(error) = metrics.serve(listener, stopped).await {
                tracing::error!(%error, "the metrics endpoint stopped");
            }
        });
    }
    let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = console {
        println!("listening console http://{}/", listener.local_addr()?);
        let console = egov_console::ConsoleConfig {
            topology: stack.topology().clone(),
            keys: KeyDir::new(&args.keys),
            tls: tls.dir(&args.keys),
            definition,
            shep: stack.shep_grpc_address().map(str::to_owned),
        };
        tokio::spawn(async move {
            let stopped = async move {
                let _ = console_stopped.await;
            };
            if let Err(error) = egov_console::serve(listener, console, stopped).await {
                tracing::error!(%error, "the console stopped");
            }
        });
    }
    let signals = signals();
    println!("ready");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    serve_until_stopped(&stack, signals).await;
    println!("stopping: answering the calls in flight (at most {} s)", args.drain_seconds);
    std::io::stdout().flush()?;
    let drained = stack.drain(std::time::Duration::from_secs(args.drain_seconds)).await;
    let _ = stop_metrics.send(());
    let _ = stop_console.send(());
    for role in &drained.cut {
        println!("cut: the {}'s calls in flight after {} s", role.name(), args.drain_seconds);
    }
    for (role, error) in &drained.unsettled {
        println!("not made durable: the {}'s store: {error}", role.name());
    }
    if !drained.unsettled.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn role_address(topology: &Topology, role: Role) -> &str {
    match role {
        Role::Individuals => &topology.individuals,
        Role::Notary => &topology.notary,
        Role::Gateway => &topology.gateway,
        Role::Regional => &topology.regional,
        Role::Workstation => &topology.workstation,
        Role::Shep => "",
    }
}

fn set_role_address(topology: &mut Topology, role: Role, address: String) {
    match role {
        Role::Individuals => topology.individuals = address,
        Role::Notary => topology.notary = address,
        Role::Gateway => topology.gateway = address,
        Role::Regional => topology.regional = address,
        Role::Workstation => topology.workstation = address,
        Role::Shep => {}
    }
}

/// The signals that stop `egov serve` (SIGINT, SIGTERM) or reload its trust
/// registry (SIGHUP), listened to before it says `ready`: a signal tokio's
/// handler takes before its stream exists is lost, so one sent right after
/// `ready` would leave the process running.
struct Signals(Option<[tokio::signal::unix::Signal; 3]>);

fn signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
        (Ok(interrupt), Ok(terminate), Ok(hangup)) => Signals(Some([interrupt, terminate, hangup])),
        _ => Signals(None),
    }
}

/// Serves until SIGINT or SIGTERM; SIGHUP reloads the trust registry.
async fn serve_until_stopped(stack: &Stack, signals: Signals) {
    let Some([mut interrupt, mut terminate, mut hangup]) = signals.0 else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = interrupt.recv() => return,
            _ = terminate.recv() => return,
            _ = hangup.recv() => match stack.reload_trust() {
                Ok(members) => tracing::warn!(members, "trust registry reloaded on SIGHUP"),
                Err(error) => tracing::error!(error = %format!("{error:#}"), "trust registry not reloaded; the previous one stays"),
            },
        }
    }
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key directory with a fresh key for every member of the simulated exchange.
    /// With `--tls`, also a test CA and a TLS certificate for every member (DIR/tls, docs/tls.md);
    /// on a directory that has its keys but no CA yet, the certificates only.
    Init {
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
        /// From when the keys are valid, for message times: a day (YYYY-MM-DD, from 00:00
        /// Astana time) or an RFC 3339 instant. Default: 2020-01-01T00:00:00Z, before every
        /// scenario of the fixture library, so a stack on simulated time replays them.
        /// They stay valid until ten years from today (or from this date, if later).
        #[arg(long, env = "EGOV_KEYS_VALID_FROM", value_parser = egov_runtime::keys::parse_valid_from)]
        valid_from: Option<chrono::DateTime<chrono::Utc>>,
        /// With --tls: another host name or address the certificates are valid for
        /// (besides localhost, 127.0.0.1 and ::1; repeat).
        #[arg(long = "tls-host")]
        tls_hosts: Vec<String>,
    },
    /// Add a member with a fresh key, or give an existing member a new key (rotation).
    Add {
        member: String,
        /// The new member's role (e.g. sc-operator, provider-head).
        #[arg(long, default_value = "")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
    },
    /// Revoke a key: messages signed by it with a later message time are refused.
    /// Running participants pick the change up within a second (or on SIGHUP).
    Revoke {
        key_id: String,
        /// When the revocation takes effect (RFC 3339); default: now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
    },
}

pub fn keys(command: KeysCommand, tls: &crate::Tls) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Init { dir, tls_hosts, valid_from } => {
            let keys = KeyDir::new(&dir);
            let now = chrono::DateTime::from_timestamp_millis(SystemClock.now_ms()).unwrap_or_default();
            let valid_from = valid_from.unwrap_or_else(egov_runtime::keys::default_valid_from);
            let ten_years = chrono::Months::new(120);
            let valid_until = valid_from.max(now).checked_add_months(ten_years).unwrap_or(valid_from);
            let certificates = tls.dir(&dir);
            let trust = if keys.exists() && certificates.as_ref().is_some_and(|c| !c.ca_path().exists()) {
                // Keys made before: only the certificates are added.
                println!("{} has its keys already: adding the certificates only", dir.display());
                keys.trust()?
            } else {
                let trust = keys.init_valid(ids::DEFAULT_MEMBERS, valid_from, valid_until)?;
                println!(
                    "created {} with {} members, their keys valid from {} until {}:",
                    dir.display(),
                    trust.members().len(),
                    valid_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                for member in trust.members() {
                    println!(
                        "  {:<14} {:<22} {}",
                        member.id,
                        member.role,
                        member.keys.first().map(|k| k.id.as_str()).unwrap_or("")
                    );
                }
                // A SHEP sender for each member that talks to the gateway (docs/shep.md).
                let members: Vec<(&str, &str)> =
                    ids::DEFAULT_MEMBERS.iter().map(|(id, role, _)| (*id, *role)).collect();
                for (sender, _) in egov_shep::senders::init_senders(&dir, &members)? {
                    println!(
                        "  SHEP sender {sender}: password in {}",
                        egov_shep::senders::password_path(&dir, &sender).display()
                    );
                }
                trust
            };
            if let Some(certificates) = certificates {
                let members: Vec<&str> = trust.members().iter().map(|member| member.id.as_str()).collect();
                // TLS checks them on the real clock: from a day back (clocks a little
                // behind still accept them) for ten years.
                let from = now - chrono::Duration::days(1);
                let until = now.checked_add_months(ten_years).unwrap_or(now);
                certificates.init(&members, &tls_hosts, from.timestamp_millis(), until.timestamp_millis())?;
                println!(
                    "created a test CA and a TLS certificate for each member in {}",
                    certificates.path().display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Add { member, role, name, dir } => {
            let now = chrono::DateTime::from_timestamp_millis(SystemClock.now_ms()).unwrap_or_default();
            let keys = KeyDir::new(&dir);
            let key_id = keys.add_key(&member, &role, &name, now)?;
            println!("added key {key_id} for {member}");
            // Where the key directory has certificates, the member gets one too.
            let certificates = tls.dir(&dir).unwrap_or_else(|| egov_runtime::tls::TlsDir::of(&keys));
            if certificates.ca_path().exists() && !certificates.cert_path(&member).exists() {
                let until = now.checked_add_months(chrono::Months::new(120)).unwrap_or(now);
                certificates.issue(&member, &[], now.timestamp_millis() - 86_400_000, until.timestamp_millis())?;
                println!("issued {}", certificates.cert_path(&member).display());
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { key_id, at, dir } => {
            let at =
                at.unwrap_or_else(|| chrono::DateTime::from_timestamp_millis(SystemClock.now_ms()).unwrap_or_default());
            KeyDir::new(&dir).revoke(&key_id, at)?;
            println!("revoked {key_id} from {}", at.to_rfc3339());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args, Clone)]
pub struct OperatorLogin {
    #[arg(long, default_value = "operator-1")]
    login: String,
    /// Default: LOGIN-password, as in fixtures/operators.json.
    #[arg(long)]
    password: Option<String>,
    #[arg(long, default_value = "keys")]
    keys: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum OperatorCommand {
    /// Processes 1 to 6: log in, open the form, look the data up, attach the documents, sign and send.
    Apply {
        #[command(flatten)]
        login: OperatorLogin,
        /// The application's id (default: a new UUID).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        applicant: String,
        /// The representative's IIN, when one acts for the applicant.
        #[arg(long)]
        representative: Option<String>,
        /// The representative's power of attorney is notarised (give its number).
        #[arg(long, requires = "poa_number")]
        notarised: bool,
        #[arg(long)]
        poa_number: Option<String>,
        #[arg(long)]
        poa_issued_on: Option<String>,
        /// A document kind to attach (repeat); default: the checklist's required ones.
        #[arg(long = "document")]
        documents: Vec<String>,
    },
    /// The applicant came for the result: a ticket of the centre's electronic queue, or when to come back.
    Ticket {
        #[command(flatten)]
        login: OperatorLogin,
        application_id: String,
        /// The service centre (TsON) whose queue it is; default: the workstation's default centre, `main`.
        #[arg(long, default_value = "")]
        centre: String,
    },
    /// The operator, free at a window, calls the next waiting ticket of the centre's queue (or gets again the one
    /// called to them and not served yet); prints the ticket and its application.
    CallNext {
        #[command(flatten)]
        login: OperatorLogin,
        /// The service centre (TsON); default: the workstation's default centre, `main`.
        #[arg(long, default_value = "")]
        centre: String,
        /// The window the operator serves at (one operator at a time), e.g. 3.
        #[arg(long, default_value = "")]
        window: String,
    },
    /// Process 9: hand the result to the applicant whose ticket was called to this operator (`call-next`).
    Issue {
        #[command(flatten)]
        login: OperatorLogin,
        application_id: String,
    },
    /// Withdraw an application whose form was opened but never submitted (it ends "withdrawn").
    Withdraw {
        #[command(flatten)]
        login: OperatorLogin,
        application_id: String,
        /// Why, in the operator's words.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// The documents of `kinds`, each with a simulated scan; none given: the
/// checklist's required ones (and the power of attorney for a representative).
fn attachments(definition: &Definition, kinds: Vec<String>, represented: bool) -> Vec<egov_proto::AttachedDocument> {
    document_plans(definition, kinds, represented).iter().map(DocumentPlan::to_proto).collect()
}

/// [`attachments`], as the operator plans them.
fn document_plans(definition: &Definition, kinds: Vec<String>, represented: bool) -> Vec<DocumentPlan> {
    let kinds: Vec<String> = if kinds.is_empty() {
        definition
            .documents
            .iter()
            .filter(|d| d.required || (d.when.as_deref() == Some("representative") && represented))
            .map(|d| d.code.clone())
            .collect()
    } else {
        kinds
    };
    kinds
        .iter()
        .map(|kind| DocumentPlan {
            kind: kind.clone(),
            title: kind.clone(),
            pages: 1,
            content: format!("scan of {kind}"),
        })
        .collect()
}

/// Process 1, then the operator's key: the account's operator id names it.
/// Over TLS the operator's calls present the certificate of the member their login names.
async fn logged_in_operator(
    login: &OperatorLogin,
    topology: &Topology,
    tls: &crate::Tls,
    persistence: Persistence,
) -> anyhow::Result<OperatorClient> {
    let keys = KeyDir::new(&login.keys);
    let trust = keys.trust()?;
    let password = login.password.clone().unwrap_or_else(|| format!("{}-password", login.login));
    let certificates = tls.dir(&login.keys);
    let mut channel = egov_runtime::tls::connect(&topology.workstation, certificates.as_ref(), &login.login)?;
    // Login signs nothing: the key is the login's member's until the account names its operator.
    let anyone = egov_envelope::Signer::from_seed(&login.login, "", &[0; 32]);
    let session = OperatorClient::new(channel.clone(), anyone, Arc::new(SystemClock))
        .with_persistence(persistence)
        .login(&login.login, &password)
        .await
        .context("login (process 1) not done")?;
    let signer = keys.signer_in(&trust, &session.operator_id)?;
    if session.operator_id != login.login {
        channel = egov_runtime::tls::connect(&topology.workstation, certificates.as_ref(), &session.operator_id)?;
    }
    Ok(OperatorClient::new(channel, signer, Arc::new(SystemClock))
        .with_persistence(persistence)
        .with_session(session.session_id))
}

/// The error of `egov operator apply`, naming the step not done and, when the
/// form is open, how to go on; a refusal at the counter prints the applicant's notice.
fn apply_failed(error: RouteError, application_id: &str, keys: &std::path::Path) -> anyhow::Error {
    let RouteError::Refused { step, status } = error else { return anyhow::Error::new(error) };
    let (what, then) = match step {
        "open form" => ("open form (process 2)", ""),
        "submit" => {
            // Refused at the counter: the applicant's signed notice, with what is missing.
            let trust = KeyDir::new(keys).trust();
            print_counter_notice(trust.and_then(|trust| Ok(egov_client::counter_notice(&status, &trust)?)));
            (
                "submit (process 5)",
                if egov_runtime::status::is_retryable(&status) {
                    "; the form is open and the data looked up: the same command resumes it"
                } else {
                    ""
                },
            )
        }
        other => (other, ""),
    };
    anyhow::Error::new(status).context(format!("{what} of application {application_id} not done{then}"))
}

/// Prints the notice a refused submission carries (`egov-notice-bin`), once
/// its signature verified with the trust registry; warns when it did not.
fn print_counter_notice(verified: anyhow::Result<Option<egov_client::CounterNotice>>) {
    match verified {
        Ok(Some(counter)) => print!("{}", counter_notice_text(&counter)),
        Ok(None) => {}
        Err(error) => eprintln!("warning: the refusal's notice is not shown: {error:#}"),
    }
}

/// A verified counter notice, in the three languages.
fn counter_notice_text(counter: &egov_client::CounterNotice) -> String {
    let (header, notice) = (&counter.verified.header, &counter.notice);
    let mut out = format!("refused at the counter: application {}\n", header.correlation_id);
    out.push_str(&format!(
        "  notice          {} (signed by {}, key {})\n",
        notice.code, header.sender_id, counter.verified.key_id
    ));
    for (language, text) in [("kk", &notice.text_kk), ("ru", &notice.text_ru), ("en", &notice.text_en)] {
        out.push_str(&format!("  {language:<16}{text}\n"));
    }
    out
}

pub async fn operator(
    command: OperatorCommand,
    addresses: &Addresses,
    tls: &crate::Tls,
    persistence: Persistence,
) -> anyhow::Result<ExitCode> {
    let topology = &topology(addresses)?;
    let definition = Definition::default_definition();
    match command {
        OperatorCommand::Apply {
            login,
            id,
            applicant,
            representative,
            notarised,
            poa_number,
            poa_issued_on,
            documents,
        } => {
            let operator = logged_in_operator(&login, topology, tls, persistence).await?;
            let application_id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let represented = representative.is_some();
            let plan = ApplicationPlan {
                applicant_iin: applicant,
                representative: representative.map(|iin| RepresentativePlan {
                    iin,
                    notarised,
                    number: poa_number.unwrap_or_default(),
                    issued_on: poa_issued_on.unwrap_or_default(),
                }),
                documents: document_plans(definition, documents, represented),
                decision: Decision::Approve,
                refusal_ground: String::new(),
                result_decision: Decision::Approve,
                result_refusal_ground: String::new(),
            };
            let applied = match egov_client::apply(&operator, definition, &RealTime, &application_id, &plan).await {
                Ok(applied) => applied,
                Err(error) => return Err(apply_failed(error, &application_id, &login.keys)),
            };
            if let Some(at) = &applied.resumed_at {
                let what = if applied.submitted {
                    "its form was open, the data looked up: submitted now (processes 5 and 6)"
                } else if applied.application.outcome.is_empty() {
                    "it was submitted before: nothing left to do here"
                } else {
                    "it has ended: nothing left to do here"
                };
                println!("resumed application {application_id}, found at {at}: {what}");
            }
            print!("{}", crate::print::application(&applied.application));
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Ticket { login, application_id, centre } => {
            let operator = logged_in_operator(&login, topology, tls, persistence).await?.with_centre(centre);
            match operator.take_ticket(&application_id).await {
                Ok(taken) => {
                    let ticket = taken.ticket.unwrap_or_default();
                    let calendar = egov_regulation::Calendar::kazakhstan();
                    let taken_at = egov_regulation::instance::to_local(calendar, ticket.taken_time_ms)
                        .map_or_else(String::new, |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                    println!(
                        "ticket {} taken at {taken_at} at centre {}, {} ahead",
                        ticket.number, ticket.centre, ticket.ahead
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(status) => {
                    if let Some(at) = egov_client::come_back_at(&status) {
                        println!("come back at {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                    }
                    Err(anyhow::Error::new(status)
                        .context(format!("queue ticket of application {application_id} not done")))
                }
            }
        }
        OperatorCommand::CallNext { login, centre, window } => {
            let operator =
                logged_in_operator(&login, topology, tls, persistence).await?.with_centre(centre).with_window(window);
            let called = operator
                .call_next()
                .await
                .with_context(|| format!("call of the next ticket at centre {} not done", operator.centre()))?;
            match (called.ticket, called.application) {
                (Some(ticket), Some(application)) => {
                    let calendar = egov_regulation::Calendar::kazakhstan();
                    let at = |ms: i64| {
                        egov_regulation::instance::to_local(calendar, ms)
                            .map_or_else(String::new, |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
                    };
                    let window =
                        if ticket.window.is_empty() { String::new() } else { format!(" to window {}", ticket.window) };
                    println!(
                        "ticket {} called{window} at {} (taken at {}), application {}, {} still waiting",
                        ticket.number,
                        at(ticket.called_time_ms),
                        at(ticket.taken_time_ms),
                        application.application_id,
                        called.waiting
                    );
                    print!("{}", crate::print::application(&application));
                }
                _ => println!("no ticket waits at centre {}", operator.centre()),
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Issue { login, application_id } => {
            let operator = logged_in_operator(&login, topology, tls, persistence).await?;
            let issued = operator
                .issue(&application_id)
                .await
                .with_context(|| format!("issue result (process 9) of application {application_id} not done"))?;
            print!("{}", crate::print::application(&issued.application.unwrap_or_default()));
            if let Some(result) = issued.result
                && let Some(signature) = result.signatures.first()
            {
                println!("  result signed with key {}", signature.key_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Withdraw { login, application_id, reason } => {
            let operator = logged_in_operator(&login, topology, tls, persistence).await?;
            let withdrawn = operator
                .withdraw(&application_id, &reason)
                .await
                .with_context(|| format!("withdrawal of application {application_id} not done"))?;
            print!("{}", crate::print::application(&withdrawn.application.unwrap_or_default()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Subcommand)]
pub enum StaffCommand {
    /// Paragraph 3: receive an application at the provider's office (action 1
    /// of the office channel), signed as an office employee.
    Receive {
        /// The application's id (default: a new UUID).
        #[arg(long)]
        id: Option<String>,
        /// The office employee (e.g. office-1).
        #[arg(long = "as", default_value = "office-1")]
        member: String,
        #[arg(long)]
        applicant: String,
        /// The representative's IIN, when one acts for the applicant.
        #[arg(long)]
        representative: Option<String>,
        /// A document kind to attach (repeat); default: the checklist's required ones.
        #[arg(long = "document")]
        documents: Vec<String>,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
    },
    /// Registrations waiting on a staff step.
    Queue {
        /// Only those whose next step is this role's (e.g. provider-head).
        #[arg(long, default_value = "")]
        actor: String,
    },
    /// Do a registration's current staff step, signed as a staff member.
    Act {
        registration_id: String,
        /// The staff member (e.g. office-1, specialist-1, executor-1, head-1).
        #[arg(long = "as")]
        member: String,
        /// For a deciding step: yes or no (condition 2: the documents comply;
        /// action 2: the permission, or no for the reasoned refusal).
        #[arg(long)]
        decision: Option<String>,
        /// With --decision no: the refusal ground's code (one of those the
        /// definition ties to the step: `egov regulation show`).
        #[arg(long, default_value = "")]
        ground: String,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
    },
    /// Do every remaining staff step of a registration, each signed by the first member of its role.
    Process {
        registration_id: String,
        /// approve or refuse, at the documents check (condition 2).
        #[arg(long, default_value = "approve")]
        decision: String,
        /// With --decision refuse: a ground of the documents check.
        #[arg(long, default_value = "")]
        ground: String,
        /// approve (the permission) or refuse (the reasoned refusal), at the result (action 2).
        #[arg(long, default_value = "approve")]
        result_decision: String,
        /// With --result-decision refuse: a ground of action 2.
        #[arg(long, default_value = "")]
        result_ground: String,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
    },
}

pub async fn staff(
    command: StaffCommand,
    addresses: &Addresses,
    tls: &crate::Tls,
    persistence: Persistence,
) -> anyhow::Result<ExitCode> {
    let topology = topology(addresses)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys_dir = match &command {
        StaffCommand::Receive { keys, .. } | StaffCommand::Act { keys, .. } | StaffCommand::Process { keys, .. } => {
            keys.clone()
        }
        StaffCommand::Queue { .. } => PathBuf::from("keys"),
    };
    // Each signed step presents its signer's certificate; the reads, the ARM's own (or --tls-as).
    let client =
        StaffClient::connect(&topology.regional, tls.dir(&keys_dir).as_ref(), tls.reader(ids::REGIONAL), clock)?
            .with_persistence(persistence);
    let definition = Definition::default_definition();
    match command {
        StaffCommand::Receive { id, member, applicant, representative, documents, keys } => {
            let keys = KeyDir::new(keys);
            let signer = keys.signer(&member)?;
            let application_id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let representative = representative.map(|iin| egov_proto::Representative {
                iin,
                kind: egov_proto::PowerOfAttorneyKind::Other as i32,
                ..egov_proto::Representative::default()
            });
            let reception = egov_proto::OfficeReception {
                application_id,
                service_code: definition.service.code.clone(),
                applicant_iin: applicant,
                documents: attachments(definition, documents, representative.is_some()),
                representative,
                arrived_time_ms: 0,
            };
            match client.receive_at_office(&signer, &reception).await {
                Ok(registration) => {
                    print!("{}", crate::print::application(&registration.application.unwrap_or_default()));
                    Ok(ExitCode::SUCCESS)
                }
                Err(status) => {
                    // Refused at the office's counter: the applicant's signed notice, with what is missing.
                    print_counter_notice(
                        keys.trust().and_then(|trust| Ok(egov_client::counter_notice(&status, &trust)?)),
                    );
                    Err(anyhow::Error::new(status).context("receive at the office"))
                }
            }
        }
        StaffCommand::Queue { actor } => {
            for registration in client.queue(&actor).await? {
                let application = registration.application.unwrap_or_default();
                println!(
                    "{:<18} application {:<40} waits on {:<12} ({})",
                    application.registration_id,
                    application.application_id,
                    application.current_step,
                    registration.next_actor
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StaffCommand::Act { registration_id, member, decision, ground, keys } => {
            let keys = KeyDir::new(keys);
            let signer = keys.signer(&member)?;
            let registration = client.registration(&registration_id).await.context("read the registration")?;
            let decision = match decision.as_deref() {
                None => egov_proto::Decision::Unspecified,
                Some("yes") => egov_proto::Decision::Yes,
                Some("no") => egov_proto::Decision::No,
                Some(other) => bail!("--decision is yes or no, not {other:?}"),
            };
            let registration = do_step(definition, &client, &signer, registration, decision, &ground).await?;
            print!("{}", crate::print::application(&registration.application.unwrap_or_default()));
            Ok(ExitCode::SUCCESS)
        }
        StaffCommand::Process { registration_id, decision, ground, result_decision, result_ground, keys } => {
            let keys = KeyDir::new(keys);
            let trust = keys.trust()?;
            let signers = egov_client::staff_keys(&keys, &trust)?;
            let parse = |flag: &str, text: &str| match text {
                "approve" => Ok(egov_proto::Decision::Yes),
                "refuse" => Ok(egov_proto::Decision::No),
                other => Err(anyhow::anyhow!("--{flag} is approve or refuse, not {other:?}")),
            };
            let decision = parse("decision", &decision)?;
            let result_decision = parse("result-decision", &result_decision)?;
            let mut registration = client.registration(&registration_id).await.context("read the registration")?;
            while !registration.next_actor.is_empty() {
                let signer = signers
                    .get(&registration.next_actor)
                    .with_context(|| format!("no key for {}", registration.next_actor))?;
                let step_id = registration.application.as_ref().map(|a| a.current_step.clone()).unwrap_or_default();
                let drafting = definition
                    .step(&step_id)
                    .is_some_and(|step| step.effect == Some(egov_regulation::Effect::DraftResult));
                let (decision, ground) =
                    if drafting { (result_decision, result_ground.as_str()) } else { (decision, ground.as_str()) };
                registration = do_step(definition, &client, signer, registration, decision, ground).await?;
            }
            print!("{}", crate::print::application(&registration.application.unwrap_or_default()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn do_step(
    definition: &Definition,
    client: &StaffClient,
    signer: &Signer,
    registration: egov_proto::Registration,
    decision: egov_proto::Decision,
    ground: &str,
) -> anyhow::Result<egov_proto::Registration> {
    let step_id = registration.application.as_ref().map(|a| a.current_step.clone()).unwrap_or_default();
    let step =
        definition.step(&step_id).with_context(|| format!("registration waits on no staff step ({step_id:?})"))?;
    // An official signs the draft the ARM holds: the head the result (action 3,
    // which begins with the executor's hand-over, a task for that role), the
    // specialist who decided condition 2 the refusal of process 8.
    let signs =
        matches!(step.effect, Some(egov_regulation::Effect::SignResult | egov_regulation::Effect::RefusalNotice));
    let done = if signs && registration.next_actor == step.actor {
        client.sign(signer, &registration).await
    } else if step.kind == StepKind::Condition {
        let ground = if decision == egov_proto::Decision::No { ground } else { "" };
        client.act(signer, &registration, &step_id, decision, ground).await
    } else {
        client.act(signer, &registration, &step_id, egov_proto::Decision::Unspecified, "").await
    };
    let registration_id = registration.application.as_ref().map(|a| a.registration_id.as_str()).unwrap_or_default();
    done.with_context(|| {
        format!("{step_id} ({}, {}) of registration {registration_id} not done", step.title.en, signer.member_id())
    })
}

#[derive(clap::Args)]
pub struct StatusArgs {
    application_id: String,
    /// Print the application again after each change, until it ends (WatchApplication).
    #[arg(long)]
    follow: bool,
}

pub async fn status(
    args: StatusArgs,
    addresses: &Addresses,
    tls: &crate::Tls,
    persistence: Persistence,
) -> anyhow::Result<ExitCode> {
    let topology = topology(addresses)?;
    let channel = egov_runtime::tls::connect(
        &topology.workstation,
        tls.dir(std::path::Path::new("keys")).as_ref(),
        tls.reader(ids::SC_WORKSTATION),
    )?;
    let mut client = egov_proto::workstation_service_client::WorkstationServiceClient::new(channel);
    if args.follow {
        let request = egov_proto::WatchApplicationRequest { application_id: args.application_id.clone() };
        let mut changes = client.watch_application(request).await?.into_inner();
        while let Some(change) = changes.message().await? {
            print!("{}", crate::print::application(&change.application.unwrap_or_default()));
            println!();
        }
        return Ok(ExitCode::SUCCESS);
    }
    let request = egov_proto::GetApplicationRequest { application_id: args.application_id.clone() };
    let response = egov_client::retry::send(persistence, || {
        let (mut client, request) = (client.clone(), request.clone());
        async move { client.get_application(request).await }
    })
    .await?;
    print!("{}", crate::print::application(&response.application.unwrap_or_default()));
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum ShepCommand {
    /// SHEP senders (keys/shep/senders.toml).
    #[command(subcommand)]
    Sender(ShepSenderCommand),
    /// Post a SOAP request from FILE to a SHEP endpoint and print the answer (for testers).
    Send {
        file: PathBuf,
        /// The endpoint, e.g. http://127.0.0.1:50056/bip-sync-wss-gost/.
        #[arg(long, default_value = "http://127.0.0.1:50056/bip-sync-wss-gost/")]
        to: String,
    },
}

#[derive(clap::Subcommand)]
pub enum ShepSenderCommand {
    /// Add a sender: a senderId that is MEMBER of the trust registry, with a password
    /// (random if not given, written to keys/secrets/shep-ID.password).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        member: String,
        #[arg(long)]
        password: Option<String>,
        /// A member whose business-data signature the edge makes for this sender (repeat).
        #[arg(long = "signs-for", value_delimiter = ',')]
        signs_for: Vec<String>,
        /// Where the edge pushes changeMassageStatusNotification for this sender.
        #[arg(long)]
        status_endpoint: Option<String>,
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
    },
    /// List the senders.
    List {
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
    },
}

pub async fn shep(command: ShepCommand) -> anyhow::Result<ExitCode> {
    match command {
        ShepCommand::Sender(ShepSenderCommand::Add { id, member, password, signs_for, status_endpoint, dir }) => {
            let trust = KeyDir::new(&dir).trust()?;
            for known in std::iter::once(&member).chain(&signs_for) {
                if trust.member(known).is_none() {
                    bail!("{known} is not a member of the trust registry in {}", dir.display());
                }
            }
            let password = egov_shep::senders::add_sender(
                &dir,
                &id,
                &member,
                password.as_deref(),
                &signs_for,
                status_endpoint.as_deref(),
            )?;
            let _ = password;
            println!(
                "added SHEP sender {id} ({member}); its password is in {}",
                egov_shep::senders::password_path(&dir, &id).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ShepCommand::Sender(ShepSenderCommand::List { dir }) => {
            for sender in egov_shep::senders::Senders::load(&dir)?.all() {
                println!(
                    "{:<20} {:<16} signs for: {}{}",
                    sender.sender_id,
                    sender.member,
                    if sender.signs_for.is_empty() { "-".to_owned() } else { sender.signs_for.join(",") },
                    sender.status_endpoint.as_ref().map(|url| format!("  status: {url}")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ShepCommand::Send { file, to } => {
            let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (status, answer) = egov_shep::push::post(&to, text).await?;
            println!("{answer}");
            Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
