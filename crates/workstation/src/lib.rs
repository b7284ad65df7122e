//! The State Corporation operator's workstation (ARM GK): sessions
//! (process 1), the request form (process 2), the look-ups through the gateway
//! (process 3, condition 1, process 4), the operator-signed submission sent on
//! through the gateway (processes 5 and 6), the provider's progress and result
//! as they come back, and the hand-over of the result (process 9).
#![forbid(unsafe_code)]

mod operators;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use egov_envelope::{Checks, Verified, services};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::inbox_service_server::{InboxService, InboxServiceServer};
use egov_proto::workstation_service_server::{WorkstationService, WorkstationServiceServer};
use egov_proto::{
    Application, ApplicationDelivery, ApplicationForm, ApplicationProgress, ApplicationSubmission, DeliverRequest,
    DeliverResponse, Envelope, GetApplicationRequest, GetApplicationResponse, IssueResultRequest, IssueResultResponse,
    LoginRequest, LoginResponse, MessageType, Notice, OpenFormRequest, OpenFormResponse, PersonAnswer, PersonQuery,
    PersonRecord, PowerOfAttorney, PowerOfAttorneyAnswer, PowerOfAttorneyKind, PowerOfAttorneyQuery,
    PowerOfAttorneyStatus, Representative, ResultPickup, SendAsyncResponse, SendSyncRequest, ServiceResult,
    SubmitApplicationRequest, SubmitApplicationResponse,
};
use egov_regulation::instance::to_local;
use egov_regulation::{Branch, Calendar, Definition, Event, Iin, Instance, apply};
use egov_runtime::idempotency::stored_answer;
use egov_runtime::ids::roles;
use egov_runtime::outbox::{Outbox, ToGateway};
use egov_runtime::{Context, Expect, Refusal, convert, ids};
use egov_store::{Batch, OutboxItem, Store, StoreError, Versioned};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Response, Status};

pub use operators::{OperatorAccount, Operators};

/// How long `SubmitApplication` waits for the gateway's receipt before it
/// answers with process 6 still pending (the outbox keeps trying).
pub const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// How long one look-up through the gateway may take before it is resent.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Sends of one look-up, the first included.
const LOOKUP_ATTEMPTS: u32 = 3;

/// How long an operator's session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    operator_id: String,
    /// When process 1 happened (the simulated time on simulated time).
    logged_in_ms: i64,
    /// When the session ends, on the operational clock.
    expires_ms: i64,
}

/// An application as the State Corporation keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApplicationRecord {
    application_id: String,
    service_code: String,
    applicant_iin: String,
    operator_id: String,
    representative: Option<Representative>,
    instance: Instance,
    applicant: Option<PersonRecord>,
    power_of_attorney: Option<PowerOfAttorney>,
    notice_code: Option<String>,
    registration_id: Option<String>,
    due_ms: Option<i64>,
    /// The gateway's countersigned receipt of process 6.
    #[serde(with = "hex")]
    receipt: Vec<u8>,
    /// The head-signed result.
    #[serde(with = "hex")]
    result: Vec<u8>,
}

fn application_key(application_id: &str) -> String {
    format!("application/{application_id}")
}

fn session_key(session_id: &str) -> String {
    format!("session/{session_id}")
}

fn invalid(reason: &'static str, message: impl std::fmt::Display) -> Refusal {
    Refusal::new(Code::InvalidArgument, reason, message)
}

fn check_iin(what: &str, text: &str) -> Result<Iin, Refusal> {
    Iin::parse(text).map_err(|e| invalid(e.code(), format!("{what} {text}: {e}")))
}

/// The workstation's state, shared by its services and its outbox courier.
#[derive(Debug)]
struct Workstation {
    context: Context,
    definition: Arc<Definition>,
    store: Store,
    outbox: Arc<Outbox>,
    gateway: GatewayServiceClient<tonic::transport::Channel>,
    operators: Operators,
}

/// The workstation's gRPC services: the operators' service and the inbox the gateway delivers to.
#[derive(Debug, Clone)]
pub struct WorkstationServer {
    workstation: Arc<Workstation>,
}

