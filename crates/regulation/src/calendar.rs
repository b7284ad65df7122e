//! The Kazakhstan working-day calendar, by rule and data.
//!
//! The data (holidays, days off, Kurban Ait per year, transfers, working
//! hours, time zone) lives in `data/calendar-kz.toml`, each entry with its
//! source; a change of law is an edit of that file. The rules are code:
//!
//! - Monday to Friday are working days, Saturday and Sunday are not;
//! - a holiday is a day off; a holiday on a Saturday or Sunday makes the next
//!   working day a day off (carried over). Several holidays on one weekend
//!   are carried over one by one, in date order, each to the next working day
//!   not already off;
//! - a day off that is not a holiday (Orthodox Christmas, the first day of
//!   Kurban Ait) is NOT carried over;
//! - a transfer, applied after the carry-over, makes a working Monday-Friday
//!   a day off and a plain Saturday or Sunday a working day.
//!
//! "N working days after D" does not count D and ends at the end of the
//! working hours of the N-th working day. A date outside the data's years is
//! an explicit [`CalendarError::OutOfRange`], never a guess. See
//! `docs/calendar.md`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};

/// The embedded default calendar.
const KAZAKHSTAN_TOML: &str = include_str!("../data/calendar-kz.toml");

/// The earliest and latest years a calendar file may cover.
const SUPPORTED_YEARS: RangeInclusive<i32> = 1900..=9999;
/// The most years one calendar file may cover.
const MAX_SPAN_YEARS: i32 = 100;

/// A working-day calendar: which dates are working days, and the working
/// hours in a fixed UTC offset. Built from TOML data by
/// [`Calendar::from_toml`]; the data's years are the only ones it answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    offset: FixedOffset,
    /// Non-empty, each period non-empty, sorted and not overlapping.
    working_hours: Vec<(NaiveTime, NaiveTime)>,
    /// The start of the first working period.
    opening: NaiveTime,
    /// The end of the last working period.
    closing: NaiveTime,
    first_year: i32,
    last_year: i32,
    /// Every date inside the years that is not a plain day: never an empty
    /// list; a `WorkingDay` entry is always alone on its date. Shared by the
    /// calendars of other working hours ([`Calendar::with_hours`]).
    special_days: std::sync::Arc<BTreeMap<NaiveDate, Vec<DayOff>>>,
    /// The working periods of a plain Saturday (not a holiday, a day off or a
    /// transfer), for a participant open on Saturdays; empty: closed.
    saturday_hours: Vec<(NaiveTime, NaiveTime)>,
}

/// A participant's working hours: the periods of a working day, and of a plain
/// Saturday where it is open then ("09:00"-"20:00"), local time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkingHours {
    pub working_days: Vec<(NaiveTime, NaiveTime)>,
    pub saturdays: Vec<(NaiveTime, NaiveTime)>,
}

impl WorkingHours {
    /// Parses periods like `[["09:00", "13:00"], ["14:00", "18:00"]]` (sorted, not
    /// overlapping); `saturdays` may be empty, `working_days` not.
    pub fn parse(working_days: &[[String; 2]], saturdays: &[[String; 2]]) -> Result<WorkingHours, CalendarError> {
        Ok(WorkingHours {
            working_days: parse_working_hours(working_days)?,
            saturdays: if saturdays.is_empty() { Vec::new() } else { parse_working_hours(saturdays)? },
        })
    }
}

/// A date that is not a plain Monday-Friday working day or a plain weekend
/// day, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOff {
    pub date: NaiveDate,
    pub kind: DayKind,
    /// What the day is, in words, e.g. "carried over from Nauryz meirami on
    /// saturday 2026-03-21".
    pub reason: String,
    /// Where the rule or the date comes from.
    pub source: String,
}

/// Why a date is special. All but [`DayKind::WorkingDay`] are days off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DayKind {
    /// A public holiday (listed even when it falls on a weekend).
    Holiday,
    /// The working day after a holiday that fell on a Saturday or Sunday.
    CarriedOver,
    /// A day off that is not a holiday and is not carried over (Orthodox
    /// Christmas, the first day of Kurban Ait).
    DayOff,
    /// A working day made a day off by a transfer.
    Transfer,
    /// A Saturday or Sunday made a working day by a transfer.
    WorkingDay,
}

impl DayKind {
    /// `"holiday"`, `"carried-over"`, `"day-off"`, `"transfer"` or
    /// `"working-day"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::CarriedOver => "carried-over",
            DayKind::DayOff => "day-off",
            DayKind::Transfer => "transfer",
            DayKind::WorkingDay => "working-day",
        }
    }
}

/// Why a calendar question has no answer, or why calendar data is refused.
/// [`CalendarError::code`] is stable and machine-readable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("date {date} is outside the calendar's years {first_year} to {last_year}")]
    OutOfRange { date: NaiveDate, first_year: i32, last_year: i32 },
    #[error("year {year} is outside the calendar's years {first_year} to {last_year}")]
    YearOutOfRange { year: i32, first_year: i32, last_year: i32 },
    #[error("invalid calendar: {0}")]
    Invalid(String),
}

impl CalendarError {
    /// `"calendar.out_of_range"` (for a date or a year) or
    /// `"calendar.invalid"`.
    pub fn code(&self) -> &'static str {
        match self {
            CalendarError::OutOfRange { .. } | CalendarError::YearOutOfRange { .. } => "calendar.out_of_range",
            CalendarError::Invalid(_) => "calendar.invalid",
        }
    }
}

