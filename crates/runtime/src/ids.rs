//! The members and roles of the simulated exchange.

/// Member ids of the participant systems.
pub const GATEWAY: &str = "egov-gateway";
pub const SC_WORKSTATION: &str = "sc-workstation";
pub const INDIVIDUALS: &str = "gbdfl";
pub const NOTARY: &str = "enis";
pub const REGIONAL: &str = "rshep-astana";

/// Roles, as the process definition names its actors.
pub mod roles {
    pub const SC_OPERATOR: &str = "sc-operator";
    pub const SC_WORKSTATION: &str = "sc-workstation";
    pub const GATEWAY: &str = "gateway";
    pub const INDIVIDUALS: &str = "registry-individuals";
    pub const NOTARY: &str = "registry-notary";
    pub const REGIONAL_ARM: &str = "regional-arm";
    pub const PROVIDER_OFFICE: &str = "provider-office";
    pub const PROVIDER_SPECIALIST: &str = "provider-specialist";
    pub const PROVIDER_EXECUTOR: &str = "provider-executor";
    pub const PROVIDER_HEAD: &str = "provider-head";
    /// The provider's staff at the regional gateway ARM.
    pub const PROVIDER_STAFF: &[&str] = &[PROVIDER_OFFICE, PROVIDER_SPECIALIST, PROVIDER_EXECUTOR, PROVIDER_HEAD];
}

/// The members `egov keys init` creates: (id, role, name).
pub const DEFAULT_MEMBERS: &[(&str, &str, &str)] = &[
    (GATEWAY, roles::GATEWAY, "e-government gateway (SHEP)"),
    (SC_WORKSTATION, roles::SC_WORKSTATION, "State Corporation workstation (ARM GK)"),
    (INDIVIDUALS, roles::INDIVIDUALS, "\"Individuals\" state database (GBD FL)"),
    (NOTARY, roles::NOTARY, "unified notarial information system (ENIS)"),
    (REGIONAL, roles::REGIONAL_ARM, "regional e-government gateway ARM, Astana (ARM RSHEP)"),
    ("operator-1", roles::SC_OPERATOR, "State Corporation operator 1"),
    ("operator-2", roles::SC_OPERATOR, "State Corporation operator 2"),
    ("office-1", roles::PROVIDER_OFFICE, "provider's office employee"),
    ("specialist-1", roles::PROVIDER_SPECIALIST, "provider's specialist"),
    ("executor-1", roles::PROVIDER_EXECUTOR, "provider's responsible executor"),
    ("head-1", roles::PROVIDER_HEAD, "head of the Astana City Education Department"),
];
