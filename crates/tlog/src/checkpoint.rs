//! C2SP `tlog-checkpoint`: a log's origin, size and root as a signed note; witnesses' cosignatures; split views.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::hash::Hash;
use crate::note::{NoteError, NoteSigner, SigType, SignedNote, VerifiedSignature, VerifierKey};
use crate::proof::{VerifyError, verify_consistency};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note itself (its format or a signature) was refused.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The text has fewer than three lines, or an empty line.
    #[error("a checkpoint is at least three non-empty lines (origin, size, root)")]
    BadLines,
    /// The size line is not a decimal number without leading zeroes that fits 64 bits.
    #[error("the size line {0:?} is not a decimal number without leading zeroes")]
    BadSize(String),
    /// The root line is not the base64 of 32 bytes.
    #[error("the root line {0:?} is not the base64 of a 32-byte hash")]
    BadRoot(String),
    /// An origin or extension line that cannot be written (empty, or holding a newline or a control character).
    #[error("the line {0:?} cannot be a checkpoint line")]
    BadLine(String),
    /// The checkpoint is another log's.
    #[error("the checkpoint is of the log {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
    /// The note verified, but not with the log's own key: a checkpoint is the log's statement first.
    #[error("the checkpoint is not signed by the log's key {name}")]
    NotSignedByLog { name: String },
    /// The new checkpoint is smaller than the one seen last: a witness does not cosign the past.
    #[error("the checkpoint has {new} leaves, fewer than the {last} seen last")]
    Older { last: u64, new: u64 },
    /// The consistency proof from the last checkpoint seen to the new one does not verify.
    #[error("the checkpoint of {new} leaves is not proved consistent with the one of {last} seen last: {source}")]
    Inconsistent { last: u64, new: u64, source: VerifyError },
    /// Two checkpoints of the same size with different roots, both signed by the log: proof that it shows two
    /// histories.
    #[error("split view: the log signed two roots at size {}", .0.size)]
    SplitView(Box<SplitView>),
    /// Evidence of a split view that does not show one (the sizes differ, or the roots are the same).
    #[error("the two checkpoints do not show a split view")]
    NotASplitView,
}

/// A checkpoint's content: the note text of C2SP `tlog-checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name (a schema-less URL is recommended, e.g. `egov.kz/gateway`).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 9162 root at that size.
    pub root: Hash,
    /// Extension lines, non-empty (C2SP recommends none: monitors cannot audit them).
    pub extensions: Vec<String>,
}

fn check_line(line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() || line.bytes().any(|b| b < 0x20) {
        return Err(CheckpointError::BadLine(line.to_owned()));
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint { origin: origin.to_owned(), size, root, extensions: Vec::new() }
    }

    /// The note text: origin, size in decimal, base64 root, then the extension lines, each ending with a newline.
    pub fn text(&self) -> Result<String, CheckpointError> {
        check_line(&self.origin)?;
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root));
        for line in &self.extensions {
            check_line(line)?;
            text.push_str(line);
            text.push('\n');
        }
        Ok(text)
    }

    /// Parses a note text as a checkpoint.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let lines = text.strip_suffix('\n').ok_or(CheckpointError::BadLines)?;
        let lines: Vec<&str> = lines.split('\n').collect();
        if lines.len() < 3 || lines.iter().any(|line| line.is_empty()) {
            return Err(CheckpointError::BadLines);
        }
        let size_line = lines[1];
        let canonical =
            size_line.bytes().all(|b| b.is_ascii_digit()) && (size_line == "0" || !size_line.starts_with('0'));
        let size = canonical
            .then(|| size_line.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| CheckpointError::BadSize(size_line.to_owned()))?;
        let bad_root = || CheckpointError::BadRoot(lines[2].to_owned());
        let root: Hash = BASE64.decode(lines[2]).map_err(|_| bad_root())?.try_into().map_err(|_| bad_root())?;
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size,
            root,
            extensions: lines[3..].iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Signs the checkpoint with the log's key: a signed note with one signature line.
    pub fn sign(&self, log: &NoteSigner) -> Result<SignedNote, CheckpointError> {
        let mut note = SignedNote::new(&self.text()?)?;
        note.add_signature(log)?;
        Ok(note)
    }
}

/// A checkpoint whose note verified: signed by the log's key, with the cosignatures of the known witnesses.
/// Only [`open_checkpoint`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: SignedNote,
    log_signature: VerifiedSignature,
    cosignatures: Vec<VerifiedSignature>,
}

impl VerifiedCheckpoint {
    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The note, with every signature line it came with (unknown ones too, as they were).
    pub fn note(&self) -> &SignedNote {
        &self.note
    }

    /// The log's signature.
    pub fn log_signature(&self) -> &VerifiedSignature {
        &self.log_signature
    }

    /// The known witnesses' cosignatures that verified, each witness once.
    pub fn cosignatures(&self) -> &[VerifiedSignature] {
        &self.cosignatures
    }
}

