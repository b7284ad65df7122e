//! The tree reader (roxmltree): the SOAP envelope, the `wsse:Security` header,
//! and each operation's elements into the typed request. Runs after
//! [`scan::check`](super::scan::check) has bounded the input.
//!
//! Descendants of the wrapper are matched by local name in any namespace (the
//! schemas leave them unqualified; clients write `xmlns=""`, a default
//! namespace, or prefixes), in any order; elements egov does not know are
//! ignored, as a JAXB reader ignores them. An element with only whitespace
//! counts as absent.

use std::collections::BTreeSet;

use chrono::FixedOffset;
use roxmltree::{Document, Node, ParsingOptions};

use super::{
    AsyncMessageInfo, BAD_ELEMENT, BAD_ENUM, CORRELATION_REQUIRED, DSIG, DTD, DeliveryNotificationRequest, ErrorInfo,
    GetMessageStatusRequest, GetMessagesRequest, Limits, MISSING_ELEMENT, MUST_UNDERSTAND, MessageType, NOT_SOAP,
    NOT_XML, Operation, OperationName, Payload, Property, PushAnswer, ReceiveStatus, Request, SOAP_ENV, Security,
    SenderInfo, SoapTime, SyncRequestInfo, TOO_MANY_ELEMENTS, UNKNOWN_OPERATION, WRONG_NAMESPACE, WSSE, WSU, WireError,
    XSI, scan,
};

/// The SOAP 1.2 envelope's namespace, named in the refusal of one.
const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The SOAP 1.1 actor meaning "the first receiver" (a header block for it is ours).
const ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";

/// The operations egov serves, found by their wrapper's qualified name.
const SERVED: [OperationName; 5] = [
    OperationName::SyncSendMessage,
    OperationName::SendMessage,
    OperationName::GetMessages,
    OperationName::GetMessageStatus,
    OperationName::SendDeliveryNotification,
];

/// XML's white space (`S` of the XML 1.0 grammar).
pub(super) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

type Result<T> = std::result::Result<T, WireError>;

fn missing(path: &str) -> WireError {
    WireError::new(MISSING_ELEMENT, format!("{path} is required and is absent or empty"))
}

fn bad_element(message: String) -> WireError {
    WireError::new(BAD_ELEMENT, message)
}

fn not_soap(message: impl Into<String>) -> WireError {
    WireError::new(NOT_SOAP, message)
}

fn with_operation(operation: OperationName) -> impl Fn(WireError) -> WireError {
    move |mut error| {
        error.operation = Some(operation);
        error
    }
}

pub(super) fn request(bytes: &[u8], limits: &Limits, offset: FixedOffset) -> Result<Request> {
    let text = scan::check(bytes, limits)?;
    let document = parse(text, limits)?;
    let soap = envelope(&document)?;
    let wrapper = body_element(soap.body)?;
    let name = dispatch(wrapper)?;
    operation(name, &soap, wrapper, offset).map_err(with_operation(name))
}

fn operation(name: OperationName, soap: &Soap, wrapper: Node, offset: FixedOffset) -> Result<Request> {
    let security = security(soap.header, soap.body)?;
    let fields = Fields { node: wrapper, path: String::new() };
    let operation = match name {
        OperationName::SyncSendMessage => sync_send_message(&fields, offset)?,
        OperationName::SendMessage => send_message(&fields, offset)?,
        OperationName::GetMessages => get_messages(&fields, offset)?,
        OperationName::GetMessageStatus => get_message_status(&fields, offset)?,
        OperationName::SendDeliveryNotification => send_delivery_notification(&fields, offset)?,
        OperationName::ChangeStatusNotification => {
            return Err(WireError::new(
                UNKNOWN_OPERATION,
                "changeMassageStatusNotification is sent by SHEP, not to it",
            ));
        }
    };
    Ok(Request { operation, security })
}

pub(super) fn push_answer(bytes: &[u8], limits: &Limits, offset: FixedOffset) -> Result<PushAnswer> {
    let operation = OperationName::SendMessage;
    client_answer(bytes, limits, offset, operation).map_err(with_operation(operation))
}

