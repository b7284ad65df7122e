//! The incremental tree (its right edge, or "compact range"), the stored nodes a store keeps, and the readers the
//! proofs are computed from.

use crate::hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash, split_point};

/// The error a [`NodeReader`] returns: the store's own error, carried as it is.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// A full (perfect) subtree of the log: the `2^level` leaves from `index * 2^level` on.
///
/// Level 0 holds the leaf hashes themselves (`NodeId { level: 0, index: i }` is leaf `i`'s hash). A node's hash
/// never changes once the log has all of its leaves: it is what a store persists, keyed by `(level, index)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The height of the subtree: it covers `2^level` leaves.
    pub level: u8,
    /// Its position among the subtrees of its level, from 0 at the left.
    pub index: u64,
}

impl NodeId {
    /// The node of one leaf.
    pub fn leaf(index: u64) -> NodeId {
        NodeId { level: 0, index }
    }

    /// The first leaf the node covers.
    pub fn start(&self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf the node covers.
    pub fn end(&self) -> u64 {
        (self.index + 1) << self.level
    }

    /// The node's two children, or `None` for a leaf.
    pub fn children(&self) -> Option<(NodeId, NodeId)> {
        (self.level > 0).then(|| {
            let level = self.level - 1;
            (NodeId { level, index: self.index * 2 }, NodeId { level, index: self.index * 2 + 1 })
        })
    }
}

/// Reads stored node hashes: the store's side of proof generation.
///
/// The proof functions of this crate first work out every node they need, then ask for all of them in one call,
/// so that a store on a database can answer in one round trip. A reader returns the hashes in the order of
/// `ids`; an error (a node the store does not have, an I/O error) fails the proof.
pub trait NodeReader {
    /// The hashes of `ids`, in their order.
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;
}

impl<R: NodeReader + ?Sized> NodeReader for &R {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        (**self).read_nodes(ids)
    }
}

/// A reader over nothing but the leaf hashes: every node is hashed again from its leaves, so a node at level
/// `l` costs `2^l` leaf reads and a proof O(n). It is the simple path for a store that keeps only its leaf hashes;
/// [`MemoryTree`] (or a store keeping every node [`Tree::append`] completes) answers in O(log n).
pub struct LeafHashes<F>(pub F);

impl<F: Fn(u64) -> Result<Hash, StoreError>> NodeReader for LeafHashes<F> {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        ids.iter().map(|id| self.hash_of(*id)).collect()
    }
}

impl<F: Fn(u64) -> Result<Hash, StoreError>> LeafHashes<F> {
    fn hash_of(&self, id: NodeId) -> Result<Hash, StoreError> {
        match id.children() {
            None => (self.0)(id.index),
            Some((left, right)) => Ok(node_hash(&self.hash_of(left)?, &self.hash_of(right)?)),
        }
    }
}

/// A slice of leaf hashes is a reader too (through [`LeafHashes`]'s rule: nodes hashed again from the leaves).
impl NodeReader for [Hash] {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let reader = LeafHashes(|index: u64| {
            usize::try_from(index)
                .ok()
                .and_then(|index| self.get(index).copied())
                .ok_or_else(|| StoreError::from(format!("no leaf {index}: the log has {} leaves", self.len())))
        });
        reader.read_nodes(ids)
    }
}

impl NodeReader for Vec<Hash> {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.as_slice().read_nodes(ids)
    }
}

/// The nodes whose hashes make up `MTH(D[start:end])`, left to right, for a range that is a subtree of some
/// tree (its start a multiple of the largest power of two not above its length, as every range of a proof is).
pub(crate) fn range_nodes(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        out.push(NodeId { level: n.trailing_zeros() as u8, index: start >> n.trailing_zeros() });
    } else {
        let k = split_point(n);
        range_nodes(start, start + k, out);
        range_nodes(start + k, end, out);
    }
}

