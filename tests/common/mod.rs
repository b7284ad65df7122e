//! A whole stack on loopback for one test: its own keys, stores and ports.
#![allow(dead_code, clippy::unwrap_used)]

pub mod driver;
pub mod raw;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use egov_cli::stack::{Stack, StackConfig};
use egov_client::{
    ApplicationPlan, DocumentPlan, Driven, OperatorClient, Patience, RepresentativePlan, RouteError, StaffClient,
};
use egov_envelope::{Signer, TrustRegistry};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::{Application, GetMessagesRequest, LoggedMessage};
use egov_regulation::Definition;
use egov_runtime::{Clock, KeyDir, SystemClock, Topology, ids};

/// Five addresses on loopback, each on a port that was free (below the ephemeral range).
pub fn free_topology() -> Topology {
    Topology::on_ports("127.0.0.1", [free_port(), free_port(), free_port(), free_port(), free_port()])
}

/// Waits until `probe` gives a value (within 30 s; it is tried every 20 ms).
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Creates a key directory valid from a day ago.
pub fn init_keys(dir: &std::path::Path) -> KeyDir {
    let keys = KeyDir::new(dir);
    let valid_from = chrono::DateTime::from_timestamp_millis(SystemClock.now_ms() - 86_400_000).unwrap();
    keys.init(ids::DEFAULT_MEMBERS, valid_from).unwrap();
    keys
}

/// The backend the tests' stacks keep their state in: `EGOV_TEST_STORE=postgres` runs
/// them on a throwaway PostgreSQL server each (tests/run.sh runs the route, the replays
/// and the bad-input tests so too); otherwise the embedded store.
pub fn test_database() -> Option<(egov_store::postgres_server::PostgresServer, String)> {
    match std::env::var("EGOV_TEST_STORE").as_deref() {
        Ok("postgres") => {
            let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
            let url = server.database("egov").unwrap();
            Some((server, url))
        }
        Ok("sled") | Err(_) => None,
        Ok(other) => panic!("EGOV_TEST_STORE is postgres or sled, not {other:?}"),
    }
}

pub struct Harness {
    pub temp: tempfile::TempDir,
    pub keys: KeyDir,
    pub trust: TrustRegistry,
    pub definition: Arc<Definition>,
    pub stack: Stack,
    /// The PostgreSQL server the stack keeps its state in, if any (stopped after the stack).
    pub database: Option<(egov_store::postgres_server::PostgresServer, String)>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// A harness whose stack's configuration `configure` changes first.
    pub async fn start_with(configure: impl FnOnce(&mut StackConfig)) -> Harness {
        let temp = tempfile::tempdir().unwrap();
        let keys = init_keys(&temp.path().join("keys"));
        let mut config = StackConfig::local(temp.path().join("data"), keys.clone(), fixtures_dir());
        let database = test_database();
        config.database = database.as_ref().map(|(_, url)| url.clone());
        configure(&mut config);
        let definition = Arc::clone(&config.definition);
        let stack = Stack::start(config).await.unwrap();
        let trust = keys.trust().unwrap();
        Harness { temp, keys, trust, definition, stack, database }
    }

    pub fn topology(&self) -> &Topology {
        self.stack.topology()
    }

    pub fn signer(&self, member_id: &str) -> Signer {
        self.keys.signer_in(&self.trust, member_id).unwrap()
    }

    pub async fn operator(&self) -> OperatorClient {
        let channel = Topology::channel(&self.topology().workstation).unwrap();
        let mut operator = OperatorClient::new(channel, self.signer("operator-1"), Arc::new(SystemClock));
        operator.login("operator-1", "operator-1-password").await.unwrap();
        operator
    }

    pub fn staff(&self) -> StaffClient {
        StaffClient::new(Topology::channel(&self.topology().regional).unwrap(), Arc::new(SystemClock))
    }

    pub fn staff_keys(&self) -> HashMap<String, Signer> {
        [
            ("provider-office", "office-1"),
            ("provider-specialist", "specialist-1"),
            ("provider-executor", "executor-1"),
            ("provider-head", "head-1"),
        ]
        .into_iter()
        .map(|(role, member)| (role.to_owned(), self.signer(member)))
        .collect()
    }

    pub async fn drive(&self, application_id: &str, plan: &ApplicationPlan) -> Result<Application, RouteError> {
        Ok(self.drive_with_result(application_id, plan).await?.application)
    }

    pub async fn drive_with_result(&self, application_id: &str, plan: &ApplicationPlan) -> Result<Driven, RouteError> {
        let operator = self.operator().await;
        let (staff, staff_keys) = (self.staff(), self.staff_keys());
        let route = egov_client::Route {
            definition: &self.definition,
            operator: &operator,
            staff: &staff,
            staff_keys: &staff_keys,
            patience: Patience::default(),
            pacer: &egov_client::RealTime,
        };
        egov_client::drive(&route, application_id, plan).await
    }

