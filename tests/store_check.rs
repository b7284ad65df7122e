//! The audit and the store's own checks never write to what they check; a
//! log that lost its acknowledged tail is reported and refused even with
//! sled's index gone; damage anywhere in the log is found by `egov store
//! check` and `egov serve --verify-all`; sled's index is rebuilt in one
//! command; a participant's store is not started empty because the list of
//! participants went with it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

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
        .current_dir(common::fixtures_dir().join(".."))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut walk = vec![dir.to_owned()];
    while let Some(at) = walk.pop() {
        for item in std::fs::read_dir(&at).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                walk.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Asserts that `run` changes no file under `dir` (none added, removed or rewritten).
fn changes_nothing<T>(dir: &Path, run: impl FnOnce() -> T) -> T {
    let before = contents(dir);
    let result = run();
    let after = contents(dir);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "files added or removed");
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} was rewritten", path.display());
    }
    result
}

/// `egov ARGS --data DIR/data --keys DIR/keys`.
fn egov(dir: &Path, args: &[&str]) -> Output {
    Command::new(EGOV)
        .args(args)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .output()
        .unwrap()
}

fn printed(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `egov serve` on `dir` with `extra` arguments: started (it said `ready`; the
/// caller stops it), or refused, with all it said. Never waits on a server
/// that did start.
fn serve(dir: &Path, extra: &[&str]) -> Result<common::Served, String> {
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--any-port", "--simulated-time", "--console", "off", "--shep", "off"])
        .args(extra)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(std::process::Stdio::piped());
    common::Served::try_start(command, std::time::Duration::from_secs(60))
}

/// `egov serve` on `dir`, with `extra` arguments: it must refuse to start, saying each of `fragments`.
fn assert_refused(dir: &Path, extra: &[&str], fragments: &[&str]) {
    let said = match serve(dir, extra) {
        Ok(served) => {
            let said = served.said.join("\n");
            served.terminate();
            panic!("it served: {said}");
        }
        Err(said) => said,
    };
    for fragment in fragments {
        assert!(said.contains(fragment), "{fragment:?} not in {said}");
    }
}

/// `egov serve` on `dir` becomes ready; stopped at once.
fn assert_serves(dir: &Path, extra: &[&str]) {
    let served = serve(dir, extra).unwrap_or_else(|said| panic!("it did not serve: {said}"));
    let (stopped, _) = served.terminate();
    assert!(stopped, "a graceful stop exits 0");
}

/// Removes sled's files from a participant's store (docs/storage.md): the index only.
fn remove_index(store: &Path) {
    for item in std::fs::read_dir(store).unwrap() {
        let path = item.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "db" || name == "conf" || name == "blobs" || name.starts_with("snap.") {
            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) }.unwrap();
        }
    }
}

/// Cuts `bytes` from the end of a store's last segment.
fn cut_tail(store: &Path, bytes: u64) {
    let segment = store.join("log/0000000001.seg");
    let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - bytes.min(len)).unwrap();
}

/// The frames of a segment: offset, whole length, whether it holds a log entry.
fn frames(bytes: &[u8]) -> Vec<(usize, usize, bool)> {
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let (body, end) = (at + 8, at + 8 + le32(at));
        let mut item = body;
        let mut entry = false;
        while item < end {
            entry |= bytes[item] == 1;
            item += 5 + le32(item + 1);
        }
        out.push((at, end - at, entry));
        at = end;
    }
    out
}

