//! The outbox worker: sends what a participant committed to its outbox,
//! retrying with exponential backoff and jitter while the receiver is
//! unreachable, and parking what still fails as an incident.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egov_store::{Batch, Durability, OutboxItem, Store};
use rand_core::{OsRng, RngCore};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument as _;

use crate::{Clock, Refusal};

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub first_delay_ms: i64,
    pub max_delay_ms: i64,
    /// After this many failed attempts the item is parked as an incident.
    pub max_attempts: u32,
    /// Time allowed for one attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay_ms: 200,
            max_delay_ms: 30_000,
            max_attempts: 12,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`: doubling, capped, with up to 25 % jitter.
    pub fn delay_ms(&self, attempts: u32) -> i64 {
        let doubled = self.first_delay_ms.saturating_mul(1i64 << attempts.min(30));
        let capped = doubled.min(self.max_delay_ms).max(1);
        let jitter = i64::from(OsRng.next_u32()) % (capped / 4 + 1);
        capped + jitter
    }
}

/// What an attempt came to.
#[derive(Debug)]
pub enum Attempt {
    /// Delivered: commit these writes with the item's removal.
    Delivered(Batch),
    /// Failed in a way that may pass: try again later.
    Retry(String),
    /// Refused for good: commit these writes, and park the item as an incident.
    Stopped(Batch, String),
}

/// Sends one outbox item; implemented by each participant.
pub trait Courier: Send + Sync + 'static {
    fn attempt(&self, item: &OutboxItem) -> impl Future<Output = Attempt> + Send;
    /// The writes that record an item parked as an incident after its last attempt.
    fn parked(&self, item: &OutboxItem, error: &str) -> Batch;
    /// Whether the writes of a delivery ([`Attempt::Delivered`]) are only
    /// bookkeeping whose loss in a crash means one more idempotent resend; they
    /// then ride with the store's next flushed commit. A delivery with no
    /// writes of its own always is.
    fn delivery_is_bookkeeping(&self) -> bool {
        false
    }
}

/// A participant's outbox and the worker that drains it.
pub struct Outbox {
    store: Store,
    counters: Arc<crate::counters::Counters>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    wake: Notify,
    in_flight: Mutex<HashSet<u64>>,
    waiters: Mutex<HashMap<u64, Vec<oneshot::Sender<()>>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// Parked items wait here: never due until retried by hand.
pub const PARKED: i64 = i64::MAX;

impl Outbox {
    /// `clock` times the retries: operational time, not the regulatory clock.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        counters: Arc<crate::counters::Counters>,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            store,
            counters,
            clock,
            policy,
            wake: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
            waiters: Mutex::new(HashMap::new()),
        })
    }

    /// Tells the worker there is something new.
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    /// Waits until item `id` has been delivered or parked as an incident, at
    /// most `timeout`. True if it has.
    pub async fn wait_sent(&self, id: u64, timeout: Duration) -> bool {
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.entry(id).or_default().push(sender);
        }
        // It may have left before the waiter was registered.
        let sent = if self.store.in_outbox(id).unwrap_or(true) {
            tokio::time::timeout(timeout, receiver).await.is_ok_and(|result| result.is_ok())
        } else {
            drop(receiver);
            true
        };
        // Whatever the answer, no waiter of this call is left behind.
        if let Ok(mut waiters) = self.waiters.lock()
            && let Some(senders) = waiters.get_mut(&id)
        {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                waiters.remove(&id);
            }
        }
        sent
    }

    fn release(&self, id: u64) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&id);
        }
    }

    fn notify_sent(&self, id: u64) {
        let senders = self.waiters.lock().ok().and_then(|mut waiters| waiters.remove(&id));
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// Runs the worker until the task is dropped.
    pub async fn run<C: Courier>(self: Arc<Self>, courier: Arc<C>) {
        loop {
            let now_ms = self.clock.now_ms();
            // What is on its way already is left out before its envelope is read:
            // its delivery wakes the worker when it ends.
            let on_its_way = |id: u64| self.in_flight.lock().is_ok_and(|set| set.contains(&id));
            let due = match self.store.due_except(now_ms, 512, &on_its_way) {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "outbox cannot be read");
                    Vec::new()
                }
            };
            let mut next_wake = Duration::from_millis(250);
            for item in due {
                let fresh = self.in_flight.lock().map(|mut set| set.insert(item.id)).unwrap_or(false);
                if !fresh {
                    continue;
                }
                let outbox = Arc::clone(&self);
                let courier = Arc::clone(&courier);
                let span = delivery_span(&item);
                tokio::spawn(
                    async move {
                        outbox.deliver(&*courier, item).await;
                    }
                    .instrument(span),
                );
            }
            if let Ok(schedule) = self.store.schedule()
                && let Some(soonest) =
                    schedule.into_iter().filter(|&(id, t)| t != PARKED && !on_its_way(id)).map(|(_, t)| t).min()
            {
                let wait_ms = (soonest - self.clock.now_ms()).clamp(1, 250);
                next_wake = Duration::from_millis(wait_ms as u64);
            }
            let _ = tokio::time::timeout(next_wake, self.wake.notified()).await;
        }
    }

    async fn deliver<C: Courier>(&self, courier: &C, item: OutboxItem) {
        let attempt = match tokio::time::timeout(self.policy.attempt_timeout, courier.attempt(&item)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::Retry(format!("no answer within {:?}", self.policy.attempt_timeout)),
        };
        // Settled: delivered, or parked as an incident (waiters are told either way).
        let (batch, settled, durability) = match attempt {
            Attempt::Delivered(mut batch) => {
                let durability = if batch.is_empty() || courier.delivery_is_bookkeeping() {
                    Durability::Unflushed
                } else {
                    Durability::Flushed
                };
                batch.dequeue(&item);
                (batch, true, durability)
            }
            Attempt::Stopped(mut batch, error) => {
                // Refused for good: nothing acknowledged may vanish, so it waits as
                // an incident with its reason until someone retries it by hand.
                tracing::error!(id = item.id, target = %item.target, %error, "delivery refused: parked as an incident");
                let mut parked = item.clone();
                parked.attempts += 1;
                parked.last_error = error.chars().take(500).collect();
                parked.next_attempt_ms = PARKED;
                self.counters.add("outbox.incidents", 1);
                batch.update_outbox(parked);
                (batch, true, Durability::Flushed)
            }
            Attempt::Retry(error) => {
                let mut updated = item.clone();
                updated.attempts += 1;
                updated.last_error = error.chars().take(500).collect();
                let parked = updated.attempts >= self.policy.max_attempts;
                let mut batch = if parked {
                    tracing::error!(id = item.id, target = %item.target, %error, "delivery parked as an incident");
                    updated.next_attempt_ms = PARKED;
                    self.counters.add("outbox.incidents", 1);
                    courier.parked(&updated, &error)
                } else {
                    tracing::info!(id = item.id, target = %item.target, attempts = updated.attempts, %error, "delivery will be retried");
                    updated.next_attempt_ms = self.clock.now_ms() + self.policy.delay_ms(item.attempts);
                    self.counters.add("outbox.retries", 1);
                    Batch::new()
                };
                batch.update_outbox(updated);
                // A retry's schedule is bookkeeping; an incident is not.
                (batch, parked, if parked { Durability::Flushed } else { Durability::Unflushed })
            }
        };
        let committed = match durability {
            Durability::Flushed => self.store.commit(batch).await,
            Durability::Unflushed => self.store.commit_unflushed(batch).await,
        };
        match committed {
            Ok(_) => {
                if settled {
                    self.notify_sent(item.id);
                }
            }
            Err(error) => tracing::warn!(id = item.id, %error, "delivery outcome not recorded; the item stays due"),
        }
        self.release(item.id);
        self.kick();
    }
}

/// The span of one delivery attempt of `item`, in its application's trace
/// when spans are exported (its correlation id is then read off its envelope).
fn delivery_span(item: &OutboxItem) -> tracing::Span {
    let correlation_id = if crate::trace::exporting() {
        egov_envelope::header_of_stored(&item.envelope).map(|header| header.correlation_id).unwrap_or_default()
    } else {
        String::new()
    };
    crate::trace::delivery_span(&item.target, item.id, item.attempts + 1, &correlation_id)
}

/// The gateway's receipt for a message it took, verified ([`ToGateway`]).
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The signed receipt, as the gateway sent it.
    pub envelope: egov_proto::Envelope,
    /// The message it is for (its correlation id names the application).
    pub correlation_id: String,
    pub message_id: String,
    /// When the gateway took the message.
    pub accepted_time_ms: i64,
}

/// A courier that hands envelopes to the e-government gateway's asynchronous
/// channel and verifies the gateway's signed receipt as any answer.
/// `on_accepted` turns the receipt into the writes that record it (it may read
/// the participant's state); they are committed with the item's removal.
pub struct ToGateway<F> {
    client: egov_proto::gateway_service_client::GatewayServiceClient<crate::GrpcChannel>,
    context: crate::Context,
    on_accepted: F,
}

/// Records a verified receipt: the writes, or why they cannot be made.
pub trait OnAccepted: Fn(&OutboxItem, &Receipt) -> Result<Batch, Refusal> + Send + Sync + 'static {}

impl<F> OnAccepted for F where F: Fn(&OutboxItem, &Receipt) -> Result<Batch, Refusal> + Send + Sync + 'static {}

/// Nothing to record of a receipt but the item's removal.
pub fn nothing_to_record(_: &OutboxItem, _: &Receipt) -> Result<Batch, Refusal> {
    Ok(Batch::new())
}

impl<F: OnAccepted> ToGateway<F> {
    /// Sends with `client` as the member of `context`, writing each attempt down in its monitor.
    pub fn new(
        client: egov_proto::gateway_service_client::GatewayServiceClient<crate::GrpcChannel>,
        context: crate::Context,
        on_accepted: F,
    ) -> ToGateway<F> {
        ToGateway { client, context, on_accepted }
    }
}

/// Checks the gateway's answer to `sent`: a receipt signed by the gateway, a
/// response to the sender of `sent`, for its message and its signed bytes.
pub fn check_receipt(
    context: &crate::Context,
    sent: &egov_proto::Envelope,
    answer: &egov_proto::SendAsyncResponse,
) -> Result<Receipt, Refusal> {
    let bad = |message: String| Refusal::new(tonic::Code::Internal, "gateway.bad_receipt", message);
    let request = egov_envelope::decode_header(&sent.header)
        .map_err(|error| bad(format!("the message sent does not decode: {error}")))?;
    let envelope = answer.receipt.as_ref().ok_or_else(|| bad("the gateway's answer has no receipt".to_owned()))?;
    let verified =
        context.open(envelope, &context.checks).map_err(|error| bad(format!("the gateway's receipt: {error}")))?;
    let header = &verified.header;
    if header.sender_id != crate::ids::GATEWAY
        || verified.message_type() != egov_proto::MessageType::Response
        || header.recipient_id != request.sender_id
        || header.correlation_id != request.correlation_id
        || header.service_id != request.service_id
    {
        return Err(bad(format!(
            "a receipt from {} to {} for {} does not answer message {}",
            header.sender_id, header.recipient_id, header.correlation_id, request.message_id
        )));
    }
    let body: egov_proto::AsyncReceipt = crate::Context::body(envelope, &verified)
        .map_err(|refusal| bad(format!("the gateway's receipt: {}", refusal.message)))?;
    if body.message_id != request.message_id || body.digest != crate::idempotency::digest(sent) {
        return Err(bad(format!(
            "the receipt is for message {} and other bytes, not for message {} as sent",
            body.message_id, request.message_id
        )));
    }
    Ok(Receipt {
        envelope: envelope.clone(),
        correlation_id: request.correlation_id,
        message_id: body.message_id,
        accepted_time_ms: body.accepted_time_ms,
    })
}

impl<F: OnAccepted> Courier for ToGateway<F> {
    async fn attempt(&self, item: &OutboxItem) -> Attempt {
        use prost::Message as _;
        let envelope = match egov_proto::Envelope::decode(item.envelope.as_slice()) {
            Ok(envelope) => envelope,
            Err(error) => return Attempt::Stopped(Batch::new(), format!("stored envelope does not decode: {error}")),
        };
        let mut client = self.client.clone();
        let request_out_us = crate::monitor::now_us();
        let sent = client.send_async(egov_proto::SendAsyncRequest { envelope: Some(envelope.clone()) }).await;
        let answer = sent.as_ref().map(|response| response.get_ref().encoded_len());
        self.context.monitor.sent("GatewayService/SendAsync", crate::ids::GATEWAY, &envelope, request_out_us, answer);
        let response = match sent {
            Ok(response) => response.into_inner(),
            Err(status) if crate::status::is_retryable(&status) => {
                return Attempt::Retry(format!("{:?}: {}", status.code(), status.message()));
            }
            Err(status) => {
                return Attempt::Stopped(Batch::new(), format!("{:?}: {}", status.code(), status.message()));
            }
        };
        // A forged or wrong receipt proves nothing: the item waits as an incident, nothing recorded.
        let receipt = match check_receipt(&self.context, &envelope, &response) {
            Ok(receipt) => receipt,
            Err(refusal) => return Attempt::Stopped(Batch::new(), format!("{}: {}", refusal.reason, refusal.message)),
        };
        // A receipt that cannot be recorded never leaves the outbox silently: the
        // gateway answers a resend with the same receipt, so it is tried again, and
        // parked as an incident with its reason when it cannot be recorded for good.
        match (self.on_accepted)(item, &receipt) {
            Ok(batch) => Attempt::Delivered(batch),
            Err(refusal) if matches!(refusal.code, tonic::Code::Unavailable | tonic::Code::Aborted) => {
                Attempt::Retry(format!("the receipt is not recorded: {}: {}", refusal.reason, refusal.message))
            }
            Err(refusal) => Attempt::Stopped(
                Batch::new(),
                format!("the receipt is not recorded: {}: {}", refusal.reason, refusal.message),
            ),
        }
    }

    fn parked(&self, _item: &OutboxItem, _error: &str) -> Batch {
        Batch::new()
    }
}
