use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use egov_envelope::{Signer, services};
use egov_proto::regional_gateway_service_client::RegionalGatewayServiceClient;
use egov_proto::{
    Body, Decision, GetRegistrationRequest, ListQueueRequest, ListRegistrationsRequest, MessageType, OfficeReception,
    PerformStaffActionRequest, ReceiveAtOfficeRequest, Registration, ServiceResult, SignResultRequest, StaffAction,
};
use egov_runtime::GrpcChannel as Channel;
use egov_runtime::tls::TlsDir;
use egov_runtime::{Clock, ids};
use tonic::Status;

use crate::retry::Persistence;

/// The provider's staff at the regional gateway ARM. Each step is signed by
/// the staff member who does it; over TLS each member's calls go on a
/// channel of their own that presents their certificate.
#[derive(Debug, Clone)]
pub struct StaffClient {
    regional: RegionalGatewayServiceClient<Channel>,
    /// Over TLS: the ARM's address, the certificates, and a client per member.
    members: Option<Arc<Members>>,
    clock: Arc<dyn Clock>,
    persistence: Persistence,
}

#[derive(Debug)]
struct Members {
    address: String,
    tls: TlsDir,
    clients: Mutex<HashMap<String, RegionalGatewayServiceClient<Channel>>>,
}

fn client(channel: Channel) -> RegionalGatewayServiceClient<Channel> {
    RegionalGatewayServiceClient::new(channel)
        .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::MAX_MESSAGE_BYTES)
}

impl StaffClient {
    /// Every call on `channel` (plaintext, or TLS as one member).
    pub fn new(channel: Channel, clock: Arc<dyn Clock>) -> StaffClient {
        StaffClient { regional: client(channel), members: None, clock, persistence: Persistence::default() }
    }

    /// How patiently each call is sent ([`Persistence`]; by default, again for 30 s
    /// while the ARM is unreachable or restarting).
    pub fn with_persistence(mut self, persistence: Persistence) -> StaffClient {
        self.persistence = persistence;
        self
    }

