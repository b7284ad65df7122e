//! The unified notarial information system (ENIS): the power-of-attorney check of process 3.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use egov_envelope::services;
use egov_proto::notary_service_server::{NotaryService, NotaryServiceServer};
use egov_proto::{
    CheckPowerOfAttorneyRequest, CheckPowerOfAttorneyResponse, PowerOfAttorney, PowerOfAttorneyAnswer,
    PowerOfAttorneyQuery, PowerOfAttorneyStatus,
};
use egov_regulation::Iin;
use egov_runtime::{Accept, Outcome, Received, Receiver, Refusal};
use serde::Deserialize;
use tonic::{Code, Request, Response, Status};

use crate::FixtureError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowersFile {
    powers_of_attorney: Vec<PowerOfAttorney>,
}

/// The notarial registry's powers of attorney by number.
#[derive(Debug, Default, Clone)]
pub struct Powers {
    powers: HashMap<String, PowerOfAttorney>,
}

impl Powers {
    /// Parses `powers_of_attorney.json` (see `docs/fixtures.md`).
    pub fn from_json(text: &str) -> Result<Powers, FixtureError> {
        let file: PowersFile = serde_json::from_str(text)?;
        let mut powers = HashMap::with_capacity(file.powers_of_attorney.len());
        for (index, power) in file.powers_of_attorney.into_iter().enumerate() {
            for iin in [&power.principal_iin, &power.attorney_iin] {
                if let Err(error) = Iin::parse(iin) {
                    return Err(FixtureError::BadIin { index, iin: iin.clone(), reason: error.to_string() });
                }
            }
            let number = power.number.clone();
            if powers.insert(number.clone(), power).is_some() {
                return Err(FixtureError::Duplicate { index, key: number });
            }
        }
        Ok(Powers { powers })
    }

    /// The registry's verdict on `query` (the simulator's model: see `docs/fixtures.md`).
    pub fn check(&self, query: &PowerOfAttorneyQuery) -> PowerOfAttorneyAnswer {
        let Some(power) = self.powers.get(&query.number) else {
            return PowerOfAttorneyAnswer { status: PowerOfAttorneyStatus::NotFound as i32, power_of_attorney: None };
        };
        let on_date = NaiveDate::parse_from_str(&query.on_date, "%Y-%m-%d").ok();
        let date = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        let status = if power.principal_iin != query.principal_iin
            || power.attorney_iin != query.attorney_iin
            || (!query.issued_on.is_empty() && query.issued_on != power.issued_on)
            || (!power.scope.is_empty() && !power.scope.contains(&query.service_code))
        {
            PowerOfAttorneyStatus::Mismatch
        } else if date(&power.revoked_on).zip(on_date).is_some_and(|(revoked, on)| revoked <= on) {
            PowerOfAttorneyStatus::Revoked
        } else if on_date.is_none_or(|on| {
            date(&power.issued_on).is_none_or(|issued| on < issued)
                || date(&power.valid_until).is_none_or(|until| on > until)
        }) {
            PowerOfAttorneyStatus::Expired
        } else {
            PowerOfAttorneyStatus::Valid
        };
        PowerOfAttorneyAnswer { status: status as i32, power_of_attorney: Some(power.clone()) }
    }
}

/// The notarial registry's gRPC service.
#[derive(Debug, Clone)]
pub struct NotaryServer {
    receiver: Receiver,
    records: Arc<Powers>,
}

impl NotaryServer {
    pub fn new(receiver: Receiver, records: Powers) -> NotaryServer {
        NotaryServer { receiver, records: Arc::new(records) }
    }

    pub fn into_service(self) -> NotaryServiceServer<NotaryServer> {
        NotaryServiceServer::new(self).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }

    async fn check(
        &self,
        received: Received<PowerOfAttorneyQuery>,
    ) -> Result<Outcome<CheckPowerOfAttorneyResponse>, Status> {
        let query = &received.body;
        for iin in [&query.principal_iin, &query.attorney_iin] {
            Iin::parse(iin).map_err(|e| Refusal::new(Code::InvalidArgument, e.code(), format!("{iin}: {e}")))?;
        }
        if query.number.is_empty() {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "registry.missing_field",
                "power of attorney number is empty",
            )
            .into());
        }
        let answer = self.records.check(query);
        tracing::info!(status = ?answer.status(), "power-of-attorney check");
        Ok(Outcome::new(CheckPowerOfAttorneyResponse { envelope: Some(self.receiver.reply(&received, &answer)) }))
    }
}

#[tonic::async_trait]
impl NotaryService for NotaryServer {
    async fn check_power_of_attorney(
        &self,
        request: Request<CheckPowerOfAttorneyRequest>,
    ) -> Result<Response<CheckPowerOfAttorneyResponse>, Status> {
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::POWER_OF_ATTORNEY_CHECK);
        Ok(Response::new(self.receiver.handle(accept, envelope, |received| self.check(received)).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POWERS: &str = include_str!("../../../fixtures/powers_of_attorney.json");

    fn check(number: &str, principal: &str, attorney: &str, on: &str, expected: PowerOfAttorneyStatus) {
        let powers = Powers::from_json(POWERS).unwrap();
        let query = PowerOfAttorneyQuery {
            number: number.to_owned(),
            principal_iin: principal.to_owned(),
            attorney_iin: attorney.to_owned(),
            on_date: on.to_owned(),
            service_code: "kz.astana.education.meeting-permission".to_owned(),
            issued_on: String::new(),
        };
        assert_eq!(powers.check(&query).status(), expected, "{number} on {on}");
    }

    #[test]
    fn notarial_verdicts() {
        use PowerOfAttorneyStatus::*;
        check("NP-2026-0001", "920611400773", "870322300457", "2026-06-01", Valid);
        check("NP-2026-0001", "920611400773", "870322300457", "2028-01-01", Expired);
        check("NP-2026-0001", "750909400182", "870322300457", "2026-06-01", Mismatch);
        check("NP-2025-0417", "920611400773", "830303300901", "2026-06-01", Expired);
        check("NP-2026-0099", "900101400122", "870322300457", "2026-02-15", Valid);
        check("NP-2026-0099", "900101400122", "870322300457", "2026-03-01", Revoked);
        check("NP-0000-0000", "920611400773", "870322300457", "2026-06-01", NotFound);
    }
}
