//! The gateway's decode-verify path never panics: random and mutated
//! envelopes are refused with an error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use egov_envelope::{Checks, KeyEntry, Member, Role, Signer, TrustRegistry, services};
use egov_proto::{Envelope, MessageType, PersonQuery};
use egov_runtime::{Accept, Channel, Context, Receiver, Services, SharedTrust, SimClock};
use proptest::prelude::*;
use prost::Message;

const NOW: i64 = 1_780_290_000_000;

fn signer() -> Signer {
    Signer::from_seed("sc-workstation", "sc-workstation:fuzz", &[3; 32])
}

fn trust() -> TrustRegistry {
    let key = KeyEntry {
        id: "sc-workstation:fuzz".to_owned(),
        public: signer().public_key_hex(),
        valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
        valid_until: "2040-01-01T00:00:00Z".parse().unwrap(),
        revoked_at: None,
    };
    let member = Member {
        id: "sc-workstation".to_owned(),
        role: Role::new("sc-workstation"),
        name: String::new(),
        keys: vec![key],
    };
    TrustRegistry::from_members(vec![member]).unwrap()
}

fn valid() -> Envelope {
    let signer = signer();
    let header = signer.header("m-1", "a-1", services::PERSON_LOOKUP, "gbdfl", NOW, MessageType::Request);
    signer.seal(&header, &PersonQuery { iin: "850715300122".to_owned() })
}

/// What the gateway does with an envelope before it routes it: the receive pipeline's admission.
fn admit(envelope: &Envelope, trust: &TrustRegistry) -> Result<(), String> {
    let context = Context {
        trust: SharedTrust::new(trust.clone()),
        signer: Signer::from_seed("egov-gateway", "egov-gateway:fuzz", &[4; 32]),
        clock: Arc::new(SimClock::starting_at(NOW)),
        checks: Checks::default(),
        message_time: false,
        counters: Arc::default(),
        monitor: egov_runtime::monitor::Monitor::off(),
    };
    let receiver = Receiver::stateless(context, Arc::new(Services::embedded().clone()));
    receiver.admit(envelope, Accept::Route(Channel::Sync)).map_err(|r| r.reason.to_owned())?;
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { part: u8, at: usize, bit: u8 },
    Truncate { part: u8, to: usize },
    Append { part: u8, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u8..4, any::<usize>(), 0u8..8).prop_map(|(part, at, bit)| Mutation::Flip { part, at, bit }),
        (0u8..4, any::<usize>()).prop_map(|(part, to)| Mutation::Truncate { part, to }),
        (0u8..4, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(part, bytes)| Mutation::Append { part, bytes }),
    ]
}

/// Changes the chosen part of the envelope; false when nothing could change.
fn apply(envelope: &mut Envelope, mutation: &Mutation) -> bool {
    let (Mutation::Flip { part, .. } | Mutation::Truncate { part, .. } | Mutation::Append { part, .. }) = mutation;
    // The header and body are shared buffers: changed as a copy, put back after.
    let mut copy = match part {
        0 => envelope.header.to_vec(),
        1 => envelope.body.to_vec(),
        2 => std::mem::take(&mut envelope.signatures[0].ed25519),
        _ => return mutate_key_id(envelope, mutation),
    };
    let bytes = &mut copy;
    let changed = match mutation {
        Mutation::Flip { at, bit, .. } if !bytes.is_empty() => {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
            true
        }
        Mutation::Truncate { to, .. } if !bytes.is_empty() => {
            bytes.truncate(to % bytes.len());
            true
        }
        Mutation::Append { bytes: extra, .. } => {
            bytes.extend_from_slice(extra);
            true
        }
        _ => false,
    };
    match part {
        0 => envelope.header = copy.into(),
        1 => envelope.body = copy.into(),
        _ => envelope.signatures[0].ed25519 = copy,
    }
    changed
}

fn mutate_key_id(envelope: &mut Envelope, mutation: &Mutation) -> bool {
    let key_id = &mut envelope.signatures[0].key_id;
    match mutation {
        Mutation::Flip { .. } | Mutation::Truncate { .. } if key_id.is_empty() => false,
        Mutation::Flip { at, .. } => {
            let at = at % key_id.len();
            let mut chars: Vec<char> = key_id.chars().collect();
            chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
            *key_id = chars.into_iter().collect();
            true
        }
        Mutation::Truncate { to, .. } => {
            let to = to % key_id.len();
            key_id.truncate(to);
            true
        }
        Mutation::Append { .. } => {
            key_id.push('z');
            true
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let trust = trust();
        if let Ok(envelope) = Envelope::decode(bytes.as_slice()) {
            prop_assert!(admit(&envelope, &trust).is_err());
        }
    }

    #[test]
    fn every_mutation_of_a_valid_envelope_is_refused(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let trust = trust();
        let original = valid();
        prop_assert_eq!(admit(&original, &trust), Ok(()));
        let mut envelope = original.clone();
        let mut changed = false;
        for mutation in &mutations {
            changed |= apply(&mut envelope, mutation);
        }
        prop_assume!(changed && envelope != original);
        prop_assert!(admit(&envelope, &trust).is_err(), "accepted after {:?}", mutations);
        // The mutated envelope as wire bytes, decoded again: still refused, never a panic.
        let wire = envelope.encode_to_vec();
        if let Ok(decoded) = Envelope::decode(wire.as_slice()) {
            prop_assert!(admit(&decoded, &trust).is_err());
        }
    }

    #[test]
    fn mutated_wire_bytes_never_panic(at in any::<usize>(), byte in any::<u8>()) {
        let trust = trust();
        let mut wire = valid().encode_to_vec();
        let at = at % wire.len();
        wire[at] = byte;
        if let Ok(envelope) = Envelope::decode(wire.as_slice()) {
            let _ = admit(&envelope, &trust);
        }
    }
}

#[test]
fn a_key_id_cut_to_nothing_and_then_flipped_is_refused() {
    let trust = trust();
    let mut envelope = valid();
    assert!(apply(&mut envelope, &Mutation::Truncate { part: 3, to: 0 }));
    assert!(!apply(&mut envelope, &Mutation::Flip { part: 3, at: 5, bit: 1 }));
    assert!(admit(&envelope, &trust).is_err());
}
