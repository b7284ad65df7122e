//! Witnessing (`docs/storage.md`, "Witnesses"), both sides, as C2SP `tlog-witness` `add-checkpoint` has them:
//! a witness is shown a log's checkpoint with the size it cosigned last of that log and the consistency proof
//! from there ([`Store::add_checkpoint`]), and a log keeps the cosignatures its witnesses hand back with its
//! checkpoint ([`Store::keep_cosignatures`]). The same code serves a witness in the same process (`Store::witness`)
//! and one called over gRPC (`egov.v1.WitnessService`).

use egov_tlog::{Checkpoint, CheckpointError, Hash, NoteSignature, NoteSigner, SignedNote, VerifierKey};

use crate::{Batch, CHECKPOINT_PREFIX, SPLIT_PREFIX, Store, StoreError, Versioned, WITNESSED_PREFIX, open_with_any};

/// Where a witness keeps the last checkpoint it cosigned of a log: `tlog/witnessed-latest/ORIGIN` (the cosigned note).
pub const WITNESSED_LATEST_PREFIX: &str = "tlog/witnessed-latest/";

/// Where a log keeps a checkpoint with the cosignatures its witnesses handed back: `tlog/cosigned/SIZE` (20
/// digits), the published note with every cosignature line added.
pub const COSIGNED_PREFIX: &str = "tlog/cosigned/";

/// How many times a record is read again when another replica changed it meanwhile.
const ATTEMPTS: usize = 3;

/// Why a witness did not cosign a checkpoint. Each has a stable reason code ([`WitnessRefusal::code`]).
#[derive(Debug, thiserror::Error)]
pub enum WitnessRefusal {
    /// The checkpoint is not a signed note holding a checkpoint (C2SP: 400). Nothing is stored.
    #[error("the checkpoint is not a signed checkpoint note: {0}")]
    Malformed(String),
    /// The witness follows no log of that origin: no key of it in the trust registry (C2SP: 404). Nothing is stored.
    #[error("this witness follows no log {0:?}")]
    UnknownLog(String),
    /// No key of the log verifies the note (C2SP: 403). Nothing is stored.
    #[error("the checkpoint of {origin} does not verify with the log's keys: {detail}")]
    BadSignature { origin: String, detail: String },
    /// The old size shown is not the size of the checkpoint the witness cosigned last of that log (C2SP: 409):
    /// the log sends the checkpoint again with the proof from `known`.
    #[error(
        "this witness cosigned the checkpoint of size {known} of {origin} last, not {shown}: send the consistency \
         proof from size {known}"
    )]
    Conflict { origin: String, known: u64, shown: u64 },
    /// Another root at the size the witness cosigned: the log shows two histories. Both notes are kept under
    /// [`SPLIT_PREFIX`].
    #[error("split view: {origin} signed another root at size {size}, which this witness cosigned; both notes kept")]
    SplitView { origin: String, size: u64 },
    /// A smaller tree than the one cosigned, or a consistency proof that fails (C2SP: 422). Both notes are kept under
    /// [`SPLIT_PREFIX`].
    #[error("the checkpoint of {origin} is not consistent with the one this witness cosigned last: {detail}")]
    Inconsistent { origin: String, detail: String },
    /// The witness's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WitnessRefusal {
    /// The stable reason code (`docs/envelope.md`).
    pub fn code(&self) -> &'static str {
        match self {
            WitnessRefusal::Malformed(_) => "witness.malformed",
            WitnessRefusal::UnknownLog(_) => "witness.unknown_log",
            WitnessRefusal::BadSignature { .. } => "witness.bad_signature",
            WitnessRefusal::Conflict { .. } => "witness.conflict",
            WitnessRefusal::SplitView { .. } => "witness.split_view",
            WitnessRefusal::Inconsistent { .. } => "witness.inconsistent",
            WitnessRefusal::Store(error) => error.code(),
        }
    }
}

