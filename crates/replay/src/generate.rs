//! A generated population for load and soak runs (`egov fixtures generate`):
//! persons of "Individuals", powers of attorney of the notarial registry, the
//! operators' accounts and N scenarios over every route of the regulation,
//! each with its full expectation. A pure function of the count and the seed:
//! its own small PRNG (splitmix64, so the files never change with a crate
//! upgrade), ordered collections only, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone};
use egov_client::{ApplicationPlan, Decision, DocumentPlan, RepresentativePlan};
use egov_proto::{Address, DictionaryEntry, IdentityDocument, PersonRecord, PowerOfAttorney};
use egov_regulation::instance::{deadline, to_local};
use egov_regulation::{Calendar, Definition, Duration, Effect, StepKind, iin};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::scenario::{Expectation, Scenario};

/// The generated files, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Population {
    /// `individuals.json`.
    pub individuals_json: String,
    /// `powers_of_attorney.json`.
    pub powers_json: String,
    /// `operators.json`.
    pub operators_json: String,
    /// `applications/population.json`: `{"scenarios": [...]}`.
    pub scenarios_json: String,
    /// How many scenarios each route got, in the routes' order.
    pub routes: Vec<(&'static str, usize)>,
    /// How many persons and powers of attorney were written.
    pub persons: usize,
    pub powers: usize,
}

impl Population {
    /// Each file's path relative to the output folder, with its text.
    pub fn files(&self) -> [(&'static str, &str); 4] {
        [
            ("individuals.json", &self.individuals_json),
            ("powers_of_attorney.json", &self.powers_json),
            ("operators.json", &self.operators_json),
            ("applications/population.json", &self.scenarios_json),
        ]
    }
}

/// Why a population could not be generated (the calendar or the definition
/// does not cover what the generator needs).
#[derive(Debug, Error)]
pub enum GenerateError {
    #[error("calendar: {0}")]
    Calendar(String),
    #[error("definition: {0}")]
    Definition(String),
    #[error("cannot serialise: {0}")]
    Json(#[from] serde_json::Error),
}

fn calendar_error(error: impl std::fmt::Display) -> GenerateError {
    GenerateError::Calendar(error.to_string())
}

/// The year the submissions are spread over.
const YEAR: i32 = 2026;

/// The two operators `egov keys init` makes keys for (fixtures/operators.json).
const OPERATORS_JSON: &str = r#"{
  "operators": [
    { "login": "operator-1", "operator_id": "operator-1", "password": "operator-1-password" },
    { "login": "operator-2", "operator_id": "operator-2", "password": "operator-2-password" }
  ]
}
"#;
const OPERATORS: [&str; 2] = ["operator-1", "operator-2"];

/// splitmix64: small, fast, and fixed forever.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: usize) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A date in `from..=to`.
    fn date(&mut self, from: NaiveDate, to: NaiveDate) -> NaiveDate {
        let span = usize::try_from((to - from).num_days() + 1).unwrap_or(1);
        from + Days::new(self.below(span) as u64)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// What the persons and powers of attorney are drawn from (`data/names.toml`).
const NAMES_TOML: &str = include_str!("../data/names.toml");

/// The names and addresses of `data/names.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Names {
    kazakh: Nationality,
    russian: Nationality,
    addresses: Addresses,
    powers_of_attorney: Notaries,
}

/// A nationality's names; surnames and patronymics as (male form, female form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nationality {
    surnames: Vec<(String, String)>,
    male: Vec<String>,
    female: Vec<String>,
    patronymics: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Addresses {
    streets: Vec<String>,
    places: Vec<Place>,
}

/// A region with its districts and city.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Place {
    region: String,
    districts: Vec<String>,
    city: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Notaries {
    notaries: Vec<String>,
}

/// Why names data does not load.
#[derive(Debug, Error)]
enum NamesError {
    #[error("invalid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("{0} is empty")]
    Empty(String),
}

impl Nationality {
    /// Each list's name under `nationality`, with its length.
    fn lengths(&self, nationality: &str) -> [(String, usize); 4] {
        [
            (format!("{nationality}.surnames"), self.surnames.len()),
            (format!("{nationality}.male"), self.male.len()),
            (format!("{nationality}.female"), self.female.len()),
            (format!("{nationality}.patronymics"), self.patronymics.len()),
        ]
    }
}

impl Names {
    /// The embedded `data/names.toml`, parsed once. A test guarantees it loads.
    fn embedded() -> &'static Names {
        static NAMES: OnceLock<Names> = OnceLock::new();
        NAMES.get_or_init(|| match Names::from_toml(NAMES_TOML) {
            Ok(names) => names,
            // Unreachable: the embedded file is a constant checked by the test `the_embedded_names_load`.
            Err(error) => panic!("embedded names.toml: {error}"),
        })
    }

    /// Parses names data; every list must have an entry to pick.
    fn from_toml(text: &str) -> Result<Names, NamesError> {
        let names: Names = toml::from_str(text)?;
        let mut lengths: Vec<(String, usize)> =
            names.kazakh.lengths("kazakh").into_iter().chain(names.russian.lengths("russian")).collect();
        lengths.push(("addresses.streets".to_owned(), names.addresses.streets.len()));
        lengths.push(("addresses.places".to_owned(), names.addresses.places.len()));
        for (index, place) in names.addresses.places.iter().enumerate() {
            lengths.push((format!("addresses.places[{index}].districts"), place.districts.len()));
        }
        lengths.push(("powers_of_attorney.notaries".to_owned(), names.powers_of_attorney.notaries.len()));
        match lengths.into_iter().find(|(_, length)| *length == 0) {
            Some((list, _)) => Err(NamesError::Empty(list)),
            None => Ok(names),
        }
    }
}

/// A service code no generated power of attorney is for but this one.
const OTHER_SERVICE: &str = "kz.astana.housing.residence-certificate";

