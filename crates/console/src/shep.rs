//! The signed messages of an application by its id, the SHEP edge's among
//! them (docs/shep.md): what an application's page shows when the State
//! Corporation side is an external SHEP system, so that the workstation egov
//! would ask does not know the application.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use crate::Ctx;
use crate::i18n::t;
use crate::layout;

#[derive(serde::Deserialize, Default)]
pub struct Find {
    #[serde(default)]
    id: String,
}

/// The form that asks for an application id.
fn form(ctx: &Ctx, id: &str) -> Markup {
    let lang = ctx.lang();
    html! {
        form.card method="get" action="/shep" role="search" aria-label=(t(lang, "edge.messages")) {
            label for="shep-id" { (t(lang, "application")) }
            input #shep-id type="search" name="id" value=(id) required;
            button type="submit" { (t(lang, "edge.show")) }
        }
    }
}

/// `GET /shep?id=ID`: the form; with an id, its messages' page.
pub async fn find(ctx: Ctx, Query(find): Query<Find>) -> Response {
    let id = find.id.trim();
    if !id.is_empty() {
        return Redirect::to(&path(id)).into_response();
    }
    let lang = ctx.lang();
    let body = html! {
        p { (t(lang, "edge.note")) }
        (form(&ctx, ""))
    };
    layout::page(&ctx, t(lang, "edge.messages"), "/shep", body).into_response()
}

/// `GET /shep/{id}`: every participant's log of the application, the edge's
/// with the SOAP message each envelope came from or became.
pub async fn messages(ctx: Ctx, Path(id): Path<String>) -> Response {
    let lang = ctx.lang();
    let body = html! {
        (form(&ctx, &id))
        @if ctx.app.config.shep.is_none() {
            p.problem #shep-off role="alert" { (t(lang, "edge.off")) }
        }
        h2 #messages-title { (t(lang, "messages")) }
        p { (t(lang, "messages.note")) }
        div #messages { (crate::applications::messages_of(&ctx, &id).await) }
    };
    let here = format!("/shep/{id}");
    layout::page(&ctx, &format!("{}: {id}", t(lang, "edge.messages")), &here, body).into_response()
}

/// On the page of an application the workstation does not know, where the
/// SHEP edge runs: a link to its messages (the State Corporation may be external).
pub fn offer(ctx: &Ctx, id: &str) -> Markup {
    let lang = ctx.lang();
    html! {
        @if ctx.app.config.shep.is_some() {
            p #shep-offer { a href=(path(id)) { (t(lang, "edge.offer")) } }
        }
    }
}

/// The page of application `id`'s messages.
fn path(id: &str) -> String {
    format!("/shep/{}", layout::encode(id).replace('/', "%2F"))
}
