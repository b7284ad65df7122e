//! A second regulation of the same shape (fixtures/regulations/example-certificate.toml,
//! an invented example): it loads, runs through the transition function when its
//! steps are found by effect, and broken variants of it are refused naming the line.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use egov_regulation::instance::term_deadlines;
use egov_regulation::{Branch, Calendar, Definition, Event, Instance, TransitionError, apply, hand_over};

const EXAMPLE: &str = include_str!("../../../fixtures/regulations/example-certificate.toml");

/// 2026-06-01 10:00 Astana (a Monday).
const MONDAY_10_00: i64 = 1_780_290_000_000;

/// The effects the project's participants need to run a definition.
const NEEDED_EFFECTS: &[&str] = &[
    "log-in",
    "open-form",
    "look-up",
    "data-present",
    "data-notice",
    "sign-submission",
    "send-application",
    "register",
    "check-documents",
    "draft-result",
    "sign-result",
    "send-result",
    "issue-result",
];

/// Effects a definition may leave out; a route skips them where absent.
const OPTIONAL_EFFECTS: &[&str] = &["accept", "refusal-notice"];

fn example() -> Definition {
    Definition::from_toml(EXAMPLE).unwrap()
}

/// A route, as the effects of its steps and the answers at the conditions.
type Route = &'static [(&'static str, Option<Branch>)];

const APPROVAL: Route = &[
    ("log-in", None),
    ("open-form", None),
    ("look-up", None),
    ("data-present", Some(Branch::Yes)),
    ("sign-submission", None),
    ("send-application", None),
    ("register", None),
    ("accept", None),
    ("check-documents", Some(Branch::Yes)),
    ("draft-result", None),
    ("sign-result", None),
    ("send-result", None),
    ("issue-result", None),
];

/// The example's refusal: process 8's notice, then the executor's draft of the refusal.
const REFUSAL: Route = &[
    ("log-in", None),
    ("open-form", None),
    ("look-up", None),
    ("data-present", Some(Branch::Yes)),
    ("sign-submission", None),
    ("send-application", None),
    ("register", None),
    ("accept", None),
    ("check-documents", Some(Branch::No)),
    ("refusal-notice", None),
    ("draft-result", None),
    ("sign-result", None),
    ("send-result", None),
    ("issue-result", None),
];

/// The default's refusal for violations in the documents: process 8's signed
/// refusal goes back to the State Corporation at once.
const REFUSAL_OF_DOCUMENTS: Route = &[
    ("log-in", None),
    ("open-form", None),
    ("look-up", None),
    ("data-present", Some(Branch::Yes)),
    ("sign-submission", None),
    ("send-application", None),
    ("register", None),
    ("accept", None),
    ("check-documents", Some(Branch::No)),
    ("refusal-notice", None),
    ("issue-result", None),
];

/// The default's reasoned refusal at action 2, after the documents complied.
const REFUSAL_AT_DRAFT: Route = &[
    ("log-in", None),
    ("open-form", None),
    ("look-up", None),
    ("data-present", Some(Branch::Yes)),
    ("sign-submission", None),
    ("send-application", None),
    ("register", None),
    ("accept", None),
    ("check-documents", Some(Branch::Yes)),
    ("draft-result", Some(Branch::No)),
    ("sign-result", None),
    ("send-result", None),
    ("issue-result", None),
];

const DATA_NOTICE: Route = &[
    ("log-in", None),
    ("open-form", None),
    ("look-up", None),
    ("data-present", Some(Branch::No)),
    ("data-notice", None),
];

