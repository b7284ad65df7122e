//! Starts participants: each on its own listener, with its own store under
//! the data directory, finding the others by address.
#![forbid(unsafe_code)]

pub mod check;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use egov_envelope::Checks;
use egov_gateway::{GatewayServer, Recipients};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::inbox_service_client::InboxServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::notary_service_client::NotaryServiceClient;
use egov_proto::witness_service_client::WitnessServiceClient;
use egov_regional::RegionalServer;
use egov_registries::{Individuals, IndividualsServer, NotaryServer, Powers};
use egov_regulation::Definition;
use egov_runtime::admin::AdminServer;
use egov_runtime::counters::Counters;
use egov_runtime::evidence::EvidenceServer;
use egov_runtime::fault::{FaultLayer, Faults};
use egov_runtime::monitor::{MonitorConfig, Monitoring};
use egov_runtime::outbox::{Outbox, RetryPolicy};
use egov_runtime::tls::TlsDir;
use egov_runtime::witness::{LogWitness, WitnessPeer, WitnessServer, Witnessing};
use egov_runtime::{Clock, Context, KeyDir, Receiver, Services, SharedTrust, SystemClock, Topology, ids};
use egov_store::Store;
use egov_workstation::{Operators, WorkstationServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::Routes as GrpcRoutes;

/// A stateful participant's store and outbox.
type State = (Store, Arc<Outbox>);

/// The file in the data root that lists, one per line, the participants whose
/// stores were created there: a listed participant whose store is missing is
/// refused at start rather than started empty. Each store keeps a copy of the
/// list in its own directory (`DATA/ROLE/participants`): the second witness,
/// should the root's file go with a participant's directory.
pub const PARTICIPANTS_FILE: &str = "participants";

/// The stateful participants, and the SHEP edge: their stores may hold a copy of the list.
const STATEFUL: [&str; 4] = ["gateway", "regional", "workstation", "shep"];

fn read_list(path: &std::path::Path) -> anyhow::Result<BTreeSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The participants listed in the data root's `participants` file or in any
/// store's copy of it (`DATA/ROLE/participants`).
pub fn registered_participants(data_dir: &std::path::Path) -> anyhow::Result<BTreeSet<String>> {
    let mut registered = read_list(&data_dir.join(PARTICIPANTS_FILE))?;
    for role in STATEFUL {
        registered.extend(read_list(&data_dir.join(role).join(PARTICIPANTS_FILE))?);
    }
    Ok(registered)
}

/// Whether a store was created in `path`: sled's files, or the log.
fn store_exists(path: &std::path::Path) -> bool {
    path.join("conf").exists() || path.join("db").exists() || path.join("log").exists()
}

/// Writes `text` to `path` durably (a new file renamed over the old one).
fn write_durably(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let new = path.with_extension("new");
    let mut file = std::fs::File::create(&new)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&new, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Adds `roles` to the list of participants, durably: the root's file and
/// each store's copy (of the stores whose directory exists).
fn register_participants(data_dir: &std::path::Path, roles: &[&str]) -> std::io::Result<()> {
    let mut registered = registered_participants(data_dir).map_err(std::io::Error::other)?;
    registered.extend(roles.iter().map(|role| (*role).to_owned()));
    let text: String = registered.iter().map(|role| format!("{role}\n")).collect();
    for role in STATEFUL {
        let dir = data_dir.join(role);
        let copy = dir.join(PARTICIPANTS_FILE);
        if dir.is_dir() && std::fs::read_to_string(&copy).ok().as_deref() != Some(text.as_str()) {
            write_durably(&copy, &text)?;
        }
    }
    let root = data_dir.join(PARTICIPANTS_FILE);
    if std::fs::read_to_string(&root).ok().as_deref() != Some(text.as_str()) {
        write_durably(&root, &text)?;
    }
    Ok(())
}

/// How many of the newest log entries are checked at start (`egov audit verify` checks all).
const START_CHECK_ENTRIES: usize = 1000;

/// The registries' limit on a look-up's body.
const LOOKUP_BODY_BYTES: usize = 64 * 1024;

/// Largest message a participant accepts or sends.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The five participants, and the gateway's SHEP edge (`Shep`: started with
/// `StackConfig::shep`, never by `--roles`; not in [`Role::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Individuals,
    Notary,
    Gateway,
    Regional,
    Workstation,
    Shep,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Individuals, Role::Notary, Role::Gateway, Role::Regional, Role::Workstation];

    pub fn name(self) -> &'static str {
        match self {
            Role::Individuals => "individuals",
            Role::Notary => "notary",
            Role::Gateway => "gateway",
            Role::Regional => "regional",
            Role::Workstation => "workstation",
            Role::Shep => "shep",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == text)
    }

    /// `ROLE:SPEC`, e.g. `individuals:unavailable=0.2,latency=20ms` (see `Faults`).
    pub fn parse_fault(text: &str) -> Result<(Role, Faults), String> {
        let (role, spec) = text.split_once(':').ok_or_else(|| format!("fault {text:?} is not ROLE:SPEC"))?;
        let role = Role::parse(role)
            .ok_or_else(|| format!("unknown role {role:?}: use individuals, notary, gateway, regional, workstation"))?;
        Ok((role, spec.parse()?))
    }

    /// Where a participant listens (the edge's addresses are its settings').
    fn address_mut(self, topology: &mut Topology) -> Option<&mut String> {
        match self {
            Role::Individuals => Some(&mut topology.individuals),
            Role::Notary => Some(&mut topology.notary),
            Role::Gateway => Some(&mut topology.gateway),
            Role::Regional => Some(&mut topology.regional),
            Role::Workstation => Some(&mut topology.workstation),
            Role::Shep => None,
        }
    }

    /// The calls faults are injected into: those the participant receives from another participant.
    fn faulty_paths(self) -> &'static [&'static str] {
        match self {
            Role::Individuals => &["/egov.v1.IndividualsService/"],
            Role::Notary => &["/egov.v1.NotaryService/"],
            Role::Gateway => &["/egov.v1.GatewayService/"],
            Role::Regional | Role::Workstation | Role::Shep => &["/egov.v1.InboxService/"],
        }
    }

    /// The member a participant is (the edge signs as the members it fronts: none of its own).
    pub fn member_id(self) -> &'static str {
        match self {
            Role::Individuals => ids::INDIVIDUALS,
            Role::Notary => ids::NOTARY,
            Role::Gateway => ids::GATEWAY,
            Role::Regional => ids::REGIONAL,
            Role::Workstation => ids::SC_WORKSTATION,
            Role::Shep => "",
        }
    }
}

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Each participant keeps its store in `data_dir/ROLE`.
    pub data_dir: PathBuf,
    pub keys: KeyDir,
    /// `individuals.json`, `powers_of_attorney.json`, `operators.json`.
    pub fixtures_dir: PathBuf,
    pub definition: Arc<Definition>,
    /// Where each participant listens; port 0 lets the system choose for the roles started here.
    pub topology: Topology,
    pub roles: BTreeSet<Role>,
    /// The operational clock (outbox retries, log entries).
    pub clock: Arc<dyn Clock>,
    /// Simulated time: every event happens at the message time of the envelope that causes it
    /// (replays set the regulatory clock; the freshness check is off).
    pub simulated_time: bool,
    pub checks: Checks,
    pub retry: RetryPolicy,
    /// Faults to inject, by participant.
    pub faults: BTreeMap<Role, Faults>,
    pub fault_seed: u64,
    /// sled's page cache per store (it holds the index only: records and
    /// envelopes are read from the log's segments, which the kernel caches).
    pub cache_bytes: u64,
    /// Wraps each participant's services before they are served; `None`: served as they are.
    pub routes_hook: Option<RoutesHook>,
    /// Where every participant started here counts its calls (served on
    /// `/metrics` by whoever holds it); none: nothing is counted.
    pub metrics: Option<Arc<egov_runtime::metrics::Metrics>>,
    /// mTLS on every port started here and every call between participants,
    /// with the certificates of this directory (`egov_runtime::tls`); none: plaintext.
    pub tls: Option<TlsDir>,
    /// The operational monitoring records every participant keeps.
    pub monitor: MonitorConfig,
    /// A PostgreSQL database (`postgres://...`) that keeps the stateful participants'
    /// state, each in the schema of its role, shared with their replicas; none: each
    /// keeps an embedded store in `data_dir/ROLE`.
    pub database: Option<String>,
    /// How the participants use that database: pool, lease, timeouts, and this replica's
    /// identity (none: `HOST/ADDRESS`, the host's name and the address the participant
    /// listens on, so that a restarted replica takes its own claims back at once).
    pub postgres: egov_store::PostgresSettings,
    /// The gateway's SHEP face (`crates/shep`, docs/shep.md): its own HTTP
    /// listener, store (`data_dir/shep`) and gRPC inbox for the roles served by
    /// external systems (which are then not started here); none: no SHEP face.
    pub shep: Option<egov_shep::EdgeSettings>,
    /// Check every store whole before serving (`egov serve --verify-all`):
    /// every frame's CRC, the Merkle tree, every signature, the index against the log.
    pub verify_all: bool,
    /// When each stateful participant's integrator publishes a signed checkpoint of its log.
    pub checkpoints: CheckpointSettings,
}

