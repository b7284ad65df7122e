//! A signed message's body, decoded by its type's descriptor (the protos'
//! own, `egov_proto::FILE_DESCRIPTOR_SET`) as a tree of named fields: nested
//! messages folded, an envelope it carries opened (its header, its body by
//! the type the header names), a document's scan a link that opens it, other
//! bytes their size. And the scan of a document, found by its SHA-256 in a
//! body.

use std::sync::OnceLock;

use maud::{Markup, html};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value};

/// The type of an envelope, whose header and body are bytes to decode in turn.
const ENVELOPE: &str = "egov.v1.Envelope";
const HEADER: &str = "egov.v1.EnvelopeHeader";
/// The type of a document with its scan (`content`).
const DOCUMENT: &str = "egov.v1.AttachedDocument";
/// Bytes that hold a `ServiceResult` (the drafted result the head signs).
const SERVICE_RESULT: &str = "egov.v1.ServiceResult";
/// How deep envelopes inside envelopes are opened.
const MAX_DEPTH: usize = 8;

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(egov_proto::FILE_DESCRIPTOR_SET).ok()).as_ref()
}

fn decode(type_name: &str, bytes: &[u8]) -> Option<DynamicMessage> {
    let descriptor = pool()?.get_message_by_name(type_name)?;
    DynamicMessage::decode(descriptor, bytes).ok()
}

/// The body of `type_name` as a tree; `link(sha256)` is where a document's scan opens.
pub fn tree(type_name: &str, body: &[u8], link: &dyn Fn(&str) -> String) -> Markup {
    match decode(type_name, body) {
        Some(message) => html! { (fields(&message, link, 0)) },
        None => html! { p.bad { (type_name) ": " (body.len()) " B" } },
    }
}

fn fields(message: &DynamicMessage, link: &dyn Fn(&str) -> String, depth: usize) -> Markup {
    let descriptor = message.descriptor();
    if descriptor.full_name() == ENVELOPE && depth < MAX_DEPTH {
        return envelope(message, link, depth);
    }
    let document = descriptor.full_name() == DOCUMENT;
    html! {
        ul.tree data-type=(descriptor.full_name()) {
            @for (field, value) in message.fields() {
                li data-field=(field.name()) {
                    span.field { (field.name()) } ": "
                    @if document && field.name() == "content" {
                        @let sha = message.get_field_by_name("sha256").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                        @let size = value.as_bytes().map_or(0, |bytes| bytes.len());
                        a.scan href=(link(&sha)) target="_blank" rel="noopener" { (size) " B" }
                    } @else {
                        (value_markup(field.name(), value, link, depth))
                    }
                }
            }
        }
    }
}

