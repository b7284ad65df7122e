//! The provider staff's screens at the regional gateway ARM: log-in as a
//! member (office, specialist, executor or head), the queue of steps waiting
//! on that member's role, a registration's documents, and each step's
//! decision, signed with the member's key (condition 2 with its grounds, the
//! executor's draft and hand-over, the head's signature of the result).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use egov_client::StaffClient;
use egov_envelope::Signer;
use egov_proto::{Decision, Registration};
use egov_regulation::{Effect, StepKind};
use egov_runtime::ids;
use maud::{Markup, html};
use prost::Message as _;

use crate::guard::{self, NoFields, Posted};
use crate::i18n::{self, t};
use crate::layout::{self, problem};
use crate::package::{Unread, Upload};
use crate::{Ctx, Problem, see_other, time};

fn client(ctx: &Ctx) -> Result<StaffClient, Problem> {
    let app = &ctx.app;
    StaffClient::connect(
        &app.config.topology.regional,
        app.config.tls.as_ref(),
        ids::REGIONAL,
        std::sync::Arc::clone(&app.clock),
    )
    .map_err(|error| Problem::from_error("console.unreachable", &error))
}

/// The staff members of the trust registry: (member id, role, name).
fn staff_members(ctx: &Ctx) -> Vec<(String, String, String)> {
    let Ok(trust) = ctx.app.config.keys.trust() else { return Vec::new() };
    trust
        .members()
        .iter()
        .filter(|member| ids::roles::PROVIDER_STAFF.contains(&member.role.as_str()))
        .map(|member| (member.id.clone(), member.role.as_str().to_owned(), member.name.clone()))
        .collect()
}

/// The logged-in member's key and role.
fn signer(ctx: &Ctx, member: &str) -> Result<(Signer, String), Problem> {
    let keys = &ctx.app.config.keys;
    let trust = keys.trust().map_err(|error| Problem::from_error("console.no_key", &error))?;
    let role = trust
        .member(member)
        .map(|m| m.role.as_str().to_owned())
        .filter(|role| ids::roles::PROVIDER_STAFF.contains(&role.as_str()))
        .ok_or_else(|| {
            Problem::new("console.unknown_member", format!("console.unknown_member: {member:?} is no staff member"))
        })?;
    let signer = keys.signer_in(&trust, member).map_err(|error| Problem::from_error("console.no_key", &error))?;
    Ok((signer, role))
}

#[derive(serde::Deserialize, Default)]
pub struct QueueFilter {
    /// A registration number, an application id, or the applicant's IIN or name.
    #[serde(default)]
    q: String,
    /// The step it waits on.
    #[serde(default)]
    step: String,
}

pub async fn start(ctx: Ctx, axum::extract::Query(filter): axum::extract::Query<QueueFilter>) -> Response {
    queue_page(&ctx, None, &filter).await
}

/// The queue of the member logged in; for the office, also the form of an
/// application received at the provider's office, with what refused it.
async fn queue_page(ctx: &Ctx, office_refused: Option<&Unread>, filter: &QueueFilter) -> Response {
    let lang = ctx.lang();
    let Some(member) = ctx.session.staff.clone() else { return login_page(ctx, None).into_response() };
    let role = match signer(ctx, &member) {
        Ok((_, role)) => role,
        Err(refused) => return login_page(ctx, Some(&refused)).into_response(),
    };
    let queue = match client(ctx) {
        Ok(client) => client.queue(&role).await.map_err(|status| Problem::from_status(&status)),
        Err(refused) => Err(refused),
    };
    let q = filter.q.trim().to_lowercase();
    let queue = queue.map(|queue| {
        queue
            .into_iter()
            .filter(|registration| {
                let application = registration.application.clone().unwrap_or_default();
                (filter.step.is_empty() || application.current_step == filter.step)
                    && (q.is_empty()
                        || [
                            &application.registration_id,
                            &application.application_id,
                            &application.applicant_iin,
                            &application.applicant_name,
                        ]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&q)))
            })
            .collect::<Vec<_>>()
    });
    let definition = ctx.app.definition();
    let steps: Vec<&egov_regulation::Step> = definition
        .steps()
        .iter()
        .filter(|step| step.actor == role || step.handed_over_by.as_deref() == Some(role.as_str()))
        .collect();
    let body = html! {
        (who(ctx, &member, &role))
        h2 #queue-title { (t(lang, "queue")) }
        form.card method="get" action="/staff" role="search" aria-label=(t(lang, "search")) {
            label for="queue-q" { (t(lang, "search")) " (" (t(lang, "registration")) ", " (t(lang, "applicant.iin")) ", " (t(lang, "applicant")) ")" }
            input #queue-q type="search" name="q" value=(filter.q);
            label for="queue-step" { (t(lang, "step")) }
            select #queue-step name="step" {
                option value="" { (t(lang, "any")) }
                @for step in &steps {
                    option value=(step.id) selected[filter.step == step.id] { (step.id) " " (step.title.get(lang.code())) }
                }
            }
            div { button.secondary type="submit" { (t(lang, "search")) } }
        }
        div #live-queue data-live {
            @match &queue {
                Err(refused) => (problem(lang, "queue-problem", Some(refused))),
                Ok(queue) if queue.is_empty() => p { (t(lang, "queue.empty")) },
                Ok(queue) => (queue_table(ctx, queue)),
            }
        }
        @if role == ids::roles::PROVIDER_OFFICE {
            (office_form(ctx, office_refused))
        }
    };
    layout::page(ctx, t(lang, "staff"), "/staff", body).into_response()
}

