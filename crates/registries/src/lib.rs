//! The "Individuals" state database (GBD FL) and the unified notarial
//! information system (ENIS), served from fixture files. Only the gateway may
//! call them: every request must carry the gateway's countersignature.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use egov_envelope::services;
use egov_proto::individuals_service_server::{IndividualsService, IndividualsServiceServer};
use egov_proto::notary_service_server::{NotaryService, NotaryServiceServer};
use egov_proto::{
    CheckPowerOfAttorneyRequest, CheckPowerOfAttorneyResponse, LookupPersonRequest, LookupPersonResponse, MessageType,
    PersonAnswer, PersonQuery, PersonRecord, PowerOfAttorney, PowerOfAttorneyAnswer, PowerOfAttorneyQuery,
    PowerOfAttorneyStatus,
};
use egov_regulation::Iin;
use egov_runtime::ids::roles;
use egov_runtime::{Context, Expect, Refusal};
use serde::Deserialize;
use thiserror::Error;
use tonic::{Code, Request, Response, Status};

/// Why a fixture file was refused.
#[derive(Debug, Error)]
pub enum FixtureError {
    #[error("fixture does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("record {index}: iin {iin}: {reason}")]
    BadIin { index: usize, iin: String, reason: String },
    #[error("record {index}: {key} is listed twice")]
    Duplicate { index: usize, key: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndividualsFile {
    persons: Vec<PersonRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowersFile {
    powers_of_attorney: Vec<PowerOfAttorney>,
}

/// The "Individuals" records by IIN.
#[derive(Debug, Default, Clone)]
pub struct Individuals {
    persons: HashMap<String, PersonRecord>,
}

impl Individuals {
    /// Parses `individuals.json` (see `docs/fixtures.md`).
    pub fn from_json(text: &str) -> Result<Individuals, FixtureError> {
        let file: IndividualsFile = serde_json::from_str(text)?;
        let mut persons = HashMap::with_capacity(file.persons.len());
        for (index, person) in file.persons.into_iter().enumerate() {
            if let Err(error) = Iin::parse(&person.iin) {
                return Err(FixtureError::BadIin { index, iin: person.iin, reason: error.to_string() });
            }
            let iin = person.iin.clone();
            if persons.insert(iin.clone(), person).is_some() {
                return Err(FixtureError::Duplicate { index, key: iin });
            }
        }
        Ok(Individuals { persons })
    }

    pub fn get(&self, iin: &str) -> Option<&PersonRecord> {
        self.persons.get(iin)
    }

    pub fn len(&self) -> usize {
        self.persons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }
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

/// The "Individuals" registry's gRPC service.
#[derive(Debug, Clone)]
pub struct IndividualsServer {
    context: Context,
    records: Arc<Individuals>,
}

impl IndividualsServer {
    pub fn new(context: Context, records: Individuals) -> IndividualsServer {
        IndividualsServer { context, records: Arc::new(records) }
    }

    pub fn into_service(self) -> IndividualsServiceServer<IndividualsServer> {
        IndividualsServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl IndividualsService for IndividualsServer {
    async fn lookup_person(
        &self,
        request: Request<LookupPersonRequest>,
    ) -> Result<Response<LookupPersonResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::PERSON_LOOKUP],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_WORKSTATION],
                via_gateway: true,
            },
        )?;
        let query: PersonQuery = Context::body(&envelope, &verified)?;
        Iin::parse(&query.iin).map_err(|e| Refusal::new(Code::InvalidArgument, e.code(), e))?;
        let person = self.records.get(&query.iin).cloned();
        tracing::info!(found = person.is_some(), "person look-up");
        let answer = PersonAnswer { found: person.is_some(), person };
        let reply = self.context.seal(
            &verified.header.correlation_id,
            services::PERSON_LOOKUP,
            &verified.header.sender_id,
            MessageType::Response,
            self.context.event_time(&verified),
            &answer,
        );
        Ok(Response::new(LookupPersonResponse { envelope: Some(reply) }))
    }
}

/// The notarial registry's gRPC service.
#[derive(Debug, Clone)]
pub struct NotaryServer {
    context: Context,
    records: Arc<Powers>,
}

impl NotaryServer {
    pub fn new(context: Context, records: Powers) -> NotaryServer {
        NotaryServer { context, records: Arc::new(records) }
    }

    pub fn into_service(self) -> NotaryServiceServer<NotaryServer> {
        NotaryServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl NotaryService for NotaryServer {
    async fn check_power_of_attorney(
        &self,
        request: Request<CheckPowerOfAttorneyRequest>,
    ) -> Result<Response<CheckPowerOfAttorneyResponse>, Status> {
        let envelope = request.into_inner().envelope.ok_or_else(egov_runtime::status::missing_envelope)?;
        let verified = self.context.receive(
            &envelope,
            Expect {
                services: &[services::POWER_OF_ATTORNEY_CHECK],
                message_types: &[MessageType::Request],
                senders: &[roles::SC_WORKSTATION],
                via_gateway: true,
            },
        )?;
        let query: PowerOfAttorneyQuery = Context::body(&envelope, &verified)?;
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
        let answer = self.records.check(&query);
        tracing::info!(status = ?answer.status(), "power-of-attorney check");
        let reply = self.context.seal(
            &verified.header.correlation_id,
            services::POWER_OF_ATTORNEY_CHECK,
            &verified.header.sender_id,
            MessageType::Response,
            self.context.event_time(&verified),
            &answer,
        );
        Ok(Response::new(CheckPowerOfAttorneyResponse { envelope: Some(reply) }))
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

    #[test]
    fn fixtures_with_a_bad_iin_are_refused() {
        let error = Individuals::from_json(r#"{"persons":[{"iin":"850715300123"}]}"#).unwrap_err();
        assert!(error.to_string().contains("850715300123"), "{error}");
        let error = Individuals::from_json(r#"{"persons":[{"iin":"850715300122","nickname":"x"}]}"#).unwrap_err();
        assert!(error.to_string().contains("nickname"), "{error}");
    }
}
