//! One application driven through the whole route, as the operator and the
//! provider's staff would do it.

use std::collections::HashMap;
use std::time::Duration;

use egov_envelope::Signer;
use egov_proto::{Application, AttachedDocument, PowerOfAttorneyKind, Representative};
use egov_regulation::{Definition, Effect, Step, StepKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::{OperatorClient, StaffClient};

/// What the staff decide: at the documents check (condition 2) and at the
/// result (action 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Refuse,
}

/// A representative as the operator enters them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentativePlan {
    pub iin: String,
    /// A notarised power of attorney is checked in the notarial registry.
    pub notarised: bool,
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub issued_on: String,
}

/// A document the operator attaches; its scan is simulated by `content`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentPlan {
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default = "one")]
    pub pages: u32,
    /// The simulated scan's text; the document's sha256 is computed from it.
    #[serde(default)]
    pub content: String,
}

fn one() -> u32 {
    1
}

impl DocumentPlan {
    pub fn to_proto(&self) -> AttachedDocument {
        let content = self.content.as_bytes().to_vec();
        AttachedDocument {
            kind: self.kind.clone(),
            title: if self.title.is_empty() { self.kind.clone() } else { self.title.clone() },
            pages: self.pages,
            sha256: hex::encode(Sha256::digest(&content)),
            content,
        }
    }
}

/// One application: who applies, with what, and what the staff decide.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPlan {
    pub applicant_iin: String,
    #[serde(default)]
    pub representative: Option<RepresentativePlan>,
    #[serde(default)]
    pub documents: Vec<DocumentPlan>,
    /// The documents check (the `check-documents` step, condition 2).
    pub decision: Decision,
    /// With `refuse`: one of the grounds the definition ties to the documents check.
    #[serde(default)]
    pub refusal_ground: String,
    /// The result, where the definition decides it at the draft (the
    /// `draft-result` step as a condition, action 2): the permission
    /// (`approve`, the default) or the reasoned refusal.
    #[serde(default = "approve", skip_serializing_if = "is_approve")]
    pub result_decision: Decision,
    /// With `result_decision` `refuse`: one of the grounds tied to the draft step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result_refusal_ground: String,
}

fn approve() -> Decision {
    Decision::Approve
}

fn is_approve(decision: &Decision) -> bool {
    *decision == Decision::Approve
}

impl ApplicationPlan {
    pub fn representative(&self) -> Option<Representative> {
        self.representative.as_ref().map(|plan| Representative {
            iin: plan.iin.clone(),
            kind: if plan.notarised { PowerOfAttorneyKind::Notarised } else { PowerOfAttorneyKind::Other } as i32,
            power_of_attorney_number: plan.number.clone(),
            power_of_attorney_issued_on: plan.issued_on.clone(),
        })
    }
}

/// Why the route stopped.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("{step}: {status}")]
    Refused { step: &'static str, status: tonic::Status },
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("no staff key for the role {0}")]
    MissingSigner(String),
    /// The operator's call of the next ticket did not give this application's
    /// (another applicant waits before it at the same centre).
    #[error("the electronic queue: {0}")]
    Queue(String),
}

impl RouteError {
    /// The reason code of a refusal, if the route stopped on one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            RouteError::Refused { status, .. } => egov_runtime::reason_of(status),
            _ => None,
        }
    }
}

fn refused(step: &'static str) -> impl FnOnce(tonic::Status) -> RouteError {
    move |status| RouteError::Refused { step, status }
}

/// Where the route ended: the application as the workstation sees it, and
/// the head-signed result when one was handed out.
#[derive(Debug, Clone)]
pub struct Driven {
    pub application: Application,
    pub result: Option<egov_proto::Envelope>,
    /// When the applicant, who came for the result before it had arrived,
    /// was told to come back (`egov-come-back-at`); none if they were not.
    pub come_back_ms: Option<i64>,
}

/// Sets the clients' clock before each step a person does: a replay on
/// simulated time moves its clock by the step's duration; in real time nothing.
pub trait Pacer: Sync {
    /// Called just before the operator or a staff member does `step`.
    fn before(&self, step: &Step);

