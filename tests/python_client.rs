//! A second, independent client: `tests/python/scenario.py`, written from the
//! public contract only (`proto/egov/v1/*.proto` and `docs/envelope.md`),
//! drives a running `egov serve` stack: the test vectors, the operator's form
//! and submission, a person look-up through the gateway with its answer
//! verified, a tampered envelope, a resend and a replay.
//!
//! It needs `python3` with `grpcio`, `grpcio-tools` and `cryptography`
//! (`tests/python/requirements.txt`), which the test command `tests/run.sh`
//! installs. Without them the test fails, saying how to install them.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const PYTHON: &str = "python3";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Child processes killed when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `python3` can import the client's packages; the reason when not.
fn python_ready() -> Result<(), String> {
    let probe = Command::new(PYTHON).args(["-c", "import grpc, grpc_tools, cryptography"]).output();
    match probe {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "{PYTHON} cannot import grpc, grpc_tools and cryptography ({}); \
             install them with `{PYTHON} -m pip install -r tests/python/requirements.txt`",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("{PYTHON} cannot be run ({error}); the Python client test needs it")),
    }
}

/// Starts `egov serve --any-port` with every role and returns it with the
/// addresses it printed (`listening ROLE HOST:PORT`), once it said `ready`.
fn serve(temp: &Path) -> (Child, HashMap<String, String>) {
    let stderr = std::fs::File::create(temp.join("serve.stderr")).unwrap();
    let mut child = Command::new(EGOV)
        .args(["serve", "--any-port"])
        .arg("--data")
        .arg(temp.join("data"))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(repo_root().join("fixtures"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let mut addresses = HashMap::new();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == "ready" => break,
            Some(Ok(line)) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["listening", role, address] = words[..] {
                    addresses.insert(role.to_owned(), address.to_owned());
                }
                seen.push(line);
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(temp.join("serve.stderr")).unwrap_or_default();
                panic!("egov serve stopped before it was ready; it said {seen:?}\n{said}");
            }
        }
    }
    // Keep draining stdout so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addresses)
}

/// Reads a child's pipe to the end on a thread.
fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

#[test]
fn the_python_client_written_from_the_docs_drives_the_stack() {
    if let Err(reason) = python_ready() {
        panic!("{reason} (tests/install.sh installs them)");
    }

    let temp = tempfile::tempdir().unwrap();
    let init = Command::new(EGOV).args(["keys", "init", "--dir"]).arg(temp.path().join("keys")).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let (server, addresses) = serve(temp.path());
    let children = Children(vec![server]);
    let address = |role: &str| addresses.get(role).cloned().unwrap_or_else(|| panic!("no {role} in {addresses:?}"));

    let mut script = Command::new(PYTHON)
        .arg(repo_root().join("tests/python/scenario.py"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .args(["--workstation", &address("workstation")])
        .args(["--gateway", &address("gateway")])
        .args(["--regional", &address("regional")])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(script.stdout.take().unwrap());
    let stderr = collect(script.stderr.take().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = script.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = script.kill();
            let _ = script.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let printed = stdout.join().unwrap();
    let complained = stderr.join().unwrap();
    println!("{printed}");
    if !complained.is_empty() {
        eprintln!("{complained}");
    }
    let server_said = || std::fs::read_to_string(temp.path().join("serve.stderr")).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("scenario.py did not end within {SCRIPT_TIMEOUT:?}:\n{printed}\n{complained}\n{}", server_said())
    });
    assert!(status.success(), "scenario.py failed ({status}):\n{printed}\n{complained}\n{}", server_said());
    let last = printed.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "the last line is {last:?}:\n{printed}");
    assert!(!printed.contains("FAIL"), "{printed}");
    drop(children);
}
