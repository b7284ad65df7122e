//! Witnesses across processes (`docs/storage.md`, "Witnesses"): `egov.v1.WitnessService`, which every
//! participant with a message log serves ([`WitnessServer`]), and the log's side ([`Witnessing`]), which shows
//! each of its witnesses every new checkpoint with the consistency proof from the one that witness cosigned last,
//! and keeps the cosignatures handed back with the checkpoint. Modelled on C2SP `tlog-witness` `add-checkpoint`.
//! A witness in the same process is called without the network, through the same code ([`WitnessPeer::Local`]).

use std::sync::Arc;
use std::time::Duration;

use egov_envelope::TrustRegistry;
use egov_proto::witness_service_client::WitnessServiceClient;
use egov_proto::witness_service_server::{WitnessService, WitnessServiceServer};
use egov_proto::{AddCheckpointRequest, AddCheckpointResponse};
use egov_store::{Cosigned, Store, WitnessRefusal};
use egov_tlog::{Checkpoint, Hash, NoteSignature, NoteSigner, SignedNote};
use tonic::{Code, Request, Response, Status};

use crate::{Clock as _, GrpcChannel, Refusal, SharedTrust, SystemClock, ids};

/// The metadata entry of a `witness.conflict` refusal that gives the size of the checkpoint the witness cosigned
/// last of the log (decimal): the log sends its checkpoint again with the consistency proof from there.
pub const WITNESS_SIZE_KEY: &str = "egov-witness-size";

/// How long a log waits for one witness's answer before it tries again next round.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The logs `member` witnesses, and the witnesses of `member`'s log (the relation is its own inverse): the gateway
/// and each other participant with a message log witness each other.
pub fn witness_peers(member: &str) -> &'static [&'static str] {
    match member {
        ids::GATEWAY => &[ids::REGIONAL, ids::SC_WORKSTATION],
        ids::REGIONAL | ids::SC_WORKSTATION => &[ids::GATEWAY],
        _ => &[],
    }
}

/// Serves `WitnessService` over a participant's store: it cosigns the checkpoints of the logs it follows
/// ([`witness_peers`]) with the participant's cosigner key.
#[derive(Debug, Clone)]
pub struct WitnessServer {
    store: Store,
    trust: SharedTrust,
    member: String,
    cosigner: NoteSigner,
}

impl WitnessServer {
    /// `member`'s witness, keeping what it cosigned in `store`, cosigning with `cosigner`.
    pub fn new(store: Store, trust: SharedTrust, member: &str, cosigner: NoteSigner) -> WitnessServer {
        WitnessServer { store, trust, member: member.to_owned(), cosigner }
    }

    pub fn into_service(self) -> WitnessServiceServer<WitnessServer> {
        WitnessServiceServer::new(self)
    }

    /// The check and the cosignature ([`Store::add_checkpoint`]) of a checkpoint `note` of a log this witness
    /// follows, with the log's keys in the trust registry in force; the cosignature says the wall clock's time.
    pub async fn add_checkpoint(&self, old_size: u64, proof: &[Hash], note: &[u8]) -> Result<Cosigned, WitnessRefusal> {
        let signed = SignedNote::parse(note).map_err(|e| WitnessRefusal::Malformed(e.to_string()))?;
        let origin = Checkpoint::parse(signed.text()).map_err(|e| WitnessRefusal::Malformed(e.to_string()))?.origin;
        let followed = witness_peers(&self.member)
            .iter()
            .copied()
            .find(|member| egov_envelope::log_origin(member) == origin)
            .ok_or_else(|| WitnessRefusal::UnknownLog(origin.clone()))?;
        let keys: Vec<_> = self.trust.current().log_keys(followed).into_iter().map(|(_, key)| key).collect();
        let now = u64::try_from(SystemClock.now_ms() / 1000).unwrap_or(0);
        self.store.add_checkpoint(old_size, proof, note, &keys, &self.cosigner, now).await
    }

