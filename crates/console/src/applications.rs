//! The testers' and auditors' screens: the searchable list of applications,
//! each application's page (its timeline against the regulatory deadlines on
//! a working-day axis, the block diagram with the current step, every signed
//! message with its signatures verified, every participant's monitoring
//! records), the SLA report and the regulation drawn.

use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

use chrono::{Datelike as _, NaiveDate, Timelike as _};
use egov_envelope::{Checks, TrustRegistry, carried_envelope, open, verify_countersignature};
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{Application, Envelope, GetApplicationRequest, QueryLogRequest, QueryMonitoringRequest};
use egov_regulation::instance::{Standing, deadline, to_local};
use egov_regulation::{Calendar, Definition, render};
use egov_runtime::ids;
use maud::{Markup, PreEscaped, html};

use crate::i18n::{self, Lang, t};
use crate::layout::{self, problem};
use crate::{App, Ctx, Problem, body, lists, time};

/// The first page of the list `query` asks for, of the workstation only
/// (`operator_id` set) or of every source (`lists::sources`).
pub async fn first_page(app: &App, query: &egov_proto::ApplicationListQuery) -> Result<Vec<Application>, Problem> {
    let sources = if query.operator_id.is_empty() { lists::sources(app) } else { vec![lists::Source::Workstation] };
    let page = lists::page(app, &sources, query, &lists::Boundaries::default(), true, PAGE).await;
    match page.problem {
        Some(problem) if page.rows.is_empty() => Err(problem),
        _ => Ok(page.rows),
    }
}

/// A client of the ARM's staff service, reading as the ARM itself.
pub(crate) fn staff_client(app: &App) -> anyhow::Result<egov_client::StaffClient> {
    egov_client::StaffClient::connect(
        &app.config.topology.regional,
        app.config.tls.as_ref(),
        ids::REGIONAL,
        std::sync::Arc::clone(&app.clock),
    )
}

/// One step or term of an application with its deadline, judged now.
pub struct Judged {
    pub item: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub deadline_ms: Option<i64>,
    pub standing: Standing,
}

/// Every step of the path, the current step, and the definition's terms,
/// each with its standing at `now_ms`: the rule of `egov sla report`.
pub fn judge(definition: &Definition, application: &Application, now_ms: i64) -> Vec<Judged> {
    let calendar = Calendar::kazakhstan();
    let some = |ms: i64| (ms > 0).then_some(ms);
    let mut judged: Vec<Judged> = application
        .path
        .iter()
        .map(|step| Judged {
            item: step.step_id.clone(),
            started_ms: step.started_time_ms,
            ended_ms: Some(step.ended_time_ms),
            deadline_ms: some(step.deadline_time_ms),
            standing: Standing::of(
                step.started_time_ms,
                some(step.deadline_time_ms),
                Some(step.ended_time_ms),
                now_ms,
                calendar,
            ),
        })
        .collect();
    if !application.current_step.is_empty() {
        let deadline = some(application.current_step_deadline_ms);
        judged.push(Judged {
            item: application.current_step.clone(),
            started_ms: application.current_step_since_ms,
            ended_ms: None,
            deadline_ms: deadline,
            standing: Standing::of(application.current_step_since_ms, deadline, None, now_ms, calendar),
        });
    }
    // The definition's terms of the application's channel, as `egov sla report`
    // judges them (`instance::term_end`): from the term's first step to its
    // last, or to the step from which the last can no longer be reached.
    let channel = (!application.channel.is_empty()).then_some(application.channel.as_str());
    let path = &application.path;
    for term in definition.terms_of(channel) {
        let Some(from) = path.iter().position(|step| step.step_id == term.from) else { continue };
        let started_ms = path[from].started_time_ms;
        let deadline_ms = deadline(calendar, started_ms, term.duration);
        let ended_ms = match path.iter().find(|step| step.step_id == term.to) {
            Some(to) => Some(to.ended_time_ms),
            None => path[from..]
                .iter()
                .find(|step| !definition.reaches(&step.step_id, &term.to))
                .map(|step| step.ended_time_ms),
        };
        judged.push(Judged {
            item: term.id.clone(),
            started_ms,
            ended_ms,
            deadline_ms,
            standing: Standing::of(started_ms, deadline_ms, ended_ms, now_ms, calendar),
        });
    }
    judged
}

/// The worst standing of an application's steps and term.
fn worst(judged: &[Judged]) -> Standing {
    if judged.iter().any(|j| j.standing == Standing::Missed) {
        Standing::Missed
    } else if judged.iter().any(|j| j.standing == Standing::AtRisk) {
        Standing::AtRisk
    } else if judged.iter().any(|j| j.standing == Standing::OnTrack) {
        Standing::OnTrack
    } else if judged.iter().any(|j| j.standing == Standing::Met) {
        Standing::Met
    } else {
        Standing::NoDeadline
    }
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// overdue (read from the index), missed or at-risk (judged here, a page at a time).
    #[serde(default)]
    standing: String,
    /// The step the application waits on.
    #[serde(default)]
    step: String,
    /// The role its current step waits on.
    #[serde(default)]
    actor: String,
    /// started (default), due, applicant, state.
    #[serde(default)]
    sort: String,
    /// asc, or desc (default).
    #[serde(default)]
    order: String,
    /// Where the page starts in each source (`lists::Boundaries`); empty: the first page.
    #[serde(default)]
    at: String,
    /// prev: the page before `at`; else the page after it.
    #[serde(default)]
    dir: String,
    /// csv or json: every row found, not a page, streamed a page at a time.
    #[serde(default)]
    format: String,
}

/// Rows a page of a list shows.
const PAGE: usize = 50;
/// Rows an export reads from each source at a time.
const EXPORT_PAGE: usize = 500;
/// Pages a list filtered by a standing judged here (missed, at risk) or the
/// SLA page reads at most for one page it shows.
const JUDGED_PAGES: usize = 40;

pub use egov_runtime::listing::started;

/// Midnight at the start of `date` in Astana, as milliseconds.
fn day_start(date: NaiveDate) -> Option<i64> {
    use chrono::TimeZone as _;
    let midnight = date.and_hms_opt(0, 0, 0)?;
    Calendar::kazakhstan().offset().from_local_datetime(&midnight).single().map(|at| at.timestamp_millis())
}

fn local_date(ms: i64) -> Option<NaiveDate> {
    to_local(Calendar::kazakhstan(), ms).map(|at| at.date_naive())
}

/// What the list's index is asked for: `search`'s filters and order.
fn list_query(search: &Search, now: i64) -> egov_proto::ApplicationListQuery {
    let from = NaiveDate::parse_from_str(&search.from, "%Y-%m-%d").ok();
    let to = NaiveDate::parse_from_str(&search.to, "%Y-%m-%d").ok();
    egov_proto::ApplicationListQuery {
        sort: if matches!(search.sort.as_str(), "due" | "applicant" | "state") {
            search.sort.clone()
        } else {
            String::new()
        },
        ascending: search.order == "asc",
        state: search.state.clone(),
        outcome: search.outcome.clone(),
        step: search.step.clone(),
        actor: search.actor.clone(),
        overdue_at_ms: if search.standing == "overdue" { now } else { 0 },
        started_from_ms: from.and_then(day_start).unwrap_or(0),
        started_before_ms: to.and_then(|to| to.succ_opt()).and_then(day_start).unwrap_or(0),
        text: search.q.trim().to_owned(),
        ..egov_proto::ApplicationListQuery::default()
    }
}

