//! Replaying scenarios against a stack.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, FixedOffset, NaiveDate};
use egov_client::{Driven, OperatorClient, Pacer, Patience, RouteError, StaffClient};
use egov_envelope::Signer;
use egov_proto::{Application, ServiceResult};
use egov_regulation::instance::{deadline, to_local};
use egov_regulation::{Calendar, Definition, Duration, Step};
use egov_runtime::{SimClock, Topology, ids};
use prost::Message;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::scenario::{Expectation, Scenario};

/// The stack replayed against, and the people's keys and passwords.
#[derive(Debug, Clone)]
pub struct Target {
    pub topology: Topology,
    pub definition: Arc<Definition>,
    /// Operator member id → (login, password).
    pub operators: HashMap<String, (String, String)>,
    /// Operator member id → key.
    pub operator_keys: HashMap<String, Signer>,
    /// Staff role → key.
    pub staff_keys: HashMap<String, Signer>,
    /// mTLS: each person's calls present their certificate from here; none: plaintext.
    pub tls: Option<egov_runtime::tls::TlsDir>,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios replayed at once.
    pub concurrency: usize,
    /// Added to each scenario id to make the application ids of this run unique.
    pub run_id: String,
    pub patience: Patience,
    /// How patiently each call is sent while a participant is unreachable or restarting.
    pub persistence: egov_client::Persistence,
    /// Report progress on stderr.
    pub progress: bool,
}

/// What came of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actual {
    pub outcome: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub path: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub notice: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refusal_ground: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
    /// When the applicant, who came before the result, was told to come back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub come_back_at: Option<DateTime<FixedOffset>>,
    /// How long the applicant waited in the queue for process 9 ("N min"), once served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<String>,
    /// The application id used.
    pub application_id: String,
    /// Where the replay itself failed (not an outcome of the regulation).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A scenario's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub scenario: String,
    pub description: String,
    pub expected: Expectation,
    pub actual: Actual,
    /// Every difference between expected and actual; empty: passed.
    pub differences: Vec<String>,
    pub elapsed_ms: u128,
    /// The application as the workstation saw it at the end, with its path.
    #[serde(skip)]
    pub application: Option<Application>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Moves a scenario's simulated clock by each step's duration: the one the
/// scenario gives, or the regulatory one; and to when the applicant comes
/// for the result (`collect_at`), and by their wait in the queue.
struct ScenarioPacer {
    clock: Arc<SimClock>,
    calendar: &'static Calendar,
    /// Whose working hours each step counts in.
    definition: Arc<Definition>,
    durations: BTreeMap<String, Duration>,
    /// When the applicant comes for the result; none: as soon as it is there.
    collect_at: Option<i64>,
    queue_wait_ms: i64,
    visit: Mutex<Visit>,
}

/// The applicant's visit for the result, as far as it went.
#[derive(Debug, Default)]
struct Visit {
    /// They came (at `collect_at`).
    came: bool,
    /// They came while a staff step was being done: where it began, which its duration counts from.
    step_began_ms: Option<i64>,
}

impl ScenarioPacer {
    fn clock_ms(&self) -> i64 {
        egov_runtime::Clock::now_ms(&*self.clock)
    }

    fn duration(&self, step: &Step) -> Option<Duration> {
        self.durations.get(&step.id).copied().or(step.duration)
    }

    /// When `step`, begun at `began_ms`, ends: its duration in its actor's working hours.
    fn ends(&self, step: &Step, began_ms: i64) -> Option<i64> {
        deadline(&self.definition.calendar_for(self.calendar, &step.actor), began_ms, self.duration(step)?)
    }

