//! What a counter checks when it takes an application's package, at the
//! State Corporation (process 5) or at the provider's office (action 1 of
//! that channel): each attached document against the definition's checklist
//! (paragraph 9 of the Standard), then what the package lacks, and the
//! applicant's notice when it is refused for that.

use chrono::NaiveDate;
use egov_proto::{AttachedDocument, Notice};
use egov_regulation::definition::Labelled;
use egov_regulation::{Definition, Iin};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::Refusal;

/// The most pages one document may have (a check against nonsense such as a
/// negative count sent as an unsigned one; the simulator's assumption).
pub const MAX_PAGES: u32 = 10_000;

/// The definition's notice given to the applicant when a counter refuses an
/// incomplete package: its texts, each followed by the missing documents.
pub const INCOMPLETE_PACKAGE_NOTICE: &str = "counter.incomplete-package";

/// The reason codes of one counter's refusals.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    pub unknown_kind: &'static str,
    pub bad_hash: &'static str,
    pub hash_mismatch: &'static str,
    pub bad_document: &'static str,
}

/// The reason code of a representative who is the applicant, at either counter.
pub const SELF_REPRESENTATION: &str = "counter.self_representation";

/// Checks the people of an application as a counter takes it (paragraph 9
/// of the Standard): the applicant's IIN and the representative's, each of a
/// person born by `today` (the day of the application), and a representative
/// who is not the applicant.
pub fn check_people(applicant_iin: &str, representative_iin: Option<&str>, today: NaiveDate) -> Result<(), Refusal> {
    let check = |what: &str, text: &str| {
        Iin::parse_on(text, today)
            .map_err(|e| Refusal::new(Code::InvalidArgument, e.code(), format!("{what} {text:?}: {e}")))
    };
    check("applicant IIN", applicant_iin)?;
    let Some(representative_iin) = representative_iin else { return Ok(()) };
    check("representative IIN", representative_iin)?;
    if representative_iin == applicant_iin {
        return Err(Refusal::new(
            Code::InvalidArgument,
            SELF_REPRESENTATION,
            "the representative's IIN is the applicant's own",
        ));
    }
    Ok(())
}

/// Checks each attached document: a kind of the checklist, a well-formed
/// SHA-256 that matches the scan when the scan travels, a sensible page count.
pub fn check_attached(definition: &Definition, documents: &[AttachedDocument], codes: &Codes) -> Result<(), Refusal> {
    let invalid = |reason, message: String| Refusal::new(Code::InvalidArgument, reason, message);
    for document in documents {
        if !definition.documents.iter().any(|d| d.code == document.kind) {
            return Err(invalid(
                codes.unknown_kind,
                format!("document kind {:?} is not in the checklist", document.kind),
            ));
        }
        let hash_ok = document.sha256.len() == 64
            && document.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hash_ok {
            return Err(invalid(
                codes.bad_hash,
                format!("document {:?}: sha256 must be 64 lower-case hex digits", document.kind),
            ));
        }
        if !document.content.is_empty() && hex::encode(Sha256::digest(&document.content)) != document.sha256 {
            return Err(invalid(
                codes.hash_mismatch,
                format!("document {:?}: the scan does not match its sha256", document.kind),
            ));
        }
        if document.pages == 0 || document.pages > MAX_PAGES {
            return Err(invalid(
                codes.bad_document,
                format!("document {:?} has {} pages: 1 to {MAX_PAGES}", document.kind, document.pages),
            ));
        }
    }
    Ok(())
}

/// The checklist's documents the package lacks: the required ones, and the
/// power of attorney where a representative applies.
pub fn missing<'d>(definition: &'d Definition, documents: &[AttachedDocument], represented: bool) -> Vec<&'d Labelled> {
    definition
        .documents
        .iter()
        .filter(|d| d.required || (d.when.as_deref() == Some("representative") && represented))
        .filter(|d| !documents.iter().any(|attached| attached.kind == d.code))
        .collect()
}

/// The applicant's notice of the refusal of a package that lacks `missing`:
/// each language's text of the definition's `counter.incomplete-package`,
/// followed by the missing documents' names in that language; none where
/// the definition has no such notice.
pub fn incomplete_package_notice(definition: &Definition, missing: &[&Labelled]) -> Option<Notice> {
    let label = definition.notice(INCOMPLETE_PACKAGE_NOTICE)?;
    let text = |intro: &str, name: fn(&Labelled) -> &str| {
        let names: Vec<&str> = missing.iter().map(|d| name(d)).collect();
        format!("{intro} {}.", names.join("; "))
    };
    Some(Notice {
        code: label.code.clone(),
        text_kk: text(&label.kk, |d| &d.kk),
        text_ru: text(&label.ru, |d| &d.ru),
        text_en: text(&label.en, |d| &d.en),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_notice_lists_the_missing_documents_in_each_language() {
        let definition = Definition::default_definition();
        let missing: Vec<&Labelled> = definition.documents.iter().filter(|d| d.code != "application-form").collect();
        let notice =
            incomplete_package_notice(definition, &missing).expect("the embedded definition has the counter's notice");
        assert_eq!(notice.code, INCOMPLETE_PACKAGE_NOTICE);
        for (text, names) in [
            (&notice.text_en, missing.iter().map(|d| d.en.as_str()).collect::<Vec<_>>()),
            (&notice.text_ru, missing.iter().map(|d| d.ru.as_str()).collect()),
            (&notice.text_kk, missing.iter().map(|d| d.kk.as_str()).collect()),
        ] {
            assert!(names.iter().all(|name| text.contains(name)), "{text}");
            assert!(text.ends_with('.'), "{text}");
        }
        assert!(notice.text_en.starts_with("The documents are not accepted"), "{}", notice.text_en);
        let without = egov_regulation::definition::DEFAULT_DEFINITION.replace("counter.incomplete-package", "other");
        let without = Definition::from_toml(&without).unwrap();
        assert!(incomplete_package_notice(&without, &missing).is_none(), "no notice where the definition has none");
    }

    #[test]
    fn a_counter_takes_two_people_with_valid_iins_born_by_the_day() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let reason = |applicant, representative| check_people(applicant, representative, today).err().map(|r| r.reason);
        assert_eq!(reason("920611400773", None), None);
        assert_eq!(reason("920611400773", Some("870322300457")), None);
        assert_eq!(reason("920611400773", Some("920611400773")), Some(SELF_REPRESENTATION));
        assert_eq!(reason("920611400773", Some("870322300458")), Some("iin.check_digit"));
        assert_eq!(reason("85071530012", None), Some("iin.length"));
        // Born on 2026-06-02 (century digit 5: a man born in the 2000s), the day after.
        let born_tomorrow = (0..100)
            .find_map(|serial| {
                let first: String = format!("2606025{serial:04}");
                let digits: [u8; 11] = first.bytes().map(|b| b - b'0').collect::<Vec<_>>().try_into().unwrap();
                egov_regulation::iin::check_digit(&digits).map(|check| format!("{first}{check}"))
            })
            .unwrap();
        assert_eq!(reason(&born_tomorrow, None), Some("iin.future"));
        assert_eq!(reason("920611400773", Some(&born_tomorrow)), Some("iin.future"));
    }

    #[test]
    fn a_representative_needs_the_power_of_attorney() {
        let definition = Definition::default_definition();
        let codes = |represented| -> Vec<String> {
            missing(definition, &[], represented).iter().map(|d| d.code.clone()).collect()
        };
        assert_eq!(codes(false), ["application-form", "identity-document"]);
        assert_eq!(codes(true), ["application-form", "identity-document", "power-of-attorney"]);
    }
}
