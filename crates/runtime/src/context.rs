//! A participant's identity and what it checks every envelope against.

use std::sync::{Arc, RwLock};

use egov_envelope::{Checks, EnvelopeError, Signer, TrustRegistry, Verified};

/// The trust registry in force, replaced whole when the file is reloaded.
#[derive(Debug, Clone)]
pub struct SharedTrust(Arc<RwLock<Arc<TrustRegistry>>>);

impl SharedTrust {
    pub fn new(trust: TrustRegistry) -> SharedTrust {
        SharedTrust(Arc::new(RwLock::new(Arc::new(trust))))
    }

    /// The registry in force now.
    pub fn current(&self) -> Arc<TrustRegistry> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the registry with `read` and puts it in force, both under the lock, so that two
    /// reloads never interleave (one that read the file before another wrote it cannot put
    /// the older registry back after the newer one). On error the one in force stays.
    pub fn reload<E>(&self, read: impl FnOnce() -> Result<TrustRegistry, E>) -> Result<Arc<TrustRegistry>, E> {
        let mut guard = match self.0.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(read()?);
        Ok(Arc::clone(&guard))
    }

    /// Puts `trust` in force for every later check.
    pub fn replace(&self, trust: TrustRegistry) {
        match self.0.write() {
            Ok(mut guard) => *guard = Arc::new(trust),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(trust),
        }
    }
}
use egov_proto::{Body, Envelope, EnvelopeHeader, MessageType};

use crate::Clock;
use crate::status::Refusal;

/// What a participant needs to sign and verify.
#[derive(Debug, Clone)]
pub struct Context {
    pub trust: SharedTrust,
    pub signer: Signer,
    /// The operational clock: outbox retries, sessions' wall time, log entries.
    pub clock: Arc<dyn Clock>,
    pub checks: Checks,
    /// Simulated time: each event happens at the message time of the envelope
    /// that causes it, so a replay sets the regulatory clock message by message.
    pub message_time: bool,
    /// Retries and other counts, served by the admin service.
    pub counters: Arc<crate::counters::Counters>,
    /// The participant's operational monitoring records.
    pub monitor: crate::monitor::Monitor,
}

impl Context {
    pub fn member_id(&self) -> &str {
        self.signer.member_id()
    }

    /// The operational clock's time.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// When the event a verified envelope causes happens: the clock's time, or
    /// the message time on simulated time.
    pub fn event_time(&self, verified: &Verified) -> i64 {
        if self.message_time { verified.header.message_time_ms } else { self.clock.now_ms() }
    }

    /// Checks an envelope's form and sender signature against the registry in force.
    pub fn open(&self, envelope: &Envelope, checks: &Checks) -> Result<Verified, EnvelopeError> {
        egov_envelope::open(envelope, &self.trust.current(), self.now_ms(), checks)
    }

    /// Signs `body` as this participant's message to `recipient_id`, sent at `time_ms`.
    pub fn seal<B: Body>(
        &self,
        correlation_id: &str,
        service_id: &str,
        recipient_id: &str,
        message_type: MessageType,
        time_ms: i64,
        body: &B,
    ) -> Envelope {
        let header: EnvelopeHeader = self.signer.header(
            uuid::Uuid::new_v4().to_string(),
            correlation_id,
            service_id,
            recipient_id,
            time_ms,
            message_type,
        );
        self.signer.seal(&header, body)
    }

    /// Decodes a verified envelope's body.
    pub fn body<B: Body>(envelope: &Envelope, verified: &Verified) -> Result<B, Refusal> {
        Ok(egov_envelope::decode_body(envelope, verified)?)
    }
}
