//! The gateway's receipt for an asynchronous message (process 6) is checked
//! as any answer, and a receipt that is not recorded never leaves the outbox
//! silently. A gateway of the test's own, on loopback, answers `SendAsync`
//! with a receipt it makes as it is told: right, signed by another key, for
//! another message's bytes; the sender's outbox sends through
//! [`egov_runtime::outbox::ToGateway`] and records what it is given.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use egov_envelope::{Checks, KeyEntry, Member, Role, Signer, TrustRegistry};
use egov_proto::gateway_service_server::{GatewayService, GatewayServiceServer};
use egov_proto::{
    AsyncReceipt, GetMessageStatusRequest, GetMessageStatusResponse, GetMessagesRequest, GetMessagesResponse,
    MessageType, PersonQuery, SendAsyncRequest, SendAsyncResponse, SendSyncRequest, SendSyncResponse,
};
use egov_runtime::outbox::{Outbox, Receipt, RetryPolicy, ToGateway};
use egov_runtime::{Context, Refusal, SharedTrust, SystemClock, Topology, idempotency, ids};
use egov_store::{Batch, Store};
use prost::Message as _;
use tonic::{Request, Response, Status};

const SENDER: &str = "sc-workstation";
/// When the message is sent (2026), within the keys' validity.
const SENT_MS: i64 = 1_780_000_000_000;

fn signer(member: &str, seed: u8) -> Signer {
    Signer::from_seed(member, format!("{member}-k1"), &[seed; 32])
}

fn trust(signers: &[(&Signer, &str)]) -> TrustRegistry {
    let members = signers
        .iter()
        .map(|(signer, role)| Member {
            id: signer.member_id().to_owned(),
            role: Role::new(*role),
            name: String::new(),
            keys: vec![KeyEntry {
                id: signer.key_id().to_owned(),
                public: signer.public_key_hex(),
                valid_from: Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
                valid_until: Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
                revoked_at: None,
            }],
        })
        .collect();
    TrustRegistry::from_members(members).unwrap()
}

/// How the test's gateway makes its receipt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Forge {
    /// As the gateway does.
    Nothing,
    /// Signed by a key that is not the gateway's.
    Signature,
    /// For the bytes of another message.
    Digest,
}

struct FakeGateway {
    gateway: Signer,
    impostor: Signer,
    forge: Mutex<Forge>,
    calls: AtomicUsize,
}

/// The service over the shared state the test reads.
struct Served(Arc<FakeGateway>);

#[tonic::async_trait]
impl GatewayService for Served {
    async fn send_sync(&self, _: Request<SendSyncRequest>) -> Result<Response<SendSyncResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn send_async(&self, request: Request<SendAsyncRequest>) -> Result<Response<SendAsyncResponse>, Status> {
        let this = &self.0;
        this.calls.fetch_add(1, Ordering::SeqCst);
        let envelope = request.into_inner().envelope.unwrap();
        let header = egov_envelope::decode_header(&envelope.header).unwrap();
        let forge = *this.forge.lock().unwrap();
        let mut digest = idempotency::digest(&envelope);
        if forge == Forge::Digest {
            digest[0] ^= 1;
        }
        let body = AsyncReceipt { message_id: header.message_id.clone(), digest, accepted_time_ms: SENT_MS };
        let by = if forge == Forge::Signature { &this.impostor } else { &this.gateway };
        // The impostor signs as the gateway: the header names the gateway, its key is another.
        let mut receipt_header = by.header(
            "receipt-1",
            header.correlation_id.clone(),
            &header.service_id,
            &header.sender_id,
            header.message_time_ms,
            MessageType::Response,
        );
        receipt_header.sender_id = ids::GATEWAY.to_owned();
        let mut receipt = by.seal(&receipt_header, &body);
        if forge == Forge::Signature {
            receipt.signatures[0].key_id = this.gateway.key_id().to_owned();
        }
        Ok(Response::new(SendAsyncResponse {
            message_id: header.message_id,
            correlation_id: header.correlation_id,
            accepted_time_ms: SENT_MS,
            receipt: Some(receipt),
        }))
    }

