//! The participants as a third party sees them: health, reflection, the
//! `egov` binary, and the route with every participant in its own process.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::{Harness, in_person};
use egov_client::{OperatorClient, Patience, StaffClient};
use egov_runtime::{KeyDir, SystemClock, Topology};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

async fn listed_services(address: &str) -> Vec<String> {
    let mut client = ServerReflectionClient::new(Topology::channel(address).unwrap());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response.unwrap() {
        MessageResponse::ListServicesResponse(list) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn health(address: &str, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(Topology::channel(address).unwrap());
    let response = client.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap().into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_answers_health_checks_and_reflection() {
    let harness = Harness::start().await;
    let topology = harness.topology().clone();
    let expected = [
        (
            &topology.workstation,
            vec![
                "egov.v1.WorkstationService",
                "egov.v1.InboxService",
                "egov.v1.EvidenceService",
                "egov.v1.WitnessService",
            ],
        ),
        (&topology.gateway, vec!["egov.v1.GatewayService", "egov.v1.EvidenceService", "egov.v1.WitnessService"]),
        (&topology.individuals, vec!["egov.v1.IndividualsService"]),
        (&topology.notary, vec!["egov.v1.NotaryService"]),
        (
            &topology.regional,
            vec![
                "egov.v1.RegionalGatewayService",
                "egov.v1.InboxService",
                "egov.v1.EvidenceService",
                "egov.v1.WitnessService",
            ],
        ),
    ];
    for (address, services) in expected {
        assert_eq!(health(address, "").await, ServingStatus::Serving, "{address}");
        let listed = listed_services(address).await;
        for service in &services {
            assert_eq!(health(address, service).await, ServingStatus::Serving, "{address} {service}");
            assert!(listed.iter().any(|s| s == service), "{address} lists {listed:?}, not {service}");
        }
        assert!(listed.iter().any(|s| s == "grpc.health.v1.Health"), "{listed:?}");
        // Every participant serves its admin service (its monitoring records).
        assert!(listed.iter().any(|s| s == "egov.v1.AdminService"), "{address} lists {listed:?}");
        // A port describes what it serves, and only that.
        for name in listed.iter().filter(|name| name.starts_with("egov.")) {
            let served = services.contains(&name.as_str()) || name == "egov.v1.AdminService";
            assert!(served, "{address} lists {name}, which it does not serve: {listed:?}");
        }
    }
    harness.stop().await;
}

/// Child processes killed when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `egov serve` for one role and waits for it to say it is ready.
fn serve(role: &str, topology: &Topology, temp: &std::path::Path) -> Child {
    let mut child = Command::new(EGOV)
        .args(["serve", "--roles", role])
        .arg("--data")
        .arg(temp.join("data"))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .args(["--workstation", &topology.workstation, "--gateway", &topology.gateway])
        .args(["--individuals", &topology.individuals, "--notary", &topology.notary, "--regional", &topology.regional])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == "ready" => break,
            Some(Ok(line)) => seen.push(line),
            _ => panic!("egov serve --roles {role} stopped before it was ready; it said {seen:?}"),
        }
    }
    assert!(seen.iter().any(|line| line.starts_with(&format!("listening {role} "))), "{seen:?}");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_works_with_every_participant_in_its_own_process() {
    let temp = tempfile::tempdir().unwrap();
    let init = Command::new(EGOV).args(["keys", "init", "--dir"]).arg(temp.path().join("keys")).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let topology = common::free_topology();
    let mut children = Children(Vec::new());
    for role in ["individuals", "notary", "gateway", "regional", "workstation"] {
        children.0.push(serve(role, &topology, temp.path()));
    }
    let keys = KeyDir::new(temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let clock = Arc::new(SystemClock);
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        clock.clone(),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let staff = StaffClient::new(Topology::channel(&topology.regional).unwrap(), clock);
    let staff_keys = [
        ("provider-office", "office-1"),
        ("provider-specialist", "specialist-1"),
        ("provider-executor", "executor-1"),
        ("provider-head", "head-1"),
    ]
    .into_iter()
    .map(|(role, member)| (role.to_owned(), keys.signer_in(&trust, member).unwrap()))
    .collect();
    let definition = egov_regulation::Definition::default_definition();
    let route = egov_client::Route {
        definition,
        operator: &operator,
        staff: &staff,
        staff_keys: &staff_keys,
        patience: Patience::default(),
        pacer: &egov_client::RealTime,
    };
    let driven = egov_client::drive(&route, "separate-1", &in_person("850715300122")).await.unwrap();
    assert_eq!(driven.application.outcome, "permitted");
    assert_eq!(driven.application.path.len(), 13);

    // `egov status` shows the path from the workstation's process.
    let status =
        Command::new(EGOV).args(["status", "separate-1", "--workstation", &topology.workstation]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(printed.contains("ended: permitted"), "{printed}");
    for step in ["process-1", "process-7", "condition-2", "action-3", "process-9"] {
        assert!(printed.contains(step), "{step} missing from:\n{printed}");
    }
    drop(children);
}

#[test]
fn egov_demo_drives_the_default_scenario() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(EGOV).arg("demo").current_dir(&root).output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("verdict: as expected (permitted)"), "{printed}");
}

#[test]
fn egov_serve_without_keys_says_how_to_make_them() {
    let temp = tempfile::tempdir().unwrap();
    let output = Command::new(EGOV).args(["serve", "--keys"]).arg(temp.path().join("none")).output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("egov keys init"), "{said}");
}

/// `--log-format json` writes one JSON object a line on stderr, for machines.
#[test]
fn egov_serve_writes_json_logs_when_asked() {
    let temp = tempfile::tempdir().unwrap();
    let init = Command::new(EGOV).args(["keys", "init", "--dir"]).arg(temp.path().join("keys")).output().unwrap();
    assert!(init.status.success());
    let mut child = Command::new(EGOV)
        .args(["serve", "--any-port", "--log-format", "json"])
        .arg("--data")
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == "ready");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "egov serve did not become ready");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing was logged at info");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(object["level"].is_string() && object["fields"]["message"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|line| line.contains("records loaded")), "{lines:?}");
}
