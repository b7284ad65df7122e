//! Evidence for one application (`docs/envelope.md`, "Evidence bundles"): `egov audit prove`
//! gathers every envelope of an application at every participant, each with its inclusion proof
//! against its log's checkpoint, the checkpoints and the trust registry's keys; `egov audit
//! verify-bundle` checks a bundle offline, with the bundle and a trust registry only.

use std::fmt::Write as _;

use egov_envelope::{TrustRegistry, decode_header};
use egov_proto::{Envelope, MessageType};
use egov_store::{LogEntry, Store};
use egov_tlog::Hash;
use prost::Message as _;
use serde::{Deserialize, Serialize};

/// The bundle format this build writes and reads.
pub const BUNDLE_FORMAT: &str = "egov-evidence/1";

/// One application's evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    /// The application's id (the envelopes' `correlation_id`).
    pub application: String,
    /// One per participant whose log holds envelopes of the application.
    pub logs: Vec<LogEvidence>,
    /// The trust registry's keys valid at some time between the first and the last entry.
    pub keys: Vec<KeyEvidence>,
}

/// A participant's log: its checkpoint and the application's entries in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEvidence {
    /// gateway, regional, workstation.
    pub participant: String,
    /// Its member id: the checkpoint's origin is `egov/MEMBER`.
    pub member: String,
    /// The signed checkpoint (C2SP signed note), as published.
    pub checkpoint: String,
    pub entries: Vec<EntryEvidence>,
}

/// A log entry, its bytes and its inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryEvidence {
    /// Its position: leaf `sequence - 1` of the checkpoint's tree.
    pub sequence: u64,
    pub time_ms: i64,
    pub direction: String,
    pub note: String,
    /// The envelope as logged (a serialised `egov.v1.Envelope`), hex.
    pub envelope: String,
    /// The inclusion proof (RFC 9162 section 2.1.3), hex hashes, from the leaf up.
    pub proof: Vec<String>,
}

/// A key of the trust registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEvidence {
    pub member: String,
    pub key_id: String,
    /// The 32-byte Ed25519 public key, hex.
    pub public: String,
    pub valid_from: String,
    pub valid_until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The same key as a signed-note verifier key (`egov/MEMBER+KEYID+BASE64`) for the member's checkpoints.
    pub log_key: String,
}