/// Drives `route` from the start, finding each step by its effect (an
/// optional effect the definition lacks is skipped), one minute apart. A
/// condition the route gives no answer for (the draft, where the definition
/// decides there) answers yes; a step the definition begins with a hand-over
/// is handed over first by the role it names.
fn drive(definition: &Definition, route: Route) -> Result<Instance, TransitionError> {
    let calendar = Calendar::kazakhstan();
    let mut instance = Instance::start(definition, MONDAY_10_00);
    let mut now_ms = MONDAY_10_00;
    for (effect, branch) in route {
        let step = match definition.step_by_effect(effect.parse().unwrap()) {
            Some(step) => step,
            None if OPTIONAL_EFFECTS.contains(effect) => continue,
            None => panic!("{}: no step has the effect {effect}", definition.service.code),
        };
        now_ms += 60_000;
        let event = Event {
            step_id: step.id.clone(),
            actor_role: step.actor.clone(),
            actor_id: format!("{}-1", step.actor),
            branch: branch.or((step.kind == egov_regulation::StepKind::Condition).then_some(Branch::Yes)),
            detail: String::new(),
        };
        if let Some(by) = &step.handed_over_by {
            let handing = Event { actor_role: by.clone(), actor_id: format!("{by}-1"), ..event.clone() };
            instance = hand_over(definition, &instance, &handing, now_ms - 30_000)?;
        }
        instance = apply(definition, &instance, &event, now_ms, calendar)?.instance;
    }
    Ok(instance)
}

/// The one place that drives a definition along a route: it must end with
/// `expected_outcome`, having visited the steps of the route's effects.
fn check_route(definition: &Definition, route: Route, expected_outcome: &str) {
    let code = &definition.service.code;
    let instance = drive(definition, route).unwrap_or_else(|error| panic!("{code}: {error}"));
    assert!(instance.has_ended(), "{code}: waits on {:?}", instance.current);
    assert_eq!(instance.outcome.as_deref(), Some(expected_outcome), "{code}");
    let visited_effects: Vec<&str> = instance
        .path
        .iter()
        .filter_map(|record| definition.step(&record.step_id)?.effect.map(|effect| effect.as_str()))
        .collect();
    let expected_effects: Vec<&str> = route
        .iter()
        .map(|(effect, _)| *effect)
        .filter(|effect| definition.step_by_effect(effect.parse().unwrap()).is_some())
        .collect();
    assert_eq!(visited_effects, expected_effects, "{code}");
}

#[test]
fn both_regulations_run_every_route_by_effect() {
    let example = example();
    let default = Definition::default_definition();
    check_route(default, APPROVAL, "permitted");
    check_route(default, REFUSAL_OF_DOCUMENTS, "refused");
    check_route(default, REFUSAL_AT_DRAFT, "refused");
    check_route(default, DATA_NOTICE, "data-unavailable");
    check_route(&example, APPROVAL, "issued");
    check_route(&example, REFUSAL, "declined");
    check_route(&example, DATA_NOTICE, "not-identified");
    assert_eq!(example.outcomes(), ["declined", "issued", "not-identified"]);
}

#[test]
fn the_example_is_another_regulation_with_every_needed_effect() {
    let example = example();
    let default = Definition::default_definition();
    assert_ne!(example.service.code, default.service.code);
    let default_ids: HashSet<&str> = default.steps().iter().map(|step| step.id.as_str()).collect();
    for step in example.steps() {
        assert!(!default_ids.contains(step.id.as_str()), "{} is also a step of the default definition", step.id);
    }
    for effect in NEEDED_EFFECTS {
        assert!(example.step_by_effect(effect.parse().unwrap()).is_some(), "no step has the effect {effect}");
    }
    assert!(example.steps().len() < default.steps().len(), "fewer steps than the default");
    // The data-notice step carries the notices the SC workstation emits; the draft-result step its result notice.
    let data_notice = example.step_by_effect("data-notice".parse().unwrap()).unwrap();
    for code in [
        "process-4.applicant-not-found",
        "process-4.applicant-deceased",
        "process-4.power-of-attorney-not-found",
        "process-4.power-of-attorney-invalid",
    ] {
        let notice = example.notice(code).unwrap_or_else(|| panic!("notice {code} missing"));
        assert_eq!(notice.step.as_deref(), Some(data_notice.id.as_str()), "{code}");
        assert!(!notice.en.is_empty() && !notice.ru.is_empty() && !notice.kk.is_empty(), "{code}");
    }
    let draft = example.step_by_effect("draft-result".parse().unwrap()).unwrap();
    assert!(example.notices.iter().any(|notice| notice.step.as_deref() == Some(draft.id.as_str())));
    assert_ne!(draft.actor, "provider-executor", "the example has no separate executor");
    let sign = example.step_by_effect("sign-result".parse().unwrap()).unwrap();
    assert_eq!(sign.actor, "provider-head");
    assert!(!example.documents.is_empty() && !example.refusal_grounds.is_empty() && !example.terms.is_empty());
}

