//! The State Corporation operator's screens: log-in (process 1), the new
//! application's form (process 2) and its look-up (process 3, condition 1,
//! the process-4 notice), the documents attached and signed (process 5) and
//! sent (process 6), the operator's applications, the call of the next
//! ticket of the electronic queue, and the hand-over of the result (process 9). Every call is the operator's, signed with their key.

use std::sync::Arc;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use egov_client::OperatorClient;
use egov_proto::{Application, PowerOfAttorneyKind, Representative};
use egov_regulation::Effect;
use maud::{Markup, html};

use crate::guard::{self, NoFields, Posted};
use crate::i18n::{self, Lang, t};
use crate::layout::{self, problem};
use crate::package::Upload;
use crate::{Ctx, MAX_FILE_BYTES, Problem, see_other, time};

#[derive(serde::Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// The log-in form, or the operator's applications once logged in.
pub async fn start(ctx: Ctx) -> Response {
    match &ctx.session.operator {
        None => login_page(&ctx, &LoginForm::default(), None).into_response(),
        Some(operator) => {
            let lang = ctx.lang();
            let query = egov_proto::ApplicationListQuery {
                operator_id: operator.operator_id().to_owned(),
                ..egov_proto::ApplicationListQuery::default()
            };
            let mine = crate::applications::first_page(&ctx.app, &query).await;
            let body = html! {
                (who(&ctx, operator))
                p { a href="/operator/new" { (t(lang, "new.application")) } }
                (call_next_form(&ctx))
                h2 { (t(lang, "my.applications")) }
                div #live-list data-live {
                    @match &mine {
                        Ok(mine) => (applications_table(&ctx, mine, "/operator/applications/")),
                        Err(refused) => (problem(lang, "applications-problem", Some(refused))),
                    }
                }
            };
            layout::page(&ctx, t(lang, "operator"), "/operator", body).into_response()
        }
    }
}

/// Who is logged in, and the log-out button.
fn who(ctx: &Ctx, operator: &OperatorClient) -> Markup {
    let lang = ctx.lang();
    html! {
        form.inline method="post" action="/operator/logout" {
            (guard::field(ctx))
            (t(lang, "logged.in.as")) " " strong #operator-id { (operator.operator_id()) } " "
            button.secondary type="submit" { (t(lang, "logout")) }
        }
    }
}

/// The "Call the next ticket" button: the operator, free, calls the next
/// waiting ticket of their centre's queue (paragraph 9.4).
fn call_next_form(ctx: &Ctx) -> Markup {
    html! {
        form.inline #call-next method="post" action="/operator/call-next" {
            (guard::field(ctx))
            button type="submit" { (t(ctx.lang(), "call.next")) }
        }
    }
}

