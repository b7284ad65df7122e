//! Prints the test vectors of docs/envelope.md as JSON: `cargo run -p egov-envelope --example vectors`.
#![allow(clippy::unwrap_used)]

use egov_envelope::{Signer, countersign, countersigned_bytes, sender_signed_bytes};
use egov_messages::{Body, EnvelopeHeader, MessageType, PersonQuery};
use prost::Message;

fn main() {
    let sender_seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap().try_into().unwrap();
    let gateway_seed: [u8; 32] =
        hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").unwrap().try_into().unwrap();
    let sender = Signer::from_seed("sc-workstation", "sc-workstation:test-1", &sender_seed);
    let gateway = Signer::from_seed("egov-gateway", "egov-gateway:test-1", &gateway_seed);
    let header = EnvelopeHeader {
        message_id: "00000000-0000-4000-8000-000000000001".to_owned(),
        correlation_id: "application-1".to_owned(),
        service_id: "gbdfl.person.lookup.v1".to_owned(),
        sender_id: "sc-workstation".to_owned(),
        recipient_id: "gbdfl".to_owned(),
        message_time_ms: 1_780_290_000_000,
        message_type: MessageType::Request as i32,
        body_type: PersonQuery::TYPE.to_owned(),
    };
    let body = PersonQuery { iin: "850715300122".to_owned() };
    let mut envelope = sender.seal(&header, &body);
    let signed = sender_signed_bytes(&envelope.header, &envelope.body);
    let counter_bytes = countersigned_bytes(&envelope.header, &envelope.body, &envelope.signatures[0]);
    countersign(&mut envelope, &gateway).unwrap();
    let json = serde_json::json!({
        "sender_seed": hex::encode(sender_seed),
        "sender_public_key": sender.public_key_hex(),
        "sender_key_id": sender.key_id(),
        "gateway_seed": hex::encode(gateway_seed),
        "gateway_public_key": gateway.public_key_hex(),
        "gateway_key_id": gateway.key_id(),
        "header": hex::encode(&envelope.header),
        "body": hex::encode(&envelope.body),
        "sender_signed_bytes": hex::encode(&signed),
        "sender_signature": hex::encode(&envelope.signatures[0].ed25519),
        "countersigned_bytes": hex::encode(&counter_bytes),
        "countersignature": hex::encode(&envelope.signatures[1].ed25519),
        "envelope": hex::encode(envelope.encode_to_vec()),
    });
    println!("{}", serde_json::to_string_pretty(&json).unwrap());
}
