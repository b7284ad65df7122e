//! Replicas on PostgreSQL: two processes of each stateful participant (the
//! workstation, the gateway, the regional ARM) share one database while
//! applications travel the route. One replica at a time is SIGKILLed and
//! started again, 30 times. At the end every application reached its
//! expected outcome, none was registered or handed over twice, and
//! `egov audit verify --store` passes on the one chain of each participant.
//!
//! And the database itself killed mid-load: the participants refuse with
//! `store.unavailable` while it is down, acknowledge nothing they could not
//! commit, and go on by themselves once it is back.
//!
//! `EGOV_CRASH_SEED=N` replays a run; the seed is printed at the start.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::driver::{Drivers, Random, assert_handed_out_once, assert_registered_once, seed};
use egov_client::{OperatorClient, StaffClient};
use egov_runtime::{SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const APPLICATIONS: usize = 24;
const KILLS: usize = 30;

/// Where every participant is: two addresses for each stateful one.
struct Addresses {
    workstation: [String; 2],
    gateway: [String; 2],
    regional: [String; 2],
    individuals: String,
    notary: String,
}

fn address() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

impl Addresses {
    fn free() -> Addresses {
        Addresses {
            workstation: [address(), address()],
            gateway: [address(), address()],
            regional: [address(), address()],
            individuals: address(),
            notary: address(),
        }
    }

    /// The list of a participant's replicas, replica `first` first (where a replica run
    /// with this list listens).
    fn list(pair: &[String; 2], first: usize) -> String {
        format!("{},{}", pair[first], pair[1 - first])
    }

    /// The address flags of replica `index` of `role` (or of a client, for `role` "").
    fn flags(&self, role: &str, index: usize) -> Vec<String> {
        let own = |name: &str| if name == role { index } else { 0 };
        vec![
            "--workstation".into(),
            Addresses::list(&self.workstation, own("workstation")),
            "--gateway".into(),
            Addresses::list(&self.gateway, own("gateway")),
            "--regional".into(),
            Addresses::list(&self.regional, own("regional")),
            "--individuals".into(),
            self.individuals.clone(),
            "--notary".into(),
            self.notary.clone(),
        ]
    }
}

/// One process of the test: what it was started with, to start it again.
struct Process {
    name: String,
    args: Vec<String>,
    child: Child,
}

impl Process {
    /// `egov ARGS serve ...` that said `ready`.
    fn start(name: String, args: Vec<String>) -> Process {
        let child = Process::spawn(&name, &args);
        Process { name, args, child }
    }

    fn spawn(name: &str, args: &[String]) -> Child {
        let log =
            std::env::temp_dir().join(format!("egov-replica-{}-{}.log", std::process::id(), name.replace(' ', "-")));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(EGOV).args(args).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready, is_ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready.send(());
                }
            }
        });
        if is_ready.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not become ready: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        child
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Process::spawn(&self.name, &self.args);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_args(addresses: &Addresses, roles: &str, index: usize, store: Option<&str>, dir: &Path) -> Vec<String> {
    let mut args = addresses.flags(roles, index);
    // No console: the default one's fixed port is another test's too.
    args.extend([
        "serve".into(),
        "--console".into(),
        "off".into(),
        "--shep".into(),
        "off".into(),
        "--roles".into(),
        roles.into(),
        "--keys".into(),
    ]);
    args.push(dir.join("keys").display().to_string());
    args.push("--fixtures".into());
    args.push(common::fixtures_dir().display().to_string());
    args.push("--data".into());
    args.push(dir.join(format!("data-{roles}-{index}")).display().to_string());
    if let Some(url) = store {
        args.extend(["--store".into(), url.into()]);
    }
    args
}

/// Two replicas of each stateful participant on the database at `url` and the registries, all
/// started, and the replay drivers started on them: `applications` applications at once, each
/// through the clients that reach a participant at both of its replicas.
struct Cluster {
    _registries: Process,
    replicas: Vec<Process>,
    drivers: Drivers,
}