/// When a participant's integrator publishes a checkpoint of its log's Merkle tree
/// (`docs/storage.md`): once `every_entries` entries were integrated since the last one,
/// or `every_ms` after the last one when any were; and at a graceful stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// Default 1000.
    pub every_entries: u64,
    /// Default 1000 ms; 0: only at a graceful stop (the integrator still runs, on PostgreSQL).
    pub every_ms: u64,
}

impl Default for CheckpointSettings {
    fn default() -> CheckpointSettings {
        CheckpointSettings { every_entries: 1000, every_ms: 1000 }
    }
}

/// A participant's log, as the integrator and the witnesses use it.
#[derive(Debug, Clone)]
struct Log {
    member: &'static str,
    store: Store,
    signer: egov_tlog::NoteSigner,
    cosigner: egov_tlog::NoteSigner,
}

/// Each log of this process and its witnesses ([`egov_runtime::witness::witness_peers`]): a
/// witness started here is called directly, another over gRPC at its address (one served by an
/// external system is none), through the same code (`docs/storage.md`, "Witnesses").
fn witnessing(
    config: &StackConfig,
    topology: &Topology,
    logs: &[Log],
    trust: &SharedTrust,
) -> anyhow::Result<Arc<Witnessing>> {
    let mut pairs = Vec::new();
    for log in logs {
        for &witness in egov_runtime::witness::witness_peers(log.member) {
            let peer = match logs.iter().find(|other| other.member == witness) {
                Some(local) => WitnessPeer::Local(WitnessServer::new(
                    local.store.clone(),
                    trust.clone(),
                    witness,
                    local.cosigner.clone(),
                )),
                None => {
                    let Some(role) = Role::ALL.into_iter().find(|role| role.member_id() == witness) else { continue };
                    if config.shep.as_ref().is_some_and(|shep| shep.external.contains_key(role.name())) {
                        continue;
                    }
                    let address = match role {
                        Role::Gateway => &topology.gateway,
                        Role::Regional => &topology.regional,
                        _ => &topology.workstation,
                    };
                    WitnessPeer::Remote(WitnessServiceClient::new(lazy(address, config.tls.as_ref(), log.member)?))
                }
            };
            pairs.push(LogWitness::new(log.store.clone(), log.member, witness, peer));
        }
    }
    Ok(Witnessing::new(trust.clone(), pairs))
}

/// The integrator of a participant's log ([`Store::integrate`]: nothing to do on sled, where the
/// committer integrates) and its checkpoints, signed with the participant's key.
async fn integrate_and_publish(store: Store, signer: egov_tlog::NoteSigner, settings: CheckpointSettings) {
    let poll = std::time::Duration::from_millis(settings.every_ms.clamp(20, 200));
    let mut last = store.latest_checkpoint().ok().flatten().map_or(0, |(size, _)| size);
    let mut last_at = std::time::Instant::now();
    loop {
        tokio::time::sleep(poll).await;
        let integrating = store.clone();
        let size = match tokio::task::spawn_blocking(move || integrating.integrate()).await {
            Ok(Ok(size)) => size,
            Ok(Err(error)) => {
                tracing::error!(origin = signer.name(), code = error.code(), %error, "the log could not be integrated");
                continue;
            }
            Err(_) => continue,
        };
        let due = size > last
            && (size - last >= settings.every_entries
                || (settings.every_ms > 0 && last_at.elapsed().as_millis() >= u128::from(settings.every_ms)));
        if due {
            match store.publish_checkpoint(&signer).await {
                Ok(_) => {
                    last = size;
                    last_at = std::time::Instant::now();
                }
                Err(error) => tracing::warn!(origin = signer.name(), %error, "a checkpoint was not published"),
            }
        }
    }
}

