//! The clients of the people in the regulation: the State Corporation
//! operator (who signs what they submit) and the provider's staff (each
//! signing their own steps), and the route that drives one application
//! through every step with them. Used by the `egov` command, the tests and
//! the replay harness.
#![forbid(unsafe_code)]

mod operator;
pub mod retry;
mod route;
mod staff;

pub use operator::{CounterNotice, CounterNoticeError, OperatorClient, come_back_at, counter_notice, notice_envelope};
pub use retry::Persistence;
pub use route::{
    ApplicationPlan, Applied, Decision, DocumentPlan, Driven, Pacer, Patience, RealTime, RepresentativePlan, Route,
    RouteError, apply, drive, drive_at_office,
};
pub use staff::StaffClient;

/// A key for every staff role: the first member of each role in the trust registry.
pub fn staff_keys(
    keys: &egov_runtime::KeyDir,
    trust: &egov_envelope::TrustRegistry,
) -> anyhow::Result<std::collections::HashMap<String, egov_envelope::Signer>> {
    let mut signers = std::collections::HashMap::new();
    for role in egov_runtime::ids::roles::PROVIDER_STAFF {
        if let Some(member) = trust.members_with_role(role).next() {
            signers.insert((*role).to_owned(), keys.signer_in(trust, &member.id)?);
        }
    }
    Ok(signers)
}

/// Largest message the clients accept (results carry scanned documents).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
