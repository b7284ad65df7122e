//! The testers' and auditors' screens: the searchable list of applications,
//! each application's page (its timeline against the regulatory deadlines on
//! a working-day axis, the block diagram with the current step, every signed
//! message with its signatures verified, every participant's monitoring
//! records), the SLA report and the regulation drawn.

use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use chrono::{Datelike as _, NaiveDate, Timelike as _};
use egov_envelope::{Checks, TrustRegistry, carried_envelope, open, verify_countersignature};
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{
    Application, Envelope, GetApplicationRequest, ListApplicationsRequest, QueryLogRequest, QueryMonitoringRequest,
};
use egov_regulation::instance::{Standing, deadline, to_local};
use egov_regulation::{Calendar, Definition, render};
use egov_runtime::ids;
use maud::{Markup, PreEscaped, html};
use prost::Message as _;

use crate::i18n::{Lang, t};
use crate::layout::{self, problem};
use crate::{App, Ctx, Problem, time};

/// The applications the participants know, the most recently opened first:
/// the workstation's (`ListApplications`, of `operator_id` or of all), then,
/// for the whole list, those waiting in the ARM's queue that the workstation
/// does not know (received at the provider's office).
pub async fn known(app: &App, operator_id: Option<&str>) -> Result<Vec<Application>, Problem> {
    let topology = &app.config.topology;
    let channel = app
        .channel(&topology.workstation, ids::SC_WORKSTATION)
        .map_err(|error| Problem::from_error("console.unreachable", &error))?;
    let mut applications = WorkstationServiceClient::new(channel)
        .max_decoding_message_size(egov_client::MAX_MESSAGE_BYTES)
        .list_applications(ListApplicationsRequest {
            operator_id: operator_id.unwrap_or_default().to_owned(),
            limit: 0,
        })
        .await
        .map_err(|status| Problem::from_status(&status))?
        .into_inner()
        .applications;
    if operator_id.is_none()
        && let Ok(staff) = egov_client::StaffClient::connect(
            &topology.regional,
            app.config.tls.as_ref(),
            ids::REGIONAL,
            std::sync::Arc::clone(&app.clock),
        )
        && let Ok(queue) = staff.queue("").await
    {
        for registration in queue {
            if let Some(application) = registration.application
                && !applications.iter().any(|known| known.application_id == application.application_id)
            {
                applications.push(application);
            }
        }
    }
    Ok(applications)
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

#[derive(serde::Deserialize, Default)]
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
    #[serde(default)]
    standing: String,
}

fn started(application: &Application) -> i64 {
    application.path.first().map_or(application.current_step_since_ms, |step| step.started_time_ms)
}

fn local_date(ms: i64) -> Option<NaiveDate> {
    to_local(Calendar::kazakhstan(), ms).map(|at| at.date_naive())
}

