//! The web console (`egov serve --console ADDR`): the State Corporation
//! operator's workstation, the provider staff's screens at the regional
//! gateway ARM, and the testers' and auditors' views of every application,
//! its deadlines and its signed messages, the incidents and the SLA report.
//!
//! Pages are rendered on the server (maud); the style sheet and the little
//! script are embedded. The console talks to the participants only over
//! their gRPC services (the `egov-client` clients, the gateway's journal and
//! every participant's admin service), and signs what a person does with
//! that member's key from the key directory, as the command line does. It
//! keeps no state but the sessions, in memory.
#![forbid(unsafe_code)]

mod applications;
mod i18n;
mod incidents;
mod layout;
mod operator;
mod package;
mod staff;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use egov_client::OperatorClient;
use egov_regulation::Definition;
use egov_runtime::tls::TlsDir;
use egov_runtime::{Clock, KeyDir, SystemClock, Topology};

pub use i18n::Lang;

/// The largest file the operator may attach (each document of the package).
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// The largest form the console reads (a package of files).
const MAX_FORM_BYTES: usize = 16 * 1024 * 1024;
/// A session unused this long is forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
const SESSION_COOKIE: &str = "egov_console";
/// The most sessions kept: the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;

/// What the console needs: where the participants are, the key directory
/// whose members sign, the certificates (mTLS), the process definition.
#[derive(Clone)]
pub struct ConsoleConfig {
    pub topology: Topology,
    pub keys: KeyDir,
    pub tls: Option<TlsDir>,
    pub definition: Arc<Definition>,
    /// The SHEP edge's gRPC address (its admin service), when it runs: its log,
    /// with the SOAP message of each envelope, is shown beside the participants'.
    pub shep: Option<String>,
}

/// Serves the console on `listener` until `stopped` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ConsoleConfig,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config)).with_graceful_shutdown(stopped).await
}

/// Every page of the console.
pub fn router(config: ConsoleConfig) -> Router {
    let app = Arc::new(App { config, sessions: Mutex::default(), clock: Arc::new(SystemClock) });
    Router::new()
        .route("/", get(home))
        .route("/lang", get(switch_language))
        .route("/assets/console.css", get(|| async { asset("text/css", layout::CSS) }))
        .route("/assets/console.js", get(|| async { asset("text/javascript", layout::JS) }))
        .route("/operator", get(operator::start))
        .route("/operator/login", post(operator::login))
        .route("/operator/logout", post(operator::logout))
        .route("/operator/new", get(operator::new_form).post(operator::open_form))
        .route("/operator/applications/{id}", get(operator::application))
        .route("/operator/applications/{id}/submit", post(operator::submit))
        .route("/operator/applications/{id}/ticket", post(operator::ticket))
        .route("/operator/applications/{id}/issue", post(operator::issue))
        .route("/operator/applications/{id}/withdraw", post(operator::withdraw))
        .route("/staff", get(staff::start))
        .route("/staff/login", post(staff::login))
        .route("/staff/logout", post(staff::logout))
        .route("/staff/office", post(staff::receive))
        .route("/staff/registrations/{id}", get(staff::registration))
        .route("/staff/registrations/{id}/act", post(staff::act))
        .route("/applications", get(applications::list))
        .route("/applications/{id}", get(applications::detail))
        .route("/sla", get(applications::sla))
        .route("/regulation", get(applications::regulation))
        .route("/incidents", get(incidents::list))
        .route("/incidents/retry", post(incidents::retry))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&app), with_session))
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

pub(crate) struct App {
    pub config: ConsoleConfig,
    sessions: Mutex<HashMap<String, Session>>,
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// A channel to a participant at `address`, presenting `member`'s certificate over TLS.
    pub fn channel(&self, address: &str, member: &str) -> anyhow::Result<egov_runtime::GrpcChannel> {
        egov_runtime::tls::connect(address, self.config.tls.as_ref(), member)
    }

    pub fn definition(&self) -> &Definition {
        &self.config.definition
    }
}

