//! The signed bytes, signing and verification. See `docs/envelope.md`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use egov_messages::{Body, Envelope, EnvelopeHeader, MessageType, Signature};
use prost::Message;
use prost::bytes::Bytes;

use crate::{EnvelopeError, Role, TrustRegistry};

/// Domain-separation tag that starts the bytes a sender signs.
pub const SENDER_TAG: &[u8] = b"egov.v1.envelope\0";
/// Domain-separation tag that starts the bytes the gateway countersigns.
pub const COUNTERSIGN_TAG: &[u8] = b"egov.v1.countersignature\0";

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// `SENDER_TAG || u64be(len header) || header || u64be(len body) || body`.
pub fn sender_signed_bytes(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SENDER_TAG.len() + 16 + header.len() + body.len());
    out.extend_from_slice(SENDER_TAG);
    push_field(&mut out, header);
    push_field(&mut out, body);
    out
}

/// `COUNTERSIGN_TAG || u64be(len header) || header || u64be(len body) || body
/// || u64be(len key_id) || key_id || u64be(64) || sender's signature`.
pub fn countersigned_bytes(header: &[u8], body: &[u8], sender: &Signature) -> Vec<u8> {
    let mut out = Vec::with_capacity(COUNTERSIGN_TAG.len() + 32 + header.len() + body.len() + sender.key_id.len() + 64);
    out.extend_from_slice(COUNTERSIGN_TAG);
    push_field(&mut out, header);
    push_field(&mut out, body);
    push_field(&mut out, sender.key_id.as_bytes());
    push_field(&mut out, &sender.ed25519);
    out
}

/// The origin (and key name) of member `member_id`'s message log: `egov/MEMBER`.
pub fn log_origin(member_id: &str) -> String {
    format!("egov/{member_id}")
}

/// A member's private key.
#[derive(Clone)]
pub struct Signer {
    member_id: String,
    key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("member_id", &self.member_id).field("key_id", &self.key_id).finish()
    }
}

impl Signer {
    pub fn from_seed(member_id: impl Into<String>, key_id: impl Into<String>, seed: &[u8; 32]) -> Signer {
        Signer { member_id: member_id.into(), key_id: key_id.into(), key: SigningKey::from_bytes(seed) }
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The member's key as the signer of its message log's checkpoints (C2SP signed note,
    /// key name [`log_origin`] of the member): the seed stays in here.
    pub fn note_signer(&self) -> egov_tlog::NoteSigner {
        egov_tlog::NoteSigner::ed25519(&log_origin(&self.member_id), self.key.clone())
            .unwrap_or_else(|error| panic!("a member id makes a key name: {error}"))
    }

    /// The member's key as a witness: it cosigns (`cosignature/v1`) other logs' checkpoints.
    pub fn cosigner(&self) -> egov_tlog::NoteSigner {
        egov_tlog::NoteSigner::cosigner_v1(&log_origin(&self.member_id), self.key.clone())
            .unwrap_or_else(|error| panic!("a member id makes a key name: {error}"))
    }

    /// Hex of the 32-byte public key, as the trust registry lists it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `header` and `body` as serialised now; the envelope carries these exact bytes.
    pub fn seal<B: Body>(&self, header: &EnvelopeHeader, body: &B) -> Envelope {
        let mut header = header.clone();
        header.body_type = B::TYPE.to_owned();
        self.seal_bytes(header.encode_to_vec(), body.encode_to_vec())
    }

    /// Signs already serialised header and body bytes.
    pub fn seal_bytes(&self, header: impl Into<Bytes>, body: impl Into<Bytes>) -> Envelope {
        let (header, body) = (header.into(), body.into());
        let signature = self.key.sign(&sender_signed_bytes(&header, &body));
        Envelope {
            header,
            body,
            signatures: vec![Signature { key_id: self.key_id.clone(), ed25519: signature.to_bytes().to_vec() }],
        }
    }

    /// A header from this member, with the other fields given.
    pub fn header(
        &self,
        message_id: impl Into<String>,
        correlation_id: impl Into<String>,
        service_id: &str,
        recipient_id: &str,
        message_time_ms: i64,
        message_type: MessageType,
    ) -> EnvelopeHeader {
        EnvelopeHeader {
            message_id: message_id.into(),
            correlation_id: correlation_id.into(),
            service_id: service_id.to_owned(),
            sender_id: self.member_id.clone(),
            recipient_id: recipient_id.to_owned(),
            message_time_ms,
            message_type: message_type as i32,
            body_type: String::new(),
        }
    }
}

/// Appends the gateway's countersignature over the sender's signed bytes and signature.
pub fn countersign(envelope: &mut Envelope, gateway: &Signer) -> Result<(), EnvelopeError> {
    let sender = envelope.signatures.first().ok_or(EnvelopeError::MissingSignature)?;
    let bytes = countersigned_bytes(&envelope.header, &envelope.body, sender);
    let signature = gateway.key.sign(&bytes);
    envelope.signatures.truncate(1);
    envelope.signatures.push(Signature { key_id: gateway.key_id.clone(), ed25519: signature.to_bytes().to_vec() });
    Ok(())
}

/// What a receiver checks besides the signature.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Largest accepted body, checked before anything is decoded.
    pub max_body_bytes: usize,
    /// How far the message time may be from the receiver's clock; `None` turns
    /// the check off (simulated time).
    pub freshness_window_ms: Option<i64>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks { max_body_bytes: 10 * 1024 * 1024, freshness_window_ms: Some(5 * 60 * 1000) }
    }
}

