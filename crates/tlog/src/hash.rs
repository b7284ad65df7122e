//! RFC 9162 section 2.1.1: the hashes of a Merkle tree over SHA-256.

use sha2::{Digest, Sha256};

/// The size of every hash of the tree, in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node's hash or a tree's root.
pub type Hash = [u8; HASH_SIZE];

/// The root of the empty tree: `MTH({}) = SHA-256()`, the hash of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of one leaf: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The split point `k` of a tree of `n` leaves: the largest power of two smaller than `n` (RFC 9162 section
/// 2.1.1), for `n >= 2`. It is 0 for `n < 2`, where a tree does not split.
pub fn split_point(n: u64) -> u64 {
    if n < 2 { 0 } else { 1 << (63 - (n - 1).leading_zeros()) }
}

/// `MTH(D[n])` computed straight from RFC 9162's recursive definition over the leaf hashes: the reference the
/// incremental [`crate::Tree`] and the proofs are tested against. It takes O(n) time and O(log n) stack.
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes.len() {
        0 => EMPTY_ROOT,
        1 => leaf_hashes[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_from_leaf_hashes(&leaf_hashes[..k]), &root_from_leaf_hashes(&leaf_hashes[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_root_is_the_hash_of_nothing() {
        let nothing: Hash = Sha256::digest([]).into();
        assert_eq!(EMPTY_ROOT, nothing);
        assert_eq!(root_from_leaf_hashes(&[]), EMPTY_ROOT);
    }

    #[test]
    fn split_points_are_the_largest_power_of_two_below() {
        let expected = [(0, 0), (1, 0), (2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1 << 40, 1 << 39)];
        for (n, k) in expected {
            assert_eq!(split_point(n), k, "split point of {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn leaves_and_nodes_are_domain_separated() {
        let a = leaf_hash(b"a");
        // A leaf whose bytes look like two child hashes does not hash as the node of those children.
        let mut forged = Vec::from([0x01]);
        forged.extend_from_slice(&a);
        forged.extend_from_slice(&a);
        assert_ne!(leaf_hash(&forged[1..]), node_hash(&a, &a));
    }
}