/// Whether the application passes the standing filter judged here.
fn judged_standing(definition: &Definition, standing: &str, application: &Application, now: i64) -> bool {
    match standing {
        "missed" => worst(&judge(definition, application, now)) == Standing::Missed,
        "at-risk" => worst(&judge(definition, application, now)) == Standing::AtRisk,
        _ => true,
    }
}

/// One page of the list `search` asks for: read from the indexes a page at a
/// time; a standing judged here reads on until the page is full or
/// `JUDGED_PAGES` were read.
async fn list_page(app: &App, search: &Search, now: i64) -> lists::Page {
    let definition = app.definition();
    let sources = lists::sources(app);
    let query = list_query(search, now);
    let forward = search.dir != "prev";
    let mut at = lists::Boundaries::parse(&search.at);
    let mut shown = lists::Page::default();
    for read in 0..JUDGED_PAGES {
        let page = lists::page(app, &sources, &query, &at, forward, PAGE).await;
        let rows: Vec<Application> = page
            .rows
            .into_iter()
            .filter(|application| judged_standing(definition, &search.standing, application, now))
            .collect();
        if forward {
            shown.rows.extend(rows);
        } else {
            shown.rows.splice(0..0, rows);
        }
        if read == 0 {
            // The near side's link is the first page's.
            if forward {
                shown.previous = page.previous.clone();
            } else {
                shown.next = page.next.clone();
            }
        }
        shown.problem = shown.problem.or(page.problem);
        let onward = if forward { page.next } else { page.previous };
        match &onward {
            Some(onward) if shown.rows.len() < PAGE => at = onward.clone(),
            _ => {
                if forward {
                    shown.next = onward;
                } else {
                    shown.previous = onward;
                }
                break;
            }
        }
        if read + 1 == JUDGED_PAGES {
            if forward {
                shown.next = Some(at.clone());
            } else {
                shown.previous = Some(at.clone());
            }
        }
    }
    shown
}

/// A CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// A time for an export: RFC 3339 in Astana time; empty for 0.
fn export_time(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    to_local(Calendar::kazakhstan(), ms).map(|at| at.to_rfc3339()).unwrap_or_default()
}

/// A download streamed as `records` produces its rows a page at a time
/// (`header`, then rows): CSV, or a JSON array of objects keyed by the header.
/// `records` is given a sink that takes each page's rows and says whether
/// the download is still read.
fn export<F, Fut>(name: &str, format: &str, header: &'static [&'static str], records: F) -> Response
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Vec<Vec<String>>, Problem>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use axum::http::header as h;
    let json = format == "json";
    let (rows, mut pages) = tokio::sync::mpsc::channel::<Result<Vec<Vec<String>>, Problem>>(2);
    // A source that fails on the way breaks the download off: no export ends short and looks whole.
    let (chunks, body) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(2);
    let produce = records(rows);
    tokio::spawn(produce);
    tokio::spawn(async move {
        let mut first = true;
        let opening = if json { "[".to_owned() } else { header.join(",") + "\r\n" };
        if chunks.send(Ok(opening)).await.is_err() {
            return;
        }
        while let Some(page) = pages.recv().await {
            let page = match page {
                Ok(page) => page,
                Err(problem) => {
                    let _ = chunks.send(Err(std::io::Error::other(problem.message))).await;
                    return;
                }
            };
            let mut chunk = String::new();
            for record in page {
                if json {
                    let object: serde_json::Map<String, serde_json::Value> = header
                        .iter()
                        .map(|key| (*key).to_owned())
                        .zip(record.into_iter().map(serde_json::Value::String))
                        .collect();
                    chunk.push_str(if first { "\n" } else { ",\n" });
                    chunk.push_str(&serde_json::to_string(&object).unwrap_or_default());
                } else {
                    chunk.push_str(&record.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(","));
                    chunk.push_str("\r\n");
                }
                first = false;
            }
            if chunks.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if json {
            let _ = chunks.send(Ok("\n]\n".to_owned())).await;
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body));
    let (kind, extension) = if json { ("application/json", "json") } else { ("text/csv; charset=utf-8", "csv") };
    let disposition = format!("attachment; filename=\"{name}.{extension}\"");
    ([(h::CONTENT_TYPE, kind.to_owned()), (h::CONTENT_DISPOSITION, disposition)], body).into_response()
}

/// `search` as a query string, with `change` applied (a key to a value; empty removes it).
fn query(search: &Search, change: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        ("q", search.q.clone()),
        ("state", search.state.clone()),
        ("outcome", search.outcome.clone()),
        ("step", search.step.clone()),
        ("actor", search.actor.clone()),
        ("from", search.from.clone()),
        ("to", search.to.clone()),
        ("standing", search.standing.clone()),
        ("sort", search.sort.clone()),
        ("order", search.order.clone()),
    ];
    for (key, value) in change {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = (*value).to_owned(),
            None => pairs.push((key, (*value).to_owned())),
        }
    }
    pairs
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", layout::encode(&value)))
        .collect::<Vec<_>>()
        .join("&")
}

const LIST_HEADER: [&str; 13] = [
    "application_id",
    "applicant_name",
    "applicant_iin",
    "state",
    "current_step",
    "outcome",
    "started",
    "due",
    "standing",
    "overdue",
    "registration_id",
    "operator_id",
    "channel",
];

/// Open and past its current step's deadline at `now`.
fn overdue(application: &Application, now: i64) -> bool {
    application.outcome.is_empty()
        && application.current_step_deadline_ms > 0
        && application.current_step_deadline_ms < now
}

