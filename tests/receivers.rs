//! Every participant refuses each class of bad input in the same way, at every
//! RPC that takes an envelope: the same gRPC code, the same reason code (the
//! `egov-reason` trailer and the prefix of the message), and the next good
//! request is still served.
//!
//! One table of classes (`CLASSES`), one table of RPCs (`RPCS`) with one good
//! message each (`Fixture::draft`), which a class breaks in exactly one place
//! (`Fixture::bad`), and one `check`. The expected codes are those of
//! `docs/envelope.md`; where it documents none, the most general one.
//!
//! Then the correlation id: a message about one application whose envelope
//! names another is refused, and nothing changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::Harness;
use egov_client::{DocumentPlan, OperatorClient, StaffClient};
use egov_envelope::{Signer, countersign, services};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::inbox_service_client::InboxServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::notary_service_client::NotaryServiceClient;
use egov_proto::regional_gateway_service_client::RegionalGatewayServiceClient;
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{
    ApplicantArrival, Application, ApplicationDelivery, ApplicationForm, ApplicationProgress, ApplicationSubmission,
    ApplicationWithdrawal, AttachedDocument, Body, CallNextRequest, CheckPowerOfAttorneyRequest, DeliverRequest,
    Envelope, EnvelopeHeader, IssueResultRequest, LoginRequest, LookupPersonRequest, MessageType, NextTicketCall,
    OfficeReception, OpenFormRequest, PerformStaffActionRequest, PersonQuery, PersonRecord, PowerOfAttorneyQuery,
    ReceiveAtOfficeRequest, Registration, ResultPickup, SendAsyncRequest, SendSyncRequest, ServiceResult,
    SignResultRequest, StaffAction, SubmitApplicationRequest, TakeQueueTicketRequest, WithdrawApplicationRequest,
};
use egov_regulation::{Effect, StepKind};
use egov_runtime::GrpcChannel as Channel;
use egov_runtime::ids::roles;
use egov_runtime::{Clock, SystemClock, Topology, ids, reason_of};
use prost::Message;
use tonic::{Code, Status};

/// What a class of bad input breaks in a good message (exactly one thing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// The request carries no envelope.
    NoEnvelope,
    /// Header bytes that do not decode (signed as carried).
    HeaderGarbage,
    /// A required header field, `message_id`, left empty.
    EmptyMessageId,
    /// A message id of 20 KiB: the header over its limit.
    HugeHeader,
    NoSignature,
    /// The sender's signature is 63 bytes.
    ShortSignature,
    /// The body is changed after signing (by an unknown field, so it still decodes).
    BodyChangedAfterSigning,
    /// The sender is no member of the trust registry.
    UnknownSender,
    /// The sender's key id is not in the trust registry.
    UnknownKey,
    /// Signed with another member's registered key.
    OtherMembersKey,
    /// The message time is 10 minutes before the receiver's clock.
    Stale,
    /// The message time is 10 minutes after the receiver's clock.
    Future,
    /// Addressed to another member.
    WrongRecipient,
    /// A service id no one serves.
    WrongService,
    /// A message type the RPC does not take.
    WrongMessageType,
    /// Sent by a member whose role may not send this service.
    WrongRole,
    /// The header names another body type.
    WrongBodyType,
    /// Body bytes that do not decode as the body type.
    MalformedBody,
    /// A body one byte over the default limit of 10 MiB (an unknown field, so it still decodes).
    TooLarge,
    /// Sent straight to a receiver that takes only what the gateway countersigned.
    NoCountersignature,
    /// Countersigned with a key that is not the gateway's.
    ForgedCountersignature,
    /// One more signature after those the RPC takes, valid in itself (another member's).
    ExtraSignature,
    /// A good message is sent, then another with its message id and other body bytes.
    ReusedMessageId,
    /// A good message is sent, then another with its message id and a body that does not
    /// decode: the replay is checked before the body (docs/envelope.md, checks 10 and 11).
    ReusedMessageIdBodyGarbage,
}

impl Break {
    /// Whether a good message with the same id goes first.
    fn resends(self) -> bool {
        matches!(self, Break::ReusedMessageId | Break::ReusedMessageIdBodyGarbage)
    }
}

/// Which RPCs a class of bad input is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Every,
    /// Only the receivers that require the gateway's countersignature.
    Countersigned,
    /// Only the calls of a synchronous or direct service: a message of the
    /// asynchronous channel may wait in an outbox, so it is never too old.
    NotQueued,
    /// Only the receivers that keep state. The registries answer look-ups
    /// and keep nothing; every request reaches them through the gateway,
    /// which refuses a reused message id before it is forwarded.
    Stateful,
}

