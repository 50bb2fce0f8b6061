//! JSON API of the member directory: the filtered search, saved searches,
//! exports and printouts of a selection, mass mail and bounces. Paths live
//! under `/api/v1/orgs/{org}/members/…`; the unsubscribe page is public.

use crate::directory::{self, DirFilter, DirPage, DirQuery, DirRow, SavedSearch, SavedSearchInput};
use crate::error::MemError;
use crate::http::api::file_download;
use crate::mailing::{self, Bounce, DsnInput, Mailing, MailingInput, MailingPreview};
use crate::service::MODULE;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::OpenApi;

type R<T> = CoreResult<T>;

fn e(err: MemError) -> CoreError {
    err.into()
}

fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> CoreResult<T> {
    if !v.is_object() {
        return Err(CoreError::validation("body", "Send a JSON object."));
    }
    serde_json::from_value(v).map_err(|e| CoreError::validation("body", &e.to_string()))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/search", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DirQuery),
    responses((status = 200, body = DirPage, description = "One page of the members matching every filter, with their standing today"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "An unknown filter, standing, custom field or a bad date")))]
async fn search(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(q): ApiQuery<DirQuery>) -> R<Json<DirPage>> {
    let cap = ctx.can_read(MODULE)?;
    let f = directory::resolve(&st.db, &cap, &q).await.map_err(e)?;
    let sort = directory::parse_sort(q.sort.as_deref()).map_err(e)?;
    let page = directory::search(&st.db, &cap, &ctx.org.timezone, &f, sort, q.cursor.as_deref(), q.limit.unwrap_or(50))
        .await
        .map_err(e)?;
    Ok(Json(page))
}

