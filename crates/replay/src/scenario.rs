//! The scenario format (docs/fixtures.md).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate};
use egov_client::ApplicationPlan;
use egov_regulation::Duration;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One application to replay and what should come of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// When the applicant comes to the State Corporation (RFC 3339, with its zone).
    pub submitted_at: DateTime<FixedOffset>,
    /// The operator's member id (an account of operators.json).
    #[serde(default = "first_operator")]
    pub operator: String,
    /// The channel the applicant applies through, a `[[channel]]` of the
    /// definition that starts with the provider's staff ("provider-office":
    /// received at the provider's office); absent: the State Corporation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub application: ApplicationPlan,
    /// How long a person takes over a step, by step id ("45 min", "3 wd"); default: the step's regulatory duration.
    #[serde(default)]
    pub durations: BTreeMap<String, String>,
    /// When the applicant comes for the result (RFC 3339); absent: at once, when it has arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_at: Option<DateTime<FixedOffset>>,
    /// How long the applicant waits in the hall with their ticket before the
    /// operator calls them ("N min", elapsed minutes); absent: not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<String>,
    pub expect: Expectation,
}

fn first_operator() -> String {
    "operator-1".to_owned()
}

/// What the scenario should come to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// "permitted", "refused", "data-unavailable" (the process-4 notice), or "rejected" (refused at input).
    pub outcome: String,
    /// For "rejected": the reason code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The step ids of the path, in order; empty: not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// The notice's code: the process-4 notice, or, for "rejected", the
    /// notice the refusal at the counter carries (`counter.incomplete-package`);
    /// empty: not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notice: String,
    /// The refusal ground of the signed result; empty: not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refusal_ground: String,
    /// The date (Astana) by which the result is due; absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// The steps that miss their regulatory deadline (always checked: by default none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
    /// The time an applicant who came before the result is told to come back; absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub come_back_at: Option<DateTime<FixedOffset>>,
    /// How long the applicant waited in the queue, from the ticket to process 9 ("N min"); absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<String>,
}

impl Scenario {
    /// The steps' durations as given.
    pub fn duration_overrides(&self) -> BTreeMap<String, Duration> {
        self.durations.iter().filter_map(|(step, text)| Some((step.clone(), Duration::parse(text)?))).collect()
    }

    /// How long the applicant waits in the hall, in milliseconds (0 when not given).
    pub fn queue_wait_ms(&self) -> i64 {
        self.queue_wait.as_deref().and_then(minutes).map_or(0, |minutes| minutes * 60_000)
    }
}

/// The minutes of "N min" (elapsed minutes: the applicant's wait in the hall).
pub fn minutes(text: &str) -> Option<i64> {
    match Duration::parse(text)? {
        Duration::Minutes(minutes) => Some(i64::from(minutes)),
        Duration::WorkingDays(_) => None,
    }
}

/// Why scenarios could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no scenario found in {0}")]
    Empty(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    scenarios: Vec<Scenario>,
}

fn json_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read = |source| LoadError::Read { path: path.to_owned(), source };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(read)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() || entry.extension().is_some_and(|ext| ext == "json") {
                json_files(&entry, out)?;
            }
        }
    } else {
        std::fs::metadata(path).map_err(read)?;
        out.push(path.to_owned());
    }
    Ok(())
}

/// Loads the scenarios of `paths` (files, or folders searched for `*.json`),
/// in path order. A file holds one scenario or `{"scenarios": [...]}`.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        json_files(path, &mut files)?;
    }
    let mut scenarios = Vec::new();
    let mut ids = HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read { path: file.clone(), source })?;
        let invalid = |message: String| LoadError::Invalid { path: file.clone(), message };
        let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let loaded = if parsed.get("scenarios").is_some() {
            serde_json::from_value::<ScenarioFile>(parsed).map_err(|e| invalid(e.to_string()))?.scenarios
        } else {
            vec![serde_json::from_value::<Scenario>(parsed).map_err(|e| invalid(e.to_string()))?]
        };
        for scenario in loaded {
            for (step, text) in &scenario.durations {
                if Duration::parse(text).is_none() {
                    return Err(invalid(format!(
                        "scenario {}: duration of {step} {text:?} is not \"N min\" or \"N wd\"",
                        scenario.id
                    )));
                }
            }
            for (field, text) in
                [("queue_wait", &scenario.queue_wait), ("expect.queue_wait", &scenario.expect.queue_wait)]
            {
                if let Some(text) = text
                    && minutes(text).is_none()
                {
                    return Err(invalid(format!("scenario {}: {field} {text:?} is not \"N min\"", scenario.id)));
                }
            }
            if !ids.insert(scenario.id.clone()) {
                return Err(invalid(format!("scenario id {} is used twice", scenario.id)));
            }
            scenarios.push(scenario);
        }
    }
    if scenarios.is_empty() {
        return Err(LoadError::Empty(paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")));
    }
    Ok(scenarios)
}
