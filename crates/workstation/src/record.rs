//! An application as the State Corporation keeps it, and as the operator sees it.

use egov_proto::{Application, Notice, PersonRecord, PowerOfAttorney, Representative};
use egov_regulation::{Branch, Event, Instance, Step};
use egov_runtime::status::corrupt;
use egov_runtime::{Refusal, convert, listing};
use egov_store::Versioned;
use serde::{Deserialize, Serialize};
use tonic::Code;

use crate::Workstation;

/// An application as the State Corporation keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApplicationRecord {
    pub(crate) application_id: String,
    pub(crate) service_code: String,
    pub(crate) applicant_iin: String,
    pub(crate) operator_id: String,
    pub(crate) representative: Option<Representative>,
    pub(crate) instance: Instance,
    pub(crate) applicant: Option<PersonRecord>,
    pub(crate) power_of_attorney: Option<PowerOfAttorney>,
    pub(crate) notice_code: Option<String>,
    pub(crate) registration_id: Option<String>,
    pub(crate) due_ms: Option<i64>,
    /// The operator's signed submission (process 5), by sender and message id,
    /// whose remembered answer the gateway's receipt completes.
    #[serde(default)]
    pub(crate) submission: Option<(String, String)>,
    /// Why the operator withdrew it, if they did (`withdrawal`).
    #[serde(default)]
    pub(crate) withdrawal_reason: Option<String>,
    /// The sequence of the provider's latest report applied (`ApplicationProgress.sequence`).
    #[serde(default)]
    pub(crate) progress_sequence: u64,
    /// The notice of the signed result (the permission, the reasoned refusal,
    /// or process 8's refusal for violations in the documents), with its ground.
    #[serde(default)]
    pub(crate) result_notice: Option<Notice>,
    /// The applicant's latest ticket of the electronic queue for the result (`queue`).
    #[serde(default)]
    pub(crate) ticket: Option<crate::queue::Ticket>,
    /// The notice (of the definition) that says how the notarial registry read
    /// a revocation recorded as a date only, where process 4's notice rests on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reading_notice: Option<String>,
}

/// The gateway's countersigned receipt of process 6 and the head-signed
/// result are each stored once beside the application (which each step
/// rewrites) rather than in it.
pub(crate) fn receipt_key(application_id: &str) -> String {
    format!("receipt/{application_id}")
}

pub(crate) fn result_key(application_id: &str) -> String {
    format!("result/{application_id}")
}

/// Where the applications' list entries are (`egov_runtime::listing`).
pub(crate) const LIST_PREFIX: &str = "list/";
/// Which layout of the list index the store holds: written once it is built.
const LIST_INDEX_KEY: &str = "meta/list-index";
const LIST_INDEX_LAYOUT: u32 = 1;

pub(crate) fn application_key(application_id: &str) -> String {
    format!("application/{application_id}")
}

pub(crate) fn invalid(reason: &'static str, message: impl std::fmt::Display) -> Refusal {
    Refusal::new(Code::InvalidArgument, reason, message)
}

impl Workstation {
    /// An envelope stored at `key` (the receipt, the result), if it is there yet.
    pub(crate) fn stored_envelope(&self, what: &str, key: &str) -> Result<Option<egov_proto::Envelope>, Refusal> {
        use prost::Message as _;
        match self.store.get::<serde_bytes::ByteBuf>(key)? {
            None => Ok(None),
            Some(stored) => {
                egov_proto::Envelope::decode(stored.value.as_slice()).map(Some).map_err(|e| corrupt(what, e))
            }
        }
    }

    pub(crate) fn load(&self, application_id: &str) -> Result<Versioned<ApplicationRecord>, Refusal> {
        egov_runtime::ids::check_id("application id", application_id)?;
        self.store.get::<ApplicationRecord>(&application_key(application_id))?.ok_or_else(|| {
            Refusal::new(Code::NotFound, "workstation.unknown_application", format!("no application {application_id}"))
        })
    }