fn entry(code: &str, name_ru: &str, name_kz: &str) -> Option<DictionaryEntry> {
    Some(DictionaryEntry { code: code.to_owned(), name_ru: name_ru.to_owned(), name_kz: name_kz.to_owned() })
}

/// A person of the generated "Individuals".
struct Person {
    iin: String,
    identity_title: &'static str,
    record: PersonRecord,
}

/// The twelve digits for a birth date, sex and serial; none for an unusable prefix.
fn make_iin(birth: NaiveDate, female: bool, serial: usize) -> Option<String> {
    let century = (birth.year() - 1800) / 100 * 2 + 1 + i32::from(female);
    let prefix =
        format!("{:02}{:02}{:02}{}{:04}", birth.year() % 100, birth.month(), birth.day(), century, serial % 10_000);
    let mut digits = [0u8; 11];
    for (slot, byte) in digits.iter_mut().zip(prefix.bytes()) {
        *slot = byte - b'0';
    }
    let check = iin::check_digit(&digits)?;
    Some(format!("{prefix}{check}"))
}

/// A valid IIN nobody in `used` has, with its birth date and sex.
fn fresh_iin(rng: &mut Rng, used: &mut BTreeSet<String>) -> (String, NaiveDate, bool) {
    loop {
        let birth = rng.date(ymd(1950, 1, 1), ymd(2005, 12, 31));
        let female = rng.chance(500);
        let serial = rng.below(10_000);
        if let Some(iin) = make_iin(birth, female, serial)
            && used.insert(iin.clone())
        {
            return (iin, birth, female);
        }
    }
}

fn person(names: &Names, rng: &mut Rng, used: &mut BTreeSet<String>, deceased: bool) -> Person {
    let (iin, birth, female) = fresh_iin(rng, used);
    let kazakh = rng.chance(700);
    let form = |pair: &(String, String)| if female { pair.1.clone() } else { pair.0.clone() };
    let nationality = if kazakh { &names.kazakh } else { &names.russian };
    let given_names = if female { &nationality.female } else { &nationality.male };
    let surname = form(rng.pick(&nationality.surnames));
    let name = rng.pick(given_names).clone();
    let patronymic = form(rng.pick(&nationality.patronymics));
    let place = rng.pick(&names.addresses.places);
    let reg_address = Address {
        country: "Казахстан".to_owned(),
        region: place.region.clone(),
        district: rng.pick(&place.districts).clone(),
        city: place.city.clone(),
        street: rng.pick(&names.addresses.streets).clone(),
        building: (1 + rng.below(120)).to_string(),
        flat: if rng.chance(250) { String::new() } else { (1 + rng.below(200)).to_string() },
    };
    // An identity card (most) or a passport, issued at 16 or later, valid ten years.
    let passport = rng.chance(200);
    let earliest = birth.with_year(birth.year() + 16).unwrap_or(birth).max(ymd(2016, 1, 1));
    let begin = rng.date(earliest.min(ymd(2025, 12, 31)), ymd(2025, 12, 31));
    let end = begin.with_year(begin.year() + 10).unwrap_or(begin) - Days::new(1);
    let number =
        if passport { format!("N{:08}", rng.below(100_000_000)) } else { format!("0{:08}", rng.below(100_000_000)) };
    let death_date =
        if deceased { rng.date(begin.max(ymd(2020, 1, 1)), ymd(2025, 12, 31)).to_string() } else { String::new() };
    let document = IdentityDocument {
        r#type: if passport { "001" } else { "002" }.to_owned(),
        number,
        begin_date: begin.to_string(),
        end_date: end.to_string(),
        issue_organization: if rng.chance(900) { "МВД РК" } else { "МЮ РК" }.to_owned(),
        status: if deceased { "18" } else { "00" }.to_owned(),
    };
    let record = PersonRecord {
        iin: iin.clone(),
        surname,
        name,
        patronymic,
        birth_date: birth.to_string(),
        gender: if female { entry("2", "Женский", "Әйел") } else { entry("1", "Мужской", "Ер") },
        citizenship: entry("398", "Казахстан", "Қазақстан"),
        life_status: if deceased {
            entry("3", "Умерший", "Қайтыс болған")
        } else {
            entry("0", "Нормальный", "Қалыпты")
        },
        reg_address: Some(reg_address),
        documents: vec![document],
        death_date,
    };
    Person { iin, identity_title: if passport { "passport" } else { "identity card" }, record }
}

/// The routes a scenario can take, with their share in a thousand and the
/// fewest scenarios that cover their variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ApprovalInPerson,
    ApprovalNotarised,
    ApprovalNotNotarised,
    Refusal,
    ApplicantAbsent,
    ApplicantDeceased,
    PowerUnusable,
    IncompletePackage,
    InvalidIin,
    StaffOverrun,
}

/// What goes wrong with a notarised power of attorney.
const POWER_PROBLEMS: [&str; 5] = ["not-found", "expired", "revoked", "other-principal", "other-service"];
/// The notice the applicant gets when the counter refuses an incomplete package.
const COUNTER_NOTICE: &str = "counter.incomplete-package";
/// How a package is incomplete.
const INCOMPLETE: [&str; 4] =
    ["no identity document", "no application form", "no power of attorney (not notarised)", "no power of attorney"];
/// How the staff overrun their steps (durations by step id).
const OVERRUNS: [&[(&str, &str)]; 5] = [
    &[("action-2", "4 wd")],
    &[("action-1", "45 min")],
    &[("action-2", "3 wd")],
    &[("action-3", "2 wd")],
    &[("action-4", "1 wd")],
];

impl Route {
    const ALL: [Route; 10] = [
        Route::ApprovalInPerson,
        Route::ApprovalNotarised,
        Route::ApprovalNotNotarised,
        Route::Refusal,
        Route::ApplicantAbsent,
        Route::ApplicantDeceased,
        Route::PowerUnusable,
        Route::IncompletePackage,
        Route::InvalidIin,
        Route::StaffOverrun,
    ];

