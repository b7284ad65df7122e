//! C2SP `signed-note`: a text signed by one or more keys, with Ed25519 signatures (type `0x01`) and the Ed25519
//! witness cosignatures of C2SP `tlog-cosignature` (`cosignature/v1`, type `0x04`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

/// The most signature lines a note may carry; a note with more is refused (the spec asks verifiers to accept
/// at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The largest note accepted, in bytes.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The start of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The first line of the message a `cosignature/v1` signs.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

/// Why a note, a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_SIZE`].
    #[error("the note has {size} bytes, more than the {MAX_NOTE_SIZE} accepted")]
    TooLarge { size: usize },
    /// The note is not valid UTF-8.
    #[error("the note is not UTF-8")]
    NotUtf8,
    /// The note holds an ASCII control character other than newline.
    #[error("the note holds the control character {byte:#04x} at byte {offset}")]
    ControlCharacter { byte: u8, offset: usize },
    /// The text is empty or does not end with a newline.
    #[error("the note's text is empty or does not end with a newline")]
    BadText,
    /// No blank line separates the text from the signatures, or no signature line follows it.
    #[error("the note has no signature lines after a blank line")]
    NoSignatures,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has {count} signatures, more than the {MAX_SIGNATURES} accepted")]
    TooManySignatures { count: usize },
    /// A signature line is not `— <key name> <base64>`.
    #[error("malformed signature line {line:?}")]
    MalformedSignatureLine { line: String },
    /// A key name is empty or holds a space or a `+`.
    #[error("the key name {name:?} is empty or holds a space or a '+'")]
    BadKeyName { name: String },
    /// A verifier key is not `<name>+<8 hex digits>+<base64(type || public key)>`.
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey { reason: &'static str },
    /// A verifier key's type byte is not one this crate verifies.
    #[error("signature type {0:#04x} is not supported (only Ed25519 0x01 and cosignature/v1 0x04)")]
    UnsupportedSignatureType(u8),
    /// A verifier key's key id is not the one its name, type and public key give.
    #[error("the verifier key's id {found:08x} is not {expected:08x}, the id of its name and key")]
    KeyIdMismatch { expected: u32, found: u32 },
    /// A signature by a known key (same name and key id) does not verify: the whole note is refused.
    #[error("the signature of {name} ({key_id:08x}) does not verify")]
    BadSignature { name: String, key_id: u32 },
    /// No signature by a known key.
    #[error("the note has no signature by a known key")]
    NoKnownSignature,
    /// A signer used for the wrong kind of signature (a log key to cosign, a cosigner key to sign).
    #[error("a {found:?} key cannot make a {wanted:?} signature")]
    WrongSignatureType { wanted: SigType, found: SigType },
    /// A cosignature timestamp above 2⁶³ - 1.
    #[error("cosignature timestamp {0} is above 2^63 - 1")]
    BadTimestamp(u64),
}

/// The signature types this crate makes and verifies (C2SP signed-note's type bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigType {
    /// `0x01`: an Ed25519 signature over the note text. The log signs its checkpoints with it.
    Ed25519,
    /// `0x04`: a C2SP `tlog-cosignature` Ed25519 cosignature: a timestamp and an Ed25519 signature over
    /// `cosignature/v1\ntime <timestamp>\n` and the note text. Witnesses cosign with it.
    CosignatureV1,
}

impl SigType {
    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            SigType::Ed25519 => 0x01,
            SigType::CosignatureV1 => 0x04,
        }
    }

    /// The type of a type byte.
    pub fn from_byte(byte: u8) -> Result<SigType, NoteError> {
        match byte {
            0x01 => Ok(SigType::Ed25519),
            0x04 => Ok(SigType::CosignatureV1),
            other => Err(NoteError::UnsupportedSignatureType(other)),
        }
    }
}

/// The key id of a key: `SHA-256(key name || 0x0A || type byte || 32-byte public key)[:4]`, big-endian.
pub fn key_id(name: &str, sig_type: SigType, public_key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', sig_type.byte()]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NoteError::BadKeyName { name: name.to_owned() });
    }
    Ok(())
}

/// A public key a verifier trusts: a name, a signature type and an Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    sig_type: SigType,
    key: VerifyingKey,
    key_id: u32,
}

impl VerifierKey {
    /// A verifier key; the name must be non-empty, with no space and no `+`.
    pub fn new(name: &str, sig_type: SigType, key: VerifyingKey) -> Result<VerifierKey, NoteError> {
        check_key_name(name)?;
        Ok(VerifierKey { name: name.to_owned(), sig_type, key, key_id: key_id(name, sig_type, &key) })
    }

