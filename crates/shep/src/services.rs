//! SHEP `serviceId` → a service of the exchange (`data/services.toml`,
//! `--shep-services FILE`).

use anyhow::bail;
use egov_runtime::{Service, Services};
use serde::Deserialize;

/// The embedded table.
pub const DEFAULT_SHEP_SERVICES: &str = include_str!("../data/services.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    shep_id: String,
    service: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    service: Vec<Row>,
}

/// One SHEP service: its id and the row of the exchange's table it is.
#[derive(Debug, Clone)]
pub struct ShepService {
    pub shep_id: String,
    pub service: Service,
}

/// The SHEP services, checked against the exchange's table.
#[derive(Debug, Clone)]
pub struct ShepServices {
    services: Vec<ShepService>,
}

impl ShepServices {
    /// Reads `text`; every row must name a service of `table` that travels through the gateway.
    pub fn from_toml(text: &str, table: &Services) -> anyhow::Result<ShepServices> {
        let file: File = toml::from_str(text)?;
        let mut services: Vec<ShepService> = Vec::new();
        for row in file.service {
            if services.iter().any(|known| known.shep_id == row.shep_id || known.service.id == row.service) {
                bail!("SHEP service {} (or its service {}) is listed twice", row.shep_id, row.service);
            }
            let Some(service) = table.get(&row.service) else {
                bail!("SHEP service {} names {}, which is not in the table of services", row.shep_id, row.service);
            };
            if !service.channel.via_gateway() {
                bail!("SHEP service {} names {}, which does not travel through the gateway", row.shep_id, row.service);
            }
            services.push(ShepService { shep_id: row.shep_id, service: service.clone() });
        }
        Ok(ShepServices { services })
    }

    /// The embedded table against the embedded table of services.
    pub fn embedded() -> anyhow::Result<ShepServices> {
        ShepServices::from_toml(DEFAULT_SHEP_SERVICES, Services::embedded())
    }

    pub fn by_shep_id(&self, shep_id: &str) -> Option<&ShepService> {
        self.services.iter().find(|service| service.shep_id == shep_id)
    }

    /// The SHEP service of an internal service id.
    pub fn by_service(&self, service_id: &str) -> Option<&ShepService> {
        self.services.iter().find(|service| service.service.id == service_id)
    }

    pub fn all(&self) -> &[ShepService] {
        &self.services
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_table_maps_four_services_both_ways() {
        let services = ShepServices::embedded().unwrap();
        assert_eq!(services.all().len(), 4);
        assert_eq!(services.by_shep_id("GBDFL_PERSON_BY_IIN").unwrap().service.id, "gbdfl.person.lookup.v1");
        assert_eq!(services.by_service("sc.application.progress.v1").unwrap().shep_id, "SC_APPLICATION_PROGRESS");
    }

    #[test]
    fn a_row_naming_an_unknown_or_direct_service_is_refused() {
        let table = Services::embedded();
        let row = |service: &str| format!("[[service]]\nshep_id = \"X\"\nservice = \"{service}\"\n");
        assert!(ShepServices::from_toml(&row("nope.v1"), table).is_err());
        assert!(ShepServices::from_toml(&row("sc.form.submit.v1"), table).is_err());
        assert!(ShepServices::from_toml(&row("enis.poa.check.v1"), table).is_ok());
    }
}