pub async fn list(ctx: Ctx, Query(search): Query<Search>) -> Response {
    let lang = ctx.lang();
    let now = ctx.app.clock.now_ms();
    let definition = ctx.app.definition();
    if matches!(search.format.as_str(), "csv" | "json") {
        let app = Arc::clone(&ctx.app);
        let search = search.clone();
        let lang = ctx.lang();
        return export("applications", &search.format.clone(), &LIST_HEADER, move |sink| async move {
            let definition = app.definition();
            let sources = lists::sources(&app);
            let query = list_query(&search, now);
            let mut pager = lists::Pager::default();
            loop {
                let rows = match pager.next(&app, &sources, &query, EXPORT_PAGE).await {
                    Ok(Some(rows)) => rows,
                    Ok(None) => break,
                    Err(problem) => {
                        let _ = sink.send(Err(problem)).await;
                        break;
                    }
                };
                let records: Vec<Vec<String>> = rows
                    .iter()
                    .filter(|a| judged_standing(definition, &search.standing, a, now))
                    .map(|a| {
                        vec![
                            a.application_id.clone(),
                            a.applicant_name.clone(),
                            a.applicant_iin.clone(),
                            crate::operator::state_in(definition, lang, a),
                            a.current_step.clone(),
                            a.outcome.clone(),
                            export_time(started(definition, a)),
                            export_time(a.due_time_ms),
                            worst(&judge(definition, a, now)).as_str().to_owned(),
                            overdue(a, now).to_string(),
                            a.registration_id.clone(),
                            a.operator_id.clone(),
                            a.channel.clone(),
                        ]
                    })
                    .collect();
                if sink.send(Ok(records)).await.is_err() {
                    break;
                }
            }
        });
    }
    let page = list_page(&ctx.app, &search, now).await;
    let mut outcomes: Vec<&str> = definition.outcomes();
    outcomes.push(egov_regulation::instance::WITHDRAWN);
    let sorted = |key: &str| search.sort == key || (key == "started" && search.sort.is_empty());
    let header_link = |key: &str| {
        let order = if sorted(key) && search.order != "asc" { "asc" } else { "desc" };
        format!("/applications?{}", query(&search, &[("sort", key), ("order", order)]))
    };
    let aria_sort = |key: &str| {
        if sorted(key) { if search.order == "asc" { "ascending" } else { "descending" } } else { "none" }
    };
    let link = |at: &lists::Boundaries, dir: &str| {
        format!("/applications?{}", query(&search, &[("at", &at.encode()), ("dir", dir)]))
    };
    let body = html! {
        form.card method="get" action="/applications" role="search" aria-label=(t(lang, "search")) {
            label for="q" { (t(lang, "search")) " (" (t(lang, "applicant")) ", " (t(lang, "applicant.iin")) ")" }
            input #q type="search" name="q" value=(search.q);
            label for="state" { (t(lang, "state")) }
            select #state name="state" {
                option value="" selected[search.state.is_empty()] { (t(lang, "any")) }
                option value="open" selected[search.state == "open"] { (t(lang, "in.progress")) }
                option value="ended" selected[search.state == "ended"] { (t(lang, "ended")) }
            }
            label for="outcome" { (t(lang, "outcome")) }
            select #outcome name="outcome" {
                option value="" { (t(lang, "any")) }
                @for outcome in &outcomes {
                    option value=(outcome) selected[search.outcome == *outcome] { (definition.outcome_name(outcome, lang.code())) }
                }
            }
            label for="step" { (t(lang, "step")) }
            select #step name="step" {
                option value="" { (t(lang, "any")) }
                @for step in definition.steps() {
                    option value=(step.id) selected[search.step == step.id] { (step.id) " " (step.title.get(lang.code())) }
                }
            }
            label for="actor" { (t(lang, "waits.on")) }
            select #actor name="actor" {
                option value="" { (t(lang, "any")) }
                @for role in definition.actors.keys() {
                    option value=(role) selected[search.actor == *role] { (definition.actor_name(role, lang.code())) }
                }
            }
            label for="from" { (t(lang, "started")) " " (t(lang, "from")) }
            input #from type="date" name="from" value=(search.from);
            label for="to" { (t(lang, "started")) " " (t(lang, "to")) }
            input #to type="date" name="to" value=(search.to);
            label for="standing" { (t(lang, "standing")) }
            select #standing name="standing" {
                option value="" { (t(lang, "any")) }
                option value="missed" selected[search.standing == "missed"] { (t(lang, "missed")) }
                option value="at-risk" selected[search.standing == "at-risk"] { (t(lang, "at.risk")) }
                option value="overdue" selected[search.standing == "overdue"] { (t(lang, "overdue")) }
            }
            input type="hidden" name="sort" value=(search.sort);
            input type="hidden" name="order" value=(search.order);
            div { button type="submit" { (t(lang, "search")) } }
        }
        div #live-list data-live {
        @if let Some(refused) = &page.problem {
            (problem(lang, "applications-problem", Some(refused)))
        }
        p.exports {
            (t(lang, "on.page")) ": " strong #found { (page.rows.len()) } " · " (t(lang, "export")) ": "
            a #export-csv href={ "/applications?" (query(&search, &[("format", "csv")])) } { "CSV" } " "
            a #export-json href={ "/applications?" (query(&search, &[("format", "json")])) } { "JSON" }
        }
        @if page.rows.is_empty() {
            p { (t(lang, "none.found")) }
        } @else {
            table #applications {
                thead { tr {
                    th scope="col" { (t(lang, "application")) }
                    th scope="col" aria-sort=(aria_sort("applicant")) { a.sort href=(header_link("applicant")) { (t(lang, "applicant")) } }
                    th scope="col" { (t(lang, "applicant.iin")) }
                    th scope="col" aria-sort=(aria_sort("state")) { a.sort href=(header_link("state")) { (t(lang, "state")) } }
                    th scope="col" aria-sort=(aria_sort("started")) { a.sort href=(header_link("started")) { (t(lang, "started")) } }
                    th scope="col" aria-sort=(aria_sort("due")) { a.sort href=(header_link("due")) { (t(lang, "due")) } }
                    th scope="col" { (t(lang, "standing")) }
                } }
                tbody {
                    @for application in &page.rows {
                        tr data-application=(application.application_id) {
                            td { a href={ "/applications/" (application.application_id) } { (application.application_id) } }
                            td.applicant { (application.applicant_name) }
                            td { (application.applicant_iin) }
                            td { (crate::operator::state(&ctx, application)) }
                            td.started { (time(started(definition, application))) }
                            td { (time(application.due_time_ms)) }
                            td { (layout::standing(lang, worst(&judge(definition, application, now)))) @if overdue(application, now) { " " span.badge.missed { (t(lang, "overdue")) } } }
                        }
                    }
                }
            }
        }
        nav.pages aria-label=(t(lang, "pages.nav")) {
            @if !search.at.is_empty() {
                a #first-page href={ "/applications?" (query(&search, &[])) } { (t(lang, "first.page")) } " "
            }
            @if let Some(previous) = &page.previous {
                a #previous-page href=(link(previous, "prev")) { (t(lang, "previous.page")) } " "
            }
            @if let Some(next) = &page.next {
                a #next-page href=(link(next, "next")) { (t(lang, "next.page")) }
            }
        }
        }
    };
    layout::page(&ctx, t(lang, "applications"), "/applications", body).into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct Zoom {
    /// minutes, hours, days or weeks; none: what fits the application's span.
    #[serde(default)]
    zoom: String,
}

