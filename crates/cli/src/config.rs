//! One config file for what the flags set (`egov --config egov.toml`,
//! `docs/configuration.md`). A value comes from, first to last: the command
//! line, its `EGOV_*` environment variable, the config file, the default.
//! A key the file does not know, or a value of the wrong kind, is an error
//! that names the file's line.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;
use toml::Spanned;

use crate::{Addresses, LogFormat};

/// The file, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    topology: TopologySection,
    #[serde(default)]
    serve: ServeSection,
    #[serde(default)]
    tls: TlsSection,
    #[serde(default)]
    keys: KeysSection,
    #[serde(default)]
    client: ClientSection,
    #[serde(default)]
    shep: ShepSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSection {
    retry_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysSection {
    valid_from: Option<Spanned<String>>,
}

/// `[shep]`: the gateway's SHEP face (docs/shep.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShepSection {
    /// `off`, or the address of the SOAP endpoints.
    pub address: Option<String>,
    pub grpc_address: Option<String>,
    pub services: Option<PathBuf>,
    pub require_signed_sync: Option<bool>,
    /// `[shep.external]`: `workstation = "poll"`, `regional = "push:http://..."`.
    pub external: Option<std::collections::BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
    #[serde(rename = "as")]
    member: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologySection {
    file: Option<PathBuf>,
    workstation: Option<String>,
    gateway: Option<String>,
    individuals: Option<String>,
    notary: Option<String>,
    regional: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    pub data: Option<PathBuf>,
    pub store: Option<String>,
    pub store_pool: Option<usize>,
    pub store_lease_seconds: Option<u64>,
    pub store_statement_timeout_ms: Option<u64>,
    pub store_lock_timeout_ms: Option<u64>,
    pub replica_id: Option<String>,
    pub keys: Option<PathBuf>,
    pub fixtures: Option<PathBuf>,
    pub roles: Option<Spanned<Vec<String>>>,
    pub any_port: Option<bool>,
    pub regulation: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub freshness_window_ms: Option<i64>,
    pub simulated_time: Option<bool>,
    pub faults: Option<Spanned<Vec<String>>>,
    pub fault_seed: Option<u64>,
    pub cache_mib: Option<u64>,
    pub verify_all: Option<bool>,
    pub checkpoint_entries: Option<u64>,
    pub checkpoint_ms: Option<u64>,
    pub drain_seconds: Option<u64>,
    pub metrics: Option<String>,
    pub console: Option<String>,
    pub otlp: Option<String>,
    pub monitor_keep: Option<usize>,
    pub monitor_keep_seconds: Option<u64>,
    pub monitor_export: Option<PathBuf>,
}

/// The line (1-based) of a byte offset of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: Config = toml::from_str(&text).map_err(|error| {
            let line = error.span().map(|span| line_of(&text, span.start)).unwrap_or(0);
            anyhow::anyhow!("{} line {line}: {}", path.display(), error.message())
        })?;
        let at = |span: std::ops::Range<usize>| format!("{} line {}", path.display(), line_of(&text, span.start));
        if let Some(format) = &config.log.format
            && !matches!(format.get_ref().as_str(), "text" | "json")
        {
            bail!("{}: log.format is \"text\" or \"json\", not {:?}", at(format.span()), format.get_ref());
        }
        if let Some(roles) = &config.serve.roles {
            for role in roles.get_ref() {
                if egov_stack::Role::parse(role).is_none() {
                    bail!(
                        "{}: unknown role {role:?} in serve.roles: use individuals, notary, gateway, regional, workstation",
                        at(roles.span())
                    );
                }
            }
        }
        if let Some(valid_from) = &config.keys.valid_from
            && let Err(error) = egov_runtime::keys::parse_valid_from(valid_from.get_ref())
        {
            bail!("{}: keys.valid_from: {error}", at(valid_from.span()));
        }
        if let Some(faults) = &config.serve.faults {
            for fault in faults.get_ref() {
                if let Err(error) = egov_stack::Role::parse_fault(fault) {
                    bail!("{}: serve.faults: {error}", at(faults.span()));
                }
            }
        }
        if let Some(external) = &config.shep.external {
            for (role, how) in external {
                if let Err(error) = egov_shep::edge::parse_external(&format!("{role}={}", how.get_ref())) {
                    bail!("{}: shep.external: {error}", at(how.span()));
                }
            }
        }
        Ok(config)
    }

    /// The log format the file sets, where the command line and `EGOV_LOG_FORMAT` do not.
    pub fn log_format(&self, matches: &ArgMatches, format: &mut LogFormat) {
        if let Some(text) = &self.log.format
            && !given(matches, "log_format")
        {
            *format = if text.get_ref() == "json" { LogFormat::Json } else { LogFormat::Text };
        }
    }

    /// The addresses the file sets, where the command line and the environment do not.
    pub fn addresses(&self, matches: &ArgMatches, addresses: &mut Addresses) {
        let t = &self.topology;
        fill(matches, "topology", &mut addresses.topology, &t.file);
        fill(matches, "workstation", &mut addresses.workstation, &t.workstation);
        fill(matches, "gateway", &mut addresses.gateway, &t.gateway);
        fill(matches, "individuals", &mut addresses.individuals, &t.individuals);
        fill(matches, "notary", &mut addresses.notary, &t.notary);
        fill(matches, "regional", &mut addresses.regional, &t.regional);
    }

    /// The TLS settings the file sets, where the command line and the environment do not.
    pub fn tls(&self, matches: &ArgMatches, tls: &mut crate::Tls) {
        set(matches, "tls", &mut tls.tls, &self.tls.enabled);
        fill(matches, "tls_dir", &mut tls.tls_dir, &self.tls.dir);
        fill(matches, "tls_as", &mut tls.tls_as, &self.tls.member);
    }

    /// From when `egov keys init` makes the keys valid, where the command line and the environment do not say.
    pub fn keys_valid_from(&self, matches: &ArgMatches, valid_from: &mut Option<chrono::DateTime<chrono::Utc>>) {
        // Checked when the file was loaded.
        let from_file =
            self.keys.valid_from.as_ref().and_then(|text| egov_runtime::keys::parse_valid_from(text.get_ref()).ok());
        fill(matches, "valid_from", valid_from, &from_file);
    }

    /// How long a client sends a call again, where the command line and `EGOV_RETRY_SECONDS` do not say.
    pub fn retry_seconds(&self, matches: &ArgMatches, retry_seconds: &mut u64) {
        set(matches, "retry_seconds", retry_seconds, &self.client.retry_seconds);
    }

    pub fn serve(&self) -> &ServeSection {
        &self.serve
    }

    pub fn shep(&self) -> &ShepSection {
        &self.shep
    }
}

/// Whether the argument `id` came from the command line or its environment
/// variable (in `matches` or, for a global one, in its subcommand's).
pub fn given(matches: &ArgMatches, id: &str) -> bool {
    let mut level = Some(matches);
    while let Some(here) = level {
        if matches!(
            here.try_get_raw(id).ok().and_then(|_| here.value_source(id)),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            return true;
        }
        level = here.subcommand().map(|(_, sub)| sub);
    }
    false
}

fn fill<T: Clone>(matches: &ArgMatches, id: &str, value: &mut Option<T>, from_file: &Option<T>) {
    if !given(matches, id) && from_file.is_some() {
        value.clone_from(from_file);
    }
}

/// Sets `value` from the file where the flag `id` was not given.
pub fn set<T: Clone>(matches: &ArgMatches, id: &str, value: &mut T, from_file: &Option<T>) {
    if let Some(from_file) = from_file
        && !given(matches, id)
    {
        value.clone_from(from_file);
    }
}
