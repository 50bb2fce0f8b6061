//! JSON API of the members statistics (filtered by type and custom
//! fields, each table also as CSV) and of the retention period of former
//! members' personal data (the erasure itself is the core's
//! `POST /api/v1/orgs/{org}/people/{id}/erase`).

use crate::http::api::file_download;
use crate::privacy::{self, Retention, RetentionRun};
use crate::service::{self, MODULE};
use crate::stats::{self, MoneyCount, MonthCount, MonthMoves, Stats, StatsCsvQuery, StatsFilter, TypeCount};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use shrooms_core::error::{CoreResult, Problem};
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::OpenApi;

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/stats", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name"), StatsFilter),
    responses((status = 200, body = Stats), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "An unknown parameter, membership type or custom field, or a malformed `cf` (the field is named)")))]
async fn get_stats(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<StatsFilter>,
) -> CoreResult<Json<Stats>> {
    let cap = ctx.can_read(MODULE)?;
    let today = service::today(&ctx.org.timezone);
    Ok(Json(stats::stats(&st.db, &cap, today, &f).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/stats.csv", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name"), StatsCsvQuery),
    responses((status = 200, description = "One table of the statistics as CSV (UTF-8, comma-separated, amounts with two decimals), with the same filters", content_type = "text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "No or an unknown `table`, an unknown membership type or custom field, or a malformed `cf`")))]
async fn get_stats_csv(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<StatsCsvQuery>,
) -> CoreResult<Response> {
    let cap = ctx.can_read(MODULE)?;
    let today = service::today(&ctx.org.timezone);
    let (name, body) = stats::export(&st.db, &cap, today, &q).await?;
    Ok(file_download(&name, "text/csv; charset=utf-8", body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/retention", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = Retention), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_retention(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Retention>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(privacy::retention(&st.db, &cap.as_write().as_read()).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/retention", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = Retention,
    responses((status = 200, body = Retention), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn put_retention(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<Retention>,
) -> CoreResult<Json<Retention>> {
    let cap = ctx.can_admin(MODULE)?;
    // Erasing people takes administrator access on the people too.
    ctx.can_admin("core")?;
    Ok(Json(privacy::set_retention(&st.db, &ctx.who(), &cap, input).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/retention/run", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = RetentionRun, description = "Former members past the retention period erased now (what the daily job does)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn run_retention(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<RetentionRun>> {
    ctx.can_admin(MODULE)?;
    ctx.can_admin("core")?;
    Ok(Json(privacy::run_retention(&st, ctx.org.id, &ctx.who()).await?))
}

#[derive(OpenApi)]
#[openapi(
    paths(get_stats, get_stats_csv, get_retention, put_retention, run_retention),
    components(schemas(Stats, StatsFilter, MonthCount, TypeCount, MonthMoves, MoneyCount, Retention, RetentionRun))
)]
pub struct StatsApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/members";
    Router::new()
        .route(&format!("{base}/stats"), get(get_stats))
        .route(&format!("{base}/stats.csv"), get(get_stats_csv))
        .route(&format!("{base}/retention"), get(get_retention).put(put_retention))
        .route(&format!("{base}/retention/run"), post(run_retention))
}