pub async fn detail(ctx: Ctx, Path(id): Path<String>, Query(zoom): Query<Zoom>) -> Response {
    let lang = ctx.lang();
    let app = &ctx.app;
    let topology = &app.config.topology;
    let found = match app.channel(&topology.workstation, ids::SC_WORKSTATION) {
        Ok(channel) => WorkstationServiceClient::new(channel)
            .get_application(GetApplicationRequest { application_id: id.clone() })
            .await
            .map(|answer| answer.into_inner().application.unwrap_or_default())
            .map_err(|status| Problem::from_status(&status)),
        Err(error) => Err(Problem::from_error("console.unreachable", &error)),
    };
    // An application received at the provider's office: the ARM has it, the workstation does not.
    let found =
        match found {
            Err(refused) if refused.code == "workstation.unknown_application" => match staff_client(app) {
                Ok(staff) => staff
                    .registration_of(&id)
                    .await
                    .map(|registration| registration.application.unwrap_or_default())
                    .map_err(|status| {
                        if status.code() == tonic::Code::NotFound { refused } else { Problem::from_status(&status) }
                    }),
                Err(_) => Err(refused),
            },
            other => other,
        };
    let application = match found {
        Ok(application) => application,
        Err(refused)
            if refused.code.ends_with(".unknown_application") || refused.code.ends_with(".unknown_registration") =>
        {
            return crate::not_found(&ctx);
        }
        Err(refused) => {
            let body = html! { (problem(lang, "application-problem", Some(&refused))) (crate::shep::offer(&ctx, &id)) };
            return layout::page(&ctx, &format!("{} {id}", t(lang, "application")), "/applications", body)
                .into_response();
        }
    };
    let now = app.clock.now_ms();
    let done: Vec<&str> = application.path.iter().map(|step| step.step_id.as_str()).collect();
    let current = (!application.current_step.is_empty()).then_some(application.current_step.as_str());
    let diagram = render::svg(app.definition(), &done, current, lang.code());
    let logs = logs(app, &id).await;
    let (step_links, message_steps) = step_messages(&application, &logs);
    let messages = messages(&ctx, &id, &logs, &message_steps);
    let hops = monitoring(&ctx, &id).await;
    let evidence = crate::proofs::section(&ctx, &id).await;
    let body = html! {
        div #live-detail data-live {
        (crate::operator::summary(&ctx, &application))
        @if let Some(notice) = &application.notice {
            section.notice role="note" data-code=(notice.code) {
                strong { (t(lang, "notice")) ": " (i18n::notice_heading(ctx.app.definition(), lang, &notice.code)) }
                p { (lang.pick(&notice.text_kk, &notice.text_ru, &notice.text_en)) }
            }
        }
        h2 #timeline-title { (t(lang, "timeline")) }
        (timeline(&ctx, &id, &judge(ctx.app.definition(), &application, now), now, &zoom.zoom))
        h2 { (t(lang, "path")) }
        (crate::operator::path_table(&ctx, &application, Some(&step_links)))
        h2 #diagram-heading { (t(lang, "diagram")) }
        figure aria-labelledby="diagram-heading" { (PreEscaped(diagram)) }
        h2 #messages-title { (t(lang, "messages")) }
        p { (t(lang, "messages.note")) }
        div #messages { (messages) }
        h2 #hops-title { (t(lang, "hops")) }
        (hops)
        h2 #evidence-title { (t(lang, "proof.title")) }
        (evidence)
        }
    };
    let here = format!("/applications/{id}");
    layout::page(&ctx, &format!("{} {id}", t(lang, "application")), &here, body).into_response()
}

/// The width of a working day and of a day off on the timeline's axis of days.
const WORKING_DAY: f64 = 90.0;
const DAY_OFF: f64 = 14.0;
/// The row labels' width.
const LABELS: f64 = 240.0;
/// The most days the axis of days shows, and the widest a clock axis is drawn.
const MAX_DAYS: i64 = 90;
const MAX_CLOCK_WIDTH: f64 = 4000.0;
/// The zoom levels: a clock axis of minutes or of hours, an axis of days (working days wide) or of weeks.
const ZOOMS: [&str; 4] = ["minutes", "hours", "days", "weeks"];

/// Where a moment is on a timeline's axis.
type Position = Box<dyn Fn(i64) -> f64>;
/// A mark of the axis: where, its label, and whether it carries the date (the year).
type Mark = (f64, String, bool);

