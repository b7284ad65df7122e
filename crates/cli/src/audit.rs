//! `egov audit verify` and `egov store check`: the message logs, every
//! signature in them and what witnesses their ends, offline and read only;
//! `egov store rebuild-index`: sled's index rebuilt from the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use egov_runtime::KeyDir;
use egov_stack::check::{check_store, cross_check, witness_problems};
use egov_store::{ReadOnly, Store};

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check each participant's message log against its Merkle tree and signed checkpoints, and every signature in it
    /// (senders', the gateway's countersignatures, the operators' and the head's inside),
    /// and that no log ends before what was acknowledged, where sled's index, the store's
    /// `acknowledged` marker or another participant's log witnesses it. It changes no
    /// byte of the data directory. Run it on a stopped stack or a copy of its data. With
    /// `--store postgres://...` it reads the database, running or not.
    Verify {
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
        /// The participants' PostgreSQL database (`egov serve --store`), instead of `--data`.
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
    },
    /// Write the evidence of one application to FILE (one JSON document, `docs/envelope.md`):
    /// every envelope of it at every participant, each with its inclusion proof against its
    /// log's latest checkpoint, the checkpoints, and the trust registry's keys valid then.
    /// Read only, as `verify`.
    Prove {
        /// The application's id (its envelopes' correlation id).
        application: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
    },
    /// Check an evidence bundle offline, with the bundle and a trust registry only: every
    /// checkpoint's signature, every entry's inclusion proof against its checkpoint, every
    /// envelope's signatures. Says who signed what, when, and where in which log. A bundle
    /// that does not hold is refused with an `audit.*` code, and the command exits 1.
    VerifyBundle {
        file: PathBuf,
        /// The trust registry to check against (`keys/trust.toml`).
        #[arg(long)]
        trust: PathBuf,
    },
    /// Print and verify the consistency proof of PARTICIPANT's log from the tree of FROM
    /// entries to that of TO (each the root of a checkpoint where there is one of that size).
    Consistency {
        #[arg(long)]
        participant: String,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Check a participant's store whole (all of them without PARTICIPANT), changing no
    /// byte: every frame's CRC, the log against its Merkle tree and checkpoints, every
    /// signature, sled's index against the log, and what witnesses the log's acknowledged
    /// end. On PostgreSQL: the log, its tree and checkpoints, and the signatures (the database keeps no index apart from the log).
    Check {
        /// gateway, regional, workstation or shep.
        participant: Option<String>,
        #[arg(long, default_value = "data")]
        data: PathBuf,
        #[arg(long, default_value = "keys")]
        keys: PathBuf,
        /// The participants' PostgreSQL database (`egov serve --store`), instead of `--data`.
        #[arg(long, env = "EGOV_STORE")]
        store: Option<String>,
    },
    /// Create or migrate the participants' schemas in the PostgreSQL database to this
    /// build's version (each of gateway, regional, workstation, and shep where it
    /// exists; PARTICIPANT: that one only), one replica at a time; a schema newer than
    /// this build knows is refused, unchanged (docs/scale-out.md, rolling upgrades).
    Migrate {
        /// gateway, regional, workstation or shep.
        participant: Option<String>,
        /// The participants' PostgreSQL database (`egov serve --store`).
        #[arg(long, env = "EGOV_STORE")]
        store: String,
    },
    /// Rebuild sled's index of PARTICIPANT from its log (after sled's files were damaged
    /// or lost), on a stopped stack. Refused, changing nothing, when the log ends before
    /// what the old index or the store's `acknowledged` marker says was acknowledged.
    RebuildIndex {
        /// gateway, regional, workstation or shep.
        participant: String,
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
}

/// Broken entries printed one by one for a participant; the rest are counted.
const MAX_BREAKS_SHOWN: usize = 20;

/// The participants that keep a store; the SHEP edge keeps a log too: the
/// envelopes it signed for its senders and those it delivered to them.
const STATEFUL: [&str; 4] = ["gateway", "regional", "workstation", "shep"];

pub fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { data, keys, store } => check(&data, &keys, store.as_deref(), None, false, "audit"),
        AuditCommand::Prove { application, out, data, keys, store } => {
            let trust = KeyDir::new(&keys).trust()?;
            let mut opened = Vec::new();
            for participant in STATEFUL {
                if let Some(store) = open_one(&data, store.as_deref(), participant)? {
                    let member = egov_stack::Role::parse(participant).map_or("", |role| role.member_id());
                    opened.push((participant, member, store));
                }
            }
            let stores: Vec<(&str, &str, &Store)> = opened.iter().map(|(p, m, s)| (*p, *m, s)).collect();
            let (bundle, notes) = egov_runtime::evidence::prove(&application, &stores, &trust)?;
            for note in notes {
                println!("note: {note}");
            }
            let json = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(&out, json).with_context(|| format!("cannot write {}", out.display()))?;
            let entries: usize = bundle.logs.iter().map(|log| log.entries.len()).sum();
            println!(
                "{}: {entries} envelopes of application {application} in {} logs, with their proofs, {} checkpoints and {} keys",
                out.display(),
                bundle.logs.len(),
                bundle.logs.len(),
                bundle.keys.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyBundle { file, trust } => {
            let text = std::fs::read_to_string(&trust).with_context(|| format!("cannot read {}", trust.display()))?;
            let trust = egov_envelope::TrustRegistry::from_toml(&text)
                .with_context(|| format!("{} is not a trust registry", trust.display()))?;
            let started = std::time::Instant::now();
            let verdict = std::fs::read(&file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map(|bytes| serde_json::from_slice::<egov_runtime::evidence::Bundle>(&bytes));
            let verdict = match verdict? {
                Ok(bundle) => egov_runtime::evidence::verify(&bundle, &trust).map(|lines| (bundle, lines)),
                Err(error) => Err(egov_runtime::evidence::Refused {
                    code: "audit.bundle_malformed",
                    detail: format!("{} is not an evidence bundle: {error}", file.display()),
                }),
            };
            match verdict {
                Ok((bundle, lines)) => {
                    println!("application {}:", bundle.application);
                    for line in lines {
                        println!("{line}");
                    }
                    println!("verify-bundle: ok ({:.1} ms)", started.elapsed().as_secs_f64() * 1000.0);
                    Ok(ExitCode::SUCCESS)
                }
                Err(refused) => {
                    println!("verify-bundle: REFUSED {refused}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Consistency { participant, from, to, data, store } => {
            stateful(&participant)?;
            let Some(store) = open_one(&data, store.as_deref(), &participant)? else {
                anyhow::bail!("no store of the {participant}");
            };
            let size = store.tree_size()?;
            if from > to || to > size {
                anyhow::bail!("the {participant}'s tree holds {size} entries: give 0 <= FROM <= TO <= {size}");
            }
            let checkpoints = store.checkpoints()?;
            let root = |at: u64| -> anyhow::Result<(egov_tlog::Hash, &'static str)> {
                Ok(match checkpoints.iter().find(|(s, _)| *s == at) {
                    Some((_, note)) => {
                        let parsed = egov_tlog::SignedNote::parse(note.as_bytes())
                            .map_err(|e| anyhow::anyhow!("{e}"))
                            .and_then(|n| egov_tlog::Checkpoint::parse(n.text()).map_err(|e| anyhow::anyhow!("{e}")))?;
                        (parsed.root, "its checkpoint")
                    }
                    None => (store.root_at(at)?, "the stored tree"),
                })
            };
            let ((first, first_from), (second, second_from)) = (root(from)?, root(to)?);
            let proof = store.consistency_proof(from, to)?;
            println!("{participant}: root at {from}: {} ({first_from})", hex::encode(first));
            println!("{participant}: root at {to}: {} ({second_from})", hex::encode(second));
            println!("{participant}: consistency proof, {} hashes:", proof.len());
            for hash in &proof {
                println!("  {}", hex::encode(hash));
            }
            match egov_tlog::verify_consistency(from, to, &first, &second, &proof) {
                Ok(()) => {
                    println!("consistency: ok: the tree of {from} entries is a prefix of the tree of {to}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    println!("consistency: FAILED audit.inconsistent: {error}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// A participant's store, read only (`None`: it has none).
fn open_one(data: &Path, url: Option<&str>, participant: &str) -> anyhow::Result<Option<Store>> {
    match url {
        Some(url) => {
            egov_stack::check_store_url(url)?;
            if !egov_store::PostgresBackend::exists(url, participant)? {
                return Ok(None);
            }
            // A tool that reads migrates nothing.
            let read_only = egov_store::PostgresSettings::read_only();
            Ok(Some(Store::open_postgres_with(url, participant, &read_only)?))
        }
        None => {
            let path = data.join(participant);
            if !path.is_dir() {
                return Ok(None);
            }
            let (store, _) = Store::open_read_only(&path)
                .with_context(|| format!("cannot open the {participant}'s store in {}", path.display()))?;
            Ok(Some(store))
        }
    }
}

pub fn store(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Check { participant, data, keys, store } => {
            if let Some(participant) = &participant {
                stateful(participant)?;
            }
            check(&data, &keys, store.as_deref(), participant.as_deref(), true, "check")
        }
        StoreCommand::Migrate { participant, store } => migrate(&store, participant.as_deref()),
        StoreCommand::RebuildIndex { participant, data } => {
            stateful(&participant)?;
            let path = data.join(&participant);
            if !path.join("log").is_dir() {
                anyhow::bail!("{} holds no log to rebuild the {participant}'s index from", path.display());
            }
            let started = std::time::Instant::now();
            let head = Store::rebuild_index(&path, 8 << 20).with_context(|| {
                format!("the index of the {participant} in {} was not rebuilt, and nothing changed", path.display())
            })?;
            println!(
                "{participant}: the index is rebuilt from the log ({head} log entries, the whole chain checked) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `egov store migrate`: each participant's schema brought to this build's version.
fn migrate(url: &str, only: Option<&str>) -> anyhow::Result<ExitCode> {
    egov_stack::check_store_url(url)?;
    let shown = egov_store::redact(url);
    let participants: Vec<&str> = match only {
        Some(participant) => {
            stateful(participant)?;
            vec![participant]
        }
        None => {
            let shep = egov_store::PostgresBackend::exists(url, "shep")
                .with_context(|| format!("cannot read the database at {shown}"))?;
            STATEFUL.into_iter().filter(|participant| *participant != "shep" || shep).collect()
        }
    };
    for participant in participants {
        let (was, is) = egov_store::PostgresBackend::migrate(url, participant)
            .with_context(|| format!("the {participant}'s schema in the database at {shown} was not migrated"))?;
        if was == is {
            println!("{participant}: schema at version {is}, this build's: nothing to do");
        } else if was == 0 {
            println!("{participant}: schema created at version {is}");
        } else {
            println!("{participant}: schema migrated from version {was} to {is}");
        }
    }
    println!("migrate: ok");
    Ok(ExitCode::SUCCESS)
}

fn stateful(participant: &str) -> anyhow::Result<()> {
    if STATEFUL.contains(&participant) {
        Ok(())
    } else {
        anyhow::bail!("{participant:?} keeps no store: give gateway, regional, workstation or shep")
    }
}

/// A store opened for a check, and (on sled) what its witnesses said.
struct Opened {
    store: Store,
    read_only: Option<ReadOnly>,
}

/// Opens the stores (read only), checks each (`only`: one), and what they
/// witness of each other. `index`: sled's index against the log too.
fn check(
    data: &Path,
    keys: &Path,
    url: Option<&str>,
    only: Option<&str>,
    index: bool,
    what: &str,
) -> anyhow::Result<ExitCode> {
    let trust = KeyDir::new(keys).trust()?;
    let mut broken = false;
    let registered = match url {
        None => egov_stack::registered_participants(data)?,
        Some(_) => Default::default(),
    };
    let shown = |participant: &str| only.is_none_or(|only| only == participant);
    let mut opened: BTreeMap<&str, Opened> = BTreeMap::new();
    for participant in STATEFUL {
        match url {
            Some(url) => {
                egov_stack::check_store_url(url)?;
                if !egov_store::PostgresBackend::exists(url, participant)
                    .with_context(|| format!("cannot read the database at {}", egov_store::redact(url)))?
                {
                    continue;
                }
                let read_only = egov_store::PostgresSettings::read_only();
                let store = Store::open_postgres_with(url, participant, &read_only).with_context(|| {
                    format!("cannot open the {participant}'s schema at {}", egov_store::redact(url))
                })?;
                opened.insert(participant, Opened { store, read_only: None });
            }
            None => {
                let path = data.join(participant);
                if !path.is_dir() {
                    // A participant that stored data once and whose store is gone is a break, not an absence.
                    if registered.contains(participant) && shown(participant) {
                        println!(
                            "{participant}: BROKEN: its store {} is missing, though {} (or a store's copy of it) lists it",
                            path.display(),
                            data.join(egov_stack::PARTICIPANTS_FILE).display()
                        );
                        broken = true;
                    }
                    continue;
                }
                match Store::open_read_only(&path) {
                    Ok((store, read_only)) => {
                        opened.insert(participant, Opened { store, read_only: Some(read_only) });
                    }
                    Err(error) => {
                        if shown(participant) {
                            println!("{participant}: BROKEN: {error}");
                            broken = true;
                        }
                    }
                }
            }
        }
    }
    if opened.is_empty() && !broken {
        match url {
            Some(url) => {
                anyhow::bail!(
                    "no participant's schema (gateway, regional, workstation) in the database at {}",
                    egov_store::redact(url)
                )
            }
            None => anyhow::bail!("no participant store (gateway, regional, workstation) under {}", data.display()),
        }
    }
    let stores: BTreeMap<&str, &Store> = opened.iter().map(|(name, opened)| (*name, &opened.store)).collect();
    let mut witnessed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (participant, problem) in cross_check(&stores) {
        witnessed.entry(participant).or_default().push(problem);
    }
    let (split_views, cosigned) = witness_problems(&stores, &trust)?;
    for (participant, problem) in split_views {
        witnessed.entry(participant).or_default().push(problem);
    }
    for (participant, opened) in &opened {
        if !shown(participant) {
            continue;
        }
        let mut problems = Vec::new();
        if let Some(read_only) = &opened.read_only {
            problems.extend(read_only.problems.iter().map(ToString::to_string));
            problems.extend(read_only.index_error.iter().map(ToString::to_string));
            for note in &read_only.notes {
                println!("{participant}: note: {note}");
            }
        }
        problems.extend(witnessed.remove(*participant).unwrap_or_default());
        let member = egov_stack::Role::parse(participant).map_or("", |role| role.member_id());
        let checked = check_store(&opened.store, &trust, index && opened.read_only.is_none(), member)?;
        problems.extend(checked.problems);
        if index {
            match &opened.read_only {
                Some(read_only) => {
                    problems.extend(read_only.check_index(MAX_BREAKS_SHOWN)?.into_iter().map(|d| format!("index: {d}")))
                }
                None => println!(
                    "{participant}: note: the database keeps no index apart from the log (one transaction writes both)"
                ),
            }
        }
        for problem in problems.iter().take(MAX_BREAKS_SHOWN) {
            println!("{participant}: BROKEN: {problem}");
        }
        if problems.len() > MAX_BREAKS_SHOWN {
            println!("{participant}: ... and {} more breaks", problems.len() - MAX_BREAKS_SHOWN);
        }
        if problems.is_empty() {
            println!(
                "{participant}: {} log entries, Merkle tree intact (each entry its leaf), {} checkpoints verified, {} of others' cosigned, {} signatures verified{}{}",
                checked.entries,
                checked.checkpoints,
                cosigned.get(*participant).copied().unwrap_or(0),
                checked.signatures,
                if checked.soap > 0 { format!(", {} with their SOAP message", checked.soap) } else { String::new() },
                if index && opened.read_only.is_some() { ", the index matches the log" } else { "" }
            );
        } else {
            println!("{participant}: {} breaks in {} log entries", problems.len(), checked.entries);
            broken = true;
        }
    }
    println!("{what}: {}", if broken { "FAILED" } else { "ok" });
    Ok(if broken { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
