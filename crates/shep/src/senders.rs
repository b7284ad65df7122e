//! SHEP senders as data (`keys/shep/senders.toml`, docs/shep.md "Senders"):
//! each `senderId` is a member of the trust registry, with its password as a
//! salted hash, the members whose business-data signature the edge makes for
//! it, and where its status notifications are pushed.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::faults::Fault;
use crate::wire::SenderInfo;

/// One sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub sender_id: String,
    /// The member of the trust registry the sender is: the edge signs as it.
    pub member: String,
    /// Hex of the random salt bytes.
    pub salt: String,
    /// Hex of SHA-256 over the salt's bytes, then the password's UTF-8 bytes.
    pub password_sha256: String,
    /// The members whose signature the edge makes for this sender (the
    /// operators of a State Corporation system, the staff of an ARM).
    #[serde(default)]
    pub signs_for: Vec<String>,
    /// Where `changeMassageStatusNotification` is pushed, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_endpoint: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendersFile {
    #[serde(default)]
    sender: Vec<Sender>,
}

/// The table of senders.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    senders: Vec<Sender>,
}

/// `keys/shep/senders.toml`.
pub fn senders_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join("shep").join("senders.toml")
}

/// `keys/secrets/shep-SENDER.password`.
pub fn password_path(keys_dir: &Path, sender_id: &str) -> PathBuf {
    keys_dir.join("secrets").join(format!("shep-{sender_id}.password"))
}

/// Hex SHA-256 over `salt`'s bytes (hex-decoded), then `password`.
pub fn password_hash(salt_hex: &str, password: &str) -> Option<String> {
    let salt = hex::decode(salt_hex).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(&salt);
    hasher.update(password.as_bytes());
    Some(hex::encode(hasher.finalize()))
}

impl Senders {
    pub fn from_toml(text: &str) -> anyhow::Result<Senders> {
        let file: SendersFile = toml::from_str(text)?;
        let mut senders: Vec<Sender> = Vec::with_capacity(file.sender.len());
        for sender in file.sender {
            if senders.iter().any(|known| known.sender_id == sender.sender_id) {
                bail!("sender {} is listed twice", sender.sender_id);
            }
            if hex::decode(&sender.salt).is_err()
                || hex::decode(&sender.password_sha256).map_or(true, |h| h.len() != 32)
            {
                bail!("sender {}: salt and password_sha256 are hex (a SHA-256 of 32 bytes)", sender.sender_id);
            }
            senders.push(sender);
        }
        Ok(Senders { senders })
    }