#[test]
fn the_audit_and_the_check_change_no_byte_intact_or_damaged() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let data = temp.path().join("data");
    for command in [["audit", "verify"], ["store", "check"]] {
        let output = changes_nothing(&data, || egov(temp.path(), &command));
        assert!(output.status.success(), "{}", printed(&output));
    }
    // The whole check at start passes on an intact store (the live index matches the log).
    assert_serves(temp.path(), &["--verify-all"]);
    // A cut last segment with sled's files removed: what opening the store repairs
    // (cuts the torn frame, recreates sled) a check must leave as it is.
    let gateway = data.join("gateway");
    remove_index(&gateway);
    cut_tail(&gateway, 12_000);
    for command in [["audit", "verify"], ["store", "check"]] {
        let output = changes_nothing(&data, || egov(temp.path(), &command));
        assert!(!output.status.success(), "{}", printed(&output));
        assert!(printed(&output).contains("gateway: BROKEN"), "{}", printed(&output));
    }
}

#[test]
fn a_tail_cut_with_the_index_removed_is_reported_and_refused_for_every_store() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    for participant in ["gateway", "regional", "workstation"] {
        for cut in [1u64, 2_000, 10_000, 100_000, 1 << 20] {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(temp.path(), copy.path());
            let store = copy.path().join("data").join(participant);
            remove_index(&store);
            cut_tail(&store, cut);
            let output = egov(copy.path(), &["audit", "verify"]);
            let said = printed(&output);
            if cut >= 10_000 {
                // More than the bookkeeping committed without waiting for the disk at the end
                // of these logs: acknowledged commits are gone, and the store's marker says so.
                assert!(!output.status.success(), "{participant}, {cut} bytes cut: {said}");
                assert!(said.contains(&format!("{participant}: BROKEN")), "{said}");
                assert!(said.contains("lost acknowledged messages"), "{said}");
            }
            // The audit and the start check agree.
            if output.status.success() {
                assert_serves(copy.path(), &[]);
            } else {
                assert_refused(copy.path(), &[], &[&format!("data/{participant}"), "lost acknowledged messages"]);
            }
        }
    }
}

#[test]
fn without_the_marker_the_other_logs_witness_a_lost_tail() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    // The end of the gateway's and of the regional ARM's logs: messages another participant's log names.
    for participant in ["gateway", "regional"] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(temp.path(), copy.path());
        let store = copy.path().join("data").join(participant);
        remove_index(&store);
        std::fs::remove_file(store.join("acknowledged")).unwrap();
        cut_tail(&store, 12_000);
        let output = egov(copy.path(), &["audit", "verify"]);
        let said = printed(&output);
        assert!(!output.status.success(), "{said}");
        assert!(said.contains(&format!("{participant}: BROKEN: the log lost acknowledged messages")), "{said}");
        assert!(said.contains("no marker of the acknowledged end"), "what it cannot know is said: {said}");
    }
}

#[test]
fn damage_anywhere_in_the_log_or_the_index_is_found_by_the_full_check() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    // sled's index no longer matches the log (an entry's index key lost): the
    // default start check reads the chain's newest entries, not the whole index.
    {
        let db = sled::open(temp.path().join("data/workstation")).unwrap();
        let key = db.scan_prefix(b"x/application/").keys().next().unwrap().unwrap();
        db.remove(key).unwrap();
        db.flush().unwrap();
    }
    let data = temp.path().join("data");
    let output = changes_nothing(&data, || egov(temp.path(), &["store", "check", "workstation"]));
    let said = printed(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("workstation: BROKEN: index: x/application/") && said.contains("missing from the index"),
        "{said}"
    );
    assert!(!said.contains("gateway:"), "one participant was asked for: {said}");
    assert_serves(temp.path(), &[]);
    assert_refused(temp.path(), &["--verify-all"], &["workstation", "--verify-all", "missing from the index"]);
    // A damaged frame of the log, inside the segment.
    let segment = temp.path().join("data/regional/log/0000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let (at, len, _) = frames(&bytes)[3];
    bytes[at + len / 2] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let output = changes_nothing(&data, || egov(temp.path(), &["store", "check"]));
    let said = printed(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("regional: BROKEN") && said.contains("does not match its checksum"), "{said}");
    assert_refused(temp.path(), &["--verify-all"], &["regional", "does not match its checksum"]);
}

