//! The business payload inside `data`: egov's schema for each service is its
//! protobuf body type written as XML, field by field (docs/shep.md, "Payloads").
//! The real services' schemas are not public: this mapping is the simulator's
//! assumption. One rule for every type, driven by the descriptors of
//! `egov-proto`, so the XSD of every payload is generated, never hand-kept.
//!
//! - The root element is the message's name (`PersonQuery`), unqualified.
//! - Each set field is a child element named by its lowerCamelCase JSON name
//!   (`applicantIin`), in field-number order; a repeated field repeats its element.
//! - Scalars as XSD lexical forms: strings as text, integers in decimal, bool
//!   `true`/`false`, bytes base64, enums by their value name without the type's
//!   prefix (`VALID` for `POWER_OF_ATTORNEY_STATUS_VALID`).
//! - A nested message is a child element with its fields as children.
//! - A field of type `egov.v1.Envelope` (a signed message carried inside
//!   another: the operator's submission, the head's result) is written by the
//!   edge, not by this module (see `carried`).

use crate::wire::WireError;

/// Reads `xml` as a message of type `descriptor`.
pub fn from_xml(
    xml: &str,
    descriptor: &prost_reflect::MessageDescriptor,
) -> Result<prost_reflect::DynamicMessage, WireError> {
    let _ = (xml, descriptor);
    unimplemented!("payload::from_xml")
}

/// Writes `message` as XML.
pub fn to_xml(message: &prost_reflect::DynamicMessage) -> String {
    let _ = message;
    unimplemented!("payload::to_xml")
}