/// Paragraph 3: an application received at the provider's office, its
/// documents attached with the file picker, signed by the office employee.
fn office_form(ctx: &Ctx, refused: Option<&Unread>) -> Markup {
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    let at = |kind: Option<&str>| refused.filter(|unread| unread.kind.as_deref() == kind).map(|unread| &unread.problem);
    html! {
        form.card method="post" action="/staff/office" enctype="multipart/form-data" aria-labelledby="office-title" {
            (guard::field(ctx))
            h2 #office-title { (t(lang, "office.receive")) }
            label for="office-applicant" { (t(lang, "applicant.iin")) }
            input #office-applicant type="text" name="applicant" inputmode="numeric" maxlength="12"
                aria-required="true" aria-describedby="office-applicant-problem"
                aria-invalid=[at(Some("applicant")).map(|_| "true")];
            (problem(lang, "office-applicant-problem", at(Some("applicant"))))
            label for="office-representative" { (t(lang, "representative.iin")) }
            input #office-representative type="text" name="representative" inputmode="numeric" maxlength="12";
            fieldset {
                legend { (t(lang, "power.of.attorney")) }
                input #office-notarised type="checkbox" name="notarised" value="yes";
                label.inline for="office-notarised" { (t(lang, "notarised")) }
                label for="office-poa-number" { (t(lang, "poa.number")) }
                input #office-poa-number type="text" name="poa_number";
                label for="office-poa-issued" { (t(lang, "poa.issued")) }
                input #office-poa-issued type="date" name="poa_issued_on";
            }
            p { (t(lang, "file.limit")) " " (crate::MAX_FILE_BYTES / 1024) " KiB." }
            @for document in &definition.documents {
                @let field = format!("doc-{}", document.code);
                // A document the representative brings (the power of attorney) is required as soon as one is typed in.
                @let with_representative = document.when.as_deref() == Some("representative");
                label for={ "office-" (field) } {
                    (lang.pick(&document.kk, &document.ru, &document.en))
                    @if document.required { " (" (t(lang, "required")) ")" }
                    @if with_representative {
                        span.required-mark data-mark-for={ "office-" (field) } hidden { " (" (t(lang, "required")) ")" }
                    }
                }
                input id={ "office-" (field) } type="file" name=(field) aria-describedby={ "office-" (field) "-problem" }
                    data-required-if-filled=[with_representative.then_some("office-representative")];
                (problem(lang, &format!("office-{field}-problem"), at(Some(document.code.as_str()))))
            }
            (problem(lang, "office-problem", at(None)))
            div { button type="submit" { (t(lang, "office.receive.sign")) } }
        }
    }
}

