//! A process instance as the wire shows it.

use egov_proto::{Application, StepRecord as StepProto};
use egov_regulation::{Definition, StepRecord};

/// One step record on the wire.
pub fn step_to_proto(definition: &Definition, record: &StepRecord) -> StepProto {
    StepProto {
        step_id: record.step_id.clone(),
        title: definition.step(&record.step_id).map(|step| step.title.en.clone()).unwrap_or_default(),
        actor: record.actor.clone(),
        actor_id: record.actor_id.clone(),
        started_time_ms: record.started_ms,
        ended_time_ms: record.ended_ms,
        deadline_time_ms: record.deadline_ms.unwrap_or(0),
        branch: record.branch.map(|b| b.as_str().to_owned()).unwrap_or_default(),
        detail: record.detail.clone(),
        handed_over_by_role: record.hand_over.as_ref().map(|h| h.role.clone()).unwrap_or_default(),
        handed_over_by: record.hand_over.as_ref().map(|h| h.actor_id.clone()).unwrap_or_default(),
        handed_over_time_ms: record.hand_over.as_ref().map_or(0, |h| h.at_ms),
    }
}

/// A person's full name as "Individuals" gives it: surname, name, patronymic.
pub fn person_name(person: &egov_proto::PersonRecord) -> String {
    [&person.surname, &person.name, &person.patronymic]
        .into_iter()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A step record from the wire (as another participant reported it).
pub fn step_from_proto(record: &StepProto) -> StepRecord {
    StepRecord {
        step_id: record.step_id.clone(),
        actor: record.actor.clone(),
        actor_id: record.actor_id.clone(),
        started_ms: record.started_time_ms,
        ended_ms: record.ended_time_ms,
        deadline_ms: (record.deadline_time_ms != 0).then_some(record.deadline_time_ms),
        branch: match record.branch.as_str() {
            "yes" => Some(egov_regulation::Branch::Yes),
            "no" => Some(egov_regulation::Branch::No),
            _ => None,
        },
        detail: record.detail.clone(),
        hand_over: (!record.handed_over_by.is_empty()).then(|| egov_regulation::HandOver {
            role: record.handed_over_by_role.clone(),
            actor_id: record.handed_over_by.clone(),
            at_ms: record.handed_over_time_ms,
        }),
    }
}

/// The instance's part of an `Application` message: path, current step and its deadline, outcome.
pub fn instance_fields(definition: &Definition, instance: &egov_regulation::Instance, application: &mut Application) {
    application.current_step = instance.current.clone().unwrap_or_default();
    if instance.current.is_some() {
        application.current_step_since_ms = instance.current_since_ms;
        application.current_step_deadline_ms =
            egov_regulation::instance::current_deadline(definition, instance, egov_regulation::Calendar::kazakhstan())
                .unwrap_or(0);
    }
    application.outcome = instance.outcome.clone().unwrap_or_default();
    application.channel = instance.channel.clone().unwrap_or_default();
    application.path = instance.path.iter().map(|record| step_to_proto(definition, record)).collect();
}