/// `MTH(D[start:end])` from the hashes of [`range_nodes`]`(start, end)`, taken in order from `nodes`.
pub(crate) fn range_hash(start: u64, end: u64, nodes: &mut impl Iterator<Item = Hash>) -> Option<Hash> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        nodes.next()
    } else {
        let k = split_point(n);
        let left = range_hash(start, start + k, nodes)?;
        let right = range_hash(start + k, end, nodes)?;
        Some(node_hash(&left, &right))
    }
}

/// The hashes of several ranges, with all their nodes read in one call.
pub(crate) fn read_ranges(ranges: &[(u64, u64)], reader: &(impl NodeReader + ?Sized)) -> Result<Vec<Hash>, StoreError> {
    let mut ids = Vec::new();
    for &(start, end) in ranges {
        range_nodes(start, end, &mut ids);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_nodes(&ids)?;
    if hashes.len() != ids.len() {
        return Err(format!("the store returned {} hashes for {} nodes", hashes.len(), ids.len()).into());
    }
    let mut hashes = hashes.into_iter();
    let mut out = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges {
        out.push(range_hash(start, end, &mut hashes).ok_or("the store returned too few hashes")?);
    }
    Ok(out)
}

/// The root of the log's first `size` leaves, `MTH(D[0:size])`, from a store's nodes: at most ⌈log₂ size⌉ of
/// them are read. The root of an old size is how a store answers "which root did checkpoint N sign".
pub fn root_at(size: u64, reader: &(impl NodeReader + ?Sized)) -> Result<Hash, StoreError> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    Ok(read_ranges(&[(0, size)], reader)?[0])
}

