//! Crash recovery: `egov serve` is killed with SIGKILL at seeded random moments
//! while applications travel the route, restarted on the same data, and at
//! the end every application has reached its expected final state exactly
//! once, and the message logs audit clean.
//!
//! `EGOV_CRASH_SEED=N` replays a run; the seed is printed at the start.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use egov_client::{OperatorClient, StaffClient};
use egov_envelope::Signer;
use egov_runtime::{SystemClock, Topology, reason_of};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const APPLICATIONS: usize = 40;
const KILLS: usize = 20;

/// splitmix64: a small seeded generator, so a failing run can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Starts `egov serve` with every participant and waits for `ready`; its output is drained in the background.
fn start(topology: &Topology, dir: &Path) -> Child {
    let mut child = Command::new(EGOV)
        .args(["serve", "--console", "off"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .args(["--workstation", &topology.workstation, "--gateway", &topology.gateway])
        .args(["--individuals", &topology.individuals, "--notary", &topology.notary, "--regional", &topology.regional])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready.send(());
            }
        }
    });
    let errors = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    if is_ready.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("egov serve did not become ready: {:?}", errors.join().unwrap_or_default());
    }
    child
}

/// A stack started in its own process on `dir`, with an operator logged in and the staff's keys.
struct Started {
    topology: Topology,
    child: Child,
    operator: OperatorClient,
    staff: StaffClient,
    staff_keys: HashMap<String, Signer>,
}

async fn started(dir: &Path) -> Started {
    let keys = common::init_keys(&dir.join("keys"));
    let trust = keys.trust().unwrap();
    let topology = common::free_topology();
    let child = start(&topology, dir);
    let clock = Arc::new(SystemClock);
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        clock.clone(),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let staff = StaffClient::new(Topology::channel(&topology.regional).unwrap(), clock);
    let staff_keys = egov_client::staff_keys(&keys, &trust).unwrap();
    Started { topology, child, operator, staff, staff_keys }
}