/// Refuses what is not a PostgreSQL address (`postgres://` or `postgresql://`).
pub fn check_store_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(())
    } else {
        bail!(
            "--store takes a PostgreSQL address (postgres://user@host:port/database), not {:?}",
            egov_store::redact(url)
        )
    }
}

/// Wraps a participant's services (health and reflection are added after it):
/// `egov bench` counts and times every call with it.
#[derive(Clone)]
pub struct RoutesHook(pub Arc<dyn Fn(Role, GrpcRoutes) -> GrpcRoutes + Send + Sync>);

impl std::fmt::Debug for RoutesHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoutesHook")
    }
}

impl StackConfig {
    /// Every participant on loopback ports the system chooses.
    pub fn local(data_dir: PathBuf, keys: KeyDir, fixtures_dir: PathBuf) -> StackConfig {
        StackConfig {
            data_dir,
            keys,
            fixtures_dir,
            definition: Arc::new(Definition::default_definition().clone()),
            topology: Topology::on_ports("127.0.0.1", [0; 5]),
            roles: Role::ALL.into_iter().collect(),
            clock: Arc::new(SystemClock),
            simulated_time: false,
            checks: Checks::default(),
            retry: RetryPolicy::default(),
            faults: BTreeMap::new(),
            fault_seed: 1,
            cache_bytes: 8 * 1024 * 1024,
            routes_hook: None,
            metrics: None,
            tls: None,
            monitor: MonitorConfig::default(),
            database: None,
            postgres: egov_store::PostgresSettings::default(),
            shep: None,
            verify_all: false,
            checkpoints: CheckpointSettings::default(),
        }
    }
}

/// Running participants.
#[derive(Debug)]
pub struct Stack {
    topology: Topology,
    keys: KeyDir,
    trust: SharedTrust,
    roles: BTreeSet<Role>,
    /// Each participant's server: what tells it to stop accepting, and its task.
    servers: Vec<(Role, watch::Sender<bool>, JoinHandle<()>)>,
    /// The outbox workers and the trust registry's watcher.
    tasks: Vec<JoinHandle<()>>,
    /// The stores of the participants with state.
    stores: Vec<(Role, Store)>,
    /// Each stateful participant's log: who it is, its store, the key its checkpoints are
    /// signed with and the key it cosigns others' checkpoints with.
    logs: Vec<Log>,
    /// Each log's witnesses, shown its checkpoints every round.
    witnessing: Arc<Witnessing>,
    metrics: Option<Arc<egov_runtime::metrics::Metrics>>,
    monitoring: Arc<Monitoring>,
    /// The SHEP edge's HTTP and gRPC addresses, when it runs.
    shep: Option<(String, String)>,
}

/// What a graceful stop came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// The participants whose calls in flight were still running when the
    /// drain time was up, and were cut.
    pub cut: Vec<Role>,
    /// A store that could not be made durable at the end, and why.
    pub unsettled: Vec<(Role, String)>,
}

/// The order a graceful stop closes the participants in: each after the
/// ones whose calls in flight may still need it (the workstation's look-ups
/// need the gateway, whose synchronous channel needs the registries).
const DRAIN_ORDER: [Role; 6] =
    [Role::Shep, Role::Workstation, Role::Gateway, Role::Regional, Role::Individuals, Role::Notary];

/// How long a stop waits for the last round of witnessing.
const FINAL_WITNESS_ROUND: std::time::Duration = std::time::Duration::from_secs(5);

/// A lazily connecting channel to `address`, as `member` (over TLS when `tls` is given).
fn lazy(address: &str, tls: Option<&TlsDir>, member: &str) -> anyhow::Result<egov_runtime::GrpcChannel> {
    egov_runtime::tls::connect(address, tls, member)
}