/// An envelope whose sender signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: EnvelopeHeader,
    pub sender_role: Role,
    pub key_id: String,
}

impl Verified {
    pub fn message_type(&self) -> MessageType {
        MessageType::try_from(self.header.message_type).unwrap_or(MessageType::Unspecified)
    }
}

/// Checks an envelope's form and its sender's signature, in the order of
/// `docs/envelope.md`, and decodes the header.
pub fn open(
    envelope: &Envelope,
    trust: &TrustRegistry,
    now_ms: i64,
    checks: &Checks,
) -> Result<Verified, EnvelopeError> {
    if envelope.body.len() > checks.max_body_bytes {
        return Err(EnvelopeError::TooLarge { size: envelope.body.len(), limit: checks.max_body_bytes });
    }
    let header = decode_header(&envelope.header)?;
    for (name, value) in [
        ("message_id", &header.message_id),
        ("correlation_id", &header.correlation_id),
        ("service_id", &header.service_id),
        ("sender_id", &header.sender_id),
        ("recipient_id", &header.recipient_id),
        ("body_type", &header.body_type),
    ] {
        if value.is_empty() {
            return Err(EnvelopeError::MissingField(name));
        }
    }
    if header.message_time_ms <= 0 {
        return Err(EnvelopeError::MissingField("message_time_ms"));
    }
    if MessageType::try_from(header.message_type).unwrap_or(MessageType::Unspecified) == MessageType::Unspecified {
        return Err(EnvelopeError::MissingField("message_type"));
    }
    let sender = envelope.signatures.first().ok_or(EnvelopeError::MissingSignature)?;
    let member =
        trust.member(&header.sender_id).ok_or_else(|| EnvelopeError::UnknownSender(header.sender_id.clone()))?;
    let key = trust.key_for(&sender.key_id, &header.sender_id, header.message_time_ms)?;
    let signature = signature_from(&sender.ed25519)?;
    if !verify(key, &sender_signed_bytes(&envelope.header, &envelope.body), &signature) {
        return Err(EnvelopeError::BadSignature);
    }
    check_freshness(&header, now_ms, checks)?;
    Ok(Verified { sender_role: member.role.clone(), key_id: sender.key_id.clone(), header })
}

/// The message time must be within the freshness window of the receiver's clock (no window: no check).
pub fn check_freshness(header: &EnvelopeHeader, now_ms: i64, checks: &Checks) -> Result<(), EnvelopeError> {
    let Some(window_ms) = checks.freshness_window_ms else { return Ok(()) };
    let skew_ms = header.message_time_ms - now_ms;
    if skew_ms < -window_ms {
        return Err(EnvelopeError::Stale { skew_ms: -skew_ms });
    }
    if skew_ms > window_ms {
        return Err(EnvelopeError::Future { skew_ms });
    }
    Ok(())
}

/// Checks the countersignature (the second signature) by `gateway_id`.
pub fn verify_countersignature(
    envelope: &Envelope,
    verified: &Verified,
    trust: &TrustRegistry,
    gateway_id: &str,
) -> Result<(), EnvelopeError> {
    let sender = envelope.signatures.first().ok_or(EnvelopeError::MissingSignature)?;
    let counter = envelope.signatures.get(1).ok_or(EnvelopeError::MissingCountersignature)?;
    let key = trust.key_for(&counter.key_id, gateway_id, verified.header.message_time_ms).map_err(|e| match e {
        EnvelopeError::UnknownKey(_) | EnvelopeError::KeyNotOfSender { .. } => EnvelopeError::BadCountersignature,
        other => other,
    })?;
    let signature = signature_from(&counter.ed25519).map_err(|_| EnvelopeError::BadCountersignature)?;
    if !verify(key, &countersigned_bytes(&envelope.header, &envelope.body, sender), &signature) {
        return Err(EnvelopeError::BadCountersignature);
    }
    Ok(())
}

