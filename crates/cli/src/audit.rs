//! `egov audit verify`: the message logs and every signature in them, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use egov_envelope::{Checks, TrustRegistry, carried_envelope, open, verify_countersignature};
use egov_proto::Envelope;
use egov_runtime::{KeyDir, ids};
use egov_store::Store;
use prost::Message;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of each participant's message log and every signature in it
    /// (senders', the gateway's countersignatures, the operators' and the head's inside).
    /// Run it on a stopped stack or a copy of its data: a running participant holds its
    /// store. With `--store postgres://...` it reads the database, running or not.
    Verify {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
        /// The participants' PostgreSQL database (`egov serve --store`), instead of `--data`.
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
    },
}

/// Broken entries printed one by one for a participant; the rest are counted.
const MAX_BREAKS_SHOWN: usize = 20;

/// What one participant's log came to.
struct Tally {
    entries: usize,
    signatures: usize,
    /// Entries whose note holds the SOAP message the envelope came from or became (the SHEP edge's).
    soap: usize,
}

/// Verifies an envelope's signatures, and those of the envelopes it carries.
fn verify_envelope(envelope: &Envelope, trust: &TrustRegistry, tally: &mut Tally) -> Result<(), String> {
    let checks = Checks { max_body_bytes: usize::MAX, freshness_window_ms: None };
    let verified = open(envelope, trust, 0, &checks).map_err(|e| format!("{}: {e}", e.code()))?;
    tally.signatures += 1;
    if envelope.signatures.len() > 1 {
        verify_countersignature(envelope, &verified, trust, ids::GATEWAY).map_err(|e| format!("{}: {e}", e.code()))?;
        tally.signatures += 1;
    }
    let inner = carried_envelope(&verified, &envelope.body).map_err(|e| format!("{}: {e}", e.code()))?;
    if let Some(inner) = inner {
        verify_envelope(&inner, trust, tally).map_err(|e| format!("the envelope it carries: {e}"))?;
    }
    Ok(())
}

pub fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { data, keys, store } = command;
    let trust = KeyDir::new(&keys).trust()?;
    let mut broken = false;
    let mut found = 0;
    let registered = match &store {
        None => egov_stack::registered_participants(&data)?,
        Some(_) => Default::default(),
    };
    // The SHEP edge keeps a log too: the envelopes it signed for its senders and those it delivered to them.
    for participant in ["gateway", "regional", "workstation", "shep"] {
        let opened = match &store {
            Some(url) => {
                egov_stack::check_store_url(url)?;
                if !egov_store::PostgresBackend::exists(url, participant)
                    .with_context(|| format!("cannot read the database at {url}"))?
                {
                    continue;
                }
                Store::open_postgres(url, participant)
                    .with_context(|| format!("cannot open the {participant}'s schema at {url}"))?
            }
            None => {
                let path = data.join(participant);
                if !path.is_dir() {
                    // A participant that stored data once and whose store is gone is a break, not an absence.
                    if registered.contains(participant) {
                        println!(
                            "{participant}: BROKEN: its store {} is missing, though {} lists it",
                            path.display(),
                            data.join(egov_stack::PARTICIPANTS_FILE).display()
                        );
                        broken = true;
                    }
                    continue;
                }
                Store::open(&path, 16 * 1024 * 1024)
                    .with_context(|| format!("cannot open {} (is the stack still running?)", path.display()))?
            }
        };
        found += 1;
        broken |= !verify_log(participant, &opened, &trust)?;
    }
    if found == 0 && !broken {
        match &store {
            Some(url) => {
                anyhow::bail!("no participant's schema (gateway, regional, workstation) in the database at {url}")
            }
            None => anyhow::bail!("no participant store (gateway, regional, workstation) under {}", data.display()),
        }
    }
    println!("{}", if broken { "audit: FAILED" } else { "audit: ok" });
    Ok(if broken { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Checks one participant's chain and every signature in its log, printing
/// what it finds: whether nothing was broken.
fn verify_log(participant: &str, store: &Store, trust: &TrustRegistry) -> anyhow::Result<bool> {
    // Every break is reported, not only the first: one must not hide another.
    let mut breaks = 0;
    match store.chain_problems(None) {
        Ok((_, problems)) => {
            for problem in problems {
                breaks += 1;
                if breaks <= MAX_BREAKS_SHOWN {
                    println!("{participant}: BROKEN: {problem}");
                }
            }
        }
        Err(error) => {
            println!("{participant}: BROKEN: {error}");
            return Ok(false);
        }
    }
    let mut tally = Tally { entries: 0, signatures: 0, soap: 0 };
    for entry in store.log_entries() {
        let entry = entry?;
        tally.entries += 1;
        if entry.note.starts_with('<') {
            tally.soap += 1;
        }
        let checked = Envelope::decode(entry.envelope.as_slice())
            .map_err(|e| format!("does not decode: {e}"))
            .and_then(|envelope| verify_envelope(&envelope, trust, &mut tally));
        if let Err(reason) = checked {
            breaks += 1;
            if breaks <= MAX_BREAKS_SHOWN {
                println!(
                    "{participant}: BROKEN at log entry {} ({} {}): {reason}",
                    entry.sequence, entry.direction, entry.note
                );
            }
        }
    }
    if breaks > MAX_BREAKS_SHOWN {
        println!("{participant}: ... and {} more broken entries", breaks - MAX_BREAKS_SHOWN);
    }
    if breaks == 0 {
        let soap = if tally.soap > 0 { format!(", {} with their SOAP message", tally.soap) } else { String::new() };
        println!(
            "{participant}: {} log entries, hash chain intact, {} signatures verified{soap}",
            tally.entries, tally.signatures
        );
    } else {
        println!("{participant}: {breaks} breaks in {} log entries", tally.entries);
    }
    Ok(breaks == 0)
}
