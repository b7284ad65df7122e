//! Every bad input the receivers must refuse: the gRPC code, the reason code,
//! nothing stored, and the next good request still served.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use egov_envelope::{Signer, countersign, services};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::regional_gateway_service_client::RegionalGatewayServiceClient;
use egov_proto::{
    Body, Envelope, EnvelopeHeader, LookupPersonRequest, MessageType, PerformStaffActionRequest, PersonAnswer,
    PersonQuery, SendAsyncRequest, SendSyncRequest, StaffAction,
};
use egov_runtime::{Clock, SystemClock, Topology, ids, reason_of};

/// `now` less `days`, as a key validity time.
fn days_ago(days: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms() - days * 86_400_000).unwrap()
}
use prost::Message;
use tonic::Code;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A person look-up from the workstation, as `signer`, for correlation id `correlation`.
fn lookup(signer: &Signer, correlation: &str, iin: &str, time_ms: i64) -> Envelope {
    let header = signer.header(
        uuid::Uuid::new_v4().to_string(),
        correlation,
        services::PERSON_LOOKUP,
        ids::INDIVIDUALS,
        time_ms,
        MessageType::Request,
    );
    signer.seal(&header, &PersonQuery { iin: iin.to_owned() })
}

/// Re-signs `envelope` after changing its header with `edit`.
fn with_header(signer: &Signer, envelope: &Envelope, edit: impl FnOnce(&mut EnvelopeHeader)) -> Envelope {
    let mut header = EnvelopeHeader::decode(&envelope.header[..]).unwrap();
    edit(&mut header);
    signer.seal_bytes(header.encode_to_vec(), envelope.body.clone())
}

struct Matrix {
    harness: Harness,
    gateway: GatewayServiceClient<egov_runtime::GrpcChannel>,
    workstation_key: Signer,
}

impl Matrix {
    async fn start() -> Matrix {
        let harness = Harness::start().await;
        let gateway = GatewayServiceClient::new(Topology::channel(&harness.topology().gateway).unwrap());
        let workstation_key = harness.signer(ids::SC_WORKSTATION);
        Matrix { harness, gateway, workstation_key }
    }

    async fn send_sync(&self, envelope: Envelope) -> Result<Envelope, tonic::Status> {
        let mut gateway = self.gateway.clone();
        Ok(gateway.send_sync(SendSyncRequest { envelope: Some(envelope) }).await?.into_inner().envelope.unwrap())
    }

