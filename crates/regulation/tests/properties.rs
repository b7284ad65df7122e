//! Properties of the transition function over the embedded definition: random
//! sequences of events, most of them refused, never break an instance.

#![allow(clippy::unwrap_used)]

use egov_regulation::{Branch, Calendar, Definition, Event, Instance, StepKind, TransitionError, apply, hand_over};
use proptest::prelude::*;

/// 2026-06-01 10:00 Astana (a Monday).
const MONDAY_10_00: i64 = 1_780_290_000_000;
/// The longest pause between two generated events: three days.
const MAX_PAUSE_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// One generated event. `Random` picks the step and the role blindly (almost
/// always refused); `AtCurrent` is done at the instance's current step by its
/// role, so that sequences get far along the route, with a random answer that
/// may not fit the step. `HandOver` is the hand-over that begins the current
/// step, by the role the definition names (refused where it names none).
#[derive(Debug, Clone)]
enum Generated {
    Random { step: usize, role: usize, branch: Option<Branch>, pause_ms: i64 },
    AtCurrent { branch: Option<Branch>, pause_ms: i64 },
    HandOver { pause_ms: i64 },
}

fn branch() -> impl Strategy<Value = Option<Branch>> {
    prop_oneof![Just(None), Just(Some(Branch::Yes)), Just(Some(Branch::No))]
}

fn generated() -> impl Strategy<Value = Generated> {
    let definition = Definition::default_definition();
    let step_count = definition.steps().len();
    let role_count = definition.actors.len();
    // Weighted towards the current step, so that runs get to the end of a route
    // with three decisions and a hand-over on it.
    prop_oneof![
        2 => (0..step_count, 0..role_count, branch(), 0..MAX_PAUSE_MS)
            .prop_map(|(step, role, branch, pause_ms)| Generated::Random { step, role, branch, pause_ms }),
        3 => (branch(), 0..MAX_PAUSE_MS).prop_map(|(branch, pause_ms)| Generated::AtCurrent { branch, pause_ms }),
        1 => (0..MAX_PAUSE_MS).prop_map(|pause_ms| Generated::HandOver { pause_ms }),
    ]
}

/// The event a generated one stands for, given the instance it is applied to,
/// and its pause.
fn to_event(definition: &Definition, instance: &Instance, generated: &Generated) -> (Event, i64) {
    let roles: Vec<&String> = definition.actors.keys().collect();
    let (step_id, actor_role, branch, pause_ms) = match generated {
        Generated::Random { step, role, branch, pause_ms } => {
            (definition.steps()[*step].id.clone(), roles[*role].clone(), *branch, *pause_ms)
        }
        Generated::AtCurrent { branch, pause_ms } => {
            // After the end there is no current step: take the start, which must be refused.
            let step = instance.current.as_deref().and_then(|id| definition.step(id)).unwrap_or(definition.start());
            (step.id.clone(), step.actor.clone(), *branch, *pause_ms)
        }
        Generated::HandOver { pause_ms } => {
            let step = instance.current.as_deref().and_then(|id| definition.step(id)).unwrap_or(definition.start());
            (step.id.clone(), step.handed_over_by.clone().unwrap_or_default(), None, *pause_ms)
        }
    };
    (Event { step_id, actor_role, actor_id: "someone".to_owned(), branch, detail: String::new() }, pause_ms)
}

/// The one place that checks a step of a run: `before` is the instance the
/// event was applied to, `result` what `apply` gave.
fn check_transition(
    definition: &Definition,
    before: &Instance,
    event: &Event,
    now_ms: i64,
    result: &Result<Instance, TransitionError>,
) {
    let after = match result {
        Err(error) => {
            // (a) an ended instance refuses everything as ended.
            if before.outcome.is_some() {
                assert_eq!(error.code(), "process.ended", "{event:?} after the end: {error}");
            }
            return;
        }
        Ok(after) => after,
    };
    // (a) nothing is accepted once an outcome is set.
    assert!(before.outcome.is_none(), "{event:?} accepted after the end {:?}", before.outcome);
    // (c) the path grows by one record, for the step that was current.
    assert_eq!(after.path.len(), before.path.len() + 1, "{event:?}");
    assert_eq!(after.path[..before.path.len()], before.path[..], "the path so far is kept");
    let record = after.path.last().unwrap();
    assert_eq!(Some(record.step_id.as_str()), before.current.as_deref(), "{event:?}");
    assert_eq!(record.step_id, event.step_id);
    assert_eq!(record.actor, definition.step(&record.step_id).unwrap().actor);
    assert!(record.started_ms <= record.ended_ms, "{record:?}");
    assert_eq!(record.ended_ms, now_ms);
    if let Some(previous) = before.path.last() {
        assert!(previous.ended_ms <= record.started_ms, "{previous:?} then {record:?}");
    }
    // The instance ends exactly when an outcome is set.
    assert_eq!(after.current.is_none(), after.outcome.is_some(), "{after:?}");
    // (b) the outcome is one the definition's branches decide.
    if let Some(outcome) = &after.outcome {
        assert!(definition.outcomes().contains(&outcome.as_str()), "outcome {outcome} is not the definition's");
    }
}

