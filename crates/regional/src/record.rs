//! A registration as the ARM stores it, and as the staff see it.

use egov_proto::{Application, ApplicationDelivery, Envelope, Registration};
use egov_runtime::status::corrupt;
use egov_runtime::{Refusal, convert, listing};
use egov_store::Versioned;
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::Code;

use crate::Regional;

/// A registration as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegistrationRecord {
    pub(crate) registration_id: String,
    pub(crate) application_id: String,
    pub(crate) instance: egov_regulation::Instance,
    pub(crate) refusal_ground: Option<String>,
    #[serde(with = "serde_bytes")]
    pub(crate) draft_result: Vec<u8>,
    /// The head-signed result envelope.
    #[serde(with = "serde_bytes")]
    pub(crate) signed_result: Vec<u8>,
    pub(crate) due_ms: Option<i64>,
}

pub(crate) fn registration_key(registration_id: &str) -> String {
    format!("registration/{registration_id}")
}

/// The `ApplicationDelivery` as received, stored once beside the registration
/// (which each step rewrites) rather than in it.
pub(crate) fn delivery_key(registration_id: &str) -> String {
    format!("delivery/{registration_id}")
}

pub(crate) fn application_key(application_id: &str) -> String {
    format!("application/{application_id}")
}

/// The index of a channel's registrations (`ListRegistrations`), kept in the commit that registers one.
pub(crate) fn channel_entry(channel: &str, registration_id: &str) -> String {
    format!("{CHANNEL_PREFIX}{channel}/{registration_id}")
}

pub(crate) const CHANNEL_PREFIX: &str = "channel/";

/// Where each channel's list entries are: `list/CHANNEL/` (`egov_runtime::listing`),
/// `list/-/` for the State Corporation's route.
const LIST_PREFIX: &str = "list/";
const NO_CHANNEL: &str = "-";
/// Which layout of the list index the store holds: written once it is built.
const LIST_INDEX_KEY: &str = "meta/list-index";
const LIST_INDEX_LAYOUT: u32 = 1;

fn list_prefix(record: &RegistrationRecord) -> String {
    format!("{LIST_PREFIX}{}/", record.instance.channel.as_deref().filter(|c| !c.is_empty()).unwrap_or(NO_CHANNEL))
}

impl RegistrationRecord {
    pub(crate) fn signed_result(&self) -> Result<Option<Envelope>, Refusal> {
        if self.signed_result.is_empty() {
            return Ok(None);
        }
        Envelope::decode(self.signed_result.as_slice()).map(Some).map_err(|e| corrupt("signed result", e))
    }
}

/// The documents of the application: those of the operator's signed
/// submission inside the delivery (checked at registration), or of the
/// office's signed reception for one received at the provider's office.
fn submitted_documents(delivery: &ApplicationDelivery) -> Result<Vec<egov_proto::AttachedDocument>, Refusal> {
    use egov_proto::Body as _;
    let Some(submission) = &delivery.operator_submission else { return Ok(Vec::new()) };
    let header = egov_envelope::decode_header(&submission.header).map_err(|e| corrupt("submission header", e))?;
    if header.body_type == egov_proto::OfficeReception::TYPE {
        let body =
            egov_proto::OfficeReception::decode(&submission.body[..]).map_err(|e| corrupt("office reception", e))?;
        return Ok(body.documents);
    }
    let body = egov_proto::ApplicationSubmission::decode(&submission.body[..])
        .map_err(|e| corrupt("operator submission", e))?;
    Ok(body.documents)
}

impl Regional {
    /// The registration of the application `application_id`.
    pub(crate) fn load_by_application(&self, application_id: &str) -> Result<Versioned<RegistrationRecord>, Refusal> {
        let registration_id = self.store.get::<String>(&application_key(application_id))?.ok_or_else(|| {
            Refusal::new(
                Code::NotFound,
                "regional.unknown_registration",
                format!("no registration of application {application_id}"),
            )
        })?;
        self.load(&registration_id.value)
    }

    /// The registrations of `channel` (every one when it is empty), newest first.
    pub(crate) fn registrations(&self, channel: &str) -> Result<Vec<Registration>, Refusal> {
        let mut ids: Vec<String> = if channel.is_empty() {
            self.store.index_entries(&registration_key(""))?
        } else {
            self.store.index_entries(&channel_entry(channel, ""))?
        };
        // Registration numbers grow with time.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut registrations = Vec::with_capacity(ids.len());
        for id in ids {
            registrations.push(self.to_registration(&self.load(&id)?.value)?);
        }
        Ok(registrations)
    }

    pub(crate) fn load(&self, registration_id: &str) -> Result<Versioned<RegistrationRecord>, Refusal> {
        egov_runtime::ids::check_id("registration id", registration_id)?;
        self.store.get::<RegistrationRecord>(&registration_key(registration_id))?.ok_or_else(|| {
            Refusal::new(Code::NotFound, "regional.unknown_registration", format!("no registration {registration_id}"))
        })
    }

    /// The staff role the registration waits on (the one that hands the step
    /// over first, where the definition says so); empty once the ARM's part has
    /// ended (the result or the refusal sent to the State Corporation) or the
    /// application has.
    pub(crate) fn next_actor(&self, record: &RegistrationRecord) -> String {
        record
            .instance
            .waits_on(&self.definition)
            .filter(|role| egov_runtime::ids::roles::PROVIDER_STAFF.contains(role))
            .unwrap_or_default()
            .to_owned()
    }

