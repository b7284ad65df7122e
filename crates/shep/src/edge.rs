//! The SHEP edge (docs/shep.md): the HTTP server of SyncChannel and
//! AsyncChannel v10, which authenticates the sender, signs as the member it
//! is (the edge holds its clients' keys, as a security server does), and
//! routes through the gateway's gRPC face. Its own store (`DATA/shep/`)
//! keeps its message log (each envelope with the SOAP message it came from
//! or became), the SHEP messages' states, the poll queues, its outbox and
//! the remembered answer of every `(senderId, messageId)`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, FixedOffset};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::{Envelope, EnvelopeHeader, MessageType};
use egov_runtime::outbox::Outbox;
use egov_runtime::receive::Opaque;
use egov_runtime::{Channel, Clock, Context, GrpcChannel, Receiver, Services};
use egov_store::{Answer, Batch, Store};
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::faults::{Fault, Lang};
use crate::senders::{Sender, Senders};
use crate::services::{ShepService, ShepServices};
use crate::wire::{self, Limits, OperationName, Security};

/// How a role is served by an external SHEP system (`--external ROLE=push:URL|poll`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// The edge calls the system's `sendMessage` at this URL.
    Push(String),
    /// The system fetches with `getMessages`.
    Poll,
}

/// `ROLE=push:URL` or `ROLE=poll`: the role's name and how it is served.
pub fn parse_external(text: &str) -> Result<(String, External), String> {
    let (role, how) = text.split_once('=').ok_or_else(|| format!("{text:?} is not ROLE=push:URL or ROLE=poll"))?;
    let role = role.trim();
    if !matches!(role, "regional" | "workstation") {
        return Err(format!("only regional and workstation can be external, not {role:?}"));
    }
    let how = how.trim();
    let external = if how == "poll" {
        External::Poll
    } else if let Some(url) = how.strip_prefix("push:") {
        if !url.starts_with("http://") {
            return Err(format!("a push URL is http://HOST:PORT/PATH, not {url:?}"));
        }
        External::Push(url.to_owned())
    } else {
        return Err(format!("{how:?} is neither push:URL nor poll"));
    };
    Ok((role.to_owned(), external))
}

/// What the edge is told at start.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Where the SOAP endpoints listen.
    pub address: String,
    /// Where the edge's gRPC inbox (for the external roles) and admin service listen.
    pub grpc_address: String,
    /// The SHEP services instead of the embedded table.
    pub services_file: Option<std::path::PathBuf>,
    /// Refuse a sync request without a `wsse:Security` header (`shep.unsigned`).
    pub require_signed_sync: bool,
    pub limits: Limits,
    /// The offset of a time sent without one (Astana: +05:00), and of the times the edge writes.
    pub naive_offset: FixedOffset,
    /// `getMessages` without `amount`, or with 0.
    pub default_amount: u32,
    /// The roles served by external systems, by role name (`regional`, `workstation`).
    pub external: BTreeMap<String, External>,
}

impl Default for EdgeSettings {
    fn default() -> EdgeSettings {
        EdgeSettings {
            address: DEFAULT_ADDRESS.to_owned(),
            grpc_address: "127.0.0.1:0".to_owned(),
            services_file: None,
            require_signed_sync: false,
            limits: Limits::default(),
            naive_offset: FixedOffset::east_opt(5 * 3600).expect("+05:00 is an offset"),
            default_amount: 10,
            external: BTreeMap::new(),
        }
    }
}

/// Where the SOAP endpoints listen by default: beside the participants' 50051..50055.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:50056";

/// A member the edge signs as, with its gateway client (over TLS, as that member).
#[derive(Debug, Clone)]
pub struct Fronted {
    pub context: Context,
    pub gateway: GatewayServiceClient<GrpcChannel>,
}

