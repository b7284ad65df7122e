//! `egov replay`: the fixture library replays to its expectations, at any
//! concurrency, and a wrong expectation is reported as a failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `egov replay` with `args`, on the backend of the tests (`common::test_database`):
/// the output, and the `--store` arguments that reach the replay's state afterwards.
fn replay(args: &[&str]) -> Output {
    replay_kept(args).0
}

fn replay_kept(args: &[&str]) -> (Output, Vec<String>, Option<egov_store::postgres_server::PostgresServer>) {
    let database = common::test_database();
    let store: Vec<String> =
        database.as_ref().map(|(_, url)| vec!["--store".to_owned(), url.clone()]).unwrap_or_default();
    let output = Command::new(EGOV).arg("replay").args(args).args(&store).current_dir(root()).output().unwrap();
    (output, store, database.map(|(server, _)| server))
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (scenario, outcome, path, notice, due, missed, refusal ground) of each verdict: all but the run's ids and times.
fn observed(report: &serde_json::Value) -> Vec<String> {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|verdict| {
            let actual = &verdict["actual"];
            format!(
                "{} {} {} {} {} {} {} {}",
                verdict["scenario"],
                actual["outcome"],
                actual["reason"],
                actual["path"],
                actual["notice"],
                actual["due"],
                actual["missed"],
                actual["refusal_ground"]
            )
        })
        .collect()
}

#[test]
fn the_fixture_library_replays_as_expected_at_any_concurrency() {
    let temp = tempfile::tempdir().unwrap();
    let serial = temp.path().join("serial.json");
    let parallel = temp.path().join("parallel.json");
    let junit = temp.path().join("junit.xml");
    let output = replay(&["fixtures/applications", "--concurrency", "1", "--report", "json", serial.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    let count = std::fs::read_dir(root().join("fixtures/applications")).unwrap().count();
    assert!(printed.lines().any(|line| line == format!("{count} passed, 0 failed")), "{printed}");
    let output =
        replay(&["fixtures/applications", "--concurrency", "16", "--report", "json", parallel.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(observed(&report(&serial)), observed(&report(&parallel)), "verdicts do not depend on concurrency");
    assert_eq!(report(&serial)["passed"], count);

    let output =
        replay(&["fixtures/applications/approval-in-person.json", "--report", "junit", junit.to_str().unwrap()]);
    assert!(output.status.success());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"egov replay\" tests=\"1\" failures=\"0\""), "{xml}");
    assert!(xml.contains("name=\"approval-in-person\""), "{xml}");
}

#[test]
fn a_wrong_expectation_fails_with_its_first_difference() {
    let temp = tempfile::tempdir().unwrap();
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/applications/before-nauryz.json")).unwrap(),
    )
    .unwrap();
    scenario["id"] = "wrong-due-date".into();
    scenario["expect"]["due"] = "2026-03-26".into();
    let mut refused = scenario.clone();
    refused["id"] = "wrong-outcome".into();
    refused["expect"]["outcome"] = "refused".into();
    // The queue for the result: the time an early applicant is told, and the wait.
    let fixture = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(root().join("fixtures/applications").join(name)).unwrap())
            .unwrap()
    };
    let mut early = fixture("collect-before-the-result.json");
    early["id"] = "wrong-come-back".into();
    early["expect"]["come_back_at"] = "2026-06-15T09:00:00+05:00".into();
    let mut waiting = fixture("collect-waiting-in-the-queue.json");
    waiting["id"] = "wrong-wait".into();
    waiting["expect"]["queue_wait"] = "5 min".into();
    let file = temp.path().join("wrong.json");
    let scenarios = serde_json::json!({ "scenarios": [scenario, refused, early, waiting] });
    std::fs::write(&file, scenarios.to_string()).unwrap();
    let junit = temp.path().join("junit.xml");
    let output = replay(&[file.to_str().unwrap(), "--report", "junit", junit.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.lines().any(|line| line == "0 passed, 4 failed"), "{printed}");
    assert!(printed.contains("result due 2026-03-31, expected 2026-03-26"), "{printed}");
    assert!(printed.contains("outcome is \"permitted\", expected \"refused\""), "{printed}");
    assert!(
        printed.contains("told to come back at 2026-06-16T09:00:00+05:00, expected 2026-06-15T09:00:00+05:00"),
        "{printed}"
    );
    assert!(printed.contains("waited in the queue 25 min, expected 5 min"), "{printed}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("failures=\"4\""), "{xml}");
}

#[test]
fn a_scenario_file_with_an_unknown_field_is_refused_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/applications/approval-in-person.json")).unwrap(),
    )
    .unwrap();
    scenario["expect"]["outcom"] = "permitted".into();
    let file = temp.path().join("typo.json");
    std::fs::write(&file, scenario.to_string()).unwrap();
    let output = replay(&[file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("typo.json") && said.contains("outcom"), "{said}");
}

