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
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::driver::{Drivers, Random, assert_handed_out_once, assert_registered_once, seed};
use egov_client::{OperatorClient, StaffClient};
use egov_envelope::Signer;
use egov_runtime::{SystemClock, Topology, reason_of};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const APPLICATIONS: usize = 40;
const KILLS: usize = 20;

/// Starts `egov serve` with every participant and waits for `ready`; its output is drained in the background.
fn start(topology: &Topology, dir: &Path) -> Child {
    let mut child = Command::new(EGOV)
        .args(["serve", "--console", "off", "--shep", "off"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_survive_sigkill_and_happen_exactly_once() {
    let seed = seed("crash test");
    let mut random = Random(seed);
    let temp = tempfile::tempdir().unwrap();
    let Started { topology, mut child, operator, staff, staff_keys } = started(temp.path()).await;
    let staff_keys = Arc::new(staff_keys);
    let drivers = Drivers::start(&format!("crash-{seed}"), APPLICATIONS, &mut random, &operator, &staff, &staff_keys);
    let acknowledged = Arc::clone(&drivers.acknowledged);

    // The killer: SIGKILL at random moments, restart on the same data.
    let mut kills = 0;
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(50 + random.below(400))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        child = start(&topology, temp.path());
    }
    let expected = drivers.finish(seed).await;
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("{kills} kills, {} submissions acknowledged", acknowledged.load(Ordering::SeqCst));

    // Each application registered once at the regional gateway ARM, and handed out once.
    let regional = egov_store::Store::open(&temp.path().join("data/regional"), 8 << 20).unwrap();
    assert_registered_once(&regional, &expected, seed);
    drop(regional);
    let workstation = egov_store::Store::open(&temp.path().join("data/workstation"), 8 << 20).unwrap();
    assert_handed_out_once(&workstation, seed);
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
    operator.call_next().await.unwrap();
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
