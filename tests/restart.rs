//! Clients across a restart: a command of several calls, run while `egov
//! serve` stops gracefully and starts again on the same ports and data,
//! completes (each call sent again as the same signed message while the
//! participant is away); with the server never back, it says which step was
//! not done, and the same command resumes the application later.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use egov_proto::admin_service_client::AdminServiceClient;
use egov_runtime::Topology;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const APPLICANT: &str = "850715300122";

/// `egov serve` on `dir`'s data and keys at `topology`, with `faults`.
fn start(topology: &Topology, dir: &Path, faults: &[&str]) -> common::Served {
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--console", "off", "--shep", "off"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .args(["--drain-seconds", "20"])
        .stderr(Stdio::null());
    for fault in faults {
        command.args(["--fault", fault]);
    }
    command.envs(addresses(topology));
    common::Served::start(command)
}

/// The `EGOV_*` variables that name the five addresses, for the server and the clients.
fn addresses(topology: &Topology) -> Vec<(&'static str, String)> {
    vec![
        ("EGOV_WORKSTATION", topology.workstation.clone()),
        ("EGOV_GATEWAY", topology.gateway.clone()),
        ("EGOV_INDIVIDUALS", topology.individuals.clone()),
        ("EGOV_NOTARY", topology.notary.clone()),
        ("EGOV_REGIONAL", topology.regional.clone()),
    ]
}

