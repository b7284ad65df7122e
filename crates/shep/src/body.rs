//! A service's body between its protobuf bytes (what the envelope carries
//! and the edge signs) and its XML payload (`payload`, docs/shep.md "Payloads").
//! A carried message (`signedBy`) is read as its body, for the edge to sign,
//! and written as its body with the envelope's bytes in base64.

use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage as _, Value};

use crate::faults::Fault;
use crate::payload;

/// The descriptor of the protobuf type `body_type` (a full name, `egov.v1.PersonQuery`).
pub fn descriptor(body_type: &str) -> Result<MessageDescriptor, Fault> {
    payload::pool()
        .get_message_by_name(body_type)
        .ok_or_else(|| Fault::server("shep.no_schema", format!("no message type {body_type}")))
}

/// The payload `xml`, read as a `body_type` that carries no signed message, encoded.
pub fn from_xml(xml: &str, body_type: &str) -> Result<Vec<u8>, Fault> {
    let message = payload::from_xml(xml, &descriptor(body_type)?)?;
    Ok(message.encode_to_vec())
}

/// A body of type `body_type` as its XML payload (a carried message with its
/// body, `signedBy` and the envelope in base64).
pub fn to_xml(bytes: &[u8], body_type: &str) -> Result<String, Fault> {
    let message = DynamicMessage::decode(descriptor(body_type)?, bytes).map_err(|error| {
        Fault::server("envelope.bad_answer", format!("the body does not decode as {body_type}: {error}"))
    })?;
    Ok(payload::to_xml_with(&message, &mut |field, value| {
        let Value::Message(envelope) = value else { return None };
        let bytes = envelope.encode_to_vec();
        let decoded = egov_proto::Envelope::decode(bytes.as_slice()).ok()?;
        let header = egov_envelope::decode_header(&decoded.header).ok()?;
        let body = payload::carried_body(field)
            .filter(|body| body.full_name() == header.body_type)
            .and_then(|body| DynamicMessage::decode(body, &decoded.body[..]).ok());
        let carried = payload::Carried { signed_by: Some(header.sender_id), body, envelope: Some(bytes) };
        Some(payload::write_carried(field, &carried))
    }))
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
                self.message.set_field(&descriptor, Value::Message(value));
            }
        }
        self.message.encode_to_vec()
    }
}

/// Reads the payload `xml` as a `body_type`, with the messages it carries to
/// sign: each names its signer (`signedBy`) and gives its body; one that
/// brings an envelope of its own is refused (the edge signs what it routes).
pub fn read(xml: &str, body_type: &str) -> Result<Read, Fault> {
    let mut carried = Vec::new();
    let message = payload::from_xml_with(xml, &descriptor(body_type)?, &mut |field, node| {
        let read = payload::read_carried(field, node)?;
        let bad = |message: String| crate::wire::WireError { code: "shep.bad_carried", message, operation: None };
        if read.envelope.is_some() {
            return Err(bad(format!("{} brings an envelope: the edge signs what it routes", field.json_name())));
        }
        let signed_by = read.signed_by.filter(|member| !member.is_empty());
        let signed_by = signed_by.ok_or_else(|| bad(format!("{} names no signer (signedBy)", field.json_name())))?;
        let body = read.body.ok_or_else(|| bad(format!("{} carries no body", field.json_name())))?;
        carried.push(Carried {
            field: field.name().to_owned(),
            signed_by,
            body_type: body.descriptor().full_name().to_owned(),
            body: body.encode_to_vec(),
        });
        Ok(None)
    })?;
    Ok(Read { message, carried })
}