impl WorkstationServer {
    /// The services and the outbox worker, which the caller spawns.
    pub fn new(
        context: Context,
        definition: Arc<Definition>,
        store: Store,
        outbox: Arc<Outbox>,
        gateway: GatewayServiceClient<tonic::transport::Channel>,
        operators: Operators,
    ) -> (WorkstationServer, impl std::future::Future<Output = ()> + Send + 'static) {
        let workstation = Arc::new(Workstation {
            context,
            definition,
            store,
            outbox: Arc::clone(&outbox),
            gateway: gateway.clone(),
            operators,
        });
        let on_accepted = {
            let workstation = Arc::clone(&workstation);
            move |item: &OutboxItem, receipt: &SendAsyncResponse| workstation.record_receipt(item, receipt)
        };
        let worker = outbox.run(Arc::new(ToGateway::new(gateway, on_accepted)));
        (WorkstationServer { workstation }, worker)
    }

    pub fn workstation_service(&self) -> WorkstationServiceServer<WorkstationServer> {
        WorkstationServiceServer::new(self.clone()).max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn inbox_service(&self) -> InboxServiceServer<WorkstationServer> {
        InboxServiceServer::new(self.clone()).max_decoding_message_size(64 * 1024 * 1024)
    }
}

impl Workstation {
    fn calendar(&self) -> &'static Calendar {
        Calendar::kazakhstan()
    }

    fn step_for(&self, effect: &str) -> Result<&egov_regulation::Step, Refusal> {
        self.definition.step_by_effect(effect).ok_or_else(|| {
            Refusal::new(
                Code::Internal,
                "regulation.missing_effect",
                format!("the definition has no step with effect {effect}"),
            )
        })
    }

    fn load(&self, application_id: &str) -> Result<Versioned<ApplicationRecord>, Refusal> {
        self.store.get::<ApplicationRecord>(&application_key(application_id)).map_err(Refusal::from)?.ok_or_else(|| {
            Refusal::new(Code::NotFound, "workstation.unknown_application", format!("no application {application_id}"))
        })
    }

    /// The operator's session, checked to be theirs and alive.
    fn session(&self, session_id: &str, verified: &Verified) -> Result<Session, Refusal> {
        let unauthenticated = |message: String| Refusal::new(Code::Unauthenticated, "workstation.bad_session", message);
        let session = self
            .store
            .get::<Session>(&session_key(session_id))
            .map_err(Refusal::from)?
            .ok_or_else(|| unauthenticated(format!("no session {session_id}: log in first (process 1)")))?
            .value;
        if session.operator_id != verified.header.sender_id {
            return Err(unauthenticated(format!("session {session_id} is not {}'s", verified.header.sender_id)));
        }
        if session.expires_ms <= self.context.now_ms() {
            return Err(unauthenticated(format!("session {session_id} has expired: log in again")));
        }
        Ok(session)
    }

    fn event(
        &self,
        step: &egov_regulation::Step,
        actor_id: &str,
        branch: Option<Branch>,
        detail: impl Into<String>,
    ) -> Event {
        Event {
            step_id: step.id.clone(),
            actor_role: step.actor.clone(),
            actor_id: actor_id.to_owned(),
            branch,
            detail: detail.into(),
        }
    }

    fn advance(&self, instance: &Instance, event: &Event, now_ms: i64) -> Result<Instance, Refusal> {
        apply(&self.definition, instance, event, now_ms, self.calendar()).map_err(Refusal::from)
    }

    fn to_application(&self, record: &ApplicationRecord) -> Application {
        let notice = record.notice_code.as_deref().and_then(|code| self.definition.notice(code)).map(|label| Notice {
            code: label.code.clone(),
            text_kk: label.kk.clone(),
            text_ru: label.ru.clone(),
            text_en: label.en.clone(),
        });
        let mut application = Application {
            application_id: record.application_id.clone(),
            service_code: record.service_code.clone(),
            applicant_iin: record.applicant_iin.clone(),
            notice,
            registration_id: record.registration_id.clone().unwrap_or_default(),
            due_time_ms: record.due_ms.unwrap_or(0),
            operator_id: record.operator_id.clone(),
            ..Application::default()
        };
        convert::instance_fields(&self.definition, &record.instance, &mut application);
        application
    }

