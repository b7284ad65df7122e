//! Evidence for one application (`docs/envelope.md`, "Evidence bundles"): the bundle's format,
//! the gathering of one participant's part of it from its store (its latest checkpoint and the
//! application's entries with their inclusion proofs), the trust registry's keys it lists, and
//! the offline verification of a bundle, a log at a time. `egov audit prove` and `verify-bundle`,
//! every participant's `EvidenceService` ([`EvidenceServer`]) and the console's application page
//! share this one piece of code.

use std::fmt::Write as _;

use egov_envelope::{Checks, TrustRegistry, carried_envelope, decode_header, open, verify_countersignature};
use egov_proto::evidence_service_server::{EvidenceService, EvidenceServiceServer};
use egov_proto::{Envelope, EvidenceEntry, MessageType, ProveApplicationRequest, ProveApplicationResponse};
use egov_store::{LogEntry, Store, StoreError};
use egov_tlog::{Hash, NoteSigner, SignedNote};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tonic::{Code, Request, Response, Status};

use crate::{Refusal, ids};

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

/// Why a bundle, or a log of it, was refused: a stable code and what was found.
#[derive(Debug, Clone)]
pub struct Refused {
    pub code: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Refused {}

fn refused(code: &'static str, detail: impl Into<String>) -> Refused {
    Refused { code, detail: detail.into() }
}

/// One participant's part of an application's evidence, gathered from its store.
#[derive(Debug, Default)]
pub struct Part {
    /// Its log's latest checkpoint and the application's entries it covers; none when the log holds
    /// none of the application's entries or has no checkpoint yet.
    pub log: Option<LogEvidence>,
    /// The checkpoint's size (0 without one).
    pub size: u64,
    /// What was left out and why.
    pub notes: Vec<String>,
}

/// `participant`'s part of the evidence of `application` in `store`: its latest checkpoint,
/// as published, with the cosignatures its witnesses handed back, and the application's entries in its log with their inclusion proofs against
/// it. An entry after that checkpoint is left out and said in the notes.
pub fn gather(application: &str, participant: &str, member: &str, store: &Store) -> Result<Part, StoreError> {
    let entries = store.indexed_log(&format!("application/{application}"), usize::MAX)?;
    if entries.is_empty() || member.is_empty() {
        return Ok(Part::default());
    }
    let Some((size, mut checkpoint)) = store.latest_checkpoint()? else {
        let notes = vec![format!("{participant}: no checkpoint yet: its {} entries are left out", entries.len())];
        return Ok(Part { log: None, size: 0, notes });
    };
    // With the cosignatures its witnesses handed back (`Store::keep_cosignatures`), those in other
    // processes too.
    if let Some(cosigned) = store.cosigned_checkpoint(size)? {
        checkpoint = merge_signatures(&checkpoint, &cosigned);
    }
    let mut notes = Vec::new();
    let mut proved = Vec::new();
    for entry in entries {
        if entry.sequence > size {
            notes.push(format!(
                "{participant}: entry {} is after the latest checkpoint (size {size}): left out",
                entry.sequence
            ));
            continue;
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
    let log = (!proved.is_empty()).then(|| LogEvidence {
        participant: participant.to_owned(),
        member: member.to_owned(),
        checkpoint,
        entries: proved,
    });
    Ok(Part { log, size, notes })
}

/// The bundle of `application` from `stores` (participant, member id, store), opened in one
/// process (`egov audit prove`): each participant's part ([`gather`]), its checkpoint with the
/// cosignatures the other stores keep of it as its witnesses. What could not be proved (an entry
/// after the latest checkpoint) is left out and said in the notes.
pub fn prove(
    application: &str,
    stores: &[(&str, &str, &Store)],
    trust: &TrustRegistry,
) -> anyhow::Result<(Bundle, Vec<String>)> {
    let mut logs = Vec::new();
    let mut notes = Vec::new();
    for &(participant, member, store) in stores {
        let part = gather(application, participant, member, store)?;
        notes.extend(part.notes);
        let Some(mut log) = part.log else { continue };
        for &(_, _, witness) in stores {
            if let Some(cosigned) = witnessed_at(witness, member, part.size)? {
                log.checkpoint = merge_signatures(&log.checkpoint, &cosigned);
            }
        }
        logs.push(log);
    }
    Ok((bundle(application, logs, trust)?, notes))
}

/// The cosigned checkpoint of the log of `member` at `size` that the participant of `store`
/// keeps as its witness (`egov_store::WITNESSED_PREFIX`), if it cosigned that one.
pub fn witnessed_at(store: &Store, member: &str, size: u64) -> Result<Option<String>, StoreError> {
    let key = format!("{}{}/{size:020}", egov_store::WITNESSED_PREFIX, egov_envelope::log_origin(member));
    Ok(store.get::<String>(&key)?.map(|cosigned| cosigned.value))
}

/// The latest checkpoint of each log the participant of `store` cosigned as its witness.
pub fn witnessed_latest(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store.scan::<String>(egov_store::WITNESSED_LATEST_PREFIX)?.into_iter().map(|(_, note)| note.value).collect())
}

/// `note` with the signatures of `other` it lacks (a key's signature in `other` in place of the
/// same key's in `note`), when both are signed notes of the same text; else `note` as it is.
pub fn merge_signatures(note: &str, other: &str) -> String {
    let (Ok(mut merged), Ok(other)) = (SignedNote::parse(note.as_bytes()), SignedNote::parse(other.as_bytes())) else {
        return note.to_owned();
    };
    if merged.text() != other.text() {
        return note.to_owned();
    }
    for signature in other.signatures() {
        if merged.keep_signature(signature.clone()).is_err() {
            return note.to_owned();
        }
    }
    merged.to_string()
}

/// The bundle of `application` made of `logs` (each participant's part, cosigned where the
/// witnesses' cosignatures were found), with the keys of `trust` valid between their first and
/// last entry. Refused when no log holds a proved entry.
pub fn bundle(application: &str, logs: Vec<LogEvidence>, trust: &TrustRegistry) -> anyhow::Result<Bundle> {
    if logs.iter().all(|log| log.entries.is_empty()) {
        anyhow::bail!("no participant's log holds a proved envelope of application {application}");
    }
    let keys = keys(&logs, trust);
    Ok(Bundle { format: BUNDLE_FORMAT.to_owned(), application: application.to_owned(), logs, keys })
}

/// The keys of `trust` valid at some time between the first and the last of the entries of
/// `logs` (their logging times and their envelopes' message times), with their checkpoint
/// verifier keys.
pub fn keys(logs: &[LogEvidence], trust: &TrustRegistry) -> Vec<KeyEvidence> {
    let (mut first_ms, mut last_ms) = (i64::MAX, i64::MIN);
    for entry in logs.iter().flat_map(|log| &log.entries) {
        first_ms = first_ms.min(entry.time_ms);
        last_ms = last_ms.max(entry.time_ms);
        if let Ok(bytes) = hex::decode(&entry.envelope)
            && let Ok(envelope) = Envelope::decode(bytes.as_slice())
            && let Ok(header) = decode_header(&envelope.header)
        {
            first_ms = first_ms.min(header.message_time_ms);
            last_ms = last_ms.max(header.message_time_ms);
        }
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
    keys
}

/// Verifies an envelope's signatures, and those of the envelopes it carries (counted in `signatures`).
pub fn verify_envelope(envelope: &Envelope, trust: &TrustRegistry, signatures: &mut usize) -> Result<(), String> {
    let checks = Checks { max_body_bytes: usize::MAX, freshness_window_ms: None };
    let verified = open(envelope, trust, 0, &checks).map_err(|e| format!("{}: {e}", e.code()))?;
    *signatures += 1;
    if envelope.signatures.len() > 1 {
        verify_countersignature(envelope, &verified, trust, ids::GATEWAY).map_err(|e| format!("{}: {e}", e.code()))?;
        *signatures += 1;
    }
    let inner = carried_envelope(&verified, &envelope.body).map_err(|e| format!("{}: {e}", e.code()))?;
    if let Some(inner) = inner {
        verify_envelope(&inner, trust, signatures).map_err(|e| format!("the envelope it carries: {e}"))?;
    }
    Ok(())
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

/// What verifying one log of a bundle proved.
#[derive(Debug, Clone)]
pub struct ProvedLog {
    /// The checkpoint's size: the entries are proved against the tree of this many entries.
    pub size: u64,
    /// The id of the participant's key that signed the checkpoint.
    pub key_id: String,
    /// The witnesses whose cosignatures of the checkpoint verified (their key names).
    pub cosigners: Vec<String>,
    /// What each signature proves, one line each (`egov audit verify-bundle` prints them).
    pub lines: Vec<String>,
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
        lines.extend(verify_log(&bundle.application, log, trust)?.lines);
    }
    Ok(lines)
}

/// Checks one log of the evidence of `application` against `trust`: its checkpoint's signature
/// by one of its member's keys (and the witnesses' cosignatures it carries), each entry's
/// inclusion proof against that checkpoint, each envelope's signatures, and that each envelope is
/// of the application. The first thing that does not hold refuses it.
pub fn verify_log(application: &str, log: &LogEvidence, trust: &TrustRegistry) -> Result<ProvedLog, Refused> {
    let mut lines = Vec::new();
    let log_keys = trust.log_keys(&log.member);
    let witnesses: Vec<_> = trust.members().iter().flat_map(|member| trust.cosigner_keys(&member.id)).collect();
    let signed_by = log_keys.iter().find_map(|(id, key)| {
        egov_tlog::open_checkpoint(log.checkpoint.as_bytes(), key.name(), key, &witnesses)
            .ok()
            .map(|opened| (id, opened))
    });
    let Some((key_id, opened)) = signed_by else {
        let why =
            egov_store::open_with_any(&log.checkpoint, &log_keys.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>())
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
    let mut cosigners = Vec::new();
    for cosignature in opened.cosignatures() {
        cosigners.push(cosignature.name.clone());
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
        egov_tlog::verify_inclusion(&logged.leaf_hash(), index, checkpoint.size, &proof, &checkpoint.root).map_err(
            |error| {
                refused(
                    "audit.proof_invalid",
                    format!(
                        "{at}: it is not leaf {index} of the checkpoint's tree of size {}: {error}",
                        checkpoint.size
                    ),
                )
            },
        )?;
        let envelope = Envelope::decode(logged.envelope.as_slice()).map_err(|error| {
            refused("audit.envelope_invalid", format!("{at}: the envelope does not decode: {error}"))
        })?;
        let mut signatures = 0;
        verify_envelope(&envelope, trust, &mut signatures)
            .map_err(|reason| refused("audit.envelope_invalid", format!("{at}: {reason}")))?;
        let header = decode_header(&envelope.header)
            .map_err(|error| refused("audit.envelope_invalid", format!("{at}: {error}")))?;
        if header.correlation_id != application {
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
    Ok(ProvedLog { size: checkpoint.size, key_id: key_id.clone(), cosigners, lines })
}

/// A participant's part as `EvidenceService.ProveApplication` answers it.
pub fn to_response(part: &Part, witnessed: Vec<String>) -> ProveApplicationResponse {
    let Some(log) = &part.log else {
        return ProveApplicationResponse { notes: part.notes.clone(), witnessed, ..Default::default() };
    };
    let unhex = |text: &str| hex::decode(text).unwrap_or_default();
    ProveApplicationResponse {
        participant: log.participant.clone(),
        member_id: log.member.clone(),
        checkpoint: log.checkpoint.clone(),
        entries: log
            .entries
            .iter()
            .map(|entry| EvidenceEntry {
                sequence: entry.sequence,
                logged_time_ms: entry.time_ms,
                direction: entry.direction.clone(),
                note: entry.note.clone(),
                envelope: unhex(&entry.envelope),
                proof: entry.proof.iter().map(|hash| unhex(hash)).collect(),
            })
            .collect(),
        notes: part.notes.clone(),
        witnessed,
    }
}

/// The log of a `ProveApplication` answer, as a bundle holds it (none when it proves no entry).
pub fn from_response(answer: &ProveApplicationResponse) -> Option<LogEvidence> {
    (!answer.entries.is_empty()).then(|| LogEvidence {
        participant: answer.participant.clone(),
        member: answer.member_id.clone(),
        checkpoint: answer.checkpoint.clone(),
        entries: answer
            .entries
            .iter()
            .map(|entry| EntryEvidence {
                sequence: entry.sequence,
                time_ms: entry.logged_time_ms,
                direction: entry.direction.clone(),
                note: entry.note.clone(),
                envelope: hex::encode(&entry.envelope),
                proof: entry.proof.iter().map(hex::encode).collect(),
            })
            .collect(),
    })
}

/// Serves `EvidenceService` over a participant's store: its part of an application's evidence.
#[derive(Debug, Clone)]
pub struct EvidenceServer {
    participant: &'static str,
    member: &'static str,
    store: Store,
    signer: NoteSigner,
}

impl EvidenceServer {
    /// `participant` (gateway, regional, workstation) of member id `member`, whose log is in
    /// `store` and whose checkpoints `signer` signs.
    pub fn new(participant: &'static str, member: &'static str, store: Store, signer: NoteSigner) -> EvidenceServer {
        EvidenceServer { participant, member, store, signer }
    }

    pub fn into_service(self) -> EvidenceServiceServer<EvidenceServer> {
        EvidenceServiceServer::new(self)
    }
}

fn store_status(error: StoreError) -> Status {
    Refusal::from(error).into()
}

#[tonic::async_trait]
impl EvidenceService for EvidenceServer {
    async fn prove_application(
        &self,
        request: Request<ProveApplicationRequest>,
    ) -> Result<Response<ProveApplicationResponse>, Status> {
        let application = request.into_inner().application_id;
        ids::check_id("application id", &application)?;
        let key = format!("application/{application}");
        let entries = self.store.indexed_log(&key, usize::MAX).map_err(store_status)?;
        let Some(last) = entries.last().map(|entry| entry.sequence) else {
            return Err(Refusal::new(
                Code::NotFound,
                "evidence.unknown_application",
                format!("the {}'s log holds no envelope of application {application}", self.participant),
            )
            .into());
        };
        // The proofs are against a published checkpoint: one that covers the entries, published
        // now when the latest does not (another replica's may be published meanwhile: either does).
        let covered = self.store.latest_checkpoint().map_err(store_status)?.is_some_and(|(size, _)| size >= last);
        if !covered {
            self.store.publish_checkpoint(&self.signer).await.map_err(store_status)?;
        }
        let store = self.store.clone();
        let (participant, member) = (self.participant, self.member);
        let answer = tokio::task::spawn_blocking(move || -> Result<ProveApplicationResponse, StoreError> {
            let part = gather(&application, participant, member, &store)?;
            let answer = to_response(&part, witnessed_latest(&store)?);
            // Entries none of which a checkpoint covers yet: who answers, and the notes that say so.
            Ok(ProveApplicationResponse { participant: participant.to_owned(), member_id: member.to_owned(), ..answer })
        })
        .await
        .map_err(|error| {
            Status::from(Refusal::new(Code::Internal, "store.io", format!("the proofs were not read: {error}")))
        })?
        .map_err(store_status)?;
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_witness_s_cosignature_joins_only_a_checkpoint_of_the_same_text() {
        let log = egov_envelope::Signer::from_seed("a", "a:1", &[1; 32]).note_signer();
        let witness = egov_envelope::Signer::from_seed("w", "w:1", &[2; 32]).cosigner();
        let checkpoint = |size: u64| egov_tlog::Checkpoint::new(log.name(), size, [7; 32]).sign(&log).unwrap();
        let note = checkpoint(7).to_string();
        let mut cosigned = checkpoint(7);
        cosigned.add_cosignature(&witness, 1_700_000_000).unwrap();
        let cosigned = cosigned.to_string();
        let merged = merge_signatures(&note, &cosigned);
        assert_eq!(merged, cosigned, "the log's signature, then the witness's");
        assert_eq!(merged.lines().filter(|line| line.starts_with("— ")).count(), 2, "{merged}");
        // Merged twice, each signature once.
        assert_eq!(merge_signatures(&merged, &cosigned), merged);
        // Another size (another text): left as it is; and what is not a note.
        let mut other = checkpoint(8);
        other.add_cosignature(&witness, 1_700_000_000).unwrap();
        assert_eq!(merge_signatures(&note, &other.to_string()), note);
        assert_eq!(merge_signatures(&note, "not a note"), note);
    }
}
