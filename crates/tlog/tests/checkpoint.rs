//! Checkpoints as signed notes: the round trip, forged and misplaced signatures, altered checkpoints, malformed
//! notes, witnesses' cosignatures and split views.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use egov_tlog::{
    Checkpoint, CheckpointError, MemoryTree, NoteError, NoteSigner, SigType, SignedNote, VerifierKey, VerifyError,
    consistency_proof, cosign_if_consistent, detect_split_view, leaf_hash, open_checkpoint,
};

const ORIGIN: &str = "egov.kz/gateway";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn log_signer() -> NoteSigner {
    NoteSigner::ed25519(ORIGIN, key(1)).unwrap()
}

fn witness(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::cosigner_v1(name, key(seed)).unwrap()
}

fn log(size: u64, salt: &str) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..size {
        tree.append(leaf_hash(format!("{salt} {i}").as_bytes()));
    }
    tree
}

fn signed(size: u64, salt: &str) -> String {
    Checkpoint::new(ORIGIN, size, log(size, salt).root()).sign(&log_signer()).unwrap().to_string()
}

#[test]
fn a_signed_checkpoint_opens_with_the_log_key() {
    let tree = log(1000, "a");
    let checkpoint = Checkpoint::new(ORIGIN, 1000, tree.root());
    let note = checkpoint.sign(&log_signer()).unwrap().to_string();
    let root = BASE64.encode(tree.root());
    assert!(note.starts_with(&format!("{ORIGIN}\n1000\n{root}\n\n\u{2014} {ORIGIN} ")), "{note}");
    assert_eq!(note.lines().count(), 5);

    let log_key = log_signer().verifier();
    let opened = open_checkpoint(note.as_bytes(), ORIGIN, &log_key, &[]).unwrap();
    assert_eq!(opened.checkpoint(), &checkpoint);
    assert_eq!(opened.log_signature().name, ORIGIN);
    assert_eq!(opened.log_signature().sig_type, SigType::Ed25519);
    assert!(opened.cosignatures().is_empty());
    assert_eq!(opened.note().to_string(), note);

    // The verifier key travels as text and comes back the same.
    let text = log_key.to_string();
    assert!(text.starts_with(&format!("{ORIGIN}+{:08x}+", log_key.key_id())));
    assert_eq!(VerifierKey::parse(&text).unwrap(), log_key);

    // Extension lines are signed and come back.
    let mut extended = checkpoint.clone();
    extended.extensions = vec!["first entry 2026-12-07".into()];
    let note = extended.sign(&log_signer()).unwrap().to_string();
    assert_eq!(open_checkpoint(note.as_bytes(), ORIGIN, &log_key, &[]).unwrap().checkpoint(), &extended);
}

#[test]
fn a_forged_signature_is_refused() {
    let note = signed(10, "a");
    let line = note.lines().last().unwrap();
    let encoded = line.rsplit(' ').next().unwrap();
    let mut bytes = BASE64.decode(encoded).unwrap();
    bytes[10] ^= 1;
    let forged = note.replace(encoded, &BASE64.encode(&bytes));
    let log_key = log_signer().verifier();
    let refused = open_checkpoint(forged.as_bytes(), ORIGIN, &log_key, &[]).unwrap_err();
    assert_eq!(
        refused,
        CheckpointError::Note(NoteError::BadSignature { name: ORIGIN.into(), key_id: log_key.key_id() })
    );

    // A signature made with another key under the log's name is not the log's: its key id differs, so it is
    // ignored, and the note has no signature by the log.
    let impostor = NoteSigner::ed25519(ORIGIN, key(99)).unwrap();
    let note = Checkpoint::new(ORIGIN, 10, log(10, "a").root()).sign(&impostor).unwrap().to_string();
    assert_eq!(
        open_checkpoint(note.as_bytes(), ORIGIN, &log_key, &[]),
        Err(CheckpointError::NotSignedByLog { name: ORIGIN.into() })
    );
}

#[test]
fn a_wrong_key_or_origin_is_refused() {
    let note = signed(10, "a");
    let other = NoteSigner::ed25519("egov.kz/workstation", key(2)).unwrap().verifier();
    assert_eq!(
        open_checkpoint(note.as_bytes(), ORIGIN, &other, &[]),
        Err(CheckpointError::NotSignedByLog { name: "egov.kz/workstation".into() })
    );
    let log_key = log_signer().verifier();
    assert_eq!(
        open_checkpoint(note.as_bytes(), "egov.kz/regional", &log_key, &[]),
        Err(CheckpointError::WrongOrigin { expected: "egov.kz/regional".into(), found: ORIGIN.into() })
    );
    // A witness's key is not a log key: the log's signature must be there.
    let witness_key = witness("egov.kz/workstation", 3).verifier();
    let cosigned =
        cosign_if_consistent(note.as_bytes(), ORIGIN, &log_key, None, &[], &witness("egov.kz/workstation", 3), 7)
            .unwrap()
            .to_string();
    assert_eq!(
        open_checkpoint(cosigned.as_bytes(), ORIGIN, &witness_key, &[]),
        Err(CheckpointError::Note(NoteError::WrongSignatureType {
            wanted: SigType::Ed25519,
            found: SigType::CosignatureV1
        }))
    );
}

