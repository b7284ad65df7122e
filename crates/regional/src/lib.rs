//! The regional e-government gateway's workstation (ARM RSHEP), laid out by
//! the regulation: `registration` takes what the gateway delivers (process 7),
//! `office` receives an application at the provider's office (paragraph 3:
//! action 1 of that channel), `staff_steps` runs the provider's steps
//! (action 1, condition 2, process 8, actions 2 and 4, the result handed out
//! at the office), `signing` takes the head's signature on the result
//! (action 3), `queue` shows what waits on whom, and `progress` reports each
//! step back to the State Corporation. Every call comes through the one
//! receive pipeline (`egov_runtime::receive`).
#![forbid(unsafe_code)]

mod office;
mod progress;
mod queue;
mod record;
mod registration;
mod signing;
mod staff_steps;
mod steps;

use std::sync::Arc;

use egov_envelope::services;
use egov_proto::inbox_service_server::{InboxService, InboxServiceServer};
use egov_proto::regional_gateway_service_server::{RegionalGatewayService, RegionalGatewayServiceServer};
use egov_proto::{
    DeliverRequest, DeliverResponse, GetRegistrationRequest, GetRegistrationResponse, ListQueueRequest,
    ListQueueResponse, ListRegistrationsRequest, ListRegistrationsResponse, PerformStaffActionRequest,
    PerformStaffActionResponse, ReceiveAtOfficeRequest, ReceiveAtOfficeResponse, SignResultRequest, SignResultResponse,
};
use egov_regulation::{Calendar, Definition, DefinitionError, Event, Instance, Transition, apply};
use egov_runtime::{Accept, Receiver, Refusal};
use egov_store::Store;
use tonic::{Request, Response, Status};

use steps::Steps;

/// The regional gateway ARM.
#[derive(Debug)]
struct Regional {
    receiver: Receiver,
    definition: Arc<Definition>,
    steps: Steps,
    store: Store,
}

/// The ARM's two gRPC services: the inbox the gateway delivers to and the staff's service.
#[derive(Debug, Clone)]
pub struct RegionalServer {
    regional: Arc<Regional>,
}

impl RegionalServer {
    /// Refuses a definition that lacks a step the ARM needs.
    pub fn new(
        receiver: Receiver,
        definition: Arc<Definition>,
        store: Store,
    ) -> Result<RegionalServer, DefinitionError> {
        let steps = Steps::bind(&definition)?;
        Ok(RegionalServer { regional: Arc::new(Regional { receiver, definition, steps, store }) })
    }

    /// Writes the list index of the registrations the store holds without it
    /// (a store written before the lists were indexed), once: the number
    /// indexed, 0 when the index was there. Run at start, before the services answer.
    pub async fn build_list_index(&self) -> Result<usize, Status> {
        Ok(self.regional.build_list_index().await?)
    }

    pub fn inbox_service(&self) -> InboxServiceServer<RegionalServer> {
        InboxServiceServer::new(self.clone()).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }

    pub fn staff_service(&self) -> RegionalGatewayServiceServer<RegionalServer> {
        RegionalGatewayServiceServer::new(self.clone())
            .max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }
}

impl Regional {
    fn calendar(&self) -> &'static Calendar {
        Calendar::kazakhstan()
    }

    /// The transition function over this ARM's definition.
    fn advance(&self, instance: &Instance, event: &Event, now_ms: i64) -> Result<Transition, Refusal> {
        Ok(apply(&self.definition, instance, event, now_ms, self.calendar())?)
    }
}

/// Whether `definition` has every step this participant needs (what its
/// server checks when it starts).
pub fn check_definition(definition: &Definition) -> Result<(), DefinitionError> {
    Steps::bind(definition).map(|_| ())
}

#[tonic::async_trait]
impl InboxService for RegionalServer {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let regional = &self.regional;
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::APPLICATION_SUBMIT);
        Ok(Response::new(regional.receiver.handle(accept, envelope, |received| regional.register(received)).await?))
    }
}

#[tonic::async_trait]
impl RegionalGatewayService for RegionalServer {
    async fn list_queue(&self, request: Request<ListQueueRequest>) -> Result<Response<ListQueueResponse>, Status> {
        Ok(Response::new(self.regional.queue(&request.into_inner().actor)?))
    }

    async fn get_registration(
        &self,
        request: Request<GetRegistrationRequest>,
    ) -> Result<Response<GetRegistrationResponse>, Status> {
        let request = request.into_inner();
        let record = match (request.registration_id.is_empty(), request.application_id.is_empty()) {
            (false, true) => self.regional.load(&request.registration_id)?,
            (true, false) => self.regional.load_by_application(&request.application_id)?,
            _ => {
                return Err(Refusal::new(
                    tonic::Code::InvalidArgument,
                    "regional.bad_query",
                    "give the registration number or the application's id, one of the two",
                )
                .into());
            }
        };
        Ok(Response::new(GetRegistrationResponse { registration: Some(self.regional.to_registration(&record.value)?) }))
    }

    async fn list_registrations(
        &self,
        request: Request<ListRegistrationsRequest>,
    ) -> Result<Response<ListRegistrationsResponse>, Status> {
        let request = request.into_inner();
        if let Some(query) = &request.query {
            return Ok(Response::new(self.regional.registration_page(&request.channel, query)?));
        }
        let registrations = self.regional.registrations(&request.channel)?;
        Ok(Response::new(ListRegistrationsResponse { registrations, ..ListRegistrationsResponse::default() }))
    }

    async fn perform_staff_action(
        &self,
        request: Request<PerformStaffActionRequest>,
    ) -> Result<Response<PerformStaffActionResponse>, Status> {
        let regional = &self.regional;
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::STAFF_ACTION);
        Ok(Response::new(regional.receiver.handle(accept, envelope, |received| regional.staff_action(received)).await?))
    }

    async fn sign_result(&self, request: Request<SignResultRequest>) -> Result<Response<SignResultResponse>, Status> {
        let regional = &self.regional;
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::RESULT_SIGN);
        Ok(Response::new(regional.receiver.handle(accept, envelope, |received| regional.sign_result(received)).await?))
    }

    async fn receive_at_office(
        &self,
        request: Request<ReceiveAtOfficeRequest>,
    ) -> Result<Response<ReceiveAtOfficeResponse>, Status> {
        let regional = &self.regional;
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::OFFICE_RECEIVE);
        Ok(Response::new(
            regional.receiver.handle(accept, envelope, |received| regional.receive_at_office(received)).await?,
        ))
    }
}
