//! Whole applications with the State Corporation side and the ARM side on
//! SOAP (docs/shep.md): egov runs the gateway, the registries and the SHEP
//! edge; the bench is both external systems.
//!
//! - The State Corporation system, for each application: a sync look-up of the
//!   applicant (`GBDFL_PERSON_BY_IIN`), the application as an async `REQUEST`
//!   (`RSHEP_APPLICATION_SUBMIT`, the operator's submission carried for the edge
//!   to sign), then `getMessages` on the application's chain until the result,
//!   acknowledging each report with `sendDeliveryNotification`.
//! - The regional ARM, an HTTP server in this process that the edge pushes to:
//!   it answers `sendMessageResponse`, then reports back on the chain as egov's
//!   own ARM does: the registration (`NOTIFICATION`), the staff's progress
//!   (`NOTIFICATION`) and the head's result (`RESPONSE`, carried for the edge to
//!   sign as head-1).

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use egov_runtime::{Clock as _, KeyDir, SystemClock, ids};
use egov_shep::External;
use egov_shep::push::{HttpClient, exchange};
use egov_stack::{Stack, StackConfig};

/// The State Corporation system's sender (its password is its id).
const SC_SENDER: &str = "bench-sc-app";
/// The ARM's sender (its password is its id).
const ARM_SENDER: &str = "bench-arm";
/// The operator whose submission the State Corporation system carries.
const OPERATOR: &str = "operator-1";
/// The head whose result the ARM carries.
const HEAD: &str = "head-1";
const SYNC: &str = "bip-sync-wss-gost/";
const ASYNC: &str = "bip-async/";
const PROGRESS: &str = "SC_APPLICATION_PROGRESS";
/// How long the State Corporation system waits between two empty polls.
const POLL_PAUSE: Duration = Duration::from_millis(10);
/// How long one application may take before it counts as failed.
const PATIENCE: Duration = Duration::from_secs(60);
/// One byte (0), the documents' content: base64 and SHA-256.
const CONTENT: &str = "AA==";
const CONTENT_SHA256: &str = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";

/// What a run measured.
pub(crate) struct ShepApplications {
    pub count: usize,
    pub passed: usize,
    pub seconds: f64,
    /// SOAP requests: the State Corporation system's and the ARM's.
    pub requests: u64,
    /// Pushes the ARM received.
    pub pushes: u64,
    pub first_error: Option<String>,
}

/// Counts and the first error, shared by both external systems.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    pushes: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, error: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }
}