#[test]
fn the_example_term_runs_from_registration() {
    let example = example();
    let instance = drive(&example, APPROVAL).unwrap();
    let deadlines = term_deadlines(&example, &instance, Calendar::kazakhstan());
    assert_eq!(deadlines.len(), 1, "{deadlines:?}");
    let (term_id, deadline) = &deadlines[0];
    assert_eq!(term_id, "service-term");
    // Registered on Monday 2026-06-01: 3 working days later is Thursday 2026-06-04, 18:00 Astana (13:00 UTC).
    assert_eq!(*deadline, Some(1_780_578_000_000));
    let check = instance.record(&example.step_by_effect("check-documents".parse().unwrap()).unwrap().id).unwrap();
    assert!(check.deadline_ms.is_some(), "the documents check has a deadline of 1 wd");
}

/// Which line an error must name.
enum Blame {
    /// The `[[...]]` header of the table that holds this line (a step's, a term's).
    TableOf(&'static str),
    /// This very line.
    Line(&'static str),
}

/// The line number (1-based) `blame` points at in `text`.
fn blamed_line_number(text: &str, blame: &Blame) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let find = |wanted: &str| lines.iter().position(|line| *line == wanted).unwrap();
    match blame {
        Blame::Line(wanted) => find(wanted) + 1,
        Blame::TableOf(wanted) => (0..=find(wanted)).rev().find(|&index| lines[index].starts_with("[[")).unwrap() + 1,
    }
}

/// The one place that checks a broken variant: `from` is replaced once by
/// `to` (it must be in the file), and the error must contain `expected` and
/// name the line `blame` points at in the broken text.
fn check_broken(from: &str, to: &str, expected: &str, blame: Blame) {
    assert!(EXAMPLE.contains(from), "{from:?} is not in the example");
    let broken = EXAMPLE.replacen(from, to, 1);
    let error = Definition::from_toml(&broken).expect_err(from);
    assert!(error.to_string().contains(expected), "{from:?} -> {to:?}: {error}");
    assert_eq!(error.code(), "regulation.invalid_definition");
    assert_eq!(error.line, blamed_line_number(&broken, &blame), "{from:?} -> {to:?}: {error}");
    assert!(error.to_string().starts_with(&format!("definition line {}: ", error.line)), "{error}");
}

#[test]
fn broken_variants_of_the_example_are_refused_naming_the_line() {
    check_broken("next = \"step-b\"", "next = \"step-z\"", "leads to step-z", Blame::TableOf("id = \"step-a\""));
    check_broken(
        "duration = \"2 min\"",
        "duration = \"2 minutes\"",
        "not \"N min\" or \"N wd\"",
        Blame::TableOf("id = \"step-a\""),
    );
    check_broken(
        "actor = \"provider-specialist\"\ntitle.en = \"draft",
        "actor = \"provider-executor\"\ntitle.en = \"draft",
        "actor provider-executor is not listed in [actors]",
        Blame::TableOf("id = \"step-g\""),
    );
    check_broken(
        "no = { next = \"notice-1\", outcome = \"not-identified\" }",
        "",
        "a condition needs both a yes and a no branch",
        Blame::TableOf("id = \"check-1\""),
    );
    check_broken(
        "effect = \"draft-result\"",
        "effect = \"check-documents\"",
        "effect check-documents is given to two steps",
        Blame::TableOf("id = \"step-g\""),
    );
    check_broken(
        "effect = \"draft-result\"",
        "effect = \"draft-results\"",
        "effect \"draft-results\" is not one of",
        Blame::TableOf("id = \"step-g\""),
    );
    check_broken(
        "id = \"step-b\"",
        "id = \"step-a\"",
        "step step-a is defined twice",
        Blame::TableOf("effect = \"open-form\""),
    );
    check_broken(
        "to = \"step-i\"",
        "to = \"step-x\"",
        "term service-term: step step-x is not defined",
        Blame::Line("[[term]]"),
    );
    check_broken(
        "duration = \"3 wd\"",
        "duraton = \"3 wd\"",
        "unknown field `duraton`",
        Blame::Line("duraton = \"3 wd\""),
    );
    check_broken(
        "yes = { next = \"step-d\" }",
        "yes = { next = \"notice-1\" }",
        "step step-d is never reached from step-a",
        Blame::TableOf("id = \"step-d\""),
    );
}

/// Every visible word in the three languages: a step's title, an actor, an
/// outcome or a notice's heading missing one of kk, ru and en is refused.
#[test]
fn a_definition_missing_a_language_is_refused() {
    check_broken(
        "title.kk = \"сұрауды тіркеу\"\n",
        "",
        "missing field `kk`",
        Blame::Line("title.en = \"register the request\""),
    );
    check_broken(
        "title.ru = \"зарегистрировать запрос\"",
        "title.ru = \" \"",
        "step step-f: the title has no ru text",
        Blame::TableOf("id = \"step-f\""),
    );
    check_broken(
        "ru = \"руководитель жилищного отдела\"\n",
        "",
        "missing field `ru`",
        Blame::Line("[actors.provider-head]"),
    );
    check_broken(
        "[outcomes.declined]",
        "[outcomes.declined-typo]",
        "outcome declined is not named in [outcomes] in en, ru and kk",
        Blame::TableOf("id = \"check-2\""),
    );
    check_broken(
        "[outcomes.withdrawn]",
        "[outcomes.taken-back]",
        "outcome withdrawn is not named",
        Blame::Line("[service]"),
    );
    let example = example();
    let heading = "heading.kk = \"МЫСАЛ: анықтама берілді\"\n";
    assert!(EXAMPLE.contains(heading), "{heading}");
    let error = Definition::from_toml(&EXAMPLE.replacen(heading, "", 1)).unwrap_err();
    assert!(error.to_string().contains("missing field `kk`"), "{error}");
    assert_eq!(
        example.notice("result.issued").and_then(|n| n.heading.as_ref()).map(|h| h.kk.as_str()),
        Some("МЫСАЛ: анықтама берілді")
    );
    let without = EXAMPLE
        .replace("heading.en = \"EXAMPLE: certificate issued\"\n", "")
        .replace("heading.ru = \"ПРИМЕР: справка выдана\"\n", "")
        .replace("heading.kk = \"МЫСАЛ: анықтама берілді\"\n", "");
    let error = Definition::from_toml(&without).unwrap_err();
    assert!(error.to_string().contains("notice result.issued: no heading"), "{error}");
    // Both definitions name every step, actor, outcome, term, channel and notice in the three languages.
    for definition in [Definition::default_definition().clone(), example] {
        for step in definition.steps() {
            for lang in ["kk", "ru", "en"] {
                assert!(!step.title.get(lang).is_empty(), "{} {lang}", step.id);
            }
            assert_ne!(step.title.kk, step.title.en, "{}", step.id);
            assert_ne!(step.title.ru, step.title.en, "{}", step.id);
        }
        for outcome in definition.outcomes() {
            assert_ne!(definition.outcome_name(outcome, "ru"), outcome, "{outcome}");
        }
        assert_eq!(definition.outcome_name("withdrawn", "kk"), "кері қайтарылды");
        for role in definition.actors.keys() {
            assert_ne!(definition.actor_name(role, "kk"), definition.actor_name(role, "en"), "{role}");
        }
    }
}