    fn name(self) -> &'static str {
        match self {
            Route::ApprovalInPerson => "approval-in-person",
            Route::ApprovalNotarised => "approval-notarised-representative",
            Route::ApprovalNotNotarised => "approval-representative-not-notarised",
            Route::Refusal => "refusal",
            Route::ApplicantAbsent => "applicant-absent",
            Route::ApplicantDeceased => "applicant-deceased",
            Route::PowerUnusable => "power-of-attorney-unusable",
            Route::IncompletePackage => "incomplete-package",
            Route::InvalidIin => "invalid-iin",
            Route::StaffOverrun => "staff-overrun",
        }
    }

    fn per_mille(self) -> usize {
        match self {
            Route::ApprovalInPerson => 600,
            Route::ApprovalNotarised => 100,
            Route::ApprovalNotNotarised => 50,
            Route::Refusal => 80,
            Route::ApplicantAbsent => 40,
            Route::ApplicantDeceased => 20,
            Route::PowerUnusable => 40,
            Route::IncompletePackage => 30,
            Route::InvalidIin => 20,
            Route::StaffOverrun => 20,
        }
    }

    fn variants(self, grounds: usize) -> usize {
        match self {
            Route::Refusal => grounds,
            Route::PowerUnusable => POWER_PROBLEMS.len(),
            Route::IncompletePackage => INCOMPLETE.len(),
            _ => 1,
        }
    }
}

/// How many scenarios each route gets: its share of `count` (largest
/// remainders), then enough to cover its variants (from 22 scenarios on),
/// taken from the routes with the most to spare.
fn quotas(count: usize, grounds: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = Route::ALL.iter().map(|r| count * r.per_mille() / 1000).collect();
    let mut by_remainder: Vec<usize> = (0..Route::ALL.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(count * Route::ALL[i].per_mille() % 1000));
    let short = count - counts.iter().sum::<usize>();
    for &i in by_remainder.iter().cycle().take(short) {
        counts[i] += 1;
    }
    let minimum: Vec<usize> = Route::ALL.iter().map(|r| r.variants(grounds)).collect();
    for i in 0..counts.len() {
        while counts[i] < minimum[i] {
            // From the route with the most to spare (the approvals in person, mostly).
            let spare = (0..counts.len())
                .filter(|&j| counts[j] > minimum[j])
                .max_by_key(|&j| (counts[j] - minimum[j], std::cmp::Reverse(j)));
            let Some(j) = spare else { break };
            counts[j] -= 1;
            counts[i] += 1;
        }
    }
    counts
}

/// Moves a scenario's clock as the replay's pacer does, and records the
/// regional gateway ARM's part of the route, to derive the due date and the
/// missed deadlines.
struct Timeline<'a> {
    calendar: &'a Calendar,
    definition: &'a Definition,
    durations: BTreeMap<String, Duration>,
    now_ms: i64,
}

/// When the route reaches registration: the due date and the missed deadlines.
struct Provider {
    due: NaiveDate,
    missed: Vec<String>,
}

impl Timeline<'_> {
    /// Before a person does `step_id`: the clock moves by its duration.
    fn pace(&mut self, step_id: &str) -> Result<(), GenerateError> {
        let Some(step) = self.definition.step(step_id) else {
            return Err(GenerateError::Definition(format!("no step {step_id}")));
        };
        if let Some(duration) = self.durations.get(step_id).copied().or(step.duration) {
            let end = deadline(&self.definition.calendar_for(self.calendar, &step.actor), self.now_ms, duration)
                .ok_or_else(|| calendar_error(format!("no data for {step_id} at {} ms", self.now_ms)))?;
            self.now_ms = end.max(self.now_ms);
        }
        Ok(())
    }

    /// Follows `path` from `submitted_at`: the operator's steps, then, from
    /// registration, the staff's steps with their deadlines and the terms.
    fn provider(mut self, path: &[String]) -> Result<Provider, GenerateError> {
        let definition = self.definition;
        let effect = |id: &str| definition.step(id).and_then(|s| s.effect);
        let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut missed = Vec::new();
        let mut registered = None;
        for id in path {
            match effect(id) {
                Some(Effect::LogIn | Effect::OpenForm | Effect::SignSubmission) => self.pace(id)?,
                Some(Effect::Register) => {
                    registered = Some(self.now_ms);
                    spans.insert(id, (self.now_ms, self.now_ms));
                }
                Some(Effect::IssueResult) => {}
                Some(Effect::RefusalNotice) => {
                    spans.insert(id, (self.now_ms, self.now_ms));
                }
                _ if registered.is_some() => {
                    let start = self.now_ms;
                    let due = match definition.step(id).filter(|s| s.duration.is_some()) {
                        Some(step) => Some(
                            definition
                                .step_deadline(self.calendar, step, start)
                                .ok_or_else(|| calendar_error(format!("no data for the deadline of {id}")))?,
                        ),
                        None => None,
                    };
                    self.pace(id)?;
                    if due.is_some_and(|due| self.now_ms > due) {
                        missed.push(id.clone());
                    }
                    spans.insert(id, (start, self.now_ms));
                }
                _ => {}
            }
        }
        if registered.is_none() {
            return Err(GenerateError::Definition("the route does not reach registration".to_owned()));
        }
        let mut due = None;
        for term in definition.terms_of(None) {
            let Some(from) = spans.get(term.from.as_str()) else { continue };
            let end = definition
                .term_deadline(self.calendar, term, from.0)
                .ok_or_else(|| calendar_error(format!("no data for the term {}", term.id)))?;
            if effect(&term.from) == Some(Effect::Register) {
                due = to_local(self.calendar, end).map(|t| t.date_naive());
            }
            if let Some(to) = spans.get(term.to.as_str())
                && to.1 > end
            {
                missed.push(term.id.clone());
            }
        }
        let due = due.ok_or_else(|| GenerateError::Definition("no term starts at registration".to_owned()))?;
        Ok(Provider { due, missed })
    }
}

