//! Operational monitoring: every participant keeps a record of each message
//! it received or sent, with its four timestamps, ids, sizes and result;
//! `AdminService.QueryMonitoring` and `egov monitor` answer them, filtered,
//! and the export file holds them as JSON lines.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::{MonitoringRecord, QueryMonitoringRequest};
use egov_runtime::Topology;

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

async fn records(address: &str, query: QueryMonitoringRequest) -> Vec<MonitoringRecord> {
    let mut admin = AdminServiceClient::new(Topology::channel(address).unwrap());
    admin.query_monitoring(query).await.unwrap().into_inner().records
}

/// Runs the `egov` binary (off the runtime's threads, which serve the stack).
async fn egov(args: &[&str], addresses: &[String]) -> std::process::Output {
    let mut command = std::process::Command::new(EGOV);
    command.args(args).args(addresses);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn of(correlation_id: &str) -> QueryMonitoringRequest {
    QueryMonitoringRequest { correlation_id: correlation_id.to_owned(), ..QueryMonitoringRequest::default() }
}

fn find<'r>(records: &'r [MonitoringRecord], kind: &str, rpc: &str, service: &str) -> Vec<&'r MonitoringRecord> {
    records.iter().filter(|r| r.kind == kind && r.rpc == rpc && r.service_id == service).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_applications_records_show_every_hop_with_its_timestamps() {
    let export = tempfile::NamedTempFile::new().unwrap();
    let export_path = export.path().to_owned();
    let harness = common::Harness::start_with(|config| config.monitor.export = Some(export_path.clone())).await;
    let application = harness.drive("monitored-1", &common::in_person("850715300122")).await.unwrap();
    assert_eq!(application.outcome, "permitted", "{application:?}");
    let topology = harness.topology().clone();
    // The last hop's record is written once its answer has left.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let workstation = records(&topology.workstation, of("monitored-1")).await;
    let gateway = records(&topology.gateway, of("monitored-1")).await;
    let individuals = records(&topology.individuals, of("monitored-1")).await;
    let regional = records(&topology.regional, of("monitored-1")).await;
    for (name, records) in
        [("workstation", &workstation), ("gateway", &gateway), ("individuals", &individuals), ("regional", &regional)]
    {
        assert!(!records.is_empty(), "the {name} kept no record of the application");
        for record in records.iter() {
            assert_eq!(record.correlation_id, "monitored-1");
            assert!(!record.message_id.is_empty(), "{record:?}");
            assert!(record.succeeded, "{record:?}");
            assert_eq!(record.status_code, "Ok");
            assert!(record.request_size > 0, "{record:?}");
        }
    }
    assert!(workstation.iter().all(|r| r.participant == "sc-workstation"));
    assert!(gateway.iter().all(|r| r.participant == "egov-gateway"));

    // Process 3: the gateway's synchronous route has all four timestamps in order.
    let lookup = find(&gateway, "server", "GatewayService/SendSync", "gbdfl.person.lookup.v1");
    assert_eq!(lookup.len(), 1, "{gateway:#?}");
    let lookup = lookup[0];
    assert_eq!(lookup.client_id, "sc-workstation");
    assert_eq!(lookup.peer_id, "gbdfl");
    let times = [
        lookup.request_in_time_us,
        lookup.request_out_time_us,
        lookup.response_in_time_us,
        lookup.response_out_time_us,
    ];
    assert!(times.iter().all(|t| *t > 0), "{lookup:?}");
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "out of order: {times:?}");
    assert!(lookup.response_size > 0);
    // ... the registry answered it in between, and the workstation made the call.
    let answered = find(&individuals, "server", "IndividualsService/LookupPerson", "gbdfl.person.lookup.v1");
    assert_eq!(answered.len(), 1, "{individuals:#?}");
    assert_eq!(answered[0].message_id, lookup.message_id, "the same message at both");
    assert!(answered[0].request_in_time_us >= lookup.request_out_time_us);
    assert!(answered[0].response_out_time_us <= lookup.response_in_time_us);
    let asked = find(&workstation, "client", "GatewayService/SendSync", "gbdfl.person.lookup.v1");
    assert_eq!(asked.len(), 1, "{workstation:#?}");
    assert_eq!(asked[0].message_id, lookup.message_id);
    assert_eq!((asked[0].request_in_time_us, asked[0].response_out_time_us), (0, 0), "a client record");
    assert!(asked[0].request_out_time_us <= lookup.request_in_time_us);
    assert!(asked[0].response_in_time_us >= lookup.response_out_time_us);

    // Processes 6 and 7: the submission through the gateway's asynchronous
    // channel, delivered from its outbox to the ARM's inbox.
    let submitted = find(&workstation, "client", "GatewayService/SendAsync", "rshep.application.submit.v1");
    assert!(!submitted.is_empty(), "{workstation:#?}");
    let taken = find(&gateway, "server", "GatewayService/SendAsync", "rshep.application.submit.v1");
    assert!(!taken.is_empty(), "{gateway:#?}");
    let delivered = find(&gateway, "client", "InboxService/Deliver", "rshep.application.submit.v1");
    assert_eq!(delivered.len(), 1, "{gateway:#?}");
    assert_eq!(delivered[0].peer_id, "rshep-astana");
    let received = find(&regional, "server", "InboxService/Deliver", "rshep.application.submit.v1");
    assert_eq!(received.len(), 1, "{regional:#?}");
    assert_eq!(received[0].message_id, delivered[0].message_id);
    assert_eq!(received[0].client_id, "sc-workstation", "the envelope's sender is the client");
    // The staff's steps at the ARM, and the result back to the workstation.
    assert!(!find(&regional, "server", "RegionalGatewayService/SignResult", "rshep.result.sign.v1").is_empty());
    assert!(!find(&workstation, "server", "InboxService/Deliver", "sc.application.progress.v1").is_empty());
    // The operator's calls, process 1 to 9.
    let services: BTreeSet<&str> =
        workstation.iter().filter(|r| r.kind == "server").map(|r| r.service_id.as_str()).collect();
    for service in ["sc.form.open.v1", "sc.form.submit.v1", "sc.queue.ticket.v1", "sc.result.issue.v1"] {
        assert!(services.contains(service), "{service} missing from {services:?}");
    }

    // Filters: by service, by time range, a limit.
    let only_lookups = records(
        &topology.gateway,
        QueryMonitoringRequest { service_id: "gbdfl.person.lookup.v1".into(), ..of("monitored-1") },
    )
    .await;
    assert_eq!(only_lookups.len(), 1);
    let after = records(
        &topology.gateway,
        QueryMonitoringRequest { from_time_us: lookup.response_out_time_us + 1, ..of("monitored-1") },
    )
    .await;
    assert!(after.iter().all(|r| r.message_id != lookup.message_id) && after.len() < gateway.len());
    let before = records(
        &topology.gateway,
        QueryMonitoringRequest { to_time_us: lookup.request_in_time_us + 1, ..QueryMonitoringRequest::default() },
    )
    .await;
    assert_eq!(before.last().map(|r| r.message_id.as_str()), Some(lookup.message_id.as_str()));
    let newest = records(&topology.gateway, QueryMonitoringRequest { limit: 2, ..of("monitored-1") }).await;
    assert_eq!(newest, gateway[gateway.len() - 2..].to_vec(), "the newest two, oldest first");
    let mut admin = AdminServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    let backwards = admin
        .query_monitoring(QueryMonitoringRequest { from_time_us: 2_000, to_time_us: 1_000, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(egov_runtime::reason_of(&backwards), Some("admin.bad_time_range"));

    // `egov monitor`: the same records, merged, as JSON lines and as a table.
    let addresses = [
        "--workstation",
        &topology.workstation,
        "--gateway",
        &topology.gateway,
        "--individuals",
        &topology.individuals,
        "--notary",
        &topology.notary,
        "--regional",
        &topology.regional,
    ]
    .map(str::to_owned);
    let json = egov(&["monitor", "--correlation", "monitored-1", "--json"], &addresses).await;
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let lines: Vec<MonitoringRecord> =
        String::from_utf8(json.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let kept = workstation.len() + gateway.len() + individuals.len() + regional.len();
    assert_eq!(lines.len(), kept, "every participant's records (the notary saw none of this application)");
    let firsts: Vec<i64> = lines
        .iter()
        .map(|r| if r.request_in_time_us != 0 { r.request_in_time_us } else { r.request_out_time_us })
        .collect();
    assert!(firsts.windows(2).all(|pair| pair[0] <= pair[1]), "merged in time order");
    let table = egov(
        &[
            "monitor",
            "--participants",
            "gateway",
            "--service",
            "gbdfl.person.lookup.v1",
            "--correlation",
            "monitored-1",
        ],
        &addresses,
    )
    .await;
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("GatewayService/SendSync") && table.contains("1 records"), "{table}");

    // The export holds every record kept, as JSON lines, once the stack has stopped.
    harness.stop().await;
    let exported: Vec<MonitoringRecord> = std::fs::read_to_string(export.path())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|record: &MonitoringRecord| record.correlation_id == "monitored-1")
        .collect();
    assert_eq!(exported.len(), kept);
    assert!(exported.iter().any(|r| r == lookup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_recorded_with_its_reason_and_the_count_is_kept() {
    let harness = common::Harness::start_with(|config| config.monitor.keep = 3).await;
    let topology = harness.topology().clone();
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    let refused = operator.open_form("refused-1", &service, "850715300123", None).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("iin.check_digit"));
    let kept = records(&topology.workstation, of("refused-1")).await;
    assert_eq!(kept.len(), 1, "{kept:#?}");
    let record = &kept[0];
    assert_eq!((record.kind.as_str(), record.rpc.as_str()), ("server", "WorkstationService/OpenForm"));
    assert_eq!((record.client_id.as_str(), record.service_id.as_str()), ("operator-1", "sc.form.open.v1"));
    assert!(!record.succeeded);
    assert_eq!((record.status_code.as_str(), record.reason.as_str()), ("InvalidArgument", "iin.check_digit"));
    assert!(record.request_in_time_us > 0 && record.response_out_time_us >= record.request_in_time_us);

    // Only the newest three records are kept.
    for n in 2..=5 {
        let _ = operator.open_form(&format!("refused-{n}"), &service, "850715300123", None).await.unwrap_err();
    }
    let all = records(&topology.workstation, QueryMonitoringRequest::default()).await;
    let ids: Vec<&str> = all.iter().map(|r| r.correlation_id.as_str()).collect();
    assert_eq!(ids, ["refused-3", "refused-4", "refused-5"]);
    // The registries answer for their records too, and refuse the outbox's calls.
    let mut notary = AdminServiceClient::new(Topology::channel(&topology.notary).unwrap());
    let no_outbox = notary.list_outbox(egov_proto::ListOutboxRequest { incidents_only: false }).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&no_outbox), Some("admin.no_outbox"));
    assert!(notary.query_monitoring(QueryMonitoringRequest::default()).await.unwrap().into_inner().records.is_empty());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_off_keeps_nothing_and_says_so() {
    let harness = common::Harness::start_with(|config| config.monitor.keep = 0).await;
    let topology = harness.topology().clone();
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    operator.open_form("unmonitored-1", &service, "850715300122", None).await.unwrap();
    let mut admin = AdminServiceClient::new(Topology::channel(&topology.workstation).unwrap());
    let off = admin.query_monitoring(QueryMonitoringRequest::default()).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&off), Some("admin.monitoring_off"));
    harness.stop().await;
}

