//! `egov bench --quick` keeps running: it exits 0 and prints every figure's
//! JSON line with its baseline and ratio (the values are not checked: they
//! depend on the machine).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

#[test]
fn the_quick_bench_prints_every_figure_with_its_baseline() {
    let output = Command::new(EGOV).args(["bench", "--quick"]).env_remove("RUST_LOG").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "egov bench --quick failed:\n{stdout}\n{stderr}");

    let figures: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    for figure in &figures {
        for field in ["figure", "unit", "value", "baseline", "baseline_value", "ratio"] {
            assert!(figure.get(field).is_some(), "{field} missing in {figure}");
        }
        assert!(figure["value"].is_number() && figure["ratio"].is_number(), "{figure}");
        assert!(figure["baseline_value"].is_number() && figure["baseline"].is_string(), "{figure}");
    }
    let named = |name: &str| figures.iter().filter(|f| f["figure"] == name).collect::<Vec<_>>();

    // 1. Bare gRPC and 2. the gateway's cost, at each concurrency.
    for name in ["echo", "lookup_direct", "lookup_via_gateway", "lookup_via_shep"] {
        let levels: BTreeSet<u64> = named(name).iter().map(|f| f["concurrency"].as_u64().unwrap()).collect();
        assert_eq!(levels, BTreeSet::from([1, 16, 64]), "{name}: concurrencies");
        for figure in named(name) {
            for field in ["p50_ms", "p99_ms", "requests", "errors"] {
                assert!(figure.get(field).is_some(), "{field} missing in {figure}");
            }
            assert_eq!(figure["errors"], 0, "{figure}");
        }
    }
    for figure in named("lookup_direct") {
        assert!(figure["baseline"].as_str().unwrap().starts_with("echo"), "{figure}");
        assert!(figure.get("ratio_to_echo").is_some(), "{figure}");
    }
    for figure in named("lookup_via_shep") {
        assert!(figure["baseline"].as_str().unwrap().starts_with("lookup_via_gateway"), "{figure}");
    }
    for figure in named("lookup_via_gateway") {
        assert!(figure["baseline"].as_str().unwrap().starts_with("lookup_direct"), "{figure}");
        assert!(figure.get("ratio_to_echo").is_some(), "{figure}");
    }

    // 3. Whole applications, per RPC kind, memory and store size.
    let applications = named("applications");
    assert_eq!(applications.len(), 1, "{stdout}");
    let applications = applications[0];
    for field in ["rpcs_per_application", "rpcs_per_second", "rpc_ratio_to_echo", "passed", "failed"] {
        assert!(applications.get(field).is_some(), "{field} missing in {applications}");
    }
    assert!(applications["baseline"].as_str().unwrap().starts_with("echo"), "{applications}");
    let kinds: BTreeSet<&str> = named("rpc").iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for kind in [
        "/egov.v1.WorkstationService/OpenForm",
        "/egov.v1.GatewayService/SendSync",
        "/egov.v1.GatewayService/SendAsync",
        "/egov.v1.InboxService/Deliver",
        "/egov.v1.IndividualsService/LookupPerson",
        "/egov.v1.RegionalGatewayService/PerformStaffAction",
    ] {
        assert!(kinds.contains(kind), "no rpc figure for {kind}: {kinds:?}");
    }
    for figure in named("rpc") {
        for field in ["p50_ms", "p99_ms", "calls", "per_application"] {
            assert!(figure.get(field).is_some(), "{field} missing in {figure}");
        }
    }
    // Paragraph 9.4 at several windows: each client's applicant takes the ticket at a centre of its own, the
    // operator calls it and serves it; no refusal is part of the route (process 9 once per application served).
    let rpc = |kind: &str| named("rpc").into_iter().find(|f| f["kind"] == kind).unwrap_or_else(|| panic!("{kind}"));
    let (call, issue) = (rpc("/egov.v1.WorkstationService/CallNext"), rpc("/egov.v1.WorkstationService/IssueResult"));
    assert_eq!((call["errors"].as_u64(), issue["errors"].as_u64()), (Some(0), Some(0)), "{call}\n{issue}");
    assert_eq!(call["calls"], issue["calls"], "one call of the next ticket per hand-over: {call}\n{issue}");
    assert!(issue["per_application"].as_f64().unwrap() <= 1.0, "{issue}");
    for name in ["peak_memory", "store_bytes_per_application", "startup"] {
        assert_eq!(named(name).len(), 1, "{name}: {stdout}");
    }
    assert!(named("startup")[0].get("stored_applications").is_some());

    // Whole applications over SOAP (external State Corporation and ARM), against the all-gRPC ones.
    let via_shep = named("applications_via_shep");
    assert_eq!(via_shep.len(), 1, "{stdout}");
    let via_shep = via_shep[0];
    assert!(via_shep["baseline"].as_str().unwrap().starts_with("applications (all gRPC)"), "{via_shep}");
    assert_eq!(via_shep["baseline_value"], applications["value"], "{via_shep}");
    assert_eq!(via_shep["failed"], 0, "every application over SOAP ends with its result: {via_shep}");
    assert!(via_shep["passed"].as_u64().unwrap() > 0, "{via_shep}");
    assert_eq!(via_shep["pushes"], via_shep["applications"], "each application pushed to the ARM once: {via_shep}");
    // A look-up, the application, at least one poll and the ARM's three reports each.
    assert!(via_shep["soap_requests_per_application"].as_f64().unwrap() >= 6.0, "{via_shep}");

    // Flushed commits per application, and the floor computed from the per-operation costs.
    let commits = named("commits_per_application");
    assert_eq!(commits.len(), 1, "{stdout}");
    for field in ["unflushed_per_application", "syncs_per_application", "groups", "commits_per_group"] {
        assert!(commits[0].get(field).is_some(), "{field} missing in {}", commits[0]);
    }
    let floor = named("floor");
    assert_eq!(floor.len(), 1, "{stdout}");
    for field in ["sign_us", "verify_us", "rpc_p50_ms", "commit_ms", "cores", "assumption"] {
        assert!(floor[0].get(field).is_some(), "{field} missing in {}", floor[0]);
    }
    assert!(applications.get("share_of_floor").is_some(), "{applications}");

    // The verifiable log: a proof's bytes are exact (at most ⌈log₂ 10⁴⌉ = 14 hashes with --quick), the
    // checkpoints' cost is the same applications with and without them.
    let proof = named("inclusion_proof");
    assert_eq!(proof.len(), 1, "{stdout}");
    assert_eq!(
        (proof[0]["entries"].as_u64(), proof[0]["value"].as_u64()),
        (Some(10_000), Some(14 * 32)),
        "{}",
        proof[0]
    );
    for field in ["verify_us", "consistency_proof_bytes", "consistency_verify_us", "append_us_per_entry"] {
        assert!(proof[0][field].as_f64().is_some_and(|value| value > 0.0), "{field} in {}", proof[0]);
    }
    let checkpoints = named("checkpoints");
    assert_eq!(checkpoints.len(), 1, "{stdout}");
    assert!(checkpoints[0]["value"].as_f64().unwrap() > 0.0, "{}", checkpoints[0]);
    assert!(checkpoints[0]["baseline_value"].as_f64().unwrap() > 0.0, "{}", checkpoints[0]);

    // The target lines: met or missed, the bench exits 0.
    let targets = named("target");
    assert!(!targets.is_empty(), "no target: {stdout}");
    for target in &targets {
        assert!(target["met"].is_boolean() && target["name"].is_string(), "{target}");
        assert!(target["target"].is_number(), "{target}");
    }
    assert!(stderr.contains("target  applications: "), "{stderr}");

    // The table follows on stderr.
    assert!(stderr.contains("baseline (same run)"), "{stderr}");
}