/// The steps and the terms as bars against time: each row named by its
/// step's (or term's) title, each deadline marked, missed and at-risk bars
/// coloured and labelled, a "now" line, the year on the axis; zoomed from
/// minutes (a clock axis) to working weeks (an axis of days, a working day
/// wide and a day off narrow). Without a zoom asked for, the one that fits
/// the application's span.
fn timeline(ctx: &Ctx, id: &str, judged: &[Judged], now_ms: i64, zoom: &str) -> Markup {
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    let calendar = Calendar::kazakhstan();
    let moments = judged
        .iter()
        .flat_map(|j| [Some(j.started_ms), j.ended_ms, j.deadline_ms])
        .flatten()
        // Now, only while something is open: an ended application's axis ends with it.
        .chain(judged.iter().any(|j| j.ended_ms.is_none()).then_some(now_ms))
        .filter(|ms| *ms > 0);
    let (Some(first_ms), Some(last_ms)) = (moments.clone().min(), moments.max()) else {
        return html! {};
    };
    // The zoom that fits is chosen by the bars (from each start to its end, or now), not by far deadlines.
    let bars_end = judged.iter().map(|j| j.ended_ms.unwrap_or(now_ms)).max().unwrap_or(last_ms);
    let span_ms = bars_end - first_ms;
    let zoom = if ZOOMS.contains(&zoom) {
        zoom
    } else if span_ms < 3 * 3_600_000 {
        "minutes"
    } else if span_ms < 2 * 86_400_000 {
        "hours"
    } else {
        "days"
    };
    // The axis: where a moment is, its end, and its marks (x, label, a year's or a day's).
    // And the days off on an axis of days (x, width).
    let mut days_off: Vec<(f64, f64)> = Vec::new();
    let (position, axis_end, marks): (Position, f64, Vec<Mark>) = match zoom {
        "minutes" | "hours" => {
            let per_minute = if zoom == "minutes" { 14.0 } else { 2.0 };
            let start = first_ms - first_ms % 60_000;
            let width = ((last_ms - start) as f64 / 60_000.0 * per_minute).min(MAX_CLOCK_WIDTH) + 20.0;
            let position = move |ms: i64| LABELS + ((ms - start) as f64 / 60_000.0 * per_minute).clamp(0.0, width);
            // A mark every so many minutes, at least 70 px apart.
            let every = [1i64, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720]
                .into_iter()
                .find(|minutes| *minutes as f64 * per_minute >= 70.0)
                .unwrap_or(1440);
            let mut marks = Vec::new();
            let mut at = start - start % (every * 60_000);
            let mut last_day = None;
            while position(at) < LABELS + width {
                if at >= start
                    && let Some(local) = to_local(calendar, at)
                {
                    let day = local.date_naive();
                    let label = if last_day != Some(day) {
                        local.format("%Y-%m-%d %H:%M").to_string()
                    } else {
                        local.format("%H:%M").to_string()
                    };
                    marks.push((position(at), label, last_day != Some(day)));
                    last_day = Some(day);
                }
                at += every * 60_000;
            }
            (Box::new(position), LABELS + width, marks)
        }
        _ => {
            let (Some(first), Some(last)) = (local_date(first_ms), local_date(last_ms)) else { return html! {} };
            let scale = if zoom == "weeks" { 0.25 } else { 1.0 };
            let days: Vec<(NaiveDate, bool)> = first
                .iter_days()
                .take_while(|day| *day <= last)
                .take(MAX_DAYS as usize)
                .map(|day| (day, calendar.is_working_day(day).unwrap_or(true)))
                .collect();
            let mut offsets = Vec::with_capacity(days.len());
            let mut x = LABELS;
            for (_, working) in &days {
                offsets.push(x);
                let span = if *working { WORKING_DAY * scale } else { DAY_OFF * scale };
                if !*working {
                    days_off.push((x, span));
                }
                x += span;
            }
            let mut marks = Vec::new();
            for (index, (day, working)) in days.iter().enumerate() {
                let new_year = index == 0 || day.ordinal() == 1;
                if new_year {
                    marks.push((offsets[index], day.format("%Y-%m-%d").to_string(), true));
                } else if *working && (zoom == "days" || day.weekday() == chrono::Weekday::Mon) {
                    marks.push((offsets[index], format!("{:02}-{:02}", day.month(), day.day()), false));
                }
            }
            let end = x;
            let position = move |ms: i64| -> f64 {
                let Some(at) = to_local(calendar, ms) else { return LABELS };
                let day = at.date_naive();
                match days.iter().position(|(d, _)| *d == day) {
                    Some(index) => {
                        let span = if days[index].1 { WORKING_DAY * scale } else { DAY_OFF * scale };
                        offsets[index] + span * f64::from(at.num_seconds_from_midnight()) / 86_400.0
                    }
                    None if day < first => LABELS,
                    None => end,
                }
            };
            (Box::new(position), end, marks)
        }
    };
    // Each row named by its title, wrapped to the labels' width (10 px text).
    let titled: Vec<(&Judged, Vec<String>)> = judged
        .iter()
        .map(|judged| {
            let title = match definition.step(&judged.item) {
                Some(step) => step.title.get(lang.code()).to_owned(),
                None => definition
                    .terms
                    .iter()
                    .find(|term| term.id == judged.item)
                    .map_or_else(|| judged.item.clone(), |term| term.title.get(lang.code()).to_owned()),
            };
            (judged, egov_regulation::render::wrap(&title, 40))
        })
        .collect();
    let width = axis_end + 80.0;
    let top = 44.0;
    let mut rows = Vec::with_capacity(titled.len());
    let mut y = top;
    for (judged, lines) in &titled {
        rows.push((*judged, lines.clone(), y));
        y += 12.0 * lines.len() as f64 + 10.0;
    }
    let height = y + 10.0;
    let zoom_link = |level: &str| format!("/applications/{}?zoom={level}", layout::encode(id));
    html! {
        nav.zoom aria-label=(t(lang, "zoom")) {
            (t(lang, "zoom")) ": "
            @for level in ZOOMS {
                @if level == zoom {
                    a href=(zoom_link(level)) aria-current="true" data-zoom=(level) { (t(lang, &format!("zoom.{level}"))) }
                } @else {
                    a href=(zoom_link(level)) data-zoom=(level) { (t(lang, &format!("zoom.{level}"))) }
                }
                " "
            }
        }
        div.scroll {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-zoom=(zoom) role="img" aria-labelledby="timeline-title"
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            @for (x, span) in &days_off {
                rect.dayoff x=(x) y="34" width=(span) height=(height - 34.0) {}
            }
            @for (x, label, major) in &marks {
                text.tick x=(x + 3.0) y=(if *major { 14.0 } else { 30.0 }) font-weight=[major.then_some("bold")] { (label) }
                line.axis x1=(x) y1="34" x2=(x) y2=(height) {}
            }
            line.axis x1=(LABELS) y1="34" x2=(axis_end) y2="34" {}
            @for (judged, lines, y) in &rows {
                @let start = position(judged.started_ms);
                @let end = position(judged.ended_ms.unwrap_or(now_ms)).max(start + 3.0);
                @let class = match (judged.standing, judged.ended_ms) {
                    (Standing::Missed, _) => "bar missed",
                    (Standing::AtRisk, _) => "bar at-risk",
                    (_, None) => "bar open",
                    _ => "bar",
                };
                g.timeline-row data-step=(judged.item) data-standing=(judged.standing.as_str()) {
                    title { (judged.item) ": " (time(judged.started_ms)) " – "
                        (judged.ended_ms.map(time).unwrap_or_else(|| t(lang, "in.progress").to_owned()))
                        @if let Some(deadline) = judged.deadline_ms { ", " (t(lang, "deadline")) " " (time(deadline)) } }
                    text.row-title x="4" y=(y + 10.0) {
                        @for (index, line) in lines.iter().enumerate() {
                            tspan x="4" dy=(if index == 0 { 0.0 } else { 12.0 }) { (line) }
                        }
                    }
                    rect class=(class) x=(start) y=(y) width=(end - start) height="14" {}
                    @if let Some(deadline) = judged.deadline_ms {
                        @let at = position(deadline);
                        line.deadline-mark x1=(at) y1=(y - 3.0) x2=(at) y2=(y + 17.0) {}
                    }
                    @match judged.standing {
                        Standing::Missed => text.bad x=(end + 4.0) y=(y + 12.0) { (t(lang, "missed")) },
                        Standing::AtRisk => text x=(end + 4.0) y=(y + 12.0) { (t(lang, "at.risk")) },
                        _ => {},
                    }
                }
            }
            @let now_x = position(now_ms);
            @if now_ms >= first_ms && now_ms <= last_ms.max(now_ms) && now_x > LABELS && now_x < axis_end {
                g.now {
                    line.now-line x1=(now_x) y1="34" x2=(now_x) y2=(height) {}
                    text.now-label x=(now_x + 3.0) y=(height - 4.0) { (t(lang, "now")) }
                }
            }
        }
        }
    }
}

/// The participants whose message logs the application's page shows: (name, address, member id).
fn logged(app: &App) -> Vec<(&'static str, &str, &'static str)> {
    let topology = &app.config.topology;
    let mut participants = vec![
        ("workstation", topology.workstation.as_str(), ids::SC_WORKSTATION),
        ("gateway", topology.gateway.as_str(), ids::GATEWAY),
        ("regional", topology.regional.as_str(), ids::REGIONAL),
    ];
    // The SHEP edge: each envelope with the SOAP message it came from or became.
    if let Some(shep) = &app.config.shep {
        participants.push(("shep", shep.as_str(), ids::SC_WORKSTATION));
    }
    participants
}

/// Every participant's message log of the application, the SHEP edge's among
/// them, without the path's links (`/shep/ID`, for an application the
/// workstation does not know: an external State Corporation system's).
pub(crate) async fn messages_of(ctx: &Ctx, id: &str) -> Markup {
    let logs = logs(&ctx.app, id).await;
    messages(ctx, id, &logs, &std::collections::HashMap::new())
}