pub async fn list(ctx: Ctx, Query(search): Query<Search>) -> Response {
    let lang = ctx.lang();
    let now = ctx.app.clock.now_ms();
    let from = NaiveDate::parse_from_str(&search.from, "%Y-%m-%d").ok();
    let to = NaiveDate::parse_from_str(&search.to, "%Y-%m-%d").ok();
    let q = search.q.trim().to_lowercase();
    let mut rows = Vec::new();
    let known = known(&ctx.app, None).await;
    for application in known.as_ref().map_or(&[][..], Vec::as_slice) {
        let application = application.clone();
        let judged = judge(ctx.app.definition(), &application, now);
        let standing = worst(&judged);
        let day = local_date(started(&application));
        let keep = (q.is_empty()
            || [
                &application.application_id,
                &application.applicant_iin,
                &application.registration_id,
                &application.operator_id,
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(&q)))
            && match search.state.as_str() {
                "open" => application.outcome.is_empty(),
                "ended" => !application.outcome.is_empty(),
                _ => true,
            }
            && (search.outcome.is_empty() || application.outcome == search.outcome)
            && from.is_none_or(|from| day.is_some_and(|day| day >= from))
            && to.is_none_or(|to| day.is_some_and(|day| day <= to))
            && match search.standing.as_str() {
                "missed" => standing == Standing::Missed,
                "at-risk" => standing == Standing::AtRisk,
                _ => true,
            };
        if keep {
            rows.push((application, standing));
        }
    }
    let outcomes: Vec<&str> = {
        let mut outcomes: Vec<&str> = ctx
            .app
            .definition()
            .steps()
            .iter()
            .flat_map(|step| [&step.yes, &step.no])
            .filter_map(|target| target.as_ref().and_then(|t| t.outcome.as_deref()))
            .collect();
        outcomes.sort_unstable();
        outcomes.dedup();
        outcomes
    };
    let body = html! {
        form.card method="get" action="/applications" role="search" aria-label=(t(lang, "search")) {
            label for="q" { (t(lang, "search")) }
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
                    option value=(outcome) selected[search.outcome == *outcome] { (outcome) }
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
            }
            div { button type="submit" { (t(lang, "search")) } }
        }
        @if let Err(refused) = &known {
            (problem("applications-problem", Some(refused)))
        }
        @if rows.is_empty() {
            p { (t(lang, "none.found")) }
        } @else {
            table #applications {
                thead { tr {
                    th scope="col" { (t(lang, "application")) }
                    th scope="col" { (t(lang, "applicant.iin")) }
                    th scope="col" { (t(lang, "state")) }
                    th scope="col" { (t(lang, "started")) }
                    th scope="col" { (t(lang, "due")) }
                    th scope="col" { (t(lang, "standing")) }
                } }
                tbody {
                    @for (application, standing) in &rows {
                        tr data-application=(application.application_id) {
                            td { a href={ "/applications/" (application.application_id) } { (application.application_id) } }
                            td { (application.applicant_iin) }
                            td { (crate::operator::state(&ctx, application)) }
                            td { (time(started(application))) }
                            td { (time(application.due_time_ms)) }
                            td { (layout::standing(lang, *standing)) }
                        }
                    }
                }
            }
        }
    };
    layout::page(&ctx, t(lang, "applications"), "/applications", body).into_response()
}

pub async fn detail(ctx: Ctx, Path(id): Path<String>) -> Response {
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
    let application = match found {
        Ok(application) => application,
        Err(refused) => {
            let body = html! { (problem("application-problem", Some(&refused))) (crate::shep::offer(&ctx, &id)) };
            return layout::page(&ctx, &format!("{} {id}", t(lang, "application")), "/applications", body)
                .into_response();
        }
    };
    let now = app.clock.now_ms();
    let done: Vec<&str> = application.path.iter().map(|step| step.step_id.as_str()).collect();
    let current = (!application.current_step.is_empty()).then_some(application.current_step.as_str());
    let diagram = render::svg(app.definition(), &done, current);
    let messages = messages(&ctx, &id).await;
    let hops = monitoring(&ctx, &id).await;
    let body = html! {
        (crate::operator::summary(&ctx, &application))
        @if let Some(notice) = &application.notice {
            section.notice role="note" data-code=(notice.code) {
                strong { (t(lang, "notice")) ": " (notice.code) }
                p { (lang.pick(&notice.text_kk, &notice.text_ru, &notice.text_en)) }
            }
        }
        h2 #timeline-title { (t(lang, "timeline")) }
        (timeline(lang, &judge(ctx.app.definition(), &application, now), now))
        h2 { (t(lang, "path")) }
        (crate::operator::path_table(&ctx, &application))
        h2 #diagram-heading { (t(lang, "diagram")) }
        figure aria-labelledby="diagram-heading" { (PreEscaped(diagram)) }
        h2 #messages-title { (t(lang, "messages")) }
        p { (t(lang, "messages.note")) }
        div #messages { (messages) }
        h2 #hops-title { (t(lang, "hops")) }
        (hops)
    };
    let here = format!("/applications/{id}");
    layout::page(&ctx, &format!("{} {id}", t(lang, "application")), &here, body).into_response()
}

