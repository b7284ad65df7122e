//! One application along every route of the regulation, over loopback gRPC
//! between the five participants.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, in_person, path, represented};
use egov_envelope::Checks;
use egov_proto::{Body, ServiceResult};
use prost::Message;

const APPROVAL: &[&str] = &[
    "process-1",
    "process-2",
    "process-3",
    "condition-1",
    "process-5",
    "process-6",
    "process-7",
    "action-1",
    "condition-2",
    "action-2",
    "action-3",
    "action-4",
    "process-9",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_runs_processes_1_to_9_and_actions_1_to_4() {
    let harness = Harness::start().await;
    let driven = harness.drive_with_result("approval-1", &in_person("850715300122")).await.unwrap();
    let application = driven.application;
    assert_eq!(application.outcome, "permitted");
    assert_eq!(path(&application), APPROVAL);
    assert!(application.registration_id.starts_with("RSHEP-"), "{}", application.registration_id);
    assert!(application.due_time_ms > 0, "the provider's term is set at registration");
    let by_step = |id: &str| application.path.iter().find(|s| s.step_id == id).unwrap();
    assert_eq!(by_step("process-1").actor_id, "operator-1");
    assert_eq!(by_step("process-5").actor_id, "operator-1");
    assert_eq!(by_step("action-1").actor_id, "office-1");
    assert_eq!(by_step("condition-2").actor_id, "specialist-1");
    assert_eq!(by_step("condition-2").branch, "yes");
    assert_eq!(by_step("action-2").actor_id, "executor-1");
    assert_eq!(by_step("action-2").branch, "yes");
    // Action 3 names both: the executor who handed the result over, then the head who signed it.
    let action_3 = by_step("action-3");
    assert_eq!(action_3.actor_id, "head-1");
    assert_eq!(
        (action_3.handed_over_by_role.as_str(), action_3.handed_over_by.as_str()),
        ("provider-executor", "executor-1")
    );
    assert!(
        action_3.started_time_ms <= action_3.handed_over_time_ms
            && action_3.handed_over_time_ms <= action_3.ended_time_ms
    );
    assert_eq!(application.notice.as_ref().map(|n| n.code.as_str()), Some("result.permitted"));
    for pair in application.path.windows(2) {
        assert!(pair[0].ended_time_ms <= pair[1].ended_time_ms, "steps are recorded in time order: {pair:?}");
    }

    // The result handed out is signed by the head; anyone with the trust registry can check it offline.
    let result = driven.result.expect("the signed result");
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    let verified = egov_envelope::open(&result, &harness.trust, 0, &checks).unwrap();
    assert_eq!(verified.header.sender_id, "head-1");
    assert_eq!(verified.header.body_type, ServiceResult::TYPE);
    let document = ServiceResult::decode(&result.body[..]).unwrap();
    assert_eq!((document.outcome.as_str(), document.application_id.as_str()), ("permitted", "approval-1"));
    // The applicant took a ticket of the electronic queue; process 9 happens once.
    assert!(application.queue_ticket.starts_with("R-"), "{}", application.queue_ticket);
    assert!(by_step("process-9").detail.starts_with(&format!("ticket {}, waited ", application.queue_ticket)));
    let operator = harness.operator().await;
    let ticket = operator.take_ticket("approval-1").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&ticket), Some("process.ended"));
    let again = operator.issue("approval-1").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&again), Some("process.ended"));
    let mut tampered = result.clone();
    {
        let mut bytes = tampered.body.to_vec();
        bytes[3] ^= 1;
        tampered.body = bytes.into();
    }
    assert!(egov_envelope::open(&tampered, &harness.trust, 0, &checks).is_err());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_in_the_documents_are_refused_by_process_8_signed_by_the_specialist_who_decided() {
    let harness = Harness::start().await;
    let mut plan = in_person("900101400122");
    plan.decision = egov_client::Decision::Refuse;
    plan.refusal_ground = "incomplete-package".to_owned();
    let driven = harness.drive_with_result("refusal-1", &plan).await.unwrap();
    let application = driven.application;
    assert_eq!(application.outcome, "refused");
    assert_eq!(
        path(&application),
        [
            "process-1",
            "process-2",
            "process-3",
            "condition-1",
            "process-5",
            "process-6",
            "process-7",
            "action-1",
            "condition-2",
            "process-8",
            "process-9"
        ]
    );
    let check = application.path.iter().find(|s| s.step_id == "condition-2").unwrap();
    assert_eq!((check.branch.as_str(), check.detail.as_str()), ("no", "incomplete-package"));
    // The ARM forms the refusal and hands it to the specialist who decided
    // condition 2, who signs it (paragraph 8: the EDS of the provider's official).
    let refusal = application.path.iter().find(|s| s.step_id == "process-8").unwrap();
    assert_eq!((refusal.actor_id.as_str(), refusal.handed_over_by.as_str()), (check.actor_id.as_str(), "rshep-astana"));
    let result = driven.result.unwrap();
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    let verified = egov_envelope::open(&result, &harness.trust, 0, &checks).unwrap();
    assert_eq!(
        (verified.header.sender_id.as_str(), verified.sender_role.as_str()),
        (check.actor_id.as_str(), "provider-specialist")
    );
    let document = ServiceResult::decode(&result.body[..]).unwrap();
    assert_eq!((document.outcome.as_str(), document.refusal_ground.as_str()), ("refused", "incomplete-package"));
    let notice = application.notice.unwrap();
    assert_eq!(notice.code, "process-8.refusal");
    assert_eq!(Some(&notice), document.notice.as_ref());
    let ground = egov_regulation::Definition::default_definition().refusal_ground("incomplete-package").unwrap();
    for (text, ground) in [(&notice.text_kk, &ground.kk), (&notice.text_ru, &ground.ru), (&notice.text_en, &ground.en)]
    {
        assert!(text.contains(ground.as_str()) && text.len() > ground.len() + 10, "{text}");
    }
    assert!(notice.text_en.contains("violations in the documents"), "{}", notice.text_en);
    harness.stop().await;
}

/// `egov staff process --decision refuse`, and `egov staff act` step by step,
/// take a refusal at condition 2 through: the specialist who decided signs
/// process 8's refusal the ARM drafted, and the ARM's part ends. Then process 9
/// from the command line: `egov operator ticket --centre`, `issue` refused
/// before the ticket is called, `call-next --window` (twice: the same ticket),
/// `issue`, and `call-next` on an empty queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egov_staff_process_signs_process_8_as_the_specialist_who_decided() {
    let harness = Harness::start().await;
    let topology = harness.topology().clone();
    let addresses = [
        ("EGOV_WORKSTATION", topology.workstation.clone()),
        ("EGOV_GATEWAY", topology.gateway.clone()),
        ("EGOV_INDIVIDUALS", topology.individuals.clone()),
        ("EGOV_NOTARY", topology.notary.clone()),
        ("EGOV_REGIONAL", topology.regional.clone()),
    ];
    let keys = harness.temp.path().join("keys");
    let egov = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_egov"));
        command.args(args).arg("--keys").arg(&keys).envs(addresses.clone()).env_remove("EGOV_RETRY_SECONDS");
        command.output().unwrap()
    };
    let said = |output: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    };
    let applied = tokio::task::block_in_place(|| {
        egov(&["operator", "apply", "--id", "cli-refusal-1", "--applicant", "900101400122"])
    });
    assert!(applied.status.success(), "{}", said(&applied));
    let staff = harness.staff();
    let registration = common::eventually("the registration at the ARM", async || {
        staff.registration_of("cli-refusal-1").await.ok()?.application.map(|a| a.registration_id)
    })
    .await;
    let processed = tokio::task::block_in_place(|| {
        egov(&["staff", "process", &registration, "--decision", "refuse", "--ground", "incomplete-package"])
    });
    assert!(processed.status.success(), "{}", said(&processed));
    let done = staff.registration(&registration).await.unwrap();
    assert!(done.next_actor.is_empty(), "the ARM's part has ended: {:?}", done.next_actor);
    let application = done.application.unwrap();
    let refusal = application.path.iter().find(|s| s.step_id == "process-8").unwrap();
    assert_eq!((refusal.actor_id.as_str(), refusal.handed_over_by.as_str()), ("specialist-1", "rshep-astana"));
    assert!(done.signed_result.is_some(), "the signed refusal");

    // One step at a time, as the README does it: process 8 is the specialist's `staff act` after the "no".
    let applied = tokio::task::block_in_place(|| {
        egov(&["operator", "apply", "--id", "cli-refusal-2", "--applicant", "900101400122"])
    });
    assert!(applied.status.success(), "{}", said(&applied));
    let registration = common::eventually("the second registration at the ARM", async || {
        staff.registration_of("cli-refusal-2").await.ok()?.application.map(|a| a.registration_id)
    })
    .await;
    for args in [
        &["--as", "office-1"][..],
        &["--as", "specialist-1", "--decision", "no", "--ground", "incomplete-package"],
        &["--as", "specialist-1"],
    ] {
        let acted = tokio::task::block_in_place(|| egov(&[&["staff", "act", &registration][..], args].concat()));
        assert!(acted.status.success(), "{args:?}: {}", said(&acted));
    }
    let done = staff.registration(&registration).await.unwrap();
    assert!(done.next_actor.is_empty() && done.signed_result.is_some(), "signed and sent: {:?}", done.next_actor);

    // Process 9 from the command line, as the README does it: a ticket at a centre, the operator's call of the
    // next ticket to their window, the hand-over of the ticket called to them.
    let operator = harness.operator().await;
    common::eventually("the refusal at the workstation", async || {
        operator.application("cli-refusal-2").await.ok().filter(|a| a.current_step == "process-9")
    })
    .await;
    let run = |args: &[&str]| tokio::task::block_in_place(|| egov(args));
    let ticket = run(&["operator", "ticket", "cli-refusal-2", "--centre", "hall-cli"]);
    assert!(ticket.status.success(), "{}", said(&ticket));
    assert!(said(&ticket).contains("at centre hall-cli, 0 ahead"), "{}", said(&ticket));
    let early = run(&["operator", "issue", "cli-refusal-2"]);
    assert!(!early.status.success() && said(&early).contains("workstation.ticket_not_called"), "{}", said(&early));
    for _ in 0..2 {
        // Called, then called again before serving: the same ticket.
        let called = run(&["operator", "call-next", "--centre", "hall-cli", "--window", "4"]);
        assert!(called.status.success(), "{}", said(&called));
        let text = said(&called);
        assert!(text.contains(" called to window 4 at ") && text.contains("application cli-refusal-2"), "{text}");
        assert!(text.contains("-0001") && text.contains("0 still waiting"), "{text}");
    }
    let issued = run(&["operator", "issue", "cli-refusal-2"]);
    assert!(issued.status.success(), "{}", said(&issued));
    assert!(said(&issued).contains("ended: refused"), "{}", said(&issued));
    let empty = run(&["operator", "call-next", "--centre", "hall-cli"]);
    assert!(empty.status.success() && said(&empty).contains("no ticket waits at centre hall-cli"), "{}", said(&empty));
    harness.stop().await;
}

