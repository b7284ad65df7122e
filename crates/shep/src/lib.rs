//! The e-government gateway's SHEP face (docs/shep.md).
#![forbid(unsafe_code)]

pub mod asynchronous;
pub mod body;
pub mod edge;
pub mod faults;
pub mod payload;
pub mod push;
pub mod senders;
pub mod services;
pub mod wire;
pub mod wsdl;

pub use edge::{Edge, EdgeParts, EdgeSettings, External, Fronted};
pub use faults::Fault;