#[test]
fn the_index_is_rebuilt_in_one_command_and_a_log_that_lost_its_tail_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let workstation = temp.path().join("data/workstation");
    let before = egov(temp.path(), &["audit", "verify"]);
    remove_index(&workstation);
    let output = Command::new(EGOV)
        .args(["store", "rebuild-index", "workstation", "--data"])
        .arg(temp.path().join("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", printed(&output));
    assert!(printed(&output).contains("the index is rebuilt from the log"), "{}", printed(&output));
    let after = egov(temp.path(), &["store", "check", "workstation"]);
    assert!(after.status.success() && printed(&after).contains("the index matches the log"), "{}", printed(&after));
    assert_eq!(egov(temp.path(), &["audit", "verify"]).stdout, before.stdout, "the rebuilt store holds what it held");
    // Removing sled's files (as docs/storage.md says) then starting rebuilds the index too.
    remove_index(&temp.path().join("data/regional"));
    assert_serves(temp.path(), &[]);
    // The log lost its last frame as well: the rebuild is refused, changing nothing.
    remove_index(&workstation);
    cut_tail(&workstation, 1);
    let data = temp.path().join("data");
    let output = changes_nothing(&data, || {
        Command::new(EGOV).args(["store", "rebuild-index", "workstation", "--data"]).arg(&data).output().unwrap()
    });
    assert!(!output.status.success(), "{}", printed(&output));
    assert!(printed(&output).contains("lost acknowledged messages"), "{}", printed(&output));
    assert_refused(temp.path(), &[], &["data/workstation", "lost acknowledged messages"]);
}

#[test]
fn a_store_deleted_with_the_list_of_participants_is_not_started_empty() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    std::fs::remove_dir_all(temp.path().join("data/regional")).unwrap();
    std::fs::remove_file(temp.path().join("data/participants")).unwrap();
    assert_refused(temp.path(), &[], &["data/regional", "is missing", "data/participants"]);
    let output = egov(temp.path(), &["audit", "verify"]);
    assert!(!output.status.success() && printed(&output).contains("regional: BROKEN"), "{}", printed(&output));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.path().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

#[test]
fn the_start_checks_advice_for_a_damaged_index_works_as_it_says() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let before = egov(temp.path(), &["audit", "verify"]);
    // sled's own file damaged: cut to its first page.
    let db = temp.path().join("data/gateway/db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..4096.min(bytes.len() / 2)]).unwrap();
    match serve(temp.path(), &[]) {
        // sled recovered an earlier state by itself, and the start applied the log again.
        Ok(served) => assert!(served.terminate().0, "a graceful stop exits 0"),
        // Refused: it names the command, and the command does what it says.
        Err(said) => {
            assert!(said.contains("egov store rebuild-index gateway --data"), "{said}");
            let rebuilt = Command::new(EGOV)
                .args(["store", "rebuild-index", "gateway", "--data"])
                .arg(temp.path().join("data"))
                .output()
                .unwrap();
            assert!(rebuilt.status.success(), "{}", printed(&rebuilt));
        }
    }
    assert_eq!(egov(temp.path(), &["audit", "verify"]).stdout, before.stdout, "nothing acknowledged was lost");
    assert_serves(temp.path(), &["--verify-all"]);
}

#[test]
fn sleds_own_index_witnesses_a_lost_tail_and_the_audit_reads_it_from_a_copy() {
    let temp = tempfile::tempdir().unwrap();
    run_into(temp.path());
    let workstation = temp.path().join("data/workstation");
    std::fs::remove_file(workstation.join("acknowledged")).unwrap();
    cut_tail(&workstation, 12_000);
    let data = temp.path().join("data");
    let output = changes_nothing(&data, || egov(temp.path(), &["audit", "verify"]));
    let said = printed(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("workstation: BROKEN") && said.contains("and sled's index"), "{said}");
    assert_refused(temp.path(), &[], &["data/workstation", "lost acknowledged messages"]);
}