/// Process 8 waits on the specialist who decided condition 2: the ARM drafts
/// the refusal, only that official signs it, and only its exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_8_waits_on_the_specialists_signature_of_the_exact_refusal() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let staff = harness.staff();
    let keys = harness.staff_keys();
    operator.open_form("unsigned-8", &harness.definition.service.code, "850715300122", None).await.unwrap();
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    operator.submit("unsigned-8", documents).await.unwrap();
    let mut changes = operator.watch("unsigned-8").await.unwrap();
    let registration_id = loop {
        let application = changes.message().await.unwrap().unwrap().application.unwrap();
        if !application.registration_id.is_empty() {
            break application.registration_id;
        }
    };
    let registration = staff.registration(&registration_id).await.unwrap();
    let registration = staff
        .act(&keys["provider-office"], &registration, "action-1", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap();
    let registration = staff
        .act(&keys["provider-specialist"], &registration, "condition-2", egov_proto::Decision::No, "incomplete-package")
        .await
        .unwrap();
    let application = registration.application.clone().unwrap();
    assert_eq!(
        (application.current_step.as_str(), registration.next_actor.as_str()),
        ("process-8", "provider-specialist")
    );
    let draft = ServiceResult::decode(registration.draft_result.as_slice()).unwrap();
    assert_eq!((draft.outcome.as_str(), draft.notice.unwrap().code.as_str()), ("refused", "process-8.refusal"));
    // A staff step does not end it: only the signature does.
    let as_step = staff
        .act(&keys["provider-specialist"], &registration, "process-8", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(egov_runtime::reason_of(&as_step), Some("regional.use_sign_result"), "{as_step}");
    // The head may not sign it; nor may the specialist sign other bytes.
    let by_head = staff.sign(&keys["provider-head"], &registration).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&by_head), Some("process.wrong_actor"), "{by_head}");
    let mut altered = registration.clone();
    let mut other = ServiceResult::decode(registration.draft_result.as_slice()).unwrap();
    other.outcome = "permitted".to_owned();
    altered.draft_result = other.encode_to_vec();
    let other_bytes = staff.sign(&keys["provider-specialist"], &altered).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&other_bytes), Some("regional.draft_mismatch"), "{other_bytes}");
    // Signed by the specialist, the refusal goes back to the State Corporation, which accepts it.
    let signed = staff.sign(&keys["provider-specialist"], &registration).await.unwrap();
    assert!(signed.next_actor.is_empty(), "the provider's part has ended");
    let at_sc = loop {
        let application = changes.message().await.unwrap().unwrap().application.unwrap();
        if application.path.iter().any(|s| s.step_id == "process-8") {
            break application;
        }
    };
    assert_eq!(at_sc.notice.unwrap().code, "process-8.refusal");
    drop((changes, staff, operator));
    harness.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reasoned_refusal_is_decided_at_action_2_after_the_documents_complied() {
    let harness = Harness::start().await;
    let mut plan = in_person("900101400122");
    plan.result_decision = egov_client::Decision::Refuse;
    plan.result_refusal_ground = "harm-to-child".to_owned();
    let driven = harness.drive_with_result("refusal-2", &plan).await.unwrap();
    let application = driven.application;
    assert_eq!(application.outcome, "refused");
    assert_eq!(path(&application), APPROVAL);
    let by_step = |id: &str| application.path.iter().find(|s| s.step_id == id).unwrap();
    assert_eq!(by_step("condition-2").branch, "yes");
    assert_eq!((by_step("action-2").branch.as_str(), by_step("action-2").detail.as_str()), ("no", "harm-to-child"));
    let result = driven.result.unwrap();
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    assert_eq!(egov_envelope::open(&result, &harness.trust, 0, &checks).unwrap().header.sender_id, "head-1");
    let document = ServiceResult::decode(&result.body[..]).unwrap();
    assert_eq!((document.outcome.as_str(), document.refusal_ground.as_str()), ("refused", "harm-to-child"));
    let notice = application.notice.unwrap();
    assert_eq!(notice.code, "result.refused");
    assert!(notice.text_en.contains("paragraph 10") && notice.text_en.contains("harm the child"), "{}", notice.text_en);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ground_of_the_other_decision_is_refused_and_changes_nothing() {
    let harness = Harness::start().await;
    // A paragraph-10 ground at the documents check, and a documents ground at action 2.
    let mut at_check = in_person("900101400122");
    at_check.decision = egov_client::Decision::Refuse;
    at_check.refusal_ground = "harm-to-child".to_owned();
    let mut at_draft = in_person("900101400122");
    at_draft.result_decision = egov_client::Decision::Refuse;
    at_draft.result_refusal_ground = "incomplete-package".to_owned();
    for (id, plan, waits_on) in [("wrong-ground-1", at_check, "condition-2"), ("wrong-ground-2", at_draft, "action-2")]
    {
        let error = harness.drive(id, &plan).await.unwrap_err();
        assert_eq!(error.reason(), Some("regional.unexpected_refusal_ground"), "{id}: {error}");
        // The ARM's registration still waits on the step (the State Corporation sees it a moment later).
        let registration_id = harness.operator().await.application(id).await.unwrap().registration_id;
        let registration = harness.staff().registration(&registration_id).await.unwrap();
        let application = registration.application.unwrap();
        assert_eq!((application.current_step.as_str(), application.outcome.as_str()), (waits_on, ""), "{id}");
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_signs_only_after_the_executor_has_handed_the_result_over() {
    use egov_proto::Decision;
    let harness = Harness::start().await;
    // The route stops at action 2: no executor's key.
    let operator = harness.operator().await;
    let staff = harness.staff();
    let mut staff_keys = harness.staff_keys();
    let executor = staff_keys.remove("provider-executor").unwrap();
    let route = egov_client::Route {
        definition: &harness.definition,
        operator: &operator,
        staff: &staff,
        staff_keys: &staff_keys,
        patience: egov_client::Patience::default(),
        pacer: &egov_client::RealTime,
    };
    let stopped = egov_client::drive(&route, "handover-1", &in_person("850715300122")).await.unwrap_err();
    assert!(
        matches!(stopped, egov_client::RouteError::MissingSigner(ref role) if role == "provider-executor"),
        "{stopped}"
    );
    let registration_id = operator.application("handover-1").await.unwrap().registration_id;
    let registration = staff.registration(&registration_id).await.unwrap();
    let registration = staff.act(&executor, &registration, "action-2", Decision::Yes, "").await.unwrap();
    assert_eq!(registration.next_actor, "provider-executor", "action 3 begins with the executor's hand-over");
    let head = &staff_keys["provider-head"];
    let early = staff.sign(head, &registration).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&early), Some("process.not_handed_over"));
    let by_head = staff.act(head, &registration, "action-3", Decision::Unspecified, "").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&by_head), Some("regional.use_sign_result"));
    let specialist = &staff_keys["provider-specialist"];
    let by_specialist = staff.act(specialist, &registration, "action-3", Decision::Unspecified, "").await.unwrap_err();
    assert_eq!(
        (by_specialist.code(), egov_runtime::reason_of(&by_specialist)),
        (tonic::Code::PermissionDenied, Some("process.wrong_actor")),
        "{by_specialist:?}"
    );
    let handed = staff.act(&executor, &registration, "action-3", Decision::Unspecified, "").await.unwrap();
    assert_eq!(handed.next_actor, "provider-head");
    let twice = staff.act(&executor, &handed, "action-3", Decision::Unspecified, "").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&twice), Some("process.handed_over_already"));
    let signed = staff.sign(head, &handed).await.unwrap();
    let application = signed.application.unwrap();
    let action_3 = application.path.iter().find(|s| s.step_id == "action-3").unwrap();
    assert_eq!((action_3.actor_id.as_str(), action_3.handed_over_by.as_str()), ("head-1", "executor-1"));
    harness.stop().await;
}