pub(super) fn change_status_answer(bytes: &[u8], limits: &Limits, offset: FixedOffset) -> Result<PushAnswer> {
    let operation = OperationName::ChangeStatusNotification;
    client_answer(bytes, limits, offset, operation).map_err(with_operation(operation))
}

/// What a system egov called answered to `operation`: its response element, or a Fault.
fn client_answer(bytes: &[u8], limits: &Limits, offset: FixedOffset, operation: OperationName) -> Result<PushAnswer> {
    let text = scan::check(bytes, limits)?;
    let document = parse(text, limits)?;
    let soap = envelope(&document)?;
    let element = body_element(soap.body)?;
    let name = element.tag_name();
    let expected = format!("{}Response", operation.element());
    match (name.namespace(), name.name()) {
        (Some(SOAP_ENV), "Fault") => fault(element, offset),
        (namespace, local) if local == expected && namespace == Some(operation.namespace()) => {
            let fields = Fields { node: element, path: String::new() };
            let Some(response) = fields.child("response")? else {
                return Ok(PushAnswer::Accepted { message_id: None, correlation_id: None });
            };
            Ok(PushAnswer::Accepted {
                message_id: response.text("messageId")?,
                correlation_id: response.text("correlationId")?,
            })
        }
        (namespace, local) if local == expected => Err(WireError::new(
            WRONG_NAMESPACE,
            format!("{expected} is in namespace `{}`, not `{}`", namespace.unwrap_or(""), operation.namespace()),
        )),
        (namespace, local) => Err(WireError::new(
            UNKNOWN_OPERATION,
            format!("`{local}` (namespace `{}`) is neither {expected} nor a soap:Fault", namespace.unwrap_or("")),
        )),
    }
}

/// A recipient's Fault. `faultcode` is required; the `ErrorInfo` of `detail`
/// is read when the detail's element has an `errorCode`, and left out when it
/// does not read (the fault stands either way).
fn fault(element: Node, offset: FixedOffset) -> Result<PushAnswer> {
    let fields = Fields { node: element, path: "Fault".to_owned() };
    let faultcode = fields.required_text("faultcode")?;
    let faultstring = fields.raw_text("faultstring")?.unwrap_or_default();
    let error = fields
        .child("detail")?
        .and_then(|detail| detail.node.children().find(|child| child.is_element()))
        .map(|node| Fields { node, path: "Fault/detail".to_owned() })
        .filter(|info| info.one("errorCode").ok().flatten().is_some())
        .and_then(|info| error_info(&info, offset).ok());
    Ok(PushAnswer::Fault { faultcode, faultstring, error })
}

fn parse<'i>(text: &'i str, limits: &Limits) -> Result<Document<'i>> {
    // Elements are bounded by the scan; text, comments and the like come with them.
    let nodes = limits.max_elements.saturating_mul(4).saturating_add(64);
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(nodes).unwrap_or(u32::MAX),
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected => WireError::new(DTD, "the request has a DTD: egov refuses DTDs"),
        roxmltree::Error::NodesLimitReached => {
            WireError::new(TOO_MANY_ELEMENTS, format!("the request has more than {nodes} nodes"))
        }
        error => WireError::new(NOT_XML, format!("the request is not well-formed XML: {error}")),
    })
}

struct Soap<'a, 'i> {
    header: Option<Node<'a, 'i>>,
    body: Node<'a, 'i>,
}

