//! The key directory: `trust.toml` (every member's public keys) and
//! `secrets/MEMBER.seed` (a member's 32-byte ed25519 seed, hex).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Months, Utc};
use egov_envelope::{KeyEntry, Member, Role, Signer, TrustRegistry};
use rand_core::{OsRng, RngCore};

/// From when `egov keys init` makes the keys valid unless told otherwise
/// (`--valid-from`), and the keys of the stack `egov replay` starts: the
/// start of 2020 (UTC), before every scenario of the fixture library and of
/// the generated populations, so that a stack on simulated time accepts the
/// envelopes signed at the scenarios' times (docs/fixtures.md).
pub fn default_valid_from() -> DateTime<Utc> {
    DateTime::from_timestamp(1_577_836_800, 0).unwrap_or_default()
}

/// A day (`YYYY-MM-DD`, from 00:00 Astana time, UTC+05:00, the working-day
/// calendar's) or an RFC 3339 instant: what `--valid-from` takes.
pub fn parse_valid_from(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.to_utc());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 instant"))?;
    let astana = chrono::FixedOffset::east_opt(5 * 3600).ok_or("no Astana offset")?;
    day.and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(astana).single())
        .map(|instant| instant.to_utc())
        .ok_or_else(|| format!("{text:?} has no midnight in Astana time"))
}

/// A directory of keys as `egov keys init` writes it.
#[derive(Debug, Clone)]
pub struct KeyDir {
    path: PathBuf,
}

impl KeyDir {
    pub fn new(path: impl Into<PathBuf>) -> KeyDir {
        KeyDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn trust_path(&self) -> PathBuf {
        self.path.join("trust.toml")
    }

    fn seed_path(&self, member_id: &str) -> PathBuf {
        self.path.join("secrets").join(format!("{member_id}.seed"))
    }

    pub fn exists(&self) -> bool {
        self.trust_path().is_file()
    }

    /// Reads and checks `trust.toml`.
    pub fn trust(&self) -> anyhow::Result<TrustRegistry> {
        let path = self.trust_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} (create one with `egov keys init`)", path.display()))?;
        TrustRegistry::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The private key of `member_id`, with the id of its key in the trust registry.
    pub fn signer(&self, member_id: &str) -> anyhow::Result<Signer> {
        let trust = self.trust()?;
        self.signer_in(&trust, member_id)
    }

    pub fn signer_in(&self, trust: &TrustRegistry, member_id: &str) -> anyhow::Result<Signer> {
        let path = self.seed_path(member_id);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .with_context(|| format!("{} is not 32 bytes of hex", path.display()))?;
        let unnamed = Signer::from_seed(member_id, "", &seed);
        let public = unnamed.public_key_hex();
        let member = trust.member(member_id).with_context(|| format!("{member_id} is not in the trust registry"))?;
        let key = member
            .keys
            .iter()
            .rev()
            .find(|key| key.public == public && key.revoked_at.is_none())
            .with_context(|| format!("the seed of {member_id} matches none of its unrevoked keys"))?;
        Ok(Signer::from_seed(member_id, key.id.clone(), &seed))
    }

    /// Creates the directory with a fresh key for each member, valid from
    /// `valid_from` for ten years. Refuses to overwrite an existing registry.
    pub fn init(&self, members: &[(&str, &str, &str)], valid_from: DateTime<Utc>) -> anyhow::Result<TrustRegistry> {
        let valid_until = valid_from.checked_add_months(Months::new(120)).unwrap_or(valid_from);
        self.init_valid(members, valid_from, valid_until)
    }

    /// Creates the directory with a fresh key for each member, valid for
    /// message times from `valid_from` until `valid_until` (excluded).
    /// Refuses to overwrite an existing registry, and an empty validity.
    pub fn init_valid(
        &self,
        members: &[(&str, &str, &str)],
        valid_from: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    ) -> anyhow::Result<TrustRegistry> {
        if valid_until <= valid_from {
            bail!("the keys would be valid from {valid_from} until {valid_until}: never");
        }
        if self.exists() {
            bail!("{} already exists: remove it first to make new keys", self.trust_path().display());
        }
        std::fs::create_dir_all(self.path.join("secrets"))
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        let mut entries = Vec::with_capacity(members.len());
        for &(id, role, name) in members {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let public = Signer::from_seed(id, "", &seed).public_key_hex();
            let seed_path = self.seed_path(id);
            write_secret(&seed_path, &hex::encode(seed))?;
            entries.push(Member {
                id: id.to_owned(),
                role: Role::new(role),
                name: name.to_owned(),
                keys: vec![KeyEntry {
                    id: format!("{id}:{}", &public[..16]),
                    public,
                    valid_from,
                    valid_until,
                    revoked_at: None,
                }],
            });
        }
        let trust = TrustRegistry::from_members(entries)?;
        std::fs::write(self.trust_path(), trust.to_toml())
            .with_context(|| format!("cannot write {}", self.trust_path().display()))?;
        Ok(trust)
    }
}

impl KeyDir {
    /// Writes `trust` in place of `trust.toml`, atomically (a reader sees the old file or the new one).
    fn write_trust(&self, trust: &TrustRegistry) -> anyhow::Result<()> {
        let path = self.trust_path();
        let temporary = self.path.join(".trust.toml.new");
        std::fs::write(&temporary, trust.to_toml()).with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    /// Gives `member_id` a fresh key valid from `valid_from` for ten years:
    /// a new member with `role`, or a new key (rotation) for an existing one,
    /// whose older keys stay valid until revoked. Returns the new key's id.
    pub fn add_key(
        &self,
        member_id: &str,
        role: &str,
        name: &str,
        valid_from: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let mut members = self.trust()?.into_members();
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let public = Signer::from_seed(member_id, "", &seed).public_key_hex();
        let key_id = format!("{member_id}:{}", &public[..16]);
        let valid_until = valid_from.checked_add_months(Months::new(120)).unwrap_or(valid_from);
        let key = KeyEntry { id: key_id.clone(), public, valid_from, valid_until, revoked_at: None };
        match members.iter_mut().find(|member| member.id == member_id) {
            Some(member) => {
                if member.role.as_str() != role && !role.is_empty() {
                    bail!("{member_id} has the role {}, not {role}", member.role);
                }
                member.keys.push(key);
            }
            None => {
                if role.is_empty() {
                    bail!("{member_id} is a new member: give its role");
                }
                members.push(Member {
                    id: member_id.to_owned(),
                    role: Role::new(role),
                    name: name.to_owned(),
                    keys: vec![key],
                });
            }
        }
        let trust = TrustRegistry::from_members(members)?;
        let seed_path = self.seed_path(member_id);
        let temporary = self.path.join("secrets").join(format!(".{member_id}.seed.new"));
        let _ = std::fs::remove_file(&temporary);
        write_secret(&temporary, &hex::encode(seed))?;
        std::fs::rename(&temporary, &seed_path).with_context(|| format!("cannot replace {}", seed_path.display()))?;
        self.write_trust(&trust)?;
        Ok(key_id)
    }

    /// Revokes `key_id` from `at` on: messages with a later time signed by it are refused.
    pub fn revoke(&self, key_id: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
        let mut members = self.trust()?.into_members();
        let key = members
            .iter_mut()
            .flat_map(|member| member.keys.iter_mut())
            .find(|key| key.id == key_id)
            .with_context(|| format!("no key {key_id} in the trust registry"))?;
        key.revoked_at = Some(at);
        self.write_trust(&TrustRegistry::from_members(members)?)
    }
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