    async fn login(&self, request: LoginRequest) -> Result<LoginResponse, Refusal> {
        let account = self.operators.authenticate(&request.login, &request.password).ok_or_else(|| {
            Refusal::new(Code::Unauthenticated, "workstation.bad_credentials", "login or password is wrong")
        })?;
        let now_ms = if self.context.message_time && request.client_time_ms > 0 {
            request.client_time_ms
        } else {
            self.context.now_ms()
        };
        let session = Session {
            operator_id: account.operator_id.clone(),
            logged_in_ms: now_ms,
            expires_ms: self.context.now_ms() + SESSION_TTL_MS,
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        let mut batch = Batch::new();
        batch.put(session_key(&session_id), 0, &session).map_err(Refusal::from)?;
        self.store.commit(batch).await.map_err(Refusal::from)?;
        tracing::info!(operator = %account.operator_id, "operator logged in (process 1)");
        Ok(LoginResponse { session_id, operator_id: session.operator_id, expires_time_ms: session.expires_ms })
    }

    /// Checks process 2's form before anything is looked up or stored.
    fn check_form(&self, form: &ApplicationForm, application_id: &str) -> Result<(), Refusal> {
        if form.service_code != self.definition.service.code {
            return Err(Refusal::new(
                Code::NotFound,
                "workstation.unknown_service",
                format!(
                    "service {:?} is not offered here (this workstation serves {})",
                    form.service_code, self.definition.service.code
                ),
            ));
        }
        if application_id.is_empty()
            || application_id.len() > 128
            || !application_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "workstation.bad_application_id",
                format!("application id {application_id:?} must be 1-128 letters, digits, '-', '_' or '.'"),
            ));
        }
        check_iin("applicant IIN", &form.applicant_iin)?;
        if let Some(representative) = &form.representative {
            check_iin("representative IIN", &representative.iin)?;
            if representative.iin == form.applicant_iin {
                return Err(invalid(
                    "workstation.self_representation",
                    "the representative's IIN is the applicant's own",
                ));
            }
            match PowerOfAttorneyKind::try_from(representative.kind).unwrap_or(PowerOfAttorneyKind::Unspecified) {
                PowerOfAttorneyKind::Unspecified => {
                    return Err(invalid(
                        "workstation.missing_field",
                        "representative.kind must say how the power of attorney is certified",
                    ));
                }
                PowerOfAttorneyKind::Notarised => {
                    if representative.power_of_attorney_number.trim().is_empty() {
                        return Err(invalid(
                            "workstation.missing_field",
                            "a notarised power of attorney needs its number",
                        ));
                    }
                    if !representative.power_of_attorney_issued_on.is_empty()
                        && NaiveDate::parse_from_str(&representative.power_of_attorney_issued_on, "%Y-%m-%d").is_err()
                    {
                        return Err(invalid(
                            "workstation.bad_date",
                            "power_of_attorney_issued_on must be an ISO date (YYYY-MM-DD)",
                        ));
                    }
                }
                PowerOfAttorneyKind::Other => {
                    if !representative.power_of_attorney_number.is_empty()
                        || !representative.power_of_attorney_issued_on.is_empty()
                    {
                        return Err(invalid(
                            "workstation.power_of_attorney_data_not_empty",
                            "for a power of attorney not notarised, its data is left empty (process 2)",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends a look-up through the gateway's synchronous channel and checks the answer.
    async fn look_up<Q: egov_proto::Body, A: egov_proto::Body>(
        &self,
        application_id: &str,
        service_id: &str,
        recipient_id: &str,
        responder_role: &str,
        time_ms: i64,
        query: &Q,
    ) -> Result<A, Status> {
        let request = self.context.seal(application_id, service_id, recipient_id, MessageType::Request, time_ms, query);
        let answer = self.send_sync_patiently(request).await?;
        let envelope = answer.envelope.ok_or_else(|| {
            Refusal::new(Code::Internal, "workstation.bad_answer", "the gateway answered without an envelope")
        })?;
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[service_id],
                message_types: &[MessageType::Response],
                senders: &[responder_role],
                via_gateway: true,
            },
        )?;
        if verified.header.sender_id != recipient_id || verified.header.correlation_id != application_id {
            return Err(Refusal::new(
                Code::Internal,
                "workstation.bad_answer",
                format!("answer from {} does not match the request", verified.header.sender_id),
            )
            .into());
        }
        Ok(Context::body(&envelope, &verified)?)
    }

    /// Sends through the gateway's synchronous channel, resending the same
    /// envelope (the gateway answers a resend once) while the failure may pass.
    async fn send_sync_patiently(&self, request: Envelope) -> Result<egov_proto::SendSyncResponse, Status> {
        let mut attempt = 1;
        loop {
            let mut gateway = self.gateway.clone();
            let call = gateway.send_sync(SendSyncRequest { envelope: Some(request.clone()) });
            let status = match tokio::time::timeout(LOOKUP_TIMEOUT, call).await {
                Ok(Ok(answer)) => return Ok(answer.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded(format!("the gateway did not answer within {LOOKUP_TIMEOUT:?}")),
            };
            if attempt >= LOOKUP_ATTEMPTS || !egov_runtime::status::is_retryable(&status) {
                return Err(status);
            }
            self.context.counters.add("lookup_retries", 1);
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            attempt += 1;
        }
    }

    /// Processes 2, 3, condition 1 and, where data are missing, process 4.
    async fn open_form(&self, envelope: Envelope) -> Result<OpenFormResponse, Status> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::FORM_OPEN],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_OPERATOR],
                via_gateway: false,
            },
        )?;
        if let Some(response) = stored_answer(&self.store, &verified, &envelope)? {
            return OpenFormResponse::decode(response.as_slice()).map_err(|e| {
                Refusal::new(Code::Internal, "store.corrupt", format!("stored answer does not decode: {e}")).into()
            });
        }
        let form: ApplicationForm = Context::body(&envelope, &verified)?;
        let session = self.session(&form.session_id, &verified)?;
        let application_id = verified.header.correlation_id.clone();
        self.check_form(&form, &application_id)?;
        if self.store.get::<ApplicationRecord>(&application_key(&application_id)).map_err(Refusal::from)?.is_some() {
            return Err(Refusal::new(
                Code::AlreadyExists,
                "workstation.application_exists",
                format!("application {application_id} exists already"),
            )
            .into());
        }
        let operator_id = verified.header.sender_id.clone();
        let event_ms = self.context.event_time(&verified);
        let log_in = self.step_for("log-in")?;
        let open_form = self.step_for("open-form")?;
        let mut instance = Instance::start(&self.definition, session.logged_in_ms);
        instance = self.advance(&instance, &self.event(log_in, &operator_id, None, ""), session.logged_in_ms)?;
        let mut form_event = self.event(open_form, &operator_id, None, "");
        form_event.actor_role = verified.sender_role.as_str().to_owned();
        instance = self.advance(&instance, &form_event, event_ms)?;

        // Process 3: the look-ups through the gateway.
        let person: PersonAnswer = self
            .look_up(
                &application_id,
                services::PERSON_LOOKUP,
                ids::INDIVIDUALS,
                roles::INDIVIDUALS,
                event_ms,
                &PersonQuery { iin: form.applicant_iin.clone() },
            )
            .await?;
        let notarised = form.representative.as_ref().filter(|r| r.kind == PowerOfAttorneyKind::Notarised as i32);
        let power: Option<PowerOfAttorneyAnswer> = match notarised {
            None => None,
            Some(representative) => {
                let today = to_local(self.calendar(), event_ms).map(|t| t.date_naive().to_string()).unwrap_or_default();
                let query = PowerOfAttorneyQuery {
                    number: representative.power_of_attorney_number.clone(),
                    principal_iin: form.applicant_iin.clone(),
                    attorney_iin: representative.iin.clone(),
                    on_date: today,
                    service_code: form.service_code.clone(),
                    issued_on: representative.power_of_attorney_issued_on.clone(),
                };
                Some(
                    self.look_up(
                        &application_id,
                        services::POWER_OF_ATTORNEY_CHECK,
                        ids::NOTARY,
                        roles::NOTARY,
                        event_ms,
                        &query,
                    )
                    .await?,
                )
            }
        };
        let me = self.context.member_id().to_owned();
        let look_up_detail = format!(
            "individuals: {}{}",
            if person.found { "found" } else { "not found" },
            power.as_ref().map(|p| format!("; notary: {}", p.status().as_str_name())).unwrap_or_default()
        );
        instance =
            self.advance(&instance, &self.event(self.step_for("look-up")?, &me, None, look_up_detail), event_ms)?;

        // Condition 1: are the data present?
        let notice_code = condition_1(&person, power.as_ref());
        let branch = if notice_code.is_some() { Branch::No } else { Branch::Yes };
        let condition = self.step_for("data-present")?;
        instance = self.advance(
            &instance,
            &self.event(condition, &me, Some(branch), notice_code.unwrap_or_default()),
            event_ms,
        )?;
        if let Some(code) = notice_code {
            let notice_step = self.step_for("data-notice")?;
            instance = self.advance(&instance, &self.event(notice_step, &me, None, code), event_ms)?;
        }
        let record = ApplicationRecord {
            application_id: application_id.clone(),
            service_code: form.service_code.clone(),
            applicant_iin: form.applicant_iin.clone(),
            operator_id,
            representative: form.representative.clone(),
            instance,
            applicant: person.person.clone().filter(|_| person.found),
            power_of_attorney: power.as_ref().and_then(|p| p.power_of_attorney.clone()),
            notice_code: notice_code.map(str::to_owned),
            registration_id: None,
            due_ms: None,
            receipt: Vec::new(),
            result: Vec::new(),
        };
        let response = OpenFormResponse {
            application: Some(self.to_application(&record)),
            applicant: record.applicant.clone(),
            power_of_attorney: record.power_of_attorney.clone(),
        };
        let mut batch = Batch::new();
        batch.put(application_key(&application_id), 0, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        self.store.commit(batch).await.map_err(Refusal::from)?;
        tracing::info!(%application_id, outcome = ?record.instance.outcome, "form opened, data looked up");
        Ok(response)
    }

    /// Checks the documents against the definition's checklist (paragraph 9).
    fn check_documents(&self, record: &ApplicationRecord, submission: &ApplicationSubmission) -> Result<(), Refusal> {
        for document in &submission.documents {
            if !self.definition.documents.iter().any(|d| d.code == document.kind) {
                return Err(invalid(
                    "workstation.unknown_document_kind",
                    format!("document kind {:?} is not in the checklist", document.kind),
                ));
            }
            let hash_ok = document.sha256.len() == 64
                && document.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hash_ok {
                return Err(invalid(
                    "workstation.bad_document_hash",
                    format!("document {:?}: sha256 must be 64 lower-case hex digits", document.kind),
                ));
            }
            if !document.content.is_empty() && hex::encode(Sha256::digest(&document.content)) != document.sha256 {
                return Err(invalid(
                    "workstation.document_hash_mismatch",
                    format!("document {:?}: the scan does not match its sha256", document.kind),
                ));
            }
            if document.pages == 0 {
                return Err(invalid("workstation.bad_document", format!("document {:?} has no pages", document.kind)));
            }
        }
        let missing: Vec<&str> = self
            .definition
            .documents
            .iter()
            .filter(|d| d.required || (d.when.as_deref() == Some("representative") && record.representative.is_some()))
            .filter(|d| !submission.documents.iter().any(|attached| attached.kind == d.code))
            .map(|d| d.code.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "workstation.incomplete_package",
                format!("the package lacks: {} (refused at reception; nothing is sent)", missing.join(", ")),
            ));
        }
        Ok(())
    }

    /// Process 5 (the operator's EDS) and process 6 (sent on through the gateway).
    async fn submit(&self, envelope: Envelope) -> Result<SubmitApplicationResponse, Status> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::FORM_SUBMIT],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_OPERATOR],
                via_gateway: false,
            },
        )?;
        let submission: ApplicationSubmission = Context::body(&envelope, &verified)?;
        if stored_answer(&self.store, &verified, &envelope)?.is_some() {
            return self.submit_response(&submission.application_id).await;
        }
        self.session(&submission.session_id, &verified)?;
        if submission.application_id != verified.header.correlation_id {
            return Err(invalid(
                "workstation.correlation_mismatch",
                "the envelope's correlation_id must be the application id",
            )
            .into());
        }
        let stored = self.load(&submission.application_id)?;
        let mut record = stored.value;
        if record.operator_id != verified.header.sender_id {
            return Err(Refusal::new(
                Code::PermissionDenied,
                "workstation.not_your_application",
                format!("application {} was opened by {}", record.application_id, record.operator_id),
            )
            .into());
        }
        let sign = self.step_for("sign-submission")?;
        let mut event = self.event(sign, &verified.header.sender_id, None, verified.key_id.clone());
        event.actor_role = verified.sender_role.as_str().to_owned();
        let now_ms = self.context.event_time(&verified);
        record.instance = self.advance(&record.instance, &event, now_ms)?;
        self.check_documents(&record, &submission)?;
        let delivery = ApplicationDelivery {
            application_id: record.application_id.clone(),
            service_code: record.service_code.clone(),
            applicant: record.applicant.clone(),
            representative: record.representative.clone(),
            power_of_attorney: record.power_of_attorney.clone(),
            documents: submission.documents.clone(),
            operator_submission: Some(envelope.clone()),
            path: record.instance.path.iter().map(|step| convert::step_to_proto(&self.definition, step)).collect(),
        };
        let message = self.context.seal(
            &record.application_id,
            services::APPLICATION_SUBMIT,
            ids::REGIONAL,
            MessageType::Request,
            now_ms,
            &delivery,
        );
        let message_bytes = message.encode_to_vec();
        let mut batch = Batch::new();
        batch.put(application_key(&record.application_id), stored.version, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        batch.log(self.context.now_ms(), "sent", message_bytes.clone(), ids::GATEWAY);
        batch.enqueue(ids::GATEWAY, message_bytes, self.context.now_ms());
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            Vec::new(),
        );
        let outbox_ids = self.store.commit(batch).await.map_err(Refusal::from)?;
        self.outbox.kick();
        tracing::info!(application_id = %record.application_id, "submission signed (process 5), queued for the gateway");
        if let Some(&id) = outbox_ids.first() {
            self.outbox.wait_sent(id, RECEIPT_WAIT).await;
        }
        self.submit_response(&record.application_id).await
    }

    async fn submit_response(&self, application_id: &str) -> Result<SubmitApplicationResponse, Status> {
        let record = self.load(application_id)?.value;
        Ok(SubmitApplicationResponse {
            application: Some(self.to_application(&record)),
            gateway_receipt: Envelope::decode(record.receipt.as_slice()).ok().filter(|_| !record.receipt.is_empty()),
        })
    }

    /// Process 6 is done when the gateway has taken the message: records its receipt.
    fn record_receipt(&self, item: &OutboxItem, receipt: &SendAsyncResponse) -> Batch {
        let mut batch = Batch::new();
        let result = (|| -> Result<(), Refusal> {
            let stored = self.load(&receipt.correlation_id)?;
            let mut record = stored.value;
            let send = self.step_for("send-application")?;
            if record.instance.current.as_deref() != Some(send.id.as_str()) {
                return Ok(());
            }
            let detail = format!("gateway message {}", receipt.message_id);
            record.instance = self.advance(
                &record.instance,
                &self.event(send, self.context.member_id(), None, detail),
                receipt.accepted_time_ms.max(record.instance.current_since_ms),
            )?;
            record.receipt = receipt.receipt.as_ref().map(Message::encode_to_vec).unwrap_or_default();
            batch.put(application_key(&record.application_id), stored.version, &record).map_err(Refusal::from)?;
            Ok(())
        })();
        if let Err(refusal) = result {
            tracing::error!(id = item.id, reason = refusal.reason, "gateway receipt not recorded: {}", refusal.message);
        }
        batch
    }

    /// The regional gateway ARM's progress and, with action 4, the signed result.
    async fn receive_progress(&self, envelope: Envelope) -> Result<DeliverResponse, Status> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::APPLICATION_PROGRESS],
                message_types: &[MessageType::Notification, MessageType::Response],
                senders: &[roles::REGIONAL_ARM],
                via_gateway: true,
            },
        )?;
        if let Some(response) = stored_answer(&self.store, &verified, &envelope)? {
            return DeliverResponse::decode(response.as_slice()).map_err(|e| {
                Refusal::new(Code::Internal, "store.corrupt", format!("stored answer does not decode: {e}")).into()
            });
        }
        let progress: ApplicationProgress = Context::body(&envelope, &verified)?;
        let stored = self.load(&verified.header.correlation_id)?;
        let mut record = stored.value;
        for remote in &progress.path {
            if record.instance.record(&remote.step_id).is_some() {
                continue;
            }
            if record.instance.current.as_deref() != Some(remote.step_id.as_str()) {
                break;
            }
            let remote_record = convert::step_from_proto(remote);
            let event = Event {
                step_id: remote_record.step_id.clone(),
                actor_role: remote_record.actor.clone(),
                actor_id: remote_record.actor_id.clone(),
                branch: remote_record.branch,
                detail: remote_record.detail.clone(),
            };
            record.instance =
                self.advance(&record.instance, &event, remote_record.ended_ms.max(record.instance.current_since_ms))?;
            if let Some(last) = record.instance.path.last_mut() {
                *last = remote_record;
            }
        }
        if let Some(ahead) = progress.path.iter().find(|remote| record.instance.record(&remote.step_id).is_none()) {
            // The provider is ahead of what this workstation has recorded (process 6's
            // receipt not yet in): refuse for now; the gateway delivers it again.
            return Err(Refusal::new(
                Code::Aborted,
                "workstation.progress_ahead",
                format!(
                    "{} reported before {} was recorded here",
                    ahead.step_id,
                    record.instance.current.clone().unwrap_or_default()
                ),
            )
            .into());
        }
        record.registration_id =
            Some(progress.registration_id.clone()).filter(|id| !id.is_empty()).or(record.registration_id);
        if progress.due_time_ms != 0 {
            record.due_ms = Some(progress.due_time_ms);
        }
        if let Some(result) = &progress.signed_result {
            self.check_result(result, &record)?;
            record.result = result.encode_to_vec();
        }
        let now_ms = self.context.now_ms();
        let response = DeliverResponse { message_id: verified.header.message_id.clone(), accepted_time_ms: now_ms };
        let mut batch = Batch::new();
        batch.put(application_key(&record.application_id), stored.version, &record).map_err(Refusal::from)?;
        batch.log(now_ms, "received", envelope.encode_to_vec(), "");
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            response.encode_to_vec(),
        );
        self.store.commit(batch).await.map_err(Refusal::from)?;
        Ok(response)
    }

    /// The result must be signed by the role of the definition's signing step, for this application.
    fn check_result(&self, result: &Envelope, record: &ApplicationRecord) -> Result<(), Refusal> {
        let bad = |message: String| invalid("workstation.bad_result", message);
        let checks = Checks { freshness_window_ms: None, ..self.context.checks.clone() };
        let verified =
            self.context.open(result, &checks).map_err(|e| bad(format!("the result's signature is refused: {e}")))?;
        let signer_role = &self.step_for("sign-result")?.actor;
        if verified.sender_role.as_str() != signer_role {
            return Err(bad(format!(
                "the result is signed by {} ({}), not by the {signer_role}",
                verified.header.sender_id, verified.sender_role
            )));
        }
        let body: ServiceResult = Context::body(result, &verified)?;
        if body.application_id != record.application_id {
            return Err(bad(format!("the result is for application {}", body.application_id)));
        }
        Ok(())
    }

    /// Process 9: the operator hands the result to the applicant.
    async fn issue(&self, envelope: Envelope) -> Result<IssueResultResponse, Status> {
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::RESULT_ISSUE],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_OPERATOR],
                via_gateway: false,
            },
        )?;
        let pickup: ResultPickup = Context::body(&envelope, &verified)?;
        if stored_answer(&self.store, &verified, &envelope)?.is_some() {
            let record = self.load(&pickup.application_id)?.value;
            return Ok(self.issue_response(&record));
        }
        self.session(&pickup.session_id, &verified)?;
        let stored = self.load(&pickup.application_id)?;
        let mut record = stored.value;
        let issue = self.step_for("issue-result")?;
        let mut event = self.event(issue, &verified.header.sender_id, None, "");
        event.actor_role = verified.sender_role.as_str().to_owned();
        let now_ms = self.context.event_time(&verified);
        record.instance = self.advance(&record.instance, &event, now_ms)?;
        if record.result.is_empty() {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "workstation.result_not_ready",
                "the signed result has not arrived",
            )
            .into());
        }
        let mut batch = Batch::new();
        batch.put(application_key(&record.application_id), stored.version, &record).map_err(Refusal::from)?;
        batch.log(self.context.now_ms(), "received", envelope.encode_to_vec(), "");
        batch.remember(
            &verified.header.sender_id,
            &verified.header.message_id,
            egov_runtime::idempotency::digest(&envelope),
            Vec::new(),
        );
        self.store.commit(batch).await.map_err(Refusal::from)?;
        tracing::info!(application_id = %record.application_id, outcome = ?record.instance.outcome, "result handed out (process 9)");
        Ok(self.issue_response(&record))
    }

    fn issue_response(&self, record: &ApplicationRecord) -> IssueResultResponse {
        IssueResultResponse {
            application: Some(self.to_application(record)),
            result: Envelope::decode(record.result.as_slice()).ok().filter(|_| !record.result.is_empty()),
        }
    }
}