/// The step ids from the start to a final step, taking `data_present` at
/// the look-up's condition, `documents_comply` at the documents check and
/// `permit` at the draft of the result, where the definition decides there.
fn walk(
    definition: &Definition,
    data_present: bool,
    documents_comply: bool,
    permit: bool,
) -> Result<Vec<String>, GenerateError> {
    let mut path = Vec::new();
    let mut step = definition.start();
    for _ in 0..=definition.steps().len() {
        path.push(step.id.clone());
        let next = if step.kind == StepKind::Condition {
            let yes = match step.effect {
                Some(Effect::DataPresent) => data_present,
                Some(Effect::DraftResult) => permit,
                _ => documents_comply,
            };
            if yes { step.yes.as_ref() } else { step.no.as_ref() }.map(|b| b.next.clone())
        } else {
            step.next.clone()
        };
        let Some(next) = next else { return Ok(path) };
        step = definition.step(&next).ok_or_else(|| GenerateError::Definition(format!("no step {next}")))?;
    }
    Err(GenerateError::Definition("the route does not end".to_owned()))
}

/// The fixed paths of the routes.
struct Paths {
    permitted: Vec<String>,
    /// Refused at the documents check.
    refused: Vec<String>,
    /// Refused at the draft of the result (the same as `refused` where the
    /// definition decides only at the documents check).
    refused_at_draft: Vec<String>,
    data_unavailable: Vec<String>,
    /// Refused at the counter: the steps before the submission.
    at_counter: Vec<String>,
}

impl Paths {
    fn of(definition: &Definition) -> Result<Paths, GenerateError> {
        let permitted = walk(definition, true, true, true)?;
        let sign = definition
            .step_by_effect(Effect::SignSubmission)
            .ok_or_else(|| GenerateError::Definition("no sign-submission step".to_owned()))?;
        let at_counter = permitted.iter().take_while(|id| **id != sign.id).cloned().collect();
        Ok(Paths {
            refused: walk(definition, true, false, true)?,
            refused_at_draft: walk(definition, true, true, false)?,
            data_unavailable: walk(definition, false, true, true)?,
            permitted,
            at_counter,
        })
    }
}

/// Everything the scenarios are built from.
struct Builder<'a> {
    rng: Rng,
    names: &'a Names,
    seed: u64,
    calendar: &'a Calendar,
    definition: &'a Definition,
    paths: Paths,
    living: Vec<Person>,
    deceased: Vec<Person>,
    used: BTreeSet<String>,
    powers: Vec<PowerOfAttorney>,
    service: String,
}