/// Runs `count` applications, `concurrency` at once, through a fresh stack in
/// `data` whose State Corporation and ARM are external SOAP systems in this process.
pub(crate) async fn run(
    keys: &KeyDir,
    fixtures: &Path,
    data: &Path,
    iins: &[String],
    count: usize,
    concurrency: usize,
) -> anyhow::Result<ShepApplications> {
    eprintln!("bench: {count} applications over SOAP (external State Corporation and ARM), {concurrency} at once");
    let senders = egov_shep::senders::Senders::load(keys.path())?;
    for (sender, member, signs_for) in [(SC_SENDER, ids::SC_WORKSTATION, OPERATOR), (ARM_SENDER, ids::REGIONAL, HEAD)] {
        if senders.get(sender).is_none() {
            egov_shep::senders::add_sender(keys.path(), sender, member, Some(sender), &[signs_for.to_owned()], None)?;
        }
    }
    let tally = Arc::new(Tally::default());
    let http = egov_shep::push::client();

    // The ARM, pushed to; it reports back to the edge, whose address it learns once the stack is up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let arm_url = format!("http://{}/arm", listener.local_addr()?);
    let edge_url = Arc::new(std::sync::OnceLock::<String>::new());
    let arm = Arm { http: http.clone(), edge: Arc::clone(&edge_url), tally: Arc::clone(&tally) };
    let router = axum::Router::new().route("/arm", axum::routing::post(pushed)).with_state(arm);
    let (stop_arm, arm_stopped) = tokio::sync::oneshot::channel::<()>();
    let arm_task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = arm_stopped.await;
            })
            .await
    });

    let mut config = StackConfig::local(data.to_owned(), keys.clone(), fixtures.to_owned());
    config.shep = Some(egov_shep::EdgeSettings {
        address: "127.0.0.1:0".to_owned(),
        grpc_address: "127.0.0.1:0".to_owned(),
        external: [("workstation".to_owned(), External::Poll), ("regional".to_owned(), External::Push(arm_url))]
            .into_iter()
            .collect(),
        ..egov_shep::EdgeSettings::default()
    });
    let stack = Stack::start(config).await?;
    let base = format!("http://{}/", stack.shep_address().context("the stack has no SHEP face")?);
    let _ = edge_url.set(base.clone());

    let next = Arc::new(AtomicUsize::new(0));
    let passed = Arc::new(AtomicUsize::new(0));
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let iins = Arc::new(iins.to_vec());
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(count) {
        let sc = Sc { http: http.clone(), base: base.clone(), tally: Arc::clone(&tally) };
        let (next, passed, iins, run_id) = (Arc::clone(&next), Arc::clone(&passed), Arc::clone(&iins), run_id.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                let application_id = format!("SHEP-{}-{n}", &run_id[..8]);
                let iin = &iins[n % iins.len()];
                match tokio::time::timeout(PATIENCE, sc.application(&application_id, iin)).await {
                    Ok(Ok(())) => {
                        passed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(error)) => sc.tally.error(format!("{application_id}: {error}")),
                    Err(_) => sc.tally.error(format!("{application_id}: no result within {PATIENCE:?}")),
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    stack.stop().await;
    let _ = stop_arm.send(());
    let _ = arm_task.await;
    let first_error = tally.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(ShepApplications {
        count,
        passed: passed.load(Ordering::Relaxed),
        seconds,
        requests: tally.requests.load(Ordering::Relaxed),
        pushes: tally.pushes.load(Ordering::Relaxed),
        first_error,
    })
}

/// Posts `request` to the edge's `path`: the answer, or why it is not a success.
async fn call(http: &HttpClient, tally: &Tally, url: &str, request: String) -> Result<String, String> {
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let (status, answer) = exchange(http, url, request).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if status.is_success() {
        Ok(answer)
    } else {
        Err(format!("HTTP {status}: {}", answer.chars().take(400).collect::<String>()))
    }
}

fn now() -> String {
    chrono::DateTime::from_timestamp_millis(SystemClock.now_ms()).unwrap_or_default().to_rfc3339()
}

fn envelope(body: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{body}\
         </soapenv:Body></soapenv:Envelope>"
    )
}

fn sender(id: &str) -> String {
    format!("<sender><senderId>{id}</senderId><password>{id}</password></sender>")
}

/// An async `sendMessage` from `from`.
fn send_message(from: &str, message_type: &str, service: &str, correlation: Option<&str>, data: &str) -> String {
    let correlation = correlation.map(|id| format!("<correlationId>{id}</correlationId>")).unwrap_or_default();
    envelope(&format!(
        "<ns:sendMessage xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request><messageInfo>\
         <messageId>{}</messageId>{correlation}<serviceId>{service}</serviceId><messageType>{message_type}</messageType>\
         <messageDate>{}</messageDate>{}</messageInfo><messageData><data>{data}</data></messageData></request>\
         </ns:sendMessage>",
        uuid::Uuid::new_v4(),
        now(),
        sender(from),
    ))
}

/// The texts of the elements named `name` anywhere in `xml` (any prefix).
fn texts(xml: &str, name: &str) -> Vec<String> {
    let Ok(document) = roxmltree::Document::parse(xml) else { return Vec::new() };
    document
        .descendants()
        .filter(|node| node.tag_name().name() == name)
        .map(|node| node.text().unwrap_or("").trim().to_owned())
        .collect()
}

fn text(xml: &str, name: &str) -> Option<String> {
    texts(xml, name).into_iter().next()
}

/// The State Corporation system.
struct Sc {
    http: HttpClient,
    base: String,
    tally: Arc<Tally>,
}

impl Sc {
    async fn post(&self, path: &str, request: String) -> Result<String, String> {
        call(&self.http, &self.tally, &format!("{}{path}", self.base), request).await
    }

    /// One application, from the look-up to the acknowledged result.
    async fn application(&self, application_id: &str, iin: &str) -> Result<(), String> {
        // Process 3: the applicant's data.
        let lookup = envelope(&format!(
            "<t:SendMessage xmlns:t=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo>\
             <messageId>{}</messageId><serviceId>GBDFL_PERSON_BY_IIN</serviceId><messageDate>{}</messageDate>{}\
             </requestInfo><requestData><data><PersonQuery><iin>{iin}</iin></PersonQuery></data></requestData>\
             </request></t:SendMessage>",
            uuid::Uuid::new_v4(),
            now(),
            sender(SC_SENDER),
        ));
        let answer = self.post(SYNC, lookup).await?;
        if text(&answer, "code").as_deref() != Some("SCSS001") || text(&answer, "found").as_deref() != Some("true") {
            return Err(format!("the look-up of {iin} was not answered with the person: {answer}"));
        }
        let surname = text(&answer, "surname").unwrap_or_default();
        let name = text(&answer, "name").unwrap_or_default();

        // Processes 5 and 6: the application, the operator's submission carried.
        let documents: String = ["application-form", "identity-document"]
            .iter()
            .map(|kind| {
                format!(
                    "<documents><kind>{kind}</kind><title>{kind}</title><pages>1</pages>\
                     <sha256>{CONTENT_SHA256}</sha256><content>{CONTENT}</content></documents>"
                )
            })
            .collect();
        let application = format!(
            "<ApplicationDelivery><applicationId>{application_id}</applicationId><serviceCode>bench</serviceCode>\
             <applicant><iin>{iin}</iin><surname>{}</surname><name>{}</name></applicant>\
             <operatorSubmission signedBy=\"{OPERATOR}\"><ApplicationSubmission><sessionId>bench</sessionId>\
             <applicationId>{application_id}</applicationId>{documents}</ApplicationSubmission></operatorSubmission>\
             </ApplicationDelivery>",
            escape(&surname),
            escape(&name),
        );
        let request = send_message(SC_SENDER, "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application);
        let answer = self.post(ASYNC, request).await?;
        if text(&answer, "correlationId").as_deref() != Some(application_id) {
            return Err(format!("the application's answer does not name its chain: {answer}"));
        }

        // The provider's progress and result, polled on the chain and acknowledged.
        loop {
            let poll = envelope(&format!(
                "<ns:getMessages xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request>\
                 <correlationId>{application_id}</correlationId><requestDate>{}</requestDate>\
                 <serviceId>{PROGRESS}</serviceId>{}<amount>0</amount></request></ns:getMessages>",
                now(),
                sender(SC_SENDER),
            ));
            let answer = self.post(ASYNC, poll).await?;
            let document = roxmltree::Document::parse(&answer).map_err(|e| format!("getMessages: {e}"))?;
            let mut result = None;
            let mut offered = Vec::new();
            for message in document.descendants().filter(|node| node.tag_name().name() == "messages") {
                let child = |name: &str| {
                    message.descendants().find(|node| node.tag_name().name() == name).and_then(|n| n.text())
                };
                let id = child("messageId").unwrap_or("").trim().to_owned();
                if child("messageType").map(str::trim) == Some("RESPONSE") {
                    result = child("outcome").map(|outcome| outcome.trim().to_owned());
                }
                offered.push(id);
            }
            for id in &offered {
                let ack = envelope(&format!(
                    "<ns:sendDeliveryNotification xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request>\
                     <notification><messageId>{id}</messageId><serviceId>{PROGRESS}</serviceId>\
                     <notificationDate>{now}</notificationDate><deliveryStatus>\
                     <receiveStatus>MESSAGE_ACCEPTED</receiveStatus><statusDate>{now}</statusDate>\
                     <resendMessage>NOT_RESEND</resendMessage></deliveryStatus></notification>\
                     <requestDate>{now}</requestDate>{}</request></ns:sendDeliveryNotification>",
                    sender(SC_SENDER),
                    now = now(),
                ));
                self.post(ASYNC, ack).await?;
            }
            match result {
                Some(outcome) if outcome == "permitted" => return Ok(()),
                Some(outcome) => return Err(format!("the result is {outcome:?}, not permitted")),
                None if offered.is_empty() => tokio::time::sleep(POLL_PAUSE).await,
                None => {}
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The regional ARM, pushed to by the edge.
#[derive(Clone)]
struct Arm {
    http: HttpClient,
    edge: Arc<std::sync::OnceLock<String>>,
    tally: Arc<Tally>,
}

/// A push: answered at once; the reports follow from a task of their own.
async fn pushed(axum::extract::State(arm): axum::extract::State<Arm>, body: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    arm.tally.pushes.fetch_add(1, Ordering::Relaxed);
    let correlation = text(&body, "correlationId");
    let (application_id, iin) = (text(&body, "applicationId"), text(&body, "iin"));
    let answer = envelope(&format!(
        "<ns:sendMessageResponse xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><response>\
         <messageId>{}</messageId><correlationId>{}</correlationId><responseDate>{}</responseDate>\
         </response></ns:sendMessageResponse>",
        uuid::Uuid::new_v4(),
        correlation.clone().unwrap_or_default(),
        now(),
    ));
    match (correlation, application_id, iin, arm.edge.get().cloned()) {
        (Some(chain), Some(application_id), Some(iin), Some(base)) => {
            tokio::spawn(async move {
                if let Err(error) = arm.report(&base, &chain, &application_id, &iin).await {
                    arm.tally.error(format!("the ARM's report on {chain}: {error}"));
                }
            });
        }
        _ => arm.tally.error(format!("a push the ARM cannot read: {}", body.chars().take(400).collect::<String>())),
    }
    ([(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")], answer).into_response()
}

impl Arm {
    /// The registration, the staff's progress and the head's result, on the chain.
    async fn report(&self, base: &str, chain: &str, application_id: &str, iin: &str) -> Result<(), String> {
        let registration_id = format!("R-{application_id}");
        let step = |step: &str, actor: &str, actor_id: &str| {
            format!(
                "<path><stepId>{step}</stepId><actor>{actor}</actor><actorId>{actor_id}</actorId>\
                 <endedTimeMs>{}</endedTimeMs></path>",
                SystemClock.now_ms()
            )
        };
        let progress = |path: &str, sequence: usize, result: &str| {
            format!(
                "<ApplicationProgress><applicationId>{application_id}</applicationId>\
                 <registrationId>{registration_id}</registrationId>{path}{result}<sequence>{sequence}</sequence>\
                 </ApplicationProgress>"
            )
        };
        let registered = step("process-7", "provider-office", "office-1");
        let examined = step("action-2", "provider-executor", "executor-1");
        let signed = step("action-4", "provider-head", HEAD);
        let result = format!(
            "<signedResult signedBy=\"{HEAD}\"><ServiceResult><applicationId>{application_id}</applicationId>\
             <registrationId>{registration_id}</registrationId><serviceCode>bench</serviceCode>\
             <applicantIin>{iin}</applicantIin><outcome>permitted</outcome><provider>{}</provider>\
             </ServiceResult></signedResult>",
            ids::REGIONAL
        );
        let reports = [
            ("NOTIFICATION", progress(&registered, 1, "")),
            ("NOTIFICATION", progress(&format!("{registered}{examined}"), 2, "")),
            ("RESPONSE", progress(&format!("{registered}{examined}{signed}"), 3, &result)),
        ];
        let url = format!("{base}{ASYNC}");
        for (message_type, payload) in reports {
            let request = send_message(ARM_SENDER, message_type, PROGRESS, Some(chain), &payload);
            let answer = call(&self.http, &self.tally, &url, request).await?;
            if text(&answer, "correlationId").as_deref() != Some(chain) {
                return Err(format!("the {message_type}'s answer does not name the chain: {answer}"));
            }
        }
        Ok(())
    }
}
