//! The channel to a participant given as a list of its replicas' addresses
//! (`docs/scale-out.md`): a call goes to the next replica in turn, and one
//! that cannot be reached (its connection refused, or not made in time) is
//! tried on the next at once, within the same call, so a client never sees a
//! dead replica while another is up. A replica found dead is left out of the
//! turn for a while (from [`FIRST_REST`], doubled each time it is found dead
//! again, up to [`MAX_REST`]), and taken back when it answers.
//!
//! Nothing is sent twice that may have been taken: a call is tried on the
//! next replica only when the connection to the first could not be made, so
//! the request never left. A call cut on its way (the replica killed while it
//! worked on it) is answered `UNAVAILABLE`, as gRPC says a transient failure
//! is, never `UNKNOWN`: the clients and the outboxes send such a call again,
//! the same signed message, and a replica that took it answers once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use tonic::body::Body;
use tonic::transport::Channel;

/// Any error of the channel.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a replica found dead is left out of the turn at first.
pub const FIRST_REST: Duration = Duration::from_millis(500);
/// The longest it is left out: it is tried again at least this often.
pub const MAX_REST: Duration = Duration::from_secs(5);

/// A channel over the replicas of one participant.
#[derive(Clone)]
pub struct Failover {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addresses: Vec<&str> = self.inner.replicas.iter().map(|replica| replica.address.as_str()).collect();
        f.debug_struct("Failover").field("replicas", &addresses).finish()
    }
}

struct Inner {
    replicas: Vec<Replica>,
    /// The replica the next call starts with, in turn.
    next: AtomicUsize,
}

struct Replica {
    address: String,
    channel: Channel,
    /// Found dead: left out of the turn until then, and how long it rested last.
    down: Mutex<Option<(Instant, Duration)>>,
}

impl Replica {
    fn is_resting(&self, now: Instant) -> bool {
        self.down.lock().map(|down| down.is_some_and(|(until, _)| until > now)).unwrap_or(false)
    }

    fn found_dead(&self) {
        if let Ok(mut down) = self.down.lock() {
            let rest = down.map_or(FIRST_REST, |(_, rest)| (rest * 2).min(MAX_REST));
            *down = Some((Instant::now() + rest, rest));
        }
    }

    fn answered(&self) {
        if let Ok(mut down) = self.down.lock() {
            *down = None;
        }
    }

    async fn send(&self, request: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        use tower_service::Service as _;
        let mut channel = self.channel.clone();
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
        Ok(channel.call(request).await?)
    }
}

impl Failover {
    /// A channel over `channels` (each a lazily connecting channel to the address beside it).
    pub fn new(channels: Vec<(String, Channel)>) -> Failover {
        let replicas = channels
            .into_iter()
            .map(|(address, channel)| Replica { address, channel, down: Mutex::new(None) })
            .collect();
        Failover { inner: Arc::new(Inner { replicas, next: AtomicUsize::new(0) }) }
    }
}

/// Whether the connection could not be made: the request never left.
fn not_connected(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A failure on the way as the caller gets it: a status the transport gives
/// as is; a connection cut during the call (which tonic would call
/// `UNKNOWN`) is `UNAVAILABLE`, naming the replica.
fn on_the_way(address: &str, error: BoxError) -> BoxError {
    match tonic::Status::try_from_error(error) {
        Ok(status) if status.code() != tonic::Code::Unknown => Box::new(status),
        Ok(status) => Box::new(cut(address, &chain(&status))),
        Err(error) => Box::new(cut(address, &chain(&*error))),
    }
}

fn cut(address: &str, why: &str) -> tonic::Status {
    tonic::Status::unavailable(format!("the connection to {address} was cut during the call: {why}"))
}

/// An error and its causes, as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = error.source();
    }
    text
}

/// The answer's body, with a connection cut while it is read given as `UNAVAILABLE`.
fn watched(address: &str, response: http::Response<Body>) -> http::Response<Body> {
    let address = address.to_owned();
    response.map(move |body| Body::new(body.map_err(move |error| on_the_way(&address, error.into()))))
}

