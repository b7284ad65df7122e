//! The asynchronous channel on the SHEP face (docs/shep.md):
//!
//! - `sendMessage` from an external sender: signed as its member (and the
//!   business data it carries as the member named by `signedBy`), committed
//!   with its state and an outbox item to the gateway, then acknowledged;
//! - what the gateway delivers to a role served by an external system (the
//!   edge's `InboxService`): recorded, then offered to `getMessages` or
//!   pushed by the outbox to the system's `sendMessage`;
//! - `getMessages`, `sendDeliveryNotification`, `getMessageStatus`.

use std::sync::Arc;

use egov_proto::inbox_service_server::{InboxService, InboxServiceServer};
use egov_proto::{DeliverRequest, DeliverResponse, DeliveryStatus, Envelope, MessageType};
use egov_runtime::outbox::{Attempt, Courier, Receipt, ToGateway, nothing_to_record};
use egov_runtime::receive::Opaque;
use egov_runtime::{Accept, Channel, Outcome, Received, Refusal, Services, ids};
use egov_store::{Answer, Batch, OutboxItem};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tonic::{Code, Request, Response, Status};

use crate::edge::{Edge, External, Header, braced_guid, digest, internal_type, remembered_sender};
use crate::faults::Fault;
use crate::wire::{self, MessageState};

/// One SHEP message the edge took from an external sender (`In`) or holds
/// for an external recipient (`Out`): `message/ID`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShepMessage {
    /// SHEP's `messageId`.
    pub id: String,
    /// SHEP's `correlationId`: egov's correlation id (the application's id).
    pub chain: String,
    pub shep_service: String,
    pub service: String,
    /// `REQUEST`, `RESPONSE`, `NOTIFICATION`, `UPDATE`.
    pub message_type: String,
    pub direction: Direction,
    /// `In`: the SHEP sender that sent it; `Out`: the member that sent it.
    pub sender: String,
    /// `In`: the member it was signed as; `Out`: the member it is for.
    pub member: String,
    /// The envelope's message id.
    pub internal_id: String,
    pub state: State,
    pub state_time_ms: i64,
    pub message_time_ms: i64,
    /// `Out`: the payload as offered.
    pub payload: String,
    /// Why it was not delivered, if it was not.
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    OnDelivery,
    Delivered,
    NotDelivered,
    DeliveryStopped,
}

impl State {
    fn wire(self) -> MessageState {
        match self {
            State::OnDelivery => MessageState::OnDelivery,
            State::Delivered => MessageState::Delivered,
            State::NotDelivered => MessageState::NotDelivered,
            State::DeliveryStopped => MessageState::DeliveryStopped,
        }
    }
}

pub(crate) fn message_key(id: &str) -> String {
    format!("message/{id}")
}

/// `chain/CHAIN/known`: a message of the chain passed the edge.
fn chain_key(chain: &str) -> String {
    format!("chain/{chain}/known")
}

/// `poll/MEMBER/SHEP_SERVICE/`: what waits for the member's `getMessages`, in order.
fn poll_prefix(member: &str, shep_service: &str) -> String {
    format!("poll/{member}/{shep_service}/")
}

fn poll_key(record: &ShepMessage, at_ms: i64) -> String {
    format!("{}{at_ms:016}/{}", poll_prefix(&record.member, &record.shep_service), record.id)
}

/// `internal/MEMBER/MESSAGE_ID/SHEP_ID`: a SHEP message by its envelope's sender and id.
fn internal_key(member: &str, internal_id: &str, id: &str) -> String {
    format!("internal/{member}/{internal_id}/{id}")
}

/// The member a role served by an external system is.
pub fn role_member(role: &str) -> Option<&'static str> {
    match role {
        "regional" => Some(ids::REGIONAL),
        "workstation" => Some(ids::SC_WORKSTATION),
        _ => None,
    }
}

/// An id as the edge writes it: a GUID sent braced or in capitals is the same id.
pub(crate) fn normal_id(id: &str) -> String {
    let bare = id.trim().trim_start_matches('{').trim_end_matches('}');
    match uuid::Uuid::parse_str(bare) {
        Ok(uuid) => uuid.to_string(),
        Err(_) => id.trim().to_owned(),
    }
}

fn store_fault(error: egov_store::StoreError) -> Fault {
    Fault::server(error.code(), error.to_string())
}

