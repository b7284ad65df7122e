//! The e-government gateway (SHEP): admits what it is sent through the one
//! receive pipeline (the sender's signature, the route and the sender's right
//! to it, by the table of services), countersigns, logs durably and routes:
//! synchronously to the registries (`sync_channel`) and asynchronously,
//! through its outbox, to the regional gateway ARM and the State Corporation
//! workstation (`async_channel`). `journal` answers what became of a message.
#![forbid(unsafe_code)]

mod async_channel;
mod journal;
mod sync_channel;

use std::collections::HashMap;
use std::sync::Arc;

use egov_proto::gateway_service_server::{GatewayService, GatewayServiceServer};
use egov_proto::inbox_service_client::InboxServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::notary_service_client::NotaryServiceClient;
use egov_proto::{
    GetMessageStatusRequest, GetMessageStatusResponse, GetMessagesRequest, GetMessagesResponse, SendAsyncRequest,
    SendAsyncResponse, SendSyncRequest, SendSyncResponse,
};
use egov_runtime::outbox::Outbox;
use egov_runtime::{Accept, Channel, Receiver};
use egov_store::Store;
use tonic::{Request, Response, Status};

/// Where the gateway finds each recipient.
#[derive(Debug, Clone)]
pub struct Recipients {
    pub individuals: IndividualsServiceClient<egov_runtime::GrpcChannel>,
    pub notary: NotaryServiceClient<egov_runtime::GrpcChannel>,
    /// Inboxes of the asynchronous recipients, by member id.
    pub inboxes: HashMap<String, InboxServiceClient<egov_runtime::GrpcChannel>>,
}

/// The gateway's state, shared by its gRPC service and its delivery worker.
#[derive(Debug)]
struct Gateway {
    receiver: Receiver,
    recipients: Recipients,
    store: Store,
}

/// The gateway's gRPC service.
#[derive(Debug, Clone)]
pub struct GatewayServer {
    gateway: Arc<Gateway>,
}

impl GatewayServer {
    /// The service and its delivery worker, which the caller spawns.
    pub fn new(
        receiver: Receiver,
        recipients: Recipients,
        store: Store,
        outbox: Arc<Outbox>,
    ) -> (GatewayServer, impl std::future::Future<Output = ()> + Send + 'static) {
        let gateway = Arc::new(Gateway { receiver, recipients, store });
        let worker = outbox.run(Arc::new(async_channel::Delivery::new(Arc::clone(&gateway))));
        (GatewayServer { gateway }, worker)
    }

    pub fn into_service(self) -> GatewayServiceServer<GatewayServer> {
        GatewayServiceServer::new(self).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl GatewayService for GatewayServer {
    async fn send_sync(&self, request: Request<SendSyncRequest>) -> Result<Response<SendSyncResponse>, Status> {
        let gateway = &self.gateway;
        let accept = Accept::Route(Channel::Sync);
        let envelope = request.into_inner().envelope;
        Ok(Response::new(gateway.receiver.handle(accept, envelope, |received| gateway.send_sync(received)).await?))
    }

    async fn send_async(&self, request: Request<SendAsyncRequest>) -> Result<Response<SendAsyncResponse>, Status> {
        let gateway = &self.gateway;
        let accept = Accept::Route(Channel::Async);
        let envelope = request.into_inner().envelope;
        Ok(Response::new(gateway.receiver.handle(accept, envelope, |received| gateway.send_async(received)).await?))
    }

    async fn get_message_status(
        &self,
        request: Request<GetMessageStatusRequest>,
    ) -> Result<Response<GetMessageStatusResponse>, Status> {
        Ok(Response::new(self.gateway.message_status(&request.into_inner())?))
    }

    async fn get_messages(
        &self,
        request: Request<GetMessagesRequest>,
    ) -> Result<Response<GetMessagesResponse>, Status> {
        Ok(Response::new(self.gateway.messages(&request.into_inner())?))
    }
}