/// One class of bad input and the answer every receiver owes it.
struct Class {
    breaks: Break,
    scope: Scope,
    /// The gRPC code and the reason code.
    expected: (Code, &'static str),
    /// Where the gateway routes rather than receives, its own documented answer.
    at_gateway: Option<(Code, &'static str)>,
}

const fn class(breaks: Break, code: Code, reason: &'static str) -> Class {
    Class { breaks, scope: Scope::Every, expected: (code, reason), at_gateway: None }
}

impl Class {
    const fn at_gateway(self, code: Code, reason: &'static str) -> Class {
        Class { at_gateway: Some((code, reason)), ..self }
    }

    const fn countersigned_only(self) -> Class {
        Class { scope: Scope::Countersigned, ..self }
    }

    const fn not_queued(self) -> Class {
        Class { scope: Scope::NotQueued, ..self }
    }

    const fn stateful_only(self) -> Class {
        Class { scope: Scope::Stateful, ..self }
    }

    fn applies_to(&self, spec: &Spec) -> bool {
        match self.scope {
            Scope::Every => true,
            Scope::Countersigned => spec.countersigned,
            Scope::Stateful => !matches!(spec.rpc, Rpc::LookupPerson | Rpc::CheckPowerOfAttorney),
            Scope::NotQueued => !matches!(spec.rpc, Rpc::SendAsync | Rpc::WorkstationDeliver | Rpc::RegionalDeliver),
        }
    }

    fn expected_at(&self, spec: &Spec) -> (Code, &'static str) {
        if spec.gateway { self.at_gateway.unwrap_or(self.expected) } else { self.expected }
    }
}

const CLASSES: &[Class] = &[
    class(Break::NoEnvelope, Code::InvalidArgument, "envelope.missing"),
    class(Break::HeaderGarbage, Code::InvalidArgument, "envelope.malformed_header"),
    class(Break::EmptyMessageId, Code::InvalidArgument, "envelope.missing_field"),
    class(Break::HugeHeader, Code::ResourceExhausted, "envelope.too_large"),
    class(Break::NoSignature, Code::Unauthenticated, "envelope.missing_signature"),
    class(Break::ShortSignature, Code::Unauthenticated, "envelope.bad_signature"),
    class(Break::BodyChangedAfterSigning, Code::Unauthenticated, "envelope.bad_signature"),
    class(Break::UnknownSender, Code::Unauthenticated, "envelope.unknown_sender"),
    class(Break::UnknownKey, Code::Unauthenticated, "envelope.unknown_key"),
    class(Break::OtherMembersKey, Code::Unauthenticated, "envelope.key_not_of_sender"),
    class(Break::Stale, Code::InvalidArgument, "envelope.stale").not_queued(),
    class(Break::Future, Code::InvalidArgument, "envelope.future"),
    class(Break::WrongRecipient, Code::InvalidArgument, "envelope.wrong_recipient")
        .at_gateway(Code::InvalidArgument, "gateway.wrong_recipient"),
    class(Break::WrongService, Code::InvalidArgument, "envelope.wrong_service")
        .at_gateway(Code::NotFound, "gateway.unknown_service"),
    class(Break::WrongMessageType, Code::InvalidArgument, "envelope.wrong_message_type"),
    class(Break::WrongRole, Code::PermissionDenied, "access.denied"),
    class(Break::WrongBodyType, Code::InvalidArgument, "envelope.body_type_mismatch"),
    class(Break::MalformedBody, Code::InvalidArgument, "envelope.malformed_body"),
    class(Break::TooLarge, Code::ResourceExhausted, "envelope.too_large"),
    class(Break::NoCountersignature, Code::Unauthenticated, "envelope.missing_countersignature").countersigned_only(),
    class(Break::ForgedCountersignature, Code::Unauthenticated, "envelope.bad_countersignature").countersigned_only(),
    class(Break::ExtraSignature, Code::InvalidArgument, "envelope.unexpected_signature"),
    class(Break::ReusedMessageId, Code::AlreadyExists, "envelope.replayed_message_id").stateful_only(),
    class(Break::ReusedMessageIdBodyGarbage, Code::AlreadyExists, "envelope.replayed_message_id").stateful_only(),
];

/// The service centre whose queue the good calls of the next ticket call (`CallNext`).
const CALL_CENTRE: &str = "receivers";

/// Every RPC that takes an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    OpenForm,
    SubmitApplication,
    TakeQueueTicket,
    CallNext,
    IssueResult,
    WithdrawApplication,
    WorkstationDeliver,
    SendSync,
    SendAsync,
    LookupPerson,
    CheckPowerOfAttorney,
    RegionalDeliver,
    PerformStaffAction,
    SignResult,
    ReceiveAtOffice,
}

/// A good message for one RPC: who sends it, to whom, what.
struct Spec {
    rpc: Rpc,
    name: &'static str,
    sender: &'static str,
    recipient: &'static str,
    service: &'static str,
    message_type: MessageType,
    /// The gateway delivers or forwards it: the receiver requires the gateway's countersignature.
    countersigned: bool,
    /// The gateway itself, which routes the message on.
    gateway: bool,
    /// A member whose role may not send this service.
    outsider: &'static str,
}

const RPCS: &[Spec] = &[
    Spec {
        rpc: Rpc::OpenForm,
        name: "WorkstationService.OpenForm",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::FORM_OPEN,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::SubmitApplication,
        name: "WorkstationService.SubmitApplication",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::FORM_SUBMIT,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::TakeQueueTicket,
        name: "WorkstationService.TakeQueueTicket",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::QUEUE_TICKET,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::CallNext,
        name: "WorkstationService.CallNext",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::QUEUE_CALL,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::IssueResult,
        name: "WorkstationService.IssueResult",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::RESULT_ISSUE,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::WithdrawApplication,
        name: "WorkstationService.WithdrawApplication",
        sender: "operator-1",
        recipient: ids::SC_WORKSTATION,
        service: services::FORM_WITHDRAW,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "office-1",
    },
    Spec {
        rpc: Rpc::WorkstationDeliver,
        name: "InboxService.Deliver@workstation",
        sender: ids::REGIONAL,
        recipient: ids::SC_WORKSTATION,
        service: services::APPLICATION_PROGRESS,
        message_type: MessageType::Notification,
        countersigned: true,
        gateway: false,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::SendSync,
        name: "GatewayService.SendSync",
        sender: ids::SC_WORKSTATION,
        recipient: ids::INDIVIDUALS,
        service: services::PERSON_LOOKUP,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: true,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::SendAsync,
        name: "GatewayService.SendAsync",
        sender: ids::SC_WORKSTATION,
        recipient: ids::REGIONAL,
        service: services::APPLICATION_SUBMIT,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: true,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::LookupPerson,
        name: "IndividualsService.LookupPerson",
        sender: ids::SC_WORKSTATION,
        recipient: ids::INDIVIDUALS,
        service: services::PERSON_LOOKUP,
        message_type: MessageType::Request,
        countersigned: true,
        gateway: false,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::CheckPowerOfAttorney,
        name: "NotaryService.CheckPowerOfAttorney",
        sender: ids::SC_WORKSTATION,
        recipient: ids::NOTARY,
        service: services::POWER_OF_ATTORNEY_CHECK,
        message_type: MessageType::Request,
        countersigned: true,
        gateway: false,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::RegionalDeliver,
        name: "InboxService.Deliver@rshep-astana",
        sender: ids::SC_WORKSTATION,
        recipient: ids::REGIONAL,
        service: services::APPLICATION_SUBMIT,
        message_type: MessageType::Request,
        countersigned: true,
        gateway: false,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::PerformStaffAction,
        name: "RegionalGatewayService.PerformStaffAction",
        sender: "office-1",
        recipient: ids::REGIONAL,
        service: services::STAFF_ACTION,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::SignResult,
        name: "RegionalGatewayService.SignResult",
        sender: "head-1",
        recipient: ids::REGIONAL,
        service: services::RESULT_SIGN,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        // None but the staff may send it; which of them signs is the definition's (a specialist who
        // tries gets process.wrong_actor from the transition: tests/envelopes.rs).
        outsider: "operator-1",
    },
    Spec {
        rpc: Rpc::ReceiveAtOffice,
        name: "RegionalGatewayService.ReceiveAtOffice",
        sender: "office-1",
        recipient: ids::REGIONAL,
        service: services::OFFICE_RECEIVE,
        message_type: MessageType::Request,
        countersigned: false,
        gateway: false,
        outsider: "operator-1",
    },
];

fn spec(rpc: Rpc) -> &'static Spec {
    RPCS.iter().find(|spec| spec.rpc == rpc).unwrap()
}