impl Edge {
    /// How the external system serving `member` takes its messages, if one does.
    pub(crate) fn external_of(&self, member: &str) -> Option<&External> {
        self.settings.external.iter().find(|(role, _)| role_member(role) == Some(member)).map(|(_, how)| how)
    }

    fn chain_known(&self, chain: &str) -> Result<bool, Fault> {
        // Exactly this chain's entry: a chain id may hold a '/', so another's may start with it.
        Ok(self
            .store
            .index_entries(&format!("chain/{chain}/"))
            .map_err(store_fault)?
            .iter()
            .any(|entry| entry == "known"))
    }

    pub(crate) fn record(&self, id: &str) -> Result<Option<(u64, ShepMessage)>, Fault> {
        Ok(self.store.get::<ShepMessage>(&message_key(id)).map_err(store_fault)?.map(|v| (v.version, v.value)))
    }

    /// Async `sendMessage` from an external sender.
    pub(crate) async fn async_send(
        &self,
        raw: &[u8],
        info: wire::AsyncMessageInfo,
        data: wire::Payload,
        session: &str,
    ) -> Result<String, Fault> {
        let sender = self.senders.authenticate(&info.sender)?;
        let shep = self.shep_service(&info.service_id, Channel::Async)?;
        let service = &shep.service;
        self.check_role(sender, service)?;
        let message_type = internal_type(info.message_type);
        if !service.message_types.contains(&message_type) {
            return Err(Fault::client(
                "envelope.wrong_message_type",
                format!("{} takes {}", shep.shep_id, list_types(&service.message_types)),
            ));
        }
        let message_id = uuid::Uuid::new_v4().to_string();
        // The duplicate key: the client's message id if it sent one, else SHEP's own.
        let duplicate_key = info.message_id.clone().unwrap_or_else(|| message_id.clone());
        let _one = self.one_at_a_time(&sender.sender_id, &duplicate_key).await;
        if let Some(answer) = self.remembered(&sender.sender_id, &duplicate_key, raw)? {
            return Ok(answer);
        }
        let body = crate::body::read(&data.xml, &service.body)?;
        let chain = match info.message_type {
            // egov's rule: a chain is the application: its id is the one the payload names.
            wire::MessageType::Request => {
                let chain = body.application_id().unwrap_or_else(|| message_id.clone());
                // A REQUEST starts its chain: the application was sent once already.
                if self.chain_known(&chain)? {
                    return Err(Fault::client(
                        "shep.chain_exists",
                        format!("chain {chain} was started already: its REQUEST passed this gateway"),
                    ));
                }
                chain
            }
            _ => {
                let chain = info.correlation_id.clone().ok_or_else(|| {
                    Fault::client("shep.correlation_required", "a RESPONSE, NOTIFICATION or UPDATE names its chain")
                })?;
                if !self.chain_known(&chain)? {
                    return Err(Fault::client("shep.unknown_chain", format!("no chain {chain} passed this gateway")));
                }
                chain
            }
        };
        let now_ms = self.clock.now_ms();
        // The business data it carries, signed as the member `signedBy` names.
        let mut carried = Vec::new();
        for item in body.carried() {
            if !sender.signs_for.iter().any(|member| member == &item.signed_by) {
                return Err(Fault::client(
                    "shep.not_allowed_to_sign",
                    format!("sender {} does not sign for {}", sender.sender_id, item.signed_by),
                ));
            }
            let carried_service = carried_service(&self.services, &item.body_type)?;
            let (envelope, _) = self.seal(
                &item.signed_by,
                Header {
                    message_id: uuid::Uuid::new_v4().to_string(),
                    correlation_id: &chain,
                    service_id: &carried_service.id,
                    recipient_id: &carried_service.recipient,
                    time_ms: now_ms,
                    message_type: MessageType::Request,
                },
                &item.body_type,
                item.body.clone(),
            )?;
            let fronted = self.fronted(&item.signed_by)?;
            let verified = fronted
                .context
                .open(&envelope, &egov_envelope::Checks { freshness_window_ms: None, ..fronted.context.checks.clone() })
                .map_err(|error| Fault::from_refusal(&Refusal::from(error)))?;
            if !carried_service.allows(verified.sender_role.as_str()) {
                return Err(Fault::client(
                    "access.denied",
                    format!("{} ({}) may not sign {}", item.signed_by, verified.sender_role, carried_service.id),
                ));
            }
            carried.push((item.field.clone(), envelope));
        }
        let encoded = body.encode(carried);
        let internal_id = uuid::Uuid::new_v4().to_string();
        let (envelope, _) = self.seal(
            &sender.member,
            Header {
                message_id: internal_id.clone(),
                correlation_id: &chain,
                service_id: &service.id,
                recipient_id: &service.recipient,
                time_ms: now_ms,
                message_type,
            },
            &service.body,
            encoded,
        )?;
        // What the route would refuse is refused here, before anything is acknowledged.
        let fronted = self.fronted(&sender.member)?;
        let verified =
            fronted.context.open(&envelope, &fronted.context.checks).map_err(|e| Fault::from_refusal(&e.into()))?;
        {
            use egov_runtime::receive::Incoming as _;
            Opaque::decode(&envelope, &verified).map_err(|refusal| Fault::from_refusal(&refusal))?;
        }
        let answer = wire::SendMessageAnswer {
            message_id: message_id.clone(),
            correlation_id: chain.clone(),
            response_date: self.now(),
            session_id: Some(session.to_owned()),
        };
        let text = wire::write_answer(&wire::Answer::SendMessage(answer));
        let record = ShepMessage {
            id: message_id.clone(),
            chain: chain.clone(),
            shep_service: shep.shep_id.clone(),
            service: service.id.clone(),
            message_type: info.message_type.as_str().to_owned(),
            direction: Direction::In,
            sender: sender.sender_id.clone(),
            member: sender.member.clone(),
            internal_id: internal_id.clone(),
            state: State::OnDelivery,
            state_time_ms: now_ms,
            message_time_ms: info.message_date.at.timestamp_millis(),
            payload: String::new(),
            error: String::new(),
        };
        let mut batch = Batch::new();
        let bytes = envelope.encode_to_vec();
        let request_text = String::from_utf8_lossy(raw).into_owned();
        let entry = batch.log(now_ms, "sent", bytes, request_text, egov_runtime::receive::log_keys(&envelope, "sent"));
        batch.put(message_key(&message_id), 0, &record).map_err(store_fault)?;
        batch.index(chain_key(&chain), true);
        batch.index(internal_key(&sender.member, &internal_id, &message_id), true);
        batch.remember(
            &remembered_sender(&sender.sender_id),
            &duplicate_key,
            digest(raw),
            Answer::Bytes(text.clone().into_bytes()),
        );
        batch.enqueue(gateway_target(&sender.member), entry, now_ms);
        self.commit(batch).await?;
        self.outbox.kick();
        Ok(text)
    }

