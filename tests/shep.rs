//! The gateway's SHEP face end to end (docs/shep.md), driven with raw HTTP as
//! a SOAP client sends it: a sync look-up, the bad-input matrix (each refused
//! with its fault and code, nothing stored), and an application from an
//! external State Corporation system that polls its progress back.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_runtime::{Topology, ids};
use egov_shep::{EdgeSettings, External};

const SC_PASSWORD: &str = "sc-secret";
const SYNC: &str = "/bip-sync-wss-gost/";
const ASYNC: &str = "/bip-async/";
/// A person of fixtures/individuals.json.
const IIN: &str = "850715300122";

/// A stack with the SHEP face on free ports, a sender `sc-ext` (the State
/// Corporation workstation, signing for operator-1), and `external` roles.
async fn start(external: &[(&str, External)]) -> Harness {
    Harness::start_with(|config| {
        egov_shep::senders::add_sender(
            config.keys.path(),
            "sc-ext",
            ids::SC_WORKSTATION,
            Some(SC_PASSWORD),
            &["operator-1".to_owned()],
            None,
        )
        .unwrap();
        let mut settings = EdgeSettings {
            address: "127.0.0.1:0".to_owned(),
            grpc_address: "127.0.0.1:0".to_owned(),
            external: external.iter().map(|(role, how)| ((*role).to_owned(), how.clone())).collect(),
            ..EdgeSettings::default()
        };
        settings.limits.max_bytes = 64 * 1024;
        config.shep = Some(settings);
    })
    .await
}