/// Receives the office's form: the reception signed with the member's key and
/// sent to the ARM, which registers it (action 1 of the office's channel). A
/// refusal is shown next to its field, and the ARM registered nothing.
pub async fn receive(ctx: Ctx, Upload(read): Upload) -> Response {
    let Some(member) = ctx.session.staff.clone() else { return see_other("/staff") };
    let package = match read {
        Ok(package) => package,
        Err(unread) => return queue_page(&ctx, Some(&unread), &QueueFilter::default()).await,
    };
    let refused = |kind: Option<&str>, problem: Problem| Unread { kind: kind.map(str::to_owned), problem };
    let applicant = package.field("applicant").to_owned();
    if applicant.is_empty() {
        let problem = Problem::new("console.required", "console.required: the applicant's IIN is required");
        return queue_page(&ctx, Some(&refused(Some("applicant"), problem)), &QueueFilter::default()).await;
    }
    let representative = (!package.field("representative").is_empty()).then(|| {
        let notarised = !package.field("notarised").is_empty();
        egov_proto::Representative {
            iin: package.field("representative").to_owned(),
            kind: if notarised {
                egov_proto::PowerOfAttorneyKind::Notarised
            } else {
                egov_proto::PowerOfAttorneyKind::Other
            } as i32,
            power_of_attorney_number: if notarised { package.field("poa_number").to_owned() } else { String::new() },
            power_of_attorney_issued_on: if notarised {
                package.field("poa_issued_on").to_owned()
            } else {
                String::new()
            },
        }
    });
    let reception = egov_proto::OfficeReception {
        application_id: uuid::Uuid::new_v4().to_string(),
        service_code: ctx.app.definition().service.code.clone(),
        applicant_iin: applicant,
        representative,
        documents: package.documents,
        arrived_time_ms: 0,
    };
    let received = match (signer(&ctx, &member), client(&ctx)) {
        (Ok((office, _)), Ok(client)) => {
            client.receive_at_office(&office, &reception).await.map_err(|status| Problem::from_status(&status))
        }
        (Err(problem), _) | (_, Err(problem)) => Err(problem),
    };
    match received {
        Ok(registration) => {
            let application = registration.application.unwrap_or_default();
            ctx.flash(&format!("{}: {}", t(ctx.lang(), "office.received"), application.registration_id));
            see_other(&format!("/staff/registrations/{}", application.registration_id))
        }
        Err(problem) => {
            // An IIN the ARM refuses is the applicant's field; the rest goes under the form.
            let kind = problem.code.starts_with("iin.").then_some("applicant");
            queue_page(&ctx, Some(&refused(kind, problem)), &QueueFilter::default()).await
        }
    }
}

fn who(ctx: &Ctx, member: &str, role: &str) -> Markup {
    let lang = ctx.lang();
    html! {
        form.inline method="post" action="/staff/logout" {
            (guard::field(ctx))
            (t(lang, "logged.in.as")) " " strong #member-id { (member) } " (" (ctx.app.definition().actor_name(role, lang.code())) ") "
            button.secondary type="submit" { (t(lang, "logout")) }
        }
    }
}

fn queue_table(ctx: &Ctx, queue: &[Registration]) -> Markup {
    use egov_regulation::instance::Standing;
    let lang = ctx.lang();
    let now = ctx.app.clock.now_ms();
    html! {
        table aria-labelledby="queue-title" {
            thead { tr {
                th scope="col" { (t(lang, "registration")) }
                th scope="col" { (t(lang, "application")) }
                th scope="col" { (t(lang, "step")) }
                th scope="col" { (t(lang, "waits.on")) }
                th scope="col" { (t(lang, "since")) }
                th scope="col" { (t(lang, "deadline")) }
                th scope="col" { (t(lang, "standing")) }
            } }
            tbody {
                @for registration in queue {
                    @let application = registration.application.clone().unwrap_or_default();
                    @let deadline = (application.current_step_deadline_ms > 0).then_some(application.current_step_deadline_ms);
                    tr data-registration=(application.registration_id) {
                        td { a href={ "/staff/registrations/" (application.registration_id) } { (application.registration_id) } }
                        td { (application.application_id) }
                        td { (crate::operator::state(ctx, &application)) }
                        td { (ctx.app.definition().actor_name(&registration.next_actor, lang.code())) }
                        td { (time(application.current_step_since_ms)) }
                        td { (time(application.current_step_deadline_ms)) }
                        td { (layout::standing(lang, Standing::of(application.current_step_since_ms, deadline, None, now, egov_regulation::Calendar::kazakhstan()))) }
                    }
                }
            }
        }
    }
}