    /// The clients' time now, where the pacer keeps it (simulated time); none in real time.
    fn now_ms(&self) -> Option<i64> {
        None
    }

    /// Asked before each staff step: whether the applicant comes for the
    /// result while the provider is at `step`, before the result can have
    /// arrived. If so the clock is moved to their arrival, and the step's own
    /// duration still counts from where it began. Real time: never.
    fn arrives_during(&self, _step: &Step) -> bool {
        false
    }

    /// The applicant comes for the result once it is at the State
    /// Corporation: the clock moves to their arrival, or to `come_back_ms`,
    /// when an earlier visit was told to come back then. Real time: at once.
    fn arrives(&self, _come_back_ms: Option<i64>) {}

    /// The applicant waits in the hall with their ticket until the operator
    /// calls them. Real time: not at all.
    fn waits_in_queue(&self) {}
}

/// No pacing: steps happen when they happen.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealTime;

impl Pacer for RealTime {
    fn before(&self, _step: &Step) {}
}

/// How long to wait for asynchronous steps (followed with `WatchApplication`).
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub timeout: Duration,
}

impl Default for Patience {
    fn default() -> Patience {
        Patience { timeout: Duration::from_secs(30) }
    }
}

async fn wait_for(
    operator: &OperatorClient,
    application_id: &str,
    what: &str,
    patience: Patience,
    done: impl Fn(&Application) -> bool,
) -> Result<Application, RouteError> {
    let deadline = tokio::time::Instant::now() + patience.timeout;
    let mut changes = operator.watch(application_id).await.map_err(refused("watch"))?;
    let mut waits_on = String::new();
    let mut ended = false;
    loop {
        let change = match tokio::time::timeout_at(deadline, changes.message()).await {
            Ok(Ok(Some(change))) => change.application,
            // The stream ended or was cut on the way (the workstation stopping or
            // restarting) while the application goes on: watched again, from its state now.
            Ok(Ok(None)) if !ended => None,
            Ok(Err(status)) if egov_runtime::status::is_retryable(&status) => None,
            Ok(Err(status)) => return Err(RouteError::Refused { step: "watch", status }),
            // No change in time, or the application ended without it.
            Ok(Ok(None)) | Err(_) => {
                return Err(RouteError::Timeout(format!("{what} (application {application_id} waits on {waits_on})")));
            }
        };
        let Some(application) = change else {
            changes = operator.watch(application_id).await.map_err(refused("watch"))?;
            continue;
        };
        if done(&application) {
            return Ok(application);
        }
        ended = !application.outcome.is_empty();
        waits_on = if ended { format!("nothing: it ended {}", application.outcome) } else { application.current_step };
    }
}

/// The people who take an application along the route, and how.
pub struct Route<'a> {
    pub definition: &'a Definition,
    /// Logged in (process 1).
    pub operator: &'a OperatorClient,
    pub staff: &'a StaffClient,
    /// A key for each staff role.
    pub staff_keys: &'a HashMap<String, Signer>,
    pub patience: Patience,
    pub pacer: &'a dyn Pacer,
}

/// What [`apply`] did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The application as the workstation answered last.
    pub application: Application,
    /// Where an application opened before was found, when it was resumed
    /// from there (the step it waited on); none when its form was opened now.
    pub resumed_at: Option<String>,
    /// Whether this call submitted it (process 5): not when condition 1 ended
    /// it (process 4), nor when it had been submitted before.
    pub submitted: bool,
    /// The gateway's receipt of process 6, when the submission's answer carried it.
    pub gateway_receipt: Option<egov_proto::Envelope>,
}

const APPLICATION_EXISTS: &str = "workstation.application_exists";