async fn assert_process_4(harness: &Harness, application_id: &str, plan: &egov_client::ApplicationPlan, notice: &str) {
    let application = harness.drive(application_id, plan).await.unwrap();
    assert_eq!(application.outcome, "data-unavailable");
    assert_eq!(path(&application), ["process-1", "process-2", "process-3", "condition-1", "process-4"]);
    let notice_sent = application.notice.as_ref().unwrap();
    assert_eq!(notice_sent.code, notice);
    assert!(!notice_sent.text_kk.is_empty() && !notice_sent.text_ru.is_empty() && !notice_sent.text_en.is_empty());
    assert!(application.registration_id.is_empty());
    assert!(harness.staff().queue("").await.unwrap().is_empty(), "nothing reaches the regional gateway ARM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applicant_absent_from_individuals_gets_the_process_4_notice() {
    let harness = Harness::start().await;
    assert_process_4(&harness, "absent-1", &in_person("880101300111"), "process-4.applicant-not-found").await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notarised_power_absent_from_the_notarial_registry_gets_the_process_4_notice() {
    let harness = Harness::start().await;
    let plan = represented("920611400773", "870322300457", true, "NP-0000-9999");
    assert_process_4(&harness, "poa-absent-1", &plan, "process-4.power-of-attorney-not-found").await;
    let services: Vec<String> = harness
        .gateway_log("poa-absent-1")
        .await
        .iter()
        .map(|m| egov_proto::EnvelopeHeader::decode(&m.envelope.as_ref().unwrap().header[..]).unwrap().service_id)
        .collect();
    assert!(services.iter().any(|s| s == "enis.poa.check.v1"), "{services:?}");
    harness.stop().await;
}

/// A revocation recorded as a date only: revoked from 00:00 of that day by
/// default, valid through that day under the registry's other setting; the
/// process-4 notice says which reading was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_only_revocation_is_read_by_the_registrys_setting_and_the_notice_says_which() {
    use egov_runtime::Clock as _;
    let calendar = egov_regulation::Calendar::kazakhstan();
    let today = egov_regulation::instance::to_local(calendar, egov_runtime::SystemClock.now_ms()).unwrap().date_naive();
    let fixtures = tempfile::tempdir().unwrap();
    let write = |setting: Option<&str>| {
        let dir = fixtures.path().join(setting.unwrap_or("default"));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["individuals.json", "operators.json"] {
            std::fs::copy(common::fixtures_dir().join(file), dir.join(file)).unwrap();
        }
        let mut powers: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(common::fixtures_dir().join("powers_of_attorney.json")).unwrap(),
        )
        .unwrap();
        powers["powers_of_attorney"].as_array_mut().unwrap().push(serde_json::json!({
            "number": "NP-TODAY-0001", "issued_on": "2026-01-15", "notary": "Notary Sadykova A. K.",
            "principal_iin": "920611400773", "attorney_iin": "870322300457", "scope": [],
            "valid_until": "2099-12-31", "revoked_on": today.to_string()
        }));
        if let Some(setting) = setting {
            powers["date_only_revocation"] = serde_json::json!(setting);
        }
        std::fs::write(dir.join("powers_of_attorney.json"), powers.to_string()).unwrap();
        dir
    };
    let plan = represented("920611400773", "870322300457", true, "NP-TODAY-0001");
    // The default: revoked since 00:00 today, and the notice says so.
    let strict = write(None);
    let harness = Harness::start_with(|config| config.fixtures_dir = strict).await;
    assert_process_4(&harness, "poa-date-1", &plan, "process-4.power-of-attorney-invalid").await;
    let notice = harness.operator().await.application("poa-date-1").await.unwrap().notice.unwrap();
    let reading = harness.definition.notice("process-4.revocation-from-start-of-day").unwrap();
    for (text, said) in [(&notice.text_en, &reading.en), (&notice.text_ru, &reading.ru), (&notice.text_kk, &reading.kk)]
    {
        assert!(text.ends_with(said.as_str()), "{text}");
    }
    assert!(notice.text_en.contains("00:00 of that day"), "{}", notice.text_en);
    // A revocation recorded with its time says nothing of a reading.
    let timed = represented("920611400773", "870322300457", true, "NP-2026-0210");
    assert_process_4(&harness, "poa-timed-1", &timed, "process-4.power-of-attorney-invalid").await;
    let notice = harness.operator().await.application("poa-timed-1").await.unwrap().notice.unwrap();
    assert!(!notice.text_en.contains("date only"), "{}", notice.text_en);
    harness.stop().await;
    // The other reading: still valid today.
    let lenient = write(Some("from-next-day"));
    let harness = Harness::start_with(|config| config.fixtures_dir = lenient).await;
    let application = harness.drive("poa-date-2", &plan).await.unwrap();
    assert_eq!(application.outcome, "permitted");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notarised_power_of_attorney_found_lets_the_representative_apply() {
    let harness = Harness::start().await;
    let application =
        harness.drive("poa-valid-1", &represented("920611400773", "870322300457", true, "NP-2026-0001")).await.unwrap();
    assert_eq!(application.outcome, "permitted");
    assert_eq!(path(&application), APPROVAL);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_of_attorney_not_notarised_is_not_looked_up() {
    let harness = Harness::start().await;
    let application =
        harness.drive("poa-other-1", &represented("920611400773", "830303300901", false, "")).await.unwrap();
    assert_eq!(application.outcome, "permitted");
    let services: Vec<String> = harness
        .gateway_log("poa-other-1")
        .await
        .iter()
        .map(|m| egov_proto::EnvelopeHeader::decode(&m.envelope.as_ref().unwrap().header[..]).unwrap().service_id)
        .collect();
    assert!(services.iter().any(|s| s == "gbdfl.person.lookup.v1"), "{services:?}");
    assert!(!services.iter().any(|s| s == "enis.poa.check.v1"), "no notarial look-up: {services:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_iin_is_rejected_at_the_workstation_and_nothing_is_stored() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let error =
        operator.open_form("bad-iin-1", &harness.definition.service.code, "850715300123", None).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(egov_runtime::reason_of(&error), Some("iin.check_digit"));
    assert!(error.message().starts_with("iin.check_digit: "), "{}", error.message());
    let missing = operator.application("bad-iin-1").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(harness.gateway_log("bad-iin-1").await.is_empty(), "nothing reached the gateway");
    // The server keeps serving.
    assert_eq!(harness.drive("after-bad-iin", &in_person("850715300122")).await.unwrap().outcome, "permitted");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forms_are_refused_with_their_reason_codes_and_change_nothing() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    let representative = |iin: &str, kind: egov_proto::PowerOfAttorneyKind, number: &str| egov_proto::Representative {
        iin: iin.to_owned(),
        kind: kind as i32,
        power_of_attorney_number: number.to_owned(),
        power_of_attorney_issued_on: String::new(),
    };
    use egov_proto::PowerOfAttorneyKind::{Notarised, Other};
    type Case<'a> = (&'a str, &'a str, &'a str, Option<egov_proto::Representative>, tonic::Code, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown-service",
            "kz.nowhere.v0",
            "850715300122",
            None,
            tonic::Code::NotFound,
            "workstation.unknown_service",
        ),
        ("short-iin", &service, "85071530012", None, tonic::Code::InvalidArgument, "iin.length"),
        (
            "self",
            &service,
            "920611400773",
            Some(representative("920611400773", Notarised, "NP-2026-0001")),
            tonic::Code::InvalidArgument,
            "counter.self_representation",
        ),
        (
            "no-number",
            &service,
            "920611400773",
            Some(representative("870322300457", Notarised, "")),
            tonic::Code::InvalidArgument,
            "workstation.missing_field",
        ),
        (
            "other-with-data",
            &service,
            "920611400773",
            Some(representative("870322300457", Other, "NP-2026-0001")),
            tonic::Code::InvalidArgument,
            "workstation.power_of_attorney_data_not_empty",
        ),
        (
            "bad-attorney-iin",
            &service,
            "920611400773",
            Some(representative("870322300458", Notarised, "NP-2026-0001")),
            tonic::Code::InvalidArgument,
            "iin.check_digit",
        ),
        ("bad id!", &service, "850715300122", None, tonic::Code::InvalidArgument, "request.bad_id"),
    ];
    for (application_id, service_code, iin, representative, code, reason) in cases {
        let error = operator.open_form(application_id, service_code, iin, representative).await.unwrap_err();
        assert_eq!(
            (error.code(), egov_runtime::reason_of(&error)),
            (code, Some(reason)),
            "{application_id}: {}",
            error.message()
        );
        if reason == "request.bad_id" {
            // No participant takes such an id, to store or to read.
            let read = operator.application(application_id).await.unwrap_err();
            assert_eq!(egov_runtime::reason_of(&read), Some("request.bad_id"), "{application_id}");
            continue;
        }
        assert_eq!(
            operator.application(application_id).await.unwrap_err().code(),
            tonic::Code::NotFound,
            "{application_id} stored nothing"
        );
        assert!(harness.gateway_log(application_id).await.is_empty(), "{application_id}: nothing reached the gateway");
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_package_is_refused_at_reception_and_nothing_is_sent() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let opened =
        operator.open_form("incomplete-1", &harness.definition.service.code, "850715300122", None).await.unwrap();
    assert_eq!(opened.application.unwrap().current_step, "process-5");
    let only_form = common::documents(&["application-form"]).iter().map(egov_client::DocumentPlan::to_proto).collect();
    let error = operator.submit("incomplete-1", only_form).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&error), Some("workstation.incomplete_package"));
    let application = operator.application("incomplete-1").await.unwrap();
    assert_eq!(application.current_step, "process-5", "the application waits for a complete package");
    assert!(harness.staff().queue("").await.unwrap().is_empty());
    // A page count of -1, sent as the unsigned 4294967295, is nonsense, not a document.
    let mut documents: Vec<egov_proto::AttachedDocument> =
        common::documents(&["application-form", "identity-document"])
            .iter()
            .map(egov_client::DocumentPlan::to_proto)
            .collect();
    documents[0].pages = u32::MAX;
    let error = operator.submit("incomplete-1", documents).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&error), Some("workstation.bad_document"), "{}", error.message());
    assert_eq!(operator.application("incomplete-1").await.unwrap().current_step, "process-5");
    harness.stop().await;
}