/// What a refusal of a message naming another application than its body's says.
const CORRELATION_MISMATCH: (Code, &str) = (Code::InvalidArgument, "envelope.correlation_mismatch");

/// An unknown protobuf field (number 127, varint 1): the body still decodes, its bytes differ.
const UNKNOWN_FIELD: &[u8] = &[0xf8, 0x07, 0x01];

const APPLICANT_IIN: &str = "850715300122";
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn documents() -> Vec<AttachedDocument> {
    common::documents(&["application-form", "identity-document"]).iter().map(DocumentPlan::to_proto).collect()
}

fn encoded<B: Body>(body: &B) -> (&'static str, Vec<u8>) {
    (B::TYPE, body.encode_to_vec())
}

/// Judges one answer against `(code, reason)`: `None` when it is that refusal,
/// with the reason in the `egov-reason` trailer and as the message's prefix;
/// otherwise what was answered.
fn judge(answer: &Result<(), Status>, (code, reason): (Code, &str)) -> Option<String> {
    match answer {
        Err(status)
            if status.code() == code
                && reason_of(status) == Some(reason)
                && status.message().starts_with(&format!("{reason}: ")) =>
        {
            None
        }
        answer => Some(describe(answer)),
    }
}

fn describe(answer: &Result<(), Status>) -> String {
    match answer {
        Ok(()) => "OK (accepted)".to_owned(),
        Err(status) => {
            let message: String = status.message().chars().take(110).collect();
            format!("{:?} {} \"{message}\"", status.code(), reason_of(status).unwrap_or("(no egov-reason)"))
        }
    }
}

/// A good message before it is sealed: what a class breaks.
#[derive(Clone)]
struct Draft {
    header: EnvelopeHeader,
    body: Vec<u8>,
    signer: Signer,
    countersigned: bool,
}

/// What a good message is about: an application and, at the ARM, its registration.
struct Subject {
    application_id: String,
    registration: Option<Registration>,
}

impl Subject {
    fn application(application_id: &str) -> Subject {
        Subject { application_id: application_id.to_owned(), registration: None }
    }

    fn registration(&self) -> &Registration {
        self.registration.as_ref().unwrap()
    }
}

struct Clients {
    workstation: WorkstationServiceClient<Channel>,
    workstation_inbox: InboxServiceClient<Channel>,
    gateway: GatewayServiceClient<Channel>,
    individuals: IndividualsServiceClient<Channel>,
    notary: NotaryServiceClient<Channel>,
    regional_inbox: InboxServiceClient<Channel>,
    regional: RegionalGatewayServiceClient<Channel>,
}

struct Fixture {
    harness: Harness,
    clients: Clients,
    /// operator-1's session at the workstation (process 1).
    session_id: String,
    operator: OperatorClient,
    staff: StaffClient,
    staff_keys: HashMap<String, Signer>,
    gateway_key: Signer,
    next_id: AtomicU64,
}

impl Fixture {
    async fn start() -> Fixture {
        let harness = Harness::start().await;
        let topology = harness.topology().clone();
        let channel = |address: &str| Topology::channel(address).unwrap();
        let clients = Clients {
            workstation: WorkstationServiceClient::new(channel(&topology.workstation))
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            workstation_inbox: InboxServiceClient::new(channel(&topology.workstation))
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            gateway: GatewayServiceClient::new(channel(&topology.gateway))
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            individuals: IndividualsServiceClient::new(channel(&topology.individuals))
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            notary: NotaryServiceClient::new(channel(&topology.notary)).max_encoding_message_size(MAX_MESSAGE_BYTES),
            regional_inbox: InboxServiceClient::new(channel(&topology.regional))
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            regional: RegionalGatewayServiceClient::new(channel(&topology.regional))
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        };
        let login = LoginRequest {
            login: "operator-1".to_owned(),
            password: "operator-1-password".to_owned(),
            client_time_ms: now_ms(),
        };
        let session_id = clients.workstation.clone().login(login).await.unwrap().into_inner().session_id;
        let operator =
            OperatorClient::new(channel(&topology.workstation), harness.signer("operator-1"), Arc::new(SystemClock))
                .with_session(session_id.clone());
        let (staff, staff_keys, gateway_key) = (harness.staff(), harness.staff_keys(), harness.signer(ids::GATEWAY));
        Fixture { harness, clients, session_id, operator, staff, staff_keys, gateway_key, next_id: AtomicU64::new(1) }
    }

