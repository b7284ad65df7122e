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
use crate::ids;
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
}

/// What a receiver expects of an envelope.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The service ids this call accepts.
    pub services: &'a [&'a str],
    /// The roles allowed to send it (access rights at the receiver).
    pub senders: &'a [&'a str],
    /// The message types this call takes.
    pub message_types: &'a [MessageType],
    /// Whether the gateway's countersignature is required (the message came through the gateway).
    pub via_gateway: bool,
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

    /// Verifies an envelope addressed to this participant: form, sender's
    /// signature, freshness, recipient, service, and the gateway's
    /// countersignature where required. Records the ids on the call's span.
    pub fn receive(&self, envelope: &Envelope, expect: Expect<'_>) -> Result<Verified, Refusal> {
        let trust = self.trust.current();
        let verified = egov_envelope::open(envelope, &trust, self.now_ms(), &self.checks)?;
        // The call's span carries the ids of what the call received, not of the
        // answers to what it asked on the way (those expect only responses).
        if expect.message_types != [MessageType::Response] {
            crate::server::record_ids(&verified.header.correlation_id, &verified.header.message_id);
        }
        if verified.header.recipient_id != self.member_id() {
            return Err(EnvelopeError::WrongRecipient {
                found: verified.header.recipient_id.clone(),
                expected: self.member_id().to_owned(),
            }
            .into());
        }
        if !expect.services.contains(&verified.header.service_id.as_str()) {
            return Err(Refusal::new(
                tonic::Code::InvalidArgument,
                "envelope.wrong_service",
                format!(
                    "service {} is not served by this call (expected {})",
                    verified.header.service_id,
                    expect.services.join(" or ")
                ),
            ));
        }
        if !expect.message_types.contains(&verified.message_type()) {
            return Err(Refusal::new(
                tonic::Code::InvalidArgument,
                "envelope.wrong_message_type",
                format!(
                    "{} takes {}, not {}",
                    verified.header.service_id,
                    expect.message_types.iter().map(|t| t.as_str_name()).collect::<Vec<_>>().join(" or "),
                    verified.message_type().as_str_name()
                ),
            ));
        }
        if !expect.senders.contains(&verified.sender_role.as_str()) {
            return Err(Refusal::new(
                tonic::Code::PermissionDenied,
                "access.denied",
                format!(
                    "{} ({}) may not send {} here",
                    verified.header.sender_id, verified.sender_role, verified.header.service_id
                ),
            ));
        }
        if expect.via_gateway {
            egov_envelope::verify_countersignature(envelope, &verified, &trust, ids::GATEWAY)?;
        }
        Ok(verified)
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