    /// To the ARM at `address`: in plaintext without `tls`; with it, each
    /// signed call presents its signer's certificate, and the calls that
    /// carry no envelope (the queue, a registration) present `reader`'s.
    pub fn connect(
        address: &str,
        tls: Option<&TlsDir>,
        reader: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<StaffClient> {
        let regional = client(egov_runtime::tls::connect(address, tls, reader)?);
        let members = tls
            .map(|tls| Arc::new(Members { address: address.to_owned(), tls: tls.clone(), clients: Mutex::default() }));
        Ok(StaffClient { regional, members, clock, persistence: Persistence::default() })
    }

    /// The client `signer`'s calls go on.
    fn as_member(&self, signer: &Signer) -> Result<RegionalGatewayServiceClient<Channel>, Status> {
        let Some(members) = &self.members else { return Ok(self.regional.clone()) };
        let mut clients = members.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(signer.member_id()) {
            return Ok(client.clone());
        }
        let channel = egov_runtime::tls::connect(&members.address, Some(&members.tls), signer.member_id())
            .map_err(|error| Status::failed_precondition(format!("{error:#}")))?;
        let made = client(channel);
        clients.insert(signer.member_id().to_owned(), made.clone());
        Ok(made)
    }

    pub async fn queue(&self, actor: &str) -> Result<Vec<Registration>, Status> {
        let request = ListQueueRequest { actor: actor.to_owned() };
        let answer = crate::retry::send(self.persistence, || {
            let (mut regional, request) = (self.regional.clone(), request.clone());
            async move { regional.list_queue(request).await }
        })
        .await?;
        Ok(answer.registrations)
    }

    pub async fn registration(&self, registration_id: &str) -> Result<Registration, Status> {
        self.get(GetRegistrationRequest { registration_id: registration_id.to_owned(), ..Default::default() }).await
    }

    /// The registration of the application `application_id`.
    pub async fn registration_of(&self, application_id: &str) -> Result<Registration, Status> {
        self.get(GetRegistrationRequest { application_id: application_id.to_owned(), ..Default::default() }).await
    }

    async fn get(&self, request: GetRegistrationRequest) -> Result<Registration, Status> {
        crate::retry::send(self.persistence, || {
            let (mut regional, request) = (self.regional.clone(), request.clone());
            async move { regional.get_registration(request).await }
        })
        .await?
        .registration
        .ok_or_else(|| Status::internal("the ARM answered without a registration"))
    }

    /// Sends `envelope`, signed by `signer`, with `call` ([`crate::retry::send`]:
    /// again as the same envelope while its failure may pass), on the client
    /// that presents `signer`'s certificate; the registration it answers with.
    async fn signed<Request, Answer, F, Fut>(
        &self,
        signer: &Signer,
        request: Request,
        call: F,
    ) -> Result<Registration, Status>
    where
        Request: Clone,
        F: Fn(RegionalGatewayServiceClient<Channel>, Request) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Answer>, Status>>,
        Answer: Answered,
    {
        let regional = self.as_member(signer)?;
        crate::retry::send(self.persistence, || call(regional.clone(), request.clone()))
            .await?
            .registration()
            .ok_or_else(|| Status::internal("the ARM answered without a registration"))
    }

    /// The registrations of `channel` (every one when it is empty), waiting or ended, newest first.
    pub async fn registrations(&self, channel: &str) -> Result<Vec<Registration>, Status> {
        let mut regional = self.regional.clone();
        let request = ListRegistrationsRequest { channel: channel.to_owned(), ..Default::default() };
        Ok(regional.list_registrations(request).await?.into_inner().registrations)
    }

    /// One page of a channel's registrations, read from the ARM's list index.
    pub async fn registration_page(
        &self,
        channel: &str,
        query: egov_proto::ApplicationListQuery,
    ) -> Result<egov_proto::ListRegistrationsResponse, Status> {
        let mut regional = self.regional.clone();
        let request = ListRegistrationsRequest { channel: channel.to_owned(), query: Some(query) };
        Ok(regional.list_registrations(request).await?.into_inner())
    }

    fn header(&self, signer: &Signer, correlation_id: &str, service_id: &str) -> egov_proto::EnvelopeHeader {
        signer.header(
            uuid::Uuid::new_v4().to_string(),
            correlation_id,
            service_id,
            ids::REGIONAL,
            self.clock.now_ms(),
            MessageType::Request,
        )
    }

    /// A staff step: `decision` for a condition, `refusal_ground` with a negative documents check.
    pub async fn act(
        &self,
        signer: &Signer,
        registration: &Registration,
        step_id: &str,
        decision: Decision,
        refusal_ground: &str,
    ) -> Result<Registration, Status> {
        let application_id = registration.application.as_ref().map(|a| a.application_id.clone()).unwrap_or_default();
        let registration_id = registration.application.as_ref().map(|a| a.registration_id.clone()).unwrap_or_default();
        let action = StaffAction {
            registration_id,
            step_id: step_id.to_owned(),
            decision: decision as i32,
            refusal_ground: refusal_ground.to_owned(),
            comment: String::new(),
        };
        let envelope = signer.seal(&self.header(signer, &application_id, services::STAFF_ACTION), &action);
        let request = PerformStaffActionRequest { envelope: Some(envelope) };
        self.signed(
            signer,
            request,
            |mut regional, request| async move { regional.perform_staff_action(request).await },
        )
        .await
    }

    /// Paragraph 3: the office employee receives an application at the
    /// provider's office, signing what they received (action 1 of that channel).
    pub async fn receive_at_office(
        &self,
        office: &Signer,
        reception: &OfficeReception,
    ) -> Result<Registration, Status> {
        let envelope =
            office.seal(&self.header(office, &reception.application_id, services::OFFICE_RECEIVE), reception);
        let request = ReceiveAtOfficeRequest { envelope: Some(envelope) };
        self.signed(office, request, |mut regional, request| async move { regional.receive_at_office(request).await })
            .await
    }

    /// Action 3: the head signs the exact bytes of the drafted result.
    pub async fn sign(&self, head: &Signer, registration: &Registration) -> Result<Registration, Status> {
        let application_id = registration.application.as_ref().map(|a| a.application_id.clone()).unwrap_or_default();
        let mut header = self.header(head, &application_id, services::RESULT_SIGN);
        header.body_type = ServiceResult::TYPE.to_owned();
        let envelope = head.seal_bytes(prost::Message::encode_to_vec(&header), registration.draft_result.clone());
        let request = SignResultRequest { envelope: Some(envelope) };
        self.signed(head, request, |mut regional, request| async move { regional.sign_result(request).await }).await
    }
}

/// An answer of the ARM that carries the registration.
trait Answered {
    fn registration(self) -> Option<Registration>;
}

impl Answered for egov_proto::PerformStaffActionResponse {
    fn registration(self) -> Option<Registration> {
        self.registration
    }
}

impl Answered for egov_proto::ReceiveAtOfficeResponse {
    fn registration(self) -> Option<Registration> {
        self.registration
    }
}

impl Answered for egov_proto::SignResultResponse {
    fn registration(self) -> Option<Registration> {
        self.registration
    }
}