/// The refusal at the counter gives the applicant a notice signed by the
/// workstation, in the three languages, naming what is missing; the
/// application is left as it was. A resend of the refused submission is
/// checked again (a refusal is not remembered) and gets the same notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_package_gets_the_applicant_a_signed_notice_of_what_is_missing() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    operator.open_form("incomplete-2", &harness.definition.service.code, "850715300122", None).await.unwrap();
    let before = operator.application("incomplete-2").await.unwrap();
    let logged_before = harness.gateway_log("incomplete-2").await.len();
    let only_form: Vec<egov_proto::AttachedDocument> =
        common::documents(&["application-form"]).iter().map(egov_client::DocumentPlan::to_proto).collect();
    let error = operator.submit("incomplete-2", only_form.clone()).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert_eq!(egov_runtime::reason_of(&error), Some("workstation.incomplete_package"));

    // Signed by the workstation: checked with the trust registry alone.
    let counter = egov_client::counter_notice(&error, &harness.trust).unwrap().expect("the refusal carries a notice");
    let header = &counter.verified.header;
    assert_eq!(header.sender_id, "sc-workstation");
    assert_eq!(counter.verified.key_id, harness.signer("sc-workstation").key_id());
    assert_eq!(header.recipient_id, "operator-1");
    assert_eq!(header.correlation_id, "incomplete-2");
    assert_eq!(header.service_id, egov_envelope::services::FORM_SUBMIT);
    assert_eq!(header.body_type, egov_proto::Notice::TYPE);
    let notice = &counter.notice;
    assert_eq!(notice.code, "counter.incomplete-package");
    let document = |code: &str| harness.definition.documents.iter().find(|d| d.code == code).unwrap();
    let (missing, attached) = (document("identity-document"), document("application-form"));
    for (text, missing, attached) in [
        (&notice.text_kk, &missing.kk, &attached.kk),
        (&notice.text_ru, &missing.ru, &attached.ru),
        (&notice.text_en, &missing.en, &attached.en),
    ] {
        assert!(text.contains(missing.as_str()), "{text:?} names the missing {missing:?}");
        assert!(!text.contains(attached.as_str()), "{text:?} does not name the attached {attached:?}");
    }
    let mut tampered = counter.envelope.clone();
    {
        let mut bytes = tampered.body.to_vec();
        bytes[3] ^= 1;
        tampered.body = bytes.into();
    }
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    assert!(egov_envelope::open(&tampered, &harness.trust, 0, &checks).is_err());

    // Nothing changed, nothing was sent.
    assert_eq!(operator.application("incomplete-2").await.unwrap(), before);
    assert_eq!(before.current_step, "process-5");
    assert!(harness.staff().queue("").await.unwrap().is_empty());
    assert_eq!(harness.gateway_log("incomplete-2").await.len(), logged_before, "only process 3's look-ups");

    // The same signed submission sent twice is refused twice, with the same notice.
    let mut workstation = egov_proto::workstation_service_client::WorkstationServiceClient::new(
        egov_runtime::Topology::channel(&harness.topology().workstation).unwrap(),
    );
    let session = workstation
        .login(egov_proto::LoginRequest {
            login: "operator-1".to_owned(),
            password: "operator-1-password".to_owned(),
            client_time_ms: egov_runtime::Clock::now_ms(&egov_runtime::SystemClock),
        })
        .await
        .unwrap()
        .into_inner();
    let signer = harness.signer("operator-1");
    let submission = egov_proto::ApplicationSubmission {
        session_id: session.session_id,
        application_id: "incomplete-2".to_owned(),
        documents: only_form,
    };
    let envelope = signer.seal(
        &signer.header(
            "resent-submission-1",
            "incomplete-2",
            egov_envelope::services::FORM_SUBMIT,
            "sc-workstation",
            egov_runtime::Clock::now_ms(&egov_runtime::SystemClock),
            egov_proto::MessageType::Request,
        ),
        &submission,
    );
    let mut notices = Vec::new();
    for _ in 0..2 {
        let request = egov_proto::SubmitApplicationRequest { envelope: Some(envelope.clone()) };
        let error = workstation.submit_application(request).await.unwrap_err();
        assert_eq!(egov_runtime::reason_of(&error), Some("workstation.incomplete_package"));
        notices.push(egov_client::counter_notice(&error, &harness.trust).unwrap().unwrap().notice);
    }
    assert_eq!(notices[0], notices[1]);
    assert_eq!(&notices[0], notice);
    assert_eq!(operator.application("incomplete-2").await.unwrap(), before);
    assert_eq!(harness.gateway_log("incomplete-2").await.len(), logged_before);
    harness.stop().await;
}

/// A package with large scans: the documents travel once (in the operator's
/// signed submission), so a scan of 60 % of the body limit reaches the ARM
/// (twice it would not pass the gateway); a package the gateway could not
/// carry on is refused at the submission, and nothing is sent. The limit is
/// 1 MiB here instead of 10 MiB, so that the test moves little data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_scans_travel_once_and_what_the_route_cannot_carry_is_refused_at_submission() {
    const LIMIT: usize = 1 << 20;
    let harness = Harness::start_with(|config| config.checks.max_body_bytes = LIMIT).await;
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    let scan = |kind: &str, bytes: usize| {
        egov_client::DocumentPlan { kind: kind.to_owned(), title: String::new(), pages: 1, content: "%".repeat(bytes) }
            .to_proto()
    };
    operator.open_form("large-1", &service, "850715300122", None).await.unwrap();
    operator
        .submit("large-1", vec![scan("application-form", LIMIT * 6 / 10), scan("identity-document", 1000)])
        .await
        .unwrap();
    let staff = harness.staff();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let registration = loop {
        let application = operator.application("large-1").await.unwrap();
        if !application.registration_id.is_empty() {
            break staff.registration(&application.registration_id).await.unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "not registered; at {}", application.current_step);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let kinds: Vec<&str> = registration.documents.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["application-form", "identity-document"], "the ARM lists the signed submission's documents");

    // Scans just under the limit: the submission itself is within it, but its delivery (which wraps
    // it, with the applicant's record and the path) would be over the gateway's: refused now, not
    // parked later.
    operator.open_form("large-2", &service, "900101400122", None).await.unwrap();
    let status = operator
        .submit("large-2", vec![scan("application-form", LIMIT - 510), scan("identity-document", 10)])
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), egov_runtime::reason_of(&status)),
        (tonic::Code::ResourceExhausted, Some("envelope.too_large")),
        "{}",
        status.message()
    );
    let application = operator.application("large-2").await.unwrap();
    assert_eq!(application.current_step, "process-5", "nothing changed: the operator may submit smaller scans");
    harness.stop().await;
}

