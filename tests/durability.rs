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

/// The gateway's first log segment (docs/storage.md).
fn gateway_segment(dir: &Path) -> PathBuf {
    dir.join("data/gateway/log/0000000001.seg")
}

/// The store's first log segment (the documented layout, `docs/storage.md`): each frame a body
/// length and a CRC-32 (u32 LE each), then its items, each a kind (1: a log entry) and a length
/// (u32 LE) before its content.
fn first_segment(store_dir: &Path) -> PathBuf {
    store_dir.join("log/0000000001.seg")
}

fn le32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

/// Where log entry `sequence` is in a segment: the frame's start, and the item's content and length.
fn entry_in(bytes: &[u8], sequence: u64) -> Option<(usize, usize, usize)> {
    let (mut frame, mut seen) = (0usize, 0u64);
    while frame < bytes.len() {
        let end = frame + 8 + le32(bytes, frame);
        let mut item = frame + 8;
        while item < end {
            let (kind, len) = (bytes[item], le32(bytes, item + 1));
            if kind == 1 {
                seen += 1;
                if seen == sequence {
                    return Some((frame, item + 5, len));
                }
            }
            item += 5 + len;
        }
        frame = end;
    }
    None
}

/// Makes the CRC of the frame at `frame` match its body again.
fn seal_frame(bytes: &mut [u8], frame: usize) {
    let (body, end) = (frame + 8, frame + 8 + le32(bytes, frame));
    let crc = crc32fast::hash(&bytes[body..end]);
    bytes[frame + 4..frame + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Changes log entry `sequence` of the store in `store_dir` in its segment, as a
/// tool that knows the documented layout would: it finds the entry by walking
/// the frames, lets `edit` change its bytes, and makes the frame's CRC match again.
fn edit_log_entry(store_dir: &Path, sequence: u64, edit: impl FnOnce(&mut [u8])) {
    let path = first_segment(store_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let (frame, content, len) =
        entry_in(&bytes, sequence).unwrap_or_else(|| panic!("no log entry {sequence} in {}", path.display()));
    edit(&mut bytes[content..content + len]);
    seal_frame(&mut bytes, frame);
    std::fs::write(&path, &bytes).unwrap();
}

/// Changes the byte of the gateway's first segment that `find` points at with `edit`, and makes
/// the CRC of the frame that holds it match again.
fn edit_segment(store_dir: &Path, find: impl FnOnce(&[u8]) -> usize, edit: impl FnOnce(&mut u8)) {
    let path = first_segment(store_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes);
    edit(&mut bytes[at]);
    let mut frame = 0usize;
    while frame + 8 + le32(&bytes, frame) <= at {
        frame += 8 + le32(&bytes, frame);
    }
    seal_frame(&mut bytes, frame);
    std::fs::write(&path, &bytes).unwrap();
}

/// Removes log entry `sequence` from its frame (the frame's length and CRC made to match again).
fn drop_log_entry(store_dir: &Path, sequence: u64) {
    let path = first_segment(store_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let (frame, content, len) =
        entry_in(&bytes, sequence).unwrap_or_else(|| panic!("no log entry {sequence} in {}", path.display()));
    bytes.drain(content - 5..content + len);
    let body_len = (le32(&bytes, frame) - 5 - len) as u32;
    bytes[frame..frame + 4].copy_from_slice(&body_len.to_le_bytes());
    seal_frame(&mut bytes, frame);
    std::fs::write(&path, &bytes).unwrap();
}

#[test]
fn the_audit_finds_a_dropped_entry_a_reordered_pair_and_a_forged_checkpoint() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let clean = audit(temp.path());
    let printed = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{printed}");
    assert!(!printed.contains("gateway: 0 log entries") && !printed.contains(" 0 checkpoints"), "{printed}");
    let copy = |name: &str| {
        let to = temp.path().join(name);
        copy_dir(temp.path(), &to);
        to
    };
    let (dropped, reordered, forged) = (copy("dropped"), copy("reordered"), copy("forged"));
    // Entry 3 gone from the log.
    drop_log_entry(&dropped.join("data/gateway"), 3);
    let output = audit(&dropped);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("gateway: BROKEN") && printed.contains("log/4") && printed.contains("lost"), "{printed}");
    // Entries 2 and 3 in each other's place: each names itself by the other's number.
    for (sequence, as_number) in [(2u64, 3u8), (3, 2)] {
        edit_log_entry(&reordered.join("data/gateway"), sequence, |entry| {
            assert_eq!(entry[..2], [0x08, sequence as u8], "an entry starts with its sequence (field 1)");
            entry[1] = as_number;
        });
    }
    let output = audit(&reordered);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("log/2") && printed.contains("log/3") && printed.contains("leaf hash"), "{printed}");
    // One character of a checkpoint's root changed: its signature no longer verifies.
    edit_segment(
        &forged.join("data/gateway"),
        |bytes| {
            let end_of_text = bytes.windows(6).position(|w| w == "\n\n\u{2014} ".as_bytes()).expect("a checkpoint");
            end_of_text - 5
        },
        |byte| *byte = if *byte == b'A' { b'B' } else { b'A' },
    );
    let output = audit(&forged);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("tlog/checkpoint/") && printed.contains("signature does not verify"), "{printed}");
}

