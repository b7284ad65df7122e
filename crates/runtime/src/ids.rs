//! The members and roles of the simulated exchange, and the one rule every
//! id that comes in follows.

use tonic::Code;

use crate::Refusal;

/// The most characters of an id ([`check_id`]).
pub const MAX_ID_CHARS: usize = 128;

/// The one rule for an id that comes in, at every participant: an envelope's
/// correlation id (an application's id, chosen by the operator or the office)
/// and message id, and an id a request names (an application, a registration,
/// a correlation id to read by). 1-128 of `A-Z a-z 0-9 - _ .`: ids become the
/// keys of stored records and index entries, where `/` separates their parts.
pub fn check_id(what: &str, id: &str) -> Result<(), Refusal> {
    let fits = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if fits {
        return Ok(());
    }
    Err(Refusal::new(
        Code::InvalidArgument,
        "request.bad_id",
        format!("{what} {id:?} must be 1-{MAX_ID_CHARS} letters, digits, '-', '_' or '.'"),
    ))
}

/// The State Corporation's service centre (TsON) whose electronic queue a
/// ticket or a call is for when the request names none.
pub const DEFAULT_CENTRE: &str = "main";

/// `centre`, or [`DEFAULT_CENTRE`] when empty.
pub fn centre_or_default(centre: &str) -> &str {
    if centre.is_empty() { DEFAULT_CENTRE } else { centre }
}

/// The correlation id of an operator's call of the next ticket of `centre`'s
/// queue (`CallNext`; empty: the default centre): `queue.CENTRE`, so that a
/// centre's calls are read together (`egov monitor --correlation queue.main`).
pub fn queue_correlation(centre: &str) -> String {
    format!("queue.{}", centre_or_default(centre))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_1_to_128_letters_digits_dashes_underscores_or_dots() {
        for good in [
            "a",
            "application-1",
            "00000000-0000-4000-8000-000000000001",
            "RSHEP-0000000001",
            "a.b_c",
            &"x".repeat(128),
        ] {
            assert!(check_id("id", good).is_ok(), "{good}");
        }
        for bad in ["", "../x/<b>", "a/b", "bad id!", "Жx", "a\n", &"x".repeat(129)] {
            let refusal = check_id("application id", bad).unwrap_err();
            assert_eq!((refusal.code, refusal.reason), (Code::InvalidArgument, "request.bad_id"), "{bad:?}");
        }
    }
}
