//! Checks of a participant's store beyond the start check: every frame, the
//! whole log against its Merkle tree and checkpoints, every signature, the index against the log
//! (`egov store check`, `egov serve --verify-all`, `egov audit verify`), and
//! what the stores witness of each other's logs.

use std::collections::{BTreeMap, BTreeSet};

use egov_envelope::TrustRegistry;
use egov_proto::Envelope;
use egov_runtime::ids;
use egov_store::Store;
use prost::Message as _;

/// What checking one participant's store found.
#[derive(Debug, Default)]
pub struct StoreCheck {
    pub entries: usize,
    pub signatures: usize,
    /// Entries whose note holds the SOAP message the envelope came from or
    /// became (the SHEP edge's, `docs/shep.md`).
    pub soap: usize,
    /// Checkpoints of the log stored (each checked).
    pub checkpoints: usize,
    /// Every break found (a damaged frame, an entry that is not its leaf in the Merkle tree, a bad signature, an
    /// index that does not match the log), described.
    pub problems: Vec<String>,
}

pub use egov_runtime::evidence::verify_envelope;

/// Checks every frame of the store's log (its CRC), the whole log against
/// its Merkle tree and the head, every checkpoint (its root, and its
/// signature by one of `member`'s keys; `member` empty: the root only), every
/// signature in every envelope, and, if `index`, the index against the log.
/// Every problem is reported, not only the first.
pub fn check_store(store: &Store, trust: &TrustRegistry, index: bool, member: &str) -> anyhow::Result<StoreCheck> {
    let mut check = StoreCheck::default();
    let log_keys: Vec<_> =
        if member.is_empty() { Vec::new() } else { trust.log_keys(member).into_iter().map(|(_, key)| key).collect() };
    check.checkpoints = store.checkpoints().map(|c| c.len()).unwrap_or(0);
    match store.log_problems(None, &log_keys) {
        Ok((_, problems)) => check.problems.extend(problems.into_iter().map(|problem| problem.to_string())),
        Err(error) => {
            check.problems.push(error.to_string());
            return Ok(check);
        }
    }
    for entry in store.log_entries() {
        let Ok(entry) = entry else { continue }; // a damaged frame: reported by the log's check
        check.entries += 1;
        if entry.note.starts_with('<') {
            check.soap += 1;
        }
        let checked = Envelope::decode(entry.envelope.as_slice())
            .map_err(|e| format!("does not decode: {e}"))
            .and_then(|envelope| verify_envelope(&envelope, trust, &mut check.signatures));
        if let Err(reason) = checked {
            check.problems.push(format!("log entry {} ({} {}): {reason}", entry.sequence, entry.direction, entry.note));
        }
    }
    if index && let Some(differences) = store.check_index(20)? {
        check.problems.extend(differences.into_iter().map(|difference| format!("index: {difference}")));
    }
    Ok(check)
}

/// The participant whose member id is `member` (the stateful ones).
fn role_of(member: &str) -> Option<&'static str> {
    match member {
        ids::GATEWAY => Some("gateway"),
        ids::REGIONAL => Some("regional"),
        ids::SC_WORKSTATION => Some("workstation"),
        _ => None,
    }
}

/// A message: its sender and id.
type MessageKey = (String, String);

/// What one participant's log holds, by direction: the messages, by who sent them and their id.
#[derive(Default)]
struct Logged {
    received: BTreeSet<MessageKey>,
    /// Received messages for a stateful participant (the asynchronous channel's).
    received_for_stateful: BTreeSet<MessageKey>,
    sent: BTreeSet<MessageKey>,
    /// Delivered by the gateway: the message, to whom.
    delivered: Vec<(MessageKey, String)>,
}

fn logged(store: &Store) -> Logged {
    let mut logged = Logged::default();
    for entry in store.log_entries().flatten() {
        let Some(header) = egov_envelope::header_of_stored(&entry.envelope) else {
            continue;
        };
        let key = (header.sender_id, header.message_id);
        match entry.direction.as_str() {
            "received" => {
                if role_of(&header.recipient_id).is_some() {
                    logged.received_for_stateful.insert(key.clone());
                }
                logged.received.insert(key);
            }
            "sent" => {
                logged.sent.insert(key);
            }
            "delivered" => logged.delivered.push((key, entry.note)),
            _ => {}
        }
    }
    logged
}

