//! The web console in a real browser: headless Debian Chromium driven by
//! playwright-core (`tests/browser/*.mjs`), against `egov serve` and its
//! console on free ports. Without node, playwright-core or chromium the
//! tests fail and say to run `tests/install.sh`; they never skip.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egov_cli::stack::{Role, Stack};
use egov_client::OperatorClient;
use egov_proto::ListOutboxRequest;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_runtime::{SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
/// The longest a browser script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// One browser at a time: the scripts are heavy for a small machine.
static BROWSER: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("EGOV_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What the browser tests need and is not there: node, playwright-core, `chromium`.
fn missing_browser_tools(chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Command::new("node").arg("--version").output().is_ok_and(|output| output.status.success()) {
        missing.push("node (apt-get install -y nodejs npm)".to_owned());
    }
    if !root().join("tests/browser/node_modules/playwright-core/package.json").is_file() {
        missing.push("playwright-core in tests/browser/node_modules (npm ci --prefix tests/browser)".to_owned());
    }
    if !chromium.is_file() {
        missing.push(format!("{} (apt-get install -y chromium)", chromium.display()));
    }
    missing
}

/// node, playwright-core and chromium are there, or the test fails saying how to install them.
fn require_browser_tools() {
    require_browser_tools_at(&chromium());
}

fn require_browser_tools_at(chromium: &Path) {
    let missing = missing_browser_tools(chromium);
    assert!(
        missing.is_empty(),
        "the console's browser tests need {}: run tests/install.sh (as root, it installs them)",
        missing.join(", ")
    );
}

/// A machine without chromium fails the browser tests with the command that installs it.
#[test]
fn a_missing_browser_fails_the_tests_and_names_the_install_command() {
    let missing = missing_browser_tools(Path::new("/nonexistent/chromium"));
    assert!(missing.iter().any(|tool| tool.contains("apt-get install -y chromium")), "{missing:?}");
    let failed = std::panic::catch_unwind(|| require_browser_tools_at(Path::new("/nonexistent/chromium")));
    let message = failed.expect_err("it must fail, not skip");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("run tests/install.sh") && message.contains("/nonexistent/chromium"), "{message}");
}

/// Runs `node tests/browser/SCRIPT ARGS…`, which must exit 0 within the
/// timeout; its output is printed. Screenshots go to target/console-screenshots.
fn run_script(script: &str, args: &[&str]) {
    require_browser_tools();
    let _one = BROWSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = root();
    let screenshots = root.join("target/console-screenshots");
    let output = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .args(args)
        .current_dir(&root)
        .env("EGOV_SCREENSHOTS", &screenshots)
        .env("EGOV_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(output.as_file().try_clone().unwrap())
        .stderr(output.as_file().try_clone().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            // SIGTERM first: playwright closes its browser on it.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            std::thread::sleep(Duration::from_secs(3));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = std::fs::read_to_string(output.path()).unwrap_or_default();
    println!("{said}");
    match status {
        Some(status) => assert!(status.success(), "{script} failed ({status}):\n{said}"),
        None => panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}:\n{said}"),
    }
}

/// `egov serve` with every participant and its console on free ports: the
/// child and the console's address.
fn serve(temp: &Path) -> (common::Served, String) {
    common::init_keys(&temp.join("keys"));
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--any-port"])
        .arg("--data")
        .arg(temp.join("data"))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let url = served
        .said
        .iter()
        .find_map(|line| line.strip_prefix("listening console "))
        .unwrap_or_else(|| panic!("egov serve did not say where its console is: {:?}", served.said))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{url}");
    (served, url)
}

#[test]
fn one_application_goes_through_every_process_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("route.mjs", &[&url]);
    let (stopped, _) = served.terminate();
    assert!(stopped, "egov serve did not stop cleanly");
}

#[test]
fn an_application_received_at_the_providers_office_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("office.mjs", &[&url]);
    assert!(served.terminate().0);
}

#[test]
fn a_refusal_at_condition_2_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("refusal.mjs", &[&url]);
    assert!(served.terminate().0);
}

#[test]
fn the_process_4_notice_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("notice.mjs", &[&url]);
    assert!(served.terminate().0);
}

/// Live pages: a submission in one browser context shows, without a reload,
/// on the application's page, the staff's queue and the list in others.
#[test]
fn pages_follow_a_change_made_elsewhere_without_a_reload_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("live.mjs", &[&url]);
    assert!(served.terminate().0);
}

/// Every visible word in the chosen language: the whole route walked in
/// Kazakh and in Russian shows no English word of the console's texts, its
/// refusals or the definition's titles, actors, outcomes and notices.
#[test]
fn every_visible_word_is_in_the_chosen_language_in_the_browser() {
    let words = egov_console::english_words(egov_regulation::Definition::default_definition());
    assert!(words.contains("permitted") && words.contains("refused") && words.contains("register"), "{words:?}");
    assert!(!words.contains("egov") && !words.contains("sla"), "Latin on purpose in kk and ru");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), words.iter().map(|word| format!("{word}\n")).collect::<String>()).unwrap();
    for lang in ["kk", "ru"] {
        let temp = tempfile::tempdir().unwrap();
        let (served, url) = serve(temp.path());
        run_script("language.mjs", &[&url, lang, file.path().to_str().unwrap()]);
        assert!(served.terminate().0);
    }
}