/// Applications as a table: id (a link under `link`), state, registration, due.
pub fn applications_table(ctx: &Ctx, applications: &[Application], link: &str) -> Markup {
    let lang = ctx.lang();
    html! {
        @if applications.is_empty() {
            p { (t(lang, "none.found")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (t(lang, "application")) }
                    th scope="col" { (t(lang, "applicant")) }
                    th scope="col" { (t(lang, "applicant.iin")) }
                    th scope="col" { (t(lang, "started")) }
                    th scope="col" { (t(lang, "state")) }
                    th scope="col" { (t(lang, "registration")) }
                    th scope="col" { (t(lang, "due")) }
                } }
                tbody {
                    @for application in applications {
                        tr data-application=(application.application_id) {
                            td { a href={ (link) (application.application_id) } { (application.application_id) } }
                            td.applicant { (application.applicant_name) }
                            td { (application.applicant_iin) }
                            td.started { (time(crate::applications::started(ctx.app.definition(), application))) }
                            td.state { (state(ctx, application)) }
                            td { (application.registration_id) }
                            td { (time(application.due_time_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// The step an application waits on (its title in the definition), or its outcome.
pub fn state(ctx: &Ctx, application: &Application) -> String {
    state_in(ctx.app.definition(), ctx.lang(), application)
}

/// [`state`] in `lang`, by `definition`.
pub fn state_in(definition: &egov_regulation::Definition, lang: Lang, application: &Application) -> String {
    if !application.outcome.is_empty() {
        return format!("{}: {}", t(lang, "outcome"), definition.outcome_name(&application.outcome, lang.code()));
    }
    match definition.step(&application.current_step) {
        Some(step) => format!("{} {}", step.id, step.title.get(lang.code())),
        None => application.current_step.clone(),
    }
}

fn login_page(ctx: &Ctx, form: &LoginForm, refused: Option<&Problem>) -> axum::response::Html<String> {
    let lang = ctx.lang();
    let body = html! {
        form.card method="post" action="/operator/login" aria-labelledby="login-title" {
            (guard::field(ctx))
            h2 #login-title { (t(lang, "login.operator")) }
            label for="login" { (t(lang, "login.name")) }
            input #login type="text" name="login" value=(form.login) autocomplete="username" aria-describedby="login-problem";
            (problem(lang, "login-problem", refused))
            label for="password" { (t(lang, "password")) }
            input #password type="password" name="password" autocomplete="current-password";
            div { button type="submit" { (t(lang, "login")) } }
        }
    };
    layout::page(ctx, t(lang, "operator"), "/operator", body)
}

/// Process 1: the workstation's `Login`; the session's operator signs with
/// the key of the member the account names.
pub async fn login(ctx: Ctx, Posted(form): Posted<LoginForm>) -> Response {
    if form.login.trim().is_empty() || form.password.is_empty() {
        let refused = Problem::new("console.required", "console.required: give the login and the password");
        return login_page(&ctx, &form, Some(&refused)).into_response();
    }
    match log_in(&ctx, form.login.trim(), &form.password).await {
        Ok(operator) => {
            ctx.log_in(|session| {
                session.operator = Some(operator);
                session.lookups.clear();
            });
            see_other("/operator")
        }
        Err(refused) => login_page(&ctx, &form, Some(&refused)).into_response(),
    }
}

async fn log_in(ctx: &Ctx, login: &str, password: &str) -> Result<OperatorClient, Problem> {
    let app = &ctx.app;
    let channel = app
        .channel(&app.config.topology.workstation, login)
        .map_err(|error| Problem::from_error("console.unreachable", &error))?;
    let mut operator = OperatorClient::new(channel, placeholder_signer(), Arc::clone(&app.clock));
    let session = operator.login(login, password).await.map_err(|status| Problem::from_status(&status))?;
    let keys = &app.config.keys;
    let signer = keys
        .trust()
        .and_then(|trust| keys.signer_in(&trust, &session.operator_id))
        .map_err(|error| Problem::from_error("console.no_key", &error))?;
    let channel = app
        .channel(&app.config.topology.workstation, &session.operator_id)
        .map_err(|error| Problem::from_error("console.unreachable", &error))?;
    Ok(OperatorClient::new(channel, signer, Arc::clone(&app.clock)).with_session(session.session_id))
}

/// The client `Login` is called on signs nothing; its key is never used.
fn placeholder_signer() -> egov_envelope::Signer {
    egov_envelope::Signer::from_seed("console", "console", &[0; 32])
}

pub async fn logout(ctx: Ctx, _: Posted<NoFields>) -> Response {
    ctx.log_out(|session| {
        session.operator = None;
        session.lookups.clear();
    });
    see_other("/operator")
}

#[derive(serde::Deserialize, Default)]
pub struct NewApplication {
    #[serde(default)]
    applicant: String,
    #[serde(default)]
    representative: String,
    #[serde(default)]
    notarised: Option<String>,
    #[serde(default)]
    poa_number: String,
    #[serde(default)]
    poa_issued_on: String,
}

pub async fn new_form(ctx: Ctx) -> Response {
    if ctx.session.operator.is_none() {
        return see_other("/operator");
    }
    new_page(&ctx, &NewApplication::default(), None).into_response()
}

/// The fields a refusal belongs next to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Applicant,
    Representative,
    PowerOfAttorney,
}

fn new_page(ctx: &Ctx, form: &NewApplication, refused: Option<(Field, Problem)>) -> axum::response::Html<String> {
    let lang = ctx.lang();
    let at = |field: Field| refused.as_ref().filter(|(f, _)| *f == field).map(|(_, p)| p);
    let body = html! {
        form.card method="post" action="/operator/new" aria-labelledby="form-title" {
            (guard::field(ctx))
            h2 #form-title { (ctx.app.definition().service.name(lang.code())) }
            label for="applicant" { (t(lang, "applicant.iin")) }
            input #applicant type="text" name="applicant" value=(form.applicant) inputmode="numeric" maxlength="12"
                aria-required="true" aria-describedby="applicant-problem" aria-invalid=[at(Field::Applicant).map(|_| "true")];
            (problem(lang, "applicant-problem", at(Field::Applicant)))
            label for="representative" { (t(lang, "representative.iin")) }
            input #representative type="text" name="representative" value=(form.representative) inputmode="numeric"
                maxlength="12" aria-describedby="representative-problem"
                aria-invalid=[at(Field::Representative).map(|_| "true")];
            (problem(lang, "representative-problem", at(Field::Representative)))
            fieldset {
                legend { (t(lang, "power.of.attorney")) }
                input #notarised type="checkbox" name="notarised" value="yes" checked[form.notarised.is_some()];
                label.inline for="notarised" { (t(lang, "notarised")) }
                label for="poa_number" { (t(lang, "poa.number")) }
                input #poa_number type="text" name="poa_number" value=(form.poa_number) aria-describedby="poa-problem"
                    data-required-if-filled="representative" data-required-with-checked="notarised";
                label for="poa_issued_on" { (t(lang, "poa.issued")) }
                input #poa_issued_on type="date" name="poa_issued_on" value=(form.poa_issued_on);
                (problem(lang, "poa-problem", at(Field::PowerOfAttorney)))
            }
            div { button type="submit" { (t(lang, "open.form")) } }
        }
    };
    layout::page(ctx, t(lang, "new.application"), "/operator/new", body)
}

/// Process 2 (and at the workstation processes 3, 4 and condition 1): the
/// form signed by the operator. A refusal is shown next to its field; the
/// workstation stored nothing.
pub async fn open_form(ctx: Ctx, Posted(form): Posted<NewApplication>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    let applicant = form.applicant.trim().to_owned();
    if applicant.is_empty() {
        let refused = Problem::new("console.required", "console.required: the applicant's IIN is required");
        return new_page(&ctx, &form, Some((Field::Applicant, refused))).into_response();
    }
    let representative = (!form.representative.trim().is_empty()).then(|| {
        let notarised = form.notarised.is_some();
        Representative {
            iin: form.representative.trim().to_owned(),
            kind: if notarised { PowerOfAttorneyKind::Notarised } else { PowerOfAttorneyKind::Other } as i32,
            power_of_attorney_number: if notarised { form.poa_number.trim().to_owned() } else { String::new() },
            power_of_attorney_issued_on: if notarised { form.poa_issued_on.trim().to_owned() } else { String::new() },
        }
    });
    let application_id = uuid::Uuid::new_v4().to_string();
    let service = ctx.app.definition().service.code.clone();
    match operator.open_form(&application_id, &service, &applicant, representative).await {
        Ok(opened) => {
            ctx.update(|session| {
                session.lookups.insert(application_id.clone(), opened);
            });
            see_other(&format!("/operator/applications/{application_id}"))
        }
        Err(status) => {
            let refused = Problem::from_status(&status);
            let field = if refused.message.contains("representative") {
                Field::Representative
            } else if refused.code.starts_with("workstation.") && refused.code != "workstation.bad_session" {
                Field::PowerOfAttorney
            } else {
                Field::Applicant
            };
            new_page(&ctx, &form, Some((field, refused))).into_response()
        }
    }
}

/// Where a refusal on the application's page is shown.
enum Refused {
    Document(String, Problem),
    Submission(Problem, Option<Markup>),
    HandOver(Problem),
    Withdrawal(Problem),
}

pub async fn application(ctx: Ctx, Path(id): Path<String>) -> Response {
    application_page(&ctx, &id, None).await
}

async fn application_page(ctx: &Ctx, id: &str, refused: Option<Refused>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    let application = match operator.application(id).await {
        Ok(application) => application,
        Err(status) if status.code() == tonic::Code::NotFound => return crate::not_found(ctx),
        Err(status) => {
            let body = html! { (problem(lang, "application-problem", Some(&Problem::from_status(&status)))) };
            return layout::page(ctx, t(lang, "application"), "/operator", body).into_response();
        }
    };
    let lookup = ctx.session.lookups.get(id);
    // A delivery failing (the ARM down): said on the page, with where to retry it.
    let pending =
        if application.outcome.is_empty() { crate::incidents::pending_of(&ctx.app, id).await } else { Vec::new() };
    let submitting =
        definition.step_by_effect(Effect::SignSubmission).is_some_and(|s| s.id == application.current_step);
    let issuing = definition.step_by_effect(Effect::IssueResult).is_some_and(|s| s.id == application.current_step);
    // A hint for the labels only: the counter decides what the package needs.
    let represented = lookup.is_some_and(|l| l.power_of_attorney.is_some());
    let document_problem = match &refused {
        Some(Refused::Document(kind, problem)) => Some((kind.as_str(), problem)),
        _ => None,
    };
    let body = html! {
        (who(ctx, &operator))
        div #live-summary data-live {
            (summary(ctx, &application))
            @for (participant, entry) in &pending {
                p.bad.pending role="status" data-target=(entry.target) {
                    (t(lang, "delivery.pending")) " (" (i18n::participant(lang, participant)) " → " (entry.target) ", "
                    (t(lang, "attempts")) ": " (entry.attempts) @if entry.incident { ", " (t(lang, "incident")) } "). "
                    a href="/incidents?all=yes" { (t(lang, "incidents")) }
                }
            }
            @if let Some(notice) = &application.notice {
                section.notice role="note" aria-labelledby="notice-title" data-code=(notice.code) {
                    h2 #notice-title { (t(lang, "notice")) ": " (i18n::notice_heading(definition, lang, &notice.code)) }
                    p { (lang.pick(&notice.text_kk, &notice.text_ru, &notice.text_en)) }
                }
            }
        }
        @if let Some(lookup) = lookup {
            (lookup_result(lang, lookup))
        }
        @if submitting {
            form.card method="post" action={ "/operator/applications/" (id) "/submit" } enctype="multipart/form-data"
                aria-labelledby="attach-title" {
                (guard::field(ctx))
                h2 #attach-title { (t(lang, "attach.sign")) }
                p { (t(lang, "file.limit")) " " (MAX_FILE_BYTES / 1024) " KiB." }
                @for document in &definition.documents {
                    @let field = format!("doc-{}", document.code);
                    @let needed = document.required || (document.when.as_deref() == Some("representative") && represented);
                    label for=(field) {
                        (lang.pick(&document.kk, &document.ru, &document.en))
                        @if needed { " (" (t(lang, "required")) ")" }
                    }
                    @let with_representative = document.when.as_deref() == Some("representative") && represented;
                    input id=(field) type="file" name=(field) aria-describedby={ (field) "-problem" }
                        required[with_representative] aria-required=[with_representative.then_some("true")];
                    (problem(lang, &format!("{field}-problem"), document_problem.filter(|(k, _)| *k == document.code).map(|(_, p)| p)))
                }
                @if let Some(Refused::Submission(problem_, notice)) = &refused {
                    (problem(lang, "submit-problem", Some(problem_)))
                    @if let Some(notice) = notice { (notice) }
                }
                div { button type="submit" { (t(lang, "sign.submit")) } }
            }
            form.card method="post" action={ "/operator/applications/" (id) "/withdraw" } aria-labelledby="withdraw-title" {
                (guard::field(ctx))
                h2 #withdraw-title { (t(lang, "withdraw")) }
                label for="reason" { (t(lang, "withdraw.reason")) }
                input #reason type="text" name="reason" required aria-required="true" aria-describedby="withdraw-problem";
                input #withdraw-confirm type="checkbox" name="confirm" value="yes" required;
                label.inline for="withdraw-confirm" { (t(lang, "withdraw.confirm")) }
                @if let Some(Refused::Withdrawal(problem_)) = &refused {
                    (problem(lang, "withdraw-problem", Some(problem_)))
                }
                div { button.secondary type="submit" { (t(lang, "withdraw")) } }
            }
        }
        // The ticket and the hand-over once the result has arrived (process 9 is the current step); before, only
        // when it is due. (The workstation still refuses a ticket taken too early, saying when to come back.)
        div #live-handover data-live {
        @if !issuing && !application.registration_id.is_empty() && application.outcome.is_empty() {
            section.card aria-labelledby="handover-title" {
                h2 #handover-title { (t(lang, "hand.over")) }
                p #result-pending { (t(lang, "result.not.arrived")) " " (t(lang, "due")) ": " (time(application.due_time_ms)) }
                @if let Some(Refused::HandOver(problem_)) = &refused {
                    (problem(lang, "handover-problem", Some(problem_)))
                }
            }
        }
        @if issuing {
            section.card aria-labelledby="handover-title" {
                h2 #handover-title { (t(lang, "hand.over")) }
                @if !application.queue_ticket.is_empty() {
                    p {
                        (t(lang, "ticket")) ": " strong #ticket { (application.queue_ticket) }
                        @if !application.queue_called_by.is_empty() {
                            " " span #ticket-called {
                                (t(lang, "called")) ": " (application.queue_called_by)
                                @if !application.queue_window.is_empty() {
                                    ", " (t(lang, "window")) " " (application.queue_window)
                                }
                                " " (time(application.queue_called_time_ms))
                            }
                        }
                    }
                }
                form.inline method="post" action={ "/operator/applications/" (id) "/ticket" } {
                    (guard::field(ctx))
                    button type="submit" { (t(lang, "take.ticket")) }
                }
                " "
                (call_next_form(ctx))
                " "
                form.inline method="post" action={ "/operator/applications/" (id) "/issue" } {
                    (guard::field(ctx))
                    button type="submit" { (t(lang, "issue.result")) }
                }
                @if let Some(Refused::HandOver(problem_)) = &refused {
                    (problem(lang, "handover-problem", Some(problem_)))
                }
            }
        }
        }
        div #live-path data-live {
            h2 { (t(lang, "path")) }
            (path_table(ctx, &application, None))
        }
        p { a href={ "/applications/" (id) } { (t(lang, "tester.view")) } }
    };
    let here = format!("/operator/applications/{id}");
    layout::page(ctx, &format!("{} {id}", t(lang, "application")), &here, body).into_response()
}

/// The application's identity and state.
pub fn summary(ctx: &Ctx, application: &Application) -> Markup {
    let lang = ctx.lang();
    html! {
        table.summary {
            tr { th scope="row" { (t(lang, "application")) } td #application-id { (application.application_id) } }
            tr { th scope="row" { (t(lang, "applicant")) } td #applicant-name { (application.applicant_name) } }
            tr { th scope="row" { (t(lang, "applicant.iin")) } td { (application.applicant_iin) } }
            tr { th scope="row" { (t(lang, "started")) } td #started { (time(crate::applications::started(ctx.app.definition(), application))) } }
            tr { th scope="row" { (t(lang, "state")) } td #state { (state(ctx, application)) } }
            tr { th scope="row" { (t(lang, "registration")) } td #registration { (application.registration_id) } }
            tr { th scope="row" { (t(lang, "due")) } td { (time(application.due_time_ms)) } }
            tr { th scope="row" { (t(lang, "operator")) } td { (application.operator_id) } }
        }
    }
}

/// Each step of the path: its actor, member, start, end, deadline and standing.
/// `messages`, on the testers' page: the anchor of the message that made each step.
pub fn path_table(
    ctx: &Ctx,
    application: &Application,
    messages: Option<&std::collections::HashMap<String, String>>,
) -> Markup {
    use egov_regulation::instance::Standing;
    let lang = ctx.lang();
    let calendar = egov_regulation::Calendar::kazakhstan();
    let now = ctx.app.clock.now_ms();
    let definition = ctx.app.definition();
    html! {
        table.path {
            thead { tr {
                th scope="col" { (t(lang, "step")) }
                th scope="col" { (t(lang, "actor")) }
                th scope="col" { (t(lang, "member")) }
                th scope="col" { (t(lang, "started")) }
                th scope="col" { (t(lang, "ended")) }
                th scope="col" { (t(lang, "deadline")) }
                th scope="col" { (t(lang, "standing")) }
            } }
            tbody {
                @for step in &application.path {
                    @let deadline = (step.deadline_time_ms > 0).then_some(step.deadline_time_ms);
                    tr id={ "step-" (step.step_id) } data-step=(step.step_id) {
                        td {
                            @match messages.and_then(|links| links.get(&step.step_id)) {
                                Some(at) => a.message-link href={ "#" (at) } { (step.step_id) },
                                None => (step.step_id),
                            }
                            " " (i18n::step_title(definition, lang, &step.step_id, &step.title))
                            @if !step.branch.is_empty() { " → " (i18n::branch(lang, &step.branch)) }
                            @if !step.detail.is_empty() { br; small.detail { (i18n::detail(definition, lang, &step.detail)) } }
                        }
                        td { (definition.actor_name(&step.actor, lang.code())) }
                        td { (step.actor_id) }
                        td { (time(step.started_time_ms)) }
                        td { (time(step.ended_time_ms)) }
                        td { (time(step.deadline_time_ms)) }
                        td { (layout::standing(lang, Standing::of(step.started_time_ms, deadline, Some(step.ended_time_ms), now, calendar))) }
                    }
                }
                // The withdrawal is no step of the regulation; the path shows it as its last row.
                @if application.outcome == egov_regulation::instance::WITHDRAWN {
                    tr.withdrawal data-step="withdrawal" {
                        td { (t(lang, "withdrawal")) @if !application.withdrawal_reason.is_empty() { br; small.detail #withdrawal-reason { (application.withdrawal_reason) } } }
                        td { (definition.step_by_effect(Effect::SignSubmission).map(|step| definition.actor_name(&step.actor, lang.code())).unwrap_or("")) }
                        td { (application.operator_id) }
                        td { (time(application.withdrawn_time_ms)) }
                        td { (time(application.withdrawn_time_ms)) }
                        td {}
                        td { "–" }
                    }
                }
                @if !application.current_step.is_empty() {
                    @let deadline = (application.current_step_deadline_ms > 0).then_some(application.current_step_deadline_ms);
                    tr.current data-step=(application.current_step) {
                        td { strong { (application.current_step) } " " (i18n::step_title(definition, lang, &application.current_step, "")) }
                        td { (definition.step(&application.current_step).map(|s| definition.actor_name(&s.actor, lang.code())).unwrap_or("")) }
                        td {}
                        td { (time(application.current_step_since_ms)) }
                        td { (t(lang, "in.progress")) }
                        td { (time(application.current_step_deadline_ms)) }
                        td { (layout::standing(lang, Standing::of(application.current_step_since_ms, deadline, None, now, calendar))) }
                    }
                }
            }
        }
    }
}

fn lookup_result(lang: Lang, lookup: &egov_proto::OpenFormResponse) -> Markup {
    html! {
        section.card #lookup aria-labelledby="lookup-title" {
            h2 #lookup-title { (t(lang, "lookup.result")) }
            @if let Some(person) = &lookup.applicant {
                p { (t(lang, "person")) ": " strong { (person.surname) " " (person.name) " " (person.patronymic) }
                    ", " (t(lang, "born")) " " (person.birth_date) ", " (person.iin) }
            } @else {
                p { (t(lang, "person")) ": " (t(lang, "not.found")) }
            }
            @if let Some(power) = &lookup.power_of_attorney {
                p { (t(lang, "power.of.attorney")) ": " (power.number) " " (power.issued_on) " – " (power.valid_until)
                    " (" (power.notary) ")" }
            }
        }
    }
}

/// Process 5: the documents attached with the file picker, signed with the
/// operator's key; the workstation sends them on (process 6). A file too
/// large or a package the counter refuses changes nothing.
pub async fn submit(ctx: Ctx, Path(id): Path<String>, Upload(read): Upload) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    let documents = match read {
        Ok(package) => package.documents,
        Err(crate::package::Unread { kind: Some(kind), problem }) => {
            return application_page(&ctx, &id, Some(Refused::Document(kind, problem))).await;
        }
        Err(crate::package::Unread { kind: None, problem }) => {
            return application_page(&ctx, &id, Some(Refused::Submission(problem, None))).await;
        }
    };
    match operator.submit(&id, documents).await {
        Ok(_) => {
            ctx.flash(&format!("{}: {id}", t(ctx.lang(), "done")));
            see_other(&format!("/operator/applications/{id}"))
        }
        Err(status) => {
            let notice = ctx
                .app
                .config
                .keys
                .trust()
                .ok()
                .and_then(|trust| egov_client::counter_notice(&status, &trust).ok().flatten())
                .map(|counter| counter_notice(&ctx, &counter));
            application_page(&ctx, &id, Some(Refused::Submission(Problem::from_status(&status), notice))).await
        }
    }
}

/// The applicant's notice of what the package lacks, signed by the counter.
fn counter_notice(ctx: &Ctx, counter: &egov_client::CounterNotice) -> Markup {
    let lang = ctx.lang();
    let notice = &counter.notice;
    html! {
        div.notice role="note" data-code=(notice.code) {
            strong { (t(lang, "notice")) ": " (i18n::notice_heading(ctx.app.definition(), lang, &notice.code)) }
            " (" (counter.verified.header.sender_id) ", " (counter.verified.key_id) ", " (t(lang, "verified")) ")"
            p { (lang.pick(&notice.text_kk, &notice.text_ru, &notice.text_en)) }
        }
    }
}

/// The applicant came for the result: a ticket of the electronic queue.
pub async fn ticket(ctx: Ctx, Path(id): Path<String>, _: Posted<NoFields>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    match operator.take_ticket(&id).await {
        Ok(taken) => {
            let ticket = taken.ticket.unwrap_or_default();
            let lang = ctx.lang();
            ctx.flash(&format!("{} {} ({} {})", t(lang, "ticket"), ticket.number, ticket.ahead, t(lang, "ahead")));
            see_other(&format!("/operator/applications/{id}"))
        }
        Err(status) => {
            let mut refused = Problem::from_status(&status);
            if let Some(at) = egov_client::come_back_at(&status) {
                refused.note = format!(" ({}: {})", t(ctx.lang(), "come.back"), time(at.timestamp_millis()));
            }
            application_page(&ctx, &id, Some(Refused::HandOver(refused))).await
        }
    }
}

/// The operator calls the next waiting ticket of their centre's queue: its
/// application's page, with the ticket called; the operator's page, saying so,
/// when no ticket waits.
pub async fn call_next(ctx: Ctx, _: Posted<NoFields>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    let lang = ctx.lang();
    match operator.call_next().await {
        Ok(called) => match (called.ticket, called.application) {
            (Some(ticket), Some(application)) => {
                ctx.flash(&format!(
                    "{} {} {}: {}",
                    t(lang, "ticket"),
                    ticket.number,
                    t(lang, "called"),
                    application.application_id
                ));
                see_other(&format!("/operator/applications/{}", application.application_id))
            }
            _ => {
                ctx.flash(t(lang, "no.ticket.waiting"));
                see_other("/operator")
            }
        },
        Err(status) => {
            let refused = Problem::from_status(&status);
            ctx.flash(&format!("{}: {}", refused.code, i18n::problem_text(lang, &refused.code)));
            see_other("/operator")
        }
    }
}

/// Process 9: the result handed over to the applicant whose ticket was called to this operator.
pub async fn issue(ctx: Ctx, Path(id): Path<String>, _: Posted<NoFields>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    match operator.issue(&id).await {
        Ok(issued) => {
            let key = issued.result.and_then(|result| result.signatures.first().map(|s| s.key_id.clone()));
            let lang = ctx.lang();
            ctx.flash(&format!(
                "{}: {}{}",
                t(lang, "done"),
                t(lang, "hand.over"),
                key.map(|key| format!(" ({}: {key})", t(lang, "signed.result"))).unwrap_or_default()
            ));
            see_other(&format!("/operator/applications/{id}"))
        }
        Err(status) => application_page(&ctx, &id, Some(Refused::HandOver(Problem::from_status(&status)))).await,
    }
}

#[derive(serde::Deserialize)]
pub struct Withdrawal {
    #[serde(default)]
    reason: String,
    /// The operator's confirmation: "yes".
    #[serde(default)]
    confirm: Option<String>,
}

/// Withdraws a form opened but never submitted (the simulator's assumption:
/// it ends `withdrawn`), signed by the operator.
pub async fn withdraw(ctx: Ctx, Path(id): Path<String>, Posted(form): Posted<Withdrawal>) -> Response {
    let Some(operator) = ctx.session.operator.clone() else { return see_other("/operator") };
    // Nothing is withdrawn without its reason and the operator's confirmation.
    if form.reason.trim().is_empty() {
        let refused = Problem::new("console.required", "console.required: a withdrawal needs its reason");
        return application_page(&ctx, &id, Some(Refused::Withdrawal(refused))).await;
    }
    if form.confirm.as_deref() != Some("yes") {
        let refused = Problem::new("console.confirm", "console.confirm: confirm the withdrawal; nothing was withdrawn");
        return application_page(&ctx, &id, Some(Refused::Withdrawal(refused))).await;
    }
    match operator.withdraw(&id, form.reason.trim()).await {
        Ok(_) => {
            ctx.flash(&format!("{}: {}", t(ctx.lang(), "done"), t(ctx.lang(), "withdraw")));
            see_other(&format!("/operator/applications/{id}"))
        }
        Err(status) => application_page(&ctx, &id, Some(Refused::Withdrawal(Problem::from_status(&status)))).await,
    }
}