/// What the participants' logs witness of each other (by participant name):
/// each message the gateway logged as delivered to a participant was
/// acknowledged by it, so its log holds it as received; each message a
/// participant received from another participant came through the gateway,
/// which logged it as received first; each message the gateway received
/// from a participant for another one (the asynchronous channel: synchronous
/// look-ups are not logged as sent) was logged by its sender as sent, in the
/// commit that queued it, before it was sent. A log that
/// lacks what another witnesses lost acknowledged messages. The problems, by
/// the participant whose log lacks them.
pub fn cross_check(stores: &BTreeMap<&str, &Store>) -> Vec<(String, String)> {
    const SHOWN: usize = 3;
    // The gateway's log first, the others after it, and the gateway's again: on a database the
    // participants write while this reads, what one log names the other already held when read.
    let logs: BTreeMap<&str, Logged> = stores.iter().map(|(name, store)| (*name, logged(store))).collect();
    let gateway_after = stores.get("gateway").map(|store| logged(store));
    let mut problems = Vec::new();
    let mut missing = |participant: &str, what: &str, keys: Vec<&MessageKey>| {
        if keys.is_empty() {
            return;
        }
        let named: Vec<String> = keys.iter().take(SHOWN).map(|(sender, id)| format!("{sender}/{id}")).collect();
        problems.push((
            participant.to_owned(),
            format!(
                "the log lost acknowledged messages: {} {} {what}, and its log does not hold {} ({}{})",
                keys.len(),
                if keys.len() == 1 { "message" } else { "messages" },
                if keys.len() == 1 { "it" } else { "them" },
                named.join(", "),
                if keys.len() > SHOWN { ", ..." } else { "" }
            ),
        ));
    };
    let (Some(gateway), Some(gateway_after)) = (logs.get("gateway"), gateway_after.as_ref()) else {
        return problems;
    };
    // The SHEP edge signs as the members whose external systems it fronts: what
    // it sent for a member is that member's as much as its own store's.
    let edge_sent = logs.get("shep").map(|log| &log.sent);
    for (&participant, log) in logs.iter().filter(|(name, _)| **name != "gateway") {
        let delivered: Vec<&MessageKey> = gateway
            .delivered
            .iter()
            .filter(|(key, target)| role_of(target) == Some(participant) && !log.received.contains(key))
            .map(|(key, _)| key)
            .collect();
        missing(participant, "the gateway's log names as delivered to it", delivered);
        let sent: Vec<&MessageKey> = gateway
            .received_for_stateful
            .iter()
            .filter(|key| {
                role_of(&key.0) == Some(participant)
                    && !log.sent.contains(*key)
                    && !edge_sent.is_some_and(|sent| sent.contains(*key))
            })
            .collect();
        missing(participant, "the gateway's log names as received from it", sent);
        let relayed: Vec<&MessageKey> = log
            .received
            .iter()
            .filter(|key| {
                matches!(role_of(&key.0), Some(from) if from != "gateway") && !gateway_after.received.contains(*key)
            })
            .collect();
        missing("gateway", &format!("the {participant}'s log names as received through it"), relayed);
    }
    problems
}

/// Problems by participant, and how many checkpoints each witness cosigned.
pub type Witnesses = (Vec<(String, String)>, BTreeMap<String, usize>);

/// What the witnesses' stores say of the logs they cosigned (`Store::witness`): every cosigned
/// checkpoint must open with its log's key and carry its witness's cosignature, and its root must
/// be the log's root at its size now (else the log showed the witness another history: a split
/// view); a split view a witness refused to cosign is reported with its evidence. The problems,
/// by the participant whose log they concern, and how many checkpoints each witness cosigned.
pub fn witness_problems(stores: &BTreeMap<&str, &Store>, trust: &TrustRegistry) -> anyhow::Result<Witnesses> {
    let mut problems = Vec::new();
    let mut cosigned_by = BTreeMap::new();
    let member_of = |participant: &str| match participant {
        "gateway" => ids::GATEWAY,
        "regional" => ids::REGIONAL,
        "workstation" => ids::SC_WORKSTATION,
        _ => "",
    };
    for (&witness_name, witness) in stores {
        let witness_member = member_of(witness_name);
        if witness_member.is_empty() {
            continue;
        }
        let cosigner_keys = trust.cosigner_keys(witness_member);
        let witnessed: Vec<(String, egov_store::Versioned<String>)> = witness.scan(egov_store::WITNESSED_PREFIX)?;
        let split: Vec<(String, egov_store::Versioned<Vec<String>>)> = witness.scan(egov_store::SPLIT_PREFIX)?;
        for (key, _) in &split {
            let key = key.strip_prefix(egov_store::SPLIT_PREFIX).unwrap_or(key);
            let origin = key.rsplit_once('/').map_or(key, |(origin, _)| origin);
            let participant = origin.strip_prefix("egov/").and_then(role_of).unwrap_or(origin);
            problems.push((
                participant.to_owned(),
                format!(
                    "split view: the log showed the {witness_name} a checkpoint not consistent with one it cosigned \
                     (the two signed notes are in the {witness_name}'s store, tlog/split/{key})"
                ),
            ));
        }
        for (key, note) in &witnessed {
            let key = key.strip_prefix(egov_store::WITNESSED_PREFIX).unwrap_or(key);
            let Some((origin, size)) = key.rsplit_once('/') else { continue };
            let Some(member) = origin.strip_prefix("egov/") else { continue };
            let log_keys: Vec<_> = trust.log_keys(member).into_iter().map(|(_, key)| key).collect();
            let opened = log_keys
                .iter()
                .find_map(|key| egov_tlog::open_checkpoint(note.value.as_bytes(), origin, key, &cosigner_keys).ok());
            let Some(opened) = opened else {
                problems.push((
                    witness_name.to_owned(),
                    format!("tlog/witnessed/{key}: the checkpoint it cosigned does not open with {origin}'s keys"),
                ));
                continue;
            };
            if opened.cosignatures().is_empty() {
                problems.push((
                    witness_name.to_owned(),
                    format!("tlog/witnessed/{key}: no cosignature of the {witness_name} verifies on it"),
                ));
                continue;
            }
            *cosigned_by.entry(witness_name.to_owned()).or_insert(0) += 1;
            let checkpoint = opened.checkpoint();
            let Some(participant) = role_of(member) else { continue };
            let Some(log) = stores.get(participant) else { continue };
            if checkpoint.size > log.tree_size()? {
                problems.push((
                    participant.to_owned(),
                    format!(
                        "the {witness_name} cosigned its checkpoint of size {size}, and its log's tree holds {} entries: \
                         it lost entries since",
                        log.tree_size()?
                    ),
                ));
                continue;
            }
            let now = log.root_at(checkpoint.size)?;
            if now != checkpoint.root {
                problems.push((
                    participant.to_owned(),
                    format!(
                        "split view: the {witness_name} cosigned its checkpoint of size {} with root {}, and its log \
                         gives root {} at that size",
                        checkpoint.size,
                        hex::encode(checkpoint.root),
                        hex::encode(now)
                    ),
                ));
            }
        }
    }
    Ok((problems, cosigned_by))
}
