//! The process definition and the transition function.

#![allow(clippy::unwrap_used)]

use egov_regulation::{Branch, Calendar, Definition, Event, Instance, TransitionError, apply, hand_over};

/// 2026-06-01 10:00 Astana (a Monday).
const MONDAY_10_00: i64 = 1_780_290_000_000;

fn event(definition: &Definition, step: &str, branch: Option<Branch>) -> Event {
    let actor = definition.step(step).map(|s| s.actor.clone()).unwrap_or_default();
    Event { step_id: step.to_owned(), actor_role: actor, actor_id: "someone".to_owned(), branch, detail: String::new() }
}

/// Runs `steps` (a step id, with "+"/"-" for a condition's yes/no, "^" for
/// the hand-over that begins a step) from the start.
fn run(steps: &[&str]) -> Result<Instance, TransitionError> {
    let definition = Definition::default_definition();
    let mut instance = Instance::start(definition, MONDAY_10_00);
    for (minute, step) in steps.iter().enumerate() {
        let now = MONDAY_10_00 + (minute as i64 + 1) * 60_000;
        if let Some(id) = step.strip_suffix('^') {
            let by = definition.step(id).and_then(|s| s.handed_over_by.clone()).unwrap_or_default();
            let event = Event { actor_role: by, actor_id: "executor".to_owned(), ..event(definition, id, None) };
            instance = hand_over(definition, &instance, &event, now)?;
            continue;
        }
        let (id, branch) = match step.strip_suffix('+') {
            Some(id) => (id, Some(Branch::Yes)),
            None => match step.strip_suffix('-') {
                Some(id) => (id, Some(Branch::No)),
                None => (*step, None),
            },
        };
        instance = apply(definition, &instance, &event(definition, id, branch), now, Calendar::kazakhstan())?.instance;
    }
    Ok(instance)
}

const APPROVAL: &[&str] = &[
    "process-1",
    "process-2",
    "process-3",
    "condition-1+",
    "process-5",
    "process-6",
    "process-7",
    "action-1",
    "condition-2+",
    "action-2+",
    "action-3^",
    "action-3",
    "action-4",
    "process-9",
];

#[test]
fn approval_runs_every_step_and_ends_permitted() {
    let instance = run(APPROVAL).unwrap();
    assert_eq!(instance.outcome.as_deref(), Some("permitted"));
    assert!(instance.has_ended());
    let path: Vec<&str> = instance.path.iter().map(|r| r.step_id.as_str()).collect();
    let steps: Vec<&str> =
        APPROVAL.iter().filter(|s| !s.ends_with('^')).map(|s| s.trim_end_matches(['+', '-'])).collect();
    assert_eq!(path, steps);
    // Action 3 records both actors: the executor who handed the result over, and the head.
    let action_3 = instance.record("action-3").unwrap();
    let hand_over = action_3.hand_over.as_ref().unwrap();
    assert_eq!((hand_over.role.as_str(), hand_over.actor_id.as_str()), ("provider-executor", "executor"));
    assert_eq!((action_3.actor.as_str(), action_3.actor_id.as_str()), ("provider-head", "someone"));
    assert!(hand_over.at_ms > action_3.started_ms && hand_over.at_ms < action_3.ended_ms);
    let process_1 = instance.record("process-1").unwrap();
    assert_eq!(process_1.deadline_ms, Some(MONDAY_10_00 + 60_000), "1 working minute from 10:00");
}

#[test]
fn violations_in_the_documents_go_through_process_8_to_the_state_corporation() {
    let instance = run(&[
        "process-1",
        "process-2",
        "process-3",
        "condition-1+",
        "process-5",
        "process-6",
        "process-7",
        "action-1",
        "condition-2-",
        "process-8^",
        "process-8",
        "process-9",
    ])
    .unwrap();
    assert_eq!(instance.outcome.as_deref(), Some("refused"));
    // Paragraph 8: the ARM forms the refusal and hands it over; the specialist signs it.
    let refusal = instance.record("process-8").unwrap();
    assert_eq!(refusal.actor, "provider-specialist");
    assert_eq!(refusal.hand_over.as_ref().unwrap().role, "regional-arm");
    let without_signature = run(&[
        "process-1",
        "process-2",
        "process-3",
        "condition-1+",
        "process-5",
        "process-6",
        "process-7",
        "action-1",
        "condition-2-",
        "process-8",
    ]);
    assert_eq!(without_signature.unwrap_err().code(), "process.not_handed_over");
}

