//! Errors on the wire: a `tonic::Status` whose message starts with a stable
//! reason code, which is also carried in the `egov-reason` metadata entry.

use egov_envelope::EnvelopeError;
use tonic::{Code, Status, metadata::MetadataValue};

/// The metadata key that carries the reason code.
pub const REASON_KEY: &str = "egov-reason";

/// The binary metadata key that carries a notice to the applicant with a
/// refusal: an encoded `egov.v1.Envelope` whose body is an `egov.v1.Notice`,
/// signed by the participant that refused (the counter's refusal of an
/// incomplete package, `docs/envelope.md`).
pub const NOTICE_KEY: &str = "egov-notice-bin";

/// The metadata key that tells an applicant who came for the result before
/// it arrived when to come back (`workstation.result_not_ready`): an RFC 3339
/// instant in Astana time, e.g. `2026-06-16T09:00:00+05:00`.
pub const COME_BACK_KEY: &str = "egov-come-back-at";

/// A refusal: a gRPC code, a stable reason code and a human message, and
/// the binary metadata entries the status carries besides (none for most).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    pub reason: &'static str,
    pub message: String,
    /// Binary metadata of the status: each key ends in `-bin`.
    pub binary: Vec<(&'static str, Vec<u8>)>,
    /// Text (ASCII) metadata of the status besides the reason.
    pub text: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(code: Code, reason: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal { code, reason, message: message.to_string(), binary: Vec::new(), text: Vec::new() }
    }

    /// The refusal, with the ASCII `value` in the status's metadata at `key`.
    pub fn with_text(mut self, key: &'static str, value: impl Into<String>) -> Refusal {
        self.text.push((key, value.into()));
        self
    }

    /// The refusal, with `value` in the status's binary metadata at `key`
    /// (which must end in `-bin`, as gRPC requires of binary entries).
    pub fn with_binary(mut self, key: &'static str, value: Vec<u8>) -> Refusal {
        assert!(key.ends_with("-bin"), "binary metadata key {key:?} must end in -bin");
        self.binary.push((key, value));
        self
    }
}

impl Refusal {
    /// The status a caller receives.
    pub fn into_status(self) -> Status {
        self.into()
    }
}

/// The most characters of one value a refusal's message quotes back: a
/// longer run of characters without a space (an id, an IIN, a code, as sent)
/// is cut there and followed by `…(N chars)`.
pub const MAX_QUOTED_CHARS: usize = 64;

/// The most bytes of a refusal's message, its reason code included: far
/// below what gRPC clients take in `grpc-message` (8 KiB, percent-encoded).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A refusal's message as it is sent and logged: every run of more than
/// [`MAX_QUOTED_CHARS`] characters without white space is cut to its first
/// [`MAX_QUOTED_CHARS`], followed by `…(N chars)` (N: the run's length); then
/// a message still over [`MAX_MESSAGE_BYTES`] is cut to fit, followed by
/// `…(N chars)` (N: the whole message's length). Every status a participant
/// sends goes through it, so no value quoted back makes the status too large
/// for the caller: the one place the rule is kept (the console's problems too).
pub fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_BYTES));
    let mut rest = message;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        let chars = word.chars().count();
        if chars > MAX_QUOTED_CHARS {
            let cut = word.char_indices().nth(MAX_QUOTED_CHARS).map_or(word.len(), |(at, _)| at);
            out.push_str(&word[..cut]);
            out.push_str(&format!("…({chars} chars)"));
        } else {
            out.push_str(word);
        }
        let space_end = after.find(|c: char| !c.is_whitespace()).unwrap_or(after.len());
        out.push_str(&after[..space_end]);
        rest = &after[space_end..];
        if out.len() > MAX_MESSAGE_BYTES {
            break;
        }
    }
    if out.len() <= MAX_MESSAGE_BYTES {
        return out;
    }
    let marker = format!("…({} chars)", message.chars().count());
    let mut cut = MAX_MESSAGE_BYTES - marker.len();
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out.push_str(&marker);
    out
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        let message = bounded(&format!("{}: {}", refusal.reason, refusal.message));
        let mut status = Status::new(refusal.code, message.clone());
        status.metadata_mut().insert(REASON_KEY, MetadataValue::from_static(refusal.reason));
        for (key, value) in &refusal.binary {
            status.metadata_mut().insert_bin(*key, MetadataValue::from_bytes(value));
        }
        for (key, value) in &refusal.text {
            match MetadataValue::try_from(value.as_str()) {
                Ok(value) => {
                    status.metadata_mut().insert(*key, value);
                }
                Err(_) => tracing::warn!(key, "metadata value {value:?} is not ASCII: left out"),
            }
        }
        tracing::info!(reason = refusal.reason, code = ?refusal.code, "refused: {message}");
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
            egov_store::StoreError::Format { .. }
            | egov_store::StoreError::Schema { .. }
            | egov_store::StoreError::Unmigrated { .. }
            | egov_store::StoreError::Address { .. } => Code::FailedPrecondition,
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
            E::UnknownStep { .. }
            | E::BranchRequired { .. }
            | E::BranchNotAllowed { .. }
            | E::NoHandOver { .. }
            | E::UnknownChannel { .. } => Code::InvalidArgument,
            E::Ended { .. } | E::NotCurrent { .. } | E::NotHandedOver { .. } | E::HandedOverAlready { .. } => {
                Code::FailedPrecondition
            }
        };
        Refusal::new(code, error.code(), error)
    }
}

