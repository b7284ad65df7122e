//! A participant's counters: retries, incidents, injected faults.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Named counters, shared by a participant's parts.
#[derive(Debug, Default)]
pub struct Counters {
    values: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    pub fn add(&self, name: &'static str, by: u64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry(name).or_default() += by;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.values
            .lock()
            .map(|values| values.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect())
            .unwrap_or_default()
    }
}