    /// `getMessages`: what waits for the caller's member, oldest first.
    pub(crate) fn get_messages(&self, request: wire::GetMessagesRequest, session: &str) -> Result<String, Fault> {
        let info = request
            .sender
            .as_ref()
            .ok_or_else(|| Fault::client("shep.unknown_sender", "getMessages names no sender"))?;
        let sender = self.senders.authenticate(info)?;
        let shep = self.shep_service(&request.service_id, Channel::Async)?;
        let amount = match request.amount {
            None | Some(0) => self.settings.default_amount,
            Some(amount) => amount,
        } as usize;
        let mut messages = Vec::new();
        for entry in self.store.index_entries(&poll_prefix(&sender.member, &shep.shep_id)).map_err(store_fault)? {
            if messages.len() >= amount {
                break;
            }
            let Some((_, id)) = entry.rsplit_once('/') else { continue };
            if request.message_id.as_deref().is_some_and(|wanted| normal_id(wanted) != id) {
                continue;
            }
            let Some((_, record)) = self.record(id)? else { continue };
            if request.correlation_id.as_deref().is_some_and(|wanted| wanted != record.chain) {
                continue;
            }
            messages.push(self.delivered_message(&record));
        }
        let offered: Vec<String> = messages.iter().filter_map(|message| message.info.message_id.clone()).collect();
        let answer = wire::GetMessagesAnswer { response_date: self.now(), session_id: session.to_owned(), messages };
        let text = wire::write_answer(&wire::Answer::GetMessages(answer));
        if !offered.is_empty() {
            let shared: Arc<str> = Arc::from(text.as_str());
            let mut remembered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
            for id in offered {
                remembered.insert(id, Arc::clone(&shared));
            }
        }
        Ok(text)
    }

