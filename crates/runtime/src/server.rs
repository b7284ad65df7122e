//! The gRPC server every participant runs: its own services plus health and
//! reflection, one tracing span per call (`crate::trace`), on a listener bound by the caller.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Serves `routes` (with health and reflection added) on `listener` until `shutdown`,
/// over TLS with client certificates when `tls` is given (`crate::tls`).
/// `service_names` are the full names reported SERVING by the health service.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&'static str],
    faults: crate::fault::FaultLayer,
    observe: crate::observe::ObserveLayer,
    tls: Option<crate::tls::ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_following(listener, routes, service_names, faults, observe, tls, None, shutdown).await
}

/// [`serve`], with the health of `service_names` (and the server's, `""`)
/// following `serving`: SERVING while it says true, NOT_SERVING while it
/// says false (a participant whose database does not answer); none: SERVING.
#[allow(clippy::too_many_arguments)]
pub async fn serve_following(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&'static str],
    faults: crate::fault::FaultLayer,
    observe: crate::observe::ObserveLayer,
    tls: Option<crate::tls::ServerTls>,
    serving: Option<tokio::sync::watch::Receiver<bool>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let status = |up: bool| if up { ServingStatus::Serving } else { ServingStatus::NotServing };
    let up = serving.as_ref().is_none_or(|serving| *serving.borrow());
    for name in service_names {
        reporter.set_service_status(*name, status(up)).await;
    }
    reporter.set_service_status("", status(up)).await;
    // Ends with the server (aborted when this function returns).
    let follower = serving.map(|mut serving| {
        let names = service_names.to_vec();
        let reporter = reporter.clone();
        tokio::spawn(async move {
            while serving.changed().await.is_ok() {
                let up = *serving.borrow_and_update();
                for name in &names {
                    reporter.set_service_status(*name, status(up)).await;
                }
                reporter.set_service_status("", status(up)).await;
            }
        })
    });
    let _follower = AbortOnDrop(follower);
    // Reflection describes what this port serves, not every service of the contract.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(egov_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection");
        for name in service_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let routes = routes.add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha);
    let trace = crate::trace::TraceLayer::new(observe.participant());
    let peers = tls.as_ref().map(crate::tls::ServerTls::layer).unwrap_or_default();
    let router = tonic::transport::Server::builder()
        // No status leaves without a reason code (`reasons`); outside that, the
        // metrics and the monitoring records see each call's final status and reason.
        // Inside, the caller's certificate (`tls`).
        // Outermost, each call's span (`trace`).
        .layer(tower_layer::Stack::new(
            tower_layer::Stack::new(
                tower_layer::Stack::new(tower_layer::Stack::new(peers, faults), crate::reasons::ReasonLayer),
                observe,
            ),
            trace,
        ))
        .add_routes(routes);
    match tls {
        None => {
            // Small answers go out at once: without TCP_NODELAY, Nagle's algorithm and
            // the peer's delayed acknowledgement add about 40 ms to a call.
            let incoming = TcpListenerStream::new(listener).map(|stream| {
                stream.inspect(|stream| {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::warn!(%error, "cannot set TCP_NODELAY");
                    }
                })
            });
            router.serve_with_incoming_shutdown(incoming, shutdown).await?
        }
        Some(tls) => router.serve_with_incoming_shutdown(tls.incoming(listener), shutdown).await?,
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Records an envelope's ids on the current call's span.
pub fn record_ids(correlation_id: &str, message_id: &str) {
    let span = tracing::Span::current();
    span.record("correlation_id", correlation_id);
    span.record("message_id", message_id);
    crate::trace::join_application(&span, correlation_id);
}