/// Copies the data and keys of `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for sub in ["data", "keys"] {
        let status = Command::new("cp").arg("-a").arg(from.join(sub)).arg(to.join(sub)).status().unwrap();
        assert!(status.success());
    }
}

#[test]
fn a_truncated_log_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let file = gateway_segment(temp.path());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused_saying(temp.path(), &["data/gateway", "is damaged", "lost acknowledged messages"]);
}

#[test]
fn flipped_bytes_in_the_log_are_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let file = gateway_segment(temp.path());
    let mut bytes = std::fs::read(&file).unwrap();
    for page in non_zero_pages(&bytes).into_iter().skip(1) {
        if let Some(byte) = bytes.get_mut(page + 200) {
            *byte ^= 0x5a;
        }
    }
    std::fs::write(&file, &bytes).unwrap();
    assert_refused(temp.path(), "is damaged");
}

#[test]
fn a_damaged_index_is_refused_or_rebuilt_from_the_log_never_served_short() {
    // sled holds the index (records, outbox, positions); the log's segments hold every
    // commit. Damage to sled's file is either refused at start or repaired by applying
    // the log again: the audit then finds the log whole, and the stack serves it all.
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let before = audit(temp.path());
    assert!(before.status.success());
    let file = temp.path().join("data/gateway/db");
    let bytes = std::fs::read(&file).unwrap();
    let pages = non_zero_pages(&bytes);
    std::fs::write(&file, &bytes[..pages[pages.len() / 2]]).unwrap();
    let after = audit(temp.path());
    let printed = String::from_utf8_lossy(&after.stdout);
    if after.status.success() {
        assert_eq!(printed, String::from_utf8_lossy(&before.stdout), "the repaired store holds what it held");
    } else {
        assert!(
            printed.contains("gateway: BROKEN") || String::from_utf8_lossy(&after.stderr).contains("is damaged"),
            "{printed}"
        );
        assert_refused(temp.path(), "is damaged");
    }
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
fn a_deleted_log_segment_is_refused_at_start() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    std::fs::remove_file(gateway_segment(temp.path())).unwrap();
    assert_refused_saying(temp.path(), &["data/gateway/log", "holds data"]);
}

#[test]
fn a_changed_log_entry_breaks_the_chain_and_the_audit_names_it() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let audit = || audit(temp.path());
    assert!(audit().status.success());
    // Rewrite entry 2 in its segment, as a careless tool would: the frame's CRC matches again.
    edit_log_entry(&temp.path().join("data/gateway"), 2, |entry| *entry.last_mut().unwrap() ^= 1);
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
    for sequence in [2u64, 4] {
        edit_log_entry(&temp.path().join("data/gateway"), sequence, |entry| *entry.last_mut().unwrap() ^= 1);
    }
    let output = audit(temp.path());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("log/2") && printed.contains("log/4"), "both breaks are reported: {printed}");
    assert!(printed.contains("regional: ") && printed.contains("workstation: "), "the others are checked: {printed}");
}

/// The application of the first envelope the gateway logged.
fn first_application(store_dir: &Path) -> String {
    let (store, _) = egov_store::Store::open_read_only(store_dir).unwrap();
    let entry = store.log_entry(1).unwrap().unwrap();
    let envelope = <egov_proto::Envelope as prost::Message>::decode(entry.envelope.as_slice()).unwrap();
    egov_envelope::decode_header(&envelope.header).unwrap().correlation_id
}