/// One participant's log of the application, or why it could not be read.
type Log = (&'static str, Result<Vec<egov_proto::LogRecord>, Problem>);

/// Every participant's message log of the application (`QueryLog` of the admin service).
async fn logs(app: &App, id: &str) -> Vec<Log> {
    let mut logs = Vec::new();
    for (name, address, member) in logged(app) {
        let logged = match app.channel(address, member) {
            Ok(channel) => AdminServiceClient::new(channel)
                .max_decoding_message_size(egov_client::MAX_MESSAGE_BYTES)
                .query_log(QueryLogRequest { correlation_id: id.to_owned(), limit: 0 })
                .await
                .map(|answer| answer.into_inner().entries)
                .map_err(|status| Problem::from_status(&status)),
            Err(error) => Err(Problem::from_error("console.unreachable", &error)),
        };
        logs.push((name, logged));
    }
    logs
}

/// The anchor of a log entry on the application's page.
fn anchor(participant: &str, sequence: u64) -> String {
    format!("message-{participant}-{sequence}")
}

/// Which message made each step of the path: the message a participant
/// received when the step ended (its end is that message's arrival), the
/// step's own member's first, then one received rather than sent, then the
/// nearest in time. One message may make several steps (the operator's form
/// records the log-in, the form, the look-up and condition 1). (step id ->
/// anchor, anchor -> the steps it made.)
fn step_messages(
    application: &Application,
    logs: &[Log],
) -> (std::collections::HashMap<String, String>, std::collections::HashMap<String, Vec<String>>) {
    const SLACK_MS: i64 = 1_500;
    let mut of_step = std::collections::HashMap::new();
    let mut of_message: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let entries: Vec<(&str, &egov_proto::LogRecord, egov_proto::EnvelopeHeader)> = logs
        .iter()
        .filter_map(|(name, logged)| Some((*name, logged.as_ref().ok()?)))
        .flat_map(|(name, logged)| {
            logged.iter().map(move |entry| {
                let header = entry
                    .envelope
                    .as_ref()
                    .and_then(|envelope| egov_envelope::decode_header(&envelope.header).ok())
                    .unwrap_or_default();
                (name, entry, header)
            })
        })
        .collect();
    for step in &application.path {
        let end = step.ended_time_ms.max(step.started_time_ms);
        let found = entries.iter().filter(|(_, entry, _)| (entry.logged_time_ms - end).abs() <= SLACK_MS).min_by_key(
            |(_, entry, header)| {
                (header.sender_id != step.actor_id, entry.direction != "received", (entry.logged_time_ms - end).abs())
            },
        );
        if let Some((name, entry, _)) = found {
            let at = anchor(name, entry.sequence);
            of_step.insert(step.step_id.clone(), at.clone());
            of_message.entry(at).or_default().push(step.step_id.clone());
        }
    }
    (of_step, of_message)
}

/// The logs as tables: each envelope's body decoded as a tree of named fields
/// (`body.rs`), its scans linked, each signature (the sender's, the gateway's
/// countersignature, those of the envelope it carries) verified with the
/// trust registry, and the step each message made linked.
fn messages(ctx: &Ctx, id: &str, logs: &[Log], steps: &std::collections::HashMap<String, Vec<String>>) -> Markup {
    let lang = ctx.lang();
    let trust = match ctx.app.config.keys.trust() {
        Ok(trust) => trust,
        Err(error) => return problem(lang, "messages-problem", Some(&Problem::from_error("console.no_key", &error))),
    };
    let scan = |sha: &str| format!("/applications/{}/documents/{}", layout::encode(id), layout::encode(sha));
    html! {
        @for (name, logged) in logs {
            section.log data-participant=(name) aria-labelledby={ "log-" (name) } {
                h3 id={ "log-" (name) } { (t(lang, "participant")) ": " (i18n::participant(lang, name)) }
                @match logged {
                    Err(refused) => (problem(lang, &format!("log-{name}-problem"), Some(refused))),
                    Ok(logged) => table.messages {
                        thead { tr {
                            th scope="col" { "#" }
                            th scope="col" { (t(lang, "time")) }
                            th scope="col" { (t(lang, "direction")) }
                            th scope="col" { (t(lang, "sender")) " → " (t(lang, "recipient")) }
                            th scope="col" { (t(lang, "service")) }
                            th scope="col" { (t(lang, "signatures")) }
                            th scope="col" { (t(lang, "body")) }
                        } }
                        tbody {
                            @for entry in logged {
                                @let envelope = entry.envelope.clone().unwrap_or_default();
                                @let header = egov_envelope::decode_header(&envelope.header).unwrap_or_default();
                                @let at = anchor(name, entry.sequence);
                                tr.message id=(at) data-service=(header.service_id) data-direction=(entry.direction) {
                                    td { (entry.sequence)
                                        @for step in steps.get(&at).into_iter().flatten() { br; a.step-link href={ "#step-" (step) } { "→ " (step) } } }
                                    td { (time(entry.logged_time_ms)) }
                                    td {
                                        (match entry.direction.as_str() { "received" => t(lang, "direction.received"), "sent" => t(lang, "direction.sent"), other => other })
                                        @if entry.note.starts_with('<') {
                                            details.soap { summary { "SOAP" } pre { (entry.note) } }
                                        } @else if !entry.note.is_empty() {
                                            br; small { (entry.note) }
                                        }
                                    }
                                    td { (header.sender_id) " → " (header.recipient_id) }
                                    td { (header.service_id) br; small { (header.body_type) } }
                                    td { (signatures(lang, &envelope, &trust, 0)) }
                                    td.body { details { summary { (header.message_id) } (body::tree(&header.body_type, &envelope.body, &scan)) small { "sha256 " (entry.hash) } } }
                                }
                            }
                        }
                    },
                }
            }
        }
    }
}

/// The scan of a document of the application, found by its SHA-256 in the
/// messages the workstation and the ARM logged, opened in the browser.
pub async fn document(ctx: Ctx, Path((id, sha256)): Path<(String, String)>) -> Response {
    for (name, logged) in logs(&ctx.app, &id).await {
        if name == "gateway" {
            continue;
        }
        for entry in logged.unwrap_or_default() {
            let envelope = entry.envelope.unwrap_or_default();
            let Ok(header) = egov_envelope::decode_header(&envelope.header) else { continue };
            if let Some((title, content)) = body::document(&header.body_type, &envelope.body, &sha256) {
                let disposition = format!("inline; filename=\"{}\"", title.replace(['"', '\\', '\r', '\n'], "_"));
                return (
                    [
                        (axum::http::header::CONTENT_TYPE, body::content_type(&content).to_owned()),
                        (axum::http::header::CONTENT_DISPOSITION, disposition),
                        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                    ],
                    content,
                )
                    .into_response();
            }
        }
    }
    crate::not_found(&ctx).into_response()
}

/// Each signature of `envelope` and of what it carries, with its verification.
fn signatures(lang: Lang, envelope: &Envelope, trust: &TrustRegistry, depth: usize) -> Markup {
    let checks = Checks { max_body_bytes: usize::MAX, freshness_window_ms: None };
    let opened = open(envelope, trust, 0, &checks);
    let sender = envelope.signatures.first();
    html! {
        ul.signatures {
            li.signature data-verified=(opened.is_ok()) {
                @if depth > 0 { "↳ " }
                (sender.map(|s| s.key_id.as_str()).unwrap_or("—")) ": "
                @match &opened {
                    Ok(verified) => span.ok { (t(lang, "verified")) " (" (verified.header.sender_id) ", " (verified.sender_role.as_str()) ")" },
                    Err(error) => span.bad { (t(lang, "not.verified")) ": " (error.code()) },
                }
            }
            @if let (Ok(verified), Some(counter)) = (&opened, envelope.signatures.get(1)) {
                @let checked = verify_countersignature(envelope, verified, trust, ids::GATEWAY);
                li.signature data-verified=(checked.is_ok()) {
                    (counter.key_id) ": "
                    @match &checked {
                        Ok(()) => span.ok { (t(lang, "verified")) " (" (ids::GATEWAY) ")" },
                        Err(error) => span.bad { (t(lang, "not.verified")) ": " (error.code()) },
                    }
                }
            }
            @if let Ok(verified) = &opened && depth < 2 {
                @match carried_envelope(verified, &envelope.body) {
                    Ok(Some(inner)) => li { (signatures(lang, &inner, trust, depth + 1)) },
                    Ok(None) => {},
                    Err(error) => li.bad { (error.code()) },
                }
            }
        }
    }
}

/// Every participant's monitoring records of the application: each hop with its timestamps.
async fn monitoring(ctx: &Ctx, id: &str) -> Markup {
    let lang = ctx.lang();
    let app = &ctx.app;
    let topology = &app.config.topology;
    let mut rows = Vec::new();
    let mut unreachable = Vec::new();
    for (name, address, member) in [
        ("workstation", &topology.workstation, ids::SC_WORKSTATION),
        ("gateway", &topology.gateway, ids::GATEWAY),
        ("individuals", &topology.individuals, ids::INDIVIDUALS),
        ("notary", &topology.notary, ids::NOTARY),
        ("regional", &topology.regional, ids::REGIONAL),
    ] {
        let answer = match app.channel(address, member) {
            Ok(channel) => AdminServiceClient::new(channel)
                .query_monitoring(QueryMonitoringRequest { correlation_id: id.to_owned(), ..Default::default() })
                .await
                .map_err(|status| status.message().to_owned()),
            Err(error) => Err(format!("{error:#}")),
        };
        match answer {
            Ok(answer) => rows.extend(answer.into_inner().records.into_iter().map(|record| (name, record))),
            Err(error) => unreachable.push((name, error)),
        }
    }
    rows.sort_by_key(|(_, record)| record.request_in_time_us.max(record.request_out_time_us));
    html! {
        @for (name, error) in &unreachable {
            p.bad title=(error) { (i18n::participant(lang, name)) ": " (t(lang, "unreachable")) }
        }
        table #hops aria-labelledby="hops-title" {
            thead { tr {
                th scope="col" { (t(lang, "participant")) }
                th scope="col" { (t(lang, "record.kind")) }
                th scope="col" { "RPC" }
                th scope="col" { (t(lang, "sender")) " → " (t(lang, "recipient")) }
                th scope="col" { (t(lang, "service")) }
                th scope="col" { (t(lang, "hop.request.in")) }
                th scope="col" { (t(lang, "hop.request.out")) }
                th scope="col" { (t(lang, "hop.response.in")) }
                th scope="col" { (t(lang, "hop.response.out")) }
                th scope="col" { (t(lang, "latency")) }
                th scope="col" { (t(lang, "status")) }
            } }
            tbody {
                @for (name, record) in &rows {
                    tr.hop data-kind=(record.kind) {
                        td { (i18n::participant(lang, name)) }
                        td { (match record.kind.as_str() { "client" => t(lang, "kind.client"), "server" => t(lang, "kind.server"), other => other }) }
                        td { (record.rpc) }
                        td { (record.client_id) " → " (record.peer_id) }
                        td { (record.service_id) }
                        @for us in [record.request_in_time_us, record.request_out_time_us, record.response_in_time_us, record.response_out_time_us] {
                            td.stamp { (precise_time(us)) }
                        }
                        td.latency { (latencies(lang, record)) }
                        td { (record.status_code) @if !record.reason.is_empty() { " " (record.reason) } }
                    }
                }
            }
        }
    }
}