/// What the stack hands the edge.
pub struct EdgeParts {
    pub store: Store,
    pub outbox: Arc<Outbox>,
    pub services: Arc<Services>,
    pub shep_services: ShepServices,
    pub senders: Senders,
    /// By member id.
    pub members: HashMap<String, Fronted>,
    pub settings: EdgeSettings,
    pub clock: Arc<dyn Clock>,
}

/// The SHEP edge.
pub struct Edge {
    pub(crate) store: Store,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) services: Arc<Services>,
    pub(crate) shep_services: ShepServices,
    pub(crate) senders: Senders,
    pub(crate) members: HashMap<String, Fronted>,
    /// A stateless receiver per member: checks the answers it is sent.
    pub(crate) answers: HashMap<String, Receiver>,
    /// A stateful receiver per member: what the gateway delivers to an external role.
    pub(crate) inboxes: HashMap<String, Receiver>,
    pub(crate) settings: EdgeSettings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) base_url: std::sync::OnceLock<String>,
    /// One request of a `(senderId, messageId)` at a time: a resend that
    /// arrives while the first is still being handled waits for its answer.
    pub(crate) in_flight: std::sync::Mutex<HashMap<(String, String), Arc<tokio::sync::Notify>>>,
    /// The `getMessages` answer that last offered each polled message not settled
    /// yet, logged with the message when it is acknowledged (not kept over a restart).
    pub(crate) offered: std::sync::Mutex<HashMap<String, Arc<str>>>,
}

/// A request of a `(senderId, messageId)` being handled: the next one waits until it is dropped.
pub(crate) struct OneAtATime<'e> {
    edge: &'e Edge,
    key: (String, String),
    done: Arc<tokio::sync::Notify>,
}

impl Drop for OneAtATime<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.edge.in_flight.lock() {
            in_flight.remove(&self.key);
        }
        self.done.notify_waiters();
    }
}

/// How long a sync request may wait for the gateway's answer (the gateway
/// tries a registry for at most about 8 s).
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The key a SHEP sender's messages are remembered under (beside the members' own).
pub(crate) fn remembered_sender(sender_id: &str) -> String {
    format!("shep:{sender_id}")
}

/// SHA-256 of a request's bytes: what a resend is recognised by.
pub(crate) fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// A new `{GUID}`.
pub(crate) fn braced_guid() -> String {
    format!("{{{}}}", uuid::Uuid::new_v4())
}

/// Which of the two endpoints a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Sync,
    Async,
}

impl Endpoint {
    fn main_operation(self) -> OperationName {
        match self {
            Endpoint::Sync => OperationName::SyncSendMessage,
            Endpoint::Async => OperationName::SendMessage,
        }
    }

    fn serves(self, operation: OperationName) -> bool {
        match self {
            Endpoint::Sync => operation == OperationName::SyncSendMessage,
            Endpoint::Async => operation != OperationName::SyncSendMessage,
        }
    }
}

/// The algorithm URIs a `wsse:Security` header may name (shared/design/shep.md §5).
const SIGNATURE_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311",
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
];
const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#gost34311",
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512",
    "http://www.w3.org/2001/04/xmlenc#sha256",
];
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// A `wsse:Security` header's structure (its GOST signature cannot be checked
/// here: docs/shep.md, Assumptions): one signature, one reference, to the
/// Body's `wsu:Id`, with algorithms SHEP uses.
pub fn check_security(security: Option<&Security>, required: bool) -> Result<(), Fault> {
    let Some(security) = security else {
        if required {
            return Err(Fault::client("shep.unsigned", "this endpoint takes only requests signed with wsse:Security"));
        }
        return Ok(());
    };
    let bad = |detail: String| Err(Fault::client("shep.bad_security", detail));
    if security.signatures != 1 {
        return bad(format!("wsse:Security holds {} signatures, not one", security.signatures));
    }
    let [reference] = security.references.as_slice() else {
        return bad(format!("the signature has {} references, not one", security.references.len()));
    };
    match &security.body_id {
        Some(id) if reference.strip_prefix('#') == Some(id.as_str()) => {}
        Some(id) => return bad(format!("the signature references {reference}, not the Body (#{id})")),
        None => return bad("the Body has no wsu:Id for the signature to reference".to_owned()),
    }
    match security.signature_method.as_deref() {
        Some(method) if SIGNATURE_METHODS.contains(&method) => {}
        other => return bad(format!("signature method {other:?} is not one SHEP uses")),
    }
    match security.digest_method.as_deref() {
        Some(method) if DIGEST_METHODS.contains(&method) => {}
        other => return bad(format!("digest method {other:?} is not one SHEP uses")),
    }
    match security.canonicalization_method.as_deref() {
        Some(EXC_C14N) => Ok(()),
        other => bad(format!("canonicalization method {other:?} is not exclusive c14n")),
    }
}

