//! The stable codes of [`WireError`](super::WireError) (listed in docs/envelope.md, "SHEP faults").

/// Not UTF-8, or not well-formed XML.
pub const NOT_XML: &str = "shep.not_xml";
/// A document type declaration (and so any entity declaration).
pub const DTD: &str = "shep.dtd";
/// A processing instruction other than the XML declaration.
pub const PROCESSING_INSTRUCTION: &str = "shep.processing_instruction";
/// More bytes than [`Limits::max_bytes`](super::Limits).
pub const TOO_LARGE: &str = "shep.too_large";
/// Elements nested deeper than [`Limits::max_depth`](super::Limits).
pub const TOO_DEEP: &str = "shep.too_deep";
/// More elements than [`Limits::max_elements`](super::Limits).
pub const TOO_MANY_ELEMENTS: &str = "shep.too_many_elements";
/// Not a SOAP 1.1 envelope with one element in its Body.
pub const NOT_SOAP: &str = "shep.not_soap";
/// A header block egov does not read is marked `mustUnderstand`.
pub const MUST_UNDERSTAND: &str = "shep.must_understand";
/// A wrapper element egov knows, in another namespace than its channel's.
pub const WRONG_NAMESPACE: &str = "shep.wrong_namespace";
/// A body element that is no operation egov serves.
pub const UNKNOWN_OPERATION: &str = "shep.unknown_operation";
/// A required element is absent or empty (the message names its path).
pub const MISSING_ELEMENT: &str = "shep.missing_element";
/// An element given twice, text where elements are expected (or the reverse),
/// a property too long, an `amount` that is not a non-negative int.
pub const BAD_ELEMENT: &str = "shep.bad_element";
/// A time that is not an `xsd:dateTime`.
pub const BAD_DATETIME: &str = "shep.bad_datetime";
/// A value outside its enumeration (`messageType`, `receiveStatus`, `resendMessage`).
pub const BAD_ENUM: &str = "shep.bad_enum";
/// A `RESPONSE`, `NOTIFICATION` or `UPDATE` without a `correlationId`.
pub const CORRELATION_REQUIRED: &str = "shep.correlation_required";

impl super::WireError {
    /// The SOAP 1.1 `faultcode` of this error: `soap:MustUnderstand` for a
    /// header block not understood, `soap:Client` for every other (the request is at fault).
    pub fn faultcode(&self) -> &'static str {
        if self.code == MUST_UNDERSTAND { "soap:MustUnderstand" } else { "soap:Client" }
    }
}
