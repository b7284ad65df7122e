//! The workstation's operator accounts (process 1: login and password).

use std::collections::HashMap;

use serde::Deserialize;

/// One operator account. The password is kept in clear: this is a simulator's
/// fixture, not a credential store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorAccount {
    pub login: String,
    /// The operator's member id in the trust registry: the key that signs for them.
    pub operator_id: String,
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorsFile {
    operators: Vec<OperatorAccount>,
}

/// The accounts by login.
#[derive(Debug, Clone, Default)]
pub struct Operators {
    by_login: HashMap<String, OperatorAccount>,
}

impl Operators {
    pub fn from_json(text: &str) -> Result<Operators, serde_json::Error> {
        let file: OperatorsFile = serde_json::from_str(text)?;
        Ok(Operators { by_login: file.operators.into_iter().map(|account| (account.login.clone(), account)).collect() })
    }

    /// Every account.
    pub fn accounts(&self) -> impl Iterator<Item = &OperatorAccount> {
        self.by_login.values()
    }

    /// The account, if the login and password match.
    pub fn authenticate(&self, login: &str, password: &str) -> Option<&OperatorAccount> {
        self.by_login.get(login).filter(|account| constant_time_eq(account.password.as_bytes(), password.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
