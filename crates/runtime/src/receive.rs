//! The receive pipeline: every inbound call of every participant goes
//! through [`Receiver::handle`], in the order of `docs/envelope.md`:
//!
//! 1. the envelope is there, its header and signatures within their limits;
//! 2. the sender's signature (`egov_envelope::open`), then its freshness once
//!    the service is known (a message of the asynchronous channel is never too old);
//! 3. by the table of services (`services.toml`): at the gateway, the route,
//!    its channel, its recipient; at a recipient, that it is addressed here
//!    and served by this call; the message type, the sender's role, the body
//!    limit and, through the gateway, its countersignature;
//! 4. a resend is answered from the store, as it was answered the first time;
//! 5. the body is of the service's type and decodes as the call's, and an
//!    envelope it carries (the operator's submission, the head's result) verifies.
//!
//! On a TLS port, step 3 ends with the caller's certificate: it names the
//! gateway where the envelope came through it, else its sender (`crate::tls`).
//!
//! The participant's handler gets a [`Received`] body and returns an
//! [`Outcome`]: what it changes and what it answers. The pipeline then logs
//! what was received and sent, remembers the answer, and commits it all in
//! one durable batch before anyone is answered. A handler that lost a race for
//! a record (`store.conflict`) wrote nothing, and is run again.

use std::future::Future;
use std::sync::Arc;

use egov_envelope::{Checks, EnvelopeError, Verified};
use egov_proto::{Body, Envelope, EnvelopeHeader, MessageType, Routed};
use egov_store::{Answer, Batch, EntryRef, Store};
use prost::Message;
use serde::Serialize;
use tonic::{Code, Status};

use crate::idempotency;
use crate::outbox::Outbox;
use crate::services::{Channel, Service, Services};
use crate::status::Refusal;
use crate::{Context, ids};

/// The largest gRPC message a participant decodes: above it tonic refuses
/// before the pipeline can; below it the pipeline's limits refuse with a reason code.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The largest envelope header accepted (the header holds ids and times only).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Sends of a call that lost a race for a record, the first included.
const CONFLICT_ATTEMPTS: u32 = 8;

/// An envelope's header within [`MAX_HEADER_BYTES`], before anything else is
/// done with it: the envelope a call carries, and one its body carries.
fn check_header_size(envelope: &Envelope) -> Result<(), Refusal> {
    if envelope.header.len() > MAX_HEADER_BYTES {
        return Err(EnvelopeError::TooLarge { size: envelope.header.len(), limit: MAX_HEADER_BYTES }.into());
    }
    Ok(())
}

/// The header's ids follow the rule of every id that comes in ([`ids::check_id`]).
fn check_header_ids(header: &EnvelopeHeader) -> Result<(), Refusal> {
    ids::check_id("the envelope's correlation id", &header.correlation_id)?;
    ids::check_id("the envelope's message id", &header.message_id)
}

/// What one call takes.
#[derive(Debug, Clone, Copy)]
pub enum Accept {
    /// One service addressed to this participant (its id in the table of services).
    Service(&'static str),
    /// Any service the gateway routes over the channel (the gateway's own calls).
    Route(Channel),
}

/// What a call's body is decoded as.
pub trait Incoming: Sized {
    fn decode(envelope: &Envelope, verified: &Verified) -> Result<Self, Refusal>;
    /// The envelope the body carries, signed by someone else ([`Body::carried`]).
    fn carried(&self) -> Option<&Envelope>;
}

impl<B: Body> Incoming for B {
    fn decode(envelope: &Envelope, verified: &Verified) -> Result<B, Refusal> {
        Context::body(envelope, verified)
    }