fn login_page(ctx: &Ctx, refused: Option<&Problem>) -> axum::response::Html<String> {
    let lang = ctx.lang();
    let members = staff_members(ctx);
    let body = html! {
        form.card method="post" action="/staff/login" aria-labelledby="staff-login-title" {
            (guard::field(ctx))
            h2 #staff-login-title { (t(lang, "staff.login")) }
            p #no-password { (t(lang, "staff.no.password")) }
            label for="member" { (t(lang, "member")) }
            select #member name="member" aria-describedby="member-problem" {
                // The trust registry's names are English: the role, named in the language, stands for them.
                @for (id, role, name) in &members {
                    option value=(id) { (id) " — " (ctx.app.definition().actor_name(role, lang.code()))
                        @if lang == crate::Lang::En && name != ctx.app.definition().actor_name(role, "en") { " — " (name) } }
                }
            }
            (problem(lang, "member-problem", refused))
            div { button type="submit" { (t(lang, "login")) } }
        }
    };
    layout::page(ctx, t(lang, "staff"), "/staff", body)
}

#[derive(serde::Deserialize)]
pub struct StaffLogin {
    #[serde(default)]
    member: String,
}

pub async fn login(ctx: Ctx, Posted(form): Posted<StaffLogin>) -> Response {
    match signer(&ctx, form.member.trim()) {
        Ok(_) => {
            ctx.log_in(|session| session.staff = Some(form.member.trim().to_owned()));
            see_other("/staff")
        }
        Err(refused) => login_page(&ctx, Some(&refused)).into_response(),
    }
}

pub async fn logout(ctx: Ctx, _: Posted<NoFields>) -> Response {
    ctx.log_out(|session| session.staff = None);
    see_other("/staff")
}

pub async fn registration(ctx: Ctx, Path(id): Path<String>) -> Response {
    registration_page(&ctx, &id, None).await
}

async fn registration_page(ctx: &Ctx, id: &str, refused: Option<Problem>) -> Response {
    let lang = ctx.lang();
    let Some(member) = ctx.session.staff.clone() else { return see_other("/staff") };
    let loaded = match client(ctx) {
        Ok(client) => client.registration(id).await.map_err(|status| Problem::from_status(&status)),
        Err(refused) => Err(refused),
    };
    let registration = match loaded {
        Ok(registration) => registration,
        Err(refused) if refused.code == "regional.unknown_registration" => return crate::not_found(ctx),
        Err(refused) => {
            let body = html! { (problem(lang, "registration-problem", Some(&refused))) };
            return layout::page(ctx, t(lang, "registration"), "/staff", body).into_response();
        }
    };
    let application = registration.application.clone().unwrap_or_default();
    let role = signer(ctx, &member).map(|(_, role)| role).unwrap_or_default();
    let body = html! {
        (who(ctx, &member, &role))
        div #live-registration data-live {
        (crate::operator::summary(ctx, &application))
        @if let Some(person) = registration.applicant.as_ref().filter(|person| !person.surname.is_empty()) {
            p { (t(lang, "person")) ": " (person.surname) " " (person.name) " " (person.patronymic) ", " (t(lang, "born")) " " (person.birth_date) }
        }
        @if let Some(representative) = &registration.representative {
            p { (t(lang, "representative.iin")) ": " (representative.iin) " " (representative.power_of_attorney_number) }
        }
        h2 #documents-title { (t(lang, "documents")) }
        table aria-labelledby="documents-title" {
            thead { tr {
                th scope="col" { (t(lang, "document.kind")) }
                th scope="col" { (t(lang, "document.title")) }
                th scope="col" { (t(lang, "pages")) }
                th scope="col" { "SHA-256" }
            } }
            tbody {
                @for document in &registration.documents {
                    tr data-kind=(document.kind) {
                        td { (i18n::document_name(ctx.app.definition(), lang, &document.kind)) }
                        td { a.scan href={ "/applications/" (layout::encode(&application.application_id)) "/documents/" (layout::encode(&document.sha256)) } target="_blank" rel="noopener" { (document.title) } }
                        td { (document.pages) } td { code { (document.sha256) } } }
                }
            }
        }
        @if !registration.draft_result.is_empty() {
            h2 { (t(lang, "draft")) }
            (service_result(ctx, &registration.draft_result))
            // What the head signs: these exact bytes.
            p #draft-digest { "SHA-256: " code { (hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&registration.draft_result))) } }
        }
        @if let Some(signed) = &registration.signed_result {
            h2 { (t(lang, "signed.result")) }
            p { (signed.signatures.first().map(|s| s.key_id.as_str()).unwrap_or("")) }
        }
        (step_form(ctx, id, &registration, &member, &role, refused.as_ref()))
        h2 { (t(lang, "path")) }
        (crate::operator::path_table(ctx, &application, None))
        }
        p { a href={ "/applications/" (application.application_id) } { (t(lang, "tester.view")) } }
    };
    let here = format!("/staff/registrations/{id}");
    layout::page(ctx, &format!("{} {id}", t(lang, "registration")), &here, body).into_response()
}