#[test]
fn an_altered_size_or_root_is_refused() {
    let note = signed(10, "a");
    let log_key = log_signer().verifier();
    let bad = NoteError::BadSignature { name: ORIGIN.into(), key_id: log_key.key_id() };
    let altered_size = note.replacen("\n10\n", "\n11\n", 1);
    assert_ne!(altered_size, note);
    assert_eq!(
        open_checkpoint(altered_size.as_bytes(), ORIGIN, &log_key, &[]),
        Err(CheckpointError::Note(bad.clone()))
    );
    let root = BASE64.encode(log(10, "a").root());
    let other_root = BASE64.encode(log(10, "b").root());
    let altered_root = note.replacen(&root, &other_root, 1);
    assert_ne!(altered_root, note);
    assert_eq!(open_checkpoint(altered_root.as_bytes(), ORIGIN, &log_key, &[]), Err(CheckpointError::Note(bad)));
}

#[test]
fn a_split_view_is_detected_and_provable() {
    let log_key = log_signer().verifier();
    let a = open_checkpoint(signed(10, "a").as_bytes(), ORIGIN, &log_key, &[]).unwrap();
    let b = open_checkpoint(signed(10, "b").as_bytes(), ORIGIN, &log_key, &[]).unwrap();
    let view = detect_split_view(&a, &b).unwrap();
    assert_eq!((view.origin.as_str(), view.size), (ORIGIN, 10));
    assert_eq!(view.verify(&log_key), Ok(()));
    // The evidence does not hold against another log key.
    let other = NoteSigner::ed25519(ORIGIN, key(2)).unwrap().verifier();
    assert!(view.verify(&other).is_err());
    // Tampered evidence: both notes the same history.
    let mut same = view.clone();
    same.notes[1] = same.notes[0].clone();
    assert_eq!(same.verify(&log_key), Err(CheckpointError::NotASplitView));

    // Not split views: the same checkpoint twice, or a smaller checkpoint of the same history.
    let a_again = open_checkpoint(signed(10, "a").as_bytes(), ORIGIN, &log_key, &[]).unwrap();
    assert!(detect_split_view(&a, &a_again).is_none());
    let smaller = open_checkpoint(signed(9, "a").as_bytes(), ORIGIN, &log_key, &[]).unwrap();
    assert!(detect_split_view(&a, &smaller).is_none());
}