/// An append-only Merkle tree kept in O(log n) memory: its size and the hashes of the full subtrees along its
/// right edge (the "compact range" `[0, size)`), largest first.
///
/// A subtree is in the edge for each bit set in `size`: with 13 leaves (`0b1101`) the edge holds the subtrees of
/// leaves 0-7, 8-11 and 12. Appending a leaf merges the equal-sized subtrees at the end, as a binary counter
/// carries; the root is the edge folded from the right. The edge is all a writer needs to go on appending and to
/// give the root at its size: a store persists it with each commit (or rebuilds it with [`Tree::restore`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    size: u64,
    edge: Vec<Hash>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// A tree from a size and its edge, as [`Tree::edge`] gave them. `None` when the edge does not hold one hash
    /// per bit set in `size`.
    pub fn from_parts(size: u64, edge: Vec<Hash>) -> Option<Tree> {
        (edge.len() == size.count_ones() as usize).then_some(Tree { size, edge })
    }

    /// The tree of a store's first `size` leaves, from the nodes of its edge ([`Tree::edge_nodes`]), read in one
    /// call.
    pub fn restore(size: u64, reader: &(impl NodeReader + ?Sized)) -> Result<Tree, StoreError> {
        let ids = Tree::edge_nodes(size);
        if ids.is_empty() {
            return Ok(Tree::new());
        }
        let edge = reader.read_nodes(&ids)?;
        Tree::from_parts(size, edge).ok_or_else(|| "the store returned a wrong number of hashes".into())
    }

    /// The full subtrees on the right edge of a tree of `size` leaves, largest first.
    pub fn edge_nodes(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                ids.push(NodeId { level, index: start >> level });
                start += 1 << level;
            }
        }
        ids
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of the edge's subtrees, largest first (the nodes of [`Tree::edge_nodes`]`(size)`).
    pub fn edge(&self) -> &[Hash] {
        &self.edge
    }

    /// Appends a leaf, given its leaf hash ([`crate::leaf_hash`] of the entry's bytes). Returns the nodes this
    /// leaf completes, from the leaf itself (level 0) up: the ones a store keeps to answer proofs in O(log n).
    /// Every node of the tree is returned exactly once over the appends, about two per leaf.
    ///
    /// # Panics
    /// When the tree already has `u64::MAX` leaves.
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut completed = vec![(NodeId::leaf(index), leaf_hash)];
        let mut hash = leaf_hash;
        let mut level = 0u8;
        while index >> level & 1 == 1 {
            let left = self.edge.pop().unwrap_or(EMPTY_ROOT);
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((NodeId { level, index: index >> level }, hash));
        }
        self.edge.push(hash);
        self.size = index.checked_add(1).unwrap_or_else(|| panic!("a log holds at most u64::MAX leaves"));
        completed
    }

    /// Appends an entry: [`Tree::append`] of its [`crate::leaf_hash`].
    pub fn append_entry(&mut self, entry: &[u8]) -> Vec<(NodeId, Hash)> {
        self.append(leaf_hash(entry))
    }

    /// The root, `MTH(D[0:size])`.
    pub fn root(&self) -> Hash {
        let mut edge = self.edge.iter().rev();
        let Some(last) = edge.next() else { return EMPTY_ROOT };
        edge.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// A tree with every node in memory, one vector per level: the reference store for the tests, and the shape a
/// persistent store can take (a table keyed by `(level, index)`, filled from [`Tree::append`]'s nodes).
///
/// It holds about two hashes per leaf: 64 MB at 10⁶ leaves. A store short of room can keep fewer levels (for
/// instance the leaves and every fourth level, as the C2SP tlog-tiles layout does with tiles of 2⁸ hashes) and
/// hash the missing nodes again from the level below in its [`NodeReader`].
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    tree: Tree,
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Appends a leaf, given its leaf hash; returns its index.
    pub fn append(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.tree.size();
        for (id, hash) in self.tree.append(leaf_hash) {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            debug_assert_eq!(self.levels[level].len() as u64, id.index);
            self.levels[level].push(hash);
        }
        index
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The incremental tree at the current size.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The hash of a node, if the tree has it.
    pub fn node(&self, id: NodeId) -> Option<Hash> {
        let level = self.levels.get(usize::from(id.level))?;
        level.get(usize::try_from(id.index).ok()?).copied()
    }
}

impl NodeReader for MemoryTree {
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        ids.iter()
            .map(|id| self.node(*id).ok_or_else(|| format!("no node at level {} index {}", id.level, id.index).into()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::root_from_leaf_hashes;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_incremental_root_is_the_recursive_one_at_every_size() {
        let all = leaves(300);
        let mut tree = Tree::new();
        assert_eq!(tree.root(), EMPTY_ROOT);
        for (i, leaf) in all.iter().enumerate() {
            tree.append(*leaf);
            assert_eq!(tree.root(), root_from_leaf_hashes(&all[..=i]), "size {}", i + 1);
            assert_eq!(tree.edge().len(), tree.size().count_ones() as usize);
        }
    }

    #[test]
    fn append_returns_every_node_once_and_they_are_the_stored_nodes() {
        let all = leaves(100);
        let mut tree = Tree::new();
        let mut seen = std::collections::BTreeMap::new();
        for leaf in &all {
            for (id, hash) in tree.append(*leaf) {
                assert!(seen.insert(id, hash).is_none(), "{id:?} returned twice");
            }
        }
        // 100 leaves have 100 + 50 + 25 + 12 + 6 + 3 + 1 full subtrees.
        assert_eq!(seen.len(), 197);
        for (id, hash) in seen {
            let start = id.start() as usize;
            assert_eq!(root_from_leaf_hashes(&all[start..id.end() as usize]), hash, "{id:?}");
        }
    }

    #[test]
    fn restore_and_root_at_read_the_stored_nodes() {
        let mut memory = MemoryTree::new();
        let all = leaves(77);
        for leaf in &all {
            memory.append(*leaf);
        }
        for size in 0..=77u64 {
            let restored = Tree::restore(size, &memory).unwrap_or_else(|e| panic!("size {size}: {e}"));
            assert_eq!(restored.root(), root_from_leaf_hashes(&all[..size as usize]));
            assert_eq!(root_at(size, &memory).ok(), Some(restored.root()));
            assert_eq!(root_at(size, &all).ok(), Some(restored.root()));
        }
        assert!(root_at(78, &memory).is_err(), "a size the store does not have is an error");
        assert!(Tree::from_parts(3, vec![EMPTY_ROOT]).is_none());
    }
}