impl Cluster {
    async fn start(url: &str, dir: &Path, name: &str, applications: usize, random: &mut Random) -> Cluster {
        let keys = common::init_keys(&dir.join("keys"));
        let trust = keys.trust().unwrap();
        let addresses = Addresses::free();
        let registries =
            Process::start("registries".into(), serve_args(&addresses, "individuals,notary", 0, None, dir));
        // Started one after the other: the first of each role migrates its schema.
        let mut replicas: Vec<Process> = Vec::new();
        for role in ["regional", "gateway", "workstation"] {
            for index in 0..2 {
                let args = serve_args(&addresses, role, index, Some(url), dir);
                replicas.push(Process::start(format!("{role} {index}"), args));
            }
        }
        // The clients reach each participant at both of its replicas.
        let client_flags = addresses.flags("", 0);
        let (workstation, regional) = (&client_flags[1], &client_flags[5]);
        let clock = Arc::new(SystemClock);
        let mut operator = OperatorClient::new(
            Topology::channel(workstation).unwrap(),
            keys.signer_in(&trust, "operator-1").unwrap(),
            clock.clone(),
        );
        operator.login("operator-1", "operator-1-password").await.unwrap();
        let staff = StaffClient::new(Topology::channel(regional).unwrap(), clock);
        let staff_keys = Arc::new(egov_client::staff_keys(&keys, &trust).unwrap());
        let drivers = Drivers::start(name, applications, random, &operator, &staff, &staff_keys);
        Cluster { _registries: registries, replicas, drivers }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_survive_sigkill_one_at_a_time_and_each_application_happens_once() {
    let seed = seed("replica kill test");
    let mut random = Random(seed);
    let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("replicas").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let Cluster { _registries, mut replicas, drivers } =
        Cluster::start(&url, temp.path(), &format!("replica-{seed}"), APPLICATIONS, &mut random).await;
    let acknowledged = Arc::clone(&drivers.acknowledged);

    // The killer: one replica at a time, at random moments, started again at once.
    let mut killed: HashMap<String, usize> = HashMap::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(100 + random.below(300))).await;
        let replica = &mut replicas[random.below(6) as usize];
        *killed.entry(replica.name.clone()).or_default() += 1;
        tokio::task::block_in_place(|| replica.kill_and_restart());
    }
    let expected = drivers.finish(seed).await;
    eprintln!("kills: {killed:?}; {} submissions acknowledged", acknowledged.load(Ordering::SeqCst));
    drop(replicas);