    fn carried(&self) -> Option<&Envelope> {
        Body::carried(self)
    }
}

/// A body carried without being kept (the gateway routes bodies): it is
/// checked to decode as its `body_type` ([`Routed`]), which the pipeline has
/// checked is the service's, so that nothing is taken that its recipient must refuse.
#[derive(Debug, Clone)]
pub struct Opaque(Routed);

impl Incoming for Opaque {
    fn decode(envelope: &Envelope, verified: &Verified) -> Result<Opaque, Refusal> {
        let body_type = verified.header.body_type.as_str();
        match Routed::decode(body_type, &envelope.body) {
            Some(Ok(routed)) => Ok(Opaque(routed)),
            Some(Err(error)) => {
                Err(EnvelopeError::MalformedBody { body_type: body_type.to_owned(), reason: error.to_string() }.into())
            }
            None => {
                Err(EnvelopeError::BodyTypeMismatch { found: body_type.to_owned(), expected: "a routed body" }.into())
            }
        }
    }

    fn carried(&self) -> Option<&Envelope> {
        self.0.carried()
    }
}

/// An envelope a body carries, verified by the pipeline: no handler opens it again.
#[derive(Debug, Clone)]
pub struct Carried {
    pub envelope: Envelope,
    pub verified: Verified,
}

/// A verified envelope and its typed body, handed to a participant's
/// handler: made once by the pipeline, and shared (a handler run again after
/// a lost race gets the same value).
#[derive(Debug)]
pub struct Received<B> {
    pub envelope: Envelope,
    pub verified: Verified,
    /// The envelope the body carries, verified.
    pub carried: Option<Carried>,
    /// The service's row of the table.
    pub service: Service,
    pub body: B,
    /// When the event the message causes happens: the message time on
    /// simulated time, the operational clock's time otherwise.
    pub event_ms: i64,
}

impl<B> Received<B> {
    pub fn header(&self) -> &EnvelopeHeader {
        &self.verified.header
    }

    pub fn sender_id(&self) -> &str {
        &self.verified.header.sender_id
    }

    pub fn sender_role(&self) -> &str {
        self.verified.sender_role.as_str()
    }

    pub fn correlation_id(&self) -> &str {
        &self.verified.header.correlation_id
    }

    /// The envelope must be about `application_id`: its correlation id names the application.
    pub fn correlate(&self, application_id: &str) -> Result<(), Refusal> {
        if self.correlation_id() == application_id {
            return Ok(());
        }
        Err(Refusal::new(
            Code::InvalidArgument,
            "envelope.correlation_mismatch",
            format!("the envelope's correlation id {} is not application {application_id}", self.correlation_id()),
        ))
    }
}

/// The keys a log entry is indexed under ([`egov_store::Store::indexed_log`]):
/// `application/CORRELATION` for every entry, and `recipient/RECIPIENT` for
/// what was received, so that a participant's messages of one application,
/// or those it took for one recipient, are read without reading the log.
pub fn log_keys(envelope: &Envelope, direction: &str) -> Vec<String> {
    match egov_envelope::decode_header(&envelope.header) {
        Ok(header) => keys_of(&header, direction),
        Err(_) => Vec::new(),
    }
}

fn keys_of(header: &EnvelopeHeader, direction: &str) -> Vec<String> {
    let mut keys = vec![format!("application/{}", header.correlation_id)];
    if direction == "received" {
        keys.push(format!("recipient/{}", header.recipient_id));
    }
    keys
}

/// What a handler changes and what it answers.
#[derive(Debug)]
pub struct Outcome<A> {
    answer: A,
    batch: Batch,
    sends: usize,
    logged_as: Option<(Envelope, String)>,
    /// The answer's field that carries the envelope of a log entry of this outcome.
    carries: Option<(u32, EntryRef)>,
}

impl<A> Outcome<A> {
    pub fn new(answer: A) -> Outcome<A> {
        Outcome { answer, batch: Batch::new(), sends: 0, logged_as: None, carries: None }
    }

    /// Writes `value` at `key` if its stored version is `expected_version` (0: a new record).
    pub fn put<T: Serialize>(
        &mut self,
        key: impl Into<String>,
        expected_version: u64,
        value: &T,
    ) -> Result<(), Refusal> {
        Ok(self.batch.put(key, expected_version, value)?)
    }

