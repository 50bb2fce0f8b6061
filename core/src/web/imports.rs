//! Imports in the web shell: the JSON API (`/api/v1/orgs/{org}/imports…`)
//! and the pages (upload → mapping and preview → progress → result) over
//! the same service, [`crate::import`]. Uploads are `multipart/form-data`,
//! read by the small parser below (the body is in memory anyway).

use super::api::ApiJson;
use super::auth::OrgCtx;
use super::ui::{Ui, UiError};
use super::AppState;
use crate::error::{CoreError, CoreResult, Problem};
use crate::import::{self, ImportView, MappingInput};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::OpenApi;

// ---------- multipart/form-data ----------

/// One part of a `multipart/form-data` body.
pub struct Part<'a> {
    pub name: String,
    pub file_name: Option<String>,
    pub data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i] == needle[0] && &hay[i..i + needle.len()] == needle)
}

fn header_param(h: &str, key: &str) -> Option<String> {
    h.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of a `multipart/form-data` body, or `None` when it is not one.
pub fn multipart<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    let boundary = header_param(content_type, "boundary")?;
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let mut at = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        at += 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = std::str::from_utf8(&body[at..head_end]).ok()?;
        let data_start = head_end + 4;
        let data_end = find(body, next_delim.as_bytes(), data_start)?;
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .map(|l| l["content-disposition:".len()..].to_string())?;
        parts.push(Part {
            name: header_param(&disposition, "name")?,
            file_name: header_param(&disposition, "filename"),
            data: &body[data_start..data_end],
        });
        at = data_end + next_delim.len();
    }
}

/// The `_csrf` field of a multipart form (for the CSRF middleware).
pub fn multipart_csrf(content_type: &str, body: &[u8]) -> Option<String> {
    multipart(content_type, body)?
        .into_iter()
        .find(|p| p.name == "_csrf")
        .and_then(|p| String::from_utf8(p.data.to_vec()).ok())
}

struct Upload {
    kind: String,
    file_name: String,
    bytes: Vec<u8>,
}

fn read_upload(headers: &HeaderMap, body: &[u8]) -> CoreResult<Upload> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts = multipart(ct, body)
        .ok_or_else(|| CoreError::BadRequest("Send the file as multipart/form-data with a `file` part.".into()))?;
    let mut up = Upload { kind: "people".into(), file_name: String::new(), bytes: Vec::new() };
    let mut has_file = false;
    for p in parts {
        match p.name.as_str() {
            "kind" => up.kind = String::from_utf8_lossy(p.data).trim().to_string(),
            "file" => {
                has_file = !p.data.is_empty();
                up.file_name = p.file_name.unwrap_or_default();
                up.bytes = p.data.to_vec();
            }
            _ => {}
        }
    }
    if !has_file {
        return Err(CoreError::validation("file", "Choose a CSV or ODS file."));
    }
    Ok(up)
}

// ---------- JSON API ----------