/// A timestamp in microseconds as Astana time to the millisecond, with its offset; empty for 0.
fn precise_time(us: i64) -> String {
    if us == 0 {
        return String::new();
    }
    to_local(Calendar::kazakhstan(), us / 1000)
        .map_or_else(|| us.to_string(), |at| at.format("%Y-%m-%d %H:%M:%S%.3f %:z").to_string())
}

/// A hop's latencies: the participant's own handling (response out − request in), the call onward or the
/// round trip of a client (response in − request out).
fn latencies(lang: Lang, record: &egov_proto::MonitoringRecord) -> String {
    let span = |from: i64, to: i64| (from > 0 && to >= from).then(|| format!("{:.1} ms", (to - from) as f64 / 1000.0));
    let mut parts = Vec::new();
    if let Some(handled) = span(record.request_in_time_us, record.response_out_time_us) {
        parts.push(format!("{} {handled}", t(lang, "latency.handled")));
    }
    if let Some(onward) = span(record.request_out_time_us, record.response_in_time_us) {
        parts.push(format!("{} {onward}", t(lang, "latency.onward")));
    }
    parts.join("; ")
}

#[derive(serde::Deserialize, Default)]
pub struct SlaQuery {
    /// Only the rows past their deadline by at least this many hours.
    #[serde(default)]
    over: String,
    /// Where the page starts (`lists::Boundaries`): the applications after it.
    #[serde(default)]
    at: String,
    /// csv or json.
    #[serde(default)]
    format: String,
}

/// How long past its deadline a step or term is (or was, when it ended): none when it is not.
fn overdue_by(judged: &Judged, now_ms: i64) -> Option<i64> {
    let deadline = judged.deadline_ms?;
    let end = judged.ended_ms.unwrap_or(now_ms);
    (end > deadline).then_some(end - deadline)
}

/// A span as hours and minutes ("26 h 05 min") in `lang`.
fn span(lang: Lang, ms: i64) -> String {
    let minutes = ms / 60_000;
    format!("{} {} {:02} {}", minutes / 60, t(lang, "unit.hours.short"), minutes % 60, t(lang, "unit.minutes.short"))
}

/// The SLA rows of `applications`: each step and term that missed its
/// deadline or is at risk of it, past it by at least `over_ms` where given.
fn sla_rows(
    definition: &Definition,
    applications: Vec<Application>,
    over_ms: Option<i64>,
    now: i64,
) -> Vec<(Application, Judged, Option<i64>)> {
    let mut rows = Vec::new();
    for application in applications {
        for judged in judge(definition, &application, now) {
            let by = overdue_by(&judged, now);
            if matches!(judged.standing, Standing::Missed | Standing::AtRisk)
                && over_ms.is_none_or(|over| by.is_some_and(|by| by >= over))
            {
                rows.push((application.clone(), judged, by));
            }
        }
    }
    rows
}

const SLA_HEADER: [&str; 8] =
    ["application_id", "registration_id", "item", "started", "deadline", "ended", "standing", "overdue_by_minutes"];

