//! The size of the proofs at 10⁶ entries, and what it costs to make and check them.
//!
//! `cargo run -p egov-tlog --example proof_size [ENTRIES]` builds a log of ENTRIES entries (10⁶ by default) in a
//! [`MemoryTree`], then makes and verifies inclusion proofs of a few entries and a consistency proof, and prints
//! their sizes, the stored nodes each one read (in one call) and the times. The sizes are exact; the times are
//! those of this machine and build (the debug build optimises SHA-256 and Ed25519 too).

use std::cell::Cell;
use std::time::Instant;

use egov_tlog::{
    Hash, MemoryTree, NodeId, NodeReader, StoreError, consistency_proof, inclusion_proof, leaf_hash, root_at,
    verify_consistency, verify_inclusion,
};

/// A reader that counts the calls and the nodes asked for.
struct Counting<'a> {
    tree: &'a MemoryTree,
    calls: Cell<usize>,
    nodes: Cell<usize>,
}

impl NodeReader for Counting<'_> {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.calls.set(self.calls.get() + 1);
        self.nodes.set(self.nodes.get() + ids.len());
        self.tree.read_nodes(ids)
    }
}

fn main() -> Result<(), StoreError> {
    let entries: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1_000_000,
    };
    let started = Instant::now();
    let mut tree = MemoryTree::new();
    for i in 0..entries {
        tree.append(leaf_hash(format!("entry {i}").as_bytes()));
    }
    println!("built a log of {entries} entries in {:.2?}", started.elapsed());
    let root = tree.root();

    for index in [0, entries / 3, entries / 2 + 1, entries - 1] {
        let reader = Counting { tree: &tree, calls: Cell::new(0), nodes: Cell::new(0) };
        let started = Instant::now();
        let proof = inclusion_proof(index, entries, &reader)?;
        let made = started.elapsed();
        let leaf = leaf_hash(format!("entry {index}").as_bytes());
        let started = Instant::now();
        verify_inclusion(&leaf, index, entries, &proof, &root)?;
        let verified = started.elapsed();
        println!(
            "inclusion of {index}: {} hashes, {} bytes; {} nodes read in {} call; made in {made:.2?}, verified in {verified:.2?}",
            proof.len(),
            proof.len() * 32,
            reader.nodes.get(),
            reader.calls.get(),
        );
    }

    let first = entries - entries / 10;
    let reader = Counting { tree: &tree, calls: Cell::new(0), nodes: Cell::new(0) };
    let started = Instant::now();
    let proof = consistency_proof(first, entries, &reader)?;
    let made = started.elapsed();
    let first_root = root_at(first, &tree)?;
    let started = Instant::now();
    verify_consistency(first, entries, &first_root, &root, &proof)?;
    println!(
        "consistency {first} -> {entries}: {} hashes, {} bytes; {} nodes read in {} call; made in {made:.2?}, verified in {:.2?}",
        proof.len(),
        proof.len() * 32,
        reader.nodes.get(),
        reader.calls.get(),
        started.elapsed(),
    );
    Ok(())
}
