//! The fixture replay harness: loads application scenarios, replays each as
//! the operator's and the staff's clients would, over gRPC, on a simulated
//! clock per scenario, and compares what happened with what was expected.
#![forbid(unsafe_code)]

mod generate;
mod report;
mod run;
mod scenario;

pub use generate::{GenerateError, Population, generate};
pub use report::{Format, json, junit, summary_line, table};
pub use run::{Actual, Options, Target, Verdict, replay};
pub use scenario::{Expectation, LoadError, Scenario, load};