#[test]
fn witnesses_cosign_consistent_checkpoints_only() {
    let log_key = log_signer().verifier();
    let workstation = witness("egov.kz/workstation", 3);
    let regional = witness("egov.kz/regional", 4);
    let witnesses = [workstation.verifier(), regional.verifier()];
    let tree = log(100, "a");

    // The first checkpoint a witness sees has nothing to be consistent with.
    let first = signed(60, "a");
    let cosigned =
        cosign_if_consistent(first.as_bytes(), ORIGIN, &log_key, None, &[], &workstation, 1_765_000_000).unwrap();
    let last = open_checkpoint(cosigned.to_string().as_bytes(), ORIGIN, &log_key, &witnesses).unwrap();
    assert_eq!(last.cosignatures().len(), 1);
    assert_eq!(last.cosignatures()[0].name, "egov.kz/workstation");
    assert_eq!(last.cosignatures()[0].sig_type, SigType::CosignatureV1);
    assert_eq!(last.cosignatures()[0].timestamp, Some(1_765_000_000));

    // The next one is cosigned with the log's consistency proof, by both witnesses, on the same note.
    let next = Checkpoint::new(ORIGIN, 100, tree.root()).sign(&log_signer()).unwrap().to_string();
    let proof = consistency_proof(60, 100, &tree).unwrap();
    let once =
        cosign_if_consistent(next.as_bytes(), ORIGIN, &log_key, Some(&last), &proof, &workstation, 1_765_000_060)
            .unwrap()
            .to_string();
    let twice = cosign_if_consistent(once.as_bytes(), ORIGIN, &log_key, Some(&last), &proof, &regional, 1_765_000_061)
        .unwrap()
        .to_string();
    let opened = open_checkpoint(twice.as_bytes(), ORIGIN, &log_key, &witnesses).unwrap();
    let names: Vec<&str> = opened.cosignatures().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["egov.kz/workstation", "egov.kz/regional"]);
    // A verifier who knows only one witness ignores the other's line.
    assert_eq!(open_checkpoint(twice.as_bytes(), ORIGIN, &log_key, &witnesses[1..]).unwrap().cosignatures().len(), 1);

    // A tampered cosignature (its timestamp moved) refuses the note for whoever knows that witness.
    let line = twice.lines().find(|l| l.contains("egov.kz/regional")).unwrap();
    let encoded = line.rsplit(' ').next().unwrap();
    let mut bytes = BASE64.decode(encoded).unwrap();
    bytes[11] ^= 1; // the last byte of the timestamp
    let tampered = twice.replace(encoded, &BASE64.encode(&bytes));
    assert!(matches!(
        open_checkpoint(tampered.as_bytes(), ORIGIN, &log_key, &witnesses),
        Err(CheckpointError::Note(NoteError::BadSignature { .. }))
    ));

    // Another history of 100 leaves: the proof from 60 fails, and the witness does not cosign.
    let forked = log(100, "b");
    let fork = Checkpoint::new(ORIGIN, 100, forked.root()).sign(&log_signer()).unwrap().to_string();
    let fork_proof = consistency_proof(60, 100, &forked).unwrap();
    let refused = cosign_if_consistent(fork.as_bytes(), ORIGIN, &log_key, Some(&last), &fork_proof, &workstation, 1);
    assert!(matches!(
        refused,
        Err(CheckpointError::Inconsistent { last: 60, new: 100, source: VerifyError::FirstRootMismatch })
    ));

    // The same size with another root: a split view, with both notes as evidence.
    let other_60 = signed(60, "b");
    match cosign_if_consistent(other_60.as_bytes(), ORIGIN, &log_key, Some(&last), &[], &workstation, 1) {
        Err(CheckpointError::SplitView(view)) => assert_eq!(view.verify(&log_key), Ok(())),
        other => panic!("expected a split view, got {other:?}"),
    }

    // A smaller checkpoint is not cosigned.
    let older = signed(50, "a");
    assert_eq!(
        cosign_if_consistent(older.as_bytes(), ORIGIN, &log_key, Some(&last), &[], &workstation, 1),
        Err(CheckpointError::Older { last: 60, new: 50 })
    );
}

#[test]
fn keys_sign_only_their_kind() {
    let mut note = SignedNote::new("text\n").unwrap();
    assert_eq!(
        note.add_cosignature(&log_signer(), 1),
        Err(NoteError::WrongSignatureType { wanted: SigType::CosignatureV1, found: SigType::Ed25519 })
    );
    assert_eq!(
        note.add_signature(&witness("w", 3)),
        Err(NoteError::WrongSignatureType { wanted: SigType::Ed25519, found: SigType::CosignatureV1 })
    );
    assert_eq!(note.add_cosignature(&witness("w", 3), 1 << 63), Err(NoteError::BadTimestamp(1 << 63)));
    // A cosigner's verifier key says its type, and a log key of the same name and key is another key.
    let cosigner = witness("w", 3).verifier();
    assert_eq!(VerifierKey::parse(&cosigner.to_string()).unwrap(), cosigner);
    assert_ne!(NoteSigner::ed25519("w", key(3)).unwrap().verifier().key_id(), cosigner.key_id());
    // Signing twice with one key keeps one line.
    note.add_signature(&log_signer()).unwrap();
    note.add_signature(&log_signer()).unwrap();
    assert_eq!(note.signatures().len(), 1);
}