    fn visit(&self) -> std::sync::MutexGuard<'_, Visit> {
        self.visit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pacer for ScenarioPacer {
    fn before(&self, step: &Step) {
        let now = self.clock_ms();
        let began = self.visit().step_began_ms.take().unwrap_or(now);
        if let Some(end) = self.ends(step, began) {
            self.clock.set(end.max(now));
        }
    }

    fn now_ms(&self) -> Option<i64> {
        Some(self.clock_ms())
    }

    fn arrives_during(&self, step: &Step) -> bool {
        let Some(arrival) = self.collect_at else { return false };
        let mut visit = self.visit();
        let now = self.clock_ms();
        let ends = self.ends(step, now).unwrap_or(now);
        if visit.came || arrival >= ends {
            return false;
        }
        visit.came = true;
        visit.step_began_ms = Some(now);
        self.clock.set(arrival.max(now));
        true
    }

    fn arrives(&self, come_back_ms: Option<i64>) {
        let mut visit = self.visit();
        let mut at = self.clock_ms();
        if !visit.came {
            visit.came = true;
            at = at.max(self.collect_at.unwrap_or(at));
        }
        self.clock.set(at.max(come_back_ms.unwrap_or(at)));
    }

    fn waits_in_queue(&self) {
        self.clock.advance(self.queue_wait_ms);
    }
}

/// Replays `scenarios` against `target`; the verdicts come in the scenarios' order.
pub async fn replay(target: &Target, scenarios: Vec<Scenario>, options: &Options) -> Vec<Verdict> {
    let target = Arc::new(target.clone());
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let total = scenarios.len();
    let mut tasks = Vec::with_capacity(total);
    for scenario in scenarios {
        let target = Arc::clone(&target);
        let semaphore = Arc::clone(&semaphore);
        let done = Arc::clone(&done);
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let started = std::time::Instant::now();
            let (actual, application) = run_one(&target, &scenario, &options).await;
            let differences = compare(&scenario.expect, &actual);
            let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
            if options.progress && (finished.is_multiple_of((total / 50).max(1)) || finished == total) {
                eprint!("\rreplayed {finished}/{total}");
                if finished == total {
                    eprintln!();
                }
            }
            Verdict {
                scenario: scenario.id.clone(),
                description: scenario.description.clone(),
                expected: scenario.expect.clone(),
                actual,
                differences,
                elapsed_ms: started.elapsed().as_millis(),
                application,
            }
        }));
    }
    let mut verdicts = Vec::with_capacity(total);
    for task in tasks {
        match task.await {
            Ok(verdict) => verdicts.push(verdict),
            Err(error) => verdicts.push(Verdict {
                scenario: String::new(),
                description: String::new(),
                expected: Expectation::default(),
                actual: Actual { error: format!("the replay task failed: {error}"), ..Actual::default() },
                differences: vec![format!("the replay task failed: {error}")],
                elapsed_ms: 0,
                application: None,
            }),
        }
    }
    verdicts
}

async fn run_one(target: &Target, scenario: &Scenario, options: &Options) -> (Actual, Option<Application>) {
    let application_id = format!("{}-{}", scenario.id, options.run_id);
    let mut actual = Actual { application_id: application_id.clone(), ..Actual::default() };
    let fail = |mut actual: Actual, error: String| {
        actual.outcome = "error".to_owned();
        actual.error = error;
        (actual, None)
    };
    let (Some((login, password)), Some(key)) =
        (target.operators.get(&scenario.operator), target.operator_keys.get(&scenario.operator))
    else {
        return fail(actual, format!("no account or key for operator {}", scenario.operator));
    };
    let calendar = Calendar::kazakhstan();
    let clock = Arc::new(SimClock::starting_at(scenario.submitted_at.timestamp_millis()));
    let pacer = ScenarioPacer {
        clock: Arc::clone(&clock),
        calendar,
        definition: Arc::clone(&target.definition),
        durations: scenario.duration_overrides(),
        collect_at: scenario.collect_at.map(|at| at.timestamp_millis()),
        queue_wait_ms: scenario.queue_wait_ms(),
        visit: Mutex::default(),
    };
    let channel = match egov_runtime::tls::connect(&target.topology.workstation, target.tls.as_ref(), key.member_id()) {
        Ok(channel) => channel,
        Err(error) => return fail(actual, error.to_string()),
    };
    // Each scenario's applicant takes their ticket at a service centre of their own, named as the
    // application: scenarios replayed at once are never called each other's tickets.
    let mut operator = OperatorClient::new(channel, key.clone(), clock.clone())
        .with_persistence(options.persistence)
        .with_centre(&application_id);
    if let Some(step) = target.definition.step_by_effect(egov_regulation::Effect::LogIn) {
        pacer.before(step);
    }
    if let Err(status) = operator.login(login, password).await {
        return fail(actual, format!("login: {status}"));
    }
    let staff = match StaffClient::connect(&target.topology.regional, target.tls.as_ref(), ids::REGIONAL, clock.clone())
    {
        Ok(staff) => staff.with_persistence(options.persistence),
        Err(error) => return fail(actual, error.to_string()),
    };
    let route = egov_client::Route {
        definition: &target.definition,
        operator: &operator,
        staff: &staff,
        staff_keys: &target.staff_keys,
        patience: options.patience,
        pacer: &pacer,
    };
    let driven = match &scenario.channel {
        Some(channel) => egov_client::drive_at_office(&route, channel, &application_id, &scenario.application).await,
        None => egov_client::drive(&route, &application_id, &scenario.application).await,
    };
    match driven {
        Ok(Driven { application, result, come_back_ms }) => {
            observe(&mut actual, &application, &target.definition, calendar);
            actual.come_back_at = come_back_ms.and_then(|at| to_local(calendar, at));
            if let Some(result) = result
                && let Ok(document) = ServiceResult::decode(&result.body[..])
            {
                actual.refusal_ground = document.refusal_ground;
                // At the office, the notice is the result's (the ARM's view has none of its own).
                if actual.notice.is_empty() {
                    actual.notice = document.notice.map(|notice| notice.code).unwrap_or_default();
                }
            }
            (actual, Some(application))
        }
        Err(error @ RouteError::Refused { .. }) if error.reason().is_some() => {
            actual.outcome = "rejected".to_owned();
            actual.reason = error.reason().unwrap_or_default().to_owned();
            if let RouteError::Refused { status, .. } = &error {
                actual.notice = counter_notice_code(status);
            }
            // What the application looks like after the refusal, if it exists.
            let application = operator.application(&application_id).await.ok();
            if let Some(application) = &application {
                actual.path = application.path.iter().map(|s| s.step_id.clone()).collect();
            }
            (actual, application)
        }
        Err(error) => fail(actual, error.to_string()),
    }
}