/// Why a bundle was refused: a stable code and what was found.
#[derive(Debug)]
pub struct Refused {
    pub code: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

fn refused(code: &'static str, detail: impl Into<String>) -> Refused {
    Refused { code, detail: detail.into() }
}

/// The bundle of `application` from `stores` (participant, member id, store); what could not
/// be proved (an entry after the latest checkpoint) is left out and said in the notes.
pub fn prove(
    application: &str,
    stores: &[(&str, &str, &Store)],
    trust: &TrustRegistry,
) -> anyhow::Result<(Bundle, Vec<String>)> {
    let mut logs = Vec::new();
    let mut notes = Vec::new();
    let (mut first_ms, mut last_ms) = (i64::MAX, i64::MIN);
    for &(participant, member, store) in stores {
        let entries = store.indexed_log(&format!("application/{application}"), usize::MAX)?;
        if entries.is_empty() || member.is_empty() {
            continue;
        }
        let Some((size, mut checkpoint)) = store.latest_checkpoint()? else {
            notes.push(format!("{participant}: no checkpoint yet: its {} entries are left out", entries.len()));
            continue;
        };
        // The witnesses' cosignatures of the same checkpoint, where they kept one.
        let witnessed = format!("{}{}/{size:020}", egov_store::WITNESSED_PREFIX, egov_envelope::log_origin(member));
        for &(_, _, witness) in stores {
            if let Some(cosigned) = witness.get::<String>(&witnessed)? {
                checkpoint = merge_signatures(&checkpoint, &cosigned.value);
            }
        }
        let mut proved = Vec::new();
        for entry in entries {
            if entry.sequence > size {
                notes.push(format!(
                    "{participant}: entry {} is after the latest checkpoint (size {size}): left out",
                    entry.sequence
                ));
                continue;
            }
            first_ms = first_ms.min(entry.time_ms);
            last_ms = last_ms.max(entry.time_ms);
            if let Ok(envelope) = Envelope::decode(entry.envelope.as_slice())
                && let Ok(header) = decode_header(&envelope.header)
            {
                first_ms = first_ms.min(header.message_time_ms);
                last_ms = last_ms.max(header.message_time_ms);
            }
            let proof = store.inclusion_proof(entry.sequence, size)?;
            proved.push(EntryEvidence {
                sequence: entry.sequence,
                time_ms: entry.time_ms,
                direction: entry.direction,
                note: entry.note,
                envelope: hex::encode(&entry.envelope),
                proof: proof.iter().map(hex::encode).collect(),
            });
        }
        if !proved.is_empty() {
            logs.push(LogEvidence {
                participant: participant.to_owned(),
                member: member.to_owned(),
                checkpoint,
                entries: proved,
            });
        }
    }
    if logs.is_empty() {
        anyhow::bail!("no participant's log holds a proved envelope of application {application}");
    }
    let mut keys = Vec::new();
    for member in trust.members() {
        let log_keys = trust.log_keys(&member.id);
        for key in &member.keys {
            let (from, until) = (key.valid_from.timestamp_millis(), key.valid_until.timestamp_millis());
            if from > last_ms || until <= first_ms {
                continue;
            }
            let log_key = log_keys.iter().find(|(id, _)| *id == key.id).map(|(_, v)| v.to_string()).unwrap_or_default();
            keys.push(KeyEvidence {
                member: member.id.clone(),
                key_id: key.id.clone(),
                public: key.public.clone(),
                valid_from: key.valid_from.to_rfc3339(),
                valid_until: key.valid_until.to_rfc3339(),
                revoked_at: key.revoked_at.map(|t| t.to_rfc3339()),
                log_key,
            });
        }
    }
    Ok((Bundle { format: BUNDLE_FORMAT.to_owned(), application: application.to_owned(), logs, keys }, notes))
}

/// `note` with the signature lines of `other` it lacks, when both are of the same text.
fn merge_signatures(note: &str, other: &str) -> String {
    let (Some((text, lines)), Some((other_text, other_lines))) = (note.split_once("\n\n"), other.split_once("\n\n"))
    else {
        return note.to_owned();
    };
    if text != other_text {
        return note.to_owned();
    }
    let mut merged: Vec<&str> = lines.lines().collect();
    for line in other_lines.lines() {
        if !merged.contains(&line) {
            merged.push(line);
        }
    }
    format!("{text}\n\n{}\n", merged.join("\n"))
}

fn hash_of(text: &str, what: &str) -> Result<Hash, Refused> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| refused("audit.bundle_malformed", format!("{what} is not 32 bytes of hex")))
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// Checks `bundle` against `trust` (the auditor's trust registry) and says what each
/// signature proves, one line each; the first thing that does not hold refuses it.
pub fn verify(bundle: &Bundle, trust: &TrustRegistry) -> Result<Vec<String>, Refused> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(refused("audit.bundle_malformed", format!("format {:?}, not {BUNDLE_FORMAT}", bundle.format)));
    }
    // The keys the bundle lists are the trust registry's: the same public key under each id.
    for key in &bundle.keys {
        let listed = trust
            .member(&key.member)
            .and_then(|member| member.keys.iter().find(|k| k.id == key.key_id))
            .is_some_and(|k| k.public.eq_ignore_ascii_case(&key.public));
        if !listed {
            return Err(refused(
                "audit.key_unknown",
                format!("key {} of {} is not so in the trust registry", key.key_id, key.member),
            ));
        }
    }
    let mut lines = Vec::new();
    for log in &bundle.logs {
        let log_keys = trust.log_keys(&log.member);
        let witnesses: Vec<_> = trust.members().iter().flat_map(|member| trust.cosigner_keys(&member.id)).collect();
        let signed_by = log_keys.iter().find_map(|(id, key)| {
            egov_tlog::open_checkpoint(log.checkpoint.as_bytes(), key.name(), key, &witnesses)
                .ok()
                .map(|opened| (id, opened))
        });
        let Some((key_id, opened)) = signed_by else {
            let why = egov_store::open_with_any(
                &log.checkpoint,
                &log_keys.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>(),
            )
            .err()
            .unwrap_or_default();
            return Err(refused(
                "audit.checkpoint_forged",
                format!("the checkpoint of {} ({}) is not signed by its key: {why}", log.participant, log.member),
            ));
        };
        let checkpoint = opened.checkpoint();
        lines.push(format!(
            "{} ({}): checkpoint of log {} at size {}, root {}, signed by key {key_id}",
            log.participant,
            log.member,
            checkpoint.origin,
            checkpoint.size,
            hex::encode(checkpoint.root)
        ));
        for cosignature in opened.cosignatures() {
            lines.push(format!(
                "  cosigned by the witness {} at {}: consistent with every checkpoint of this log it cosigned before",
                cosignature.name,
                cosignature.timestamp.map_or_else(String::new, |t| time(t.saturating_mul(1000) as i64))
            ));
        }
        for entry in &log.entries {
            let at = format!("{} entry {}", log.participant, entry.sequence);
            let envelope_bytes = hex::decode(&entry.envelope)
                .map_err(|_| refused("audit.bundle_malformed", format!("{at}: its envelope is not hex")))?;
            let proof = entry
                .proof
                .iter()
                .map(|hash| hash_of(hash, &format!("{at}: a proof's hash")))
                .collect::<Result<Vec<_>, _>>()?;
            let logged = LogEntry {
                sequence: entry.sequence,
                time_ms: entry.time_ms,
                direction: entry.direction.clone(),
                envelope: envelope_bytes,
                note: entry.note.clone(),
            };
            let index = entry
                .sequence
                .checked_sub(1)
                .ok_or_else(|| refused("audit.bundle_malformed", format!("{at}: no entry 0")))?;
            egov_tlog::verify_inclusion(&logged.leaf_hash(), index, checkpoint.size, &proof, &checkpoint.root)
                .map_err(|error| {
                    refused(
                        "audit.proof_invalid",
                        format!(
                            "{at}: it is not leaf {index} of the checkpoint's tree of size {}: {error}",
                            checkpoint.size
                        ),
                    )
                })?;
            let envelope = Envelope::decode(logged.envelope.as_slice()).map_err(|error| {
                refused("audit.envelope_invalid", format!("{at}: the envelope does not decode: {error}"))
            })?;
            let mut signatures = 0;
            egov_stack::check::verify_envelope(&envelope, trust, &mut signatures)
                .map_err(|reason| refused("audit.envelope_invalid", format!("{at}: {reason}")))?;
            let header = decode_header(&envelope.header)
                .map_err(|error| refused("audit.envelope_invalid", format!("{at}: {error}")))?;
            if header.correlation_id != bundle.application {
                return Err(refused(
                    "audit.wrong_application",
                    format!("{at}: the envelope is of application {:?}", header.correlation_id),
                ));
            }
            let mut line = String::new();
            let _ = write!(
                line,
                "  entry {} (leaf {index} of {}), logged {} as {}: message {} ({}, {}) from {} to {}, sent {}, signed by {} key {}",
                entry.sequence,
                checkpoint.size,
                time(entry.time_ms),
                entry.direction,
                header.message_id,
                header.service_id,
                MessageType::try_from(header.message_type).map_or("unknown type", |t| t.as_str_name()),
                header.sender_id,
                header.recipient_id,
                time(header.message_time_ms),
                header.sender_id,
                envelope.signatures.first().map_or("", |s| s.key_id.as_str()),
            );
            if let Some(counter) = envelope.signatures.get(1) {
                let _ = write!(line, ", countersigned by the gateway's key {}", counter.key_id);
            }
            if signatures > envelope.signatures.len() {
                let _ = write!(line, ", carrying an envelope whose signatures verify too");
            }
            lines.push(line);
        }
    }
    Ok(lines)
}