#[test]
fn malformed_notes_are_refused_with_their_reason() {
    let good = signed(10, "a");
    let cases: Vec<(Vec<u8>, NoteError)> = vec![
        (b"origin\n10\n".to_vec(), NoteError::NoSignatures),
        (good.replace("\n\n", "\n").into_bytes(), NoteError::NoSignatures),
        (good.trim_end_matches('\n').as_bytes().to_vec(), NoteError::NoSignatures),
        (format!("{}\n\n", good.lines().take(3).collect::<Vec<_>>().join("\n")).into_bytes(), NoteError::NoSignatures),
        (
            good.replacen("10", "1\t0", 1).into_bytes(),
            NoteError::ControlCharacter { byte: b'\t', offset: ORIGIN.len() + 2 },
        ),
        ([&good.as_bytes()[..3], &[0xff], &good.as_bytes()[3..]].concat(), NoteError::NotUtf8),
        (vec![b'a'; egov_tlog::MAX_NOTE_SIZE + 1], NoteError::TooLarge { size: egov_tlog::MAX_NOTE_SIZE + 1 }),
    ];
    for (note, error) in cases {
        assert_eq!(SignedNote::parse(&note), Err(error), "{}", String::from_utf8_lossy(&note));
    }

    let line = good.lines().last().unwrap().to_owned();
    let signature = line.rsplit(' ').next().unwrap().to_owned();
    let malformed_lines = [
        line.replace('\u{2014}', "-"),                               // a hyphen for the em dash
        line.replacen(' ', "", 1),                                   // no space after the dash
        line.replace(&signature, &signature[..signature.len() - 1]), // base64 cut
        line.replace(&signature, "AAAA"), // three bytes: no room for a key id and a signature
        line.replace(&signature, &format!("{signature} extra")),
    ];
    for bad in malformed_lines {
        let note = good.replace(&line, &bad);
        let refused = SignedNote::parse(note.as_bytes()).unwrap_err();
        assert!(
            matches!(refused, NoteError::MalformedSignatureLine { .. } | NoteError::BadKeyName { .. }),
            "{bad}: {refused:?}"
        );
    }
    let bad_name = good.replace(&format!("\u{2014} {ORIGIN} "), "\u{2014} egov+kz ");
    assert_eq!(SignedNote::parse(bad_name.as_bytes()), Err(NoteError::BadKeyName { name: "egov+kz".into() }));

    let many = format!("{good}{}", format!("{line}\n").repeat(egov_tlog::MAX_SIGNATURES));
    assert_eq!(
        SignedNote::parse(many.as_bytes()),
        Err(NoteError::TooManySignatures { count: egov_tlog::MAX_SIGNATURES + 1 })
    );

    assert_eq!(SignedNote::new(""), Err(NoteError::BadText));
    assert_eq!(SignedNote::new("no newline"), Err(NoteError::BadText));
    assert!(NoteSigner::ed25519("egov kz", key(1)).is_err());
    assert!(NoteSigner::ed25519("", key(1)).is_err());
}

#[test]
fn malformed_checkpoints_are_refused_with_their_reason() {
    let root = BASE64.encode([7u8; 32]);
    let cases = [
        (format!("{ORIGIN}\n10\n"), CheckpointError::BadLines),
        (format!("{ORIGIN}\n10\n{root}"), CheckpointError::BadLines),
        (format!("\n10\n{root}\n"), CheckpointError::BadLines),
        (format!("{ORIGIN}\n10\n{root}\n\next\n"), CheckpointError::BadLines),
        (format!("{ORIGIN}\n010\n{root}\n"), CheckpointError::BadSize("010".into())),
        (format!("{ORIGIN}\n+10\n{root}\n"), CheckpointError::BadSize("+10".into())),
        (format!("{ORIGIN}\n-1\n{root}\n"), CheckpointError::BadSize("-1".into())),
        (format!("{ORIGIN}\n18446744073709551616\n{root}\n"), CheckpointError::BadSize("18446744073709551616".into())),
        (format!("{ORIGIN}\nten\n{root}\n"), CheckpointError::BadSize("ten".into())),
        (format!("{ORIGIN}\n10\nAAAA\n"), CheckpointError::BadRoot("AAAA".into())),
        (format!("{ORIGIN}\n10\n{}\n", &root[..40]), CheckpointError::BadRoot(root[..40].into())),
    ];
    for (text, error) in cases {
        assert_eq!(Checkpoint::parse(&text), Err(error), "{text:?}");
    }
    assert_eq!(Checkpoint::parse(&format!("{ORIGIN}\n0\n{root}\n")).unwrap().size, 0);
    assert_eq!(Checkpoint::parse(&format!("{ORIGIN}\n18446744073709551615\n{root}\n")).unwrap().size, u64::MAX);

    // A checkpoint that cannot be written as one is not signed.
    let mut bad = Checkpoint::new("", 1, [0; 32]);
    assert_eq!(bad.sign(&log_signer()).unwrap_err(), CheckpointError::BadLine(String::new()));
    bad.origin = ORIGIN.into();
    bad.extensions = vec!["two\nlines".into()];
    assert!(matches!(bad.sign(&log_signer()), Err(CheckpointError::BadLine(_))));

    // A well-signed note that is not a checkpoint.
    let mut note = SignedNote::new("just a note\n").unwrap();
    note.add_signature(&log_signer()).unwrap();
    assert_eq!(
        open_checkpoint(note.to_string().as_bytes(), ORIGIN, &log_signer().verifier(), &[]),
        Err(CheckpointError::BadLines)
    );
}