/// A message type of SHEP as the envelope's (UPDATE travels as a notification).
pub(crate) fn internal_type(message_type: wire::MessageType) -> MessageType {
    match message_type {
        wire::MessageType::Request => MessageType::Request,
        wire::MessageType::Response => MessageType::Response,
        wire::MessageType::Notification | wire::MessageType::Update => MessageType::Notification,
    }
}

impl Edge {
    pub fn new(parts: EdgeParts) -> Arc<Edge> {
        let stateless = |fronted: &Fronted| Receiver::stateless(fronted.context.clone(), Arc::clone(&parts.services));
        let answers = parts.members.iter().map(|(id, fronted)| (id.clone(), stateless(fronted))).collect();
        let inboxes = parts
            .members
            .iter()
            .map(|(id, fronted)| {
                let receiver = Receiver::stateful(
                    fronted.context.clone(),
                    Arc::clone(&parts.services),
                    parts.store.clone(),
                    Arc::clone(&parts.outbox),
                );
                (id.clone(), receiver)
            })
            .collect();
        Arc::new(Edge {
            store: parts.store,
            outbox: parts.outbox,
            services: parts.services,
            shep_services: parts.shep_services,
            senders: parts.senders,
            members: parts.members,
            answers,
            inboxes,
            settings: parts.settings,
            clock: parts.clock,
            base_url: std::sync::OnceLock::new(),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            offered: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn offset(&self) -> FixedOffset {
        self.settings.naive_offset
    }

    /// The time now, in the edge's offset.
    pub(crate) fn now(&self) -> DateTime<FixedOffset> {
        self.at(self.clock.now_ms())
    }

    pub(crate) fn at(&self, ms: i64) -> DateTime<FixedOffset> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&self.offset())
    }

    pub(crate) fn fronted(&self, member: &str) -> Result<&Fronted, Fault> {
        self.members
            .get(member)
            .ok_or_else(|| Fault::server("shep.no_key", format!("the edge holds no key of {member}")))
    }

    /// The sender's role must be allowed by the service's row (the gateway would refuse it so).
    pub(crate) fn check_role(&self, sender: &Sender, service: &egov_runtime::Service) -> Result<(), Fault> {
        let fronted = self.fronted(&sender.member)?;
        let trust = fronted.context.trust.current();
        let role = trust.member(&sender.member).map(|member| member.role.as_str().to_owned()).unwrap_or_default();
        if !service.allows(&role) {
            return Err(Fault::client(
                "access.denied",
                format!("{} ({role}) may not send {}", sender.member, service.id),
            ));
        }
        Ok(())
    }

    /// The SHEP service `shep_id`, which must travel on `channel`.
    pub(crate) fn shep_service(&self, shep_id: &str, channel: Channel) -> Result<&ShepService, Fault> {
        let service = self
            .shep_services
            .by_shep_id(shep_id)
            .ok_or_else(|| Fault::client("shep.unknown_service", format!("no SHEP service {shep_id:?}")))?;
        if service.service.channel != channel {
            return Err(Fault::client(
                "shep.wrong_channel",
                format!("service {shep_id} travels on the {:?} channel", service.service.channel).to_lowercase(),
            ));
        }
        Ok(service)
    }

    /// The answer remembered for a sender's message id: `Some` for a resend of
    /// the same bytes, a fault for the same id with other bytes.
    pub(crate) fn remembered(&self, sender_id: &str, message_id: &str, raw: &[u8]) -> Result<Option<String>, Fault> {
        let remembered = self
            .store
            .remembered(&remembered_sender(sender_id), message_id)
            .map_err(|error| Fault::server(error.code(), error.to_string()))?;
        let Some(remembered) = remembered else { return Ok(None) };
        if remembered.digest != digest(raw) {
            return Err(Fault::client(
                "shep.duplicate_message_id",
                format!("message id {message_id} was already used by {sender_id} for other bytes"),
            ));
        }
        Ok(Some(String::from_utf8_lossy(&remembered.response).into_owned()))
    }

    /// Holds the lock of `(sender_id, message_id)` while its request is handled.
    pub(crate) async fn one_at_a_time(&self, sender_id: &str, message_id: &str) -> OneAtATime<'_> {
        let key = (sender_id.to_owned(), message_id.to_owned());
        loop {
            let running = {
                let Ok(mut in_flight) = self.in_flight.lock() else { break };
                match in_flight.get(&key) {
                    Some(running) => Arc::clone(running),
                    None => {
                        let done = Arc::new(tokio::sync::Notify::new());
                        in_flight.insert(key.clone(), Arc::clone(&done));
                        return OneAtATime { edge: self, key, done };
                    }
                }
            };
            // Registered before the map is looked at again, so the first one's end is not missed.
            let finished = running.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let still_running = self
                .in_flight
                .lock()
                .is_ok_and(|in_flight| in_flight.get(&key).is_some_and(|current| Arc::ptr_eq(current, &running)));
            if still_running {
                finished.await;
            }
        }
        // A poisoned map: no waiting (the remembered answer still decides).
        OneAtATime { edge: self, key, done: Arc::new(tokio::sync::Notify::new()) }
    }