#[test]
fn an_applications_evidence_is_verified_offline_and_a_tampered_bundle_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let application = first_application(&temp.path().join("data/gateway"));
    let bundle = temp.path().join("bundle.json");
    let output = Command::new(EGOV)
        .args(["audit", "prove", &application, "--out"])
        .arg(&bundle)
        .arg("--data")
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The consistency of the gateway's log, from its first entry to its checkpoint.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let gateway = json["logs"].as_array().unwrap().iter().find(|log| log["participant"] == "gateway").unwrap();
    let size: u64 = gateway["checkpoint"].as_str().unwrap().lines().nth(1).unwrap().parse().unwrap();
    let output = Command::new(EGOV)
        .args(["audit", "consistency", "--participant", "gateway", "--from", "1", "--to", &size.to_string(), "--data"])
        .arg(temp.path().join("data"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && printed.contains("consistency: ok"), "{printed}");
    // Elsewhere, with the bundle and the trust registry only: the stores are gone.
    let elsewhere = tempfile::tempdir().unwrap();
    let (copied, trust) = (elsewhere.path().join("bundle.json"), elsewhere.path().join("trust.toml"));
    std::fs::copy(&bundle, &copied).unwrap();
    std::fs::copy(temp.path().join("keys/trust.toml"), &trust).unwrap();
    drop(temp);
    let verify = |file: &Path| {
        Command::new(EGOV)
            .args(["audit", "verify-bundle"])
            .arg(file)
            .arg("--trust")
            .arg(&trust)
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    let output = verify(&copied);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && printed.contains("verify-bundle: ok"), "{printed}");
    assert!(printed.contains("gateway (") && printed.contains("signed by key"), "{printed}");
    assert!(printed.contains("cosigned by the witness egov/sc-workstation"), "{printed}");
    assert!(printed.contains("cosigned by the witness egov/egov-gateway"), "{printed}");
    assert!(printed.contains("entry ") && printed.contains("countersigned by the gateway's key"), "{printed}");
    println!("{printed}");
    // Tampered: each refused with its code.
    let tamper = |edit: &dyn Fn(&mut serde_json::Value), code: &str| {
        let mut changed = json.clone();
        edit(&mut changed);
        let file = elsewhere.path().join("tampered.json");
        std::fs::write(&file, serde_json::to_vec(&changed).unwrap()).unwrap();
        let output = verify(&file);
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success() && printed.contains(&format!("REFUSED {code}")), "{code}: {printed}");
    };
    let flip_hex = |text: &str, at: usize| {
        let mut chars: Vec<char> = text.chars().collect();
        chars[at] = if chars[at] == '0' { '1' } else { '0' };
        chars.into_iter().collect::<String>()
    };
    tamper(
        &|value| {
            let entry = &mut value["logs"][0]["entries"][0];
            let envelope = entry["envelope"].as_str().unwrap().to_owned();
            entry["envelope"] = flip_hex(&envelope, envelope.len() / 2).into();
        },
        "audit.proof_invalid",
    );
    tamper(
        &|value| {
            let entry = &mut value["logs"][0]["entries"][0];
            let hash = entry["proof"][0].as_str().unwrap().to_owned();
            entry["proof"][0] = flip_hex(&hash, 10).into();
        },
        "audit.proof_invalid",
    );
    tamper(
        &|value| {
            let entry = &mut value["logs"][0]["entries"][0];
            let sequence = entry["sequence"].as_u64().unwrap();
            entry["sequence"] = (sequence + 1).into();
        },
        "audit.proof_invalid",
    );
    tamper(
        &|value| {
            let note = value["logs"][0]["checkpoint"].as_str().unwrap().to_owned();
            let mut lines: Vec<String> = note.split('\n').map(str::to_owned).collect();
            lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
            value["logs"][0]["checkpoint"] = lines.join("\n").into();
        },
        "audit.checkpoint_forged",
    );
    tamper(&|value| value["format"] = "egov-evidence/0".into(), "audit.bundle_malformed");
}

#[test]
fn the_witnesses_cosign_each_others_checkpoints_and_the_audit_reports_a_split_view() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let output = audit(temp.path());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    let cosigned = |participant: &str| -> usize {
        let line = printed
            .lines()
            .find(|line| line.starts_with(&format!("{participant}: ")) && line.contains("cosigned"))
            .unwrap();
        line.split(" checkpoints verified, ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
    };
    assert!(cosigned("gateway") >= 2 && cosigned("regional") >= 1 && cosigned("workstation") >= 1, "{printed}");
    // The gateway's log forks: one copy extended by one entry, shown to the workstation (which
    // cosigns it), another copy extended by another entry, which replaces the log.
    let data = temp.path().join("data");
    let fork = temp.path().join("fork");
    let status = Command::new("cp").arg("-a").arg(data.join("gateway")).arg(&fork).status().unwrap();
    assert!(status.success());
    let keys = egov_runtime::KeyDir::new(temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let gateway = keys.signer_in(&trust, "egov-gateway").unwrap();
    let workstation = keys.signer_in(&trust, "sc-workstation").unwrap();
    let log_keys: Vec<_> = trust.log_keys("egov-gateway").into_iter().map(|(_, key)| key).collect();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        for (dir, byte) in [(data.join("gateway"), 1u8), (fork.clone(), 2)] {
            let store = egov_store::Store::open(&dir, 8 << 20).unwrap();
            let mut batch = egov_store::Batch::new();
            batch.log(1, "received", vec![byte], "", Vec::new());
            store.commit(batch).await.unwrap();
            store.publish_checkpoint(&gateway.note_signer()).await.unwrap().unwrap();
            if byte == 1 {
                let witness = egov_store::Store::open(&data.join("workstation"), 8 << 20).unwrap();
                let done = witness.witness(&store, &log_keys, &workstation.cosigner(), 1).await.unwrap();
                assert!(matches!(done, egov_store::Witnessed::Cosigned(_)), "{done:?}");
            }
        }
    });
    std::fs::remove_dir_all(data.join("gateway")).unwrap();
    let status = Command::new("cp").arg("-a").arg(&fork).arg(data.join("gateway")).status().unwrap();
    assert!(status.success());
    let output = audit(temp.path());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("gateway: BROKEN: split view: the workstation cosigned its checkpoint"), "{printed}");
}