impl Stack {
    /// Binds the listeners of `config.roles`, then starts them. Returns once
    /// every listener is bound (so the addresses are final).
    pub async fn start(config: StackConfig) -> anyhow::Result<Stack> {
        let mut config = config;
        if config.roles.contains(&Role::Shep) {
            bail!("the SHEP edge is started with its settings (StackConfig::shep), not as a role");
        }
        // A role served by an external SHEP system is not started here.
        if let Some(shep) = &config.shep {
            config.roles.retain(|role| !shep.external.contains_key(role.name()));
        }
        if config.roles.is_empty() && config.shep.is_none() {
            bail!("no roles to start");
        }
        // A database that is down is waited for before any port is bound: a replica that
        // listened without serving would hold its callers' connections unanswered.
        if let Some(url) = &config.database {
            check_store_url(url)?;
            wait_for_database(url).await;
        }
        let mut topology = config.topology.clone();
        // The edge's listeners are bound first: the gateway delivers to its inbox.
        let shep_listeners = match &config.shep {
            None => None,
            Some(shep) => {
                let http = TcpListener::bind(shep.address.trim())
                    .await
                    .with_context(|| format!("the SHEP edge cannot listen on {}", shep.address))?;
                let grpc = TcpListener::bind(shep.grpc_address.trim())
                    .await
                    .with_context(|| format!("the SHEP edge's inbox cannot listen on {}", shep.grpc_address))?;
                Some((http, grpc))
            }
        };
        // The edge's tables are read before anything starts: a bad one stops the start.
        let shep_tables = match &config.shep {
            Some(settings) => Some(shep_tables(&config, settings, Services::embedded())?),
            None => None,
        };
        let shep_grpc = match &shep_listeners {
            Some((_, grpc)) => Some(grpc.local_addr()?.to_string()),
            None => None,
        };
        let mut listeners = Vec::new();
        for &role in &config.roles {
            let Some(slot) = role.address_mut(&mut topology) else { continue };
            // A list of addresses names the participant's replicas: this one listens on
            // the first, and the others are reached at the rest (docs/scale-out.md).
            let list = slot.clone();
            let (address, replicas) = list.split_once(',').map_or((list.as_str(), None), |(a, rest)| (a, Some(rest)));
            let listener = TcpListener::bind(address.trim())
                .await
                .with_context(|| format!("{} cannot listen on {address}", role.name()))?;
            let bound = listener.local_addr()?.to_string();
            *slot = match replicas {
                Some(replicas) => format!("{bound},{replicas}"),
                None => bound,
            };
            listeners.push((role, listener));
        }
        let trust = SharedTrust::new(config.keys.trust()?);
        let monitoring = Monitoring::start(config.monitor.clone())?;
        let services = Arc::new(Services::embedded().clone());
        let mut servers = Vec::new();
        let mut stores = Vec::new();
        let mut logs = Vec::new();
        let mut tasks = Vec::new();
        // The stores open at the same time: each replays what sled and its log hold since it was last open.
        // On PostgreSQL each replica is known by the address it listens on (`replica_identity`).
        let listening: BTreeMap<Role, String> = listeners
            .iter()
            .filter_map(|(role, listener)| Some((*role, listener.local_addr().ok()?.to_string())))
            .chain(shep_grpc.clone().map(|address| (Role::Shep, address)))
            .collect();
        let mut opened = open_stores(&config, &listening)?;
        // On PostgreSQL, each participant's health follows its database (`watch_database`).
        let mut serving: BTreeMap<Role, watch::Receiver<bool>> = BTreeMap::new();
        if config.database.is_some() {
            for (role, opened) in &opened {
                if let Ok((store, _)) = opened {
                    let (report, follow) = watch::channel(true);
                    tasks.push(tokio::spawn(watch_database(store.clone(), *role, report)));
                    serving.insert(*role, follow);
                }
            }
        }
        let tls = config.tls.as_ref();
        for (role, listener) in listeners {
            let member = role.member_id();
            let signer = config.keys.signer_in(&trust.current(), role.member_id())?;
            let (log_signer, cosigner) = (signer.note_signer(), signer.cosigner());
            let mut checks = config.checks.clone();
            if matches!(role, Role::Individuals | Role::Notary) {
                // Look-ups are small.
                checks.max_body_bytes = checks.max_body_bytes.min(LOOKUP_BODY_BYTES);
            }
            if config.simulated_time {
                // Message times are the simulated clock: no freshness to check against.
                checks.freshness_window_ms = None;
            }
            let counters = Arc::new(Counters::default());
            let monitor = monitoring.participant(role.member_id());
            let context = Context {
                monitor: monitor.clone(),
                counters: Arc::clone(&counters),
                trust: trust.clone(),
                signer,
                clock: Arc::clone(&config.clock),
                checks,
                message_time: config.simulated_time,
            };
            let mut open_store = || -> anyhow::Result<Store> {
                let (store, _) = opened.remove(&role).unwrap_or_else(|| Err(anyhow::anyhow!("no store")))?;
                if config.database.is_none() {
                    // Every store's copy too: written only when the list changes.
                    let register = config.data_dir.join(PARTICIPANTS_FILE);
                    register_participants(&config.data_dir, &[role.name()])
                        .with_context(|| format!("cannot record the {} in {}", role.name(), register.display()))?;
                }
                Ok(store)
            };
            // A participant with state: its store and its outbox, retried on the operational clock.
            let mut stateful = || -> anyhow::Result<State> {
                let store = open_store()?;
                let outbox =
                    Outbox::new(store.clone(), Arc::new(SystemClock), config.retry.clone(), Arc::clone(&counters));
                Ok((store, outbox))
            };
            let (routes, mut names, state): (GrpcRoutes, Vec<&'static str>, Option<State>) = match role {
                Role::Individuals => {
                    let path = config.fixtures_dir.join("individuals.json");
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let records = Individuals::from_json(&text).with_context(|| format!("in {}", path.display()))?;
                    tracing::info!(persons = records.len(), "\"Individuals\" records loaded");
                    let receiver = Receiver::stateless(context, Arc::clone(&services));
                    let service = IndividualsServer::new(receiver, records).into_service();
                    (GrpcRoutes::new(service), vec!["egov.v1.IndividualsService"], None)
                }
                Role::Notary => {
                    let path = config.fixtures_dir.join("powers_of_attorney.json");
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let records = Powers::from_json(&text).with_context(|| format!("in {}", path.display()))?;
                    let receiver = Receiver::stateless(context, Arc::clone(&services));
                    let service = NotaryServer::new(receiver, records).into_service();
                    (GrpcRoutes::new(service), vec!["egov.v1.NotaryService"], None)
                }
                Role::Gateway => {
                    let (store, outbox) = stateful()?;
                    let inbox = |address: &str| -> anyhow::Result<InboxServiceClient<egov_runtime::GrpcChannel>> {
                        Ok(InboxServiceClient::new(lazy(address, tls, member)?)
                            .max_decoding_message_size(MAX_MESSAGE_BYTES)
                            .max_encoding_message_size(MAX_MESSAGE_BYTES))
                    };
                    // A role served by an external system: its inbox is the SHEP edge's.
                    let inbox_of = |role: Role, address: &str| match (&config.shep, &shep_grpc) {
                        (Some(shep), Some(edge)) if shep.external.contains_key(role.name()) => inbox(edge),
                        _ => inbox(address),
                    };
                    let recipients = Recipients {
                        individuals: IndividualsServiceClient::new(lazy(&topology.individuals, tls, member)?),
                        notary: NotaryServiceClient::new(lazy(&topology.notary, tls, member)?),
                        inboxes: [
                            (ids::REGIONAL.to_owned(), inbox_of(Role::Regional, &topology.regional)?),
                            (ids::SC_WORKSTATION.to_owned(), inbox_of(Role::Workstation, &topology.workstation)?),
                        ]
                        .into_iter()
                        .collect(),
                    };
                    let state = (store.clone(), Arc::clone(&outbox));
                    let receiver =
                        Receiver::stateful(context, Arc::clone(&services), store.clone(), Arc::clone(&outbox));
                    let (server, worker) = GatewayServer::new(receiver, recipients, store, outbox);
                    tasks.push(tokio::spawn(worker));
                    (GrpcRoutes::new(server.into_service()), vec!["egov.v1.GatewayService"], Some(state))
                }
                Role::Regional => {
                    let (store, outbox) = stateful()?;
                    let state = (store.clone(), Arc::clone(&outbox));
                    let receiver_context = context.clone();
                    let receiver =
                        Receiver::stateful(context, Arc::clone(&services), store.clone(), Arc::clone(&outbox));
                    let server = RegionalServer::new(receiver, Arc::clone(&config.definition), store)
                        .context("the process definition does not fit the regional gateway ARM")?;
                    let indexed = server.build_list_index().await.map_err(|status| {
                        anyhow::anyhow!("the ARM's list index could not be built: {}", status.message())
                    })?;
                    if indexed > 0 {
                        tracing::info!(registrations = indexed, "the ARM's list index built");
                    }
                    let courier = egov_runtime::outbox::ToGateway::new(
                        gateway_client(&topology.gateway, tls, member)?,
                        receiver_context,
                        egov_runtime::outbox::nothing_to_record,
                    );
                    tasks.push(tokio::spawn(outbox.run(Arc::new(courier))));
                    (
                        GrpcRoutes::new(server.staff_service()).add_service(server.inbox_service()),
                        vec!["egov.v1.RegionalGatewayService", "egov.v1.InboxService"],
                        Some(state),
                    )
                }
                Role::Shep => bail!("the SHEP edge is not a participant of the loop"),
                Role::Workstation => {
                    let (store, outbox) = stateful()?;
                    let state = (store.clone(), Arc::clone(&outbox));
                    let path = config.fixtures_dir.join("operators.json");
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let operators = Operators::from_json(&text).with_context(|| format!("in {}", path.display()))?;
                    let receiver =
                        Receiver::stateful(context, Arc::clone(&services), store.clone(), Arc::clone(&outbox));
                    if let Some(metrics) = &config.metrics {
                        metrics.report(Arc::new(egov_workstation::MetricsReport {
                            store: store.clone(),
                            definition: Arc::clone(&config.definition),
                            clock: Arc::clone(&config.clock),
                        }));
                    }
                    let (server, worker) = WorkstationServer::new(
                        receiver,
                        Arc::clone(&config.definition),
                        store,
                        outbox,
                        gateway_client(&topology.gateway, tls, member)?,
                        operators,
                    )
                    .context("the process definition does not fit the State Corporation workstation")?;
                    // A store written before the lists were indexed gets its list index, once.
                    let indexed = server.build_list_index().await.map_err(|status| {
                        anyhow::anyhow!("the workstation's list index could not be built: {}", status.message())
                    })?;
                    if indexed > 0 {
                        tracing::info!(applications = indexed, "the workstation's list index built");
                    }
                    tasks.push(tokio::spawn(worker));
                    (
                        GrpcRoutes::new(server.workstation_service()).add_service(server.inbox_service()),
                        vec!["egov.v1.WorkstationService", "egov.v1.InboxService"],
                        Some(state),
                    )
                }
            };
            // Its part of an application's evidence, where it keeps a log (`docs/envelope.md`).
            let routes = match &state {
                Some((store, _)) => {
                    names.push("egov.v1.EvidenceService");
                    let evidence = EvidenceServer::new(role.name(), member, store.clone(), log_signer.clone());
                    routes.add_service(evidence.into_service())
                }
                None => routes,
            };
            if let Some((store, _)) = &state {
                stores.push((role, store.clone()));
                logs.push(Log { member, store: store.clone(), signer: log_signer.clone(), cosigner: cosigner.clone() });
                tasks.push(tokio::spawn(integrate_and_publish(store.clone(), log_signer, config.checkpoints)));
                if let Some(metrics) = &config.metrics {
                    let gauges = egov_runtime::metrics::StoreGauges {
                        store: store.clone(),
                        path: config.data_dir.join(role.name()),
                        clock: Arc::new(SystemClock),
                        counters: Arc::clone(&counters),
                    };
                    metrics.watch(role.name(), Arc::new(gauges));
                }
            }
            // A participant with a log witnesses others' (`docs/storage.md`, "Witnesses").
            let routes = match &state {
                Some((store, _)) => {
                    names.push("egov.v1.WitnessService");
                    let witness = WitnessServer::new(store.clone(), trust.clone(), member, cosigner.clone());
                    routes.add_service(witness.into_service())
                }
                None => routes,
            };
            names.push("egov.v1.AdminService");
            let admin = AdminServer::new(state, Arc::clone(&config.clock), Arc::clone(&counters), monitor.clone());
            let routes = routes.add_service(admin.into_service());
            let routes = match &config.routes_hook {
                Some(hook) => (hook.0)(role, routes),
                None => routes,
            };
            let faults = FaultLayer::new(
                config.faults.get(&role).cloned().unwrap_or_default(),
                role.faulty_paths().iter().map(|path| (*path).to_owned()).collect(),
                config.fault_seed.wrapping_add(role as u64),
                counters,
            );
            let server_tls = match tls {
                Some(tls) => {
                    Some(tls.server(member).with_context(|| format!("the {}'s TLS certificate", role.name()))?)
                }
                None => None,
            };
            let (shutdown, mut stop) = watch::channel(false);
            let name = role.name();
            let observe = egov_runtime::observe::ObserveLayer::new(config.metrics.clone(), monitor, name);
            let serving = serving.remove(&role);
            let server = tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.changed().await;
                };
                let served = egov_runtime::server::serve_following(
                    listener, routes, &names, faults, observe, server_tls, serving, signal,
                );
                if let Err(error) = served.await {
                    tracing::error!(participant = name, %error, "server stopped");
                }
            });
            servers.push((role, shutdown, server));
        }
        let shep = match (&config.shep, shep_listeners, shep_tables) {
            (Some(settings), Some((http, grpc)), Some((senders, shep_services))) => {
                let addresses = (http.local_addr()?.to_string(), grpc.local_addr()?.to_string());
                let (store, had_data) =
                    opened.remove(&Role::Shep).unwrap_or_else(|| Err(anyhow::anyhow!("no store")))?;
                if !had_data {
                    register_participants(&config.data_dir, &[Role::Shep.name()])
                        .with_context(|| format!("cannot record the SHEP edge in {}", config.data_dir.display()))?;
                }
                stores.push((Role::Shep, store.clone()));
                let edge = ShepStart {
                    config: &config,
                    settings,
                    trust: &trust,
                    monitoring: &monitoring,
                    topology: &topology,
                    serving: serving.remove(&Role::Shep),
                };
                let (edge_servers, edge_tasks) =
                    edge.start(store, http, grpc, Arc::clone(&services), senders, shep_services).await?;
                servers.extend(edge_servers);
                tasks.extend(edge_tasks);
                Some(addresses)
            }
            _ => None,
        };
        tasks.push(tokio::spawn(watch_trust(config.keys.clone(), trust.clone(), config.metrics.clone())));
        let every = std::time::Duration::from_millis(config.checkpoints.every_ms.max(200));
        let witnessing = witnessing(&config, &topology, &logs, &trust)?;
        if config.checkpoints.every_ms > 0 {
            tasks.push(tokio::spawn(Arc::clone(&witnessing).run(every)));
        }
        Ok(Stack {
            shep,
            topology,
            keys: config.keys,
            trust,
            roles: config.roles,
            servers,
            tasks,
            stores,
            logs,
            witnessing,
            metrics: config.metrics,
            monitoring,
        })
    }

    /// Re-reads the trust registry and puts it in force; on error the one in force stays.
    pub fn reload_trust(&self) -> anyhow::Result<usize> {
        let trust = self.trust.reload(|| self.keys.trust());
        if let Some(metrics) = &self.metrics {
            metrics.trust_reloaded(trust.is_ok());
        }
        Ok(trust?.members().len())
    }

    /// The addresses, with the ports actually bound for the roles started here.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }

    /// The SHEP edge's HTTP address (`http://ADDR/bip-sync-wss-gost/`), when it runs.
    pub fn shep_address(&self) -> Option<&str> {
        self.shep.as_ref().map(|(http, _)| http.as_str())
    }

    /// The SHEP edge's gRPC address (its inbox and admin service), when it runs.
    pub fn shep_grpc_address(&self) -> Option<&str> {
        self.shep.as_ref().map(|(_, grpc)| grpc.as_str())
    }

    /// Stops the servers and the workers at once, and waits for them; then each log's last checkpoint.
    pub async fn stop(self) {
        for (_, shutdown, _) in &self.servers {
            let _ = shutdown.send(true);
        }
        for task in self.servers.iter().map(|(_, _, task)| task).chain(&self.tasks) {
            task.abort();
        }
        for task in self.servers.into_iter().map(|(_, _, task)| task).chain(self.tasks) {
            let _ = task.await;
        }
        // What was committed, in a last checkpoint of each log, cosigned by the witnesses.
        for log in &self.logs {
            if let Err(error) = log.store.publish_checkpoint(&log.signer).await {
                tracing::warn!(origin = log.signer.name(), %error, "the last checkpoint was not published");
            }
        }
        // A witness in another process that does not answer does not hold the stop up for long.
        let _ = tokio::time::timeout(FINAL_WITNESS_ROUND, self.witnessing.round()).await;
        self.monitoring.finish();
    }

    /// Stops gracefully: each participant, in `DRAIN_ORDER`, stops accepting
    /// calls and answers those in flight, all within `within` (what is still
    /// running then is cut); then the workers stop (a delivery they were
    /// making is made again after a restart, and answered once), and every
    /// store is made durable, the unflushed bookkeeping included.
    pub async fn drain(self, within: std::time::Duration) -> Drained {
        let deadline = tokio::time::Instant::now() + within;
        let mut servers = self.servers;
        servers.sort_by_key(|(role, _, _)| DRAIN_ORDER.iter().position(|r| r == role));
        let mut cut = Vec::new();
        for (role, shutdown, mut server) in servers {
            let _ = shutdown.send(true);
            if tokio::time::timeout_at(deadline, &mut server).await.is_err() {
                tracing::warn!(participant = role.name(), "calls still in flight when the drain time was up: cut");
                server.abort();
                let _ = server.await;
                cut.push(role);
            }
        }
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let mut unsettled = Vec::new();
        // What was committed, in a last checkpoint of each log, cosigned by the witnesses.
        for log in &self.logs {
            if let Err(error) = log.store.publish_checkpoint(&log.signer).await {
                tracing::warn!(origin = log.signer.name(), %error, "the last checkpoint was not published");
            }
        }
        // A witness in another process that does not answer does not hold the stop up for long.
        let _ = tokio::time::timeout(FINAL_WITNESS_ROUND, self.witnessing.round()).await;
        for (role, store) in self.stores {
            if let Err(error) = store.settle().await {
                unsettled.push((role, error.to_string()));
            }
        }
        self.monitoring.finish();
        Drained { cut, unsettled }
    }
}

