//! The trust registry: members, their roles and their public keys with
//! validity periods and revocation. Parsed from TOML text; loading the file is
//! the caller's business.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::EnvelopeError;

/// A member's role: what the regulation calls the actor, e.g. `sc-operator`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Role(String);

impl Role {
    pub fn new(name: impl Into<String>) -> Role {
        Role(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One public key of a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub id: String,
    /// Hex of the 32-byte ed25519 public key.
    pub public: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A member of the exchange: a participant system or a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default, rename = "member")]
    members: Vec<Member>,
}

/// Why a trust registry file was refused.
#[derive(Debug, Error)]
pub enum TrustError {
    #[error("trust registry does not parse")]
    Parse(#[source] toml::de::Error),
    #[error("member {0} is listed twice")]
    DuplicateMember(String),
    #[error("key {0} is listed twice")]
    DuplicateKey(String),
    #[error("key {key_id}: public key is not 32 bytes of hex or not a valid ed25519 point")]
    BadPublicKey { key_id: String },
}

#[derive(Debug, Clone)]
struct TrustedKey {
    owner: String,
    verifying_key: VerifyingKey,
    valid_from_ms: i64,
    valid_until_ms: i64,
    revoked_at_ms: Option<i64>,
}

/// Members and keys, indexed for verification.
#[derive(Debug, Clone, Default)]
pub struct TrustRegistry {
    members: Vec<Member>,
    member_index: HashMap<String, usize>,
    keys: HashMap<String, TrustedKey>,
}

impl TrustRegistry {
    /// Parses and checks the TOML form (see `docs/envelope.md`).
    pub fn from_toml(text: &str) -> Result<TrustRegistry, TrustError> {
        let file: TrustFile = toml::from_str(text).map_err(TrustError::Parse)?;
        TrustRegistry::from_members(file.members)
    }

    pub fn from_members(members: Vec<Member>) -> Result<TrustRegistry, TrustError> {
        let mut member_index = HashMap::new();
        let mut keys = HashMap::new();
        for (index, member) in members.iter().enumerate() {
            if member_index.insert(member.id.clone(), index).is_some() {
                return Err(TrustError::DuplicateMember(member.id.clone()));
            }
            for key in &member.keys {
                let verifying_key =
                    parse_public_key(&key.public).ok_or_else(|| TrustError::BadPublicKey { key_id: key.id.clone() })?;
                let trusted = TrustedKey {
                    owner: member.id.clone(),
                    verifying_key,
                    valid_from_ms: key.valid_from.timestamp_millis(),
                    valid_until_ms: key.valid_until.timestamp_millis(),
                    revoked_at_ms: key.revoked_at.map(|t| t.timestamp_millis()),
                };
                if keys.insert(key.id.clone(), trusted).is_some() {
                    return Err(TrustError::DuplicateKey(key.id.clone()));
                }
            }
        }
        Ok(TrustRegistry { members, member_index, keys })
    }

    /// The TOML form.
    pub fn to_toml(&self) -> String {
        let file = TrustFile { members: self.members.clone() };
        toml::to_string_pretty(&file).unwrap_or_default()
    }

    /// The members, to build a changed registry from.
    pub fn into_members(self) -> Vec<Member> {
        self.members
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.member_index.get(id).map(|&index| &self.members[index])
    }

    /// The members with a role, in file order.
    pub fn members_with_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members.iter().filter(move |m| m.role.as_str() == role)
    }

    /// The keys of `member_id` as verifiers of its log's checkpoints (key name
    /// [`crate::log_origin`]), each with its id in the registry: all of them, valid or not now
    /// (a checkpoint is checked against the key that signed it).
    pub fn log_keys(&self, member_id: &str) -> Vec<(String, egov_tlog::VerifierKey)> {
        let origin = crate::log_origin(member_id);
        let mut keys: Vec<(String, egov_tlog::VerifierKey)> = self
            .keys
            .iter()
            .filter(|(_, key)| key.owner == member_id)
            .filter_map(|(id, key)| {
                egov_tlog::VerifierKey::new(&origin, egov_tlog::SigType::Ed25519, key.verifying_key)
                    .ok()
                    .map(|vkey| (id.clone(), vkey))
            })
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }

    /// [`TrustRegistry::log_keys`], as witnesses' keys (`cosignature/v1`).
    pub fn cosigner_keys(&self, member_id: &str) -> Vec<egov_tlog::VerifierKey> {
        let origin = crate::log_origin(member_id);
        self.keys
            .values()
            .filter(|key| key.owner == member_id)
            .filter_map(|key| {
                egov_tlog::VerifierKey::new(&origin, egov_tlog::SigType::CosignatureV1, key.verifying_key).ok()
            })
            .collect()
    }

    /// The key `key_id`, checked to belong to `sender_id` and to be usable at `at_ms`.
    pub(crate) fn key_for(&self, key_id: &str, sender_id: &str, at_ms: i64) -> Result<&VerifyingKey, EnvelopeError> {
        let key = self.keys.get(key_id).ok_or_else(|| EnvelopeError::UnknownKey(key_id.to_owned()))?;
        if key.owner != sender_id {
            return Err(EnvelopeError::KeyNotOfSender {
                key_id: key_id.to_owned(),
                owner: key.owner.clone(),
                sender: sender_id.to_owned(),
            });
        }
        if let Some(revoked_at_ms) = key.revoked_at_ms
            && revoked_at_ms <= at_ms
        {
            return Err(EnvelopeError::KeyRevoked { key_id: key_id.to_owned(), revoked_at_ms });
        }
        if at_ms < key.valid_from_ms || at_ms >= key.valid_until_ms {
            return Err(EnvelopeError::KeyNotValid { key_id: key_id.to_owned() });
        }
        Ok(&key.verifying_key)
    }
}

fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}
