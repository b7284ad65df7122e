//! What keeps another site from acting in the console with a person's
//! cookies (cross-site request forgery): every request other than a GET or
//! HEAD must come from a page of the console (its `Origin`, or its `Referer`
//! when it has no `Origin`, is the console's own), and every form that
//! changes something carries a token bound to the person's session (before
//! log-in, to the visitor cookie), checked in constant time. A request that
//! fails either is refused with `console.csrf` before anything is done.
//!
//! The tokens and the flash message are keyed with a secret drawn at each
//! start (HMAC-SHA256), so nothing but the console can make one, and a token
//! of one session is no token of another.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rand_core::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::i18n::t;
use crate::{App, Ctx, Problem, layout};

/// The name of the form field that carries the token.
pub(crate) const TOKEN_FIELD: &str = "csrf";

/// The console's key for tokens and for what it keeps in cookies; a new one at each start.
pub(crate) struct Secret([u8; 32]);

impl Secret {
    pub fn random() -> Secret {
        let mut key = [0; 32];
        rand_core::OsRng.fill_bytes(&mut key);
        Secret(key)
    }

    /// HMAC-SHA256 of `message` under the secret (RFC 2104), in hex.
    pub fn mac(&self, message: &[u8]) -> String {
        hex::encode(hmac_sha256(&self.0, message))
    }

    /// The token of forms for `binding` (a session, or a visitor before log-in).
    pub fn token(&self, binding: &str) -> String {
        self.mac(format!("form\0{binding}").as_bytes())
    }

    /// Whether `given` is the token for `binding`, compared in constant time.
    pub fn token_matches(&self, binding: &str, given: &str) -> bool {
        bool::from(self.token(binding).as_bytes().ct_eq(given.as_bytes()))
    }
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut inner = [0x36u8; BLOCK];
    let mut outer = [0x5cu8; BLOCK];
    for (at, byte) in key.iter().enumerate() {
        inner[at] ^= byte;
        outer[at] ^= byte;
    }
    let inner = Sha256::new().chain_update(inner).chain_update(message).finalize();
    Sha256::new().chain_update(outer).chain_update(inner).finalize().into()
}

/// The hidden field of a form that changes something: the request's token.
pub(crate) fn field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(TOKEN_FIELD) value=(ctx.token()); }
}

/// The request comes from a page of this console: its `Origin`, or without
/// one its `Referer`, has the console's scheme (`http`), host and port (the
/// request's `Host`). Neither header, or `Origin: null`, is refused too.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let value = |name: header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(host) = value(header::HOST) else {
        return Err(csrf("the request names no Host".to_owned()));
    };
    let from = match value(header::ORIGIN) {
        Some(origin) => origin.to_owned(),
        None => match value(header::REFERER) {
            Some(referer) => origin_of(referer),
            None => return Err(csrf("the request says neither its Origin nor its Referer".to_owned())),
        },
    };
    if from.eq_ignore_ascii_case(&format!("http://{host}")) {
        Ok(())
    } else {
        Err(csrf(format!("a form sent from {}, not from this console (http://{})", quote(&from), quote(host))))
    }
}

/// The scheme, host and port of a URL: `http://a:1` of `http://a:1/b?c`.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

/// At most 100 characters of what a request said, for a message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn csrf(why: String) -> Problem {
    Problem::new("console.csrf", format!("console.csrf: {why}; nothing was done"))
}

/// The refusal: 403 and a page saying why, with the reason code.
pub(crate) fn refused(ctx: &Ctx, problem: &Problem) -> Response {
    let lang = ctx.lang();
    let body = html! {
        (layout::problem(lang, "csrf-problem", Some(problem)))
        p { a href="/" { (t(lang, "home")) } }
    };
    (StatusCode::FORBIDDEN, layout::page(ctx, t(lang, "console"), "/", body)).into_response()
}

/// A form of the console (`application/x-www-form-urlencoded`) whose token
/// was checked; `T` its other fields. Without the token, or with another
/// session's, the request is refused with `console.csrf`.
pub(crate) struct Posted<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Arc<App>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Posted<T>, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, app).await?;
        let bytes = match axum::body::to_bytes(body, crate::MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => return Err((StatusCode::PAYLOAD_TOO_LARGE, error.to_string()).into_response()),
        };
        let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == TOKEN_FIELD).map(|(_, value)| value));
        ctx.check_token(token.as_deref()).map_err(|refused| *refused)?;
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        let axum::extract::Form(form) =
            axum::extract::Form::<T>::from_request(request, app).await.map_err(IntoResponse::into_response)?;
        Ok(Posted(form))
    }
}

/// A form with nothing but its token (log-out, a ticket, the hand-over).
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_is_hmac_sha256() {
        // RFC 4231, test case 2 (a key shorter than the block is padded with zeros).
        let mut key = [0; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_token_is_bound_to_its_session_and_to_the_start() {
        let secret = Secret::random();
        let token = secret.token("session:a");
        assert!(secret.token_matches("session:a", &token));
        assert!(!secret.token_matches("session:b", &token));
        assert!(!secret.token_matches("session:a", ""));
        assert!(!Secret::random().token_matches("session:a", &token));
    }

    #[test]
    fn only_the_consoles_own_origin_passes() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), value.parse().unwrap_or_else(|_| unreachable!()));
            }
            map
        };
        let host = (header::HOST, "127.0.0.1:50080");
        assert!(same_origin(&headers(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:50080")])).is_ok());
        let referer = (header::REFERER, "http://127.0.0.1:50080/operator?x=1");
        assert!(same_origin(&headers(&[host.clone(), referer])).is_ok());
        for origin in ["http://127.0.0.1:1", "http://evil.example", "https://127.0.0.1:50080", "null"] {
            let refused = same_origin(&headers(&[host.clone(), (header::ORIGIN, origin)]));
            assert_eq!(refused.map_err(|p| p.code).err().as_deref(), Some("console.csrf"), "{origin}");
        }
        let from_elsewhere = (header::REFERER, "http://127.0.0.1:50080.evil.example/");
        assert!(same_origin(&headers(&[host.clone(), from_elsewhere])).is_err());
        // The Origin decides when both are there.
        let both =
            [host.clone(), (header::ORIGIN, "http://evil.example"), (header::REFERER, "http://127.0.0.1:50080/")];
        assert!(same_origin(&headers(&both)).is_err());
        assert!(same_origin(&headers(&[host])).is_err(), "neither header");
        assert!(same_origin(&headers(&[(header::ORIGIN, "http://127.0.0.1:50080")])).is_err(), "no Host");
    }
}