/// The operator's client lost the answer to its form: sending the same signed
/// form again gets the answer the workstation gave (the look-ups are not done
/// twice), and the application goes on; a new form for the same id is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_form_whose_answer_was_lost_is_answered_again_and_the_application_goes_on() {
    use egov_proto::workstation_service_client::WorkstationServiceClient;
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let mut session = egov_proto::workstation_service_client::WorkstationServiceClient::new(
        egov_runtime::Topology::channel(&harness.topology().workstation).unwrap(),
    );
    let login = session
        .login(egov_proto::LoginRequest {
            login: "operator-1".to_owned(),
            password: "operator-1-password".to_owned(),
            client_time_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let signer = harness.signer("operator-1");
    let form = |message_id: &str| {
        let header = signer.header(
            message_id,
            "resumed-1",
            egov_envelope::services::FORM_OPEN,
            egov_runtime::ids::SC_WORKSTATION,
            egov_runtime::Clock::now_ms(&egov_runtime::SystemClock),
            egov_proto::MessageType::Request,
        );
        let body = egov_proto::ApplicationForm {
            session_id: login.session_id.clone(),
            service_code: harness.definition.service.code.clone(),
            applicant_iin: "850715300122".to_owned(),
            representative: None,
        };
        egov_proto::OpenFormRequest { envelope: Some(signer.seal(&header, &body)) }
    };
    let mut workstation: WorkstationServiceClient<_> = session.clone();
    let signed = form("form-1");
    let first = workstation.open_form(signed.clone()).await.unwrap().into_inner();
    let again = workstation.open_form(signed).await.unwrap().into_inner();
    assert_eq!(first, again, "the same answer, byte for byte");
    let gateway_log = harness.gateway_log("resumed-1").await;
    assert_eq!(gateway_log.iter().filter(|m| m.envelope.is_some()).count(), 2, "one look-up, logged in and out");
    let status = workstation.open_form(form("form-2")).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.application_exists"));
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    let submitted = operator.submit("resumed-1", documents).await.unwrap();
    assert_ne!(submitted.application.unwrap().current_step, "process-5", "the application goes on");
    // The hand-over before the result has come is refused as such, wherever the provider is, and so is a ticket.
    let status = operator.take_ticket("resumed-1").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.result_not_ready"), "{}", status.message());
    let status = operator.issue("resumed-1").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.result_not_ready"), "{}", status.message());
    harness.stop().await;
}

/// A form opened and never submitted is withdrawn by its operator: the
/// application ends "withdrawn" and nothing follows; a submitted one is the
/// provider's and cannot be withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_never_submitted_is_withdrawn_and_a_submitted_one_is_not() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let service = harness.definition.service.code.clone();
    operator.open_form("withdrawn-1", &service, "850715300122", None).await.unwrap();
    let withdrawn = operator.withdraw("withdrawn-1", "the applicant left").await.unwrap().application.unwrap();
    assert_eq!((withdrawn.outcome.as_str(), withdrawn.current_step.as_str()), ("withdrawn", ""));
    assert_eq!(path(&withdrawn), ["process-1", "process-2", "process-3", "condition-1"], "no step is invented");
    let documents = || {
        common::documents(&["application-form", "identity-document"])
            .iter()
            .map(egov_client::DocumentPlan::to_proto)
            .collect()
    };
    let status = operator.submit("withdrawn-1", documents()).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("process.ended"), "{}", status.message());
    let status = operator.withdraw("withdrawn-1", "again").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("process.ended"), "{}", status.message());

    operator.open_form("submitted-1", &service, "900101400122", None).await.unwrap();
    operator.submit("submitted-1", documents()).await.unwrap();
    let status = operator.withdraw("submitted-1", "too late").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.not_withdrawable"), "{}", status.message());
    assert_eq!(operator.application("submitted-1").await.unwrap().outcome, "", "it goes on at the provider");
    harness.stop().await;
}

/// `WatchApplication` streams the application now and after each change,
/// and ends with it; an unknown application is refused as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_an_application_streams_each_change_until_it_ends() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    operator.open_form("watched-1", &harness.definition.service.code, "850715300122", None).await.unwrap();
    let mut changes = operator.watch("watched-1").await.unwrap();
    let now = changes.message().await.unwrap().unwrap().application.unwrap();
    assert_eq!(now.current_step, "process-5");
    operator.withdraw("watched-1", "watched").await.unwrap();
    let after = changes.message().await.unwrap().unwrap().application.unwrap();
    assert_eq!(after.outcome, "withdrawn");
    assert!(changes.message().await.unwrap().is_none(), "the stream ends with the application");
    let status = operator.watch("nobody").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.unknown_application"));
    harness.stop().await;
}

/// The staff queue is read from an index that every step keeps: each
/// registration is in the queue of whom it waits on, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_queue_follows_each_step() {
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let staff = harness.staff();
    let keys = harness.staff_keys();
    let queued = async |actor: &str| -> Vec<String> {
        let registrations = staff.queue(actor).await.unwrap();
        registrations.into_iter().map(|r| r.application.unwrap().application_id).collect()
    };
    operator.open_form("queued-1", &harness.definition.service.code, "850715300122", None).await.unwrap();
    let documents = common::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    operator.submit("queued-1", documents).await.unwrap();
    let mut changes = operator.watch("queued-1").await.unwrap();
    let registration_id = loop {
        let application = changes.message().await.unwrap().unwrap().application.unwrap();
        if !application.registration_id.is_empty() {
            break application.registration_id;
        }
    };
    assert_eq!(queued("provider-office").await, ["queued-1"]);
    assert!(queued("provider-specialist").await.is_empty());
    let registration = staff.registration(&registration_id).await.unwrap();
    staff
        .act(&keys["provider-office"], &registration, "action-1", egov_proto::Decision::Unspecified, "")
        .await
        .unwrap();
    assert!(queued("provider-office").await.is_empty(), "it left the office's queue");
    assert_eq!(queued("provider-specialist").await, ["queued-1"]);
    assert_eq!(queued("").await, ["queued-1"]);

    drop((changes, staff, operator));
    harness.stack.stop().await;
}

/// `GetMessages` reads the gateway's log by application and by recipient from
/// the log's index: each entry that names the application, and each message
/// the gateway took for the recipient, oldest first, up to the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_messages_are_listed_by_application_and_by_recipient() {
    use egov_proto::gateway_service_client::GatewayServiceClient;
    let harness = Harness::start().await;
    for id in ["listed-1", "listed-2"] {
        harness.drive(id, &in_person("850715300122")).await.unwrap();
    }
    let header = |m: &egov_proto::LoggedMessage| {
        egov_proto::EnvelopeHeader::decode(&m.envelope.as_ref().unwrap().header[..]).unwrap()
    };
    let first = harness.gateway_log("listed-1").await;
    assert!(first.len() >= 6, "the look-up, the hand-over, the reports and the result: {}", first.len());
    assert!(first.iter().all(|m| header(m).correlation_id == "listed-1"));
    assert!(first.windows(2).all(|pair| pair[0].sequence < pair[1].sequence), "oldest first");
    let mut gateway = GatewayServiceClient::new(egov_runtime::Topology::channel(&harness.topology().gateway).unwrap());
    let mut for_recipient = async |limit: u32| {
        gateway
            .get_messages(egov_proto::GetMessagesRequest {
                correlation_id: String::new(),
                recipient_id: egov_runtime::ids::REGIONAL.to_owned(),
                limit,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
    };
    let to_arm = for_recipient(1000).await;
    let applications: std::collections::BTreeSet<String> = to_arm.iter().map(|m| header(m).correlation_id).collect();
    assert_eq!(applications, ["listed-1", "listed-2"].map(str::to_owned).into(), "both hand-overs and their messages");
    assert!(to_arm.iter().all(|m| header(m).recipient_id == egov_runtime::ids::REGIONAL));
    let limited = for_recipient(1).await;
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].sequence, to_arm[0].sequence);
    harness.stop().await;
}

