//! Signed envelopes: the exact bytes each signature covers, signing,
//! verification against the trust registry, and the checks a receiver makes.
//!
//! Pure: no network, no disk, no clock. Time comes in as an argument.
#![forbid(unsafe_code)]

mod error;
mod signing;
mod trust;

pub use error::EnvelopeError;
pub use signing::{
    COUNTERSIGN_TAG, Checks, SENDER_TAG, Signer, Verified, carried_envelope, check_freshness, countersign,
    countersigned_bytes, decode_body, decode_header, header_of_stored, log_origin, open, sender_signed_bytes,
    verifications, verifications_remembered, verify_countersignature,
};
pub use trust::{KeyEntry, Member, Role, TrustError, TrustRegistry};

/// The service ids of the simulator's exchange, as routed by the gateway.
pub mod services {
    /// "Individuals" person look-up (process 3).
    pub const PERSON_LOOKUP: &str = "gbdfl.person.lookup.v1";
    /// Notarial power-of-attorney check (process 3).
    pub const POWER_OF_ATTORNEY_CHECK: &str = "enis.poa.check.v1";
    /// The application from the State Corporation to the regional gateway ARM (process 6).
    pub const APPLICATION_SUBMIT: &str = "rshep.application.submit.v1";
    /// Progress and the signed result from the regional gateway ARM to the State Corporation.
    pub const APPLICATION_PROGRESS: &str = "sc.application.progress.v1";
    /// The operator's form at the workstation (process 2).
    pub const FORM_OPEN: &str = "sc.form.open.v1";
    /// The operator's signed submission at the workstation (process 5).
    pub const FORM_SUBMIT: &str = "sc.form.submit.v1";
    /// The applicant's ticket of the electronic queue for the result (paragraphs 9.3-9.4).
    pub const QUEUE_TICKET: &str = "sc.queue.ticket.v1";
    /// A free operator calls the next ticket of a centre's queue to their window (paragraph 9.4).
    pub const QUEUE_CALL: &str = "sc.queue.call.v1";
    /// The operator's hand-over of the result (process 9).
    pub const RESULT_ISSUE: &str = "sc.result.issue.v1";
    /// The operator withdraws an application not yet submitted (the simulator's assumption).
    pub const FORM_WITHDRAW: &str = "sc.form.withdraw.v1";
    /// A provider staff step at the regional gateway ARM.
    pub const STAFF_ACTION: &str = "rshep.staff.action.v1";
    /// The head's signature on the result (action 3).
    pub const RESULT_SIGN: &str = "rshep.result.sign.v1";
    /// An application received at the provider's office (paragraph 3; action 1 of that channel).
    pub const OFFICE_RECEIVE: &str = "rshep.office.receive.v1";
    /// The ARM's signed refusal for violations in the documents (process 8),
    /// carried back to the State Corporation as the result.
    pub const REFUSAL_NOTICE: &str = "rshep.refusal.notice.v1";
}