fn envelope<'a, 'i>(document: &'a Document<'i>) -> Result<Soap<'a, 'i>> {
    let root = document.root_element();
    let name = root.tag_name();
    if name.name() != "Envelope" || name.namespace() != Some(SOAP_ENV) {
        return Err(not_soap(if name.namespace() == Some(SOAP12_ENV) {
            format!("a SOAP 1.2 envelope: egov's SHEP endpoints speak SOAP 1.1 ({SOAP_ENV})")
        } else {
            format!(
                "the document element is `{}` in namespace `{}`, not a SOAP 1.1 Envelope ({SOAP_ENV})",
                name.name(),
                name.namespace().unwrap_or("")
            )
        }));
    }
    let (mut header, mut body) = (None, None);
    for child in root.children().filter(Node::is_element) {
        let name = child.tag_name();
        match (name.namespace(), name.name()) {
            (Some(SOAP_ENV), "Header") if header.is_none() && body.is_none() => header = Some(child),
            (Some(SOAP_ENV), "Body") if body.is_none() => body = Some(child),
            (Some(SOAP_ENV), "Header") => return Err(not_soap("a second soap:Header, or one after the soap:Body")),
            (Some(SOAP_ENV), "Body") => return Err(not_soap("the Envelope has two soap:Body elements")),
            // SOAP 1.1 (4.3) lets qualified elements follow the Body.
            _ if body.is_some() => {}
            (_, local) => return Err(not_soap(format!("`{local}` in the Envelope before the soap:Body"))),
        }
    }
    let body = body.ok_or_else(|| not_soap("the Envelope has no soap:Body"))?;
    Ok(Soap { header, body })
}

/// The Body's one element: the operation's wrapper, or a Fault.
fn body_element<'a, 'i>(body: Node<'a, 'i>) -> Result<Node<'a, 'i>> {
    let mut elements = body.children().filter(Node::is_element);
    let first = elements.next().ok_or_else(|| not_soap("the soap:Body holds no element"))?;
    if elements.next().is_some() {
        return Err(not_soap("the soap:Body holds more than one element"));
    }
    Ok(first)
}

fn dispatch(wrapper: Node) -> Result<OperationName> {
    let name = wrapper.tag_name();
    let (namespace, local) = (name.namespace().unwrap_or(""), name.name());
    if let Some(operation) = SERVED.iter().find(|op| op.namespace() == namespace && op.element() == local) {
        return Ok(*operation);
    }
    if let Some(operation) = SERVED.iter().find(|op| op.element() == local) {
        return Err(WireError::new(
            WRONG_NAMESPACE,
            format!("`{local}` is in namespace `{namespace}`: egov serves it in `{}`", operation.namespace()),
        ));
    }
    Err(WireError::new(
        UNKNOWN_OPERATION,
        format!(
            "`{local}` (namespace `{namespace}`) is no operation egov serves: SendMessage (SyncChannel v10); \
             sendMessage, getMessages, getMessageStatus, sendDeliveryNotification (AsyncChannel v10)"
        ),
    ))
}

fn has_name(node: &Node, namespace: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(namespace)
}

/// `mustUnderstand` set, under any prefix (and, leniently, in any namespace).
fn must_understand(block: &Node) -> bool {
    block
        .attributes()
        .any(|attribute| attribute.name() == "mustUnderstand" && matches!(attribute.value(), "1" | "true"))
}

/// The `wsse:Security` header as found (its structure is the edge's to judge).
/// Another header block marked `mustUnderstand` for egov is refused, as SOAP 1.1 requires.
fn security(header: Option<Node>, body: Node) -> Result<Option<Security>> {
    let Some(header) = header else { return Ok(None) };
    let mut found = None;
    for block in header.children().filter(Node::is_element) {
        if has_name(&block, WSSE, "Security") {
            if found.is_some() {
                return Err(bad_element("the Header holds more than one wsse:Security".to_owned()));
            }
            found = Some(block);
        } else if must_understand(&block)
            && block.attribute((SOAP_ENV, "actor")).is_none_or(|actor| actor == ACTOR_NEXT)
        {
            let name = block.tag_name();
            return Err(WireError::new(
                MUST_UNDERSTAND,
                format!(
                    "the header block `{}` (namespace `{}`) is marked mustUnderstand, and egov does not understand it",
                    name.name(),
                    name.namespace().unwrap_or("")
                ),
            ));
        }
    }
    let Some(block) = found else { return Ok(None) };
    let algorithm = |local: &str| {
        block.descendants().find(|node| has_name(node, DSIG, local)).and_then(|node| node.attribute("Algorithm"))
    };
    let body_id = body
        .attribute((WSU, "Id"))
        .or_else(|| body.attributes().find(|attribute| attribute.name() == "Id").map(|attribute| attribute.value()));
    Ok(Some(Security {
        must_understand: must_understand(&block),
        signatures: block.descendants().filter(|node| has_name(node, DSIG, "Signature")).count(),
        references: block
            .descendants()
            .filter(|node| has_name(node, DSIG, "Reference"))
            .map(|node| node.attribute("URI").unwrap_or_default().to_owned())
            .collect(),
        signature_method: algorithm("SignatureMethod").map(str::to_owned),
        digest_method: algorithm("DigestMethod").map(str::to_owned),
        canonicalization_method: algorithm("CanonicalizationMethod").map(str::to_owned),
        body_id: body_id.map(str::to_owned),
    }))
}