/// The width of a working day and of a day off on the timeline's axis.
const WORKING_DAY: f64 = 90.0;
const DAY_OFF: f64 = 14.0;
const LABELS: f64 = 130.0;
/// The most days the axis shows.
const MAX_DAYS: i64 = 90;

/// The steps and the term as bars on an axis of days, a working day wide
/// and a day off narrow, with each deadline marked and the bars of missed
/// and at-risk steps coloured and labelled.
fn timeline(lang: Lang, judged: &[Judged], now_ms: i64) -> Markup {
    let calendar = Calendar::kazakhstan();
    let moments = judged
        .iter()
        .flat_map(|j| [Some(j.started_ms), j.ended_ms, j.deadline_ms])
        .flatten()
        // Now, only while something is open: an ended application's axis ends with it.
        .chain(judged.iter().any(|j| j.ended_ms.is_none()).then_some(now_ms))
        .filter(|ms| *ms > 0);
    let (Some(first), Some(last)) = (moments.clone().min().and_then(local_date), moments.max().and_then(local_date))
    else {
        return html! {};
    };
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
        x += if *working { WORKING_DAY } else { DAY_OFF };
    }
    let width = x + 70.0;
    let position = |ms: i64| -> f64 {
        let Some(at) = to_local(calendar, ms) else { return LABELS };
        let day = at.date_naive();
        match days.iter().position(|(d, _)| *d == day) {
            Some(index) => {
                let span = if days[index].1 { WORKING_DAY } else { DAY_OFF };
                offsets[index] + span * f64::from(at.num_seconds_from_midnight()) / 86_400.0
            }
            None if day < first => LABELS,
            None => x,
        }
    };
    let row = 24.0;
    let top = 34.0;
    let height = top + row * judged.len() as f64 + 10.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" aria-labelledby="timeline-title"
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) {
            @for (index, (day, working)) in days.iter().enumerate() {
                @let span = if *working { WORKING_DAY } else { DAY_OFF };
                @if *working {
                    text x=(offsets[index] + 3.0) y="14" { (format!("{:02}-{:02}", day.month(), day.day())) }
                } @else {
                    rect.dayoff x=(offsets[index]) y="20" width=(span) height=(height - 20.0) {}
                }
                line.axis x1=(offsets[index]) y1="20" x2=(offsets[index]) y2=(height) {}
            }
            line.axis x1=(LABELS) y1="20" x2=(x) y2="20" {}
            @for (index, judged) in judged.iter().enumerate() {
                @let y = top + row * index as f64;
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
                    text x="4" y=(y + 12.0) { (judged.item) }
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
        }
    }
}

/// Every participant's message log of the application (`QueryLog` of the
/// admin service): each envelope decoded, each signature (the sender's, the
/// gateway's countersignature, those of the envelope it carries) verified
/// with the trust registry.
pub(crate) async fn messages(ctx: &Ctx, id: &str) -> Markup {
    let lang = ctx.lang();
    let app = &ctx.app;
    let trust = match app.config.keys.trust() {
        Ok(trust) => trust,
        Err(error) => return problem("messages-problem", Some(&Problem::from_error("console.no_key", &error))),
    };
    let topology = &app.config.topology;
    let mut logs = Vec::new();
    let mut participants = vec![
        ("workstation", &topology.workstation, ids::SC_WORKSTATION),
        ("gateway", &topology.gateway, ids::GATEWAY),
        ("regional", &topology.regional, ids::REGIONAL),
    ];
    // The SHEP edge: each envelope with the SOAP message it came from or became.
    if let Some(shep) = &app.config.shep {
        participants.push(("shep", shep, ids::SC_WORKSTATION));
    }
    for (name, address, member) in participants {
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
    html! {
        @for (name, logged) in &logs {
            section.log data-participant=(name) aria-labelledby={ "log-" (name) } {
                h3 id={ "log-" (name) } { (t(lang, "participant")) ": " (name) }
                @match logged {
                    Err(refused) => (problem(&format!("log-{name}-problem"), Some(refused))),
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
                                @let header = egov_proto::EnvelopeHeader::decode(envelope.header.as_slice()).unwrap_or_default();
                                tr.message data-service=(header.service_id) data-direction=(entry.direction) {
                                    td { (entry.sequence) }
                                    td { (time(entry.logged_time_ms)) }
                                    td {
                                        (entry.direction)
                                        @if entry.note.starts_with('<') {
                                            details.soap { summary { "SOAP" } pre { (entry.note) } }
                                        } @else if !entry.note.is_empty() {
                                            br; small { (entry.note) }
                                        }
                                    }
                                    td { (header.sender_id) " → " (header.recipient_id) }
                                    td { (header.service_id) br; small { (header.body_type) } }
                                    td { (signatures(lang, &envelope, &trust, 0)) }
                                    td { details { summary { (header.message_id) } pre { (decoded(&header.body_type, &envelope.body)) } small { "sha256 " (entry.hash) } } }
                                }
                            }
                        }
                    },
                }
            }
        }
    }
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

