//! HTTP: the JSON API (`api.rs`) and the pages (`ui.rs`), over the same services.

pub mod api;
pub mod ui;

use crate::access::Viewer;
use crate::service::Photo;
use axum::extract::{FromRequestParts, Multipart};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use shrooms_core::web::{AppState, Visitor};
use shrooms_core::{CoreError, CoreResult};
use std::collections::HashMap;

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let v = Visitor::from_request_parts(parts, st).await?;
        Viewer::of(&st.db, v).await.map_err(|e| shrooms_core::web::ui::UiError(e).into_response())
    }
}

/// A viewer of a restricted operation: a member of the organisation (signed
/// out: 401; signed in elsewhere: 404, before the body is read).
pub struct Exec(pub Viewer);

impl FromRequestParts<AppState> for Exec {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let v = Viewer::from_request_parts(parts, st).await?;
        if v.visitor.ctx.is_none() {
            let e = if v.visitor.actor.is_none() {
                CoreError::Unauthorized("Sign in first.".into())
            } else {
                CoreError::NotFound
            };
            return Err(shrooms_core::web::ui::UiError(e).into_response());
        }
        Ok(Exec(v))
    }
}

/// The client's address (for counting wrong attendance codes).
pub struct Address(pub String);

impl FromRequestParts<AppState> for Address {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Address(shrooms_core::web::auth::client_address(parts)))
    }
}

/// A form sent as `multipart/form-data`: its text fields and its photos
/// (fields named `photos`, `photo` or `receipt`), each at most the instance's
/// file size limit, at most `max_files` of them.
pub struct UploadForm {
    pub fields: HashMap<String, String>,
    pub files: Vec<Photo>,
}

impl UploadForm {
    pub fn get(&self, k: &str) -> Option<String> {
        self.fields.get(k).cloned()
    }
}

pub async fn read_multipart(mut mp: Multipart, max_bytes: usize, max_files: usize) -> CoreResult<UploadForm> {
    let mut form = UploadForm { fields: HashMap::new(), files: Vec::new() };
    let bad = |e: axum::extract::multipart::MultipartError| {
        CoreError::BadRequest(format!("The form could not be read: {}", e.body_text()))
    };
    while let Some(mut field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if matches!(name.as_str(), "photos" | "photo" | "receipt") {
            let file_name = field.file_name().unwrap_or("").to_string();
            let mut buf = Vec::new();
            while let Some(c) = field.chunk().await.map_err(bad)? {
                if buf.len() + c.len() > max_bytes {
                    return Err(shrooms_core::files::too_large(max_bytes));
                }
                buf.extend_from_slice(&c);
            }
            // An empty file input sends an empty part: nothing chosen.
            if buf.is_empty() && file_name.is_empty() {
                continue;
            }
            if form.files.len() >= max_files {
                return Err(CoreError::validation(&name, "Too many files: send at most 3 photos."));
            }
            form.files.push(Photo { name: file_name, bytes: buf });
        } else {
            let mut buf = Vec::new();
            while let Some(c) = field.chunk().await.map_err(bad)? {
                buf.extend_from_slice(&c);
                if buf.len() > 64 * 1024 {
                    return Err(CoreError::validation(&name, "This field is too long."));
                }
            }
            form.fields.insert(name, String::from_utf8_lossy(&buf).into_owned());
        }
    }
    Ok(form)
}
