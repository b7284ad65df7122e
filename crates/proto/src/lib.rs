//! The gRPC contract of every participant, generated from `proto/egov/v1`.
#![forbid(unsafe_code)]

/// Package `egov.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("egov.v1");
}

/// The encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("egov_descriptor");

pub use v1::*;

/// A message that travels as an envelope's body: its protobuf full name is
/// the header's `body_type`.
pub trait Body: prost::Message + Default {
    /// The protobuf full name, e.g. `egov.v1.PersonQuery`.
    const TYPE: &'static str;
}

macro_rules! bodies {
    ($($name:ident),* $(,)?) => {
        $(impl Body for v1::$name {
            const TYPE: &'static str = concat!("egov.v1.", stringify!($name));
        })*
    };
}

bodies!(
    PersonQuery,
    PersonAnswer,
    PowerOfAttorneyQuery,
    PowerOfAttorneyAnswer,
    ApplicationForm,
    ApplicationSubmission,
    ResultPickup,
    ApplicationDelivery,
    ApplicationProgress,
    ServiceResult,
    StaffAction,
);