/// An element whose children are read by local name, with its path from the
/// wrapper (`request/requestInfo`) for the messages.
struct Fields<'a, 'i> {
    node: Node<'a, 'i>,
    path: String,
}

/// Whether `node` holds neither an element nor any text but white space.
fn is_empty(node: Node) -> bool {
    !node.children().any(|child| {
        child.is_element()
            || (child.is_text() && !child.text().unwrap_or_default().trim_matches(is_xml_space).is_empty())
    })
}

/// The text of a simple element, as sent (entities resolved, CDATA included).
fn text_of(node: Node, path: &str) -> Result<String> {
    if node.children().any(|child| child.is_element()) {
        return Err(bad_element(format!("{path} holds elements where a value is expected")));
    }
    Ok(node.children().filter(Node::is_text).filter_map(|child| child.text()).collect())
}

impl<'a, 'i> Fields<'a, 'i> {
    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}/{name}", self.path) }
    }

    fn all(&self, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> + use<'a, 'i> {
        self.node.children().filter(move |child| child.is_element() && child.tag_name().name() == name)
    }

    /// The element `name`, if there is one; twice is an error.
    fn one(&self, name: &'static str) -> Result<Option<Node<'a, 'i>>> {
        let mut found = self.all(name);
        let first = found.next();
        if found.next().is_some() {
            return Err(bad_element(format!("{} is given more than once", self.path_of(name))));
        }
        Ok(first)
    }

    /// An optional complex element: absent or empty is `None`.
    fn child(&self, name: &'static str) -> Result<Option<Fields<'a, 'i>>> {
        Ok(self.one(name)?.filter(|node| !is_empty(*node)).map(|node| Fields { node, path: self.path_of(name) }))
    }

    /// A required complex element (empty, its own required children are reported missing).
    fn required_child(&self, name: &'static str) -> Result<Fields<'a, 'i>> {
        let node = self.one(name)?.ok_or_else(|| missing(&self.path_of(name)))?;
        Ok(Fields { node, path: self.path_of(name) })
    }

    /// An optional simple element as sent (free text: not trimmed); empty is `None`.
    fn raw_text(&self, name: &'static str) -> Result<Option<String>> {
        let Some(node) = self.one(name)? else { return Ok(None) };
        let text = text_of(node, &self.path_of(name))?;
        Ok(if text.trim_matches(is_xml_space).is_empty() { None } else { Some(text) })
    }

    /// An optional simple element, surrounding white space removed (ids, codes, names).
    fn text(&self, name: &'static str) -> Result<Option<String>> {
        Ok(self.raw_text(name)?.map(|text| text.trim_matches(is_xml_space).to_owned()))
    }

    fn required_text(&self, name: &'static str) -> Result<String> {
        self.text(name)?.ok_or_else(|| missing(&self.path_of(name)))
    }

    fn time(&self, name: &'static str, offset: FixedOffset) -> Result<Option<SoapTime>> {
        let Some(text) = self.text(name)? else { return Ok(None) };
        super::time::parse(&text, offset).map(Some).ok_or_else(|| {
            WireError::new(
                super::BAD_DATETIME,
                format!(
                    "{} is `{text}`, not an xsd:dateTime (YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm])",
                    self.path_of(name)
                ),
            )
        })
    }

    fn required_time(&self, name: &'static str, offset: FixedOffset) -> Result<SoapTime> {
        self.time(name, offset)?.ok_or_else(|| missing(&self.path_of(name)))
    }

    /// A required enumeration, matched exactly.
    fn enumerated<T: Copy>(&self, name: &'static str, values: &[(&str, T)]) -> Result<T> {
        let text = self.required_text(name)?;
        values.iter().find(|(lexical, _)| *lexical == text).map(|(_, value)| *value).ok_or_else(|| {
            let allowed: Vec<&str> = values.iter().map(|(lexical, _)| *lexical).collect();
            WireError::new(BAD_ENUM, format!("{} is `{text}`, not one of {}", self.path_of(name), allowed.join(", ")))
        })
    }
}

