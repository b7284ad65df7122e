//! Published test vectors: the RFC 6962/9162 Merkle tree of eight leaves used by Certificate Transparency's and
//! transparency-dev's verifiers (roots, inclusion and consistency proofs), and the signed note of Go's
//! `golang.org/x/mod/sumdb/note` documentation, which fixes the key id, the verifier key form and the signature
//! line byte for byte, and a published checkpoint of a Certificate Transparency log with a public witness's
//! `cosignature/v1`.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use egov_tlog::{
    EMPTY_ROOT, Hash, MemoryTree, NoteError, NoteSigner, SigType, SignedNote, VerifierKey, VerifyError,
    consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion,
};

fn h(hex: &str) -> Hash {
    assert_eq!(hex.len(), 64);
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The eight leaves of the vectors.
const LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// The roots of the trees of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (2, 3, vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (first size, second size, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn tree() -> (MemoryTree, Vec<Hash>) {
    let leaves: Vec<Hash> = LEAVES.iter().map(|leaf| leaf_hash(leaf)).collect();
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.append(*leaf);
    }
    (tree, leaves)
}

#[test]
fn the_roots_are_the_published_ones() {
    let (_, leaves) = tree();
    assert_eq!(
        EMPTY_ROOT,
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        "the empty tree's root is SHA-256 of nothing"
    );
    let mut incremental = egov_tlog::Tree::new();
    for (i, root) in ROOTS.iter().enumerate() {
        incremental.append(leaves[i]);
        assert_eq!(incremental.root(), h(root), "incremental root of {} leaves", i + 1);
        assert_eq!(root_from_leaf_hashes(&leaves[..=i]), h(root), "recursive root of {} leaves", i + 1);
    }
}

#[test]
fn the_inclusion_proofs_are_the_published_ones_and_verify() {
    let (tree, leaves) = tree();
    for (index, size, expected) in inclusion_vectors() {
        // A proof at an earlier size comes from the same stored nodes.
        let proof = inclusion_proof(index, size, &tree).unwrap();
        assert_eq!(proof, expected, "inclusion proof of {index} in {size}");
        let from_leaves = inclusion_proof(index, size, &leaves[..size as usize]).unwrap();
        assert_eq!(from_leaves, expected, "inclusion proof of {index} in {size}, from the leaves");
        let root = h(ROOTS[size as usize - 1]);
        assert_eq!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root), Ok(()));
        // The mutations the transparency-dev verifier tests refuse.
        let leaf = &leaves[index as usize];
        assert!(verify_inclusion(leaf, index.wrapping_sub(1), size, &proof, &root).is_err());
        assert!(verify_inclusion(leaf, index + 1, size, &proof, &root).is_err());
        assert!(verify_inclusion(leaf, index ^ 2, size, &proof, &root).is_err());
        assert!(verify_inclusion(leaf, index, size * 2, &proof, &root).is_err());
        assert!(verify_inclusion(leaf, index, size / 2, &proof, &root).is_err());
        assert!(verify_inclusion(&leaf_hash(b"WrongLeaf"), index, size, &proof, &root).is_err());
        assert!(verify_inclusion(leaf, index, size, &proof, &EMPTY_ROOT).is_err());
        let mut longer = proof.clone();
        longer.push(root);
        assert_eq!(verify_inclusion(leaf, index, size, &longer, &root), Err(VerifyError::ProofTooLong));
        let mut prepended = vec![root];
        prepended.extend(&proof);
        assert!(verify_inclusion(leaf, index, size, &prepended, &root).is_err());
        for i in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[i][0] ^= 8;
            assert_eq!(verify_inclusion(leaf, index, size, &flipped, &root), Err(VerifyError::RootMismatch));
        }
        if let Some((_, shorter)) = proof.split_last() {
            assert_eq!(verify_inclusion(leaf, index, size, shorter, &root), Err(VerifyError::ProofTooShort));
        }
    }
}

#[test]
fn the_consistency_proofs_are_the_published_ones_and_verify() {
    let (tree, _) = tree();
    for (first, second, expected) in consistency_vectors() {
        let proof = consistency_proof(first, second, &tree).unwrap();
        assert_eq!(proof, expected, "consistency proof from {first} to {second}");
        let (r1, r2) = (h(ROOTS[first as usize - 1]), h(ROOTS[second as usize - 1]));
        assert_eq!(verify_consistency(first, second, &r1, &r2, &proof), Ok(()));
        if proof.is_empty() {
            continue;
        }
        assert!(verify_consistency(first - 1, second, &r1, &r2, &proof).is_err());
        assert!(verify_consistency(first + 1, second, &r1, &r2, &proof).is_err());
        assert!(verify_consistency(first ^ 2, second, &r1, &r2, &proof).is_err());
        assert!(verify_consistency(first, second * 2, &r1, &r2, &proof).is_err());
        assert!(verify_consistency(first, second / 2, &r1, &r2, &proof).is_err());
        assert!(verify_consistency(first, second, &leaf_hash(b"WrongRoot"), &r2, &proof).is_err());
        assert!(verify_consistency(first, second, &r1, &leaf_hash(b"WrongRoot"), &proof).is_err());
        assert!(verify_consistency(first, second, &r2, &r1, &proof).is_err());
        assert!(verify_consistency(first, second, &r1, &r2, &[]).is_err());
        for extra in [r1, r2, EMPTY_ROOT] {
            let mut longer = proof.clone();
            longer.push(extra);
            assert!(verify_consistency(first, second, &r1, &r2, &longer).is_err());
            let mut prepended = vec![extra];
            prepended.extend(&proof);
            assert!(verify_consistency(first, second, &r1, &r2, &prepended).is_err());
        }
        assert!(verify_consistency(first, second, &r1, &r2, &proof[..proof.len() - 1]).is_err());
        for i in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[i][0] ^= 16;
            assert!(verify_consistency(first, second, &r1, &r2, &flipped).is_err(), "proof[{i}] flipped");
        }
    }
}

