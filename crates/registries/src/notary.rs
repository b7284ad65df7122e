//! The unified notarial information system (ENIS): the power-of-attorney check of process 3.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use egov_envelope::services;
use egov_proto::notary_service_server::{NotaryService, NotaryServiceServer};
use egov_proto::{
    CheckPowerOfAttorneyRequest, CheckPowerOfAttorneyResponse, PowerOfAttorney, PowerOfAttorneyAnswer,
    PowerOfAttorneyQuery, PowerOfAttorneyStatus,
};
use egov_regulation::{Calendar, Iin};
use egov_runtime::{Accept, Outcome, Received, Receiver, Refusal};
use serde::Deserialize;
use tonic::{Code, Request, Response, Status};

use crate::FixtureError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowersFile {
    /// How a revocation recorded as a date only is read (the registry's setting).
    #[serde(default)]
    date_only_revocation: DateOnlyRevocation,
    powers_of_attorney: Vec<PowerOfAttorney>,
}

/// How a revocation recorded as a date only (`revoked_on: "2026-03-01"`) is
/// read. The text says nothing; the default is the stricter reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateOnlyRevocation {
    /// Revoked from 00:00 of that day (Astana time): the default.
    #[default]
    FromStartOfDay,
    /// Revoked from 00:00 of the next day: valid through the day of revocation.
    FromNextDay,
}

impl DateOnlyRevocation {
    /// The name of the reading, as the answer gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            DateOnlyRevocation::FromStartOfDay => "from-start-of-day",
            DateOnlyRevocation::FromNextDay => "from-next-day",
        }
    }
}

/// The notarial registry's powers of attorney by number.
#[derive(Debug, Clone)]
pub struct Powers {
    powers: HashMap<String, Record>,
    /// How a revocation recorded as a date only is read.
    reading: DateOnlyRevocation,
    /// Astana time: the offset a date is read in (the calendar's).
    offset: FixedOffset,
}

impl Default for Powers {
    fn default() -> Powers {
        Powers { powers: HashMap::new(), reading: DateOnlyRevocation::default(), offset: astana() }
    }
}

/// A power of attorney with its times parsed.
#[derive(Debug, Clone)]
struct Record {
    power: PowerOfAttorney,
    /// The date of issue in Astana time, compared with the one entered.
    issued_on: Option<NaiveDate>,
    /// The first moment the power is valid.
    valid_from: Option<DateTime<FixedOffset>>,
    /// The first moment the power is no longer valid.
    valid_to: Option<DateTime<FixedOffset>>,
    /// The moment the revocation took effect.
    revoked_at: Option<DateTime<FixedOffset>>,
    /// Whether the revocation is recorded as a date only (read by the file's setting).
    revoked_date_only: bool,
}

/// Astana time: the offset of the calendar the participants use.
fn astana() -> FixedOffset {
    Calendar::kazakhstan().offset()
}

/// A time of a record or a query: an ISO date, or an RFC 3339 instant.
enum Time {
    Date(NaiveDate),
    Instant(DateTime<FixedOffset>),
}

impl Time {
    fn parse(text: &str) -> Result<Time, String> {
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Time::Date(date));
        }
        DateTime::parse_from_rfc3339(text)
            .map(Time::Instant)
            .map_err(|error| format!("{text:?} is neither an ISO date nor an RFC 3339 instant: {error}"))
    }

    /// The instant; a date is the start of that day (00:00 at `offset`).
    fn start(&self, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
        match self {
            Time::Date(date) => start_of(*date, offset),
            Time::Instant(instant) => Some(*instant),
        }
    }

    /// The end of a validity: a date is inclusive (the start of the next day).
    fn end(&self, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
        match self {
            Time::Date(date) => date.succ_opt().and_then(|next| start_of(next, offset)),
            Time::Instant(instant) => Some(*instant),
        }
    }

    /// The date at `offset`.
    fn date(&self, offset: FixedOffset) -> NaiveDate {
        match self {
            Time::Date(date) => *date,
            Time::Instant(instant) => instant.with_timezone(&offset).date_naive(),
        }
    }
}

