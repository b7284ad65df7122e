//! PUSH delivery: the edge calls an external system's `sendMessage`
//! (`IAsyncChannelClient`) through its outbox. Accepted: DELIVERED. A
//! transport error, an HTTP 5xx without a SOAP fault, or a fault `SCE909`
//! (the recipient's internal error): tried again, with the outbox's backoff
//! and its incident after the last attempt. Any other fault: NOT_DELIVERED,
//! parked as an incident at once.

use bytes::Bytes;
use egov_runtime::outbox::Attempt;
use egov_store::Batch;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::asynchronous::{EdgeCourier, State};
use crate::edge::External;
use crate::wire;

/// The HTTP client the edge pushes with.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The largest answer read from a recipient.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Posts a SOAP request to `url` with `client`: the status and the answer's
/// bytes, or why there is none (a transport error: the call may be tried again).
pub async fn exchange(client: &HttpClient, url: &str, text: String) -> Result<(hyper::StatusCode, Bytes), String> {
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(Full::new(Bytes::from(text)))
        .map_err(|error| format!("bad URL {url}: {error}"))?;
    let response = client.request(request).await.map_err(|error| format!("{url}: {error}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|error| format!("{url}: the answer could not be read: {error}"))?
        .to_bytes();
    Ok((status, body))
}

/// One PUSH of SHEP message `id` (outbox item `item`) to the system serving
/// `member`. Taken, the envelope is logged as delivered with the SOAP request
/// it became in the entry's note.
pub(crate) async fn attempt(courier: &EdgeCourier, item: &egov_store::OutboxItem, member: &str, id: &str) -> Attempt {
    let edge = courier.edge();
    let record = match edge.record(id) {
        Ok(Some((_, record))) => record,
        Ok(None) => return Attempt::Stopped(Batch::new(), format!("no SHEP message {id}")),
        Err(fault) => return Attempt::Retry(fault.to_string()),
    };
    if record.state != State::OnDelivery {
        // Settled by other means meanwhile: nothing to push.
        return Attempt::Delivered(Batch::new());
    }
    let Some(External::Push(url)) = edge.external_of(member).cloned() else {
        let error = format!("{member} is not served by a PUSH recipient");
        let mut batch = Batch::new();
        courier.set_state(&mut batch, id, State::DeliveryStopped, &error);
        return Attempt::Stopped(batch, error);
    };
    let text = wire::write_push(&edge.delivered_message(&record));
    let (status, body) = match exchange(courier.http(), &url, text.clone()).await {
        Ok(answer) => answer,
        Err(error) => return Attempt::Retry(error),
    };
    match wire::read_push_answer(&body, &edge.settings.limits, edge.offset()) {
        Ok(wire::PushAnswer::Accepted { .. }) => {
            let mut batch = Batch::new();
            courier.set_state(&mut batch, id, State::Delivered, "");
            let keys = <egov_proto::Envelope as prost::Message>::decode(item.envelope.as_slice())
                .map(|envelope| egov_runtime::receive::log_keys(&envelope, "delivered"))
                .unwrap_or_default();
            batch.log(edge.clock.now_ms(), "delivered", item.envelope.clone(), text, keys);
            Attempt::Delivered(batch)
        }
        Ok(wire::PushAnswer::Fault { faultcode, faultstring, error }) => {
            let code = error.as_ref().map(|error| error.error_code.clone()).unwrap_or_else(|| faultcode.clone());
            let message = format!("{url} answered a fault {code}: {faultstring}");
            if code == "SCE909" {
                return Attempt::Retry(message);
            }
            let mut batch = Batch::new();
            courier.set_state(&mut batch, id, State::NotDelivered, &message);
            Attempt::Stopped(batch, message)
        }
        Err(error) if status.is_server_error() => Attempt::Retry(format!("{url}: HTTP {status}: {error}")),
        Err(error) => {
            let message = format!("{url}: HTTP {status}, not a SHEP answer: {error}");
            let mut batch = Batch::new();
            courier.set_state(&mut batch, id, State::NotDelivered, &message);
            Attempt::Stopped(batch, message)
        }
    }
}

/// Posts a SOAP request to `url`: the HTTP status and the answer's text (`egov shep send`).
pub async fn post(url: &str, body: Vec<u8>) -> anyhow::Result<(hyper::StatusCode, String)> {
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(Full::new(Bytes::from(body)))?;
    let response = client().request(request).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), 64 * 1024 * 1024)
        .collect()
        .await
        .map_err(|error| anyhow::anyhow!("the answer could not be read: {error}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