/// Stored bytes that do not decode: the store is damaged.
pub fn corrupt(what: &str, error: impl std::fmt::Display) -> Refusal {
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

/// The text metadata entry `key` of a status (`None`: absent or not ASCII).
pub fn text_of<'s>(status: &'s Status, key: &str) -> Option<&'s str> {
    status.metadata().get(key).and_then(|value| value.to_str().ok())
}

/// The binary metadata entry `key` of a status, decoded (`None`: absent or not base64).
pub fn binary_of(status: &Status, key: &str) -> Option<Vec<u8>> {
    status.metadata().get_bin(key).and_then(|value| value.to_bytes().ok()).map(|bytes| bytes.to_vec())
}

/// Whether a failed call may succeed when tried again unchanged: the one rule
/// of every client and every participant that sends again (`docs/envelope.md`).
pub fn is_retryable(status: &Status) -> bool {
    match reason_of(status) {
        // A participant's answer: only where its code says the failure may pass
        // (its store or the recipient it calls unreachable, a record changed meanwhile).
        Some(_) => matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Aborted),
        // Every answer of a participant carries a reason code (`reasons`): a status
        // without one never came from the receiver's checks, but from the way to it
        // (a connection refused, closed, or told to go away while the call was on
        // it), so the call may not have been taken at all; a resend is answered once.
        // Not what the client refused itself to send or read (too large, malformed).
        None => !matches!(
            status.code(),
            Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted | Code::Unimplemented
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_quoted_by_a_bounded_prefix_and_the_message_is_bounded() {
        let value = "Жx".repeat(10_000);
        let status =
            Refusal::new(Code::InvalidArgument, "iin.length", format!("IIN {value:?} is not 12 digits")).into_status();
        let message = status.message();
        assert!(message.starts_with("iin.length: IIN \""), "{message}");
        let quoted: String = format!("{value:?}").chars().take(MAX_QUOTED_CHARS).collect();
        assert!(message.contains(&format!("{quoted}…(20002 chars) is not 12 digits")), "{message}");
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());

        // Many short words: the whole message is cut, on a character boundary.
        let words = "Жж ".repeat(2_000);
        let message = bounded(&format!("iin.length: {words}"));
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
        assert!(message.starts_with("iin.length: Жж Жж"), "{message}");
        assert!(message.ends_with(&format!("…({} chars)", 12 + words.chars().count())), "{message}");

        // A message within the bounds is as it was, white space and all.
        let short = "process.wrong_actor: action-3 is for the role provider-head,\tnot  provider-specialist";
        assert_eq!(bounded(short), short);
        assert_eq!(bounded(""), "");
    }

    #[test]
    fn a_failure_on_the_way_is_retried_and_a_participants_refusal_is_not() {
        assert!(is_retryable(&Status::cancelled("operation was canceled")), "a connection closed under the call");
        assert!(is_retryable(&Status::internal("h2 protocol error: GoAway")), "a call after the server's GOAWAY");
        assert!(is_retryable(&Status::unavailable("connection refused")));
        let refused = Refusal::new(Code::InvalidArgument, "iin.check_digit", "bad").into_status();
        assert!(!is_retryable(&refused), "a participant's refusal stands");
        let busy = Refusal::new(Code::Unavailable, "store.io", "disk").into_status();
        assert!(is_retryable(&busy));
        let too_large = Refusal::new(Code::ResourceExhausted, "envelope.too_large", "big").into_status();
        assert!(!is_retryable(&too_large), "the same bytes are as large the next time");
        assert!(!is_retryable(&Status::out_of_range("decoded message length too large")), "refused by the client");
    }
}