    /// Logs polled message `record`, acknowledged, as delivered with the
    /// `getMessages` answer that last offered it (after a restart, the answer
    /// that offers it alone, written now), as a PUSH is logged with its request.
    fn log_polled(&self, batch: &mut Batch, record: &ShepMessage, now_ms: i64) -> Result<(), Fault> {
        let offered = self.offered.lock().unwrap_or_else(|e| e.into_inner()).get(&record.id).cloned();
        let text = match offered {
            Some(text) => text.to_string(),
            None => wire::write_answer(&wire::Answer::GetMessages(wire::GetMessagesAnswer {
                response_date: self.now(),
                session_id: braced_guid(),
                messages: vec![self.delivered_message(record)],
            })),
        };
        // The envelope as the edge received it for the recipient.
        let received = self
            .store
            .indexed_log(&format!("application/{}", record.chain), usize::MAX)
            .map_err(store_fault)?
            .into_iter()
            .filter(|entry| entry.direction == "received")
            .find_map(|entry| {
                let envelope = Envelope::decode(entry.envelope.as_slice()).ok()?;
                let header = egov_envelope::decode_header(&envelope.header).ok()?;
                (header.message_id == record.internal_id).then_some((entry.envelope, envelope))
            });
        if let Some((bytes, envelope)) = received {
            batch.log(now_ms, "delivered", bytes, text, egov_runtime::receive::log_keys(&envelope, "delivered"));
        }
        Ok(())
    }

    /// A message as SHEP delivers it.
    pub(crate) fn delivered_message(&self, record: &ShepMessage) -> wire::DeliveredMessage {
        wire::DeliveredMessage {
            info: wire::AsyncMessageInfo {
                message_id: Some(record.id.clone()),
                correlation_id: Some(record.chain.clone()),
                service_id: record.shep_service.clone(),
                message_type: parse_type(&record.message_type),
                route_id: None,
                message_date: wire::SoapTime { at: self.at(record.message_time_ms), had_offset: true },
                sender: wire::SenderInfo { sender_id: record.sender.clone(), password: None },
                properties: Vec::new(),
                session_id: Some(braced_guid()),
            },
            data: wire::Payload { xml: record.payload.clone(), as_string: false },
        }
    }

