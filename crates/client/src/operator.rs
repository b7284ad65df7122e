use std::sync::Arc;

use egov_envelope::{Checks, EnvelopeError, Signer, TrustRegistry, Verified, services};
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{
    ApplicantArrival, Application, ApplicationForm, ApplicationSubmission, ApplicationWithdrawal, AttachedDocument,
    CallNextRequest, CallNextResponse, Envelope, GetApplicationRequest, IssueResultRequest, IssueResultResponse,
    LoginRequest, LoginResponse, MessageType, NextTicketCall, Notice, OpenFormRequest, OpenFormResponse,
    Representative, ResultPickup, SubmitApplicationRequest, SubmitApplicationResponse, TakeQueueTicketRequest,
    TakeQueueTicketResponse, WatchApplicationRequest, WatchApplicationResponse, WithdrawApplicationRequest,
    WithdrawApplicationResponse,
};
use egov_runtime::GrpcChannel as Channel;
use egov_runtime::status::{COME_BACK_KEY, NOTICE_KEY};
use egov_runtime::{Clock, ids};
use prost::Message;
use thiserror::Error;
use tonic::Status;

use crate::retry::Persistence;

/// The State Corporation operator at the workstation: their session and their key.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    workstation: WorkstationServiceClient<Channel>,
    signer: Signer,
    clock: Arc<dyn Clock>,
    session_id: String,
    persistence: Persistence,
    /// The service centre the operator works at (tickets and calls); empty: the default one.
    centre: String,
    /// The window they serve at; empty: none given.
    window: String,
}

