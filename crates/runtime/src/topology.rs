//! Where each participant listens.

use serde::{Deserialize, Serialize};

/// The addresses of the five participants' gRPC endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub workstation: String,
    pub gateway: String,
    pub individuals: String,
    pub notary: String,
    pub regional: String,
}

impl Default for Topology {
    /// The default ports on loopback, 50051 to 50055.
    fn default() -> Topology {
        Topology::on_ports("127.0.0.1", [50051, 50052, 50053, 50054, 50055])
    }
}

impl Topology {
    /// `[workstation, gateway, individuals, notary, regional]` ports on one host.
    pub fn on_ports(host: &str, ports: [u16; 5]) -> Topology {
        let [workstation, gateway, individuals, notary, regional] = ports.map(|port| format!("{host}:{port}"));
        Topology { workstation, gateway, individuals, notary, regional }
    }

    /// The participants by name, in start order.
    pub fn entries(&self) -> [(&'static str, &str); 5] {
        [
            ("individuals", &self.individuals),
            ("notary", &self.notary),
            ("gateway", &self.gateway),
            ("regional", &self.regional),
            ("workstation", &self.workstation),
        ]
    }

    /// A lazily connecting plaintext channel to `address` (`host:port`): [`crate::tls::connect`] without TLS.
    pub fn channel(address: &str) -> anyhow::Result<crate::GrpcChannel> {
        crate::tls::connect(address, None, "")
    }
}