    /// This witness's cosignature lines on `note`.
    fn cosignature_lines(&self, note: &SignedNote) -> Vec<String> {
        let key_id = self.cosigner.verifier().key_id();
        note.signatures()
            .iter()
            .filter(|line| line.name == self.cosigner.name() && line.key_id == key_id)
            .map(ToString::to_string)
            .collect()
    }
}

/// A witness's refusal as the caller receives it.
fn refusal_status(refusal: WitnessRefusal) -> Status {
    let code = match &refusal {
        WitnessRefusal::Malformed(_) => Code::InvalidArgument,
        WitnessRefusal::UnknownLog(_) => Code::NotFound,
        WitnessRefusal::BadSignature { .. } => Code::PermissionDenied,
        // C2SP's 409: the log sends it again with the proof from the witness's size (not the same call again).
        WitnessRefusal::Conflict { .. } | WitnessRefusal::SplitView { .. } | WitnessRefusal::Inconsistent { .. } => {
            Code::FailedPrecondition
        }
        WitnessRefusal::Store(_) => {
            let WitnessRefusal::Store(error) = refusal else { unreachable!("matched above") };
            return Refusal::from(error).into_status();
        }
    };
    let mut status = Refusal::new(code, refusal.code(), &refusal);
    if let WitnessRefusal::Conflict { known, .. } = refusal {
        status = status.with_text(WITNESS_SIZE_KEY, known.to_string());
    }
    status.into_status()
}

#[tonic::async_trait]
impl WitnessService for WitnessServer {
    async fn add_checkpoint(
        &self,
        request: Request<AddCheckpointRequest>,
    ) -> Result<Response<AddCheckpointResponse>, Status> {
        let request = request.into_inner();
        let proof = request
            .consistency_proof
            .iter()
            .map(|hash| Hash::try_from(hash.as_slice()))
            .collect::<Result<Vec<Hash>, _>>()
            .map_err(|_| {
                refusal_status(WitnessRefusal::Malformed("a hash of the consistency proof is not 32 bytes".to_owned()))
            })?;
        let cosigned = WitnessServer::add_checkpoint(self, request.old_size, &proof, &request.checkpoint)
            .await
            .map_err(refusal_status)?;
        Ok(Response::new(AddCheckpointResponse { cosignatures: self.cosignature_lines(&cosigned.note) }))
    }
}

/// Where a log's witness is: in this process (called directly), or at an address (called over gRPC).
#[derive(Debug, Clone)]
pub enum WitnessPeer {
    Local(WitnessServer),
    Remote(WitnessServiceClient<GrpcChannel>),
}

/// Why a witness did not cosign a checkpoint shown to it.
#[derive(Debug, Clone)]
pub struct NotCosigned {
    /// The witness's reason code (none: no answer, e.g. the witness is down).
    pub reason: Option<String>,
    pub message: String,
    /// With `witness.conflict`: the size the witness cosigned last.
    pub known: Option<u64>,
}

impl std::fmt::Display for NotCosigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn not_cosigned(reason: &str, message: impl std::fmt::Display) -> NotCosigned {
    NotCosigned { reason: Some(reason.to_owned()), message: message.to_string(), known: None }
}