    pub(crate) async fn commit(&self, batch: Batch) -> Result<Vec<u64>, Fault> {
        self.store.commit(batch).await.map_err(|error| Fault::server(error.code(), error.to_string()))
    }

    /// Signs `body` (a message of type `body_type`, encoded) as `member`.
    pub(crate) fn seal(
        &self,
        member: &str,
        header: Header<'_>,
        body_type: &str,
        body: Vec<u8>,
    ) -> Result<(Envelope, EnvelopeHeader), Fault> {
        let fronted = self.fronted(member)?;
        let signer = &fronted.context.signer;
        let mut envelope_header = signer.header(
            header.message_id,
            header.correlation_id,
            header.service_id,
            header.recipient_id,
            header.time_ms,
            header.message_type,
        );
        envelope_header.body_type = body_type.to_owned();
        let envelope = signer.seal_bytes(envelope_header.encode_to_vec(), body);
        Ok((envelope, envelope_header))
    }

    /// Takes one HTTP request to an endpoint, and answers it (a Fault on refusal).
    pub async fn handle(&self, endpoint: Endpoint, headers: &HeaderMap, body: Body) -> (StatusCode, String) {
        let session = braced_guid();
        match self.handle_request(endpoint, headers, body, &session).await {
            Ok(answer) => (StatusCode::OK, answer),
            Err((fault, lang)) => {
                tracing::info!(code = %fault.code, detail = %fault.detail, "SHEP request refused");
                let operation = fault.operation.unwrap_or(endpoint.main_operation());
                let info = fault.error_info(lang, self.now(), &session);
                (StatusCode::INTERNAL_SERVER_ERROR, wire::write_fault(operation, fault.faultcode(), &info))
            }
        }
    }

