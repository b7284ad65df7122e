//! The config file (docs/configuration.md): what it sets, what a flag or an
//! EGOV_* variable overrides, and the errors that name the file's line.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

fn egov(config: &Path) -> Command {
    let mut command = Command::new(EGOV);
    command.arg("--config").arg(config).env_remove("EGOV_ROLES").env_remove("EGOV_CONFIG");
    command
}

#[test]
fn a_wrong_key_or_value_is_refused_naming_the_line_and_nothing_starts() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let cases = [
        ("[serve]\ncache_mib = 8\ncache_mb = 4\n", "line 3", "unknown field `cache_mb`"),
        ("[serve]\n\ncache_mib = \"four\"\n", "line 3", "invalid type: string \"four\""),
        ("[serve]\nroles = [\"gateway\", \"post-office\"]\n", "line 2", "unknown role \"post-office\""),
        ("[serve]\nfaults = [\"gateway:sometimes\"]\n", "line 2", "serve.faults"),
        ("[log]\nformat = \"xml\"\n", "line 2", "log.format"),
        ("[servce]\ndata = \"d\"\n", "line 1", "unknown field `servce`"),
    ];
    for (text, line, what) in cases {
        let file = temp.path().join("egov.toml");
        std::fs::write(&file, format!("{text}[topology]\n")).unwrap();
        let output = egov(&file).arg("serve").arg("--data").arg(&data).output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text}");
        assert!(said.contains(&format!("egov.toml {line}:")) && said.contains(what), "{text}: {said}");
        assert!(!data.exists(), "{text}: something started");
    }
    let missing = egov(&temp.path().join("absent.toml")).args(["iin", "check", "850715300122"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

/// Starts `command` (an `egov serve`), stops it with SIGTERM once it is
/// ready, and returns all it printed and whether it exited 0.
fn serve_and_stop(mut command: Command) -> (Vec<String>, bool) {
    command.stderr(Stdio::null());
    let served = common::Served::start(command);
    let mut said = served.said.clone();
    let (exited_0, rest) = served.terminate();
    said.extend(rest);
    (said, exited_0)
}

fn listening(said: &[String]) -> Vec<&str> {
    said.iter().filter_map(|line| line.strip_prefix("listening ")?.split(' ').next()).collect()
}

#[test]
fn the_file_sets_what_the_flags_set_and_a_flag_or_its_variable_overrides_it() {
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let file = temp.path().join("egov.toml");
    std::fs::write(
        &file,
        format!(
            "[log]\nformat = \"json\"\n\n[serve]\ndata = {:?}\nkeys = {:?}\nfixtures = {:?}\nroles = [\"individuals\", \"gateway\"]\nany_port = true\ndrain_seconds = 3\n",
            temp.path().join("state").display().to_string(),
            temp.path().join("keys").display().to_string(),
            common::fixtures_dir().display().to_string(),
        ),
    )
    .unwrap();
    // From the file: its roles, on free ports, with the gateway's store where it says.
    let mut command = egov(&file);
    command.arg("serve");
    let (said, stopped) = serve_and_stop(command);
    assert_eq!(listening(&said), ["individuals", "gateway"], "{said:?}");
    assert!(temp.path().join("state/gateway").is_dir(), "the store is where the file says");
    assert!(
        stopped && said.iter().any(|line| line == "stopping: answering the calls in flight (at most 3 s)"),
        "{said:?}"
    );
    // A flag overrides the file, and so does its variable.
    let mut command = egov(&file);
    command.args(["serve", "--roles", "notary", "--drain-seconds", "1"]);
    let (said, _) = serve_and_stop(command);
    assert_eq!(listening(&said), ["notary"], "{said:?}");
    assert!(said.iter().any(|line| line.contains("at most 1 s")), "{said:?}");
    let mut command = egov(&file);
    command.arg("serve").env("EGOV_ROLES", "individuals,notary");
    let (said, _) = serve_and_stop(command);
    assert_eq!(listening(&said), ["individuals", "notary"], "{said:?}");
}

#[test]
fn the_example_of_the_docs_loads() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")).unwrap();
    let example = docs.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("egov.toml");
    std::fs::write(&file, example).unwrap();
    let output = egov(&file).args(["iin", "check", "850715300122"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
