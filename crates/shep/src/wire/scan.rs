//! The pass over the bytes before any tree is built: size, UTF-8, nesting
//! depth, element count, no DTD, no processing instruction (quick-xml's
//! streaming reader, which keeps nothing but the current event).

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::{DTD, Limits, NOT_XML, PROCESSING_INSTRUCTION, TOO_DEEP, TOO_LARGE, TOO_MANY_ELEMENTS, WireError};

/// Checks `bytes` against `limits` and returns them as text (a leading byte
/// order mark removed), ready for the tree reader.
pub(super) fn check<'b>(bytes: &'b [u8], limits: &Limits) -> Result<&'b str, WireError> {
    if bytes.len() > limits.max_bytes {
        return Err(WireError::new(
            TOO_LARGE,
            format!("the request has {} bytes, over the limit of {}", bytes.len(), limits.max_bytes),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        WireError::new(
            NOT_XML,
            format!("the request is not UTF-8 (byte {} is not): egov reads UTF-8", error.valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let (mut depth, mut elements) = (0usize, 0usize);
    loop {
        let event = reader.read_event().map_err(|error| {
            WireError::new(
                NOT_XML,
                format!("the request is not well-formed XML at byte {}: {error}", reader.error_position()),
            )
        })?;
        let opened = match event {
            Event::Start(_) => {
                depth += 1;
                true
            }
            Event::Empty(_) => true,
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                false
            }
            Event::DocType(_) => {
                return Err(WireError::new(
                    DTD,
                    "the request has a document type declaration (<!DOCTYPE>): egov refuses DTDs and entity declarations",
                ));
            }
            Event::PI(instruction) => {
                let target = instruction.target().to_owned();
                return Err(WireError::new(
                    PROCESSING_INSTRUCTION,
                    format!(
                        "the request has a processing instruction <?{target} ...?>: egov accepts none but the XML declaration"
                    ),
                ));
            }
            Event::Eof => break,
            _ => false,
        };
        if opened {
            elements += 1;
            // An empty element is as deep as a start tag would be.
            let level = if matches!(event, Event::Empty(_)) { depth + 1 } else { depth };
            if level > limits.max_depth {
                return Err(WireError::new(
                    TOO_DEEP,
                    format!("elements are nested {level} deep, over the limit of {}", limits.max_depth),
                ));
            }
            if elements > limits.max_elements {
                return Err(WireError::new(
                    TOO_MANY_ELEMENTS,
                    format!("the request has more than {} elements", limits.max_elements),
                ));
            }
        }
    }
    Ok(text)
}
