//! The verdicts as a table, JSON or JUnit XML.

use crate::Verdict;

/// A machine-readable report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Junit,
}

/// `N passed, N failed`.
pub fn summary_line(verdicts: &[Verdict]) -> String {
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    format!("{passed} passed, {} failed", verdicts.len() - passed)
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

fn expected_text(verdict: &Verdict) -> String {
    let e = &verdict.expected;
    if e.reason.is_empty() { e.outcome.clone() } else { format!("{} ({})", e.outcome, e.reason) }
}

fn actual_text(verdict: &Verdict) -> String {
    let a = &verdict.actual;
    if a.reason.is_empty() { a.outcome.clone() } else { format!("{} ({})", a.outcome, a.reason) }
}

/// One line a scenario: scenario, expected, actual, verdict, the first difference.
pub fn table(verdicts: &[Verdict]) -> String {
    let width = verdicts.iter().map(|v| v.scenario.chars().count()).max().unwrap_or(8).clamp(8, 48);
    let mut out = format!(
        "{:<width$}  {:<34}  {:<34}  {:<7}  {}\n",
        "scenario", "expected", "actual", "verdict", "first difference"
    );
    for verdict in verdicts {
        out.push_str(&format!(
            "{:<width$}  {:<34}  {:<34}  {:<7}  {}\n",
            clip(&verdict.scenario, width),
            clip(&expected_text(verdict), 34),
            clip(&actual_text(verdict), 34),
            if verdict.passed() { "pass" } else { "FAIL" },
            verdict.differences.first().map(String::as_str).unwrap_or("")
        ));
    }
    out
}

/// The verdicts, a summary and the participants' counters (retries, faults) as JSON.
pub fn json(verdicts: &[Verdict], counters: &std::collections::BTreeMap<String, u64>) -> String {
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let report = serde_json::json!({
        "passed": passed,
        "failed": verdicts.len() - passed,
        "counters": counters,
        "scenarios": verdicts,
    });
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// The verdicts as a JUnit XML test suite.
pub fn junit(verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    let seconds: f64 = verdicts.iter().map(|v| v.elapsed_ms as f64 / 1000.0).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"egov replay\" tests=\"{}\" failures=\"{failed}\" time=\"{seconds:.3}\">\n",
        verdicts.len()
    );
    for verdict in verdicts {
        out.push_str(&format!(
            "  <testcase classname=\"egov.replay\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&verdict.scenario),
            verdict.elapsed_ms as f64 / 1000.0
        ));
        if verdict.passed() {
            out.push_str("/>\n");
        } else {
            out.push_str(&format!(
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                xml_escape(verdict.differences.first().map(String::as_str).unwrap_or("")),
                xml_escape(&verdict.differences.join("\n"))
            ));
        }
    }
    out.push_str("</testsuite>\n");
    out
}
