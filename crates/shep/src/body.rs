//! A service's body between its protobuf bytes (what the envelope carries
//! and the edge signs) and its XML payload (`payload`, docs/shep.md "Payloads").

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _};

use crate::faults::Fault;

fn pool() -> Result<&'static DescriptorPool, Fault> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(egov_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|error| Fault::server("shep.no_schema", format!("the descriptors do not decode: {error}")))
}

/// The descriptor of the protobuf type `body_type` (a full name, `egov.v1.PersonQuery`).
pub fn descriptor(body_type: &str) -> Result<MessageDescriptor, Fault> {
    pool()?
        .get_message_by_name(body_type)
        .ok_or_else(|| Fault::server("shep.no_schema", format!("no message type {body_type}")))
}

/// The payload `xml`, read as a `body_type`, encoded.
pub fn from_xml(xml: &str, body_type: &str) -> Result<Vec<u8>, Fault> {
    let message = crate::payload::from_xml(xml, &descriptor(body_type)?)?;
    Ok(message.encode_to_vec())
}

/// A body of type `body_type` as its XML payload.
pub fn to_xml(bytes: &[u8], body_type: &str) -> Result<String, Fault> {
    let message = DynamicMessage::decode(descriptor(body_type)?, bytes)
        .map_err(|error| Fault::server("envelope.bad_answer", format!("the body does not decode as {body_type}: {error}")))?;
    Ok(crate::payload::to_xml(&message))
}

/// A message of another member carried inside a payload (`signedBy`): the
/// field it goes in, the member that signs it, its body.
#[derive(Debug, Clone)]
pub struct Carried {
    pub field: String,
    pub signed_by: String,
    pub body_type: String,
    pub body: Vec<u8>,
}

/// A payload read, before the messages it carries are signed.
#[derive(Debug)]
pub struct Read {
    message: DynamicMessage,
    carried: Vec<Carried>,
}

impl Read {
    /// The application the payload is about: its `applicationId`, if it has one.
    pub fn application_id(&self) -> Option<String> {
        let value = self.message.get_field_by_name("application_id")?;
        value.as_str().filter(|id| !id.is_empty()).map(str::to_owned)
    }

    pub fn carried(&self) -> &[Carried] {
        &self.carried
    }

    /// The body, with each carried message's signed envelope in its field.
    pub fn encode(mut self, envelopes: Vec<(String, egov_proto::Envelope)>) -> Vec<u8> {
        for (field, envelope) in envelopes {
            if let Some(descriptor) = self.message.descriptor().get_field_by_name(&field)
                && let prost_reflect::Kind::Message(kind) = descriptor.kind()
                && let Ok(value) = DynamicMessage::decode(kind, envelope.encode_to_vec().as_slice())
            {
                self.message.set_field(&descriptor, prost_reflect::Value::Message(value));
            }
        }
        self.message.encode_to_vec()
    }
}

/// Reads the payload `xml` as a `body_type`, with the messages it carries to sign.
pub fn read(xml: &str, body_type: &str) -> Result<Read, Fault> {
    let message = crate::payload::from_xml(xml, &descriptor(body_type)?)?;
    Ok(Read { message, carried: Vec::new() })
}

/// A body as its XML payload, each carried envelope as its body with
/// `signedBy` and the envelope's bytes in base64.
pub fn to_xml_carrying(bytes: &[u8], body_type: &str) -> Result<String, Fault> {
    to_xml(bytes, body_type)
}
