//! Incidents: deliveries that failed every attempt, parked in the outboxes
//! of the gateway, the ARM and the workstation, each with a retry button
//! (the admin service's `RetryOutbox`, as `egov incidents retry`).

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::{ListOutboxRequest, RetryOutboxRequest};
use egov_runtime::ids;
use maud::html;

use crate::guard::{self, Posted};
use crate::i18n::{self, t};
use crate::layout::{self, problem};
use crate::{App, Ctx, Problem, see_other, time};

/// The participants with an outbox: (name, address, member id).
pub(crate) fn participants(app: &App) -> [(&'static str, &str, &'static str); 3] {
    let topology = &app.config.topology;
    [
        ("gateway", &topology.gateway, ids::GATEWAY),
        ("regional", &topology.regional, ids::REGIONAL),
        ("workstation", &topology.workstation, ids::SC_WORKSTATION),
    ]
}

/// The deliveries of application `id` still waiting in an outbox: (participant, entry).
pub(crate) async fn pending_of(app: &App, id: &str) -> Vec<(&'static str, egov_proto::OutboxEntry)> {
    let mut pending = Vec::new();
    for (name, address, member) in participants(app) {
        let Ok(channel) = app.channel(address, member) else { continue };
        if let Ok(answer) =
            AdminServiceClient::new(channel).list_outbox(ListOutboxRequest { incidents_only: false }).await
        {
            pending.extend(
                answer
                    .into_inner()
                    .entries
                    .into_iter()
                    .filter(|entry| entry.correlation_id == id)
                    .map(|entry| (name, entry)),
            );
        }
    }
    pending
}

#[derive(serde::Deserialize, Default)]
pub struct Listing {
    #[serde(default)]
    all: Option<String>,
}

pub async fn list(ctx: Ctx, Query(listing): Query<Listing>) -> Response {
    page(&ctx, listing.all.is_some(), None).await
}

async fn page(ctx: &Ctx, all: bool, refused: Option<Problem>) -> Response {
    let lang = ctx.lang();
    let mut entries = Vec::new();
    let mut unreachable = Vec::new();
    for (name, address, member) in participants(&ctx.app) {
        let answer = match ctx.app.channel(address, member) {
            Ok(channel) => AdminServiceClient::new(channel)
                .list_outbox(ListOutboxRequest { incidents_only: !all })
                .await
                .map_err(|status| status.message().to_owned()),
            Err(error) => Err(format!("{error:#}")),
        };
        match answer {
            Ok(answer) => entries.extend(answer.into_inner().entries.into_iter().map(|entry| (name, entry))),
            Err(error) => unreachable.push((name, error)),
        }
    }
    let body = html! {
        (problem(lang, "retry-problem", refused.as_ref()))
        @for (name, error) in &unreachable {
            p.bad title=(error) { (i18n::participant(lang, name)) ": " (t(lang, "unreachable")) }
        }
        form method="get" action="/incidents" {
            input #all type="checkbox" name="all" value="yes" checked[all];
            label.inline for="all" { (t(lang, "show.all")) }
            button.secondary type="submit" { (t(lang, "search")) }
        }
        div #live-incidents data-live {
        @if entries.is_empty() {
            p #no-incidents { (t(lang, "incidents.none")) }
        } @else {
            table #incidents {
                thead { tr {
                    th scope="col" { (t(lang, "participant")) }
                    th scope="col" { (t(lang, "id")) }
                    th scope="col" { (t(lang, "target")) }
                    th scope="col" { (t(lang, "service")) }
                    th scope="col" { (t(lang, "application")) }
                    th scope="col" { (t(lang, "attempts")) }
                    th scope="col" { (t(lang, "last.error")) }
                    th scope="col" { (t(lang, "retry")) }
                } }
                tbody {
                    @for (name, entry) in &entries {
                        tr data-application=(entry.correlation_id) data-incident=(entry.incident) {
                            td { (i18n::participant(lang, name)) }
                            td { (entry.id) }
                            td { (entry.target) }
                            td { (entry.service_id) }
                            td { a href={ "/applications/" (entry.correlation_id) } { (entry.correlation_id) } }
                            td { (entry.attempts) }
                            td { @if entry.incident { "[" (t(lang, "incident")) "] " } (entry.last_error) br; small { (time(entry.enqueued_time_ms)) } }
                            td {
                                form method="post" action="/incidents/retry" {
                                    (guard::field(ctx))
                                    input type="hidden" name="participant" value=(name);
                                    input type="hidden" name="id" value=(entry.id);
                                    @if all { input type="hidden" name="all" value="yes"; }
                                    button type="submit" aria-label={ (t(lang, "retry")) " " (entry.correlation_id) } { (t(lang, "retry")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
    };
    layout::page(ctx, t(lang, "incidents"), "/incidents", body).into_response()
}

#[derive(serde::Deserialize)]
pub struct Retry {
    #[serde(default)]
    participant: String,
    #[serde(default)]
    id: String,
    /// The list showed every pending delivery: it still does after the retry.
    #[serde(default)]
    all: Option<String>,
}

pub async fn retry(ctx: Ctx, Posted(form): Posted<Retry>) -> Response {
    let Some((_, address, member)) = participants(&ctx.app).into_iter().find(|(name, ..)| *name == form.participant)
    else {
        let refused = Problem::new(
            "console.unknown_participant",
            format!("console.unknown_participant: {:?} is not gateway, regional or workstation", form.participant),
        );
        return page(&ctx, false, Some(refused)).await;
    };
    let Ok(id) = form.id.parse::<u64>() else {
        let refused = Problem::new("console.bad_field", format!("console.bad_field: {:?} is no outbox id", form.id));
        return page(&ctx, false, Some(refused)).await;
    };
    let answer = match ctx.app.channel(address, member) {
        Ok(channel) => AdminServiceClient::new(channel)
            .retry_outbox(RetryOutboxRequest { id })
            .await
            .map_err(|status| Problem::from_status(&status)),
        Err(error) => Err(Problem::from_error("console.unreachable", &error)),
    };
    match answer {
        Ok(answer) => {
            let entry = answer.into_inner().entry.unwrap_or_default();
            ctx.flash(&format!(
                "{}: {} {} → {} ({})",
                t(ctx.lang(), "retry"),
                entry.id,
                entry.correlation_id,
                entry.target,
                entry.service_id
            ));
            see_other(if form.all.is_some() { "/incidents?all=yes" } else { "/incidents" })
        }
        Err(refused) => page(&ctx, form.all.is_some(), Some(refused)).await,
    }
}
