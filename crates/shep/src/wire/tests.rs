//! The reader against requests in the shapes public clients send
//! (`fixtures/shep/`), every class of bad input, and the writers read back.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset};

use super::*;

fn astana() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600).unwrap()
}

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

fn read(xml: &str) -> Result<Request, WireError> {
    read_request(xml.as_bytes(), &Limits::default(), astana())
}

fn refused(xml: &str) -> WireError {
    match read(xml) {
        Ok(request) => panic!("accepted: {request:?}\n{xml}"),
        Err(error) => error,
    }
}

const PHP_SYNC: &str = include_str!("../../../../fixtures/shep/php-sync-no-header.xml");
const PHP_ASYNC: &str = include_str!("../../../../fixtures/shep/php-async-out-of-order.xml");
const JAXWS_SYNC: &str = include_str!("../../../../fixtures/shep/jaxws-sync-signed.xml");
const DOTNET_ASYNC: &str = include_str!("../../../../fixtures/shep/dotnet-async-no-offset.xml");
const GET_MESSAGES: &str = include_str!("../../../../fixtures/shep/get-messages.xml");
const GET_MESSAGE_STATUS: &str = include_str!("../../../../fixtures/shep/get-message-status.xml");
const DELIVERY_NOTIFICATION: &str = include_str!("../../../../fixtures/shep/send-delivery-notification.xml");

/// A minimal async `sendMessage` whose `messageInfo` is `info`.
fn async_request(info: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><t:sendMessage xmlns:t="{ASYNC_TYPES}"><request>
        <messageInfo>{info}</messageInfo><messageData><data><X/></data></messageData></request></t:sendMessage></s:Body></s:Envelope>"#
    )
}

const SENDER: &str = "<sender><senderId>S</senderId></sender>";

/// A minimal sync `SendMessage` whose `requestInfo` is `info` and `requestData` is `data`.
fn sync_request(info: &str, data: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><t:SendMessage xmlns:t="{SYNC_TYPES}"><request>
        <requestInfo>{info}</requestInfo><requestData>{data}</requestData></request></t:SendMessage></s:Body></s:Envelope>"#
    )
}

const SYNC_INFO: &str = "<messageId>m1</messageId><serviceId>svc</serviceId><messageDate>2026-06-15T10:00:00Z</messageDate><sender><senderId>S</senderId></sender>";

#[test]
fn a_php_sync_request_without_header_with_empty_optional_elements_is_read() {
    let request = read(PHP_SYNC).unwrap();
    assert_eq!(request.security, None);
    let Operation::SyncSendMessage { info, data } = request.operation else { panic!("{request:?}") };
    assert_eq!(info.message_id, "5f0c7c2e-8d8a-4a51-9b9e-3f1e2d4c6a70");
    assert_eq!(info.correlation_id, None);
    assert_eq!(info.service_id, "GBDFL_PERSON_BY_IIN");
    assert_eq!(info.message_date, SoapTime { at: at("2026-06-15T10:00:00+06:00"), had_offset: true });
    assert_eq!(info.route_id, None);
    assert_eq!(info.sender, SenderInfo { sender_id: "sc-workstation".into(), password: Some("secret".into()) });
    assert_eq!(info.properties, vec![]);
    assert_eq!(info.session_id, None);
    assert_eq!(
        data,
        Payload {
            xml: "<PersonQuery><applicantIin>850715300122</applicantIin></PersonQuery>".into(),
            as_string: false
        }
    );
}

#[test]
fn a_php_async_request_with_message_type_after_message_date_is_read() {
    let request = read(PHP_ASYNC).unwrap();
    assert_eq!(request.security, None, "an empty Header is no security header");
    let Operation::SendMessage { info, data } = request.operation else { panic!("{request:?}") };
    assert_eq!(info.message_type, MessageType::Request);
    assert_eq!(info.message_id, None);
    assert_eq!(info.correlation_id, None);
    assert_eq!(info.route_id.as_deref(), Some("R_ASTANA"));
    assert_eq!(info.message_date.at, at("2026-06-15T10:00:00.123+05:00"));
    assert_eq!(
        info.properties,
        vec![
            Property { key: "lang".into(), value: "kk".into() },
            Property { key: "ADDL_CLIENT_KEY".into(), value: String::new() },
        ]
    );
    assert_eq!(info.session_id.as_deref(), Some("{7D8E9F00-1A2B-4C3D-8E9F-0A1B2C3D4E5F}"), "a braced GUID is kept");
    assert_eq!(data.xml, "<ApplicationDelivery><correlationId>app-1</correlationId></ApplicationDelivery>");
}