/// Processes 2 to 6 of `plan` as application `application_id`: the operator
/// opens the form (the workstation looks the data up, processes 3 and 4),
/// and, unless condition 1 ended it, signs and submits the documents.
///
/// An application this operator opened before for this applicant (the client
/// stopped after the look-up, or its submission was refused while the
/// workstation's store was unavailable) is resumed where it is: read from the
/// workstation, submitted if it waits on the submission, left as it is if it
/// went further or ended. One of another operator or applicant is refused
/// as `workstation.application_exists`.
pub async fn apply(
    operator: &OperatorClient,
    definition: &Definition,
    pacer: &dyn Pacer,
    application_id: &str,
    plan: &ApplicationPlan,
) -> Result<Applied, RouteError> {
    let sign = definition.step_by_effect(Effect::SignSubmission);
    if let Some(step) = definition.step_by_effect(Effect::OpenForm) {
        pacer.before(step);
    }
    let opened =
        operator.open_form(application_id, &definition.service.code, &plan.applicant_iin, plan.representative()).await;
    let (application, resumed_at) = match opened {
        Ok(opened) => (opened.application.unwrap_or_default(), None),
        Err(status) if egov_runtime::reason_of(&status) == Some(APPLICATION_EXISTS) => {
            let found = operator.application(application_id).await.map_err(refused("status"))?;
            if let Some(other) = not_to_resume(&found, operator, definition, plan) {
                let message = format!("{} ({other}: not this one to resume)", status.message());
                let status = tonic::Status::with_metadata(status.code(), message, status.metadata().clone());
                return Err(RouteError::Refused { step: "open form", status });
            }
            let at = if found.outcome.is_empty() { found.current_step.clone() } else { found.outcome.clone() };
            (found, Some(at))
        }
        Err(status) => return Err(RouteError::Refused { step: "open form", status }),
    };
    let waits_to_be_signed = sign.is_some_and(|step| step.id == application.current_step);
    if !application.outcome.is_empty() || !waits_to_be_signed {
        if resumed_at.is_none() || !application.outcome.is_empty() || submitted_before(&application, sign) {
            return Ok(Applied { application, resumed_at, submitted: false, gateway_receipt: None });
        }
        return Err(RouteError::Refused {
            step: "open form",
            status: tonic::Status::failed_precondition(format!(
                "application {application_id} waits on {}, which this client does not resume",
                application.current_step
            )),
        });
    }
    if let Some(step) = sign {
        pacer.before(step);
    }
    let documents = plan.documents.iter().map(DocumentPlan::to_proto).collect();
    let submitted = operator.submit(application_id, documents).await.map_err(refused("submit"))?;
    Ok(Applied {
        application: submitted.application.unwrap_or(application),
        resumed_at,
        submitted: true,
        gateway_receipt: submitted.gateway_receipt,
    })
}

/// Why `found`, an application of the id asked for, is not the one `plan`
/// would open for `operator`; none when it is.
fn not_to_resume(
    found: &Application,
    operator: &OperatorClient,
    definition: &Definition,
    plan: &ApplicationPlan,
) -> Option<String> {
    if found.operator_id != operator.operator_id() {
        return Some(format!("opened by {}", found.operator_id));
    }
    if found.applicant_iin != plan.applicant_iin {
        return Some(format!("opened for applicant {}", found.applicant_iin));
    }
    if found.service_code != definition.service.code {
        return Some(format!("opened for service {}", found.service_code));
    }
    if !found.channel.is_empty() {
        return Some(format!("received through {}", found.channel));
    }
    None
}

/// Whether the operator's signed submission is on the application's path.
fn submitted_before(application: &Application, sign: Option<&Step>) -> bool {
    sign.is_some_and(|sign| application.path.iter().any(|step| step.step_id == sign.id && step.ended_time_ms > 0))
}

