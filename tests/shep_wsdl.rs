//! egov's SHEP WSDLs (`crates/shep/wsdl/`) and payload schema
//! (`egov_shep::payload::payload_xsd`) are loaded by a real SOAP library,
//! Python's zeep, which builds every operation's request from them
//! (`tests/python/shep_wsdl_check.py`). Each request must be well-formed, its
//! body element the operation's qualified wrapper with unqualified
//! descendants; and the requests to egov's endpoints must be read by
//! `egov_shep::wire::read_request`, their payloads by `egov_shep::payload`:
//! a client generated from the WSDLs is understood.
//!
//! It needs `python3` with `zeep` (`tests/python/requirements.txt`), which the
//! test command `tests/run.sh` installs. Without it the test fails, saying how
//! to install it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::FixedOffset;
use egov_proto::v1 as pb;
use egov_shep::payload;
use egov_shep::wire::{self, ASYNC_CLIENT_TYPES, ASYNC_TYPES, Limits, Operation, SOAP_ENV, SYNC_TYPES};

const PYTHON: &str = "python3";

/// The payload types of the shipped services.
const PAYLOAD_TYPES: &[&str] = &[
    "PersonQuery",
    "PersonAnswer",
    "PowerOfAttorneyQuery",
    "PowerOfAttorneyAnswer",
    "ApplicationDelivery",
    "ApplicationProgress",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Built {
    wsdl: String,
    operation: String,
    case: String,
    request: String,
}

/// Runs the zeep script and returns the requests it built.
fn zeep_requests(temp: &Path) -> Vec<Built> {
    let probe = Command::new(PYTHON).args(["-c", "import zeep"]).output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "{PYTHON} cannot import zeep ({}); install it with `{PYTHON} -m pip install -r tests/python/requirements.txt`",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("{PYTHON} cannot be run ({error}); the SHEP WSDL test needs it"),
    }
    let xsd = temp.join("payload.xsd");
    std::fs::write(&xsd, payload::payload_xsd(PAYLOAD_TYPES).unwrap()).unwrap();
    let output = Command::new(PYTHON)
        .arg(repo_root().join("tests/python/shep_wsdl_check.py"))
        .arg("--wsdl-dir")
        .arg(repo_root().join("crates/shep/wsdl"))
        .arg("--payload-xsd")
        .arg(&xsd)
        .output()
        .unwrap();
    assert!(output.status.success(), "the zeep script failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |name: &str| value[name].as_str().unwrap().to_owned();
            Built { wsdl: field("wsdl"), operation: field("operation"), case: field("case"), request: field("request") }
        })
        .collect()
}

/// The namespace of an operation's wrapper element, by WSDL.
fn wrapper_namespace(wsdl: &str, operation: &str) -> &'static str {
    match (wsdl, operation) {
        ("SyncChannel.wsdl", _) => SYNC_TYPES,
        ("AsyncChannelClient.wsdl", "changeMassageStatusNotification") => ASYNC_CLIENT_TYPES,
        _ => ASYNC_TYPES,
    }
}

fn astana() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600).unwrap()
}

