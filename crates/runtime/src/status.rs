//! Errors on the wire: a `tonic::Status` whose message starts with a stable
//! reason code, which is also carried in the `egov-reason` metadata entry.

use egov_envelope::EnvelopeError;
use tonic::{Code, Status, metadata::MetadataValue};

/// The metadata key that carries the reason code.
pub const REASON_KEY: &str = "egov-reason";

/// A refusal: a gRPC code, a stable reason code and a human message.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, reason: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal { code, reason, message: message.to_string() }
    }
}

impl Refusal {
    /// The status a caller receives.
    pub fn into_status(self) -> Status {
        self.into()
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        let mut status = Status::new(refusal.code, format!("{}: {}", refusal.reason, refusal.message));
        status.metadata_mut().insert(REASON_KEY, MetadataValue::from_static(refusal.reason));
        tracing::info!(reason = refusal.reason, code = ?refusal.code, "refused: {}", refusal.message);
        status
    }
}

impl From<EnvelopeError> for Refusal {
    fn from(error: EnvelopeError) -> Refusal {
        let code = match &error {
            EnvelopeError::TooLarge { .. } => Code::ResourceExhausted,
            e if e.is_authentication() => Code::Unauthenticated,
            _ => Code::InvalidArgument,
        };
        Refusal::new(code, error.code(), error)
    }
}

impl From<egov_store::StoreError> for Refusal {
    /// A lost race for a record may pass when tried again (`ABORTED`); damaged
    /// data does not (`DATA_LOSS`); the rest is the store failing (`UNAVAILABLE`).
    fn from(error: egov_store::StoreError) -> Refusal {
        let code = match error {
            egov_store::StoreError::Conflict { .. } => Code::Aborted,
            egov_store::StoreError::Corrupt { .. } => Code::DataLoss,
            egov_store::StoreError::Format { .. } => Code::FailedPrecondition,
            _ => Code::Unavailable,
        };
        Refusal::new(code, error.code(), error)
    }
}

impl From<egov_regulation::TransitionError> for Refusal {
    fn from(error: egov_regulation::TransitionError) -> Refusal {
        use egov_regulation::TransitionError as E;
        let code = match error {
            E::WrongActor { .. } => Code::PermissionDenied,
            E::UnknownStep { .. } | E::BranchRequired { .. } | E::BranchNotAllowed { .. } => Code::InvalidArgument,
            E::Ended { .. } | E::NotCurrent { .. } => Code::FailedPrecondition,
        };
        Refusal::new(code, error.code(), error)
    }
}

/// Stored bytes that do not decode: the store is damaged.
pub fn corrupt(what: &str, error: prost::DecodeError) -> Refusal {
    Refusal::new(Code::DataLoss, "store.corrupt", format!("stored {what} does not decode: {error}"))
}

/// The refusal of a request without its envelope.
pub fn missing_envelope() -> Status {
    Refusal::new(Code::InvalidArgument, "envelope.missing", "the request carries no envelope").into()
}

/// The reason code of a status made by [`Refusal`], if it has one.
pub fn reason_of(status: &Status) -> Option<&str> {
    status.metadata().get(REASON_KEY).and_then(|value| value.to_str().ok())
}

/// Whether a failed call may succeed when tried again unchanged.
pub fn is_retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted)
        || (status.code() == Code::Unknown && reason_of(status).is_none())
}