impl Builder<'_> {
    fn documents(&mut self, id: &str, identity_title: &str, power: bool) -> Vec<DocumentPlan> {
        let mut documents = vec![
            DocumentPlan {
                kind: "application-form".to_owned(),
                title: "application for permission to meet the child".to_owned(),
                pages: 1 + self.rng.below(3) as u32,
                content: format!("scan: application for permission to meet the child, {id}"),
            },
            DocumentPlan {
                kind: "identity-document".to_owned(),
                title: identity_title.to_owned(),
                pages: 1 + self.rng.below(2) as u32,
                content: format!("scan: {identity_title}, {id}"),
            },
        ];
        if power {
            documents.push(DocumentPlan {
                kind: "power-of-attorney".to_owned(),
                title: "power of attorney".to_owned(),
                pages: 1 + self.rng.below(2) as u32,
                content: format!("scan: power of attorney, {id}"),
            });
        }
        documents
    }

    /// A living person other than `not`.
    fn other_living(&mut self, not: usize) -> usize {
        let mut other = self.rng.below(self.living.len() - 1);
        if other >= not {
            other += 1;
        }
        other
    }

    /// A living person, and another living person who is not them.
    fn two_living(&mut self) -> (usize, usize) {
        let first = self.rng.below(self.living.len());
        (first, self.other_living(first))
    }

    /// A living person other than `a` and `b` (`a != b`).
    fn third_living(&mut self, a: usize, b: usize) -> usize {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        let mut other = self.rng.below(self.living.len() - 2);
        if other >= low {
            other += 1;
        }
        if other >= high {
            other += 1;
        }
        other
    }

    /// Writes a notarised power of attorney to the registry: its number and date of issue.
    fn record_power(
        &mut self,
        issued: NaiveDate,
        principal: usize,
        attorney: usize,
        scope: Vec<String>,
        valid_until: NaiveDate,
        revoked_on: Option<NaiveDate>,
    ) -> (String, String) {
        let number = format!("NP-{}-{:05}", issued.year(), self.powers.len() + 1);
        self.powers.push(PowerOfAttorney {
            number: number.clone(),
            issued_on: issued.to_string(),
            notary: self.rng.pick(&self.names.powers_of_attorney.notaries).clone(),
            principal_iin: self.living[principal].iin.clone(),
            attorney_iin: self.living[attorney].iin.clone(),
            scope,
            valid_until: valid_until.to_string(),
            revoked_on: revoked_on.map(|d| d.to_string()).unwrap_or_default(),
        });
        (number, issued.to_string())
    }

    /// A valid notarised power of attorney from `principal` to `attorney`,
    /// issued in 2025 for three years.
    fn valid_power(&mut self, principal: usize, attorney: usize, scope: Vec<String>) -> (String, String) {
        let issued = self.rng.date(ymd(2025, 1, 1), ymd(2025, 12, 31));
        let valid_until = issued.with_year(issued.year() + 3).unwrap_or(issued) - Days::new(1);
        self.record_power(issued, principal, attorney, scope, valid_until, None)
    }

    fn any_scope(&mut self) -> Vec<String> {
        if self.rng.chance(500) { Vec::new() } else { vec![self.service.clone()] }
    }

    /// The operator enters the date of issue sometimes; it always matches.
    fn entered(&mut self, issued_on: String) -> String {
        if self.rng.chance(500) { issued_on } else { String::new() }
    }

    fn scenario(
        &mut self,
        index: usize,
        route: Route,
        variant: usize,
        submitted_at: DateTime<FixedOffset>,
    ) -> Result<Scenario, GenerateError> {
        let id = format!("gen-{}-{:06}", self.seed, index + 1);
        let ground_codes: Vec<String> =
            self.definition.refusal_grounds.iter().map(|ground| ground.code.clone()).collect();
        let mut plan = ApplicationPlan {
            applicant_iin: String::new(),
            representative: None,
            documents: Vec::new(),
            decision: Decision::Approve,
            refusal_ground: String::new(),
            result_decision: Decision::Approve,
            result_refusal_ground: String::new(),
        };
        let mut durations = BTreeMap::new();
        let mut expect = Expectation::default();
        let description;
        match route {
            Route::ApprovalInPerson | Route::Refusal | Route::StaffOverrun => {
                let applicant = self.rng.below(self.living.len());
                plan.applicant_iin = self.living[applicant].iin.clone();
                let title = self.living[applicant].identity_title;
                let refuse = match route {
                    Route::Refusal => Some(variant % ground_codes.len().max(1)),
                    // One overrun in four is on a refusal.
                    Route::StaffOverrun if self.rng.chance(250) => Some(self.rng.below(ground_codes.len())),
                    _ => None,
                };
                // A refusal is sometimes applied for through a representative (not notarised).
                let representative = route == Route::Refusal && self.rng.chance(200);
                if representative {
                    let attorney = self.other_living(applicant);
                    plan.representative = Some(RepresentativePlan {
                        iin: self.living[attorney].iin.clone(),
                        notarised: false,
                        number: String::new(),
                        issued_on: String::new(),
                    });
                }
                plan.documents = self.documents(&id, title, representative);
                let ground = refuse.and_then(|i| ground_codes.get(i).cloned());
                if let Some(ground) = &ground {
                    // A ground of the draft step refuses there, after the documents complied.
                    let draft = self.definition.step_by_effect(Effect::DraftResult);
                    if draft
                        .is_some_and(|draft| self.definition.grounds_for(&draft.id).iter().any(|g| &g.code == ground))
                    {
                        plan.result_decision = Decision::Refuse;
                        plan.result_refusal_ground.clone_from(ground);
                        expect.path = self.paths.refused_at_draft.clone();
                    } else {
                        plan.decision = Decision::Refuse;
                        plan.refusal_ground.clone_from(ground);
                        expect.path = self.paths.refused.clone();
                    }
                    expect.refusal_ground.clone_from(ground);
                    expect.outcome = "refused".to_owned();
                } else {
                    expect.outcome = "permitted".to_owned();
                    expect.path = self.paths.permitted.clone();
                }
                if route == Route::StaffOverrun {
                    for (step, text) in OVERRUNS[variant % OVERRUNS.len()] {
                        durations.insert((*step).to_owned(), (*text).to_owned());
                    }
                }
                description = match (route, &ground) {
                    (Route::StaffOverrun, _) => format!(
                        "the provider's staff overrun: {}",
                        durations.iter().map(|(s, d)| format!("{s} takes {d}")).collect::<Vec<_>>().join(", ")
                    ),
                    (_, Some(ground)) => format!(
                        "refusal on the ground {ground}{}",
                        if representative { ", through a representative (not notarised)" } else { "" }
                    ),
                    (_, None) => "approval, the applicant in person".to_owned(),
                };
            }
            Route::ApprovalNotarised => {
                let (applicant, attorney) = self.two_living();
                let scope = self.any_scope();
                let (number, issued_on) = self.valid_power(applicant, attorney, scope);
                let issued_on = self.entered(issued_on);
                plan.applicant_iin = self.living[applicant].iin.clone();
                plan.representative = Some(RepresentativePlan {
                    iin: self.living[attorney].iin.clone(),
                    notarised: true,
                    number,
                    issued_on,
                });
                let title = self.living[applicant].identity_title;
                plan.documents = self.documents(&id, title, true);
                expect.outcome = "permitted".to_owned();
                expect.path = self.paths.permitted.clone();
                description = "approval through a representative with a notarised power of attorney".to_owned();
            }
            Route::ApprovalNotNotarised => {
                let (applicant, attorney) = self.two_living();
                plan.applicant_iin = self.living[applicant].iin.clone();
                plan.representative = Some(RepresentativePlan {
                    iin: self.living[attorney].iin.clone(),
                    notarised: false,
                    number: String::new(),
                    issued_on: String::new(),
                });
                let title = self.living[applicant].identity_title;
                plan.documents = self.documents(&id, title, true);
                expect.outcome = "permitted".to_owned();
                expect.path = self.paths.permitted.clone();
                description = "approval through a representative, power of attorney not notarised".to_owned();
            }
            Route::ApplicantAbsent => {
                let (iin, _, _) = fresh_iin(&mut self.rng, &mut self.used);
                plan.applicant_iin = iin;
                plan.documents = self.documents(&id, "identity card", false);
                expect.outcome = "data-unavailable".to_owned();
                expect.path = self.paths.data_unavailable.clone();
                expect.notice = "process-4.applicant-not-found".to_owned();
                description = "the applicant's valid IIN is absent from \"Individuals\"".to_owned();
            }
            Route::ApplicantDeceased => {
                let dead = self.rng.below(self.deceased.len());
                plan.applicant_iin = self.deceased[dead].iin.clone();
                let title = self.deceased[dead].identity_title;
                plan.documents = self.documents(&id, title, false);
                expect.outcome = "data-unavailable".to_owned();
                expect.path = self.paths.data_unavailable.clone();
                expect.notice = "process-4.applicant-deceased".to_owned();
                description = "\"Individuals\" records the applicant as deceased".to_owned();
            }
            Route::PowerUnusable => {
                let problem = POWER_PROBLEMS[variant % POWER_PROBLEMS.len()];
                let (applicant, attorney) = self.two_living();
                let scope = self.any_scope();
                let (number, issued_on) = match problem {
                    "not-found" => (format!("NP-0000-{:05}", index + 1), String::new()),
                    "expired" => {
                        let issued = self.rng.date(ymd(2022, 1, 1), ymd(2023, 12, 31));
                        let until = issued + Days::new(365 + self.rng.below(366) as u64);
                        self.record_power(issued, applicant, attorney, scope, until, None)
                    }
                    "revoked" => {
                        let issued = self.rng.date(ymd(2025, 1, 1), ymd(2025, 6, 30));
                        let until = issued.with_year(issued.year() + 3).unwrap_or(issued) - Days::new(1);
                        let revoked = issued + Days::new(30 + self.rng.below(151) as u64);
                        self.record_power(issued, applicant, attorney, scope, until, Some(revoked))
                    }
                    "other-principal" => {
                        // Given to the attorney by a third person, not by the applicant.
                        let other = self.third_living(applicant, attorney);
                        self.valid_power(other, attorney, scope)
                    }
                    _ => self.valid_power(applicant, attorney, vec![OTHER_SERVICE.to_owned()]),
                };
                let issued_on = if problem == "not-found" { issued_on } else { self.entered(issued_on) };
                plan.applicant_iin = self.living[applicant].iin.clone();
                plan.representative = Some(RepresentativePlan {
                    iin: self.living[attorney].iin.clone(),
                    notarised: true,
                    number,
                    issued_on,
                });
                let title = self.living[applicant].identity_title;
                plan.documents = self.documents(&id, title, true);
                expect.outcome = "data-unavailable".to_owned();
                expect.path = self.paths.data_unavailable.clone();
                expect.notice = if problem == "not-found" {
                    "process-4.power-of-attorney-not-found"
                } else {
                    "process-4.power-of-attorney-invalid"
                }
                .to_owned();
                description = format!("the notarised power of attorney is unusable: {problem}");
            }
            Route::IncompletePackage => {
                let which = variant % INCOMPLETE.len();
                let (applicant, attorney) = self.two_living();
                plan.applicant_iin = self.living[applicant].iin.clone();
                let title = self.living[applicant].identity_title;
                match which {
                    2 => {
                        plan.representative = Some(RepresentativePlan {
                            iin: self.living[attorney].iin.clone(),
                            notarised: false,
                            number: String::new(),
                            issued_on: String::new(),
                        });
                    }
                    3 => {
                        let scope = self.any_scope();
                        let (number, issued_on) = self.valid_power(applicant, attorney, scope);
                        let issued_on = self.entered(issued_on);
                        plan.representative = Some(RepresentativePlan {
                            iin: self.living[attorney].iin.clone(),
                            notarised: true,
                            number,
                            issued_on,
                        });
                    }
                    _ => {}
                }
                let mut documents = self.documents(&id, title, false);
                match which {
                    0 => documents.retain(|d| d.kind != "identity-document"),
                    1 => documents.retain(|d| d.kind != "application-form"),
                    _ => {}
                }
                plan.documents = documents;
                expect.outcome = "rejected".to_owned();
                expect.reason = "workstation.incomplete_package".to_owned();
                // The applicant's signed notice, where the definition has one.
                if self.definition.notice(COUNTER_NOTICE).is_some() {
                    expect.notice = COUNTER_NOTICE.to_owned();
                }
                expect.path = self.paths.at_counter.clone();
                description = format!("incomplete package, refused at the counter: {}", INCOMPLETE[which]);
            }
            Route::InvalidIin => {
                let applicant = self.rng.below(self.living.len());
                let valid = &self.living[applicant].iin;
                let (prefix, last) = valid.split_at(11);
                let check = last.bytes().next().map_or(0, |b| b - b'0');
                let wrong = (check + 1 + self.rng.below(9) as u8) % 10;
                plan.applicant_iin = format!("{prefix}{wrong}");
                let title = self.living[applicant].identity_title;
                plan.documents = self.documents(&id, title, false);
                expect.outcome = "rejected".to_owned();
                expect.reason = "iin.check_digit".to_owned();
                description = "the operator mistypes the IIN's check digit".to_owned();
            }
        }
        if matches!(expect.outcome.as_str(), "permitted" | "refused") {
            let timeline = Timeline {
                calendar: self.calendar,
                definition: self.definition,
                durations: durations
                    .iter()
                    .filter_map(|(step, text)| Some((step.clone(), Duration::parse(text)?)))
                    .collect(),
                now_ms: submitted_at.timestamp_millis(),
            };
            let provider = timeline.provider(&expect.path)?;
            expect.due = Some(provider.due);
            expect.missed = provider.missed;
        }
        Ok(Scenario {
            id,
            description: format!("{description} ({})", route.name()),
            submitted_at,
            operator: OPERATORS[index % OPERATORS.len()].to_owned(),
            channel: None,
            application: plan,
            durations,
            collect_at: None,
            queue_wait: None,
            expect,
        })
    }
}

