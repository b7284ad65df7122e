//! A process instance and the pure transition function.

use chrono::{DateTime, FixedOffset, TimeZone as _};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::calendar::Calendar;
use crate::definition::{Definition, Duration, Effect, StepKind};

/// A condition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Branch {
    Yes,
    No,
}

impl Branch {
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Yes => "yes",
            Branch::No => "no",
        }
    }
}

/// One step of an instance's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step_id: String,
    /// The role the definition names.
    pub actor: String,
    /// The member who did it.
    pub actor_id: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    /// The regulatory deadline; none where the step has no duration or the
    /// calendar has no data for the dates.
    pub deadline_ms: Option<i64>,
    pub branch: Option<Branch>,
    pub detail: String,
    /// Who handed the step's work over to its actor, where the definition says
    /// the step begins with a hand-over (`handed_over_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_over: Option<HandOver>,
}

/// A hand-over of a step's work to the step's actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// The role that hands over.
    pub role: String,
    /// The member who did.
    pub actor_id: String,
    pub at_ms: i64,
}

impl StepRecord {
    /// Whether the step ended by its deadline (true where there is none).
    pub fn met_deadline(&self) -> bool {
        self.deadline_ms.is_none_or(|deadline| self.ended_ms <= deadline)
    }
}

/// An application's progress through the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The step waited on; none once the instance has ended.
    pub current: Option<String>,
    /// When the current step started.
    pub current_since_ms: i64,
    pub path: Vec<StepRecord>,
    /// The outcome decided by the branches so far.
    pub decided: Option<String>,
    /// Set when the instance ends: the final outcome.
    pub outcome: Option<String>,
    /// The hand-over of the current step, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over: Option<HandOver>,
    /// The channel the application came through (the definition's
    /// `[[channel]]`); none: the default route, from the service's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// Something done at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub step_id: String,
    pub actor_role: String,
    pub actor_id: String,
    /// For a condition.
    pub branch: Option<Branch>,
    pub detail: String,
}

/// What an event leads to: the new instance, and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub instance: Instance,
    pub follows: Follows,
}

/// What follows a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follows {
    /// The next step waits on its actor (a participant does the step when its effect is one of its own).
    Step { step_id: String, effect: Option<Effect>, actor: String },
    /// The instance has ended with this outcome.
    End { outcome: String },
}

impl Follows {
    /// The effect of the step that follows, if any.
    pub fn effect(&self) -> Option<Effect> {
        match self {
            Follows::Step { effect, .. } => *effect,
            Follows::End { .. } => None,
        }
    }
}

/// Why an event is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("the application has ended; {step} cannot happen")]
    Ended { step: String },
    #[error("{step} is not the current step: the application waits on {current}")]
    NotCurrent { step: String, current: String },
    #[error("{step} is for the role {expected}, not {found}")]
    WrongActor { step: String, expected: String, found: String },
    #[error("{step} is a condition: it needs a yes or no answer")]
    BranchRequired { step: String },
    #[error("{step} is not a condition: it takes no yes or no answer")]
    BranchNotAllowed { step: String },
    #[error("step {step} is not in the definition")]
    UnknownStep { step: String },
    #[error("{step} begins with the hand-over by the {by}, which has not happened")]
    NotHandedOver { step: String, by: String },
    #[error("{step} has been handed over already")]
    HandedOverAlready { step: String },
    #[error("{step} is not handed over by anyone")]
    NoHandOver { step: String },
    #[error("channel {channel} is not in the definition")]
    UnknownChannel { channel: String },
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::Ended { .. } => "process.ended",
            TransitionError::NotCurrent { .. } => "process.not_current_step",
            TransitionError::WrongActor { .. } => "process.wrong_actor",
            TransitionError::BranchRequired { .. } => "process.branch_required",
            TransitionError::BranchNotAllowed { .. } => "process.branch_not_allowed",
            TransitionError::UnknownStep { .. } => "process.unknown_step",
            TransitionError::NotHandedOver { .. } => "process.not_handed_over",
            TransitionError::HandedOverAlready { .. } => "process.handed_over_already",
            TransitionError::NoHandOver { .. } => "process.no_hand_over",
            TransitionError::UnknownChannel { .. } => "process.unknown_channel",
        }
    }
}

