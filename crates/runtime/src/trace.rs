//! OpenTelemetry traces (`egov serve --otlp ENDPOINT`, docs/operations.md#traces).
//!
//! Every call a participant serves runs in one span ([`TraceLayer`], which
//! also carries the log lines' `rpc` span), and every call it makes carries
//! the W3C trace context of the span it is made in (`traceparent` in the gRPC
//! metadata, [`Propagate`]), so a call's span is the child of its caller's.
//! A hop that starts with no caller's context (the operator's first call, a
//! delivery from an outbox, which may run long after the call that queued it)
//! joins its application's trace instead: the trace id is the first 16 bytes
//! of SHA-256 of the correlation id, and the parent is the application's
//! virtual root span (the next 8 bytes), which no participant emits. So one
//! application's whole route is one trace, whichever participant, process or
//! restart each hop ran in.
//!
//! Off (no `--otlp`), spans are only the log's, nothing is injected, and the
//! cost is a flag read per call.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sha2::Digest as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::around::{Around, BoxFuture, Inner, Response, Wrapped};

/// Whether spans are exported (an exporter was started in this process).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported, so that trace context is worth carrying.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The OTLP exporter of this process's spans; [`Exporter::shutdown`] sends what is buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Exports spans over OTLP/gRPC to `endpoint` (`http://host:4317`) as service `service`.
    /// Must be called inside a tokio runtime, which must outlive the exporter.
    pub fn start(endpoint: &str, service: &str) -> anyhow::Result<Exporter> {
        use opentelemetry_otlp::WithExportConfig as _;
        let endpoint = if endpoint.contains("://") { endpoint.to_owned() } else { format!("http://{endpoint}") };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&endpoint)
            .build()
            .with_context(|| format!("cannot export traces to {endpoint}"))?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        EXPORTING.store(true, Ordering::Relaxed);
        Ok(Exporter { provider })
    }

    /// The tracing layer that turns spans into OpenTelemetry spans for this exporter.
    /// Spans start when first needed rather than when entered, so a call's span can
    /// still join its application's trace once its envelope is read ([`join_application`]).
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("egov"))
            .with_context_activation(false)
            .with_location(false)
            .with_threads(false)
    }

    /// Sends the spans still buffered and stops.
    pub fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last spans could not be exported");
        }
    }
}

/// The trace context of application `correlation_id`: its trace, under its virtual root span.
pub fn application_context(correlation_id: &str) -> opentelemetry::Context {
    let digest = sha2::Sha256::digest(correlation_id.as_bytes());
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&digest[..16]);
    let mut span = [0u8; 8];
    span.copy_from_slice(&digest[16..24]);
    let context = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(span),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(context)
}

/// Makes `span` a hop of application `correlation_id`'s trace, when it has no caller's context.
pub fn join_application(span: &tracing::Span, correlation_id: &str) {
    if !exporting() || correlation_id.is_empty() || CALLER_CONTEXT.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    // Refused only where the span has started already (a child or a call was made
    // in it): it then stays in the trace it started in.
    let _ = span.set_parent(application_context(correlation_id));
}

tokio::task_local! {
    /// Whether the call being served came with its caller's trace context.
    static CALLER_CONTEXT: Cell<bool>;
}

struct Headers<'h>(&'h http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'m>(&'m mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), tonic::metadata::MetadataValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

/// The caller's trace context in a call's headers, if it sent a valid one.
fn caller_context(headers: &http::HeaderMap) -> Option<opentelemetry::Context> {
    headers.get("traceparent")?;
    let context = TraceContextPropagator::new().extract(&Headers(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// What every client of a participant calls through: each call carries the
/// trace context of the span it is made in, while spans are exported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Propagate;

impl tonic::service::Interceptor for Propagate {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if exporting() {
            let context = tracing::Span::current().context();
            if context.span().span_context().is_valid() {
                TraceContextPropagator::new().inject_context(&context, &mut Metadata(request.metadata_mut()));
            }
        }
        Ok(request)
    }
}

/// The span of the delivery of an outbox item of application `correlation_id`:
/// a hop of its application's trace, since the call that queued it is long over.
pub fn delivery_span(target: &str, item: u64, attempt: u32, correlation_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "deliver",
        otel.name = "outbox delivery",
        otel.kind = "producer",
        target = %target,
        item,
        attempt,
        correlation_id = %correlation_id,
    );
    if exporting() && !correlation_id.is_empty() {
        let _ = span.set_parent(application_context(correlation_id));
    }
    span
}

/// The tower layer in front of a participant's services that runs each call
/// in its span: `rpc` in the log, a server span of `participant` in the traces,
/// the child of the caller's span when the call carries its context.
#[derive(Debug, Clone, Copy)]
pub struct TraceLayer {
    participant: &'static str,
}

impl TraceLayer {
    /// For the participant `participant` (its member id).
    pub fn new(participant: &'static str) -> TraceLayer {
        TraceLayer { participant }
    }
}

impl<S> tower_layer::Layer<S> for TraceLayer {
    type Service = Wrapped<TraceLayer, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped::new(*self, inner)
    }
}

impl Around for TraceLayer {
    fn around<S, B>(&self, request: http::Request<B>, mut inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static,
    {
        let path = request.uri().path();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            participant = self.participant,
            path = %path,
            correlation_id = tracing::field::Empty,
            message_id = tracing::field::Empty,
            reason = tracing::field::Empty,
        );
        let caller = if exporting() { caller_context(request.headers()) } else { None };
        let has_caller = caller.is_some();
        if let Some(caller) = caller {
            let _ = span.set_parent(caller);
        }
        let recorded = span.clone();
        Box::pin(
            CALLER_CONTEXT.scope(
                Cell::new(has_caller),
                async move {
                    let response = inner.call(request).await?;
                    // A refusal is a trailers-only response: its status is in the headers.
                    if let Some(status) = tonic::Status::from_header_map(response.headers())
                        && status.code() != tonic::Code::Ok
                    {
                        recorded.record("otel.status_code", "error");
                        if let Some(reason) =
                            response.headers().get(crate::status::REASON_KEY).and_then(|value| value.to_str().ok())
                        {
                            recorded.record("reason", reason);
                        }
                    }
                    Ok(response)
                }
                .instrument(span),
            ),
        )
    }
}

/// An OTLP trace receiver that keeps the spans it is sent: what `egov bench`
/// exports to when it measures tracing's cost, and what the tests read traces from.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    spans: std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
}

impl Collector {
    /// Serves the OTLP trace service on `listener` until the runtime ends;
    /// the exporters' endpoint is `http://` and the listener's address.
    pub fn serve(&self, listener: tokio::net::TcpListener) {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            if let Err(error) =
                tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await
            {
                tracing::warn!(%error, "the OTLP collector stopped");
            }
        });
    }

    /// The spans received so far, each with its resource's `service.name` as attribute `service.name`.
    pub fn spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        self.spans.lock().map(|spans| spans.clone()).unwrap_or_default()
    }

    /// How many spans were received.
    pub fn len(&self) -> usize {
        self.spans.lock().map(|spans| spans.len()).unwrap_or(0)
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
    ) -> Result<
        tonic::Response<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse>,
        tonic::Status,
    > {
        let mut received = Vec::new();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
                .find(|attribute| attribute.key == "service.name")
                .cloned();
            for scope in resource.scope_spans {
                for mut span in scope.spans {
                    span.attributes.extend(service.clone());
                    received.push(span);
                }
            }
        }
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(received);
        }
        Ok(tonic::Response::new(Default::default()))
    }
}