    fn fresh_id(&self, what: &str) -> String {
        format!("{what}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn step_id(&self, effect: Effect) -> String {
        self.harness.definition.step_by_effect(effect).unwrap().id.clone()
    }

    /// The one place that exercises the receivers: sends one bad input of
    /// `class` to `spec`'s RPC, judges the answer, then sends a good request.
    /// Returns a table row for each answer that is not the expected one.
    async fn check(&self, class: &Class, spec: &Spec) -> Vec<String> {
        let (code, reason) = class.expected_at(spec);
        let row = |sent: &str, expected: &str, today: String| {
            format!("| {:?} | {} | {sent} | {expected} | {today} |", class.breaks, spec.name)
        };
        let mut rows = Vec::new();
        let subject = self.prepare(spec).await;
        let draft = self.draft(spec, &subject);
        if class.breaks.resends() {
            let first = self.send(spec.rpc, Some(self.seal(&draft))).await;
            if first.is_err() {
                rows.push(row("the first, good message", "OK", describe(&first)));
            }
        }
        let bad = self.bad(class.breaks, spec, draft);
        if let Some(today) = judge(&self.send(spec.rpc, bad).await, (code, reason)) {
            rows.push(row("the bad input", &format!("{code:?} {reason}"), today));
        }
        let subject = self.prepare(spec).await;
        let next = self.send(spec.rpc, Some(self.seal(&self.draft(spec, &subject)))).await;
        if next.is_err() {
            rows.push(row("then a good message", "OK", describe(&next)));
        }
        rows
    }

    /// Makes what a good message for `spec` needs: an application at the step the RPC does.
    async fn prepare(&self, spec: &Spec) -> Subject {
        let application_id = self.fresh_id(&format!("{:?}", spec.rpc).to_lowercase());
        match spec.rpc {
            Rpc::OpenForm
            | Rpc::SendSync
            | Rpc::SendAsync
            | Rpc::LookupPerson
            | Rpc::CheckPowerOfAttorney
            | Rpc::RegionalDeliver
            | Rpc::ReceiveAtOffice => Subject::application(&application_id),
            Rpc::SubmitApplication | Rpc::WithdrawApplication | Rpc::WorkstationDeliver => {
                self.open(&application_id).await;
                Subject::application(&application_id)
            }
            Rpc::TakeQueueTicket => {
                self.ready_to_issue(&application_id).await;
                Subject::application(&application_id)
            }
            Rpc::CallNext => {
                // Calls at a centre of its own, whose queue no other case fills: a call gives no ticket, or
                // the one called before again.
                Subject::application(&ids::queue_correlation(CALL_CENTRE))
            }
            Rpc::IssueResult => {
                // Process 9 serves the ticket called to the operator: those taken before are called and
                // served first, in their order, until this application's is called.
                self.ready_to_issue(&application_id).await;
                self.operator.take_ticket(&application_id).await.unwrap();
                for _ in 0..1000 {
                    let called = self.operator.call_next().await.unwrap().application.unwrap();
                    if called.application_id == application_id {
                        break;
                    }
                    let _ = self.operator.issue(&called.application_id).await;
                }
                Subject::application(&application_id)
            }
            Rpc::PerformStaffAction => {
                let registration = self.register(&application_id).await;
                Subject { application_id, registration: Some(registration) }
            }
            Rpc::SignResult => {
                let registration = self.register(&application_id).await;
                let registration = self.staff_until(registration, Some(Effect::SignResult)).await;
                Subject { application_id, registration: Some(registration) }
            }
        }
    }

    /// A good message for `spec` about `subject`, with a new message id, sent now.
    fn draft(&self, spec: &Spec, subject: &Subject) -> Draft {
        let signer = self.harness.signer(spec.sender);
        let application_id = subject.application_id.clone();
        let mut header = signer.header(
            uuid::Uuid::new_v4().to_string(),
            &application_id,
            spec.service,
            spec.recipient,
            now_ms(),
            spec.message_type,
        );
        let session_id = self.session_id.clone();
        let (body_type, body) = match spec.rpc {
            Rpc::OpenForm => encoded(&ApplicationForm {
                session_id,
                service_code: self.harness.definition.service.code.clone(),
                applicant_iin: APPLICANT_IIN.to_owned(),
                representative: None,
            }),
            Rpc::SubmitApplication => {
                encoded(&ApplicationSubmission { session_id, application_id, documents: documents() })
            }
            Rpc::TakeQueueTicket => encoded(&ApplicantArrival { session_id, application_id, centre: String::new() }),
            Rpc::CallNext => {
                encoded(&NextTicketCall { session_id, centre: CALL_CENTRE.to_owned(), window: "1".to_owned() })
            }
            Rpc::IssueResult => encoded(&ResultPickup { session_id, application_id }),
            Rpc::WithdrawApplication => {
                encoded(&ApplicationWithdrawal { session_id, application_id, reason: "left".to_owned() })
            }
            Rpc::WorkstationDeliver => {
                encoded(&ApplicationProgress { application_id, ..ApplicationProgress::default() })
            }
            Rpc::SendSync | Rpc::LookupPerson => encoded(&PersonQuery { iin: APPLICANT_IIN.to_owned() }),
            Rpc::SendAsync | Rpc::RegionalDeliver => encoded(&self.delivery(&application_id)),
            Rpc::CheckPowerOfAttorney => encoded(&PowerOfAttorneyQuery {
                number: "NP-2026-0001".to_owned(),
                principal_iin: "920611400773".to_owned(),
                attorney_iin: "870322300457".to_owned(),
                on_date: "2026-06-01".to_owned(),
                service_code: self.harness.definition.service.code.clone(),
                issued_on: String::new(),
                at: "2026-06-01T10:00:00+05:00".to_owned(),
            }),
            Rpc::PerformStaffAction => {
                let application = subject.registration().application.as_ref().unwrap();
                encoded(&StaffAction {
                    registration_id: application.registration_id.clone(),
                    step_id: application.current_step.clone(),
                    ..StaffAction::default()
                })
            }
            // The head signs the draft's exact bytes.
            Rpc::SignResult => (ServiceResult::TYPE, subject.registration().draft_result.clone()),
            Rpc::ReceiveAtOffice => encoded(&OfficeReception {
                application_id,
                service_code: self.harness.definition.service.code.clone(),
                applicant_iin: APPLICANT_IIN.to_owned(),
                representative: None,
                documents: documents(),
                arrived_time_ms: 0,
            }),
        };
        header.body_type = body_type.to_owned();
        Draft { header, body, signer, countersigned: spec.countersigned }
    }

    /// Signs as the sender, lets `after_signing` change the envelope, then
    /// countersigns as the gateway where the receiver requires it (the gateway
    /// countersigns whatever it forwards).
    fn seal_then(&self, draft: &Draft, header: Vec<u8>, after_signing: impl FnOnce(&mut Envelope)) -> Envelope {
        let mut envelope = draft.signer.seal_bytes(header, draft.body.clone());
        after_signing(&mut envelope);
        if draft.countersigned {
            countersign(&mut envelope, &self.gateway_key).unwrap();
        }
        envelope
    }

    /// Seals the draft's header and body; `after_signing` as in `seal_then`.
    fn seal_after(&self, draft: &Draft, after_signing: impl FnOnce(&mut Envelope)) -> Envelope {
        self.seal_then(draft, draft.header.encode_to_vec(), after_signing)
    }

    fn seal(&self, draft: &Draft) -> Envelope {
        self.seal_after(draft, |_| {})
    }

    /// `draft` with the one thing `breaks` breaks.
    fn bad(&self, breaks: Break, spec: &Spec, mut draft: Draft) -> Option<Envelope> {
        let header = &mut draft.header;
        match breaks {
            Break::NoEnvelope => return None,
            Break::HeaderGarbage => return Some(self.seal_then(&draft, vec![0xff, 0xff, 0xff], |_| {})),
            Break::EmptyMessageId => header.message_id.clear(),
            Break::HugeHeader => header.message_id = "m".repeat(20 * 1024),
            Break::NoSignature => {
                // Nothing for the gateway to countersign either.
                draft.countersigned = false;
                return Some(self.seal_after(&draft, |envelope| envelope.signatures.clear()));
            }
            Break::ShortSignature => {
                return Some(self.seal_after(&draft, |envelope| envelope.signatures[0].ed25519.truncate(63)));
            }
            Break::BodyChangedAfterSigning => {
                return Some(self.seal_after(&draft, |envelope| {
                    envelope.body = [&envelope.body[..], UNKNOWN_FIELD].concat().into();
                }));
            }
            Break::UnknownSender => {
                header.sender_id = "stranger".to_owned();
                draft.signer = Signer::from_seed("stranger", "stranger:1", &[7; 32]);
            }
            Break::UnknownKey => {
                draft.signer = Signer::from_seed(spec.sender, format!("{}:not-registered", spec.sender), &[7; 32]);
            }
            Break::OtherMembersKey => draft.signer = self.harness.signer("operator-2"),
            Break::Stale => header.message_time_ms -= 10 * 60_000,
            Break::Future => header.message_time_ms += 10 * 60_000,
            Break::WrongRecipient => {
                header.recipient_id =
                    if spec.recipient == ids::NOTARY { ids::INDIVIDUALS } else { ids::NOTARY }.to_owned();
            }
            Break::WrongService => header.service_id = "egov.nothing.v1".to_owned(),
            Break::WrongMessageType => {
                let other = if spec.message_type == MessageType::Request {
                    MessageType::Notification
                } else {
                    MessageType::Request
                };
                header.message_type = other as i32;
            }
            Break::WrongRole => {
                header.sender_id = spec.outsider.to_owned();
                draft.signer = self.harness.signer(spec.outsider);
            }
            Break::WrongBodyType => {
                let other = if header.body_type == StaffAction::TYPE { ResultPickup::TYPE } else { StaffAction::TYPE };
                header.body_type = other.to_owned();
            }
            Break::MalformedBody | Break::ReusedMessageIdBodyGarbage => draft.body = vec![0xff, 0xff, 0xff, 0x01],
            Break::TooLarge => {
                // Field 127, length-delimited, of zeros: prost skips it.
                let filler = 10 * 1024 * 1024 + 1;
                draft.body.extend_from_slice(&[0xfa, 0x07]);
                prost::encoding::encode_varint(filler as u64, &mut draft.body);
                draft.body.resize(draft.body.len() + filler, 0);
            }
            Break::NoCountersignature => draft.countersigned = false,
            Break::ForgedCountersignature => {
                let mut envelope = self.seal(&draft);
                let impostor = Signer::from_seed(ids::GATEWAY, self.gateway_key.key_id(), &[9; 32]);
                countersign(&mut envelope, &impostor).unwrap();
                return Some(envelope);
            }
            Break::ExtraSignature => {
                let mut envelope = self.seal(&draft);
                let other =
                    self.harness.signer("operator-2").seal_bytes(envelope.header.clone(), envelope.body.clone());
                envelope.signatures.extend(other.signatures);
                return Some(envelope);
            }
            Break::ReusedMessageId => draft.body.extend_from_slice(UNKNOWN_FIELD),
        }
        Some(self.seal(&draft))
    }

    async fn send(&self, rpc: Rpc, envelope: Option<Envelope>) -> Result<(), Status> {
        let clients = &self.clients;
        match rpc {
            Rpc::OpenForm => clients.workstation.clone().open_form(OpenFormRequest { envelope }).await.map(|_| ()),
            Rpc::SubmitApplication => {
                clients.workstation.clone().submit_application(SubmitApplicationRequest { envelope }).await.map(|_| ())
            }
            Rpc::WithdrawApplication => clients
                .workstation
                .clone()
                .withdraw_application(WithdrawApplicationRequest { envelope })
                .await
                .map(|_| ()),
            Rpc::TakeQueueTicket => {
                clients.workstation.clone().take_queue_ticket(TakeQueueTicketRequest { envelope }).await.map(|_| ())
            }
            Rpc::CallNext => clients.workstation.clone().call_next(CallNextRequest { envelope }).await.map(|_| ()),
            Rpc::IssueResult => {
                clients.workstation.clone().issue_result(IssueResultRequest { envelope }).await.map(|_| ())
            }
            Rpc::WorkstationDeliver => {
                clients.workstation_inbox.clone().deliver(DeliverRequest { envelope }).await.map(|_| ())
            }
            Rpc::SendSync => clients.gateway.clone().send_sync(SendSyncRequest { envelope }).await.map(|_| ()),
            Rpc::SendAsync => clients.gateway.clone().send_async(SendAsyncRequest { envelope }).await.map(|_| ()),
            Rpc::LookupPerson => {
                clients.individuals.clone().lookup_person(LookupPersonRequest { envelope }).await.map(|_| ())
            }
            Rpc::CheckPowerOfAttorney => clients
                .notary
                .clone()
                .check_power_of_attorney(CheckPowerOfAttorneyRequest { envelope })
                .await
                .map(|_| ()),
            Rpc::RegionalDeliver => {
                clients.regional_inbox.clone().deliver(DeliverRequest { envelope }).await.map(|_| ())
            }
            Rpc::PerformStaffAction => {
                clients.regional.clone().perform_staff_action(PerformStaffActionRequest { envelope }).await.map(|_| ())
            }
            Rpc::SignResult => clients.regional.clone().sign_result(SignResultRequest { envelope }).await.map(|_| ()),
            Rpc::ReceiveAtOffice => {
                clients.regional.clone().receive_at_office(ReceiveAtOfficeRequest { envelope }).await.map(|_| ())
            }
        }
    }

    /// Processes 1 to 4 for a new application: it waits for the operator's signed submission.
    async fn open(&self, application_id: &str) {
        let service = &self.harness.definition.service.code;
        self.operator.open_form(application_id, service, APPLICANT_IIN, None).await.unwrap();
    }

    /// What the workstation sends the ARM for `application_id`, with the operator's signed submission inside.
    fn delivery(&self, application_id: &str) -> ApplicationDelivery {
        let operator = self.harness.signer("operator-1");
        let header = operator.header(
            uuid::Uuid::new_v4().to_string(),
            application_id,
            services::FORM_SUBMIT,
            ids::SC_WORKSTATION,
            now_ms(),
            MessageType::Request,
        );
        let submission = ApplicationSubmission {
            session_id: self.session_id.clone(),
            application_id: application_id.to_owned(),
            documents: documents(),
        };
        ApplicationDelivery {
            application_id: application_id.to_owned(),
            service_code: self.harness.definition.service.code.clone(),
            applicant: Some(PersonRecord { iin: APPLICANT_IIN.to_owned(), ..PersonRecord::default() }),
            documents: documents(),
            operator_submission: Some(operator.seal(&header, &submission)),
            ..ApplicationDelivery::default()
        }
    }

    /// Process 7 at the ARM, delivered as the gateway would: the registration at action 1.
    async fn register(&self, application_id: &str) -> Registration {
        let draft = self.draft(spec(Rpc::RegionalDeliver), &Subject::application(application_id));
        self.send(Rpc::RegionalDeliver, Some(self.seal(&draft))).await.unwrap();
        let queue = self.staff.queue(roles::PROVIDER_OFFICE).await.unwrap();
        queue.into_iter().find(|r| r.application.as_ref().unwrap().application_id == application_id).unwrap()
    }

    /// Does the staff's steps, approving, until the current step has `effect` (`None`: to the end).
    async fn staff_until(&self, mut registration: Registration, effect: Option<Effect>) -> Registration {
        let definition = &self.harness.definition;
        while !registration.next_actor.is_empty() {
            let step_id = registration.application.as_ref().unwrap().current_step.clone();
            let step = definition.step(&step_id).unwrap();
            // Up to the step's own actor: a hand-over that begins it is done first.
            if effect.is_some() && step.effect == effect && registration.next_actor == step.actor {
                break;
            }
            let signer = &self.staff_keys[&registration.next_actor];
            // The signing step begins with the executor's hand-over (a step of theirs).
            registration = if step.effect == Some(Effect::SignResult) && registration.next_actor == step.actor {
                self.staff.sign(signer, &registration).await
            } else {
                let decision = if step.kind == StepKind::Condition {
                    egov_proto::Decision::Yes
                } else {
                    egov_proto::Decision::Unspecified
                };
                self.staff.act(signer, &registration, &step_id, decision, "").await
            }
            .unwrap();
        }
        registration
    }

    /// The whole route up to process 9: the signed result waits at the workstation.
    async fn ready_to_issue(&self, application_id: &str) {
        self.open(application_id).await;
        self.operator.submit(application_id, documents()).await.unwrap();
        let application = self.wait(application_id, "registration", |a| !a.registration_id.is_empty()).await;
        let registration = self.staff.registration(&application.registration_id).await.unwrap();
        self.staff_until(registration, None).await;
        let issue = self.step_id(Effect::IssueResult);
        self.wait(application_id, "the signed result", |a| a.current_step == issue).await;
    }

    /// Polls the workstation until the application is `done`: the route between
    /// the participants is asynchronous (the gateway's outbox delivers).
    async fn wait(&self, application_id: &str, what: &str, done: impl Fn(&Application) -> bool) -> Application {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let application = self.operator.application(application_id).await.unwrap();
            if done(&application) {
                return application;
            }
            let at = &application.current_step;
            assert!(tokio::time::Instant::now() < deadline, "{application_id}: no {what} in 30 s (at {at})");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The application's current step: at the ARM for a registration, else at the workstation.
    async fn current_step(&self, subject: &Subject) -> String {
        match &subject.registration {
            Some(registration) => {
                let registration_id = &registration.application.as_ref().unwrap().registration_id;
                self.staff.registration(registration_id).await.unwrap().application.unwrap().current_step
            }
            None => self.operator.application(&subject.application_id).await.unwrap().current_step,
        }
    }

    /// Sends `rpc`'s good message about `subject` with the correlation id `other`;
    /// it must be refused and leave the application at its step.
    async fn check_correlation(&self, rpc: Rpc, subject: &Subject, other: &str) -> Vec<String> {
        let spec = spec(rpc);
        let before = self.current_step(subject).await;
        let mut draft = self.draft(spec, subject);
        draft.header.correlation_id = other.to_owned();
        let answer = self.send(rpc, Some(self.seal(&draft))).await;
        let mut differences = Vec::new();
        if let Some(today) = judge(&answer, CORRELATION_MISMATCH) {
            differences.push(format!("{}: {today}", spec.name));
        }
        let after = self.current_step(subject).await;
        if after != before {
            differences.push(format!("{}: the application moved from {before} to {after}", spec.name));
        }
        differences
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_refuses_each_class_of_bad_input_alike() {
    let fixture = Fixture::start().await;
    let mut rows = Vec::new();
    let mut cells = 0;
    for class in CLASSES {
        for spec in RPCS.iter().filter(|spec| class.applies_to(spec)) {
            cells += 1;
            rows.extend(fixture.check(class, spec).await);
        }
    }
    fixture.harness.stop().await;
    assert!(
        rows.is_empty(),
        "{} answers in {cells} (class, RPC) pairs differ from the table:\n\
         | class | RPC | sent | expected | today |\n|---|---|---|---|---|\n{}",
        rows.len(),
        rows.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_correlation_id_is_another_applications_is_refused_and_changes_nothing() {
    let fixture = Fixture::start().await;
    let (mine, other) = (fixture.fresh_id("mine"), fixture.fresh_id("other"));
    fixture.open(&other).await;
    fixture.open(&mine).await;
    let mut differences = Vec::new();

    // Process 5: a submission of `mine` whose envelope names `other`.
    differences.extend(fixture.check_correlation(Rpc::SubmitApplication, &Subject::application(&mine), &other).await);

    // At the ARM, a real registration: action 1, then the head's signature, named for `other`.
    fixture.operator.submit(&mine, documents()).await.unwrap();
    let application = fixture.wait(&mine, "registration", |a| !a.registration_id.is_empty()).await;
    let registration = fixture.staff.registration(&application.registration_id).await.unwrap();
    let at_action_1 = Subject { application_id: mine.clone(), registration: Some(registration) };
    differences.extend(fixture.check_correlation(Rpc::PerformStaffAction, &at_action_1, &other).await);
    let registration = fixture.staff.registration(&application.registration_id).await.unwrap();
    let registration = fixture.staff_until(registration, Some(Effect::SignResult)).await;
    let at_signature = Subject { application_id: mine.clone(), registration: Some(registration) };
    differences.extend(fixture.check_correlation(Rpc::SignResult, &at_signature, &other).await);

    // A withdrawal of a form named for another application.
    let unsubmitted = fixture.fresh_id("unsubmitted");
    fixture.open(&unsubmitted).await;
    differences
        .extend(fixture.check_correlation(Rpc::WithdrawApplication, &Subject::application(&unsubmitted), &other).await);

    // Process 9: the hand-over of `mine`'s result, named for `other`.
    let registration = fixture.staff.registration(&application.registration_id).await.unwrap();
    fixture.staff_until(registration, None).await;
    let issue = fixture.step_id(Effect::IssueResult);
    fixture.wait(&mine, "the signed result", |a| a.current_step == issue).await;
    differences.extend(fixture.check_correlation(Rpc::TakeQueueTicket, &Subject::application(&mine), &other).await);
    differences.extend(fixture.check_correlation(Rpc::IssueResult, &Subject::application(&mine), &other).await);

    fixture.harness.stop().await;
    assert!(differences.is_empty(), "expected {CORRELATION_MISMATCH:?} and no change:\n{}", differences.join("\n"));
}

/// A value of 20,000 characters: letters of two alphabets, no white space.
fn long_value() -> String {
    "Жx".repeat(10_000)
}

/// The gRPC code of each reason, as `docs/envelope.md` documents it.
fn documented_codes() -> HashMap<String, String> {
    let document =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/envelope.md"))
            .unwrap();
    let mut codes = HashMap::new();
    for line in document.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        for reason in cells[1].split('`').skip(1).step_by(2) {
            codes.insert(reason.to_owned(), cells[2].to_owned());
        }
    }
    codes
}

/// Judges the answer to a request with [`long_value`] in one field: taken, or
/// refused with a documented reason code, its documented gRPC code, the
/// reason as the message's prefix, at most 64 characters of the value quoted
/// and a message within 1 KiB. `None` when so; otherwise what was answered.
fn judge_long(answer: &Result<Vec<u8>, Status>, codes: &HashMap<String, String>) -> Option<String> {
    let Err(status) = answer else { return None };
    let Some(reason) = reason_of(status) else {
        return Some(format!("{:?} without a reason code: {:.120}", status.code(), status.message()));
    };
    let code = format!("{:?}", status.code());
    let documented = codes.get(reason).map(|code| code.replace('_', "").to_lowercase());
    if !documented.is_some_and(|documented| documented.contains(&code.to_lowercase()) || documented.contains("tonic")) {
        return Some(format!("{code} {reason}: not the code docs/envelope.md gives ({:?})", codes.get(reason)));
    }
    let message = status.message();
    let value = long_value();
    let quoted_too_much = value.chars().take(65).collect::<String>();
    let quoted_too_much_shifted = value.chars().skip(1).take(65).collect::<String>();
    if !message.starts_with(&format!("{reason}: "))
        || message.len() > egov_runtime::status::MAX_MESSAGE_BYTES
        || message.contains(&quoted_too_much)
        || message.contains(&quoted_too_much_shifted)
    {
        return Some(format!("{code} {reason}, a message of {} bytes: {:.200}", message.len(), message));
    }
    None
}

/// The paths to every string field of `message`, through its message fields
/// (a repeated one: its first element) up to a depth that covers every request.
fn string_paths(message: &prost_reflect::MessageDescriptor) -> Vec<Vec<prost_reflect::FieldDescriptor>> {
    fn walk(
        message: &prost_reflect::MessageDescriptor,
        prefix: &[prost_reflect::FieldDescriptor],
        paths: &mut Vec<Vec<prost_reflect::FieldDescriptor>>,
    ) {
        assert!(prefix.len() < 6, "the messages nest deeper than a request does: {prefix:?}");
        for field in message.fields() {
            let path = [prefix, std::slice::from_ref(&field)].concat();
            match field.kind() {
                prost_reflect::Kind::String => paths.push(path),
                prost_reflect::Kind::Message(inner) if !field.is_map() => walk(&inner, &path, paths),
                _ => {}
            }
        }
    }
    let mut paths = Vec::new();
    walk(message, &[], &mut paths);
    paths
}

fn path_name(path: &[prost_reflect::FieldDescriptor]) -> String {
    path.iter().map(|field| field.name()).collect::<Vec<_>>().join(".")
}

/// `bytes`, a `descriptor` message, with `value` at `path` (creating the
/// messages on the way; a repeated field: its first element, or a new one).
fn with_value(
    descriptor: &prost_reflect::MessageDescriptor,
    bytes: &[u8],
    path: &[prost_reflect::FieldDescriptor],
    value: &str,
) -> Vec<u8> {
    use prost_reflect::{DynamicMessage, Value};
    fn set(message: &mut DynamicMessage, path: &[prost_reflect::FieldDescriptor], value: &str) {
        let (field, rest) = path.split_first().unwrap();
        if rest.is_empty() {
            let string = Value::String(value.to_owned());
            message.set_field(field, if field.is_list() { Value::List(vec![string]) } else { string });
            return;
        }
        match message.get_field_mut(field) {
            Value::Message(inner) => set(inner, rest, value),
            Value::List(list) => {
                if list.is_empty() {
                    list.push(Value::Message(DynamicMessage::new(field.kind().as_message().unwrap().clone())));
                }
                let Value::Message(inner) = &mut list[0] else { unreachable!("a list of messages") };
                set(inner, rest, value);
            }
            other => panic!("{} is no message: {other:?}", field.full_name()),
        }
    }
    let mut message = DynamicMessage::decode(descriptor.clone(), bytes).unwrap();
    set(&mut message, path, value);
    message.encode_to_vec()
}

/// Where a service that takes no envelope is served: its participants' addresses.
fn served_at(topology: &Topology, service: &str) -> Vec<String> {
    match service {
        "WorkstationService" => vec![topology.workstation.clone()],
        "GatewayService" => vec![topology.gateway.clone()],
        "RegionalGatewayService" => vec![topology.regional.clone()],
        "EvidenceService" => vec![topology.workstation.clone(), topology.gateway.clone(), topology.regional.clone()],
        "WitnessService" => vec![topology.workstation.clone(), topology.gateway.clone(), topology.regional.clone()],
        "AdminService" => vec![
            topology.workstation.clone(),
            topology.gateway.clone(),
            topology.individuals.clone(),
            topology.notary.clone(),
            topology.regional.clone(),
        ],
        _ => Vec::new(),
    }
}

/// Where an RPC that takes an envelope is served (one `Spec` each).
fn spec_address(topology: &Topology, spec: &Spec) -> String {
    let address = match spec.rpc {
        Rpc::OpenForm
        | Rpc::SubmitApplication
        | Rpc::TakeQueueTicket
        | Rpc::CallNext
        | Rpc::IssueResult
        | Rpc::WithdrawApplication
        | Rpc::WorkstationDeliver => &topology.workstation,
        Rpc::SendSync | Rpc::SendAsync => &topology.gateway,
        Rpc::LookupPerson => &topology.individuals,
        Rpc::CheckPowerOfAttorney => &topology.notary,
        Rpc::RegionalDeliver | Rpc::PerformStaffAction | Rpc::SignResult | Rpc::ReceiveAtOffice => &topology.regional,
    };
    address.clone()
}

/// Issue 27, item 7: a value of 20,000 characters in any string field of any
/// RPC (the request's own fields, and for an RPC that takes an envelope, its
/// header's, its signatures' and its body's, walked from the descriptor set)
/// is taken or refused with a reason code, within a status every gRPC client
/// takes. Each field of each RPC is one case, sent to a good message of the RPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_20000_characters_in_any_string_field_of_any_rpc_is_refused_within_bounds() {
    use prost_reflect::DescriptorPool;
    let fixture = Fixture::start().await;
    let topology = fixture.harness.topology().clone();
    let pool = DescriptorPool::decode(egov_proto::FILE_DESCRIPTOR_SET).unwrap();
    let codes = documented_codes();
    let value = long_value();
    let header_type = pool.get_message_by_name("egov.v1.EnvelopeHeader").unwrap();
    let mut rows = Vec::new();
    let (mut cases, mut refused, mut methods) = (0, 0, 0);
    for service in pool.services() {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let input = method.input();
            let takes_envelope = input.get_field_by_name("envelope").is_some_and(|f| f.kind().as_message().is_some());
            let name = format!("{}.{}", service.name(), method.name());
            let specs: Vec<&Spec> =
                RPCS.iter().filter(|spec| spec.name.split('@').next() == Some(name.as_str())).collect();
            let addresses = served_at(&topology, service.name());
            if service.name() == "EchoService" {
                continue; // `egov bench`'s own echo server, no participant's.
            }
            assert!(
                if takes_envelope { !specs.is_empty() } else { !addresses.is_empty() },
                "{path}: no way to reach it in this test"
            );
            methods += 1;
            let mut judged = |case: String, answer: Result<Vec<u8>, Status>| {
                cases += 1;
                refused += usize::from(answer.is_err());
                if let Some(today) = judge_long(&answer, &codes) {
                    rows.push(format!("| {case} | {today} |"));
                }
                answer.is_ok()
            };
            if !takes_envelope {
                for address in &addresses {
                    for field in string_paths(&input) {
                        let bytes = with_value(&input, &[], &field, &value);
                        let answer = common::raw::call(address, &path, bytes, method.is_server_streaming()).await;
                        judged(format!("{name} at {address}: {}", path_name(&field)), answer);
                    }
                }
                continue;
            }
            for spec in specs {
                let address = spec_address(&topology, spec);
                let body_type = fixture.draft(spec, &fixture.prepare(spec).await).header.body_type;
                let body_type = pool.get_message_by_name(&body_type).unwrap();
                // What the long value goes into: the request's fields, the header's, the body's.
                let mut targets: Vec<(&str, Vec<prost_reflect::FieldDescriptor>)> = Vec::new();
                targets.extend(string_paths(&input).into_iter().map(|p| ("request", p)));
                targets.extend(string_paths(&header_type).into_iter().map(|p| ("header", p)));
                targets.extend(string_paths(&body_type).into_iter().map(|p| ("body", p)));
                // A refusal changes nothing: the subject serves until a case is taken.
                let mut subject = fixture.prepare(spec).await;
                for (part, field) in targets {
                    let mut draft = fixture.draft(spec, &subject);
                    let mut header = draft.header.encode_to_vec();
                    match part {
                        "header" => header = with_value(&header_type, &header, &field, &value),
                        "body" => draft.body = with_value(&body_type, &draft.body, &field, &value),
                        _ => {}
                    }
                    let envelope = fixture.seal_then(&draft, header, |_| {});
                    let mut request = common::raw::request_with_envelope(&envelope.encode_to_vec());
                    if part == "request" {
                        request = with_value(&input, &request, &field, &value);
                    }
                    let answer = common::raw::call(&address, &path, request, false).await;
                    if judged(format!("{} ({part}): {}", spec.name, path_name(&field)), answer) {
                        subject = fixture.prepare(spec).await;
                    }
                }
            }
        }
    }
    fixture.harness.stop().await;
    // 26 RPCs (InboxService.Deliver at two participants, AdminService at five), 292 fields in all.
    assert!(methods >= 26 && cases > 250, "only {cases} cases in {methods} RPCs");
    assert!(refused > cases / 2, "only {refused} of {cases} refused: the cases reach the checks");
    assert!(
        rows.is_empty(),
        "{} of {cases} answers to a value of 20,000 characters are out of bounds:\n| RPC: field | today |\n|---|---|\n{}",
        rows.len(),
        rows.join("\n")
    );
}

/// Issue 27, item 10: the envelope a delivery carries (the operator's signed
/// submission) is held to the limits and the rule for ids of every envelope,
/// at the gateway and at the ARM: refused as a bad carried envelope, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_a_delivery_carries_is_held_to_the_header_limit_and_the_rule_for_ids() {
    let fixture = Fixture::start().await;
    let operator = fixture.harness.signer("operator-1");
    type Breaks = fn(&mut EnvelopeHeader);
    let breaks: [(&str, Breaks, &str); 3] = [
        ("a header of 20 KiB", |header| header.message_id = "m".repeat(20 * 1024), "envelope.too_large"),
        ("a correlation id ../x/<b>", |header| header.correlation_id = "../x/<b>".to_owned(), "request.bad_id"),
        ("a message id with a slash", |header| header.message_id = "a/b".to_owned(), "request.bad_id"),
    ];
    let mut rows = Vec::new();
    for rpc in [Rpc::SendAsync, Rpc::RegionalDeliver] {
        let spec = spec(rpc);
        for (what, breaks, inner) in breaks {
            let subject = fixture.prepare(spec).await;
            let mut draft = fixture.draft(spec, &subject);
            let mut delivery = fixture.delivery(&subject.application_id);
            let carried = delivery.operator_submission.take().unwrap();
            let mut header = EnvelopeHeader::decode(&carried.header[..]).unwrap();
            breaks(&mut header);
            delivery.operator_submission = Some(operator.seal_bytes(header.encode_to_vec(), carried.body));
            draft.body = delivery.encode_to_vec();
            let answer = fixture.send(rpc, Some(fixture.seal(&draft))).await;
            let expected = (Code::InvalidArgument, "envelope.bad_carried_envelope");
            match judge(&answer, expected) {
                Some(today) => rows.push(format!("{}, {what}: {today}", spec.name)),
                None => {
                    let message = answer.unwrap_err().message().to_owned();
                    if !message.contains(&format!("{inner}: ")) {
                        rows.push(format!("{}, {what}: the message does not name {inner}: {message}", spec.name));
                    }
                }
            }
        }
    }
    fixture.harness.stop().await;
    assert!(rows.is_empty(), "expected envelope.bad_carried_envelope:\n{}", rows.join("\n"));
}