impl Instance {
    /// A new instance at the definition's start step.
    pub fn start(definition: &Definition, at_ms: i64) -> Instance {
        Instance::start_at_step(definition, &definition.service.start, at_ms).unwrap_or_else(|_| Instance {
            current: None,
            current_since_ms: at_ms,
            path: Vec::new(),
            decided: None,
            outcome: None,
            handed_over: None,
            channel: None,
        })
    }

    /// A new instance that begins at `step_id` (a participant that takes over
    /// part of the route, like the regional gateway ARM at process 7).
    pub fn start_at_step(definition: &Definition, step_id: &str, at_ms: i64) -> Result<Instance, TransitionError> {
        definition.step(step_id).ok_or_else(|| TransitionError::UnknownStep { step: step_id.to_owned() })?;
        Ok(Instance {
            current: Some(step_id.to_owned()),
            current_since_ms: at_ms,
            path: Vec::new(),
            decided: None,
            outcome: None,
            handed_over: None,
            channel: None,
        })
    }

    /// A new instance of an application received through `channel_id`, at the channel's start.
    pub fn start_in_channel(
        definition: &Definition,
        channel_id: &str,
        at_ms: i64,
    ) -> Result<Instance, TransitionError> {
        let channel = definition
            .channel(channel_id)
            .ok_or_else(|| TransitionError::UnknownChannel { channel: channel_id.to_owned() })?;
        let mut instance = Instance::start_at_step(definition, &channel.start, at_ms)?;
        instance.channel = Some(channel.id.clone());
        Ok(instance)
    }

    pub fn has_ended(&self) -> bool {
        self.current.is_none()
    }

    /// The record of `step_id`, if it happened.
    pub fn record(&self, step_id: &str) -> Option<&StepRecord> {
        self.path.iter().find(|record| record.step_id == step_id)
    }

    /// The role the current step waits on: the one that hands it over first,
    /// where the definition says so, then the step's actor.
    pub fn waits_on<'d>(&self, definition: &'d Definition) -> Option<&'d str> {
        let step = definition.step(self.current.as_deref()?)?;
        match &step.handed_over_by {
            Some(by) if self.handed_over.is_none() => Some(by),
            _ => Some(&step.actor),
        }
    }
}

/// The hand-over that begins the current step (`handed_over_by` in the
/// definition): `event`'s actor hands the work to the step's actor at `now_ms`.
pub fn hand_over(
    definition: &Definition,
    instance: &Instance,
    event: &Event,
    now_ms: i64,
) -> Result<Instance, TransitionError> {
    let current = instance.current.as_deref().ok_or_else(|| TransitionError::Ended { step: event.step_id.clone() })?;
    let step =
        definition.step(&event.step_id).ok_or_else(|| TransitionError::UnknownStep { step: event.step_id.clone() })?;
    if current != event.step_id {
        return Err(TransitionError::NotCurrent { step: event.step_id.clone(), current: current.to_owned() });
    }
    let by = step.handed_over_by.as_ref().ok_or_else(|| TransitionError::NoHandOver { step: step.id.clone() })?;
    if instance.handed_over.is_some() {
        return Err(TransitionError::HandedOverAlready { step: step.id.clone() });
    }
    if by != &event.actor_role {
        return Err(TransitionError::WrongActor {
            step: step.id.clone(),
            expected: by.clone(),
            found: event.actor_role.clone(),
        });
    }
    let mut updated = instance.clone();
    updated.handed_over = Some(HandOver {
        role: by.clone(),
        actor_id: event.actor_id.clone(),
        at_ms: now_ms.max(instance.current_since_ms),
    });
    Ok(updated)
}