    /// Every message the gateway logged for one application.
    pub async fn gateway_log(&self, correlation_id: &str) -> Vec<LoggedMessage> {
        let mut gateway = GatewayServiceClient::new(Topology::channel(&self.topology().gateway).unwrap());
        gateway
            .get_messages(GetMessagesRequest {
                correlation_id: correlation_id.to_owned(),
                recipient_id: String::new(),
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

pub fn documents(kinds: &[&str]) -> Vec<DocumentPlan> {
    kinds
        .iter()
        .map(|kind| DocumentPlan {
            kind: (*kind).to_owned(),
            title: String::new(),
            pages: 1,
            content: format!("scan of {kind}"),
        })
        .collect()
}

/// An application in person with the required documents, approved.
pub fn in_person(iin: &str) -> ApplicationPlan {
    ApplicationPlan {
        applicant_iin: iin.to_owned(),
        representative: None,
        documents: documents(&["application-form", "identity-document"]),
        decision: egov_client::Decision::Approve,
        refusal_ground: String::new(),
        result_decision: egov_client::Decision::Approve,
        result_refusal_ground: String::new(),
    }
}

/// An application through a representative.
pub fn represented(iin: &str, attorney: &str, notarised: bool, number: &str) -> ApplicationPlan {
    ApplicationPlan {
        representative: Some(RepresentativePlan {
            iin: attorney.to_owned(),
            notarised,
            number: number.to_owned(),
            issued_on: String::new(),
        }),
        documents: documents(&["application-form", "identity-document", "power-of-attorney"]),
        ..in_person(iin)
    }
}

pub fn path(application: &Application) -> Vec<&str> {
    application.path.iter().map(|step| step.step_id.as_str()).collect()
}

/// A port for a participant that must keep it across restarts, free now. It
/// is taken from below the ephemeral range (32768-60999 on Linux), where the
/// OS picks the ports of outgoing connections: one of those could otherwise
/// take a port between this check and the participant's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1000) as u16 * 10;
    for _ in 0..12_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

/// An `egov serve` child process that said `ready`.
pub struct Served {
    pub child: std::process::Child,
    /// What it printed up to and with `ready`.
    pub said: Vec<String>,
    /// The lines it prints after, until its output closes.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    /// Spawns `command` (an `egov serve`, its stdout piped here) and waits up to 30 s for `ready`.
    pub fn start(command: std::process::Command) -> Served {
        Served::try_start(command, std::time::Duration::from_secs(30))
            .unwrap_or_else(|said| panic!("egov serve did not become ready: {said}"))
    }

    /// Spawns `command` (an `egov serve`, its stdout piped here) and waits up to
    /// `within` for `ready`: the server, or, if it exits first, all it said (its
    /// stderr too, where the caller piped it). Killed if it does neither in time.
    pub fn try_start(mut command: std::process::Command, within: std::time::Duration) -> Result<Served, String> {
        use std::io::{BufRead as _, Read as _};
        let mut child = command.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        // A piped stderr is drained as it comes, so a server that runs on never blocks on it.
        let stderr = child.stderr.take().map(|mut stderr| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
        });
        let mut said = Vec::new();
        loop {
            match lines.recv_timeout(within) {
                Ok(line) => {
                    let ready = line == "ready";
                    said.push(line);
                    if ready {
                        return Ok(Served { child, said, lines });
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    let stderr = stderr.and_then(|reader| reader.join().ok()).unwrap_or_default();
                    return Err(format!("{}\n{stderr}", said.join("\n")));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("neither ready nor stopped within {within:?}: {}", said.join("\n")));
                }
            }
        }
    }

    /// Sends SIGTERM and waits for the process: whether it exited 0, and
    /// everything it printed after `ready`.
    pub fn terminate(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let rest = std::iter::from_fn(|| self.lines.recv_timeout(std::time::Duration::from_secs(10)).ok()).collect();
        (status.success(), rest)
    }
}

impl Drop for Served {
    /// A test that fails half-way leaves no child behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An OTLP trace collector serving on a free port, on a runtime of its own thread.
pub struct TestCollector {
    pub endpoint: String,
    collector: egov_runtime::trace::Collector,
}

impl TestCollector {
    /// The spans it received.
    pub fn spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        self.collector.spans()
    }
}

/// Starts a [`TestCollector`].
pub fn collector() -> TestCollector {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let collector = egov_runtime::trace::Collector::default();
    let serving = collector.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            serving.serve(tokio::net::TcpListener::from_std(listener).unwrap());
            std::future::pending::<()>().await
        });
    });
    TestCollector { endpoint, collector }
}

/// A stack's configuration on `topology` with only `roles`, whose outboxes try
/// three times, quickly: a delivery to a participant that is not started is
/// parked as an incident within a second (the incident tests).
pub fn quick_incidents(
    data: &std::path::Path,
    keys: &KeyDir,
    topology: &Topology,
    roles: &[egov_cli::stack::Role],
) -> StackConfig {
    let mut config = StackConfig::local(data.to_owned(), keys.clone(), fixtures_dir());
    config.topology = topology.clone();
    config.roles = roles.iter().copied().collect();
    config.retry = egov_runtime::outbox::RetryPolicy {
        first_delay_ms: 10,
        max_delay_ms: 50,
        max_attempts: 3,
        attempt_timeout: std::time::Duration::from_secs(1),
    };
    config
}
