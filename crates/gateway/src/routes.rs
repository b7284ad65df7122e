//! The routing table and access rights, as data.

use egov_envelope::{EnvelopeError, Verified};
use egov_runtime::Refusal;
use serde::Deserialize;
use thiserror::Error;
use tonic::Code;

/// The embedded default routing table.
pub const DEFAULT_ROUTES: &str = include_str!("../data/routes.toml");

/// The gateway channel a service travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sync,
    Async,
}

/// One service: where it goes and who may ask for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub service: String,
    pub channel: Channel,
    pub recipient: String,
    /// The roles allowed to send it.
    pub senders: Vec<String>,
    /// The largest body of this service; none: the gateway's overall limit.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    route: Vec<Route>,
}

/// Why a routing table was refused.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("routing table does not parse: {0}")]
    Parse(String),
    #[error("service {0} is routed twice")]
    Duplicate(String),
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub fn from_toml(text: &str) -> Result<Routes, RouteError> {
        let file: RoutesFile = toml::from_str(text).map_err(|e| RouteError::Parse(e.to_string()))?;
        for (index, route) in file.route.iter().enumerate() {
            if file.route[..index].iter().any(|other| other.service == route.service) {
                return Err(RouteError::Duplicate(route.service.clone()));
            }
        }
        Ok(Routes { routes: file.route })
    }

    pub fn default_routes() -> Routes {
        Routes::from_toml(DEFAULT_ROUTES).unwrap_or(Routes { routes: Vec::new() })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route of a verified message, if its sender may use it on `channel`.
    pub fn authorise(&self, verified: &Verified, body_bytes: usize, channel: Channel) -> Result<&Route, Refusal> {
        let header = &verified.header;
        let route = self.routes.iter().find(|route| route.service == header.service_id).ok_or_else(|| {
            Refusal::new(
                Code::NotFound,
                "gateway.unknown_service",
                format!("no service {} is routed", header.service_id),
            )
        })?;
        if route.channel != channel {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                "gateway.wrong_channel",
                format!("service {} travels on the {:?} channel", route.service, route.channel).to_lowercase(),
            ));
        }
        if header.recipient_id != route.recipient {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "gateway.wrong_recipient",
                format!("service {} goes to {}, not to {}", route.service, route.recipient, header.recipient_id),
            ));
        }
        if !route.senders.iter().any(|role| role == verified.sender_role.as_str()) {
            return Err(Refusal::new(
                Code::PermissionDenied,
                "gateway.access_denied",
                format!("{} ({}) may not send {}", header.sender_id, verified.sender_role, route.service),
            ));
        }
        if let Some(limit) = route.max_body_bytes
            && body_bytes > limit
        {
            return Err(EnvelopeError::TooLarge { size: body_bytes, limit }.into());
        }
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_routing_table_loads() {
        let routes = Routes::from_toml(DEFAULT_ROUTES).unwrap();
        assert_eq!(routes.routes().len(), 4);
    }
}