fn sender(fields: &Fields) -> Result<SenderInfo> {
    Ok(SenderInfo { sender_id: fields.required_text("senderId")?, password: fields.raw_text("password")? })
}

/// `Property` repeats as sibling `properties` elements; an empty one is skipped.
fn properties(fields: &Fields) -> Result<Vec<Property>> {
    let mut properties = Vec::new();
    for (index, node) in fields.all("properties").enumerate() {
        if is_empty(node) {
            continue;
        }
        let property = Fields { node, path: format!("{}[{}]", fields.path_of("properties"), index + 1) };
        let key = property.required_text("key")?;
        // The value is required but may be empty (`string`, 0 to 500 characters).
        let value_path = property.path_of("value");
        let value = text_of(property.one("value")?.ok_or_else(|| missing(&value_path))?, &value_path)?;
        if key.chars().count() > 30 {
            return Err(bad_element(format!(
                "{} has {} characters, over 30",
                property.path_of("key"),
                key.chars().count()
            )));
        }
        if value.chars().count() > 500 {
            return Err(bad_element(format!("{value_path} has {} characters, over 500", value.chars().count())));
        }
        properties.push(Property { key, value });
    }
    Ok(properties)
}

/// `data` (`xsd:anyType`): one child element, passed on as sent; or one
/// escaped XML string, unescaped (and trimmed).
fn payload(parent: &Fields) -> Result<Payload> {
    let path = parent.path_of("data");
    let data = parent.one("data")?.ok_or_else(|| missing(&path))?;
    // A typed value, as generated clients (JAXB, .NET, zeep) write one into `data`
    // (`xsd:anyType`): `<data xsi:type="PersonQuery"><iin>...`. `data` itself is then
    // the payload, its `xsi:type` naming the body type (`payload::from_xml` reads it so).
    let typed = data
        .attributes()
        .find(|attribute| attribute.namespace() == Some(XSI) && attribute.name() == "type")
        .is_some_and(|attribute| attribute.value().rsplit(':').next() != Some("string"));
    if typed && data.children().any(|child| child.is_element()) {
        return Ok(Payload { xml: standalone(data), as_string: false });
    }
    let mut elements = data.children().filter(Node::is_element);
    if let Some(element) = elements.next() {
        if elements.next().is_some() {
            return Err(bad_element(format!(
                "{path} holds more than one element: egov's payload is one element, the body type's (docs/shep.md)"
            )));
        }
        return Ok(Payload { xml: standalone(element), as_string: false });
    }
    let text: String = data.children().filter(Node::is_text).filter_map(|child| child.text()).collect();
    let text = text.trim_matches(is_xml_space);
    if text.is_empty() {
        return Err(missing(&path));
    }
    Ok(Payload { xml: text.to_owned(), as_string: true })
}

