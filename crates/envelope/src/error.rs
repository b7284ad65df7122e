use thiserror::Error;

/// Why an envelope was refused. Each variant has a stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("envelope header does not decode: {0}")]
    MalformedHeader(String),
    #[error("envelope header field {0} is missing")]
    MissingField(&'static str),
    #[error("envelope carries no signature")]
    MissingSignature,
    #[error("signature is {found} bytes, not 64")]
    SignatureLength { found: usize },
    #[error("sender {0} is not a member of the trust registry")]
    UnknownSender(String),
    #[error("key {0} is not in the trust registry")]
    UnknownKey(String),
    #[error("key {key_id} belongs to {owner}, not to sender {sender}")]
    KeyNotOfSender { key_id: String, owner: String, sender: String },
    #[error("key {key_id} was revoked at {revoked_at_ms} ms, before the message time")]
    KeyRevoked { key_id: String, revoked_at_ms: i64 },
    #[error("key {key_id} is not valid at the message time")]
    KeyNotValid { key_id: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("message time is {skew_ms} ms before the receiver's clock, outside the window")]
    Stale { skew_ms: i64 },
    #[error("message time is {skew_ms} ms after the receiver's clock, outside the window")]
    Future { skew_ms: i64 },
    #[error("body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("body type is {found}, expected {expected}")]
    BodyTypeMismatch { found: String, expected: &'static str },
    #[error("body does not decode as {body_type}: {reason}")]
    MalformedBody { body_type: String, reason: String },
    #[error("gateway countersignature is missing")]
    MissingCountersignature,
    #[error("gateway countersignature does not verify")]
    BadCountersignature,
    #[error("message is addressed to {found}, not to {expected}")]
    WrongRecipient { found: String, expected: String },
}

impl EnvelopeError {
    /// The stable, machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::MalformedHeader(_) => "envelope.malformed_header",
            EnvelopeError::MissingField(_) => "envelope.missing_field",
            EnvelopeError::MissingSignature => "envelope.missing_signature",
            EnvelopeError::SignatureLength { .. } => "envelope.bad_signature",
            EnvelopeError::UnknownSender(_) => "envelope.unknown_sender",
            EnvelopeError::UnknownKey(_) => "envelope.unknown_key",
            EnvelopeError::KeyNotOfSender { .. } => "envelope.key_not_of_sender",
            EnvelopeError::KeyRevoked { .. } => "envelope.key_revoked",
            EnvelopeError::KeyNotValid { .. } => "envelope.key_not_valid",
            EnvelopeError::BadSignature => "envelope.bad_signature",
            EnvelopeError::Stale { .. } => "envelope.stale",
            EnvelopeError::Future { .. } => "envelope.future",
            EnvelopeError::TooLarge { .. } => "envelope.too_large",
            EnvelopeError::BodyTypeMismatch { .. } => "envelope.body_type_mismatch",
            EnvelopeError::MalformedBody { .. } => "envelope.malformed_body",
            EnvelopeError::MissingCountersignature => "envelope.missing_countersignature",
            EnvelopeError::BadCountersignature => "envelope.bad_countersignature",
            EnvelopeError::WrongRecipient { .. } => "envelope.wrong_recipient",
        }
    }

    /// Whether the refusal is about the caller's credentials rather than the
    /// message's form (maps to `UNAUTHENTICATED` rather than `INVALID_ARGUMENT`).
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            EnvelopeError::MissingSignature
                | EnvelopeError::SignatureLength { .. }
                | EnvelopeError::UnknownSender(_)
                | EnvelopeError::UnknownKey(_)
                | EnvelopeError::KeyNotOfSender { .. }
                | EnvelopeError::KeyRevoked { .. }
                | EnvelopeError::KeyNotValid { .. }
                | EnvelopeError::BadSignature
                | EnvelopeError::MissingCountersignature
                | EnvelopeError::BadCountersignature
        )
    }
}