    /// Parses the signed-note text form `<name>+<key id, 8 hex digits>+<base64(type byte || public key)>` (as
    /// Go's `sumdb/note` writes it); the key id must be the one of the name and key.
    pub fn parse(vkey: &str) -> Result<VerifierKey, NoteError> {
        let malformed = |reason| NoteError::MalformedVerifierKey { reason };
        let (name, rest) = vkey.split_once('+').ok_or(malformed("no '+' after the name"))?;
        let (id, key) = rest.split_once('+').ok_or(malformed("no '+' after the key id"))?;
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("the key id is not 8 hex digits"));
        }
        let found = u32::from_str_radix(id, 16).map_err(|_| malformed("the key id is not 8 hex digits"))?;
        let key = BASE64.decode(key).map_err(|_| malformed("the key is not base64"))?;
        let (&type_byte, public) = key.split_first().ok_or(malformed("the key is empty"))?;
        let sig_type = SigType::from_byte(type_byte)?;
        let public: &[u8; 32] = public.try_into().map_err(|_| malformed("the public key is not 32 bytes"))?;
        let public =
            VerifyingKey::from_bytes(public).map_err(|_| malformed("the public key is not an Ed25519 point"))?;
        let key = VerifierKey::new(name, sig_type, public)?;
        if key.key_id != found {
            return Err(NoteError::KeyIdMismatch { expected: key.key_id, found });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signature type.
    pub fn sig_type(&self) -> SigType {
        self.sig_type
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, ()> {
        match self.sig_type {
            SigType::Ed25519 => {
                let signature = Signature::from_slice(signature).map_err(|_| ())?;
                self.key.verify_strict(text.as_bytes(), &signature).map_err(|_| ())?;
                Ok(None)
            }
            SigType::CosignatureV1 => {
                if signature.len() != 8 + 64 {
                    return Err(());
                }
                let (timestamp, signature) = signature.split_at(8);
                let timestamp = u64::from_be_bytes(timestamp.try_into().map_err(|_| ())?);
                let message = cosigned_message(text, timestamp).map_err(|_| ())?;
                let signature = Signature::from_slice(signature).map_err(|_| ())?;
                self.key.verify_strict(message.as_bytes(), &signature).map_err(|_| ())?;
                Ok(Some(timestamp))
            }
        }
    }
}

/// The text form [`VerifierKey::parse`] reads.
impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![self.sig_type.byte()];
        key.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(key))
    }
}

fn cosigned_message(text: &str, timestamp: u64) -> Result<String, NoteError> {
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::BadTimestamp(timestamp));
    }
    Ok(format!("{COSIGNATURE_HEADER}time {timestamp}\n{text}"))
}

/// A private key that signs notes: a log's key ([`SigType::Ed25519`]) or a witness's ([`SigType::CosignatureV1`]).
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    sig_type: SigType,
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner").field("name", &self.name).field("sig_type", &self.sig_type).finish()
    }
}

impl NoteSigner {
    /// A log's signer: plain Ed25519 signatures over the note text.
    pub fn ed25519(name: &str, key: SigningKey) -> Result<NoteSigner, NoteError> {
        check_key_name(name)?;
        Ok(NoteSigner { name: name.to_owned(), sig_type: SigType::Ed25519, key })
    }

    /// A witness's signer: timestamped `cosignature/v1` cosignatures.
    pub fn cosigner_v1(name: &str, key: SigningKey) -> Result<NoteSigner, NoteError> {
        check_key_name(name)?;
        Ok(NoteSigner { name: name.to_owned(), sig_type: SigType::CosignatureV1, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signature type.
    pub fn sig_type(&self) -> SigType {
        self.sig_type
    }

    /// The public key that verifies this signer's signatures.
    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey {
            name: self.name.clone(),
            sig_type: self.sig_type,
            key,
            key_id: key_id(&self.name, self.sig_type, &key),
        }
    }
}

/// One signature line: the key name, the key id and the signature bytes that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id, the first four bytes of the line's base64.
    pub key_id: u32,
    /// The rest: an Ed25519 signature, or a cosignature's timestamp and signature.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one signature line (without its newline), as a note carries it: nothing is verified here.
    pub fn parse(line: &str) -> Result<NoteSignature, NoteError> {
        let malformed = || NoteError::MalformedSignatureLine { line: line.to_owned() };
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(malformed)?;
        let (name, encoded) = rest.split_once(' ').ok_or_else(malformed)?;
        check_key_name(name)?;
        let bytes = BASE64.decode(encoded).map_err(|_| malformed())?;
        if bytes.len() < 5 {
            return Err(malformed());
        }
        let (id, signature) = bytes.split_at(4);
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            signature: signature.to_vec(),
        })
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        write!(f, "{SIGNATURE_PREFIX}{} {}", self.name, BASE64.encode(bytes))
    }
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The key's name.
    pub name: String,
    /// The key's id.
    pub key_id: u32,
    /// The signature type.
    pub sig_type: SigType,
    /// A cosignature's timestamp (POSIX seconds), as the cosigner wrote it.
    pub timestamp: Option<u64>,
}