    /// `sendDeliveryNotification`: accepted → DELIVERED; not accepted, resend →
    /// offered again; not accepted, no resend → NOT_DELIVERED.
    pub(crate) async fn delivery_notification(
        &self,
        request: wire::DeliveryNotificationRequest,
        session: &str,
    ) -> Result<String, Fault> {
        let info = request
            .sender
            .as_ref()
            .ok_or_else(|| Fault::client("shep.unknown_sender", "sendDeliveryNotification names no sender"))?;
        let sender = self.senders.authenticate(info)?;
        let unknown = || {
            Fault::client("shep.unknown_message", format!("no message {} for {}", request.message_id, sender.sender_id))
        };
        let (version, mut record) = self.record(&normal_id(&request.message_id))?.ok_or_else(unknown)?;
        if record.direction != Direction::Out
            || record.member != sender.member
            || record.shep_service != request.service_id
        {
            return Err(unknown());
        }
        let now_ms = self.clock.now_ms();
        let answer = wire::DeliveryNotificationAnswer {
            notification_id: uuid::Uuid::new_v4().to_string(),
            response_date: self.now(),
            session_id: session.to_owned(),
        };
        let text = wire::write_answer(&wire::Answer::SendDeliveryNotification(answer));
        let state = match (request.receive_status, request.resend) {
            (wire::ReceiveStatus::Accepted, _) => State::Delivered,
            (wire::ReceiveStatus::NotAccepted, true) => State::OnDelivery,
            (wire::ReceiveStatus::NotAccepted, false) => State::NotDelivered,
        };
        if record.state != State::OnDelivery {
            // Settled already: told again, it changes nothing.
            return Ok(text);
        }
        if state == State::OnDelivery {
            return Ok(text);
        }
        let mut batch = Batch::new();
        let waiting = self
            .store
            .index_entries(&poll_prefix(&record.member, &record.shep_service))
            .map_err(store_fault)?
            .into_iter()
            .filter(|entry| entry.ends_with(&format!("/{}", record.id)));
        for entry in waiting {
            batch.index(format!("{}{entry}", poll_prefix(&record.member, &record.shep_service)), false);
        }
        record.state = state;
        record.state_time_ms = now_ms;
        if let Some(error) = &request.error {
            record.error = format!("{}: {}", error.error_code, error.error_message);
        }
        batch.put(message_key(&record.id), version, &record).map_err(store_fault)?;
        if state == State::Delivered {
            self.log_polled(&mut batch, &record, now_ms)?;
        }
        self.status_changed(&mut batch, &record, now_ms);
        self.commit(batch).await?;
        self.offered.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.id);
        self.outbox.kick();
        Ok(text)
    }

    /// `getMessageStatus`: the state of a message the caller sent.
    pub(crate) async fn get_message_status(
        &self,
        request: wire::GetMessageStatusRequest,
        session: &str,
    ) -> Result<String, Fault> {
        let sender = self.senders.authenticate(&request.sender)?;
        let unknown = || {
            Fault::client(
                "shep.unknown_message",
                format!("{} sent no message {}", sender.sender_id, request.message_id),
            )
        };
        let (_, record) = self.record(&normal_id(&request.message_id))?.ok_or_else(unknown)?;
        if record.direction != Direction::In || record.sender != sender.sender_id {
            return Err(unknown());
        }
        let (state, at_ms, detail) = self.state_of(&record).await?;
        let answer = wire::MessageStatusAnswer {
            message_state: state.wire(),
            status: wire::MessageStatusInfo {
                status_code: state.wire().as_str().to_owned(),
                status_message: detail,
                status_date: self.at(at_ms),
            },
            response_date: self.now(),
            session_id: Some(session.to_owned()),
        };
        Ok(wire::write_answer(&wire::Answer::GetMessageStatus(answer)))
    }

    /// A sent message's state: the edge's while it is on its way to the
    /// gateway or was refused there; the gateway's once the gateway took it;
    /// and where the recipient is an external system, that system's.
    async fn state_of(&self, record: &ShepMessage) -> Result<(State, i64, String), Fault> {
        if record.state != State::OnDelivery {
            return Ok((record.state, record.state_time_ms, record.error.clone()));
        }
        // Delivered by the gateway to the edge itself, for an external recipient: its state there.
        let delivered_here = self
            .store
            .index_entries(&format!("internal/{}/{}/", record.member, record.internal_id))
            .map_err(store_fault)?;
        for id in delivered_here.iter().filter(|id| **id != record.id) {
            if let Some((_, out)) = self.record(id)? {
                return Ok((out.state, out.state_time_ms, out.error));
            }
        }
        let mut gateway = self.fronted(&record.member)?.gateway.clone();
        let asked = gateway
            .get_message_status(egov_proto::GetMessageStatusRequest {
                sender_id: record.member.clone(),
                message_id: record.internal_id.clone(),
            })
            .await;
        match asked {
            Ok(answer) => {
                let answer = answer.into_inner();
                let state = match DeliveryStatus::try_from(answer.status).unwrap_or(DeliveryStatus::OnDelivery) {
                    DeliveryStatus::Delivered => State::Delivered,
                    DeliveryStatus::NotDelivered => State::NotDelivered,
                    DeliveryStatus::DeliveryStopped => State::DeliveryStopped,
                    _ => State::OnDelivery,
                };
                Ok((state, answer.status_time_ms.max(record.state_time_ms), answer.last_error))
            }
            // Not at the gateway yet: still in the edge's outbox.
            Err(status) if status.code() == Code::NotFound => {
                Ok((State::OnDelivery, record.state_time_ms, "on its way to the gateway".to_owned()))
            }
            Err(status) => Err(Fault::from_status(&status)),
        }
    }

    /// A message's state changed: its sender is told, where it registered a
    /// status endpoint, through the outbox (`changeMassageStatusNotification`).
    /// A message delivered to an external system tells the SHEP sender of the
    /// message it became, when one sent it through this edge.
    pub(crate) fn status_changed(&self, batch: &mut Batch, record: &ShepMessage, now_ms: i64) {
        let senders: Vec<String> = match record.direction {
            Direction::In => vec![record.id.clone()],
            Direction::Out => self
                .store
                .index_entries(&format!("internal/{}/{}/", record.sender, record.internal_id))
                .unwrap_or_default()
                .into_iter()
                .filter(|id| *id != record.id)
                .collect(),
        };
        for id in senders {
            let Ok(Some((_, sent))) = self.record(&id) else { continue };
            let wants = self.senders.get(&sent.sender).is_some_and(|sender| sender.status_endpoint.is_some());
            if sent.direction == Direction::In && wants {
                batch.enqueue_unlogged(status_target(&sent.sender, &id), Vec::new(), now_ms);
            }
        }
    }

    /// `changeMassageStatusNotification` of SHEP message `id` to its sender's endpoint.
    pub(crate) async fn notify_status(&self, courier: &EdgeCourier, sender_id: &str, id: &str) -> Attempt {
        let Some(url) = self.senders.get(sender_id).and_then(|sender| sender.status_endpoint.clone()) else {
            return Attempt::Stopped(Batch::new(), format!("sender {sender_id} has no status endpoint"));
        };
        let record = match self.record(id) {
            Ok(Some((_, record))) => record,
            Ok(None) => return Attempt::Stopped(Batch::new(), format!("no SHEP message {id}")),
            Err(fault) => return Attempt::Retry(fault.to_string()),
        };
        let (state, at_ms, detail) = match self.state_of(&record).await {
            Ok(state) => state,
            Err(fault) => return Attempt::Retry(fault.to_string()),
        };
        if state == State::OnDelivery {
            // Watched from the gateway's acceptance on: told once it is settled.
            return Attempt::Retry("the message is still on delivery".to_owned());
        }
        let now = self.now();
        let notification = wire::ChangeStatusNotification {
            notification_id: uuid::Uuid::new_v4().to_string(),
            message_id: record.id.clone(),
            notification_date: now,
            message_state: state.wire(),
            status: wire::MessageStatusInfo {
                status_code: state.wire().as_str().to_owned(),
                status_message: detail,
                status_date: self.at(at_ms),
            },
            error: None,
            request_date: now,
            session_id: Some(braced_guid()),
        };
        let text = wire::write_change_status(&notification);
        match crate::push::exchange(courier.http(), &url, text).await {
            Err(error) => Attempt::Retry(error),
            Ok((status, body)) => match wire::read_change_status_answer(&body, &self.settings.limits, self.offset()) {
                Ok(wire::PushAnswer::Accepted { .. }) => Attempt::Delivered(Batch::new()),
                Ok(wire::PushAnswer::Fault { faultstring, error, .. }) => {
                    let code = error.map(|error| error.error_code).unwrap_or_default();
                    let message = format!("{url} refused the status notification: {code} {faultstring}");
                    if code == "SCE909" { Attempt::Retry(message) } else { Attempt::Stopped(Batch::new(), message) }
                }
                Err(error) if status.is_server_error() => Attempt::Retry(format!("{url}: HTTP {status}: {error}")),
                Err(error) => Attempt::Stopped(Batch::new(), format!("{url}: HTTP {status}: {error}")),
            },
        }
    }

    /// What the gateway delivers to a member served by an external system.
    async fn delivered(&self, received: Arc<Received<Opaque>>) -> Result<Outcome<DeliverResponse>, Status> {
        let header = received.header().clone();
        let refused =
            |code: &'static str, message: String| Status::from(Refusal::new(Code::FailedPrecondition, code, message));
        let shep = self
            .shep_services
            .by_service(&header.service_id)
            .ok_or_else(|| refused("shep.unknown_service", format!("service {} has no SHEP id", header.service_id)))?;
        let external = self
            .external_of(&header.recipient_id)
            .ok_or_else(|| {
                refused("shep.not_external", format!("{} is not served by an external system", header.recipient_id))
            })?
            .clone();
        let payload = crate::body::to_xml(&received.envelope.body, &header.body_type).map_err(|fault| {
            Status::from(Refusal::new(Code::InvalidArgument, "shep.bad_payload", fault.to_string()))
        })?;
        let now_ms = self.clock.now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let message_type = match MessageType::try_from(header.message_type).unwrap_or(MessageType::Request) {
            MessageType::Response => wire::MessageType::Response,
            MessageType::Notification => wire::MessageType::Notification,
            _ => wire::MessageType::Request,
        };
        let record = ShepMessage {
            id: id.clone(),
            chain: header.correlation_id.clone(),
            shep_service: shep.shep_id.clone(),
            service: header.service_id.clone(),
            message_type: message_type.as_str().to_owned(),
            direction: Direction::Out,
            sender: header.sender_id.clone(),
            member: header.recipient_id.clone(),
            internal_id: header.message_id.clone(),
            state: State::OnDelivery,
            state_time_ms: now_ms,
            message_time_ms: header.message_time_ms,
            payload,
            error: String::new(),
        };
        let mut outcome =
            Outcome::new(DeliverResponse { message_id: header.message_id.clone(), accepted_time_ms: now_ms });
        outcome.put(message_key(&id), 0, &record)?;
        outcome.index(chain_key(&record.chain), true);
        outcome.index(internal_key(&header.sender_id, &header.message_id, &id), true);
        match external {
            External::Poll => outcome.index(poll_key(&record, now_ms), true),
            External::Push(_) => outcome.queue_received(&push_target(&record.member, &id), now_ms),
        }
        Ok(outcome)
    }

    /// The edge's `InboxService`: the inbox of every role served by an external system.
    pub fn inbox_service(self: &Arc<Self>) -> InboxServiceServer<EdgeInbox> {
        InboxServiceServer::new(EdgeInbox { edge: Arc::clone(self) })
            .max_decoding_message_size(egov_runtime::receive::MAX_MESSAGE_BYTES)
    }
}

