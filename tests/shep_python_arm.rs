//! Issue 26: the regional ARM as an external push recipient written with
//! another library. `tests/python/shep_push_arm.py` (the standard library's
//! http.server and lxml, from docs/shep.md only) takes the applications egov's
//! SHEP edge pushes to it over `sendMessage` and reports back on each chain
//! (`NOTIFICATION`s, then the head's result as a `RESPONSE`); egov's own State
//! Corporation workstation gets them, and its operator hands over the result
//! the edge signed as head-1. The applications are the fixture scenarios whose
//! route the ARM plays (in person, permitted): each ends with the outcome and
//! the path the scenario expects, the verdict `egov replay` gives them with
//! egov's own ARM.
//!
//! It needs `python3` with lxml (`tests/python/requirements.txt`, installed by
//! `tests/install.sh`); without it the test fails, saying how to install it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use egov_client::OperatorClient;
use egov_runtime::{Clock as _, KeyDir, SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
/// How long one application may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// The Python ARM, killed when the test ends, however it ends.
struct Arm {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    said: Vec<String>,
}

impl Drop for Arm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Arm {
    /// Waits for a line of the ARM's that `wanted` picks out.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    assert!(!line.starts_with("failed "), "the Python ARM: {line} (it said {:?})", self.said);
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("the Python ARM never said {what}: {:?}", self.said),
            }
        }
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/shep_push_arm.py")
}

/// Starts the Python ARM on `port`, reporting to `edge` as rshep-astana.
fn python_arm(port: u16, edge: &str, password_file: &std::path::Path) -> Arm {
    let probe = Command::new("python3").args(["-c", "import lxml"]).output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "python3 cannot import lxml ({}); install it with `python3 -m pip install -r tests/python/requirements.txt`",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("python3 cannot be run ({error}); the Python ARM test needs it"),
    }
    let mut child = Command::new("python3")
        .arg(script())
        .args(["--edge", edge, "--sender", "rshep-astana", "--port", &port.to_string(), "--password-file"])
        .arg(password_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut arm = Arm { child, lines, said: Vec::new() };
    let listening = arm.wait_for("where it listens", |line| line.starts_with("listening "));
    assert_eq!(listening, format!("listening http://127.0.0.1:{port}/arm"));
    arm
}