#[test]
fn a_reasoned_refusal_is_decided_at_action_2_after_the_documents_complied() {
    let mut steps = APPROVAL.to_vec();
    let at = steps.iter().position(|s| *s == "action-2+").unwrap();
    steps[at] = "action-2-";
    let instance = run(&steps).unwrap();
    assert_eq!(instance.outcome.as_deref(), Some("refused"));
    assert_eq!(instance.record("condition-2").unwrap().branch, Some(Branch::Yes));
    assert_eq!(instance.record("action-2").unwrap().branch, Some(Branch::No));
}

#[test]
fn the_head_signs_only_what_the_executor_has_handed_over() {
    let through_draft: Vec<&str> = APPROVAL[..10].to_vec();
    let check = |extra: &[&str], code: &str| {
        let steps: Vec<&str> = through_draft.iter().copied().chain(extra.iter().copied()).collect();
        let error = run(&steps).unwrap_err();
        assert_eq!(error.code(), code, "{steps:?}: {error}");
    };
    check(&["action-3"], "process.not_handed_over");
    check(&["action-3^", "action-3^"], "process.handed_over_already");
    check(&["action-4^"], "process.not_current_step");
    // The hand-over is the executor's: the head cannot hand to themself.
    let definition = Definition::default_definition();
    let instance = run(&through_draft).unwrap();
    let by_head = event(definition, "action-3", None);
    let error = hand_over(definition, &instance, &by_head, MONDAY_10_00 + 3_600_000).unwrap_err();
    assert_eq!(error.code(), "process.wrong_actor");
    assert_eq!(instance.waits_on(definition), Some("provider-executor"));
}

#[test]
fn missing_data_ends_at_process_4() {
    let instance = run(&["process-1", "process-2", "process-3", "condition-1-", "process-4"]).unwrap();
    assert_eq!(instance.outcome.as_deref(), Some("data-unavailable"));
}

#[test]
fn transitions_the_regulation_does_not_allow_are_refused() {
    let check = |steps: &[&str], code: &str| {
        let error = run(steps).unwrap_err();
        assert_eq!(error.code(), code, "{steps:?}: {error}");
    };
    check(&["process-2"], "process.not_current_step");
    check(&["process-1", "process-2", "process-3", "condition-1"], "process.branch_required");
    check(&["process-1+"], "process.branch_not_allowed");
    check(&["process-1", "process-2", "process-3", "condition-1-", "process-4", "process-5"], "process.ended");
    let second_decision: Vec<&str> = APPROVAL[..9].iter().copied().chain(["condition-2-"]).collect();
    check(&second_decision, "process.not_current_step");
}

#[test]
fn the_wrong_role_cannot_do_a_step() {
    let definition = Definition::default_definition();
    let instance = Instance::start_at_step(definition, "action-3", MONDAY_10_00).unwrap();
    let mut by_specialist = event(definition, "action-3", None);
    by_specialist.actor_role = "provider-specialist".to_owned();
    let error = apply(definition, &instance, &by_specialist, MONDAY_10_00, Calendar::kazakhstan()).unwrap_err();
    assert_eq!(error.code(), "process.wrong_actor");
}

#[test]
fn inconsistent_definitions_are_refused_naming_the_line() {
    let check = |edit: &dyn Fn(String) -> String, expected: &str| {
        let text = edit(egov_regulation::definition::DEFAULT_DEFINITION.to_owned());
        let error = Definition::from_toml(&text).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
        assert!(error.line > 0, "{error}");
    };
    check(&|t| t.replacen("next = \"process-2\"", "next = \"process-22\"", 1), "leads to process-22");
    check(&|t| t.replacen("duration = \"1 min\"", "duration = \"one minute\"", 1), "not \"N min\"");
    check(
        &|t| t.replacen("no = { next = \"process-4\", outcome = \"data-unavailable\" }", "", 1),
        "both a yes and a no",
    );
    check(
        &|t| {
            t.replacen(
                "yes = { next = \"process-5\" }\nno = { next = \"process-4\", outcome = \"data-unavailable\" }",
                "yes = { next = \"process-5\" }\nno = { next = \"process-5\" }",
                1,
            )
        },
        "process-4 is never reached",
    );
    // The new tables and fields are checked too.
    check(&|t| t.replacen("handed_over_by = \"provider-executor\"", "handed_over_by = \"nobody\"", 1), "actor nobody");
    check(&|t| t.replacen("start = \"action-1\"", "start = \"action-9\"", 1), "channel provider-office: step action-9");
    check(&|t| t.replacen("channel = \"provider-office\"", "channel = \"post\"", 1), "channel post is not defined");
    check(&|t| t.replacen("step = \"action-2\"\nassumption", "step = \"action-3\"\nassumption", 1), "not a condition");
    // Without its channel, the office's own step is reached from nowhere.
    check(
        &|t| t.replacen("instead = { \"condition-2\" = \"action-2\", \"process-9\" = \"office-issue\" }", "", 1),
        "office-issue is never reached",
    );
    check(
        &|t| t.replacen("grounds = { \"action-2\" = \"condition-2\" }", "grounds = { \"action-2\" = \"action-3\" }", 1),
        "action-3 is not a condition",
    );
    check(
        &|t| t.replacen("grounds_of = \"condition-2\"", "grounds_of = \"condition-9\"", 1),
        "step condition-9 is not defined",
    );
}

