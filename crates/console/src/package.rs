//! A package of documents sent from a form with a file picker (`doc-KIND`
//! fields): what the operator attaches at process 5, and what the office
//! receives at the provider's office (paragraph 3). The form's other fields
//! are read with it.

use std::collections::HashMap;

use axum::extract::Multipart;
use egov_proto::AttachedDocument;
use sha2::Digest as _;

use crate::{MAX_FILE_BYTES, Problem};

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

/// Reads the whole form. A file over [`MAX_FILE_BYTES`] refuses the form; nothing is sent.
pub(crate) async fn read(mut multipart: Multipart) -> Result<Package, Unread> {
    let mut package = Package::default();
    let bad_form = |error: &dyn std::fmt::Display, kind: Option<String>| Unread {
        kind,
        problem: Problem::new("console.bad_form", format!("console.bad_form: {error}")),
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(package),
            Err(error) => return Err(bad_form(&error, None)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let Some(kind) = name.strip_prefix("doc-").map(str::to_owned) else {
            let value = field.text().await.map_err(|error| bad_form(&error, None))?;
            package.fields.insert(name, value);
            continue;
        };
        let title = field.file_name().unwrap_or_default().to_owned();
        let content = field.bytes().await.map_err(|error| bad_form(&error, Some(kind.clone())))?;
        if content.is_empty() && title.is_empty() {
            continue;
        }
        if content.len() > MAX_FILE_BYTES {
            let problem = Problem::new(
                "console.file_too_large",
                format!(
                    "console.file_too_large: {title} is {} KiB, more than {} KiB; nothing was sent",
                    content.len() / 1024,
                    MAX_FILE_BYTES / 1024
                ),
            );
            return Err(Unread { kind: Some(kind), problem });
        }
        package.documents.push(AttachedDocument {
            kind: kind.clone(),
            title: if title.is_empty() { kind } else { title },
            pages: 1,
            sha256: hex::encode(sha2::Sha256::digest(&content)),
            content: content.to_vec(),
        });
    }
}
