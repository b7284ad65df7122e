//! SHEP on the wire: the SOAP 1.1 envelopes of SyncChannel v10 and
//! AsyncChannel v10 read into typed requests, and answers and faults written
//! (`../../docs/shep.md`). Pure: no I/O, no clock (times come in as arguments).
//!
//! Reading is lenient where real clients differ (`shared/design/shep.md` §2):
//! any namespace prefixes; descendants of the wrapper element unqualified (or
//! with `xmlns=""`); empty optional elements read as absent; `xsd:dateTime`
//! with or without an offset; braced and unbraced GUIDs; `data` as child
//! elements or as one escaped XML string; a `wsse:Security` header with or
//! without `mustUnderstand`. It is strict where a mistake would change what
//! is routed: the wrapper's namespace, required elements, enumerations.
//!
//! Before a tree is built, the bytes are checked against [`Limits`] (size,
//! nesting depth, element count) by a streaming pass (quick-xml); a DTD, and
//! so any entity declaration, is refused. The tree is then read with roxmltree.

use chrono::{DateTime, FixedOffset};

mod codes;
mod read;
mod scan;
mod time;
mod write;

#[cfg(test)]
mod tests;

pub use codes::*;

/// `http://schemas.xmlsoap.org/soap/envelope/`
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The namespace of the sync channel's wrapper elements.
pub const SYNC_TYPES: &str = "http://bip.bee.kz/SyncChannel/v10/Types";
/// The namespace of the async channel's wrapper elements (SHEP side, and the PUSH `sendMessage`).
pub const ASYNC_TYPES: &str = "http://bip.bee.kz/AsyncChannel/v10/Types";
/// The namespace of `changeMassageStatusNotification` (PUSH to a sender).
pub const ASYNC_CLIENT_TYPES: &str = "http://bip.bee.kz/AsyncChannel/v10/Types/Client";
/// WS-Security (secext 1.0).
pub const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security utility (`wsu:Id`).
pub const WSU: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// XML-DSig.
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Schema instance (`xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// XML Schema (`xs:string`).
pub const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// What the reader accepts, checked before a tree is built.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bytes: 16 * 1024 * 1024, max_depth: 64, max_elements: 200_000 }
    }
}

/// A request that cannot be read, with its stable code (`shep.*`, listed in docs/envelope.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WireError {
    pub code: &'static str,
    pub message: String,
    /// The operation, when the body's element was recognised: its fault element is then used.
    pub operation: Option<OperationName>,
}

impl WireError {
    /// An error with its code, before the operation is known.
    pub fn new(code: &'static str, message: impl Into<String>) -> WireError {
        WireError { code, message: message.into(), operation: None }
    }
}

/// The operations egov serves, and the two it calls on a PUSH recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationName {
    /// Sync `SendMessage` (`/bip-sync-wss-gost/`).
    SyncSendMessage,
    /// Async `sendMessage` (`/bip-async/`, and SHEP → a PUSH recipient).
    SendMessage,
    GetMessages,
    GetMessageStatus,
    SendDeliveryNotification,
    /// SHEP → a sender: `changeMassageStatusNotification` (sic).
    ChangeStatusNotification,
}

impl OperationName {
    /// The request's wrapper element, e.g. `SendMessage`.
    pub fn element(self) -> &'static str {
        match self {
            OperationName::SyncSendMessage => "SendMessage",
            OperationName::SendMessage => "sendMessage",
            OperationName::GetMessages => "getMessages",
            OperationName::GetMessageStatus => "getMessageStatus",
            OperationName::SendDeliveryNotification => "sendDeliveryNotification",
            OperationName::ChangeStatusNotification => "changeMassageStatusNotification",
        }
    }

    /// The namespace of its wrapper, response and fault elements.
    pub fn namespace(self) -> &'static str {
        match self {
            OperationName::SyncSendMessage => SYNC_TYPES,
            OperationName::ChangeStatusNotification => ASYNC_CLIENT_TYPES,
            _ => ASYNC_TYPES,
        }
    }

    /// The fault element in `detail`, e.g. `SendMessageFault1_SendMessageFault`.
    pub fn fault_element(self) -> String {
        let name = self.element();
        format!("{name}Fault1_{name}Fault")
    }
}

/// `xsd:dateTime` as sent: the instant, and whether the text carried an offset.
/// A time without an offset is read in the offset the reader is given
/// (the simulator's assumption: Astana time, +05:00; a setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoapTime {
    pub at: DateTime<FixedOffset>,
    pub had_offset: bool,
}

/// `SenderInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub sender_id: String,
    pub password: Option<String>,
}

/// `Property`: a key (≤ 30 characters) and a value (≤ 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// The business payload in `data`: one XML element, as text. When the client
/// sent child elements, the text of the first child element as it was sent
/// (its namespace declarations in scope added); when it sent one escaped
/// string, that string unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub xml: String,
    /// Whether it came as an escaped string (`xsi:type="xs:string"`), so an
    /// answer can be given in the same shape.
    pub as_string: bool,
}