/// The exact source text of `element`, with the namespace declarations of its
/// ancestors that it relies on added to its start tag, so that it parses alone
/// with the same meaning.
fn standalone(element: Node) -> String {
    let input = element.document().input_text();
    let source = &input[element.range()];
    let qname_of = |node: &Node| {
        let tag = &input[node.range().start + 1..];
        &tag[..tag.find(|c: char| is_xml_space(c) || c == '/' || c == '>').unwrap_or(tag.len())]
    };
    let mut used: BTreeSet<Option<&str>> = BTreeSet::new();
    for node in element.descendants().filter(Node::is_element) {
        used.insert(qname_of(&node).split_once(':').map(|(prefix, _)| prefix));
        for attribute in node.attributes() {
            if let Some((prefix, _)) = input[attribute.range_qname()].split_once(':') {
                used.insert(Some(prefix));
            }
            if attribute.namespace() == Some(XSI)
                && attribute.name() == "type"
                && let Some((prefix, _)) = attribute.value().split_once(':')
            {
                used.insert(Some(prefix.trim_matches(is_xml_space)));
            }
        }
    }
    let declared = declared_on(source);
    let mut declarations = String::new();
    for prefix in used {
        if prefix == Some("xml") || declared.contains(&prefix.map(str::to_owned)) {
            continue;
        }
        let uri = element.lookup_namespace_uri(prefix).filter(|uri| !uri.is_empty());
        match (prefix, uri) {
            (Some(prefix), Some(uri)) => {
                declarations.push_str(&format!(" xmlns:{prefix}=\"{}\"", quick_xml::escape::escape(uri)))
            }
            (None, Some(uri)) => declarations.push_str(&format!(" xmlns=\"{}\"", quick_xml::escape::escape(uri))),
            _ => {}
        }
    }
    if declarations.is_empty() {
        return source.to_owned();
    }
    let at = 1 + qname_of(&element).len();
    format!("{}{declarations}{}", &source[..at], &source[at..])
}

/// The prefixes declared on the start tag of `source` (`None` for `xmlns`).
fn declared_on(source: &str) -> BTreeSet<Option<String>> {
    let mut reader = quick_xml::reader::Reader::from_str(source);
    let start = match reader.read_event() {
        Ok(quick_xml::events::Event::Start(start) | quick_xml::events::Event::Empty(start)) => start,
        _ => return BTreeSet::new(),
    };
    start
        .attributes()
        .with_checks(false)
        .flatten()
        .filter_map(|attribute| {
            let key: &str = attribute.key.as_ref();
            if key == "xmlns" { Some(None) } else { key.strip_prefix("xmlns:").map(|prefix| Some(prefix.to_owned())) }
        })
        .collect()
}

fn error_info(fields: &Fields, offset: FixedOffset) -> Result<ErrorInfo> {
    Ok(ErrorInfo {
        error_code: fields.required_text("errorCode")?,
        error_message: fields.raw_text("errorMessage")?.ok_or_else(|| missing(&fields.path_of("errorMessage")))?,
        error_data: fields.raw_text("errorData")?,
        error_date: fields.required_time("errorDate", offset)?.at,
        sub_error: match fields.child("subError")? {
            Some(sub) => Some(Box::new(error_info(&sub, offset)?)),
            None => None,
        },
        session_id: fields.text("sessionId")?,
    })
}

fn sync_send_message(wrapper: &Fields, offset: FixedOffset) -> Result<Operation> {
    let request = wrapper.required_child("request")?;
    let info = request.required_child("requestInfo")?;
    let info = SyncRequestInfo {
        message_id: info.required_text("messageId")?,
        correlation_id: info.text("correlationId")?,
        service_id: info.required_text("serviceId")?,
        message_date: info.required_time("messageDate", offset)?,
        route_id: info.text("routeId")?,
        sender: sender(&info.required_child("sender")?)?,
        properties: properties(&info)?,
        session_id: info.text("sessionId")?,
    };
    let data = payload(&request.required_child("requestData")?)?;
    Ok(Operation::SyncSendMessage { info, data })
}

const MESSAGE_TYPES: [(&str, MessageType); 4] = [
    ("REQUEST", MessageType::Request),
    ("RESPONSE", MessageType::Response),
    ("NOTIFICATION", MessageType::Notification),
    ("UPDATE", MessageType::Update),
];

