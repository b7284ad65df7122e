//! Human-readable output.

use chrono::TimeZone as _;
use egov_proto::Application;
use egov_regulation::Calendar;

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

/// The application's state and its path, one step a line.
pub fn application(application: &Application) -> String {
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
    if application.due_time_ms != 0 {
        out.push_str(&format!("  result due by   {} (Astana time)\n", time(application.due_time_ms)));
    }
    if let Some(notice) = &application.notice {
        out.push_str(&format!("  notice          {}: {}\n", notice.code, notice.text_en));
    }
    out.push_str("  path (times in Astana, UTC+05:00):\n");
    out.push_str(&format!(
        "    {:<12} {:<20} {:<15} {:<23} {:<23} {:<8} {}\n",
        "step", "actor", "by", "ended", "deadline", "on time", "detail"
    ));
    for step in &application.path {
        let on_time = if step.deadline_time_ms == 0 {
            "-"
        } else if step.ended_time_ms <= step.deadline_time_ms {
            "yes"
        } else {
            "MISSED"
        };
        let detail = if step.branch.is_empty() {
            step.detail.clone()
        } else {
            format!("{} {}", step.branch, step.detail).trim().to_owned()
        };
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
