//! Applications written straight into a workstation's store, many at once,
//! for the tests and measurements of lists at scale (`tests/console.rs`
//! lists 10,000): each as processes 1-4 leave it, made by the transition
//! function from the definition as the workstation makes them, without the
//! calls, signatures and look-ups of a real application. The list index is
//! not written: the workstation builds it when it next starts
//! (`WorkstationServer::build_list_index`), as for a store written before the
//! lists were indexed.

use egov_proto::PersonRecord;
use egov_regulation::instance::withdraw;
use egov_regulation::{Branch, Calendar, Definition, DefinitionError, Instance, apply};
use egov_store::{Batch, Store, StoreError};

use crate::record::{ApplicationRecord, application_key};
use crate::steps::Steps;

/// What a generated application is left at.
fn fate(n: usize) -> (&'static str, Option<&'static str>) {
    match n % 15 {
        // Process 4's notice: the applicant not found.
        5 => ("data-unavailable", Some("process-4.applicant-not-found")),
        10 => ("withdrawn", None),
        _ => ("open", None),
    }
}

/// Surnames the generated applicants carry, in turn.
pub const SURNAMES: [&str; 5] = ["Серикбаев", "Нурланова", "Ахметов", "Жумабаева", "Ким"];

/// Writes `count` applications `gen-00000`... into `store`, the n-th opened
/// by `operator-1` at `first_ms` + n × 7 minutes (logged in a minute before), its applicant named
/// `SURNAME n` (`SURNAMES`, in turn) with IIN 850715300000 + n; every
/// fifteenth from the fifth ended by process 4's notice (`data-unavailable`),
/// every fifteenth from the tenth withdrawn, the others waiting on process 5.
pub async fn write(store: &Store, definition: &Definition, count: usize, first_ms: i64) -> Result<(), GenerateError> {
    let steps = Steps::bind(definition)?;
    let calendar = Calendar::kazakhstan();
    let event =
        |step: &egov_regulation::Step, actor: &str, branch: Option<Branch>, detail: &str| egov_regulation::Event {
            step_id: step.id.clone(),
            actor_role: step.actor.clone(),
            actor_id: actor.to_owned(),
            branch,
            detail: detail.to_owned(),
        };
    let mut batch = Batch::new();
    for n in 0..count {
        let opened = first_ms + (n as i64) * 7 * 60_000;
        let logged_in = opened - 60_000;
        let advance = |instance: &Instance, event: &egov_regulation::Event, at: i64| {
            apply(definition, instance, event, at, calendar).map(|transition| transition.instance)
        };
        let mut instance = Instance::start(definition, logged_in);
        instance = advance(&instance, &event(&steps.log_in, "operator-1", None, ""), logged_in)?;
        instance = advance(&instance, &event(&steps.open_form, "operator-1", None, ""), opened)?;
        instance = advance(&instance, &event(&steps.look_up, "sc-workstation", None, "individuals: found"), opened)?;
        let (state, notice) = fate(n);
        let branch = if notice.is_some() { Branch::No } else { Branch::Yes };
        let condition = event(&steps.data_present, "sc-workstation", Some(branch), notice.unwrap_or_default());
        instance = advance(&instance, &condition, opened)?;
        if let Some(notice) = notice {
            instance = advance(&instance, &event(&steps.data_notice, "sc-workstation", None, notice), opened)?;
        }
        let surname = SURNAMES[n % SURNAMES.len()];
        let mut withdrawal_reason = None;
        if state == "withdrawn" {
            instance = withdraw(&instance, opened + 120_000)?.instance;
            withdrawal_reason = Some("the applicant changed their mind".to_owned());
        }
        let iin = format!("{:012}", 850_715_300_000u64 + n as u64);
        let record = ApplicationRecord {
            application_id: format!("gen-{n:05}"),
            service_code: definition.service.code.clone(),
            applicant_iin: iin.clone(),
            operator_id: "operator-1".to_owned(),
            representative: None,
            instance,
            applicant: notice.is_none().then(|| PersonRecord {
                iin,
                surname: surname.to_owned(),
                name: format!("{n}"),
                ..PersonRecord::default()
            }),
            power_of_attorney: None,
            notice_code: notice.map(str::to_owned),
            registration_id: None,
            due_ms: None,
            submission: None,
            withdrawal_reason,
            progress_sequence: 0,
            result_notice: None,
            ticket: None,
            reading_notice: None,
        };
        batch.put(application_key(&record.application_id), 0, &record)?;
        if batch_full(n) {
            store.commit(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        store.commit(batch).await?;
    }
    Ok(())
}

fn batch_full(n: usize) -> bool {
    n % 500 == 499
}

/// Why applications could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Transition(#[from] egov_regulation::TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