fn value_markup(name: &str, value: &Value, link: &dyn Fn(&str) -> String, depth: usize) -> Markup {
    match value {
        Value::Message(message) => folded(message, link, depth),
        Value::List(items) => html! {
            ol.list {
                @for item in items { li { (value_markup(name, item, link, depth)) } }
            }
        },
        Value::Map(map) => html! {
            ul.list {
                @for (key, item) in map { li { (format!("{key:?}")) ": " (value_markup(name, item, link, depth)) } }
            }
        },
        Value::Bytes(bytes) => {
            // The drafted result the head signs is a message in bytes.
            if name.contains("result")
                && let Some(result) = decode(SERVICE_RESULT, bytes)
            {
                return folded(&result, link, depth);
            }
            html! { span.bytes { (bytes.len()) " B" @if !bytes.is_empty() { " " code { (hex::encode(&bytes[..bytes.len().min(16)])) @if bytes.len() > 16 { "…" } } } } }
        }
        Value::String(text) => html! { span.text { (text) } },
        Value::EnumNumber(number) => html! { span.enum { (number) } },
        other => html! { span.scalar { (scalar(other)) } },
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Bool(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::U32(v) => v.to_string(),
        Value::U64(v) => v.to_string(),
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        _ => String::new(),
    }
}

/// A nested message, folded under its field's name and type (open near the top).
fn folded(message: &DynamicMessage, link: &dyn Fn(&str) -> String, depth: usize) -> Markup {
    let descriptor: MessageDescriptor = message.descriptor();
    html! {
        details.nested open[depth < 1] {
            summary { (descriptor.name()) }
            (fields(message, link, depth + 1))
        }
    }
}

/// An envelope: its header, its body by the header's type, its signatures' keys.
fn envelope(message: &DynamicMessage, link: &dyn Fn(&str) -> String, depth: usize) -> Markup {
    let bytes_of = |field: &str| message.get_field_by_name(field).and_then(|v| v.as_bytes().map(|b| b.to_vec()));
    let header = bytes_of("header").and_then(|bytes| decode(HEADER, &bytes));
    let body_type = header
        .as_ref()
        .and_then(|header| header.get_field_by_name("body_type"))
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let body = bytes_of("body").unwrap_or_default();
    let signatures: Vec<String> = message
        .get_field_by_name("signatures")
        .and_then(|value| {
            value.as_list().map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_message()?.get_field_by_name("key_id")?.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    html! {
        ul.tree data-type=(ENVELOPE) {
            @if let Some(header) = &header {
                li data-field="header" { span.field { "header" } ": " (folded(header, link, depth + 1)) }
            }
            li data-field="body" {
                span.field { "body" } ": "
                @match decode(&body_type, &body) {
                    Some(inner) => details.nested open { summary { (body_type) } (fields(&inner, link, depth + 1)) },
                    None => span.bytes { (body.len()) " B" },
                }
            }
            li data-field="signatures" { span.field { "signatures" } ": " (signatures.join(", ")) }
        }
    }
}

/// The scan of the document with `sha256` in a body of `type_name`, with its title: (title, bytes).
pub fn document(type_name: &str, body: &[u8], sha256: &str) -> Option<(String, Vec<u8>)> {
    find(&decode(type_name, body)?, sha256, 0)
}

fn find(message: &DynamicMessage, sha256: &str, depth: usize) -> Option<(String, Vec<u8>)> {
    let descriptor = message.descriptor();
    if descriptor.full_name() == DOCUMENT
        && message.get_field_by_name("sha256").is_some_and(|v| v.as_str() == Some(sha256))
    {
        let title = message.get_field_by_name("title").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let content = message.get_field_by_name("content").and_then(|v| v.as_bytes().map(|b| b.to_vec()))?;
        return (!content.is_empty()).then_some((title, content));
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    if descriptor.full_name() == ENVELOPE {
        let bytes_of = |field: &str| message.get_field_by_name(field).and_then(|v| v.as_bytes().map(|b| b.to_vec()));
        let header = decode(HEADER, &bytes_of("header")?)?;
        let body_type = header.get_field_by_name("body_type")?.as_str()?.to_owned();
        return find(&decode(&body_type, &bytes_of("body")?)?, sha256, depth + 1);
    }
    for (_, value) in message.fields() {
        let found = match value {
            Value::Message(inner) => find(inner, sha256, depth + 1),
            Value::List(items) => {
                items.iter().filter_map(Value::as_message).find_map(|inner| find(inner, sha256, depth + 1))
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The content type of a scan, from its first bytes.
pub fn content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"%PDF") {
        "application/pdf"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if std::str::from_utf8(bytes).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egov_proto::Body as _;
    use prost::Message as _;

    #[test]
    fn a_submission_reads_as_named_fields_with_its_documents_linked() {
        let submission = egov_proto::ApplicationSubmission {
            session_id: "s-1".to_owned(),
            application_id: "a-1".to_owned(),
            documents: vec![
                egov_proto::AttachedDocument {
                    kind: "application-form".to_owned(),
                    title: "application.pdf".to_owned(),
                    pages: 1,
                    sha256: "aa".to_owned(),
                    content: b"%PDF-1.4 the form".to_vec(),
                },
                egov_proto::AttachedDocument {
                    kind: "identity-document".to_owned(),
                    title: "identity.pdf".to_owned(),
                    pages: 2,
                    sha256: "bb".to_owned(),
                    content: vec![7; 100_000],
                },
            ],
        };
        let bytes = submission.encode_to_vec();
        let html = tree(egov_proto::ApplicationSubmission::TYPE, &bytes, &|sha| format!("/scan/{sha}")).into_string();
        for expected in [
            "<span class=\"field\">application_id</span>: <span class=\"text\">a-1</span>",
            "href=\"/scan/aa\"",
            "href=\"/scan/bb\"",
            "100000 B",
            "identity.pdf",
        ] {
            assert!(html.contains(expected), "{expected} missing in {html}");
        }
        assert!(html.len() < 5_000, "no byte a line: {} characters", html.len());
        assert!(!html.contains("AttachedDocument {"), "no Rust debug output");
        assert_eq!(
            document(egov_proto::ApplicationSubmission::TYPE, &bytes, "aa"),
            Some(("application.pdf".to_owned(), b"%PDF-1.4 the form".to_vec()))
        );
        assert_eq!(document(egov_proto::ApplicationSubmission::TYPE, &bytes, "cc"), None);
        assert_eq!(content_type(b"%PDF-1.4"), "application/pdf");
    }

    #[test]
    fn a_carried_envelope_is_opened_by_its_headers_type() {
        let scan =
            egov_proto::AttachedDocument { sha256: "dd".to_owned(), content: b"scan".to_vec(), ..Default::default() };
        let inner = egov_proto::ApplicationSubmission { documents: vec![scan], ..Default::default() };
        let header = egov_proto::EnvelopeHeader {
            body_type: egov_proto::ApplicationSubmission::TYPE.to_owned(),
            sender_id: "operator-1".to_owned(),
            ..Default::default()
        };
        let envelope = egov_proto::Envelope {
            header: header.encode_to_vec().into(),
            body: inner.encode_to_vec().into(),
            ..Default::default()
        };
        let delivery = egov_proto::ApplicationDelivery { operator_submission: Some(envelope), ..Default::default() };
        let bytes = delivery.encode_to_vec();
        let html = tree(egov_proto::ApplicationDelivery::TYPE, &bytes, &|sha| format!("/scan/{sha}")).into_string();
        assert!(html.contains("operator-1") && html.contains("href=\"/scan/dd\""), "{html}");
        assert_eq!(
            document(egov_proto::ApplicationDelivery::TYPE, &bytes, "dd").map(|(_, b)| b),
            Some(b"scan".to_vec())
        );
    }
}