/// Drives `plan` as an application received at the provider's office.
async fn drive_at_office(
    harness: &Harness,
    application_id: &str,
    plan: &egov_client::ApplicationPlan,
) -> Result<egov_client::Driven, egov_client::RouteError> {
    let operator = harness.operator().await;
    let (staff, staff_keys) = (harness.staff(), harness.staff_keys());
    let route = egov_client::Route {
        definition: &harness.definition,
        operator: &operator,
        staff: &staff,
        staff_keys: &staff_keys,
        patience: egov_client::Patience::default(),
        pacer: &egov_client::RealTime,
    };
    egov_client::drive_at_office(&route, "provider-office", application_id, plan).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_received_at_the_providers_office_is_handed_out_there() {
    let harness = Harness::start().await;
    let driven = drive_at_office(&harness, "office-1", &in_person("850715300122")).await.unwrap();
    let application = driven.application;
    assert_eq!((application.outcome.as_str(), application.channel.as_str()), ("permitted", "provider-office"));
    assert_eq!(path(&application), ["action-1", "action-2", "action-3", "action-4", "office-issue"]);
    let by_step = |id: &str| application.path.iter().find(|s| s.step_id == id).unwrap();
    assert_eq!(by_step("action-1").actor_id, "office-1");
    assert_eq!(by_step("office-issue").actor_id, "office-1");
    assert_eq!(by_step("action-3").handed_over_by, "executor-1");
    assert!(application.due_time_ms > 0, "the office's term runs from the reception");
    let result = driven.result.unwrap();
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    assert_eq!(egov_envelope::open(&result, &harness.trust, 0, &checks).unwrap().header.sender_id, "head-1");
    // The State Corporation has no part in it.
    let at_sc = harness.operator().await.application("office-1").await.unwrap_err();
    assert_eq!(at_sc.code(), tonic::Code::NotFound);
    assert!(harness.gateway_log("office-1").await.is_empty(), "nothing goes through the gateway");
    // Ended, it is still the ARM's to list and to read, by its application's id too.
    let staff = harness.staff();
    let listed = staff.registrations("provider-office").await.unwrap();
    let ids: Vec<&str> =
        listed.iter().filter_map(|r| r.application.as_ref()).map(|a| a.application_id.as_str()).collect();
    assert_eq!(ids, ["office-1"]);
    assert_eq!(listed[0].application.as_ref().unwrap().outcome, "permitted");
    assert_eq!(staff.registrations("").await.unwrap().len(), 1, "every registration");
    assert!(staff.registrations("state-corporation").await.unwrap().is_empty(), "none of another channel");
    let read = staff.registration_of("office-1").await.unwrap();
    assert_eq!(read.application.unwrap().registration_id, application.registration_id);
    let unknown = staff.registration_of("office-9").await.unwrap_err();
    assert_eq!((unknown.code(), reason_of(&unknown)), (tonic::Code::NotFound, "regional.unknown_registration"));
    let mut regional = egov_proto::regional_gateway_service_client::RegionalGatewayServiceClient::new(
        egov_runtime::Topology::channel(&harness.topology().regional).unwrap(),
    );
    let both = egov_proto::GetRegistrationRequest {
        registration_id: application.registration_id.clone(),
        application_id: "office-1".to_owned(),
    };
    let refused = regional.get_registration(both).await.unwrap_err();
    assert_eq!((refused.code(), reason_of(&refused)), (tonic::Code::InvalidArgument, "regional.bad_query"));
    let none = regional.get_registration(egov_proto::GetRegistrationRequest::default()).await.unwrap_err();
    assert_eq!(reason_of(&none), "regional.bad_query");
    harness.stop().await;
}

/// The reason code of a refusal (its `egov-reason` metadata).
fn reason_of(status: &tonic::Status) -> &str {
    status.metadata().get("egov-reason").and_then(|value| value.to_str().ok()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_office_the_executor_refuses_noncompliant_documents_at_action_2_and_the_head_signs() {
    let harness = Harness::start().await;
    let mut plan = in_person("900101400122");
    plan.result_decision = egov_client::Decision::Refuse;
    plan.result_refusal_ground = "unreliable-documents".to_owned();
    let driven = drive_at_office(&harness, "office-2", &plan).await.unwrap();
    assert_eq!(driven.application.outcome, "refused");
    // Actions 1-4 only: no condition 2, no process 8 on the office's route.
    assert_eq!(path(&driven.application), ["action-1", "action-2", "action-3", "action-4", "office-issue"]);
    let by_step = |id: &str| driven.application.path.iter().find(|s| s.step_id == id).unwrap().clone();
    assert_eq!(by_step("action-2").actor_id, "executor-1");
    assert_eq!(by_step("action-3").actor_id, "head-1");
    let result = driven.result.unwrap();
    let checks = Checks { freshness_window_ms: None, ..Checks::default() };
    let opened = egov_envelope::open(&result, &harness.trust, 0, &checks).unwrap();
    assert_eq!((opened.sender_role.as_str(), opened.header.sender_id.as_str()), ("provider-head", "head-1"));
    let document = ServiceResult::decode(&result.body[..]).unwrap();
    assert_eq!(document.refusal_ground, "unreliable-documents");
    let notice = document.notice.unwrap();
    assert_eq!(notice.code, "result.refused-documents");
    let ground = egov_regulation::Definition::default_definition().refusal_ground("unreliable-documents").unwrap();
    assert!(notice.text_en.contains("paragraph 9") && notice.text_en.contains(&ground.en), "{}", notice.text_en);
    assert!(notice.text_kk.contains(&ground.kk) && notice.text_ru.contains(&ground.ru));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_grounds_are_lent_to_action_2_at_the_office_only() {
    let harness = Harness::start().await;
    // Through the State Corporation, action 2 takes the grounds of paragraph 10 only.
    let mut plan = in_person("900101400122");
    plan.result_decision = egov_client::Decision::Refuse;
    plan.result_refusal_ground = "unreliable-documents".to_owned();
    let error = harness.drive("sc-grounds", &plan).await.unwrap_err();
    assert_eq!(error.reason(), Some("regional.unexpected_refusal_ground"), "{error}");
    // At the office there is no condition 2 to decide.
    let office = harness.staff_keys()["provider-office"].clone();
    let reception = egov_proto::OfficeReception {
        application_id: "office-5".to_owned(),
        service_code: harness.definition.service.code.clone(),
        applicant_iin: "850715300122".to_owned(),
        representative: None,
        documents: in_person("850715300122").documents.iter().map(egov_client::DocumentPlan::to_proto).collect(),
        arrived_time_ms: 0,
    };
    let staff = harness.staff();
    // The reception is action 1.
    let registration = staff.receive_at_office(&office, &reception).await.unwrap();
    assert_eq!(registration.application.as_ref().unwrap().current_step, "action-2");
    let specialist = harness.staff_keys()["provider-specialist"].clone();
    let refused = staff
        .act(&specialist, &registration, "condition-2", egov_proto::Decision::No, "unreliable-documents")
        .await
        .unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("process.not_current_step"), "{refused}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_refuses_an_incomplete_package_with_a_signed_notice_and_registers_nothing() {
    let harness = Harness::start().await;
    let mut plan = in_person("850715300122");
    plan.documents.retain(|d| d.kind != "identity-document");
    let error = drive_at_office(&harness, "office-3", &plan).await.unwrap_err();
    assert_eq!(error.reason(), Some("regional.incomplete_package"));
    let egov_client::RouteError::Refused { status, .. } = &error else { panic!("{error}") };
    let counter = egov_client::counter_notice(status, &harness.trust).unwrap().unwrap();
    assert_eq!(counter.verified.sender_role.as_str(), "regional-arm");
    assert_eq!(counter.notice.code, "counter.incomplete-package");
    let identity = egov_regulation::Definition::default_definition()
        .documents
        .iter()
        .find(|d| d.code == "identity-document")
        .unwrap()
        .clone();
    for (text, name) in [
        (&counter.notice.text_kk, &identity.kk),
        (&counter.notice.text_ru, &identity.ru),
        (&counter.notice.text_en, &identity.en),
    ] {
        assert!(text.contains(name.as_str()), "{text}");
    }
    assert!(harness.staff().queue("").await.unwrap().is_empty(), "nothing is registered");
    // A bad IIN and a service of another definition are refused alike.
    let error = drive_at_office(&harness, "office-4", &in_person("850715300123")).await.unwrap_err();
    assert_eq!(error.reason(), Some("iin.check_digit"));
    assert!(harness.staff().queue("").await.unwrap().is_empty());
    harness.stop().await;
}

/// The people's clients on one simulated clock, against a stack on simulated
/// time, starting on the next working day at 10:00 (Astana): the queue's
/// tickets and waits are then exact to the minute.
struct SimulatedDesk {
    harness: Harness,
    clock: std::sync::Arc<egov_runtime::SimClock>,
    operator: egov_client::OperatorClient,
    staff: egov_client::StaffClient,
}

const MINUTE_MS: i64 = 60_000;

impl SimulatedDesk {
    async fn start() -> SimulatedDesk {
        use chrono::TimeZone as _;
        use egov_runtime::Clock as _;
        let harness = Harness::start_with(|config| config.simulated_time = true).await;
        let calendar = egov_regulation::Calendar::kazakhstan();
        let now = egov_runtime::SystemClock.now_ms();
        let today = egov_regulation::instance::to_local(calendar, now).unwrap().date_naive();
        let day = calendar.add_working_days(today, 1).unwrap();
        let start = calendar.offset().from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap()).unwrap();
        let clock = std::sync::Arc::new(egov_runtime::SimClock::starting_at(start.timestamp_millis()));
        let channel = egov_runtime::Topology::channel(&harness.topology().workstation).unwrap();
        let mut operator = egov_client::OperatorClient::new(channel, harness.signer("operator-1"), clock.clone());
        operator.login("operator-1", "operator-1-password").await.unwrap();
        let staff = egov_client::StaffClient::new(
            egov_runtime::Topology::channel(&harness.topology().regional).unwrap(),
            clock.clone(),
        );
        SimulatedDesk { harness, clock, operator, staff }
    }

    fn later(&self, minutes: i64) {
        self.clock.advance(minutes * MINUTE_MS);
    }

    /// Another operator logged in at this desk's clock, at service centre `centre`, window `window`.
    async fn operator_at(&self, login: &str, centre: &str, window: &str) -> egov_client::OperatorClient {
        let channel = egov_runtime::Topology::channel(&self.harness.topology().workstation).unwrap();
        let mut operator = egov_client::OperatorClient::new(channel, self.harness.signer(login), self.clock.clone())
            .with_centre(centre)
            .with_window(window);
        operator.login(login, &format!("{login}-password")).await.unwrap();
        operator
    }

    /// Processes 1 to 6 for `id` in person: it goes to the provider.
    async fn submit(&self, id: &str) -> egov_proto::Application {
        let service = &self.harness.definition.service.code;
        self.operator.open_form(id, service, "850715300122", None).await.unwrap();
        let documents = common::documents(&["application-form", "identity-document"])
            .iter()
            .map(egov_client::DocumentPlan::to_proto)
            .collect();
        self.operator.submit(id, documents).await.unwrap();
        let operator = &self.operator;
        common::eventually("registration", async || {
            operator.application(id).await.ok().filter(|a| !a.registration_id.is_empty() && a.due_time_ms != 0)
        })
        .await
    }

    /// The provider's steps, approved, until the signed result waits at the workstation (process 9).
    async fn provider_decides(&self, id: &str, registration_id: &str) -> egov_proto::Application {
        let keys = self.harness.staff_keys();
        let mut registration = self.staff.registration(registration_id).await.unwrap();
        while !registration.next_actor.is_empty() {
            let step_id = registration.application.as_ref().unwrap().current_step.clone();
            let step = self.harness.definition.step(&step_id).unwrap();
            let signer = &keys[&registration.next_actor];
            registration =
                if step.effect == Some(egov_regulation::Effect::SignResult) && registration.next_actor == step.actor {
                    self.staff.sign(signer, &registration).await
                } else {
                    let decision = if step.kind == egov_regulation::StepKind::Condition {
                        egov_proto::Decision::Yes
                    } else {
                        egov_proto::Decision::Unspecified
                    };
                    self.staff.act(signer, &registration, &step_id, decision, "").await
                }
                .unwrap();
        }
        let operator = &self.operator;
        common::eventually("the signed result", async || {
            operator.application(id).await.ok().filter(|a| a.current_step == "process-9")
        })
        .await
    }

    async fn ready_to_issue(&self, id: &str) -> egov_proto::Application {
        let application = self.submit(id).await;
        self.provider_decides(id, &application.registration_id).await
    }
}

fn step<'a>(application: &'a egov_proto::Application, id: &str) -> &'a egov_proto::StepRecord {
    application.path.iter().find(|s| s.step_id == id).unwrap()
}

/// Paragraph 9.4: the result is handed out in the electronic queue. The
/// operator cannot issue it before the applicant has a ticket; a ticket is
/// `R-DAY-NNNN`, the same one when they ask again that day, and a resend of
/// the same message gets the same answer; process 9 records the ticket and
/// the waiting time; after it no ticket is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_is_issued_only_against_a_ticket_of_the_electronic_queue() {
    use egov_proto::workstation_service_client::WorkstationServiceClient;
    let desk = SimulatedDesk::start().await;
    let (operator, id) = (&desk.operator, "ticketed-1");
    let ready = desk.ready_to_issue(id).await;
    let day = chrono::DateTime::from_timestamp_millis(ready.current_step_since_ms)
        .unwrap()
        .with_timezone(&egov_regulation::Calendar::kazakhstan().offset())
        .format("%Y%m%d")
        .to_string();

    let status = operator.issue(id).await.unwrap_err();
    assert_eq!(
        (status.code(), egov_runtime::reason_of(&status)),
        (tonic::Code::FailedPrecondition, Some("workstation.no_ticket")),
        "{}",
        status.message()
    );
    assert_eq!(operator.application(id).await.unwrap(), ready, "a refused hand-over changes nothing");

    desk.later(30);
    let taken = operator.take_ticket(id).await.unwrap();
    let ticket = taken.ticket.unwrap();
    assert_eq!((ticket.number.as_str(), ticket.ahead), (format!("R-{day}-0001").as_str(), 0));
    assert_eq!(ticket.taken_time_ms, ready.current_step_since_ms + 30 * MINUTE_MS, "the arrival is the message's time");
    let application = taken.application.unwrap();
    assert_eq!((application.queue_ticket.as_str(), application.queue_wait_ms), (ticket.number.as_str(), 0));
    assert_eq!(application.queue_ticket_time_ms, ticket.taken_time_ms);
    assert_eq!(application.current_step, "process-9", "a ticket is no step of the regulation");

    // Asked again the same day: the same ticket, not a new number.
    desk.later(1);
    assert_eq!(operator.take_ticket(id).await.unwrap().ticket.unwrap(), ticket);
    // The same signed message sent twice: the same answer, byte for byte.
    let mut workstation =
        WorkstationServiceClient::new(egov_runtime::Topology::channel(&desk.harness.topology().workstation).unwrap());
    let session = workstation
        .login(egov_proto::LoginRequest {
            login: "operator-1".to_owned(),
            password: "operator-1-password".to_owned(),
            client_time_ms: egov_runtime::Clock::now_ms(&*desk.clock),
        })
        .await
        .unwrap()
        .into_inner();
    let signer = desk.harness.signer("operator-1");
    let header = signer.header(
        "arrival-1",
        id,
        egov_envelope::services::QUEUE_TICKET,
        egov_runtime::ids::SC_WORKSTATION,
        egov_runtime::Clock::now_ms(&*desk.clock),
        egov_proto::MessageType::Request,
    );
    let arrival = egov_proto::ApplicantArrival {
        session_id: session.session_id,
        application_id: id.to_owned(),
        centre: String::new(),
    };
    let request = egov_proto::TakeQueueTicketRequest { envelope: Some(signer.seal(&header, &arrival)) };
    let first = workstation.take_queue_ticket(request.clone()).await.unwrap().into_inner();
    let again = workstation.take_queue_ticket(request).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(first.ticket.unwrap(), ticket);

    // A ticket not called to the operator is not served: they call the next one first.
    desk.later(6);
    let before = operator.application(id).await.unwrap();
    let status = operator.issue(id).await.unwrap_err();
    assert_eq!(
        (status.code(), egov_runtime::reason_of(&status)),
        (tonic::Code::FailedPrecondition, Some("workstation.ticket_not_called")),
        "{}",
        status.message()
    );
    assert_eq!(operator.application(id).await.unwrap(), before, "a refused hand-over changes nothing");
    let called = operator.call_next().await.unwrap();
    let called_ticket = called.ticket.unwrap();
    assert_eq!(
        (
            called_ticket.number.as_str(),
            called_ticket.called_to.as_str(),
            called_ticket.centre.as_str(),
            called.waiting
        ),
        (ticket.number.as_str(), "operator-1", egov_runtime::ids::DEFAULT_CENTRE, 0)
    );
    assert_eq!(called.application.unwrap().queue_called_by, "operator-1");
    desk.later(2);
    let issued = operator.issue(id).await.unwrap().application.unwrap();
    assert_eq!(issued.outcome, "permitted");
    assert_eq!(issued.queue_wait_ms, 7 * MINUTE_MS, "from the ticket to its call");
    let process_9 = step(&issued, "process-9");
    assert_eq!(process_9.detail, format!("ticket {}, waited 7 min", ticket.number));
    assert_eq!(issued.queue_called_time_ms - issued.queue_ticket_time_ms, issued.queue_wait_ms);
    assert_eq!(process_9.ended_time_ms - issued.queue_called_time_ms, 2 * MINUTE_MS, "served after the call");
    // Served: the queue is empty, a call is answered without a ticket.
    let empty = operator.call_next().await.unwrap();
    assert!(empty.ticket.is_none() && empty.application.is_none(), "{empty:?}");
    let status = operator.take_ticket(id).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("process.ended"), "{}", status.message());
    desk.harness.stop().await;
}