#[test]
fn a_faulty_run_still_reaches_every_expected_outcome_and_counts_the_retries() {
    let output = replay(&[
        "fixtures/applications",
        "--concurrency",
        "8",
        "--fault",
        "individuals:unavailable=0.5,latency=5ms",
        "--fault",
        "regional:down=0s+1s",
        "--fault",
        "workstation:unavailable=0.3",
        "--fault-seed",
        "7",
    ]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    let count = std::fs::read_dir(root().join("fixtures/applications")).unwrap().count();
    assert!(printed.lines().any(|line| line == format!("{count} passed, 0 failed")), "{printed}");
    let retries = printed.lines().find(|line| line.starts_with("retries and faults: ")).unwrap();
    let counter = |name: &str| -> u64 {
        retries
            .split([' ', ','])
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map_or(0, |value| value.parse().unwrap())
    };
    assert!(counter("gateway.registry_retries") > 0, "{retries}");
    assert!(counter("gateway.outbox.retries") > 0, "{retries}");
    assert!(counter("regional.fault.injected") > 0, "{retries}");
}

#[test]
fn a_kept_replay_is_reported_by_sla_report_and_audits_clean() {
    let temp = tempfile::tempdir().unwrap();
    let keep = temp.path().join("run");
    let (output, store, _database) = replay_kept(&[
        "fixtures/applications/executor-overruns.json",
        "fixtures/applications/approval-in-person.json",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let data = keep.join("data");
    let sla = Command::new(EGOV)
        .args(["sla", "report", "--data", data.to_str().unwrap(), "--at", "2026-06-10T12:00:00+05:00"])
        .args(&store)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&sla.stdout);
    assert!(sla.status.success(), "{printed}");
    let missed: Vec<&str> = printed.lines().filter(|line| line.ends_with(" missed")).collect();
    assert_eq!(missed.len(), 2, "{printed}");
    assert!(missed.iter().all(|line| line.starts_with("executor-overruns-")), "{printed}");
    assert!(
        missed.iter().any(|line| line.contains(" action-2 "))
            && missed.iter().any(|line| line.contains(" service-term ")),
        "{printed}"
    );
    assert!(printed.contains("2 missed or at risk, in 1 applications"), "{printed}");
    let audit = Command::new(EGOV)
        .args(["audit", "verify", "--data", data.to_str().unwrap(), "--keys", keep.join("keys").to_str().unwrap()])
        .args(&store)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success() && printed.contains("audit: ok"), "{printed}");
}

#[test]
fn another_regulation_runs_through_the_whole_stack() {
    let output = replay(&[
        "fixtures/regulations/example-certificate-scenarios",
        "--regulation",
        "fixtures/regulations/example-certificate.toml",
    ]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.lines().any(|line| line == "3 passed, 0 failed"), "{printed}");
}

/// The testers' walk-through of `docs/fixtures.md` and the README, command for
/// command, in a fresh folder that has the shipped `fixtures/`: the keys made
/// with `egov keys init`, `egov serve --simulated-time`, then `egov replay
/// fixtures/applications --target 127.0.0.1 --keys keys --fixtures fixtures`.
/// The addresses (free ports) and the store come from the `EGOV_*` variables,
/// so the command lines are the documented ones.
fn documented_walk_through(store: Option<&str>) {
    let temp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("fixtures"), temp.path().join("fixtures")).unwrap();
    let topology = common::free_topology();
    let mut environment = vec![
        ("EGOV_WORKSTATION", topology.workstation.clone()),
        ("EGOV_GATEWAY", topology.gateway.clone()),
        ("EGOV_INDIVIDUALS", topology.individuals.clone()),
        ("EGOV_NOTARY", topology.notary.clone()),
        ("EGOV_REGIONAL", topology.regional.clone()),
        ("EGOV_CONSOLE", "off".to_owned()),
        ("EGOV_SHEP", "off".to_owned()),
    ];
    if let Some(url) = store {
        environment.push(("EGOV_STORE", url.to_owned()));
    }
    let egov = |args: &[&str]| {
        let mut command = Command::new(EGOV);
        command.args(args).current_dir(temp.path()).envs(environment.iter().map(|(k, v)| (k, v)));
        command
    };
    let made = egov(&["keys", "init", "--dir", "keys"]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.contains("valid from 2020-01-01T00:00:00Z"), "{said}");

    let mut serve = egov(&["serve", "--simulated-time"]);
    serve.stderr(std::process::Stdio::null());
    let served = common::Served::start(serve);
    let replayed =
        egov(&["replay", "fixtures/applications", "--target", "127.0.0.1", "--keys", "keys", "--fixtures", "fixtures"])
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&replayed.stdout);
    let scenarios = std::fs::read_dir(root().join("fixtures/applications")).unwrap().count();
    assert!(
        replayed.status.success() && stdout.contains(&format!("{scenarios} passed, 0 failed")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let (exited_0, _) = served.terminate();
    assert!(exited_0);
}

#[test]
fn the_documented_walk_through_replays_the_library_against_a_running_stack_on_sled() {
    documented_walk_through(None);
}

#[test]
fn the_documented_walk_through_replays_the_library_against_a_running_stack_on_postgresql() {
    let server = egov_store::postgres_server::PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = server.database("egov").unwrap();
    documented_walk_through(Some(&url));
    drop(server);
}