async fn selection(st: &AppState, ctx: &OrgCtx, q: &DirQuery) -> R<Vec<DirRow>> {
    let cap = ctx.can_read(MODULE)?;
    let f = directory::resolve(&st.db, &cap, q).await.map_err(e)?;
    directory::select_all(&st.db, &cap, &ctx.org.timezone, &f).await.map_err(e)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/search/export.csv", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DirQuery),
    responses((status = 200, description = "The selection as CSV", content_type = "text/csv"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn export_csv(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(q): ApiQuery<DirQuery>) -> R<Response> {
    let rows = selection(&st, &ctx, &q).await?;
    Ok(file_download("members.csv", "text/csv; charset=utf-8", mailing::table(&rows, false)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/search/export.ods", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DirQuery),
    responses((status = 200, description = "The selection as an OpenDocument spreadsheet", content_type = "application/vnd.oasis.opendocument.spreadsheet"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn export_ods(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(q): ApiQuery<DirQuery>) -> R<Response> {
    let rows = selection(&st, &ctx, &q).await?;
    Ok(file_download("members.ods", "application/vnd.oasis.opendocument.spreadsheet", mailing::table(&rows, true)))
}

fn pdf(name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/search/list.pdf", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DirQuery),
    responses((status = 200, description = "A printable list of the selection: name, type, standing, end date, e-mail, phone", content_type = "application/pdf"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_pdf(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(q): ApiQuery<DirQuery>) -> R<Response> {
    let rows = selection(&st, &ctx, &q).await?;
    let colour = ctx.org.color_primary.clone().unwrap_or_else(|| "#2f5d8a".into());
    Ok(pdf("members.pdf", mailing::list_pdf(&rows, &ctx.org.name, &colour, &crate::mailing::lang_of(&ctx))))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/search/labels.pdf", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DirQuery),
    responses((status = 200, description = "Address labels of the selection, A4 sheets of 3 × 8; one label per household sharing an address", content_type = "application/pdf"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn labels_pdf(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(q): ApiQuery<DirQuery>) -> R<Response> {
    let rows = selection(&st, &ctx, &q).await?;
    let cap = ctx.can_read(MODULE)?;
    let labels = mailing::labels(&st.db, &cap, &rows).await.map_err(e)?;
    Ok(pdf("labels.pdf", mailing::labels_pdf(&labels)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/searches", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [SavedSearch], description = "The organisation's saved searches, by name"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_searches(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<SavedSearch>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(directory::saved_searches(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/searches", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SavedSearchInput,
    responses((status = 201, body = SavedSearch), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "A saved search already has this name"), (status = 422, body = Problem)))]
async fn create_search(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<SavedSearch>)> {
    let cap = ctx.can_write(MODULE)?;
    let input: SavedSearchInput = object(input)?;
    Ok((StatusCode::CREATED, Json(directory::create_saved_search(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/searches/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SavedSearch), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_search(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<SavedSearch>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(directory::saved_search(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/searches/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = SavedSearchInput,
    responses((status = 200, body = SavedSearch, description = "Renamed, or its filter replaced"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn patch_search(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<SavedSearch>> {
    let cap = ctx.can_write(MODULE)?;
    let input: SavedSearchInput = object(input)?;
    Ok(Json(directory::update_saved_search(&st.db, &ctx.who(), &cap, &id, input).await.map_err(e)?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/searches/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_search(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    directory::delete_saved_search(&st.db, &ctx.who(), &cap, &id).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/mailings/preview", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = MailingInput,
    responses((status = 200, body = MailingPreview, description = "How many would receive it, how many are skipped, and the first message as it would read"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn preview_mailing(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<MailingPreview>> {
    let cap = ctx.can_write(MODULE)?;
    let input: MailingInput = object(input)?;
    Ok(Json(mailing::preview(&st, &ctx, &cap, &input).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/mailings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = MailingInput,
    responses((status = 202, body = Mailing, description = "Queued: a job sends it; follow its progress on the mailing"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "Bad input, an empty selection, or a confirmed count that is no longer right")))]
async fn send_mailing(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<Mailing>)> {
    let cap = ctx.can_write(MODULE)?;
    let input: MailingInput = object(input)?;
    Ok((StatusCode::ACCEPTED, Json(mailing::send(&st, &ctx, &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/mailings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [Mailing], description = "Newest first"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_mailings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Mailing>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(mailing::mailings(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/mailings/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Mailing, description = "With its progress"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_mailing(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Mailing>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(mailing::mailing(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/bounces", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [Bounce], description = "Permanent delivery failures, newest first"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_bounces(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Bounce>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(mailing::bounces(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/bounces", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = DsnInput,
    responses((status = 200, body = [Bounce], description = "The permanent failures of the report recorded on the people with that address (none for a temporary failure)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "Not a delivery status notification")))]
async fn post_bounce(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Vec<Bounce>>> {
    let cap = ctx.can_write(MODULE)?;
    let input: DsnInput = object(input)?;
    Ok(Json(mailing::record_dsn(&st.db, &ctx.who(), &cap, &input).await.map_err(e)?))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        search, export_csv, export_ods, list_pdf, labels_pdf, list_searches, create_search, get_search, patch_search,
        delete_search, preview_mailing, send_mailing, list_mailings, get_mailing, list_bounces, post_bounce
    ),
    components(schemas(
        DirFilter, DirRow, DirPage, SavedSearch, SavedSearchInput, MailingInput, MailingPreview, Mailing, Bounce,
        DsnInput, Problem
    )),
    tags((name = "members", description = "Members and dues: membership types, periods, households, dues"))
)]
pub struct DirectoryApi;

/// The directory page's downloads: the same files for the signed-in
/// browser (the API paths take bearer tokens only), errors as pages.
macro_rules! page_download {
    ($name:ident, $api:ident) => {
        async fn $name(
            st: State<AppState>,
            ctx: OrgCtx,
            q: ApiQuery<DirQuery>,
        ) -> Result<Response, shrooms_core::web::ui::UiError> {
            $api(st, ctx, q).await.map_err(shrooms_core::web::ui::UiError)
        }
    };
}
page_download!(page_export_csv, export_csv);
page_download!(page_export_ods, export_ods);
page_download!(page_list_pdf, list_pdf);
page_download!(page_labels_pdf, labels_pdf);

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/members";
    Router::new()
        .route("/o/{org}/members/directory/export.csv", get(page_export_csv))
        .route("/o/{org}/members/directory/export.ods", get(page_export_ods))
        .route("/o/{org}/members/directory/list.pdf", get(page_list_pdf))
        .route("/o/{org}/members/directory/labels.pdf", get(page_labels_pdf))
        .route(&format!("{base}/search"), get(search))
        .route(&format!("{base}/search/export.csv"), get(export_csv))
        .route(&format!("{base}/search/export.ods"), get(export_ods))
        .route(&format!("{base}/search/list.pdf"), get(list_pdf))
        .route(&format!("{base}/search/labels.pdf"), get(labels_pdf))
        .route(&format!("{base}/searches"), get(list_searches).post(create_search))
        .route(&format!("{base}/searches/{{id}}"), get(get_search).patch(patch_search).delete(delete_search))
        .route(&format!("{base}/mailings/preview"), axum::routing::post(preview_mailing))
        .route(&format!("{base}/mailings"), get(list_mailings).post(send_mailing))
        .route(&format!("{base}/mailings/{{id}}"), get(get_mailing))
        .route(&format!("{base}/bounces"), get(list_bounces).post(post_bounce))
}