/// Runs `steps` as an application received through `channel`.
fn run_in_channel(channel: &str, steps: &[&str]) -> Result<Instance, TransitionError> {
    let definition = Definition::default_definition();
    let mut instance = Instance::start_in_channel(definition, channel, MONDAY_10_00)?;
    for (minute, step) in steps.iter().enumerate() {
        let now = MONDAY_10_00 + (minute as i64 + 1) * 60_000;
        if let Some(id) = step.strip_suffix('^') {
            let by = definition.step(id).and_then(|s| s.handed_over_by.clone()).unwrap_or_default();
            let event = Event { actor_role: by, actor_id: "executor".to_owned(), ..event(definition, id, None) };
            instance = hand_over(definition, &instance, &event, now)?;
            continue;
        }
        let (id, branch) = match (step.strip_suffix('+'), step.strip_suffix('-')) {
            (Some(id), _) => (id, Some(Branch::Yes)),
            (_, Some(id)) => (id, Some(Branch::No)),
            _ => (*step, None),
        };
        instance = apply(definition, &instance, &event(definition, id, branch), now, Calendar::kazakhstan())?.instance;
    }
    Ok(instance)
}

#[test]
fn at_the_office_the_route_is_actions_1_to_4_and_action_2_refuses_on_the_documents_grounds() {
    let definition = Definition::default_definition();
    let refused = run_in_channel(
        "provider-office",
        &["action-1", "action-2-", "action-3^", "action-3", "action-4", "office-issue"],
    )
    .unwrap();
    assert_eq!(refused.outcome.as_deref(), Some("refused"));
    let permitted = run_in_channel(
        "provider-office",
        &["action-1", "action-2+", "action-3^", "action-3", "action-4", "office-issue"],
    )
    .unwrap();
    assert_eq!(permitted.outcome.as_deref(), Some("permitted"));
    // Condition 2 is not on the office's route.
    let error = run_in_channel("provider-office", &["action-1", "condition-2-"]).unwrap_err();
    assert_eq!(error.code(), "process.not_current_step");
    // The documents' grounds (paragraph 9) are action 2's at the office only.
    let codes = |grounds: Vec<&egov_regulation::definition::Labelled>| {
        grounds.into_iter().map(|g| g.code.clone()).collect::<Vec<_>>()
    };
    let at_office = codes(definition.grounds_in("action-2", Some("provider-office")));
    let at_sc = codes(definition.grounds_in("action-2", Some("state-corporation")));
    assert_eq!(at_sc, codes(definition.grounds_for("action-2")));
    assert!(!at_sc.contains(&"unreliable-documents".to_owned()));
    for code in ["incomplete-package", "unreliable-documents", "documents-noncompliant", "court-decision"] {
        assert!(at_office.contains(&code.to_owned()), "{code} missing at the office: {at_office:?}");
    }
    // The refusal's notice names the paragraph the ground is of.
    let notice = |ground: &str| {
        definition.notice_for_ground("action-2", "refused", definition.refusal_ground(ground)).unwrap().code.clone()
    };
    assert_eq!(notice("unreliable-documents"), "result.refused-documents");
    assert_eq!(notice("court-decision"), "result.refused");
    assert_eq!(definition.notice_for("action-2", "refused").unwrap().code, "result.refused");
}