impl WitnessPeer {
    /// Shows the witness `note` with `old_size` and `proof`: its cosignature lines.
    async fn add_checkpoint(&self, old_size: u64, proof: Vec<Hash>, note: String) -> Result<Vec<String>, NotCosigned> {
        match self {
            WitnessPeer::Local(witness) => match witness.add_checkpoint(old_size, &proof, note.as_bytes()).await {
                Ok(cosigned) => Ok(witness.cosignature_lines(&cosigned.note)),
                Err(refusal) => Err(NotCosigned {
                    reason: Some(refusal.code().to_owned()),
                    message: refusal.to_string(),
                    known: match refusal {
                        WitnessRefusal::Conflict { known, .. } => Some(known),
                        _ => None,
                    },
                }),
            },
            WitnessPeer::Remote(client) => {
                let request = AddCheckpointRequest {
                    old_size,
                    consistency_proof: proof.iter().map(|hash| hash.to_vec()).collect(),
                    checkpoint: note.into_bytes(),
                };
                let mut client = client.clone();
                match tokio::time::timeout(CALL_TIMEOUT, client.add_checkpoint(request)).await {
                    Ok(Ok(response)) => Ok(response.into_inner().cosignatures),
                    Ok(Err(status)) => Err(NotCosigned {
                        reason: crate::reason_of(&status).map(str::to_owned),
                        message: status.message().to_owned(),
                        known: crate::status::text_of(&status, WITNESS_SIZE_KEY).and_then(|size| size.parse().ok()),
                    }),
                    Err(_) => Err(NotCosigned {
                        reason: None,
                        message: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                        known: None,
                    }),
                }
            }
        }
    }
}

/// A log and one of its witnesses: what the log knows of the witness.
#[derive(Debug)]
pub struct LogWitness {
    log: Store,
    log_member: String,
    witness_member: String,
    peer: WitnessPeer,
    /// The size of the checkpoint the witness cosigned last, as far as the log knows (none: not known yet; the
    /// witness's `witness.conflict` tells it).
    known: Option<u64>,
    /// Whether the last push failed (logged once, until one passes again).
    failing: bool,
}

impl LogWitness {
    /// `log_member`'s log, kept in `log`, witnessed by `witness_member` at `peer`.
    pub fn new(log: Store, log_member: &str, witness_member: &str, peer: WitnessPeer) -> LogWitness {
        LogWitness {
            log,
            log_member: log_member.to_owned(),
            witness_member: witness_member.to_owned(),
            peer,
            known: None,
            failing: false,
        }
    }

    /// Shows the witness the log's latest checkpoint, unless it cosigned it already, with the consistency proof
    /// from the size it cosigned last (learned from its `witness.conflict` when not known), checks the cosignature
    /// it hands back with its key in `trust` and keeps it with the checkpoint ([`Store::keep_cosignatures`]). The
    /// size cosigned, if a checkpoint was.
    pub async fn push(&mut self, trust: &TrustRegistry) -> Result<Option<u64>, NotCosigned> {
        let store_error = |error: egov_store::StoreError| not_cosigned(error.code(), error);
        // At most twice: the second time with the size the witness said it cosigned last (the
        // checkpoint it cosigned last, shown again, gets its cosignature of then).
        for attempt in 0..2 {
            let Some((size, note)) = self.log.latest_checkpoint().map_err(store_error)? else { return Ok(None) };
            if attempt == 0 && self.known == Some(size) {
                return Ok(None);
            }
            let old = self.known.unwrap_or(0);
            if old > size {
                // Another replica of the log published a newer checkpoint than the one read: next round.
                if self.log.tree_size().map_err(store_error)? >= old {
                    return Ok(None);
                }
                return Err(not_cosigned(
                    "witness.conflict",
                    format!(
                        "the witness cosigned this log's checkpoint of size {old}, and its tree holds fewer \
                         entries: the log lost entries"
                    ),
                ));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                self.log.consistency_proof(old, size).map_err(store_error)?
            };
            match self.peer.add_checkpoint(old, proof, note.clone()).await {
                Ok(lines) => {
                    let kept = self.check_cosignatures(&note, &lines, trust)?;
                    self.log.keep_cosignatures(size, &kept).await.map_err(store_error)?;
                    self.known = Some(size);
                    return Ok(Some(size));
                }
                Err(refused) if refused.reason.as_deref() == Some("witness.conflict") && refused.known.is_some() => {
                    self.known = refused.known;
                }
                Err(refused) => return Err(refused),
            }
        }
        Err(not_cosigned("witness.conflict", "the witness's size changed while the log called it"))
    }

