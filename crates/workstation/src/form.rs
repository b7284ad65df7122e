//! Process 2: the operator opens the request form, which the workstation
//! checks before anything is looked up or stored; then the look-ups of
//! process 3 follow (`look_up`).

use std::sync::Arc;

use chrono::NaiveDate;
use egov_proto::{ApplicationForm, OpenFormResponse, PowerOfAttorneyKind};
use egov_regulation::instance::to_local;
use egov_regulation::{Branch, Effect, Instance};
use egov_runtime::{Outcome, Received, Refusal, counter};
use tonic::{Code, Status};

use crate::Workstation;
use crate::record::{ApplicationRecord, application_key, invalid};

impl Workstation {
    /// Processes 2, 3, condition 1 and, where data are missing, process 4.
    pub(crate) async fn open_form(
        &self,
        received: Arc<Received<ApplicationForm>>,
    ) -> Result<Outcome<OpenFormResponse>, Status> {
        let form = &received.body;
        let operator_id = received.sender_id().to_owned();
        let session = self.session(&form.session_id, &operator_id)?;
        let application_id = received.correlation_id().to_owned();
        self.check_form(form, received.event_ms)?;
        if self.store.get::<ApplicationRecord>(&application_key(&application_id)).map_err(Refusal::from)?.is_some() {
            return Err(Refusal::new(
                Code::AlreadyExists,
                "workstation.application_exists",
                format!("application {application_id} exists already"),
            )
            .into());
        }
        let event_ms = received.event_ms;
        let steps = &self.steps;
        let mut instance = Instance::start(&self.definition, session.logged_in_ms);
        let log_in = Self::event(&steps.log_in, &operator_id, None, "");
        instance = self.advance(&instance, &log_in, session.logged_in_ms)?.instance;
        let mut form_event = Self::event(&steps.open_form, &operator_id, None, "");
        form_event.actor_role = received.sender_role().to_owned();
        instance = self.advance(&instance, &form_event, event_ms)?.instance;

        let found = self.look_up(&application_id, form, event_ms).await?;
        let me = self.receiver.context().member_id().to_owned();
        instance = self.advance(&instance, &Self::event(&steps.look_up, &me, None, found.detail()), event_ms)?.instance;

        // Condition 1: are the data present?
        let notice_code = found.condition_1();
        let branch = if notice_code.is_some() { Branch::No } else { Branch::Yes };
        let condition = Self::event(&steps.data_present, &me, Some(branch), notice_code.unwrap_or_default());
        let transition = self.advance(&instance, &condition, event_ms)?;
        instance = transition.instance;
        // Process 4, the notice, where condition 1 leads to it.
        if transition.follows.effect() == Some(Effect::DataNotice) {
            let notice = Self::event(&steps.data_notice, &me, None, notice_code.unwrap_or_default());
            instance = self.advance(&instance, &notice, event_ms)?.instance;
        }
        let record = ApplicationRecord {
            application_id: application_id.clone(),
            service_code: form.service_code.clone(),
            applicant_iin: form.applicant_iin.clone(),
            operator_id,
            representative: form.representative.clone(),
            instance,
            applicant: found.person.person.clone().filter(|_| found.person.found),
            power_of_attorney: found.power.as_ref().and_then(|p| p.power_of_attorney.clone()),
            notice_code: notice_code.map(str::to_owned),
            registration_id: None,
            due_ms: None,
            submission: None,
            withdrawal_reason: None,
            progress_sequence: 0,
            result_notice: None,
            ticket: None,
            reading_notice: notice_code.and(found.reading_notice()),
        };
        let mut outcome = Outcome::new(OpenFormResponse {
            application: Some(self.to_application(&record)),
            applicant: record.applicant.clone(),
            power_of_attorney: record.power_of_attorney.clone(),
        });
        outcome.put(application_key(&application_id), 0, &record)?;
        for (key, present) in self.relist(None, &record) {
            outcome.index(key, present);
        }
        tracing::info!(%application_id, outcome = ?record.instance.outcome, "form opened, data looked up");
        Ok(outcome)
    }

    /// Checks process 2's form before anything is looked up or stored.
    fn check_form(&self, form: &ApplicationForm, event_ms: i64) -> Result<(), Refusal> {
        let today = to_local(self.calendar(), event_ms).map(|time| time.date_naive()).ok_or_else(|| {
            Refusal::new(Code::FailedPrecondition, "workstation.no_calendar", "the calendar has no data for today")
        })?;
        if form.service_code != self.definition.service.code {
            return Err(Refusal::new(
                Code::NotFound,
                "workstation.unknown_service",
                format!(
                    "service {:?} is not offered here (this workstation serves {})",
                    form.service_code, self.definition.service.code
                ),
            ));
        }
        let representative_iin = form.representative.as_ref().map(|r| r.iin.as_str());
        counter::check_people(&form.applicant_iin, representative_iin, today)?;
        let Some(representative) = &form.representative else { return Ok(()) };
        let kind = PowerOfAttorneyKind::try_from(representative.kind).map_err(|_| {
            invalid("workstation.bad_field", format!("representative.kind {} is not a known kind", representative.kind))
        })?;
        match kind {
            PowerOfAttorneyKind::Unspecified => Err(invalid(
                "workstation.missing_field",
                "representative.kind must say how the power of attorney is certified",
            )),
            PowerOfAttorneyKind::Notarised => {
                if representative.power_of_attorney_number.trim().is_empty() {
                    return Err(invalid("workstation.missing_field", "a notarised power of attorney needs its number"));
                }
                if !representative.power_of_attorney_issued_on.is_empty()
                    && NaiveDate::parse_from_str(&representative.power_of_attorney_issued_on, "%Y-%m-%d").is_err()
                {
                    return Err(invalid(
                        "workstation.bad_date",
                        "power_of_attorney_issued_on must be an ISO date (YYYY-MM-DD)",
                    ));
                }
                Ok(())
            }
            PowerOfAttorneyKind::Other => {
                if !representative.power_of_attorney_number.is_empty()
                    || !representative.power_of_attorney_issued_on.is_empty()
                {
                    return Err(invalid(
                        "workstation.power_of_attorney_data_not_empty",
                        "for a power of attorney not notarised, its data is left empty (process 2)",
                    ));
                }
                Ok(())
            }
        }
    }
}