/// The drafted (or signed) result, decoded.
pub fn service_result(ctx: &Ctx, bytes: &[u8]) -> Markup {
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    match egov_proto::ServiceResult::decode(bytes) {
        Ok(result) => html! {
            p.result data-outcome=(result.outcome) {
                strong { (definition.outcome_name(&result.outcome, lang.code())) }
                @if !result.refusal_ground.is_empty() { " — " (i18n::detail(definition, lang, &result.refusal_ground)) }
                " · " (result.registration_id) " · " (time(result.decided_time_ms)) " · "
                @if result.provider == definition.service.provider { (definition.service.provider_in(lang.code())) } @else { (result.provider) }
            }
        },
        Err(error) => html! { p.bad { (error.to_string()) } },
    }
}

/// Whether `step` is an official's signature on a document the ARM drafted:
/// the head's on the result (action 3, once the executor handed it over) or,
/// where the ARM hands process 8's refusal over, the deciding official's on it.
fn signs_draft(step: &egov_regulation::Step, registration: &Registration) -> bool {
    let signed = match step.effect {
        Some(Effect::SignResult) => true,
        Some(Effect::RefusalNotice) => step.handed_over_by.is_some(),
        _ => false,
    };
    signed && registration.next_actor == step.actor
}

/// The member who must sign the step, where only one may: the refusal of
/// process 8 is signed by the official who decided the documents check.
fn the_signer(
    definition: &egov_regulation::Definition,
    step: &egov_regulation::Step,
    application: &egov_proto::Application,
) -> Option<String> {
    if step.effect != Some(Effect::RefusalNotice) {
        return None;
    }
    let check = definition.step_by_effect(Effect::CheckDocuments)?;
    application.path.iter().rev().find(|record| record.step_id == check.id).map(|record| record.actor_id.clone())
}

/// The refusal grounds a "no" at `step` may give on the application's
/// channel (its own, and those the channel lends it).
fn grounds<'a>(
    definition: &'a egov_regulation::Definition,
    step: &egov_regulation::Step,
    application: &egov_proto::Application,
) -> Vec<&'a egov_regulation::definition::Labelled> {
    definition.grounds_in(&step.id, (!application.channel.is_empty()).then_some(application.channel.as_str()))
}