    /// The lines of `lines` that are the witness's cosignatures of `note`, verified with its keys in `trust`.
    fn check_cosignatures(
        &self,
        note: &str,
        lines: &[String],
        trust: &TrustRegistry,
    ) -> Result<Vec<NoteSignature>, NotCosigned> {
        let bad = |detail: String| {
            not_cosigned(
                "witness.bad_cosignature",
                format!(
                    "the {}'s answer holds no cosignature of the checkpoint that verifies: {detail}",
                    self.witness_member
                ),
            )
        };
        let mut merged = SignedNote::parse(note.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let mut parsed = Vec::new();
        for line in lines {
            let signature = NoteSignature::parse(line).map_err(|e| bad(e.to_string()))?;
            merged.keep_signature(signature.clone()).map_err(|e| bad(e.to_string()))?;
            parsed.push(signature);
        }
        let witness_keys = trust.cosigner_keys(&self.witness_member);
        let origin = egov_envelope::log_origin(&self.log_member);
        let merged = merged.to_string();
        let mut last = String::from("no key of the log's");
        for (_, log_key) in trust.log_keys(&self.log_member) {
            match egov_tlog::open_checkpoint(merged.as_bytes(), &origin, &log_key, &witness_keys) {
                Ok(opened) if !opened.cosignatures().is_empty() => {
                    let verified = opened.cosignatures();
                    return Ok(parsed
                        .into_iter()
                        .filter(|line| verified.iter().any(|v| v.name == line.name && v.key_id == line.key_id))
                        .collect());
                }
                Ok(_) => last = "none of its lines is the witness's".to_owned(),
                Err(error) => last = error.to_string(),
            }
        }
        Err(bad(last))
    }
}

/// The logs of this process and their witnesses: one round shows each witness its log's latest checkpoint.
#[derive(Debug)]
pub struct Witnessing {
    trust: SharedTrust,
    pairs: tokio::sync::Mutex<Vec<LogWitness>>,
}

impl Witnessing {
    pub fn new(trust: SharedTrust, pairs: Vec<LogWitness>) -> Arc<Witnessing> {
        Arc::new(Witnessing { trust, pairs: tokio::sync::Mutex::new(pairs) })
    }

    /// One round: every log shows each of its witnesses its latest checkpoint ([`LogWitness::push`]), one after
    /// the other. A witness that does not answer, or refuses, is logged (once, until it cosigns again) and shown
    /// the checkpoint again next round; nothing waits for it but this round.
    pub async fn round(&self) {
        let trust = self.trust.current();
        let mut pairs = self.pairs.lock().await;
        for pair in pairs.iter_mut() {
            let pushed = match tokio::time::timeout(CALL_TIMEOUT * 2, pair.push(&trust)).await {
                Ok(pushed) => pushed,
                Err(_) => Err(NotCosigned { reason: None, message: "no answer in time".to_owned(), known: None }),
            };
            match pushed {
                Ok(cosigned) => {
                    if pair.failing {
                        tracing::info!(
                            log = pair.log_member,
                            witness = pair.witness_member,
                            ?cosigned,
                            "the witness cosigns again"
                        );
                    }
                    pair.failing = false;
                }
                Err(refused) => {
                    let reason = refused.reason.as_deref().unwrap_or("none");
                    let inconsistent = matches!(reason, "witness.split_view" | "witness.inconsistent");
                    if inconsistent {
                        tracing::error!(log = pair.log_member, witness = pair.witness_member, reason, %refused, "the witness refuses this log's checkpoint");
                    } else if !pair.failing {
                        tracing::warn!(log = pair.log_member, witness = pair.witness_member, reason, %refused, "not cosigned: shown again next round");
                    } else {
                        tracing::debug!(log = pair.log_member, witness = pair.witness_member, reason, %refused, "not cosigned");
                    }
                    pair.failing = true;
                }
            }
        }
    }

