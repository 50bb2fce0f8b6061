//! Files over HTTP: upload (multipart), list, metadata, download and delete,
//! for the JSON API (`/api/v1/orgs/{org}/files…`), for pages (`/o/{org}/files…`,
//! session cookie and CSRF) and for public files (`/public/files/{id}/content`,
//! no sign-in). Handlers are thin: [`crate::files`] does the work.
//!
//! Downloads need read access to the module that owns the file; a file of
//! another organisation answers 404. Every download carries
//! `X-Content-Type-Options: nosniff`, a safe `Content-Disposition` and an ETag;
//! public files are cached (`Cache-Control: public, max-age=…`), private ones
//! only by the browser (`Cache-Control: private`).

use super::api::{ApiQuery, CORE};
use super::auth::OrgCtx;
use super::ui::UiError;
use super::AppState;
use crate::error::{CoreError, CoreResult, FieldError, Problem};
use crate::files::{self, FileInfo, Owner, Upload, Variant};
use crate::images::RenditionFormat;
use crate::instance;
use crate::permissions::{Access, CanRead, CanWrite};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use utoipa::{IntoParams, OpenApi, ToSchema};

// ---------- shared pieces ----------

/// The module id as the module list spells it (capabilities need `&'static str`).
fn module_id(st: &AppState, name: &str) -> CoreResult<&'static str> {
    st.modules.get(name).map(|m| m.id()).ok_or_else(|| CoreError::validation("module", "No module has this id."))
}

fn read_cap(st: &AppState, ctx: &OrgCtx, module: &str) -> CoreResult<CanRead> {
    // An unknown module (removed from this build) reads as "not found".
    let m = module_id(st, module).map_err(|_| CoreError::NotFound)?;
    ctx.can_read(m)
}

/// A file of the caller's organisation that the caller may read.
async fn readable(st: &AppState, ctx: &OrgCtx, id: &str) -> CoreResult<(FileInfo, CanRead)> {
    let module = files::owner_module(&st.db, ctx.org.id, id).await?.ok_or(CoreError::NotFound)?;
    if !instance::module_enabled(&st.db, &st.modules, &module, Some(ctx.org.id)).await? {
        return Err(CoreError::NotFound);
    }
    let cap = read_cap(st, ctx, &module)?;
    Ok((files::get(&st.db, &cap, id).await?, cap))
}

async fn writable(st: &AppState, ctx: &OrgCtx, id: &str) -> CoreResult<CanWrite> {
    let module = files::owner_module(&st.db, ctx.org.id, id).await?.ok_or(CoreError::NotFound)?;
    let m = module_id(st, &module).map_err(|_| CoreError::NotFound)?;
    ctx.can_write(m)
}

/// What a multipart upload carried.
struct UploadForm {
    file_name: String,
    bytes: Option<Vec<u8>>,
    fields: HashMap<String, String>,
}

impl UploadForm {
    fn field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
    }
    fn public(&self) -> bool {
        matches!(self.field("public"), Some("1" | "true" | "on" | "yes"))
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> CoreError {
    CoreError::BadRequest(format!("The upload could not be read: {}", e.body_text()))
}

/// Reads the multipart body, keeping at most `max` bytes of file. Past that
/// the rest of the body is read and thrown away (so the client gets the 413
/// answer instead of a reset connection), up to a bound.
async fn read_upload(mp: Result<Multipart, MultipartRejection>, max: usize) -> CoreResult<UploadForm> {
    let mut mp =
        mp.map_err(|e| CoreError::BadRequest(format!("Send the file as multipart/form-data: {}", e.body_text())))?;
    let mut form = UploadForm { file_name: String::new(), bytes: None, fields: HashMap::new() };
    let mut too_large = false;
    let mut discarded: usize = 0;
    let discard_limit = max.saturating_mul(2).saturating_add(1 << 20);
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        if too_large {
            while let Some(c) = field.chunk().await.map_err(multipart_error)? {
                discarded += c.len();
                if discarded > discard_limit {
                    return Err(files::too_large(max));
                }
            }
            continue;
        }
        if name == "file" {
            if form.bytes.is_some() {
                return Err(CoreError::validation("file", "Send one file per request."));
            }
            form.file_name = field.file_name().unwrap_or("").to_string();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(c) = field.chunk().await.map_err(multipart_error)? {
                if too_large || buf.len() + c.len() > max {
                    too_large = true;
                    discarded += c.len();
                    if discarded > discard_limit {
                        return Err(files::too_large(max));
                    }
                    continue;
                }
                buf.extend_from_slice(&c);
            }
            form.bytes = Some(buf);
        } else {
            let mut buf: Vec<u8> = Vec::new();
            while let Some(c) = field.chunk().await.map_err(multipart_error)? {
                buf.extend_from_slice(&c);
                if buf.len() > 4096 {
                    return Err(CoreError::validation(&name, "This field is too long."));
                }
            }
            form.fields.insert(name, String::from_utf8_lossy(&buf).into_owned());
        }
    }
    if too_large {
        return Err(files::too_large(max));
    }
    Ok(form)
}

