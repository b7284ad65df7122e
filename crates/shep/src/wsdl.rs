//! The WSDLs of the channels egov serves, and the one a PUSH recipient
//! implements, with the XSDs they import (files in `crates/shep/wsdl/`,
//! docs/shep.md, "WSDL"). SOAP 1.1, document/literal wrapped, `soapAction=""`;
//! the wrapper elements are qualified, everything below them unqualified.
//!
//! The files name the service's address as [`ADDRESS_PLACEHOLDER`] and their
//! XSDs by file name; as served, both become the edge's URLs: the address its
//! endpoint, each XSD `ENDPOINT?xsd=NAME`.

/// The address the files carry in place of the edge's own (`http://EGOV_SHEP_ADDRESS/bip-async/`).
pub const ADDRESS_PLACEHOLDER: &str = "http://EGOV_SHEP_ADDRESS";

/// The address the client WSDL keeps: the implementer's own, which egov cannot know.
pub const CLIENT_ADDRESS_PLACEHOLDER: &str = "http://EGOV_SHEP_CLIENT_ADDRESS/";

/// The sync channel's path.
pub const SYNC_PATH: &str = "/bip-sync-wss-gost/";

/// The async channel's path.
pub const ASYNC_PATH: &str = "/bip-async/";

const SYNC: &str = include_str!("../wsdl/SyncChannel.wsdl");
const ASYNC: &str = include_str!("../wsdl/AsyncChannel.wsdl");
const CLIENT: &str = include_str!("../wsdl/AsyncChannelClient.wsdl");

/// The XSDs the WSDLs import, by file name.
pub const XSDS: &[(&str, &str)] = &[
    ("common.xsd", include_str!("../wsdl/common.xsd")),
    ("SyncChannelTypes.xsd", include_str!("../wsdl/SyncChannelTypes.xsd")),
    ("AsyncChannelTypes.xsd", include_str!("../wsdl/AsyncChannelTypes.xsd")),
    ("AsyncChannelClientTypes.xsd", include_str!("../wsdl/AsyncChannelClientTypes.xsd")),
];

/// `text` with the address placeholder made `base_url` (`http://host:port`)
/// and each `schemaLocation="NAME.xsd"` made `BASE_URL PATH?xsd=NAME.xsd`.
fn served(text: &str, base_url: &str, path: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let mut out = text.replace(ADDRESS_PLACEHOLDER, base);
    for (name, _) in XSDS {
        out =
            out.replace(&format!("schemaLocation=\"{name}\""), &format!("schemaLocation=\"{base}{path}?xsd={name}\""));
    }
    out
}

/// SyncChannel v10 (`ISyncChannel`, port `SyncChannelHttpPort`) at `BASE_URL/bip-sync-wss-gost/`.
pub fn sync_wsdl(base_url: &str) -> String {
    served(SYNC, base_url, SYNC_PATH)
}

/// AsyncChannel v10 (`IAsyncChannel`, port `AsyncChannelHttpPort`) at `BASE_URL/bip-async/`.
pub fn async_wsdl(base_url: &str) -> String {
    served(ASYNC, base_url, ASYNC_PATH)
}

/// `IAsyncChannelClient` (port `AsyncChannelClientHttpPort`): what a PUSH
/// recipient implements (`sendMessage`) and a notified sender
/// (`changeMassageStatusNotification`). Its XSDs are at the async channel's
/// path; its address stays [`CLIENT_ADDRESS_PLACEHOLDER`].
pub fn client_wsdl(base_url: &str) -> String {
    served(CLIENT, base_url, ASYNC_PATH)
}

