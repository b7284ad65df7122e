//! The State Corporation operator's workstation (ARM GK), laid out by the
//! regulation: `session` (process 1), `form` (process 2), `look_up`
//! (process 3, condition 1, process 4), `submission` (processes 5 and 6),
//! `progress` (the provider's steps and result as they come back), `queue`
//! (the electronic queue for the result, paragraphs 9.3-9.4), `issue`
//! (process 9, to the applicant whose ticket was called), `withdrawal` (of a form never submitted: the simulator's
//! assumption), `watch` (an application's changes, streamed), and `sla`
//! (the deadlines report). Every call that carries an
//! envelope comes through the one receive pipeline (`egov_runtime::receive`).
#![forbid(unsafe_code)]

mod form;
pub mod generated;
mod issue;
mod look_up;
mod operators;
mod progress;
mod queue;
mod record;
mod session;
mod sla;
mod steps;
mod submission;
mod watch;
mod withdrawal;

use std::sync::Arc;
use std::time::Duration;

use egov_envelope::services;
use egov_proto::Envelope;
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::inbox_service_server::{InboxService, InboxServiceServer};
use egov_proto::workstation_service_server::{WorkstationService, WorkstationServiceServer};
use egov_proto::{
    CallNextRequest, CallNextResponse, DeliverRequest, DeliverResponse, GetApplicationRequest, GetApplicationResponse,
    IssueResultRequest, IssueResultResponse, ListApplicationsRequest, ListApplicationsResponse, LoginRequest,
    LoginResponse, OpenFormRequest, OpenFormResponse, SubmitApplicationRequest, SubmitApplicationResponse,
    TakeQueueTicketRequest, TakeQueueTicketResponse, WatchApplicationRequest, WithdrawApplicationRequest,
    WithdrawApplicationResponse,
};
use egov_regulation::{Calendar, Definition, DefinitionError, Event, Instance, Transition, apply};
use egov_runtime::outbox::{Outbox, Receipt, ToGateway};
use egov_runtime::receive::{Handled, Incoming};
use egov_runtime::{Accept, Outcome, Received, Receiver, Refusal};
use egov_store::{OutboxItem, Store};
use tonic::{Request, Response, Status};

pub use operators::{OperatorAccount, Operators};
pub use session::SESSION_TTL_MS;
pub use sla::{MetricsReport, SlaRow, sla_report};

use steps::Steps;

/// How long `SubmitApplication` waits for the gateway's receipt before it
/// answers with process 6 still pending (the outbox keeps trying).
pub const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// The workstation's state, shared by its services and its outbox courier.
#[derive(Debug)]
struct Workstation {
    receiver: Receiver,
    definition: Arc<Definition>,
    steps: Steps,
    store: Store,
    outbox: Arc<Outbox>,
    gateway: GatewayServiceClient<egov_runtime::GrpcChannel>,
    operators: Operators,
    /// The applications being watched (`WatchApplication`).
    watched: watch::Watched,
}

/// The workstation's gRPC services: the operators' service and the inbox the gateway delivers to.
#[derive(Debug, Clone)]
pub struct WorkstationServer {
    workstation: Arc<Workstation>,
}

impl WorkstationServer {
    /// The services and the outbox worker, which the caller spawns. Refuses
    /// a definition that lacks a step the workstation needs.
    pub fn new(
        receiver: Receiver,
        definition: Arc<Definition>,
        store: Store,
        outbox: Arc<Outbox>,
        gateway: GatewayServiceClient<egov_runtime::GrpcChannel>,
        operators: Operators,
    ) -> Result<(WorkstationServer, impl std::future::Future<Output = ()> + Send + 'static), DefinitionError> {
        let steps = Steps::bind(&definition)?;
        let workstation = Arc::new(Workstation {
            receiver,
            definition,
            steps,
            store,
            outbox: Arc::clone(&outbox),
            gateway: gateway.clone(),
            operators,
            watched: watch::Watched::default(),
        });
        let on_accepted = {
            let workstation = Arc::clone(&workstation);
            move |item: &OutboxItem, receipt: &Receipt| workstation.record_receipt(item, receipt)
        };
        let context = workstation.receiver.context().clone();
        let worker = outbox.run(Arc::new(ToGateway::new(gateway, context, on_accepted)));
        Ok((WorkstationServer { workstation }, worker))
    }

    /// Writes the list index of the applications the store holds without it
    /// (a store written before the lists were indexed), once: the number of
    /// applications indexed, 0 when the index was there. Run at start, before
    /// the services answer (`egov-stack`).
    pub async fn build_list_index(&self) -> Result<usize, Status> {
        Ok(self.workstation.build_list_index().await?)
    }

