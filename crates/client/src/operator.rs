use std::sync::Arc;

use egov_envelope::{Signer, services};
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{
    Application, ApplicationForm, ApplicationSubmission, AttachedDocument, GetApplicationRequest, IssueResultRequest,
    IssueResultResponse, LoginRequest, LoginResponse, MessageType, OpenFormRequest, OpenFormResponse, Representative,
    ResultPickup, SubmitApplicationRequest, SubmitApplicationResponse,
};
use egov_runtime::{Clock, ids};
use tonic::Status;
use tonic::transport::Channel;

/// The State Corporation operator at the workstation: their session and their key.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    workstation: WorkstationServiceClient<Channel>,
    signer: Signer,
    clock: Arc<dyn Clock>,
    session_id: String,
}

impl OperatorClient {
    pub fn new(channel: Channel, signer: Signer, clock: Arc<dyn Clock>) -> OperatorClient {
        let workstation = WorkstationServiceClient::new(channel)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES);
        OperatorClient { workstation, signer, clock, session_id: String::new() }
    }

    /// Uses a session opened elsewhere (e.g. by a plain `Login` call).
    pub fn with_session(mut self, session_id: impl Into<String>) -> OperatorClient {
        self.session_id = session_id.into();
        self
    }

    pub fn operator_id(&self) -> &str {
        self.signer.member_id()
    }

    /// Process 1.
    pub async fn login(&mut self, login: &str, password: &str) -> Result<LoginResponse, Status> {
        let response = self
            .workstation
            .login(LoginRequest {
                login: login.to_owned(),
                password: password.to_owned(),
                client_time_ms: self.clock.now_ms(),
            })
            .await?
            .into_inner();
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
        let mut workstation = self.workstation.clone();
        Ok(workstation.open_form(OpenFormRequest { envelope: Some(envelope) }).await?.into_inner())
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
        let mut workstation = self.workstation.clone();
        Ok(workstation.submit_application(SubmitApplicationRequest { envelope: Some(envelope) }).await?.into_inner())
    }

    pub async fn application(&self, application_id: &str) -> Result<Application, Status> {
        let mut workstation = self.workstation.clone();
        let response = workstation
            .get_application(GetApplicationRequest { application_id: application_id.to_owned() })
            .await?
            .into_inner();
        response.application.ok_or_else(|| Status::internal("the workstation answered without an application"))
    }

    /// Process 9.
    pub async fn issue(&self, application_id: &str) -> Result<IssueResultResponse, Status> {
        let pickup = ResultPickup { session_id: self.session_id.clone(), application_id: application_id.to_owned() };
        let envelope = self.seal(application_id, services::RESULT_ISSUE, &pickup);
        let mut workstation = self.workstation.clone();
        Ok(workstation.issue_result(IssueResultRequest { envelope: Some(envelope) }).await?.into_inner())
    }
}