#[test]
fn the_kazakh_notices_use_the_regulations_terms() {
    // The regulation says "бірыңғай нотариалды ақпараттық жүйе" (the unified notarial information system).
    for text in [
        egov_regulation::definition::DEFAULT_DEFINITION,
        include_str!("../../../fixtures/regulations/example-certificate.toml"),
    ] {
        assert!(!text.contains("нотариаттық"), "a notice says нотариаттық");
    }
    let definition = Definition::default_definition();
    let notice = definition.notice("process-4.power-of-attorney-not-found").unwrap();
    assert!(notice.kk.contains("нотариалды ақпараттық жүйеде"), "{}", notice.kk);
}

#[test]
fn a_step_stands_met_missed_on_track_or_at_risk() {
    use egov_regulation::instance::Standing;
    let calendar = Calendar::kazakhstan();
    let hour = 3_600_000;
    // Started Monday 10:00, due 18:00 the same day (8 working hours less lunch: 7 h).
    let (start, due) = (MONDAY_10_00, MONDAY_10_00 + 8 * hour);
    let check = |ended: Option<i64>, now: i64, expected: Standing| {
        assert_eq!(Standing::of(start, Some(due), ended, now, calendar), expected, "ended {ended:?}, now {now}");
    };
    check(Some(start + hour), start + hour, Standing::Met);
    check(Some(due + 1), due + 1, Standing::Missed);
    check(None, due + 1, Standing::Missed);
    check(None, start + hour, Standing::OnTrack);
    check(None, start + 7 * hour, Standing::AtRisk);
    assert_eq!(Standing::of(start, None, None, start, calendar), Standing::NoDeadline);
}

/// Each participant counts its minutes in its own working hours (`[[hours]]`):
/// the State Corporation's 09:00-20:00 and Saturday mornings, the provider's
/// 09:00-18:00 with lunch.
#[test]
fn each_participant_counts_its_minutes_in_its_own_working_hours() {
    let definition = Definition::default_definition();
    let calendar = Calendar::kazakhstan();
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis();
    let local = |ms: i64| egov_regulation::instance::to_local(calendar, ms).unwrap().to_rfc3339();
    let ends = |step: &str, start: &str| {
        local(definition.step_deadline(calendar, definition.step(step).unwrap(), at(start)).unwrap())
    };
    // 18:01 on the eve of Nauryz: the operator's minute ends that evening.
    assert_eq!(ends("process-2", "2026-03-20T18:01:00+05:00"), "2026-03-20T18:02:00+05:00");
    // At 20:00 the State Corporation closes; Saturday 21 March is Nauryz, and the days off run to 25 March.
    assert_eq!(ends("process-2", "2026-03-20T20:00:00+05:00"), "2026-03-26T09:01:00+05:00");
    // A plain Saturday morning is open, its afternoon is not.
    assert_eq!(ends("process-2", "2026-03-28T10:00:00+05:00"), "2026-03-28T10:01:00+05:00");
    assert_eq!(ends("process-2", "2026-03-28T13:00:00+05:00"), "2026-03-30T09:01:00+05:00");
    // The provider's office at 17:59 + 20 min: past 18:00, on to 26 March.
    assert_eq!(ends("action-1", "2026-03-20T17:59:00+05:00"), "2026-03-26T09:19:00+05:00");
    assert_eq!(ends("action-1", "2026-03-28T10:00:00+05:00"), "2026-03-30T09:20:00+05:00");
    // The State Corporation's 15 minutes (sc-handling) count in its hours too.
    let handling = definition.terms.iter().find(|term| term.id == "sc-handling").unwrap();
    assert_eq!(
        local(definition.term_deadline(calendar, handling, at("2026-03-20T18:30:00+05:00")).unwrap()),
        "2026-03-20T18:45:00+05:00"
    );
    // Hours for an actor that is not listed, or twice, are refused.
    let text = egov_regulation::definition::DEFAULT_DEFINITION;
    let unknown =
        text.replacen("actors = [\"sc-operator\", \"sc-workstation\"]", "actors = [\"sc-operator\", \"nobody\"]", 1);
    assert!(Definition::from_toml(&unknown).unwrap_err().to_string().contains("actor nobody"));
    let twice = text.replacen(
        "actors = [\"sc-operator\", \"sc-workstation\"]",
        "actors = [\"sc-operator\", \"provider-head\"]",
        1,
    );
    assert!(Definition::from_toml(&twice).unwrap_err().to_string().contains("provider-head has hours twice"));
}
