use std::sync::Arc;

use egov_envelope::{Signer, services};
use egov_proto::regional_gateway_service_client::RegionalGatewayServiceClient;
use egov_proto::{
    Body, Decision, GetRegistrationRequest, ListQueueRequest, MessageType, OfficeReception, PerformStaffActionRequest,
    ReceiveAtOfficeRequest, Registration, ServiceResult, SignResultRequest, StaffAction,
};
use egov_runtime::{Clock, ids};
use tonic::Status;
use tonic::transport::Channel;

/// The provider's staff at the regional gateway ARM. Each step is signed by
/// the staff member who does it.
#[derive(Debug, Clone)]
pub struct StaffClient {
    regional: RegionalGatewayServiceClient<Channel>,
    clock: Arc<dyn Clock>,
}

impl StaffClient {
    pub fn new(channel: Channel, clock: Arc<dyn Clock>) -> StaffClient {
        let regional = RegionalGatewayServiceClient::new(channel)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::MAX_MESSAGE_BYTES);
        StaffClient { regional, clock }
    }

    pub async fn queue(&self, actor: &str) -> Result<Vec<Registration>, Status> {
        let mut regional = self.regional.clone();
        Ok(regional.list_queue(ListQueueRequest { actor: actor.to_owned() }).await?.into_inner().registrations)
    }

    pub async fn registration(&self, registration_id: &str) -> Result<Registration, Status> {
        let mut regional = self.regional.clone();
        regional
            .get_registration(GetRegistrationRequest { registration_id: registration_id.to_owned() })
            .await?
            .into_inner()
            .registration
            .ok_or_else(|| Status::internal("the ARM answered without a registration"))
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
        let mut regional = self.regional.clone();
        regional
            .perform_staff_action(PerformStaffActionRequest { envelope: Some(envelope) })
            .await?
            .into_inner()
            .registration
            .ok_or_else(|| Status::internal("the ARM answered without a registration"))
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
        let mut regional = self.regional.clone();
        regional
            .receive_at_office(ReceiveAtOfficeRequest { envelope: Some(envelope) })
            .await?
            .into_inner()
            .registration
            .ok_or_else(|| Status::internal("the ARM answered without a registration"))
    }

    /// Action 3: the head signs the exact bytes of the drafted result.
    pub async fn sign(&self, head: &Signer, registration: &Registration) -> Result<Registration, Status> {
        let application_id = registration.application.as_ref().map(|a| a.application_id.clone()).unwrap_or_default();
        let mut header = self.header(head, &application_id, services::RESULT_SIGN);
        header.body_type = ServiceResult::TYPE.to_owned();
        let envelope = head.seal_bytes(prost::Message::encode_to_vec(&header), registration.draft_result.clone());
        let mut regional = self.regional.clone();
        regional
            .sign_result(SignResultRequest { envelope: Some(envelope) })
            .await?
            .into_inner()
            .registration
            .ok_or_else(|| Status::internal("the ARM answered without a registration"))
    }
}