/// A client command (`egov ARGS` with the test's keys), started.
fn client(topology: &Topology, dir: &Path, args: &[&str]) -> Child {
    let keys = dir.join("keys");
    let mut command = Command::new(EGOV);
    command.args(args).arg("--keys").arg(&keys).envs(addresses(topology));
    command.env_remove("EGOV_RETRY_SECONDS").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn said(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Waits until the workstation has answered a `Login` (its monitoring record).
async fn logged_in(topology: &Topology) {
    let channel = Topology::channel(&topology.workstation).unwrap();
    common::eventually("the operator's login", async || {
        let mut admin = AdminServiceClient::new(channel.clone());
        let records = admin.query_monitoring(egov_proto::QueryMonitoringRequest::default()).await.ok()?;
        records.into_inner().records.iter().any(|record| record.rpc == "WorkstationService/Login").then_some(())
    })
    .await;
}

async fn finished(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_of_several_calls_completes_across_a_graceful_restart() {
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    // The look-ups are slow: the form is still being opened when the stop comes.
    let served = start(&topology, temp.path(), &["individuals:latency=1500ms"]);
    let mut apply =
        client(&topology, temp.path(), &["operator", "apply", "--id", "restart-1", "--applicant", APPLICANT]);
    // OpenForm follows the login at once and takes 1.5 s and more (the look-up's latency): in flight 0.7 s later.
    logged_in(&topology).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(apply.try_wait().unwrap().is_none(), "the command runs when the stop comes");
    let (exited_0, _) = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(exited_0);
    // Up again on the same ports and data; the staff's calls are slow this time.
    let served = start(&topology, temp.path(), &["regional:latency=300ms"]);
    let applied = finished(apply).await;
    let text = said(&applied);
    assert!(applied.status.success(), "{text}");
    assert!(!text.contains("resumed"), "the same command went on: {text}");
    assert!(text.contains("restart-1"), "{text}");

    let status = Command::new(EGOV).args(["status", "restart-1"]).envs(addresses(&topology)).output().unwrap();
    let registration = common::eventually("the registration at the ARM", async || {
        let status = Command::new(EGOV).args(["status", "restart-1"]).envs(addresses(&topology)).output().ok()?;
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        text.lines().find_map(|line| line.trim().strip_prefix("registration")).map(|r| r.trim().to_owned())
    })
    .await;
    assert!(registration.starts_with("RSHEP-"), "{registration}: {}", said(&status));

    // Every staff step, signed one after the other, while the ARM restarts after the first.
    let mut process = client(&topology, temp.path(), &["staff", "process", &registration]);
    let mut staff = egov_client::StaffClient::new(Topology::channel(&topology.regional).unwrap(), {
        std::sync::Arc::new(egov_runtime::SystemClock)
    });
    staff = staff.with_persistence(egov_client::Persistence::within(Duration::ZERO));
    common::eventually("the first staff step done", async || {
        let registration = staff.registration(&registration).await.ok()?;
        (registration.application?.current_step != "action-1").then_some(())
    })
    .await;
    assert!(process.try_wait().unwrap().is_none(), "the command runs when the stop comes");
    let (exited_0, _) = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(exited_0);
    let served = start(&topology, temp.path(), &[]);
    let processed = finished(process).await;
    let text = said(&processed);
    assert!(processed.status.success(), "{text}");
    let done = staff.registration(&registration).await.unwrap().application.unwrap();
    let steps: Vec<&str> = done.path.iter().map(|step| step.step_id.as_str()).collect();
    for step in ["action-1", "condition-2", "action-2", "action-3", "action-4"] {
        assert_eq!(steps.iter().filter(|s| **s == step).count(), 1, "{step} once: {steps:?}");
    }
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_never_back_the_command_names_the_step_not_done_and_the_same_command_resumes_it() {
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    let served = start(&topology, temp.path(), &["individuals:latency=1500ms"]);
    let apply_args = ["--retry-seconds", "3", "operator", "apply", "--id", "away-1", "--applicant", APPLICANT];
    let apply = client(&topology, temp.path(), &apply_args);
    // OpenForm follows the login at once and takes 1.5 s and more (the look-up's latency): in flight 0.7 s later.
    logged_in(&topology).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Stopped while the form is being opened (the stop answers that call), and not started again.
    let started = std::time::Instant::now();
    let (exited_0, _) = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(exited_0);
    let failed = finished(apply).await;
    let text = said(&failed);
    assert!(!failed.status.success(), "{text}");
    assert!(
        text.contains("submit (process 5) of application away-1 not done; the form is open and the data looked up: the same command resumes it"),
        "{text}"
    );
    assert!(text.contains(" times over 3.") && text.contains("in vain"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20), "within the bound: {:?}", started.elapsed());

    // The server back: the same command resumes the application at process 5 and submits it.
    let served = start(&topology, temp.path(), &[]);
    let resumed = finished(client(&topology, temp.path(), &apply_args[2..])).await;
    let text = said(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(
        text.contains(
            "resumed application away-1, found at process-5: its form was open, the data looked up: submitted now"
        ),
        "{text}"
    );
    assert!(!text.contains("application_exists"), "{text}");
    // Once more: submitted before, nothing sent twice.
    let again = finished(client(&topology, temp.path(), &apply_args[2..])).await;
    let text = said(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("it was submitted before: nothing left to do here"), "{text}");
    // Another applicant under the same id is not resumed.
    let other = ["operator", "apply", "--id", "away-1", "--applicant", "900101400122"];
    let refused = finished(client(&topology, temp.path(), &other)).await;
    let text = said(&refused);
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains("workstation.application_exists") && text.contains("not this one to resume"), "{text}");
    drop(served);
}

/// Issue 27, item 11: the operator's submission was refused `store.unavailable`
/// (the workstation's PostgreSQL database down); once it is back, the same
/// `egov operator apply` resumes the application and submits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_refused_while_the_database_was_down_is_resumed_by_the_same_command() {
    let mut server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("resumed").unwrap();
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let topology = common::free_topology();
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--console", "off", "--shep", "off", "--store", &url])
        .arg("--data")
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .envs(addresses(&topology))
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    // The operator opens the form (processes 2 to 4), then the database goes down as they submit.
    let mut operator = egov_client::OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        std::sync::Arc::new(egov_runtime::SystemClock),
    )
    .with_persistence(egov_client::Persistence::within(Duration::ZERO));
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    operator.open_form("db-down-1", &service, APPLICANT, None).await.unwrap();
    tokio::task::block_in_place(|| server.kill());
    let documents = common::documents(&["application-form", "identity-document"]);
    let refused = operator.submit("db-down-1", documents.iter().map(egov_client::DocumentPlan::to_proto).collect());
    let refused = refused.await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("store.unavailable"), "{refused:?}");
    tokio::task::block_in_place(|| server.restart()).unwrap();

    let apply = ["operator", "apply", "--id", "db-down-1", "--applicant", APPLICANT];
    let resumed = finished(client(&topology, temp.path(), &apply)).await;
    let text = said(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(text.contains("resumed application db-down-1, found at process-5"), "{text}");
    assert!(!text.contains("application_exists"), "{text}");
    let application = operator.clone().with_persistence(egov_client::Persistence::default());
    let submitted = application.application("db-down-1").await.unwrap();
    assert_ne!(submitted.current_step, "process-5", "{submitted:?}");
    drop(served);
    drop(server);
}

/// The replay driver (`egov replay --target`) across a graceful restart of the
/// stack it replays against: every scenario still ends as expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_against_a_running_stack_goes_on_across_its_restart() {
    let temp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::os::unix::fs::symlink(root.join("fixtures"), temp.path().join("fixtures")).unwrap();
    let topology = common::free_topology();
    let egov = |args: &[&str]| {
        let mut command = Command::new(EGOV);
        command
            .args(args)
            .current_dir(temp.path())
            .envs(addresses(&topology))
            .env("EGOV_CONSOLE", "off")
            .env("EGOV_SHEP", "off");
        command.env_remove("EGOV_RETRY_SECONDS");
        command
    };
    assert!(egov(&["keys", "init", "--dir", "keys"]).output().unwrap().status.success());
    // Each call at the ARM a little slow, so that the replay is under way when the stop comes.
    let serve = || {
        let mut command = egov(&["serve", "--simulated-time", "--fault", "regional:latency=100ms"]);
        command.stderr(Stdio::null());
        common::Served::start(command)
    };
    let served = serve();
    let mut replay = egov(&["replay", "fixtures/applications", "--target", "127.0.0.1", "--keys", "keys"]);
    let mut replay = replay.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut staff = egov_client::StaffClient::new(
        Topology::channel(&topology.regional).unwrap(),
        std::sync::Arc::new(egov_runtime::SystemClock),
    );
    staff = staff.with_persistence(egov_client::Persistence::within(Duration::ZERO));
    common::eventually("registrations at the ARM", async || (staff.queue("").await.ok()?.len() >= 3).then_some(()))
        .await;
    assert!(replay.try_wait().unwrap().is_none(), "the replay runs when the stop comes");
    let (exited_0, _) = tokio::task::spawn_blocking(move || served.terminate()).await.unwrap();
    assert!(exited_0);
    let served = serve();
    let replayed = finished(replay).await;
    let text = said(&replayed);
    let scenarios = std::fs::read_dir(root.join("fixtures/applications")).unwrap().count();
    assert!(replayed.status.success() && text.contains(&format!("{scenarios} passed, 0 failed")), "{text}");
    drop(served);
}