/// Waits until `ready` holds of the application as the workstation sees it.
async fn wait_for(
    operator: &OperatorClient,
    application_id: &str,
    what: &str,
    ready: impl Fn(&egov_proto::Application) -> bool,
) -> egov_proto::Application {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        if let Ok(application) = operator.application(application_id).await {
            if ready(&application) {
                return application;
            }
            last = Some(application);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{application_id}: {what} never came; last seen {last:?}")
}

#[tokio::test]
async fn a_python_arm_on_lxml_takes_pushed_applications_and_its_reports_give_the_same_verdict() {
    let temp = tempfile::tempdir().unwrap();
    let keys = temp.path().join("keys");
    let made = Command::new(EGOV).args(["keys", "init", "--dir"]).arg(&keys).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // The ARM's port, free now: egov pushes there, and only once an application is submitted.
    let arm_port = common::free_port();
    let mut command = Command::new(EGOV);
    command
        .args(["serve", "--any-port", "--console", "off", "--external"])
        .arg(format!("regional=push:http://127.0.0.1:{arm_port}/arm"))
        .arg("--data")
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(&keys)
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(std::fs::File::create(temp.path().join("serve.stderr")).unwrap());
    let served = common::Served::start(command);
    let said = |prefix: &str| {
        served.said.iter().find_map(|line| line.strip_prefix(prefix)).map(|rest| rest.trim_end_matches('/').to_owned())
    };
    assert!(said("listening regional ").is_none(), "the external role is not run: {:?}", served.said);
    let edge = format!("http://{}/bip-async/", said("listening shep http://").unwrap());
    let workstation = said("listening workstation ").unwrap();
    let mut arm = python_arm(arm_port, &edge, &keys.join("secrets/shep-rshep-astana.password"));

    let key_dir = KeyDir::new(&keys);
    let trust = key_dir.trust().unwrap();
    let mut operator = OperatorClient::new(
        Topology::channel(&workstation).unwrap(),
        key_dir.signer_in(&trust, "operator-1").unwrap(),
        Arc::new(SystemClock),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let definition = egov_regulation::Definition::default_definition().clone();
    let issue_step = definition.step_by_effect(egov_regulation::Effect::IssueResult).unwrap().id.clone();
    // The fixture scenarios whose route the ARM plays: in person, the documents comply, permitted.
    let scenarios: Vec<_> = egov_replay::load(&[common::fixtures_dir().join("applications")])
        .unwrap()
        .into_iter()
        .filter(|s| {
            let plan = &s.application;
            s.channel.is_none()
                && plan.representative.is_none()
                && plan.decision == egov_client::Decision::Approve
                && plan.result_decision == egov_client::Decision::Approve
                && s.durations.is_empty()
                && s.collect_at.is_none()
                && s.queue_wait.is_none()
                && s.expect.outcome == "permitted"
                && s.expect.missed.is_empty()
                && s.expect.come_back_at.is_none()
        })
        .take(2)
        .collect();
    let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
    assert!(ids.len() == 2 && ids.contains(&"approval-in-person"), "{ids:?}");
    for scenario in &scenarios {
        let (app, plan) = (format!("APP-PY-{}", scenario.id), &scenario.application);
        let iin = plan.applicant_iin.as_str();
        // Processes 1-6 at egov's own workstation: the form, the documents, the signed submission.
        operator.open_form(&app, &definition.service.code, iin, None).await.unwrap();
        let documents = plan.documents.iter().map(|d| d.to_proto()).collect();
        operator.submit(&app, documents).await.unwrap();
        // The edge pushes it to the Python ARM, which reports back on the chain.
        arm.wait_for("the application received", |line| line == format!("received {app}"));
        arm.wait_for("its reports sent", |line| line == format!("reported {app}"));
        let registered = wait_for(&operator, &app, "the registration", |a| !a.registration_id.is_empty()).await;
        assert_eq!(registered.registration_id, format!("PY-{app}"));
        let ready = wait_for(&operator, &app, "the signed result", |a| a.current_step == issue_step).await;
        assert!(ready.outcome.is_empty() || ready.outcome == "permitted", "{ready:?}");
        // Process 9: the applicant's ticket, called to the operator, then the result handed over.
        operator.take_ticket(&app).await.unwrap();
        operator.call_next().await.unwrap();
        let issued = operator.issue(&app).await.unwrap();
        let application = issued.application.unwrap();
        // The scenario's verdict, as replayed with egov's own ARM: its outcome and its path.
        let path: Vec<String> = application.path.iter().map(|step| step.step_id.clone()).collect();
        assert_eq!(
            (application.outcome.as_str(), &path),
            (scenario.expect.outcome.as_str(), &scenario.expect.path),
            "{}",
            scenario.id
        );
        // The head's result, signed by the edge as head-1 for the ARM, verifies against the trust registry.
        let result = issued.result.expect("the result is handed over signed");
        let checks = egov_envelope::Checks { freshness_window_ms: None, ..egov_envelope::Checks::default() };
        let verified = egov_envelope::open(&result, &trust, SystemClock.now_ms(), &checks).unwrap();
        assert_eq!(verified.header.sender_id, "head-1");
        let body = <egov_proto::ServiceResult as prost::Message>::decode(&result.body[..]).unwrap();
        assert_eq!((body.application_id.as_str(), body.outcome.as_str()), (app.as_str(), "permitted"));
        assert_eq!((body.applicant_iin.as_str(), body.provider.as_str()), (iin, "rshep-astana"));
    }
    // What egov cannot have pushed, the ARM refuses with a fault, and says why.
    let (status, answer) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", arm_port)).unwrap();
        let body = "<a/>";
        use std::io::{Read as _, Write as _};
        write!(
            stream,
            "POST /arm HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        (answer.split(' ').nth(1).unwrap_or("").to_owned(), answer)
    })
    .await
    .unwrap();
    assert_eq!(status, "500", "{answer}");
    assert!(answer.contains("<errorCode>SCE002</errorCode>") && answer.contains("not a SOAP 1.1 envelope"), "{answer}");
    drop(arm);
    let (stopped, _) = served.terminate();
    assert!(stopped);
}