/// One person's session: the language, who is logged in, and what the
/// operator's look-up found (the workstation answers it once, to OpenForm).
#[derive(Clone, Default)]
pub(crate) struct Session {
    pub lang: Lang,
    pub operator: Option<OperatorClient>,
    pub staff: Option<String>,
    pub lookups: HashMap<String, egov_proto::OpenFormResponse>,
    /// A message for the next page (what an action did).
    pub flash: Option<String>,
    last_seen: Option<Instant>,
}

#[derive(Clone)]
struct SessionId(String);

/// The request's session, as it was when the request came.
pub(crate) struct Ctx {
    pub app: Arc<App>,
    id: String,
    pub session: Session,
}

impl Ctx {
    pub fn lang(&self) -> Lang {
        self.session.lang
    }

    /// Changes the stored session.
    pub fn update(&self, change: impl FnOnce(&mut Session)) {
        let mut sessions = self.app.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(session) = sessions.get_mut(&self.id) {
            change(session);
        }
    }

    /// The flash message, taken (shown once).
    pub fn take_flash(&self) -> Option<String> {
        let mut flash = None;
        self.update(|session| flash = session.flash.take());
        flash
    }
}

impl FromRequestParts<Arc<App>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, app: &Arc<App>) -> Result<Ctx, Response> {
        let Some(SessionId(id)) = parts.extensions.get::<SessionId>().cloned() else {
            return Err((axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no session").into_response());
        };
        let session = app
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .unwrap_or_default();
        Ok(Ctx { app: Arc::clone(app), id, session })
    }
}

/// Finds the request's session by its cookie, or starts one (and sets the cookie).
async fn with_session(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned());
    let now = Instant::now();
    let (id, new) = {
        let mut sessions = app.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.retain(|_, session| session.last_seen.is_none_or(|seen| now.duration_since(seen) < SESSION_IDLE));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, session)| session.last_seen).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        match cookie.filter(|id| sessions.contains_key(id)) {
            Some(id) => {
                if let Some(session) = sessions.get_mut(&id) {
                    session.last_seen = Some(now);
                }
                (id, false)
            }
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                sessions.insert(id.clone(), Session { last_seen: Some(now), ..Session::default() });
                (id, true)
            }
        }
    };
    request.extensions_mut().insert(SessionId(id.clone()));
    let mut response = next.run(request).await;
    if new
        && let Ok(value) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(serde::Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// The language switch: sets the session's language and goes back.
async fn switch_language(ctx: Ctx, axum::extract::Query(query): axum::extract::Query<LangQuery>) -> Response {
    if let Some(lang) = Lang::parse(&query.to) {
        ctx.update(|session| session.lang = lang);
    }
    // Only a path of this console: never a redirect elsewhere.
    let local = query.back.starts_with('/') && !query.back.starts_with("//") && !query.back.contains('\\');
    let back = if local { query.back } else { "/".to_owned() };
    see_other(&back)
}

async fn home(ctx: Ctx) -> Html<String> {
    let lang = ctx.lang();
    let body = maud::html! {
        p { (i18n::t(lang, "home.intro")) }
        ul.tiles {
            li { a href="/operator" { (i18n::t(lang, "operator")) } }
            li { a href="/staff" { (i18n::t(lang, "staff")) } }
            li { a href="/applications" { (i18n::t(lang, "applications")) } }
            li { a href="/incidents" { (i18n::t(lang, "incidents")) } }
            li { a href="/sla" { (i18n::t(lang, "sla")) } }
            li { a href="/regulation" { (i18n::t(lang, "regulation")) } }
        }
    };
    layout::page(&ctx, i18n::t(lang, "console"), "/", body)
}

/// A redirect after a form: the browser fetches `to` with GET.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A refusal to show next to a field: its stable reason code and its message.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>) -> Problem {
        Problem { code: code.to_owned(), message: message.into() }
    }

    /// A participant's refusal: its `egov-reason` (or the message's prefix).
    pub fn from_status(status: &tonic::Status) -> Problem {
        let code = status
            .metadata()
            .get("egov-reason")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                // A message that begins with a reason code (`iin.check_digit: ...`), not any text before a colon.
                let (code, _) = status.message().split_once(':')?;
                let reason = code.contains('.')
                    && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
                reason.then(|| code.to_owned())
            })
            .unwrap_or_else(|| format!("grpc.{:?}", status.code()).to_lowercase());
        Problem { code, message: status.message().to_owned() }
    }

    pub fn from_error(code: &str, error: &anyhow::Error) -> Problem {
        match error.downcast_ref::<tonic::Status>() {
            Some(status) => Problem::from_status(status),
            None => Problem::new(code, format!("{code}: {error:#}")),
        }
    }

    /// The text shown: the message, which begins with the code.
    pub fn text(&self) -> String {
        if self.message.starts_with(&self.code) {
            self.message.clone()
        } else {
            format!("{}: {}", self.code, self.message)
        }
    }
}