/// `AdminService.QueryLog`: each participant's log of one application, every
/// envelope signed and verifiable; `WorkstationService.ListApplications`: the
/// applications, newest first, of one operator or of all (the console's reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_participant_reads_out_its_log_of_an_application_and_the_workstation_lists_them() {
    use egov_proto::workstation_service_client::WorkstationServiceClient;
    use egov_proto::{EnvelopeHeader, ListApplicationsRequest, QueryLogRequest};
    use prost::Message as _;
    let harness = common::Harness::start().await;
    let application = harness.drive("logged-1", &common::in_person("850715300122")).await.unwrap();
    assert_eq!(application.outcome, "permitted", "{application:?}");
    let topology = harness.topology().clone();
    let checks = egov_envelope::Checks { max_body_bytes: usize::MAX, freshness_window_ms: None };
    let mut senders = BTreeSet::new();
    for address in [&topology.workstation, &topology.gateway, &topology.regional] {
        let mut admin = AdminServiceClient::new(Topology::channel(address).unwrap());
        let query = QueryLogRequest { correlation_id: "logged-1".into(), limit: 0 };
        let entries = admin.query_log(query).await.unwrap().into_inner().entries;
        assert!(entries.len() >= 3, "{address}: {entries:?}");
        assert!(entries.windows(2).all(|pair| pair[0].sequence < pair[1].sequence), "oldest first");
        for entry in &entries {
            let envelope = entry.envelope.clone().unwrap();
            let header = EnvelopeHeader::decode(&envelope.header[..]).unwrap();
            assert_eq!(header.correlation_id, "logged-1");
            assert_eq!(entry.hash.len(), 64, "{entry:?}");
            egov_envelope::open(&envelope, &harness.trust, 0, &checks).unwrap();
            senders.insert(header.sender_id);
        }
        let limited = admin.query_log(QueryLogRequest { correlation_id: "logged-1".into(), limit: 2 }).await.unwrap();
        assert_eq!(limited.into_inner().entries.len(), 2);
        let none = admin.query_log(QueryLogRequest { correlation_id: "no-such".into(), limit: 0 }).await.unwrap();
        assert!(none.into_inner().entries.is_empty());
        let bad = admin.query_log(QueryLogRequest::default()).await.unwrap_err();
        assert_eq!(egov_runtime::reason_of(&bad), Some("admin.bad_query"));
    }
    for member in ["operator-1", "office-1", "specialist-1", "executor-1", "head-1", "sc-workstation", "rshep-astana"] {
        assert!(senders.contains(member), "no envelope of {member} in the logs: {senders:?}");
    }
    let mut notary = AdminServiceClient::new(Topology::channel(&topology.notary).unwrap());
    let stateless = notary.query_log(QueryLogRequest { correlation_id: "logged-1".into(), limit: 0 }).await;
    assert_eq!(egov_runtime::reason_of(&stateless.unwrap_err()), Some("admin.no_outbox"));

    let operator_2 = {
        let channel = Topology::channel(&topology.workstation).unwrap();
        let mut operator = egov_client::OperatorClient::new(
            channel,
            harness.signer("operator-2"),
            std::sync::Arc::new(egov_runtime::SystemClock),
        );
        operator.login("operator-2", "operator-2-password").await.unwrap();
        operator
    };
    let service = harness.definition.service.code.clone();
    operator_2.open_form("listed-2", &service, "900101400122", None).await.unwrap();
    let mut workstation = WorkstationServiceClient::new(Topology::channel(&topology.workstation).unwrap());
    let list = |operator_id: &str, limit: u32| ListApplicationsRequest {
        operator_id: operator_id.to_owned(),
        limit,
        ..ListApplicationsRequest::default()
    };
    let all = workstation.list_applications(list("", 0)).await.unwrap().into_inner().applications;
    let ids: Vec<&str> = all.iter().map(|a| a.application_id.as_str()).collect();
    assert_eq!(ids, ["listed-2", "logged-1"], "newest first");
    assert_eq!(all[1].outcome, "permitted");
    let mine = workstation.list_applications(list("operator-1", 0)).await.unwrap().into_inner().applications;
    assert_eq!(mine.iter().map(|a| a.application_id.as_str()).collect::<Vec<_>>(), ["logged-1"]);
    let newest = workstation.list_applications(list("", 1)).await.unwrap().into_inner().applications;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].application_id, "listed-2");
    harness.stop().await;
}
