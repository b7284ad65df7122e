//! Writing SOAP 1.1 envelopes: prefix `soap` for the envelope, `ns2` for the
//! wrapper's namespace, every descendant unqualified (no default namespace is
//! ever declared), children in the schema's order, all text escaped.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};

use super::{
    ASYNC_CLIENT_TYPES, ASYNC_TYPES, Answer, AsyncMessageInfo, ChangeStatusNotification, DeliveredMessage, ErrorInfo,
    MessageStatusInfo, OperationName, Payload, Property, SOAP_ENV, SenderInfo, XS, XSI, format_time,
};

/// Whether XML 1.0 allows `c` in a document (`Char` of its grammar).
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text escaped for content and attribute values (`& < > " '`); a carriage
/// return as `&#13;` so it survives a reader's newline normalisation; a
/// character XML cannot carry (a control character) as U+FFFD.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::escape(text);
    if !escaped.chars().any(|c| c == '\r' || !allowed(c)) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        match c {
            '\r' => out.push_str("&#13;"),
            c if !allowed(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The one element of `xml` (a leading XML declaration or comments left
/// out), or `None` when `xml` is not one well-formed element.
fn one_element(xml: &str) -> Option<&str> {
    let document = roxmltree::Document::parse(xml).ok()?;
    let range = document.root_element().range();
    Some(&xml[range])
}

struct Xml {
    out: String,
}

impl Xml {
    /// `<soap:Envelope><soap:Body>`.
    fn new() -> Xml {
        let mut out = String::with_capacity(1024);
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        out.push_str(&format!(r#"<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>"#));
        Xml { out }
    }

    /// `</soap:Body></soap:Envelope>`.
    fn finish(mut self) -> String {
        self.out.push_str("</soap:Body></soap:Envelope>");
        self.out
    }

    /// The qualified wrapper `ns2:NAME` holding what `inner` writes.
    fn wrapper(&mut self, namespace: &str, name: &str, inner: impl FnOnce(&mut Xml)) {
        self.out.push_str(&format!(r#"<ns2:{name} xmlns:ns2="{}">"#, escape(namespace)));
        inner(self);
        self.out.push_str(&format!("</ns2:{name}>"));
    }

    /// An unqualified element holding what `inner` writes.
    fn element(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        inner(self);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn text(&mut self, name: &str, value: &str) {
        self.element(name, |xml| xml.out.push_str(&escape(value)));
    }

    fn optional(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(name, value);
        }
    }

    fn time(&mut self, name: &str, at: DateTime<FixedOffset>) {
        self.text(name, &format_time(at));
    }

    fn sender(&mut self, sender: &SenderInfo) {
        self.element("sender", |xml| {
            xml.text("senderId", &sender.sender_id);
            xml.optional("password", sender.password.as_deref());
        });
    }

    fn properties(&mut self, properties: &[Property]) {
        for property in properties {
            self.element("properties", |xml| {
                xml.text("key", &property.key);
                xml.text("value", &property.value);
            });
        }
    }

    /// `data`: the element as it is, or the escaped string with
    /// `xsi:type="xs:string"` (also when the "element" is not one well-formed element).
    fn data(&mut self, payload: &Payload) {
        if !payload.as_string
            && let Some(element) = one_element(&payload.xml)
        {
            self.element("data", |xml| xml.out.push_str(element));
            return;
        }
        self.out.push_str(&format!(r#"<data xmlns:xsi="{XSI}" xmlns:xs="{XS}" xsi:type="xs:string">"#));
        self.out.push_str(&escape(&payload.xml));
        self.out.push_str("</data>");
    }

    fn message_info(&mut self, info: &AsyncMessageInfo) {
        self.element("messageInfo", |xml| {
            xml.optional("messageId", info.message_id.as_deref());
            xml.optional("correlationId", info.correlation_id.as_deref());
            xml.text("serviceId", &info.service_id);
            xml.text("messageType", info.message_type.as_str());
            xml.optional("routeId", info.route_id.as_deref());
            xml.time("messageDate", info.message_date.at);
            xml.sender(&info.sender);
            xml.properties(&info.properties);
            xml.optional("sessionId", info.session_id.as_deref());
        });
    }

    /// `messageInfo` and `messageData` (`AsyncMessage`).
    fn message(&mut self, message: &DeliveredMessage) {
        self.message_info(&message.info);
        self.element("messageData", |xml| xml.data(&message.data));
    }

    /// The fields of `ErrorInfo`, in the schema's order.
    fn error_info(&mut self, error: &ErrorInfo) {
        self.text("errorCode", &error.error_code);
        self.text("errorMessage", &error.error_message);
        self.optional("errorData", error.error_data.as_deref());
        self.time("errorDate", error.error_date);
        if let Some(sub) = &error.sub_error {
            self.element("subError", |xml| xml.error_info(sub));
        }
        self.optional("sessionId", error.session_id.as_deref());
    }

    fn status_info(&mut self, status: &MessageStatusInfo) {
        self.element("status", |xml| {
            xml.text("statusCode", &status.status_code);
            xml.text("statusMessage", &status.status_message);
            xml.time("statusDate", status.status_date);
        });
    }
}

/// The response wrapper of `operation` (`SendMessageResponse`, ...).
fn response(xml: &mut Xml, operation: OperationName, inner: impl FnOnce(&mut Xml)) {
    xml.wrapper(operation.namespace(), &format!("{}Response", operation.element()), |xml| {
        xml.element("response", inner)
    });
}

pub(super) fn answer(answer: &Answer) -> String {
    let mut xml = Xml::new();
    match answer {
        Answer::SyncSendMessage(answer) => response(&mut xml, OperationName::SyncSendMessage, |xml| {
            xml.element("responseInfo", |xml| {
                xml.text("messageId", &answer.message_id);
                xml.optional("correlationId", answer.correlation_id.as_deref());
                xml.time("responseDate", answer.response_date);
                xml.element("status", |xml| {
                    xml.text("code", &answer.status_code);
                    xml.text("message", &answer.status_message);
                });
                xml.optional("sessionId", answer.session_id.as_deref());
            });
            xml.element("responseData", |xml| xml.data(&answer.data));
        }),
        Answer::SendMessage(answer) => response(&mut xml, OperationName::SendMessage, |xml| {
            xml.text("messageId", &answer.message_id);
            xml.text("correlationId", &answer.correlation_id);
            xml.time("responseDate", answer.response_date);
            xml.optional("sessionId", answer.session_id.as_deref());
        }),
        Answer::GetMessages(answer) => response(&mut xml, OperationName::GetMessages, |xml| {
            xml.time("responseDate", answer.response_date);
            xml.text("sessionId", &answer.session_id);
            for message in &answer.messages {
                xml.element("messages", |xml| xml.message(message));
            }
        }),
        Answer::GetMessageStatus(answer) => response(&mut xml, OperationName::GetMessageStatus, |xml| {
            xml.text("messageState", answer.message_state.as_str());
            xml.status_info(&answer.status);
            xml.time("responseDate", answer.response_date);
            xml.optional("sessionId", answer.session_id.as_deref());
        }),
        Answer::SendDeliveryNotification(answer) => {
            response(&mut xml, OperationName::SendDeliveryNotification, |xml| {
                xml.text("notificationId", &answer.notification_id);
                xml.time("responseDate", answer.response_date);
                xml.text("sessionId", &answer.session_id);
            })
        }
    }
    xml.finish()
}

pub(super) fn fault(operation: OperationName, faultcode: &str, error: &ErrorInfo) -> String {
    let faultcode =
        if faultcode.contains(':') { Cow::Borrowed(faultcode) } else { Cow::Owned(format!("soap:{faultcode}")) };
    let mut xml = Xml::new();
    xml.element("soap:Fault", |xml| {
        xml.text("faultcode", &faultcode);
        xml.text("faultstring", &error.error_message);
        xml.element("detail", |xml| {
            xml.wrapper(operation.namespace(), &operation.fault_element(), |xml| xml.error_info(error));
        });
    });
    xml.finish()
}

pub(super) fn push(message: &DeliveredMessage) -> String {
    let mut xml = Xml::new();
    xml.wrapper(ASYNC_TYPES, OperationName::SendMessage.element(), |xml| {
        xml.element("request", |xml| xml.message(message));
    });
    xml.finish()
}

pub(super) fn change_status(notification: &ChangeStatusNotification) -> String {
    let mut xml = Xml::new();
    xml.wrapper(ASYNC_CLIENT_TYPES, OperationName::ChangeStatusNotification.element(), |xml| {
        xml.element("request", |xml| {
            xml.element("notification", |xml| {
                xml.text("notificationId", &notification.notification_id);
                xml.text("messageId", &notification.message_id);
                xml.time("notificationDate", notification.notification_date);
                xml.text("messageState", notification.message_state.as_str());
                xml.status_info(&notification.status);
                if let Some(error) = &notification.error {
                    xml.element("error", |xml| xml.error_info(error));
                }
            });
            xml.time("requestDate", notification.request_date);
            xml.optional("sessionId", notification.session_id.as_deref());
        });
    });
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_carriage_returns_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("line\r\nnext"), "line&#13;\nnext");
        assert_eq!(escape("bell\u{7}tab\t"), "bell\u{FFFD}tab\t");
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn one_element_takes_the_root_and_refuses_the_rest() {
        assert_eq!(one_element(r#"<?xml version="1.0"?><!-- c --><a x="1"><b/></a>"#), Some(r#"<a x="1"><b/></a>"#));
        assert_eq!(one_element("<a><b></a>"), None);
        assert_eq!(one_element("just text"), None);
        assert_eq!(one_element("<a/><b/>"), None);
    }
}