    async fn handle_request(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        body: Body,
        session: &str,
    ) -> Result<String, (Fault, Lang)> {
        let ru = |fault: Fault| (fault, Lang::Ru);
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "text/xml" && mime != "application/xml" {
            return Err(ru(Fault::client(
                "shep.bad_content_type",
                format!("content type {content_type:?}: SOAP 1.1 is text/xml or application/xml"),
            )));
        }
        let limit = self.settings.limits.max_bytes;
        let too_large = |size: String| {
            Fault::client("shep.too_large", format!("the request is {size}; the limit is {limit} bytes"))
        };
        if let Some(length) =
            headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
            && length > limit
        {
            return Err(ru(too_large(format!("{length} bytes"))));
        }
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ru(too_large("larger".to_owned())))?;
        let request =
            wire::read_request(&bytes, &self.settings.limits, self.offset()).map_err(|e| ru(Fault::from(e)))?;
        let operation = request.operation.name();
        let lang = Lang::parse(lang_of(&request.operation));
        let refused = |fault: Fault| (fault.of(operation), lang);
        if !endpoint.serves(operation) {
            return Err(refused(Fault::client(
                "shep.wrong_endpoint",
                format!("{} is not served on this endpoint", operation.element()),
            )));
        }
        let security = request.security.as_ref();
        match request.operation {
            wire::Operation::SyncSendMessage { info, data } => {
                self.sync_send(&bytes, info, data, security, session).await.map_err(refused)
            }
            wire::Operation::SendMessage { info, data } => {
                self.async_send(&bytes, info, data, session).await.map_err(refused)
            }
            wire::Operation::GetMessages(request) => self.get_messages(request, session).map_err(refused),
            wire::Operation::GetMessageStatus(request) => {
                self.get_message_status(request, session).await.map_err(refused)
            }
            wire::Operation::SendDeliveryNotification(request) => {
                self.delivery_notification(request, session).await.map_err(refused)
            }
        }
    }

    /// Sync `SendMessage`: the look-ups of process 3, through the gateway's synchronous channel.
    async fn sync_send(
        &self,
        raw: &[u8],
        info: wire::SyncRequestInfo,
        data: wire::Payload,
        security: Option<&Security>,
        session: &str,
    ) -> Result<String, Fault> {
        let sender = self.senders.authenticate(&info.sender)?;
        let shep = self.shep_service(&info.service_id, Channel::Sync)?;
        let service = &shep.service;
        check_security(security, self.settings.require_signed_sync)?;
        self.check_role(sender, service)?;
        let _one = self.one_at_a_time(&sender.sender_id, &info.message_id).await;
        if let Some(answer) = self.remembered(&sender.sender_id, &info.message_id, raw)? {
            return Ok(answer);
        }
        let body = crate::body::from_xml(&data.xml, &service.body)?;
        let now_ms = self.clock.now_ms();
        // The chain: the client's correlation id, else its message id.
        let correlation = info.correlation_id.clone().unwrap_or_else(|| info.message_id.clone());
        let (request, request_header) = self.seal(
            &sender.member,
            Header {
                message_id: uuid::Uuid::new_v4().to_string(),
                correlation_id: &correlation,
                service_id: &service.id,
                recipient_id: &service.recipient,
                time_ms: now_ms,
                message_type: MessageType::Request,
            },
            &service.body,
            body,
        )?;
        let fronted = self.fronted(&sender.member)?;
        let mut gateway = fronted.gateway.clone();
        let call = gateway.send_sync(egov_proto::SendSyncRequest { envelope: Some(request.clone()) });
        let answered = tokio::time::timeout(SYNC_TIMEOUT, call)
            .await
            .map_err(|_| Fault::server("shep.gateway_unreachable", format!("no answer within {SYNC_TIMEOUT:?}")))?
            .map_err(|status| Fault::from_status(&status))?;
        let answer = answered
            .into_inner()
            .envelope
            .ok_or_else(|| Fault::server("envelope.bad_answer", "the gateway answered without an envelope"))?;
        let receiver = self.answers.get(&sender.member).ok_or_else(|| Fault::server("shep.no_key", "no receiver"))?;
        receiver
            .open_answer::<Opaque>(&service.id, &request_header, &answer, true)
            .map_err(|refusal| Fault::from_refusal(&refusal))?;
        let answer_header = egov_envelope::decode_header(&answer.header)
            .map_err(|error| Fault::server("envelope.bad_answer", error.to_string()))?;
        let xml = crate::body::to_xml(&answer.body, &answer_header.body_type)?;
        let response = wire::SyncResponse {
            message_id: answer_header.message_id.clone(),
            correlation_id: Some(info.message_id.clone()),
            response_date: self.now(),
            status_code: "SCSS001".to_owned(),
            status_message: "Message has been processed successfully".to_owned(),
            session_id: Some(session.to_owned()),
            data: wire::Payload { xml, as_string: data.as_string },
        };
        let text = wire::write_answer(&wire::Answer::SyncSendMessage(response));
        let mut batch = Batch::new();
        let request_text = String::from_utf8_lossy(raw).into_owned();
        batch.log(
            now_ms,
            "sent",
            request.encode_to_vec(),
            request_text,
            egov_runtime::receive::log_keys(&request, "sent"),
        );
        let answer_keys = egov_runtime::receive::log_keys(&answer, "received");
        batch.log(self.clock.now_ms(), "received", answer.encode_to_vec(), text.clone(), answer_keys);
        batch.remember(
            &remembered_sender(&sender.sender_id),
            &info.message_id,
            digest(raw),
            Answer::Bytes(text.clone().into_bytes()),
        );
        self.commit(batch).await?;
        Ok(text)
    }

    /// `http://ADDR`, the address the edge serves on.
    fn base(&self) -> String {
        self.base_url.get().cloned().unwrap_or_else(|| format!("http://{}", self.settings.address))
    }

    /// The WSDL of an endpoint, with the edge's own address in it.
    pub fn wsdl(&self, endpoint: Endpoint) -> String {
        let base = self.base();
        match endpoint {
            Endpoint::Sync => crate::wsdl::sync_wsdl(&base),
            Endpoint::Async => crate::wsdl::async_wsdl(&base),
        }
    }
}