/// Checks the form and stores the file.
async fn upload_from(st: &AppState, ctx: &OrgCtx, form: UploadForm) -> CoreResult<FileInfo> {
    let module = module_id(st, form.field("module").unwrap_or(CORE))?;
    let cap = ctx.can_write(module)?;
    let mut missing = Vec::new();
    for f in ["entity_type", "entity_id"] {
        if form.field(f).is_none() {
            missing.push(FieldError::new(f, "Say which record the file belongs to."));
        }
    }
    if form.bytes.is_none() {
        missing.push(FieldError::new("file", "Choose a file."));
    }
    if !missing.is_empty() {
        return Err(CoreError::Validation(missing));
    }
    let owner = Owner::new(form.field("entity_type").unwrap_or(""), form.field("entity_id").unwrap_or(""));
    let public = form.public();
    let upload = Upload { name: form.file_name, bytes: form.bytes.unwrap_or_default(), public };
    files::store(st, &ctx.who(), &cap, &owner, upload).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    /// `original` (default), `thumb` (at most 320 px) or `display` (at most 1600 px); the last two for photos only.
    pub variant: Option<String>,
    /// `webp` or `jpeg`, for `thumb` and `display`. Without it, WebP when the `Accept` header allows it, else JPEG.
    pub format: Option<String>,
}

/// `filename="…"` (ASCII) and `filename*=UTF-8''…` (the real name).
fn content_disposition(inline: bool, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ()".contains(c) { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The answer to a download: bytes, type, caching, ETag (and 304 when it matches).
async fn download(st: &AppState, info: &FileInfo, q: &ContentParams, headers: &HeaderMap) -> CoreResult<Response> {
    let variant = match q.variant.as_deref() {
        None => Variant::Original,
        Some(v) => {
            Variant::parse(v).ok_or_else(|| CoreError::validation("variant", "Use original, thumb or display."))?
        }
    };
    // A photo whose renditions are still being made (`files::store_deferred`)
    // is served as uploaded meanwhile, under the original's ETag.
    let variant =
        if variant != Variant::Original && info.is_image() && !info.variants.iter().any(|v| v == variant.as_str()) {
            Variant::Original
        } else {
            variant
        };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (format, negotiated) = match q.format.as_deref() {
        Some("webp") => (RenditionFormat::Webp, false),
        Some("jpeg" | "jpg") => (RenditionFormat::Jpeg, false),
        Some(_) => return Err(CoreError::validation("format", "Use webp or jpeg.")),
        None if accept.contains("image/webp") => (RenditionFormat::Webp, true),
        None => (RenditionFormat::Jpeg, true),
    };
    let tag = match variant {
        Variant::Original => format!("\"{}\"", &info.sha256[..32.min(info.sha256.len())]),
        v => format!("\"{}-{}-{}\"", &info.sha256[..16.min(info.sha256.len())], v.as_str(), format.ext()),
    };
    let cache = if info.public {
        format!("public, max-age={}", st.cfg.files.public_max_age_secs)
    } else {
        "private".to_string()
    };
    let mut h = HeaderMap::new();
    let hv = |s: &str| HeaderValue::from_str(s).map_err(|e| CoreError::Internal(e.to_string()));
    h.insert(header::ETAG, hv(&tag)?);
    h.insert(header::CACHE_CONTROL, hv(&cache)?);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if negotiated && variant != Variant::Original {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let (bytes, ct) = files::content(&st.cfg, info, variant, format).await?;
    let name = match variant {
        Variant::Original => info.name.clone(),
        v => {
            let stem = info.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&info.name);
            format!("{stem}-{}.{}", v.as_str(), format.ext())
        }
    };
    h.insert(header::CONTENT_TYPE, hv(&ct)?);
    h.insert(header::CONTENT_DISPOSITION, hv(&content_disposition(info.is_image(), &name))?);
    Ok((StatusCode::OK, h, bytes).into_response())
}

// ---------- JSON API ----------

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadRequest {
    /// The file. Its type is recognised from its content.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Module of the record (default `core`); writing needs write access to it.
    module: Option<String>,
    /// Kind of record, such as `person`.
    entity_type: String,
    entity_id: String,
    /// `true` to serve it to anyone at `/public/files/{id}/content`.
    public: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/files", tag = "files", security(("bearer" = [])), params(("org" = String, Path)),
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    responses((status = 201, body = FileInfo), (status = 404, body = Problem), (status = 413, body = Problem, description = "Larger than `[files] max_upload_bytes`"),
        (status = 422, body = Problem, description = "Type not accepted, damaged image, refused by the virus scanner, or missing fields")))]
