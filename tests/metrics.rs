//! The Prometheus endpoint of `egov serve --metrics ADDR`: after calls that
//! are answered and refused, its text parses with a Prometheus parser and
//! holds each call by participant, RPC, service id and code, the refusals by
//! reason code, the latency histogram, and the stores' and outboxes' gauges.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use egov_client::OperatorClient;
use egov_runtime::{SystemClock, Topology};
use prometheus_parse::{Scrape, Value};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

fn scrape_now(address: &str) -> Scrape {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.to_owned() };
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| labels.iter().all(|(key, value)| sample.labels.get(key) == Some(*value)))
        .map(|sample| match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_calls_refusals_latency_and_the_stores() {
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let topology = common::free_topology();
    let metrics_address = format!("127.0.0.1:{}", common::free_port());
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--console", "off", "--shep", "off"])
        .arg("--data")
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .args(["--metrics", &metrics_address])
        .args(["--workstation", &topology.workstation, "--gateway", &topology.gateway])
        .args(["--individuals", &topology.individuals, "--notary", &topology.notary, "--regional", &topology.regional])
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let said = &served.said;
    assert!(said.contains(&format!("listening metrics http://{metrics_address}/metrics")), "{said:?}");

    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    operator.open_form("metrics-1", &service, "850715300122", None).await.unwrap();
    let refused = operator.open_form("metrics-2", &service, "850715300123", None).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("iin.check_digit"));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let address = metrics_address.clone();
    let scrape = tokio::task::spawn_blocking(move || scrape_now(&address)).await.unwrap();
    let open = [("participant", "workstation"), ("rpc", "WorkstationService/OpenForm"), ("service", "sc.form.open.v1")];
    let ok: Vec<(&str, &str)> = open.iter().copied().chain([("code", "Ok")]).collect();
    assert!(value(&scrape, "egov_rpc_requests_total", &ok).unwrap() >= 1.0);
    let refusal: Vec<(&str, &str)> = open.iter().copied().chain([("reason", "iin.check_digit")]).collect();
    assert_eq!(value(&scrape, "egov_rpc_refusals_total", &refusal), Some(1.0));
    // The look-up went through the gateway's synchronous channel, to "Individuals".
    let lookups =
        [("participant", "gateway"), ("rpc", "GatewayService/SendSync"), ("service", "gbdfl.person.lookup.v1")];
    assert!(value(&scrape, "egov_rpc_requests_total", &lookups).unwrap() >= 1.0);
    assert!(value(&scrape, "egov_rpc_duration_seconds", &open).unwrap() >= 2.0, "both calls were timed");
    for participant in ["workstation", "gateway", "regional"] {
        let labels = [("participant", participant)];
        assert!(value(&scrape, "egov_store_bytes", &labels).unwrap() > 0.0, "{participant}");
        assert!(value(&scrape, "egov_outbox_depth", &labels).is_some(), "{participant}");
        assert!(value(&scrape, "egov_incidents", &labels).is_some(), "{participant}");
        assert_eq!(value(&scrape, "egov_outbox_retries_total", &labels), Some(0.0), "{participant}");
    }
    assert!(value(&scrape, "egov_store_commits_total", &[]).unwrap() >= 1.0);
    // Each group the committer wrote, by its size, and each flush, timed.
    let groups = value(&scrape, "egov_store_groups_total", &[]).unwrap();
    // (read a moment after the groups' counter: a group written between them is in the histogram only)
    assert!(value(&scrape, "egov_store_group_size_commits", &[]).unwrap() >= groups && groups >= 1.0);
    assert!(value(&scrape, "egov_store_flush_seconds", &[]).unwrap() >= 1.0);
    // The workstation's applications by state: one waits on process 5; none is missed yet.
    let waiting = [("participant", "workstation"), ("state", "process-5")];
    assert_eq!(value(&scrape, "egov_applications", &waiting), Some(1.0));
    // (The SLA family is listed only while an item is at risk or missed: whether
    // process 5's one-minute step is at risk here depends on the working hours of the moment.)
    assert_eq!(value(&scrape, "egov_sla_items", &[("standing", "missed")]), None);
    // A change of the trust registry is reloaded, and counted.
    let trust_file = temp.path().join("keys/trust.toml");
    let text = std::fs::read_to_string(&trust_file).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&trust_file, format!("{text}\n")).unwrap();
    let address = metrics_address.clone();
    common::eventually("the reload counted", async || {
        let address = address.clone();
        let scrape = tokio::task::spawn_blocking(move || scrape_now(&address)).await.unwrap();
        value(&scrape, "egov_trust_reloads_total", &[("result", "ok")]).filter(|n| *n >= 1.0)
    })
    .await;
    let (exited_0, _) = served.terminate();
    assert!(exited_0);
}