/// The body decoded as the type its header names, as text (the documents'
/// scans and the envelopes it carries shortened).
fn decoded(body_type: &str, body: &[u8]) -> String {
    use egov_proto::Body;
    fn text<B: Body + std::fmt::Debug>(body: &[u8]) -> String {
        match B::decode(body) {
            Ok(decoded) => format!("{decoded:#?}"),
            Err(error) => format!("does not decode as {}: {error}", B::TYPE),
        }
    }
    let text = match body_type {
        egov_proto::PersonQuery::TYPE => text::<egov_proto::PersonQuery>(body),
        egov_proto::PersonAnswer::TYPE => text::<egov_proto::PersonAnswer>(body),
        egov_proto::PowerOfAttorneyQuery::TYPE => text::<egov_proto::PowerOfAttorneyQuery>(body),
        egov_proto::PowerOfAttorneyAnswer::TYPE => text::<egov_proto::PowerOfAttorneyAnswer>(body),
        egov_proto::ApplicationForm::TYPE => text::<egov_proto::ApplicationForm>(body),
        egov_proto::ApplicationSubmission::TYPE => text::<egov_proto::ApplicationSubmission>(body),
        egov_proto::ApplicantArrival::TYPE => text::<egov_proto::ApplicantArrival>(body),
        egov_proto::ResultPickup::TYPE => text::<egov_proto::ResultPickup>(body),
        egov_proto::ApplicationWithdrawal::TYPE => text::<egov_proto::ApplicationWithdrawal>(body),
        egov_proto::ApplicationDelivery::TYPE => match egov_proto::ApplicationDelivery::decode(body) {
            Ok(mut delivery) => {
                let carried = delivery.operator_submission.take();
                let mut text = format!("{delivery:#?}");
                if let Some(carried) = carried {
                    text.push_str(&format!("\noperator_submission: {} bytes, signed", carried.body.len()));
                }
                text
            }
            Err(error) => error.to_string(),
        },
        egov_proto::ApplicationProgress::TYPE => match egov_proto::ApplicationProgress::decode(body) {
            Ok(mut progress) => {
                let carried = progress.signed_result.take();
                let mut text = format!("{progress:#?}");
                if let Some(carried) = carried {
                    text.push_str(&format!(
                        "\nsigned_result: {}",
                        decoded(egov_proto::ServiceResult::TYPE, &carried.body)
                    ));
                }
                text
            }
            Err(error) => error.to_string(),
        },
        egov_proto::ServiceResult::TYPE => text::<egov_proto::ServiceResult>(body),
        egov_proto::StaffAction::TYPE => text::<egov_proto::StaffAction>(body),
        egov_proto::OfficeReception::TYPE => text::<egov_proto::OfficeReception>(body),
        egov_proto::Notice::TYPE => text::<egov_proto::Notice>(body),
        other => format!("{} bytes of {other}", body.len()),
    };
    // A scan's bytes print as numbers: keep the text readable.
    const MAX_CHARS: usize = 6000;
    if text.chars().count() > MAX_CHARS { text.chars().take(MAX_CHARS).collect::<String>() + "\n…" } else { text }
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
            p.bad { (name) ": " (t(lang, "unreachable")) " (" (error) ")" }
        }
        table #hops aria-labelledby="hops-title" {
            thead { tr {
                th scope="col" { (t(lang, "participant")) }
                th scope="col" { (t(lang, "record.kind")) }
                th scope="col" { "RPC" }
                th scope="col" { (t(lang, "sender")) " → " (t(lang, "recipient")) }
                th scope="col" { (t(lang, "service")) }
                th scope="col" { (t(lang, "time")) }
                th scope="col" { (t(lang, "status")) }
            } }
            tbody {
                @for (name, record) in &rows {
                    tr {
                        td { (name) }
                        td { (record.kind) }
                        td { (record.rpc) }
                        td { (record.client_id) " → " (record.peer_id) }
                        td { (record.service_id) }
                        td { (time(record.request_in_time_us.max(record.request_out_time_us) / 1000)) }
                        td { (record.status_code) @if !record.reason.is_empty() { " " (record.reason) } }
                    }
                }
            }
        }
    }
}

