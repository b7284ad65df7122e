//! The electronic queue of paragraphs 9.3-9.4 of the regulation: the
//! applicant comes for the result after the provider's term has ended, takes
//! a ticket when they arrive, and the operator hands the results over
//! (process 9, `issue`) in the order of the tickets, without booking and
//! without express service.
//!
//! Tickets are numbered per State Corporation and per local (Astana) day,
//! `R-20260609-0001`, from a counter record of the day. A ticket is kept in
//! the application's record, and the day's waiting tickets are an index
//! (`ticket/DAY/SEQUENCE/APPLICATION`) written in the same commit as the
//! record, so the next ticket is read without reading the records. Tickets of
//! earlier days do not hold the queue up: an applicant not served on their
//! day has left, and takes a new ticket when they come again.

use std::sync::Arc;

use chrono::{NaiveDateTime, SecondsFormat, TimeZone};
use egov_proto::{ApplicantArrival, QueueTicket, TakeQueueTicketResponse};
use egov_regulation::instance::to_local;
use egov_regulation::{Calendar, TransitionError};
use egov_runtime::status::COME_BACK_KEY;
use egov_runtime::{Outcome, Received, Refusal};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use crate::Workstation;
use crate::record::{ApplicationRecord, application_key, result_key};

const PREFIX: &str = "ticket/";

/// An applicant's ticket of the electronic queue, kept with the application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ticket {
    /// `R-DAY-NNNN`.
    pub(crate) number: String,
    /// The local (Astana) day it is for, `YYYYMMDD`.
    pub(crate) day: String,
    /// Its place in the day's numbering, from 1.
    pub(crate) sequence: u32,
    /// When the applicant took it.
    pub(crate) taken_ms: i64,
    /// How long the applicant waited until the operator handed the result over;
    /// none while they wait.
    pub(crate) waited_ms: Option<i64>,
}

impl Ticket {
    /// Its entry in the day's index of waiting tickets.
    pub(crate) fn entry(&self, application_id: &str) -> String {
        entry(&self.day, self.sequence, application_id)
    }

    pub(crate) fn to_proto(&self, ahead: u32) -> QueueTicket {
        QueueTicket { number: self.number.clone(), taken_time_ms: self.taken_ms, ahead }
    }
}

fn number(day: &str, sequence: u32) -> String {
    format!("R-{day}-{sequence:04}")
}

/// The day's index entry of a waiting ticket: its sequence zero-padded, so the entries list in the tickets' order.
fn entry(day: &str, sequence: u32, application_id: &str) -> String {
    format!("{PREFIX}{day}/{sequence:010}/{application_id}")
}

fn counter_key(day: &str) -> String {
    format!("ticket-day/{day}")
}

/// The local (Astana) day of `at_ms`, `YYYYMMDD`.
fn day_of(calendar: &Calendar, at_ms: i64) -> Result<String, Refusal> {
    let local = to_local(calendar, at_ms).ok_or_else(|| {
        Refusal::new(Code::FailedPrecondition, "workstation.no_calendar", format!("no local day for the time {at_ms}"))
    })?;
    Ok(local.format("%Y%m%d").to_string())
}

/// The first working moment at or after `at_ms` by `calendar`: `at_ms` itself
/// within working hours, else the next opening. None where the calendar has
/// no data for those dates.
pub(crate) fn first_working_moment(calendar: &Calendar, at_ms: i64) -> Option<i64> {
    let local = to_local(calendar, at_ms)?;
    let (mut date, mut time) = (local.date_naive(), Some(local.time()));
    // A year of dates at most: every year of the calendar has working days.
    for _ in 0..366 {
        if calendar.is_working_day(date).ok()? {
            for &(opens, closes) in calendar.working_hours() {
                match time {
                    Some(now) if now >= closes => continue,
                    Some(now) if now >= opens => return Some(at_ms),
                    _ => {
                        let moment = calendar.offset().from_local_datetime(&NaiveDateTime::new(date, opens));
                        return moment.single().map(|moment| moment.timestamp_millis());
                    }
                }
            }
        }
        date = date.succ_opt()?;
        time = None;
    }
    None
}