/// Runs `call` again while it lost a race for the application's record (a
/// progress message from the provider landed between its read and its write):
/// the call wrote nothing, so running it again is safe.
async fn again_on_conflict<T, F, Fut>(call: F) -> Result<T, Status>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match call().await {
            Err(status) if attempts < 8 && egov_runtime::reason_of(&status) == Some("store.conflict") => continue,
            outcome => return outcome,
        }
    }
}

/// Condition 1: the notice code of process 4 when the data are not present.
fn condition_1(person: &PersonAnswer, power: Option<&PowerOfAttorneyAnswer>) -> Option<&'static str> {
    let Some(found) = person.person.as_ref().filter(|_| person.found) else {
        return Some("process-4.applicant-not-found");
    };
    if !found.death_date.is_empty() || found.life_status.as_ref().is_some_and(|status| status.code != "0") {
        return Some("process-4.applicant-deceased");
    }
    match power.map(PowerOfAttorneyAnswer::status) {
        None | Some(PowerOfAttorneyStatus::Valid) => None,
        Some(PowerOfAttorneyStatus::NotFound) => Some("process-4.power-of-attorney-not-found"),
        Some(_) => Some("process-4.power-of-attorney-invalid"),
    }
}

#[tonic::async_trait]
impl WorkstationService for WorkstationServer {
    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        Ok(Response::new(self.workstation.login(request.into_inner()).await?))
    }

    async fn open_form(&self, request: Request<OpenFormRequest>) -> Result<Response<OpenFormResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        Ok(Response::new(self.workstation.open_form(envelope).await?))
    }

    async fn submit_application(
        &self,
        request: Request<SubmitApplicationRequest>,
    ) -> Result<Response<SubmitApplicationResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        Ok(Response::new(again_on_conflict(|| self.workstation.submit(envelope.clone())).await?))
    }

    async fn get_application(
        &self,
        request: Request<GetApplicationRequest>,
    ) -> Result<Response<GetApplicationResponse>, Status> {
        let application_id = request.into_inner().application_id;
        let record = self.workstation.load(&application_id)?.value;
        Ok(Response::new(GetApplicationResponse { application: Some(self.workstation.to_application(&record)) }))
    }

    async fn issue_result(
        &self,
        request: Request<IssueResultRequest>,
    ) -> Result<Response<IssueResultResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        Ok(Response::new(again_on_conflict(|| self.workstation.issue(envelope.clone())).await?))
    }
}

