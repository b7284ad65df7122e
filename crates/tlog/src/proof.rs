//! Inclusion and consistency proofs: generated as RFC 9162 sections 2.1.3.1 and 2.1.4.1 define them, verified
//! with the algorithms of sections 2.1.3.2 and 2.1.4.2.

use crate::hash::{Hash, node_hash, split_point};
use crate::tree::{NodeReader, StoreError, read_ranges};

/// Why a proof could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The leaf is not in the tree.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("no consistency proof from size {first} to the smaller size {second}")]
    SizesReversed { first: u64, second: u64 },
    /// The store could not give a node the proof needs.
    #[error("the store could not give the proof's nodes: {0}")]
    Store(#[source] StoreError),
}

/// Why a proof does not verify. Every variant means the same thing to a caller (the claim is not proved); the
/// variants say which check failed, for the report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The first size is larger than the second.
    #[error("size {first} is larger than size {second}")]
    SizesReversed { first: u64, second: u64 },
    /// The proof has more hashes than a proof for these sizes has.
    #[error("the proof has too many hashes for these sizes")]
    ProofTooLong,
    /// The proof has fewer hashes than a proof for these sizes has.
    #[error("the proof has too few hashes for these sizes")]
    ProofTooShort,
    /// A consistency proof between equal sizes, or from size 0, must be empty.
    #[error("the proof must be empty between these sizes")]
    ProofNotEmpty,
    /// The proof leads to another root than the one claimed.
    #[error("the proof leads to another root")]
    RootMismatch,
    /// The proof leads to another root of the first tree than the one claimed.
    #[error("the proof leads to another root of the first tree")]
    FirstRootMismatch,
}

/// The ranges of leaves whose roots `MTH(D[start:end])` make up `PATH(index, D[0:size])`, deepest first.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    fn path(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            path(m, start, start + k, out);
            out.push((start + k, end));
        } else {
            path(m - k, start + k, end, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

/// The ranges of leaves whose roots make up `PROOF(first, D[0:second])`, in the proof's order. Empty when
/// `first` is 0 or equals `second` (nothing to prove).
pub fn consistency_ranges(first: u64, second: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push((start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            subproof(m, start, start + k, whole, out);
            out.push((start + k, end));
        } else {
            subproof(m - k, start + k, end, false, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof(first, 0, second, true, &mut out);
    }
    Ok(out)
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves, from a store's nodes.
///
/// All the nodes it needs are read in one [`NodeReader::read_nodes`] call: at most ⌈log₂ size⌉ full subtrees for
/// the path plus the ones of the right edge, so a proof at 10⁶ leaves reads about 30 hashes and holds 20.
pub fn inclusion_proof(index: u64, size: u64, reader: &(impl NodeReader + ?Sized)) -> Result<Vec<Hash>, ProofError> {
    read_ranges(&inclusion_ranges(index, size)?, reader).map_err(ProofError::Store)
}

/// The consistency proof from the tree of the first `first` leaves to the tree of the first `second`, from a
/// store's nodes, read in one call.
pub fn consistency_proof(
    first: u64,
    second: u64,
    reader: &(impl NodeReader + ?Sized),
) -> Result<Vec<Hash>, ProofError> {
    read_ranges(&consistency_ranges(first, second)?, reader).map_err(ProofError::Store)
}

/// The root an inclusion proof leads to: RFC 9162 section 2.1.3.2, steps 1-4.
pub fn root_from_inclusion_proof(leaf_hash: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return Err(VerifyError::ProofTooLong);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            // When LSB(fn) is not set, shift both until it is, or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(VerifyError::ProofTooShort);
    }
    Ok(r)
}

/// Verifies that the leaf whose hash is `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is
/// `root` (RFC 9162 section 2.1.3.2).
///
/// The proof binds the leaf and its index to the root; the size is bound to the root by the signed checkpoint
/// that gives both, not by the proof: a root of 4 leaves can verify a proof of leaf 0 "in 3 leaves" (the paths
/// have the same shape). Verify against a checkpoint's size and root together.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if root_from_inclusion_proof(leaf_hash, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

/// Verifies that the tree of `first` leaves with root `first_root` is a prefix of the tree of `second` leaves with
/// root `second_root` (RFC 9162 section 2.1.4.2).
///
/// The RFC's algorithm covers `0 < first < second`. The cases it leaves out are decided as RFC 9162's
/// `PROOF` generation implies (and as the transparency-dev verifier does): from size 0 anything follows, with an
/// empty proof; between equal sizes the proof is empty and the roots must be equal.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if first > second {
        return Err(VerifyError::SizesReversed { first, second });
    }
    if first == 0 || first == second {
        if !proof.is_empty() {
            return Err(VerifyError::ProofNotEmpty);
        }
        return if first == 0 || first_root == second_root { Ok(()) } else { Err(VerifyError::RootMismatch) };
    }
    // 1. An empty path fails.
    if proof.is_empty() {
        return Err(VerifyError::ProofTooShort);
    }
    // 2. When first is an exact power of 2, first_hash is prepended to the path.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof);
    // 3. fn = first - 1, sn = second - 1.
    let (mut f, mut s) = (first - 1, second - 1);
    // 4. While LSB(fn) is set, shift both right.
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // 5. fr and sr start as the first value of the path.
    let (mut fr, mut sr) = (*path[0], *path[0]);
    // 6. Each following value c.
    for c in &path[1..] {
        if s == 0 {
            return Err(VerifyError::ProofTooLong);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // When LSB(fn) is not set, shift both until it is, or fn is 0.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // 7. fr is first_hash, sr is second_hash, and sn is 0.
    if s != 0 {
        return Err(VerifyError::ProofTooShort);
    }
    if fr != *first_root {
        return Err(VerifyError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_lengths_are_at_most_the_tree_height() {
        for size in 1..=130u64 {
            let height = 64 - (size - 1).leading_zeros() as usize;
            for index in 0..size {
                let ranges = inclusion_ranges(index, size).unwrap_or_default();
                assert!(ranges.len() <= height, "inclusion {index} in {size}");
            }
            for first in 1..size {
                let ranges = consistency_ranges(first, size).unwrap_or_default();
                assert!(!ranges.is_empty() && ranges.len() <= height + 1, "consistency {first} to {size}");
            }
        }
    }

    #[test]
    fn impossible_claims_are_refused() {
        assert!(matches!(inclusion_ranges(3, 3), Err(ProofError::IndexOutOfRange { index: 3, size: 3 })));
        assert!(matches!(consistency_ranges(4, 3), Err(ProofError::SizesReversed { .. })));
        let h = [7u8; 32];
        assert_eq!(verify_inclusion(&h, 0, 0, &[], &h), Err(VerifyError::IndexOutOfRange { index: 0, size: 0 }));
        assert_eq!(verify_consistency(2, 1, &h, &h, &[]), Err(VerifyError::SizesReversed { first: 2, second: 1 }));
        assert_eq!(verify_consistency(1, 2, &h, &h, &[]), Err(VerifyError::ProofTooShort));
        assert_eq!(verify_consistency(3, 3, &h, &h, &[h]), Err(VerifyError::ProofNotEmpty));
        assert_eq!(verify_consistency(3, 3, &h, &[8u8; 32], &[]), Err(VerifyError::RootMismatch));
        assert_eq!(verify_consistency(0, 3, &h, &[8u8; 32], &[]), Ok(()));
    }
}