impl Calendar {
    /// The embedded Kazakhstan calendar (`data/calendar-kz.toml`), parsed
    /// once. A test guarantees the embedded file parses.
    pub fn kazakhstan() -> &'static Calendar {
        static KAZAKHSTAN: OnceLock<Calendar> = OnceLock::new();
        KAZAKHSTAN.get_or_init(|| match Calendar::from_toml(KAZAKHSTAN_TOML) {
            Ok(calendar) => calendar,
            // Unreachable: the embedded file is a constant checked by the
            // test `embedded_kazakhstan_calendar_parses`.
            Err(error) => panic!("embedded calendar-kz.toml: {error}"),
        })
    }

    /// Parses and validates calendar data (see `data/calendar-kz.toml` for
    /// the format). The error names the problem.
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let file: CalendarFile = toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| {
                let before = &text.as_bytes()[..span.start.min(text.len())];
                before.iter().filter(|&&byte| byte == b'\n').count() + 1
            });
            match line {
                Some(line) => invalid(format!("line {line}: {}", error.message().trim_end())),
                None => invalid(error.message().trim_end().to_owned()),
            }
        })?;
        CalendarBuilder::new(&file)?.build(&file)
    }

    /// The UTC offset of the calendar's local time.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// The years the data covers; any other year is an error.
    pub fn years(&self) -> RangeInclusive<i32> {
        self.first_year..=self.last_year
    }

    /// The working periods of a working day in local time, e.g. 09:00-13:00
    /// and 14:00-18:00; sorted and not overlapping.
    pub fn working_hours(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.working_hours
    }

    /// The same days with other working hours (a participant's own: the State
    /// Corporation's longer day, its Saturdays). Working days, and the
    /// deadlines in working days, stay the calendar's; the minutes of working
    /// time count in `hours`, on working days and on plain Saturdays where
    /// `hours` has Saturday periods.
    pub fn with_hours(&self, hours: &WorkingHours) -> Calendar {
        let mut calendar = self.clone();
        if let (Some(first), Some(last)) = (hours.working_days.first(), hours.working_days.last()) {
            calendar.working_hours = hours.working_days.clone();
            calendar.opening = first.0;
            calendar.closing = last.1;
        }
        calendar.saturday_hours = hours.saturdays.clone();
        calendar
    }

    /// The working periods of `date`: a working day's, a plain Saturday's
    /// where the hours have them, none otherwise.
    fn periods_on(&self, date: NaiveDate) -> Result<&[(NaiveTime, NaiveTime)], CalendarError> {
        if self.is_working_day(date)? {
            Ok(&self.working_hours)
        } else if date.weekday() == Weekday::Sat && !self.special_days.contains_key(&date) {
            Ok(&self.saturday_hours)
        } else {
            Ok(&[])
        }
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.check_date(date)?;
        Ok(match self.special_days.get(&date) {
            Some(entries) => entries.iter().any(|entry| entry.kind == DayKind::WorkingDay),
            None => !is_weekend(date),
        })
    }

    /// Every date of `year` that is not a plain day, sorted by date: holidays
    /// (also on weekends), carried-over days, days off, transfers, and the
    /// Saturdays and Sundays made working days (kind [`DayKind::WorkingDay`]).
    pub fn days_off(&self, year: i32) -> Result<Vec<DayOff>, CalendarError> {
        if !self.years().contains(&year) {
            return Err(CalendarError::YearOutOfRange { year, first_year: self.first_year, last_year: self.last_year });
        }
        Ok(self
            .special_days
            .iter()
            .filter(|(date, _)| date.year() == year)
            .flat_map(|(_, entries)| entries.iter().cloned())
            .collect())
    }

    /// The `n`-th working day after `date`, `date` itself not counted;
    /// `n = 0` gives `date`. Every date looked at must be inside the
    /// calendar's years.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        self.check_date(date)?;
        let mut current = date;
        let mut left = n;
        while left > 0 {
            current = self.next_date(current)?;
            if self.is_working_day(current)? {
                left -= 1;
            }
        }
        Ok(current)
    }

    /// The deadline "`n` working days after `start`": the end of working
    /// hours (18:00 local) of the `n`-th working day after `start`'s local
    /// date, that date not counted. For `n = 0`, the end of working hours of
    /// `start`'s local date if it is a working day, else of the next working
    /// day. The result is in the calendar's offset.
    pub fn working_days_deadline(
        &self,
        start: DateTime<FixedOffset>,
        n: u32,
    ) -> Result<DateTime<FixedOffset>, CalendarError> {
        let start_date = self.to_local(start).date();
        let deadline_date = if n == 0 && self.is_working_day(start_date)? {
            start_date
        } else {
            self.add_working_days(start_date, n.max(1))?
        };
        self.local_moment(deadline_date.and_time(self.closing))
    }

    /// The moment when `minutes` of working time have passed since `start`.
    /// Only working time counts: working days, within working hours. A
    /// start outside working hours begins at the next opening; a result
    /// exactly at the end of a working period stays there (17:55 + 5 minutes
    /// is 18:00). `minutes = 0` gives `start` unchanged. The result is in the
    /// calendar's offset.
    pub fn add_working_minutes(
        &self,
        start: DateTime<FixedOffset>,
        minutes: u32,
    ) -> Result<DateTime<FixedOffset>, CalendarError> {
        let mut now = self.to_local(start);
        self.check_date(now.date())?;
        if minutes == 0 {
            return Ok(start.with_timezone(&self.offset));
        }
        let mut remaining = TimeDelta::minutes(i64::from(minutes));
        loop {
            let date = now.date();
            for &(period_start, period_end) in self.periods_on(date)? {
                let opens = date.and_time(period_start);
                let closes = date.and_time(period_end);
                if now >= closes {
                    continue;
                }
                now = now.max(opens);
                let available = closes - now;
                if remaining <= available {
                    return self.local_moment(now + remaining);
                }
                remaining -= available;
                now = closes;
            }
            now = self.next_date(date)?.and_time(NaiveTime::MIN);
        }
    }

    /// The working minutes between `from` and `to`, counted as in
    /// [`Calendar::add_working_minutes`], in whole minutes rounded down;
    /// 0 when `to <= from`.
    pub fn working_minutes_between(
        &self,
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) -> Result<i64, CalendarError> {
        let from_local = self.to_local(from);
        let to_local = self.to_local(to);
        self.check_date(from_local.date())?;
        if to_local <= from_local {
            return Ok(0);
        }
        let mut total = TimeDelta::zero();
        let mut date = from_local.date();
        // Every date whose day overlaps [from, to).
        while date.and_time(NaiveTime::MIN) < to_local {
            for &(period_start, period_end) in self.periods_on(date)? {
                let counted_from = from_local.max(date.and_time(period_start));
                let counted_to = to_local.min(date.and_time(period_end));
                if counted_to > counted_from {
                    total += counted_to - counted_from;
                }
            }
            date = self.next_date(date)?;
        }
        Ok(total.num_minutes())
    }

    fn check_date(&self, date: NaiveDate) -> Result<(), CalendarError> {
        if self.years().contains(&date.year()) { Ok(()) } else { Err(self.out_of_range(date)) }
    }

    fn out_of_range(&self, date: NaiveDate) -> CalendarError {
        CalendarError::OutOfRange { date, first_year: self.first_year, last_year: self.last_year }
    }

    fn next_date(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        date.succ_opt().ok_or_else(|| self.out_of_range(date))
    }

    fn to_local(&self, moment: DateTime<FixedOffset>) -> NaiveDateTime {
        moment.with_timezone(&self.offset).naive_local()
    }

    fn local_moment(&self, local: NaiveDateTime) -> Result<DateTime<FixedOffset>, CalendarError> {
        local.and_local_timezone(self.offset).single().ok_or_else(|| self.out_of_range(local.date()))
    }
}

/// The TOML file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    first_year: i32,
    last_year: i32,
    timezone_offset: String,
    working_hours: Vec<[String; 2]>,
    carry_over_source: String,
    #[serde(default)]
    holiday: Vec<FixedDateEntry>,
    #[serde(default)]
    day_off: Vec<FixedDateEntry>,
    #[serde(default)]
    kurban_ait: Vec<KurbanAitEntry>,
    #[serde(default)]
    transfer: Vec<TransferEntry>,
}

