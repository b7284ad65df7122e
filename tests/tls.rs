//! mTLS (docs/tls.md): an application through the whole route with every
//! hop over TLS with client certificates, and the calls whose certificate
//! does not do: each gets a clear error and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use egov_client::OperatorClient;
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::inbox_service_client::InboxServiceClient;
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{DeliverRequest, EnvelopeHeader, GetApplicationRequest, GetMessagesRequest};
use egov_runtime::tls::{TlsDir, connect, member_of_pem};
use egov_runtime::{Clock, KeyDir, SystemClock, Topology, ids, reason_of};
use prost::Message as _;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const DAY_MS: i64 = 86_400_000;
const IIN: &str = "850715300122";

fn egov() -> Command {
    let mut command = Command::new(EGOV);
    for variable in ["EGOV_CONFIG", "EGOV_TLS", "EGOV_TLS_DIR", "EGOV_TLS_AS", "EGOV_ROLES", "EGOV_TOPOLOGY"] {
        command.env_remove(variable);
    }
    command
}

fn members() -> Vec<&'static str> {
    ids::DEFAULT_MEMBERS.iter().map(|(id, ..)| *id).collect()
}

/// Certificates for every member, valid from a day ago for a year.
fn certificates(keys: &KeyDir) -> TlsDir {
    let tls = TlsDir::of(keys);
    let now = SystemClock.now_ms();
    tls.init(&members(), &[], now - DAY_MS, now + 365 * DAY_MS).unwrap();
    tls
}

#[test]
fn keys_init_tls_makes_a_ca_and_a_certificate_naming_each_member() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("keys");
    let output =
        egov().args(["--tls", "keys", "init", "--tls-host", "egov.example", "--dir"]).arg(&dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.join("tls/ca.pem").is_file() && dir.join("tls/ca.key").is_file());
    for member in members() {
        let pem = std::fs::read_to_string(dir.join(format!("tls/{member}.pem"))).unwrap();
        assert_eq!(member_of_pem(&pem), Ok(member.to_owned()));
        assert!(dir.join(format!("tls/{member}.key")).is_file(), "{member}'s key");
    }
    // Without --tls: keys only; with it later, the certificates are added and the keys stay.
    let plain = temp.path().join("plain");
    assert!(egov().args(["keys", "init", "--dir"]).arg(&plain).status().unwrap().success());
    assert!(plain.join("trust.toml").is_file() && !plain.join("tls").exists());
    let trust = std::fs::read_to_string(plain.join("trust.toml")).unwrap();
    assert!(egov().args(["--tls", "keys", "init", "--dir"]).arg(&plain).status().unwrap().success());
    assert_eq!(std::fs::read_to_string(plain.join("trust.toml")).unwrap(), trust);
    assert_eq!(member_of_pem(&std::fs::read_to_string(plain.join("tls/head-1.pem")).unwrap()), Ok("head-1".to_owned()));
    // A member added later gets a certificate of the same CA.
    let added =
        egov().args(["keys", "add", "operator-3", "--role", "sc-operator", "--dir"]).arg(&plain).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let pem = std::fs::read_to_string(plain.join("tls/operator-3.pem")).unwrap();
    assert_eq!(member_of_pem(&pem), Ok("operator-3".to_owned()));
    // Once both are there, nothing is overwritten.
    let again = egov().args(["--tls", "keys", "init", "--dir"]).arg(&plain).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// `egov serve --tls` as a child on free ports, with keys valid since 2020
/// (the scenarios are dated in the past) and certificates valid now.
fn serve_tls(temp: &Path, topology: &Topology) -> common::Served {
    let keys = KeyDir::new(temp.join("keys"));
    let valid_from = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap().to_utc();
    keys.init(ids::DEFAULT_MEMBERS, valid_from).unwrap();
    certificates(&keys);
    std::fs::write(temp.join("topology.toml"), toml::to_string(topology).unwrap()).unwrap();
    let mut command = egov();
    command
        .args(["--tls", "--topology"])
        .arg(temp.join("topology.toml"))
        .args(["serve", "--console", "off", "--shep", "off", "--simulated-time", "--keys"])
        .arg(temp.join("keys"))
        .arg("--data")
        .arg(temp.join("data"))
        .arg("--fixtures")
        .arg(common::fixtures_dir());
    common::Served::start(command)
}