/// Paragraph 9.3: the applicant comes after the provider's term. One who
/// comes while the provider still works is refused and told to come back at
/// the first working moment after the term's end, in the message and in
/// `egov-come-back-at`; nothing changes, no ticket is given. Once that moment
/// has passed (the provider is late) no time is given; a result that has
/// arrived is handed over at once (the simulator's assumption).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicant_who_comes_before_the_result_is_told_when_to_come_back_and_nothing_changes() {
    let desk = SimulatedDesk::start().await;
    let (operator, id) = (&desk.operator, "early-1");
    let submitted = desk.submit(id).await;
    use chrono::TimeZone as _;
    let calendar = egov_regulation::Calendar::kazakhstan();
    // The term ends at 18:00 of its fifth working day; the next working moment is 09:00 of the next working day.
    let due = chrono::DateTime::from_timestamp_millis(submitted.due_time_ms).unwrap().with_timezone(&calendar.offset());
    assert_eq!(due.time(), chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap());
    let come_back_day = calendar.add_working_days(due.date_naive(), 1).unwrap();
    let come_back = calendar.offset().from_local_datetime(&come_back_day.and_hms_opt(9, 0, 0).unwrap()).unwrap();

    desk.later(24 * 60);
    let before = operator.application(id).await.unwrap();
    for status in [operator.take_ticket(id).await.unwrap_err(), operator.issue(id).await.unwrap_err()] {
        assert_eq!(
            (status.code(), egov_runtime::reason_of(&status)),
            (tonic::Code::FailedPrecondition, Some("workstation.result_not_ready")),
            "{}",
            status.message()
        );
        assert_eq!(egov_client::come_back_at(&status), Some(come_back), "{}", status.message());
        assert_eq!(
            egov_runtime::status::text_of(&status, egov_runtime::status::COME_BACK_KEY),
            Some(come_back.to_rfc3339().as_str())
        );
        assert!(status.message().contains(&come_back.to_rfc3339()), "{}", status.message());
    }
    let after = operator.application(id).await.unwrap();
    assert_eq!(after, before, "nothing changes");
    assert!(after.queue_ticket.is_empty(), "no ticket is given");

    // The provider is late: past the moment to come back, no time can be given.
    desk.clock.set(come_back.timestamp_millis() + 60 * MINUTE_MS);
    let status = operator.take_ticket(id).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.result_not_ready"));
    assert_eq!(egov_client::come_back_at(&status), None, "{}", status.message());
    assert!(status.message().contains("no time"), "{}", status.message());

    // Once the result has arrived the applicant takes a ticket and is served.
    desk.provider_decides(id, &submitted.registration_id).await;
    operator.take_ticket(id).await.unwrap();
    operator.call_next().await.unwrap();
    assert_eq!(operator.issue(id).await.unwrap().application.unwrap().outcome, "permitted");
    desk.harness.stop().await;
}

