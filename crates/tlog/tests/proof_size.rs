//! The size of a proof at 10⁶ entries, without building the log: a proof holds at most ⌈log₂ n⌉ hashes (20, so
//! 640 bytes) and is made from at most 26 stored nodes read in one call. `examples/proof_size.rs` builds the log
//! and times making and verifying them.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use egov_tlog::{Hash, NodeId, NodeReader, StoreError, consistency_proof, inclusion_proof};

const N: u64 = 1_000_000;

/// A store whose every node hashes to zero, counting what is asked of it: the shape of a proof does not depend on
/// the hashes.
#[derive(Default)]
struct Counting {
    calls: Cell<usize>,
    nodes: Cell<usize>,
}

impl NodeReader for Counting {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        assert!(ids.iter().all(|id| id.end() <= N), "a node beyond the log");
        self.calls.set(self.calls.get() + 1);
        self.nodes.set(ids.len());
        Ok(vec![[0; 32]; ids.len()])
    }
}

#[test]
fn an_inclusion_proof_at_a_million_entries_is_at_most_twenty_hashes() {
    let height = 64 - (N - 1).leading_zeros() as usize;
    assert_eq!(height, 20);
    let mut longest = 0;
    let mut most_nodes = 0;
    for index in (0..N).step_by(97).chain([N / 2, N / 2 + 1, N - 2, N - 1]) {
        let reader = Counting::default();
        let proof = inclusion_proof(index, N, &reader).unwrap();
        assert!(proof.len() <= height, "leaf {index}: {} hashes", proof.len());
        assert_eq!(reader.calls.get(), 1, "leaf {index}: the nodes are read in one call");
        longest = longest.max(proof.len());
        most_nodes = most_nodes.max(reader.nodes.get());
    }
    assert_eq!(longest, 20);
    assert_eq!(longest * 32, 640, "bytes");
    // The path's full subtrees and the full subtrees of its one partial subtree (the right edge): at most
    // 19 + popcount(10^6) = 26.
    assert!(most_nodes <= 19 + N.count_ones() as usize, "{most_nodes} nodes");
}

#[test]
fn a_consistency_proof_at_a_million_entries_is_at_most_twenty_one_hashes() {
    for first in (1..N).step_by(997).chain([N / 2, N - 1, 1 << 19]) {
        let reader = Counting::default();
        let proof = consistency_proof(first, N, &reader).unwrap();
        assert!(!proof.is_empty() && proof.len() <= 21, "from {first}: {} hashes", proof.len());
        assert_eq!(reader.calls.get(), 1);
    }
}