/// 00:00 of `date` at `offset`.
fn start_of(date: NaiveDate, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    date.and_time(NaiveTime::MIN).and_local_timezone(offset).single()
}

/// A field of record `index`: `None` when empty, an error naming the record
/// and the field when it does not parse.
fn record_time(index: usize, field: &str, text: &str) -> Result<Option<Time>, FixtureError> {
    if text.is_empty() {
        return Ok(None);
    }
    Time::parse(text).map(Some).map_err(|reason| {
        // A refused field is a parse error of the file, named like the others.
        FixtureError::Parse(serde::de::Error::custom(format!("record {index}: {field}: {reason}")))
    })
}

impl Powers {
    /// Parses `powers_of_attorney.json` (see `docs/fixtures.md`). A record
    /// whose `issued_on`, `valid_until` or `revoked_on` is neither a date nor
    /// an instant is refused.
    pub fn from_json(text: &str) -> Result<Powers, FixtureError> {
        let file: PowersFile = serde_json::from_str(text)?;
        let offset = astana();
        let mut powers = HashMap::with_capacity(file.powers_of_attorney.len());
        for (index, power) in file.powers_of_attorney.into_iter().enumerate() {
            for iin in [&power.principal_iin, &power.attorney_iin] {
                if let Err(error) = Iin::parse(iin) {
                    return Err(FixtureError::BadIin { index, iin: iin.clone(), reason: error.to_string() });
                }
            }
            let issued = record_time(index, "issued_on", &power.issued_on)?;
            let until = record_time(index, "valid_until", &power.valid_until)?;
            let revoked = record_time(index, "revoked_on", &power.revoked_on)?;
            let revoked_date_only = matches!(revoked, Some(Time::Date(_)));
            let revoked_at = revoked.as_ref().and_then(|time| match file.date_only_revocation {
                DateOnlyRevocation::FromStartOfDay => time.start(offset),
                DateOnlyRevocation::FromNextDay => time.end(offset),
            });
            let record = Record {
                issued_on: issued.as_ref().map(|time| time.date(offset)),
                valid_from: issued.as_ref().and_then(|time| time.start(offset)),
                valid_to: until.as_ref().and_then(|time| time.end(offset)),
                revoked_at,
                revoked_date_only,
                power,
            };
            let number = record.power.number.clone();
            if powers.insert(number.clone(), record).is_some() {
                return Err(FixtureError::Duplicate { index, key: number });
            }
        }
        Ok(Powers { powers, reading: file.date_only_revocation, offset })
    }

    /// The moment `query` asks about: its `at`, else the start of its
    /// `on_date` in Astana time; `Ok(None)` when it names neither (the
    /// verdict is then `EXPIRED`, as for a date that does not parse). An
    /// `at` that is not an RFC 3339 instant is an error.
    fn moment(&self, query: &PowerOfAttorneyQuery) -> Result<Option<DateTime<FixedOffset>>, String> {
        if !query.at.is_empty() {
            return DateTime::parse_from_rfc3339(&query.at)
                .map(Some)
                .map_err(|error| format!("at {:?} is not an RFC 3339 instant: {error}", query.at));
        }
        Ok(NaiveDate::parse_from_str(&query.on_date, "%Y-%m-%d").ok().and_then(|date| start_of(date, self.offset)))
    }

    /// The registry's verdict on `query` (the simulator's model: see
    /// `docs/fixtures.md`), for the moment it asks about; an `at` that does
    /// not parse is an error.
    pub fn check(&self, query: &PowerOfAttorneyQuery) -> Result<PowerOfAttorneyAnswer, String> {
        let at = self.moment(query)?;
        Ok(self.check_at(query, at))
    }