pub async fn upload(
    State(st): State<AppState>,
    ctx: OrgCtx,
    mp: Result<Multipart, MultipartRejection>,
) -> CoreResult<Response> {
    let form = read_upload(mp, st.cfg.files.max_upload_bytes).await?;
    let info = upload_from(&st, &ctx, form).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Module of the record (default `core`).
    pub module: Option<String>,
    pub entity_type: String,
    pub entity_id: String,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/files", tag = "files", security(("bearer" = [])), params(("org" = String, Path), ListParams),
    responses((status = 200, body = [FileInfo]), (status = 404, body = Problem)))]
pub async fn list(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<ListParams>,
) -> CoreResult<Json<Vec<FileInfo>>> {
    let cap = read_cap(&st, &ctx, p.module.as_deref().unwrap_or(CORE))?;
    Ok(Json(files::list_for(&st.db, &cap, &p.entity_type, &p.entity_id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/files/{id}", tag = "files", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = FileInfo), (status = 404, body = Problem)))]
pub async fn metadata(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<Json<FileInfo>> {
    Ok(Json(readable(&st, &ctx, &id).await?.0))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/files/{id}/content", tag = "files", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path), ContentParams),
    responses((status = 200, description = "The bytes, with `ETag`, `Cache-Control: private` (or public) and `Content-Disposition`"), (status = 304), (status = 404, body = Problem)))]
pub async fn api_content(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ContentParams>,
    headers: HeaderMap,
) -> CoreResult<Response> {
    let (info, _) = readable(&st, &ctx, &id).await?;
    download(&st, &info, &q, &headers).await
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/files/{id}", tag = "files", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let cap = writable(&st, &ctx, &id).await?;
    files::delete(&st, &ctx.who(), &cap, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(OpenApi)]
#[openapi(paths(upload, list, metadata, api_content, remove), components(schemas(FileInfo, UploadRequest)))]
pub struct FilesApi;

// ---------- pages and public files ----------

/// Where to go back after a form: a page of the same organisation.
fn return_path(ctx: &OrgCtx, asked: Option<&str>) -> String {
    let prefix = format!("/o/{}/", ctx.org.slug);
    match asked {
        Some(p) if p.starts_with(&prefix) && !p.contains("//") && !p.contains('\\') && !p.contains("..") => {
            p.to_string()
        }
        _ => prefix,
    }
}

async fn page_upload(
    State(st): State<AppState>,
    ctx: OrgCtx,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Response, UiError> {
    let form = read_upload(mp, st.cfg.files.max_upload_bytes).await?;
    let back = return_path(&ctx, form.field("return_to"));
    upload_from(&st, &ctx, form).await?;
    Ok(Redirect::to(&back).into_response())
}

async fn page_content(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<ContentParams>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let (info, _) = readable(&st, &ctx, &id).await?;
    Ok(download(&st, &info, &q, &headers).await?)
}

#[derive(Deserialize)]
struct DeleteForm {
    return_to: Option<String>,
}

async fn page_delete(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<DeleteForm>,
) -> Result<Response, UiError> {
    let cap = writable(&st, &ctx, &id).await?;
    files::delete(&st, &ctx.who(), &cap, &id).await?;
    Ok(Redirect::to(&return_path(&ctx, f.return_to.as_deref())).into_response())
}

async fn public_content(
    State(st): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ContentParams>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let info = files::get_public(&st.db, &id).await?;
    let org: crate::ids::OrgId = crate::ids::parse_id(&info.org_id)?;
    if !instance::module_enabled(&st.db, &st.modules, &info.module, Some(org)).await? {
        return Err(UiError(CoreError::NotFound));
    }
    Ok(download(&st, &info, &q, &headers).await?)
}

/// The context of `files_partial.html` for one record: its files, whether
/// the visitor may add and remove some, and where the forms come back to.
/// A record page adds it under `attachments`.
pub async fn partial_context(
    st: &AppState,
    ctx: &OrgCtx,
    module: &'static str,
    entity_type: &str,
    entity_id: &str,
    return_to: &str,
) -> CoreResult<Value> {
    let cap = ctx.can_read(module)?;
    let list = files::list_for(&st.db, &cap, entity_type, entity_id).await?;
    Ok(json!({
        "files": list,
        "module": module,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "return_to": return_to,
        "can_write": ctx.access(module) >= Access::Write,
        "max_upload_mib": st.cfg.files.max_upload_bytes.div_ceil(1024 * 1024),
    }))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/files", get(list).post(upload).layer(DefaultBodyLimit::disable()))
        .route("/api/v1/orgs/{org}/files/{id}", get(metadata).delete(remove))
        .route("/api/v1/orgs/{org}/files/{id}/content", get(api_content))
        .route("/o/{org}/files", post(page_upload).layer(DefaultBodyLimit::disable()))
        .route("/o/{org}/files/{id}/content", get(page_content))
        .route("/o/{org}/files/{id}/delete", post(page_delete))
        .route("/public/files/{id}/content", get(public_content))
}