#[test]
fn an_application_replays_through_the_whole_route_over_mtls() {
    let temp = tempfile::tempdir().unwrap();
    let topology = common::free_topology();
    let served = serve_tls(temp.path(), &topology);
    for role in ["workstation", "gateway", "individuals", "notary", "regional"] {
        assert!(
            served.said.iter().any(|line| line.starts_with(&format!("listening {role} ")) && line.ends_with("(mTLS)")),
            "{:?}",
            served.said
        );
    }
    let topology_file = temp.path().join("topology.toml");
    let scenario = common::fixtures_dir().join("applications/approval-in-person.json");
    // The operator's and the staff's calls each present their member's certificate;
    // the workstation, the gateway and the ARM call each other with theirs.
    let replayed = egov()
        .arg("--tls")
        .arg("replay")
        .arg("--target")
        .arg(&topology_file)
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .arg(&scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");

    // Plaintext to a TLS port: refused, with what to do.
    let plain = egov().arg("--topology").arg(&topology_file).args(["status", "approval-in-person"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success());
    assert!(stderr.contains("hint: the server closed the connection: if it serves mTLS"), "{stderr}");
    assert!(stderr.contains("call it with --tls"), "{stderr}");

    // The same over TLS reaches the workstation (which knows no application of that id).
    let over_tls = egov()
        .args(["--tls", "--tls-dir"])
        .arg(temp.path().join("keys/tls"))
        .arg("--topology")
        .arg(&topology_file)
        .args(["status", "no-such-application"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&over_tls.stderr);
    assert!(stderr.contains("workstation.unknown_application"), "{stderr}");

    let (exited_0, rest) = served.terminate();
    assert!(exited_0, "{rest:?}");
}

/// The buf CLI, which tests/install.sh installs from the npm registry.
fn buf() -> Command {
    let buf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-tools/node_modules/.bin/buf");
    assert!(buf.exists(), "the buf CLI is missing: run tests/install.sh (it installs @bufbuild/buf from npm)");
    let mut command = Command::new(buf);
    // Offline: nothing to fetch, the schema comes by reflection.
    command.env("BUF_CACHE_DIR", std::env::temp_dir().join("egov-buf-cache"));
    command
}

/// `buf curl` over gRPC to `url` with `data`, presenting `member`'s certificate, the
/// schema by reflection; with no member, no certificate, and the schema from `proto/`
/// (reflection, a call like any other, is refused too).
fn buf_curl(tls: &TlsDir, member: Option<&str>, url: &str, data: &str) -> std::process::Output {
    let mut command = buf();
    command.args(["curl", "--protocol", "grpc", "--cacert"]).arg(tls.ca_path());
    match member {
        Some(member) => {
            let dir = tls.ca_path().parent().unwrap().to_owned();
            command.arg("--cert").arg(dir.join(format!("{member}.pem")));
            command.arg("--key").arg(dir.join(format!("{member}.key")));
        }
        None => {
            command.arg("--schema").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        }
    }
    command.args(["--data", data, url]).output().unwrap()
}

#[test]
fn buf_curl_calls_an_mtls_port_with_a_members_certificate_as_the_docs_show() {
    let temp = tempfile::tempdir().unwrap();
    let topology = common::free_topology();
    let served = serve_tls(temp.path(), &topology);
    let tls = TlsDir::new(temp.path().join("keys/tls"));
    let workstation = format!("https://{}", topology.workstation);
    // The health service, with the workstation's certificate.
    let health = buf_curl(&tls, Some("sc-workstation"), &format!("{workstation}/grpc.health.v1.Health/Check"), "{}");
    let said = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success(), "{said}\n{}", String::from_utf8_lossy(&health.stderr));
    assert!(said.contains("SERVING"), "{said}");
    // The docs' call: a refusal, with its reason code in the message.
    let url = format!("{workstation}/egov.v1.WorkstationService/GetApplication");
    let refused = buf_curl(&tls, Some("sc-workstation"), &url, r#"{"application_id": "app-1"}"#);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("workstation.unknown_application"), "{said}");
    // Without a client certificate: refused before any service runs.
    let anonymous = buf_curl(&tls, None, &url, r#"{"application_id": "app-1"}"#);
    let said = format!("{}{}", String::from_utf8_lossy(&anonymous.stdout), String::from_utf8_lossy(&anonymous.stderr));
    assert!(!anonymous.status.success());
    assert!(said.contains("tls.no_certificate"), "{said}");
    let (exited_0, rest) = served.terminate();
    assert!(exited_0, "{rest:?}");
}

/// A directory with the exchange's CA and `member`'s certificate and key given as PEM.
fn identity_dir(at: &Path, ca: &TlsDir, member: &str, cert: &str, key: &str) -> TlsDir {
    std::fs::create_dir_all(at).unwrap();
    std::fs::copy(ca.ca_path(), at.join("ca.pem")).unwrap();
    std::fs::write(at.join(format!("{member}.pem")), cert).unwrap();
    std::fs::write(at.join(format!("{member}.key")), key).unwrap();
    TlsDir::new(at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_certificate_does_not_do_is_refused_with_a_reason_code_and_changes_nothing() {
    let mut tls = None;
    let harness = common::Harness::start_with(|config| {
        let dir = certificates(&config.keys);
        tls = Some(dir.clone());
        config.tls = Some(dir);
    })
    .await;
    let tls = tls.unwrap();
    let workstation = harness.topology().workstation.clone();
    let definition = egov_regulation::Definition::default_definition();
    // Opens a form for `application_id` as operator-1, over `channel`.
    let open = |channel: egov_runtime::GrpcChannel, application_id: &'static str| {
        let signer = harness.signer("operator-1");
        let code = definition.service.code.clone();
        async move {
            let mut operator = OperatorClient::new(channel, signer, Arc::new(SystemClock));
            match operator.login("operator-1", "operator-1-password").await {
                Ok(_) => operator.open_form(application_id, &code, IIN, None).await.map(|_| ()),
                Err(status) => Err(status),
            }
        }
    };
    let exists = async |application_id: &str| {
        let channel = connect(&workstation, Some(&tls), ids::SC_WORKSTATION).unwrap();
        let got = WorkstationServiceClient::new(channel)
            .get_application(GetApplicationRequest { application_id: application_id.to_owned() })
            .await;
        match got {
            Ok(_) => true,
            Err(status) => {
                assert_eq!(reason_of(&status), Some("workstation.unknown_application"), "{status:?}");
                false
            }
        }
    };

    // The operator's own certificate: the form opens.
    open(connect(&workstation, Some(&tls), "operator-1").unwrap(), "tls-own").await.unwrap();
    assert!(exists("tls-own").await);

    // Another member's certificate (the right CA) for operator-1's envelope.
    let refused = open(connect(&workstation, Some(&tls), "operator-2").unwrap(), "tls-other-member").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason_of(&refused), Some("tls.member_mismatch"), "{refused:?}");
    assert!(refused.message().contains("operator-2") && refused.message().contains("operator-1"), "{refused:?}");
    assert!(!exists("tls-other-member").await);

    // The gateway's certificate does not speak for the operator on an envelope it did not countersign.
    let refused = open(connect(&workstation, Some(&tls), ids::GATEWAY).unwrap(), "tls-gateway").await.unwrap_err();
    assert_eq!(reason_of(&refused), Some("tls.member_mismatch"), "{refused:?}");
    assert!(!exists("tls-gateway").await);

    // A certificate of another CA.
    let other = TlsDir::new(harness.temp.path().join("other-ca"));
    let now = SystemClock.now_ms();
    other.init(&["operator-1"], &[], now - DAY_MS, now + DAY_MS).unwrap();
    let cert = std::fs::read_to_string(other.cert_path("operator-1")).unwrap();
    let key = std::fs::read_to_string(other.key_path("operator-1")).unwrap();
    let wrong_ca = identity_dir(&harness.temp.path().join("wrong-ca"), &tls, "operator-1", &cert, &key);
    let refused =
        open(connect(&workstation, Some(&wrong_ca), "operator-1").unwrap(), "tls-wrong-ca").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason_of(&refused), Some("tls.unknown_issuer"), "{refused:?}");
    assert!(!exists("tls-wrong-ca").await);

    // An expired certificate of the right CA.
    let (cert, key) = tls.issued("operator-1", &[], now - 3 * DAY_MS, now - DAY_MS).unwrap();
    let expired = identity_dir(&harness.temp.path().join("expired"), &tls, "operator-1", &cert, &key);
    let refused = open(connect(&workstation, Some(&expired), "operator-1").unwrap(), "tls-expired").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(reason_of(&refused), Some("tls.certificate_expired"), "{refused:?}");
    assert!(refused.message().contains("expired"), "{refused:?}");
    assert!(!exists("tls-expired").await);

    // TLS without a client certificate.
    let ca = tonic::transport::Certificate::from_pem(std::fs::read(tls.ca_path()).unwrap());
    let anonymous = tonic::transport::Endpoint::from_shared(format!("https://{workstation}"))
        .unwrap()
        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(ca))
        .unwrap()
        .connect_lazy();
    let anonymous = tonic::service::interceptor::InterceptedService::new(
        egov_runtime::failover::Failover::new(vec![(workstation.clone(), anonymous)]),
        egov_runtime::trace::Propagate,
    );
    let refused = open(anonymous, "tls-anonymous").await.unwrap_err();
    assert_eq!(reason_of(&refused), Some("tls.no_certificate"), "{refused:?}");
    assert!(!exists("tls-anonymous").await);

    // Plaintext to the TLS port: the connection is refused before any call.
    let refused = open(Topology::channel(&workstation).unwrap(), "tls-plaintext").await.unwrap_err();
    assert_eq!(reason_of(&refused), None, "{refused:?}");
    assert!(egov_runtime::tls::hint(&refused.to_string(), false).is_some(), "{refused:?}");
    assert!(!exists("tls-plaintext").await);

    // Every participant still works: the whole route over mTLS in process.
    let plan = common::in_person(IIN);
    let application = drive_tls(&harness, &tls, "tls-route", &plan).await;
    assert_eq!(application.outcome, "permitted", "{application:?}");
    assert_eq!(common::path(&application).last(), Some(&"process-9"), "{application:?}");

    // A delivery the gateway countersigned, sent again to the workstation's inbox by
    // another member than the gateway: refused before its resend would be answered.
    let mut gateway =
        GatewayServiceClient::new(connect(&harness.topology().gateway, Some(&tls), ids::SC_WORKSTATION).unwrap());
    let logged = gateway
        .get_messages(GetMessagesRequest {
            correlation_id: "tls-route".to_owned(),
            recipient_id: String::new(),
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let delivery = logged
        .into_iter()
        .filter_map(|message| message.envelope)
        .find(|envelope| {
            envelope.signatures.len() == 2
                && EnvelopeHeader::decode(&envelope.header[..]).unwrap().service_id == "sc.application.progress.v1"
        })
        .expect("a countersigned delivery to the workstation");
    let deliver = async |member: &str| {
        let channel = connect(&workstation, Some(&tls), member).unwrap();
        InboxServiceClient::new(channel).deliver(DeliverRequest { envelope: Some(delivery.clone()) }).await
    };
    let refused = deliver("operator-1").await.unwrap_err();
    assert_eq!(reason_of(&refused), Some("tls.member_mismatch"), "{refused:?}");
    assert!(refused.message().contains("delivered by the gateway"), "{refused:?}");
    // Its own sender's certificate (the ARM's progress) does not do either: a hop behind the gateway is the gateway's.
    let sender = EnvelopeHeader::decode(&delivery.header[..]).unwrap().sender_id;
    assert_eq!(sender, ids::REGIONAL);
    let refused = deliver(&sender).await.unwrap_err();
    assert_eq!(reason_of(&refused), Some("tls.member_mismatch"), "{refused:?}");
    // From the gateway, the same bytes are a resend: answered as the first time.
    deliver(ids::GATEWAY).await.unwrap();
    harness.stop().await;
}

/// One application through every participant, each person on their own certificate.
async fn drive_tls(
    harness: &common::Harness,
    tls: &TlsDir,
    application_id: &str,
    plan: &egov_client::ApplicationPlan,
) -> egov_proto::Application {
    let topology = harness.topology();
    let channel = connect(&topology.workstation, Some(tls), "operator-1").unwrap();
    let mut operator = OperatorClient::new(channel, harness.signer("operator-1"), Arc::new(SystemClock));
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let staff =
        egov_client::StaffClient::connect(&topology.regional, Some(tls), ids::REGIONAL, Arc::new(SystemClock)).unwrap();
    let staff_keys = harness.staff_keys();
    let route = egov_client::Route {
        definition: &harness.definition,
        operator: &operator,
        staff: &staff,
        staff_keys: &staff_keys,
        patience: egov_client::Patience::default(),
        pacer: &egov_client::RealTime,
    };
    egov_client::drive(&route, application_id, plan).await.unwrap().application
}

#[test]
fn one_config_line_turns_mtls_on_and_its_variable_turns_it_off() {
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    certificates(&keys);
    let file = temp.path().join("egov.toml");
    std::fs::write(
        &file,
        format!(
            "tls.enabled = true\n\n[serve]\ndata = {:?}\nkeys = {:?}\nfixtures = {:?}\nroles = [\"individuals\"]\nany_port = true\n",
            temp.path().join("data").display().to_string(),
            temp.path().join("keys").display().to_string(),
            common::fixtures_dir().display().to_string(),
        ),
    )
    .unwrap();
    let serve = |tls: Option<&str>| {
        let mut command = egov();
        command.arg("--config").arg(&file).arg("serve");
        if let Some(value) = tls {
            command.env("EGOV_TLS", value);
        }
        let served = common::Served::start(command);
        let said = served.said.clone();
        let (exited_0, rest) = served.terminate();
        assert!(exited_0, "{rest:?}");
        said
    };
    let said = serve(None);
    assert!(said.iter().any(|line| line.starts_with("listening individuals ") && line.ends_with("(mTLS)")), "{said:?}");
    let said = serve(Some("false"));
    assert!(
        said.iter().any(|line| line.starts_with("listening individuals ") && !line.ends_with("(mTLS)")),
        "{said:?}"
    );
}