/// Runs generated events from the start; returns the final instance.
fn run(generated_events: &[Generated]) -> Instance {
    let definition = Definition::default_definition();
    let calendar = Calendar::kazakhstan();
    let mut instance = Instance::start(definition, MONDAY_10_00);
    let mut now_ms = MONDAY_10_00;
    let mut first_outcome: Option<String> = None;
    for generated in generated_events {
        let (event, pause_ms) = to_event(definition, &instance, generated);
        now_ms += pause_ms;
        let before = instance.clone();
        if let Generated::HandOver { .. } = generated {
            // A hand-over changes nothing but who the step waits on.
            match hand_over(definition, &instance, &event, now_ms) {
                Ok(after) => {
                    assert!(before.handed_over.is_none() && after.handed_over.is_some(), "{event:?}");
                    assert_eq!(
                        (&after.path, &after.current, &after.outcome),
                        (&before.path, &before.current, &before.outcome)
                    );
                    instance = after;
                }
                Err(error) if before.outcome.is_some() => assert_eq!(error.code(), "process.ended"),
                Err(_) => assert_eq!(instance, before),
            }
            continue;
        }
        let result = apply(definition, &instance, &event, now_ms, calendar);
        // What follows is the step the new instance waits on, or its end with its outcome.
        if let Ok(transition) = &result {
            check_follows(definition, transition);
        }
        let result = result.map(|transition| transition.instance);
        // (d) the caller's instance is untouched, whatever the answer.
        assert_eq!(instance, before, "apply changed its input");
        check_transition(definition, &before, &event, now_ms, &result);
        if let Ok(after) = result {
            instance = after;
        }
        // (a) once set, the outcome never changes.
        match (&first_outcome, &instance.outcome) {
            (None, outcome) => first_outcome.clone_from(outcome),
            (Some(first), outcome) => assert_eq!(Some(first), outcome.as_ref(), "the outcome changed"),
        }
    }
    instance
}