/// Drives `plan` as application `application_id` through every step, from
/// the operator's form to the hand-over of the result. Returns the
/// application as the workstation sees it at the end, with the signed result.
pub async fn drive(route: &Route<'_>, application_id: &str, plan: &ApplicationPlan) -> Result<Driven, RouteError> {
    let Route { definition, operator, staff, patience, pacer, .. } = *route;
    let pace = |effect: Effect| {
        if let Some(step) = definition.step_by_effect(effect) {
            pacer.before(step);
        }
    };
    let applied = apply(operator, definition, pacer, application_id, plan).await?;
    if !applied.application.outcome.is_empty() {
        let application = operator.application(application_id).await.map_err(refused("status"))?;
        return Ok(Driven { application, result: None, come_back_ms: None });
    }
    let application = wait_for(operator, application_id, "registration at the regional gateway ARM", patience, |a| {
        !a.registration_id.is_empty()
    })
    .await?;
    let registration = staff.registration(&application.registration_id).await.map_err(refused("registration"))?;
    let (_, mut come_back_ms) = staff_steps(route, plan, registration, Some(application_id)).await?;
    let issue_step = definition.step_by_effect(Effect::IssueResult).map(|s| s.id.clone()).unwrap_or_default();
    wait_for(operator, application_id, "the signed result at the State Corporation", patience, |a| {
        a.current_step == issue_step
    })
    .await?;
    // Paragraphs 9.3-9.4: the applicant comes, takes a ticket of the electronic queue, waits to be called.
    pacer.arrives(come_back_ms);
    let mut ticket = operator.take_ticket(application_id).await;
    if let Err(status) = &ticket
        && egov_runtime::reason_of(status) == Some(NOT_READY)
        && let Some(at) = crate::operator::come_back_at(status)
    {
        // Told to come back (the result is not at this workstation yet): they come back then, once.
        come_back_ms = Some(at.timestamp_millis());
        pacer.arrives(come_back_ms);
        ticket = operator.take_ticket(application_id).await;
    }
    ticket.map_err(refused("queue ticket"))?;
    pacer.waits_in_queue();
    // Paragraph 9.4: the operator, free at their window, calls the next ticket, then serves it (process 9).
    call_own_ticket(operator, application_id).await?;
    pace(Effect::IssueResult);
    let issued = operator.issue(application_id).await.map_err(refused("issue result"))?;
    let application = issued
        .application
        .ok_or_else(|| RouteError::Timeout("the workstation answered without an application".to_owned()))?;
    Ok(Driven { application, result: issued.result, come_back_ms })
}

/// The operator calls the next ticket of their centre: this application's,
/// when no other applicant waits before it there (a centre of its own, as the
/// replay gives each scenario). Another's ticket called stops the route: the
/// operator holds it, for the one who drives that application to serve.
async fn call_own_ticket(operator: &OperatorClient, application_id: &str) -> Result<(), RouteError> {
    let called = operator.call_next().await.map_err(refused("call next"))?;
    match (called.ticket, called.application) {
        (Some(_), Some(application)) if application.application_id == application_id => Ok(()),
        (Some(ticket), Some(application)) => Err(RouteError::Queue(format!(
            "{} called ticket {} of application {} at centre {}: it waited before {application_id}'s",
            operator.operator_id(),
            ticket.number,
            application.application_id,
            operator.centre()
        ))),
        _ => Err(RouteError::Queue(format!(
            "no ticket waits at centre {} for {} to call, though {application_id} took one",
            operator.centre(),
            operator.operator_id()
        ))),
    }
}

const NOT_READY: &str = "workstation.result_not_ready";

/// The applicant came for the result before it arrived: refused, and told
/// when to come back (`Ok(None)`: no time given, or, unexpectedly, a ticket).
async fn come_too_early(operator: &OperatorClient, application_id: &str) -> Result<Option<i64>, RouteError> {
    match operator.take_ticket(application_id).await {
        Ok(_) => Ok(None),
        Err(status) if egov_runtime::reason_of(&status) == Some(NOT_READY) => {
            Ok(crate::operator::come_back_at(&status).map(|at| at.timestamp_millis()))
        }
        Err(status) => Err(RouteError::Refused { step: "queue ticket", status }),
    }
}

