//! The tower layer in front of every participant's services that writes down
//! each call: its metrics ([`crate::metrics`]) and its operational monitoring
//! record ([`crate::monitor`]). It sees the call's final status, reason code
//! included; what the receive pipeline learns of the call inside (the
//! envelope's ids and sizes) it reads from the call's note.

use std::sync::Arc;
use std::time::Instant;

use egov_proto::MonitoringRecord;

use crate::around::{Around, BoxFuture, Inner, Response, Wrapped};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, NOTE, Note, now_us};
use crate::status::REASON_KEY;

/// Counts and records the calls of one participant.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Option<Arc<Metrics>>,
    monitor: Monitor,
    participant: &'static str,
}

impl ObserveLayer {
    /// For `participant`: metrics where given, records where `monitor` is on.
    pub fn new(metrics: Option<Arc<Metrics>>, monitor: Monitor, participant: &'static str) -> ObserveLayer {
        ObserveLayer { metrics, monitor, participant }
    }

    /// The participant whose calls it observes.
    pub fn participant(&self) -> &'static str {
        self.participant
    }
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Wrapped<ObserveLayer, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped::new(self.clone(), inner)
    }
}

/// The calls that exchange the participants' messages (the admin, evidence and witness
/// services and the bench's echo are not messages; health and reflection are not ours).
fn is_message_call(path: &str) -> bool {
    path.starts_with("/egov.v1.")
        && !path.starts_with("/egov.v1.AdminService/")
        && !path.starts_with("/egov.v1.EvidenceService/")
        && !path.starts_with("/egov.v1.WitnessService/")
        && !path.starts_with("/egov.v1.BenchService/")
}

impl Around for ObserveLayer {
    fn around<S, B>(&self, request: http::Request<B>, mut inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static,
    {
        let ObserveLayer { metrics, monitor, participant } = self.clone();
        let recorded = monitor.is_on() && is_message_call(request.uri().path());
        if metrics.is_none() && !recorded {
            return Box::pin(inner.call(request));
        }
        // "/egov.v1.WorkstationService/OpenForm" -> "WorkstationService/OpenForm".
        let rpc = request.uri().path().trim_start_matches('/').trim_start_matches("egov.v1.").to_owned();
        Box::pin(NOTE.scope(std::cell::RefCell::new(Note::default()), async move {
            let request_in_us = now_us();
            let started = Instant::now();
            let response = inner.call(request).await?;
            let note = NOTE.with(|note| note.take());
            // A refusal is a trailers-only response: its status is in the headers.
            let headers = response.headers();
            let (code, reason) = match tonic::Status::from_header_map(headers) {
                Some(status) if status.code() != tonic::Code::Ok => (
                    format!("{:?}", status.code()),
                    headers.get(REASON_KEY).and_then(|value| value.to_str().ok()).map(str::to_owned),
                ),
                _ => ("Ok".to_owned(), None),
            };
            let header = note.header.unwrap_or_default();
            if let Some(metrics) = &metrics {
                let service = if header.service_id.is_empty() { "-" } else { header.service_id.as_str() };
                metrics.record(participant, &rpc, service, &code, reason.as_deref(), started.elapsed().as_secs_f64());
            }
            if recorded {
                monitor.push(MonitoringRecord {
                    participant: String::new(),
                    kind: "server".to_owned(),
                    rpc,
                    client_id: header.sender_id,
                    service_id: header.service_id,
                    message_id: header.message_id,
                    correlation_id: header.correlation_id,
                    peer_id: header.recipient_id,
                    request_in_time_us: request_in_us,
                    request_out_time_us: note.request_out_us,
                    response_in_time_us: note.response_in_us,
                    response_out_time_us: now_us(),
                    request_size: note.request_size,
                    response_size: note.response_size,
                    succeeded: code == "Ok",
                    status_code: code,
                    reason: reason.unwrap_or_default(),
                });
            }
            Ok(response)
        }))
    }
}
