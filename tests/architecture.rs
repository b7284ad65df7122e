//! The dependency rules of docs/ARCHITECTURE.md, checked over `cargo metadata`:
//! the pure crates reach no network, runtime or database crate; no participant
//! depends on another; the store and the runtime depend on no participant.
//!
//! Only normal dependencies count (not dev- or build-dependencies), followed
//! transitively through the workspace's resolved graph. That graph unifies
//! features across the workspace, so it errs on the side of refusing.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Command;

/// The crates that never touch the network, the disk or the clock.
const PURE: [&str; 3] = ["egov-regulation", "egov-envelope", "egov-messages"];
/// What a pure crate must not reach.
const RUNTIME: [&str; 5] = ["tokio", "tonic", "sled", "hyper", "h2"];
/// The participants: they talk to each other only over gRPC.
const PARTICIPANTS: [&str; 5] = ["egov-workstation", "egov-gateway", "egov-regional", "egov-registries", "egov-shep"];
/// What every participant builds on.
const SHARED: [&str; 2] = ["egov-store", "egov-runtime"];

/// The resolved graph of normal dependencies, by package name.
struct Graph {
    /// Each package id's name.
    names: BTreeMap<String, String>,
    /// Each package id's normal dependencies (ids).
    normal: BTreeMap<String, Vec<String>>,
    /// The workspace members' ids by name.
    members: BTreeMap<String, String>,
}

fn graph() -> Graph {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo metadata failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let names: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| (package["id"].as_str().unwrap().to_owned(), package["name"].as_str().unwrap().to_owned()))
        .collect();
    let members = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .map(|id| (names[&id].clone(), id))
        .collect();
    let normal = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                // A dependency kind of null is a normal dependency ("dev" and "build" are the others).
                .filter(|dep| dep["dep_kinds"].as_array().unwrap().iter().any(|kind| kind["kind"].is_null()))
                .map(|dep| dep["pkg"].as_str().unwrap().to_owned())
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph { names, normal, members }
}

impl Graph {
    /// The shortest path of normal dependencies from the workspace member
    /// `from` to each package named in `forbidden` that it reaches, as
    /// `a → b → c`.
    fn forbidden_paths(&self, from: &str, forbidden: &[&str]) -> Vec<String> {
        let start = self.members.get(from).unwrap_or_else(|| panic!("{from} is not a workspace member"));
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start.as_str()]);
        let mut paths = Vec::new();
        while let Some(id) = queue.pop_front() {
            for dep in &self.normal[id] {
                if dep == start || parent.contains_key(dep.as_str()) {
                    continue;
                }
                parent.insert(dep, id);
                if forbidden.contains(&self.names[dep].as_str()) {
                    let mut path = vec![self.names[dep].as_str()];
                    let mut at = dep.as_str();
                    while let Some(&up) = parent.get(at) {
                        path.push(self.names[up].as_str());
                        at = up;
                    }
                    path.reverse();
                    paths.push(path.join(" → "));
                }
                queue.push_back(dep);
            }
        }
        paths
    }
}

/// Fails, naming every offending path, if any of `crates` reaches any of
/// `forbidden` through normal dependencies.
fn check(graph: &Graph, crates: &[&str], forbidden: &[&str], rule: &str) {
    let offending: Vec<String> = crates
        .iter()
        .flat_map(|name| {
            let others: Vec<&str> = forbidden.iter().copied().filter(|other| other != name).collect();
            graph.forbidden_paths(name, &others)
        })
        .collect();
    assert!(offending.is_empty(), "{rule}, yet:\n  {}", offending.join("\n  "));
}

#[test]
fn the_pure_crates_reach_no_network_runtime_or_database() {
    check(
        &graph(),
        &PURE,
        &RUNTIME,
        "egov-regulation, egov-envelope and egov-messages must not reach tokio, tonic, sled, hyper or h2 \
         through normal dependencies",
    );
}

#[test]
fn no_participant_depends_on_another() {
    check(&graph(), &PARTICIPANTS, &PARTICIPANTS, "a participant must not depend on another participant");
}

#[test]
fn the_store_and_the_runtime_depend_on_no_participant() {
    check(&graph(), &SHARED, &PARTICIPANTS, "egov-store and egov-runtime must not depend on a participant");
}

#[test]
fn the_console_reaches_the_participants_only_over_grpc() {
    let mut forbidden = PARTICIPANTS.to_vec();
    forbidden.push("egov-stack");
    check(
        &graph(),
        &["egov-console"],
        &forbidden,
        "egov-console talks to the participants through egov-client and their gRPC services, never by linking them",
    );
}
