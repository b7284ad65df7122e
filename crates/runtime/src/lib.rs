//! What every participant's server shares: the clock, the key directory, the
//! addresses of the participants, reason-coded errors, and the gRPC server
//! with health, reflection and one tracing span per call.
#![forbid(unsafe_code)]

pub mod admin;
pub mod around;
pub mod clock;
pub mod context;
pub mod convert;
pub mod counter;
pub mod counters;
pub mod evidence;
pub mod failover;
pub mod fault;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod listing;
pub mod metrics;
pub mod monitor;
pub mod observe;
pub mod outbox;
pub mod reasons;
pub mod receive;
pub mod server;
pub mod services;
pub mod status;
pub mod tls;
pub mod topology;
pub mod trace;
pub mod witness;

pub use clock::{Clock, SimClock, SystemClock};
pub use context::{Context, SharedTrust};
pub use keys::KeyDir;
pub use receive::{Accept, Outcome, Received, Receiver};
pub use services::{Channel, Service, Services};
pub use status::{Refusal, reason_of};
pub use topology::Topology;

/// The channel every client of a participant calls through ([`tls::connect`]).
pub type GrpcChannel = tonic::service::interceptor::InterceptedService<failover::Failover, trace::Propagate>;
