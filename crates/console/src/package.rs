//! A package of documents sent from a form with a file picker (`doc-KIND`
//! fields): what the operator attaches at process 5, and what the office
//! receives at the provider's office (paragraph 3). The form's other fields
//! are read with it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use egov_proto::AttachedDocument;
use sha2::Digest as _;

use crate::guard::TOKEN_FIELD;
use crate::{App, Ctx, MAX_BODY_BYTES, MAX_FILE_BYTES, MAX_FORM_BYTES, Problem};

/// A form that was read: its text fields, and the documents attached.
#[derive(Default)]
pub(crate) struct Package {
    pub fields: HashMap<String, String>,
    pub documents: Vec<AttachedDocument>,
}

impl Package {
    /// A text field, trimmed ("" when absent).
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", |value| value.trim())
    }
}

/// Why a form could not be read: the document it was about (its kind), if one.
pub(crate) struct Unread {
    pub kind: Option<String>,
    pub problem: Problem,
}

/// A form with a file picker (`multipart/form-data`) whose token was
/// checked: the package read, or why it could not be. Without the token, or
/// with another session's, the request is refused with `console.csrf`.
pub(crate) struct Upload(pub Result<Package, Unread>);

impl FromRequest<Arc<App>> for Upload {
    type Rejection = Response;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Upload, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, app).await?;
        let Ok(multipart) = Multipart::from_request(Request::from_parts(parts, body), app).await else {
            return Err(ctx
                .check_token(None)
                .err()
                .map_or_else(|| StatusCode::BAD_REQUEST.into_response(), |refused| *refused));
        };
        let (package, unread) = read(multipart).await;
        ctx.check_token(package.fields.get(TOKEN_FIELD).map(String::as_str)).map_err(|refused| *refused)?;
        Ok(Upload(match unread {
            None => Ok(package),
            Some(unread) => Err(unread),
        }))
    }
}

/// Reads the whole form, and what first made it unreadable. A file over
/// [`MAX_FILE_BYTES`] is read to its end but not kept, and refuses the form
/// (`console.file_too_large`), as does a form over what the console reads
/// or keeps; nothing is sent.
async fn read(mut multipart: Multipart) -> (Package, Option<Unread>) {
    let mut package = Package::default();
    let mut first: Option<Unread> = None;
    let mut kept = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return (package, first),
            Err(error) => return (package, first.or(Some(unreadable(&error, None)))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let kind = name.strip_prefix("doc-").map(str::to_owned);
        let title = field.file_name().unwrap_or_default().to_owned();
        let mut content = Vec::new();
        let mut size = 0;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len();
                    if size <= MAX_FILE_BYTES && kept + size <= MAX_FORM_BYTES {
                        content.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                Err(error) => return (package, first.or(Some(unreadable(&error, kind)))),
            }
        }
        if first.is_some() {
            continue;
        }
        let Some(kind) = kind else {
            if size > MAX_FILE_BYTES || kept + size > MAX_FORM_BYTES {
                let problem = Problem::new(
                    "console.bad_field",
                    format!("console.bad_field: {name} is more than {} KiB", MAX_FILE_BYTES / 1024),
                );
                first = Some(Unread { kind: None, problem });
                continue;
            }
            kept += size;
            package.fields.insert(name, String::from_utf8_lossy(&content).into_owned());
            continue;
        };
        if size == 0 && title.is_empty() {
            continue;
        }
        if size > MAX_FILE_BYTES {
            let problem = Problem::new(
                "console.file_too_large",
                format!(
                    "console.file_too_large: {title} is {} KiB, more than {} KiB; nothing was sent",
                    size / 1024,
                    MAX_FILE_BYTES / 1024
                ),
            );
            first = Some(Unread { kind: Some(kind), problem });
            continue;
        }
        if kept + size > MAX_FORM_BYTES {
            let problem = Problem::new(
                "console.file_too_large",
                format!(
                    "console.file_too_large: the documents are more than {} MiB together; nothing was sent",
                    MAX_FORM_BYTES / 1024 / 1024
                ),
            );
            first = Some(Unread { kind: Some(kind), problem });
            continue;
        }
        kept += size;
        package.documents.push(AttachedDocument {
            kind: kind.clone(),
            title: if title.is_empty() { kind } else { title },
            pages: 1,
            sha256: hex::encode(sha2::Sha256::digest(&content)),
            content,
        });
    }
}

/// A form that did not decode (`console.bad_form`); one larger than the
/// console reads is a file too large (`console.file_too_large`), next to
/// the document being read when it stopped.
fn unreadable(error: &MultipartError, kind: Option<String>) -> Unread {
    let problem = if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            "console.file_too_large",
            format!(
                "console.file_too_large: the form is more than {} MiB; nothing was sent",
                MAX_BODY_BYTES / 1024 / 1024
            ),
        )
    } else {
        Problem::new("console.bad_form", format!("console.bad_form: {error}"))
    };
    Unread { kind, problem }
}