    /// `ListApplications`: one page of the list its query asks for, read from
    /// the list's index (`egov_runtime::listing`); without a query, the
    /// applications of one operator or of all, the most recently started first.
    pub(crate) fn list(
        &self,
        request: &egov_proto::ListApplicationsRequest,
    ) -> Result<egov_proto::ListApplicationsResponse, Refusal> {
        let query = match &request.query {
            Some(query) => query.clone(),
            None => {
                if !request.operator_id.is_empty() {
                    egov_runtime::ids::check_id("operator id", &request.operator_id)?;
                }
                listing::legacy(&request.operator_id, request.limit)
            }
        };
        let page = listing::page(&self.store, LIST_PREFIX, &self.definition, &query, |id| {
            Ok(self
                .store
                .get::<ApplicationRecord>(&application_key(id))?
                .map(|stored| self.to_application(&stored.value)))
        })?;
        Ok(egov_proto::ListApplicationsResponse {
            applications: page.applications,
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    /// The list index writes that move an application from what it was
    /// (`before`, none when new) to `after`, for the commit that writes it.
    pub(crate) fn relist(&self, before: Option<&Application>, after: &ApplicationRecord) -> Vec<(String, bool)> {
        listing::reindex(LIST_PREFIX, &self.definition, before, &self.to_application(after))
    }

    /// Writes the list index of every application, where the store has not
    /// got it yet (`LIST_INDEX_KEY` records the layout it has): a store
    /// written before the lists were indexed gets it once, at start.
    pub(crate) async fn build_list_index(&self) -> Result<usize, Refusal> {
        let marker = self.store.get::<u32>(LIST_INDEX_KEY)?;
        if marker.as_ref().is_some_and(|marker| marker.value == LIST_INDEX_LAYOUT) {
            return Ok(0);
        }
        let records = self.store.scan::<ApplicationRecord>(&application_key(""))?;
        let count = records.len();
        for chunk in records.chunks(500) {
            let mut batch = egov_store::Batch::new();
            for (_, stored) in chunk {
                for (key, present) in self.relist(None, &stored.value) {
                    batch.index(key, present);
                }
            }
            self.store.commit(batch).await?;
        }
        let mut batch = egov_store::Batch::new();
        batch.put(LIST_INDEX_KEY, marker.map_or(0, |marker| marker.version), &LIST_INDEX_LAYOUT)?;
        match self.store.commit(batch).await {
            // Another replica wrote it first: the same entries.
            Err(egov_store::StoreError::Conflict { .. }) | Ok(_) => Ok(count),
            Err(error) => Err(error.into()),
        }
    }

    /// The application an operator's signed call names, checked: the sender's
    /// live session, the envelope's correlation, and that the sender opened it.
    pub(crate) fn operators_application<B>(
        &self,
        received: &egov_runtime::Received<B>,
        session_id: &str,
        application_id: &str,
    ) -> Result<Versioned<ApplicationRecord>, Refusal> {
        self.session(session_id, received.sender_id())?;
        received.correlate(application_id)?;
        let stored = self.load(application_id)?;
        if stored.value.operator_id != received.sender_id() {
            return Err(Refusal::new(
                Code::PermissionDenied,
                "workstation.not_your_application",
                format!("application {} was opened by {}", stored.value.application_id, stored.value.operator_id),
            ));
        }
        Ok(stored)
    }

    /// What `actor_id` did at `step`.
    pub(crate) fn event(step: &Step, actor_id: &str, branch: Option<Branch>, detail: impl Into<String>) -> Event {
        Event {
            step_id: step.id.clone(),
            actor_role: step.actor.clone(),
            actor_id: actor_id.to_owned(),
            branch,
            detail: detail.into(),
        }
    }

    pub(crate) fn to_application(&self, record: &ApplicationRecord) -> Application {
        let reading = record.reading_notice.as_deref().and_then(|code| self.definition.notice(code));
        let notice = record.notice_code.as_deref().and_then(|code| self.definition.notice(code)).map(|label| {
            // Process 4's notice, followed by how a date-only revocation was read.
            let text = |own: &str, said: Option<&str>| match said {
                Some(said) => format!("{own} {said}"),
                None => own.to_owned(),
            };
            Notice {
                code: label.code.clone(),
                text_kk: text(&label.kk, reading.map(|r| r.kk.as_str())),
                text_ru: text(&label.ru, reading.map(|r| r.ru.as_str())),
                text_en: text(&label.en, reading.map(|r| r.en.as_str())),
            }
        });
        let notice = notice.or_else(|| record.result_notice.clone());
        let called = record.ticket.as_ref().and_then(|t| t.called.as_ref());
        let mut application = Application {
            application_id: record.application_id.clone(),
            service_code: record.service_code.clone(),
            applicant_iin: record.applicant_iin.clone(),
            notice,
            registration_id: record.registration_id.clone().unwrap_or_default(),
            due_time_ms: record.due_ms.unwrap_or(0),
            operator_id: record.operator_id.clone(),
            queue_ticket: record.ticket.as_ref().map(|t| t.number.clone()).unwrap_or_default(),
            queue_ticket_time_ms: record.ticket.as_ref().map_or(0, |t| t.taken_ms),
            queue_wait_ms: record.ticket.as_ref().and_then(|t| t.waited_ms).unwrap_or(0),
            queue_centre: record.ticket.as_ref().map(|t| t.centre.clone()).unwrap_or_default(),
            queue_called_by: called.map(|c| c.operator_id.clone()).unwrap_or_default(),
            queue_called_time_ms: called.map_or(0, |c| c.at_ms),
            queue_window: called.map(|c| c.window.clone()).unwrap_or_default(),
            ..Application::default()
        };
        convert::instance_fields(&self.definition, &record.instance, &mut application);
        application.applicant_name = record.applicant.as_ref().map(convert::person_name).unwrap_or_default();
        if let Some(reason) = &record.withdrawal_reason {
            application.withdrawal_reason = reason.clone();
            // Withdrawn, the instance's current step ended at the withdrawal.
            application.withdrawn_time_ms = record.instance.current_since_ms;
        }
        application
    }
}
