//! The staff queue: the registrations whose next step waits on a person,
//! read from an index (`queue/ACTOR/REGISTRATION`) that every write of a
//! registration keeps in the same commit, so a read costs what it returns.

use egov_proto::ListQueueResponse;
use egov_runtime::{Outcome, Refusal};

use crate::Regional;
use crate::record::RegistrationRecord;

const PREFIX: &str = "queue/";

fn entry(actor: &str, registration_id: &str) -> String {
    format!("{PREFIX}{actor}/{registration_id}")
}

impl Regional {
    /// Moves the registration in the queue from whom it waited on (`before`)
    /// to whom it waits on now, and its list entries with it (`relist`;
    /// `delivery`: the application as received, for a new registration).
    pub(crate) fn requeue<A>(
        &self,
        outcome: &mut Outcome<A>,
        before: Option<&RegistrationRecord>,
        after: &RegistrationRecord,
        delivery: Option<&egov_proto::ApplicationDelivery>,
    ) -> Result<(), Refusal> {
        for (key, present) in self.relist(before, after, delivery)? {
            outcome.index(key, present);
        }
        let was = before.map(|record| self.next_actor(record)).unwrap_or_default();
        let is = self.next_actor(after);
        if was != is {
            if !was.is_empty() {
                outcome.index(entry(&was, &after.registration_id), false);
            }
            if !is.is_empty() {
                outcome.index(entry(&is, &after.registration_id), true);
            }
        }
        Ok(())
    }

    /// The registrations waiting on `actor` (a role), or on anyone when it is empty.
    pub(crate) fn queue(&self, actor: &str) -> Result<ListQueueResponse, Refusal> {
        if !actor.is_empty() {
            egov_runtime::ids::check_id("actor", actor)?;
        }
        let prefix = if actor.is_empty() { PREFIX.to_owned() } else { format!("{PREFIX}{actor}/") };
        let mut waiting: Vec<(String, String)> = self
            .store
            .index_entries(&prefix)?
            .into_iter()
            .filter_map(|rest| {
                let (actor_part, id) = if actor.is_empty() { rest.split_once('/')? } else { (actor, rest.as_str()) };
                Some((id.to_owned(), actor_part.to_owned()))
            })
            .collect();
        waiting.sort();
        let mut registrations = Vec::with_capacity(waiting.len());
        for (registration_id, indexed_actor) in waiting {
            let record = self.load(&registration_id)?.value;
            let registration = self.to_registration(&record)?;
            if registration.next_actor == indexed_actor {
                registrations.push(registration);
            }
        }
        Ok(ListQueueResponse { registrations })
    }
}