impl OperatorClient {
    pub fn new(channel: Channel, signer: Signer, clock: Arc<dyn Clock>) -> OperatorClient {
        let workstation = WorkstationServiceClient::new(channel)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES);
        OperatorClient {
            workstation,
            signer,
            clock,
            session_id: String::new(),
            persistence: Persistence::default(),
            centre: String::new(),
            window: String::new(),
        }
    }

    /// How patiently each call is sent ([`Persistence`]; by default, again for 30 s
    /// while the workstation is unreachable or restarting).
    pub fn with_persistence(mut self, persistence: Persistence) -> OperatorClient {
        self.persistence = persistence;
        self
    }

    /// Uses a session opened elsewhere (e.g. by a plain `Login` call).
    pub fn with_session(mut self, session_id: impl Into<String>) -> OperatorClient {
        self.session_id = session_id.into();
        self
    }

    /// Works at service centre `centre` (its electronic queue: the tickets
    /// given and the tickets called); by default the workstation's default
    /// centre ([`ids::DEFAULT_CENTRE`]).
    pub fn with_centre(mut self, centre: impl Into<String>) -> OperatorClient {
        self.centre = centre.into();
        self
    }

    /// Serves at window `window` of the centre (named in each call of the next ticket).
    pub fn with_window(mut self, window: impl Into<String>) -> OperatorClient {
        self.window = window.into();
        self
    }

    /// The centre the operator works at, as the workstation names it.
    pub fn centre(&self) -> &str {
        ids::centre_or_default(&self.centre)
    }

    pub fn operator_id(&self) -> &str {
        self.signer.member_id()
    }

    /// Process 1.
    pub async fn login(&mut self, login: &str, password: &str) -> Result<LoginResponse, Status> {
        let request = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
            client_time_ms: self.clock.now_ms(),
        };
        let response = self
            .patiently(|mut workstation| {
                let request = request.clone();
                async move { workstation.login(request).await }
            })
            .await?;
        self.session_id = response.session_id.clone();
        Ok(response)
    }

    fn seal<B: egov_proto::Body>(&self, application_id: &str, service_id: &str, body: &B) -> egov_proto::Envelope {
        let header = self.signer.header(
            uuid::Uuid::new_v4().to_string(),
            application_id,
            service_id,
            ids::SC_WORKSTATION,
            self.clock.now_ms(),
            MessageType::Request,
        );
        self.signer.seal(&header, body)
    }

    /// Sends `call` ([`crate::retry::send`]): a signed call again as the same
    /// envelope while its failure may pass, so a call that was processed but
    /// whose answer was lost gets the stored answer, and a half-done step is
    /// resumed, never refused as done twice.
    async fn patiently<A, F, Fut>(&self, call: F) -> Result<A, Status>
    where
        F: Fn(WorkstationServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<A>, Status>>,
    {
        crate::retry::send(self.persistence, || call(self.workstation.clone())).await
    }

    /// Process 2 (and, at the workstation, processes 3 and 4 and condition 1).
    pub async fn open_form(
        &self,
        application_id: &str,
        service_code: &str,
        applicant_iin: &str,
        representative: Option<Representative>,
    ) -> Result<OpenFormResponse, Status> {
        let form = ApplicationForm {
            session_id: self.session_id.clone(),
            service_code: service_code.to_owned(),
            applicant_iin: applicant_iin.to_owned(),
            representative,
        };
        let envelope = self.seal(application_id, services::FORM_OPEN, &form);
        self.patiently(|mut workstation| {
            let request = OpenFormRequest { envelope: Some(envelope.clone()) };
            async move { workstation.open_form(request).await }
        })
        .await
    }

    /// Process 5, signed with the operator's key (and process 6 at the workstation).
    pub async fn submit(
        &self,
        application_id: &str,
        documents: Vec<AttachedDocument>,
    ) -> Result<SubmitApplicationResponse, Status> {
        let submission = ApplicationSubmission {
            session_id: self.session_id.clone(),
            application_id: application_id.to_owned(),
            documents,
        };
        let envelope = self.seal(application_id, services::FORM_SUBMIT, &submission);
        self.patiently(|mut workstation| {
            let request = SubmitApplicationRequest { envelope: Some(envelope.clone()) };
            async move { workstation.submit_application(request).await }
        })
        .await
    }

    pub async fn application(&self, application_id: &str) -> Result<Application, Status> {
        let request = GetApplicationRequest { application_id: application_id.to_owned() };
        let response = self
            .patiently(|mut workstation| {
                let request = request.clone();
                async move { workstation.get_application(request).await }
            })
            .await?;
        response.application.ok_or_else(|| Status::internal("the workstation answered without an application"))
    }

    /// Withdraws an application whose form was opened but never submitted.
    pub async fn withdraw(&self, application_id: &str, reason: &str) -> Result<WithdrawApplicationResponse, Status> {
        let withdrawal = ApplicationWithdrawal {
            session_id: self.session_id.clone(),
            application_id: application_id.to_owned(),
            reason: reason.to_owned(),
        };
        let envelope = self.seal(application_id, services::FORM_WITHDRAW, &withdrawal);
        self.patiently(|mut workstation| {
            let request = WithdrawApplicationRequest { envelope: Some(envelope.clone()) };
            async move { workstation.withdraw_application(request).await }
        })
        .await
    }

    /// The application's state now and after each change, until it ends.
    /// A stream cut on the way (the workstation restarting) ends with a status
    /// [`egov_runtime::status::is_retryable`] says may pass: watch again.
    pub async fn watch(&self, application_id: &str) -> Result<tonic::Streaming<WatchApplicationResponse>, Status> {
        let request = WatchApplicationRequest { application_id: application_id.to_owned() };
        self.patiently(|mut workstation| {
            let request = request.clone();
            async move { workstation.watch_application(request).await }
        })
        .await
    }

    /// The applicant came for the result (paragraph 9.3): their ticket of the
    /// electronic queue of the operator's centre, or, while the signed result has not arrived,
    /// `workstation.result_not_ready` with the time to come back
    /// ([`come_back_at`]).
    pub async fn take_ticket(&self, application_id: &str) -> Result<TakeQueueTicketResponse, Status> {
        let arrival = ApplicantArrival {
            session_id: self.session_id.clone(),
            application_id: application_id.to_owned(),
            centre: self.centre.clone(),
        };
        let envelope = self.seal(application_id, services::QUEUE_TICKET, &arrival);
        self.patiently(|mut workstation| {
            let request = TakeQueueTicketRequest { envelope: Some(envelope.clone()) };
            async move { workstation.take_queue_ticket(request).await }
        })
        .await
    }

    /// The operator, free, calls the next ticket of their centre's queue to
    /// their window (paragraph 9.4): the ticket and its application, or no
    /// ticket when none waits. One who holds a called ticket not served yet
    /// is given it again.
    pub async fn call_next(&self) -> Result<CallNextResponse, Status> {
        let call = NextTicketCall {
            session_id: self.session_id.clone(),
            centre: self.centre.clone(),
            window: self.window.clone(),
        };
        let envelope = self.seal(&ids::queue_correlation(&self.centre), services::QUEUE_CALL, &call);
        self.patiently(|mut workstation| {
            let request = CallNextRequest { envelope: Some(envelope.clone()) };
            async move { workstation.call_next(request).await }
        })
        .await
    }

    /// Process 9: the result handed over to the applicant whose ticket was called to this operator.
    pub async fn issue(&self, application_id: &str) -> Result<IssueResultResponse, Status> {
        let pickup = ResultPickup { session_id: self.session_id.clone(), application_id: application_id.to_owned() };
        let envelope = self.seal(application_id, services::RESULT_ISSUE, &pickup);
        self.patiently(|mut workstation| {
            let request = IssueResultRequest { envelope: Some(envelope.clone()) };
            async move { workstation.issue_result(request).await }
        })
        .await
    }
}