/// What a witness answered a checkpoint with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint's size.
    pub size: u64,
    /// The checkpoint's note with the witness's cosignature (the lines it came with kept).
    pub note: SignedNote,
    /// False: it is the checkpoint the witness cosigned last; its cosignature of then is handed back again.
    pub new: bool,
}

fn size_of_note(note: &str) -> Result<u64, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { key: WITNESSED_LATEST_PREFIX.to_owned(), reason };
    let note = SignedNote::parse(note.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    Ok(Checkpoint::parse(note.text()).map_err(|e| corrupt(e.to_string()))?.size)
}

impl Store {
    /// The size of the last checkpoint of the log `origin` this store's participant cosigned as a witness (0:
    /// none): the old size a log shows it next.
    pub fn witnessed_size(&self, origin: &str) -> Result<u64, StoreError> {
        match self.get::<String>(&format!("{WITNESSED_LATEST_PREFIX}{origin}"))? {
            Some(latest) => size_of_note(&latest.value),
            None => Ok(0),
        }
    }

    /// This store's participant as a witness of a log, as C2SP `add-checkpoint` has it: `note` (a checkpoint signed
    /// with one of `log_keys`, the log's keys, all named by its origin) is shown with `old_size`, the size of the
    /// checkpoint this witness cosigned last of that log (0: none), and `proof`, the consistency proof from there.
    /// The witness checks it against that checkpoint (`egov_tlog::cosign_if_consistent`), cosigns it with
    /// `cosigner` at `timestamp` (seconds), keeps it under [`WITNESSED_PREFIX`]`ORIGIN/SIZE` and as its latest, and
    /// only then answers. The checkpoint it cosigned last, shown again, gets its cosignature of then.
    ///
    /// Refused: see [`WitnessRefusal`]. A checkpoint not consistent with the last one cosigned (another root at its
    /// size, a smaller tree, a failed proof) is not cosigned, and both notes are kept under
    /// [`SPLIT_PREFIX`]`ORIGIN/SIZE-ROOT` (ROOT: the first 8 bytes of the shown checkpoint's root, hex), evidence
    /// anyone can check with the log's key.
    pub async fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &[u8],
        log_keys: &[VerifierKey],
        cosigner: &NoteSigner,
        timestamp: u64,
    ) -> Result<Cosigned, WitnessRefusal> {
        let signed = SignedNote::parse(note).map_err(|e| WitnessRefusal::Malformed(e.to_string()))?;
        let checkpoint = Checkpoint::parse(signed.text()).map_err(|e| WitnessRefusal::Malformed(e.to_string()))?;
        let origin = checkpoint.origin.clone();
        let keys: Vec<VerifierKey> = log_keys.iter().filter(|key| key.name() == origin).cloned().collect();
        if keys.is_empty() {
            return Err(WitnessRefusal::UnknownLog(origin));
        }
        let mut detail = String::new();
        let Some(log_key) = keys.iter().find(|key| match egov_tlog::open_checkpoint(note, &origin, key, &[]) {
            Ok(_) => true,
            Err(error) => {
                detail = error.to_string();
                false
            }
        }) else {
            return Err(WitnessRefusal::BadSignature { origin, detail });
        };
        let shown = String::from_utf8_lossy(note).into_owned();
        let latest_key = format!("{WITNESSED_LATEST_PREFIX}{origin}");
        let mut lost_race = None;
        for _ in 0..ATTEMPTS {
            let latest: Option<Versioned<String>> = self.get(&latest_key)?;
            let latest_version = latest.as_ref().map_or(0, |latest| latest.version);
            let last = latest
                .map(|latest| open_with_any(&latest.value, &keys))
                .transpose()
                .map_err(|reason| StoreError::Corrupt { key: latest_key.clone(), reason })?;
            let known = last.as_ref().map_or(0, |last| last.checkpoint().size);
            if old_size != known {
                return Err(WitnessRefusal::Conflict { origin, known, shown: old_size });
            }
            if let Some(last) = &last
                && last.checkpoint().size == checkpoint.size
                && last.checkpoint().root == checkpoint.root
            {
                return Ok(Cosigned { size: checkpoint.size, note: last.note().clone(), new: false });
            }
            let size = checkpoint.size;
            match egov_tlog::cosign_if_consistent(note, &origin, log_key, last.as_ref(), proof, cosigner, timestamp) {
                Ok(cosigned) => {
                    let mut batch = Batch::new();
                    batch.put(format!("{WITNESSED_PREFIX}{origin}/{size:020}"), 0, &cosigned.to_string())?;
                    batch.put(latest_key.clone(), latest_version, &cosigned.to_string())?;
                    match self.commit(batch).await {
                        Ok(_) => return Ok(Cosigned { size, note: cosigned, new: true }),
                        // Another replica of the witness cosigned meanwhile: read what it did.
                        Err(error @ StoreError::Conflict { .. }) => lost_race = Some(error),
                        Err(error) => return Err(error.into()),
                    }
                }
                Err(CheckpointError::Note(error)) => return Err(WitnessRefusal::Malformed(error.to_string())),
                Err(error) => {
                    let refusal = match &error {
                        CheckpointError::SplitView(view) => {
                            WitnessRefusal::SplitView { origin: origin.clone(), size: view.size }
                        }
                        CheckpointError::Older { .. } | CheckpointError::Inconsistent { .. } => {
                            WitnessRefusal::Inconsistent { origin: origin.clone(), detail: error.to_string() }
                        }
                        _ => return Err(WitnessRefusal::Malformed(error.to_string())),
                    };
                    let last_note = last.as_ref().map(|last| last.note().to_string()).unwrap_or_default();
                    let mut batch = Batch::new();
                    // One record per checkpoint shown (its size and the start of its root): a bad proof at
                    // a size does not hide another root shown at that size after it.
                    let shown_key = format!(
                        "{SPLIT_PREFIX}{origin}/{size:020}-{}",
                        checkpoint.root[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
                    );
                    batch.put(shown_key, 0, &vec![last_note, shown.clone()])?;
                    match self.commit(batch).await {
                        // The first evidence of that size is kept.
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(error) => return Err(error.into()),
                    }
                    tracing::error!(origin, size, code = refusal.code(), %refusal, "a log showed this witness a checkpoint it will not cosign");
                    return Err(refusal);
                }
            }
        }
        Err(lost_race.map_or_else(|| WitnessRefusal::Malformed("no attempt made".to_owned()), Into::into))
    }

    /// A log's record of its witnesses' cosignatures of its checkpoint of `size`: `cosignatures` (lines a witness
    /// handed back, checked by the caller) are added to the note kept under [`COSIGNED_PREFIX`]`SIZE` (at first,
    /// the published checkpoint), a line by the same key replacing the one before. The note kept.
    pub async fn keep_cosignatures(&self, size: u64, cosignatures: &[NoteSignature]) -> Result<String, StoreError> {
        let key = format!("{COSIGNED_PREFIX}{size:020}");
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let kept: Option<Versioned<String>> = self.get(&key)?;
            let version = kept.as_ref().map_or(0, |kept| kept.version);
            let note = match kept {
                Some(kept) => kept.value,
                None => {
                    let published: Option<Versioned<String>> = self.get(&format!("{CHECKPOINT_PREFIX}{size:020}"))?;
                    published
                        .ok_or_else(|| StoreError::Corrupt {
                            key: key.clone(),
                            reason: format!("there is no checkpoint of size {size} to keep cosignatures with"),
                        })?
                        .value
                }
            };
            let corrupt = |reason: String| StoreError::Corrupt { key: key.clone(), reason };
            let mut note = SignedNote::parse(note.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
            for cosignature in cosignatures {
                note.keep_signature(cosignature.clone()).map_err(|e| corrupt(e.to_string()))?;
            }
            let note = note.to_string();
            let mut batch = Batch::new();
            batch.put(key.clone(), version, &note)?;
            // Unflushed (`docs/storage.md`, "A commit"): lost, the log shows its witness the checkpoint again after
            // a restart and gets the same cosignature.
            match self.commit_unflushed(batch).await {
                Ok(_) => return Ok(note),
                Err(error @ StoreError::Conflict { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(StoreError::Stopped))
    }

    /// The checkpoint of `size` with the cosignatures its witnesses handed back ([`Store::keep_cosignatures`]), if
    /// any did.
    pub fn cosigned_checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        Ok(self.get::<String>(&format!("{COSIGNED_PREFIX}{size:020}"))?.map(|kept| kept.value))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use egov_tlog::{NoteSigner, VerifierKey};

    use super::*;

    struct Fixture {
        _dirs: [tempfile::TempDir; 2],
        log: Store,
        witness: Store,
        signer: NoteSigner,
        cosigner: NoteSigner,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            let log = Store::open(dirs[0].path(), 8 << 20).unwrap();
            let witness = Store::open(dirs[1].path(), 8 << 20).unwrap();
            let signer = NoteSigner::ed25519("egov/log", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap();
            let cosigner =
                NoteSigner::cosigner_v1("egov/witness", ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
            Fixture { _dirs: dirs, log, witness, signer, cosigner }
        }

        fn keys(&self) -> Vec<VerifierKey> {
            vec![self.signer.verifier()]
        }

        /// `count` more entries and a checkpoint: its size and note.
        async fn grow(&self, count: u8) -> (u64, String) {
            for byte in 0..count {
                let mut batch = Batch::new();
                batch.log(1, "received", vec![byte], "", Vec::new());
                self.log.commit(batch).await.unwrap();
            }
            self.log.publish_checkpoint(&self.signer).await.unwrap();
            self.log.latest_checkpoint().unwrap().unwrap()
        }

        async fn show(&self, old: u64, proof: &[Hash], note: &str) -> Result<Cosigned, WitnessRefusal> {
            self.witness.add_checkpoint(old, proof, note.as_bytes(), &self.keys(), &self.cosigner, 100).await
        }

        fn split_evidence(&self) -> Vec<(String, Versioned<Vec<String>>)> {
            self.witness.scan(SPLIT_PREFIX).unwrap()
        }
    }

    #[tokio::test]
    async fn a_witness_cosigns_from_the_size_it_cosigned_last_and_says_its_size_otherwise() {
        let f = Fixture::new();
        let (two, note) = f.grow(2).await;
        let first = f.show(0, &[], &note).await.unwrap();
        assert!(first.new && first.size == two);
        assert_eq!(f.witness.witnessed_size("egov/log").unwrap(), 2);
        // Shown again: the cosignature of then, nothing stored anew.
        let again = f.show(2, &[], &note).await.unwrap();
        assert!(!again.new);
        assert_eq!(again.note, first.note);
        let (five, note) = f.grow(3).await;
        // A stale old size: the witness's size in the answer, nothing stored.
        let stale = f.show(0, &[], &note).await.unwrap_err();
        assert!(matches!(stale, WitnessRefusal::Conflict { known: 2, shown: 0, .. }), "{stale}");
        assert_eq!(stale.code(), "witness.conflict");
        let proof = f.log.consistency_proof(2, five).unwrap();
        assert!(f.show(2, &proof, &note).await.unwrap().new);
        assert_eq!(f.witness.witnessed_size("egov/log").unwrap(), 5);
        // The log keeps the cosignature with its checkpoint; the note verifies with both keys.
        let cosigned = f.show(5, &[], &note).await.unwrap().note;
        let lines: Vec<_> = cosigned.signatures().iter().filter(|s| s.name == "egov/witness").cloned().collect();
        f.log.keep_cosignatures(5, &lines).await.unwrap();
        let kept = f.log.cosigned_checkpoint(5).unwrap().unwrap();
        let opened =
            egov_tlog::open_checkpoint(kept.as_bytes(), "egov/log", &f.signer.verifier(), &[f.cosigner.verifier()])
                .unwrap();
        assert_eq!(opened.cosignatures().len(), 1);
        assert!(f.split_evidence().is_empty());
    }

    #[tokio::test]
    async fn a_bad_proof_a_smaller_tree_and_another_root_are_refused_with_the_evidence_kept() {
        let f = Fixture::new();
        let (_, two) = f.grow(2).await;
        let (_, five) = f.grow(3).await;
        f.show(0, &[], &two).await.unwrap();
        // A proof that does not join them.
        let refused = f.show(2, &[[0; 32], [1; 32]], &five).await.unwrap_err();
        assert_eq!(refused.code(), "witness.inconsistent", "{refused}");
        assert_eq!(f.split_evidence().len(), 1);
        assert_eq!(f.witness.witnessed_size("egov/log").unwrap(), 2, "nothing cosigned");
        // Cosigned at 5, then shown 2 again: a smaller tree.
        let proof = f.log.consistency_proof(2, 5).unwrap();
        f.show(2, &proof, &five).await.unwrap();
        let refused = f.show(5, &[], &two).await.unwrap_err();
        assert_eq!(refused.code(), "witness.inconsistent", "{refused}");
        // Another root at 5, signed with the log's key.
        let forged = Checkpoint::new("egov/log", 5, [3; 32]).sign(&f.signer).unwrap().to_string();
        let refused = f.show(5, &[], &forged).await.unwrap_err();
        assert_eq!(refused.code(), "witness.split_view", "{refused}");
        let evidence = f.split_evidence();
        let (_, notes) = evidence
            .iter()
            .find(|(key, _)| key.contains(&format!("{:020}-", 5)) && key.ends_with("0303030303030303"))
            .unwrap();
        let opened: Vec<_> = notes
            .value
            .iter()
            .map(|note| egov_tlog::open_checkpoint(note.as_bytes(), "egov/log", &f.signer.verifier(), &[]).unwrap())
            .collect();
        egov_tlog::detect_split_view(&opened[0], &opened[1]).unwrap().verify(&f.signer.verifier()).unwrap();
    }

    #[tokio::test]
    async fn an_unknown_log_a_bad_signature_and_a_malformed_note_store_nothing() {
        let f = Fixture::new();
        let (_, note) = f.grow(2).await;
        let other = NoteSigner::ed25519("egov/log", ed25519_dalek::SigningKey::from_bytes(&[8; 32])).unwrap();
        let by_other = Checkpoint::new("egov/log", 2, [1; 32]).sign(&other).unwrap().to_string();
        assert_eq!(f.show(0, &[], &by_other).await.unwrap_err().code(), "witness.bad_signature");
        let elsewhere = NoteSigner::ed25519("egov/else", ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap();
        let of_else = Checkpoint::new("egov/else", 2, [1; 32]).sign(&elsewhere).unwrap().to_string();
        assert_eq!(f.show(0, &[], &of_else).await.unwrap_err().code(), "witness.unknown_log");
        for garbage in ["", "egov/log\n2\n", &note.replace("egov/log\n", "egov/log\nx\n")] {
            let refused = f.show(0, &[], garbage).await.unwrap_err();
            assert!(matches!(refused.code(), "witness.malformed" | "witness.bad_signature"), "{garbage:?}: {refused}");
        }
        assert!(f.split_evidence().is_empty());
        assert_eq!(f.witness.witnessed_size("egov/log").unwrap(), 0);
        assert!(f.witness.scan::<String>(WITNESSED_PREFIX).unwrap().is_empty());
    }
}
