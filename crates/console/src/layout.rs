//! The frame of every page: the header with the menu and the language
//! switch, the flash message of the last action, the embedded assets.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use crate::Ctx;
use crate::i18n::{Lang, t};

pub const CSS: &str = include_str!("../assets/console.css");
pub const JS: &str = include_str!("../assets/console.js");

/// The menu: (path, text key).
const MENU: [(&str, &str); 7] = [
    ("/", "home"),
    ("/operator", "operator"),
    ("/staff", "staff"),
    ("/applications", "applications"),
    ("/incidents", "incidents"),
    ("/sla", "sla"),
    ("/regulation", "regulation"),
];

/// A whole page: `title` as its heading, `here` the path it is at (for the
/// menu and the language switch), `body` its content.
pub fn page(ctx: &Ctx, title: &str, here: &str, body: Markup) -> Html<String> {
    let lang = ctx.lang();
    let flash = ctx.take_flash();
    let section = MENU.iter().rev().find(|(path, _)| here == *path || (*path != "/" && here.starts_with(path)));
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t(lang, "console")) }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body data-live=[crate::live::watched(here).filter(|_| ctx.read()).map(|_| here)] {
                a.skip href="#main" { "↓" }
                header {
                    span.brand { (t(lang, "console")) }
                    nav aria-label=(t(lang, "nav")) {
                        ul {
                            @for (path, key) in MENU {
                                li {
                                    @if section.is_some_and(|(p, _)| *p == path) {
                                        a href=(path) aria-current="page" { (t(lang, key)) }
                                    } @else {
                                        a href=(path) { (t(lang, key)) }
                                    }
                                }
                            }
                        }
                    }
                    nav.languages aria-label=(t(lang, "language")) {
                        @for other in Lang::ALL {
                            @if other == lang {
                                span aria-current="true" lang=(other.code()) { (other.name()) }
                            } @else {
                                a href={ "/lang?to=" (other.code()) "&back=" (encode(here)) } lang=(other.code()) hreflang=(other.code()) { (other.name()) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(flash) = flash {
                        p.flash role="status" { (flash) }
                    }
                    (body)
                }
                footer { small { (t(lang, "time.zone")) } }
            }
        }
    };
    Html(markup.into_string())
}

/// `text` for a query string value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What [`encode`] encoded (`%XX` escapes; an invalid one is kept as it is).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A refusal's reason shown next to the field `id` names (the field's
/// `aria-describedby` points at it).
pub fn problem(lang: Lang, id: &str, problem: Option<&crate::Problem>) -> Markup {
    html! {
        @if let Some(problem) = problem {
            p.problem id=(id) role="alert" data-code=(problem.code) title=[(lang != Lang::En).then_some(&problem.message)] { (problem.text(lang)) }
        }
    }
}

/// The standing of a step, as a badge.
pub fn standing(lang: Lang, standing: egov_regulation::instance::Standing) -> Markup {
    use egov_regulation::instance::Standing;
    let (class, key) = match standing {
        Standing::Met => ("met", "met"),
        Standing::Missed => ("missed", "missed"),
        Standing::OnTrack => ("on-track", "on.track"),
        Standing::AtRisk => ("at-risk", "at.risk"),
        Standing::NoDeadline => return html! { "–" },
    };
    html! { span class={ "badge " (class) } { (t(lang, key)) } }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_text_encoded_decodes_to_itself() {
        for text in ["Retry: 3 stranded-1 → rshep (x)", "Дайын: action-2", "a%zz;b=c", ""] {
            assert_eq!(super::decode(&super::encode(text)), text);
        }
        assert_eq!(super::decode("%zz%4"), "%zz%4");
    }
}
