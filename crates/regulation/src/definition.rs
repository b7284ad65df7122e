//! The process definition: a TOML file (the regulation's steps, actors,
//! durations, branches, terms, document checklist, refusal grounds, notices),
//! checked for consistency when loaded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;
use thiserror::Error;

/// The definition of this project's regulation, embedded.
pub const DEFAULT_DEFINITION: &str = include_str!("../data/meeting-permission.toml");

/// A text in the three languages of the regulation; the loader refuses one
/// missing a language or empty in one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ru: String,
    pub kk: String,
}

impl Text {
    /// The text in `lang` ("kk", "ru"; anything else English).
    pub fn get(&self, lang: &str) -> &str {
        Text::pick(lang, &self.kk, &self.ru, &self.en)
    }

    fn pick<'a>(lang: &str, kk: &'a str, ru: &'a str, en: &'a str) -> &'a str {
        match lang {
            "kk" => kk,
            "ru" => ru,
            _ => en,
        }
    }

    /// The language left empty, if one is.
    fn empty(&self) -> Option<&'static str> {
        [("en", &self.en), ("ru", &self.ru), ("kk", &self.kk)]
            .into_iter()
            .find(|(_, text)| text.trim().is_empty())
            .map(|(lang, _)| lang)
    }
}

/// How long a step may take by the regulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    /// Working minutes.
    Minutes(u32),
    /// Working days: the deadline is the end of the N-th working day after the start.
    WorkingDays(u32),
}

impl Duration {
    /// Parses `"20 min"` or `"5 wd"`.
    pub fn parse(text: &str) -> Option<Duration> {
        let (number, unit) = text.trim().split_once(' ')?;
        let number: u32 = number.parse().ok()?;
        match unit.trim() {
            "min" => Some(Duration::Minutes(number)),
            "wd" => Some(Duration::WorkingDays(number)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Duration::Minutes(n) => write!(f, "{n} min"),
            Duration::WorkingDays(n) => write!(f, "{n} wd"),
        }
    }
}

/// What a participant does at a step. The definition names each step's
/// effect; participants find the steps by it, never by their id, so another
/// regulation of the same shape can name its steps as it likes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    LogIn,
    OpenForm,
    LookUp,
    DataPresent,
    DataNotice,
    SignSubmission,
    SendApplication,
    Register,
    Accept,
    CheckDocuments,
    RefusalNotice,
    DraftResult,
    SignResult,
    SendResult,
    IssueResult,
    IssueAtOffice,
}

impl Effect {
    /// Every effect, in the order of the route.
    pub const ALL: [Effect; 16] = [
        Effect::LogIn,
        Effect::OpenForm,
        Effect::LookUp,
        Effect::DataPresent,
        Effect::DataNotice,
        Effect::SignSubmission,
        Effect::SendApplication,
        Effect::Register,
        Effect::Accept,
        Effect::CheckDocuments,
        Effect::RefusalNotice,
        Effect::DraftResult,
        Effect::SignResult,
        Effect::SendResult,
        Effect::IssueResult,
        Effect::IssueAtOffice,
    ];