#[test]
fn a_jaxws_signed_request_has_its_security_header_read() {
    let request = read(JAXWS_SYNC).unwrap();
    let security = request.security.clone().unwrap();
    assert_eq!(
        security,
        Security {
            must_understand: true,
            signatures: 1,
            references: vec!["#id-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()],
            signature_method: Some(
                "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512".into()
            ),
            digest_method: Some("urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512".into()),
            canonicalization_method: Some("http://www.w3.org/2001/10/xml-exc-c14n#".into()),
            body_id: Some("id-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
        }
    );
    let Operation::SyncSendMessage { info, data } = request.operation else { panic!("{request:?}") };
    assert_eq!(info.session_id.as_deref(), Some("1280244d-e37f-4ec4-a66b-0317e07bb79e"), "an unbraced GUID is kept");
    assert_eq!(info.sender.password.as_deref(), Some("zxc123+-"));
    // The escaped string, unescaped (the `&#13;` kept as carriage returns) and trimmed.
    assert_eq!(
        data,
        Payload {
            xml: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PowerOfAttorneyQuery>\r\n<number>N-17&amp;2</number>\r\n</PowerOfAttorneyQuery>"
                .into(),
            as_string: true,
        }
    );
}

#[test]
fn a_security_header_without_must_understand_and_with_another_prefix_is_read() {
    let xml = JAXWS_SYNC.replace(r#"SOAP-ENV:mustUnderstand="1""#, "");
    let security = read(&xml).unwrap().security.unwrap();
    assert!(!security.must_understand);
    let xml = JAXWS_SYNC.replace(r#"SOAP-ENV:mustUnderstand="1""#, r#"S:mustUnderstand="true""#);
    assert!(read(&xml).unwrap().security.unwrap().must_understand);
}

#[test]
fn a_dotnet_request_with_dates_without_offset_is_read_in_the_given_offset() {
    let request = read(DOTNET_ASYNC).unwrap();
    let Operation::SendMessage { info, data } = request.operation else { panic!("{request:?}") };
    assert_eq!(info.message_type, MessageType::Notification);
    assert_eq!(info.correlation_id.as_deref(), Some("app-1"));
    assert_eq!(info.message_id.as_deref(), Some("3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4"));
    assert_eq!(info.message_date, SoapTime { at: at("2026-06-15T10:00:00+05:00"), had_offset: false });
    let utc = read_request(DOTNET_ASYNC.as_bytes(), &Limits::default(), FixedOffset::east_opt(0).unwrap()).unwrap();
    let Operation::SendMessage { info, .. } = utc.operation else { panic!() };
    assert_eq!(info.message_date.at, at("2026-06-15T10:00:00Z"));
    assert_eq!(
        data.xml,
        r#"<ns3:ApplicationProgress xmlns:ns3="urn:example:progress"><ns3:step>registered</ns3:step></ns3:ApplicationProgress>"#
    );
}

#[test]
fn get_messages_is_read() {
    let request = read(GET_MESSAGES).unwrap();
    assert_eq!(
        request.operation,
        Operation::GetMessages(GetMessagesRequest {
            message_id: None,
            correlation_id: None,
            request_date: Some(SoapTime { at: at("2026-06-15T10:00:00Z"), had_offset: true }),
            service_id: "RSHEP_APPLICATION_SUBMIT".into(),
            sender: Some(SenderInfo { sender_id: "rshep-astana".into(), password: Some("secret".into()) }),
            amount: Some(10),
            properties: vec![],
        })
    );
}

#[test]
fn get_message_status_is_read() {
    let request = read(GET_MESSAGE_STATUS).unwrap();
    let Operation::GetMessageStatus(status) = request.operation else { panic!("{request:?}") };
    assert_eq!(status.message_id, "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}");
    assert_eq!(status.request_date.at, at("2026-06-15T10:05:00+05:00"));
    assert_eq!(status.sender.sender_id, "sc-workstation");
}

#[test]
fn a_delivery_notification_with_a_nested_error_is_read() {
    let request = read(DELIVERY_NOTIFICATION).unwrap();
    let Operation::SendDeliveryNotification(notification) = request.operation else { panic!("{request:?}") };
    assert_eq!(notification.receive_status, ReceiveStatus::NotAccepted);
    assert!(notification.resend);
    let error = notification.error.unwrap();
    assert_eq!(error.error_code, "SCE909");
    assert_eq!(error.error_date, at("2026-06-15T10:01:00+05:00"));
    let sub = error.sub_error.unwrap();
    assert_eq!((sub.error_code.as_str(), sub.error_message.as_str()), ("DB01", "database unavailable"));
    assert_eq!(sub.sub_error, None);
    assert_eq!(notification.sender.unwrap().sender_id, "rshep-astana");
}

#[test]
fn descendants_are_matched_in_any_namespace() {
    // Children qualified by a prefix, and by a default namespace on the wrapper.
    let prefixed = sync_request(
        "<t:messageId>m1</t:messageId><t:serviceId>svc</t:serviceId><t:messageDate>2026-06-15T10:00:00Z</t:messageDate><t:sender><t:senderId>S</t:senderId></t:sender>",
        "<t:data><X/></t:data>",
    );
    let Operation::SyncSendMessage { info, .. } = read(&prefixed).unwrap().operation else { panic!() };
    assert_eq!(info.service_id, "svc");
    let default = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><SendMessage xmlns="{SYNC_TYPES}"><request><requestInfo>{SYNC_INFO}</requestInfo>
        <requestData><data><X/></data></requestData></request></SendMessage></s:Body></s:Envelope>"#
    );
    let Operation::SyncSendMessage { data, .. } = read(&default).unwrap().operation else { panic!() };
    // The payload keeps its namespace: the declaration it relied on is added.
    assert_eq!(data.xml, format!(r#"<X xmlns="{SYNC_TYPES}"/>"#));
}

#[test]
fn a_payload_relying_on_prefixes_of_its_ancestors_gets_their_declarations() {
    let xml = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:p="urn:p" xmlns:q="urn:q" xmlns:xsi="{XSI}" xmlns:unused="urn:u"><s:Body>
        <t:SendMessage xmlns:t="{SYNC_TYPES}"><request><requestInfo>{SYNC_INFO}</requestInfo><requestData>
        <data><p:Query xsi:type="q:QueryType" xmlns:own="urn:own"><own:a p:attr="1">x &amp; y</own:a></p:Query></data>
        </requestData></request></t:SendMessage></s:Body></s:Envelope>"#
    );
    let Operation::SyncSendMessage { data, .. } = read(&xml).unwrap().operation else { panic!() };
    assert_eq!(
        data.xml,
        format!(
            r#"<p:Query xmlns:p="urn:p" xmlns:q="urn:q" xmlns:xsi="{XSI}" xsi:type="q:QueryType" xmlns:own="urn:own"><own:a p:attr="1">x &amp; y</own:a></p:Query>"#
        )
    );
    let alone = roxmltree::Document::parse(&data.xml).unwrap();
    assert_eq!(alone.root_element().tag_name().namespace(), Some("urn:p"));
}

#[test]
fn empty_optional_complex_elements_are_absent() {
    let xml = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><t:getMessages xmlns:t="{ASYNC_TYPES}"><request>
        <messageId/><correlationId> </correlationId><requestDate></requestDate><serviceId>svc</serviceId><sender/>
        <amount/><properties/></request></t:getMessages></s:Body></s:Envelope>"#
    );
    let Operation::GetMessages(request) = read(&xml).unwrap().operation else { panic!() };
    assert_eq!(
        request,
        GetMessagesRequest {
            message_id: None,
            correlation_id: None,
            request_date: None,
            service_id: "svc".into(),
            sender: None,
            amount: None,
            properties: vec![],
        }
    );
}

#[test]
fn an_escaped_string_payload_is_unescaped_and_marked_as_a_string() {
    let xml = sync_request(
        SYNC_INFO,
        r#"<data xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">
        &lt;PersonQuery&gt;&lt;applicantIin&gt;850715300122&lt;/applicantIin&gt;&lt;/PersonQuery&gt;
        </data>"#,
    );
    let Operation::SyncSendMessage { data, .. } = read(&xml).unwrap().operation else { panic!() };
    assert_eq!(
        data,
        Payload { xml: "<PersonQuery><applicantIin>850715300122</applicantIin></PersonQuery>".into(), as_string: true }
    );
    let cdata = sync_request(SYNC_INFO, "<data><![CDATA[<A>1 < 2</A>]]></data>");
    let Operation::SyncSendMessage { data, .. } = read(&cdata).unwrap().operation else { panic!() };
    assert_eq!(data, Payload { xml: "<A>1 < 2</A>".into(), as_string: true });
}

#[test]
fn a_typed_value_in_data_is_the_payload_whole_as_generated_clients_write_it() {
    let xml = sync_request(
        SYNC_INFO,
        r#"<data xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p="urn:egov-payload" xsi:type="p:PersonQuery"><iin>850715300122</iin></data>"#,
    );
    let Operation::SyncSendMessage { data, .. } = read(&xml).unwrap().operation else { panic!() };
    assert!(!data.as_string, "{data:?}");
    assert!(data.xml.starts_with("<data ") && data.xml.contains("<iin>850715300122</iin>"), "{data:?}");
    let descriptor = crate::payload::message_type("PersonQuery").unwrap();
    let message = crate::payload::from_xml(&data.xml, &descriptor).unwrap();
    assert_eq!(message.get_field_by_name("iin").unwrap().as_str(), Some("850715300122"));
    // A string-typed `data` stays an escaped string, and an untyped one gives its one child.
    let untyped = sync_request(SYNC_INFO, "<data><PersonQuery><iin>1</iin></PersonQuery></data>");
    let Operation::SyncSendMessage { data, .. } = read(&untyped).unwrap().operation else { panic!() };
    assert_eq!(data.xml, "<PersonQuery><iin>1</iin></PersonQuery>");
}

#[test]
fn a_byte_order_mark_and_comments_are_accepted() {
    let xml = format!("\u{feff}<!-- sent by a test -->{}", PHP_SYNC.trim_start_matches(|c| c != '\n'));
    assert!(matches!(read(&xml).unwrap().operation, Operation::SyncSendMessage { .. }));
}

// --- Bad input ---

#[test]
fn what_is_not_xml_is_refused() {
    for bad in ["", "hello", "<a><b></a>", "<a>", "<s:Envelope xmlns:s='x'><s:Body></s:Envelope>", "<a>&undefined;</a>"]
    {
        let error = refused(bad);
        assert_eq!(error.code, NOT_XML, "{bad:?}: {error}");
        assert_eq!(error.operation, None);
    }
    let latin1 = b"<a>caf\xe9</a>";
    assert_eq!(read_request(latin1, &Limits::default(), astana()).unwrap_err().code, NOT_XML);
}

#[test]
fn a_dtd_is_refused_and_so_is_an_entity_bomb() {
    let dtd = format!("<!DOCTYPE Envelope>{PHP_SYNC}");
    assert_eq!(refused(&dtd.replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, "")).code, DTD);
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><lolz>&lol9;</lolz></s:Body></s:Envelope>"#;
    let error = refused(laughs);
    assert_eq!(error.code, DTD, "{error}");
    let external = r#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#;
    assert_eq!(refused(external).code, DTD);
}

#[test]
fn a_processing_instruction_is_refused_but_the_declaration_is_not() {
    let xml = PHP_SYNC.replace("<soapenv:Body>", r#"<?xml-stylesheet href="x.xsl"?><soapenv:Body>"#);
    assert_eq!(refused(&xml).code, PROCESSING_INSTRUCTION);
    assert!(read(PHP_SYNC).is_ok());
}

#[test]
fn the_limits_are_checked_before_parsing() {
    let limits = Limits { max_bytes: PHP_SYNC.len() - 1, ..Limits::default() };
    let error = read_request(PHP_SYNC.as_bytes(), &limits, astana()).unwrap_err();
    assert_eq!(error.code, TOO_LARGE);
    let limits = Limits { max_bytes: PHP_SYNC.len(), ..Limits::default() };
    assert!(read_request(PHP_SYNC.as_bytes(), &limits, astana()).is_ok());

    // The PHP request nests 7 deep (Envelope > Body > SendMessage > request > requestData > data > PersonQuery > applicantIin is 8).
    let limits = Limits { max_depth: 7, ..Limits::default() };
    assert_eq!(read_request(PHP_SYNC.as_bytes(), &limits, astana()).unwrap_err().code, TOO_DEEP);
    let limits = Limits { max_depth: 8, ..Limits::default() };
    assert!(read_request(PHP_SYNC.as_bytes(), &limits, astana()).is_ok());
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    assert_eq!(refused(&deep).code, TOO_DEEP);
    let deep_empty = format!("{}<b/>{}", "<a>".repeat(64), "</a>".repeat(64));
    assert_eq!(refused(&deep_empty).code, TOO_DEEP, "an empty element counts as a level");

    let wide = format!("<a>{}</a>", "<b/>".repeat(1000));
    let limits = Limits { max_elements: 1000, ..Limits::default() };
    assert_eq!(read_request(wide.as_bytes(), &limits, astana()).unwrap_err().code, TOO_MANY_ELEMENTS);
}

#[test]
fn what_is_not_a_soap_1_1_envelope_is_refused() {
    let soap12 = PHP_SYNC.replace(SOAP_ENV, "http://www.w3.org/2003/05/soap-envelope");
    let error = refused(&soap12);
    assert_eq!(error.code, NOT_SOAP);
    assert!(error.message.contains("SOAP 1.2"), "{error}");
    assert_eq!(refused("<SendMessage/>").code, NOT_SOAP);
    let no_body = format!(r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Header/></s:Envelope>"#);
    assert_eq!(refused(&no_body).code, NOT_SOAP);
    let empty_body = format!(r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body> </s:Body></s:Envelope>"#);
    assert_eq!(refused(&empty_body).code, NOT_SOAP);
    let two = PHP_SYNC.replace("</SendMessage>", "</SendMessage><SendMessage xmlns=\"urn:x\"/>");
    assert_eq!(refused(&two).code, NOT_SOAP);
}

#[test]
fn a_known_operation_in_the_wrong_namespace_is_refused() {
    let error = refused(&PHP_SYNC.replace(SYNC_TYPES, ASYNC_TYPES));
    assert_eq!(error.code, WRONG_NAMESPACE);
    assert!(error.message.contains(SYNC_TYPES), "{error}");
    let lower = PHP_ASYNC.replace(ASYNC_TYPES, "http://bip.bee.kz/AsyncChannel/v10/types");
    assert_eq!(refused(&lower).code, WRONG_NAMESPACE);
    let unqualified =
        PHP_SYNC.replace(r#"<SendMessage xmlns="http://bip.bee.kz/SyncChannel/v10/Types">"#, "<SendMessage>");
    assert_eq!(refused(&unqualified).code, WRONG_NAMESPACE);
}

#[test]
fn an_unknown_operation_is_refused() {
    let error = refused(&PHP_SYNC.replace("SendMessage", "SendMassage"));
    assert_eq!(error.code, UNKNOWN_OPERATION);
    assert_eq!(error.operation, None);
    let client_side = PHP_ASYNC.replace("sendMessage", "changeMassageStatusNotification");
    assert_eq!(refused(&client_side).code, UNKNOWN_OPERATION);
}

#[test]
fn a_missing_required_element_is_refused_with_its_path() {
    let error = refused(&PHP_SYNC.replace("<serviceId>GBDFL_PERSON_BY_IIN</serviceId>", ""));
    assert_eq!(error.code, MISSING_ELEMENT);
    assert!(error.message.starts_with("request/requestInfo/serviceId "), "{error}");
    assert_eq!(error.operation, Some(OperationName::SyncSendMessage), "the fault can name the operation");

    let empty = PHP_SYNC.replace("<serviceId>GBDFL_PERSON_BY_IIN</serviceId>", "<serviceId>  </serviceId>");
    assert!(refused(&empty).message.starts_with("request/requestInfo/serviceId "));
    let no_sender_id = PHP_SYNC.replace("<senderId>sc-workstation</senderId>", "");
    assert!(refused(&no_sender_id).message.starts_with("request/requestInfo/sender/senderId "));
    let no_data = PHP_SYNC.replace(
        "<data><PersonQuery><applicantIin>850715300122</applicantIin></PersonQuery></data>",
        "<data xsi:nil=\"true\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/>",
    );
    let error = refused(&no_data);
    assert_eq!(error.code, MISSING_ELEMENT);
    assert!(error.message.starts_with("request/requestData/data "), "{error}");
    let error = refused(&DOTNET_ASYNC.replace("<messageType>NOTIFICATION</messageType>", ""));
    assert!(error.message.starts_with("request/messageInfo/messageType "), "{error}");
    assert_eq!(error.operation, Some(OperationName::SendMessage));
    let no_status = DELIVERY_NOTIFICATION.replace("<statusDate>2026-06-15T10:01:00+05:00</statusDate>", "");
    assert!(refused(&no_status).message.starts_with("request/notification/deliveryStatus/statusDate "));
    let property = PHP_ASYNC.replace("<value>kk</value>", "");
    assert!(refused(&property).message.starts_with("request/messageInfo/properties[1]/value "));
}

#[test]
fn a_duplicated_element_and_misplaced_content_are_refused() {
    let twice = PHP_SYNC.replace(
        "<serviceId>GBDFL_PERSON_BY_IIN</serviceId>",
        "<serviceId>GBDFL_PERSON_BY_IIN</serviceId><serviceId>OTHER</serviceId>",
    );
    let error = refused(&twice);
    assert_eq!(error.code, BAD_ELEMENT);
    assert!(error.message.contains("request/requestInfo/serviceId"), "{error}");
    let nested = PHP_SYNC.replace("<serviceId>GBDFL_PERSON_BY_IIN</serviceId>", "<serviceId><id>X</id></serviceId>");
    assert_eq!(refused(&nested).code, BAD_ELEMENT);
    let two_payloads = PHP_SYNC.replace("</PersonQuery></data>", "</PersonQuery><PersonQuery/></data>");
    assert_eq!(refused(&two_payloads).code, BAD_ELEMENT);
}

#[test]
fn property_lengths_and_amount_are_checked() {
    let long_key = PHP_ASYNC.replace("<key>lang</key>", &format!("<key>{}</key>", "k".repeat(31)));
    assert_eq!(refused(&long_key).code, BAD_ELEMENT);
    let key_of_30 = PHP_ASYNC.replace("<key>lang</key>", &format!("<key>{}</key>", "ключ".repeat(7) + "kk"));
    assert!(read(&key_of_30).is_ok(), "30 characters, not bytes");
    let long_value = PHP_ASYNC.replace("<value>kk</value>", &format!("<value>{}</value>", "v".repeat(501)));
    assert_eq!(refused(&long_value).code, BAD_ELEMENT);
    for bad in ["-1", "ten", "1.5", "4294967296", "2147483648"] {
        let xml = GET_MESSAGES.replace("<amount>10</amount>", &format!("<amount>{bad}</amount>"));
        let error = refused(&xml);
        assert_eq!(error.code, BAD_ELEMENT, "{bad}");
        assert_eq!(error.operation, Some(OperationName::GetMessages));
    }
    let zero = GET_MESSAGES.replace("<amount>10</amount>", "<amount>0</amount>");
    let Operation::GetMessages(request) = read(&zero).unwrap().operation else { panic!() };
    assert_eq!(request.amount, Some(0));
}

#[test]
fn a_bad_date_time_is_refused() {
    for bad in ["2026-06-15 10:00:00", "15.06.2026 10:00", "2026-06-15T10:00:00+0600", "2026-06-31T10:00:00"] {
        let xml = PHP_SYNC.replace("2026-06-15T10:00:00+06:00", bad);
        let error = refused(&xml);
        assert_eq!(error.code, BAD_DATETIME, "{bad}: {error}");
        assert!(error.message.starts_with("request/requestInfo/messageDate "), "{error}");
    }
    let error = refused(&DELIVERY_NOTIFICATION.replace("2026-06-15T10:00:59+05:00", "yesterday"));
    assert_eq!(error.code, BAD_DATETIME);
    assert!(error.message.contains("subError/errorDate"), "{error}");
}

#[test]
fn values_outside_their_enumeration_are_refused() {
    for bad in ["request", "ANSWER", "REQUEST "] {
        let xml = PHP_ASYNC.replace("<messageType>REQUEST</messageType>", &format!("<messageType>{bad}</messageType>"));
        if bad == "REQUEST " {
            assert!(read(&xml).is_ok(), "white space around an enumeration is collapsed");
            continue;
        }
        let error = refused(&xml);
        assert_eq!(error.code, BAD_ENUM, "{bad}");
        assert!(error.message.contains("REQUEST, RESPONSE, NOTIFICATION, UPDATE"), "{error}");
    }
    let accepted = DELIVERY_NOTIFICATION.replace("MESSAGE_NOT_ACCTEPTED", "MESSAGE_NOT_ACCEPTED");
    let error = refused(&accepted);
    assert_eq!(error.code, BAD_ENUM, "the schema's spelling is the one accepted");
    assert_eq!(error.operation, Some(OperationName::SendDeliveryNotification));
    assert_eq!(refused(&DELIVERY_NOTIFICATION.replace(">RESEND<", ">YES<")).code, BAD_ENUM);
}

#[test]
fn a_reply_without_correlation_id_is_refused() {
    for message_type in ["RESPONSE", "NOTIFICATION", "UPDATE"] {
        let xml = async_request(&format!(
            "<correlationId/><serviceId>svc</serviceId><messageType>{message_type}</messageType><messageDate>2026-06-15T10:00:00Z</messageDate>{SENDER}"
        ));
        let error = refused(&xml);
        assert_eq!(error.code, CORRELATION_REQUIRED, "{message_type}");
        assert_eq!(error.operation, Some(OperationName::SendMessage));
    }
    let request = async_request(&format!(
        "<serviceId>svc</serviceId><messageType>REQUEST</messageType><messageDate>2026-06-15T10:00:00Z</messageDate>{SENDER}"
    ));
    assert!(read(&request).is_ok());
}

#[test]
fn a_header_block_marked_must_understand_that_egov_does_not_read_is_refused() {
    let xml = PHP_ASYNC.replace(
        "<soapenv:Header/>",
        r#"<soapenv:Header><x:Routing xmlns:x="urn:x" soapenv:mustUnderstand="1">r</x:Routing></soapenv:Header>"#,
    );
    let error = refused(&xml);
    assert_eq!(error.code, MUST_UNDERSTAND);
    assert_eq!(error.faultcode(), "soap:MustUnderstand");
    let optional = xml.replace(r#" soapenv:mustUnderstand="1""#, "");
    assert!(read(&optional).is_ok(), "a header block not marked is ignored");
    let other_actor =
        xml.replace(r#"soapenv:mustUnderstand="1""#, r#"soapenv:mustUnderstand="1" soapenv:actor="urn:someone-else""#);
    assert!(read(&other_actor).is_ok(), "a block for another actor is not ours to understand");
}

#[test]
fn every_code_is_a_shep_code() {
    for code in [
        NOT_XML,
        DTD,
        PROCESSING_INSTRUCTION,
        TOO_LARGE,
        TOO_DEEP,
        TOO_MANY_ELEMENTS,
        NOT_SOAP,
        MUST_UNDERSTAND,
        WRONG_NAMESPACE,
        UNKNOWN_OPERATION,
        MISSING_ELEMENT,
        BAD_ELEMENT,
        BAD_DATETIME,
        BAD_ENUM,
        CORRELATION_REQUIRED,
    ] {
        assert!(code.starts_with("shep."), "{code}");
        assert_eq!(WireError::new(code, "x").faultcode() == "soap:MustUnderstand", code == MUST_UNDERSTAND);
    }
}

// --- Writers, read back ---

fn delivered() -> DeliveredMessage {
    DeliveredMessage {
        info: AsyncMessageInfo {
            message_id: Some("{11111111-2222-3333-4444-555555555555}".into()),
            correlation_id: Some("app-1 & <co>".into()),
            service_id: "RSHEP_APPLICATION_SUBMIT".into(),
            message_type: MessageType::Request,
            route_id: Some("R_ASTANA".into()),
            message_date: SoapTime { at: at("2026-06-15T10:00:00.125+05:00"), had_offset: true },
            sender: SenderInfo { sender_id: "sc-workstation".into(), password: Some("p\"w'd<".into()) },
            properties: vec![
                Property { key: "lang".into(), value: "ru".into() },
                Property { key: "empty".into(), value: String::new() },
            ],
            session_id: Some("{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}".into()),
        },
        data: Payload {
            xml: r#"<ns3:App xmlns:ns3="urn:app"><ns3:id>a&amp;b</ns3:id></ns3:App>"#.into(),
            as_string: false,
        },
    }
}

fn error_info() -> ErrorInfo {
    ErrorInfo {
        error_code: "shep.missing_element".into(),
        error_message: "request/requestInfo/serviceId is required & <absent>".into(),
        error_data: Some("line 1\r\nline 2".into()),
        error_date: at("2026-06-15T10:00:00.000+05:00"),
        sub_error: Some(Box::new(ErrorInfo {
            error_code: "inner".into(),
            error_message: "cause".into(),
            error_data: None,
            error_date: at("2026-06-15T09:59:59.999+05:00"),
            sub_error: None,
            session_id: None,
        })),
        session_id: Some("{12345678-1234-1234-1234-123456789ABC}".into()),
    }
}

/// The document, the Body's element checked to be `namespace`:`local`.
fn body_element<'a>(document: &'a roxmltree::Document, namespace: &str, local: &str) -> roxmltree::Node<'a, 'a> {
    let envelope = document.root_element();
    assert!(envelope.has_tag_name((SOAP_ENV, "Envelope")));
    assert_eq!(envelope.lookup_prefix(SOAP_ENV), Some("soap"));
    let body = envelope.first_element_child().unwrap();
    assert!(body.has_tag_name((SOAP_ENV, "Body")));
    let element = body.first_element_child().unwrap();
    assert!(element.has_tag_name((namespace, local)), "{:?}", element.tag_name());
    element
}

/// The text of the unqualified element at `path` under `node`.
fn text_at<'a>(node: roxmltree::Node<'a, 'a>, path: &str) -> &'a str {
    let mut node = node;
    for step in path.split('/') {
        node = node
            .children()
            .find(|child| child.is_element() && child.tag_name().name() == step)
            .unwrap_or_else(|| panic!("no {step} in {path}"));
        assert_eq!(node.tag_name().namespace(), None, "{step} is unqualified");
    }
    node.text().unwrap_or_default()
}

fn child_names<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<&'a str> {
    node.children().filter(|child| child.is_element()).map(|child| child.tag_name().name()).collect()
}

#[test]
fn the_sync_answer_is_written_in_the_schema_order_and_reads_back() {
    for data in [
        Payload { xml: "<PersonAnswer><name>A &amp; B</name></PersonAnswer>".into(), as_string: false },
        Payload { xml: "<PersonAnswer><name>A &amp; B</name></PersonAnswer>".into(), as_string: true },
    ] {
        let xml = write_answer(&Answer::SyncSendMessage(SyncResponse {
            message_id: "m2".into(),
            correlation_id: Some("m1".into()),
            response_date: at("2026-06-15T10:00:01.5+05:00"),
            status_code: "SCSS001".into(),
            status_message: "Message has been processed successfully".into(),
            session_id: Some("{S}".into()),
            data: data.clone(),
        }));
        let document = roxmltree::Document::parse(&xml).unwrap();
        let wrapper = body_element(&document, SYNC_TYPES, "SendMessageResponse");
        let info = wrapper.first_element_child().unwrap().first_element_child().unwrap();
        assert_eq!(child_names(info), ["messageId", "correlationId", "responseDate", "status", "sessionId"]);
        assert_eq!(text_at(wrapper, "response/responseInfo/responseDate"), "2026-06-15T10:00:01.500+05:00");
        assert_eq!(text_at(wrapper, "response/responseInfo/status/code"), "SCSS001");
        let data_node = wrapper.descendants().find(|node| node.has_tag_name("data")).unwrap();
        if data.as_string {
            assert_eq!(data_node.attribute((XSI, "type")), Some("xs:string"));
            assert_eq!(data_node.lookup_namespace_uri(Some("xs")), Some(XS));
            assert_eq!(data_node.text(), Some(data.xml.as_str()));
        } else {
            let answer = data_node.first_element_child().unwrap();
            assert_eq!(&xml[answer.range()], data.xml);
            assert_eq!(answer.tag_name().namespace(), None);
        }
    }
}

#[test]
fn the_async_answers_are_written_in_the_schema_order() {
    let date = at("2026-06-15T10:00:00+05:00");
    let status = MessageStatusInfo { status_code: "DELIVERED".into(), status_message: "ok".into(), status_date: date };
    let cases = [
        (
            Answer::SendMessage(SendMessageAnswer {
                message_id: "m".into(),
                correlation_id: "c".into(),
                response_date: date,
                session_id: None,
            }),
            "sendMessageResponse",
            vec!["messageId", "correlationId", "responseDate"],
        ),
        (
            Answer::GetMessages(GetMessagesAnswer {
                response_date: date,
                session_id: "{S}".into(),
                messages: vec![delivered(), delivered()],
            }),
            "getMessagesResponse",
            vec!["responseDate", "sessionId", "messages", "messages"],
        ),
        (
            Answer::GetMessageStatus(MessageStatusAnswer {
                message_state: MessageState::DeliveryStopped,
                status,
                response_date: date,
                session_id: Some("{S}".into()),
            }),
            "getMessageStatusResponse",
            vec!["messageState", "status", "responseDate", "sessionId"],
        ),
        (
            Answer::SendDeliveryNotification(DeliveryNotificationAnswer {
                notification_id: "n".into(),
                response_date: date,
                session_id: "{S}".into(),
            }),
            "sendDeliveryNotificationResponse",
            vec!["notificationId", "responseDate", "sessionId"],
        ),
    ];
    for (answer, wrapper_name, children) in cases {
        let xml = write_answer(&answer);
        let document = roxmltree::Document::parse(&xml).unwrap();
        let wrapper = body_element(&document, ASYNC_TYPES, wrapper_name);
        assert_eq!(wrapper.lookup_prefix(ASYNC_TYPES), Some("ns2"));
        let response = wrapper.first_element_child().unwrap();
        assert_eq!(response.tag_name().name(), "response");
        assert_eq!(child_names(response), children, "{wrapper_name}");
        if let Answer::GetMessageStatus(_) = answer {
            assert_eq!(text_at(wrapper, "response/messageState"), "DELIVERY_STOPPED");
            assert_eq!(
                child_names(response.children().find(|n| n.has_tag_name("status")).unwrap()),
                ["statusCode", "statusMessage", "statusDate"]
            );
        }
        if let Answer::GetMessages(_) = answer {
            let message = response.children().find(|n| n.has_tag_name("messages")).unwrap();
            assert_eq!(child_names(message), ["messageInfo", "messageData"]);
            assert_eq!(text_at(message, "messageInfo/correlationId"), "app-1 & <co>");
        }
    }
}

#[test]
fn a_push_is_a_send_message_request_egov_itself_reads_back() {
    let message = delivered();
    let xml = write_push(&message);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let wrapper = body_element(&document, ASYNC_TYPES, "sendMessage");
    let info = wrapper.descendants().find(|n| n.has_tag_name("messageInfo")).unwrap();
    assert_eq!(
        child_names(info),
        [
            "messageId",
            "correlationId",
            "serviceId",
            "messageType",
            "routeId",
            "messageDate",
            "sender",
            "properties",
            "properties",
            "sessionId"
        ]
    );
    let request = read(&xml).unwrap();
    assert_eq!(request.security, None);
    assert_eq!(request.operation, Operation::SendMessage { info: message.info, data: message.data });

    // An escaped-string payload goes out as one, and comes back the same.
    let mut string = delivered();
    string.data = Payload { xml: "<?xml version=\"1.0\"?><A>1 &lt; 2 &amp; \"q\"</A>".into(), as_string: true };
    let Operation::SendMessage { data, .. } = read(&write_push(&string)).unwrap().operation else { panic!() };
    assert_eq!(data, string.data);

    // An "element" that is not one well-formed element is sent as a string rather than break the envelope.
    let mut broken = delivered();
    broken.data = Payload { xml: "<A><B></A>".into(), as_string: false };
    let Operation::SendMessage { data, .. } = read(&write_push(&broken)).unwrap().operation else { panic!() };
    assert_eq!(data, Payload { xml: "<A><B></A>".into(), as_string: true });
}

#[test]
fn a_fault_is_written_with_its_error_info_and_reads_back() {
    let error = error_info();
    let xml = write_fault(OperationName::SyncSendMessage, "soap:Client", &error);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let fault = body_element(&document, SOAP_ENV, "Fault");
    assert_eq!(child_names(fault), ["faultcode", "faultstring", "detail"]);
    assert_eq!(text_at(fault, "faultcode"), "soap:Client");
    assert_eq!(text_at(fault, "faultstring"), error.error_message);
    let detail = fault.children().find(|n| n.has_tag_name("detail")).unwrap();
    let element = detail.first_element_child().unwrap();
    assert!(element.has_tag_name((SYNC_TYPES, "SendMessageFault1_SendMessageFault")));
    assert_eq!(child_names(element), ["errorCode", "errorMessage", "errorData", "errorDate", "subError", "sessionId"]);
    assert_eq!(text_at(element, "errorData"), "line 1\r\nline 2", "a carriage return survives");
    assert_eq!(text_at(element, "subError/errorDate"), "2026-06-15T09:59:59.999+05:00");

    let answer = read_push_answer(xml.as_bytes(), &Limits::default(), astana()).unwrap();
    assert_eq!(
        answer,
        PushAnswer::Fault {
            faultcode: "soap:Client".into(),
            faultstring: error.error_message.clone(),
            error: Some(error)
        }
    );

    let server = write_fault(OperationName::GetMessages, "Server", &error_info());
    let document = roxmltree::Document::parse(&server).unwrap();
    let fault = body_element(&document, SOAP_ENV, "Fault");
    assert_eq!(text_at(fault, "faultcode"), "soap:Server", "a bare code is put in the envelope's namespace");
    assert!(fault.descendants().any(|n| n.has_tag_name((ASYNC_TYPES, "getMessagesFault1_getMessagesFault"))));
}

#[test]
fn a_status_change_notification_is_written_in_the_client_namespace() {
    let notification = ChangeStatusNotification {
        notification_id: "n1".into(),
        message_id: "m1".into(),
        notification_date: at("2026-06-15T10:00:00+05:00"),
        message_state: MessageState::NotDelivered,
        status: MessageStatusInfo {
            status_code: "NOT_DELIVERED".into(),
            status_message: "refused by the recipient".into(),
            status_date: at("2026-06-15T10:00:00+05:00"),
        },
        error: Some(error_info()),
        request_date: at("2026-06-15T10:00:01+05:00"),
        session_id: None,
    };
    let xml = write_change_status(&notification);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let wrapper = body_element(&document, ASYNC_CLIENT_TYPES, "changeMassageStatusNotification");
    let request = wrapper.first_element_child().unwrap();
    assert_eq!(child_names(request), ["notification", "requestDate"]);
    let inner = request.first_element_child().unwrap();
    assert_eq!(
        child_names(inner),
        ["notificationId", "messageId", "notificationDate", "messageState", "status", "error"]
    );
    assert_eq!(text_at(request, "notification/messageState"), "NOT_DELIVERED");
    assert_eq!(text_at(request, "notification/error/subError/errorCode"), "inner");
}

// --- What a PUSH recipient answers ---

#[test]
fn a_recipients_send_message_response_is_accepted() {
    let xml = format!(
        r#"<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><ns2:sendMessageResponse xmlns:ns2="{ASYNC_TYPES}">
        <response><messageId>{{M}}</messageId><correlationId>C</correlationId><responseDate>2026-06-15T10:00:00</responseDate>
        <sessionId>{{S}}</sessionId></response></ns2:sendMessageResponse></S:Body></S:Envelope>"#
    );
    assert_eq!(
        read_push_answer(xml.as_bytes(), &Limits::default(), astana()).unwrap(),
        PushAnswer::Accepted { message_id: Some("{M}".into()), correlation_id: Some("C".into()) }
    );
    let bare = format!(
        r#"<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><ns2:sendMessageResponse xmlns:ns2="{ASYNC_TYPES}"/></S:Body></S:Envelope>"#
    );
    assert_eq!(
        read_push_answer(bare.as_bytes(), &Limits::default(), astana()).unwrap(),
        PushAnswer::Accepted { message_id: None, correlation_id: None }
    );
}

#[test]
fn a_recipients_fault_is_read_with_or_without_error_info() {
    // As a recipient builds it: faultcode the error code, ErrorInfo in the detail (no offset in its date).
    let xml = format!(
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault>
        <faultcode>SCE004</faultcode><faultstring>Service does not exist</faultstring>
        <detail><ns2:sendMessageFault1_sendMessageFault xmlns:ns2="{ASYNC_TYPES}">
        <errorCode>SCE004</errorCode><errorMessage>Service does not exist</errorMessage><errorData>svc</errorData>
        <errorDate>2026-06-15T10:00:00</errorDate></ns2:sendMessageFault1_sendMessageFault></detail>
        </soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    );
    let PushAnswer::Fault { faultcode, faultstring, error } =
        read_push_answer(xml.as_bytes(), &Limits::default(), astana()).unwrap()
    else {
        panic!()
    };
    assert_eq!((faultcode.as_str(), faultstring.as_str()), ("SCE004", "Service does not exist"));
    let error = error.unwrap();
    assert_eq!(error.error_data.as_deref(), Some("svc"));
    assert_eq!(error.error_date, at("2026-06-15T10:00:00+05:00"));

    let plain = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode>s:Server</faultcode>
        <faultstring>NullPointerException</faultstring></s:Fault></s:Body></s:Envelope>"#
    );
    assert_eq!(
        read_push_answer(plain.as_bytes(), &Limits::default(), astana()).unwrap(),
        PushAnswer::Fault { faultcode: "s:Server".into(), faultstring: "NullPointerException".into(), error: None }
    );
}

#[test]
fn a_recipients_answer_that_is_neither_is_refused() {
    let limits = Limits::default();
    let error = read_push_answer(b"<html>502 Bad Gateway</html>", &limits, astana()).unwrap_err();
    assert_eq!(error.code, NOT_SOAP);
    assert_eq!(error.operation, Some(OperationName::SendMessage));
    let other = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><ns2:getMessagesResponse xmlns:ns2="{ASYNC_TYPES}"/></s:Body></s:Envelope>"#
    );
    assert_eq!(read_push_answer(other.as_bytes(), &limits, astana()).unwrap_err().code, UNKNOWN_OPERATION);
    let wrong = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><ns2:sendMessageResponse xmlns:ns2="{SYNC_TYPES}"/></s:Body></s:Envelope>"#
    );
    assert_eq!(read_push_answer(wrong.as_bytes(), &limits, astana()).unwrap_err().code, WRONG_NAMESPACE);
    let no_code = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>"#
    );
    assert_eq!(read_push_answer(no_code.as_bytes(), &limits, astana()).unwrap_err().code, MISSING_ELEMENT);
    let bomb = "<!DOCTYPE a [<!ENTITY a \"aaaa\">]><a>&a;</a>";
    assert_eq!(read_push_answer(bomb.as_bytes(), &limits, astana()).unwrap_err().code, DTD);
}

#[test]
fn parse_time_is_the_readers_rule() {
    assert_eq!(parse_time("2026-06-15T10:00:00", astana()).unwrap().at, at("2026-06-15T10:00:00+05:00"));
    assert_eq!(parse_time("2026-06-15", astana()).unwrap_err().code, BAD_DATETIME);
}

#[test]
fn no_truncation_or_byte_change_of_a_request_makes_the_reader_panic_or_answer_without_a_code() {
    let fixtures =
        [PHP_SYNC, PHP_ASYNC, JAXWS_SYNC, DOTNET_ASYNC, GET_MESSAGES, GET_MESSAGE_STATUS, DELIVERY_NOTIFICATION];
    let mut refusals = 0;
    for fixture in fixtures {
        let bytes = fixture.as_bytes();
        let mut check = |input: &[u8]| {
            if let Err(error) = read_request(input, &Limits::default(), astana()) {
                assert!(error.code.starts_with("shep.") && !error.message.is_empty(), "{error:?}");
                refusals += 1;
            }
            if let Err(error) = read_push_answer(input, &Limits::default(), astana()) {
                assert!(error.code.starts_with("shep."), "{error:?}");
            }
        };
        for end in 0..bytes.len() {
            check(&bytes[..end]);
        }
        for (at, replacement) in
            (0..bytes.len()).step_by(3).zip([b'<', b'>', b'&', b'"', 0xff, b'x', b':'].iter().cycle())
        {
            let mut changed = bytes.to_vec();
            changed[at] = *replacement;
            check(&changed);
        }
    }
    assert!(refusals > 10_000, "only {refusals} refusals: the inputs were not varied");
}

#[test]
fn a_senders_answer_to_a_status_change_is_read() {
    let limits = Limits::default();
    let ok = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><c:changeMassageStatusNotificationResponse xmlns:c="{ASYNC_CLIENT_TYPES}">
        <response><responseDate>2026-06-15T10:00:00</responseDate><sessionId>{{S}}</sessionId></response>
        </c:changeMassageStatusNotificationResponse></s:Body></s:Envelope>"#
    );
    assert_eq!(
        read_change_status_answer(ok.as_bytes(), &limits, astana()).unwrap(),
        PushAnswer::Accepted { message_id: None, correlation_id: None }
    );
    let fault = write_fault(OperationName::ChangeStatusNotification, "soap:Server", &error_info());
    assert!(fault.contains("changeMassageStatusNotificationFault1_changeMassageStatusNotificationFault"));
    let PushAnswer::Fault { error, .. } = read_change_status_answer(fault.as_bytes(), &limits, astana()).unwrap()
    else {
        panic!()
    };
    assert_eq!(error, Some(error_info()));
    let error = read_change_status_answer(ok.replace(ASYNC_CLIENT_TYPES, ASYNC_TYPES).as_bytes(), &limits, astana())
        .unwrap_err();
    assert_eq!((error.code, error.operation), (WRONG_NAMESPACE, Some(OperationName::ChangeStatusNotification)));
    // A send-message answer is not an answer to a status change, and the reverse.
    let push = read_change_status_answer(write_push(&delivered()).as_bytes(), &limits, astana()).unwrap_err();
    assert_eq!(push.code, UNKNOWN_OPERATION);
    assert_eq!(read_push_answer(ok.as_bytes(), &limits, astana()).unwrap_err().code, UNKNOWN_OPERATION);
}

#[test]
fn an_error_inside_a_send_message_response_names_the_operation() {
    let twice = format!(
        r#"<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><ns2:sendMessageResponse xmlns:ns2="{ASYNC_TYPES}">
        <response><messageId>a</messageId><messageId>b</messageId></response></ns2:sendMessageResponse></s:Body></s:Envelope>"#
    );
    let error = read_push_answer(twice.as_bytes(), &Limits::default(), astana()).unwrap_err();
    assert_eq!((error.code, error.operation), (BAD_ELEMENT, Some(OperationName::SendMessage)));
}