/// An instant as RFC 3339 in the calendar's (Astana) offset, e.g. `2026-06-16T09:00:00+05:00`.
pub(crate) fn rfc3339(calendar: &Calendar, at_ms: i64) -> String {
    to_local(calendar, at_ms).map_or_else(|| at_ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
}

impl Workstation {
    /// `workstation.result_not_ready` for an applicant who came at `now_ms`,
    /// told when to come back: the first working moment after the end of the
    /// provider's term (the application's due time), in the message and in
    /// `egov-come-back-at`; no time where the term is not known yet or that
    /// moment has passed (the provider is late).
    pub(crate) fn result_not_ready(&self, record: &ApplicationRecord, now_ms: i64) -> Refusal {
        let calendar = self.calendar();
        let not_ready =
            |message: String| Refusal::new(Code::FailedPrecondition, "workstation.result_not_ready", message);
        let Some(due_ms) = record.due_ms else {
            return not_ready("the signed result has not arrived; the provider's term is not set yet".to_owned());
        };
        let due = rfc3339(calendar, due_ms);
        match first_working_moment(calendar, due_ms) {
            Some(come_back_ms) if come_back_ms > now_ms => {
                let come_back = rfc3339(calendar, come_back_ms);
                not_ready(format!(
                    "the signed result has not arrived; the provider's term ends at {due}: come back from {come_back}"
                ))
                .with_text(COME_BACK_KEY, come_back)
            }
            _ => not_ready(format!(
                "the signed result has not arrived, and the provider's term ended at {due}: no time to come back can be given"
            )),
        }
    }

    /// The applicant came for the result: a ticket of the day's queue, or the
    /// one they took today already; refused, telling them when to come back,
    /// while the signed result has not arrived.
    pub(crate) async fn take_ticket(
        &self,
        received: Arc<Received<ApplicantArrival>>,
    ) -> Result<Outcome<TakeQueueTicketResponse>, Status> {
        let arrival = &received.body;
        self.session(&arrival.session_id, received.sender_id())?;
        received.correlate(&arrival.application_id)?;
        let stored = self.load(&arrival.application_id)?;
        let before = self.to_application(&stored.value);
        let mut record = stored.value;
        if record.instance.has_ended() {
            let ended = TransitionError::Ended { step: self.steps.issue_result.id.clone() };
            return Err(Refusal::from(ended).into());
        }
        if self.stored_envelope("result", &result_key(&record.application_id))?.is_none() {
            return Err(self.result_not_ready(&record, received.event_ms).into());
        }
        let now_ms = received.event_ms;
        let day = day_of(self.calendar(), now_ms)?;
        let waiting = self.waiting(&day)?;
        let ahead_of = |sequence: u32| waiting.iter().filter(|(earlier, _)| *earlier < sequence).count() as u32;
        if let Some(ticket) = record.ticket.as_ref().filter(|t| t.day == day && t.waited_ms.is_none()) {
            // Taken today already: the same ticket, nothing written.
            let answer = TakeQueueTicketResponse {
                application: Some(self.to_application(&record)),
                ticket: Some(ticket.to_proto(ahead_of(ticket.sequence))),
            };
            return Ok(Outcome::new(answer));
        }
        let counter = self.store.get::<u32>(&counter_key(&day)).map_err(Refusal::from)?;
        let (version, last) = counter.map_or((0, 0), |stored| (stored.version, stored.value));
        let sequence = last + 1;
        let ticket = Ticket { number: number(&day, sequence), day, sequence, taken_ms: now_ms, waited_ms: None };
        tracing::info!(application_id = %record.application_id, ticket = %ticket.number, "queue ticket taken");
        // A ticket of an earlier day, not served: the applicant left then.
        let earlier = record.ticket.replace(ticket.clone()).filter(|earlier| earlier.waited_ms.is_none());
        let mut outcome = Outcome::new(TakeQueueTicketResponse {
            application: Some(self.to_application(&record)),
            ticket: Some(ticket.to_proto(ahead_of(sequence))),
        });
        if let Some(earlier) = earlier {
            outcome.index(earlier.entry(&record.application_id), false);
        }
        outcome.put(counter_key(&ticket.day), version, &sequence)?;
        outcome.index(ticket.entry(&record.application_id), true);
        outcome.put(application_key(&record.application_id), stored.version, &record)?;
        for (key, present) in self.relist(Some(&before), &record) {
            outcome.index(key, present);
        }
        Ok(outcome)
    }

    /// The day's waiting tickets, in their order: (sequence, application id).
    fn waiting(&self, day: &str) -> Result<Vec<(u32, String)>, Refusal> {
        let entries = self.store.index_entries(&format!("{PREFIX}{day}/")).map_err(Refusal::from)?;
        Ok(entries
            .iter()
            .filter_map(|rest| {
                let (sequence, application_id) = rest.split_once('/')?;
                Some((sequence.parse().ok()?, application_id.to_owned()))
            })
            .collect())
    }

    /// Process 9 serves the application's ticket of the day (`now_ms`), if no
    /// earlier ticket of that day still waits: marks it served in `record`,
    /// with the time the applicant waited. The caller takes it out of the
    /// day's index ([`Ticket::entry`]) in the same commit.
    pub(crate) fn call_ticket(&self, record: &mut ApplicationRecord, now_ms: i64) -> Result<Ticket, Refusal> {
        let no_ticket = |message: String| Refusal::new(Code::FailedPrecondition, "workstation.no_ticket", message);
        let day = day_of(self.calendar(), now_ms)?;
        let application_id = record.application_id.clone();
        let ticket = match record.ticket.as_mut() {
            None => {
                return Err(no_ticket(format!(
                    "application {application_id}: the applicant takes a ticket of the electronic queue first"
                )));
            }
            Some(ticket) if ticket.waited_ms.is_some() => {
                return Err(no_ticket(format!("ticket {} has been served", ticket.number)));
            }
            Some(ticket) if ticket.day != day => {
                return Err(no_ticket(format!(
                    "ticket {} is of another day: the applicant takes a ticket today",
                    ticket.number
                )));
            }
            Some(ticket) => ticket,
        };
        let next = self.waiting(&day)?.into_iter().next();
        if let Some((sequence, next_id)) = next
            && next_id != application_id
        {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "workstation.not_next_in_queue",
                format!(
                    "ticket {} is next in the queue; this application's is {}",
                    number(&day, sequence),
                    ticket.number
                ),
            ));
        }
        ticket.waited_ms = Some((now_ms - ticket.taken_ms).max(0));
        Ok(ticket.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(at: &str, expected: &str) {
        let calendar = Calendar::kazakhstan();
        let at_ms = chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis();
        let moment = first_working_moment(calendar, at_ms).map(|ms| rfc3339(calendar, ms));
        assert_eq!(moment.as_deref(), Some(expected), "the first working moment at or after {at}");
    }

    #[test]
    fn the_first_working_moment_is_the_time_itself_or_the_next_opening() {
        check("2026-06-15T18:00:00+05:00", "2026-06-16T09:00:00+05:00");
        check("2026-06-12T18:00:00+05:00", "2026-06-15T09:00:00+05:00");
        check("2026-06-16T10:30:00+05:00", "2026-06-16T10:30:00+05:00");
        check("2026-06-16T13:30:00+05:00", "2026-06-16T14:00:00+05:00");
        check("2026-06-16T07:00:00+05:00", "2026-06-16T09:00:00+05:00");
        check("2026-06-13T11:00:00+05:00", "2026-06-15T09:00:00+05:00");
        // Nauryz and its carried-over days: work resumes on Thursday 26 March.
        check("2026-03-20T18:00:00+05:00", "2026-03-26T09:00:00+05:00");
        // Another offset, the same instant: given in Astana time.
        check("2026-06-15T13:00:00Z", "2026-06-16T09:00:00+05:00");
    }

    #[test]
    fn tickets_are_numbered_per_day_and_listed_in_their_order() {
        assert_eq!(number("20260609", 1), "R-20260609-0001");
        assert_eq!(number("20260609", 12345), "R-20260609-12345");
        let mut entries = [entry("20260609", 10, "b"), entry("20260609", 9, "a"), entry("20260609", 10_000, "c")];
        entries.sort();
        assert_eq!(entries.map(|e| e.rsplit('/').next().unwrap().to_owned()), ["a", "b", "c"]);
    }
}