/// When an applicant who came before the result was told to come back: the
/// `egov-come-back-at` metadata of a `workstation.result_not_ready` refusal
/// (RFC 3339, Astana time); `None` when it gives none (the provider's term is
/// not set, or has passed).
pub fn come_back_at(status: &Status) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let text = egov_runtime::status::text_of(status, COME_BACK_KEY)?;
    chrono::DateTime::parse_from_rfc3339(text).ok()
}

/// The notice to the applicant that a refused submission carries: the
/// counter's refusal of an incomplete package (`workstation.incomplete_package`),
/// signed by the workstation.
#[derive(Debug, Clone)]
pub struct CounterNotice {
    /// The envelope as it came in the status's `egov-notice-bin`.
    pub envelope: Envelope,
    /// Its header and the key that signed it.
    pub verified: Verified,
    /// The notice: its code and its texts in Kazakh, Russian and English.
    pub notice: Notice,
}

/// Why the notice a refusal carries was not taken.
#[derive(Debug, Error)]
pub enum CounterNoticeError {
    #[error("{NOTICE_KEY} is not base64 of an envelope: {0}")]
    Malformed(String),
    #[error("the notice does not verify: {}: {error}", error.code())]
    Envelope {
        #[from]
        error: EnvelopeError,
    },
    #[error("the notice is signed by {sender} ({role}), not by the counter that refused ({expected})")]
    NotTheWorkstation { sender: String, role: String, expected: &'static str },
    #[error("the notice is {message_type} of {service}, not a counter's answer to a submission or a reception")]
    NotAnAnswer { service: String, message_type: String },
}

/// The envelope in a refusal's `egov-notice-bin`, as it came (not verified);
/// `None` when the refusal carries none.
pub fn notice_envelope(status: &Status) -> Result<Option<Envelope>, CounterNoticeError> {
    if status.metadata().get_bin(NOTICE_KEY).is_none() {
        return Ok(None);
    }
    let bytes = egov_runtime::status::binary_of(status, NOTICE_KEY)
        .ok_or_else(|| CounterNoticeError::Malformed("not base64".to_owned()))?;
    Envelope::decode(bytes.as_slice()).map(Some).map_err(|e| CounterNoticeError::Malformed(e.to_string()))
}

/// The counter's notice of a refused submission, verified against `trust`:
/// signed with a key valid at its message time, as the answer
/// (`MESSAGE_TYPE_RESPONSE`) of the counter's service, by its role: the
/// State Corporation's `sc.form.submit.v1` by a member with the
/// `sc-workstation` role, or the provider office's `rshep.office.receive.v1`
/// by the `regional-arm`; its body an `egov.v1.Notice`. `Ok(None)`: the refusal carries no notice.
/// Its message time is not checked against a clock: a notice is kept and read
/// later. The caller may check its `correlation_id` (the application) and
/// `recipient_id` (the operator who submitted) in `verified.header`.
pub fn counter_notice(status: &Status, trust: &TrustRegistry) -> Result<Option<CounterNotice>, CounterNoticeError> {
    let Some(envelope) = notice_envelope(status)? else { return Ok(None) };
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    let verified = egov_envelope::open(&envelope, trust, 0, &checks)?;
    let expected = match verified.header.service_id.as_str() {
        services::FORM_SUBMIT => Some(ids::roles::SC_WORKSTATION),
        services::OFFICE_RECEIVE => Some(ids::roles::REGIONAL_ARM),
        _ => None,
    };
    let Some(expected) = expected.filter(|_| verified.message_type() == MessageType::Response) else {
        return Err(CounterNoticeError::NotAnAnswer {
            service: verified.header.service_id.clone(),
            message_type: verified.message_type().as_str_name().to_owned(),
        });
    };
    if verified.sender_role.as_str() != expected {
        return Err(CounterNoticeError::NotTheWorkstation {
            sender: verified.header.sender_id.clone(),
            role: verified.sender_role.as_str().to_owned(),
            expected,
        });
    }
    let notice = egov_envelope::decode_body::<Notice>(&envelope, &verified)?;
    Ok(Some(CounterNotice { envelope, verified, notice }))
}
