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
//! keeps no state but the sessions of those logged in, in memory; a visitor
//! who has not logged in has cookies only.
#![forbid(unsafe_code)]

mod applications;
mod body;
mod guard;
mod i18n;
mod incidents;
mod layout;
mod lists;
mod live;
mod operator;
mod package;
mod proofs;
mod shep;
mod staff;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use egov_client::OperatorClient;
use egov_regulation::Definition;
use egov_runtime::tls::TlsDir;
use egov_runtime::{Clock, KeyDir, SystemClock, Topology};

pub use i18n::{Lang, english_words};

/// The largest file the operator may attach (each document of the package).
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// The most the console keeps of a form (the documents of a package and its fields).
const MAX_FORM_BYTES: usize = 16 * 1024 * 1024;
/// The most it reads of a request: a file over [`MAX_FILE_BYTES`] is read to
/// its end (and not kept), so the browser is told why it was refused.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// A session unused this long is forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// The session made at log-in.
const SESSION_COOKIE: &str = "egov_console";
/// A random id each browser is given on its first visit: the forms' token is bound to it before log-in.
const VISITOR_COOKIE: &str = "egov_visitor";
const LANG_COOKIE: &str = "egov_lang";
/// The message of what an action did, for the next page.
const FLASH_COOKIE: &str = "egov_flash";
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
    routes(Arc::new(App {
        config,
        sessions: Mutex::default(),
        secret: guard::Secret::random(),
        clock: Arc::new(SystemClock),
    }))
}

fn routes(app: Arc<App>) -> Router {
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
        .route("/operator/call-next", post(operator::call_next))
        .route("/operator/applications/{id}/withdraw", post(operator::withdraw))
        .route("/staff", get(staff::start))
        .route("/staff/login", post(staff::login))
        .route("/staff/logout", post(staff::logout))
        .route("/staff/office", post(staff::receive))
        .route("/staff/registrations/{id}", get(staff::registration))
        .route("/staff/registrations/{id}/act", post(staff::act))
        .route("/applications", get(applications::list))
        .route("/applications/{id}", get(applications::detail))
        .route("/shep", get(shep::find))
        .route("/shep/{id}", get(shep::messages))
        .route("/sla", get(applications::sla))
        .route("/regulation", get(applications::regulation))
        .route("/incidents", get(incidents::list))
        .route("/incidents/retry", post(incidents::retry))
        .route("/live", get(live::events))
        .route("/applications/{id}/documents/{sha256}", get(applications::document))
        .route("/applications/{id}/evidence", get(proofs::download))
        .fallback(|ctx: Ctx| async move { not_found(&ctx) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&app), visit))
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

pub(crate) struct App {
    pub config: ConsoleConfig,
    sessions: Mutex<HashMap<String, Session>>,
    secret: guard::Secret,
    pub clock: Arc<dyn Clock>,
}

impl App {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A channel to a participant at `address`, presenting `member`'s certificate over TLS.
    pub fn channel(&self, address: &str, member: &str) -> anyhow::Result<egov_runtime::GrpcChannel> {
        egov_runtime::tls::connect(address, self.config.tls.as_ref(), member)
    }

    pub fn definition(&self) -> &Definition {
        &self.config.definition
    }
}

/// One person's session, made at log-in: who is logged in, and what the
/// operator's look-up found (the workstation answers it once, to OpenForm).
/// A visitor who has not logged in has none: their language, the flash
/// message and the visitor cookie the forms' token is bound to are cookies.
#[derive(Clone, Default)]
pub(crate) struct Session {
    pub operator: Option<OperatorClient>,
    pub staff: Option<String>,
    pub lookups: HashMap<String, egov_proto::OpenFormResponse>,
    last_seen: Option<Instant>,
}

/// What the request brought: its session (if its cookie names a live one),
/// the visitor cookie, the language and the flash message; and the cookies
/// to set on the response.
#[derive(Clone)]
struct Visit {
    session: Option<String>,
    /// A GET (or HEAD): the page is what its path shows, and may follow it live.
    read: bool,
    /// A live page fetching itself again (`X-Egov-Live`): it leaves the flash message for the page it is for.
    live: bool,
    visitor: String,
    lang: Lang,
    flash: Option<String>,
    set_cookies: Arc<Mutex<Vec<String>>>,
}