/// The SLA report: every step and term of the known applications that
/// missed its deadline or is at risk of it (the rows of `egov sla report`).
pub async fn sla(ctx: Ctx) -> Response {
    let lang = ctx.lang();
    let now = ctx.app.clock.now_ms();
    let mut rows = Vec::new();
    let known = known(&ctx.app, None).await;
    for application in known.as_ref().map_or(&[][..], Vec::as_slice) {
        for judged in judge(ctx.app.definition(), application, now) {
            if matches!(judged.standing, Standing::Missed | Standing::AtRisk) {
                rows.push((application.clone(), judged));
            }
        }
    }
    let body = html! {
        p { (t(lang, "sla.intro")) }
        @if let Err(refused) = &known {
            (problem("sla-problem", Some(refused)))
        }
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
                    th scope="col" { (t(lang, "standing")) }
                } }
                tbody {
                    @for (application, judged) in &rows {
                        tr data-row={ (application.application_id) " " (judged.item) " " (judged.standing.as_str()) } {
                            td { a href={ "/applications/" (application.application_id) } { (application.application_id) } }
                            td { (application.registration_id) }
                            td { (judged.item) }
                            td { (judged.deadline_ms.map(time).unwrap_or_default()) }
                            td { (judged.ended_ms.map(time).unwrap_or_else(|| t(lang, "in.progress").to_owned())) }
                            td { (layout::standing(lang, judged.standing)) }
                        }
                    }
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
        p { strong { (lang.pick(&service.name_kk, &service.name_ru, &service.name_en)) } " — " (service.code) ", " (service.regulation) }
        h2 #diagram-heading { (t(lang, "diagram")) }
        figure aria-labelledby="diagram-heading" { (PreEscaped(render::svg(definition, &[], None))) }
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
                        td { strong { (step.id) } " " (step.title) }
                        td { (step.actor) }
                        td { (step.duration.map(|d| d.to_string()).unwrap_or_default()) }
                        td {
                            @if let Some(next) = &step.next { (next) }
                            @if let Some(yes) = &step.yes { (t(lang, "yes")) ": " (yes.next) " " }
                            @if let Some(no) = &step.no { (t(lang, "no")) ": " (no.next) }
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
                    tr { td { (term.id) } td { (term.title) } td { (term.from) " → " (term.to) } td { (term.duration.to_string()) } }
                }
            }
        }
        h2 { "Mermaid" }
        pre { (render::mermaid(definition)) }
    };
    layout::page(&ctx, t(lang, "regulation"), "/regulation", body)
}