    pub fn workstation_service(&self) -> WorkstationServiceServer<WorkstationServer> {
        WorkstationServiceServer::new(self.clone()).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }

    pub fn inbox_service(&self) -> InboxServiceServer<WorkstationServer> {
        InboxServiceServer::new(self.clone()).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }
}

impl WorkstationServer {
    /// A call that may change an application: through the pipeline, then its watchers are told.
    async fn changing<B, A, H, F>(
        &self,
        service_id: &'static str,
        envelope: Option<Envelope>,
        handler: H,
    ) -> Result<Handled<A>, Status>
    where
        B: Incoming,
        A: prost::Message + Default,
        H: Fn(Arc<Received<B>>) -> F,
        F: std::future::Future<Output = Result<Outcome<A>, Status>>,
    {
        let handled = self.workstation.receiver.handle_queued(Accept::Service(service_id), envelope, handler).await?;
        self.workstation.changed(&handled.header.correlation_id);
        Ok(handled)
    }
}

impl Workstation {
    fn calendar(&self) -> &'static Calendar {
        Calendar::kazakhstan()
    }

    /// The transition function over this workstation's definition.
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
impl WorkstationService for WorkstationServer {
    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        Ok(Response::new(self.workstation.login(request.into_inner()).await?))
    }

    async fn open_form(&self, request: Request<OpenFormRequest>) -> Result<Response<OpenFormResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled = self.changing(services::FORM_OPEN, envelope, |received| workstation.open_form(received)).await?;
        Ok(Response::new(handled.answer))
    }

    async fn submit_application(
        &self,
        request: Request<SubmitApplicationRequest>,
    ) -> Result<Response<SubmitApplicationResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled = self.changing(services::FORM_SUBMIT, envelope, |received| workstation.submit(received)).await?;
        Ok(Response::new(workstation.with_receipt(handled).await?))
    }

    async fn get_application(
        &self,
        request: Request<GetApplicationRequest>,
    ) -> Result<Response<GetApplicationResponse>, Status> {
        let application_id = request.into_inner().application_id;
        let record = self.workstation.load(&application_id)?.value;
        Ok(Response::new(GetApplicationResponse { application: Some(self.workstation.to_application(&record)) }))
    }

    async fn list_applications(
        &self,
        request: Request<ListApplicationsRequest>,
    ) -> Result<Response<ListApplicationsResponse>, Status> {
        let query = request.into_inner();
        Ok(Response::new(self.workstation.list(&query)?))
    }

    type WatchApplicationStream = watch::Watch;

    async fn watch_application(
        &self,
        request: Request<WatchApplicationRequest>,
    ) -> Result<Response<watch::Watch>, Status> {
        Ok(Response::new(self.workstation.watch(request.into_inner().application_id)?))
    }

    async fn take_queue_ticket(
        &self,
        request: Request<TakeQueueTicketRequest>,
    ) -> Result<Response<TakeQueueTicketResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled =
            self.changing(services::QUEUE_TICKET, envelope, |received| workstation.take_ticket(received)).await?;
        Ok(Response::new(handled.answer))
    }

    async fn call_next(&self, request: Request<CallNextRequest>) -> Result<Response<CallNextResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        // The envelope names the centre's queue; the watchers told are the called application's.
        let handled = workstation
            .receiver
            .handle_queued(Accept::Service(services::QUEUE_CALL), envelope, |received| workstation.call_next(received))
            .await?;
        if let Some(application) = &handled.answer.application {
            workstation.changed(&application.application_id);
        }
        Ok(Response::new(handled.answer))
    }

    async fn issue_result(
        &self,
        request: Request<IssueResultRequest>,
    ) -> Result<Response<IssueResultResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled = self.changing(services::RESULT_ISSUE, envelope, |received| workstation.issue(received)).await?;
        Ok(Response::new(handled.answer))
    }

    async fn withdraw_application(
        &self,
        request: Request<WithdrawApplicationRequest>,
    ) -> Result<Response<WithdrawApplicationResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled =
            self.changing(services::FORM_WITHDRAW, envelope, |received| workstation.withdraw(received)).await?;
        Ok(Response::new(handled.answer))
    }
}

#[tonic::async_trait]
impl InboxService for WorkstationServer {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let workstation = &self.workstation;
        let envelope = request.into_inner().envelope;
        let handled = self
            .changing(services::APPLICATION_PROGRESS, envelope, |received| workstation.receive_progress(received))
            .await?;
        Ok(Response::new(handled.answer))
    }
}
