//! The staff queue: the registrations whose next step waits on a person.

use egov_proto::ListQueueResponse;
use egov_runtime::Refusal;

use crate::Regional;
use crate::record::RegistrationRecord;

impl Regional {
    /// The registrations waiting on `actor` (a role), or on anyone when it is empty.
    pub(crate) fn queue(&self, actor: &str) -> Result<ListQueueResponse, Refusal> {
        let mut registrations = Vec::new();
        for (_, record) in self.store.scan::<RegistrationRecord>("registration/")? {
            let registration = self.to_registration(&record.value)?;
            if !registration.next_actor.is_empty() && (actor.is_empty() || registration.next_actor == actor) {
                registrations.push(registration);
            }
        }
        Ok(ListQueueResponse { registrations })
    }
}