#[tonic::async_trait]
impl InboxService for WorkstationServer {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        Ok(Response::new(self.workstation.receive_progress(envelope).await?))
    }
}

/// One step or term of an application that missed its deadline or is at risk of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaRow {
    pub application_id: String,
    pub registration_id: String,
    /// A step id or a term id.
    pub item: String,
    pub deadline_ms: i64,
    /// None while open.
    pub ended_ms: Option<i64>,
    pub standing: egov_regulation::instance::Standing,
}

/// The steps and terms of the applications in `store` (a workstation's,
/// opened while the workstation is stopped) that are missed or at risk at `now_ms`.
pub fn sla_report(
    store: &Store,
    definition: &Definition,
    calendar: &Calendar,
    now_ms: i64,
) -> Result<Vec<SlaRow>, StoreError> {
    use egov_regulation::instance::{Standing, current_deadline, deadline};
    let mut rows = Vec::new();
    for (_, record) in store.scan::<ApplicationRecord>("application/")? {
        let record = record.value;
        let mut row = |item: &str, started: i64, deadline_ms: Option<i64>, ended_ms: Option<i64>| {
            let standing = Standing::of(started, deadline_ms, ended_ms, now_ms, calendar);
            if let (Standing::Missed | Standing::AtRisk, Some(deadline_ms)) = (standing, deadline_ms) {
                rows.push(SlaRow {
                    application_id: record.application_id.clone(),
                    registration_id: record.registration_id.clone().unwrap_or_default(),
                    item: item.to_owned(),
                    deadline_ms,
                    ended_ms,
                    standing,
                });
            }
        };
        for step in &record.instance.path {
            row(&step.step_id, step.started_ms, step.deadline_ms, Some(step.ended_ms));
        }
        if let Some(current) = &record.instance.current {
            row(
                current,
                record.instance.current_since_ms,
                current_deadline(definition, &record.instance, calendar),
                None,
            );
        }
        for term in &definition.terms {
            let Some(from) = record.instance.record(&term.from) else { continue };
            let ended = record.instance.record(&term.to).map(|step| step.ended_ms);
            row(&term.id, from.started_ms, deadline(calendar, from.started_ms, term.duration), ended);
        }
    }
    Ok(rows)
}
