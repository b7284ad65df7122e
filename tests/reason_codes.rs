//! Every reason code the code can put on the wire is listed in
//! `docs/envelope.md`, the page integrators build against.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// The namespaces of reason codes (`namespace.name`).
const NAMESPACES: &[&str] = &[
    "access",
    "admin",
    "audit",
    "counter",
    "envelope",
    "evidence",
    "fault",
    "gateway",
    "iin",
    "process",
    "regional",
    "registry",
    "regulation",
    "request",
    "shep",
    "store",
    "tls",
    "witness",
    "workstation",
];

fn rust_files(directory: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The string literals of the crates' sources that have the shape of a reason code.
fn reasons_in_code(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let source = entry.unwrap().path().join("src");
        if source.is_dir() {
            rust_files(&source, &mut files);
        }
    }
    let mut reasons = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let Some((namespace, name)) = literal.split_once('.') else { continue };
            let is_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if NAMESPACES.contains(&namespace) && is_name {
                reasons.insert(literal.to_owned());
            }
        }
    }
    reasons
}

#[test]
fn every_reason_code_in_the_code_is_in_the_envelope_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let document = std::fs::read_to_string(root.join("docs/envelope.md")).unwrap();
    let reasons = reasons_in_code(&root);
    assert!(reasons.len() > 50, "the scan found only {reasons:?}");
    for known in ["envelope.bad_signature", "workstation.bad_session", "request.malformed", "store.conflict"] {
        assert!(reasons.contains(known), "the scan missed {known}");
    }
    let missing: Vec<&String> = reasons.iter().filter(|reason| !document.contains(&format!("`{reason}`"))).collect();
    assert!(missing.is_empty(), "docs/envelope.md does not list {missing:?}");
}