    /// The refusal is as expected, the gateway logged nothing for the case, and a good request still passes.
    async fn check(&self, case: &str, result: Result<Envelope, tonic::Status>, code: Code, reason: &str) {
        let status = match result {
            Ok(_) => panic!("{case}: accepted, expected {reason}"),
            Err(status) => status,
        };
        assert_eq!((status.code(), reason_of(&status)), (code, Some(reason)), "{case}: {}", status.message());
        assert!(status.message().starts_with(&format!("{reason}: ")), "{case}: {}", status.message());
        assert!(self.harness.gateway_log(case).await.is_empty(), "{case}: the gateway logged the refused message");
        let good = lookup(&self.workstation_key, &format!("{case}-then-good"), "850715300122", now_ms());
        let answer = self.send_sync(good).await.unwrap_or_else(|e| panic!("{case}: the next good request failed: {e}"));
        assert!(PersonAnswer::decode(&answer.body[..]).unwrap().found, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refuses_every_bad_envelope_and_keeps_serving() {
    let matrix = Matrix::start().await;
    let key = matrix.workstation_key.clone();
    let harness = &matrix.harness;
    let good = |case: &str| lookup(&key, case, "850715300122", now_ms());

    // Keys the registry knows, then revoked or expired.
    let revoked_id = harness.keys.add_key(ids::SC_WORKSTATION, "", "", days_ago(1)).unwrap();
    let revoked_key = harness.keys.signer(ids::SC_WORKSTATION).unwrap();
    assert_eq!(revoked_key.key_id(), revoked_id);
    harness.keys.revoke(&revoked_id, chrono::DateTime::from_timestamp_millis(now_ms() - 60_000).unwrap()).unwrap();
    let expired_id = harness.keys.add_key(ids::SC_WORKSTATION, "", "", days_ago(3700)).unwrap();
    let expired_key = harness.keys.signer(ids::SC_WORKSTATION).unwrap();
    assert_eq!(expired_key.key_id(), expired_id);
    harness.stack.reload_trust().unwrap();

    let stranger = Signer::from_seed(ids::SC_WORKSTATION, "sc-workstation:not-registered", &[7; 32]);
    let operator = harness.signer("operator-1");

    let mut cases: Vec<(&str, Envelope, Code, &str)> = Vec::new();
    let mut envelope = good("header-garbage");
    envelope.header = vec![0xff, 0xff, 0xff].into();
    cases.push(("header-garbage", envelope, Code::InvalidArgument, "envelope.malformed_header"));
    let mut envelope = good("no-signature");
    envelope.signatures.clear();
    cases.push(("no-signature", envelope, Code::Unauthenticated, "envelope.missing_signature"));
    cases.push((
        "unknown-key",
        lookup(&stranger, "unknown-key", "850715300122", now_ms()),
        Code::Unauthenticated,
        "envelope.unknown_key",
    ));
    cases.push((
        "revoked-key",
        lookup(&revoked_key, "revoked-key", "850715300122", now_ms()),
        Code::Unauthenticated,
        "envelope.key_revoked",
    ));
    cases.push((
        "expired-key",
        lookup(&expired_key, "expired-key", "850715300122", now_ms()),
        Code::Unauthenticated,
        "envelope.key_not_valid",
    ));
    let mut envelope = good("flipped-header");
    let last = envelope.header.len() - 1;
    {
        let mut bytes = envelope.header.to_vec();
        bytes[last] ^= 1;
        envelope.header = bytes.into();
    }
    cases.push(("flipped-header", envelope, Code::Unauthenticated, "envelope.bad_signature"));
    let mut envelope = good("flipped-body");
    {
        let mut bytes = envelope.body.to_vec();
        bytes[4] ^= 1;
        envelope.body = bytes.into();
    }
    cases.push(("flipped-body", envelope, Code::Unauthenticated, "envelope.bad_signature"));
    let mut envelope = good("flipped-signature");
    envelope.signatures[0].ed25519[10] ^= 1;
    cases.push(("flipped-signature", envelope, Code::Unauthenticated, "envelope.bad_signature"));
    let mut envelope = good("short-signature");
    envelope.signatures[0].ed25519.truncate(63);
    cases.push(("short-signature", envelope, Code::Unauthenticated, "envelope.bad_signature"));
    // operator-1's valid signature on a message that claims to come from the workstation.
    let mut envelope = lookup(&operator, "other-members-key", "850715300122", now_ms());
    envelope = with_header(&operator, &envelope, |h| h.sender_id = ids::SC_WORKSTATION.to_owned());
    cases.push(("other-members-key", envelope, Code::Unauthenticated, "envelope.key_not_of_sender"));
    cases.push((
        "stale",
        lookup(&key, "stale", "850715300122", now_ms() - 10 * 60_000),
        Code::InvalidArgument,
        "envelope.stale",
    ));
    cases.push((
        "future",
        lookup(&key, "future", "850715300122", now_ms() + 10 * 60_000),
        Code::InvalidArgument,
        "envelope.future",
    ));
    let envelope = with_header(&key, &good("unknown-service"), |h| h.service_id = "gbdfl.person.delete.v1".to_owned());
    cases.push(("unknown-service", envelope, Code::NotFound, "gateway.unknown_service"));
    let envelope = with_header(&key, &good("wrong-recipient"), |h| h.recipient_id = ids::NOTARY.to_owned());
    cases.push(("wrong-recipient", envelope, Code::InvalidArgument, "gateway.wrong_recipient"));
    let envelope = with_header(&key, &good("missing-field"), |h| h.message_id.clear());
    cases.push(("missing-field", envelope, Code::InvalidArgument, "envelope.missing_field"));
    // The operator may not query the registries: only the workstation may.
    let envelope = with_header(&operator, &good("operator-looks-up"), |h| h.sender_id = "operator-1".to_owned());
    cases.push(("operator-looks-up", envelope, Code::PermissionDenied, "access.denied"));
    let big = {
        let header = key.header(
            "id-big",
            "too-large",
            services::PERSON_LOOKUP,
            ids::INDIVIDUALS,
            now_ms(),
            MessageType::Request,
        );
        key.seal(&header, &PersonQuery { iin: "8".repeat(70_000) })
    };
    cases.push(("too-large", big, Code::ResourceExhausted, "envelope.too_large"));
    let garbage_body = {
        let mut header = key.header(
            "id-garbage",
            "body-garbage",
            services::PERSON_LOOKUP,
            ids::INDIVIDUALS,
            now_ms(),
            MessageType::Request,
        );
        header.body_type = PersonQuery::TYPE.to_owned();
        key.seal_bytes(header.encode_to_vec(), vec![0xff, 0xff, 0xff, 0x01])
    };
    cases.push(("body-garbage", garbage_body, Code::InvalidArgument, "envelope.malformed_body"));
    let wrong_type =
        with_header(&key, &good("body-type-mismatch"), |h| h.body_type = "egov.v1.PersonAnswer".to_owned());
    cases.push(("body-type-mismatch", wrong_type, Code::InvalidArgument, "envelope.body_type_mismatch"));
    cases.push((
        "invalid-iin",
        lookup(&key, "invalid-iin", "850715300123", now_ms()),
        Code::InvalidArgument,
        "iin.check_digit",
    ));
    // A synchronous service sent on the asynchronous channel.
    for (case, envelope, code, reason) in cases {
        let result = matrix.send_sync(envelope).await;
        matrix.check(case, result, code, reason).await;
    }
    let mut gateway = matrix.gateway.clone();
    let result = gateway
        .send_async(SendAsyncRequest { envelope: Some(good("wrong-channel")) })
        .await
        .map(|_| Envelope::default());
    matrix.check("wrong-channel", result, Code::FailedPrecondition, "gateway.wrong_channel").await;
    harness_stop(matrix).await;
}

async fn harness_stop(matrix: Matrix) {
    matrix.harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_gets_the_same_answer_and_a_reused_id_with_other_bytes_is_refused() {
    let matrix = Matrix::start().await;
    let first = lookup(&matrix.workstation_key, "resend", "850715300122", now_ms());
    let answer = matrix.send_sync(first.clone()).await.unwrap();
    let again = matrix.send_sync(first.clone()).await.unwrap();
    assert_eq!(answer, again, "the stored answer, signed bytes and all");
    let logged = matrix.harness.gateway_log("resend").await.len();
    assert_eq!(logged, 2, "one request and one answer logged, not two of each");
    let mut other = EnvelopeHeader::decode(&first.header[..]).unwrap();
    other.correlation_id = "resend".to_owned();
    let reused = matrix.workstation_key.seal(&other, &PersonQuery { iin: "900101400122".to_owned() });
    let result = matrix.send_sync(reused).await;
    let status = result.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::AlreadyExists, Some("envelope.replayed_message_id")));
    assert_eq!(matrix.harness.gateway_log("resend").await.len(), logged, "the refused resend changed nothing");
    matrix.harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_accept_only_what_the_gateway_countersigned() {
    let matrix = Matrix::start().await;
    let harness = &matrix.harness;
    let mut registry = IndividualsServiceClient::new(Topology::channel(&harness.topology().individuals).unwrap());
    let direct = lookup(&matrix.workstation_key, "direct", "850715300122", now_ms());
    let status = registry.lookup_person(LookupPersonRequest { envelope: Some(direct.clone()) }).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::Unauthenticated, Some("envelope.missing_countersignature")));
    let mut forged = direct.clone();
    let impostor = Signer::from_seed(ids::GATEWAY, matrix.workstation_key.key_id(), &[9; 32]);
    countersign(&mut forged, &impostor).unwrap();
    let status = registry.lookup_person(LookupPersonRequest { envelope: Some(forged) }).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::Unauthenticated, Some("envelope.bad_countersignature")));
    let mut by_the_gateway = direct;
    countersign(&mut by_the_gateway, &harness.signer(ids::GATEWAY)).unwrap();
    let answer = registry.lookup_person(LookupPersonRequest { envelope: Some(by_the_gateway) }).await.unwrap();
    assert!(answer.into_inner().envelope.is_some());
    matrix.harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_steps_are_refused_to_the_wrong_people() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    operator.open_form("staff-rights", &service, "850715300122", None).await.unwrap();
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    operator.submit("staff-rights", documents).await.unwrap();
    let staff = harness.staff();
    let registration = loop {
        let application = operator.application("staff-rights").await.unwrap();
        if !application.registration_id.is_empty() {
            break staff.registration(&application.registration_id).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    // The operator may not do a staff step.
    let mut regional = RegionalGatewayServiceClient::new(Topology::channel(&harness.topology().regional).unwrap());
    let operator_key = harness.signer("operator-1");
    let action = StaffAction {
        registration_id: registration.application.as_ref().unwrap().registration_id.clone(),
        step_id: "action-1".to_owned(),
        ..StaffAction::default()
    };
    let header = operator_key.header(
        "op-1",
        "staff-rights",
        services::STAFF_ACTION,
        ids::REGIONAL,
        now_ms(),
        MessageType::Request,
    );
    let envelope = operator_key.seal(&header, &action);
    let status =
        regional.perform_staff_action(PerformStaffActionRequest { envelope: Some(envelope) }).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::PermissionDenied, Some("access.denied")));
    // The head may not do the office's step; the specialist may not sign the result.
    let head = harness.signer("head-1");
    let status = staff.act(&head, &registration, "action-1", egov_proto::Decision::Unspecified, "").await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::PermissionDenied, Some("process.wrong_actor")));
    let keys = harness.staff_keys();
    let mut registration = staff
        .act(&keys["provider-office"], &registration, "action-1", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap();
    // A step out of turn, and a refusal ground that is not the definition's.
    let status = staff
        .act(&keys["provider-executor"], &registration, "action-2", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::FailedPrecondition, Some("process.not_current_step")));
    let status = staff
        .act(&keys["provider-specialist"], &registration, "condition-2", egov_proto::Decision::No, "bad-hair-day")
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::InvalidArgument, Some("regional.unknown_refusal_ground")));
    // A ground of the definition that is another step's (action 2's), one with a "yes", and a "no" without one.
    for (decision, ground, reason) in [
        (egov_proto::Decision::No, "harm-to-child", "regional.unexpected_refusal_ground"),
        (egov_proto::Decision::Yes, "unreliable-documents", "regional.unexpected_refusal_ground"),
        (egov_proto::Decision::No, "", "regional.missing_refusal_ground"),
    ] {
        let status =
            staff.act(&keys["provider-specialist"], &registration, "condition-2", decision, ground).await.unwrap_err();
        assert_eq!((status.code(), reason_of(&status)), (Code::InvalidArgument, Some(reason)), "{ground:?}");
        if decision == egov_proto::Decision::No {
            assert!(status.message().contains("unreliable-documents"), "the step's grounds: {}", status.message());
        }
    }
    let status = staff
        .act(&keys["provider-specialist"], &registration, "condition-2", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::InvalidArgument, Some("process.branch_required")));
    registration = staff
        .act(&keys["provider-specialist"], &registration, "condition-2", egov_proto::Decision::Yes, "")
        .await
        .unwrap();
    // Action 2 decides the result: a yes or a no, never neither.
    let status = staff
        .act(&keys["provider-executor"], &registration, "action-2", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::InvalidArgument, Some("process.branch_required")));
    registration =
        staff.act(&keys["provider-executor"], &registration, "action-2", egov_proto::Decision::Yes, "").await.unwrap();
    // The hand-over of action 3 is the executor's: anyone else but the head (told to sign) may not, with or without a decision.
    for decision in [egov_proto::Decision::Unspecified, egov_proto::Decision::Yes] {
        let status =
            staff.act(&keys["provider-specialist"], &registration, "action-3", decision, "").await.unwrap_err();
        assert_eq!((status.code(), reason_of(&status)), (Code::PermissionDenied, Some("process.wrong_actor")));
    }
    registration = staff
        .act(&keys["provider-executor"], &registration, "action-3", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap();
    let status = staff.sign(&keys["provider-specialist"], &registration).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::PermissionDenied, Some("process.wrong_actor")));
    // The head signs only the drafted bytes.
    let mut altered = registration.clone();
    let mut document = egov_proto::ServiceResult::decode(altered.draft_result.as_slice()).unwrap();
    document.outcome = "refused".to_owned();
    altered.draft_result = document.encode_to_vec();
    let status = staff.sign(&keys["provider-head"], &altered).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status)), (Code::InvalidArgument, Some("regional.draft_mismatch")));
    let signed = staff.sign(&keys["provider-head"], &registration).await.unwrap();
    assert_eq!(signed.application.unwrap().current_step, "action-4");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_in_the_file_is_refused_within_seconds_without_a_restart() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    operator.open_form("before-revocation", &service, "850715300122", None).await.unwrap();
    let key_id = harness.signer("operator-1").key_id().to_owned();
    harness.keys.revoke(&key_id, chrono::DateTime::from_timestamp_millis(now_ms() - 1000).unwrap()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        match operator.open_form(&format!("after-revocation-{}", now_ms()), &service, "850715300122", None).await {
            Err(status) => break status,
            Ok(_) => {
                assert!(std::time::Instant::now() < deadline, "the revocation was not picked up");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!((status.code(), reason_of(&status)), (Code::Unauthenticated, Some("envelope.key_revoked")));
    harness.stop().await;
}

/// An `ApplicationDelivery` whose operator's submission inside does not verify
/// (or carries an extra, junk signature) is refused by the gateway before it
/// is logged: what the gateway logs, the audit can check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_carried_submission_does_not_verify_is_refused_before_it_is_logged() {
    use egov_proto::{ApplicationDelivery, ApplicationSubmission, SendAsyncRequest};
    let matrix = Matrix::start().await;
    let operator = matrix.harness.signer("operator-1");
    let submission = |application_id: &str| {
        let header = operator.header(
            uuid::Uuid::new_v4().to_string(),
            application_id,
            services::FORM_SUBMIT,
            ids::SC_WORKSTATION,
            now_ms(),
            MessageType::Request,
        );
        operator.seal(
            &header,
            &ApplicationSubmission { application_id: application_id.to_owned(), ..ApplicationSubmission::default() },
        )
    };
    let delivery = |application_id: &str, carried: Envelope| {
        let header = matrix.workstation_key.header(
            uuid::Uuid::new_v4().to_string(),
            application_id,
            services::APPLICATION_SUBMIT,
            ids::REGIONAL,
            now_ms(),
            MessageType::Request,
        );
        let body = ApplicationDelivery {
            application_id: application_id.to_owned(),
            operator_submission: Some(carried),
            ..ApplicationDelivery::default()
        };
        SendAsyncRequest { envelope: Some(matrix.workstation_key.seal(&header, &body)) }
    };
    let mut broken = submission("carried-broken");
    broken.body = [&broken.body[..], &[0]].concat().into();
    let mut junk = submission("carried-junk");
    junk.signatures.push(egov_proto::Signature { key_id: "junk".to_owned(), ed25519: vec![0; 64] });
    for (case, carried) in [("carried-broken", broken), ("carried-junk", junk)] {
        let status = matrix.gateway.clone().send_async(delivery(case, carried)).await.unwrap_err();
        assert_eq!(reason_of(&status), Some("envelope.bad_carried_envelope"), "{case}: {}", status.message());
        assert!(matrix.harness.gateway_log(case).await.is_empty(), "{case}: the gateway logged it");
    }
    harness_stop(matrix).await;
}