/// In the browser: a page of another port of 127.0.0.1, and of another host
/// name, that posts the operator's form where the operator is logged in.
#[test]
fn a_page_of_another_site_cannot_post_the_consoles_forms_in_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    run_script("csrf.mjs", &[&url]);
    assert!(served.terminate().0);
}

#[test]
fn egov_serve_runs_no_console_when_told_off_or_for_some_roles_only() {
    let temp = tempfile::tempdir().unwrap();
    common::init_keys(&temp.path().join("keys"));
    let served = |extra: &[&str]| {
        let mut command = Command::new(EGOV);
        command
            .args(["serve", "--any-port"])
            .args(extra)
            .arg("--data")
            .arg(temp.path().join("data"))
            .arg("--keys")
            .arg(temp.path().join("keys"))
            .arg("--fixtures")
            .arg(common::fixtures_dir())
            .stderr(Stdio::null());
        let served = common::Served::start(command);
        let said = served.said.clone();
        assert!(served.terminate().0);
        said
    };
    let said = served(&["--console", "off"]);
    assert!(said.iter().all(|line| !line.starts_with("listening console")), "{said:?}");
    let said = served(&["--roles", "individuals,notary"]);
    assert!(said.iter().all(|line| !line.starts_with("listening console")), "{said:?}");
    // Asked for, it runs beside any roles.
    let port = common::free_port();
    let said = served(&["--roles", "individuals", "--console", &format!("127.0.0.1:{port}")]);
    assert!(said.contains(&format!("listening console http://127.0.0.1:{port}/")), "{said:?}");
    // From the config file's serve.console, and EGOV_CONSOLE over it.
    let file = temp.path().join("egov.toml");
    let port = common::free_port();
    std::fs::write(&file, format!("[serve]\nroles = [\"notary\"]\nconsole = \"127.0.0.1:{port}\"\n")).unwrap();
    let config = file.to_str().unwrap();
    let said = served(&["--config", config]);
    assert!(said.contains(&format!("listening console http://127.0.0.1:{port}/")), "{said:?}");
    let mut command = Command::new(EGOV);
    command
        .args(["--config", config, "serve", "--any-port", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .env("EGOV_CONSOLE", "off")
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    assert!(served.said.iter().all(|line| !line.starts_with("listening console")), "{:?}", served.said);
    assert!(served.terminate().0);
    // An address in use stops the start, naming it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(EGOV)
        .args(["serve", "--any-port", "--console", &address, "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains(&format!("the console cannot listen on {address}")), "{error}");
}

/// The incident is made here: the stack runs without the ARM, with few and
/// quick retries, so the gateway parks the delivery; then the ARM starts and
/// the browser retries it. The console runs in this process, on a free port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_retried_from_the_browser() {
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    let config = |roles: &[Role]| common::quick_incidents(&temp.path().join("data"), &keys, &topology, roles);
    let stack =
        Stack::start(config(&[Role::Individuals, Role::Notary, Role::Gateway, Role::Workstation])).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
    let console = egov_console::ConsoleConfig {
        topology: topology.clone(),
        keys: keys.clone(),
        tls: None,
        definition: Arc::new(egov_regulation::Definition::default_definition().clone()),
        shep: None,
    };
    let console = tokio::spawn(egov_console::serve(listener, console, async move {
        let _ = console_stopped.await;
    }));

    let trust = keys.trust().unwrap();
    let mut operator = OperatorClient::new(
        Topology::channel(&topology.workstation).unwrap(),
        keys.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let service = &egov_regulation::Definition::default_definition().service.code;
    operator.open_form("stranded-1", service, "850715300122", None).await.unwrap();
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    operator.submit("stranded-1", documents).await.unwrap();
    let mut admin = AdminServiceClient::new(Topology::channel(&topology.gateway).unwrap());
    common::eventually("the incident", async || {
        let entries = admin.list_outbox(ListOutboxRequest { incidents_only: true }).await.unwrap().into_inner().entries;
        entries.into_iter().find(|entry| entry.correlation_id == "stranded-1")
    })
    .await;
    let regional = Stack::start(config(&[Role::Regional])).await.unwrap();

    let script = tokio::task::spawn_blocking(move || run_script("incident.mjs", &[&url, "stranded-1"])).await;
    let _ = stop_console.send(());
    let _ = console.await;
    regional.stop().await;
    stack.stop().await;
    if let Err(panic) = script {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// One HTTP/1.1 request to the console, with `headers` and a body of
/// `content_type`: the status code, the headers (lower-case names) and the body.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Answer {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let (content_type, body) = body.unwrap_or(("", b""));
    if !content_type.is_empty() {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_owned()))
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map_or("", |(_, value)| value.as_str())
    }

    /// The reason code of the page's alert `id`.
    fn code(&self, id: &str) -> &str {
        let Some((_, rest)) = self.body.split_once(&format!("id=\"{id}\" role=\"alert\" data-code=\"")) else {
            return "";
        };
        &rest[..rest.find('"').unwrap()]
    }
}

/// `GET url`, which must answer 200: the body.
fn http_get(url: &str) -> String {
    let answer = http("GET", url, &[], None);
    assert_eq!(answer.status, 200, "{url}: {}", answer.body);
    answer.body
}

/// A plain HTTP client that does what a browser on the console's pages
/// does: it keeps the cookies the console sets, says its Origin, and sends
/// the token of the last page it read that had a form.
struct Browser {
    url: String,
    cookies: std::collections::BTreeMap<String, String>,
    token: String,
}

const FORM: &str = "application/x-www-form-urlencoded";

impl Browser {
    fn new(url: &str) -> Browser {
        Browser { url: url.to_owned(), cookies: Default::default(), token: String::new() }
    }

    /// `http://HOST:PORT`, as a browser says it.
    fn origin(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }

    fn cookie(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Answer {
        let cookie = self.cookie();
        let mut headers = vec![("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        let answer = http(method, &format!("{}{path}", self.url), &headers, body);
        for (name, value) in &answer.headers {
            let Some((cookie, value)) =
                (name == "set-cookie").then(|| value.split(';').next()).flatten().and_then(|c| c.split_once('='))
            else {
                continue;
            };
            if value.is_empty() {
                self.cookies.remove(cookie);
            } else {
                self.cookies.insert(cookie.to_owned(), value.to_owned());
            }
        }
        if let Some((_, rest)) = answer.body.split_once("name=\"csrf\" value=\"") {
            self.token = rest[..rest.find('"').unwrap()].to_owned();
        }
        answer
    }

    fn get(&mut self, path: &str) -> Answer {
        self.request("GET", path, &[], None)
    }

    /// The form `fields` posted from a page of the console, with its token.
    fn post(&mut self, path: &str, fields: &str) -> Answer {
        let origin = self.origin();
        let form = format!("csrf={}&{fields}", self.token);
        self.request("POST", path, &[("Origin", &origin)], Some((FORM, form.as_bytes())))
    }

    fn operator_login(&mut self) {
        self.get("operator");
        let answer = self.post("operator/login", "login=operator-1&password=operator-1-password");
        assert_eq!((answer.status, answer.header("location")), (303, "/operator"), "{}", answer.body);
        let page = self.get("operator");
        assert!(page.body.contains("id=\"operator-id\">operator-1"), "{}", page.body);
    }
}

/// A page of another site (another port of 127.0.0.1, another host) that
/// posts the console's forms with the logged-in operator's cookie is
/// refused (`console.csrf`), as is a form without its token or with another
/// browser's, and no application is opened; from the console's own page
/// the same form opens one.
#[test]
fn a_form_from_another_site_or_without_its_token_is_refused_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    let mut operator = Browser::new(&url);
    operator.operator_login();
    let token = operator.token.clone();
    let mut stranger = Browser::new(&url);
    stranger.get("operator");
    let strangers = stranger.token.clone();
    assert!(token.len() == 64 && strangers.len() == 64 && token != strangers);
    let origin = operator.origin();
    let open = |token: Option<&str>| match token {
        Some(token) => format!("csrf={token}&applicant=850715300122"),
        None => "applicant=850715300122".to_owned(),
    };
    type Try<'t> = (&'t str, &'t [(&'t str, &'t str)], Option<&'t str>);
    let tries: [Try; 6] = [
        ("from another port", &[("Origin", "http://127.0.0.1:1")], Some(&token)),
        ("from another host", &[("Origin", "http://evil.example")], Some(&token)),
        ("from another host, said by the Referer", &[("Referer", "http://evil.example/page")], Some(&token)),
        ("with neither Origin nor Referer", &[], Some(&token)),
        ("without the token", &[("Origin", &origin)], None),
        ("with another browser's token", &[("Origin", &origin)], Some(&strangers)),
    ];
    for (what, headers, token) in tries {
        let form = open(token);
        let answer = operator.request("POST", "operator/new", headers, Some((FORM, form.as_bytes())));
        assert_eq!((answer.status, answer.code("csrf-problem")), (403, "console.csrf"), "{what}: {}", answer.body);
    }
    // Nor can another site log the browser in (as someone else).
    let login = format!("csrf={strangers}&login=operator-1&password=operator-1-password");
    let answer = stranger.request(
        "POST",
        "operator/login",
        &[("Origin", "http://evil.example")],
        Some((FORM, login.as_bytes())),
    );
    assert_eq!((answer.status, answer.code("csrf-problem")), (403, "console.csrf"), "{}", answer.body);
    assert!(!stranger.cookies.contains_key("egov_console"), "a session made: {:?}", stranger.cookies);
    // Nor act as a staff member: the head's signature, the office's reception.
    operator.get("staff");
    assert_eq!(operator.post("staff/login", "member=head-1").status, 303);
    operator.get("staff");
    let staff_token = operator.token.clone();
    let sign = format!("csrf={staff_token}&step=action-3");
    let answer = operator.request(
        "POST",
        "staff/registrations/RSHEP-1/act",
        &[("Origin", "http://127.0.0.1:1")],
        Some((FORM, sign.as_bytes())),
    );
    assert_eq!((answer.status, answer.code("csrf-problem")), (403, "console.csrf"), "{}", answer.body);
    // Nothing was opened: the workstation lists no application, the operator's page none.
    assert!(!http_get(&format!("{url}applications")).contains("data-application="), "an application was opened");
    assert!(!operator.get("operator").body.contains("data-application="));
    // From the console's own page, with its token, the same form opens one.
    let answer = operator.post("operator/new", "applicant=850715300122");
    assert_eq!(answer.status, 303, "{}", answer.body);
    let id = answer.header("location").strip_prefix("/operator/applications/").unwrap().to_owned();
    assert!(http_get(&format!("{url}applications")).contains(&format!("data-application=\"{id}\"")));
    assert!(served.terminate().0);
}

/// 10,100 visits without a cookie (more than the 10,000 sessions kept) do
/// not log the operator out: a visit makes no session.
#[test]
fn a_flood_of_anonymous_visits_logs_no_operator_out() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    let mut operator = Browser::new(&url);
    operator.operator_login();
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let stream = std::net::TcpStream::connect(address).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let started = Instant::now();
    let visits = 10_100;
    for _ in 0..visits {
        writer.write_all(format!("GET / HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes()).unwrap();
        let mut length = 0;
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }
    println!("{visits} anonymous visits in {:?}", started.elapsed());
    let page = operator.get("operator");
    assert!(page.body.contains("id=\"operator-id\">operator-1"), "logged out by the visits: {}", page.body);
    assert_eq!(operator.post("operator/new", "applicant=850715300122").status, 303, "the session acts");
    assert!(served.terminate().0);
}

/// A file over 2 MiB is refused next to its file picker with
/// `console.file_too_large` whatever its size (3 MB, and 20 MB, more than
/// the 16 MiB the console keeps of a form), and nothing is sent.
#[test]
fn a_file_too_large_is_refused_with_its_code_whatever_its_size() {
    let temp = tempfile::tempdir().unwrap();
    let (served, url) = serve(temp.path());
    let mut operator = Browser::new(&url);
    operator.operator_login();
    let answer = operator.post("operator/new", "applicant=850715300122");
    let page = answer.header("location").trim_start_matches('/').to_owned();
    assert!(page.starts_with("operator/applications/"), "{}", answer.body);
    for megabytes in [3, 20] {
        operator.get(&page);
        let mut body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"doc-application-form\"; filename=\"huge.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n",
            operator.token
        )
        .into_bytes();
        body.extend(std::iter::repeat_n(b'1', megabytes * 1000 * 1000));
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let origin = operator.origin();
        let answer = operator.request(
            "POST",
            &format!("{page}/submit"),
            &[("Origin", &origin)],
            Some(("multipart/form-data; boundary=XyZ", &body)),
        );
        assert_eq!(answer.status, 200, "{megabytes} MB: {}", answer.body);
        assert_eq!(
            answer.code("doc-application-form-problem"),
            "console.file_too_large",
            "{megabytes} MB: {}",
            answer.body
        );
        let kib = megabytes * 1000 * 1000 / 1024;
        assert!(answer.body.contains(&format!("huge.pdf is {kib} KiB, more than 2048 KiB")), "{}", answer.body);
        assert!(operator.get(&page).body.contains("id=\"state\">process-5"), "{megabytes} MB: something was sent");
    }
    assert!(served.terminate().0);
}

/// With `--tls` the console calls every participant over mTLS: as the
/// operator and the staff member whose certificates they are, and the
/// reads as the participant read.
#[test]
fn the_console_works_over_mtls() {
    let temp = tempfile::tempdir().unwrap();
    let keys = temp.path().join("keys");
    let init = Command::new(EGOV).args(["--tls", "keys", "init", "--dir"]).arg(&keys).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let mut command = Command::new(EGOV);
    command
        .args(["--tls", "serve", "--any-port", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(&keys)
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let url = served.said.iter().find_map(|line| line.strip_prefix("listening console ")).unwrap().to_owned();
    let mut browser = Browser::new(&url);
    browser.operator_login();
    let answer = browser.post("operator/new", "applicant=850715300122");
    assert_eq!(answer.status, 303, "{}", answer.body);
    let application = answer.header("location").to_owned();
    let id = application.strip_prefix("/operator/applications/").unwrap().to_owned();
    let page = browser.get(&application[1..]).body;
    assert!(page.contains("Серикбаев") && page.contains("id=\"state\">process-5"), "{page}");
    let listed = http_get(&format!("{url}applications"));
    assert!(listed.contains(&format!("data-application=\"{id}\"")), "{listed}");
    let detail = http_get(&format!("{url}applications/{id}"));
    assert!(detail.contains("data-verified=\"true\"") && !detail.contains("data-verified=\"false\""), "{detail}");
    assert!(!detail.contains("role=\"alert\""), "a participant refused a read over mTLS: {detail}");
    let answer = browser.post("staff/login", "member=office-1");
    assert_eq!(answer.status, 303, "{}", answer.body);
    let queue = browser.get("staff").body;
    assert!(queue.contains("id=\"member-id\">office-1") && !queue.contains("role=\"alert\""), "{queue}");
    let incidents = http_get(&format!("{url}incidents"));
    assert!(incidents.contains("id=\"no-incidents\"") && !incidents.contains("not reachable"), "{incidents}");
    assert!(served.terminate().0);
}

/// The console's SLA page lists what `egov sla report` lists, over the
/// stores the replay of the fixture library leaves (on simulated time); in
/// the browser, the missed step and term are marked on the timeline.
#[test]
fn the_sla_page_is_the_report_of_egov_sla_report() {
    let temp = tempfile::tempdir().unwrap();
    let kept = temp.path().join("kept");
    let replayed = Command::new(EGOV)
        .args(["replay", "--keep"])
        .arg(&kept)
        .arg("fixtures/applications")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}{}",
        String::from_utf8_lossy(&replayed.stdout),
        String::from_utf8_lossy(&replayed.stderr)
    );
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--any-port", "--simulated-time", "--data"])
        .arg(kept.join("data"))
        .arg("--keys")
        .arg(kept.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let url = served.said.iter().find_map(|line| line.strip_prefix("listening console ")).unwrap().to_owned();
    run_script("replayed.mjs", &[&url]);
    let page = http_get(&format!("{url}sla"));
    let mut shown: Vec<String> =
        page.split("data-row=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect();
    assert!(served.terminate().0);
    let report = Command::new(EGOV).args(["sla", "report", "--data"]).arg(kept.join("data")).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let text = String::from_utf8(report.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Fixed columns: application 40, registration 18, item 14, deadline 23, ended 23, standing.
    let mut listed: Vec<String> = lines[1..lines.len() - 1]
        .iter()
        .map(|line| format!("{} {} {}", line[..40].trim(), line[60..74].trim(), line[123..].trim()))
        .collect();
    shown.sort();
    listed.sort();
    assert!(listed.len() >= 4, "{text}");
    assert_eq!(shown, listed, "the console's SLA page and `egov sla report` differ:\n{page}");
}

/// The body of a chunked answer (an export is streamed), joined.
fn dechunked(answer: &Answer) -> String {
    if !answer.header("transfer-encoding").contains("chunked") {
        return answer.body.clone();
    }
    let bytes = answer.body.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = answer.body[at..].find("\r\n") {
        let size = usize::from_str_radix(answer.body[at..at + end].trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = at + end + 2;
        out.extend_from_slice(&bytes[start..start + size]);
        at = start + size + 2;
    }
    String::from_utf8(out).unwrap()
}

/// The ids of the rows of a list's page, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("<tr data-application=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect()
}

/// The page's link `id` (`next-page`, `previous-page`), unescaped.
fn link(page: &str, id: &str) -> Option<String> {
    let (_, rest) = page.split_once(&format!("id=\"{id}\" href=\""))?;
    Some(rest[..rest.find('"')?].replace("&amp;", "&").trim_start_matches('/').to_owned())
}

/// The lists over 10,000 applications, read from the participants' list
/// indexes: written straight into the workstation's store before it starts
/// (`egov_workstation::generated`), indexed when it starts (as a store
/// written before the lists were indexed is), then paged through
/// forward and back, sorted, filtered and exported over HTTP from the
/// console. Each page's time is printed (docs/console.md gives the figure);
/// none is asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_applications_page_sort_filter_and_export() {
    const COUNT: usize = 10_000;
    const JUNE_1_2026_08_00_ASTANA: i64 = 1_780_282_800_000;
    let temp = tempfile::tempdir().unwrap();
    let keys = common::init_keys(&temp.path().join("keys"));
    let topology = common::free_topology();
    let data = temp.path().join("data");
    let config = || {
        let mut config = egov_cli::stack::StackConfig::local(data.clone(), keys.clone(), common::fixtures_dir());
        config.topology = topology.clone();
        config.roles = [Role::Workstation, Role::Regional].into_iter().collect();
        config
    };
    let definition = egov_regulation::Definition::default_definition();
    let written = Instant::now();
    {
        let store = egov_store::Store::open(&data.join("workstation"), 8 << 20).unwrap();
        egov_workstation::generated::write(&store, definition, COUNT, JUNE_1_2026_08_00_ASTANA).await.unwrap();
    }
    let written = written.elapsed();
    let indexed = Instant::now();
    let stack = Stack::start(config()).await.unwrap();
    let indexed = indexed.elapsed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
    let console = egov_console::ConsoleConfig {
        topology: topology.clone(),
        keys: keys.clone(),
        tls: None,
        definition: Arc::new(definition.clone()),
        shep: None,
    };
    let console = tokio::spawn(egov_console::serve(listener, console, async move {
        let _ = console_stopped.await;
    }));

    let checks = tokio::task::spawn_blocking(move || {
        let mut timings: Vec<(String, Duration)> = Vec::new();
        let mut get = |path: &str| {
            let started = Instant::now();
            let answer = http("GET", &format!("{url}{path}"), &[], None);
            let took = started.elapsed();
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            let body = dechunked(&answer);
            timings.push((path.chars().take(60).collect(), took));
            body
        };
        let id = |n: usize| format!("gen-{n:05}");

        // Newest first, 50 a page: five pages forward, each once, in order.
        let mut page = get("applications");
        let mut seen = listed(&page);
        let shown = page.split("live-list").nth(1).unwrap_or_default().chars().take(1500).collect::<String>();
        assert_eq!(seen.first(), Some(&id(COUNT - 1)), "the newest first: {shown}");
        let mut pages = vec![page.clone()];
        for _ in 0..4 {
            page = get(&link(&page, "next-page").expect("a next page"));
            seen.extend(listed(&page));
            pages.push(page.clone());
        }
        let expected: Vec<String> = (COUNT - 250..COUNT).rev().map(id).collect();
        assert_eq!(seen, expected, "five pages in order, none twice, none missed");
        // And back: the previous page of the fifth is the fourth, of the second the first.
        let back = get(&link(&pages[4], "previous-page").expect("a previous page"));
        assert_eq!(listed(&back), listed(&pages[3]));
        let back = get(&link(&pages[1], "previous-page").unwrap());
        assert_eq!(listed(&back), listed(&pages[0]));
        assert!(link(&pages[0], "previous-page").is_none(), "the first page has none before it");

        // The last page: the oldest, and nothing after it.
        let oldest = get("applications?order=asc");
        assert_eq!(listed(&oldest).first(), Some(&id(0)));
        assert!(oldest.contains("aria-sort=\"ascending\""));

        // Sorted by the applicant's name, ascending, across two pages.
        let first = get("applications?sort=applicant&order=asc");
        let second = get(&link(&first, "next-page").unwrap());
        let names: Vec<String> = [first, second]
            .iter()
            .flat_map(|page| {
                page.split("<td class=\"applicant\">")
                    .skip(1)
                    .map(|rest| rest[..rest.find('<').unwrap()].to_lowercase())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!((names.len(), &names), (100, &sorted));

        // Filtered: by outcome (withdrawn among them), state, step, actor, date, name, IIN, id, overdue.
        let withdrawn = get("applications?outcome=withdrawn");
        let rows = listed(&withdrawn);
        assert_eq!(rows.len(), 50);
        assert!(rows.iter().all(|row| row[4..].parse::<usize>().unwrap() % 15 == 10), "{rows:?}");
        let unavailable = listed(&get("applications?state=ended&outcome=data-unavailable&order=asc"));
        assert_eq!(unavailable[..3], [id(5), id(20), id(35)]);
        let waiting = listed(&get("applications?step=process-5&actor=sc-operator"));
        assert!(
            waiting.len() == 50
                && waiting.iter().all(|row| ![5, 10].contains(&(row[4..].parse::<usize>().unwrap() % 15)))
        );
        // Started (a minute before opened) on 1 June 2026 in Astana: the first 138, 07:59 to 23:58.
        let day = get("applications?from=2026-06-01&to=2026-06-01");
        assert_eq!(listed(&day).first(), Some(&id(137)));
        let day_next = get(&link(&day, "next-page").unwrap());
        let day_last = get(&link(&day_next, "next-page").unwrap());
        assert_eq!(listed(&day_last).last(), Some(&id(0)));
        assert_eq!(listed(&day).len() + listed(&day_next).len() + listed(&day_last).len(), 138);
        assert!(link(&day_last, "next-page").is_none());
        let by_name = get(&format!("applications?order=asc&q={}", "%D0%B0%D1%85%D0%BC%D0%B5%D1%82%D0%BE%D0%B2%207"));
        assert_eq!(listed(&by_name).first(), Some(&id(7)), "found by name, in any case: ахметов 7");
        assert!(by_name.contains("Ахметов 72<") || listed(&by_name).contains(&id(72)));
        assert_eq!(listed(&get("applications?q=850715300042")), [id(42)], "found by IIN");
        assert_eq!(listed(&get("applications?q=gen-00042")), [id(42)], "found by id");
        let overdue = listed(&get("applications?standing=overdue&state=open"));
        assert_eq!(overdue.len(), 50, "every open one is overdue by now");

        // Exported: every row found, streamed a page at a time.
        let csv = get("applications?outcome=withdrawn&format=csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("application_id,applicant_name,applicant_iin,state"), "{}", lines[0]);
        assert_eq!(lines.len(), 1 + (0..COUNT).filter(|n| n % 15 == 10).count());
        assert!(lines[1].starts_with(&id(9985)) && lines[1].contains(",withdrawn,") && lines[1].contains("+05:00"));
        let json = get("applications?format=json");
        let exported: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(exported.len(), COUNT);
        assert_eq!(exported[0]["application_id"], id(COUNT - 1));
        let mut ids: Vec<&str> = exported.iter().map(|row| row["application_id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), COUNT, "each once");

        // The SLA page, a page at a time, and exported whole, filtered by how far past the deadline.
        let sla = get("sla");
        assert!(sla.contains("data-row=\"gen-09999 process-5 missed\""), "the newest first");
        assert!(link(&sla, "next-page").is_some());
        let csv = get("sla?format=csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "application_id,registration_id,item,started,deadline,ended,standing,overdue_by_minutes");
        let open = (0..COUNT).filter(|n| ![5, 10].contains(&(n % 15))).count();
        let late = |line: &&str| line.split(',').nth(7).and_then(|m| m.parse::<i64>().ok());
        assert!(lines.len() > open && lines[1..].iter().all(|line| late(line).is_some()), "every row overdue");
        let none = get("sla?over=1000000");
        assert!(none.contains("<strong id=\"found\">0</strong>"), "none a million hours late");
        timings
    })
    .await;
    let _ = stop_console.send(());
    let _ = console.await;
    stack.stop().await;
    let timings = checks.unwrap_or_else(|panic| {
        let panic = panic.into_panic();
        // Said here: a store opened elsewhere in the process may have taken the panic hook.
        let said =
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
        eprintln!("the checks failed: {}", said.unwrap_or_default());
        std::panic::resume_unwind(panic)
    });
    let pages: Vec<&Duration> =
        timings.iter().filter(|(path, _)| !path.contains("format=")).map(|(_, took)| took).collect();
    let mean = pages.iter().copied().sum::<Duration>() / pages.len() as u32;
    let slowest = pages.iter().copied().max().unwrap();
    println!("lists of {COUNT} applications: written in {written:?}, indexed at start in {indexed:?}");
    for (path, took) in &timings {
        println!("  {:>9.1} ms  /{path}", took.as_secs_f64() * 1000.0);
    }
    println!(
        "  pages: {}, mean {:.1} ms, slowest {:.1} ms",
        pages.len(),
        mean.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0
    );
}

/// A console on free ports of the test's process, over `harness`'s stack, with the key directory
/// `keys`: its URL, the sender that stops it and its task.
async fn console_on(
    harness: &common::Harness,
    keys: egov_runtime::KeyDir,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = egov_console::ConsoleConfig {
        topology: harness.topology().clone(),
        keys,
        tls: None,
        definition: Arc::clone(&harness.definition),
        shep: None,
    };
    let console = tokio::spawn(egov_console::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    (url, stop, console)
}

/// The application's page shows, for each participant that keeps a log, its part of the
/// evidence proved against its checkpoint (and, where the console's trust registry does not
/// give a participant its own key, what failed, with its code); the bundle it offers, written to a fresh directory
/// with the trust registry and checked there by `egov audit verify-bundle` with the stack
/// stopped and no data directory, holds; with one byte of an envelope changed, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_page_shows_its_evidence_proved_and_the_bundle_verifies_offline() {
    let harness = common::Harness::start().await;
    let application = harness.drive("evidenced-1", &common::in_person("850715300122")).await.unwrap();
    assert_eq!(application.outcome, "permitted", "{application:?}");
    // The console with the stack's key directory, and one whose trust registry gives the gateway
    // another member's key: there the gateway's checkpoint is not its own, and each part fails.
    let forged = harness.temp.path().join("forged-keys");
    std::fs::create_dir_all(&forged).unwrap();
    let trust_text = std::fs::read_to_string(harness.temp.path().join("keys/trust.toml")).unwrap();
    let public_of = |member: &str| {
        let section = trust_text.split("[[member]]").find(|s| s.contains(&format!("id = \"{member}\""))).unwrap();
        let (_, rest) = section.split_once("public = \"").unwrap();
        rest[..rest.find('"').unwrap()].to_owned()
    };
    std::fs::write(
        forged.join("trust.toml"),
        trust_text.replace(&public_of(egov_runtime::ids::GATEWAY), &public_of("operator-1")),
    )
    .unwrap();
    let (url, stop_console, console) = console_on(&harness, harness.keys.clone()).await;
    let (forged_url, stop_forged, forged_console) = console_on(&harness, egov_runtime::KeyDir::new(&forged)).await;
    let fetched = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let page = http_get(&format!("{url}applications/evidenced-1"));
            let bundle = http("GET", &format!("{url}applications/evidenced-1/evidence"), &[], None);
            let russian = http("GET", &format!("{url}applications/evidenced-1"), &[("Cookie", "egov_lang=ru")], None);
            let forged = http_get(&format!("{forged_url}applications/evidenced-1"));
            (page, bundle, russian, forged)
        })
        .await
        .unwrap()
    };
    for (stop, console) in [(stop_console, console), (stop_forged, forged_console)] {
        let _ = stop.send(());
        let _ = console.await;
    }
    let trust_file = harness.temp.path().join("keys/trust.toml");
    let elsewhere = tempfile::tempdir().unwrap();
    let trust = elsewhere.path().join("trust.toml");
    std::fs::copy(&trust_file, &trust).unwrap();
    harness.stop().await;

    let (page, bundle, russian, forged) = fetched;
    // What failed, per participant, with its code.
    for (name, code) in [
        ("gateway", "audit.checkpoint_forged"),
        ("workstation", "audit.envelope_invalid"),
        ("regional", "audit.envelope_invalid"),
    ] {
        assert!(forged.contains(&format!("data-participant=\"{name}\" data-proved=\"false\"")), "{name}: {forged}");
        let alert = format!("id=\"evidence-{name}-problem\" role=\"alert\" data-code=\"{code}\"");
        assert!(forged.contains(&alert), "{name}: {forged}");
    }
    assert!(page.contains("id=\"evidence-title\""), "{page}");
    assert!(!page.contains("role=\"alert\""), "a part failed: {page}");
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    assert_eq!(bundle.header("content-type"), "application/json");
    assert_eq!(bundle.header("content-disposition"), "attachment; filename=\"evidence-evidenced-1.json\"");
    let json: serde_json::Value = serde_json::from_str(&bundle.body).unwrap();
    assert_eq!((json["format"].as_str(), json["application"].as_str()), (Some("egov-evidence/1"), Some("evidenced-1")));
    for (name, member) in [
        ("workstation", egov_runtime::ids::SC_WORKSTATION),
        ("gateway", egov_runtime::ids::GATEWAY),
        ("regional", egov_runtime::ids::REGIONAL),
    ] {
        // The line of the participant: proved against the checkpoint the bundle holds, with its entries.
        let (_, item) = page
            .split_once(&format!("data-participant=\"{name}\" data-proved=\"true\""))
            .unwrap_or_else(|| panic!("the {name}'s part is not proved on the page: {page}"));
        let item = &item[..item.find("</li>").unwrap()];
        let log = json["logs"].as_array().unwrap().iter().find(|log| log["participant"] == name).unwrap();
        let size = log["checkpoint"].as_str().unwrap().lines().nth(1).unwrap().to_owned();
        let entries = log["entries"].as_array().unwrap().len();
        assert_eq!(log["member"], member);
        assert!(
            item.contains(&format!("data-size=\"{size}\" data-member=\"{member}\" data-entries=\"{entries}\"")),
            "{name}: {item}"
        );
        assert!(item.contains(&format!("proved against checkpoint {size} of participant ")), "{name}: {item}");
        assert!(item.contains(&format!("({member}): {entries} entries")), "{name}: {item}");
    }
    assert!(page.contains("id=\"evidence-bundle\" href=\"/applications/evidenced-1/evidence\""), "{page}");
    assert_eq!(russian.status, 200);
    assert!(russian.body.contains("доказано относительно контрольной точки"), "{}", russian.body);

    let verify = |file: &Path| {
        let output = Command::new(EGOV)
            .args(["audit", "verify-bundle"])
            .arg(file)
            .arg("--trust")
            .arg(&trust)
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let file = elsewhere.path().join("evidence.json");
    std::fs::write(&file, &bundle.body).unwrap();
    let (ok, printed) = verify(&file);
    assert!(ok && printed.contains("verify-bundle: ok"), "{printed}");
    for name in ["workstation (", "gateway (", "regional ("] {
        assert!(printed.contains(name), "{printed}");
    }
    // One byte of an envelope changed: its leaf is no longer in the tree.
    let mut changed = json.clone();
    let envelope = changed["logs"][0]["entries"][0]["envelope"].as_str().unwrap().to_owned();
    let at = envelope.len() / 4 * 2;
    let byte = u8::from_str_radix(&envelope[at..at + 2], 16).unwrap() ^ 0x01;
    changed["logs"][0]["entries"][0]["envelope"] =
        format!("{}{byte:02x}{}", &envelope[..at], &envelope[at + 2..]).into();
    let tampered = elsewhere.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec_pretty(&changed).unwrap()).unwrap();
    let (ok, printed) = verify(&tampered);
    assert!(!ok && printed.contains("REFUSED audit.proof_invalid"), "{printed}");
}
