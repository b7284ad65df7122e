//! The clients of the people in the regulation: the State Corporation
//! operator (who signs what they submit) and the provider's staff (each
//! signing their own steps), and the route that drives one application
//! through every step with them. Used by the `egov` command, the tests and
//! the replay harness.
#![forbid(unsafe_code)]

mod operator;
mod route;
mod staff;

pub use operator::OperatorClient;
pub use route::{ApplicationPlan, Decision, DocumentPlan, Driven, Patience, RepresentativePlan, RouteError, drive};
pub use staff::StaffClient;

/// Largest message the clients accept (results carry scanned documents).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