/// Drives one application to its end through any number of crashes: it
/// reads the state, does the next step, and on any failure looks again.
async fn drive(
    id: String,
    approve: bool,
    operator: OperatorClient,
    staff: StaffClient,
    staff_keys: Arc<HashMap<String, Signer>>,
    acknowledged: Arc<AtomicUsize>,
) -> String {
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    let documents: Vec<_> = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    let mut operator = operator;
    let started = Instant::now();
    let mut submitted = false;
    // Where it was last seen, and the last refusal, for a test that does not finish.
    let mut seen = String::new();
    let mut last_error = String::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "application {id} did not finish: last seen {seen}; last refusal {last_error}"
        );
        let pause = || tokio::time::sleep(Duration::from_millis(20));
        let application = match operator.application(&id).await {
            Ok(application) => Some(application),
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(_) => {
                pause().await;
                continue;
            }
        };
        let Some(application) = application else {
            if let Err(status) = operator.open_form(&id, &service, "850715300122", None).await {
                if reason_of(&status) == Some("workstation.bad_session") {
                    let _ = operator.login("operator-1", "operator-1-password").await;
                }
                pause().await;
            }
            continue;
        };
        if !application.outcome.is_empty() {
            return application.outcome;
        }
        seen = format!("at {} (registration {:?})", application.current_step, application.registration_id);
        match application.current_step.as_str() {
            "process-5" => match operator.submit(&id, documents.clone()).await {
                Ok(_) => {
                    if !submitted {
                        submitted = true;
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Err(status) => {
                    if reason_of(&status) == Some("workstation.bad_session") {
                        let _ = operator.login("operator-1", "operator-1-password").await;
                    }
                    pause().await;
                }
            },
            "process-9" => {
                // The applicant takes a ticket (the same one again that day), then is served in its turn.
                let served = match operator.take_ticket(&id).await {
                    Ok(_) => operator.issue(&id).await.map(|_| ()),
                    Err(status) => Err(status),
                };
                if let Err(status) = served {
                    last_error = status.to_string();
                    // A login session is not flushed: one lost in a crash means logging in again.
                    if reason_of(&status) == Some("workstation.bad_session") {
                        let _ = operator.login("operator-1", "operator-1-password").await;
                    }
                    pause().await;
                }
            }
            _ if !application.registration_id.is_empty() => {
                let Ok(registration) = staff.registration(&application.registration_id).await else {
                    pause().await;
                    continue;
                };
                let Some(signer) = staff_keys.get(&registration.next_actor) else {
                    pause().await; // the result is on its way to the State Corporation
                    continue;
                };
                let step = registration.application.as_ref().unwrap().current_step.clone();
                let outcome = match step.as_str() {
                    // Action 3 begins with the executor's hand-over, then the head signs.
                    "action-3" if registration.next_actor == "provider-head" => staff.sign(signer, &registration).await,
                    "condition-2" | "action-2" if approve => {
                        staff.act(signer, &registration, &step, egov_proto::Decision::Yes, "").await
                    }
                    "condition-2" => {
                        staff.act(signer, &registration, &step, egov_proto::Decision::No, "incomplete-package").await
                    }
                    _ => staff.act(signer, &registration, &step, egov_proto::Decision::Unspecified, "").await,
                };
                if let Err(status) = outcome {
                    last_error = status.to_string();
                    pause().await;
                }
            }
            _ => pause().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_survive_sigkill_and_happen_exactly_once() {
    let seed: u64 = std::env::var("EGOV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos() as u64).unwrap_or(1));
    eprintln!("crash test seed: {seed} (EGOV_CRASH_SEED={seed} replays it)");
    let mut random = Random(seed);
    let temp = tempfile::tempdir().unwrap();
    let Started { topology, mut child, operator, staff, staff_keys } = started(temp.path()).await;
    let staff_keys = Arc::new(staff_keys);
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut expected = HashMap::new();
    let mut drivers = tokio::task::JoinSet::new();
    for n in 0..APPLICATIONS {
        let id = format!("crash-{seed}-{n}");
        let approve = random.below(4) != 0;
        expected.insert(id.clone(), if approve { "permitted" } else { "refused" });
        let (operator, staff, staff_keys, acknowledged) =
            (operator.clone(), staff.clone(), Arc::clone(&staff_keys), Arc::clone(&acknowledged));
        drivers.spawn(async move {
            let outcome = drive(id.clone(), approve, operator, staff, staff_keys, acknowledged).await;
            (id, outcome)
        });
    }

    // The killer: SIGKILL at random moments, restart on the same data.
    let finished = Arc::new(AtomicBool::new(false));
    let mut kills = 0;
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(50 + random.below(400))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        child = start(&topology, temp.path());
    }
    let mut outcomes = HashMap::new();
    while let Some(result) = drivers.join_next().await {
        let (id, outcome) = result.unwrap_or_else(|e| panic!("seed {seed}: a driver failed: {e}"));
        outcomes.insert(id, outcome);
    }
    finished.store(true, Ordering::SeqCst);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{kills} kills, {} submissions acknowledged", acknowledged.load(Ordering::SeqCst));

    for (id, outcome) in &outcomes {
        assert_eq!(outcome, expected[id], "seed {seed}: {id}");
    }
    // Each application registered once at the regional gateway ARM, and handed out once.
    let regional = egov_store::Store::open(&temp.path().join("data/regional"), 8 << 20).unwrap();
    let mut registrations: HashMap<String, usize> = HashMap::new();
    #[derive(serde::Deserialize)]
    struct Registered {
        application_id: String,
    }
    for (_, record) in regional.scan::<Registered>("registration/").unwrap() {
        *registrations.entry(record.value.application_id).or_default() += 1;
    }
    drop(regional);
    for id in expected.keys() {
        assert_eq!(registrations.get(id), Some(&1), "seed {seed}: {id} registered {:?} times", registrations.get(id));
    }
    let workstation = egov_store::Store::open(&temp.path().join("data/workstation"), 8 << 20).unwrap();
    #[derive(serde::Deserialize)]
    struct Application {
        instance: egov_regulation::Instance,
    }
    for (key, record) in workstation.scan::<Application>("application/").unwrap() {
        let issued = record.value.instance.path.iter().filter(|step| step.step_id == "process-9").count();
        assert_eq!(issued, 1, "seed {seed}: {key} handed out {issued} times");
    }
    drop(workstation);
    let audit = Command::new(EGOV)
        .args(["audit", "verify", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    assert!(audit.status.success(), "seed {seed}: {}", String::from_utf8_lossy(&audit.stdout));
}

/// The ARM holds its reports between the first and the last for a moment so that
/// a later one replaces them. A kill while one is held, or while it is on its
/// way, must leave the State Corporation with the provider's newest state, each
/// step once: the report is in the ARM's outbox, durable with the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_coalesced_report_leaves_the_newest_state_each_step_once() {
    let temp = tempfile::tempdir().unwrap();
    let Started { topology, mut child, mut operator, staff, staff_keys } = started(temp.path()).await;
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    let documents: Vec<_> = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    let id = "coalesced-1";
    operator.open_form(id, &service, "850715300122", None).await.unwrap();
    operator.submit(id, documents).await.unwrap();
    let registration_id = eventually(&operator, id, |a| !a.registration_id.is_empty()).await.registration_id;

    // Staff steps one right after the other, up to the head's signature: the
    // reports between them wait in the ARM's outbox and replace each other.
    let mut steps = 0;
    loop {
        let registration = staff.registration(&registration_id).await.unwrap();
        let step = registration.application.as_ref().unwrap().current_step.clone();
        if step == "action-3" {
            break;
        }
        let signer = &staff_keys[&registration.next_actor];
        let decision = if matches!(step.as_str(), "condition-2" | "action-2") {
            egov_proto::Decision::Yes
        } else {
            egov_proto::Decision::Unspecified
        };
        staff.act(signer, &registration, &step, decision, "").await.unwrap();
        steps += 1;
    }
    assert!(steps >= 2, "the definition has staff steps before the signature");
    // Killed within the coalescing window of the last step's report.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = start(&topology, temp.path());

    let provider = staff.registration(&registration_id).await.unwrap().application.unwrap();
    assert_eq!(provider.current_step, "action-3", "the steps done are durable at the ARM");
    let seen = eventually(&operator, id, |a| a.current_step == provider.current_step).await;
    // The State Corporation holds the provider's newest state, each step once.
    let step_ids: Vec<&str> = seen.path.iter().map(|step| step.step_id.as_str()).collect();
    let mut unique = step_ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), step_ids.len(), "a step recorded twice: {step_ids:?}");
    for step in &provider.path {
        assert!(
            step_ids.contains(&step.step_id.as_str()),
            "{} reported by the ARM is missing: {step_ids:?}",
            step.step_id
        );
    }
    // And the application still ends, once.
    // Action 3: the executor hands the result over, the head signs it.
    let registration = staff.registration(&registration_id).await.unwrap();
    let executor = &staff_keys[&registration.next_actor];
    let handed = staff.act(executor, &registration, "action-3", egov_proto::Decision::Unspecified, "").await.unwrap();
    staff.sign(&staff_keys[&handed.next_actor], &handed).await.unwrap();
    loop {
        let registration = staff.registration(&registration_id).await.unwrap();
        let Some(signer) = staff_keys.get(&registration.next_actor) else { break };
        let step = registration.application.as_ref().unwrap().current_step.clone();
        staff.act(signer, &registration, &step, egov_proto::Decision::Unspecified, "").await.unwrap();
    }
    let ready = eventually(&operator, id, |a| a.current_step == "process-9").await;
    assert_eq!(ready.path.iter().filter(|s| s.step_id == "action-3").count(), 1);
    if let Err(status) = operator.take_ticket(id).await {
        assert_eq!(reason_of(&status), Some("workstation.bad_session"), "{status:?}");
        operator.login("operator-1", "operator-1-password").await.unwrap();
        operator.take_ticket(id).await.unwrap();
    }
    operator.issue(id).await.unwrap();
    assert_eq!(operator.application(id).await.unwrap().outcome, "permitted");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The operator's view of `id` once `done` holds.
async fn eventually(
    operator: &OperatorClient,
    id: &str,
    done: impl Fn(&egov_proto::Application) -> bool,
) -> egov_proto::Application {
    common::eventually(id, async || operator.application(id).await.ok().filter(|a| done(a))).await
}