    // Each application registered once at the regional ARM, and handed out once.
    assert_registered_once(&egov_store::Store::open_postgres(&url, "regional").unwrap(), &expected, seed);
    assert_handed_out_once(&egov_store::Store::open_postgres(&url, "workstation").unwrap(), seed);
    // One chain per participant, whichever replica wrote, and every signature in it.
    let audit = Command::new(EGOV)
        .args(["audit", "verify", "--store", &url, "--keys"])
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "seed {seed}: {said}");
    for participant in ["gateway", "regional", "workstation"] {
        assert!(said.contains(&format!("{participant}: ")) && said.contains("Merkle tree intact"), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_killed_mid_load_nothing_is_acknowledged_that_was_not_committed_and_the_participants_recover()
{
    let seed = seed("database kill test");
    let mut random = Random(seed);
    let mut server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("killed").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let addresses = Addresses::free();
    // Every participant in one process, one replica each.
    let all = "individuals,notary,gateway,regional,workstation";
    let _stack = Process::start("stack".into(), serve_args(&addresses, all, 0, Some(&url), temp.path()));
    let clock = Arc::new(SystemClock);
    let mut operator = OperatorClient::new(
        Topology::channel(&addresses.workstation[0]).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        clock.clone(),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let staff = StaffClient::new(Topology::channel(&addresses.regional[0]).unwrap(), clock);
    let staff_keys = Arc::new(egov_client::staff_keys(&keys, &trust).unwrap());
    let drivers = Drivers::start(&format!("db-killed-{seed}"), 12, &mut random, &operator, &staff, &staff_keys);
    tokio::time::sleep(Duration::from_millis(300 + random.below(700))).await;
    tokio::task::block_in_place(|| server.kill());
    // Down: a call that needs the store is refused with the reason, and the participant still answers.
    // Asked once (a client sends again for a while by default, tests/restart.rs).
    let once = operator.clone().with_persistence(egov_client::Persistence::within(Duration::ZERO));
    let refused = once.application("db-killed-probe").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(egov_runtime::reason_of(&refused), Some("store.unavailable"), "{refused:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| server.restart()).unwrap();
    // Back: the participants reconnect by themselves and every application ends as expected.
    let expected = drivers.finish(seed).await;
    assert_registered_once(&egov_store::Store::open_postgres(&url, "regional").unwrap(), &expected, seed);
    let audit = Command::new(EGOV)
        .args(["audit", "verify", "--store", &url, "--keys"])
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    assert!(audit.status.success(), "seed {seed}: {}", String::from_utf8_lossy(&audit.stdout));
}

/// A fresh client (a new `egov` process each time) given both replicas'
/// addresses, with the first one dead, is answered by the other every time,
/// sent once (`--retry-seconds 0`): the dead address is passed over within
/// the call, not left to the person to try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_replica_down_a_fresh_cli_call_is_answered_by_the_other_without_a_retry() {
    let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("failover").unwrap();
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let addresses = Addresses::free();
    let mut replicas: Vec<Process> = (0..2)
        .map(|index| {
            let args = serve_args(&addresses, "regional", index, Some(&url), temp.path());
            Process::start(format!("regional {index}"), args)
        })
        .collect();
    // The clients' list names replica 0 first: it is the one killed.
    let dead = replicas.remove(0);
    drop(dead);
    let client = addresses.flags("", 0);
    assert!(client[5].starts_with(&addresses.regional[0]), "{client:?}");
    for call in 0..12 {
        let output =
            Command::new(EGOV).args(&client).args(["--retry-seconds", "0", "staff", "queue"]).output().unwrap();
        assert!(
            output.status.success(),
            "call {call}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The health of `address` (the server's, `""`), or why it did not answer.
async fn health(address: &str) -> Result<i32, tonic::Status> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut client = HealthClient::new(Topology::channel(address).unwrap());
    let service = String::new();
    client.check(HealthCheckRequest { service }).await.map(|answer| answer.into_inner().status)
}

/// Waits (up to 30 s) until `address`'s health is `status`.
async fn health_becomes(address: &str, status: tonic_health::ServingStatus, why: &str) {
    let want = status as i32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = health(address).await;
        if found.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{why}: health stayed {found:?}, not {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Health follows the database: NOT_SERVING while it is down (so a load
/// balancer routes around the replica), SERVING once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_database_is_down_and_serving_once_it_is_back() {
    let mut server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("health").unwrap();
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let addresses = Addresses::free();
    let _regional = Process::start("regional".into(), serve_args(&addresses, "regional", 0, Some(&url), temp.path()));
    let address = &addresses.regional[0];
    health_becomes(address, tonic_health::ServingStatus::Serving, "started").await;
    tokio::task::block_in_place(|| server.kill());
    health_becomes(address, tonic_health::ServingStatus::NotServing, "the database killed").await;
    tokio::task::block_in_place(|| server.restart()).unwrap();
    health_becomes(address, tonic_health::ServingStatus::Serving, "the database back").await;
}

/// A replica started while its database is down waits for it, trying again,
/// and serves once it is up: it does not exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_while_the_database_is_down_comes_up_once_it_starts() {
    let mut server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("late").unwrap();
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let addresses = Addresses::free();
    tokio::task::block_in_place(|| server.kill());
    let args = serve_args(&addresses, "regional", 0, Some(&url), temp.path());
    let log = temp.path().join("late.log");
    let mut child = Command::new(EGOV)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready.send(());
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let exited = child.try_wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    if exited.is_some() {
        panic!("it exited ({exited:?}) while the database was down: {said}");
    }
    assert!(is_ready.try_recv().is_err(), "ready without its database");
    assert!(said.contains("waiting for it"), "it says it waits: {said}");
    tokio::task::block_in_place(|| server.restart()).unwrap();
    let came_up = tokio::task::block_in_place(|| is_ready.recv_timeout(Duration::from_secs(60)));
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(came_up.is_ok(), "not ready once the database was up: {said}");
}

/// `egov store migrate` creates and migrates the schemas, says a schema newer
/// than the build is refused, and no output shows the database's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_creates_and_migrates_the_schemas_and_refuses_a_newer_one() {
    let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("migrated").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let keys = temp.path().join("keys");
    common::init_keys(&keys);
    let migrate = |url: &str| {
        let output = Command::new(EGOV).args(["store", "migrate", "--store", url]).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), said)
    };
    let (ok, said) = migrate(&url);
    assert!(ok, "{said}");
    for participant in ["gateway", "regional", "workstation"] {
        assert!(said.contains(&format!("{participant}: schema created at version")), "{said}");
        assert!(egov_store::PostgresBackend::exists(&url, participant).unwrap(), "{participant}");
    }
    let (ok, said) = migrate(&url);
    assert!(ok && said.contains("gateway: schema at version") && said.contains("nothing to do"), "{said}");
    // A newer build migrated it: this one refuses, saying so, and changes nothing.
    tokio::task::block_in_place(|| {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute("UPDATE regional.schema_version SET version = 99").unwrap();
    });
    let (ok, said) = migrate(&url);
    assert!(!ok, "{said}");
    assert!(said.contains("schema regional is at version 99") && said.contains("knows versions up to"), "{said}");
    assert!(!said.contains("store format"), "{said}");
    // The password is in no message: a database that is not there, and one that is, with a password.
    let dead = common::free_port();
    let with_password = url.replacen("egov@", "egov:s3cret-pw@", 1);
    for url in [format!("postgres://egov:s3cret-pw@127.0.0.1:{dead}/egov"), with_password] {
        let (_, said) = migrate(&url);
        assert!(!said.contains("s3cret-pw"), "{said}");
        let audit =
            Command::new(EGOV).args(["audit", "verify", "--store", &url, "--keys"]).arg(&keys).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&audit.stdout), String::from_utf8_lossy(&audit.stderr));
        assert!(!said.contains("s3cret-pw"), "{said}");
    }
    // A replica waiting for that database says so in its log, without the password.
    let addresses = Addresses::free();
    let dead_url = format!("postgres://egov:s3cret-pw@127.0.0.1:{dead}/egov");
    let log = temp.path().join("waiting.log");
    let mut child = Command::new(EGOV)
        .args(serve_args(&addresses, "gateway", 0, Some(&dead_url), temp.path()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = child.kill();
    let _ = child.wait();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("waiting for it") && said.contains("egov:***@"), "{said}");
    assert!(!said.contains("s3cret-pw"), "{said}");
}

/// The process whose connection holds `schema`'s integrator lock now (the advisory lock the
/// integrating replica takes, `docs/scale-out.md`), by the pid in its connection's
/// `application_name`; none while no replica integrates.
fn integrator_of(database: &mut postgres::Client, schema: &str) -> Option<u32> {
    let row = database
        .query_opt(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint",
            &[&format!("{schema}/tlog")],
        )
        .unwrap()?;
    let name: String = row.get(0);
    name.rsplit_once(" pid ").and_then(|(_, pid)| pid.parse().ok())
}

/// How far `schema`'s log is sequenced, and how far the Merkle tree integrates it.
fn log_and_tree(database: &mut postgres::Client, schema: &str) -> (i64, i64) {
    let row = database
        .query_one(
            &format!("SELECT (SELECT sequence FROM {schema}.log_head), (SELECT size FROM {schema}.tlog_size)"),
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// The replica that integrates a participant's log is SIGKILLed while it holds the integrator's
/// lock, under load, again and again: each time the other replica takes the integration over
/// (the tree grows while the killed one is down), and at the end the tree holds every entry in
/// order, every checkpoint is consistent with it and every application happened once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrators_holder_killed_under_load_another_replica_takes_over_and_the_tree_stays_consistent() {
    let seed = seed("integrator kill test");
    let mut random = Random(seed);
    let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("integrator").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let Cluster { _registries, mut replicas, drivers } =
        Cluster::start(&url, temp.path(), &format!("integrator-{seed}"), APPLICATIONS, &mut random).await;

    let mut database = tokio::task::block_in_place(|| postgres::Client::connect(&url, postgres::NoTls)).unwrap();
    let mut taken_over = 0;
    for round in 0..6 {
        let schema = ["gateway", "regional", "workstation"][round % 3];
        // Caught holding the lock: the integration is a short transaction, so look often.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let holder = tokio::task::block_in_place(|| {
            loop {
                let pid = integrator_of(&mut database, schema);
                if let Some(at) = replicas.iter().position(|replica| Some(replica.child.id()) == pid) {
                    break at;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "seed {seed}: no replica of {schema} was seen integrating"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let killed = &mut replicas[holder];
        let killed_pid = killed.child.id();
        tokio::task::block_in_place(|| {
            killed.child.kill().unwrap();
            killed.child.wait().unwrap();
        });
        let (_, tree_at_kill) = tokio::task::block_in_place(|| log_and_tree(&mut database, schema));
        // While it is down, the other replica integrates what is committed meanwhile (if nothing
        // is, the load has ended, and the round shows nothing).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let quiet = std::time::Instant::now() + Duration::from_secs(3);
        tokio::task::block_in_place(|| {
            loop {
                let (log, tree) = log_and_tree(&mut database, schema);
                if tree > tree_at_kill {
                    taken_over += 1;
                    if let Some(pid) = integrator_of(&mut database, schema) {
                        assert_ne!(pid, killed_pid, "seed {seed}: a dead process holds the lock");
                    }
                    break;
                }
                if log == tree && std::time::Instant::now() > quiet {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "seed {seed}: {schema}'s tree stayed at {tree} of {log} entries after its integrator was killed"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let killed = &mut replicas[holder];
        killed.child = tokio::task::block_in_place(|| Process::spawn(&killed.name, &killed.args));
    }
    eprintln!("the other replica took the integration over {taken_over} times of 6");
    assert!(taken_over >= 3, "seed {seed}: the other replica took the integration over {taken_over} times of 6");
    let expected = drivers.finish(seed).await;
    drop(replicas);

    assert_registered_once(&egov_store::Store::open_postgres(&url, "regional").unwrap(), &expected, seed);
    // Every entry integrated, in order, by whichever replica held the lock.
    for schema in ["gateway", "regional", "workstation"] {
        let (log, tree) = tokio::task::block_in_place(|| log_and_tree(&mut database, schema));
        let store = egov_store::Store::open_postgres(&url, schema).unwrap();
        let integrated = tokio::task::block_in_place(|| store.integrate()).unwrap();
        assert!(
            tree <= log && integrated == log as u64,
            "seed {seed}: {schema}: log {log}, tree {tree} then {integrated}"
        );
    }
    // The client's own runtime may not be dropped inside the test's.
    tokio::task::block_in_place(|| drop(database));
    // The tree recomputed from the entries, every checkpoint against it, every signature.
    let audit = Command::new(EGOV)
        .args(["audit", "verify", "--store", &url, "--keys"])
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "seed {seed}: {said}");
    for participant in ["gateway", "regional", "workstation"] {
        assert!(said.contains(&format!("{participant}: ")) && said.contains("Merkle tree intact"), "{said}");
    }
}