/// A participant's store, opened and checked, and whether it held data before.
type Opened = anyhow::Result<(Store, bool)>;

/// `egov serve --verify-all`: every frame, the whole Merkle tree, every signature
/// and the index against the log, before the participant serves.
fn verify_all(store: &Store, config: &StackConfig, role: Role) -> anyhow::Result<()> {
    let trust = config.keys.trust()?;
    let started = std::time::Instant::now();
    let checked = check::check_store(store, &trust, true, role.member_id())?;
    if !checked.problems.is_empty() {
        bail!(
            "the store of the {} is damaged ({} problems found by --verify-all): {}",
            role.name(),
            checked.problems.len(),
            checked.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    tracing::info!(
        role = role.name(),
        entries = checked.entries,
        signatures = checked.signatures,
        seconds = started.elapsed().as_secs_f64(),
        "the whole store checked"
    );
    Ok(())
}

/// The key the health probe reads: never written, so the read is one indexed look-up.
const HEALTH_PROBE_KEY: &str = "health/probe";

/// How often a participant on PostgreSQL checks that its database answers.
const HEALTH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Reports whether `role`'s database answers, every [`HEALTH_PERIOD`]: its
/// health says NOT_SERVING while it does not (a load balancer then routes
/// around the replica), SERVING once it does again.
async fn watch_database(store: Store, role: Role, report: watch::Sender<bool>) {
    let mut ticker = tokio::time::interval(HEALTH_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let probe = store.clone();
        let answered = tokio::task::spawn_blocking(move || probe.get::<u8>(HEALTH_PROBE_KEY).map(|_| ()))
            .await
            .unwrap_or_else(|_| Err(egov_store::StoreError::Stopped));
        let reachable = answered.is_ok();
        if report.send_replace(reachable) != reachable {
            match answered {
                Ok(()) => tracing::warn!(participant = role.name(), "the database answers again: SERVING"),
                Err(error) => {
                    tracing::warn!(participant = role.name(), %error, "the database does not answer: NOT_SERVING")
                }
            }
        }
    }
}

/// The host's name, for a replica's identity.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Who a replica of `role` is in its claims on outbox items: the settings'
/// identity, else `HOST/ADDRESS` (the address it listens on). It survives a
/// restart on the same host and port, and two replicas that run at the same
/// time cannot share it (they cannot listen on the same address).
fn replica_identity(config: &StackConfig, listening: &BTreeMap<Role, String>, role: Role) -> Option<String> {
    match &config.postgres.replica {
        Some(identity) => Some(identity.clone()),
        None => listening.get(&role).map(|address| format!("{}/{address}", host_name())),
    }
}

/// The first pause before a start tries an unreachable database again, doubled each time up to the last.
const DATABASE_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
const DATABASE_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(10);

/// Returns once the database at `url` answers, trying again while it does not
/// (from [`DATABASE_FIRST_PAUSE`], doubling, up to [`DATABASE_MAX_PAUSE`]), saying so.
async fn wait_for_database(url: &str) {
    let mut pause = DATABASE_FIRST_PAUSE;
    loop {
        let probe = url.to_owned();
        let answered = tokio::task::spawn_blocking(move || egov_store::PostgresBackend::exists(&probe, "public"))
            .await
            .unwrap_or(Err(egov_store::StoreError::Stopped));
        match answered {
            Err(error @ egov_store::StoreError::Unavailable { .. }) => {
                tracing::warn!(
                    database = %egov_store::redact(url),
                    %error,
                    retry_in_ms = pause.as_millis() as u64,
                    "the database cannot be reached: waiting for it"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(DATABASE_MAX_PAUSE);
            }
            // Answered (what else is wrong, opening the stores says).
            _ => return,
        }
    }
}

/// Opens `role`'s schema; while the database cannot be reached, waits and tries
/// again (from [`DATABASE_FIRST_PAUSE`], doubling, up to [`DATABASE_MAX_PAUSE`]),
/// saying so, until it can: a replica started before its database comes up once it does.
fn open_waiting(
    url: &str,
    role: Role,
    settings: &egov_store::PostgresSettings,
) -> Result<Store, egov_store::StoreError> {
    let mut pause = DATABASE_FIRST_PAUSE;
    loop {
        match Store::open_postgres_with(url, role.name(), settings) {
            Err(error @ egov_store::StoreError::Unavailable { .. }) => {
                tracing::warn!(
                    participant = role.name(),
                    database = %egov_store::redact(url),
                    %error,
                    retry_in_ms = pause.as_millis() as u64,
                    "the database cannot be reached: waiting for it"
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(DATABASE_MAX_PAUSE);
            }
            opened => return opened,
        }
    }
}

/// Opens the stores of the participants with state, each on its own thread.
fn open_stores(config: &StackConfig, listening: &BTreeMap<Role, String>) -> anyhow::Result<BTreeMap<Role, Opened>> {
    let stateful: Vec<Role> = config
        .roles
        .iter()
        .copied()
        .filter(|role| matches!(role, Role::Gateway | Role::Regional | Role::Workstation))
        .chain(config.shep.as_ref().map(|_| Role::Shep))
        .collect();
    if let Some(url) = &config.database {
        check_store_url(url)?;
        let shown = egov_store::redact(url);
        let open = |role: Role| -> Opened {
            let what_to_do = || format!("the {}'s state in the database at {shown}", role.name());
            let settings = egov_store::PostgresSettings {
                replica: replica_identity(config, listening, role),
                ..config.postgres.clone()
            };
            let store = open_waiting(url, role, &settings).with_context(what_to_do)?;
            // A damaged chain is refused at start, never served.
            store.verify(Some(START_CHECK_ENTRIES)).with_context(what_to_do)?;
            if config.verify_all {
                verify_all(&store, config, role)?;
            }
            // Registered in the database itself: there is no participants file to keep.
            Ok((store, true))
        };
        return Ok(stateful.iter().map(|&role| (role, open(role))).collect());
    }
    let registered = registered_participants(&config.data_dir)?;
    let open = |role: Role| -> Opened {
        let path = config.data_dir.join(role.name());
        let register = config.data_dir.join(PARTICIPANTS_FILE);
        let had_data = registered.contains(role.name());
        if had_data && !store_exists(&path) {
            bail!(
                "the store of the {} in {} is missing, though it has stored data before ({} or a store's \
                 copy of it lists it): restore the directory from a backup; to start it empty instead, \
                 losing its state, remove its line from {} and from each {}",
                role.name(),
                path.display(),
                register.display(),
                register.display(),
                config.data_dir.join("ROLE").join(PARTICIPANTS_FILE).display()
            );
        }
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let what_to_do = || {
            format!(
                "the store of the {} in {} is damaged or unreadable: restore the directory from a \
                 backup; if only sled's index is damaged and the log is whole, rebuild the index from \
                 the log with `egov store rebuild-index {} --data {}` (`egov store check` tells which)",
                role.name(),
                path.display(),
                role.name(),
                config.data_dir.display()
            )
        };
        let store = Store::open(&path, config.cache_bytes).with_context(what_to_do)?;
        // A damaged store is refused at start, never served.
        store.verify(Some(START_CHECK_ENTRIES)).with_context(what_to_do)?;
        if config.verify_all {
            verify_all(&store, config, role)?;
        }
        Ok((store, had_data))
    };
    Ok(std::thread::scope(|scope| {
        let opening: Vec<_> = stateful.iter().map(|&role| (role, scope.spawn(move || open(role)))).collect();
        opening
            .into_iter()
            .map(|(role, thread)| {
                let opened = thread
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("opening the store of the {} panicked", role.name())));
                (role, opened)
            })
            .collect()
    }))
}

fn gateway_client(
    address: &str,
    tls: Option<&TlsDir>,
    member: &str,
) -> anyhow::Result<GatewayServiceClient<egov_runtime::GrpcChannel>> {
    Ok(GatewayServiceClient::new(lazy(address, tls, member)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Reloads the trust registry whenever its file changes (checked every second).
async fn watch_trust(keys: KeyDir, trust: SharedTrust, metrics: Option<Arc<egov_runtime::metrics::Metrics>>) {
    let path = keys.path().join("trust.toml");
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let now = modified(&path);
        if now == last {
            continue;
        }
        last = now;
        let reloaded = trust.reload(|| keys.trust());
        if let Some(metrics) = &metrics {
            metrics.trust_reloaded(reloaded.is_ok());
        }
        match reloaded {
            Ok(registry) => tracing::info!(members = registry.members().len(), "trust registry reloaded"),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "trust registry not reloaded; the previous one stays")
            }
        }
    }
}

/// Whether `definition` has every step each participant that runs it needs:
/// what the participants check when they start.
pub fn check_definition(definition: &Definition) -> Result<(), egov_regulation::DefinitionError> {
    egov_workstation::check_definition(definition)?;
    egov_regional::check_definition(definition)
}

/// The SHEP edge's senders (`keys/shep/senders.toml`) and its services (the
/// settings' file, else the embedded table), checked against the table of services.
fn shep_tables(
    config: &StackConfig,
    settings: &egov_shep::EdgeSettings,
    services: &Services,
) -> anyhow::Result<(egov_shep::senders::Senders, egov_shep::services::ShepServices)> {
    let senders = egov_shep::senders::Senders::load(config.keys.path())?;
    if senders.all().is_empty() {
        tracing::warn!(
            file = %egov_shep::senders::senders_path(config.keys.path()).display(),
            "the SHEP face has no senders: every request is refused shep.unknown_sender (add one with `egov shep sender add`)"
        );
    }
    let shep_services = match &settings.services_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            egov_shep::services::ShepServices::from_toml(&text, services)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => egov_shep::services::ShepServices::from_toml(egov_shep::services::DEFAULT_SHEP_SERVICES, services)?,
    };
    Ok((senders, shep_services))
}

/// What the SHEP edge is started with.
struct ShepStart<'a> {
    config: &'a StackConfig,
    settings: &'a egov_shep::EdgeSettings,
    trust: &'a SharedTrust,
    monitoring: &'a Arc<Monitoring>,
    topology: &'a Topology,
    /// Whether its database answers (on PostgreSQL): its gRPC inbox's health follows it.
    serving: Option<watch::Receiver<bool>>,
}