/// The edge's gRPC inbox.
#[derive(Debug, Clone)]
pub struct EdgeInbox {
    edge: Arc<Edge>,
}

#[tonic::async_trait]
impl InboxService for EdgeInbox {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let envelope = request.into_inner().envelope;
        let header = envelope.as_ref().and_then(|envelope| egov_envelope::decode_header(&envelope.header).ok());
        let recipient = header.as_ref().map(|header| header.recipient_id.clone()).unwrap_or_default();
        let receiver = self.edge.inboxes.get(&recipient).filter(|_| self.edge.external_of(&recipient).is_some());
        let Some(receiver) = receiver else {
            return Err(Refusal::new(
                Code::InvalidArgument,
                "envelope.wrong_recipient",
                format!("this inbox takes messages for the external systems, not for {recipient:?}"),
            )
            .into());
        };
        // Served by this call: a service of the table addressed to an external member.
        let service = header
            .as_ref()
            .and_then(|header| Services::embedded().get(&header.service_id))
            .map_or("", |service| service.id.as_str());
        let edge = &self.edge;
        let answer = receiver
            .handle::<Opaque, DeliverResponse, _, _>(Accept::Service(service), envelope, |received| {
                edge.delivered(received)
            })
            .await?;
        edge.outbox.kick();
        Ok(Response::new(answer))
    }
}

