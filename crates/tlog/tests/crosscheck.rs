//! The crate against a second implementation: `tests/python/rfc9162.py`, written from RFC 9162's definitions
//! with Python's hashlib, computes the roots, inclusion proofs and consistency proofs of random trees of 1 to 300
//! leaves; the crate must give the same hashes, from its stored nodes and from the leaves, and verify them.
//! The test needs `python3` on the PATH, and fails without it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use egov_tlog::{
    Hash, MemoryTree, Tree, consistency_proof, inclusion_proof, leaf_hash, root_at, verify_consistency,
    verify_inclusion,
};

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hashes_line(hashes: &[Hash]) -> String {
    hashes.iter().map(|h| hex(h)).collect::<Vec<_>>().join(",")
}

enum Query {
    Root(u64),
    Inclusion(u64, u64),
    Consistency(u64, u64),
}

fn python(leaves: &[Vec<u8>], queries: &[Query]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/rfc9162.py");
    let mut input = String::from("leaves\n");
    for leaf in leaves {
        input.push_str(&hex(leaf));
        input.push('\n');
    }
    input.push_str("queries\n");
    for query in queries {
        let line = match query {
            Query::Root(n) => format!("root {n}\n"),
            Query::Inclusion(i, n) => format!("incl {i} {n}\n"),
            Query::Consistency(m, n) => format!("cons {m} {n}\n"),
        };
        input.push_str(&line);
    }
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs python3 on the PATH: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python3 failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), queries.len(), "one answer per query");
    lines
}

fn crosscheck(seed: u64) {
    const MAX: u64 = 300;
    let mut random = Random(seed);
    let leaves: Vec<Vec<u8>> = (0..MAX).map(|_| (0..random.below(41)).map(|_| random.next() as u8).collect()).collect();
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|leaf| leaf_hash(leaf)).collect();
    let mut stored = MemoryTree::new();
    for leaf in &leaf_hashes {
        stored.append(*leaf);
    }

    let mut queries = Vec::new();
    for n in 1..=MAX {
        queries.push(Query::Root(n));
        for i in [0, n - 1, n / 2, random.below(n), random.below(n)] {
            queries.push(Query::Inclusion(i, n));
        }
        for m in [0, 1, n - 1, n / 2, n, 1 + random.below(n)] {
            queries.push(Query::Consistency(m, n));
        }
    }
    let answers = python(&leaves, &queries);

    let mut tree = Tree::new();
    let mut roots = vec![tree.root()];
    for leaf in &leaf_hashes {
        tree.append(*leaf);
        roots.push(tree.root());
    }
    for (query, expected) in queries.iter().zip(&answers) {
        match *query {
            Query::Root(n) => {
                assert_eq!(&hashes_line(&[roots[n as usize]]), expected, "seed {seed}: root of {n}");
                assert_eq!(root_at(n, &stored).unwrap(), roots[n as usize], "seed {seed}: stored root of {n}");
            }
            Query::Inclusion(i, n) => {
                let proof = inclusion_proof(i, n, &stored).unwrap();
                assert_eq!(&hashes_line(&proof), expected, "seed {seed}: inclusion of {i} in {n}");
                let from_leaves = inclusion_proof(i, n, &leaf_hashes[..n as usize]).unwrap();
                assert_eq!(from_leaves, proof, "seed {seed}: inclusion of {i} in {n}, from the leaves");
                let verified = verify_inclusion(&leaf_hashes[i as usize], i, n, &proof, &roots[n as usize]);
                assert_eq!(verified, Ok(()), "seed {seed}: inclusion of {i} in {n} verifies");
            }
            Query::Consistency(m, n) => {
                let proof = consistency_proof(m, n, &stored).unwrap();
                assert_eq!(&hashes_line(&proof), expected, "seed {seed}: consistency from {m} to {n}");
                let from_leaves = consistency_proof(m, n, &leaf_hashes[..n as usize]).unwrap();
                assert_eq!(from_leaves, proof, "seed {seed}: consistency from {m} to {n}, from the leaves");
                let verified = verify_consistency(m, n, &roots[m as usize], &roots[n as usize], &proof);
                assert_eq!(verified, Ok(()), "seed {seed}: consistency from {m} to {n} verifies");
            }
        }
    }
}

#[test]
fn roots_and_proofs_are_those_of_a_second_implementation() {
    for seed in [0x9162_6962_0000_0001, 0x5eed_cafe_f00d_0042] {
        crosscheck(seed);
    }
}
