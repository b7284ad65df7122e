//! The test vectors of docs/envelope.md.
#![allow(clippy::unwrap_used)]

use egov_envelope::{
    Checks, KeyEntry, Member, Role, Signer, TrustRegistry, countersign, countersigned_bytes, open, sender_signed_bytes,
    verify_countersignature,
};
use egov_messages::Envelope;
use prost::Message;

const VECTORS: &str = include_str!("../../../docs/envelope-vectors.json");
const DOC: &str = include_str!("../../../docs/envelope.md");

fn field(name: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    json[name].as_str().unwrap().to_owned()
}

fn bytes(name: &str) -> Vec<u8> {
    hex::decode(field(name)).unwrap()
}

fn signer(member: &str, prefix: &str) -> Signer {
    Signer::from_seed(member, field(&format!("{prefix}_key_id")), &bytes(&format!("{prefix}_seed")).try_into().unwrap())
}

fn trust() -> TrustRegistry {
    let member = |id: &str, role: &str, prefix: &str| Member {
        id: id.to_owned(),
        role: Role::new(role),
        name: String::new(),
        keys: vec![KeyEntry {
            id: field(&format!("{prefix}_key_id")),
            public: field(&format!("{prefix}_public_key")),
            valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
            valid_until: "2040-01-01T00:00:00Z".parse().unwrap(),
            revoked_at: None,
        }],
    };
    TrustRegistry::from_members(vec![
        member("sc-workstation", "sc-workstation", "sender"),
        member("egov-gateway", "gateway", "gateway"),
    ])
    .unwrap()
}

#[test]
fn signing_the_vector_gives_the_documented_bytes_and_signatures() {
    let sender = signer("sc-workstation", "sender");
    assert_eq!(sender.public_key_hex(), field("sender_public_key"));
    let (header, body) = (bytes("header"), bytes("body"));
    assert_eq!(sender_signed_bytes(&header, &body), bytes("sender_signed_bytes"));
    let mut envelope = sender.seal_bytes(header.clone(), body.clone());
    assert_eq!(envelope.signatures[0].ed25519, bytes("sender_signature"));
    assert_eq!(countersigned_bytes(&header, &body, &envelope.signatures[0]), bytes("countersigned_bytes"));
    countersign(&mut envelope, &signer("egov-gateway", "gateway")).unwrap();
    assert_eq!(envelope.signatures[1].ed25519, bytes("countersignature"));
    assert_eq!(envelope.encode_to_vec(), bytes("envelope"));
}

#[test]
fn the_vector_verifies_and_a_flipped_bit_does_not() {
    let envelope = Envelope::decode(bytes("envelope").as_slice()).unwrap();
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    let trust = trust();
    let verified = open(&envelope, &trust, 0, &checks).unwrap();
    verify_countersignature(&envelope, &verified, &trust, "egov-gateway").unwrap();
    let mut header_flipped = envelope.clone();
    {
        let mut bytes = header_flipped.header.to_vec();
        bytes[40] ^= 1;
        header_flipped.header = bytes.into();
    }
    let mut body_flipped = envelope.clone();
    {
        let mut bytes = body_flipped.body.to_vec();
        bytes[3] ^= 1;
        body_flipped.body = bytes.into();
    }
    let mut countersignature_flipped = envelope.clone();
    countersignature_flipped.signatures[1].ed25519[0] ^= 1;
    for tampered in [&header_flipped, &body_flipped] {
        assert_eq!(open(tampered, &trust, 0, &checks).unwrap_err().code(), "envelope.bad_signature");
    }
    let error = verify_countersignature(&countersignature_flipped, &verified, &trust, "egov-gateway").unwrap_err();
    assert_eq!(error.code(), "envelope.bad_countersignature");
}

#[test]
fn the_document_shows_the_same_vectors() {
    for name in [
        "header",
        "body",
        "sender_signed_bytes",
        "sender_signature",
        "countersigned_bytes",
        "countersignature",
        "envelope",
    ] {
        assert!(DOC.contains(&field(name)), "docs/envelope.md lacks {name}");
    }
}
