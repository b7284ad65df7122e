//! A verifiable append-only log: an RFC 9162 Merkle tree, its inclusion and consistency proofs, and checkpoints
//! in the C2SP `tlog-checkpoint` signed-note format, with witnesses' cosignatures. Pure: no I/O, no clock; the
//! store keeps what this crate computes.
//!
//! # The tree (RFC 9162 section 2.1)
//!
//! Each log entry is a leaf. What is hashed:
//!
//! - a leaf: `SHA-256(0x00 || entry bytes)` ([`leaf_hash`]); which bytes an entry is, is the store's choice, and
//!   must be exactly the bytes an auditor is given;
//! - an interior node: `SHA-256(0x01 || left || right)` ([`node_hash`]);
//! - the tree of `n > 1` leaves `D[0:n]` splits at `k`, the largest power of two smaller than `n`
//!   ([`split_point`]): `MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n]))`; one leaf's tree is its leaf hash, and the
//!   empty tree's root is `SHA-256()` ([`EMPTY_ROOT`]).
//!
//! # Appending: the right edge
//!
//! [`Tree`] appends in O(log n) time and memory: it keeps the size and the hashes of the full subtrees along the
//! right edge (one per bit set in the size, the "compact range" of transparency-dev), and gives the root at its
//! size. [`Tree::append`] returns the nodes each leaf completes: the leaf hash, and the node of every full
//! subtree that leaf closes, each keyed by [`NodeId`] `(level, index)` (level 0 being the leaves). Over the life
//! of the log that is every node once, about two hashes (64 bytes) per entry.
//!
//! # How a store uses it
//!
//! - **The integrator** holds a [`Tree`] (persisted as its size and [`Tree::edge`], or rebuilt with
//!   [`Tree::restore`] from the stored nodes), appends the sequenced entries in order, and writes each returned
//!   `(NodeId, Hash)` to a node table keyed by `(level, index)` in the same transaction as the tree's new size.
//! - **Proofs** are computed from that table through [`NodeReader`]: [`inclusion_proof`], [`consistency_proof`]
//!   and [`root_at`] (the root at any earlier size) work out first every node they need and ask for all of them in
//!   one [`NodeReader::read_nodes`] call, so a database answers a proof in one round trip. An inclusion proof at
//!   10⁶ entries holds at most ⌈log₂ n⌉ = 20 hashes (640 bytes) and reads at most 26 stored nodes: the full
//!   subtrees of the path, and those of its one partial subtree on the right edge (`tests/proof_size.rs`).
//!   `cargo run -p egov-tlog --example proof_size` builds such a log and times a proof: made in about 20-35 µs
//!   from the in-memory nodes and verified in about 40 µs, in the debug build on the 2-core development machine.
//! - **Why a node table and not tiles.** C2SP `tlog-tiles` stores the same hashes grouped in tiles of 256 for
//!   static HTTP serving. Our logs are read through the store, by key, so the natural unit is one node; a store
//!   that wants fewer rows can keep only some levels and hash the others again from the level below inside its
//!   reader. A store that keeps only the leaf hashes can use [`LeafHashes`] (every node hashed again from the
//!   leaves: O(n) per proof, the simple path for small logs and for tests). [`MemoryTree`] is the in-memory
//!   node table, the reference for the tests.
//! - **Checkpoints**: every N entries or T milliseconds the integrator signs a [`Checkpoint`] (origin, size,
//!   root) with the participant's key ([`Checkpoint::sign`]) and stores the note ([`SignedNote`]'s `Display` is
//!   its wire form).
//! - **Witnesses** open the checkpoint with the log's key and cosign it after checking consistency with the last
//!   one they cosigned: [`cosign_if_consistent`]. Two checkpoints of one size with different roots, both signed
//!   by the log, are a [`SplitView`] ([`detect_split_view`]), which anyone can check again with the log's public
//!   key ([`SplitView::verify`]).
//! - **An auditor** verifies offline, with only the notes, the proofs and the public keys: [`open_checkpoint`],
//!   then [`verify_inclusion`] of an entry's leaf hash against the checkpoint's size and root, and
//!   [`verify_consistency`] between two checkpoints. Both verifiers are RFC 9162's algorithms (sections 2.1.3.2
//!   and 2.1.4.2) step by step.
//!
//! ```
//! use egov_tlog::*;
//!
//! // The integrator: append, keep the completed nodes, sign a checkpoint.
//! let mut nodes = MemoryTree::new();
//! for entry in [&b"first envelope"[..], b"second", b"third"] {
//!     nodes.append(leaf_hash(entry));
//! }
//! let log = NoteSigner::ed25519("egov.kz/gateway", ed25519_dalek::SigningKey::from_bytes(&[1; 32]))?;
//! let note = Checkpoint::new("egov.kz/gateway", nodes.size(), nodes.root()).sign(&log)?.to_string();
//! let proof = inclusion_proof(1, nodes.size(), &nodes)?;
//!
//! // The auditor, with the note, the entry, its index, the proof and the log's public key.
//! let opened = open_checkpoint(note.as_bytes(), "egov.kz/gateway", &log.verifier(), &[])?;
//! let checkpoint = opened.checkpoint();
//! verify_inclusion(&leaf_hash(b"second"), 1, checkpoint.size, &proof, &checkpoint.root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A proof does not bind the tree size by itself: a proof of leaf 0 in 4 leaves also verifies as "leaf 0 in 3
//! leaves" against the same root, as the paths have the same shape. The size and the root are bound together by
//! the signed checkpoint: always verify against a checkpoint's own size and root.
//!
//! # Checkpoints (C2SP `tlog-checkpoint`, `signed-note`)
//!
//! ```text
//! egov.kz/gateway                                   origin, the log's unique name
//! 1000000                                           size, decimal, no leading zeroes
//! <base64 of the 32-byte root>                    root, base64 (standard, padded)
//!                                                   optional extension lines, then a blank line
//! — egov.kz/gateway <base64(key id || Ed25519 signature)>
//! — egov.kz/workstation <base64(key id || timestamp || Ed25519 signature)>
//! ```
//!
//! The text (the lines before the blank line, with the final newline) is what is signed. Each signature line is
//! an em dash (U+2014), a space, the key name, a space and the base64 of the 4-byte big-endian key id followed by
//! the signature. The key id is `SHA-256(key name || 0x0A || type || 32-byte Ed25519 public key)[:4]`, with type
//! `0x01` for the log's Ed25519 signature over the text.
//!
//! Cosignatures are C2SP `tlog-cosignature`'s Ed25519 `cosignature/v1` (type `0x04`): 8 bytes of big-endian POSIX
//! timestamp then an Ed25519 signature over `cosignature/v1\ntime <timestamp>\n` followed by the text. We use it
//! rather than a second plain Ed25519 signature because it is what the witness ecosystem verifies, it separates a
//! witness's statement ("the largest consistent tree I saw at this time") from a log's signature by domain, and it
//! costs only the timestamp. The timestamp is a parameter, given by the caller's clock (simulated time cosigns at
//! its own time). The ML-DSA-44 cosignature of the same spec is not implemented (no ML-DSA in the workspace).
//!
//! The tests check these formats against other implementations: the note of Go's `sumdb/note` documentation
//! is reproduced byte for byte, and a published checkpoint of a Certificate Transparency staging log opens with
//! its log's key and a public witness's `cosignature/v1` (`tests/vectors.rs`).
//!
//! Keys travel in the signed-note verifier key form `<name>+<key id in hex>+<base64(type || public key)>`
//! ([`VerifierKey::parse`], and `Display`). Notes are refused when malformed, with a [`NoteError`] or
//! [`CheckpointError`] variant that says why; signatures by unknown keys are ignored, a signature by a known key
//! that does not verify refuses the whole note, as C2SP requires.

mod checkpoint;
mod hash;
mod note;
mod proof;
mod tree;

pub use checkpoint::{
    Checkpoint, CheckpointError, SplitView, VerifiedCheckpoint, cosign_if_consistent, detect_split_view,
    open_checkpoint,
};
pub use hash::{EMPTY_ROOT, HASH_SIZE, Hash, leaf_hash, node_hash, root_from_leaf_hashes, split_point};
pub use note::{
    MAX_NOTE_SIZE, MAX_SIGNATURES, NoteError, NoteSignature, NoteSigner, SigType, SignedNote, VerifiedSignature,
    VerifierKey, key_id,
};
pub use proof::{
    ProofError, VerifyError, consistency_proof, consistency_ranges, inclusion_proof, inclusion_ranges,
    root_from_inclusion_proof, verify_consistency, verify_inclusion,
};
pub use tree::{LeafHashes, MemoryTree, NodeId, NodeReader, StoreError, Tree, root_at};