/// The code of the notice a refusal at the counter carries (`egov-notice-bin`),
/// empty when it carries none. Read, not verified: the target holds no trust
/// registry (the route tests verify the workstation's signature).
fn counter_notice_code(status: &tonic::Status) -> String {
    match egov_client::notice_envelope(status) {
        Ok(None) => String::new(),
        Ok(Some(envelope)) => egov_proto::Notice::decode(&envelope.body[..])
            .map_or_else(|error| format!("(a notice that does not decode: {error})"), |notice| notice.code),
        Err(error) => format!("({error})"),
    }
}

fn observe(actual: &mut Actual, application: &Application, definition: &Definition, calendar: &Calendar) {
    actual.outcome = application.outcome.clone();
    actual.path = application.path.iter().map(|s| s.step_id.clone()).collect();
    actual.notice = application.notice.as_ref().map(|n| n.code.clone()).unwrap_or_default();
    actual.due = (application.due_time_ms != 0)
        .then(|| to_local(calendar, application.due_time_ms).map(|t| t.date_naive()))
        .flatten();
    actual.missed = application
        .path
        .iter()
        .filter(|s| s.deadline_time_ms != 0 && s.ended_time_ms > s.deadline_time_ms)
        .map(|s| s.step_id.clone())
        .collect();
    let issue_step = definition.step_by_effect(egov_regulation::Effect::IssueResult).map(|step| step.id.as_str());
    if application.path.iter().any(|s| Some(s.step_id.as_str()) == issue_step) {
        actual.queue_wait = Some(format!("{} min", application.queue_wait_ms / 60_000));
    }
    // A term (e.g. the provider's five working days) is missed when its last step ends after it.
    let record = |id: &str| application.path.iter().find(|s| s.step_id == id);
    let channel = (!application.channel.is_empty()).then_some(application.channel.as_str());
    for term in definition.terms_of(channel) {
        if let (Some(from), Some(to)) = (record(&term.from), record(&term.to))
            && definition.term_deadline(calendar, term, from.started_time_ms).is_some_and(|due| to.ended_time_ms > due)
        {
            actual.missed.push(term.id.clone());
        }
    }
}

/// Every difference, in the order a tester reads them.
fn compare(expected: &Expectation, actual: &Actual) -> Vec<String> {
    let mut differences = Vec::new();
    if !actual.error.is_empty() {
        differences.push(format!("replay failed: {}", actual.error));
        return differences;
    }
    if expected.outcome != actual.outcome {
        differences.push(format!("outcome is {:?}, expected {:?}", actual.outcome, expected.outcome));
    }
    if !expected.reason.is_empty() && expected.reason != actual.reason {
        differences.push(format!("reason is {:?}, expected {:?}", actual.reason, expected.reason));
    }
    if !expected.path.is_empty() && expected.path != actual.path {
        let at = expected
            .path
            .iter()
            .zip(&actual.path)
            .position(|(e, a)| e != a)
            .unwrap_or(expected.path.len().min(actual.path.len()));
        differences.push(format!(
            "path differs at step {}: {} instead of {}",
            at + 1,
            actual.path.get(at).map_or("nothing", String::as_str),
            expected.path.get(at).map_or("nothing", String::as_str)
        ));
    }
    if !expected.notice.is_empty() && expected.notice != actual.notice {
        differences.push(format!("notice is {:?}, expected {:?}", actual.notice, expected.notice));
    }
    if !expected.refusal_ground.is_empty() && expected.refusal_ground != actual.refusal_ground {
        differences
            .push(format!("refusal ground is {:?}, expected {:?}", actual.refusal_ground, expected.refusal_ground));
    }
    if let Some(due) = expected.due
        && actual.due != Some(due)
    {
        differences
            .push(format!("result due {}, expected {due}", actual.due.map_or("never".to_owned(), |d| d.to_string())));
    }
    if expected.missed != actual.missed {
        differences.push(format!("missed deadlines {:?}, expected {:?}", actual.missed, expected.missed));
    }
    if let Some(come_back_at) = expected.come_back_at
        && actual.come_back_at != Some(come_back_at)
    {
        let told = actual.come_back_at.map_or("no time".to_owned(), |at| at.to_rfc3339());
        differences.push(format!("told to come back at {told}, expected {}", come_back_at.to_rfc3339()));
    }
    let expected_wait = expected.queue_wait.as_deref().and_then(crate::scenario::minutes);
    if let Some(minutes) = expected_wait
        && actual.queue_wait != Some(format!("{minutes} min"))
    {
        let waited = actual.queue_wait.as_deref().unwrap_or("not served");
        differences.push(format!("waited in the queue {waited}, expected {minutes} min"));
    }
    differences
}