/// The provider's staff do every step the registration waits on, each signed
/// by the role's key, deciding as `plan` says, until the provider's part ends.
/// Meanwhile the applicant of `at_sc` (an application of the State
/// Corporation) may come for the result too early ([`Pacer::arrives_during`]):
/// with the time they were told to come back.
async fn staff_steps(
    route: &Route<'_>,
    plan: &ApplicationPlan,
    mut registration: egov_proto::Registration,
    at_sc: Option<&str>,
) -> Result<(egov_proto::Registration, Option<i64>), RouteError> {
    let Route { definition, operator, staff, staff_keys, pacer, .. } = *route;
    let mut come_back_ms = None;
    while !registration.next_actor.is_empty() {
        let step_id = registration.application.as_ref().map(|a| a.current_step.clone()).unwrap_or_default();
        let step = definition.step(&step_id).ok_or_else(|| RouteError::Timeout(format!("unknown step {step_id}")))?;
        let signer = staff_keys
            .get(&registration.next_actor)
            .ok_or_else(|| RouteError::MissingSigner(registration.next_actor.clone()))?;
        // A step's duration passes once, before its actor does it: a hand-over
        // that begins the step is done at once, when it starts.
        let handing_over = step.handed_over_by.as_deref() == Some(registration.next_actor.as_str());
        if let Some(application_id) = at_sc
            && !handing_over
            && pacer.arrives_during(step)
        {
            come_back_ms = come_too_early(operator, application_id).await?.or(come_back_ms);
        }
        if !handing_over {
            pacer.before(step);
        }
        // The head signs the drafted result (action 3), the specialist who
        // decided condition 2 the refusal the ARM formed (process 8).
        let signs = matches!(step.effect, Some(Effect::SignResult | Effect::RefusalNotice));
        registration = if signs && !handing_over {
            staff.sign(signer, &registration).await.map_err(refused("sign result"))?
        } else if step.kind == StepKind::Condition {
            let (decision, ground) = if step.effect == Some(Effect::DraftResult) {
                (&plan.result_decision, plan.result_refusal_ground.as_str())
            } else {
                (&plan.decision, plan.refusal_ground.as_str())
            };
            let (decision, ground) = match decision {
                Decision::Approve => (egov_proto::Decision::Yes, ""),
                Decision::Refuse => (egov_proto::Decision::No, ground),
            };
            staff.act(signer, &registration, &step_id, decision, ground).await.map_err(refused("staff decision"))?
        } else {
            // A task, or the hand-over that begins the signing step.
            staff
                .act(signer, &registration, &step_id, egov_proto::Decision::Unspecified, "")
                .await
                .map_err(refused("staff step"))?
        };
    }
    Ok((registration, come_back_ms))
}

/// Drives `plan` as application `application_id` received at the provider's
/// office (the definition's `channel`, paragraph 3): the office employee
/// receives it (the channel's first step), the staff do their steps, and the
/// result is handed out at the office. Returns the application as the
/// regional gateway ARM sees it at the end, with the signed result.
pub async fn drive_at_office(
    route: &Route<'_>,
    channel: &str,
    application_id: &str,
    plan: &ApplicationPlan,
) -> Result<Driven, RouteError> {
    let Route { definition, staff, staff_keys, pacer, .. } = *route;
    let start = definition
        .channel(channel)
        .and_then(|channel| definition.step(&channel.start))
        .ok_or_else(|| RouteError::Timeout(format!("the definition has no channel {channel}")))?;
    let office = staff_keys.get(&start.actor).ok_or_else(|| RouteError::MissingSigner(start.actor.clone()))?;
    let arrived_ms = pacer.now_ms();
    pacer.before(start);
    let reception = egov_proto::OfficeReception {
        application_id: application_id.to_owned(),
        service_code: definition.service.code.clone(),
        applicant_iin: plan.applicant_iin.clone(),
        representative: plan.representative(),
        documents: plan.documents.iter().map(DocumentPlan::to_proto).collect(),
        arrived_time_ms: arrived_ms.unwrap_or(0),
    };
    let registration = staff.receive_at_office(office, &reception).await.map_err(refused("receive at the office"))?;
    let (registration, _) = staff_steps(route, plan, registration, None).await?;
    Ok(Driven {
        application: registration.application.unwrap_or_default(),
        result: registration.signed_result,
        come_back_ms: None,
    })
}
