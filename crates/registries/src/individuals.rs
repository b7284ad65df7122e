//! The "Individuals" state database (GBD FL): the person look-up of process 3.

use std::collections::HashMap;
use std::sync::Arc;

use egov_envelope::services;
use egov_proto::individuals_service_server::{IndividualsService, IndividualsServiceServer};
use egov_proto::{LookupPersonRequest, LookupPersonResponse, PersonAnswer, PersonQuery, PersonRecord};
use egov_regulation::Iin;
use egov_runtime::{Accept, Outcome, Received, Receiver, Refusal};
use serde::Deserialize;
use tonic::{Code, Request, Response, Status};

use crate::FixtureError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndividualsFile {
    persons: Vec<PersonRecord>,
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

/// The "Individuals" registry's gRPC service.
#[derive(Debug, Clone)]
pub struct IndividualsServer {
    receiver: Receiver,
    records: Arc<Individuals>,
}

impl IndividualsServer {
    pub fn new(receiver: Receiver, records: Individuals) -> IndividualsServer {
        IndividualsServer { receiver, records: Arc::new(records) }
    }

    pub fn into_service(self) -> IndividualsServiceServer<IndividualsServer> {
        IndividualsServiceServer::new(self).max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }

    async fn look_up(&self, received: Arc<Received<PersonQuery>>) -> Result<Outcome<LookupPersonResponse>, Status> {
        let query = &received.body;
        Iin::parse(&query.iin).map_err(|e| Refusal::new(Code::InvalidArgument, e.code(), e))?;
        let person = self.records.get(&query.iin).cloned();
        tracing::info!(found = person.is_some(), "person look-up");
        let answer = PersonAnswer { found: person.is_some(), person };
        Ok(Outcome::new(LookupPersonResponse { envelope: Some(self.receiver.reply(&received, &answer)) }))
    }
}

#[tonic::async_trait]
impl IndividualsService for IndividualsServer {
    async fn lookup_person(
        &self,
        request: Request<LookupPersonRequest>,
    ) -> Result<Response<LookupPersonResponse>, Status> {
        let envelope = request.into_inner().envelope;
        let accept = Accept::Service(services::PERSON_LOOKUP);
        Ok(Response::new(self.receiver.handle(accept, envelope, |received| self.look_up(received)).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_with_a_bad_iin_are_refused() {
        let error = Individuals::from_json(r#"{"persons":[{"iin":"850715300123"}]}"#).unwrap_err();
        assert!(error.to_string().contains("850715300123"), "{error}");
        let error = Individuals::from_json(r#"{"persons":[{"iin":"850715300122","nickname":"x"}]}"#).unwrap_err();
        assert!(error.to_string().contains("nickname"), "{error}");
    }
}
