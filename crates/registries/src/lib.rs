//! The "Individuals" state database (GBD FL) and the unified notarial
//! information system (ENIS), served from fixture files. Only the gateway may
//! call them: every request must carry the gateway's countersignature, which
//! the receive pipeline checks by the table of services.
#![forbid(unsafe_code)]

mod individuals;
mod notary;

use thiserror::Error;

pub use individuals::{Individuals, IndividualsServer};
pub use notary::{NotaryServer, Powers};

/// Why a fixture file was refused.
#[derive(Debug, Error)]
pub enum FixtureError {
    #[error("fixture does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("record {index}: iin {iin}: {reason}")]
    BadIin { index: usize, iin: String, reason: String },
    #[error("record {index}: {key} is listed twice")]
    Duplicate { index: usize, key: String },
}