/// What a `wsse:Security` header holds, as far as egov checks it (its
/// structure: GOST cannot be verified here, docs/shep.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub must_understand: bool,
    /// `ds:Signature` elements found in the header.
    pub signatures: usize,
    /// `URI` of each `ds:Reference`, in order.
    pub references: Vec<String>,
    pub signature_method: Option<String>,
    pub digest_method: Option<String>,
    pub canonicalization_method: Option<String>,
    /// The `wsu:Id` of the SOAP `Body`, if it has one.
    pub body_id: Option<String>,
}

/// `SyncMessageInfo` (sync `SendMessage` > `request` > `requestInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequestInfo {
    pub message_id: String,
    pub correlation_id: Option<String>,
    pub service_id: String,
    pub message_date: SoapTime,
    pub route_id: Option<String>,
    pub sender: SenderInfo,
    pub properties: Vec<Property>,
    pub session_id: Option<String>,
}

/// `messageType` of the async channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Request,
    Response,
    Notification,
    Update,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Request => "REQUEST",
            MessageType::Response => "RESPONSE",
            MessageType::Notification => "NOTIFICATION",
            MessageType::Update => "UPDATE",
        }
    }
}

/// `AsyncMessageInfo` (async `sendMessage` > `request` > `messageInfo`; also as delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncMessageInfo {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub service_id: String,
    pub message_type: MessageType,
    pub route_id: Option<String>,
    pub message_date: SoapTime,
    pub sender: SenderInfo,
    pub properties: Vec<Property>,
    pub session_id: Option<String>,
}

/// `getMessages` > `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMessagesRequest {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub request_date: Option<SoapTime>,
    pub service_id: String,
    pub sender: Option<SenderInfo>,
    /// 0 or absent: the edge's configured limit.
    pub amount: Option<u32>,
    pub properties: Vec<Property>,
}

/// `getMessageStatus` > `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMessageStatusRequest {
    pub message_id: String,
    pub request_date: SoapTime,
    pub sender: SenderInfo,
    pub properties: Vec<Property>,
}

/// `receiveStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveStatus {
    /// `MESSAGE_ACCEPTED`
    Accepted,
    /// `MESSAGE_NOT_ACCTEPTED` (spelled so in the schema)
    NotAccepted,
}

/// `sendDeliveryNotification` > `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryNotificationRequest {
    pub message_id: String,
    pub service_id: String,
    pub notification_date: SoapTime,
    pub receive_status: ReceiveStatus,
    pub status_date: SoapTime,
    /// `resendMessage`: `RESEND` is true.
    pub resend: bool,
    pub error: Option<ErrorInfo>,
    pub request_date: SoapTime,
    pub sender: Option<SenderInfo>,
}

/// A request egov serves, read from a SOAP envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    SyncSendMessage { info: SyncRequestInfo, data: Payload },
    SendMessage { info: AsyncMessageInfo, data: Payload },
    GetMessages(GetMessagesRequest),
    GetMessageStatus(GetMessageStatusRequest),
    SendDeliveryNotification(DeliveryNotificationRequest),
}

impl Operation {
    pub fn name(&self) -> OperationName {
        match self {
            Operation::SyncSendMessage { .. } => OperationName::SyncSendMessage,
            Operation::SendMessage { .. } => OperationName::SendMessage,
            Operation::GetMessages(_) => OperationName::GetMessages,
            Operation::GetMessageStatus(_) => OperationName::GetMessageStatus,
            Operation::SendDeliveryNotification(_) => OperationName::SendDeliveryNotification,
        }
    }
}

/// A SOAP request read: the operation, and the security header if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub operation: Operation,
    pub security: Option<Security>,
}

/// `ErrorInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub error_code: String,
    pub error_message: String,
    pub error_data: Option<String>,
    pub error_date: DateTime<FixedOffset>,
    pub sub_error: Option<Box<ErrorInfo>>,
    pub session_id: Option<String>,
}

/// `MessageState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    OnDelivery,
    Delivered,
    NotDelivered,
    DeliveryStopped,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::OnDelivery => "ON_DELIVERY",
            MessageState::Delivered => "DELIVERED",
            MessageState::NotDelivered => "NOT_DELIVERED",
            MessageState::DeliveryStopped => "DELIVERY_STOPPED",
        }
    }
}

/// `MessageStatusInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatusInfo {
    pub status_code: String,
    pub status_message: String,
    pub status_date: DateTime<FixedOffset>,
}

/// The sync answer (`SendMessageResponse` > `response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub message_id: String,
    pub correlation_id: Option<String>,
    pub response_date: DateTime<FixedOffset>,
    /// `status/code`, `SCSS001` on success, and `status/message`.
    pub status_code: String,
    pub status_message: String,
    pub session_id: Option<String>,
    pub data: Payload,
}