/// The SLA report: every step and term of the known applications that
/// missed its deadline or is at risk of it (the rows of `egov sla report`),
/// with how far past its deadline each is; filtered by that, and exported.
/// The applications are read from the list's index a page at a time, the
/// newest first, until the page shows `PAGE` rows or `JUDGED_PAGES` were
/// read; the next page goes on from there. An export streams them all.
pub async fn sla(ctx: Ctx, Query(query): Query<SlaQuery>) -> Response {
    let lang = ctx.lang();
    let now = ctx.app.clock.now_ms();
    let over_ms = query.over.trim().parse::<f64>().ok().map(|hours| (hours * 3_600_000.0) as i64);
    let sources = lists::sources(&ctx.app);
    let every = egov_proto::ApplicationListQuery::default();
    if matches!(query.format.as_str(), "csv" | "json") {
        let app = Arc::clone(&ctx.app);
        return export("sla", &query.format, &SLA_HEADER, move |sink| async move {
            let definition = app.definition();
            let mut pager = lists::Pager::default();
            loop {
                let applications = match pager.next(&app, &sources, &every, EXPORT_PAGE).await {
                    Ok(Some(applications)) => applications,
                    Ok(None) => break,
                    Err(problem) => {
                        let _ = sink.send(Err(problem)).await;
                        break;
                    }
                };
                let records = sla_rows(definition, applications, over_ms, now)
                    .into_iter()
                    .map(|(application, judged, by)| {
                        vec![
                            application.application_id.clone(),
                            application.registration_id.clone(),
                            judged.item.clone(),
                            export_time(judged.started_ms),
                            judged.deadline_ms.map(export_time).unwrap_or_default(),
                            judged.ended_ms.map(export_time).unwrap_or_default(),
                            judged.standing.as_str().to_owned(),
                            by.map(|by| (by / 60_000).to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                if sink.send(Ok(records)).await.is_err() {
                    break;
                }
            }
        });
    }
    let definition = ctx.app.definition();
    let mut at = lists::Boundaries::parse(&query.at);
    let mut rows = Vec::new();
    let mut problem_found = None;
    let mut next = None;
    for _ in 0..JUDGED_PAGES {
        let page = lists::page(&ctx.app, &sources, &every, &at, true, PAGE).await;
        problem_found = problem_found.or(page.problem);
        rows.extend(sla_rows(definition, page.rows, over_ms, now));
        next = page.next;
        match &next {
            Some(onward) if rows.len() < PAGE => at = onward.clone(),
            _ => break,
        }
    }
    let page_link = |at: &lists::Boundaries| {
        let over = if query.over.is_empty() { String::new() } else { format!("&over={}", layout::encode(&query.over)) };
        format!("/sla?at={}{over}", layout::encode(&at.encode()))
    };
    let exported = |format: &str| {
        let over = if query.over.is_empty() { String::new() } else { format!("&over={}", layout::encode(&query.over)) };
        format!("/sla?format={format}{over}")
    };
    let body = html! {
        p { (t(lang, "sla.intro")) }
        form.card method="get" action="/sla" role="search" aria-label=(t(lang, "search")) {
            label for="over" { (t(lang, "overdue.by")) " (" (t(lang, "unit.hours.short")) ", " (t(lang, "from")) ")" }
            input #over type="number" name="over" min="0" step="0.5" value=(query.over);
            div { button type="submit" { (t(lang, "search")) } }
        }
        div #live-sla data-live {
        @if let Some(refused) = &problem_found {
            (problem(lang, "sla-problem", Some(refused)))
        }
        p.exports { (t(lang, "on.page")) ": " strong #found { (rows.len()) } " · " (t(lang, "export")) ": "
            a #export-csv href=(exported("csv")) { "CSV" } " " a #export-json href=(exported("json")) { "JSON" } }
        @if rows.is_empty() {
            p #sla-empty { (t(lang, "none.found")) }
        } @else {
            table #sla {
                thead { tr {
                    th scope="col" { (t(lang, "application")) }
                    th scope="col" { (t(lang, "registration")) }
                    th scope="col" { (t(lang, "item")) }
                    th scope="col" { (t(lang, "deadline")) }
                    th scope="col" { (t(lang, "ended")) }
                    th scope="col" { (t(lang, "overdue.by")) }
                    th scope="col" { (t(lang, "standing")) }
                } }
                tbody {
                    @for (application, judged, by) in &rows {
                        tr data-row={ (application.application_id) " " (judged.item) " " (judged.standing.as_str()) } {
                            td { a href={ "/applications/" (application.application_id) } { (application.application_id) } }
                            td { (application.registration_id) }
                            td { (judged.item) }
                            td { (judged.deadline_ms.map(time).unwrap_or_default()) }
                            td { (judged.ended_ms.map(time).unwrap_or_else(|| t(lang, "in.progress").to_owned())) }
                            td.overdue-by { (by.map(|by| span(lang, by)).unwrap_or_default()) }
                            td { (layout::standing(lang, judged.standing)) }
                        }
                    }
                }
            }
        }
        nav.pages aria-label=(t(lang, "pages.nav")) {
            @if !query.at.is_empty() {
                a #first-page href=(page_link(&lists::Boundaries::default())) { (t(lang, "first.page")) } " "
            }
            @if let Some(next) = &next {
                a #next-page href=(page_link(next)) { (t(lang, "next.page")) }
            }
        }
        }
    };
    layout::page(&ctx, t(lang, "sla"), "/sla", body).into_response()
}

/// The process definition drawn, and its steps and terms.
pub async fn regulation(ctx: Ctx) -> Html<String> {
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    let service = &definition.service;
    let body = html! {
        p { strong { (service.name(lang.code())) } " — " (service.code) }
        p { (service.regulation_in(lang.code())) }
        p { (t(lang, "provider")) ": " (service.provider_in(lang.code())) }
        h2 #diagram-heading { (t(lang, "diagram")) }
        figure aria-labelledby="diagram-heading" { (PreEscaped(render::svg(definition, &[], None, lang.code()))) }
        h2 #steps-title { (t(lang, "steps")) }
        table aria-labelledby="steps-title" {
            thead { tr {
                th scope="col" { (t(lang, "step")) }
                th scope="col" { (t(lang, "actor")) }
                th scope="col" { (t(lang, "duration")) }
                th scope="col" { (t(lang, "next")) }
            } }
            tbody {
                @for step in definition.steps() {
                    tr {
                        td { strong { (step.id) } " " (step.title.get(lang.code())) }
                        td { (definition.actor_name(&step.actor, lang.code())) }
                        td { (step.duration.map(|d| render::duration_in(d, lang.code())).unwrap_or_default()) }
                        td {
                            @if let Some(next) = &step.next { (next) }
                            @if let Some(yes) = &step.yes { (t(lang, "yes")) ": " (yes.next)
                                @if let Some(outcome) = &yes.outcome { " (" (definition.outcome_name(outcome, lang.code())) ")" } " " }
                            @if let Some(no) = &step.no { (t(lang, "no")) ": " (no.next)
                                @if let Some(outcome) = &no.outcome { " (" (definition.outcome_name(outcome, lang.code())) ")" } }
                        }
                    }
                }
            }
        }
        h2 #terms-title { (t(lang, "terms")) }
        table aria-labelledby="terms-title" {
            thead { tr {
                th scope="col" { (t(lang, "item")) }
                th scope="col" { (t(lang, "terms")) }
                th scope="col" { (t(lang, "steps")) }
                th scope="col" { (t(lang, "duration")) }
            } }
            tbody {
                @for term in &definition.terms {
                    tr { td { (term.id) } td { (term.title.get(lang.code())) } td { (term.from) " → " (term.to) } td { (render::duration_in(term.duration, lang.code())) } }
                }
            }
        }
        details {
            summary { "Mermaid" }
            pre { (render::mermaid(definition)) }
        }
    };
    layout::page(&ctx, t(lang, "regulation"), "/regulation", body)
}
