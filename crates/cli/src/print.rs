//! Human-readable output.

use chrono::TimeZone as _;
use egov_proto::Application;
use egov_regulation::Calendar;
use egov_regulation::instance::Standing;
use egov_runtime::Clock as _;

/// A time in Astana's local time.
pub fn time(ms: i64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    match Calendar::kazakhstan().offset().timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

/// The instance of the application's path as reported (for the terms' ends).
fn path_instance(application: &Application) -> egov_regulation::Instance {
    egov_regulation::Instance {
        current: (!application.current_step.is_empty()).then(|| application.current_step.clone()),
        current_since_ms: application.current_step_since_ms,
        path: application.path.iter().map(egov_runtime::convert::step_from_proto).collect(),
        decided: None,
        outcome: (!application.outcome.is_empty()).then(|| application.outcome.clone()),
        handed_over: None,
        channel: (!application.channel.is_empty()).then(|| application.channel.clone()),
    }
}

/// The application's state and its path, one step a line.
pub fn application(application: &Application) -> String {
    application_at(application, egov_runtime::SystemClock.now_ms())
}

/// The application and where each step, the current one and the provider's term
/// stand against their deadlines at `now_ms`.
pub fn application_at(application: &Application, now_ms: i64) -> String {
    let calendar = Calendar::kazakhstan();
    let definition = egov_regulation::Definition::default_definition();
    let record = |id: &str| application.path.iter().find(|step| step.step_id == id);
    let mut out = String::new();
    out.push_str(&format!("application {}\n", application.application_id));
    out.push_str(&format!("  applicant IIN   {}\n", application.applicant_iin));
    if !application.registration_id.is_empty() {
        out.push_str(&format!("  registration    {}\n", application.registration_id));
    }
    let state = if application.outcome.is_empty() {
        format!("waiting on {}", application.current_step)
    } else {
        format!("ended: {}", application.outcome)
    };
    out.push_str(&format!("  state           {state}\n"));
    if !application.queue_ticket.is_empty() {
        // The electronic queue for the result: served once process 9 is done.
        let wait = if application.outcome.is_empty() && application.queue_called_by.is_empty() {
            "waiting".to_owned()
        } else if application.outcome.is_empty() {
            let window = if application.queue_window.is_empty() {
                String::new()
            } else {
                format!(" to window {}", application.queue_window)
            };
            format!("called{window} by {} at {}", application.queue_called_by, time(application.queue_called_time_ms))
        } else {
            format!("waited {} min", application.queue_wait_ms / 60_000)
        };
        out.push_str(&format!(
            "  queue ticket    {} at centre {} taken {}: {wait}\n",
            application.queue_ticket,
            application.queue_centre,
            time(application.queue_ticket_time_ms)
        ));
    }
    if application.outcome.is_empty() && application.current_step_since_ms != 0 {
        let deadline = (application.current_step_deadline_ms != 0).then_some(application.current_step_deadline_ms);
        let standing = Standing::of(application.current_step_since_ms, deadline, None, now_ms, calendar);
        out.push_str(&format!(
            "  current step    {} since {}, deadline {}: {}\n",
            application.current_step,
            time(application.current_step_since_ms),
            deadline.map_or("none".to_owned(), time),
            standing.as_str()
        ));
    }
    // The provider's term (from registration) is the "result due by" the ARM
    // reports; every other term is shown with its own deadline.
    let registration = definition.step_by_effect(egov_regulation::Effect::Register).map(|step| step.id.as_str());
    let instance = path_instance(application);
    for term in definition.terms_of(instance.channel.as_deref()) {
        let Some(from) = record(&term.from) else { continue };
        let ended = egov_regulation::instance::term_end(definition, &instance, term);
        if Some(term.from.as_str()) == registration {
            if application.due_time_ms != 0 {
                let standing =
                    Standing::of(from.started_time_ms, Some(application.due_time_ms), ended, now_ms, calendar);
                out.push_str(&format!(
                    "  result due by   {} (Astana time): {}\n",
                    time(application.due_time_ms),
                    standing.as_str()
                ));
            }
            continue;
        }
        let deadline = definition.term_deadline(calendar, term, from.started_time_ms);
        let standing = Standing::of(from.started_time_ms, deadline, ended, now_ms, calendar);
        out.push_str(&format!(
            "  term            {} ({}): deadline {}: {}\n",
            term.id,
            term.duration,
            deadline.map_or("none".to_owned(), time),
            match standing {
                Standing::Missed => "MISSED",
                standing => standing.as_str(),
            }
        ));
    }
    if let Some(notice) = &application.notice {
        out.push_str(&format!("  notice          {}\n", notice.code));
        for (language, text) in [("kk", &notice.text_kk), ("ru", &notice.text_ru), ("en", &notice.text_en)] {
            out.push_str(&format!("    {language}  {text}\n"));
        }
    }
    out.push_str("  path (times in Astana, UTC+05:00):\n");
    out.push_str(&format!(
        "    {:<12} {:<20} {:<15} {:<23} {:<23} {:<8} {}\n",
        "step", "actor", "by", "ended", "deadline", "standing", "detail"
    ));
    for step in &application.path {
        let deadline = (step.deadline_time_ms != 0).then_some(step.deadline_time_ms);
        let on_time = match Standing::of(step.started_time_ms, deadline, Some(step.ended_time_ms), now_ms, calendar) {
            Standing::Missed => "MISSED",
            standing => standing.as_str(),
        };
        let mut detail = if step.branch.is_empty() {
            step.detail.clone()
        } else {
            format!("{} {}", step.branch, step.detail).trim().to_owned()
        };
        if !step.handed_over_by.is_empty() {
            detail = format!("handed over by {} at {}; {detail}", step.handed_over_by, time(step.handed_over_time_ms))
                .trim_end_matches("; ")
                .to_owned();
        }
        out.push_str(&format!(
            "    {:<12} {:<20} {:<15} {:<23} {:<23} {:<8} {}\n",
            step.step_id,
            step.actor,
            step.actor_id,
            time(step.ended_time_ms),
            time(step.deadline_time_ms),
            on_time,
            detail
        ));
    }
    out
}