    /// Adds (`present`) or removes an index entry, in the same commit as the record it is derived from.
    pub fn index(&mut self, key: impl Into<String>, present: bool) {
        self.batch.index(key, present);
    }

    /// Logs `envelope` as sent to `target`.
    fn log_sent(&mut self, target: &str, envelope: &Envelope, now_ms: i64) -> EntryRef {
        self.batch.log(now_ms, "sent", envelope.encode_to_vec(), target, log_keys(envelope, "sent"))
    }

    /// Sends `envelope` to `target` through the outbox (logged as sent).
    pub fn send(&mut self, target: &str, envelope: &Envelope, now_ms: i64) {
        let entry = self.log_sent(target, envelope, now_ms);
        self.batch.enqueue(target, entry, now_ms);
        self.sends += 1;
    }

    /// Sends `envelope` to `target` like [`Outcome::send`], at `due_ms` at the
    /// latest, in place of a message of the same `slot` that still waits in the
    /// outbox (it is then not sent: `envelope` must say all it said).
    pub fn send_latest(&mut self, slot: &str, target: &str, envelope: &Envelope, now_ms: i64, due_ms: i64) {
        let entry = self.log_sent(target, envelope, now_ms);
        self.batch.enqueue_latest(slot, target, entry, due_ms);
        self.sends += 1;
    }

    /// Queues for `target` the envelope logged as what the call received (as
    /// it arrived, or as [`Outcome::log_received_as`] says), without logging it again.
    pub fn queue_received(&mut self, target: &str, now_ms: i64) {
        self.batch.enqueue(target, EntryRef::FIRST, now_ms);
        self.sends += 1;
    }

    /// Logs `envelope` as sent to `target` in the call's answer (not queued),
    /// where it is the answer's field `field`: the remembered answer refers to
    /// the log entry instead of holding the envelope again.
    pub fn log_answer(&mut self, target: &str, envelope: &Envelope, now_ms: i64, field: u32) {
        let entry = self.log_sent(target, envelope, now_ms);
        self.carries = Some((field, entry));
    }

    /// Logs `envelope` as what was received, instead of the envelope as it
    /// arrived (the gateway logs the envelope it countersigned), with `note`.
    pub fn log_received_as(&mut self, envelope: Envelope, note: impl Into<String>) {
        self.logged_as = Some((envelope, note.into()));
    }
}

/// The answer to remember: its bytes, or the bytes around field `field`
/// (the envelope of `entry`), found by walking the answer's top-level fields.
fn remembered_answer(bytes: Vec<u8>, carries: Option<(u32, EntryRef)>) -> Answer {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let Some((field, entry)) = carries else { return Answer::Bytes(bytes) };
    let mut rest: &[u8] = &bytes;
    let mut span = None;
    while !rest.is_empty() {
        let Ok((tag, wire_type)) = decode_key(&mut rest) else { break };
        let skip = match wire_type {
            WireType::Varint => decode_varint(&mut rest).map(|_| 0).ok(),
            WireType::SixtyFourBit => Some(8),
            WireType::ThirtyTwoBit => Some(4),
            WireType::LengthDelimited => decode_varint(&mut rest).ok().map(|len| len as usize),
            WireType::StartGroup | WireType::EndGroup => None,
        };
        let Some(skip) = skip.filter(|skip| *skip <= rest.len()) else { break };
        let at = bytes.len() - rest.len();
        if tag == field && wire_type == WireType::LengthDelimited {
            span = Some((at, at + skip));
        }
        rest = &rest[skip..];
    }
    match span {
        Some((from, to)) => Answer::Carrying { before: bytes[..from].to_vec(), entry, after: bytes[to..].to_vec() },
        None => Answer::Bytes(bytes),
    }
}

/// A call's answer and the ids of the outbox items its commit queued.
#[derive(Debug)]
pub struct Handled<A> {
    pub answer: A,
    /// Empty for a resend answered from the store.
    pub queued: Vec<u64>,
    /// The header of the envelope the call received.
    pub header: EnvelopeHeader,
}

/// A participant's receiving side: its identity, the table of services, and
/// (for a participant with state) its store and outbox.
#[derive(Debug, Clone)]
pub struct Receiver {
    context: Context,
    services: Arc<Services>,
    store: Option<Store>,
    outbox: Option<Arc<Outbox>>,
}

impl Receiver {
    /// A participant without state (the registries): it answers, it stores nothing.
    pub fn stateless(context: Context, services: Arc<Services>) -> Receiver {
        Receiver { context, services, store: None, outbox: None }
    }