#[test]
fn a_proof_does_not_bind_the_size_a_checkpoint_does() {
    // Leaf 0's path in 4 leaves has the shape of its path in 3: the same proof and root verify both claims. This
    // is why a proof is always checked against a signed checkpoint's own (size, root).
    let (tree, leaves) = tree();
    let proof = inclusion_proof(0, 4, &tree).unwrap();
    let root4 = h(ROOTS[3]);
    assert_eq!(verify_inclusion(&leaves[0], 0, 4, &proof, &root4), Ok(()));
    assert_eq!(verify_inclusion(&leaves[0], 0, 3, &proof, &root4), Ok(()));
    assert_eq!(verify_inclusion(&leaves[0], 0, 3, &proof, &h(ROOTS[2])), Err(VerifyError::RootMismatch));
}

/// Go's `sumdb/note` example key and note.
const GO_SIGNER_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VERIFIER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn go_signer() -> NoteSigner {
    // PRIVATE+KEY+<name>+<id>+<base64>, and the base64 may hold a '+'.
    let encoded = GO_SIGNER_KEY.splitn(5, '+').nth(4).unwrap();
    let key = BASE64.decode(encoded).unwrap();
    assert_eq!(key[0], 0x01);
    let seed: [u8; 32] = key[1..].try_into().unwrap();
    NoteSigner::ed25519("PeterNeumann", ed25519_dalek::SigningKey::from_bytes(&seed)).unwrap()
}

#[test]
fn the_go_signed_note_is_reproduced_byte_for_byte() {
    let signer = go_signer();
    assert_eq!(signer.verifier().to_string(), GO_VERIFIER_KEY);
    assert_eq!(signer.verifier().key_id(), 0xc74f20a3);
    let mut note = SignedNote::new(GO_TEXT).unwrap();
    note.add_signature(&signer).unwrap();
    assert_eq!(note.to_string(), GO_NOTE);
}

#[test]
fn the_go_signed_note_verifies_with_its_published_key() {
    let key = VerifierKey::parse(GO_VERIFIER_KEY).unwrap();
    assert_eq!(key.sig_type(), SigType::Ed25519);
    assert_eq!(key.to_string(), GO_VERIFIER_KEY);
    let note = SignedNote::parse(GO_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), GO_TEXT);
    let verified = note.verify(std::slice::from_ref(&key)).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].name, "PeterNeumann");
    let altered = GO_NOTE.replace("cryptography", "cryptographY");
    let altered = SignedNote::parse(altered.as_bytes()).unwrap();
    assert_eq!(
        altered.verify(&[key]),
        Err(NoteError::BadSignature { name: "PeterNeumann".into(), key_id: 0xc74f20a3 })
    );
    // A key id that is not the one of the name and key is refused.
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::KeyIdMismatch { .. })
    ));
}

/// A checkpoint of a Certificate Transparency staging log (transparency-dev's arche2025h1), as published with
/// its log's signatures and the cosignatures of four public witnesses: the log's Ed25519 signature and the
/// `cosignature/v1` of the witness remora.n621.de are made by other implementations than this crate's.
const ARCHE_LOG_KEY: &str =
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f";
const REMORA_WITNESS_KEY: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
const ARCHE_CHECKPOINT: &str = "arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

\u{2014} arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u{2014} arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u{2014} transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u{2014} witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
\u{2014} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
\u{2014} witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
";

#[test]
fn a_published_checkpoint_and_its_witness_cosignature_verify() {
    let origin = "arche2025h1.staging.ct.transparency.dev";
    let log_key = VerifierKey::parse(ARCHE_LOG_KEY).unwrap();
    let witness = VerifierKey::parse(REMORA_WITNESS_KEY).unwrap();
    assert_eq!(witness.sig_type(), SigType::CosignatureV1);
    // The log's first line (its RFC 6962 tree head signature, another key id) and the other witnesses are
    // unknown keys: ignored.
    let opened =
        egov_tlog::open_checkpoint(ARCHE_CHECKPOINT.as_bytes(), origin, &log_key, std::slice::from_ref(&witness))
            .unwrap();
    assert_eq!(opened.checkpoint().size, 1_432_088_532);
    assert_eq!(opened.log_signature().key_id, 0xba2f06c0);
    assert_eq!(opened.cosignatures().len(), 1);
    assert_eq!(opened.cosignatures()[0].name, "remora.n621.de");
    assert_eq!(opened.cosignatures()[0].timestamp, Some(0x6a12_2120));
    // The note comes back byte for byte.
    assert_eq!(opened.note().to_string(), ARCHE_CHECKPOINT);

    // Another size under the same signatures is refused.
    let altered = ARCHE_CHECKPOINT.replace("1432088532", "1432088533");
    assert!(egov_tlog::open_checkpoint(altered.as_bytes(), origin, &log_key, &[]).is_err());
    // And the cosignature alone does not make a checkpoint: the log's signature is needed.
    let without_log: String =
        ARCHE_CHECKPOINT.lines().filter(|l| !l.contains("ui8GwC")).map(|l| format!("{l}\n")).collect();
    assert!(matches!(
        egov_tlog::open_checkpoint(without_log.as_bytes(), origin, &log_key, &[witness]),
        Err(egov_tlog::CheckpointError::NotSignedByLog { .. })
    ));
}