type Servers = Vec<(Role, watch::Sender<bool>, JoinHandle<()>)>;

impl ShepStart<'_> {
    /// The edge: a context and a gateway client (as that member, over TLS when
    /// on) for every member its senders are or sign for, its HTTP server, its
    /// gRPC inbox and admin service, and its outbox worker.
    async fn start(
        self,
        store: Store,
        http: TcpListener,
        grpc: TcpListener,
        services: Arc<Services>,
        senders: egov_shep::senders::Senders,
        shep_services: egov_shep::services::ShepServices,
    ) -> anyhow::Result<(Servers, Vec<JoinHandle<()>>)> {
        let config = self.config;
        let tls = config.tls.as_ref();
        let counters = Arc::new(Counters::default());
        let monitor = self.monitoring.participant(Role::Shep.name());
        let mut checks = config.checks.clone();
        if config.simulated_time {
            checks.freshness_window_ms = None;
        }
        let mut members = std::collections::HashMap::new();
        for member in senders.members() {
            let signer = config
                .keys
                .signer_in(&self.trust.current(), &member)
                .with_context(|| format!("the SHEP edge signs as {member} (keys/shep/senders.toml)"))?;
            let context = Context {
                monitor: monitor.clone(),
                counters: Arc::clone(&counters),
                trust: self.trust.clone(),
                signer,
                clock: Arc::clone(&config.clock),
                checks: checks.clone(),
                message_time: config.simulated_time,
            };
            let gateway = gateway_client(&self.topology.gateway, tls, &member)?;
            members.insert(member, egov_shep::Fronted { context, gateway });
        }
        let outbox = Outbox::new(store.clone(), Arc::new(SystemClock), config.retry.clone(), Arc::clone(&counters));
        let edge = egov_shep::Edge::new(egov_shep::EdgeParts {
            store: store.clone(),
            outbox: Arc::clone(&outbox),
            services,
            shep_services,
            senders,
            members,
            settings: self.settings.clone(),
            clock: Arc::clone(&config.clock),
        });
        let mut servers = Vec::new();
        let (shutdown, mut stop) = watch::channel(false);
        let served = Arc::clone(&edge);
        servers.push((
            Role::Shep,
            shutdown,
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.changed().await;
                };
                if let Err(error) = egov_shep::edge::serve(http, served, signal).await {
                    tracing::error!(participant = "shep", %error, "the SHEP endpoints stopped");
                }
            }),
        ));
        let admin = AdminServer::new(
            Some((store, Arc::clone(&outbox))),
            Arc::clone(&config.clock),
            Arc::clone(&counters),
            monitor.clone(),
        );
        let routes = GrpcRoutes::new(edge.inbox_service()).add_service(admin.into_service());
        let names = vec!["egov.v1.InboxService", "egov.v1.AdminService"];
        let faults = FaultLayer::new(
            config.faults.get(&Role::Shep).cloned().unwrap_or_default(),
            Role::Shep.faulty_paths().iter().map(|path| (*path).to_owned()).collect(),
            config.fault_seed.wrapping_add(Role::Shep as u64),
            counters,
        );
        // The edge's inbox is called by the gateway: over TLS it presents the
        // certificate of a member it fronts (the first external one's).
        let server_tls = match tls {
            Some(tls) => {
                let member = self
                    .settings
                    .external
                    .keys()
                    .find_map(|role| egov_shep::asynchronous::role_member(role))
                    .unwrap_or(ids::SC_WORKSTATION);
                Some(tls.server(member).with_context(|| format!("the SHEP edge's TLS certificate (as {member})"))?)
            }
            None => None,
        };
        let observe = egov_runtime::observe::ObserveLayer::new(config.metrics.clone(), monitor, Role::Shep.name());
        let serving = self.serving;
        let (shutdown, mut stop) = watch::channel(false);
        servers.push((
            Role::Shep,
            shutdown,
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.changed().await;
                };
                let served = egov_runtime::server::serve_following(
                    grpc, routes, &names, faults, observe, server_tls, serving, signal,
                );
                if let Err(error) = served.await {
                    tracing::error!(participant = "shep", %error, "the SHEP edge's inbox stopped");
                }
            }),
        ));
        let worker = tokio::spawn(outbox.run(Arc::new(egov_shep::asynchronous::EdgeCourier::new(edge))));
        Ok((servers, vec![worker]))
    }
}
