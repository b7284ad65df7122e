//! A damaged data directory is refused at start with a clear error, never
//! served; `egov audit verify` names the first broken entry.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Replays two scenarios into `dir` (DIR/data, DIR/keys).
fn run_into(dir: &Path) {
    let output = Command::new(EGOV)
        .args([
            "replay",
            "fixtures/applications/approval-in-person.json",
            "fixtures/applications/refusal-harm-to-child.json",
        ])
        .arg("--keep")
        .arg(dir)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

/// `egov serve` on `dir` must refuse to start, saying `expected` about the gateway's store.
fn assert_refused(dir: &Path, expected: &str) {
    assert_refused_saying(dir, &["data/gateway", expected]);
}

/// `egov serve` on `dir` must refuse to start, saying each of `fragments`.
fn assert_refused_saying(dir: &Path, fragments: &[&str]) {
    let output = Command::new(EGOV)
        .args(["serve", "--any-port", "--simulated-time"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--fixtures")
        .arg(root().join("fixtures"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "served a damaged store: {}", String::from_utf8_lossy(&output.stdout));
    for fragment in fragments {
        assert!(said.contains(fragment), "{fragment:?} not in {said}");
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains("ready"), "it must not serve");
}

fn non_zero_pages(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len())
        .step_by(4096)
        .filter(|&at| bytes[at..(at + 4096).min(bytes.len())].iter().any(|b| *b != 0))
        .collect()
}

#[test]
fn a_truncated_store_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let file = temp.path().join("data/gateway/db");
    let bytes = std::fs::read(&file).unwrap();
    let pages = non_zero_pages(&bytes);
    std::fs::write(&file, &bytes[..pages[pages.len() / 2]]).unwrap();
    assert_refused(temp.path(), "is damaged");
}

#[test]
fn flipped_bytes_are_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let file = temp.path().join("data/gateway/db");
    let mut bytes = std::fs::read(&file).unwrap();
    for page in non_zero_pages(&bytes).into_iter().skip(1) {
        if let Some(byte) = bytes.get_mut(page + 200) {
            *byte ^= 0x5a;
        }
    }
    std::fs::write(&file, &bytes).unwrap();
    assert_refused(temp.path(), "is damaged");
}

/// `egov audit verify` on `dir`.
fn audit(dir: &Path) -> std::process::Output {
    Command::new(EGOV)
        .args(["audit", "verify", "--data"])
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .output()
        .unwrap()
}

#[test]
fn a_deleted_store_is_refused_at_start_and_the_audit_reports_it() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    std::fs::remove_dir_all(temp.path().join("data/regional")).unwrap();
    assert_refused_saying(temp.path(), &["data/regional", "is missing", "data/participants"]);
    let output = audit(temp.path());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success() && printed.contains("regional: BROKEN"), "{printed}");
    assert!(printed.contains("gateway: ") && printed.contains("intact"), "the others are still checked: {printed}");
}

#[test]
fn a_deleted_log_head_marker_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    std::fs::remove_file(temp.path().join("data/gateway/log-head")).unwrap();
    assert_refused(temp.path(), "log-head");
}

#[test]
fn a_changed_log_entry_breaks_the_chain_and_the_audit_names_it() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let audit = || audit(temp.path());
    assert!(audit().status.success());
    {
        // Rewrite entry 2's envelope through sled itself, as a careless tool would.
        let db = sled::open(temp.path().join("data/gateway")).unwrap();
        let log = db.open_tree("log").unwrap();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&log.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        entry["note"] = "edited".into();
        log.insert(2u64.to_be_bytes(), serde_json::to_vec(&entry).unwrap()).unwrap();
        db.flush().unwrap();
    }
    let output = audit();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("gateway: BROKEN") && printed.contains("log/2"), "{printed}");
    assert_refused(temp.path(), "log/2");
}

#[test]
fn the_audit_reports_every_broken_entry_not_only_the_first() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    {
        let db = sled::open(temp.path().join("data/gateway")).unwrap();
        let log = db.open_tree("log").unwrap();
        for sequence in [2u64, 4] {
            let mut entry: serde_json::Value =
                serde_json::from_slice(&log.get(sequence.to_be_bytes()).unwrap().unwrap()).unwrap();
            entry["note"] = "edited".into();
            log.insert(sequence.to_be_bytes(), serde_json::to_vec(&entry).unwrap()).unwrap();
        }
        db.flush().unwrap();
    }
    let output = audit(temp.path());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("log/2") && printed.contains("log/4"), "both breaks are reported: {printed}");
    assert!(printed.contains("regional: ") && printed.contains("workstation: "), "the others are checked: {printed}");
}