/// Opens a checkpoint note of the log `origin`: it must be signed by `log_key` (an Ed25519 key, not a cosigner's), every signature by the log's key
/// or one of `witnesses` must verify (C2SP: a bad signature by a known key refuses the note), and signatures by
/// other keys are ignored. Returns the checkpoint with the witnesses' cosignatures that verified.
pub fn open_checkpoint(
    note: &[u8],
    origin: &str,
    log_key: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    if log_key.sig_type() != SigType::Ed25519 {
        return Err(NoteError::WrongSignatureType { wanted: SigType::Ed25519, found: log_key.sig_type() }.into());
    }
    let note = SignedNote::parse(note)?;
    let mut keys = Vec::with_capacity(witnesses.len() + 1);
    keys.push(log_key.clone());
    keys.extend(witnesses.iter().cloned());
    let verified = match note.verify(&keys) {
        Err(NoteError::NoKnownSignature) => {
            return Err(CheckpointError::NotSignedByLog { name: log_key.name().to_owned() });
        }
        other => other?,
    };
    let is_log = |v: &VerifiedSignature| v.name == log_key.name() && v.key_id == log_key.key_id();
    let log_signature = verified
        .iter()
        .find(|v| is_log(v))
        .cloned()
        .ok_or_else(|| CheckpointError::NotSignedByLog { name: log_key.name().to_owned() })?;
    let checkpoint = Checkpoint::parse(note.text())?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin { expected: origin.to_owned(), found: checkpoint.origin });
    }
    let cosignatures = verified.into_iter().filter(|v| !is_log(v)).collect();
    Ok(VerifiedCheckpoint { checkpoint, note, log_signature, cosignatures })
}

/// Proof that a log showed two histories: two checkpoints of the same origin and size with different roots,
/// each signed by the log's key. Anyone with the log's public key can check it ([`SplitView::verify`]).
///
/// Two checkpoints of different sizes are inconsistent when no consistency proof joins them; that cannot be shown
/// from the two notes alone (a missing proof proves nothing), so this crate's evidence is the same-size case. A
/// witness that checks consistency before cosigning ([`cosign_if_consistent`]) never cosigns the second history;
/// the log can only extend each of its two histories apart, and two witnesses that compare the checkpoints they
/// cosigned at one size find this evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitView {
    /// The log.
    pub origin: String,
    /// The size both checkpoints give.
    pub size: u64,
    /// The two notes, as they were signed.
    pub notes: [String; 2],
}

impl SplitView {
    /// Checks the evidence again from the notes alone: both open with the log's key, are of `origin`, have the
    /// same size and different roots.
    pub fn verify(&self, log_key: &VerifierKey) -> Result<(), CheckpointError> {
        let a = open_checkpoint(self.notes[0].as_bytes(), &self.origin, log_key, &[])?;
        let b = open_checkpoint(self.notes[1].as_bytes(), &self.origin, log_key, &[])?;
        match detect_split_view(&a, &b) {
            Some(view) if view.size == self.size => Ok(()),
            _ => Err(CheckpointError::NotASplitView),
        }
    }
}

/// The split view two verified checkpoints show, if they do: same origin, same size, different roots.
pub fn detect_split_view(a: &VerifiedCheckpoint, b: &VerifiedCheckpoint) -> Option<SplitView> {
    let (x, y) = (&a.checkpoint, &b.checkpoint);
    (x.origin == y.origin && x.size == y.size && x.root != y.root).then(|| SplitView {
        origin: x.origin.clone(),
        size: x.size,
        notes: [a.note.to_string(), b.note.to_string()],
    })
}

/// What a witness does with a new checkpoint of a log it follows: opens it with the log's key, checks it against
/// the last checkpoint it cosigned (`last`, none for the first) with the log's consistency `proof`, and only then
/// cosigns it with a `cosignature/v1` at `timestamp`. Returns the note with the witness's cosignature added (the
/// other signature lines kept), which is what the witness hands back and keeps as its new `last`.
///
/// Refused: a note the log did not sign, a smaller size than `last` ([`CheckpointError::Older`]), the same size
/// with another root ([`CheckpointError::SplitView`], with both notes as evidence), a proof that does not verify
/// ([`CheckpointError::Inconsistent`]).
pub fn cosign_if_consistent(
    note: &[u8],
    origin: &str,
    log_key: &VerifierKey,
    last: Option<&VerifiedCheckpoint>,
    proof: &[Hash],
    witness: &NoteSigner,
    timestamp: u64,
) -> Result<SignedNote, CheckpointError> {
    let new = open_checkpoint(note, origin, log_key, &[])?;
    if let Some(last) = last {
        let (old, now) = (&last.checkpoint, &new.checkpoint);
        if now.size < old.size {
            return Err(CheckpointError::Older { last: old.size, new: now.size });
        }
        if let Some(view) = detect_split_view(last, &new) {
            return Err(CheckpointError::SplitView(Box::new(view)));
        }
        verify_consistency(old.size, now.size, &old.root, &now.root, proof)
            .map_err(|source| CheckpointError::Inconsistent { last: old.size, new: now.size, source })?;
    }
    let mut cosigned = new.note;
    cosigned.add_cosignature(witness, timestamp)?;
    Ok(cosigned)
}