/// The import of this organisation and the module whose write right it needs.
async fn kind_of(st: &AppState, ctx: &OrgCtx, id: &str) -> CoreResult<&'static str> {
    use sqlx::Row;
    let r = sqlx::query("SELECT kind FROM imports WHERE org_id = $1 AND id = $2")
        .bind(ctx.org.id.to_string())
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    import::module_of(&st.modules, &r.try_get::<String, _>(0)?)
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// What the rows are: `people` (default), or a module's import kind.
    kind: Option<String>,
    /// The CSV or ODS file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/imports", tag = "imports", security(("bearer" = [])), params(("org" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = ImportView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_import(
    State(st): State<AppState>,
    ctx: OrgCtx,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> CoreResult<Response> {
    let up = read_upload(&headers, &body)?;
    let cap = ctx.can_write(import::module_of(&st.modules, &up.kind)?)?;
    let view = import::stage(&st.db, &st.modules, &ctx.who(), &cap, &up.kind, &up.file_name, &up.bytes).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/imports/{id}", tag = "imports", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ImportView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_import(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<Json<ImportView>> {
    let cap = ctx.can_write(kind_of(&st, &ctx, &id).await?)?;
    Ok(Json(import::get(&st.db, &st.modules, &cap.as_read(), &id).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/imports/{id}/mapping", tag = "imports", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    request_body = MappingInput,
    responses((status = 200, body = ImportView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_mapping(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<MappingInput>,
) -> CoreResult<Json<ImportView>> {
    let cap = ctx.can_write(kind_of(&st, &ctx, &id).await?)?;
    Ok(Json(import::set_mapping(&st.db, &st.modules, &ctx.who(), &cap, &id, input).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/imports/{id}/commit", tag = "imports", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = ImportView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn commit_import(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<Response> {
    let cap = ctx.can_write(kind_of(&st, &ctx, &id).await?)?;
    let view = import::commit(&st.db, &st.modules, &ctx.who(), &cap, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[derive(OpenApi)]
#[openapi(
    paths(create_import, get_import, put_mapping, commit_import),
    components(schemas(ImportView, MappingInput, import::RowError, import::PreviewRow, import::FieldInfo))
)]
pub struct ImportApi;

// ---------- pages ----------

#[derive(Deserialize)]
struct NewQuery {
    kind: Option<String>,
}

fn upload_extra(kind: &str) -> serde_json::Value {
    json!({"kind": kind, "max_mib": import::MAX_UPLOAD_BYTES / (1024 * 1024)})
}

async fn upload_page(ui: Ui, ctx: OrgCtx, Query(q): Query<NewQuery>) -> Result<Response, UiError> {
    let kind = q.kind.unwrap_or_else(|| "people".into());
    ctx.can_write(import::module_of(&ui.st.modules, &kind)?)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("import_upload.html", upload_extra(&kind)))
}

async fn upload_submit(ui: Ui, ctx: OrgCtx, headers: HeaderMap, body: axum::body::Bytes) -> Result<Response, UiError> {
    let result = async {
        let up = read_upload(&headers, &body)?;
        let cap = ctx.can_write(import::module_of(&ui.st.modules, &up.kind)?)?;
        import::stage(&ui.st.db, &ui.st.modules, &ctx.who(), &cap, &up.kind, &up.file_name, &up.bytes).await
    }
    .await;
    match result {
        Ok(v) => Ok(Redirect::to(&format!("/o/{}/imports/{}", ctx.org.slug, v.id)).into_response()),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("import_upload.html", e, upload_extra("people")))
        }
    }
}

fn show_extra(ui: &Ui, v: &ImportView) -> serde_json::Value {
    let labels: Vec<String> = v.fields.iter().map(|f| ui.t(&f.label_key)).collect();
    let to_write = (v.rows_total - v.rows_skipped).max(0);
    let percent = if to_write > 0 { (v.rows_done * 100 / to_write).clamp(0, 100) } else { 100 };
    const SHOWN: usize = 500;
    json!({
        "import": v,
        "labels": labels,
        "percent": percent,
        "to_write": to_write,
        "errors_shown": &v.errors[..v.errors.len().min(SHOWN)],
        "errors_hidden": v.errors.len().saturating_sub(SHOWN),
        "busy": v.status == "queued" || v.status == "running",
    })
}

async fn show(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let cap = ctx.can_write(kind_of(&ui.st, &ctx, &id).await?)?;
    let v = import::get(&ui.st.db, &ui.st.modules, &cap.as_read(), &id).await?;
    let htmx = ui.htmx;
    let ui = ui.with_org(&ctx).await?;
    let extra = show_extra(&ui, &v);
    let mut resp =
        if htmx { ui.render("import_progress_partial.html", extra) } else { ui.render("import_show.html", extra) };
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("HX-Request"));
    Ok(resp)
}

async fn mapping_submit(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    axum::extract::Form(form): axum::extract::Form<BTreeMap<String, String>>,
) -> Result<Response, UiError> {
    let cap = ctx.can_write(kind_of(&ui.st, &ctx, &id).await?)?;
    let mapping = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("map.").map(|f| (f.to_string(), Some(v.clone()).filter(|v| !v.is_empty()))))
        .collect();
    let input = MappingInput { mapping, skip_duplicates: Some(form.get("skip_duplicates").is_some_and(|v| v == "1")) };
    match import::set_mapping(&ui.st.db, &ui.st.modules, &ctx.who(), &cap, &id, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/imports/{id}", ctx.org.slug)).into_response()),
        Err(e) => {
            let v = import::get(&ui.st.db, &ui.st.modules, &cap.as_read(), &id).await?;
            let ui = ui.with_org(&ctx).await?;
            let extra = show_extra(&ui, &v);
            Ok(ui.form_error("import_show.html", e, extra))
        }
    }
}

async fn commit_submit(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let cap = ctx.can_write(kind_of(&ui.st, &ctx, &id).await?)?;
    match import::commit(&ui.st.db, &ui.st.modules, &ctx.who(), &cap, &id).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/imports/{id}", ctx.org.slug)).into_response()),
        Err(e) => {
            let v = import::get(&ui.st.db, &ui.st.modules, &cap.as_read(), &id).await?;
            let ui = ui.with_org(&ctx).await?;
            let extra = show_extra(&ui, &v);
            Ok(ui.form_error("import_show.html", e, extra))
        }
    }
}

pub fn router() -> Router<AppState> {
    let upload_limit = DefaultBodyLimit::max(import::MAX_UPLOAD_BYTES);
    Router::new()
        .route("/api/v1/orgs/{org}/imports", post(create_import).layer(upload_limit))
        .route("/api/v1/orgs/{org}/imports/{id}", get(get_import))
        .route("/api/v1/orgs/{org}/imports/{id}/mapping", put(put_mapping))
        .route("/api/v1/orgs/{org}/imports/{id}/commit", post(commit_import))
        .route("/o/{org}/imports/new", get(upload_page))
        .route("/o/{org}/imports", post(upload_submit).layer(upload_limit))
        .route("/o/{org}/imports/{id}", get(show))
        .route("/o/{org}/imports/{id}/mapping", post(mapping_submit))
        .route("/o/{org}/imports/{id}/commit", post(commit_submit))
}

#[cfg(test)]
mod tests {
    #[test]
    fn multipart_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.csv\"\r\nContent-Type: text/csv\r\n\r\nx;y\r\n1;2\r\n\r\n--XyZ--\r\n";
        let parts = super::multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].file_name.as_deref(), Some("a b.csv"));
        assert_eq!(parts[1].data, b"x;y\r\n1;2\r\n");
        assert_eq!(super::multipart_csrf("multipart/form-data; boundary=\"XyZ\"", body).as_deref(), Some("tok"));
        assert!(super::multipart("text/plain", body).is_none());
    }
}