    async fn get_message_status(
        &self,
        _: Request<GetMessageStatusRequest>,
    ) -> Result<Response<GetMessageStatusResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn get_messages(&self, _: Request<GetMessagesRequest>) -> Result<Response<GetMessagesResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

struct Setup {
    store: Store,
    outbox: Arc<Outbox>,
    fake: Arc<FakeGateway>,
    recorded: Arc<AtomicUsize>,
    sender: Signer,
    context: Context,
    _dir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A sender with a store, an outbox and a courier to the test's gateway;
/// `record` is what recording a verified receipt comes to.
async fn setup(forge: Forge, record: impl Fn(&Receipt) -> Result<Batch, Refusal> + Send + Sync + 'static) -> Setup {
    let gateway = signer(ids::GATEWAY, 1);
    let sender = signer(SENDER, 2);
    let impostor = signer("impostor", 3);
    let registry = trust(&[(&gateway, "gateway"), (&sender, "state-corporation"), (&impostor, "state-corporation")]);
    let fake = Arc::new(FakeGateway { gateway, impostor, forge: Mutex::new(forge), calls: AtomicUsize::new(0) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(GatewayServiceServer::new(Served(Arc::clone(&fake))))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let mut tasks = vec![tokio::spawn(async move {
        let _ = server.await;
    })];
    let context = Context {
        trust: SharedTrust::new(registry),
        signer: sender.clone(),
        clock: Arc::new(SystemClock),
        checks: Checks { freshness_window_ms: None, ..Checks::default() },
        message_time: true,
        counters: Arc::default(),
        monitor: egov_runtime::monitor::Monitor::off(),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    let policy = RetryPolicy { first_delay_ms: 20, max_delay_ms: 50, max_attempts: 3, ..RetryPolicy::default() };
    let outbox = Outbox::new(store.clone(), Arc::new(SystemClock), policy, Arc::default());
    let recorded = Arc::new(AtomicUsize::new(0));
    let on_accepted = {
        let recorded = Arc::clone(&recorded);
        move |_: &egov_store::OutboxItem, receipt: &Receipt| {
            let batch = record(receipt)?;
            recorded.fetch_add(1, Ordering::SeqCst);
            Ok(batch)
        }
    };
    let client =
        egov_proto::gateway_service_client::GatewayServiceClient::new(Topology::channel(&address.to_string()).unwrap());
    let courier = ToGateway::new(client, context.clone(), on_accepted);
    tasks.push(tokio::spawn(Arc::clone(&outbox).run(Arc::new(courier))));
    Setup { store, outbox, fake, recorded, sender, context, _dir: dir, tasks }
}

/// Queues one signed message for the gateway; the item's id.
async fn queue(setup: &Setup) -> u64 {
    let envelope = setup.context.seal(
        "app-1",
        egov_envelope::services::APPLICATION_SUBMIT,
        ids::REGIONAL,
        MessageType::Request,
        SENT_MS,
        &PersonQuery::default(),
    );
    let mut batch = Batch::new();
    let entry = batch.log(SENT_MS, "sent", envelope.encode_to_vec(), ids::GATEWAY, Vec::new());
    batch.enqueue(ids::GATEWAY, entry, 0);
    let ids = setup.store.commit(batch).await.unwrap();
    setup.outbox.kick();
    ids[0]
}

/// Waits until item `id` left the outbox or is parked; the item as it stays, if it does.
async fn settled(setup: &Setup, id: u64) -> Option<egov_store::OutboxItem> {
    for _ in 0..200 {
        let item = setup.store.outbox().unwrap().into_iter().find(|item| item.id == id);
        match item {
            None => return None,
            Some(item) if item.next_attempt_ms == egov_runtime::outbox::PARKED => return Some(item),
            Some(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("item {id} neither left the outbox nor was parked");
}

#[tokio::test]
async fn a_receipt_the_gateway_signed_for_the_bytes_sent_is_recorded_and_the_item_leaves() {
    let record = |_: &Receipt| -> Result<Batch, Refusal> {
        let mut batch = Batch::new();
        batch.put("recorded", 0, &true)?;
        Ok(batch)
    };
    let setup = setup(Forge::Nothing, record).await;
    let id = queue(&setup).await;
    assert!(settled(&setup, id).await.is_none(), "the item left the outbox");
    assert_eq!(setup.recorded.load(Ordering::SeqCst), 1);
    assert!(setup.store.get::<bool>("recorded").unwrap().is_some(), "recorded in the commit that removed it");
    assert_eq!(setup.sender.member_id(), SENDER);
}

async fn a_forged_receipt_is_refused_and_nothing_is_recorded(forge: Forge) {
    let record = |_: &Receipt| -> Result<Batch, Refusal> {
        let mut batch = Batch::new();
        batch.put("recorded", 0, &true)?;
        Ok(batch)
    };
    let setup = setup(forge, record).await;
    let id = queue(&setup).await;
    let parked = settled(&setup, id).await.expect("the item stays in the outbox, parked as an incident");
    assert!(parked.last_error.starts_with("gateway.bad_receipt"), "{forge:?}: {}", parked.last_error);
    assert_eq!(setup.recorded.load(Ordering::SeqCst), 0, "{forge:?}: nothing recorded");
    assert!(setup.store.get::<bool>("recorded").unwrap().is_none());
    assert_eq!(setup.fake.calls.load(Ordering::SeqCst), 1, "refused for good at once, not retried");
}

#[tokio::test]
async fn a_receipt_signed_with_another_key_is_refused_and_nothing_is_recorded() {
    a_forged_receipt_is_refused_and_nothing_is_recorded(Forge::Signature).await;
}

#[tokio::test]
async fn a_receipt_for_another_messages_bytes_is_refused_and_nothing_is_recorded() {
    a_forged_receipt_is_refused_and_nothing_is_recorded(Forge::Digest).await;
}

#[tokio::test]
async fn a_receipt_that_cannot_be_recorded_for_now_is_tried_again_and_recorded() {
    let failures = Arc::new(AtomicUsize::new(0));
    let record = {
        let failures = Arc::clone(&failures);
        move |_: &Receipt| -> Result<Batch, Refusal> {
            // The first recording loses a race for the record; the second succeeds.
            if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(Refusal::new(tonic::Code::Aborted, "store.conflict", "changed meanwhile"));
            }
            Ok(Batch::new())
        }
    };
    let setup = setup(Forge::Nothing, record).await;
    let id = queue(&setup).await;
    assert!(settled(&setup, id).await.is_none(), "the item left the outbox once recorded");
    assert_eq!(setup.fake.calls.load(Ordering::SeqCst), 2, "sent again after the failed recording");
    assert_eq!(setup.recorded.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_receipt_that_can_never_be_recorded_is_parked_as_an_incident_with_its_reason() {
    let record = |_: &Receipt| -> Result<Batch, Refusal> {
        Err(Refusal::new(tonic::Code::NotFound, "workstation.unknown_application", "no application app-1"))
    };
    let setup = setup(Forge::Nothing, record).await;
    let id = queue(&setup).await;
    let parked = settled(&setup, id).await.expect("the item stays in the outbox, parked");
    assert!(
        parked.last_error.contains("the receipt is not recorded: workstation.unknown_application"),
        "{}",
        parked.last_error
    );
}