/// The fields of a header the edge signs.
pub(crate) struct Header<'a> {
    pub message_id: String,
    pub correlation_id: &'a str,
    pub service_id: &'a str,
    pub recipient_id: &'a str,
    pub time_ms: i64,
    pub message_type: MessageType,
}

/// The `lang` property of a request, if it has one.
fn lang_of(operation: &wire::Operation) -> Option<&str> {
    let properties = match operation {
        wire::Operation::SyncSendMessage { info, .. } => &info.properties,
        wire::Operation::SendMessage { info, .. } => &info.properties,
        wire::Operation::GetMessages(request) => &request.properties,
        wire::Operation::GetMessageStatus(request) => &request.properties,
        wire::Operation::SendDeliveryNotification(_) => return None,
    };
    properties.iter().find(|property| property.key.eq_ignore_ascii_case("lang")).map(|property| property.value.as_str())
}

/// The SOAP endpoints: `POST` a request, `GET ?wsdl` the WSDL; each path also under `/shep/`.
pub fn router(edge: Arc<Edge>) -> Router {
    async fn sync_post(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Body) -> Response {
        soap(edge.handle(Endpoint::Sync, &headers, body).await)
    }
    async fn async_post(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Body) -> Response {
        soap(edge.handle(Endpoint::Async, &headers, body).await)
    }
    async fn sync_get(State(edge): State<Arc<Edge>>, RawQuery(query): RawQuery) -> Response {
        wsdl(&edge, Endpoint::Sync, query.as_deref())
    }
    async fn async_get(State(edge): State<Arc<Edge>>, RawQuery(query): RawQuery) -> Response {
        wsdl(&edge, Endpoint::Async, query.as_deref())
    }
    let mut router = Router::new();
    for prefix in ["", "/shep"] {
        for slash in ["/", ""] {
            router = router
                .route(&format!("{prefix}/bip-sync-wss-gost{slash}"), post(sync_post).get(sync_get))
                .route(&format!("{prefix}/bip-async{slash}"), post(async_post).get(async_get));
        }
    }
    // The body is read by the handler, within the edge's own limit.
    router.layer(axum::extract::DefaultBodyLimit::disable()).with_state(edge)
}