/// A time in Astana, `YYYY-MM-DD HH:MM`; empty for 0.
pub(crate) fn time(ms: i64) -> String {
    if ms == 0 {
        return String::new();
    }
    egov_regulation::instance::to_local(egov_regulation::Calendar::kazakhstan(), ms)
        .map_or_else(|| ms.to_string(), |at| at.format("%Y-%m-%d %H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request as HttpRequest, StatusCode};
    use tower::ServiceExt as _;

    fn console() -> Router {
        let keys = std::env::temp_dir().join(format!("egov-console-test-{}", uuid::Uuid::new_v4()));
        router(ConsoleConfig {
            topology: Topology::default(),
            keys: KeyDir::new(keys),
            tls: None,
            definition: Arc::new(Definition::default_definition().clone()),
            shep: None,
        })
    }

    async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Response {
        let mut request = HttpRequest::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        router.clone().oneshot(request.body(Body::empty()).unwrap_or_default()).await.unwrap_or_else(|e| match e {})
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_session_starts_with_a_cookie_and_keeps_its_language() {
        let router = console();
        let first = get(&router, "/", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        let cookie = first.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(cookie.starts_with("egov_console=") && cookie.contains("HttpOnly"), "{cookie}");
        let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
        assert!(body(first).await.contains("<html lang=\"en\">"));
        let switched = get(&router, "/lang?to=kk&back=/regulation", Some(&cookie)).await;
        assert_eq!(switched.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/regulation"));
        assert!(switched.headers().get(header::SET_COOKIE).is_none(), "the same session");
        let page = body(get(&router, "/regulation", Some(&cookie)).await).await;
        assert!(page.contains("<html lang=\"kk\">") && page.contains("Регламент"), "{page}");
        // Another browser has its own session, in English.
        assert!(body(get(&router, "/", None).await).await.contains("<html lang=\"en\">"));
    }

    #[test]
    fn a_refusal_shows_its_reason_code_and_a_transport_error_its_grpc_code() {
        let refused = Problem::from_status(&tonic::Status::invalid_argument("iin.check_digit: check digit is 3"));
        assert_eq!(
            (refused.code.as_str(), refused.text().as_str()),
            ("iin.check_digit", "iin.check_digit: check digit is 3")
        );
        let down = Problem::from_status(&tonic::Status::unavailable("tcp connect error: Connection refused"));
        assert_eq!(down.code, "grpc.unavailable");
        assert_eq!(down.text(), "grpc.unavailable: tcp connect error: Connection refused");
        let mut tagged = tonic::Status::failed_precondition("the result has not arrived");
        tagged
            .metadata_mut()
            .insert("egov-reason", "workstation.result_not_ready".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(Problem::from_status(&tagged).code, "workstation.result_not_ready");
    }

    #[tokio::test]
    async fn the_language_switch_goes_back_only_to_a_page_of_the_console() {
        let router = console();
        for back in ["//evil.example/", "https://evil.example/", "/\\evil.example", ""] {
            let response = get(&router, &format!("/lang?to=ru&back={back}"), None).await;
            assert_eq!(response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/"), "{back}");
        }
    }

    #[tokio::test]
    async fn the_assets_are_embedded_and_the_operator_pages_want_a_log_in() {
        let router = console();
        let css = get(&router, "/assets/console.css", None).await;
        assert_eq!(css.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("text/css"));
        assert!(body(css).await.contains(".problem"));
        let new = get(&router, "/operator/new", None).await;
        assert_eq!(new.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/operator"));
        let login = body(get(&router, "/operator", None).await).await;
        assert!(login.contains("<label for=\"login\">Login</label>"), "{login}");
    }
}