    /// A participant with a store and an outbox.
    pub fn stateful(context: Context, services: Arc<Services>, store: Store, outbox: Arc<Outbox>) -> Receiver {
        Receiver { context, services, store: Some(store), outbox: Some(outbox) }
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The row of the table of services for `id`.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.get(id)
    }

    /// Takes one call through the pipeline; see the module's documentation.
    pub async fn handle<B, A, H, F>(&self, accept: Accept, envelope: Option<Envelope>, handler: H) -> Result<A, Status>
    where
        B: Incoming,
        A: Message + Default,
        H: Fn(Arc<Received<B>>) -> F,
        F: Future<Output = Result<Outcome<A>, Status>>,
    {
        Ok(self.handle_queued(accept, envelope, handler).await?.answer)
    }

    /// [`Receiver::handle`], also returning the ids of the outbox items queued.
    pub async fn handle_queued<B, A, H, F>(
        &self,
        accept: Accept,
        envelope: Option<Envelope>,
        handler: H,
    ) -> Result<Handled<A>, Status>
    where
        B: Incoming,
        A: Message + Default,
        H: Fn(Arc<Received<B>>) -> F,
        F: Future<Output = Result<Outcome<A>, Status>>,
    {
        let envelope = envelope.ok_or_else(crate::status::missing_envelope)?;
        let received_ms = self.context.now_ms();
        let (verified, service) = self.admit(&envelope, accept)?;
        if let Some(store) = &self.store
            && let Some(answer) = idempotency::resent::<A>(store, &verified, &envelope)?
        {
            crate::monitor::note_answer(answer.encoded_len());
            return Ok(Handled { answer, queued: Vec::new(), header: verified.header });
        }
        if verified.header.body_type != service.body {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "envelope.body_type_mismatch",
                format!("body type is {}, expected {}", verified.header.body_type, service.body),
            )
            .into());
        }
        let body = B::decode(&envelope, &verified)?;
        let carried = self.open_carried(body.carried())?;
        let received = Arc::new(Received {
            event_ms: self.context.event_time(&verified),
            envelope,
            verified,
            carried,
            service: service.clone(),
            body,
        });
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = handler(Arc::clone(&received)).await?;
            match self.commit(&received, outcome, received_ms).await {
                Err(refusal) if refusal.reason == "store.conflict" && attempts < CONFLICT_ATTEMPTS => continue,
                done => {
                    let handled = done?;
                    crate::monitor::note_answer(handled.answer.encoded_len());
                    return Ok(handled);
                }
            }
        }
    }

    /// Steps 1-3 of the pipeline: the envelope's shape, its signature, and
    /// the rules of its service for this call.
    pub fn admit(&self, envelope: &Envelope, accept: Accept) -> Result<(Verified, &Service), Refusal> {
        check_header_size(envelope)?;
        // Freshness is checked below, once the service says whether it applies.
        let unfreshened = Checks { freshness_window_ms: None, ..self.context.checks.clone() };
        let verified = self.context.open(envelope, &unfreshened)?;
        check_header_ids(&verified.header)?;
        crate::server::record_ids(&verified.header.correlation_id, &verified.header.message_id);
        crate::monitor::note_envelope(&verified.header, envelope);
        let header = &verified.header;
        let service = match accept {
            Accept::Route(channel) => self.route(&verified, channel)?,
            Accept::Service(id) => {
                if header.recipient_id != self.context.member_id() {
                    return Err(EnvelopeError::WrongRecipient {
                        found: header.recipient_id.clone(),
                        expected: self.context.member_id().to_owned(),
                    }
                    .into());
                }
                let served = self
                    .services
                    .get(&header.service_id)
                    .filter(|service| service.id == id && service.recipient == self.context.member_id());
                served.ok_or_else(|| {
                    Refusal::new(
                        Code::InvalidArgument,
                        "envelope.wrong_service",
                        format!("service {} is not served by this call", header.service_id),
                    )
                })?
            }
        };
        // A message of the asynchronous channel may wait in an outbox while the
        // next hop is down, for as long as that takes: it is never too old (a
        // replay of it is refused by the idempotency index every stateful
        // receiver keeps), though it may not come from the future (docs/envelope.md).
        match egov_envelope::check_freshness(header, self.context.now_ms(), &self.context.checks) {
            Err(EnvelopeError::Stale { .. }) if service.channel == Channel::Async => {}
            checked => checked?,
        }
        if !service.message_types.contains(&verified.message_type()) {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "envelope.wrong_message_type",
                format!(
                    "{} takes {}, not {}",
                    service.id,
                    service.message_types.iter().map(|t| t.as_str_name()).collect::<Vec<_>>().join(" or "),
                    verified.message_type().as_str_name()
                ),
            ));
        }
        if !service.allows(verified.sender_role.as_str()) {
            return Err(Refusal::new(
                Code::PermissionDenied,
                "access.denied",
                format!("{} ({}) may not send {}", header.sender_id, verified.sender_role, service.id),
            ));
        }
        if let Some(limit) = service.max_body_bytes
            && envelope.body.len() > limit
        {
            return Err(EnvelopeError::TooLarge { size: envelope.body.len(), limit }.into());
        }
        // The sender's signature, and the gateway's where the message came through it.
        let signatures = if service.channel.via_gateway() && !matches!(accept, Accept::Route(_)) { 2 } else { 1 };
        if envelope.signatures.len() > signatures {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "envelope.unexpected_signature",
                format!("the envelope carries {} signatures; this call takes {signatures}", envelope.signatures.len()),
            ));
        }
        if signatures == 2 {
            egov_envelope::verify_countersignature(envelope, &verified, &self.context.trust.current(), ids::GATEWAY)?;
        }
        // On a TLS port: the caller's certificate is the gateway's where it countersigned, else the sender's.
        crate::tls::check_peer(&header.sender_id, signatures == 2)?;
        Ok((verified, service))
    }

    /// An envelope the body carries (the operator's submission, the head's
    /// result) must verify too: what a participant logs, the audit can check.
    /// Verified here once, it goes to the handler with the body.
    fn open_carried(&self, carried: Option<&Envelope>) -> Result<Option<Carried>, Refusal> {
        let Some(carried) = carried else { return Ok(None) };
        let refused = |message: String| Refusal::new(Code::InvalidArgument, "envelope.bad_carried_envelope", message);
        // It was signed by its sender and never travelled on its own: no countersignature, nothing else.
        if carried.signatures.len() > 1 {
            return Err(refused(format!(
                "the envelope the body carries has {} signatures, not its sender's alone",
                carried.signatures.len()
            )));
        }
        // The limits and the rule for ids of every envelope apply to it too.
        let inner = |refusal: Refusal| {
            refused(format!("the envelope the body carries is refused: {}: {}", refusal.reason, refusal.message))
        };
        check_header_size(carried).map_err(inner)?;
        let checks = Checks { freshness_window_ms: None, ..self.context.checks.clone() };
        let verified = self.context.open(carried, &checks).map_err(|error| inner(error.into()))?;
        check_header_ids(&verified.header).map_err(inner)?;
        Ok(Some(Carried { envelope: carried.clone(), verified }))
    }

    /// At the gateway: the route of a verified message over `channel`.
    fn route(&self, verified: &Verified, channel: Channel) -> Result<&Service, Refusal> {
        let header = &verified.header;
        let service = self.services.get(&header.service_id).filter(|service| service.channel.via_gateway());
        let service = service.ok_or_else(|| {
            Refusal::new(
                Code::NotFound,
                "gateway.unknown_service",
                format!("no service {} is routed", header.service_id),
            )
        })?;
        if service.channel != channel {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "gateway.wrong_channel",
                format!("service {} travels on the {:?} channel", service.id, service.channel).to_lowercase(),
            ));
        }
        if header.recipient_id != service.recipient {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "gateway.wrong_recipient",
                format!("service {} goes to {}, not to {}", service.id, service.recipient, header.recipient_id),
            ));
        }
        Ok(service)
    }

    /// The signed answer to a synchronous request: the same correlation and
    /// service, to its sender, at the time of the event.
    pub fn reply<R, B: Body>(&self, received: &Received<R>, body: &B) -> Envelope {
        self.context.seal(
            received.correlation_id(),
            &received.service.id,
            received.sender_id(),
            MessageType::Response,
            received.event_ms,
            body,
        )
    }

    /// Checks an answer to a request this participant sent for `service_id`:
    /// signed by the service's recipient, a response, to this participant's
    /// request (same correlation), countersigned where it came through the gateway.
    pub fn open_answer<B: Incoming>(
        &self,
        service_id: &str,
        request: &EnvelopeHeader,
        answer: &Envelope,
        via_gateway: bool,
    ) -> Result<B, Refusal> {
        let bad = |message: String| Refusal::new(Code::Internal, "envelope.bad_answer", message);
        let service =
            self.services.get(service_id).ok_or_else(|| bad(format!("service {service_id} is not in the table")))?;
        let verified = self
            .context
            .open(answer, &self.context.checks)
            .map_err(|e| bad(format!("{}'s answer: {e}", service.recipient)))?;
        let header = &verified.header;
        if header.sender_id != service.recipient
            || header.correlation_id != request.correlation_id
            || header.recipient_id != request.sender_id
            || header.service_id != service.id
            || verified.message_type() != MessageType::Response
        {
            return Err(bad(format!(
                "answer from {} for {} to {} does not match the request",
                header.sender_id, header.correlation_id, header.recipient_id
            )));
        }
        if via_gateway {
            egov_envelope::verify_countersignature(answer, &verified, &self.context.trust.current(), ids::GATEWAY)
                .map_err(|e| bad(format!("{}'s answer: {e}", service.recipient)))?;
        }
        B::decode(answer, &verified)
    }

    /// Logs what was received and sent, remembers the answer, and commits.
    async fn commit<B, A: Message + Default>(
        &self,
        received: &Received<B>,
        outcome: Outcome<A>,
        received_ms: i64,
    ) -> Result<Handled<A>, Refusal> {
        let Outcome { answer, mut batch, sends, logged_as, carries } = outcome;
        let header = received.header().clone();
        let Some(store) = &self.store else {
            return Ok(Handled { answer, queued: Vec::new(), header });
        };
        let (logged, note) = match logged_as {
            Some((envelope, note)) => (envelope.encode_to_vec(), note),
            None => (received.envelope.encode_to_vec(), String::new()),
        };
        batch.log_first(received_ms, "received", logged, note, keys_of(&header, "received"));
        batch.remember(
            &header.sender_id,
            &header.message_id,
            idempotency::digest(&received.envelope),
            remembered_answer(answer.encode_to_vec(), carries),
        );
        let queued = store.commit(batch).await?;
        if sends > 0
            && let Some(outbox) = &self.outbox
        {
            outbox.kick();
        }
        Ok(Handled { answer, queued, header })
    }
}
