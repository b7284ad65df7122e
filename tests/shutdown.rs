//! A graceful stop: `egov serve` gets SIGTERM while applications are being
//! opened and submitted. It stops accepting calls, answers those in flight,
//! makes its stores durable and exits 0; started again on the same data,
//! everything it acknowledged is there (the operator's session too, which is
//! committed without waiting for the disk), nothing it refused is half done,
//! and the submitted applications go on to the provider.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use egov_client::OperatorClient;
use egov_runtime::{SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const APPLICATIONS: usize = 24;
const APPLICANT: &str = "850715300122";

/// Starts `egov serve` on `dir` and waits for `ready`.
fn start(topology: &Topology, dir: &Path) -> common::Served {
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
        .args(["--workstation", &topology.workstation, "--gateway", &topology.gateway])
        .args(["--individuals", &topology.individuals, "--notary", &topology.notary, "--regional", &topology.regional])
        .stderr(Stdio::null());
    common::Served::start(command)
}

/// What became of one application's calls.
#[derive(Debug, Default)]
struct Calls {
    opened: Option<Result<(), tonic::Status>>,
    submitted: Option<Result<(), tonic::Status>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_calls_in_flight_and_loses_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let topology = common::free_topology();
    let served = start(&topology, temp.path());
    // Each call sent once: those that meet the stop fail while the server is down (tests/restart.rs has
    // the clients that send again until it is back).
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    )
    .with_persistence(egov_client::Persistence::within(std::time::Duration::ZERO));
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    let documents: Vec<_> = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();

    // Applications opened and submitted one after the other on a few lanes;
    // SIGTERM comes once some are acknowledged, while others are in flight.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut lanes = Vec::new();
    for lane in 0..4 {
        let (operator, service, documents, acknowledged) =
            (operator.clone(), service.clone(), documents.clone(), Arc::clone(&acknowledged));
        lanes.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            for n in (lane..APPLICATIONS).step_by(4) {
                let id = format!("drain-{n}");
                let mut call = Calls::default();
                let opened = operator.open_form(&id, &service, APPLICANT, None).await.map(|_| ());
                let went_on = opened.is_ok();
                call.opened = Some(opened);
                if went_on {
                    let submitted = operator.submit(&id, documents.clone()).await.map(|_| ());
                    if submitted.is_ok() {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    call.submitted = Some(submitted);
                }
                calls.push((id, call));
            }
            calls
        }));
    }
    common::eventually("three submissions acknowledged", async || {
        (acknowledged.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    let stopping = tokio::task::spawn_blocking(move || served.terminate());
    let mut calls = Vec::new();
    for lane in lanes {
        calls.extend(lane.await.unwrap());
    }
    let (exited_0, said) = stopping.await.unwrap();
    assert!(exited_0, "egov serve did not exit 0 on SIGTERM: {said:?}");
    assert!(said.iter().any(|line| line == "stopped"), "{said:?}");
    assert!(!said.iter().any(|line| line.starts_with("cut:")), "calls were cut: {said:?}");

    // A call is answered in full, or refused before it was taken: the
    // connection refused or closed before the call was sent on it, or the
    // call sent after the server's GOAWAY (which names the last call it
    // takes). What the store holds after the restart shows it was not taken.
    for (id, call) in &calls {
        for result in [&call.opened, &call.submitted].into_iter().flatten() {
            if let Err(status) = result {
                let refused_before = matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Cancelled)
                    || format!("{status:?}").contains("GoAway");
                assert!(refused_before, "{id}: {status}");
            }
        }
    }
    let submitted: Vec<&str> =
        calls.iter().filter(|(_, c)| matches!(c.submitted, Some(Ok(())))).map(|(id, _)| id.as_str()).collect();
    assert!(submitted.len() >= 3 && calls.iter().any(|(_, c)| !matches!(c.submitted, Some(Ok(())))), "{calls:?}");

    // Started again: the session still holds, every acknowledged call is there, nothing refused is.
    let mut served = start(&topology, temp.path());
    for (id, call) in &calls {
        let found = operator.application(id).await;
        match (&call.opened, &call.submitted) {
            (Some(Ok(())), Some(Ok(()))) => {
                let application = found.unwrap_or_else(|e| panic!("{id} acknowledged, then lost: {e}"));
                assert_ne!(application.current_step, "process-5", "{id}: the submission was acknowledged");
            }
            (Some(Ok(())), _) => {
                let application = found.unwrap_or_else(|e| panic!("{id} opened, then lost: {e}"));
                assert_eq!(application.current_step, "process-5", "{id}: the refused submission changed it");
            }
            _ => assert_eq!(found.unwrap_err().code(), tonic::Code::NotFound, "{id}: refused, yet opened"),
        }
    }
    // And the submitted ones reach the provider, once each.
    for id in &submitted {
        let application = common::eventually("registration at the ARM", async || {
            operator.application(id).await.ok().filter(|a| !a.registration_id.is_empty())
        })
        .await;
        assert!(application.registration_id.starts_with("RSHEP-"), "{id}");
    }
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
