//! The README's walk of the staff's commands, one step at a time, each signed
//! by its member (`egov staff act`), through the binary: a refusal at
//! condition 2 and process 8, whose refusal the deciding specialist signs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

/// `egov ARGS` against the served stack (its addresses as `EGOV_*` variables): what it printed, or why not.
fn egov(served: &common::Served, temp: &Path, args: &[&str]) -> String {
    let address = |role: &str| {
        served
            .said
            .iter()
            .find_map(|line| line.strip_prefix(&format!("listening {role} ")))
            .unwrap_or_else(|| panic!("egov serve did not say where the {role} is: {:?}", served.said))
            .to_owned()
    };
    let output = Command::new(EGOV)
        .args(args)
        .current_dir(temp)
        .env("EGOV_WORKSTATION", address("workstation"))
        .env("EGOV_REGIONAL", address("regional"))
        .env("EGOV_GATEWAY", address("gateway"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "egov {args:?}: {printed}\n{}", String::from_utf8_lossy(&output.stderr));
    printed
}

/// `egov status app-2` once it says `what` (within 10 s).
fn wait_for(served: &common::Served, temp: &Path, what: &str) -> String {
    let mut status = String::new();
    for _ in 0..100 {
        status = egov(served, temp, &["status", "app-2"]);
        if status.contains(what) {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("app-2 never got to {what:?}: {status}");
}

#[test]
fn a_refusal_at_condition_2_step_by_step_ends_with_the_specialists_signed_refusal() {
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--any-port", "--console", "off", "--shep", "off", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let temp = temp.path();

    egov(&served, temp, &["operator", "apply", "--applicant", "900101400122", "--id", "app-2"]);
    // Process 7 follows the submission through the gateway: wait for the registration.
    let registration = (0..100)
        .find_map(|_| {
            let status = egov(&served, temp, &["status", "app-2"]);
            let found = status.lines().find_map(|line| line.trim().strip_prefix("registration")).map(str::trim);
            let found = found.filter(|id| !id.is_empty()).map(str::to_owned);
            if found.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            found
        })
        .expect("app-2 was never registered");

    egov(&served, temp, &["staff", "act", &registration, "--as", "office-1"]);
    egov(
        &served,
        temp,
        &["staff", "act", &registration, "--as", "specialist-1", "--decision", "no", "--ground", "incomplete-package"],
    );
    // The ARM reports each step back to the State Corporation through the gateway.
    wait_for(&served, temp, "waiting on process-8");
    // Process 8: the specialist who decided signs the refusal the ARM formed.
    egov(&served, temp, &["staff", "act", &registration, "--as", "specialist-1"]);
    let status = wait_for(&served, temp, "waiting on process-9");
    let process_8 = status.lines().find(|line| line.trim_start().starts_with("process-8")).unwrap_or_default();
    assert!(process_8.contains("provider-specialist") && process_8.contains("specialist-1"), "{status}");
    served.terminate();
}
