//! The e-government gateway's SHEP face (docs/shep.md).
#![forbid(unsafe_code)]

pub mod payload;
pub mod wire;
pub mod wsdl;