/// The outbox target of a message to the gateway, sent as `member`.
fn gateway_target(member: &str) -> String {
    format!("gateway/{member}")
}

/// The outbox target of a status notification of SHEP message `id` to its sender.
fn status_target(sender_id: &str, id: &str) -> String {
    format!("status/{sender_id}/{id}")
}

/// The outbox target of a PUSH of SHEP message `id` to `member`'s system.
fn push_target(member: &str, id: &str) -> String {
    format!("push/{member}/{id}")
}

fn list_types(types: &[MessageType]) -> String {
    types.iter().map(|t| t.as_str_name()).collect::<Vec<_>>().join(" or ")
}

fn parse_type(text: &str) -> wire::MessageType {
    match text {
        "RESPONSE" => wire::MessageType::Response,
        "NOTIFICATION" => wire::MessageType::Notification,
        "UPDATE" => wire::MessageType::Update,
        _ => wire::MessageType::Request,
    }
}

/// The service a carried body of `body_type` is signed for (the operator's
/// submission: `sc.form.submit.v1`; the head's result: `rshep.result.sign.v1`).
fn carried_service<'s>(services: &'s Services, body_type: &str) -> Result<&'s egov_runtime::Service, Fault> {
    services
        .all()
        .iter()
        .find(|service| service.body == body_type && service.channel == Channel::Direct)
        .ok_or_else(|| Fault::client("shep.bad_payload", format!("no service signs a carried {body_type}")))
}

/// Sends what the edge's outbox holds: envelopes to the gateway (as the
/// member that signed them), PUSH deliveries to external systems.
pub struct EdgeCourier {
    edge: Arc<Edge>,
    to_gateway: std::collections::HashMap<String, ToGateway<AcceptedFn>>,
    http: crate::push::HttpClient,
}

type AcceptedFn = fn(&OutboxItem, &Receipt) -> Result<Batch, egov_runtime::Refusal>;

