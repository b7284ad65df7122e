//! Traces: `egov serve --otlp ENDPOINT` exports every call's span over OTLP,
//! and one application's spans across the five participants form one trace,
//! linked by the W3C `traceparent` each call carries. The spans are received
//! here by an in-process OTLP collector (a tonic server of the OTLP trace service).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use sha2::Digest as _;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

fn attribute<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| match &v.value {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    })
}

fn serve(temp: &Path, topology: &egov_runtime::Topology, otlp: &str) -> common::Served {
    // Valid since before the scenarios' simulated dates.
    let valid_from = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap().to_utc();
    egov_runtime::KeyDir::new(temp.join("keys")).init(egov_runtime::ids::DEFAULT_MEMBERS, valid_from).unwrap();
    std::fs::write(temp.join("topology.toml"), toml::to_string(topology).unwrap()).unwrap();
    let mut command = std::process::Command::new(EGOV);
    command
        .arg("--topology")
        .arg(temp.join("topology.toml"))
        .args(["serve", "--console", "off", "--shep", "off", "--simulated-time", "--otlp", otlp, "--keys"])
        .arg(temp.join("keys"))
        .arg("--data")
        .arg(temp.join("data"))
        .arg("--fixtures")
        .arg(common::fixtures_dir());
    common::Served::start(command)
}

fn replay(temp: &Path, scenario: &str) {
    let replayed = std::process::Command::new(EGOV)
        .arg("replay")
        .arg("--target")
        .arg(temp.join("topology.toml"))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .arg(common::fixtures_dir().join("applications").join(scenario))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

#[test]
fn one_applications_spans_form_one_trace_across_the_five_participants() {
    let collector = common::collector();
    let endpoint = collector.endpoint.clone();
    let temp = tempfile::tempdir().unwrap();
    let topology = common::free_topology();
    let served = serve(temp.path(), &topology, &endpoint);
    // A represented applicant with a notarised power of attorney: the route
    // reaches the notary as well as the "Individuals" database.
    replay(temp.path(), "approval-notarised-representative.json");

    // A third-party client's own trace context is continued, not replaced.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", topology.workstation))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut workstation = egov_proto::workstation_service_client::WorkstationServiceClient::new(channel);
        let mut request =
            tonic::Request::new(egov_proto::GetApplicationRequest { application_id: "no-such-application".to_owned() });
        request.metadata_mut().insert("traceparent", format!("00-{caller_trace}-{caller_span}-01").parse().unwrap());
        let refused = workstation.get_application(request).await.unwrap_err();
        assert_eq!(egov_runtime::reason_of(&refused), Some("workstation.unknown_application"));
    });
    // Its connection closes with its runtime, not holding up the server's drain.
    drop(runtime);

    // The exporter sends what it holds when the server stops.
    let (exited_0, rest) = served.terminate();
    assert!(exited_0, "{rest:?}");
    let spans = collector.spans();
    assert!(!spans.is_empty(), "no span was exported");
    assert!(spans.iter().all(|span| attribute(span, "service.name") == Some("egov")), "service.name");

    // Every span that names the application is in the trace its correlation id gives.
    let correlation_ids: BTreeSet<&str> =
        spans.iter().filter_map(|span| attribute(span, "correlation_id")).filter(|c| !c.is_empty()).collect();
    let application = correlation_ids
        .iter()
        .copied()
        .find(|c| c.contains("approval-notarised-representative"))
        .unwrap_or_else(|| panic!("no span names the application: {correlation_ids:?}"));
    let digest = sha2::Sha256::digest(application.as_bytes());
    let (trace_id, root_id) = (digest[..16].to_vec(), digest[16..24].to_vec());
    let named: Vec<&Span> =
        spans.iter().filter(|span| attribute(span, "correlation_id") == Some(application)).collect();
    assert!(named.iter().all(|span| span.trace_id == trace_id), "a span of the application is in another trace");

    // That trace holds a served call at each of the five participants.
    let trace: Vec<&Span> = spans.iter().filter(|span| span.trace_id == trace_id).collect();
    let participants: BTreeSet<&str> = trace.iter().filter_map(|span| attribute(span, "participant")).collect();
    assert_eq!(
        participants,
        BTreeSet::from(["gateway", "individuals", "notary", "regional", "workstation"]),
        "{:#?}",
        trace.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // Each span's parent is the application's root or another span of the trace.
    let ids: BTreeMap<&[u8], &Span> = trace.iter().map(|span| (span.span_id.as_slice(), *span)).collect();
    for span in &trace {
        assert!(
            span.parent_span_id == root_id || ids.contains_key(span.parent_span_id.as_slice()),
            "span {} has a parent outside the trace",
            span.name
        );
    }
    // The calls the participants make each other carry the caller's span: the
    // look-ups the gateway routes are children of its own span, at another participant.
    let lookups: Vec<&&Span> = trace
        .iter()
        .filter(|span| matches!(attribute(span, "participant"), Some("individuals") | Some("notary")))
        .collect();
    assert!(!lookups.is_empty());
    for lookup in lookups {
        let parent =
            ids.get(lookup.parent_span_id.as_slice()).unwrap_or_else(|| panic!("{} has no parent", lookup.name));
        assert_eq!(attribute(parent, "participant"), Some("gateway"), "{}'s parent: {}", lookup.name, parent.name);
    }
    // The asynchronous hops (outbox deliveries) are in the trace too, each the parent of the call it made.
    let deliveries: Vec<&&Span> = trace.iter().filter(|span| span.name == "outbox delivery").collect();
    assert!(!deliveries.is_empty(), "no outbox delivery in the trace");
    assert!(
        deliveries.iter().any(|delivery| trace.iter().any(|span| span.parent_span_id == delivery.span_id)),
        "no call is the child of a delivery"
    );

    // The third party's call is the child of its span, in its trace, and refused.
    let caller = spans
        .iter()
        .find(|span| hex::encode(&span.trace_id) == caller_trace)
        .unwrap_or_else(|| panic!("the caller's trace was not continued"));
    assert_eq!(hex::encode(&caller.parent_span_id), caller_span);
    assert_eq!(caller.name, "egov.v1.WorkstationService/GetApplication");
    assert_eq!(attribute(caller, "reason"), Some("workstation.unknown_application"));
    assert_eq!(caller.status.as_ref().map(|status| status.code), Some(2), "status ERROR");
}

#[test]
fn a_dead_collector_costs_the_route_nothing() {
    // Nothing listens there: the exporter's sends fail and the spans are dropped.
    let port = common::free_port();
    let temp = tempfile::tempdir().unwrap();
    let topology = common::free_topology();
    let served = serve(temp.path(), &topology, &format!("http://127.0.0.1:{port}"));
    replay(temp.path(), "approval-in-person.json");
    let (exited_0, rest) = served.terminate();
    assert!(exited_0, "{rest:?}");
}