/// The XSD `name` (one of [`XSDS`]) as served at `BASE_URL PATH?xsd=NAME`,
/// its imports pointing at the same path.
pub fn xsd(name: &str, base_url: &str, path: &str) -> Option<String> {
    XSDS.iter().find(|(file, _)| *file == name).map(|(_, text)| served(text, base_url, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::{ASYNC_CLIENT_TYPES, ASYNC_TYPES, SYNC_TYPES};

    const XS: &str = "http://www.w3.org/2001/XMLSchema";
    const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
    const SOAP: &str = "http://schemas.xmlsoap.org/wsdl/soap/";

    /// Every schema (the XSDs, and those inline in the WSDLs) by target namespace.
    fn schemas(base: &str) -> Vec<(String, String)> {
        XSDS.iter().map(|(name, _)| (name.to_string(), xsd(name, base, ASYNC_PATH).unwrap())).collect()
    }

    fn global_elements(namespace: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (_, text) in schemas("http://h") {
            let document = roxmltree::Document::parse(&text).unwrap();
            let schema = document.root_element();
            assert_eq!(schema.attribute("elementFormDefault"), None, "descendants stay unqualified");
            if schema.attribute("targetNamespace") == Some(namespace) {
                names.extend(
                    schema
                        .children()
                        .filter(|n| n.has_tag_name((XS, "element")))
                        .map(|n| n.attribute("name").unwrap().to_owned()),
                );
            }
        }
        names
    }

    #[test]
    fn the_served_wsdls_name_the_edge_and_their_xsds() {
        let base = "http://127.0.0.1:8123";
        for (text, path, port) in [
            (sync_wsdl(base), SYNC_PATH, "SyncChannelHttpPort"),
            (async_wsdl(base), ASYNC_PATH, "AsyncChannelHttpPort"),
            (client_wsdl(base), ASYNC_PATH, "AsyncChannelClientHttpPort"),
        ] {
            assert!(!text.contains(ADDRESS_PLACEHOLDER), "{text}");
            let document = roxmltree::Document::parse(&text).unwrap();
            let address = document.descendants().find(|n| n.has_tag_name((SOAP, "address"))).unwrap();
            let port_node = address.parent().unwrap();
            assert_eq!(port_node.attribute("name"), Some(port));
            if port != "AsyncChannelClientHttpPort" {
                assert_eq!(address.attribute("location").unwrap(), format!("{base}{path}"));
            } else {
                assert_eq!(address.attribute("location").unwrap(), CLIENT_ADDRESS_PLACEHOLDER);
            }
            for import in document.descendants().filter(|n| n.has_tag_name((XS, "import"))) {
                let location = import.attribute("schemaLocation").unwrap();
                let name = location.strip_prefix(&format!("{base}{path}?xsd=")).unwrap();
                assert!(xsd(name, base, path).is_some(), "{location}");
            }
            for operation in document.descendants().filter(|n| n.has_tag_name((SOAP, "operation"))) {
                assert_eq!(operation.attribute("soapAction"), Some(""));
            }
            for binding in document.descendants().filter(|n| n.has_tag_name((SOAP, "binding"))) {
                assert_eq!(binding.attribute("style"), Some("document"));
            }
            for body in document.descendants().filter(|n| n.has_tag_name((SOAP, "body"))) {
                assert_eq!(body.attribute("use"), Some("literal"));
            }
        }
        let served = xsd("AsyncChannelTypes.xsd", base, ASYNC_PATH).unwrap();
        assert!(served.contains(&format!("schemaLocation=\"{base}{ASYNC_PATH}?xsd=common.xsd\"")), "{served}");
        assert_eq!(xsd("nothing.xsd", base, ASYNC_PATH), None);
    }

    #[test]
    fn every_operation_has_its_wrapper_response_and_fault_elements() {
        let sync = global_elements(SYNC_TYPES);
        let async_ = global_elements(ASYNC_TYPES);
        let client = global_elements(ASYNC_CLIENT_TYPES);
        for (elements, operations) in [
            (&sync, &["SendMessage"][..]),
            (&async_, &["sendMessage", "getMessages", "getMessageStatus", "sendDeliveryNotification"][..]),
            (&client, &["changeMassageStatusNotification"][..]),
        ] {
            for operation in operations {
                for element in [
                    operation.to_string(),
                    format!("{operation}Response"),
                    format!("{operation}Fault1_{operation}Fault"),
                ] {
                    assert!(elements.contains(&element), "{element} in {elements:?}");
                }
            }
        }
        // The port types and their operations, each with input, output and fault.
        for (text, port_type, operations) in [
            (sync_wsdl("http://h"), "ISyncChannel", 1),
            (async_wsdl("http://h"), "IAsyncChannel", 4),
            (client_wsdl("http://h"), "IAsyncChannelClient", 2),
        ] {
            let document = roxmltree::Document::parse(&text).unwrap();
            let node = document.descendants().find(|n| n.has_tag_name((WSDL, "portType"))).unwrap();
            assert_eq!(node.attribute("name"), Some(port_type));
            let found: Vec<_> = node.children().filter(|n| n.has_tag_name((WSDL, "operation"))).collect();
            assert_eq!(found.len(), operations);
            for operation in found {
                for part in ["input", "output", "fault"] {
                    assert!(operation.children().any(|n| n.has_tag_name((WSDL, part))), "{part}");
                }
            }
        }
    }

    #[test]
    fn the_guid_has_no_pattern_and_the_receive_status_keeps_its_typo() {
        let common = xsd("common.xsd", "http://h", ASYNC_PATH).unwrap();
        let document = roxmltree::Document::parse(&common).unwrap();
        let guid = document
            .descendants()
            .find(|n| n.has_tag_name((XS, "simpleType")) && n.attribute("name") == Some("guid"))
            .unwrap();
        assert!(!guid.descendants().any(|n| n.has_tag_name((XS, "pattern"))));
        assert!(common.contains("<xsd:enumeration value=\"MESSAGE_NOT_ACCTEPTED\"/>"));
        let error_info = document
            .descendants()
            .find(|n| n.has_tag_name((XS, "complexType")) && n.attribute("name") == Some("ErrorInfo"))
            .unwrap();
        assert!(
            error_info
                .descendants()
                .any(|n| n.attribute("name") == Some("subError") && n.attribute("type") == Some("common:ErrorInfo"))
        );
    }
}