/// The async acknowledgement (`sendMessageResponse` > `response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageAnswer {
    pub message_id: String,
    pub correlation_id: String,
    pub response_date: DateTime<FixedOffset>,
    pub session_id: Option<String>,
}

/// One message as delivered (`getMessagesResponse` > `messages`, and the PUSH `sendMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredMessage {
    pub info: AsyncMessageInfo,
    pub data: Payload,
}

/// `getMessagesResponse` > `response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMessagesAnswer {
    pub response_date: DateTime<FixedOffset>,
    pub session_id: String,
    pub messages: Vec<DeliveredMessage>,
}

/// `getMessageStatusResponse` > `response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatusAnswer {
    pub message_state: MessageState,
    pub status: MessageStatusInfo,
    pub response_date: DateTime<FixedOffset>,
    pub session_id: Option<String>,
}

/// `sendDeliveryNotificationResponse` > `response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryNotificationAnswer {
    pub notification_id: String,
    pub response_date: DateTime<FixedOffset>,
    pub session_id: String,
}

/// `changeMassageStatusNotification` > `request` (SHEP → a sender that registered an endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeStatusNotification {
    pub notification_id: String,
    pub message_id: String,
    pub notification_date: DateTime<FixedOffset>,
    pub message_state: MessageState,
    pub status: MessageStatusInfo,
    pub error: Option<ErrorInfo>,
    pub request_date: DateTime<FixedOffset>,
    pub session_id: Option<String>,
}

/// An answer egov writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    SyncSendMessage(SyncResponse),
    SendMessage(SendMessageAnswer),
    GetMessages(GetMessagesAnswer),
    GetMessageStatus(MessageStatusAnswer),
    SendDeliveryNotification(DeliveryNotificationAnswer),
}

/// What a PUSH recipient answered to SHEP's `sendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAnswer {
    /// `sendMessageResponse`: the recipient took the message.
    Accepted { message_id: Option<String>, correlation_id: Option<String> },
    /// A SOAP Fault, with the `ErrorInfo` of its detail when it has one.
    Fault { faultcode: String, faultstring: String, error: Option<ErrorInfo> },
}

/// Reads a SOAP request to egov's SHEP endpoints (either path: the operation
/// is the body element's qualified name). A time without an offset is read in
/// `naive_offset`.
pub fn read_request(bytes: &[u8], limits: &Limits, naive_offset: FixedOffset) -> Result<Request, WireError> {
    read::request(bytes, limits, naive_offset)
}

/// Writes an answer as a whole SOAP 1.1 envelope.
pub fn write_answer(answer: &Answer) -> String {
    write::answer(answer)
}

/// Writes a SOAP 1.1 Fault: `faultcode` `soap:Client` or `soap:Server`,
/// `faultstring` the error's message, and in `detail` the operation's fault
/// element (`SendMessageFault1_SendMessageFault`, ...) holding `error`. With no
/// operation (the body could not be read far enough to know it), the detail
/// holds the fault element of the path's main operation, which the caller names.
/// A `faultcode` without a prefix (`Client`) is written in the envelope's namespace (`soap:Client`).
pub fn write_fault(operation: OperationName, faultcode: &str, error: &ErrorInfo) -> String {
    write::fault(operation, faultcode, error)
}

/// SHEP → a PUSH recipient: the `sendMessage` request delivering `message`.
pub fn write_push(message: &DeliveredMessage) -> String {
    write::push(message)
}

/// SHEP → a sender: `changeMassageStatusNotification`.
pub fn write_change_status(notification: &ChangeStatusNotification) -> String {
    write::change_status(notification)
}

/// Reads what a PUSH recipient answered to [`write_push`]'s request.
pub fn read_push_answer(bytes: &[u8], limits: &Limits, naive_offset: FixedOffset) -> Result<PushAnswer, WireError> {
    read::push_answer(bytes, limits, naive_offset)
}

/// Reads what a sender answered to [`write_change_status`]'s request:
/// `changeMassageStatusNotificationResponse` is [`PushAnswer::Accepted`] (its
/// `response` holds no ids: both `None`), a Fault is [`PushAnswer::Fault`].
pub fn read_change_status_answer(
    bytes: &[u8],
    limits: &Limits,
    naive_offset: FixedOffset,
) -> Result<PushAnswer, WireError> {
    read::change_status_answer(bytes, limits, naive_offset)
}

/// Reads one `xsd:dateTime` (`2024-05-02T10:00:00`, with `Z` or an offset
/// `+05:00`, with up to 9 fractional digits); a time without an offset is read
/// in `naive_offset`. `shep.bad_datetime` otherwise.
pub fn parse_time(text: &str, naive_offset: FixedOffset) -> Result<SoapTime, WireError> {
    time::parse(text, naive_offset).ok_or_else(|| {
        WireError::new(BAD_DATETIME, format!("`{text}` is not an xsd:dateTime (YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm])"))
    })
}

/// `xsd:dateTime` as egov writes it: with its offset and milliseconds.
pub fn format_time(at: DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}
