//! A delivery that fails every attempt becomes an incident; `egov incidents`
//! lists it, and `egov incidents retry` delivers it once the receiver is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use egov_cli::stack::{Role, Stack, StackConfig};
use egov_client::OperatorClient;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::{DeliveryStatus, GetMessageStatusRequest, ListOutboxRequest};
use egov_runtime::outbox::RetryPolicy;
use egov_runtime::{SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

/// `egov incidents retry ID --participant gateway`, which must succeed.
fn retry_at_the_gateway(incident_id: u64, gateway: &str) {
    let retried = Command::new(EGOV)
        .args(["incidents", "retry", &incident_id.to_string(), "--participant", "gateway", "--gateway", gateway])
        .output()
        .unwrap();
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_application_becomes_an_incident_and_is_retried_by_hand() {
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    let config = |roles: &[Role]| common::quick_incidents(&temp.path().join("data"), &keys, &topology, roles);
    // Everything but the regional gateway ARM.
    let stack =
        Stack::start(config(&[Role::Individuals, Role::Notary, Role::Gateway, Role::Workstation])).await.unwrap();
    let trust = keys.trust().unwrap();
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    operator
        .open_form("stranded-1", &egov_regulation::Definition::default_definition().service.code, "850715300122", None)
        .await
        .unwrap();
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    let submitted = operator.submit("stranded-1", documents).await.unwrap();
    // The gateway's receipt names the message it took (docs/envelope.md): its sender is the receipt's recipient.
    let receipt_envelope = submitted.gateway_receipt.unwrap();
    let receipt_header = egov_proto::EnvelopeHeader::decode_from(&receipt_envelope);
    let receipt = <egov_proto::AsyncReceipt as prost::Message>::decode(&receipt_envelope.body[..]).unwrap();

    let mut admin = AdminServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    let incident = common::eventually("the incident", async || {
        let entries = admin.list_outbox(ListOutboxRequest { incidents_only: true }).await.unwrap().into_inner().entries;
        entries.into_iter().find(|entry| entry.correlation_id == "stranded-1")
    })
    .await;
    assert_eq!((incident.attempts, incident.target.as_str()), (3, "rshep-astana"));
    let mut gateway = GatewayServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    let status = gateway
        .get_message_status(GetMessageStatusRequest {
            sender_id: receipt_header.recipient_id.clone(),
            message_id: receipt.message_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), DeliveryStatus::NotDelivered);

    let listed = Command::new(EGOV)
        .args([
            "incidents",
            "--gateway",
            &topology.gateway,
            "--regional",
            &topology.regional,
            "--workstation",
            &topology.workstation,
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && printed.contains("stranded-1") && printed.contains("[incident]"), "{printed}");

    // The regional gateway ARM comes up; the incident is retried by hand.
    let regional = Stack::start(config(&[Role::Regional])).await.unwrap();
    retry_at_the_gateway(incident.id, &topology.gateway);
    let application = common::eventually("the registration", async || {
        let application = operator.application("stranded-1").await.unwrap();
        (!application.registration_id.is_empty()).then_some(application)
    })
    .await;
    assert_eq!(application.current_step, "action-1");
    let status = gateway
        .get_message_status(GetMessageStatusRequest {
            sender_id: receipt_header.recipient_id,
            message_id: receipt.message_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), DeliveryStatus::Delivered);
    regional.stop().await;
    stack.stop().await;
}

/// The gateway and then the regional gateway ARM are down for longer than the
/// freshness window while applications wait in the outboxes: every
/// acknowledged application still reaches the ARM, whether its delivery kept
/// being retried or was parked as an incident and retried by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_freshness_window_loses_no_acknowledged_application() {
    const WINDOW_MS: i64 = 1_000;
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    let config = |roles: &[Role], max_attempts: u32| {
        let mut config = StackConfig::local(temp.path().join("data"), keys.clone(), common::fixtures_dir());
        config.topology = topology.clone();
        config.roles = roles.iter().copied().collect();
        config.checks.freshness_window_ms = Some(WINDOW_MS);
        config.retry = RetryPolicy {
            first_delay_ms: 10,
            max_delay_ms: 100,
            max_attempts,
            attempt_timeout: Duration::from_secs(1),
        };
        config
    };
    let outlive_the_window = || tokio::time::sleep(Duration::from_millis(2 * WINDOW_MS as u64));
    let registries = Stack::start(config(&[Role::Individuals, Role::Notary], 3)).await.unwrap();
    let gateway = Stack::start(config(&[Role::Gateway], 3)).await.unwrap();
    // The workstation keeps retrying; the gateway parks after three attempts.
    let workstation = Stack::start(config(&[Role::Workstation], 10_000)).await.unwrap();
    let trust = keys.trust().unwrap();
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    let documents = || {
        common::documents(&["application-form", "identity-document"])
            .iter()
            .map(egov_client::DocumentPlan::to_proto)
            .collect()
    };
    // Application 1 waits in the gateway's outbox for the ARM, parked as an incident.
    operator.open_form("late-1", &service, "850715300122", None).await.unwrap();
    operator.submit("late-1", documents()).await.unwrap();
    let mut admin = AdminServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    let incident = common::eventually("the incident", async || {
        let entries = admin.list_outbox(ListOutboxRequest { incidents_only: true }).await.unwrap().into_inner().entries;
        entries.into_iter().find(|entry| entry.correlation_id == "late-1")
    })
    .await;
    // Application 2 waits in the workstation's outbox while the gateway is down.
    operator.open_form("late-2", &service, "900101400122", None).await.unwrap();
    gateway.stop().await;
    let submitted = operator.submit("late-2", documents()).await.unwrap();
    assert!(submitted.gateway_receipt.is_none(), "no receipt while the gateway is down");
    outlive_the_window().await;

    // Both come back, long after the messages' times.
    let gateway = Stack::start(config(&[Role::Gateway], 3)).await.unwrap();
    let regional = Stack::start(config(&[Role::Regional], 3)).await.unwrap();
    retry_at_the_gateway(incident.id, &topology.gateway);
    for application_id in ["late-1", "late-2"] {
        let application = common::eventually(application_id, async || {
            let application = operator.application(application_id).await.unwrap();
            (!application.registration_id.is_empty()).then_some(application)
        })
        .await;
        assert_eq!(application.current_step, "action-1", "{application_id}");
    }
    let mut admin = AdminServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    let left = admin.list_outbox(ListOutboxRequest { incidents_only: false }).await.unwrap().into_inner().entries;
    assert!(left.is_empty(), "the gateway's outbox still holds {left:?}");
    for stack in [regional, gateway, workstation, registries] {
        stack.stop().await;
    }
}

trait DecodeHeader {
    fn decode_from(envelope: &egov_proto::Envelope) -> egov_proto::EnvelopeHeader;
}

impl DecodeHeader for egov_proto::EnvelopeHeader {
    fn decode_from(envelope: &egov_proto::Envelope) -> egov_proto::EnvelopeHeader {
        prost::Message::decode(&envelope.header[..]).unwrap()
    }
}