/// `follows` names the step the instance now waits on, with its effect and actor, or its end with its outcome.
fn check_follows(definition: &Definition, transition: &egov_regulation::Transition) {
    use egov_regulation::Follows;
    let instance = &transition.instance;
    match (&transition.follows, &instance.current) {
        (Follows::Step { step_id, effect, actor }, Some(current)) => {
            let step = definition.step(current).unwrap();
            assert_eq!((step_id, effect, actor), (&step.id, &step.effect, &step.actor));
        }
        (Follows::End { outcome }, None) => assert_eq!(Some(outcome), instance.outcome.as_ref()),
        (follows, current) => panic!("{follows:?} follows, but the instance waits on {current:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_events_never_break_an_instance(generated_events in prop::collection::vec(generated(), 0..60)) {
        let instance = run(&generated_events);
        // Whatever happened, the path is a walk of the definition from its start.
        let definition = Definition::default_definition();
        if let Some(first) = instance.path.first() {
            prop_assert_eq!(&first.step_id, &definition.service.start);
        }
        for pair in instance.path.windows(2) {
            let step = definition.step(&pair[0].step_id).unwrap();
            let expected_next = match (step.kind, pair[0].branch) {
                (StepKind::Task, None) => step.next.clone(),
                (StepKind::Condition, Some(Branch::Yes)) => step.yes.as_ref().map(|target| target.next.clone()),
                (StepKind::Condition, Some(Branch::No)) => step.no.as_ref().map(|target| target.next.clone()),
                _ => None,
            };
            prop_assert_eq!(expected_next.as_deref(), Some(pair[1].step_id.as_str()));
        }
    }
}

/// The generator is worth its salt only if its runs reach every outcome.
#[test]
fn generated_runs_reach_every_outcome() {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(generated(), 0..60);
    let mut reached: Vec<String> = Vec::new();
    for _ in 0..512 {
        let generated_events = strategy.new_tree(&mut runner).unwrap().current();
        if let Some(outcome) = run(&generated_events).outcome
            && !reached.contains(&outcome)
        {
            reached.push(outcome);
        }
    }
    reached.sort();
    assert_eq!(reached, Definition::default_definition().outcomes());
}

fn event_at(definition: &Definition, effect: &str, branch: Option<Branch>) -> Event {
    let step = definition.step_by_effect(effect.parse().unwrap()).unwrap();
    Event {
        step_id: step.id.clone(),
        actor_role: step.actor.clone(),
        actor_id: "someone".to_owned(),
        branch,
        detail: String::new(),
    }
}

/// Runs the approval route by effects until `stop_before` would be next, then
/// applies the event of `attempt`; returns its error code.
fn check_out_of_order(stop_before: &str, attempt: (&str, Option<Branch>), expected_code: &str) {
    let definition = Definition::default_definition();
    let calendar = Calendar::kazakhstan();
    let approval: [(&str, Option<Branch>); 14] = [
        ("log-in", None),
        ("open-form", None),
        ("look-up", None),
        ("data-present", Some(Branch::Yes)),
        ("sign-submission", None),
        ("send-application", None),
        ("register", None),
        ("accept", None),
        ("check-documents", Some(Branch::Yes)),
        ("draft-result", Some(Branch::Yes)),
        ("hand-over", None),
        ("sign-result", None),
        ("send-result", None),
        ("issue-result", None),
    ];
    let mut instance = Instance::start(definition, MONDAY_10_00);
    let mut now_ms = MONDAY_10_00;
    for (effect, branch) in approval.iter().take_while(|(effect, _)| *effect != stop_before) {
        now_ms += 60_000;
        if *effect == "hand-over" {
            let step = definition.step(instance.current.as_deref().unwrap()).unwrap();
            let event =
                Event { actor_role: step.handed_over_by.clone().unwrap(), ..event_at(definition, "sign-result", None) };
            instance = hand_over(definition, &instance, &event, now_ms).unwrap();
            continue;
        }
        instance =
            apply(definition, &instance, &event_at(definition, effect, *branch), now_ms, calendar).unwrap().instance;
    }
    let before = instance.clone();
    let (effect, branch) = attempt;
    let error = apply(definition, &instance, &event_at(definition, effect, branch), now_ms + 60_000, calendar)
        .expect_err("out of order");
    assert_eq!(error.code(), expected_code, "{effect} before {stop_before}: {error}");
    assert_eq!(instance, before);
}

#[test]
fn steps_out_of_the_regulation_order_are_refused() {
    // Approval before registration: the documents check at the very start, and just before process 7.
    check_out_of_order("log-in", ("check-documents", Some(Branch::Yes)), "process.not_current_step");
    check_out_of_order("register", ("check-documents", Some(Branch::Yes)), "process.not_current_step");
    // The result handed out before the head signed it.
    check_out_of_order("sign-result", ("issue-result", None), "process.not_current_step");
    check_out_of_order("sign-result", ("send-result", None), "process.not_current_step");
    // The head signs only a drafted result, and only once the executor has handed it over.
    check_out_of_order("draft-result", ("sign-result", None), "process.not_current_step");
    check_out_of_order("hand-over", ("sign-result", None), "process.not_handed_over");
}

#[test]
fn a_route_without_a_deciding_branch_ends_completed() {
    let definition = Definition::from_toml(
        r#"
[service]
code = "example.undecided"
start = "a"
provider = "p"
provider_ru = "п"
provider_kk = "п"
regulation = "r"
regulation_ru = "р"
regulation_kk = "р"
name_en = "e"
name_ru = "r"
name_kk = "k"

[actors]
clerk = { en = "clerk", ru = "р", kk = "к" }
[outcomes]
withdrawn = { en = "withdrawn", ru = "отозвана", kk = "кері қайтарылды" }

[[step]]
id = "a"
kind = "condition"
actor = "clerk"
title = { en = "a", ru = "р", kk = "к" }
yes = { next = "b" }
no = { next = "b" }

[[step]]
id = "b"
actor = "clerk"
title = { en = "b", ru = "р", kk = "к" }
"#,
    )
    .unwrap();
    assert!(definition.outcomes().is_empty());
    let event = |step: &str, branch| Event {
        step_id: step.to_owned(),
        actor_role: "clerk".to_owned(),
        actor_id: "clerk-1".to_owned(),
        branch,
        detail: String::new(),
    };
    let calendar = Calendar::kazakhstan();
    let instance = Instance::start(&definition, MONDAY_10_00);
    let instance =
        apply(&definition, &instance, &event("a", Some(Branch::No)), MONDAY_10_00, calendar).unwrap().instance;
    let transition = apply(&definition, &instance, &event("b", None), MONDAY_10_00, calendar).unwrap();
    assert_eq!(transition.follows, egov_regulation::Follows::End { outcome: "completed".to_owned() });
    let instance = transition.instance;
    assert_eq!(instance.outcome.as_deref(), Some("completed"));
}