/// A day off on the same month and day every year, optionally over a range
/// of years (inclusive).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedDateEntry {
    month: u32,
    day: u32,
    name: String,
    from_year: Option<i32>,
    to_year: Option<i32>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KurbanAitEntry {
    date: toml::value::Datetime,
    #[serde(default)]
    approximate: bool,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferEntry {
    day_off: toml::value::Datetime,
    working_day: toml::value::Datetime,
    source: String,
}

/// The validated scalar settings, and the special days under construction.
struct CalendarBuilder {
    offset: FixedOffset,
    working_hours: Vec<(NaiveTime, NaiveTime)>,
    first_year: i32,
    last_year: i32,
    special_days: BTreeMap<NaiveDate, Vec<DayOff>>,
}

impl CalendarBuilder {
    fn new(file: &CalendarFile) -> Result<CalendarBuilder, CalendarError> {
        let (first_year, last_year) = (file.first_year, file.last_year);
        if !SUPPORTED_YEARS.contains(&first_year) || !SUPPORTED_YEARS.contains(&last_year) {
            return Err(invalid(format!(
                "first_year and last_year must be between {} and {}, found {first_year} and {last_year}",
                SUPPORTED_YEARS.start(),
                SUPPORTED_YEARS.end()
            )));
        }
        if first_year > last_year {
            return Err(invalid(format!("first_year {first_year} is after last_year {last_year}")));
        }
        if last_year - first_year >= MAX_SPAN_YEARS {
            return Err(invalid(format!(
                "a calendar covers at most {MAX_SPAN_YEARS} years, found {first_year} to {last_year}"
            )));
        }
        let offset: FixedOffset = file.timezone_offset.parse().map_err(|_| {
            invalid(format!("timezone_offset must look like \"+05:00\", found {:?}", file.timezone_offset))
        })?;
        let working_hours = parse_working_hours(&file.working_hours)?;
        require_text("carry_over_source", &file.carry_over_source)?;
        Ok(CalendarBuilder { offset, working_hours, first_year, last_year, special_days: BTreeMap::new() })
    }

    fn build(mut self, file: &CalendarFile) -> Result<Calendar, CalendarError> {
        // The year before first_year too, so that a holiday at its very end
        // carries over into first_year.
        let computed_years = (self.first_year - 1)..=self.last_year;
        for entry in &file.holiday {
            self.add_fixed_date(entry, "holiday", DayKind::Holiday, &computed_years)?;
        }
        for entry in &file.day_off {
            self.add_fixed_date(entry, "day_off", DayKind::DayOff, &computed_years)?;
        }
        self.add_kurban_ait(&file.kurban_ait)?;
        self.carry_over(&file.carry_over_source)?;
        let years = self.first_year..=self.last_year;
        self.special_days.retain(|date, _| years.contains(&date.year()));
        for entry in &file.transfer {
            self.add_transfer(entry)?;
        }

        let (opening, closing) = match (self.working_hours.first(), self.working_hours.last()) {
            (Some(first), Some(last)) => (first.0, last.1),
            _ => return Err(invalid("working_hours must not be empty".to_owned())),
        };
        Ok(Calendar {
            offset: self.offset,
            working_hours: self.working_hours,
            opening,
            closing,
            first_year: self.first_year,
            last_year: self.last_year,
            special_days: std::sync::Arc::new(self.special_days),
            saturday_hours: Vec::new(),
        })
    }

    fn add_fixed_date(
        &mut self,
        entry: &FixedDateEntry,
        table: &str,
        kind: DayKind,
        computed_years: &RangeInclusive<i32>,
    ) -> Result<(), CalendarError> {
        let what = format!("{table} {:02}-{:02} {:?}", entry.month, entry.day, entry.name);
        require_text(&format!("{what}: name"), &entry.name)?;
        require_text(&format!("{what}: source"), &entry.source)?;
        // 2000 is a leap year: every month-day that exists at all.
        if NaiveDate::from_ymd_opt(2000, entry.month, entry.day).is_none() {
            return Err(invalid(format!("{what}: no such month and day")));
        }
        match (entry.from_year, entry.to_year) {
            (Some(from_year), Some(to_year)) if from_year > to_year => {
                return Err(invalid(format!("{what}: from_year {from_year} is after to_year {to_year}")));
            }
            _ => {}
        }
        let first = entry.from_year.map_or(*computed_years.start(), |from_year| from_year.max(*computed_years.start()));
        let last = entry.to_year.map_or(*computed_years.end(), |to_year| to_year.min(*computed_years.end()));
        for year in first..=last {
            // None only for 29 February in a common year: no day that year.
            let Some(date) = NaiveDate::from_ymd_opt(year, entry.month, entry.day) else {
                continue;
            };
            let reason = match kind {
                DayKind::Holiday => entry.name.clone(),
                _ => format!("{}, not carried over", entry.name),
            };
            let entries = self.special_days.entry(date).or_default();
            if let Some(other) = entries.iter().find(|other| other.kind == kind) {
                return Err(invalid(format!("{what}: {date} is already a {table} ({})", other.reason)));
            }
            entries.push(DayOff { date, kind, reason, source: entry.source.clone() });
        }
        Ok(())
    }

    fn add_kurban_ait(&mut self, entries: &[KurbanAitEntry]) -> Result<(), CalendarError> {
        let mut dates_by_year: BTreeMap<i32, NaiveDate> = BTreeMap::new();
        for entry in entries {
            let date = toml_date(&entry.date, "kurban_ait date")?;
            let what = format!("kurban_ait {date}");
            require_text(&format!("{what}: source"), &entry.source)?;
            self.require_in_years(date, &what)?;
            if let Some(other) = dates_by_year.insert(date.year(), date) {
                return Err(invalid(format!("{what}: {} already has kurban_ait {other}", date.year())));
            }
            let reason = if entry.approximate {
                "Kurban Ait, first day (approximate date, to be confirmed), not carried over"
            } else {
                "Kurban Ait, first day, not carried over"
            };
            self.special_days.entry(date).or_default().push(DayOff {
                date,
                kind: DayKind::DayOff,
                reason: reason.to_owned(),
                source: entry.source.clone(),
            });
        }
        if let Some(year) = (self.first_year..=self.last_year).find(|year| !dates_by_year.contains_key(year)) {
            return Err(invalid(format!(
                "kurban_ait: no date for {year}; every year from first_year to last_year needs one"
            )));
        }
        Ok(())
    }

    /// Each holiday on a Saturday or Sunday, in date order, makes the next
    /// Monday-Friday that is not already off a day off.
    fn carry_over(&mut self, carry_over_source: &str) -> Result<(), CalendarError> {
        let weekend_holidays: Vec<(NaiveDate, String)> = self
            .special_days
            .iter()
            .filter(|(date, _)| is_weekend(**date))
            .filter_map(|(date, entries)| {
                entries
                    .iter()
                    .find(|entry| entry.kind == DayKind::Holiday)
                    .map(|holiday| (*date, holiday.reason.clone()))
            })
            .collect();
        for (holiday_date, holiday_name) in weekend_holidays {
            let mut carried_to = holiday_date;
            loop {
                carried_to = carried_to
                    .succ_opt()
                    .ok_or_else(|| invalid(format!("carry-over from {holiday_date} overflows")))?;
                if !is_weekend(carried_to) && !self.special_days.contains_key(&carried_to) {
                    break;
                }
            }
            if let Some(holiday) = self
                .special_days
                .get_mut(&holiday_date)
                .and_then(|entries| entries.iter_mut().find(|e| e.kind == DayKind::Holiday))
            {
                holiday.reason = format!(
                    "{holiday_name}, on a {}: carried over to {carried_to}",
                    weekday_name(holiday_date.weekday())
                );
            }
            self.special_days.insert(
                carried_to,
                vec![DayOff {
                    date: carried_to,
                    kind: DayKind::CarriedOver,
                    reason: format!(
                        "carried over from {holiday_name} on {} {holiday_date}",
                        weekday_name(holiday_date.weekday())
                    ),
                    source: carry_over_source.to_owned(),
                }],
            );
        }
        Ok(())
    }

    fn add_transfer(&mut self, entry: &TransferEntry) -> Result<(), CalendarError> {
        let day_off = toml_date(&entry.day_off, "transfer day_off")?;
        let working_day = toml_date(&entry.working_day, "transfer working_day")?;
        let what = format!("transfer {day_off}/{working_day}");
        require_text(&format!("{what}: source"), &entry.source)?;
        self.require_in_years(day_off, &what)?;
        self.require_in_years(working_day, &what)?;
        if is_weekend(day_off) {
            return Err(invalid(format!(
                "{what}: day_off {day_off} must be a monday to friday, it is a {}",
                weekday_name(day_off.weekday())
            )));
        }
        if !is_weekend(working_day) {
            return Err(invalid(format!(
                "{what}: working_day {working_day} must be a saturday or sunday, it is a {}",
                weekday_name(working_day.weekday())
            )));
        }
        for date in [day_off, working_day] {
            if let Some(existing) = self.special_days.get(&date).and_then(|e| e.first()) {
                return Err(invalid(format!(
                    "{what}: {date} is already special ({}: {})",
                    existing.kind.as_str(),
                    existing.reason
                )));
            }
        }
        self.special_days.insert(
            day_off,
            vec![DayOff {
                date: day_off,
                kind: DayKind::Transfer,
                reason: format!("day off transferred from {} {working_day}", weekday_name(working_day.weekday())),
                source: entry.source.clone(),
            }],
        );
        self.special_days.insert(
            working_day,
            vec![DayOff {
                date: working_day,
                kind: DayKind::WorkingDay,
                reason: format!(
                    "working day: its day off transferred to {} {day_off}",
                    weekday_name(day_off.weekday())
                ),
                source: entry.source.clone(),
            }],
        );
        Ok(())
    }

    fn require_in_years(&self, date: NaiveDate, what: &str) -> Result<(), CalendarError> {
        if (self.first_year..=self.last_year).contains(&date.year()) {
            Ok(())
        } else {
            Err(invalid(format!(
                "{what}: {date} is outside first_year {} to last_year {}",
                self.first_year, self.last_year
            )))
        }
    }
}

fn parse_working_hours(periods: &[[String; 2]]) -> Result<Vec<(NaiveTime, NaiveTime)>, CalendarError> {
    if periods.is_empty() {
        return Err(invalid("working_hours must not be empty".to_owned()));
    }
    let parse = |text: &str| {
        NaiveTime::parse_from_str(text, "%H:%M")
            .map_err(|_| invalid(format!("working_hours: expected a time like \"09:00\", found {text:?}")))
    };
    let mut parsed: Vec<(NaiveTime, NaiveTime)> = Vec::with_capacity(periods.len());
    for [start_text, end_text] in periods {
        let (start, end) = (parse(start_text)?, parse(end_text)?);
        if start >= end {
            return Err(invalid(format!("working_hours: period {start_text}-{end_text} is empty or reversed")));
        }
        let previous_end = parsed.last().map(|&(_, previous_end)| previous_end);
        if previous_end.is_some_and(|previous_end| start < previous_end) {
            return Err(invalid(format!(
                "working_hours: period {start_text}-{end_text} starts before the previous one ends"
            )));
        }
        parsed.push((start, end));
    }
    Ok(parsed)
}

/// A TOML local date (`2024-06-16`), without time or offset.
fn toml_date(value: &toml::value::Datetime, what: &str) -> Result<NaiveDate, CalendarError> {
    let date = match (value.date, value.time, value.offset) {
        (Some(date), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
        }
        _ => None,
    };
    date.ok_or_else(|| invalid(format!("{what}: expected a date like 2024-06-16, found {value}")))
}

fn require_text(what: &str, text: &str) -> Result<(), CalendarError> {
    if text.trim().is_empty() { Err(invalid(format!("{what} must not be empty"))) } else { Ok(()) }
}

fn invalid(message: String) -> CalendarError {
    CalendarError::Invalid(message)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Weekdays used below, checked against a real calendar:
    // 2024: Jan 1 Mon, Jan 7 Sun, Mar 23 Sat, May 4 Sat, May 8 Wed,
    //       Jun 16 Sun, Jul 6 Sat;
    // 2025: Jan 1 Wed, Jan 3 Fri, Jan 5 Sun, Mar 8 Sat, Mar 22 Sat,
    //       Mar 23 Sun, Jul 6 Sun, Aug 30 Sat, Oct 25 Sat, Dec 31 Wed;
    // 2026: Jan 1 Thu, Jan 7 Wed, Mar 8 Sun, Mar 15 Sun, Mar 20 Fri,
    //       Mar 21 Sat, Mar 22 Sun, Mar 23 Mon, May 1 Fri, May 9 Sat,
    //       May 27 Wed, Aug 30 Sun, Oct 25 Sun;
    // 2027: Jan 1 Fri, Jan 2 Sat, Mar 15 Mon, Mar 21 Sun, May 1 Sat,
    //       May 9 Sun, May 16 Sun, Dec 31 Fri.

    fn kz() -> &'static Calendar {
        Calendar::kazakhstan()
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn moment(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn show<T>(result: Result<T, CalendarError>, show_ok: impl Fn(T) -> String) -> String {
        match result {
            Ok(value) => show_ok(value),
            Err(error) => format!("error {}: {error}", error.code()),
        }
    }

    /// One line per special day: `date weekday kind: reason`.
    fn check_days_off(calendar: &Calendar, year: i32, expected: &str) {
        let actual = show(calendar.days_off(year), |days| {
            days.iter()
                .map(|day| {
                    assert!(!day.source.trim().is_empty(), "{day:?} has no source");
                    format!("{} {} {}: {}\n", day.date, weekday_name(day.date.weekday()), day.kind.as_str(), day.reason)
                })
                .collect()
        });
        assert_eq!(actual.trim_end(), expected.trim(), "days off in {year}");
    }

    /// `expected` is "working", "off" or an error.
    fn check_working(day: &str, expected: &str) {
        let actual = show(kz().is_working_day(date(day)), |working| if working { "working" } else { "off" }.to_owned());
        assert_eq!(actual, expected, "is_working_day({day})");
    }

    fn check_add_days(from: &str, n: u32, expected: &str) {
        let actual = show(kz().add_working_days(date(from), n), |day| day.to_string());
        assert_eq!(actual, expected, "add_working_days({from}, {n})");
    }

    fn check_deadline(start: &str, n: u32, expected: &str) {
        let actual = show(kz().working_days_deadline(moment(start), n), |deadline| deadline.to_rfc3339());
        assert_eq!(actual, expected, "working_days_deadline({start}, {n})");
    }

    /// Also checks that `working_minutes_between` counts the same minutes
    /// back.
    fn check_add_minutes(start: &str, minutes: u32, expected: &str) {
        let result = kz().add_working_minutes(moment(start), minutes);
        if let Ok(end) = result {
            assert_eq!(
                kz().working_minutes_between(moment(start), end),
                Ok(i64::from(minutes)),
                "working_minutes_between({start}, {end})"
            );
        }
        let actual = show(result, |end| end.to_rfc3339());
        assert_eq!(actual, expected, "add_working_minutes({start}, {minutes})");
    }

    fn check_between(from: &str, to: &str, expected: &str) {
        let actual = show(kz().working_minutes_between(moment(from), moment(to)), |minutes| minutes.to_string());
        assert_eq!(actual, expected, "working_minutes_between({from}, {to})");
    }

    fn check_invalid(text: &str, expected: &str) {
        let actual = show(Calendar::from_toml(text), |_| "valid".to_owned());
        assert_eq!(actual, expected);
    }

    #[test]
    fn embedded_kazakhstan_calendar_parses() {
        let parsed = Calendar::from_toml(KAZAKHSTAN_TOML).unwrap();
        assert_eq!(&parsed, Calendar::kazakhstan());
        assert_eq!(parsed.years(), 2024..=2027);
        assert_eq!(parsed.offset(), FixedOffset::east_opt(5 * 3600).unwrap());
        let hour = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        assert_eq!(parsed.working_hours(), &[(hour(9), hour(13)), (hour(14), hour(18))]);
    }

    #[test]
    fn days_off_2024() {
        // Nauryz: Mar 23 is a Saturday, carried to Monday Mar 25.
        // May: the transfer makes Wed May 8 off and Sat May 4 working.
        // Jul 6 is a Saturday: Monday Jul 8 is off. Kurban Ait on Sunday
        // Jun 16 and Christmas on Sunday Jan 7 are not carried over.
        check_days_off(
            kz(),
            2024,
            r#"
2024-01-01 monday holiday: New Year
2024-01-02 tuesday holiday: New Year
2024-01-07 sunday day-off: Orthodox Christmas, not carried over
2024-03-08 friday holiday: International Women's Day
2024-03-21 thursday holiday: Nauryz meirami
2024-03-22 friday holiday: Nauryz meirami
2024-03-23 saturday holiday: Nauryz meirami, on a saturday: carried over to 2024-03-25
2024-03-25 monday carried-over: carried over from Nauryz meirami on saturday 2024-03-23
2024-05-01 wednesday holiday: Unity Day of the People of Kazakhstan
2024-05-04 saturday working-day: working day: its day off transferred to wednesday 2024-05-08
2024-05-07 tuesday holiday: Defender of the Fatherland Day
2024-05-08 wednesday transfer: day off transferred from saturday 2024-05-04
2024-05-09 thursday holiday: Victory Day
2024-06-16 sunday day-off: Kurban Ait, first day, not carried over
2024-07-06 saturday holiday: Capital Day, on a saturday: carried over to 2024-07-08
2024-07-08 monday carried-over: carried over from Capital Day on saturday 2024-07-06
2024-08-30 friday holiday: Constitution Day
2024-10-25 friday holiday: Republic Day
2024-12-16 monday holiday: Independence Day
"#,
        );
    }

    #[test]
    fn days_off_2025() {
        // Jan 3 (Fri) off and Jan 5 (Sun) working by transfer. Mar 8 Sat ->
        // Mon Mar 10. Nauryz: Fri 21, Sat 22, Sun 23: the 22nd goes to Mon 24,
        // the 23rd to the next day not already off, Tue 25. Jul 6 Sun -> Mon
        // Jul 7; Aug 30 Sat -> Mon Sep 1 (last year of Aug 30); Oct 25 Sat ->
        // Mon Oct 27.
        check_days_off(
            kz(),
            2025,
            r#"
2025-01-01 wednesday holiday: New Year
2025-01-02 thursday holiday: New Year
2025-01-03 friday transfer: day off transferred from sunday 2025-01-05
2025-01-05 sunday working-day: working day: its day off transferred to friday 2025-01-03
2025-01-07 tuesday day-off: Orthodox Christmas, not carried over
2025-03-08 saturday holiday: International Women's Day, on a saturday: carried over to 2025-03-10
2025-03-10 monday carried-over: carried over from International Women's Day on saturday 2025-03-08
2025-03-21 friday holiday: Nauryz meirami
2025-03-22 saturday holiday: Nauryz meirami, on a saturday: carried over to 2025-03-24
2025-03-23 sunday holiday: Nauryz meirami, on a sunday: carried over to 2025-03-25
2025-03-24 monday carried-over: carried over from Nauryz meirami on saturday 2025-03-22
2025-03-25 tuesday carried-over: carried over from Nauryz meirami on sunday 2025-03-23
2025-05-01 thursday holiday: Unity Day of the People of Kazakhstan
2025-05-07 wednesday holiday: Defender of the Fatherland Day
2025-05-09 friday holiday: Victory Day
2025-06-06 friday day-off: Kurban Ait, first day, not carried over
2025-07-06 sunday holiday: Capital Day, on a sunday: carried over to 2025-07-07
2025-07-07 monday carried-over: carried over from Capital Day on sunday 2025-07-06
2025-08-30 saturday holiday: Constitution Day, on a saturday: carried over to 2025-09-01
2025-09-01 monday carried-over: carried over from Constitution Day on saturday 2025-08-30
2025-10-25 saturday holiday: Republic Day, on a saturday: carried over to 2025-10-27
2025-10-27 monday carried-over: carried over from Republic Day on saturday 2025-10-25
2025-12-16 tuesday holiday: Independence Day
"#,
        );
    }

    #[test]
    fn days_off_2026() {
        // Nauryz 2026: Mar 21 is a Saturday and Mar 22 a Sunday, so both are
        // carried over; Mar 23 (Monday) is itself a holiday. The Saturday's
        // day goes to the first Monday-Friday not already off: Mon 23 is the
        // holiday, so Tue 24. The Sunday's day goes to the next one: Wed 25.
        // Days off Mar 21-25, back to work Thursday Mar 26.
        // Mar 8 Sun -> Mon Mar 9; May 9 Sat -> Mon May 11; Oct 25 Sun -> Mon
        // Oct 26. No Aug 30 (no longer a holiday from 2026), no Mar 15 (from
        // 2027), no transfer known.
        check_days_off(
            kz(),
            2026,
            r#"
2026-01-01 thursday holiday: New Year
2026-01-02 friday holiday: New Year
2026-01-07 wednesday day-off: Orthodox Christmas, not carried over
2026-03-08 sunday holiday: International Women's Day, on a sunday: carried over to 2026-03-09
2026-03-09 monday carried-over: carried over from International Women's Day on sunday 2026-03-08
2026-03-21 saturday holiday: Nauryz meirami, on a saturday: carried over to 2026-03-24
2026-03-22 sunday holiday: Nauryz meirami, on a sunday: carried over to 2026-03-25
2026-03-23 monday holiday: Nauryz meirami
2026-03-24 tuesday carried-over: carried over from Nauryz meirami on saturday 2026-03-21
2026-03-25 wednesday carried-over: carried over from Nauryz meirami on sunday 2026-03-22
2026-05-01 friday holiday: Unity Day of the People of Kazakhstan
2026-05-07 thursday holiday: Defender of the Fatherland Day
2026-05-09 saturday holiday: Victory Day, on a saturday: carried over to 2026-05-11
2026-05-11 monday carried-over: carried over from Victory Day on saturday 2026-05-09
2026-05-27 wednesday day-off: Kurban Ait, first day, not carried over
2026-07-06 monday holiday: Capital Day
2026-10-25 sunday holiday: Republic Day, on a sunday: carried over to 2026-10-26
2026-10-26 monday carried-over: carried over from Republic Day on sunday 2026-10-25
2026-12-16 wednesday holiday: Independence Day
"#,
        );
    }

    #[test]
    fn days_off_2027() {
        // Jan 2 Sat -> Mon Jan 4. Mar 15 Constitution Day (Monday). Nauryz:
        // Sun 21 is carried past the holidays Mon 22 and Tue 23 to Wed 24.
        // May 1 Sat -> Mon May 3; May 9 Sun -> Mon May 10. Kurban Ait on
        // Sunday May 16 (approximate) is not carried over. Aug 30 is not a
        // holiday.
        check_days_off(
            kz(),
            2027,
            r#"
2027-01-01 friday holiday: New Year
2027-01-02 saturday holiday: New Year, on a saturday: carried over to 2027-01-04
2027-01-04 monday carried-over: carried over from New Year on saturday 2027-01-02
2027-01-07 thursday day-off: Orthodox Christmas, not carried over
2027-03-08 monday holiday: International Women's Day
2027-03-15 monday holiday: Constitution Day
2027-03-21 sunday holiday: Nauryz meirami, on a sunday: carried over to 2027-03-24
2027-03-22 monday holiday: Nauryz meirami
2027-03-23 tuesday holiday: Nauryz meirami
2027-03-24 wednesday carried-over: carried over from Nauryz meirami on sunday 2027-03-21
2027-05-01 saturday holiday: Unity Day of the People of Kazakhstan, on a saturday: carried over to 2027-05-03
2027-05-03 monday carried-over: carried over from Unity Day of the People of Kazakhstan on saturday 2027-05-01
2027-05-07 friday holiday: Defender of the Fatherland Day
2027-05-09 sunday holiday: Victory Day, on a sunday: carried over to 2027-05-10
2027-05-10 monday carried-over: carried over from Victory Day on sunday 2027-05-09
2027-05-16 sunday day-off: Kurban Ait, first day (approximate date, to be confirmed), not carried over
2027-07-06 tuesday holiday: Capital Day
2027-10-25 monday holiday: Republic Day
2027-12-16 thursday holiday: Independence Day
"#,
        );
    }

    #[test]
    fn days_off_outside_the_years() {
        let error = "error calendar.out_of_range: year 2023 is outside the calendar's years 2024 to 2027";
        check_days_off(kz(), 2023, error);
        let error = "error calendar.out_of_range: year 2028 is outside the calendar's years 2024 to 2027";
        check_days_off(kz(), 2028, error);
    }

    #[test]
    fn working_days() {
        // Nauryz 2026.
        check_working("2026-03-20", "working");
        for day in ["2026-03-21", "2026-03-22", "2026-03-23", "2026-03-24", "2026-03-25"] {
            check_working(day, "off");
        }
        check_working("2026-03-26", "working");
        // New Year.
        check_working("2024-01-01", "off");
        check_working("2024-01-02", "off");
        check_working("2024-01-03", "working");
        check_working("2026-01-02", "off");
        check_working("2026-01-05", "working");
        check_working("2027-01-04", "off");
        check_working("2027-01-05", "working");
        // Transfers: May 2024 and January 2025.
        check_working("2024-05-04", "working");
        check_working("2024-05-05", "off");
        check_working("2024-05-08", "off");
        check_working("2024-05-10", "working");
        check_working("2025-01-03", "off");
        check_working("2025-01-04", "off");
        check_working("2025-01-05", "working");
        check_working("2025-01-06", "working");
        // Kurban Ait: a day off, not carried over.
        check_working("2026-05-27", "off");
        check_working("2026-05-28", "working");
        check_working("2024-06-17", "working");
        check_working("2027-05-17", "working");
        // Jan 7: a day off, not carried over (Sunday in 2024).
        check_working("2025-01-07", "off");
        check_working("2024-01-08", "working");
        // Aug 30: a holiday in 2025 (Saturday, carried to Monday Sep 1), not
        // in 2026 (Sunday, and Monday Aug 31 is a working day) nor 2027.
        check_working("2025-08-29", "working");
        check_working("2025-09-01", "off");
        check_working("2026-08-31", "working");
        check_working("2027-08-30", "working");
        // Mar 15: Constitution Day from 2027 only.
        check_working("2027-03-15", "off");
        check_working("2026-03-16", "working");
        check_working("2025-03-14", "working");
        // Oct 25, Republic Day.
        check_working("2024-10-25", "off");
        check_working("2025-10-27", "off");
        check_working("2026-10-26", "off");
        check_working("2027-10-25", "off");
        // Plain days.
        check_working("2026-06-10", "working");
        check_working("2026-06-13", "off");
        // Outside the data.
        check_working(
            "2023-12-31",
            "error calendar.out_of_range: date 2023-12-31 is outside the calendar's years 2024 to 2027",
        );
        check_working(
            "2028-01-01",
            "error calendar.out_of_range: date 2028-01-01 is outside the calendar's years 2024 to 2027",
        );
    }

    #[test]
    fn adding_working_days() {
        check_add_days("2026-03-21", 0, "2026-03-21");
        // Across Nauryz 2026: Mar 21-25 off.
        check_add_days("2026-03-20", 1, "2026-03-26");
        check_add_days("2026-03-20", 2, "2026-03-27");
        check_add_days("2026-03-20", 3, "2026-03-30");
        check_add_days("2026-03-22", 1, "2026-03-26");
        // Across the May 2024 holidays: May 1 off, Fri 3, Sat 4 (working by
        // transfer), Mon 6, then May 7, 8 (transfer) and 9 off, Fri 10.
        check_add_days("2024-04-30", 1, "2024-05-02");
        check_add_days("2024-04-30", 2, "2024-05-03");
        check_add_days("2024-04-30", 3, "2024-05-04");
        check_add_days("2024-04-30", 4, "2024-05-06");
        check_add_days("2024-04-30", 5, "2024-05-10");
        check_add_days("2024-04-30", 6, "2024-05-13");
        // Across May 2026: Fri 1, Thu 7, Sat 9 -> Mon 11 off.
        check_add_days("2026-04-30", 1, "2026-05-04");
        check_add_days("2026-04-30", 4, "2026-05-08");
        check_add_days("2026-04-30", 5, "2026-05-12");
        // Across New Year 2026: Wed Dec 31 working, Jan 1-2 (Thu, Fri) off,
        // weekend, Mon 5, Tue 6, Wed 7 off, Thu 8.
        check_add_days("2025-12-30", 1, "2025-12-31");
        check_add_days("2025-12-30", 2, "2026-01-05");
        check_add_days("2025-12-30", 3, "2026-01-06");
        check_add_days("2025-12-30", 4, "2026-01-08");
        // Across New Year 2025: Jan 1-3 off, Sunday Jan 5 a working day.
        check_add_days("2024-12-31", 1, "2025-01-05");
        check_add_days("2024-12-31", 2, "2025-01-06");
        check_add_days("2024-12-31", 3, "2025-01-08");
        // Near the end of the data.
        check_add_days("2027-12-30", 1, "2027-12-31");
        check_add_days(
            "2027-12-30",
            2,
            "error calendar.out_of_range: date 2028-01-01 is outside the calendar's years 2024 to 2027",
        );
        check_add_days(
            "2023-12-29",
            1,
            "error calendar.out_of_range: date 2023-12-29 is outside the calendar's years 2024 to 2027",
        );
        check_add_days(
            "2028-01-03",
            0,
            "error calendar.out_of_range: date 2028-01-03 is outside the calendar's years 2024 to 2027",
        );
    }

    #[test]
    fn deadlines() {
        // One working day after Friday 2026-03-20 is Thursday 2026-03-26.
        check_deadline("2026-03-20T10:00:00+05:00", 1, "2026-03-26T18:00:00+05:00");
        check_deadline("2026-03-20T23:30:00+05:00", 1, "2026-03-26T18:00:00+05:00");
        // 19:30 UTC on Mar 20 is 00:30 on Saturday Mar 21 in Astana.
        check_deadline("2026-03-20T19:30:00+00:00", 1, "2026-03-26T18:00:00+05:00");
        check_deadline("2026-03-20T19:30:00+00:00", 2, "2026-03-27T18:00:00+05:00");
        check_deadline("2026-03-20T18:59:00+00:00", 2, "2026-03-27T18:00:00+05:00");
        check_deadline("2026-03-20T18:59:00+00:00", 3, "2026-03-30T18:00:00+05:00");
        // Ten working days from Thursday 2026-04-30: May 4, 5, 6, 8, 12, 13,
        // 14, 15, 18, 19 (May 1, 7, 11 off).
        check_deadline("2026-04-30T09:00:00+05:00", 10, "2026-05-19T18:00:00+05:00");
        // n = 0: the same day if it is a working day, else the next one.
        check_deadline("2026-03-20T10:00:00+05:00", 0, "2026-03-20T18:00:00+05:00");
        check_deadline("2026-03-21T10:00:00+05:00", 0, "2026-03-26T18:00:00+05:00");
        check_deadline(
            "2027-12-31T10:00:00+05:00",
            1,
            "error calendar.out_of_range: date 2028-01-01 is outside the calendar's years 2024 to 2027",
        );
    }

    #[test]
    fn adding_working_minutes() {
        // Monday 2026-03-16 is a plain working day.
        check_add_minutes("2026-03-16T17:55:00+05:00", 20, "2026-03-17T09:15:00+05:00");
        check_add_minutes("2026-03-16T12:50:00+05:00", 20, "2026-03-16T14:10:00+05:00");
        check_add_minutes("2026-03-16T12:50:30+05:00", 20, "2026-03-16T14:10:30+05:00");
        check_add_minutes("2026-03-16T12:50:00+05:00", 10, "2026-03-16T13:00:00+05:00");
        check_add_minutes("2026-03-16T17:55:00+05:00", 5, "2026-03-16T18:00:00+05:00");
        check_add_minutes("2026-03-16T09:00:00+05:00", 480, "2026-03-16T18:00:00+05:00");
        check_add_minutes("2026-03-16T09:00:00+05:00", 481, "2026-03-17T09:01:00+05:00");
        // Outside working hours: begin at the next opening.
        check_add_minutes("2026-03-16T07:00:00+05:00", 30, "2026-03-16T09:30:00+05:00");
        check_add_minutes("2026-03-16T13:30:00+05:00", 10, "2026-03-16T14:10:00+05:00");
        check_add_minutes("2026-03-16T22:00:00+05:00", 10, "2026-03-17T09:10:00+05:00");
        // Another offset: 07:55 UTC is 12:55 in Astana.
        check_add_minutes("2026-03-16T07:55:00+00:00", 10, "2026-03-16T14:05:00+05:00");
        // Across a weekend: Friday 13 to Monday 16.
        check_add_minutes("2026-03-13T17:30:00+05:00", 60, "2026-03-16T09:30:00+05:00");
        check_add_minutes("2026-03-14T10:00:00+05:00", 30, "2026-03-16T09:30:00+05:00");
        // Across Nauryz: 60 minutes on Friday 20, then Thursday 26.
        check_add_minutes("2026-03-20T17:00:00+05:00", 120, "2026-03-26T10:00:00+05:00");
        // Across a transferred day: Fri 2024-05-03 -> Sat 05-04 (working).
        check_add_minutes("2024-05-03T17:00:00+05:00", 120, "2024-05-04T10:00:00+05:00");
        // Zero minutes: unchanged, even outside working hours.
        check_add_minutes("2026-03-21T10:00:00+05:00", 0, "2026-03-21T10:00:00+05:00");
        check_add_minutes(
            "2027-12-31T17:55:00+05:00",
            10,
            "error calendar.out_of_range: date 2028-01-01 is outside the calendar's years 2024 to 2027",
        );
        check_add_minutes("2023-12-31T20:00:00+00:00", 10, "2024-01-03T09:10:00+05:00");
    }

    #[test]
    fn working_minutes_between() {
        check_between("2026-03-16T09:00:00+05:00", "2026-03-16T18:00:00+05:00", "480");
        check_between("2026-03-16T00:00:00+05:00", "2026-03-23T00:00:00+05:00", "2400");
        check_between("2026-03-16T12:50:00+05:00", "2026-03-16T14:10:00+05:00", "20");
        check_between("2026-03-16T09:00:00+05:00", "2026-03-16T09:00:59+05:00", "0");
        check_between("2026-03-20T17:00:00+05:00", "2026-03-26T10:00:00+05:00", "120");
        check_between("2026-03-21T00:00:00+05:00", "2026-03-26T00:00:00+05:00", "0");
        check_between("2026-03-16T18:00:00+05:00", "2026-03-16T09:00:00+05:00", "0");
        check_between("2026-03-16T10:00:00+05:00", "2026-03-16T10:00:00+05:00", "0");
        // 05:00 UTC is 10:00 in Astana.
        check_between("2026-03-16T05:00:00+00:00", "2026-03-16T11:00:00+05:00", "60");
        check_between("2027-12-31T17:00:00+05:00", "2028-01-01T00:00:00+05:00", "60");
        check_between(
            "2027-12-31T17:00:00+05:00",
            "2028-01-03T10:00:00+05:00",
            "error calendar.out_of_range: date 2028-01-01 is outside the calendar's years 2024 to 2027",
        );
        check_between(
            "2023-12-29T10:00:00+05:00",
            "2024-01-03T10:00:00+05:00",
            "error calendar.out_of_range: date 2023-12-29 is outside the calendar's years 2024 to 2027",
        );
    }

    /// A small calendar for tests of the rules, with `body` appended.
    fn test_calendar(first_year: i32, last_year: i32, body: &str) -> String {
        format!(
            r#"first_year = {first_year}
last_year = {last_year}
timezone_offset = "+05:00"
working_hours = [["09:00", "13:00"], ["14:00", "18:00"]]
carry_over_source = "test rule"
{body}"#
        )
    }

    const KURBAN_AIT_2022_TO_2023: &str = r#"
[[kurban_ait]]
date = 2022-07-09
source = "test"

[[kurban_ait]]
date = 2023-06-28
source = "test"
"#;

    const NEW_YEAR_AND_YEAR_END: &str = r#"
[[holiday]]
month = 1
day = 1
name = "New Year"
source = "test"

[[holiday]]
month = 1
day = 2
name = "New Year"
source = "test"

[[holiday]]
month = 12
day = 31
name = "Year End"
source = "test"
"#;

    #[test]
    fn carry_over_across_the_year_end() {
        // A test-only Dec 31 holiday. 2022-12-31 is a Saturday, 2023-01-01 a
        // Sunday, 2023-01-02 a Monday holiday. Dec 31 goes to the first
        // Monday-Friday not already off: Tue Jan 3; Jan 1 to Wed Jan 4.
        let expected = r#"
2023-01-01 sunday holiday: New Year, on a sunday: carried over to 2023-01-04
2023-01-02 monday holiday: New Year
2023-01-03 tuesday carried-over: carried over from Year End on saturday 2022-12-31
2023-01-04 wednesday carried-over: carried over from New Year on sunday 2023-01-01
2023-06-28 wednesday day-off: Kurban Ait, first day, not carried over
2023-12-31 sunday holiday: Year End, on a sunday: carried over to 2024-01-01
"#;
        let both_years = test_calendar(2022, 2023, &format!("{NEW_YEAR_AND_YEAR_END}{KURBAN_AIT_2022_TO_2023}"));
        let both_years = Calendar::from_toml(&both_years).unwrap();
        check_days_off(&both_years, 2023, expected);
        // With 2023 alone, the carry-over from 2022 still arrives.
        let one_year = test_calendar(
            2023,
            2023,
            &format!("{NEW_YEAR_AND_YEAR_END}\n[[kurban_ait]]\ndate = 2023-06-28\nsource = \"test\"\n"),
        );
        let one_year = Calendar::from_toml(&one_year).unwrap();
        check_days_off(&one_year, 2023, expected);
        // The carry-over of 2023-12-31 lands outside the data: an error, not
        // a guess.
        assert_eq!(
            one_year.add_working_days(date("2023-12-29"), 1),
            Err(CalendarError::OutOfRange { date: date("2024-01-01"), first_year: 2023, last_year: 2023 })
        );
    }

    #[test]
    fn weekend_new_year_and_independence_day() {
        // 2028 (not in the embedded data): Jan 1 Sat and Jan 2 Sun carry to
        // Mon 3 and Tue 4; Christmas Fri Jan 7 stays; Dec 16 Sat -> Mon 18.
        let text = test_calendar(
            2028,
            2028,
            r#"
[[holiday]]
month = 1
day = 1
name = "New Year"
source = "test"

[[holiday]]
month = 1
day = 2
name = "New Year"
source = "test"

[[holiday]]
month = 12
day = 16
name = "Independence Day"
source = "test"

[[day_off]]
month = 1
day = 7
name = "Orthodox Christmas"
source = "test"

[[kurban_ait]]
date = 2028-05-05
approximate = true
source = "test"
"#,
        );
        check_days_off(
            &Calendar::from_toml(&text).unwrap(),
            2028,
            r#"
2028-01-01 saturday holiday: New Year, on a saturday: carried over to 2028-01-03
2028-01-02 sunday holiday: New Year, on a sunday: carried over to 2028-01-04
2028-01-03 monday carried-over: carried over from New Year on saturday 2028-01-01
2028-01-04 tuesday carried-over: carried over from New Year on sunday 2028-01-02
2028-01-07 friday day-off: Orthodox Christmas, not carried over
2028-05-05 friday day-off: Kurban Ait, first day (approximate date, to be confirmed), not carried over
2028-12-16 saturday holiday: Independence Day, on a saturday: carried over to 2028-12-18
2028-12-18 monday carried-over: carried over from Independence Day on saturday 2028-12-16
"#,
        );
    }

    #[test]
    fn invalid_calendars() {
        let kurban = KURBAN_AIT_2022_TO_2023;
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[transfer]]\nday_off = 2023-01-03\nworking_day = 2023-01-09\nsource = \"test\"\n"),
            ),
            "error calendar.invalid: invalid calendar: transfer 2023-01-03/2023-01-09: working_day 2023-01-09 must be a saturday or sunday, it is a monday",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[transfer]]\nday_off = 2023-01-07\nworking_day = 2023-01-08\nsource = \"test\"\n"),
            ),
            "error calendar.invalid: invalid calendar: transfer 2023-01-07/2023-01-08: day_off 2023-01-07 must be a monday to friday, it is a saturday",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!(
                    "{NEW_YEAR_AND_YEAR_END}{kurban}[[transfer]]\nday_off = 2023-01-03\nworking_day = 2023-01-07\nsource = \"test\"\n"
                ),
            ),
            "error calendar.invalid: invalid calendar: transfer 2023-01-03/2023-01-07: 2023-01-03 is already special (carried-over: carried over from Year End on saturday 2022-12-31)",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[transfer]]\nday_off = 2024-01-03\nworking_day = 2024-01-06\nsource = \"test\"\n"),
            ),
            "error calendar.invalid: invalid calendar: transfer 2024-01-03/2024-01-06: 2024-01-03 is outside first_year 2022 to last_year 2023",
        );
        check_invalid(
            &test_calendar(2022, 2024, kurban),
            "error calendar.invalid: invalid calendar: kurban_ait: no date for 2024; every year from first_year to last_year needs one",
        );
        check_invalid(
            &test_calendar(2023, 2023, kurban),
            "error calendar.invalid: invalid calendar: kurban_ait 2022-07-09: 2022-07-09 is outside first_year 2023 to last_year 2023",
        );
        check_invalid(
            &test_calendar(2022, 2023, &format!("{kurban}[[kurban_ait]]\ndate = 2023-06-29\nsource = \"test\"\n")),
            "error calendar.invalid: invalid calendar: kurban_ait 2023-06-29: 2023 already has kurban_ait 2023-06-28",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[kurban_ait]]\ndate = 2023-06-29T10:00:00\nsource = \"test\"\n"),
            ),
            "error calendar.invalid: invalid calendar: kurban_ait date: expected a date like 2024-06-16, found 2023-06-29T10:00:00",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[holiday]]\nmonth = 2\nday = 30\nname = \"X\"\nsource = \"test\"\n"),
            ),
            "error calendar.invalid: invalid calendar: holiday 02-30 \"X\": no such month and day",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!("{kurban}[[holiday]]\nmonth = 3\nday = 1\nname = \"X\"\nsource = \" \"\n"),
            ),
            "error calendar.invalid: invalid calendar: holiday 03-01 \"X\": source must not be empty",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!(
                    "{kurban}[[holiday]]\nmonth = 3\nday = 1\nname = \"X\"\nfrom_year = 2023\nto_year = 2022\nsource = \"test\"\n"
                ),
            ),
            "error calendar.invalid: invalid calendar: holiday 03-01 \"X\": from_year 2023 is after to_year 2022",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!(
                    "{kurban}{NEW_YEAR_AND_YEAR_END}[[holiday]]\nmonth = 1\nday = 1\nname = \"Again\"\nsource = \"test\"\n"
                ),
            ),
            "error calendar.invalid: invalid calendar: holiday 01-01 \"Again\": 2021-01-01 is already a holiday (New Year)",
        );
        check_invalid(
            &test_calendar(
                2022,
                2023,
                &format!(
                    "{kurban}[[holiday]]\nmonth = 3\nday = 1\nname = \"X\"\nform_year = 2023\nsource = \"test\"\n"
                ),
            ),
            "error calendar.invalid: invalid calendar: line 18: unknown field `form_year`, expected one of `month`, `day`, `name`, `from_year`, `to_year`, `source`",
        );
        check_invalid(
            &test_calendar(2023, 2022, ""),
            "error calendar.invalid: invalid calendar: first_year 2023 is after last_year 2022",
        );
        check_invalid(
            &test_calendar(1800, 2022, ""),
            "error calendar.invalid: invalid calendar: first_year and last_year must be between 1900 and 9999, found 1800 and 2022",
        );
        check_invalid(
            &test_calendar(1900, 2022, ""),
            "error calendar.invalid: invalid calendar: a calendar covers at most 100 years, found 1900 to 2022",
        );
        check_invalid(
            &KAZAKHSTAN_TOML.replace("\"+05:00\"", "\"Asia/Almaty\""),
            "error calendar.invalid: invalid calendar: timezone_offset must look like \"+05:00\", found \"Asia/Almaty\"",
        );
        check_invalid(
            &KAZAKHSTAN_TOML.replace("\"13:00\"], [\"14:00\"", "\"14:30\"], [\"14:00\""),
            "error calendar.invalid: invalid calendar: working_hours: period 14:00-18:00 starts before the previous one ends",
        );
        check_invalid(
            &KAZAKHSTAN_TOML.replace("\"09:00\", \"13:00\"", "\"13:00\", \"09:00\""),
            "error calendar.invalid: invalid calendar: working_hours: period 13:00-09:00 is empty or reversed",
        );
        check_invalid(
            &KAZAKHSTAN_TOML.replace("\"18:00\"", "\"6pm\""),
            "error calendar.invalid: invalid calendar: working_hours: expected a time like \"09:00\", found \"6pm\"",
        );
        check_invalid(
            &KAZAKHSTAN_TOML
                .replace("working_hours = [[\"09:00\", \"13:00\"], [\"14:00\", \"18:00\"]]", "working_hours = []"),
            "error calendar.invalid: invalid calendar: working_hours must not be empty",
        );
    }

    #[test]
    fn kinds_and_codes() {
        let kinds = [DayKind::Holiday, DayKind::CarriedOver, DayKind::DayOff, DayKind::Transfer, DayKind::WorkingDay];
        let names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names, ["holiday", "carried-over", "day-off", "transfer", "working-day"]);
        for kind in kinds {
            #[derive(Serialize)]
            struct Wrapper {
                kind: DayKind,
            }
            assert_eq!(toml::to_string(&Wrapper { kind }).unwrap(), format!("kind = \"{}\"\n", kind.as_str()));
        }
    }

    fn date_in_data() -> impl Strategy<Value = NaiveDate> {
        // 2024-01-01 plus fewer than 1400 days: up to 2027-10-31, so 31
        // working days (at most about 7 weeks here) later is still in 2027.
        (0u64..1400).prop_map(|days| date("2024-01-01") + chrono::Days::new(days))
    }

    proptest! {
        #[test]
        fn add_working_days_is_a_working_day_and_increasing(
            start in date_in_data(),
            n in 1u32..31,
        ) {
            let calendar = kz();
            let result = calendar.add_working_days(start, n).unwrap();
            prop_assert!(calendar.is_working_day(result).unwrap());
            prop_assert!(result > start);
            let next = calendar.add_working_days(start, n + 1).unwrap();
            prop_assert!(next > result);
            // Nothing skipped: no working day strictly between the two.
            let mut between = result.succ_opt().unwrap();
            while between < next {
                prop_assert!(!calendar.is_working_day(between).unwrap());
                between = between.succ_opt().unwrap();
            }
        }

        #[test]
        fn minutes_added_are_minutes_counted(
            start in date_in_data(),
            minute_of_day in 0u32..(24 * 60),
            minutes in 0u32..5000,
        ) {
            let calendar = kz();
            let start = calendar
                .local_moment(start.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute_of_day)))
                .unwrap();
            let end = calendar.add_working_minutes(start, minutes).unwrap();
            prop_assert!(end >= start);
            prop_assert_eq!(
                calendar.working_minutes_between(start, end).unwrap(),
                i64::from(minutes)
            );
        }
    }
}
