//! `EvidenceService.ProveApplication`: each participant that keeps a log gives its part of one
//! application's evidence (its checkpoint, the application's entries with their inclusion
//! proofs), which verifies with the trust registry by the code `egov audit verify-bundle` runs;
//! bad input gets its reason code and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use egov_proto::ProveApplicationRequest;
use egov_proto::evidence_service_client::EvidenceServiceClient;
use egov_runtime::{Topology, reason_of};
use tonic::Code;

async fn prove(address: &str, application: &str) -> Result<egov_proto::ProveApplicationResponse, tonic::Status> {
    let mut client = EvidenceServiceClient::new(Topology::channel(address).unwrap());
    client
        .prove_application(ProveApplicationRequest { application_id: application.to_owned() })
        .await
        .map(|a| a.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_proves_its_part_and_a_bad_application_id_gets_its_reason_code() {
    let harness = common::Harness::start().await;
    let application = harness.drive("proved-1", &common::in_person("850715300122")).await.unwrap();
    assert_eq!(application.outcome, "permitted", "{application:?}");
    let topology = harness.topology().clone();
    let participants = [
        ("workstation", topology.workstation.clone(), egov_runtime::ids::SC_WORKSTATION),
        ("gateway", topology.gateway.clone(), egov_runtime::ids::GATEWAY),
        ("regional", topology.regional.clone(), egov_runtime::ids::REGIONAL),
    ];
    for (name, address, member) in &participants {
        // The part verifies, every entry against the checkpoint it names, which covers them all.
        let answer = prove(address, "proved-1").await.unwrap();
        assert_eq!((answer.participant.as_str(), answer.member_id.as_str()), (*name, *member));
        assert!(answer.notes.is_empty(), "{name}: {:?}", answer.notes);
        let log = egov_runtime::evidence::from_response(&answer).unwrap();
        let proved = egov_runtime::evidence::verify_log("proved-1", &log, &harness.trust).unwrap();
        assert_eq!(proved.size, answer.checkpoint.lines().nth(1).unwrap().parse::<u64>().unwrap());
        assert!(answer.entries.len() >= 2, "{name}: {} entries", answer.entries.len());
        assert!(answer.entries.iter().all(|entry| entry.sequence <= proved.size), "{name}");
        // Asked again, the same checkpoint: nothing was published for entries it covers already.
        assert_eq!(prove(address, "proved-1").await.unwrap().checkpoint, answer.checkpoint, "{name}");
        // Bad input: its reason code, and nothing changes.
        let long = "a".repeat(200);
        for (bad, code, reason) in [
            ("", Code::InvalidArgument, "request.bad_id"),
            (long.as_str(), Code::InvalidArgument, "request.bad_id"),
            ("proved-1/../x", Code::InvalidArgument, "request.bad_id"),
            ("no-such-application", Code::NotFound, "evidence.unknown_application"),
        ] {
            let status = prove(address, bad).await.unwrap_err();
            assert_eq!(
                (status.code(), reason_of(&status)),
                (code, Some(reason)),
                "{name} {bad:?}: {}",
                status.message()
            );
            assert!(status.message().starts_with(&format!("{reason}: ")), "{}", status.message());
        }
        assert_eq!(prove(address, "proved-1").await.unwrap().checkpoint, answer.checkpoint, "{name}: changed");
    }
    // A log that holds nothing of the application: the registries keep none and serve no evidence.
    let status = prove(&topology.individuals, "proved-1").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{}", status.message());
    harness.stop().await;
}
