//! The services of the exchange and their access rules, as data
//! (`data/services.toml`): the e-government gateway routes by this table and
//! every receiver admits by it.

use egov_proto::MessageType;
use serde::Deserialize;
use thiserror::Error;

/// The embedded table of services.
pub const DEFAULT_SERVICES: &str = include_str!("../data/services.toml");

/// How a service travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The gateway's synchronous channel: the gateway calls the recipient and returns its answer.
    Sync,
    /// The gateway's asynchronous channel: the gateway queues and delivers to the recipient's inbox.
    Async,
    /// Called at the recipient itself.
    Direct,
}

impl Channel {
    /// Whether the service travels through the gateway (and so carries its countersignature).
    pub fn via_gateway(self) -> bool {
        self != Channel::Direct
    }
}

/// One service: who serves it, how it travels, who may send it.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    /// The protobuf full name of a request's body.
    pub body: String,
    pub channel: Channel,
    /// The member id that serves it.
    pub recipient: String,
    /// The roles allowed to send it.
    pub senders: Vec<String>,
    /// What a request of the service may be.
    pub message_types: Vec<MessageType>,
    /// The largest body; none: the receiver's overall limit.
    pub max_body_bytes: Option<usize>,
}

impl Service {
    /// Whether `role` may send this service.
    pub fn allows(&self, role: &str) -> bool {
        self.senders.iter().any(|sender| sender == role)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    body: String,
    channel: Channel,
    recipient: String,
    senders: Vec<String>,
    message_types: Vec<RawMessageType>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawMessageType {
    Request,
    Notification,
    Response,
}

impl From<RawMessageType> for MessageType {
    fn from(raw: RawMessageType) -> MessageType {
        match raw {
            RawMessageType::Request => MessageType::Request,
            RawMessageType::Notification => MessageType::Notification,
            RawMessageType::Response => MessageType::Response,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesFile {
    service: Vec<RawService>,
}

/// Why a table of services was refused.
#[derive(Debug, Error)]
pub enum ServicesError {
    #[error("the table of services does not parse")]
    Parse(#[source] toml::de::Error),
    #[error("service {0} is declared twice")]
    Duplicate(String),
    #[error("service {0} names no sender and no message type")]
    Empty(String),
}

/// The table of services.
#[derive(Debug, Clone)]
pub struct Services {
    services: Vec<Service>,
}

impl Services {
    pub fn from_toml(text: &str) -> Result<Services, ServicesError> {
        let file: ServicesFile = toml::from_str(text).map_err(ServicesError::Parse)?;
        let mut services: Vec<Service> = Vec::with_capacity(file.service.len());
        for raw in file.service {
            if services.iter().any(|service| service.id == raw.id) {
                return Err(ServicesError::Duplicate(raw.id));
            }
            if raw.senders.is_empty() || raw.message_types.is_empty() {
                return Err(ServicesError::Empty(raw.id));
            }
            services.push(Service {
                id: raw.id,
                body: raw.body,
                channel: raw.channel,
                recipient: raw.recipient,
                senders: raw.senders,
                message_types: raw.message_types.into_iter().map(MessageType::from).collect(),
                max_body_bytes: raw.max_body_bytes,
            });
        }
        Ok(Services { services })
    }

    /// The embedded table (a test checks that it loads).
    pub fn embedded() -> &'static Services {
        static EMBEDDED: std::sync::OnceLock<Services> = std::sync::OnceLock::new();
        EMBEDDED.get_or_init(|| Services::from_toml(DEFAULT_SERVICES).unwrap_or(Services { services: Vec::new() }))
    }

    pub fn all(&self) -> &[Service] {
        &self.services
    }

    pub fn get(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_loads_and_four_services_travel_through_the_gateway() {
        let services = Services::from_toml(DEFAULT_SERVICES).unwrap();
        assert_eq!(services.all().iter().filter(|service| service.channel.via_gateway()).count(), 4);
        assert_eq!(services.all().len(), 13);
        assert!(services.get("rshep.staff.action.v1").unwrap().allows("provider-head"));
    }

    #[test]
    fn a_table_with_a_service_twice_or_an_unknown_key_is_refused() {
        let twice = "[[service]]\nid = \"a\"\nbody = \"egov.v1.PersonQuery\"\nchannel = \"direct\"\nrecipient = \"x\"\nsenders = [\"r\"]\nmessage_types = [\"request\"]\n";
        let error = Services::from_toml(&format!("{twice}{twice}")).unwrap_err();
        assert!(error.to_string().contains("declared twice"), "{error}");
        let error = Services::from_toml(&twice.replace("senders", "sender")).unwrap_err();
        assert!(matches!(error, ServicesError::Parse(_)), "{error}");
    }
}
