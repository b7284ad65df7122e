//! Process 3: the look-ups through the gateway's synchronous channel (the
//! "Individuals" database and, for a notarised power of attorney, the
//! notarial registry); condition 1 on what they found, whose "no" is the
//! notice of process 4.

use std::time::Duration;

use chrono::SecondsFormat;
use egov_envelope::services;
use egov_proto::{
    ApplicationForm, Envelope, MessageType, PersonAnswer, PersonQuery, PowerOfAttorneyAnswer, PowerOfAttorneyKind,
    PowerOfAttorneyQuery, PowerOfAttorneyStatus, SendSyncRequest, SendSyncResponse,
};
use egov_regulation::instance::to_local;
use egov_runtime::{Refusal, ids};
use tonic::{Code, Status};

use crate::Workstation;

/// How long one look-up through the gateway may take before it is resent.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Sends of one look-up, the first included.
const LOOKUP_ATTEMPTS: u32 = 3;

/// What the registries found.
pub(crate) struct Found {
    pub(crate) person: PersonAnswer,
    /// For a notarised power of attorney.
    pub(crate) power: Option<PowerOfAttorneyAnswer>,
}

impl Found {
    /// Process 3's record: what each registry answered.
    pub(crate) fn detail(&self) -> String {
        format!(
            "individuals: {}{}",
            if self.person.found { "found" } else { "not found" },
            self.power
                .as_ref()
                .map(|p| format!(
                    "; notary: {}{}",
                    p.status().as_str_name(),
                    if p.revocation_reading.is_empty() {
                        String::new()
                    } else {
                        format!(" (revoked on a date only, read {})", p.revocation_reading)
                    }
                ))
                .unwrap_or_default()
        )
    }

    /// Condition 1: the notice code of process 4 when the data are not present.
    pub(crate) fn condition_1(&self) -> Option<&'static str> {
        let Some(found) = self.person.person.as_ref().filter(|_| self.person.found) else {
            return Some("process-4.applicant-not-found");
        };
        if !found.death_date.is_empty() || found.life_status.as_ref().is_some_and(|status| status.code != "0") {
            return Some("process-4.applicant-deceased");
        }
        match self.power.as_ref().map(PowerOfAttorneyAnswer::status) {
            None | Some(PowerOfAttorneyStatus::Valid) => None,
            Some(PowerOfAttorneyStatus::NotFound) => Some("process-4.power-of-attorney-not-found"),
            Some(_) => Some("process-4.power-of-attorney-invalid"),
        }
    }

    /// The notice that says how the registry read a revocation recorded as a
    /// date only, where its verdict rests on one: `process-4.revocation-` and
    /// the reading (`from-start-of-day`, `from-next-day`).
    pub(crate) fn reading_notice(&self) -> Option<String> {
        let power = self.power.as_ref().filter(|p| p.status() == PowerOfAttorneyStatus::Revoked)?;
        (!power.revocation_reading.is_empty()).then(|| format!("process-4.revocation-{}", power.revocation_reading))
    }
}

impl Workstation {
    /// Process 3 for `form`, at `event_ms`.
    pub(crate) async fn look_up(
        &self,
        application_id: &str,
        form: &ApplicationForm,
        event_ms: i64,
    ) -> Result<Found, Status> {
        let person: PersonAnswer = self
            .ask(
                application_id,
                services::PERSON_LOOKUP,
                ids::INDIVIDUALS,
                event_ms,
                &PersonQuery { iin: form.applicant_iin.clone() },
            )
            .await?;
        let notarised = form.representative.as_ref().filter(|r| r.kind == PowerOfAttorneyKind::Notarised as i32);
        let power = match notarised {
            None => None,
            Some(representative) => {
                // The verdict is for the moment of the look-up (`at`); `on_date`
                // is today, for a registry that reads only the date.
                let now = to_local(self.calendar(), event_ms);
                let query = PowerOfAttorneyQuery {
                    number: representative.power_of_attorney_number.clone(),
                    principal_iin: form.applicant_iin.clone(),
                    attorney_iin: representative.iin.clone(),
                    on_date: now.map(|t| t.date_naive().to_string()).unwrap_or_default(),
                    service_code: form.service_code.clone(),
                    issued_on: representative.power_of_attorney_issued_on.clone(),
                    at: now.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false)).unwrap_or_default(),
                };
                Some(self.ask(application_id, services::POWER_OF_ATTORNEY_CHECK, ids::NOTARY, event_ms, &query).await?)
            }
        };
        Ok(Found { person, power })
    }

    /// Sends one look-up through the gateway and checks the answer.
    async fn ask<Q: egov_proto::Body, A: egov_proto::Body + Clone>(
        &self,
        application_id: &str,
        service_id: &str,
        recipient_id: &str,
        time_ms: i64,
        query: &Q,
    ) -> Result<A, Status> {
        let context = self.receiver.context();
        let request = context.seal(application_id, service_id, recipient_id, MessageType::Request, time_ms, query);
        let header = egov_envelope::decode_header(&request.header).map_err(|e| {
            Refusal::new(Code::Internal, "envelope.malformed_header", format!("own request header: {e}"))
        })?;
        let answer = self.send_sync_patiently(request).await?;
        let envelope = answer.envelope.ok_or_else(|| {
            Refusal::new(Code::Internal, "envelope.bad_answer", "the gateway answered without an envelope")
        })?;
        Ok(self.receiver.open_answer(service_id, &header, &envelope, true)?)
    }

    /// Sends through the gateway's synchronous channel, resending the same
    /// envelope (the gateway answers a resend once) while the failure may pass.
    async fn send_sync_patiently(&self, request: Envelope) -> Result<SendSyncResponse, Status> {
        let mut attempt = 1;
        loop {
            let mut gateway = self.gateway.clone();
            let call = gateway.send_sync(SendSyncRequest { envelope: Some(request.clone()) });
            let request_out_us = egov_runtime::monitor::now_us();
            let answered = match tokio::time::timeout(LOOKUP_TIMEOUT, call).await {
                Ok(Ok(answer)) => Ok(answer.into_inner()),
                Ok(Err(status)) => Err(status),
                Err(_) => {
                    Err(Status::deadline_exceeded(format!("the gateway did not answer within {LOOKUP_TIMEOUT:?}")))
                }
            };
            let monitor = &self.receiver.context().monitor;
            let size = answered.as_ref().map(prost::Message::encoded_len);
            monitor.sent("GatewayService/SendSync", egov_runtime::ids::GATEWAY, &request, request_out_us, size);
            let status = match answered {
                Ok(answer) => return Ok(answer),
                Err(status) => status,
            };
            if attempt >= LOOKUP_ATTEMPTS || !egov_runtime::status::is_retryable(&status) {
                return Err(status);
            }
            self.receiver.context().counters.add("lookup_retries", 1);
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            attempt += 1;
        }
    }
}