/// A note: its text and its signature lines (not necessarily verified: see [`SignedNote::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_characters(bytes: &[u8]) -> Result<(), NoteError> {
    match bytes.iter().position(|&b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter { byte: bytes[offset], offset }),
        None => Ok(()),
    }
}

impl SignedNote {
    /// A note with no signature yet. The text must be non-empty, end with a newline and hold no control
    /// character other than newline.
    pub fn new(text: &str) -> Result<SignedNote, NoteError> {
        check_characters(text.as_bytes())?;
        if !text.ends_with('\n') {
            return Err(NoteError::BadText);
        }
        Ok(SignedNote { text: text.to_owned(), signatures: Vec::new() })
    }

    /// Parses a signed note: the text (up to and with the newline before the last blank line) and its
    /// signature lines, at least one. Nothing is verified here.
    pub fn parse(note: &[u8]) -> Result<SignedNote, NoteError> {
        if note.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { size: note.len() });
        }
        let note = std::str::from_utf8(note).map_err(|_| NoteError::NotUtf8)?;
        check_characters(note.as_bytes())?;
        let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        let lines = signatures.strip_suffix('\n').ok_or(NoteError::NoSignatures)?;
        if lines.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let lines: Vec<&str> = lines.split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { count: lines.len() });
        }
        let mut note = SignedNote::new(text)?;
        for line in lines {
            note.signatures.push(NoteSignature::parse(line)?);
        }
        Ok(note)
    }

    /// The text the signatures sign, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in their order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds an Ed25519 signature by a log's signer.
    pub fn add_signature(&mut self, signer: &NoteSigner) -> Result<(), NoteError> {
        if signer.sig_type != SigType::Ed25519 {
            return Err(NoteError::WrongSignatureType { wanted: SigType::Ed25519, found: signer.sig_type });
        }
        let signature = signer.key.sign(self.text.as_bytes()).to_bytes().to_vec();
        self.push(signer, signature)
    }

    /// Adds a `cosignature/v1` cosignature by a witness's signer, made at `timestamp` (POSIX seconds: time is a
    /// parameter, so simulated time cosigns at its own time).
    pub fn add_cosignature(&mut self, signer: &NoteSigner, timestamp: u64) -> Result<(), NoteError> {
        if signer.sig_type != SigType::CosignatureV1 {
            return Err(NoteError::WrongSignatureType { wanted: SigType::CosignatureV1, found: signer.sig_type });
        }
        let message = cosigned_message(&self.text, timestamp)?;
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&signer.key.sign(message.as_bytes()).to_bytes());
        self.push(signer, signature)
    }

    /// Adds a signature line made elsewhere (a witness's cosignature handed back), unverified: check the note
    /// with [`SignedNote::verify`] after. A line by the same key (name and key id) is replaced.
    pub fn keep_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        self.signatures.retain(|s| !(s.name == signature.name && s.key_id == signature.key_id));
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { count: self.signatures.len() + 1 });
        }
        self.signatures.push(signature);
        Ok(())
    }

    fn push(&mut self, signer: &NoteSigner, signature: Vec<u8>) -> Result<(), NoteError> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { count: self.signatures.len() + 1 });
        }
        let key_id = key_id(&signer.name, signer.sig_type, &signer.key.verifying_key());
        // A key signs a note once: its new signature replaces an old one.
        self.signatures.retain(|s| !(s.name == signer.name && s.key_id == key_id));
        self.signatures.push(NoteSignature { name: signer.name.clone(), key_id, signature });
        Ok(())
    }

    /// Verifies the signatures by the known `keys`, as C2SP signed-note requires: a signature whose name and key
    /// id are not those of a known key is ignored; one that is must verify, or the whole note is refused
    /// ([`NoteError::BadSignature`]); and at least one must ([`NoteError::NoKnownSignature`]). Returns the known
    /// signatures, each key once, in the note's order.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<Vec<VerifiedSignature>, NoteError> {
        let mut verified: Vec<VerifiedSignature> = Vec::new();
        for line in &self.signatures {
            let Some(key) = keys.iter().find(|k| k.name == line.name && k.key_id == line.key_id) else { continue };
            let bad = || NoteError::BadSignature { name: line.name.clone(), key_id: line.key_id };
            let timestamp = key.verify(&self.text, &line.signature).map_err(|()| bad())?;
            if !verified.iter().any(|v| v.name == key.name && v.key_id == key.key_id) {
                verified.push(VerifiedSignature {
                    name: key.name.clone(),
                    key_id: key.key_id,
                    sig_type: key.sig_type,
                    timestamp,
                });
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(verified)
    }
}

/// The note as it travels: the text, a blank line, one line per signature.
impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        for signature in &self.signatures {
            writeln!(f, "{signature}")?;
        }
        Ok(())
    }
}