    /// The name the definition file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::LogIn => "log-in",
            Effect::OpenForm => "open-form",
            Effect::LookUp => "look-up",
            Effect::DataPresent => "data-present",
            Effect::DataNotice => "data-notice",
            Effect::SignSubmission => "sign-submission",
            Effect::SendApplication => "send-application",
            Effect::Register => "register",
            Effect::Accept => "accept",
            Effect::CheckDocuments => "check-documents",
            Effect::RefusalNotice => "refusal-notice",
            Effect::DraftResult => "draft-result",
            Effect::SignResult => "sign-result",
            Effect::SendResult => "send-result",
            Effect::IssueResult => "issue-result",
            Effect::IssueAtOffice => "issue-at-office",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Effect {
    type Err = String;

    fn from_str(text: &str) -> Result<Effect, String> {
        Effect::ALL.into_iter().find(|effect| effect.as_str() == text).ok_or_else(|| {
            format!(
                "effect {text:?} is not one of {}",
                Effect::ALL.iter().map(|effect| effect.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// A step's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Task,
    Condition,
}

/// Where a condition's branch leads, and the outcome it decides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchTarget {
    pub next: String,
    #[serde(default)]
    pub outcome: Option<String>,
}

/// One step of the regulation.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub actor: String,
    /// The step's title in the three languages.
    pub title: Text,
    /// What a participant does at the step.
    pub effect: Option<Effect>,
    pub duration: Option<Duration>,
    /// For a task: the next step; none for a final step.
    pub next: Option<String>,
    /// For a condition.
    pub yes: Option<BranchTarget>,
    pub no: Option<BranchTarget>,
    /// The role that hands the step's work over to its actor before the actor
    /// does it ("the executor hands the result to the head, who signs it").
    pub handed_over_by: Option<String>,
    /// The participant what the step sends on passes through (the gateway
    /// between the State Corporation and the provider): its lane in Annex 2.
    pub via: Option<String>,
    /// The line of the step in the definition file.
    pub line: usize,
}

impl Step {
    pub fn is_final(&self) -> bool {
        self.kind == StepKind::Task && self.next.is_none()
    }
}

/// A span of steps with a regulatory duration (e.g. the service term).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub id: String,
    pub title: Text,
    pub from: String,
    pub to: String,
    #[serde(deserialize_with = "duration_field")]
    pub duration: Duration,
    /// The channel the term is for; none: every channel whose route passes its steps.
    #[serde(default)]
    pub channel: Option<String>,
}

/// A label in the three languages, with whether the text is the simulator's assumption.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labelled {
    pub code: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    /// For a notice of a deciding step: the outcome it announces.
    #[serde(default)]
    pub outcome: Option<String>,
    /// For a notice: it announces a refusal on the grounds tied to this step
    /// (a refusal at the office's action 2 on the documents' grounds of
    /// condition 2); a notice without it announces the step's own grounds.
    #[serde(default)]
    pub grounds_of: Option<String>,
    #[serde(default)]
    pub assumption: bool,
    /// For a notice: its heading (a notice without one is refused).
    #[serde(default)]
    pub heading: Option<Text>,
    pub en: String,
    pub ru: String,
    pub kk: String,
}

impl Labelled {
    /// The label in `lang` ("kk", "ru"; anything else English).
    pub fn text(&self, lang: &str) -> &str {
        match lang {
            "kk" => &self.kk,
            "ru" => &self.ru,
            _ => &self.en,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    pub code: String,
    pub start: String,
    pub provider: String,
    pub provider_ru: String,
    pub provider_kk: String,
    pub regulation: String,
    pub regulation_ru: String,
    pub regulation_kk: String,
    pub name_en: String,
    pub name_ru: String,
    pub name_kk: String,
    /// The form of the service ("paper", "electronic", "partly automated").
    #[serde(default)]
    pub form: Option<String>,
    /// The form of the result.
    #[serde(default)]
    pub result_form: Option<String>,
    /// What the service costs the applicant.
    #[serde(default)]
    pub cost: Option<String>,
}

impl ServiceInfo {
    /// The service's name in `lang`.
    pub fn name(&self, lang: &str) -> &str {
        Text::pick(lang, &self.name_kk, &self.name_ru, &self.name_en)
    }

    /// The provider in `lang`.
    pub fn provider_in(&self, lang: &str) -> &str {
        Text::pick(lang, &self.provider_kk, &self.provider_ru, &self.provider)
    }

    /// The regulation (the legal act) in `lang`.
    pub fn regulation_in(&self, lang: &str) -> &str {
        Text::pick(lang, &self.regulation_kk, &self.regulation_ru, &self.regulation)
    }
}

/// Where applications are received and results handed out (paragraph 3 of
/// the regulation): a channel starts the route at its own step and may take
/// its own steps in place of some of the route's (the result handed out at the
/// provider's office instead of through the State Corporation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: String,
    pub title: Text,
    /// The step an application received through this channel starts at.
    pub start: String,
    /// The route's steps this channel replaces: step id -> the channel's step.
    #[serde(default)]
    pub instead: BTreeMap<String, String>,
    /// Refusal grounds a step gives in this channel besides its own: step id
    /// -> the condition whose grounds it also gives (at the office, action 2
    /// refuses on the documents' grounds of condition 2, which the office's
    /// route does not pass).
    #[serde(default)]
    pub grounds: BTreeMap<String, String>,
}

/// The working hours of some of the definition's actors (`[[hours]]`): the
/// minutes of their steps, and the terms that start at their steps, count in
/// these hours; an actor of no entry keeps the calendar's (the provider's).
#[derive(Debug, Clone)]
pub struct ActorHours {
    pub title: String,
    pub actors: Vec<String>,
    pub hours: crate::calendar::WorkingHours,
    /// Whether the hours are the simulator's assumption rather than the text's.
    pub assumption: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    title: String,
    actors: Vec<String>,
    working_days: Vec<[String; 2]>,
    #[serde(default)]
    saturdays: Vec<[String; 2]>,
    #[serde(default)]
    assumption: bool,
}

/// A checked process definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub service: ServiceInfo,
    /// Each role, named in the three languages.
    pub actors: BTreeMap<String, Text>,
    /// Each outcome (those the branches decide, and "withdrawn"), named in the three languages.
    pub outcome_names: BTreeMap<String, Text>,
    steps: Vec<Step>,
    index: HashMap<String, usize>,
    pub terms: Vec<Term>,
    pub channels: Vec<Channel>,
    pub documents: Vec<Labelled>,
    pub refusal_grounds: Vec<Labelled>,
    pub notices: Vec<Labelled>,
    pub hours: Vec<ActorHours>,
    /// The line of the `[service]` table, which a missing step is blamed on.
    service_line: usize,
}

/// Why a definition was refused. The message names the line.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("definition line {line}: {message}")]
pub struct DefinitionError {
    pub line: usize,
    pub message: String,
}

impl DefinitionError {
    pub fn code(&self) -> &'static str {
        "regulation.invalid_definition"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    service: ServiceInfo,
    actors: BTreeMap<String, Text>,
    #[serde(default)]
    outcomes: BTreeMap<String, Text>,
    #[serde(rename = "step")]
    steps: Vec<toml::Spanned<RawStep>>,
    #[serde(default, rename = "term")]
    terms: Vec<toml::Spanned<Term>>,
    #[serde(default, rename = "channel")]
    channels: Vec<toml::Spanned<Channel>>,
    #[serde(default, rename = "document")]
    documents: Vec<Labelled>,
    #[serde(default, rename = "refusal_ground")]
    refusal_grounds: Vec<Labelled>,
    #[serde(default, rename = "notice")]
    notices: Vec<toml::Spanned<Labelled>>,
    #[serde(default)]
    hours: Vec<toml::Spanned<RawHours>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    #[serde(default = "task")]
    kind: StepKind,
    actor: String,
    title: Text,
    #[serde(default)]
    effect: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    yes: Option<BranchTarget>,
    #[serde(default)]
    no: Option<BranchTarget>,
    #[serde(default)]
    handed_over_by: Option<String>,
    #[serde(default)]
    via: Option<String>,
}

fn task() -> StepKind {
    StepKind::Task
}

fn duration_field<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    Duration::parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("duration {text:?} is not \"N min\" or \"N wd\"")))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Definition {
    /// The embedded definition of this project's regulation.
    pub fn default_definition() -> &'static Definition {
        static DEFAULT: OnceLock<Definition> = OnceLock::new();
        DEFAULT.get_or_init(|| match Definition::from_toml(DEFAULT_DEFINITION) {
            Ok(definition) => definition,
            // A test checks the embedded file loads; this cannot happen in a build that passed it.
            Err(error) => panic!("the embedded definition is invalid: {error}"),
        })
    }

    /// Parses and checks a definition.
    pub fn from_toml(text: &str) -> Result<Definition, DefinitionError> {
        let raw: RawDefinition = toml::from_str(text).map_err(|e| DefinitionError {
            line: e.span().map(|span| line_of(text, span.start)).unwrap_or(0),
            message: e.message().to_owned(),
        })?;
        let mut steps = Vec::with_capacity(raw.steps.len());
        for spanned in raw.steps {
            let line = line_of(text, spanned.span().start);
            let raw_step = spanned.into_inner();
            let error = |message: String| DefinitionError { line, message: format!("step {}: {message}", raw_step.id) };
            let duration = match &raw_step.duration {
                None => None,
                Some(text) => Some(
                    Duration::parse(text)
                        .ok_or_else(|| error(format!("duration {text:?} is not \"N min\" or \"N wd\"")))?,
                ),
            };
            for actor in std::iter::once(&raw_step.actor).chain(&raw_step.handed_over_by).chain(&raw_step.via) {
                if !raw.actors.contains_key(actor) {
                    return Err(error(format!("actor {actor} is not listed in [actors]")));
                }
            }
            match raw_step.kind {
                StepKind::Condition => {
                    if raw_step.yes.is_none() || raw_step.no.is_none() {
                        return Err(error("a condition needs both a yes and a no branch".to_owned()));
                    }
                    if raw_step.next.is_some() {
                        return Err(error("a condition leads on by its branches, not by next".to_owned()));
                    }
                }
                StepKind::Task => {
                    if raw_step.yes.is_some() || raw_step.no.is_some() {
                        return Err(error("only a condition has yes and no branches".to_owned()));
                    }
                }
            }
            if let Some(lang) = raw_step.title.empty() {
                return Err(error(format!("the title has no {lang} text")));
            }
            let effect = match &raw_step.effect {
                None => None,
                Some(name) => Some(name.parse::<Effect>().map_err(error)?),
            };
            steps.push(Step {
                id: raw_step.id,
                kind: raw_step.kind,
                actor: raw_step.actor,
                title: raw_step.title,
                effect,
                duration,
                next: raw_step.next,
                yes: raw_step.yes,
                no: raw_step.no,
                handed_over_by: raw_step.handed_over_by,
                via: raw_step.via,
                line,
            });
        }
        let mut index = HashMap::new();
        let mut effects = HashSet::new();
        for (position, step) in steps.iter().enumerate() {
            if let Some(effect) = step.effect
                && !effects.insert(effect)
            {
                return Err(DefinitionError {
                    line: step.line,
                    message: format!("step {}: effect {effect} is given to two steps", step.id),
                });
            }
            if index.insert(step.id.clone(), position).is_some() {
                return Err(DefinitionError { line: step.line, message: format!("step {} is defined twice", step.id) });
            }
        }
        let definition_error = |line: usize, message: String| DefinitionError { line, message };
        if !index.contains_key(&raw.service.start) {
            return Err(definition_error(1, format!("start step {} is not defined", raw.service.start)));
        }
        for step in &steps {
            for target in step.targets() {
                if !index.contains_key(target) {
                    return Err(definition_error(
                        step.line,
                        format!("step {}: leads to {target}, which is not defined", step.id),
                    ));
                }
            }
        }
        let mut channels = Vec::with_capacity(raw.channels.len());
        for spanned in raw.channels {
            let line = line_of(text, spanned.span().start);
            let channel = spanned.into_inner();
            for step in std::iter::once(&channel.start).chain(channel.instead.keys()).chain(channel.instead.values()) {
                if !index.contains_key(step) {
                    return Err(definition_error(line, format!("channel {}: step {step} is not defined", channel.id)));
                }
            }
            for (step, of) in &channel.grounds {
                if !index.contains_key(step) {
                    return Err(definition_error(line, format!("channel {}: step {step} is not defined", channel.id)));
                }
                match index.get(of).map(|&position| &steps[position]) {
                    Some(found) if found.kind == StepKind::Condition => {}
                    _ => {
                        return Err(definition_error(
                            line,
                            format!("channel {}: grounds of {of}: {of} is not a condition", channel.id),
                        ));
                    }
                }
            }
            if channels.iter().any(|other: &Channel| other.id == channel.id) {
                return Err(definition_error(line, format!("channel {} is defined twice", channel.id)));
            }
            channels.push(channel);
        }
        // Every step is reachable from the start or a channel's start.
        let mut reached = HashSet::new();
        let mut frontier = vec![raw.service.start.as_str()];
        frontier.extend(channels.iter().map(|channel| channel.start.as_str()));
        while let Some(id) = frontier.pop() {
            if reached.insert(id) {
                frontier.extend(targets_in_channels(&steps[index[id]], &channels));
            }
        }
        if let Some(step) = steps.iter().find(|step| !reached.contains(step.id.as_str())) {
            return Err(definition_error(
                step.line,
                format!("step {} is never reached from {}", step.id, raw.service.start),
            ));
        }
        // Every step can reach an end: no cycle without an exit.
        for step in &steps {
            if !can_finish(&steps, &index, &channels, &step.id) {
                return Err(definition_error(step.line, format!("step {} never reaches a final step", step.id)));
            }
        }
        let mut terms = Vec::with_capacity(raw.terms.len());
        for spanned in raw.terms {
            let line = line_of(text, spanned.span().start);
            let term = spanned.into_inner();
            for end in [&term.from, &term.to] {
                if !index.contains_key(end) {
                    return Err(definition_error(line, format!("term {}: step {end} is not defined", term.id)));
                }
            }
            if let Some(channel) = &term.channel
                && !channels.iter().any(|c| &c.id == channel)
            {
                return Err(definition_error(line, format!("term {}: channel {channel} is not defined", term.id)));
            }
            terms.push(term);
        }
        let mut notices = Vec::with_capacity(raw.notices.len());
        for spanned in raw.notices {
            let line = line_of(text, spanned.span().start);
            let notice = spanned.into_inner();
            for step in notice.step.iter().chain(&notice.grounds_of) {
                if !index.contains_key(step) {
                    return Err(definition_error(line, format!("notice {}: step {step} is not defined", notice.code)));
                }
            }
            notices.push(notice);
        }
        // A refusal ground names the condition whose "no" gives it.
        for ground in &raw.refusal_grounds {
            if let Some(step) = &ground.step {
                match index.get(step).map(|&position| &steps[position]) {
                    None => {
                        return Err(definition_error(
                            0,
                            format!("refusal ground {}: step {step} is not defined", ground.code),
                        ));
                    }
                    Some(found) if found.kind != StepKind::Condition => {
                        return Err(definition_error(
                            found.line,
                            format!("refusal ground {}: step {step} is not a condition", ground.code),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut hours: Vec<ActorHours> = Vec::with_capacity(raw.hours.len());
        for spanned in raw.hours {
            let line = line_of(text, spanned.span().start);
            let entry = spanned.into_inner();
            for actor in &entry.actors {
                if !raw.actors.contains_key(actor) {
                    return Err(definition_error(line, format!("hours: actor {actor} is not listed in [actors]")));
                }
                if hours.iter().any(|other| other.actors.contains(actor)) {
                    return Err(definition_error(line, format!("hours: actor {actor} has hours twice")));
                }
            }
            let parsed = crate::calendar::WorkingHours::parse(&entry.working_days, &entry.saturdays)
                .map_err(|error| definition_error(line, format!("hours: {error}")))?;
            hours.push(ActorHours {
                title: entry.title,
                actors: entry.actors,
                hours: parsed,
                assumption: entry.assumption,
            });
        }
        // Every visible word in the three languages: each actor, outcome, term,
        // channel and notice heading named in kk, ru and en.
        let service_line = text.lines().position(|line| line.trim() == "[service]").map_or(1, |index| index + 1);
        for (role, name) in &raw.actors {
            if let Some(lang) = name.empty() {
                return Err(definition_error(service_line, format!("actor {role} has no {lang} name")));
            }
        }
        let mut decided: Vec<&str> = steps
            .iter()
            .flat_map(|step| [&step.yes, &step.no])
            .filter_map(|branch| branch.as_ref()?.outcome.as_deref())
            .collect();
        decided.push(crate::instance::WITHDRAWN);
        for outcome in decided {
            match raw.outcomes.get(outcome) {
                None => {
                    let line = steps
                        .iter()
                        .find(|step| {
                            [&step.yes, &step.no].into_iter().flatten().any(|b| b.outcome.as_deref() == Some(outcome))
                        })
                        .map_or(service_line, |step| step.line);
                    return Err(definition_error(
                        line,
                        format!("outcome {outcome} is not named in [outcomes] in en, ru and kk"),
                    ));
                }
                Some(name) => {
                    if let Some(lang) = name.empty() {
                        return Err(definition_error(service_line, format!("outcome {outcome} has no {lang} name")));
                    }
                }
            }
        }
        for term in &terms {
            if let Some(lang) = term.title.empty() {
                return Err(definition_error(service_line, format!("term {}: the title has no {lang} text", term.id)));
            }
        }
        for channel in &channels {
            if let Some(lang) = channel.title.empty() {
                return Err(definition_error(
                    service_line,
                    format!("channel {}: the title has no {lang} text", channel.id),
                ));
            }
        }
        for notice in &notices {
            match &notice.heading {
                None => {
                    return Err(definition_error(
                        0,
                        format!("notice {}: no heading (heading.en, heading.ru, heading.kk)", notice.code),
                    ));
                }
                Some(heading) => {
                    if let Some(lang) = heading.empty() {
                        return Err(definition_error(
                            0,
                            format!("notice {}: the heading has no {lang} text", notice.code),
                        ));
                    }
                }
            }
        }
        for labelled in raw.documents.iter().chain(&raw.refusal_grounds).chain(&notices) {
            if let Some(lang) = [("en", &labelled.en), ("ru", &labelled.ru), ("kk", &labelled.kk)]
                .into_iter()
                .find(|(_, text)| text.trim().is_empty())
                .map(|(lang, _)| lang)
            {
                return Err(definition_error(0, format!("{}: no {lang} text", labelled.code)));
            }
        }
        let service = &raw.service;
        for (field, value) in [
            ("name_en", &service.name_en),
            ("name_ru", &service.name_ru),
            ("name_kk", &service.name_kk),
            ("provider", &service.provider),
            ("provider_ru", &service.provider_ru),
            ("provider_kk", &service.provider_kk),
            ("regulation", &service.regulation),
            ("regulation_ru", &service.regulation_ru),
            ("regulation_kk", &service.regulation_kk),
        ] {
            if value.trim().is_empty() {
                return Err(definition_error(service_line, format!("[service] {field} is empty")));
            }
        }
        Ok(Definition {
            service: raw.service,
            actors: raw.actors,
            outcome_names: raw.outcomes,
            steps,
            index,
            terms,
            channels,
            documents: raw.documents,
            refusal_grounds: raw.refusal_grounds,
            notices,
            hours,
            service_line,
        })
    }

    /// The working hours `actor` keeps, where the definition gives them.
    pub fn hours_of(&self, actor: &str) -> Option<&crate::calendar::WorkingHours> {
        self.hours.iter().find(|entry| entry.actors.iter().any(|a| a == actor)).map(|entry| &entry.hours)
    }

    /// `calendar` in the working hours of `actor` (the calendar's own where the definition gives none).
    pub fn calendar_for<'c>(
        &self,
        calendar: &'c crate::calendar::Calendar,
        actor: &str,
    ) -> std::borrow::Cow<'c, crate::calendar::Calendar> {
        match self.hours_of(actor) {
            Some(hours) => std::borrow::Cow::Owned(calendar.with_hours(hours)),
            None => std::borrow::Cow::Borrowed(calendar),
        }
    }

    /// The deadline of `step` started at `start_ms`, in its actor's working hours.
    pub fn step_deadline(&self, calendar: &crate::calendar::Calendar, step: &Step, start_ms: i64) -> Option<i64> {
        let duration = step.duration?;
        crate::instance::deadline(&self.calendar_for(calendar, &step.actor), start_ms, duration)
    }

    /// The deadline of `term` started at `start_ms`, in the working hours of the actor of its first step.
    pub fn term_deadline(&self, calendar: &crate::calendar::Calendar, term: &Term, start_ms: i64) -> Option<i64> {
        let actor = self.step(&term.from).map(|step| step.actor.as_str()).unwrap_or_default();
        crate::instance::deadline(&self.calendar_for(calendar, actor), start_ms, term.duration)
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index.get(id).map(|&position| &self.steps[position])
    }

    /// The step with `effect`.
    pub fn step_by_effect(&self, effect: Effect) -> Option<&Step> {
        self.steps.iter().find(|step| step.effect == Some(effect))
    }

    /// The step with `effect`, which `participant` needs: a definition
    /// without it is refused when the participant starts, not when an
    /// application first reaches the step.
    pub fn bind(&self, effect: Effect, participant: &str) -> Result<Step, DefinitionError> {
        self.step_by_effect(effect).cloned().ok_or_else(|| DefinitionError {
            line: self.service_line,
            message: format!("no step has the effect {effect}, which the {participant} needs"),
        })
    }

    pub fn start(&self) -> &Step {
        &self.steps[self.index[&self.service.start]]
    }

    pub fn notice(&self, code: &str) -> Option<&Labelled> {
        self.notices.iter().find(|notice| notice.code == code)
    }

    pub fn refusal_ground(&self, code: &str) -> Option<&Labelled> {
        self.refusal_grounds.iter().find(|ground| ground.code == code)
    }

    /// The refusal grounds a "no" at `step_id` may give: those tied to it, and
    /// those tied to no step, which belong to the documents check.
    pub fn grounds_for(&self, step_id: &str) -> Vec<&Labelled> {
        let checks_documents = self.step(step_id).is_some_and(|step| step.effect == Some(Effect::CheckDocuments));
        self.refusal_grounds
            .iter()
            .filter(|ground| match &ground.step {
                Some(step) => step == step_id,
                None => checks_documents,
            })
            .collect()
    }

    /// The refusal grounds a "no" at `step_id` may give in `channel`: the
    /// step's own ([`Definition::grounds_for`]), and those of the condition
    /// the channel lends the step (`[[channel]] grounds`).
    pub fn grounds_in(&self, step_id: &str, channel: Option<&str>) -> Vec<&Labelled> {
        let mut grounds = self.grounds_for(step_id);
        if let Some(of) = channel.and_then(|id| self.channel(id)).and_then(|channel| channel.grounds.get(step_id)) {
            grounds.extend(self.grounds_for(of));
        }
        grounds
    }

    /// The step a refusal ground is tied to (a ground tied to none belongs to the documents check).
    pub fn ground_step(&self, ground: &Labelled) -> Option<String> {
        ground.step.clone().or_else(|| self.step_by_effect(Effect::CheckDocuments).map(|step| step.id.clone()))
    }

    /// The notice of `step_id` that announces `outcome` on `ground`: one for
    /// the ground's own step (`grounds_of`) where the definition has it, then
    /// the step's notice for the outcome, then its only notice without one.
    pub fn notice_for_ground(&self, step_id: &str, outcome: &str, ground: Option<&Labelled>) -> Option<&Labelled> {
        let ground_step = ground.and_then(|ground| self.ground_step(ground)).filter(|of| of != step_id);
        if let Some(of) = ground_step
            && let Some(notice) = self.notices.iter().find(|notice| {
                notice.step.as_deref() == Some(step_id)
                    && notice.outcome.as_deref() == Some(outcome)
                    && notice.grounds_of.as_deref() == Some(of.as_str())
            })
        {
            return Some(notice);
        }
        self.notice_for(step_id, outcome)
    }

    /// The notice of `step_id` that announces `outcome` (or the step's only
    /// notice without an outcome), leaving out those for another step's grounds.
    pub fn notice_for(&self, step_id: &str, outcome: &str) -> Option<&Labelled> {
        let of_step = || {
            self.notices.iter().filter(|notice| notice.step.as_deref() == Some(step_id) && notice.grounds_of.is_none())
        };
        of_step()
            .find(|notice| notice.outcome.as_deref() == Some(outcome))
            .or_else(|| of_step().find(|notice| notice.outcome.is_none()))
    }

    /// Whether the route can go from step `from` to step `to` in some channel (a step reaches itself).
    pub fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = HashSet::new();
        let mut frontier = vec![from];
        while let Some(id) = frontier.pop() {
            if id == to {
                return true;
            }
            if seen.insert(id)
                && let Some(step) = self.step(id)
            {
                frontier.extend(targets_in_channels(step, &self.channels));
            }
        }
        false
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|channel| channel.id == id)
    }

    /// The step that follows as `next` in `channel` (the channel's own step in its place, if it has one).
    pub fn next_in_channel(&self, channel: Option<&str>, next: String) -> String {
        channel.and_then(|id| self.channel(id)).and_then(|channel| channel.instead.get(&next).cloned()).unwrap_or(next)
    }

    /// The terms that apply to an application of `channel` (none: the default route).
    pub fn terms_of<'a>(&'a self, channel: Option<&'a str>) -> impl Iterator<Item = &'a Term> + 'a {
        self.terms.iter().filter(move |term| term.channel.is_none() || term.channel.as_deref() == channel)
    }

    /// The name of `role` in `lang` (the role itself if the definition has none).
    pub fn actor_name<'a>(&'a self, role: &'a str, lang: &str) -> &'a str {
        self.actors.get(role).map_or(role, |name| name.get(lang))
    }

    /// The name of `outcome` in `lang` (the code itself if the definition has none).
    pub fn outcome_name<'a>(&'a self, outcome: &'a str, lang: &str) -> &'a str {
        self.outcome_names.get(outcome).map_or(outcome, |name| name.get(lang))
    }

    /// Every outcome a branch of the definition can decide.
    pub fn outcomes(&self) -> Vec<&str> {
        let mut outcomes: Vec<&str> = self
            .steps
            .iter()
            .flat_map(|step| [&step.yes, &step.no])
            .filter_map(|branch| branch.as_ref()?.outcome.as_deref())
            .collect();
        outcomes.sort_unstable();
        outcomes.dedup();
        outcomes
    }
}

impl Step {
    fn targets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(next) = &self.next {
            out.push(next.as_str());
        }
        for branch in [&self.yes, &self.no].into_iter().flatten() {
            out.push(branch.next.as_str());
        }
        out
    }
}

fn can_finish(steps: &[Step], index: &HashMap<String, usize>, channels: &[Channel], from: &str) -> bool {
    let mut seen = HashSet::new();
    let mut frontier = vec![from];
    while let Some(id) = frontier.pop() {
        let step = &steps[index[id]];
        if step.is_final() {
            return true;
        }
        if seen.insert(id) {
            frontier.extend(targets_in_channels(step, channels));
        }
    }
    false
}

/// Where `step` leads, in any channel: its targets and what a channel takes in their place.
fn targets_in_channels<'a>(step: &'a Step, channels: &'a [Channel]) -> Vec<&'a str> {
    let mut out = step.targets();
    for target in step.targets() {
        out.extend(channels.iter().filter_map(|channel| channel.instead.get(target).map(String::as_str)));
    }
    out
}