/// A moment of working time: a working day of `year` and a minute of its working hours.
fn working_moments(
    calendar: &Calendar,
    rng: &mut Rng,
    count: usize,
) -> Result<Vec<DateTime<FixedOffset>>, GenerateError> {
    let mut days = Vec::new();
    let mut date = ymd(YEAR, 1, 1);
    while date.year() == YEAR {
        if calendar.is_working_day(date).map_err(calendar_error)? {
            days.push(date);
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    let periods = calendar.working_hours();
    let minutes: Vec<i64> = periods.iter().map(|(from, to)| (*to - *from).num_minutes()).collect();
    let total = usize::try_from(minutes.iter().sum::<i64>()).unwrap_or(0);
    if days.is_empty() || total == 0 {
        return Err(calendar_error(format!("no working time in {YEAR}")));
    }
    let mut moments = Vec::with_capacity(count);
    for _ in 0..count {
        let day = *rng.pick(&days);
        let mut minute = rng.below(total) as i64;
        let mut time = NaiveTime::MIN;
        for ((from, _), length) in periods.iter().zip(&minutes) {
            if minute < *length {
                time = *from + TimeDelta::minutes(minute);
                break;
            }
            minute -= length;
        }
        let moment = calendar
            .offset()
            .from_local_datetime(&day.and_time(time))
            .single()
            .ok_or_else(|| calendar_error(format!("{day} {time} is not a moment")))?;
        moments.push(moment);
    }
    moments.sort();
    Ok(moments)
}

/// `{ "KEY": [` one compact item a line `] }`.
fn list_file<T: Serialize>(key: &str, items: &[T]) -> Result<String, GenerateError> {
    let mut text = format!("{{\n  \"{key}\": [\n");
    for (i, item) in items.iter().enumerate() {
        text.push_str("    ");
        text.push_str(&serde_json::to_string(item)?);
        text.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    text.push_str("  ]\n}\n");
    Ok(text)
}

/// A population of `count` scenarios over every route of the embedded
/// regulation, with the records they need; the same `count` and `seed`
/// always give the same files.
pub fn generate(count: usize, seed: u64) -> Result<Population, GenerateError> {
    let calendar = Calendar::kazakhstan();
    let definition = Definition::default_definition();
    let names = Names::embedded();
    let mut rng = Rng(seed);
    let grounds = definition.refusal_grounds.len();
    if grounds == 0 {
        return Err(GenerateError::Definition("no refusal grounds".to_owned()));
    }

    // "Individuals": about 2% deceased, at least one, and at least three living.
    let person_count = count + count / 10 + 10;
    let mut used = BTreeSet::new();
    let mut people: Vec<(Person, bool)> = (0..person_count)
        .map(|_| {
            let deceased = rng.chance(20);
            (person(names, &mut rng, &mut used, deceased), deceased)
        })
        .collect();
    if !people.iter().any(|(_, deceased)| *deceased) {
        let at = rng.below(people.len());
        let replacement = person(names, &mut rng, &mut used, true);
        used.remove(&people[at].0.iin);
        people[at] = (replacement, true);
    }
    let records: Vec<PersonRecord> = people.iter().map(|(p, _)| p.record.clone()).collect();
    let (deceased, living): (Vec<_>, Vec<_>) = people.into_iter().partition(|(_, deceased)| *deceased);
    if living.len() < 3 {
        return Err(GenerateError::Definition("fewer than three living persons".to_owned()));
    }

    let mut builder = Builder {
        rng,
        names,
        seed,
        calendar,
        definition,
        paths: Paths::of(definition)?,
        living: living.into_iter().map(|(p, _)| p).collect(),
        deceased: deceased.into_iter().map(|(p, _)| p).collect(),
        used,
        powers: Vec::new(),
        service: definition.service.code.clone(),
    };

    // The routes, shuffled over the chronologically sorted submissions.
    let counts = quotas(count, grounds);
    let mut routes: Vec<(Route, usize)> =
        Route::ALL.iter().zip(&counts).flat_map(|(route, &n)| (0..n).map(move |variant| (*route, variant))).collect();
    builder.rng.shuffle(&mut routes);
    let moments = working_moments(calendar, &mut builder.rng, count)?;
    let mut scenarios = Vec::with_capacity(count);
    for (index, ((route, variant), submitted_at)) in routes.into_iter().zip(moments).enumerate() {
        scenarios.push(builder.scenario(index, route, variant, submitted_at)?);
    }

    Ok(Population {
        individuals_json: list_file("persons", &records)?,
        powers_json: list_file("powers_of_attorney", &builder.powers)?,
        operators_json: OPERATORS_JSON.to_owned(),
        scenarios_json: list_file("scenarios", &scenarios)?,
        routes: Route::ALL.iter().map(|r| r.name()).zip(counts).collect(),
        persons: records.len(),
        powers: builder.powers.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use egov_regulation::Iin;

    fn scenarios(population: &Population) -> Vec<Scenario> {
        #[derive(serde::Deserialize)]
        struct File {
            scenarios: Vec<Scenario>,
        }
        serde_json::from_str::<File>(&population.scenarios_json).unwrap().scenarios
    }

    #[test]
    fn the_embedded_names_load() {
        let names = Names::from_toml(NAMES_TOML).unwrap();
        for nationality in [&names.kazakh, &names.russian] {
            assert!(!nationality.surnames.is_empty() && !nationality.patronymics.is_empty());
            assert!(!nationality.male.is_empty() && !nationality.female.is_empty());
        }
        assert!(!names.addresses.streets.is_empty() && !names.addresses.places.is_empty());
        assert!(names.addresses.places.iter().all(|place| !place.districts.is_empty()));
        assert!(!names.powers_of_attorney.notaries.is_empty());
        assert!(std::ptr::eq(Names::embedded(), Names::embedded()));
    }

    fn check_names_error(text: &str, expected: &str) {
        let error = Names::from_toml(text).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn names_with_an_empty_list_are_refused() {
        let names = |russian_female: &str, districts: &str| {
            format!(
                r#"
[kazakh]
surnames = [["Ахметов", "Ахметова"]]
male = ["Ерлан"]
female = ["Алия"]
patronymics = [["Маратович", "Маратовна"]]

[russian]
surnames = [["Иванов", "Иванова"]]
male = ["Иван"]
female = [{russian_female}]
patronymics = [["Иванович", "Ивановна"]]

[addresses]
streets = ["ул. Абая"]

[[addresses.places]]
region = "г. Астана"
districts = [{districts}]
city = "Астана"

[powers_of_attorney]
notaries = ["Notary Kim O. V., Karaganda, licence 0003307"]
"#
            )
        };
        assert!(Names::from_toml(&names(r#""Анна""#, r#""район Нура""#)).is_ok());
        check_names_error(&names("", r#""район Нура""#), "russian.female is empty");
        check_names_error(&names(r#""Анна""#, ""), "addresses.places[0].districts is empty");
        assert!(matches!(Names::from_toml("[kazakh]\nsurnames = 1\n"), Err(NamesError::Toml(_))));
    }

    #[test]
    fn the_same_seed_gives_the_same_files_and_another_seed_others() {
        let first = generate(120, 7).unwrap();
        assert_eq!(first, generate(120, 7).unwrap());
        let other = generate(120, 8).unwrap();
        assert_ne!(first.individuals_json, other.individuals_json);
        assert_ne!(first.scenarios_json, other.scenarios_json);
    }

    #[test]
    fn every_route_and_variant_is_covered_even_for_few_scenarios() {
        let grounds = Definition::default_definition().refusal_grounds.len();
        for count in [22, 30, 100, 300, 1000] {
            let counts = quotas(count, grounds);
            assert_eq!(counts.iter().sum::<usize>(), count);
            for (route, n) in Route::ALL.iter().zip(&counts) {
                assert!(*n >= route.variants(grounds), "{count}: {route:?} {n}");
            }
        }
        assert_eq!(quotas(300, grounds), vec![180, 30, 15, 24, 12, 6, 12, 9, 6, 6]);
        assert_eq!(quotas(3, grounds).iter().sum::<usize>(), 3);
        assert!(generate(0, 1).unwrap().scenarios_json.contains("\"scenarios\": [\n  ]"));

        let population = generate(60, 3).unwrap();
        let scenarios = scenarios(&population);
        let seen = |f: fn(&Expectation) -> &str| {
            scenarios.iter().map(|s| f(&s.expect).to_owned()).filter(|s| !s.is_empty()).collect::<BTreeSet<_>>()
        };
        assert_eq!(seen(|e| &e.outcome).len(), 4);
        // The four process-4 notices and the counter's notice of an incomplete package.
        assert_eq!(seen(|e| &e.notice).len(), 5);
        assert_eq!(seen(|e| &e.reason).len(), 2);
        assert_eq!(seen(|e| &e.refusal_ground).len(), grounds);
        assert!(scenarios.iter().any(|s| !s.expect.missed.is_empty()));
    }

    #[test]
    fn records_are_valid_and_consistent() {
        let population = generate(300, 11).unwrap();
        let individuals = persons(&population.individuals_json);
        assert_eq!(individuals.len(), population.persons);
        assert!(individuals.len() >= 300);
        let mut deceased = 0;
        for person in &individuals {
            let iin = Iin::parse(&person.iin).unwrap();
            assert_eq!(iin.birth_date().to_string(), person.birth_date);
            let female = person.gender.as_ref().unwrap().code == "2";
            assert_eq!(iin.sex() == egov_regulation::iin::Sex::Female, female);
            assert!((1950..=2005).contains(&iin.birth_date().year()));
            if !person.death_date.is_empty() {
                deceased += 1;
                assert_eq!(person.life_status.as_ref().unwrap().code, "3");
            }
        }
        assert!(deceased >= 1);
        let scenarios = scenarios(&population);
        let ids: BTreeSet<_> = scenarios.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids.len(), 300);
        let calendar = Calendar::kazakhstan();
        for scenario in &scenarios {
            let local = scenario.submitted_at;
            assert_eq!(local.year(), YEAR);
            assert!(calendar.is_working_day(local.date_naive()).unwrap(), "{}", scenario.id);
            assert_eq!(calendar.add_working_minutes(local, 0).unwrap(), local);
        }
        let operators: BTreeSet<_> = scenarios.iter().map(|s| s.operator.clone()).collect();
        assert_eq!(operators.len(), 2);
    }

    #[test]
    fn the_overrun_of_the_fixture_library_is_derived() {
        // fixtures/applications/executor-overruns.json and approval-in-person.json.
        let definition = Definition::default_definition();
        let paths = Paths::of(definition).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-06-01T10:00:00+05:00").unwrap();
        let timeline = |durations: &[(&str, &str)]| Timeline {
            calendar: Calendar::kazakhstan(),
            definition,
            durations: durations.iter().map(|(s, d)| ((*s).to_owned(), Duration::parse(d).unwrap())).collect(),
            now_ms: at.timestamp_millis(),
        };
        let overrun = timeline(&[("action-2", "4 wd")]).provider(&paths.permitted).unwrap();
        assert_eq!(overrun.due, ymd(2026, 6, 8));
        assert_eq!(overrun.missed, ["action-2", "service-term"]);
        let regular = timeline(&[]).provider(&paths.permitted).unwrap();
        assert_eq!(regular.due, ymd(2026, 6, 8));
        assert!(regular.missed.is_empty());
        // Late on a Friday (late-afternoon-submission.json).
        let friday = DateTime::parse_from_rfc3339("2026-06-05T17:55:00+05:00").unwrap();
        let mut late = timeline(&[]);
        late.now_ms = friday.timestamp_millis();
        assert_eq!(late.provider(&paths.permitted).unwrap().due, ymd(2026, 6, 12));
        // Registered at 17:48, action 1 ends the next morning: a shorter overrun
        // of action 2 misses the term too, action 4 ends right at its end (as replayed).
        let evening = DateTime::parse_from_rfc3339("2026-06-01T17:45:00+05:00").unwrap().timestamp_millis();
        for (durations, missed) in
            [(&[("action-2", "3 wd")], &["action-2", "service-term"][..]), (&[("action-4", "1 wd")], &["action-4"][..])]
        {
            let mut overrun = timeline(durations);
            overrun.now_ms = evening;
            let provider = overrun.provider(&paths.permitted).unwrap();
            assert_eq!(provider.due, ymd(2026, 6, 8), "{durations:?}");
            assert_eq!(provider.missed, missed, "{durations:?}");
        }
        assert_eq!(paths.at_counter, ["process-1", "process-2", "process-3", "condition-1"]);
        assert_eq!(paths.data_unavailable.last().map(String::as_str), Some("process-4"));
        assert!(paths.refused.iter().any(|s| s == "process-8"));
    }

    fn persons(text: &str) -> Vec<PersonRecord> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            persons: Vec<PersonRecord>,
        }
        serde_json::from_str::<File>(text).unwrap().persons
    }
}