/// The request's session, as it was when the request came.
pub(crate) struct Ctx {
    pub app: Arc<App>,
    visit: Visit,
    pub session: Session,
}

impl Ctx {
    pub fn lang(&self) -> Lang {
        self.visit.lang
    }

    /// Whether the page answers a GET: a page answering a form (its refusal) does not follow its path live.
    pub fn read(&self) -> bool {
        self.visit.read
    }

    /// Changes the stored session (none before log-in).
    pub fn update(&self, change: impl FnOnce(&mut Session)) {
        let Some(id) = &self.visit.session else { return };
        if let Some(session) = self.app.sessions().get_mut(id) {
            change(session);
        }
    }

    /// A log-in: the session, changed, under a new id (the cookie set); the
    /// only place a session is made. The least recently used goes when
    /// there are [`MAX_SESSIONS`].
    pub fn log_in(&self, change: impl FnOnce(&mut Session)) {
        let id = new_id();
        {
            let mut sessions = self.app.sessions();
            let mut session = self.visit.session.as_ref().and_then(|old| sessions.remove(old)).unwrap_or_default();
            change(&mut session);
            session.last_seen = Some(Instant::now());
            while sessions.len() >= MAX_SESSIONS {
                let Some(oldest) =
                    sessions.iter().min_by_key(|(_, session)| session.last_seen).map(|(id, _)| id.clone())
                else {
                    break;
                };
                sessions.remove(&oldest);
            }
            sessions.insert(id.clone(), session);
        }
        self.set_cookie(&format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"));
    }

    /// A log-out: the session changed, and forgotten once no one is logged in.
    pub fn log_out(&self, change: impl FnOnce(&mut Session)) {
        let Some(id) = &self.visit.session else { return };
        let mut sessions = self.app.sessions();
        let Some(session) = sessions.get_mut(id) else { return };
        change(session);
        if session.operator.is_none() && session.staff.is_none() {
            sessions.remove(id);
            drop(sessions);
            self.set_cookie(&expired(SESSION_COOKIE));
        }
    }

    /// The token of this request's forms: bound to its session, or before log-in to the visitor cookie.
    pub fn token(&self) -> String {
        self.app.secret.token(&self.binding())
    }

    fn binding(&self) -> String {
        match &self.visit.session {
            Some(id) => format!("session:{id}"),
            None => format!("visitor:{}", self.visit.visitor),
        }
    }

    /// The form's token is this request's, or the refusal (`console.csrf`) to answer.
    pub fn check_token(&self, given: Option<&str>) -> Result<(), Box<Response>> {
        if given.is_some_and(|given| self.app.secret.token_matches(&self.binding(), given)) {
            return Ok(());
        }
        let why = if given.is_none_or(str::is_empty) {
            "the form has no token"
        } else {
            "the form's token is not this session's"
        };
        let problem = Problem::new("console.csrf", format!("console.csrf: {why}; nothing was done"));
        Err(Box::new(guard::refused(self, &problem)))
    }

    /// A message for the next page (what an action did), in a cookie sealed with the console's secret.
    pub fn flash(&self, text: &str) {
        let text = layout::encode(text);
        let seal = self.app.secret.mac(format!("flash\0{text}").as_bytes());
        self.set_cookie(&format!("{FLASH_COOKIE}={seal}.{text}; Path=/; HttpOnly; SameSite=Strict; Max-Age=300"));
    }

    /// The flash message, taken (shown once); a live page's fetch of itself leaves it.
    pub fn take_flash(&self) -> Option<String> {
        if self.visit.live {
            return None;
        }
        let flash = self.visit.flash.clone()?;
        self.set_cookie(&expired(FLASH_COOKIE));
        Some(flash)
    }

    pub fn set_cookie(&self, cookie: &str) {
        self.visit.set_cookies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(cookie.to_owned());
    }
}

impl FromRequestParts<Arc<App>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, app: &Arc<App>) -> Result<Ctx, Response> {
        let Some(visit) = parts.extensions.get::<Visit>().cloned() else {
            return Err((axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no session").into_response());
        };
        Ok(Ctx::new(app, visit))
    }
}

impl Ctx {
    fn new(app: &Arc<App>, visit: Visit) -> Ctx {
        let session = visit.session.as_ref().and_then(|id| app.sessions().get(id).cloned()).unwrap_or_default();
        Ctx { app: Arc::clone(app), visit, session }
    }
}

/// A new random id (a session's, a visitor's): 32 hex digits.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn expired(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The request's cookies, by name.
fn cookies(headers: &axum::http::HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Reads the request's cookies: its session (only if its cookie names a live
/// one, which it keeps alive; it makes none), the visitor cookie (set when
/// missing), the language and the flash message. A request other than GET or
/// HEAD must come from a page of the console, or it is refused here.
async fn visit(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let jar = cookies(request.headers());
    let mut set_cookies = Vec::new();
    let session = {
        let now = Instant::now();
        let mut sessions = app.sessions();
        sessions.retain(|_, session| session.last_seen.is_none_or(|seen| now.duration_since(seen) < SESSION_IDLE));
        let live = jar.get(SESSION_COOKIE).and_then(|id| sessions.get_mut(id).map(|session| (id, session)));
        match live {
            Some((id, session)) => {
                session.last_seen = Some(now);
                Some(id.clone())
            }
            None => {
                if jar.contains_key(SESSION_COOKIE) {
                    set_cookies.push(expired(SESSION_COOKIE));
                }
                None
            }
        }
    };
    let well_formed = |id: &&String| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let visitor = match jar.get(VISITOR_COOKIE).filter(well_formed) {
        Some(visitor) => visitor.clone(),
        None => {
            let visitor = new_id();
            set_cookies.push(format!("{VISITOR_COOKIE}={visitor}; Path=/; HttpOnly; SameSite=Strict"));
            visitor
        }
    };
    let flash = jar.get(FLASH_COOKIE).and_then(|sealed| {
        let (seal, text) = sealed.split_once('.')?;
        let expected = app.secret.mac(format!("flash\0{text}").as_bytes());
        bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), seal.as_bytes())).then(|| layout::decode(text))
    });
    let visit = Visit {
        session,
        read: matches!(*request.method(), Method::GET | Method::HEAD),
        live: request.headers().contains_key("x-egov-live"),
        visitor,
        lang: jar.get(LANG_COOKIE).and_then(|code| Lang::parse(code)).unwrap_or_default(),
        flash,
        set_cookies: Arc::new(Mutex::new(set_cookies)),
    };
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = match guard::same_origin(request.headers()) {
        Err(problem) if !safe => guard::refused(&Ctx::new(&app, visit.clone()), &problem),
        _ => {
            request.extensions_mut().insert(visit.clone());
            next.run(request).await
        }
    };
    let set_cookies = std::mem::take(&mut *visit.set_cookies.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(serde::Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// The language switch: sets the language's cookie and goes back.
async fn switch_language(ctx: Ctx, axum::extract::Query(query): axum::extract::Query<LangQuery>) -> Response {
    if let Some(lang) = Lang::parse(&query.to) {
        ctx.set_cookie(&format!("{LANG_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000", lang.code()));
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

/// The page of what is not there (an unknown path, an id no participant knows), in the chosen language: 404.
pub(crate) fn not_found(ctx: &Ctx) -> Response {
    let lang = ctx.lang();
    let problem = Problem::new("console.not_found", "console.not_found: no such page or record");
    let body = maud::html! {
        (layout::problem(lang, "not-found", Some(&problem)))
        p { a href="/" { (i18n::t(lang, "home")) } }
    };
    (axum::http::StatusCode::NOT_FOUND, layout::page(ctx, i18n::t(lang, "not.found"), "/", body)).into_response()
}

/// A redirect after a form: the browser fetches `to` with GET.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A refusal to show next to a field: its stable reason code and its message.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub code: String,
    /// The participant's (or the console's) own message, in English.
    pub message: String,
    /// What follows the text in every language (when to come back).
    pub note: String,
}

impl Problem {
    /// A problem whose message quotes the input back as a participant's
    /// refusal does: within the same bounds (`egov_runtime::status::bounded`).
    pub fn new(code: &str, message: impl Into<String>) -> Problem {
        Problem { code: code.to_owned(), message: egov_runtime::status::bounded(&message.into()), note: String::new() }
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
        Problem { code, message: egov_runtime::status::bounded(status.message()), note: String::new() }
    }

    pub fn from_error(code: &str, error: &anyhow::Error) -> Problem {
        match error.downcast_ref::<tonic::Status>() {
            Some(status) => Problem::from_status(status),
            None => Problem::new(code, format!("{code}: {error:#}")),
        }
    }

    /// The text shown: the code, then in English the message, in Kazakh and
    /// Russian the code's text from the console's table.
    pub fn text(&self, lang: Lang) -> String {
        let text = match lang {
            Lang::En if self.message.starts_with(&self.code) => self.message.clone(),
            Lang::En => format!("{}: {}", self.code, self.message),
            _ => format!("{}: {}", self.code, i18n::problem_text(lang, &self.code)),
        };
        text + &self.note
    }
}

/// A time in Astana with its offset, `YYYY-MM-DD HH:MM:SS +05:00`, the one
/// format of every time the console shows; empty for 0.
pub(crate) fn time(ms: i64) -> String {
    if ms == 0 {
        return String::new();
    }
    egov_regulation::instance::to_local(egov_regulation::Calendar::kazakhstan(), ms)
        .map_or_else(|| ms.to_string(), |at| at.format("%Y-%m-%d %H:%M:%S %:z").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request as HttpRequest, StatusCode};
    use tower::ServiceExt as _;

    const HOST: &str = "console.test:8080";
    const ORIGIN: &str = "http://console.test:8080";

    fn app() -> Arc<App> {
        app_on(Topology::default())
    }

    /// The console's state for a test, reaching the participants at `topology`, with keys of a directory of its own.
    pub(super) fn app_on(topology: Topology) -> Arc<App> {
        let keys = std::env::temp_dir().join(format!("egov-console-test-{}", uuid::Uuid::new_v4()));
        Arc::new(App {
            config: ConsoleConfig {
                topology,
                keys: KeyDir::new(keys),
                tls: None,
                definition: Arc::new(Definition::default_definition().clone()),
                shep: None,
            },
            sessions: Mutex::default(),
            secret: guard::Secret::random(),
            clock: Arc::new(SystemClock),
        })
    }

    fn console() -> Router {
        routes(app())
    }

    async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Response {
        let mut request = HttpRequest::get(path).header(header::HOST, HOST);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        router.clone().oneshot(request.body(Body::empty()).unwrap_or_default()).await.unwrap_or_else(|e| match e {})
    }

    /// A POST of `body` (`content_type`) with `headers` (Origin, Referer, Cookie).
    async fn post(
        router: &Router,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        content_type: &str,
        body: String,
    ) -> Response {
        let mut request = HttpRequest::post(path).header(header::HOST, HOST).header(header::CONTENT_TYPE, content_type);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        router.clone().oneshot(request.body(Body::from(body)).unwrap_or_default()).await.unwrap_or_else(|e| match e {})
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The response's `name=value` cookies set.
    fn set_cookies(response: &Response) -> Vec<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    fn cookie_named(cookies: &[String], name: &str) -> Option<String> {
        cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }

    /// The token in the page's first form.
    fn token_in(page: &str) -> String {
        let (_, rest) = page.split_once("name=\"csrf\" value=\"").unwrap_or_default();
        rest.split('"').next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_visitor_keeps_the_language_in_a_cookie_and_no_session_is_made() {
        let app = app();
        let router = routes(Arc::clone(&app));
        let first = get(&router, "/", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        let cookies = set_cookies(&first);
        let visitor = cookies.iter().find(|c| c.starts_with("egov_visitor=")).cloned().unwrap_or_default();
        assert!(visitor.contains("HttpOnly") && visitor.contains("SameSite=Strict"), "{cookies:?}");
        assert!(cookie_named(&cookies, SESSION_COOKIE).is_none(), "no session before log-in: {cookies:?}");
        let cookie = cookie_named(&cookies, VISITOR_COOKIE).unwrap_or_default();
        assert!(body(first).await.contains("<html lang=\"en\">"));
        let switched = get(&router, "/lang?to=kk&back=/regulation", Some(&cookie)).await;
        assert_eq!(switched.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/regulation"));
        let cookies = set_cookies(&switched);
        assert!(cookie_named(&cookies, VISITOR_COOKIE).is_none(), "the same visitor: {cookies:?}");
        let lang = cookie_named(&cookies, LANG_COOKIE).unwrap_or_default();
        assert_eq!(lang, "egov_lang=kk");
        let page = body(get(&router, "/regulation", Some(&format!("{cookie}; {lang}"))).await).await;
        assert!(page.contains("<html lang=\"kk\">") && page.contains("Регламент"), "{page}");
        // Another browser has its own language, English.
        assert!(body(get(&router, "/", None).await).await.contains("<html lang=\"en\">"));
        assert!(app.sessions().is_empty(), "visits made sessions");
    }

    /// 10,100 visits without a cookie (more than the sessions kept) leave the
    /// session of a member logged in, and make none.
    #[tokio::test]
    async fn a_flood_of_visits_logs_no_one_out() {
        let app = app();
        let valid_from = chrono::DateTime::from_timestamp_millis(SystemClock.now_ms() - 86_400_000).unwrap_or_default();
        app.config.keys.init(egov_runtime::ids::DEFAULT_MEMBERS, valid_from).unwrap_or_else(|e| panic!("{e:#}"));
        let router = routes(Arc::clone(&app));
        let visitor = cookie_named(&set_cookies(&get(&router, "/", None).await), VISITOR_COOKIE).unwrap_or_default();
        let page = body(get(&router, "/staff", Some(&visitor)).await).await;
        let form = format!("csrf={}&member=office-1", token_in(&page));
        let headers = [(header::ORIGIN, ORIGIN), (header::COOKIE, visitor.as_str())];
        let logged_in = post(&router, "/staff/login", &headers, "application/x-www-form-urlencoded", form).await;
        assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
        let session = cookie_named(&set_cookies(&logged_in), SESSION_COOKIE).unwrap_or_default();
        assert!(!session.is_empty(), "the log-in made a session");
        for _ in 0..MAX_SESSIONS + 100 {
            assert_eq!(get(&router, "/", None).await.status(), StatusCode::OK);
        }
        let id = session.trim_start_matches("egov_console=");
        assert_eq!(app.sessions().len(), 1, "visits made sessions");
        assert_eq!(app.sessions().get(id).and_then(|s| s.staff.clone()).as_deref(), Some("office-1"), "logged out");
        // The log-out forgets it.
        let page = body(get(&router, "/", Some(&format!("{visitor}; {session}"))).await).await;
        assert!(!page.contains("csrf"), "the home page has no form");
        let both = format!("{visitor}; {session}");
        let token = Ctx::new(
            &app,
            Visit {
                session: Some(id.to_owned()),
                read: true,
                live: false,
                visitor: String::new(),
                lang: Lang::En,
                flash: None,
                set_cookies: Arc::default(),
            },
        )
        .token();
        let headers = [(header::ORIGIN, ORIGIN), (header::COOKIE, both.as_str())];
        let out =
            post(&router, "/staff/logout", &headers, "application/x-www-form-urlencoded", format!("csrf={token}"))
                .await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert!(app.sessions().is_empty());
    }

    /// Every POST route of the router, with a form it could take (the multipart ones as such).
    const POSTS: [(&str, bool); 13] = [
        ("/operator/login", false),
        ("/operator/logout", false),
        ("/operator/new", false),
        ("/operator/applications/a-1/submit", true),
        ("/operator/applications/a-1/ticket", false),
        ("/operator/applications/a-1/issue", false),
        ("/operator/call-next", false),
        ("/operator/applications/a-1/withdraw", false),
        ("/staff/login", false),
        ("/staff/logout", false),
        ("/staff/office", true),
        ("/staff/registrations/R-1/act", false),
        ("/incidents/retry", false),
    ];

    fn form(multipart: bool, token: Option<&str>) -> (&'static str, String) {
        let fields: Vec<(&str, &str)> = token
            .map(|token| ("csrf", token))
            .into_iter()
            .chain([("member", "nobody"), ("applicant", "850715300122")])
            .collect();
        if multipart {
            let mut body = String::new();
            for (name, value) in fields {
                body.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
            }
            body.push_str("--XyZ--\r\n");
            ("multipart/form-data; boundary=XyZ", body)
        } else {
            let body = fields.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("&");
            ("application/x-www-form-urlencoded", body)
        }
    }

    async fn refused_with_csrf(response: Response, what: &str) {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        let page = body(response).await;
        assert!(page.contains("data-code=\"console.csrf\"") && page.contains("role=\"alert\""), "{what}: {page}");
    }

    #[tokio::test]
    async fn every_form_wants_its_token_and_this_consoles_origin() {
        let routes_posted = include_str!("lib.rs").split("fn routes(").nth(1).unwrap_or_default();
        let routes_posted = routes_posted.split("\n}").next().unwrap_or_default();
        assert_eq!(routes_posted.matches("post(").count(), POSTS.len(), "a POST route the test does not try");
        let router = console();
        let visitor = cookie_named(&set_cookies(&get(&router, "/", None).await), VISITOR_COOKIE).unwrap_or_default();
        let token = token_in(&body(get(&router, "/operator", Some(&visitor)).await).await);
        assert_eq!(token.len(), 64, "the log-in form has a token");
        let other = cookie_named(&set_cookies(&get(&router, "/", None).await), VISITOR_COOKIE).unwrap_or_default();
        let others = token_in(&body(get(&router, "/operator", Some(&other)).await).await);
        assert_ne!(token, others, "each visitor has their own token");
        for (path, multipart) in POSTS {
            let cookie = (header::COOKIE, visitor.as_str());
            for (name, from) in [
                (header::ORIGIN, "http://evil.example"),
                (header::ORIGIN, "http://console.test:1"),
                (header::ORIGIN, "null"),
                (header::REFERER, "http://evil.example/console.test:8080/"),
            ] {
                let (kind, form) = form(multipart, Some(&token));
                let response = post(&router, path, &[(name.clone(), from), cookie.clone()], kind, form).await;
                refused_with_csrf(response, &format!("{path} from {name} {from}")).await;
            }
            let (kind, body) = form(multipart, Some(&token));
            refused_with_csrf(
                post(&router, path, std::slice::from_ref(&cookie), kind, body).await,
                &format!("{path} from nowhere"),
            )
            .await;
            let (kind, body) = form(multipart, None);
            let response = post(&router, path, &[(header::ORIGIN, ORIGIN), cookie.clone()], kind, body).await;
            refused_with_csrf(response, &format!("{path} without its token")).await;
            let (kind, body) = form(multipart, Some(&others));
            let response = post(&router, path, &[(header::ORIGIN, ORIGIN), cookie.clone()], kind, body).await;
            refused_with_csrf(response, &format!("{path} with another visitor's token")).await;
            // From a page of the console with its token, the form is taken.
            let (kind, body) = form(multipart, Some(&token));
            let referer = format!("{ORIGIN}/operator");
            for from in [(header::ORIGIN, ORIGIN), (header::REFERER, referer.as_str())] {
                let response = post(&router, path, &[from, cookie.clone()], kind, body.clone()).await;
                assert_ne!(response.status(), StatusCode::FORBIDDEN, "{path}: {}", self::body(response).await);
            }
        }
        // The staff's log-in, taken, says why it logged no one in.
        let (kind, form) = form(false, Some(&token));
        let page = body(
            post(&router, "/staff/login", &[(header::ORIGIN, ORIGIN), (header::COOKIE, &visitor)], kind, form).await,
        )
        .await;
        assert!(
            page.contains("data-code=\"console.no_key\"") || page.contains("data-code=\"console.unknown_member\""),
            "{page}"
        );
    }

    #[test]
    fn a_refusal_shows_its_reason_code_and_a_transport_error_its_grpc_code() {
        let refused = Problem::from_status(&tonic::Status::invalid_argument("iin.check_digit: check digit is 3"));
        assert_eq!(
            (refused.code.as_str(), refused.text(Lang::En).as_str()),
            ("iin.check_digit", "iin.check_digit: check digit is 3")
        );
        assert_eq!(refused.text(Lang::Ru), "iin.check_digit: контрольная цифра ИИН не сходится");
        assert_eq!(refused.text(Lang::Kk), "iin.check_digit: ЖСН-нің бақылау цифры сәйкес емес");
        let down = Problem::from_status(&tonic::Status::unavailable("tcp connect error: Connection refused"));
        assert_eq!(down.code, "grpc.unavailable");
        assert_eq!(down.text(Lang::En), "grpc.unavailable: tcp connect error: Connection refused");
        assert_eq!(down.text(Lang::Ru), "grpc.unavailable: участник недоступен");
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