impl EdgeCourier {
    pub fn new(edge: Arc<Edge>) -> EdgeCourier {
        let to_gateway = edge
            .members
            .iter()
            .map(|(member, fronted)| {
                let courier =
                    ToGateway::new(fronted.gateway.clone(), fronted.context.clone(), nothing_to_record as AcceptedFn);
                (member.clone(), courier)
            })
            .collect();
        EdgeCourier { edge, to_gateway, http: crate::push::client() }
    }

    /// The record of the SHEP message an item to the gateway carries, set to `state`.
    fn settle_sent(&self, item: &OutboxItem, state: State, error: &str) -> Batch {
        let mut batch = Batch::new();
        let header = egov_envelope::header_of_stored(&item.envelope);
        let Some(header) = header else { return batch };
        let ids = self
            .edge
            .store
            .index_entries(&format!("internal/{}/{}/", header.sender_id, header.message_id))
            .unwrap_or_default();
        for id in ids {
            self.set_state(&mut batch, &id, state, error);
        }
        batch
    }

    /// The gateway took a SHEP sender's message for a participant egov runs:
    /// where the sender wants status notifications, one waits in the outbox
    /// until the gateway's delivery settles (a message for an external system
    /// is told of when that system settles it).
    fn watch_delivery(&self, batch: &mut Batch, item: &OutboxItem) {
        let header = egov_envelope::header_of_stored(&item.envelope);
        let Some(header) = header else { return };
        if self.edge.external_of(&header.recipient_id).is_some() {
            return;
        }
        let prefix = format!("internal/{}/{}/", header.sender_id, header.message_id);
        for id in self.edge.store.index_entries(&prefix).unwrap_or_default() {
            let Ok(Some((_, record))) = self.edge.record(&id) else { continue };
            let wants = self.edge.senders.get(&record.sender).is_some_and(|sender| sender.status_endpoint.is_some());
            if record.direction == Direction::In && wants {
                batch.enqueue_unlogged(status_target(&record.sender, &id), Vec::new(), self.edge.clock.now_ms());
            }
        }
    }

    pub(crate) fn set_state(&self, batch: &mut Batch, id: &str, state: State, error: &str) {
        if let Ok(Some((version, mut record))) = self.edge.record(id) {
            let now_ms = self.edge.clock.now_ms();
            record.state = state;
            record.state_time_ms = now_ms;
            record.error = error.chars().take(500).collect();
            if let Err(error) = batch.put(message_key(id), version, &record) {
                tracing::error!(%error, "the SHEP message's state is not recorded");
            }
            self.edge.status_changed(batch, &record, now_ms);
        }
    }
}

impl Courier for EdgeCourier {
    async fn attempt(&self, item: &OutboxItem) -> Attempt {
        if let Some(member) = item.target.strip_prefix("gateway/") {
            let Some(courier) = self.to_gateway.get(member) else {
                let error = format!("the edge holds no gateway client for {member}");
                return Attempt::Stopped(self.settle_sent(item, State::NotDelivered, &error), error);
            };
            return match courier.attempt(item).await {
                Attempt::Stopped(_, error) => {
                    Attempt::Stopped(self.settle_sent(item, State::NotDelivered, &error), error)
                }
                Attempt::Delivered(mut batch) => {
                    self.watch_delivery(&mut batch, item);
                    Attempt::Delivered(batch)
                }
                other => other,
            };
        }
        if let Some(rest) = item.target.strip_prefix("push/")
            && let Some((member, id)) = rest.split_once('/')
        {
            return crate::push::attempt(self, item, member, id).await;
        }
        if let Some(rest) = item.target.strip_prefix("status/")
            && let Some((sender_id, id)) = rest.rsplit_once('/')
        {
            return self.edge.notify_status(self, sender_id, id).await;
        }
        Attempt::Stopped(Batch::new(), format!("unknown outbox target {}", item.target))
    }

    fn parked(&self, item: &OutboxItem, error: &str) -> Batch {
        if item.target.starts_with("status/") {
            return Batch::new();
        }
        if item.target.starts_with("gateway/") {
            return self.settle_sent(item, State::NotDelivered, error);
        }
        let mut batch = Batch::new();
        if let Some((_, id)) = item.target.rsplit_once('/') {
            self.set_state(&mut batch, id, State::NotDelivered, error);
        }
        batch
    }
}

impl EdgeCourier {
    pub(crate) fn edge(&self) -> &Edge {
        &self.edge
    }

    pub(crate) fn http(&self) -> &crate::push::HttpClient {
        &self.http
    }
}