/// The envelope a body carries inside it, signed by someone else
/// ([`Body::carried`]: the operator's submission in an `ApplicationDelivery`,
/// the head-signed result in an `ApplicationProgress`). Whoever logs a body
/// that carries one checks its signature too, as the audit does.
pub fn carried_envelope(verified: &Verified, body: &[u8]) -> Result<Option<Envelope>, EnvelopeError> {
    match egov_messages::Routed::decode(&verified.header.body_type, body) {
        None => Ok(None),
        Some(Err(error)) => Err(EnvelopeError::MalformedBody {
            body_type: verified.header.body_type.clone(),
            reason: error.to_string(),
        }),
        Some(Ok(routed)) => Ok(routed.carried().cloned()),
    }
}

/// An envelope's header, decoded from its bytes: the one decoder of header bytes.
pub fn decode_header(bytes: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
    EnvelopeHeader::decode(bytes).map_err(|e| EnvelopeError::MalformedHeader(e.to_string()))
}

/// The header of a stored envelope (a serialised `egov.v1.Envelope`), if both decode.
pub fn header_of_stored(bytes: &[u8]) -> Option<EnvelopeHeader> {
    Envelope::decode(bytes).ok().and_then(|envelope| decode_header(&envelope.header).ok())
}

static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);
static REMEMBERED: AtomicU64 = AtomicU64::new(0);

/// How many ed25519 signatures this process has verified (the bench counts them per application).
pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// How many checks of a signature this process answered from the signatures it verified before: the
/// same signature by the same key over the same bytes, verified before.
pub fn verifications_remembered() -> u64 {
    REMEMBERED.load(Ordering::Relaxed)
}

/// How many verified signatures a process remembers (the oldest is forgotten first).
const REMEMBER_SIGNATURES: usize = 1 << 16;

/// The signatures this process verified, each as SHA-256 over the key, the
/// signature and the signed bytes: a bounded set, oldest out first.
struct VerifiedSignatures {
    set: std::collections::HashSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
}

static VERIFIED_SIGNATURES: Mutex<Option<VerifiedSignatures>> = Mutex::new(None);

fn signature_digest(key: &VerifyingKey, bytes: &[u8], signature: &ed25519_dalek::Signature) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(signature.to_bytes());
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
    hasher.finalize().into()
}

/// The one place a signature is checked: strict ed25519 (`verify_strict`),
/// counted. A signature a participant of this process verified already (the
/// gateway, then the recipient, check the same sender's signature over the
/// same bytes) is answered from a bounded set of verified signatures: the
/// verdict of `verify_strict` is a function of the key, the signature and
/// the bytes, which the set's entry hashes together, so it cannot differ.
/// Whether the key may sign at that time is checked before, every time.
fn verify(key: &VerifyingKey, bytes: &[u8], signature: &ed25519_dalek::Signature) -> bool {
    let digest = signature_digest(key, bytes, signature);
    let lock = || VERIFIED_SIGNATURES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if lock().as_ref().is_some_and(|verified| verified.set.contains(&digest)) {
        REMEMBERED.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
    if key.verify_strict(bytes, signature).is_err() {
        return false;
    }
    let mut guard = lock();
    let verified = guard.get_or_insert_with(|| VerifiedSignatures {
        set: std::collections::HashSet::with_capacity(REMEMBER_SIGNATURES),
        order: std::collections::VecDeque::with_capacity(REMEMBER_SIGNATURES),
    });
    if verified.set.insert(digest) {
        verified.order.push_back(digest);
        if verified.order.len() > REMEMBER_SIGNATURES
            && let Some(oldest) = verified.order.pop_front()
        {
            verified.set.remove(&oldest);
        }
    }
    true
}

/// Decodes the body as `B`, after checking the header names `B`.
pub fn decode_body<B: Body>(envelope: &Envelope, verified: &Verified) -> Result<B, EnvelopeError> {
    if verified.header.body_type != B::TYPE {
        return Err(EnvelopeError::BodyTypeMismatch { found: verified.header.body_type.clone(), expected: B::TYPE });
    }
    B::decode(&envelope.body[..])
        .map_err(|e| EnvelopeError::MalformedBody { body_type: B::TYPE.to_owned(), reason: e.to_string() })
}

fn signature_from(bytes: &[u8]) -> Result<ed25519_dalek::Signature, EnvelopeError> {
    let array: [u8; 64] = bytes.try_into().map_err(|_| EnvelopeError::SignatureLength { found: bytes.len() })?;
    Ok(ed25519_dalek::Signature::from_bytes(&array))
}