fn soap((status, text): (StatusCode, String)) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], text).into_response()
}

/// `?wsdl`: the endpoint's WSDL; `?xsd=NAME`: one of its XSDs; both with the edge's address.
fn wsdl(edge: &Edge, endpoint: Endpoint, query: Option<&str>) -> Response {
    let xml =
        |text: String| (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], text).into_response();
    match query {
        Some(query) if query.eq_ignore_ascii_case("wsdl") => xml(edge.wsdl(endpoint)),
        // What a PUSH recipient or a notified sender implements.
        Some(query) if endpoint == Endpoint::Async && query.eq_ignore_ascii_case("wsdl=client") => {
            xml(crate::wsdl::client_wsdl(&edge.base()))
        }
        Some(query) if query.to_ascii_lowercase().starts_with("xsd=") => {
            let path = match endpoint {
                Endpoint::Sync => crate::wsdl::SYNC_PATH,
                Endpoint::Async => crate::wsdl::ASYNC_PATH,
            };
            match crate::wsdl::xsd(&query[4..], &edge.base(), path) {
                Some(text) => xml(text),
                None => (StatusCode::NOT_FOUND, "no such XSD\n").into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "GET ?wsdl for the WSDL; POST a SOAP request\n").into_response(),
    }
}

/// Serves the SOAP endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let _ = edge.base_url.set(format!("http://{address}"));
    axum::serve(listener, router(edge)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn signed() -> Security {
        Security {
            must_understand: true,
            signatures: 1,
            references: vec!["#id-1".to_owned()],
            signature_method: Some(SIGNATURE_METHODS[0].to_owned()),
            digest_method: Some(DIGEST_METHODS[0].to_owned()),
            canonicalization_method: Some(EXC_C14N.to_owned()),
            body_id: Some("id-1".to_owned()),
        }
    }

    #[test]
    fn a_security_header_is_checked_for_its_structure() {
        assert!(check_security(Some(&signed()), true).is_ok());
        assert!(check_security(None, false).is_ok());
        assert_eq!(check_security(None, true).unwrap_err().code, "shep.unsigned");
        let broken = [
            Security { signatures: 2, ..signed() },
            Security { references: vec!["#id-1".into(), "#id-2".into()], ..signed() },
            Security { references: vec!["#other".into()], ..signed() },
            Security { body_id: None, ..signed() },
            Security { signature_method: Some("http://www.w3.org/2000/09/xmldsig#rsa-sha1".into()), ..signed() },
            Security { digest_method: None, ..signed() },
            Security {
                canonicalization_method: Some("http://www.w3.org/TR/2001/REC-xml-c14n-20010315".into()),
                ..signed()
            },
        ];
        for security in broken {
            assert_eq!(check_security(Some(&security), false).unwrap_err().code, "shep.bad_security", "{security:?}");
        }
    }

    #[test]
    fn an_external_role_is_push_to_a_url_or_poll() {
        assert_eq!(parse_external("workstation=poll").unwrap(), ("workstation".into(), External::Poll));
        assert_eq!(
            parse_external("regional=push:http://127.0.0.1:9/arm").unwrap(),
            ("regional".into(), External::Push("http://127.0.0.1:9/arm".into()))
        );
        assert!(parse_external("gateway=poll").is_err());
        assert!(parse_external("regional=push:ftp://x").is_err());
        assert!(parse_external("regional").is_err());
    }
}