    /// The senders of a key directory (none when it has no `shep/senders.toml`).
    pub fn load(keys_dir: &Path) -> anyhow::Result<Senders> {
        let path = senders_path(keys_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Senders::from_toml(&text).with_context(|| format!("in {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Senders::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(&SendersFile { sender: self.senders.clone() }).unwrap_or_default()
    }

    pub fn all(&self) -> &[Sender] {
        &self.senders
    }

    pub fn get(&self, sender_id: &str) -> Option<&Sender> {
        self.senders.iter().find(|sender| sender.sender_id == sender_id)
    }

    /// The sender `info` names, if its password is right (compared in constant time).
    pub fn authenticate(&self, info: &SenderInfo) -> Result<&Sender, Fault> {
        let sender = self.get(&info.sender_id).ok_or_else(|| {
            Fault::client("shep.unknown_sender", format!("no sender {:?} is registered", info.sender_id))
        })?;
        let password = info.password.as_deref().unwrap_or("");
        let given = password_hash(&sender.salt, password).unwrap_or_default();
        let matches: bool = given.as_bytes().ct_eq(sender.password_sha256.to_ascii_lowercase().as_bytes()).into();
        if !matches {
            return Err(Fault::client("shep.bad_password", format!("wrong password for sender {}", info.sender_id)));
        }
        Ok(sender)
    }

    /// Every member the edge signs as: each sender's member and those it signs for.
    pub fn members(&self) -> std::collections::BTreeSet<String> {
        self.senders
            .iter()
            .flat_map(|sender| std::iter::once(sender.member.clone()).chain(sender.signs_for.clone()))
            .collect()
    }
}

/// Adds a sender to the key directory's table, with `password` or a random
/// one written to `secrets/shep-SENDER.password`; returns the password.
pub fn add_sender(
    keys_dir: &Path,
    sender_id: &str,
    member: &str,
    password: Option<&str>,
    signs_for: &[String],
    status_endpoint: Option<&str>,
) -> anyhow::Result<String> {
    if sender_id.is_empty() || !sender_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("a sender id is letters, digits, '-', '_' and '.', not {sender_id:?}");
    }
    let mut senders = Senders::load(keys_dir)?;
    if senders.get(sender_id).is_some() {
        bail!("sender {sender_id} exists already in {}", senders_path(keys_dir).display());
    }
    let password = match password {
        Some(password) => password.to_owned(),
        None => {
            let mut bytes = [0u8; 18];
            OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        }
    };
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let salt = hex::encode(salt);
    let password_sha256 = password_hash(&salt, &password).unwrap_or_default();
    senders.senders.push(Sender {
        sender_id: sender_id.to_owned(),
        member: member.to_owned(),
        salt,
        password_sha256,
        signs_for: signs_for.to_vec(),
        status_endpoint: status_endpoint.map(str::to_owned),
    });
    let secret = password_path(keys_dir, sender_id);
    std::fs::create_dir_all(keys_dir.join("secrets")).ok();
    write_private(&secret, &password)?;
    let path = senders_path(keys_dir);
    std::fs::create_dir_all(keys_dir.join("shep")).with_context(|| format!("cannot create {}", path.display()))?;
    let temporary = keys_dir.join("shep").join(".senders.toml.new");
    std::fs::write(&temporary, senders.to_toml()).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(password)
}

/// The senders `egov keys init` makes: one for each member that talks to the
/// gateway, the State Corporation workstation signing for the operators and
/// the regional gateway ARM signing for the provider's staff. `members` are
/// the (id, role) of the trust registry.
pub fn init_senders(keys_dir: &Path, members: &[(&str, &str)]) -> anyhow::Result<Vec<(String, String)>> {
    use egov_runtime::ids;
    let of_roles = |roles: &[&str]| -> Vec<String> {
        members.iter().filter(|(_, role)| roles.contains(role)).map(|(id, _)| (*id).to_owned()).collect()
    };
    let mut made = Vec::new();
    for (member, signs_for) in [
        (ids::SC_WORKSTATION, of_roles(&[ids::roles::SC_OPERATOR])),
        (ids::REGIONAL, of_roles(ids::roles::PROVIDER_STAFF)),
    ] {
        let password = add_sender(keys_dir, member, member, None, &signs_for, None)?;
        made.push((member.to_owned(), password));
    }
    Ok(made)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sender_is_known_by_its_password_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let password =
            add_sender(dir.path(), "sc-1", "sc-workstation", Some("secret"), &["operator-1".into()], None).unwrap();
        assert_eq!(password, "secret");
        let senders = Senders::load(dir.path()).unwrap();
        let info = |id: &str, password: Option<&str>| SenderInfo {
            sender_id: id.to_owned(),
            password: password.map(str::to_owned),
        };
        assert_eq!(senders.authenticate(&info("sc-1", Some("secret"))).unwrap().member, "sc-workstation");
        assert_eq!(senders.authenticate(&info("sc-1", Some("Secret"))).unwrap_err().code, "shep.bad_password");
        assert_eq!(senders.authenticate(&info("sc-1", None)).unwrap_err().code, "shep.bad_password");
        assert_eq!(senders.authenticate(&info("sc-2", Some("secret"))).unwrap_err().code, "shep.unknown_sender");
        let row = senders.get("sc-1").unwrap();
        assert_ne!(row.password_sha256, password_hash("00", "secret").unwrap());
        assert!(std::fs::read_to_string(password_path(dir.path(), "sc-1")).unwrap() == "secret");
        assert!(add_sender(dir.path(), "sc-1", "x", None, &[], None).is_err(), "a sender id is unique");
    }

    #[test]
    fn the_hash_is_sha256_of_the_salt_bytes_then_the_password() {
        // SHA-256("\x01\x02" "pw")
        let mut hasher = Sha256::new();
        hasher.update([1u8, 2u8]);
        hasher.update(b"pw");
        assert_eq!(password_hash("0102", "pw").unwrap(), hex::encode(hasher.finalize()));
    }
}
