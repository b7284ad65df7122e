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
    use egov_regulation::instance::{Standing, current_deadline, term_end};
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
            row(&term.id, from.started_ms, definition.term_deadline(calendar, term, from.started_ms), ended);
        }
    }
    Ok(rows)
}

/// The workstation's figures for the metrics, read at each scrape: its
/// applications by state (the step waited on, or the outcome), and the
/// steps and terms missed or at risk (`egov_applications`, `egov_sla_items`).
pub struct MetricsReport {
    pub store: Store,
    pub definition: std::sync::Arc<Definition>,
    pub clock: std::sync::Arc<dyn egov_runtime::Clock>,
}

impl egov_runtime::metrics::Report for MetricsReport {
    fn read(&self) -> Vec<egov_runtime::metrics::Reading> {
        use egov_runtime::metrics::ReportFamily;
        let participant = ("participant".to_owned(), "workstation".to_owned());
        let mut states: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        if let Ok(records) = self.store.scan::<ApplicationRecord>("application/") {
            for (_, record) in records {
                let instance = record.value.instance;
                let state = instance.outcome.or(instance.current).unwrap_or_default();
                *states.entry(state).or_default() += 1;
            }
        }
        let mut out: Vec<_> = states
            .into_iter()
            .map(|(state, count)| {
                (ReportFamily::Applications, vec![participant.clone(), ("state".to_owned(), state)], count)
            })
            .collect();
        let now_ms = self.clock.now_ms();
        let mut items: std::collections::BTreeMap<(String, &'static str), i64> = std::collections::BTreeMap::new();
        if let Ok(rows) = sla_report(&self.store, &self.definition, Calendar::kazakhstan(), now_ms) {
            for row in rows {
                *items.entry((row.item, row.standing.as_str())).or_default() += 1;
            }
        }
        out.extend(items.into_iter().map(|((item, standing), count)| {
            let labels =
                vec![participant.clone(), ("item".to_owned(), item), ("standing".to_owned(), standing.to_owned())];
            (ReportFamily::Sla, labels, count)
        }));
        out
    }
}