    /// The delivery of `record`'s application, as received.
    pub(crate) fn delivery(&self, record: &RegistrationRecord) -> Result<ApplicationDelivery, Refusal> {
        let stored =
            self.store.get::<serde_bytes::ByteBuf>(&delivery_key(&record.registration_id))?.ok_or_else(|| {
                Refusal::new(
                    Code::DataLoss,
                    "store.corrupt",
                    format!("the delivery of {} is missing", record.registration_id),
                )
            })?;
        ApplicationDelivery::decode(stored.value.as_slice()).map_err(|e| corrupt("delivery", e))
    }

    /// The application of `record`, whose application came as `delivery`.
    pub(crate) fn application_of(&self, record: &RegistrationRecord, delivery: &ApplicationDelivery) -> Application {
        let mut application = Application {
            application_id: record.application_id.clone(),
            service_code: delivery.service_code.clone(),
            applicant_iin: delivery.applicant.as_ref().map(|p| p.iin.clone()).unwrap_or_default(),
            applicant_name: delivery.applicant.as_ref().map(convert::person_name).unwrap_or_default(),
            registration_id: record.registration_id.clone(),
            due_time_ms: record.due_ms.unwrap_or(0),
            ..Application::default()
        };
        convert::instance_fields(&self.definition, &record.instance, &mut application);
        application
    }

    /// The list index writes that move a registration from what it was
    /// (`before`, none when new) to `after`, for the commit that writes it;
    /// `delivery` is its application as received (read from the store where none is given).
    pub(crate) fn relist(
        &self,
        before: Option<&RegistrationRecord>,
        after: &RegistrationRecord,
        delivery: Option<&ApplicationDelivery>,
    ) -> Result<Vec<(String, bool)>, Refusal> {
        let read;
        let delivery = match delivery {
            Some(delivery) => delivery,
            None => {
                read = self.delivery(after)?;
                &read
            }
        };
        let before = before.map(|before| self.application_of(before, delivery));
        Ok(listing::reindex(
            &list_prefix(after),
            &self.definition,
            before.as_ref(),
            &self.application_of(after, delivery),
        ))
    }

    /// `ListRegistrations` with a query: one page of a channel's
    /// registrations, read from its list index (`egov_runtime::listing`).
    pub(crate) fn registration_page(
        &self,
        channel: &str,
        query: &egov_proto::ApplicationListQuery,
    ) -> Result<egov_proto::ListRegistrationsResponse, Refusal> {
        if channel.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "regional.bad_query",
                "a page of registrations names its channel",
            ));
        }
        egov_runtime::ids::check_id("channel", channel)?;
        let channel =
            if self.definition.channels.iter().any(|c| c.id == channel && c.start == self.definition.service.start) {
                NO_CHANNEL
            } else {
                channel
            };
        let page =
            listing::page(&self.store, &format!("{LIST_PREFIX}{channel}/"), &self.definition, query, |id| match self
                .store
                .get::<String>(&application_key(id))?
            {
                None => Ok(None),
                Some(registration_id) => {
                    let record = self.load(&registration_id.value)?.value;
                    Ok(Some(self.application_of(&record, &self.delivery(&record)?)))
                }
            })?;
        let mut registrations = Vec::with_capacity(page.applications.len());
        for application in &page.applications {
            registrations.push(self.to_registration(&self.load_by_application(&application.application_id)?.value)?);
        }
        Ok(egov_proto::ListRegistrationsResponse { registrations, keys: page.keys, next_cursor: page.next_cursor })
    }

    /// Writes the list index of every registration, where the store has not
    /// got it yet: a store written before the lists were indexed gets it once, at start.
    pub(crate) async fn build_list_index(&self) -> Result<usize, Refusal> {
        let marker = self.store.get::<u32>(LIST_INDEX_KEY)?;
        if marker.as_ref().is_some_and(|marker| marker.value == LIST_INDEX_LAYOUT) {
            return Ok(0);
        }
        let records = self.store.scan::<RegistrationRecord>(&registration_key(""))?;
        for chunk in records.chunks(500) {
            let mut batch = egov_store::Batch::new();
            for (_, stored) in chunk {
                for (key, present) in self.relist(None, &stored.value, None)? {
                    batch.index(key, present);
                }
            }
            self.store.commit(batch).await?;
        }
        let mut batch = egov_store::Batch::new();
        batch.put(LIST_INDEX_KEY, marker.map_or(0, |marker| marker.version), &LIST_INDEX_LAYOUT)?;
        match self.store.commit(batch).await {
            // Another replica wrote it first: the same entries.
            Err(egov_store::StoreError::Conflict { .. }) | Ok(_) => Ok(records.len()),
            Err(error) => Err(error.into()),
        }
    }

    /// The registration as the staff see it (documents without their scans).
    pub(crate) fn to_registration(&self, record: &RegistrationRecord) -> Result<Registration, Refusal> {
        self.registration_of(record, self.delivery(record)?)
    }

    /// The registration of `record`, whose application came as `delivery`.
    pub(crate) fn registration_of(
        &self,
        record: &RegistrationRecord,
        delivery: ApplicationDelivery,
    ) -> Result<Registration, Refusal> {
        let documents = submitted_documents(&delivery)?;
        let application = self.application_of(record, &delivery);
        let next_actor = self.next_actor(record);
        Ok(Registration {
            application: Some(application),
            applicant: delivery.applicant,
            representative: delivery.representative,
            documents: documents
                .into_iter()
                .map(|mut document| {
                    document.content.clear();
                    document
                })
                .collect(),
            draft_result: record.draft_result.clone(),
            signed_result: record.signed_result()?,
            next_actor,
        })
    }
}