/// Paragraph 9.4, without booking and without express service, at a centre
/// with several windows: each operator, when free, calls the earliest waiting
/// ticket, and several are served at once. Two operators at two windows of one
/// centre are called the two waiting tickets in their order and serve them
/// concurrently, without any refusal; a call again gives the same ticket; a
/// window is one operator's at a time; process 9 of a ticket called to
/// another operator is refused and changes nothing; each wait is recorded,
/// from the ticket to its call. Calls made at the same moment are given
/// different tickets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_at_two_windows_serve_the_waiting_tickets_at_once_in_calling_order() {
    let desk = SimulatedDesk::start().await;
    let first_window = desk.operator_at("operator-1", "hall-1", "1").await;
    let second_window = desk.operator_at("operator-2", "hall-1", "2").await;
    for id in ["queued-a", "queued-b", "queued-c", "queued-d", "queued-e"] {
        desk.ready_to_issue(id).await;
    }
    desk.later(60);
    let first = first_window.take_ticket("queued-a").await.unwrap().ticket.unwrap();
    desk.later(5);
    let second = second_window.take_ticket("queued-b").await.unwrap().ticket.unwrap();
    assert!(first.number.ends_with("-0001") && second.number.ends_with("-0002"), "{first:?} {second:?}");
    assert_eq!((second.ahead, second.centre.as_str()), (1, "hall-1"));
    // Another centre's queue is its own: numbered from 1, nobody ahead.
    let elsewhere = desk.operator.take_ticket("queued-d").await.unwrap().ticket.unwrap();
    assert_eq!((elsewhere.ahead, elsewhere.centre.as_str()), (0, egov_runtime::ids::DEFAULT_CENTRE));
    assert!(elsewhere.number.ends_with("-0001"), "{elsewhere:?}");

    desk.later(10);
    let called_a = first_window.call_next().await.unwrap();
    let ticket_a = called_a.ticket.unwrap();
    assert_eq!(
        (ticket_a.number.as_str(), ticket_a.called_to.as_str(), ticket_a.window.as_str(), called_a.waiting),
        (first.number.as_str(), "operator-1", "1", 1),
        "the earliest ticket, to the first free window"
    );
    assert_eq!(called_a.application.unwrap().application_id, "queued-a");
    // A window is one operator's at a time.
    let busy = desk.operator_at("operator-2", "hall-1", "1").await;
    let status = busy.call_next().await.unwrap_err();
    assert_eq!(
        (status.code(), egov_runtime::reason_of(&status)),
        (tonic::Code::FailedPrecondition, Some("workstation.window_busy")),
        "{}",
        status.message()
    );
    desk.later(1);
    let called_b = second_window.call_next().await.unwrap();
    let ticket_b = called_b.ticket.unwrap();
    assert_eq!(
        (ticket_b.number.as_str(), ticket_b.called_to.as_str(), ticket_b.window.as_str(), called_b.waiting),
        (second.number.as_str(), "operator-2", "2", 0)
    );
    // Called again before serving: the same ticket, no second one.
    desk.later(1);
    let again = first_window.call_next().await.unwrap();
    assert_eq!(again.ticket.unwrap(), ticket_a);

    // Process 9 of a ticket called to another operator: refused, nothing changes.
    let before = second_window.application("queued-a").await.unwrap();
    let status = second_window.issue("queued-a").await.unwrap_err();
    assert_eq!(
        (status.code(), egov_runtime::reason_of(&status)),
        (tonic::Code::FailedPrecondition, Some("workstation.ticket_not_called")),
        "{}",
        status.message()
    );
    assert!(status.message().contains("operator-1"), "names whose it is: {}", status.message());
    assert_eq!(second_window.application("queued-a").await.unwrap(), before, "nothing changes");

    // Both windows serve at once, neither refused.
    desk.later(3);
    let (served_a, served_b) = tokio::join!(first_window.issue("queued-a"), second_window.issue("queued-b"));
    let (served_a, served_b) = (served_a.unwrap().application.unwrap(), served_b.unwrap().application.unwrap());
    assert_eq!((served_a.outcome.as_str(), served_b.outcome.as_str()), ("permitted", "permitted"));
    assert_eq!(served_a.queue_wait_ms, 15 * MINUTE_MS, "from the ticket to its call");
    assert_eq!(served_b.queue_wait_ms, 11 * MINUTE_MS);
    assert_eq!(step(&served_a, "process-9").detail, format!("ticket {}, window 1, waited 15 min", first.number));
    assert_eq!(step(&served_b, "process-9").detail, format!("ticket {}, window 2, waited 11 min", second.number));
    assert_eq!(step(&served_a, "process-9").actor_id, "operator-1");
    assert_eq!(step(&served_b, "process-9").actor_id, "operator-2");

    // Two operators calling at the same moment are given two tickets, in their order between them.
    let third = first_window.take_ticket("queued-c").await.unwrap().ticket.unwrap();
    desk.later(1);
    desk.operator.call_next().await.unwrap();
    desk.operator.issue("queued-d").await.unwrap();
    let fourth = second_window.take_ticket("queued-e").await.unwrap().ticket.unwrap();
    assert_eq!(fourth.ahead, 1);
    let (one, two) = tokio::join!(first_window.call_next(), second_window.call_next());
    let (one, two) = (one.unwrap().ticket.unwrap(), two.unwrap().ticket.unwrap());
    let mut numbers = [one.number.clone(), two.number.clone()];
    numbers.sort();
    assert_eq!(numbers, [third.number.clone(), fourth.number.clone()], "{one:?} {two:?}");
    let (one, two) = (id_of(&one), id_of(&two));
    let (one, two) = tokio::join!(first_window.issue(&one), second_window.issue(&two));
    assert_eq!(one.unwrap().application.unwrap().outcome, "permitted");
    assert_eq!(two.unwrap().application.unwrap().outcome, "permitted");
    let empty = second_window.call_next().await.unwrap();
    assert!(empty.ticket.is_none(), "{empty:?}");
    desk.harness.stop().await;

    fn id_of(ticket: &egov_proto::QueueTicket) -> String {
        if ticket.number.ends_with("-0003") { "queued-c" } else { "queued-e" }.to_owned()
    }
}

/// An applicant not served on their ticket's day has left: their ticket holds
/// nobody up the next day, is not served then, and a new one is numbered in
/// the new day's queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_of_an_earlier_day_holds_nobody_up() {
    let desk = SimulatedDesk::start().await;
    let operator = &desk.operator;
    desk.ready_to_issue("left-1").await;
    desk.ready_to_issue("next-day-1").await;
    let left = operator.take_ticket("left-1").await.unwrap().ticket.unwrap();
    desk.later(24 * 60);
    let next_day = operator.take_ticket("next-day-1").await.unwrap().ticket.unwrap();
    assert!(next_day.number.ends_with("-0001") && next_day.number != left.number, "{left:?} {next_day:?}");
    assert_eq!(next_day.ahead, 0);
    let called = operator.call_next().await.unwrap().application.unwrap();
    assert_eq!(called.application_id, "next-day-1", "the earlier day's ticket is not called");
    operator.issue("next-day-1").await.unwrap();
    let status = operator.issue("left-1").await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&status), Some("workstation.no_ticket"), "{}", status.message());
    assert!(status.message().contains(&left.number), "{}", status.message());
    let again = operator.take_ticket("left-1").await.unwrap().ticket.unwrap();
    assert!(again.number.ends_with("-0002") && again.number[..11] == next_day.number[..11], "{again:?}");
    operator.call_next().await.unwrap();
    let served = operator.issue("left-1").await.unwrap().application.unwrap();
    assert_eq!((served.queue_ticket.as_str(), served.outcome.as_str()), (again.number.as_str(), "permitted"));
    desk.harness.stop().await;
}

/// The State Corporation's counter and the provider's office take an
/// application after the same checks, in the same code: the same people and
/// the same ids are refused at both with the same codes, and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_counters_refuse_the_same_people_and_ids_alike() {
    use egov_proto::{OfficeReception, PowerOfAttorneyKind, Representative};
    let harness = Harness::start().await;
    let operator = harness.operator().await;
    let staff = harness.staff();
    let office = harness.signer("office-1");
    let service = harness.definition.service.code.clone();
    let documents: Vec<egov_proto::AttachedDocument> =
        common::documents(&["application-form", "identity-document", "power-of-attorney"])
            .iter()
            .map(egov_client::DocumentPlan::to_proto)
            .collect();
    let representative = |iin: &str| Representative {
        iin: iin.to_owned(),
        kind: PowerOfAttorneyKind::Other as i32,
        ..Representative::default()
    };
    let cases = [
        ("self-represented", "920611400773", Some(representative("920611400773")), "counter.self_representation"),
        ("bad-representative", "920611400773", Some(representative("870322300458")), "iin.check_digit"),
        ("bad-applicant", "85071530012", None, "iin.length"),
        ("../x/<b>", "850715300122", None, "request.bad_id"),
        ("bad id!", "850715300122", None, "request.bad_id"),
    ];
    for (id, iin, representative, reason) in cases {
        let at_counter = operator.open_form(id, &service, iin, representative.clone()).await.unwrap_err();
        let reception = OfficeReception {
            application_id: id.to_owned(),
            service_code: service.clone(),
            applicant_iin: iin.to_owned(),
            representative,
            documents: documents.clone(),
            arrived_time_ms: 0,
        };
        let at_office = staff.receive_at_office(&office, &reception).await.unwrap_err();
        for (counter, status) in [("State Corporation's counter", at_counter), ("office", at_office)] {
            assert_eq!(
                (status.code(), egov_runtime::reason_of(&status)),
                (tonic::Code::InvalidArgument, Some(reason)),
                "{id} at the {counter}: {}",
                status.message()
            );
        }
    }
    assert!(staff.queue("").await.unwrap().is_empty(), "nothing is registered at the office");
    for id in ["self-represented", "bad-representative", "bad-applicant"] {
        let read = operator.application(id).await.unwrap_err();
        assert_eq!(read.code(), tonic::Code::NotFound, "{id} is not opened at the State Corporation");
    }
    harness.stop().await;
}
