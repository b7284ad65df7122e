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
        ("[keys]\n\nvalid_from = \"March\"\n", "line 3", "keys.valid_from"),
        ("[client]\nretry_seconds = \"long\"\n", "line 2", "invalid type: string \"long\""),
        ("[shep.external]\nregional = \"ftp://arm\"\n", "line 2", "shep.external"),
        ("[shep]\nadress = \"127.0.0.1:1\"\n", "line 2", "unknown field `adress`"),
        ("[serve]\nstore_lease_seconds = \"long\"\n", "line 2", "invalid type: string \"long\""),
        ("[serve]\nstore_pol = 8\n", "line 2", "unknown field `store_pol`"),
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
/// The `valid_from` of the keys `egov keys init` wrote in `dir`, one per member.
fn valid_from(dir: &Path) -> Vec<String> {
    let trust = std::fs::read_to_string(dir.join("trust.toml")).unwrap();
    trust
        .lines()
        .filter_map(|line| line.strip_prefix("valid_from = "))
        .map(|v| v.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_keys_validity_comes_from_the_flag_its_variable_or_the_file() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("egov.toml");
    std::fs::write(&file, "[keys]\nvalid_from = \"2026-03-01\"\n").unwrap();
    let init = |mut command: Command, dir: &str| {
        let dir = temp.path().join(dir);
        let output = command.env_remove("EGOV_KEYS_VALID_FROM").args(["keys", "init", "--dir"]).arg(&dir).output();
        let output = output.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let froms = valid_from(&dir);
        assert_eq!(froms.len(), egov_runtime::ids::DEFAULT_MEMBERS.len());
        froms[0].clone()
    };
    // A day starts at 00:00 in Astana (UTC+05:00).
    assert_eq!(init(egov(&file), "from-file"), "2026-02-28T19:00:00Z");
    let mut flag = egov(&file);
    flag.args(["keys", "init", "--valid-from", "2026-01-15T09:00:00+05:00"]);
    let output = flag.arg("--dir").arg(temp.path().join("from-flag")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(valid_from(&temp.path().join("from-flag"))[0], "2026-01-15T04:00:00Z", "the flag wins");
    let mut variable = egov(&file);
    variable.env("EGOV_KEYS_VALID_FROM", "2025-12-31");
    let output = variable.args(["keys", "init", "--dir"]).arg(temp.path().join("from-variable")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(valid_from(&temp.path().join("from-variable"))[0], "2025-12-30T19:00:00Z", "the variable wins");
    // Without any: the start of 2020, before every scenario of the fixture library.
    let mut plain = Command::new(EGOV);
    plain.env_remove("EGOV_CONFIG");
    assert_eq!(init(plain, "default"), "2020-01-01T00:00:00Z");
    let mut bad = Command::new(EGOV);
    let bad =
        bad.args(["keys", "init", "--valid-from", "March", "--dir"]).arg(temp.path().join("bad")).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--valid-from"));
    assert!(!temp.path().join("bad").exists());
}

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

/// The example of docs/configuration.md.
fn docs_example() -> String {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")).unwrap();
    docs.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap().to_owned()
}

/// What the SHEP face at `address` answers to a SOAP request.
fn soap_post(address: &str, path: &str, body: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// What `GET /metrics` at `address` answers.
fn scrape(address: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_example_of_the_docs_runs_the_five_participants_with_mtls_metrics_and_traces() {
    let example = docs_example();
    let file = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/egov.example.toml"));
    assert_eq!(file.unwrap(), example, "docs/egov.example.toml is not the example of docs/configuration.md");
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("egov.toml"), example).unwrap();
    let config = Path::new("egov.toml");
    // As the docs say, in the folder of the file; only the ports are free ones and the
    // collector is this test's.
    let made = egov(config).current_dir(temp.path()).args(["keys", "init", "--dir", "keys"]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(temp.path().join("keys/tls/ca.pem").exists(), "[tls] enabled made no certificates");
    let collector = common::collector();
    let topology = common::free_topology();
    let addresses: Vec<String> =
        topology.entries().iter().flat_map(|(role, address)| [format!("--{role}"), (*address).to_owned()]).collect();
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let console = format!("127.0.0.1:{}", common::free_port());
    let shep = format!("127.0.0.1:{}", common::free_port());
    let shep_grpc = format!("127.0.0.1:{}", common::free_port());
    let mut command = egov(config);
    command
        .current_dir(temp.path())
        .args(&addresses)
        .args(["serve", "--metrics", &metrics, "--console", &console, "--otlp", &collector.endpoint])
        .args(["--shep", &shep, "--shep-grpc", &shep_grpc, "--fixtures"])
        .arg(common::fixtures_dir())
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    assert!(served.said.contains(&format!("listening console http://{console}/")), "{:?}", served.said);
    for role in ["workstation", "gateway", "individuals", "notary", "regional"] {
        assert!(
            served.said.iter().any(|line| line.starts_with(&format!("listening {role} ")) && line.ends_with("(mTLS)")),
            "{:?}",
            served.said
        );
    }
    assert!(served.said.contains(&format!("listening metrics http://{metrics}/metrics")), "{:?}", served.said);
    assert!(served.said.contains(&format!("listening shep http://{shep}/")), "{:?}", served.said);

    // A client with the same file: the same addresses, over mTLS.
    let applied = egov(config)
        .current_dir(temp.path())
        .args(&addresses)
        .args(["operator", "apply", "--applicant", "850715300122", "--id", "configured-1"])
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));

    // A SOAP look-up through the SHEP face: the edge calls the gateway over mTLS as the sender's member.
    let password = std::fs::read_to_string(temp.path().join("keys/secrets/shep-sc-workstation.password")).unwrap();
    let lookup = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
         <t:SendMessage xmlns:t=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo>\
         <messageId>configured-soap-1</messageId><serviceId>GBDFL_PERSON_BY_IIN</serviceId>\
         <messageDate>2026-06-15T10:00:00+05:00</messageDate><sender><senderId>sc-workstation</senderId>\
         <password>{password}</password></sender></requestInfo><requestData><data>\
         <PersonQuery><iin>850715300122</iin></PersonQuery></data></requestData></request></t:SendMessage>\
         </soapenv:Body></soapenv:Envelope>"
    );
    let answered = soap_post(&shep, "/bip-sync-wss-gost/", &lookup);
    assert!(answered.starts_with("HTTP/1.1 200") && answered.contains("<code>SCSS001</code>"), "{answered}");

    let scraped = scrape(&metrics);
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(scraped.contains("egov_rpc_requests_total{"), "{scraped}");
    let (exited_0, rest) = served.terminate();
    assert!(exited_0, "{rest:?}");
    // The exporter sent its spans at the stop; the monitoring export has the application's records.
    let spans = collector.spans();
    assert!(
        spans.iter().any(|span| {
            span.attributes.iter().any(|a| {
                a.key == "correlation_id"
                    && matches!(&a.value.as_ref().and_then(|v| v.value.clone()),
                Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(c)) if c == "configured-1")
            })
        }),
        "no span of the application reached the collector ({} spans)",
        spans.len()
    );
    let exported = std::fs::read_to_string(temp.path().join("data/monitoring.jsonl")).unwrap();
    assert!(exported.lines().any(|line| line.contains("\"configured-1\"")), "{exported}");
}

#[test]
fn the_clients_retry_bound_comes_from_the_file_and_the_flag_wins() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("egov.toml");
    // Nothing listens there.
    let nowhere = format!("127.0.0.1:{}", common::free_port());
    std::fs::write(&file, format!("[topology]\nworkstation = \"{nowhere}\"\n[client]\nretry_seconds = 1\n")).unwrap();
    common::init_keys(&temp.path().join("keys"));
    let status = |extra: &[&str]| {
        let started = std::time::Instant::now();
        let output = egov(&file)
            .env_remove("EGOV_RETRY_SECONDS")
            .env_remove("EGOV_WORKSTATION")
            .args(extra)
            .args(["operator", "apply", "--applicant", "850715300122", "--keys"])
            .arg(temp.path().join("keys"))
            .output()
            .unwrap();
        (output, started.elapsed())
    };
    let (output, took) = status(&[]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("login (process 1) not done") && said.contains(" s, in vain"), "{said}");
    // The last send falls at the bound (1 s), later on a loaded machine, never earlier.
    let over: f64 = said
        .split("over ")
        .last()
        .and_then(|rest| rest.split(" s, in vain").next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no time sent over in {said}"));
    assert!((1.0..5.0).contains(&over), "{said}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let (output, _) = status(&["--retry-seconds", "0"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("login (process 1) not done") && !said.contains("in vain"), "sent once: {said}");
}

/// The database's settings come from the file, its variable or the flag, in
/// that order of precedence: a pool of none is refused before anything starts.
#[test]
fn the_database_settings_come_from_the_file_the_variable_or_the_flag() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let file = temp.path().join("egov.toml");
    let store = "postgres://egov@127.0.0.1:1/egov";
    let keys = temp.path().join("keys");
    common::init_keys(&keys);
    let refused = |pool_in_file: usize, env: Option<&str>, flag: Option<&str>| {
        std::fs::write(&file, format!("[serve]\nstore = \"{store}\"\nstore_pool = {pool_in_file}\n")).unwrap();
        let mut command = egov(&file);
        command.env_remove("EGOV_STORE_POOL").arg("serve").arg("--data").arg(&data).arg("--keys").arg(&keys);
        if let Some(env) = env {
            command.env("EGOV_STORE_POOL", env);
        }
        if let Some(flag) = flag {
            command.args(["--store-pool", flag]);
        }
        let output = command.output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success() && said.contains("--store-pool must be at least 1"), "{said}");
        true
    };
    assert!(refused(0, None, None), "the file's");
    assert!(refused(2, Some("0"), None), "the variable over the file");
    assert!(refused(2, Some("2"), Some("0")), "the flag over both");
}