/// The transition function: `event` happens at `now_ms`. Returns the new
/// instance and what follows from it, or why the definition does not allow the event.
pub fn apply(
    definition: &Definition,
    instance: &Instance,
    event: &Event,
    now_ms: i64,
    calendar: &Calendar,
) -> Result<Transition, TransitionError> {
    let current = instance.current.as_deref().ok_or_else(|| TransitionError::Ended { step: event.step_id.clone() })?;
    let step =
        definition.step(&event.step_id).ok_or_else(|| TransitionError::UnknownStep { step: event.step_id.clone() })?;
    if current != event.step_id {
        return Err(TransitionError::NotCurrent { step: event.step_id.clone(), current: current.to_owned() });
    }
    if step.actor != event.actor_role {
        return Err(TransitionError::WrongActor {
            step: step.id.clone(),
            expected: step.actor.clone(),
            found: event.actor_role.clone(),
        });
    }
    if let Some(by) = &step.handed_over_by
        && instance.handed_over.is_none()
    {
        return Err(TransitionError::NotHandedOver { step: step.id.clone(), by: by.clone() });
    }
    let (next, decided) = match (step.kind, event.branch) {
        (StepKind::Condition, None) => return Err(TransitionError::BranchRequired { step: step.id.clone() }),
        (StepKind::Task, Some(_)) => return Err(TransitionError::BranchNotAllowed { step: step.id.clone() }),
        (StepKind::Task, None) => (step.next.clone(), instance.decided.clone()),
        (StepKind::Condition, Some(branch)) => {
            let target = match branch {
                Branch::Yes => step.yes.as_ref(),
                Branch::No => step.no.as_ref(),
            };
            match target {
                Some(target) => {
                    (Some(target.next.clone()), target.outcome.clone().or_else(|| instance.decided.clone()))
                }
                None => return Err(TransitionError::BranchRequired { step: step.id.clone() }),
            }
        }
    };
    let started_ms = instance.current_since_ms.min(now_ms);
    let mut updated = instance.clone();
    updated.path.push(StepRecord {
        step_id: step.id.clone(),
        actor: step.actor.clone(),
        actor_id: event.actor_id.clone(),
        started_ms,
        ended_ms: now_ms,
        deadline_ms: definition.step_deadline(calendar, step, started_ms),
        branch: event.branch,
        detail: event.detail.clone(),
        hand_over: updated.handed_over.take(),
    });
    updated.current_since_ms = now_ms;
    updated.decided = decided;
    updated.current = next.map(|next| definition.next_in_channel(instance.channel.as_deref(), next));
    let follows = match updated.current.as_deref().and_then(|id| definition.step(id)) {
        Some(next) => Follows::Step { step_id: next.id.clone(), effect: next.effect, actor: next.actor.clone() },
        None => {
            let outcome = updated.decided.clone().unwrap_or_else(|| "completed".to_owned());
            updated.outcome = Some(outcome.clone());
            Follows::End { outcome }
        }
    };
    Ok(Transition { instance: updated, follows })
}

/// The outcome of an application withdrawn before it was submitted.
pub const WITHDRAWN: &str = "withdrawn";

/// The application is withdrawn at `now_ms`, waiting on its current step:
/// it ends with the outcome [`WITHDRAWN`]. The regulation has no such step;
/// this is the simulator's assumption, for a form opened and never submitted.
pub fn withdraw(instance: &Instance, now_ms: i64) -> Result<Transition, TransitionError> {
    if instance.current.is_none() {
        return Err(TransitionError::Ended { step: "withdrawal".to_owned() });
    }
    let mut updated = instance.clone();
    updated.current = None;
    updated.current_since_ms = now_ms.max(instance.current_since_ms);
    updated.decided = Some(WITHDRAWN.to_owned());
    updated.outcome = Some(WITHDRAWN.to_owned());
    Ok(Transition { instance: updated, follows: Follows::End { outcome: WITHDRAWN.to_owned() } })
}

