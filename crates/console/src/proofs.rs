//! The evidence of one application on its page (`docs/console.md`, "Evidence"): each
//! participant's part, from its `EvidenceService` (its checkpoint and the application's log
//! entries with their inclusion proofs), verified here with the trust registry by the code
//! `egov audit verify-bundle` runs (`egov_runtime::evidence`), and the whole offered as the
//! bundle that command checks.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use egov_proto::ProveApplicationRequest;
use egov_proto::evidence_service_client::EvidenceServiceClient;
use egov_runtime::evidence::{self, LogEvidence, ProvedLog};
use egov_runtime::ids;
use maud::{Markup, html};

use crate::i18n::{self, Lang, t};
use crate::layout::{self, problem};
use crate::{App, Ctx, Problem};

/// What one participant gave of the application's evidence.
enum Part {
    /// Its log, the checkpoint cosigned by the witnesses found, and what verifying it proved.
    Proved(LogEvidence, ProvedLog),
    /// Its log, which does not verify.
    Broken(LogEvidence, Problem),
    /// Its log holds none of the application's entries (or none a checkpoint covers yet: the notes).
    Nothing(Vec<String>),
    /// It could not be asked, or refused.
    Failed(Problem),
}

/// The participants that keep a log: (name, address, member id).
fn participants(app: &App) -> [(&'static str, &str, &'static str); 3] {
    let topology = &app.config.topology;
    [
        ("workstation", topology.workstation.as_str(), ids::SC_WORKSTATION),
        ("gateway", topology.gateway.as_str(), ids::GATEWAY),
        ("regional", topology.regional.as_str(), ids::REGIONAL),
    ]
}

/// Every participant's part of the evidence of `id`, each checkpoint with the cosignatures the
/// other participants hold of it as its witnesses, each verified with `trust`.
async fn parts(app: &App, id: &str, trust: &egov_envelope::TrustRegistry) -> Vec<(&'static str, Part)> {
    let mut answers = Vec::new();
    for (name, address, member) in participants(app) {
        let answer = match app.channel(address, member) {
            Ok(channel) => EvidenceServiceClient::new(channel)
                .max_decoding_message_size(egov_client::MAX_MESSAGE_BYTES)
                .prove_application(ProveApplicationRequest { application_id: id.to_owned() })
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| Problem::from_status(&status)),
            Err(error) => Err(Problem::from_error("console.unreachable", &error)),
        };
        answers.push((name, answer));
    }
    let witnessed: Vec<String> =
        answers.iter().filter_map(|(_, answer)| answer.as_ref().ok()).flat_map(|a| a.witnessed.clone()).collect();
    answers
        .into_iter()
        .map(|(name, answer)| {
            let part = match answer {
                Err(refused) if refused.code == "evidence.unknown_application" => Part::Nothing(Vec::new()),
                Err(refused) => Part::Failed(refused),
                Ok(answer) => match evidence::from_response(&answer) {
                    None => Part::Nothing(answer.notes),
                    Some(mut log) => {
                        for cosigned in &witnessed {
                            log.checkpoint = evidence::merge_signatures(&log.checkpoint, cosigned);
                        }
                        match evidence::verify_log(id, &log, trust) {
                            Ok(proved) => Part::Proved(log, proved),
                            Err(refused) => {
                                let problem = Problem::new(refused.code, refused.to_string());
                                Part::Broken(log, problem)
                            }
                        }
                    }
                },
            };
            (name, part)
        })
        .collect()
}

/// `template` with `{name}` replaced by each value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
}

/// The "Evidence" section of the application's page: per participant, what its part proved
/// ("proved against checkpoint N of participant P") or what failed, and the bundle's link.
pub async fn section(ctx: &Ctx, id: &str) -> Markup {
    let lang = ctx.lang();
    let trust = match ctx.app.config.keys.trust() {
        Ok(trust) => trust,
        Err(error) => return problem(lang, "evidence-problem", Some(&Problem::from_error("console.no_key", &error))),
    };
    let parts = parts(&ctx.app, id, &trust).await;
    let any = parts.iter().any(|(_, part)| matches!(part, Part::Proved(..) | Part::Broken(..)));
    html! {
        p { (t(lang, "proof.note")) }
        ul #evidence {
            @for (name, part) in &parts {
                li.proof data-participant=(name) data-proved=(matches!(part, Part::Proved(..))) {
                    strong { (i18n::participant(lang, name)) } ": "
                    @match part {
                        Part::Proved(log, proved) => {
                            span.ok.proved data-size=(proved.size) data-member=(log.member) data-entries=(log.entries.len()) {
                                (proved_line(lang, name, &log.member, proved.size, log.entries.len()))
                            }
                            @if !proved.cosigners.is_empty() {
                                br; small.cosigned { (t(lang, "proof.cosigned")) ": " (proved.cosigners.join(", ")) }
                            }
                        }
                        Part::Broken(_, refused) => (problem(lang, &format!("evidence-{name}-problem"), Some(refused))),
                        Part::Failed(refused) => (problem(lang, &format!("evidence-{name}-problem"), Some(refused))),
                        Part::Nothing(notes) if notes.is_empty() => span.none { (t(lang, "proof.nothing")) },
                        Part::Nothing(notes) => span.none title=(notes.join("\n")) { (t(lang, "proof.not.yet")) },
                    }
                }
            }
        }
        @if any {
            p { a #evidence-bundle href={ "/applications/" (layout::encode(id)) "/evidence" } download { (t(lang, "proof.download")) } }
        }
    }
}

/// "proved against checkpoint N of participant P (member): K entries", in `lang`.
fn proved_line(lang: Lang, name: &str, member: &str, size: u64, entries: usize) -> String {
    let participant = format!("{} ({member})", i18n::participant(lang, name));
    let (size, entries) = (size.to_string(), entries.to_string());
    let line = fill(t(lang, "proof.proved"), &[("N", &size), ("P", &participant)]);
    format!("{line}: {entries} {}", t(lang, "proof.entries"))
}

/// The application's evidence bundle as JSON (an attachment): every participant's part that
/// could be read, with the keys of the trust registry valid over its entries; the format
/// `egov audit verify-bundle` checks.
pub async fn download(ctx: Ctx, Path(id): Path<String>) -> Response {
    let lang = ctx.lang();
    let trust = match ctx.app.config.keys.trust() {
        Ok(trust) => trust,
        Err(error) => {
            let problem = Problem::from_error("console.no_key", &error);
            let body = html! { (layout::problem(lang, "evidence-problem", Some(&problem))) };
            return layout::page(&ctx, t(lang, "proof.title"), "/applications", body).into_response();
        }
    };
    let logs: Vec<LogEvidence> = parts(&ctx.app, &id, &trust)
        .await
        .into_iter()
        .filter_map(|(_, part)| match part {
            Part::Proved(log, _) | Part::Broken(log, _) => Some(log),
            Part::Nothing(_) | Part::Failed(_) => None,
        })
        .collect();
    let Ok(bundle) = evidence::bundle(&id, logs, &trust) else { return crate::not_found(&ctx) };
    let json = match serde_json::to_string_pretty(&bundle) {
        Ok(json) => json,
        Err(_) => return crate::not_found(&ctx),
    };
    let name: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"evidence-{name}.json\"");
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        json,
    )
        .into_response()
}