/// The form of the step the registration waits on, offered only to the
/// member whose role the step waits on (the ARM's `next_actor`: the step's
/// actor, or the role that hands it over first) and, for process 8's
/// refusal, only to the official who decided the documents check; to anyone
/// else the step is shown read-only, with whom it waits on.
fn step_form(
    ctx: &Ctx,
    id: &str,
    registration: &Registration,
    member: &str,
    role: &str,
    refused: Option<&Problem>,
) -> Markup {
    let lang = ctx.lang();
    let definition = ctx.app.definition();
    let application = registration.application.clone().unwrap_or_default();
    let Some(step) = definition.step(&application.current_step) else {
        return html! { (problem(lang, "step-problem", refused)) };
    };
    let signing = step.effect == Some(Effect::SignResult);
    let official_signs = signs_draft(step, registration);
    let grounds = grounds(definition, step, &application);
    let only = the_signer(definition, step, &application).filter(|_| official_signs);
    if role.is_empty() || registration.next_actor != role || only.as_ref().is_some_and(|only| only != member) {
        let waits_on = if registration.next_actor.is_empty() { step.actor.as_str() } else { &registration.next_actor };
        return html! {
            section.card #step-readonly aria-labelledby="step-title" {
                h2 #step-title { (step.id) " " (step.title.get(lang.code())) }
                p { (t(lang, "waits.on")) ": " strong #next-actor { (definition.actor_name(waits_on, lang.code())) }
                    @if let Some(only) = &only { " (" span #signer { (only) } ")" } }
                @if only.is_some() { p { (t(lang, "signed.by.decider")) } }
                p { (t(lang, "not.your.step")) }
                (problem(lang, "decision-problem", refused))
            }
        };
    }
    // The executor's decision (the step that drafts the result) reads as what it decides.
    let (yes, no) = if step.effect == Some(Effect::DraftResult) {
        (t(lang, "permit"), t(lang, "refuse"))
    } else {
        (t(lang, "yes"), t(lang, "no"))
    };
    html! {
        form.card method="post" action={ "/staff/registrations/" (id) "/act" } aria-labelledby="step-title" {
            (guard::field(ctx))
            h2 #step-title { (step.id) " " (step.title.get(lang.code())) }
            p { (t(lang, "waits.on")) ": " strong #next-actor { (definition.actor_name(&registration.next_actor, lang.code())) } }
            input type="hidden" name="step" value=(step.id);
            @if step.kind == StepKind::Condition && !signing && !official_signs {
                fieldset aria-describedby="decision-problem" {
                    legend { (t(lang, "decision")) }
                    input #decision-yes type="radio" name="decision" value="yes" required;
                    label.inline for="decision-yes" { (yes) }
                    input #decision-no type="radio" name="decision" value="no" required;
                    label.inline for="decision-no" { (no) }
                }
                @if !grounds.is_empty() {
                    // Required once "no" is chosen (console.js); the console checks it too.
                    label for="ground" { (t(lang, "ground")) }
                    select #ground name="ground" data-required-with="decision-no" aria-describedby="decision-problem" {
                        option value="" { "—" }
                        @for ground in &grounds {
                            option value=(ground.code) { (ground.code) ": " (ground.text(lang.code())) }
                        }
                    }
                }
            }
            (problem(lang, "decision-problem", refused))
            div { button type="submit" {
                @if official_signs && signing { (t(lang, "sign.result")) }
                @else if official_signs { (t(lang, "sign.refusal")) }
                @else if signing { (t(lang, "hand.over.draft")) }
                @else { (t(lang, "do.step")) }
            } }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    step: String,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    ground: String,
}

/// Does the step, signed by the logged-in member. The ARM refuses a step out
/// of turn, another role's step or a ground that is not the step's; the
/// refusal is shown on the form and nothing changed.
pub async fn act(ctx: Ctx, Path(id): Path<String>, Posted(form): Posted<StepForm>) -> Response {
    let Some(member) = ctx.session.staff.clone() else { return see_other("/staff") };
    let done = async {
        let (signer, _) = signer(&ctx, &member)?;
        let client = client(&ctx)?;
        let registration = client.registration(&id).await.map_err(|status| Problem::from_status(&status))?;
        let definition = ctx.app.definition();
        let step = definition
            .step(&form.step)
            .ok_or_else(|| Problem::new("console.unknown_step", format!("console.unknown_step: {:?}", form.step)))?;
        let decision = match form.decision.as_deref() {
            Some("yes") => Decision::Yes,
            Some("no") => Decision::No,
            _ => Decision::Unspecified,
        };
        let application = registration.application.clone().unwrap_or_default();
        let done = if signs_draft(step, &registration) && step.id == current(&registration) {
            client.sign(&signer, &registration).await
        } else {
            if step.kind == StepKind::Condition && decision == Decision::Unspecified {
                return Err(Problem::new("console.required", "console.required: choose yes or no"));
            }
            if decision == Decision::No
                && form.ground.trim().is_empty()
                && !grounds(definition, step, &application).is_empty()
            {
                return Err(Problem::new("console.required", "console.required: a refusal needs its ground"));
            }
            let ground = if decision == Decision::No { form.ground.as_str() } else { "" };
            client.act(&signer, &registration, &step.id, decision, ground).await
        };
        done.map_err(|status| Problem::from_status(&status))
    }
    .await;
    match done {
        Ok(registration) => {
            let application = registration.application.unwrap_or_default();
            ctx.flash(&format!(
                "{}: {} {} → {}",
                t(ctx.lang(), "done"),
                form.step,
                member,
                if application.outcome.is_empty() { &application.current_step } else { &application.outcome }
            ));
            see_other("/staff")
        }
        Err(refused) => registration_page(&ctx, &id, Some(refused)).await,
    }
}

fn current(registration: &Registration) -> String {
    registration.application.as_ref().map(|a| a.current_step.clone()).unwrap_or_default()
}