impl Inner {
    /// The replicas in the order this call tries them: from the next in turn,
    /// those resting after the others.
    fn order(&self) -> Vec<usize> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let now = Instant::now();
        let turn = (0..count).map(|offset| (start + offset) % count);
        let (resting, awake): (Vec<usize>, Vec<usize>) = turn.partition(|&index| self.replicas[index].is_resting(now));
        awake.into_iter().chain(resting).collect()
    }

    async fn send(self: Arc<Self>, request: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        if let [replica] = self.replicas.as_slice() {
            return match replica.send(request).await {
                Ok(response) => Ok(watched(&replica.address, response)),
                Err(error) => Err(on_the_way(&replica.address, error)),
            };
        }
        // Kept, to be sent to the next replica when one cannot be reached: a
        // request of this contract is one message (no call streams its request).
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.map_err(|error| -> BoxError { error.into() })?.to_bytes();
        let mut last = None;
        for index in self.order() {
            let replica = &self.replicas[index];
            let request = http::Request::from_parts(parts.clone(), Body::new(http_body_util::Full::new(bytes.clone())));
            match replica.send(request).await {
                Ok(response) => {
                    replica.answered();
                    return Ok(watched(&replica.address, response));
                }
                Err(error) if not_connected(&*error) => {
                    tracing::debug!(replica = %replica.address, error = %chain(&*error), "replica unreachable: the next one is tried");
                    replica.found_dead();
                    last = Some((index, error));
                }
                Err(error) => return Err(on_the_way(&replica.address, error)),
            }
        }
        let Some((index, error)) = last else { return Err("no replica to call".into()) };
        Err(on_the_way(&self.replicas[index].address, error))
    }
}

impl tower_service::Service<http::Request<Body>> for Failover {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its replica's channel itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(Arc::clone(&self.inner).send(request))
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    /// An address where nothing listens: a connection to it is refused.
    fn dead_address() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("{error}"));
        listener.local_addr().map(|address| address.to_string()).unwrap_or_else(|error| panic!("{error}"))
    }

    /// A server (health and reflection) on a runtime of its own: shutting the
    /// runtime down kills it, its connections and calls with it, as SIGKILL would.
    fn server(faults: &str) -> (String, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("{error}"));
        listener.set_nonblocking(true).unwrap_or_else(|error| panic!("{error}"));
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|error| panic!("{error}"));
        let faults = crate::fault::FaultLayer::new(
            faults.parse().unwrap_or_else(|error| panic!("{error}")),
            vec!["/grpc.health.v1.Health/".into()],
            1,
            Default::default(),
        );
        let observe = crate::observe::ObserveLayer::new(None, crate::monitor::Monitor::off(), "test");
        let routes = tonic::service::Routes::default();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap_or_else(|error| panic!("{error}"));
            let _ = crate::server::serve(listener, routes, &[], faults, observe, None, std::future::pending()).await;
        });
        (address, runtime)
    }

    fn check(channel: &crate::GrpcChannel) -> impl Future<Output = Result<(), tonic::Status>> + use<> {
        let mut client = HealthClient::new(channel.clone());
        async move { client.check(HealthCheckRequest { service: String::new() }).await.map(|_| ()) }
    }

    use std::future::Future;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_replica_is_passed_over_within_the_call_and_every_call_is_answered() {
        let (live, runtime) = server("");
        let dead = dead_address();
        for list in [format!("{dead},{live}"), format!("{live},{dead}")] {
            let channel = crate::tls::connect(&list, None, "").unwrap_or_else(|error| panic!("{error}"));
            for call in 0..8 {
                check(&channel).await.unwrap_or_else(|status| panic!("call {call} to {list}: {status:?}"));
            }
        }
        // All of them dead: the caller is told UNAVAILABLE, and may send again.
        let channel = crate::tls::connect(&format!("{dead},{}", dead_address()), None, "")
            .unwrap_or_else(|error| panic!("{error}"));
        let status = check(&channel).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        runtime.shutdown_background();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_cut_on_its_way_is_unavailable_not_unknown() {
        for list in [None, Some(dead_address())] {
            let (address, runtime) = server("latency=30s");
            let list = list.map_or(address.clone(), |dead| format!("{dead},{address}"));
            let channel = crate::tls::connect(&list, None, "").unwrap_or_else(|error| panic!("{error}"));
            let call = tokio::spawn(check(&channel));
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            // The replica dies while the call waits on it.
            runtime.shutdown_background();
            let status = tokio::time::timeout(std::time::Duration::from_secs(10), call)
                .await
                .unwrap_or_else(|_| panic!("the cut call was not answered"))
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unavailable, "{list}: {status:?}");
            assert!(status.message().contains(&address), "names the replica: {status:?}");
            assert!(egov_runtime_is_retryable(&status));
        }
    }

    fn egov_runtime_is_retryable(status: &tonic::Status) -> bool {
        crate::status::is_retryable(status)
    }
}
