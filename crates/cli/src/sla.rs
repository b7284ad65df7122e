//! `egov sla report`: the applications with missed or at-risk deadlines.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use egov_regulation::Calendar;
use egov_runtime::{Clock as _, SystemClock};
use egov_store::Store;

#[derive(clap::Subcommand)]
pub enum SlaCommand {
    /// Table the steps and terms that missed their deadline or are at risk of it.
    /// Reads the workstation's store: run it on a stopped stack or a copy of its data
    /// (with `--store postgres://...`, the database, running or not).
    Report {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// The participants' PostgreSQL database (`egov serve --store`), instead of `--data`.
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
        /// The moment to judge open steps at (RFC 3339); default: now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// The process definition (default: the embedded one).
        #[arg(long)]
        regulation: Option<PathBuf>,
    },
}

pub fn sla(command: SlaCommand) -> anyhow::Result<ExitCode> {
    let SlaCommand::Report { data, store, at, regulation } = command;
    let definition = crate::commands::definition(regulation.as_ref())?;
    let store = match store {
        Some(url) => {
            egov_stack::check_store_url(&url)?;
            if !egov_store::PostgresBackend::exists(&url, "workstation")? {
                anyhow::bail!("the database at {} holds no workstation's state", egov_store::redact(&url));
            }
            Store::open_postgres_with(&url, "workstation", &egov_store::PostgresSettings::read_only())
                .with_context(|| format!("cannot open the database at {}", egov_store::redact(&url)))?
        }
        None => {
            let path = data.join("workstation");
            Store::open(&path, 16 * 1024 * 1024)
                .with_context(|| format!("cannot open {} (is the stack still running?)", path.display()))?
        }
    };
    let now_ms = at.map_or_else(|| SystemClock.now_ms(), |at| at.timestamp_millis());
    let rows = egov_workstation::sla_report(&store, &definition, Calendar::kazakhstan(), now_ms)?;
    println!(
        "{:<40} {:<18} {:<14} {:<23} {:<23} standing",
        "application", "registration", "step or term", "deadline", "ended"
    );
    for row in &rows {
        println!(
            "{:<40} {:<18} {:<14} {:<23} {:<23} {}",
            row.application_id,
            row.registration_id,
            row.item,
            crate::print::time(row.deadline_ms),
            row.ended_ms.map_or("open".to_owned(), crate::print::time),
            row.standing.as_str()
        );
    }
    let applications = rows.iter().map(|row| &row.application_id).collect::<std::collections::BTreeSet<_>>().len();
    println!("{} missed or at risk, in {applications} applications", rows.len());
    Ok(ExitCode::SUCCESS)
}