/// The end of `duration` from `start_ms`, in the calendar's working time;
/// none where the calendar has no data for those dates.
pub fn deadline(calendar: &Calendar, start_ms: i64, duration: Duration) -> Option<i64> {
    let start = to_local(calendar, start_ms)?;
    let end = match duration {
        Duration::Minutes(minutes) => calendar.add_working_minutes(start, minutes).ok()?,
        Duration::WorkingDays(days) => calendar.working_days_deadline(start, days).ok()?,
    };
    Some(end.timestamp_millis())
}

/// When `term` ended for `instance`: at its last step; or, where the route
/// left the term's steps another way (a refusal at process 8 never reaches
/// action 4, a process-4 notice never reaches process 6), at the first step
/// from which its last step can no longer be reached. None while it runs, or
/// before it has started.
pub fn term_end(definition: &Definition, instance: &Instance, term: &crate::definition::Term) -> Option<i64> {
    if let Some(to) = instance.record(&term.to) {
        return Some(to.ended_ms);
    }
    let from = instance.path.iter().position(|record| record.step_id == term.from)?;
    instance.path[from..]
        .iter()
        .find(|record| !definition.reaches(&record.step_id, &term.to))
        .map(|record| record.ended_ms)
}

/// The deadline of each of the definition's terms that has started, as (term id, deadline).
pub fn term_deadlines(definition: &Definition, instance: &Instance, calendar: &Calendar) -> Vec<(String, Option<i64>)> {
    definition
        .terms_of(instance.channel.as_deref())
        .filter_map(|term| {
            let from = instance.record(&term.from)?;
            Some((term.id.clone(), definition.term_deadline(calendar, term, from.started_ms)))
        })
        .collect()
}

/// Milliseconds since the epoch as the calendar's local time.
pub fn to_local(calendar: &Calendar, at_ms: i64) -> Option<DateTime<FixedOffset>> {
    calendar.offset().timestamp_millis_opt(at_ms).single()
}

/// Where a step or a term stands against its regulatory deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Ended by its deadline.
    Met,
    /// Ended after its deadline, or still open past it.
    Missed,
    /// Open, with at least a quarter of its working time left.
    OnTrack,
    /// Open, with less than a quarter of its working time left.
    AtRisk,
    /// No deadline: the regulation sets no duration, or the calendar has no data.
    NoDeadline,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Met => "met",
            Standing::Missed => "missed",
            Standing::OnTrack => "on track",
            Standing::AtRisk => "at risk",
            Standing::NoDeadline => "-",
        }
    }

    /// A step or term that started at `started_ms`, is due at `deadline_ms`,
    /// and ended at `ended_ms` (none while open), seen at `now_ms`.
    pub fn of(
        started_ms: i64,
        deadline_ms: Option<i64>,
        ended_ms: Option<i64>,
        now_ms: i64,
        calendar: &Calendar,
    ) -> Standing {
        let Some(deadline_ms) = deadline_ms else { return Standing::NoDeadline };
        match ended_ms {
            Some(ended) if ended <= deadline_ms => Standing::Met,
            Some(_) => Standing::Missed,
            None if now_ms > deadline_ms => Standing::Missed,
            None => {
                let minutes = |from: i64, to: i64| {
                    to_local(calendar, from)
                        .zip(to_local(calendar, to))
                        .and_then(|(from, to)| calendar.working_minutes_between(from, to).ok())
                };
                match (minutes(started_ms, deadline_ms), minutes(now_ms.max(started_ms), deadline_ms)) {
                    (Some(total), Some(left)) if left * 4 < total => Standing::AtRisk,
                    _ => Standing::OnTrack,
                }
            }
        }
    }
}

/// The current step's deadline, from when it started.
pub fn current_deadline(definition: &Definition, instance: &Instance, calendar: &Calendar) -> Option<i64> {
    let step = definition.step(instance.current.as_deref()?)?;
    definition.step_deadline(calendar, step, instance.current_since_ms)
}