/// `AsyncMessageInfo`, as sent to egov and as egov delivers it.
fn async_message_info(info: &Fields, offset: FixedOffset) -> Result<AsyncMessageInfo> {
    let info = AsyncMessageInfo {
        message_id: info.text("messageId")?,
        correlation_id: info.text("correlationId")?,
        service_id: info.required_text("serviceId")?,
        message_type: info.enumerated("messageType", &MESSAGE_TYPES)?,
        route_id: info.text("routeId")?,
        message_date: info.required_time("messageDate", offset)?,
        sender: sender(&info.required_child("sender")?)?,
        properties: properties(info)?,
        session_id: info.text("sessionId")?,
    };
    if info.message_type != MessageType::Request && info.correlation_id.is_none() {
        return Err(WireError::new(
            CORRELATION_REQUIRED,
            format!(
                "a {} names the chain it belongs to: request/messageInfo/correlationId is required",
                info.message_type.as_str()
            ),
        ));
    }
    Ok(info)
}

fn send_message(wrapper: &Fields, offset: FixedOffset) -> Result<Operation> {
    let request = wrapper.required_child("request")?;
    let info = async_message_info(&request.required_child("messageInfo")?, offset)?;
    let data = payload(&request.required_child("messageData")?)?;
    Ok(Operation::SendMessage { info, data })
}

fn get_messages(wrapper: &Fields, offset: FixedOffset) -> Result<Operation> {
    let request = wrapper.required_child("request")?;
    let amount = match request.text("amount")? {
        None => None,
        Some(text) => Some(
            text.strip_prefix('+')
                .unwrap_or(&text)
                .parse::<u32>()
                .ok()
                .filter(|amount| i32::try_from(*amount).is_ok())
                .ok_or_else(|| {
                    bad_element(format!("{} is `{text}`, not a non-negative int", request.path_of("amount")))
                })?,
        ),
    };
    Ok(Operation::GetMessages(GetMessagesRequest {
        message_id: request.text("messageId")?,
        correlation_id: request.text("correlationId")?,
        request_date: request.time("requestDate", offset)?,
        service_id: request.required_text("serviceId")?,
        sender: request.child("sender")?.map(|fields| sender(&fields)).transpose()?,
        amount,
        properties: properties(&request)?,
    }))
}

fn get_message_status(wrapper: &Fields, offset: FixedOffset) -> Result<Operation> {
    let request = wrapper.required_child("request")?;
    Ok(Operation::GetMessageStatus(GetMessageStatusRequest {
        message_id: request.required_text("messageId")?,
        request_date: request.required_time("requestDate", offset)?,
        sender: sender(&request.required_child("sender")?)?,
        properties: properties(&request)?,
    }))
}

fn send_delivery_notification(wrapper: &Fields, offset: FixedOffset) -> Result<Operation> {
    let request = wrapper.required_child("request")?;
    let notification = request.required_child("notification")?;
    let status = notification.required_child("deliveryStatus")?;
    Ok(Operation::SendDeliveryNotification(DeliveryNotificationRequest {
        message_id: notification.required_text("messageId")?,
        service_id: notification.required_text("serviceId")?,
        notification_date: notification.required_time("notificationDate", offset)?,
        receive_status: status.enumerated(
            "receiveStatus",
            &[("MESSAGE_ACCEPTED", ReceiveStatus::Accepted), ("MESSAGE_NOT_ACCTEPTED", ReceiveStatus::NotAccepted)],
        )?,
        status_date: status.required_time("statusDate", offset)?,
        resend: status.enumerated("resendMessage", &[("RESEND", true), ("NOT_RESEND", false)])?,
        error: status.child("error")?.map(|fields| error_info(&fields, offset)).transpose()?,
        request_date: request.required_time("requestDate", offset)?,
        sender: request.child("sender")?.map(|fields| sender(&fields)).transpose()?,
    }))
}
