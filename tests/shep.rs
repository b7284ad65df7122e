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
const ARM_PASSWORD: &str = "arm-secret";
const SYNC: &str = "/bip-sync-wss-gost/";
const ASYNC: &str = "/bip-async/";
/// A person of fixtures/individuals.json.
const IIN: &str = "850715300122";

/// A stack with the SHEP face on free ports, a sender `sc-ext` (the State
/// Corporation workstation, signing for operator-1), and `external` roles.
async fn start(external: &[(&str, External)]) -> Harness {
    start_notifying(external, None).await
}

/// [`start`], with `sc-ext`'s status notifications pushed to `status_endpoint`.
async fn start_notifying(external: &[(&str, External)], status_endpoint: Option<&str>) -> Harness {
    Harness::start_with(|config| {
        egov_shep::senders::add_sender(
            config.keys.path(),
            "sc-ext",
            ids::SC_WORKSTATION,
            Some(SC_PASSWORD),
            &["operator-1".to_owned()],
            status_endpoint,
        )
        .unwrap();
        egov_shep::senders::add_sender(
            config.keys.path(),
            "arm-ext",
            ids::REGIONAL,
            Some(ARM_PASSWORD),
            &["head-1".to_owned()],
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
    post_to(harness.stack.shep_address().unwrap(), path, content_type, body).await
}

/// POSTs `body` to the edge at `address`.
async fn post_to(address: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    try_post_to(address, path, content_type, body).await.unwrap_or_else(|| panic!("{address} cannot be reached"))
}

/// [`post_to`]; `None` when the edge cannot be reached (a stack killed meanwhile).
async fn try_post_to(address: &str, path: &str, content_type: &str, body: &[u8]) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nSOAPAction: \"\"\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    // The edge may answer before it has read an oversized body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Some((status, body))
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
    // The same request twice at once: one goes through, the other waits for its answer.
    let twice = sync_request("m-2", "GBDFL_PERSON_BY_IIN", "sc-ext", SC_PASSWORD, &person_query(IIN));
    let (first, second) = tokio::join!(soap(&harness, SYNC, &twice), soap(&harness, SYNC, &twice));
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first, second, "both get the one answer");
    assert_eq!(edge_log(&harness, "m-2").await, 2);
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
    let wsdl = get(&address, "/bip-async/?wsdl").await;
    assert!(wsdl.contains(&format!("http://{address}/bip-async/?xsd=")), "{wsdl}");
    let client = get(&address, "/bip-async/?wsdl=client").await;
    assert!(client.contains("changeMassageStatusNotification"), "{client}");
    let xsd = get(&address, "/bip-async/?xsd=common.xsd").await;
    assert!(xsd.contains("ErrorInfo"), "{xsd}");
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
        (
            "the wrong namespace",
            good("b-1").replace("SyncChannel/v10/Types", "SyncChannel/v9/Types"),
            "shep.wrong_namespace",
        ),
        (
            "a missing element",
            good("b-2").replace("<serviceId>GBDFL_PERSON_BY_IIN</serviceId>", ""),
            "shep.missing_element",
        ),
        ("a bad dateTime", good("b-3").replace("2026-06-15T10:00:00", "15.06.2026 10:00"), "shep.bad_datetime"),
        ("a bad messageType", async_message("QUESTION", ""), "shep.bad_enum"),
        ("a RESPONSE without correlationId", async_message("RESPONSE", ""), "shep.correlation_required"),
        (
            "a RESPONSE to a service that takes requests",
            async_message("RESPONSE", "<correlationId>no-such-chain</correlationId>"),
            "envelope.wrong_message_type",
        ),
        ("an unknown serviceId", good("b-4").replace("GBDFL_PERSON_BY_IIN", "NO_SUCH_SERVICE"), "shep.unknown_service"),
        (
            "an async service on the sync channel",
            good("b-5").replace("GBDFL_PERSON_BY_IIN", "RSHEP_APPLICATION_SUBMIT"),
            "shep.wrong_channel",
        ),
        ("a wrong password", good("b-6").replace(SC_PASSWORD, "guess"), "shep.bad_password"),
        ("an unknown sender", good("b-7").replace(">sc-ext<", ">nobody<"), "shep.unknown_sender"),
        (
            "a payload of another type",
            good("b-8").replace("PersonQuery", "PowerOfAttorneyQuery"),
            "shep.payload_wrong_type",
        ),
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
    for id in
        ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6", "b-7", "b-8", "b-9", "b-10", "b-11", "b-12", "X-1", "no-such-chain"]
    {
        assert_eq!(edge_log(&harness, id).await, 0, "{id} left an entry in the edge's log");
        assert!(harness.gateway_log(id).await.is_empty(), "{id} reached the gateway");
    }
    harness.stop().await;
}

/// An async `sendMessage` from `sc-ext`.
fn send_message(
    message_id: Option<&str>,
    message_type: &str,
    service: &str,
    correlation: Option<&str>,
    data: &str,
) -> String {
    let message_id = message_id.map(|id| format!("<messageId>{id}</messageId>")).unwrap_or_default();
    let correlation = correlation.map(|id| format!("<correlationId>{id}</correlationId>")).unwrap_or_default();
    envelope(&format!(
        "<ns:sendMessage xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request><messageInfo>\
         {message_id}{correlation}<serviceId>{service}</serviceId><messageType>{message_type}</messageType>\
         <messageDate>2026-06-15T10:00:00+05:00</messageDate>\
         <sender><senderId>sc-ext</senderId><password>{SC_PASSWORD}</password></sender></messageInfo>\
         <messageData><data>{data}</data></messageData></request></ns:sendMessage>"
    ))
}

fn get_messages(service: &str, message_id: Option<&str>) -> String {
    let message_id = message_id.map(|id| format!("<messageId>{id}</messageId>")).unwrap_or_default();
    envelope(&format!(
        "<ns:getMessages xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request>{message_id}\
         <requestDate>2026-06-15T10:00:00+05:00</requestDate><serviceId>{service}</serviceId>\
         <sender><senderId>sc-ext</senderId><password>{SC_PASSWORD}</password></sender><amount>0</amount>\
         </request></ns:getMessages>"
    ))
}

fn delivery_notification(message_id: &str, service: &str, status: &str, resend: &str) -> String {
    envelope(&format!(
        "<ns:sendDeliveryNotification xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request><notification>\
         <messageId>{message_id}</messageId><serviceId>{service}</serviceId>\
         <notificationDate>2026-06-15T10:01:00+05:00</notificationDate><deliveryStatus>\
         <receiveStatus>{status}</receiveStatus><statusDate>2026-06-15T10:01:00+05:00</statusDate>\
         <resendMessage>{resend}</resendMessage></deliveryStatus></notification>\
         <requestDate>2026-06-15T10:01:00+05:00</requestDate>\
         <sender><senderId>sc-ext</senderId><password>{SC_PASSWORD}</password></sender></request></ns:sendDeliveryNotification>"
    ))
}

fn message_status(message_id: &str) -> String {
    envelope(&format!(
        "<ns:getMessageStatus xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><request>\
         <messageId>{message_id}</messageId><requestDate>2026-06-15T10:05:00+05:00</requestDate>\
         <sender><senderId>sc-ext</senderId><password>{SC_PASSWORD}</password></sender></request></ns:getMessageStatus>"
    ))
}

/// The application an external State Corporation system sends: the
/// operator's submission carried with `signedBy`, for the edge to sign.
fn application(application_id: &str, signed_by: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let documents: String = ["application-form", "identity-document"]
        .iter()
        .map(|kind| {
            let content = format!("scan of {kind}");
            format!(
                "<documents><kind>{kind}</kind><title>{kind}</title><pages>1</pages><sha256>{}</sha256><content>{}</content></documents>",
                hex::encode(sha2::Sha256::digest(content.as_bytes())),
                base64::engine::general_purpose::STANDARD.encode(content.as_bytes())
            )
        })
        .collect();
    format!(
        "<ApplicationDelivery><applicationId>{application_id}</applicationId><serviceCode>svc</serviceCode>\
         <applicant><iin>{IIN}</iin><surname>Серикбаев</surname><name>Асылбек</name></applicant>\
         <operatorSubmission signedBy=\"{signed_by}\"><ApplicationSubmission><sessionId>external</sessionId>\
         <applicationId>{application_id}</applicationId>{documents}</ApplicationSubmission></operatorSubmission>\
         </ApplicationDelivery>"
    )
}

/// The `messages` of a getMessages answer: (messageId, correlationId, messageType, the payload's XML).
fn messages_of(answer: &str) -> Vec<(String, String, String, String)> {
    let document = roxmltree::Document::parse(answer).unwrap();
    document
        .descendants()
        .filter(|node| node.tag_name().name() == "messages")
        .map(|message| {
            let child = |name: &str| {
                message
                    .descendants()
                    .find(|node| node.tag_name().name() == name)
                    .and_then(|n| n.text())
                    .unwrap_or("")
                    .to_owned()
            };
            let data = message.descendants().find(|node| node.tag_name().name() == "data").unwrap();
            let payload = &answer[data.range()];
            (child("messageId"), child("correlationId"), child("messageType"), payload.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn an_application_from_an_external_state_corporation_is_routed_and_its_progress_and_result_polled_back() {
    use egov_cli::stack::Role;
    let harness = start(&[("workstation", External::Poll)]).await;
    assert!(!harness.stack.roles().contains(&Role::Workstation), "the external role is not run here");
    let app = "APP-SHEP-1";

    // Signing for a member the sender does not sign for is refused, and stores nothing.
    let foreign =
        send_message(Some("c-0"), "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application(app, "operator-2"));
    let (status, fault) = soap(&harness, ASYNC, &foreign).await;
    assert_eq!((status, text_of(&fault, "errorCode").as_deref()), (500, Some("shep.not_allowed_to_sign")), "{fault}");
    assert_eq!(edge_log(&harness, app).await, 0);

    // Process 6 from outside: acknowledged with SHEP's message id and the chain, the application's id.
    let request =
        send_message(Some("c-1"), "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application(app, "operator-1"));
    let (status, answer) = soap(&harness, ASYNC, &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "correlationId").as_deref(), Some(app), "{answer}");
    let message_id = text_of(&answer, "messageId").unwrap();
    assert_ne!(message_id, "c-1", "the message id is SHEP's own");
    let (_, again) = soap(&harness, ASYNC, &request).await;
    assert_eq!(again, answer, "a resend is answered as before");
    // The same application once more, under another id: refused, its chain exists.
    let twice = send_message(Some("c-2"), "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application(app, "operator-1"));
    let (_, fault) = soap(&harness, ASYNC, &twice).await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.chain_exists"), "{fault}");

    // A NOTIFICATION on a chain that never passed the gateway is refused (an ARM's sender).
    let progress = "<ApplicationProgress><applicationId>no-such-chain</applicationId></ApplicationProgress>";
    let stray = send_message(None, "NOTIFICATION", "SC_APPLICATION_PROGRESS", Some("no-such-chain"), progress)
        .replace(">sc-ext<", ">arm-ext<")
        .replace(SC_PASSWORD, ARM_PASSWORD);
    let (_, fault) = soap(&harness, ASYNC, &stray).await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.unknown_chain"), "{fault}");
    // The State Corporation's sender may not send the ARM's progress (the gateway's rule, by the table of services).
    let (_, fault) =
        soap(&harness, ASYNC, &stray.replace(">arm-ext<", ">sc-ext<").replace(ARM_PASSWORD, SC_PASSWORD)).await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("access.denied"), "{fault}");

    // The ARM registers it (process 7) and reports back: the report waits for getMessages.
    let (first, registration_id) = common::eventually("the ARM's first report", async || {
        let (_, answer) = soap(&harness, ASYNC, &get_messages("SC_APPLICATION_PROGRESS", None)).await;
        let first = messages_of(&answer).into_iter().next()?;
        let registration_id = text_of(&first.3, "registrationId")?;
        Some((first, registration_id))
    })
    .await;
    assert_eq!(first.1, app, "the report is on the application's chain");
    assert_eq!(first.2, "NOTIFICATION");
    // Fetched, not acknowledged: offered again.
    let (_, offered) = soap(&harness, ASYNC, &get_messages("SC_APPLICATION_PROGRESS", Some(&first.0))).await;
    assert_eq!(messages_of(&offered).first().map(|m| m.0.clone()), Some(first.0.clone()), "{offered}");
    // Not accepted, to be sent again: still offered.
    let nack = delivery_notification(&first.0, "SC_APPLICATION_PROGRESS", "MESSAGE_NOT_ACCTEPTED", "RESEND");
    let (status, _) = soap(&harness, ASYNC, &nack).await;
    assert_eq!(status, 200);
    let (_, offered) = soap(&harness, ASYNC, &get_messages("SC_APPLICATION_PROGRESS", Some(&first.0))).await;
    assert_eq!(messages_of(&offered).len(), 1, "{offered}");
    // Another sender's message cannot be acknowledged by this one.
    let (_, fault) = soap(
        &harness,
        ASYNC,
        &delivery_notification(&message_id_of_nothing(), "SC_APPLICATION_PROGRESS", "MESSAGE_ACCEPTED", "NOT_RESEND"),
    )
    .await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.unknown_message"), "{fault}");
    // The application's state: delivered to the ARM.
    let (_, state) = soap(&harness, ASYNC, &message_status(&format!("{{{}}}", message_id.to_uppercase()))).await;
    assert_eq!(text_of(&state, "messageState").as_deref(), Some("DELIVERED"), "{state}");

    // The provider's staff do their steps; the result comes back as the chain's RESPONSE.
    staff_steps(&harness.staff(), &harness.staff_keys(), &harness.definition, &registration_id).await;
    // Each report is acknowledged as it is read, until the result.
    let result = common::eventually("the signed result", async || {
        let (_, answer) = soap(&harness, ASYNC, &get_messages("SC_APPLICATION_PROGRESS", None)).await;
        let mut result = None;
        for message in messages_of(&answer) {
            let ack = delivery_notification(&message.0, "SC_APPLICATION_PROGRESS", "MESSAGE_ACCEPTED", "NOT_RESEND");
            let (status, acked) = soap(&harness, ASYNC, &ack).await;
            assert_eq!(status, 200, "{acked}");
            assert!(text_of(&acked, "notificationId").is_some_and(|id| !id.is_empty()), "{acked}");
            if message.2 == "RESPONSE" {
                result = Some(message);
            }
        }
        result
    })
    .await;
    assert_eq!(result.1, app);
    // The head's signed result travels with its signer and its envelope, for the recipient to check.
    assert!(result.3.contains("signedBy=\"head-1\""), "{}", result.3);
    assert!(text_of(&result.3, "envelope").is_some_and(|envelope| envelope.len() > 100), "{}", result.3);
    assert_eq!(text_of(&result.3, "outcome").as_deref(), Some("permitted"), "{}", result.3);
    // Acknowledged: no longer offered.
    let (_, left) = soap(&harness, ASYNC, &get_messages("SC_APPLICATION_PROGRESS", None)).await;
    assert!(messages_of(&left).is_empty(), "{left}");
    // The edge logged the SOAP request beside the envelope it became.
    let channel = Topology::channel(harness.stack.shep_grpc_address().unwrap()).unwrap();
    let entries = AdminServiceClient::new(channel)
        .query_log(egov_proto::QueryLogRequest { correlation_id: app.to_owned(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(entries.iter().any(|entry| entry.direction == "sent" && entry.note.contains("RSHEP_APPLICATION_SUBMIT")));
    // Each acknowledged report is logged as delivered with the getMessages answer that offered it.
    let delivered: Vec<_> = entries.iter().filter(|entry| entry.direction == "delivered").collect();
    assert!(
        delivered.iter().any(|entry| entry.note.contains("getMessagesResponse") && entry.note.contains(&result.0)),
        "the result as the poller received it: {delivered:?}"
    );
    assert!(delivered.iter().any(|entry| entry.note.contains(&first.0)), "the first report: {delivered:?}");
    assert!(delivered.iter().all(|entry| entry.note.contains("getMessagesResponse")), "{delivered:?}");

    // The console: the workstation egov would ask does not know the application, so its page
    // offers the messages by the application's id, the edge's log with the SOAP beside each envelope.
    let (console_address, stop_console, console) = console(&harness).await;
    let page = get(&console_address, &format!("/applications/{app}")).await;
    assert!(page.contains(&format!("href=\"/shep/{app}\"")), "no offer of the SHEP messages: {page}");
    let form = get(&console_address, "/shep").await;
    assert!(form.contains("action=\"/shep\"") && form.contains("name=\"id\""), "{form}");
    let found = get(&console_address, &format!("/shep?id={app}")).await;
    assert!(found.contains(&format!("/shep/{app}")), "the form leads to the application's messages: {found}");
    let page = get(&console_address, &format!("/shep/{app}")).await;
    let shep = page.split("data-participant=\"shep\"").nth(1).unwrap_or_else(|| panic!("no shep log: {page}"));
    assert!(shep.contains("<summary>SOAP</summary>"), "{shep}");
    assert!(shep.contains("&lt;serviceId&gt;RSHEP_APPLICATION_SUBMIT"), "the SOAP request sent: {shep}");
    assert!(shep.contains("signedBy=&quot;head-1&quot;"), "the result as received: {shep}");
    let gateway = page.split("data-participant=\"gateway\"").nth(1).unwrap_or_else(|| panic!("{page}"));
    assert!(gateway.contains("rshep.application.submit.v1"), "the gateway's log of the chain: {gateway}");
    let _ = stop_console.send(());
    let _ = console.await;
    harness.stop().await;
}

/// The console for `harness`, with the SHEP edge's admin service: its address, its stop and its task.
async fn console(
    harness: &Harness,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let config = egov_console::ConsoleConfig {
        topology: harness.topology().clone(),
        keys: harness.keys.clone(),
        tls: None,
        definition: std::sync::Arc::clone(&harness.definition),
        shep: harness.stack.shep_grpc_address().map(str::to_owned),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(egov_console::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    (address, stop, task)
}

/// A PUSH recipient in the test: an HTTP server that keeps each request's
/// body and answers the n-th with `answers[n]` (the last one after them).
struct Recipient {
    address: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn recipient(answers: Vec<(u16, String)>) -> Recipient {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&received);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut bytes = Vec::new();
            let mut buffer = [0u8; 8192];
            // The head, then as many bytes as Content-Length says.
            let body = loop {
                let Ok(read) = stream.read(&mut buffer).await else { break None };
                if read == 0 {
                    break None;
                }
                bytes.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break Some(body.to_owned());
                }
            };
            let Some(body) = body else { continue };
            let n = {
                let mut kept = kept.lock().unwrap();
                kept.push(body);
                kept.len() - 1
            };
            let (status, answer) = answers[n.min(answers.len() - 1)].clone();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    Recipient { address, received, task }
}

fn accepted(message_id: &str) -> String {
    envelope(&format!(
        "<ns:sendMessageResponse xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\"><response>\
         <messageId>{message_id}</messageId><correlationId>x</correlationId>\
         <responseDate>2026-06-15T10:00:00+05:00</responseDate></response></ns:sendMessageResponse>"
    ))
}

fn push_fault(code: &str) -> String {
    envelope(&format!(
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>{code}</faultstring><detail>\
         <ns:sendMessageFault1_sendMessageFault xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types\">\
         <errorCode>{code}</errorCode><errorMessage>refused</errorMessage>\
         <errorDate>2026-06-15T10:00:00+05:00</errorDate></ns:sendMessageFault1_sendMessageFault></detail></soapenv:Fault>"
    ))
}

#[tokio::test]
async fn an_external_arm_receives_the_application_by_push_and_reports_back_on_the_chain() {
    use egov_cli::stack::Role;
    // The recipient's first answer is its internal error (tried again), the second takes it.
    let arm = recipient(vec![(500, push_fault("SCE909")), (200, accepted("arm-1"))]).await;
    let url = format!("http://{}/arm/bip-async", arm.address);
    let harness = start(&[("regional", External::Push(url))]).await;
    assert!(!harness.stack.roles().contains(&Role::Regional));
    let app = "APP-SHEP-PUSH";
    let operator = harness.operator().await;
    operator.open_form(app, &harness.definition.service.code, IIN, None).await.unwrap();
    let documents =
        common::documents(&["application-form", "identity-document"]).iter().map(|d| d.to_proto()).collect();
    operator.submit(app, documents).await.unwrap();

    // Pushed as SHEP's sendMessage, once more after the recipient's internal error.
    let pushed = common::eventually("the push to the ARM", async || {
        let received = arm.received.lock().unwrap().clone();
        (received.len() >= 2).then_some(received)
    })
    .await;
    assert_eq!(text_of(&pushed[0], "messageId"), text_of(&pushed[1], "messageId"), "the same message is pushed again");
    let push = &pushed[1];
    assert_eq!(text_of(push, "serviceId").as_deref(), Some("RSHEP_APPLICATION_SUBMIT"), "{push}");
    assert_eq!(text_of(push, "messageType").as_deref(), Some("REQUEST"), "{push}");
    assert_eq!(text_of(push, "correlationId").as_deref(), Some(app), "{push}");
    // The operator's submission comes with its signer and envelope: the ARM checks the EDS itself.
    assert!(push.contains("signedBy=\"operator-1\""), "{push}");
    let envelope_text = text_of(push, "envelope").unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(envelope_text.trim()).unwrap();
    let carried = <egov_proto::Envelope as prost::Message>::decode(bytes.as_slice()).unwrap();
    let checks = egov_envelope::Checks { freshness_window_ms: None, ..egov_envelope::Checks::default() };
    let verified =
        egov_envelope::open(&carried, &harness.trust, egov_runtime::Clock::now_ms(&egov_runtime::SystemClock), &checks)
            .unwrap();
    assert_eq!(verified.header.sender_id, "operator-1");
    // Delivered: nothing left in the edge's outbox.
    let channel = Topology::channel(harness.stack.shep_grpc_address().unwrap()).unwrap();
    let mut admin = AdminServiceClient::new(channel);
    common::eventually("the edge's outbox empty", async || {
        let items = admin.list_outbox(egov_proto::ListOutboxRequest::default()).await.ok()?.into_inner().entries;
        items.is_empty().then_some(())
    })
    .await;

    // The ARM reports back on the chain through the edge, as rshep-astana.
    let progress = format!(
        "<ApplicationProgress><applicationId>{app}</applicationId><registrationId>EXT-7</registrationId></ApplicationProgress>"
    );
    let report = send_message(None, "NOTIFICATION", "SC_APPLICATION_PROGRESS", Some(app), &progress)
        .replace(">sc-ext<", ">arm-ext<")
        .replace(SC_PASSWORD, ARM_PASSWORD);
    let (status, answer) = soap(&harness, ASYNC, &report).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "correlationId").as_deref(), Some(app), "{answer}");
    let application = common::eventually("the report at the workstation", async || {
        let application = operator.application(app).await.ok()?;
        (application.registration_id == "EXT-7").then_some(application)
    })
    .await;
    assert_eq!(application.application_id, app);
    // The console shows the edge's log beside the participants': the ARM's SOAP report beside its envelope.
    let (console_address, stop_console, console) = console(&harness).await;
    let page = get(&console_address, &format!("/applications/{app}")).await;
    let shep = page.split("data-participant=\"shep\"").nth(1).unwrap_or_else(|| panic!("no shep log: {page}"));
    assert!(shep.contains("<summary>SOAP</summary>"), "{shep}");
    assert!(shep.contains("SC_APPLICATION_PROGRESS") && shep.contains("&lt;registrationId&gt;EXT-7"), "{shep}");
    // And the application as the edge pushed it to the ARM.
    assert!(shep.contains("delivered") && shep.contains("&lt;serviceId&gt;RSHEP_APPLICATION_SUBMIT"), "{shep}");
    let _ = stop_console.send(());
    let _ = console.await;
    arm.task.abort();
    harness.stop().await;
}

#[tokio::test]
async fn a_push_refused_by_the_recipient_is_not_delivered_and_parked_as_an_incident() {
    let arm = recipient(vec![(500, push_fault("SCE001"))]).await;
    let url = format!("http://{}/arm", arm.address);
    let harness = start(&[("regional", External::Push(url))]).await;
    let app = "APP-SHEP-REFUSED";
    let operator = harness.operator().await;
    operator.open_form(app, &harness.definition.service.code, IIN, None).await.unwrap();
    let documents =
        common::documents(&["application-form", "identity-document"]).iter().map(|d| d.to_proto()).collect();
    operator.submit(app, documents).await.unwrap();
    let channel = Topology::channel(harness.stack.shep_grpc_address().unwrap()).unwrap();
    let mut admin = AdminServiceClient::new(channel);
    let parked = common::eventually("the incident", async || {
        let items = admin.list_outbox(egov_proto::ListOutboxRequest::default()).await.ok()?.into_inner().entries;
        items.into_iter().find(|item| item.last_error.contains("SCE001"))
    })
    .await;
    assert!(parked.target.starts_with("push/rshep-astana/"), "{parked:?}");
    assert_eq!(arm.received.lock().unwrap().len(), 1, "a refusal is not tried again");
    arm.task.abort();
    harness.stop().await;
}

fn status_accepted() -> String {
    envelope(
        "<ns:changeMassageStatusNotificationResponse xmlns:ns=\"http://bip.bee.kz/AsyncChannel/v10/Types/Client\">\
         <response><responseDate>2026-06-15T10:00:00+05:00</responseDate><sessionId>{s}</sessionId></response>\
         </ns:changeMassageStatusNotificationResponse>",
    )
}

#[tokio::test]
async fn an_external_sender_is_told_when_the_gateway_delivered_its_application_to_egov_s_arm() {
    let sc = recipient(vec![(200, status_accepted())]).await;
    let status_url = format!("http://{}/status", sc.address);
    let harness = start_notifying(&[("workstation", External::Poll)], Some(&status_url)).await;
    let request =
        send_message(None, "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application("APP-SHEP-TOLD", "operator-1"));
    let (status, answer) = soap(&harness, ASYNC, &request).await;
    assert_eq!(status, 200, "{answer}");
    let message_id = text_of(&answer, "messageId").unwrap();
    let told =
        common::eventually("the status notification", async || sc.received.lock().unwrap().first().cloned()).await;
    assert_eq!(text_of(&told, "messageId").as_deref(), Some(message_id.as_str()), "{told}");
    assert_eq!(text_of(&told, "messageState").as_deref(), Some("DELIVERED"), "{told}");
    // Told once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sc.received.lock().unwrap().len(), 1);
    sc.task.abort();
    harness.stop().await;
}

#[tokio::test]
async fn with_both_sides_external_the_sender_is_told_of_the_delivery_by_push() {
    let arm = recipient(vec![(200, accepted("arm-1"))]).await;
    let sc = recipient(vec![(200, status_accepted())]).await;
    let arm_url = format!("http://{}/arm", arm.address);
    let status_url = format!("http://{}/status", sc.address);
    let harness =
        start_notifying(&[("workstation", External::Poll), ("regional", External::Push(arm_url))], Some(&status_url))
            .await;
    let app = "APP-SHEP-BOTH";
    let request = send_message(None, "REQUEST", "RSHEP_APPLICATION_SUBMIT", None, &application(app, "operator-1"));
    let (status, answer) = soap(&harness, ASYNC, &request).await;
    assert_eq!(status, 200, "{answer}");
    let message_id = text_of(&answer, "messageId").unwrap();
    // The external ARM gets it through the gateway and takes it ...
    common::eventually("the push to the ARM", async || (!arm.received.lock().unwrap().is_empty()).then_some(())).await;
    // ... and the State Corporation's system is told: DELIVERED.
    let told =
        common::eventually("the status notification", async || sc.received.lock().unwrap().first().cloned()).await;
    assert!(told.contains("changeMassageStatusNotification"), "{told}");
    assert_eq!(text_of(&told, "messageId").as_deref(), Some(message_id.as_str()), "{told}");
    assert_eq!(text_of(&told, "messageState").as_deref(), Some("DELIVERED"), "{told}");
    let (_, state) = soap(&harness, ASYNC, &message_status(&message_id)).await;
    assert_eq!(text_of(&state, "messageState").as_deref(), Some("DELIVERED"), "{state}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sc.received.lock().unwrap().len(), 1, "told once");
    arm.task.abort();
    sc.task.abort();
    harness.stop().await;
}

fn message_id_of_nothing() -> String {
    "{00000000-0000-0000-0000-000000000000}".to_owned()
}

#[tokio::test]
async fn a_jaxws_request_signed_with_wsse_is_accepted_and_with_signed_sync_required_an_unsigned_one_is_refused() {
    let harness = Harness::start_with(|config| {
        egov_shep::senders::add_sender(
            config.keys.path(),
            "sc-workstation",
            ids::SC_WORKSTATION,
            Some("zxc123+-"),
            &[],
            None,
        )
        .unwrap();
        config.shep = Some(EdgeSettings {
            address: "127.0.0.1:0".to_owned(),
            grpc_address: "127.0.0.1:0".to_owned(),
            require_signed_sync: true,
            ..EdgeSettings::default()
        });
    })
    .await;
    let fixtures = common::fixtures_dir().join("shep");
    // The fixture's query, with the two IINs the notarial registry needs.
    let signed = std::fs::read_to_string(fixtures.join("jaxws-sync-signed.xml")).unwrap().replace(
        "&lt;/number&gt;",
        &format!(
            "&lt;/number&gt;&lt;principalIin&gt;{IIN}&lt;/principalIin&gt;&lt;attorneyIin&gt;{IIN}&lt;/attorneyIin&gt;"
        ),
    );
    let (status, answer) = soap(&harness, SYNC, &signed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "code").as_deref(), Some("SCSS001"), "{answer}");
    // Sent as one escaped string, answered so: the notarial registry's verdict inside.
    assert!(answer.contains("&lt;PowerOfAttorneyAnswer"), "{answer}");
    // The same request without its header: refused, unsigned.
    let start = signed.find("<SOAP-ENV:Header>").unwrap();
    let end = signed.find("</SOAP-ENV:Header>").unwrap() + "</SOAP-ENV:Header>".len();
    let unsigned = format!("{}{}", &signed[..start], &signed[end..]).replace("bd1f6a0e", "cd1f6a0e");
    let (status, fault) = soap(&harness, SYNC, &unsigned).await;
    assert_eq!((status, text_of(&fault, "errorCode").as_deref()), (500, Some("shep.unsigned")), "{fault}");
    // A signature over something other than the Body: refused.
    let elsewhere = signed.replace("URI=\"#id-0a1b", "URI=\"#other-0a1b").replace("bd1f6a0e", "dd1f6a0e");
    let (_, fault) = soap(&harness, SYNC, &elsewhere).await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.bad_security"), "{fault}");
    harness.stop().await;
}

#[tokio::test]
async fn egov_serve_with_an_external_state_corporation_its_senders_from_keys_init_and_the_audit_of_the_edge() {
    let temp = tempfile::tempdir().unwrap();
    let egov = env!("CARGO_BIN_EXE_egov");
    let keys = temp.path().join("keys");
    let made = std::process::Command::new(egov).args(["keys", "init", "--dir"]).arg(&keys).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let password = std::fs::read_to_string(keys.join("secrets/shep-sc-workstation.password")).unwrap();
    // A sender of one's own, for the look-ups.
    let added = std::process::Command::new(egov)
        .args([
            "shep",
            "sender",
            "add",
            "--id",
            "tester",
            "--member",
            "sc-workstation",
            "--password",
            "t-pass",
            "--dir",
        ])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let unknown = std::process::Command::new(egov)
        .args(["shep", "sender", "add", "--id", "ghost", "--member", "nobody", "--dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(!unknown.status.success(), "a sender must be a member of the trust registry");
    let mut command = std::process::Command::new(egov);
    command
        .args(["serve", "--any-port", "--console", "off", "--external", "workstation=poll", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(&keys)
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(std::process::Stdio::null());
    let served = common::Served::start(command);
    assert!(served.said.iter().all(|line| !line.starts_with("listening workstation")), "{:?}", served.said);
    let address = served
        .said
        .iter()
        .find_map(|line| line.strip_prefix("listening shep http://"))
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("{:?}", served.said));
    let as_workstation = |xml: String| xml.replace(">sc-ext<", ">sc-workstation<").replace(SC_PASSWORD, &password);
    let app = "APP-SHEP-SERVED";
    let request = as_workstation(send_message(
        None,
        "REQUEST",
        "RSHEP_APPLICATION_SUBMIT",
        None,
        &application(app, "operator-1"),
    ));
    let (status, answer) = post_to(&address, ASYNC, "text/xml", request.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let report = common::eventually("the ARM's first report", async || {
        let poll = as_workstation(get_messages("SC_APPLICATION_PROGRESS", None));
        let (_, answer) = post_to(&address, ASYNC, "text/xml", poll.as_bytes()).await;
        messages_of(&answer).into_iter().next()
    })
    .await;
    let ack =
        as_workstation(delivery_notification(&report.0, "SC_APPLICATION_PROGRESS", "MESSAGE_ACCEPTED", "NOT_RESEND"));
    let (status, acked) = post_to(&address, ASYNC, "text/xml", ack.as_bytes()).await;
    assert_eq!(status, 200, "{acked}");
    // `egov shep send` posts a SOAP file and prints the answer.
    let file = temp.path().join("lookup.xml");
    std::fs::write(&file, sync_request("t-1", "GBDFL_PERSON_BY_IIN", "tester", "t-pass", &person_query(IIN))).unwrap();
    let sent = std::process::Command::new(egov)
        .args(["shep", "send"])
        .arg(&file)
        .args(["--to", &format!("http://{address}/bip-sync-wss-gost/")])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "{printed}");
    assert_eq!(text_of(printed.trim(), "code").as_deref(), Some("SCSS001"), "{printed}");
    let (stopped, _) = served.terminate();
    assert!(stopped);
    // The audit checks the edge's log with the others': every signature, and the SOAP messages beside them.
    let audit = std::process::Command::new(egov)
        .args(["audit", "verify", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{said}{}", String::from_utf8_lossy(&audit.stderr));
    let shep = said.lines().find(|line| line.starts_with("shep: ")).unwrap_or_else(|| panic!("{said}"));
    assert!(shep.contains("Merkle tree intact") && shep.contains("with their SOAP message"), "{said}");
}

/// The provider's staff do every step of `registration_id`, approving, each signed by its member.
async fn staff_steps(
    staff: &egov_client::StaffClient,
    keys: &std::collections::HashMap<String, egov_envelope::Signer>,
    definition: &egov_regulation::Definition,
    registration_id: &str,
) {
    let mut registration = staff.registration(registration_id).await.unwrap();
    while !registration.next_actor.is_empty() {
        let step_id = registration.application.as_ref().map(|a| a.current_step.clone()).unwrap_or_default();
        let step = definition.step(&step_id).unwrap().clone();
        let signer = &keys[&registration.next_actor];
        let handing_over = step.handed_over_by.as_deref() == Some(registration.next_actor.as_str());
        registration = if step.effect == Some(egov_regulation::Effect::SignResult) && !handing_over {
            staff.sign(signer, &registration).await.unwrap()
        } else if step.kind == egov_regulation::StepKind::Condition {
            staff.act(signer, &registration, &step_id, egov_proto::Decision::Yes, "").await.unwrap()
        } else {
            staff.act(signer, &registration, &step_id, egov_proto::Decision::Unspecified, "").await.unwrap()
        };
    }
}

/// Runs `tests/python/shep_zeep_client.py` with `args`: what it printed.
fn zeep_client(args: Vec<String>) -> String {
    let probe = std::process::Command::new("python3").args(["-c", "import zeep"]).output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "python3 cannot import zeep ({}); install it with `python3 -m pip install -r tests/python/requirements.txt`",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("python3 cannot be run ({error}); the zeep client test needs it"),
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/shep_zeep_client.py");
    let output = std::process::Command::new("python3").arg(script).args(args).output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{printed}{}", String::from_utf8_lossy(&output.stderr));
    printed
}

#[tokio::test]
async fn a_client_zeep_generates_from_the_served_wsdls_runs_an_application_through_egov() {
    let temp = tempfile::tempdir().unwrap();
    let egov = env!("CARGO_BIN_EXE_egov");
    let keys = temp.path().join("keys");
    let made = std::process::Command::new(egov).args(["keys", "init", "--dir"]).arg(&keys).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let password = std::fs::read_to_string(keys.join("secrets/shep-sc-workstation.password")).unwrap();
    let mut command = std::process::Command::new(egov);
    command
        .args(["serve", "--any-port", "--console", "off", "--external", "workstation=poll", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(&keys)
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(std::process::Stdio::null());
    let served = common::Served::start(command);
    let said = |prefix: &str| {
        served.said.iter().find_map(|line| line.strip_prefix(prefix)).map(|rest| rest.trim_end_matches('/').to_owned())
    };
    let base = format!("http://{}", said("listening shep http://").unwrap());
    let regional = said("listening regional ").unwrap();
    let app = "APP-SHEP-ZEEP";
    let args = ["submit", &base, "sc-workstation", &password, app, IIN].map(str::to_owned).to_vec();
    let printed = tokio::task::spawn_blocking(move || zeep_client(args)).await.unwrap();
    assert!(printed.contains("looked up Серикбаев"), "{printed}");
    let registration = printed
        .lines()
        .find_map(|line| line.strip_prefix("registration "))
        .unwrap_or_else(|| panic!("{printed}"))
        .to_owned();
    // The provider's staff, at the ARM egov runs.
    let key_dir = egov_runtime::KeyDir::new(&keys);
    let trust = key_dir.trust().unwrap();
    let staff_keys = [
        ("provider-office", "office-1"),
        ("provider-specialist", "specialist-1"),
        ("provider-executor", "executor-1"),
        ("provider-head", "head-1"),
    ]
    .into_iter()
    .map(|(role, member)| (role.to_owned(), key_dir.signer_in(&trust, member).unwrap()))
    .collect();
    let staff = egov_client::StaffClient::new(
        Topology::channel(&regional).unwrap(),
        std::sync::Arc::new(egov_runtime::SystemClock),
    );
    let definition = egov_regulation::Definition::default_definition().clone();
    staff_steps(&staff, &staff_keys, &definition, &registration).await;
    let args = ["result", &base, "sc-workstation", &password, app].map(str::to_owned).to_vec();
    let printed = tokio::task::spawn_blocking(move || zeep_client(args)).await.unwrap();
    assert!(printed.contains("result permitted head-1"), "{printed}");
    let (stopped, _) = served.terminate();
    assert!(stopped);
}

/// `egov serve` with every role but the workstation, served by an external
/// system that polls, on `temp`'s data and keys: the child and the edge's address.
fn serve_external_workstation(temp: &std::path::Path) -> (common::Served, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_egov"));
    command
        .args(["serve", "--any-port", "--console", "off", "--external", "workstation=poll", "--data"])
        .arg(temp.join("data"))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .stderr(std::process::Stdio::null());
    let served = common::Served::start(command);
    let address = served
        .said
        .iter()
        .find_map(|line| line.strip_prefix("listening shep http://"))
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("{:?}", served.said));
    (served, address)
}

fn sigkill(mut served: common::Served) {
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[tokio::test]
async fn sigkilled_while_soap_senders_and_a_poller_run_nothing_acknowledged_is_lost_or_offered_again() {
    const APPLICATIONS: usize = 12;
    let temp = tempfile::tempdir().unwrap();
    let egov = env!("CARGO_BIN_EXE_egov");
    let made = std::process::Command::new(egov)
        .args(["keys", "init", "--dir"])
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    assert!(made.status.success());
    let password = std::fs::read_to_string(temp.path().join("keys/secrets/shep-sc-workstation.password")).unwrap();
    let as_workstation = |xml: String| xml.replace(">sc-ext<", ">sc-workstation<").replace(SC_PASSWORD, &password);
    // Each application with the sender's own message id: a resend is the same bytes.
    let requests: Vec<String> = (0..APPLICATIONS)
        .map(|i| {
            let app = format!("APP-KILL-{i}");
            as_workstation(send_message(
                Some(&format!("k-{i}")),
                "REQUEST",
                "RSHEP_APPLICATION_SUBMIT",
                None,
                &application(&app, "operator-1"),
            ))
        })
        .collect();

    // Four senders at once; the process is killed as soon as one message is acknowledged.
    let (served, address) = serve_external_workstation(temp.path());
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut senders = Vec::new();
    for lane in 0..4 {
        let (address, requests, first_tx) = (address.clone(), requests.clone(), first_tx.clone());
        senders.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in (lane..APPLICATIONS).step_by(4) {
                // Killed: what is on its way, and what follows, is not acknowledged.
                let Some((status, answer)) = try_post_to(&address, ASYNC, "text/xml", requests[i].as_bytes()).await
                else {
                    break;
                };
                if status == 200 {
                    acknowledged.push((i, text_of(&answer, "messageId").unwrap()));
                    let _ = first_tx.send(i);
                }
            }
            acknowledged
        }));
    }
    drop(first_tx);
    first_rx.recv().await.expect("no application was acknowledged");
    sigkill(served);
    let mut acknowledged = std::collections::HashMap::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(!acknowledged.is_empty());

    // Restarted, every request is sent again: one acknowledged before is answered as before.
    let (served, address) = serve_external_workstation(temp.path());
    let mut message_ids = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let (status, answer) = post_to(&address, ASYNC, "text/xml", request.as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
        let message_id = text_of(&answer, "messageId").unwrap();
        if let Some(before) = acknowledged.get(&i) {
            assert_eq!(&message_id, before, "application {i}'s answer changed after the crash");
        }
        message_ids.push(message_id);
    }

    // A poller acknowledges each report; the process is killed once more while it does.
    let poll = as_workstation(get_messages("SC_APPLICATION_PROGRESS", None));
    let mut taken = std::collections::HashSet::new();
    let mut chains = std::collections::HashSet::new();
    let (mut served, mut address, mut killed_again) = (served, address, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while chains.len() < APPLICATIONS {
        assert!(std::time::Instant::now() < deadline, "reports of only {} applications", chains.len());
        let (status, answer) = post_to(&address, ASYNC, "text/xml", poll.as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
        for (message_id, chain, _, _) in messages_of(&answer) {
            assert!(!taken.contains(&message_id), "report {message_id} offered again after it was acknowledged");
            let ack = as_workstation(delivery_notification(
                &message_id,
                "SC_APPLICATION_PROGRESS",
                "MESSAGE_ACCEPTED",
                "NOT_RESEND",
            ));
            let (status, acked) = post_to(&address, ASYNC, "text/xml", ack.as_bytes()).await;
            assert_eq!(status, 200, "{acked}");
            taken.insert(message_id);
            chains.insert(chain);
        }
        if !taken.is_empty() && !killed_again {
            killed_again = true;
            sigkill(served);
            (served, address) = serve_external_workstation(temp.path());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Nothing acknowledged is offered again.
    let (_, answer) = post_to(&address, ASYNC, "text/xml", poll.as_bytes()).await;
    for (message_id, ..) in messages_of(&answer) {
        assert!(!taken.contains(&message_id), "report {message_id} offered again after it was acknowledged");
    }
    // Every application reached the ARM.
    for message_id in &message_ids {
        let state = as_workstation(message_status(message_id));
        let (_, answer) = post_to(&address, ASYNC, "text/xml", state.as_bytes()).await;
        assert_eq!(text_of(&answer, "messageState").as_deref(), Some("DELIVERED"), "{answer}");
    }
    let (stopped, _) = served.terminate();
    assert!(stopped);
    let audit = std::process::Command::new(egov)
        .args(["audit", "verify", "--data"])
        .arg(temp.path().join("data"))
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stdout));
}

#[tokio::test]
async fn the_shep_services_come_from_a_file_when_one_is_given() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("services.toml");
    std::fs::write(&file, "[[service]]\nshep_id = \"GBD_FL_LOOKUP\"\nservice = \"gbdfl.person.lookup.v1\"\n").unwrap();
    let harness = Harness::start_with(|config| {
        egov_shep::senders::add_sender(config.keys.path(), "sc-ext", ids::SC_WORKSTATION, Some(SC_PASSWORD), &[], None)
            .unwrap();
        config.shep = Some(EdgeSettings {
            address: "127.0.0.1:0".to_owned(),
            grpc_address: "127.0.0.1:0".to_owned(),
            services_file: Some(file.clone()),
            ..EdgeSettings::default()
        });
    })
    .await;
    let renamed = sync_request("f-1", "GBD_FL_LOOKUP", "sc-ext", SC_PASSWORD, &person_query(IIN));
    let (status, answer) = soap(&harness, SYNC, &renamed).await;
    assert_eq!((status, text_of(&answer, "code").as_deref()), (200, Some("SCSS001")), "{answer}");
    let shipped = sync_request("f-2", "GBDFL_PERSON_BY_IIN", "sc-ext", SC_PASSWORD, &person_query(IIN));
    let (_, fault) = soap(&harness, SYNC, &shipped).await;
    assert_eq!(text_of(&fault, "errorCode").as_deref(), Some("shep.unknown_service"), "{fault}");
    harness.stop().await;
    // A file naming a service the exchange does not have stops the start.
    std::fs::write(&file, "[[service]]\nshep_id = \"X\"\nservice = \"no.such.v1\"\n").unwrap();
    let mut config = egov_cli::stack::StackConfig::local(
        temp.path().join("data2"),
        common::init_keys(&temp.path().join("keys2")),
        common::fixtures_dir(),
    );
    config.shep = Some(EdgeSettings {
        address: "127.0.0.1:0".to_owned(),
        grpc_address: "127.0.0.1:0".to_owned(),
        services_file: Some(file),
        ..EdgeSettings::default()
    });
    let error = egov_cli::stack::Stack::start(config).await.unwrap_err();
    assert!(format!("{error:#}").contains("no.such.v1"), "{error:#}");
}

/// `egov serve` with an external State Corporation system and the gateway in
/// another process (docs/shep.md): one process runs the gateway, the registries
/// and the ARM, its workstation's address the edge's inbox; the other runs only
/// the SHEP edge, pointed at that gateway. A look-up, the application, the
/// ARM's report polled back and acknowledged, and the gateway's delivery read
/// with getMessageStatus all cross the two processes.
#[tokio::test]
async fn with_the_gateway_in_another_process_the_edge_routes_an_application_and_its_report_back() {
    let temp = tempfile::tempdir().unwrap();
    let egov = env!("CARGO_BIN_EXE_egov");
    let keys = temp.path().join("keys");
    let made = std::process::Command::new(egov).args(["keys", "init", "--dir"]).arg(&keys).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let password = std::fs::read_to_string(keys.join("secrets/shep-sc-workstation.password")).unwrap();
    // The gateway's process must know the edge's inbox, and the edge the gateway: both fixed before either starts.
    let [gateway, individuals, notary, regional, edge_inbox] =
        [(); 5].map(|()| format!("127.0.0.1:{}", common::free_port()));
    let serve = |roles: &str, data: &str| {
        let mut command = std::process::Command::new(egov);
        command
            .args(["serve", "--roles", roles, "--console", "off", "--data"])
            .arg(temp.path().join(data))
            .arg("--keys")
            .arg(&keys)
            .arg("--fixtures")
            .arg(common::fixtures_dir())
            .args(["--gateway", &gateway, "--individuals", &individuals, "--notary", &notary])
            .args(["--regional", &regional, "--workstation", &edge_inbox])
            .stderr(std::process::Stdio::null());
        command
    };
    let main = common::Served::start(serve("individuals,notary,gateway,regional", "data-main"));
    assert!(main.said.iter().all(|line| !line.starts_with("listening shep")), "{:?}", main.said);
    let mut edge_command = serve("workstation", "data-edge");
    edge_command.args(["--shep", "127.0.0.1:0", "--shep-grpc", &edge_inbox, "--external", "workstation=poll"]);
    let edge = common::Served::start(edge_command);
    assert!(edge.said.iter().all(|line| !line.starts_with("listening workstation")), "{:?}", edge.said);
    assert!(edge.said.contains(&format!("listening shep-inbox {edge_inbox}")), "{:?}", edge.said);
    let address = edge
        .said
        .iter()
        .find_map(|line| line.strip_prefix("listening shep http://"))
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("{:?}", edge.said));
    let as_workstation = |xml: String| xml.replace(">sc-ext<", ">sc-workstation<").replace(SC_PASSWORD, &password);

    // Process 3: the edge calls the gateway in the other process, which asks the registry.
    let lookup = sync_request("x-1", "GBDFL_PERSON_BY_IIN", "sc-workstation", &password, &person_query(IIN));
    let (status, answer) = post_to(&address, SYNC, "text/xml", lookup.as_bytes()).await;
    assert_eq!((status, text_of(&answer, "code").as_deref()), (200, Some("SCSS001")), "{answer}");
    assert_eq!(text_of(&answer, "found").as_deref(), Some("true"), "{answer}");

    // The application goes to the ARM there; its first report comes back to this edge's inbox.
    let app = "APP-SHEP-SPLIT";
    let request = as_workstation(send_message(
        None,
        "REQUEST",
        "RSHEP_APPLICATION_SUBMIT",
        None,
        &application(app, "operator-1"),
    ));
    let (status, answer) = post_to(&address, ASYNC, "text/xml", request.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "correlationId").as_deref(), Some(app), "{answer}");
    let message_id = text_of(&answer, "messageId").unwrap();
    let report = common::eventually("the ARM's first report at the edge", async || {
        let poll = as_workstation(get_messages("SC_APPLICATION_PROGRESS", None));
        let (_, answer) = post_to(&address, ASYNC, "text/xml", poll.as_bytes()).await;
        messages_of(&answer).into_iter().next()
    })
    .await;
    assert_eq!((report.1.as_str(), report.2.as_str()), (app, "NOTIFICATION"));
    assert!(text_of(&report.3, "registrationId").is_some_and(|id| !id.is_empty()), "{}", report.3);
    let ack =
        as_workstation(delivery_notification(&report.0, "SC_APPLICATION_PROGRESS", "MESSAGE_ACCEPTED", "NOT_RESEND"));
    let (status, acked) = post_to(&address, ASYNC, "text/xml", ack.as_bytes()).await;
    assert_eq!(status, 200, "{acked}");
    let poll = as_workstation(get_messages("SC_APPLICATION_PROGRESS", Some(&report.0)));
    let (_, left) = post_to(&address, ASYNC, "text/xml", poll.as_bytes()).await;
    assert!(messages_of(&left).is_empty(), "an acknowledged report is offered again: {left}");
    // The gateway there says the ARM took the application.
    let status_request = as_workstation(message_status(&message_id));
    let state = common::eventually("DELIVERED", async || {
        let (_, state) = post_to(&address, ASYNC, "text/xml", status_request.as_bytes()).await;
        (text_of(&state, "messageState").as_deref() == Some("DELIVERED")).then_some(state)
    })
    .await;
    assert!(state.contains("getMessageStatusResponse"), "{state}");
    let (stopped, _) = edge.terminate();
    assert!(stopped);
    let (stopped, _) = main.terminate();
    assert!(stopped);
}
