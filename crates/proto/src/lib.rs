//! The gRPC contract of every participant, generated from `proto/egov/v1`:
//! the tonic clients and servers, over the messages of `egov-messages`,
//! which this crate re-exports under the same paths.
#![forbid(unsafe_code)]

pub use egov_messages::*;

/// Package `egov.v1`: the messages and the services.
pub mod v1 {
    pub use egov_messages::v1::*;

    #[allow(clippy::all, missing_docs)]
    mod services {
        tonic::include_proto!("egov.v1");
    }
    pub use services::*;
}

/// The encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("egov_descriptor");

pub use v1::*;