    /// [`Witnessing::round`] every `every`.
    pub async fn run(self: Arc<Witnessing>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.round().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::KeyDir;

    struct Participant {
        _dir: tempfile::TempDir,
        store: Store,
        signer: NoteSigner,
        cosigner: NoteSigner,
    }

    fn participant(keys: &KeyDir, trust: &TrustRegistry, member: &str) -> Participant {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let signer = keys.signer_in(trust, member).unwrap();
        Participant { _dir: dir, store, signer: signer.note_signer(), cosigner: signer.cosigner() }
    }

    async fn grow(log: &Participant, count: u8) {
        for byte in 0..count {
            let mut batch = egov_store::Batch::new();
            batch.log(1, "received", vec![byte], "", Vec::new());
            log.store.commit(batch).await.unwrap();
        }
        log.store.publish_checkpoint(&log.signer).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_log_learns_its_witnesses_size_keeps_the_cosignature_and_a_witness_down_blocks_nothing() {
        let keys_dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::new(keys_dir.path());
        let day_ago = chrono::DateTime::from_timestamp_millis(SystemClock.now_ms() - 86_400_000).unwrap();
        let trust = keys.init(ids::DEFAULT_MEMBERS, day_ago).unwrap();
        let shared = SharedTrust::new(trust.clone());
        let (log, witness) =
            (participant(&keys, &trust, ids::SC_WORKSTATION), participant(&keys, &trust, ids::GATEWAY));
        let server = WitnessServer::new(witness.store.clone(), shared.clone(), ids::GATEWAY, witness.cosigner.clone());
        let local = || WitnessPeer::Local(server.clone());
        grow(&log, 2).await;
        let mut pushing = LogWitness::new(log.store.clone(), ids::SC_WORKSTATION, ids::GATEWAY, local());
        assert_eq!(pushing.push(&trust).await.unwrap(), Some(2));
        assert_eq!(pushing.push(&trust).await.unwrap(), None, "cosigned already: not shown again");
        // A log that restarted knows nothing of its witness: it shows old size 0, learns 2 from the
        // witness's `witness.conflict`, and sends the proof from 2.
        grow(&log, 3).await;
        let mut restarted = LogWitness::new(log.store.clone(), ids::SC_WORKSTATION, ids::GATEWAY, local());
        assert_eq!(restarted.push(&trust).await.unwrap(), Some(5));
        assert_eq!(witness.store.witnessed_size(&egov_envelope::log_origin(ids::SC_WORKSTATION)).unwrap(), 5);
        // The log keeps the witness's cosignature with its checkpoint.
        let kept = log.store.cosigned_checkpoint(5).unwrap().unwrap();
        let opened = egov_tlog::open_checkpoint(
            kept.as_bytes(),
            &egov_envelope::log_origin(ids::SC_WORKSTATION),
            &log.signer.verifier(),
            &trust.cosigner_keys(ids::GATEWAY),
        )
        .unwrap();
        assert_eq!(opened.cosignatures().len(), 1);
        // A witness at an address where nothing listens: not cosigned, said without a reason
        // code, and the log's commits go on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let remote = WitnessPeer::Remote(WitnessServiceClient::new(crate::tls::connect(&closed, None, "").unwrap()));
        let mut down = LogWitness::new(log.store.clone(), ids::SC_WORKSTATION, ids::GATEWAY, remote);
        let refused = down.push(&trust).await.unwrap_err();
        assert_eq!(refused.reason, None, "{refused}");
        grow(&log, 1).await;
        let witnessing = Witnessing::new(shared, vec![down]);
        witnessing.round().await;
        assert!(witnessing.pairs.lock().await[0].failing);
        // A witness that does not follow that log refuses it.
        let regional = WitnessServer::new(
            witness.store.clone(),
            SharedTrust::new(trust.clone()),
            ids::REGIONAL,
            witness.cosigner.clone(),
        );
        let mut wrong =
            LogWitness::new(log.store.clone(), ids::SC_WORKSTATION, ids::REGIONAL, WitnessPeer::Local(regional));
        assert_eq!(wrong.push(&trust).await.unwrap_err().reason.as_deref(), Some("witness.unknown_log"));
    }
}
