//! The deadlines report (`egov sla report`): the steps and terms of the
//! applications that are missed or at risk.

use egov_regulation::{Calendar, Definition};
use egov_store::{Store, StoreError};

use crate::record::ApplicationRecord;

/// One step or term of an application that missed its deadline or is at risk of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaRow {
    pub application_id: String,
    pub registration_id: String,
    /// A step id or a term id.
    pub item: String,
    pub deadline_ms: i64,
    /// None while open.
    pub ended_ms: Option<i64>,
    pub standing: egov_regulation::instance::Standing,
}

/// The steps and terms of the applications in `store` (a workstation's,
/// opened while the workstation is stopped) that are missed or at risk at `now_ms`.
pub fn sla_report(
    store: &Store,
    definition: &Definition,
    calendar: &Calendar,
    now_ms: i64,
) -> Result<Vec<SlaRow>, StoreError> {
    use egov_regulation::instance::{Standing, current_deadline, deadline, term_end};
    let mut rows = Vec::new();
    for (_, record) in store.scan::<ApplicationRecord>("application/")? {
        let record = record.value;
        let mut row = |item: &str, started: i64, deadline_ms: Option<i64>, ended_ms: Option<i64>| {
            let standing = Standing::of(started, deadline_ms, ended_ms, now_ms, calendar);
            if let (Standing::Missed | Standing::AtRisk, Some(deadline_ms)) = (standing, deadline_ms) {
                rows.push(SlaRow {
                    application_id: record.application_id.clone(),
                    registration_id: record.registration_id.clone().unwrap_or_default(),
                    item: item.to_owned(),
                    deadline_ms,
                    ended_ms,
                    standing,
                });
            }
        };
        for step in &record.instance.path {
            row(&step.step_id, step.started_ms, step.deadline_ms, Some(step.ended_ms));
        }
        if let Some(current) = &record.instance.current {
            row(
                current,
                record.instance.current_since_ms,
                current_deadline(definition, &record.instance, calendar),
                None,
            );
        }
        for term in definition.terms_of(record.instance.channel.as_deref()) {
            let Some(from) = record.instance.record(&term.from) else { continue };
            let ended = term_end(definition, &record.instance, term);
            row(&term.id, from.started_ms, deadline(calendar, from.started_ms, term.duration), ended);
        }
    }
    Ok(rows)
}
