//! Properties over random trees: every proof the crate generates verifies, and any change to a hash, the index
//! or the sizes makes it fail, except where the changed claim is the same computation (a size whose path has
//! the same shape: the proof does not bind the size, the checkpoint does).
#![allow(clippy::unwrap_used)]

use egov_tlog::{
    Hash, MemoryTree, consistency_proof, consistency_ranges, inclusion_proof, inclusion_ranges, leaf_hash, root_at,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

fn tree(size: u64, salt: u64) -> (MemoryTree, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[salt.to_be_bytes(), i.to_be_bytes()].concat())).collect();
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.append(*leaf);
    }
    (tree, leaves)
}

/// The shape of leaf `index`'s path in `size` leaves: for each proof hash, whether it is a left sibling.
fn shape(index: u64, size: u64) -> Vec<bool> {
    inclusion_ranges(index, size).unwrap().iter().map(|&(start, _)| start < index).collect()
}

fn flip(hashes: &[Hash], which: usize, bit: u8) -> Vec<Hash> {
    let mut out = hashes.to_vec();
    out[which][usize::from(bit / 8)] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_changes_fail(
        size in 1u64..1500,
        index_seed in any::<u64>(),
        other_seed in any::<u64>(),
        bit in any::<u8>(),
        salt in any::<u64>(),
    ) {
        let (tree, leaves) = tree(size, salt);
        let index = index_seed % size;
        let root = tree.root();
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(index, size, &tree).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        prop_assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize, "at most ceil(log2 n) hashes");

        // Any hash changed: a proof element, the leaf, the root.
        if !proof.is_empty() {
            let which = (other_seed % proof.len() as u64) as usize;
            prop_assert!(verify_inclusion(&leaf, index, size, &flip(&proof, which, bit), &root).is_err());
        }
        prop_assert!(verify_inclusion(&flip(&[leaf], 0, bit)[0], index, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&[root], 0, bit)[0]).is_err());

        // A hash added or taken away.
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        if let Some((_, shorter)) = proof.split_last() {
            prop_assert!(verify_inclusion(&leaf, index, size, shorter, &root).is_err());
        }

        // Another index: another leaf position in the same tree shape, another computation.
        if size > 1 {
            let other = (index + 1 + other_seed % (size - 1)) % size;
            prop_assert_ne!(other, index);
            prop_assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
        }

        // Another size: fails exactly when the path's shape differs.
        let other_size = 1 + other_seed % (2 * size + 1);
        if other_size != size && index < other_size {
            let verified = verify_inclusion(&leaf, index, other_size, &proof, &root).is_ok();
            prop_assert_eq!(verified, shape(index, other_size) == shape(index, size), "size {} for {}", other_size, size);
        }
    }

    #[test]
    fn consistency_proofs_verify_and_changes_fail(
        size in 1u64..1500,
        first_seed in any::<u64>(),
        other_seed in any::<u64>(),
        bit in any::<u8>(),
        salt in any::<u64>(),
    ) {
        let (tree, _) = tree(size, salt);
        let first = first_seed % (size + 1);
        let (r1, r2) = (root_at(first, &tree).unwrap(), tree.root());
        let proof = consistency_proof(first, size, &tree).unwrap();
        prop_assert_eq!(verify_consistency(first, size, &r1, &r2, &proof), Ok(()));
        prop_assert!(proof.len() <= 65 - (size.max(2) - 1).leading_zeros() as usize);

        if first > 0 {
            // Any hash changed: a proof element, either root.
            if !proof.is_empty() {
                let which = (other_seed % proof.len() as u64) as usize;
                prop_assert!(verify_consistency(first, size, &r1, &r2, &flip(&proof, which, bit)).is_err());
            }
            prop_assert!(verify_consistency(first, size, &flip(&[r1], 0, bit)[0], &r2, &proof).is_err());
            prop_assert!(verify_consistency(first, size, &r1, &flip(&[r2], 0, bit)[0], &proof).is_err());
            // A hash added or taken away.
            let mut longer = proof.clone();
            longer.push(r2);
            prop_assert!(verify_consistency(first, size, &r1, &r2, &longer).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                prop_assert!(verify_consistency(first, size, &r1, &r2, shorter).is_err());
            }
        }

        // Other sizes whose proofs have another length always fail.
        let (m, n) = (other_seed % (size + 1), (other_seed >> 32) % (2 * size + 1));
        if (m, n) != (first, size) && m <= n && consistency_ranges(m, n).unwrap().len() != proof.len() {
            prop_assert!(verify_consistency(m, n, &r1, &r2, &proof).is_err(), "sizes {} {} for {} {}", m, n, first, size);
        }
    }

    #[test]
    fn every_append_keeps_old_roots_and_their_proofs(size in 2u64..600, salt in any::<u64>(), at in any::<u64>()) {
        // A checkpoint taken at an earlier size stays provable against every later size.
        let (tree, leaves) = tree(size, salt);
        let old = 1 + at % (size - 1);
        let (small, _) = self::tree(old, salt);
        prop_assert_eq!(root_at(old, &tree).unwrap(), small.root());
        let index = at % old;
        let proof = inclusion_proof(index, old, &tree).unwrap();
        prop_assert_eq!(verify_inclusion(&leaves[index as usize], index, old, &proof, &small.root()), Ok(()));
        let consistency = consistency_proof(old, size, &tree).unwrap();
        prop_assert_eq!(verify_consistency(old, size, &small.root(), &tree.root(), &consistency), Ok(()));
    }
}