    /// The verdict on `query` at `at` (its `at` and `on_date` are not read).
    fn check_at(&self, query: &PowerOfAttorneyQuery, at: Option<DateTime<FixedOffset>>) -> PowerOfAttorneyAnswer {
        let Some(record) = self.powers.get(&query.number) else {
            return PowerOfAttorneyAnswer {
                status: PowerOfAttorneyStatus::NotFound as i32,
                power_of_attorney: None,
                revocation_reading: String::new(),
            };
        };
        let power = &record.power;
        let issued_as_entered = || {
            NaiveDate::parse_from_str(&query.issued_on, "%Y-%m-%d")
                .is_ok_and(|entered| record.issued_on == Some(entered))
        };
        let mut reading = String::new();
        let status = if power.principal_iin != query.principal_iin
            || power.attorney_iin != query.attorney_iin
            || (!query.issued_on.is_empty() && !issued_as_entered())
            || (!power.scope.is_empty() && !power.scope.contains(&query.service_code))
        {
            PowerOfAttorneyStatus::Mismatch
        } else if record.revoked_at.zip(at).is_some_and(|(revoked, at)| revoked <= at) {
            if record.revoked_date_only {
                reading = self.reading.as_str().to_owned();
            }
            PowerOfAttorneyStatus::Revoked
        } else if at.is_none_or(|at| {
            record.valid_from.is_none_or(|from| at < from) || record.valid_to.is_none_or(|to| at >= to)
        }) {
            PowerOfAttorneyStatus::Expired
        } else {
            PowerOfAttorneyStatus::Valid
        };
        PowerOfAttorneyAnswer {
            status: status as i32,
            power_of_attorney: Some(power.clone()),
            revocation_reading: reading,
        }
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
        received: Arc<Received<PowerOfAttorneyQuery>>,
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
        let answer = self
            .records
            .check(query)
            .map_err(|reason| Refusal::new(Code::InvalidArgument, "registry.bad_time", reason))?;
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
    const SERVICE: &str = "kz.astana.education.meeting-permission";

    fn query(number: &str, principal: &str, attorney: &str) -> PowerOfAttorneyQuery {
        PowerOfAttorneyQuery {
            number: number.to_owned(),
            principal_iin: principal.to_owned(),
            attorney_iin: attorney.to_owned(),
            service_code: SERVICE.to_owned(),
            ..PowerOfAttorneyQuery::default()
        }
    }

    fn verdict(powers: &Powers, query: &PowerOfAttorneyQuery) -> PowerOfAttorneyStatus {
        powers.check(query).unwrap().status()
    }

    /// The verdict of the fixture's records for a date-only query (an old client).
    fn check(number: &str, principal: &str, attorney: &str, on: &str, expected: PowerOfAttorneyStatus) {
        let powers = Powers::from_json(POWERS).unwrap();
        let query = PowerOfAttorneyQuery { on_date: on.to_owned(), ..query(number, principal, attorney) };
        assert_eq!(verdict(&powers, &query), expected, "{number} on {on}");
    }

    /// The verdict of `powers` for a query at the instant `at`.
    fn check_at(powers: &Powers, number: &str, principal: &str, at: &str, expected: PowerOfAttorneyStatus) {
        let query = PowerOfAttorneyQuery {
            at: at.to_owned(),
            on_date: at[..10].to_owned(),
            ..query(number, principal, "870322300457")
        };
        assert_eq!(verdict(powers, &query), expected, "{number} at {at}");
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
    fn a_revocation_at_an_instant_is_decided_for_the_moment_of_the_look_up() {
        use PowerOfAttorneyStatus::*;
        let powers = Powers::from_json(POWERS).unwrap();
        // NP-2026-0210 is revoked at 2026-06-02T11:00:00+05:00.
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T10:00:00+05:00", Valid);
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T10:59:59+05:00", Valid);
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T11:00:00+05:00", Revoked);
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T12:00:00+05:00", Revoked);
        // The same instants in another offset.
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T05:00:00Z", Valid);
        check_at(&powers, "NP-2026-0210", "920611400773", "2026-06-02T07:00:00Z", Revoked);
        // A date-only query (an old client) is for the start of that day.
        check("NP-2026-0210", "920611400773", "870322300457", "2026-06-02", Valid);
        check("NP-2026-0210", "920611400773", "870322300457", "2026-06-03", Revoked);
    }

    #[test]
    fn a_date_of_revocation_is_the_start_of_that_day_in_astana() {
        use PowerOfAttorneyStatus::*;
        let powers = Powers::from_json(POWERS).unwrap();
        // NP-2026-0099 is revoked on 2026-03-01.
        check_at(&powers, "NP-2026-0099", "900101400122", "2026-02-28T23:59:59+05:00", Valid);
        check_at(&powers, "NP-2026-0099", "900101400122", "2026-03-01T00:00:00+05:00", Revoked);
        check_at(&powers, "NP-2026-0099", "900101400122", "2026-02-28T19:00:00Z", Revoked);
        check_at(&powers, "NP-2026-0099", "900101400122", "2026-02-28T18:59:59Z", Valid);
    }

    #[test]
    fn a_date_only_revocation_is_read_by_the_files_setting_and_the_answer_says_how() {
        use PowerOfAttorneyStatus::*;
        let answer = |powers: &Powers, at: &str| {
            let query = PowerOfAttorneyQuery {
                at: at.to_owned(),
                on_date: at[..10].to_owned(),
                ..query("NP-2026-0099", "900101400122", "870322300457")
            };
            powers.check(&query).unwrap()
        };
        // The default: revoked from 00:00 of that day.
        let strict = Powers::from_json(POWERS).unwrap();
        let revoked = answer(&strict, "2026-03-01T10:00:00+05:00");
        assert_eq!((revoked.status(), revoked.revocation_reading.as_str()), (Revoked, "from-start-of-day"));
        assert_eq!(answer(&strict, "2026-02-28T23:59:59+05:00").revocation_reading, "", "valid: nothing to say");
        // The other reading: valid through the day of revocation.
        let lenient = POWERS.replacen('{', "{ \"date_only_revocation\": \"from-next-day\",", 1);
        let lenient = Powers::from_json(&lenient).unwrap();
        assert_eq!(answer(&lenient, "2026-03-01T10:00:00+05:00").status(), Valid);
        assert_eq!(answer(&lenient, "2026-03-01T23:59:59+05:00").status(), Valid);
        let revoked = answer(&lenient, "2026-03-02T00:00:00+05:00");
        assert_eq!((revoked.status(), revoked.revocation_reading.as_str()), (Revoked, "from-next-day"));
        // A revocation recorded with its time is read as it is, under either setting.
        for powers in [&strict, &lenient] {
            let query = PowerOfAttorneyQuery {
                at: "2026-06-02T11:00:00+05:00".to_owned(),
                on_date: "2026-06-02".to_owned(),
                ..query("NP-2026-0210", "920611400773", "870322300457")
            };
            let answer = powers.check(&query).unwrap();
            assert_eq!((answer.status(), answer.revocation_reading.as_str()), (Revoked, ""));
        }
        let unknown = POWERS.replacen('{', "{ \"date_only_revocation\": \"sometime\",", 1);
        assert!(Powers::from_json(&unknown).is_err());
    }

    #[test]
    fn a_date_of_validity_is_inclusive_to_the_end_of_the_day() {
        use PowerOfAttorneyStatus::*;
        let powers = Powers::from_json(POWERS).unwrap();
        // NP-2026-0001: issued on 2026-01-15, valid until 2027-12-31.
        check_at(&powers, "NP-2026-0001", "920611400773", "2026-01-14T23:59:59+05:00", Expired);
        check_at(&powers, "NP-2026-0001", "920611400773", "2026-01-15T00:00:00+05:00", Valid);
        check_at(&powers, "NP-2026-0001", "920611400773", "2027-12-31T23:59:59+05:00", Valid);
        check_at(&powers, "NP-2026-0001", "920611400773", "2028-01-01T00:00:00+05:00", Expired);
        check("NP-2026-0001", "920611400773", "870322300457", "2027-12-31", Valid);
    }

    #[test]
    fn instants_of_issue_and_of_the_end_of_validity_are_exact() {
        use PowerOfAttorneyStatus::*;
        let powers = Powers::from_json(
            r#"{ "powers_of_attorney": [ { "number": "NP-1", "issued_on": "2026-06-01T15:00:00+05:00",
                 "principal_iin": "920611400773", "attorney_iin": "870322300457",
                 "valid_until": "2026-06-30T18:00:00+05:00" } ] }"#,
        )
        .unwrap();
        check_at(&powers, "NP-1", "920611400773", "2026-06-01T14:59:59+05:00", Expired);
        check_at(&powers, "NP-1", "920611400773", "2026-06-01T15:00:00+05:00", Valid);
        check_at(&powers, "NP-1", "920611400773", "2026-06-30T17:59:59+05:00", Valid);
        check_at(&powers, "NP-1", "920611400773", "2026-06-30T18:00:00+05:00", Expired);
        // The date of issue entered is compared with the instant's date in Astana.
        let entered = |issued_on: &str| PowerOfAttorneyQuery {
            at: "2026-06-10T10:00:00+05:00".to_owned(),
            issued_on: issued_on.to_owned(),
            ..query("NP-1", "920611400773", "870322300457")
        };
        assert_eq!(verdict(&powers, &entered("2026-06-01")), Valid);
        assert_eq!(verdict(&powers, &entered("2026-05-31")), Mismatch);
        assert_eq!(verdict(&powers, &entered("01.06.2026")), Mismatch);
    }

    #[test]
    fn the_date_of_issue_entered_must_be_the_records() {
        use PowerOfAttorneyStatus::*;
        let powers = Powers::from_json(POWERS).unwrap();
        let entered = |issued_on: &str| PowerOfAttorneyQuery {
            on_date: "2026-06-01".to_owned(),
            issued_on: issued_on.to_owned(),
            ..query("NP-2026-0001", "920611400773", "870322300457")
        };
        assert_eq!(verdict(&powers, &entered("")), Valid);
        assert_eq!(verdict(&powers, &entered("2026-01-15")), Valid);
        assert_eq!(verdict(&powers, &entered("2026-01-16")), Mismatch);
    }

    #[test]
    fn a_look_up_time_that_does_not_parse_is_refused() {
        let powers = Powers::from_json(POWERS).unwrap();
        for at in ["2026-06-02", "2026-06-02T10:00:00", "yesterday"] {
            let query =
                PowerOfAttorneyQuery { at: at.to_owned(), ..query("NP-2026-0001", "920611400773", "870322300457") };
            let error = powers.check(&query).unwrap_err();
            assert!(error.contains(at), "{error}");
        }
        // Without `at` or `on_date` there is no moment: expired, as before.
        let query = query("NP-2026-0001", "920611400773", "870322300457");
        assert_eq!(verdict(&powers, &query), PowerOfAttorneyStatus::Expired);
    }

    #[test]
    fn a_record_whose_time_does_not_parse_is_refused() {
        for (field, value) in
            [("issued_on", "15.01.2026"), ("valid_until", "2027-02-30"), ("revoked_on", "2026-06-02 11:00")]
        {
            let record = |number: &str| {
                serde_json::json!({ "number": number, "issued_on": "2026-01-15", "principal_iin": "920611400773",
                                    "attorney_iin": "870322300457", "valid_until": "2027-12-31" })
            };
            let mut bad = record("NP-2");
            bad[field] = value.into();
            let text = serde_json::json!({ "powers_of_attorney": [record("NP-1"), bad] }).to_string();
            let error = Powers::from_json(&text).unwrap_err().to_string();
            assert!(error.contains(&format!("record 1: {field}: ")) && error.contains(value), "{error}");
        }
    }
}