/// POSTs `body` to the edge: the HTTP status and the answer.
async fn post(harness: &Harness, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = harness.stack.shep_address().unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nSOAPAction: \"\"\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The edge may answer before it has read an oversized body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

async fn soap(harness: &Harness, path: &str, body: &str) -> (u16, String) {
    post(harness, path, "text/xml; charset=utf-8", body.as_bytes()).await
}

/// The text of the first element named `name` in `xml` (any prefix).
fn text_of(xml: &str, name: &str) -> Option<String> {
    let document = roxmltree::Document::parse(xml).ok()?;
    let node = document.descendants().find(|node| node.tag_name().name() == name)?;
    Some(node.text().unwrap_or("").to_owned())
}

fn texts_of(xml: &str, name: &str) -> Vec<String> {
    let Ok(document) = roxmltree::Document::parse(xml) else { return Vec::new() };
    document
        .descendants()
        .filter(|node| node.tag_name().name() == name)
        .map(|node| node.text().unwrap_or("").to_owned())
        .collect()
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// A sync `SendMessage`.
fn sync_request(message_id: &str, service: &str, sender: &str, password: &str, data: &str) -> String {
    envelope(&format!(
        "<t:SendMessage xmlns:t=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo>\
         <messageId>{message_id}</messageId><serviceId>{service}</serviceId>\
         <messageDate>2026-06-15T10:00:00</messageDate>\
         <sender><senderId>{sender}</senderId><password>{password}</password></sender>\
         <properties><key>lang</key><value>en</value></properties>\
         </requestInfo><requestData><data>{data}</data></requestData></request></t:SendMessage>"
    ))
}

fn person_query(iin: &str) -> String {
    format!("<PersonQuery><iin>{iin}</iin></PersonQuery>")
}

/// The edge's log entries of one correlation id, read over its admin service.
async fn edge_log(harness: &Harness, correlation_id: &str) -> usize {
    let channel = Topology::channel(harness.stack.shep_grpc_address().unwrap()).unwrap();
    let mut admin = AdminServiceClient::new(channel);
    let request = egov_proto::QueryLogRequest { correlation_id: correlation_id.to_owned(), limit: 0 };
    admin.query_log(request).await.unwrap().into_inner().entries.len()
}

#[tokio::test]
async fn a_sync_look_up_is_answered_scss001_with_the_person_and_a_resend_gets_the_same_answer() {
    let harness = start(&[]).await;
    let request = sync_request("m-1", "GBDFL_PERSON_BY_IIN", "sc-ext", SC_PASSWORD, &person_query(IIN));
    let (status, answer) = soap(&harness, SYNC, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "code").as_deref(), Some("SCSS001"), "{answer}");
    assert_eq!(text_of(&answer, "correlationId").as_deref(), Some("m-1"), "{answer}");
    assert_eq!(text_of(&answer, "found").as_deref(), Some("true"), "{answer}");
    assert_eq!(text_of(&answer, "surname").as_deref(), Some("Серикбаев"), "{answer}");
    let session = text_of(&answer, "sessionId").unwrap();
    assert!(session.starts_with('{') && session.ends_with('}'), "{session}");
    // The edge logged the envelope it sent and the answer, under the client's chain (its message id).
    assert_eq!(edge_log(&harness, "m-1").await, 2);
    // The gateway routed it as sc-workstation's, signed by the edge.
    let routed = harness.gateway_log("m-1").await;
    assert!(!routed.is_empty(), "the gateway logged nothing of m-1");
    // The same bytes again: the same answer, nothing new stored, the gateway not called again.
    let (status, again) = soap(&harness, SYNC, &request).await;
    assert_eq!((status, &again), (200, &answer));
    assert_eq!(edge_log(&harness, "m-1").await, 2);
    assert_eq!(harness.gateway_log("m-1").await.len(), routed.len());
    // The same id with other bytes: refused.
    let other = sync_request("m-1", "GBDFL_PERSON_BY_IIN", "sc-ext", SC_PASSWORD, &person_query("900101400123"));
    let (status, fault) = soap(&harness, SYNC, &other).await;
    assert_eq!(status, 500, "{fault}");
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.duplicate_message_id"), "{fault}");
    assert_eq!(edge_log(&harness, "m-1").await, 2);
    // The WSDL names the edge's own address.
    let address = harness.stack.shep_address().unwrap().to_owned();
    let wsdl = get(&address, "/bip-sync-wss-gost/?wsdl").await;
    assert!(wsdl.contains(&format!("http://{address}/bip-sync-wss-gost/")), "{wsdl}");
    harness.stop().await;
}

async fn get(address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bad_input_is_refused_with_its_fault_and_code_and_nothing_is_stored() {
    let harness = start(&[]).await;
    let good = |id: &str| sync_request(id, "GBDFL_PERSON_BY_IIN", "sc-ext", SC_PASSWORD, &person_query(IIN));
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\
                <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>&lol2;</soapenv:Body></soapenv:Envelope>";
    let async_message = |message_type: &str, correlation: &str| {
        envelope(&format!(
            "<ns:sendMessage xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request><messageInfo>\
             {correlation}<serviceId>RSHEP_APPLICATION_SUBMIT</serviceId><messageType>{message_type}</messageType>\
             <messageDate>2026-06-15T10:00:00+05:00</messageDate>\
             <sender><senderId>sc-ext</senderId><password>{SC_PASSWORD}</password></sender></messageInfo>\
             <messageData><data><ApplicationDelivery><applicationId>X-1</applicationId></ApplicationDelivery></data></messageData>\
             </request></ns:sendMessage>"
        ))
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("not XML", "this is not XML <".to_owned(), "shep.not_xml"),
        ("a DTD bomb", bomb.to_owned(), "shep.dtd"),
        ("the wrong namespace", good("b-1").replace("SyncChannel/v10/Types", "SyncChannel/v9/Types"), "shep.wrong_namespace"),
        ("a missing element", good("b-2").replace("<serviceId>GBDFL_PERSON_BY_IIN</serviceId>", ""), "shep.missing_element"),
        ("a bad dateTime", good("b-3").replace("2026-06-15T10:00:00", "15.06.2026 10:00"), "shep.bad_datetime"),
        ("a bad messageType", async_message("QUESTION", ""), "shep.bad_enum"),
        ("a RESPONSE without correlationId", async_message("RESPONSE", ""), "shep.correlation_required"),
        (
            "a RESPONSE to a service that takes requests",
            async_message("RESPONSE", "<correlationId>no-such-chain</correlationId>"),
            "envelope.wrong_message_type",
        ),
        ("an unknown serviceId", good("b-4").replace("GBDFL_PERSON_BY_IIN", "NO_SUCH_SERVICE"), "shep.unknown_service"),
        ("an async service on the sync channel", good("b-5").replace("GBDFL_PERSON_BY_IIN", "RSHEP_APPLICATION_SUBMIT"), "shep.wrong_channel"),
        ("a wrong password", good("b-6").replace(SC_PASSWORD, "guess"), "shep.bad_password"),
        ("an unknown sender", good("b-7").replace(">sc-ext<", ">nobody<"), "shep.unknown_sender"),
        ("a payload of another type", good("b-8").replace("PersonQuery", "PowerOfAttorneyQuery"), "shep.payload_wrong_type"),
        ("an oversized body", good("b-9").replace(IIN, &"8".repeat(70 * 1024)), "shep.too_large"),
    ];
    for (what, body, code) in &cases {
        let path = if body.contains("AsyncChannel") { ASYNC } else { SYNC };
        let (status, fault) = soap(&harness, path, body).await;
        assert_eq!(status, 500, "{what}: {fault}");
        assert_eq!(text_of(&fault, "faultcode").as_deref(), Some("soap:Client"), "{what}: {fault}");
        assert_eq!(text_of(&fault, "errorCode").as_deref(), Some(*code), "{what}: {fault}");
        assert!(text_of(&fault, "errorMessage").is_some_and(|m| !m.is_empty()), "{what}: {fault}");
    }
    // A content type that is not XML.
    let (status, fault) = post(&harness, SYNC, "application/json", good("b-10").as_bytes()).await;
    assert_eq!((status, text_of(&fault, "errorCode").as_deref()), (500, Some("shep.bad_content_type")), "{fault}");
    // The errorMessage is in the request's language (lang=en), else Russian.
    let (_, fault) = soap(&harness, SYNC, &good("b-11").replace(SC_PASSWORD, "guess")).await;
    assert_eq!(text_of(&fault, "errorMessage").as_deref(), Some("The sender could not be authenticated"), "{fault}");
    let (_, fault) = soap(&harness, SYNC, &good("b-12").replace(SC_PASSWORD, "guess").replace(">en<", ">xx<")).await;
    assert_eq!(text_of(&fault, "errorMessage").as_deref(), Some("Ошибка аутентификации отправителя"), "{fault}");
    // Nothing stored: no entry in the edge's log, no message at the gateway.
    for id in ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6", "b-7", "b-8", "b-9", "b-10", "b-11", "b-12", "X-1", "no-such-chain"] {
        assert_eq!(edge_log(&harness, id).await, 0, "{id} left an entry in the edge's log");
        assert!(harness.gateway_log(id).await.is_empty(), "{id} reached the gateway");
    }
    harness.stop().await;
}