#[test]
fn a_client_generated_by_zeep_from_the_wsdls_is_understood() {
    let temp = tempfile::tempdir().unwrap();
    let built = zeep_requests(temp.path());

    // Every operation of every WSDL was built.
    let mut operations: Vec<(&str, &str)> = built.iter().map(|b| (b.wsdl.as_str(), b.operation.as_str())).collect();
    operations.sort();
    operations.dedup();
    assert_eq!(
        operations,
        [
            ("AsyncChannel.wsdl", "getMessageStatus"),
            ("AsyncChannel.wsdl", "getMessages"),
            ("AsyncChannel.wsdl", "sendDeliveryNotification"),
            ("AsyncChannel.wsdl", "sendMessage"),
            ("AsyncChannelClient.wsdl", "changeMassageStatusNotification"),
            ("AsyncChannelClient.wsdl", "sendMessage"),
            ("SyncChannel.wsdl", "SendMessage"),
        ]
    );

    let mut read = 0;
    for request in &built {
        let what = format!("{} {} ({})", request.wsdl, request.operation, request.case);
        let document = roxmltree::Document::parse(&request.request)
            .unwrap_or_else(|e| panic!("{what}: not well-formed: {e}\n{}", request.request));
        let envelope = document.root_element();
        assert!(envelope.has_tag_name((SOAP_ENV, "Envelope")), "{what}");
        let body = envelope.children().find(|n| n.has_tag_name((SOAP_ENV, "Body"))).unwrap();
        let wrapper = body.children().find(|n| n.is_element()).unwrap();
        let namespace = wrapper_namespace(&request.wsdl, &request.operation);
        assert!(
            wrapper.has_tag_name((namespace, request.operation.as_str())),
            "{what}: body holds {:?}",
            wrapper.tag_name()
        );
        for descendant in wrapper.descendants().filter(|n| n.is_element() && *n != wrapper) {
            assert_eq!(
                descendant.tag_name().namespace(),
                None,
                "{what}: <{}> is qualified",
                descendant.tag_name().name()
            );
        }

        if request.operation == "changeMassageStatusNotification" {
            continue; // egov calls it; it serves none.
        }
        let parsed = wire::read_request(request.request.as_bytes(), &Limits::default(), astana())
            .unwrap_or_else(|e| panic!("{what}: read_request refused it: {e}\n{}", request.request));
        assert_eq!(parsed.operation.name().element(), request.operation, "{what}");
        read += 1;
        match &parsed.operation {
            Operation::SyncSendMessage { info, data } => {
                assert_eq!(info.service_id, "GBL_FL");
                assert_eq!(info.session_id.as_deref(), Some("0b7e4c1a-5f6d-4e2b-8c9a-1d2e3f4a5b6c"));
                assert_eq!(info.properties.len(), 1);
                assert!(data.as_string, "{what}: the payload came as an escaped string");
                let query = payload::from_xml(&data.xml, &payload::message_type("PersonQuery").unwrap()).unwrap();
                let query: pb::PersonQuery = query.transcode_to().unwrap();
                assert_eq!(query.iin, "900101300123");
            }
            Operation::SendMessage { info, data } if request.wsdl == "AsyncChannelClient.wsdl" => {
                assert_eq!(info.session_id.as_deref(), Some("{0B7E4C1A-5F6D-4E2B-8C9A-1D2E3F4A5B6C}"));
                assert!(data.as_string);
            }
            Operation::SendMessage { info, data } => {
                assert!(!data.as_string, "{what}: the payload came as a child element");
                // Sent without an offset: read in Astana time.
                assert!(!info.message_date.had_offset);
                assert_eq!(info.message_date.at.to_rfc3339(), "2026-06-02T10:00:05+05:00");
                match info.message_type {
                    wire::MessageType::Request => {
                        let descriptor = payload::message_type("ApplicationDelivery").unwrap();
                        let mut carried = Vec::new();
                        let delivery = payload::from_xml_with(&data.xml, &descriptor, &mut |field, node| {
                            carried.push(payload::read_carried(field, node)?);
                            Ok(None)
                        })
                        .unwrap();
                        let delivery: pb::ApplicationDelivery = delivery.transcode_to().unwrap();
                        assert_eq!(delivery.application_id, "A-2026-0001");
                        let representative = delivery.representative.unwrap();
                        assert_eq!(representative.kind, pb::PowerOfAttorneyKind::Notarised as i32);
                        let [submission] = &carried[..] else { panic!("{carried:?}") };
                        assert_eq!(submission.signed_by.as_deref(), Some("operator-1"));
                        assert_eq!(submission.envelope, None);
                        let body: pb::ApplicationSubmission = submission.body.as_ref().unwrap().transcode_to().unwrap();
                        assert_eq!(body.documents.len(), 2);
                        assert_eq!(body.documents[0].content, b"%PDF-1.7 scan");
                        assert_eq!(body.documents[0].title, "Заявление");
                        assert_eq!(body.documents[1].pages, 2);
                    }
                    wire::MessageType::Notification => {
                        assert_eq!(info.correlation_id.as_deref(), Some("A-2026-0001"));
                        let progress =
                            payload::from_xml(&data.xml, &payload::message_type("ApplicationProgress").unwrap())
                                .unwrap();
                        let progress: pb::ApplicationProgress = progress.transcode_to().unwrap();
                        assert_eq!(progress.path[0].started_time_ms, 1_780_000_000_000);
                        assert_eq!(progress.sequence, 1);
                    }
                    other => panic!("{what}: {other:?}"),
                }
            }
            Operation::GetMessages(get) => {
                assert_eq!((get.service_id.as_str(), get.amount), ("RSHEP_APPLICATION", Some(5)))
            }
            Operation::GetMessageStatus(status) => assert_eq!(status.message_id, "m-1"),
            Operation::SendDeliveryNotification(notification) => {
                assert_eq!(notification.receive_status, wire::ReceiveStatus::NotAccepted);
                assert!(notification.resend);
                let error = notification.error.as_ref().unwrap();
                assert_eq!(error.sub_error.as_ref().unwrap().error_code, "X");
            }
        }
    }
    assert_eq!(read, 7);
}
