//! Bytes that are not a request: every RPC that takes an envelope answers
//! any bytes at all with a refusal that carries a reason code (none escapes
//! as tonic's own `INTERNAL "failed to decode Protobuf message"`), and keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use common::raw::{self, request_with_envelope};
use egov_proto::{Envelope, Signature};
use egov_runtime::{Topology, reason_of};
use proptest::prelude::*;
use prost::Message;
use tonic::Code;

/// Every RPC that takes an envelope, by the participant that serves it.
fn rpcs(topology: &Topology) -> Vec<(String, &'static str)> {
    [
        (&topology.workstation, "/egov.v1.WorkstationService/OpenForm"),
        (&topology.workstation, "/egov.v1.WorkstationService/SubmitApplication"),
        (&topology.workstation, "/egov.v1.WorkstationService/TakeQueueTicket"),
        (&topology.workstation, "/egov.v1.WorkstationService/CallNext"),
        (&topology.workstation, "/egov.v1.WorkstationService/IssueResult"),
        (&topology.workstation, "/egov.v1.WorkstationService/WithdrawApplication"),
        (&topology.workstation, "/egov.v1.InboxService/Deliver"),
        (&topology.gateway, "/egov.v1.GatewayService/SendSync"),
        (&topology.gateway, "/egov.v1.GatewayService/SendAsync"),
        (&topology.individuals, "/egov.v1.IndividualsService/LookupPerson"),
        (&topology.notary, "/egov.v1.NotaryService/CheckPowerOfAttorney"),
        (&topology.regional, "/egov.v1.InboxService/Deliver"),
        (&topology.regional, "/egov.v1.RegionalGatewayService/PerformStaffAction"),
        (&topology.regional, "/egov.v1.RegionalGatewayService/SignResult"),
        (&topology.regional, "/egov.v1.RegionalGatewayService/ReceiveAtOffice"),
    ]
    .into_iter()
    .map(|(address, path)| (address.clone(), path))
    .collect()
}

/// The one place that sends bytes: the refusal, as the caller sees it.
async fn send(address: &str, path: &'static str, bytes: Vec<u8>) -> tonic::Status {
    match raw::call(address, path, bytes, false).await {
        Ok(answer) => panic!("{path} at {address} accepted bytes that are no request: {answer:?}"),
        Err(status) => status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_do_not_decode_are_refused_with_a_reason_code_everywhere() {
    let harness = Harness::start().await;
    let envelope = Envelope {
        header: vec![1, 2, 3].into(),
        body: vec![4, 5, 6].into(),
        signatures: vec![Signature { key_id: "k".to_owned(), ed25519: vec![0; 64] }],
    }
    .encode_to_vec();
    let mut invalid_utf8 = envelope.clone();
    let at = invalid_utf8.iter().position(|&byte| byte == b'k').unwrap();
    invalid_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", vec![0xff; 7]),
        ("a truncated envelope", request_with_envelope(&envelope[..envelope.len() - 3])),
        ("invalid UTF-8 in a key id", request_with_envelope(&invalid_utf8)),
    ];
    for (address, path) in rpcs(harness.topology()) {
        for (case, bytes) in &cases {
            let status = send(&address, path, bytes.clone()).await;
            assert_eq!(
                (status.code(), reason_of(&status)),
                (Code::InvalidArgument, Some("request.malformed")),
                "{case} at {path}: {}",
                status.message()
            );
            assert!(status.message().starts_with("request.malformed: "), "{case} at {path}: {}", status.message());
        }
    }
    // Over the transport's limit of 64 MiB: refused before it is decoded, as too large.
    let status = send(&harness.topology().gateway, "/egov.v1.GatewayService/SendSync", vec![0; 65 << 20]).await;
    assert_eq!(
        (status.code(), reason_of(&status)),
        (Code::ResourceExhausted, Some("envelope.too_large")),
        "{status:?}"
    );
    harness.stop().await;
}

#[test]
fn random_bytes_to_every_rpc_are_refused_with_a_reason_code() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let harness = runtime.block_on(Harness::start());
    let rpcs = rpcs(harness.topology());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 64, ..ProptestConfig::default() });
    let strategy = (0..rpcs.len(), proptest::collection::vec(any::<u8>(), 0..256));
    let result = runner.run(&strategy, |(index, bytes)| {
        let (address, path) = &rpcs[index];
        let status = runtime.block_on(send(address, path, bytes.clone()));
        prop_assert!(reason_of(&status).is_some(), "{path} answered {bytes:?} without a reason code: {status:?}");
        let reason = reason_of(&status).unwrap_or_default().to_owned();
        prop_assert!(status.message().starts_with(&format!("{reason}: ")), "{path}: {}", status.message());
        Ok(())
    });
    runtime.block_on(harness.stop());
    result.unwrap();
}
