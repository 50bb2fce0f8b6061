//! Recurring schedules on the web: the JSON routes (instance administrators
//! for every schedule, organisation administrators for their organisation's)
//! and the pages that list them and change an expression, a zone or the
//! switch. Handlers are thin: the rules live in [`crate::schedules`].

use super::api::{ApiJson, CORE};
use super::auth::{Actor, OrgCtx};
use super::ui::{Ui, UiError};
use super::AppState;
use crate::error::{CoreError, CoreResult, FieldError, Problem};
use crate::schedules::{self, Schedule, SchedulePatch, ScheduleScopeCap};
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::OpenApi;

// ---------- JSON ----------

#[utoipa::path(get, path = "/api/v1/admin/schedules", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [Schedule]), (status = 403, body = Problem)))]
pub async fn list_all(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Vec<Schedule>>> {
    let admin = actor.require_instance_admin()?;
    Ok(Json(schedules::list_all(&st.db, &admin).await?))
}

#[utoipa::path(patch, path = "/api/v1/admin/schedules/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = SchedulePatch,
    responses((status = 200, body = Schedule), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_any(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SchedulePatch>,
) -> CoreResult<Json<Schedule>> {
    let admin = actor.require_instance_admin()?;
    Ok(Json(schedules::update(&st.db, &actor.who(), ScheduleScopeCap::Instance(&admin), &id, req).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/schedules", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)),
    responses((status = 200, body = [Schedule]), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_org(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Vec<Schedule>>> {
    let cap = ctx.can_admin(CORE)?;
    Ok(Json(schedules::list_org(&st.db, &cap).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/schedules/{id}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = SchedulePatch,
    responses((status = 200, body = Schedule), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_org(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<SchedulePatch>,
) -> CoreResult<Json<Schedule>> {
    let cap = ctx.can_admin(CORE)?;
    Ok(Json(schedules::update(&st.db, &ctx.who(), ScheduleScopeCap::Org(&cap), &id, req).await?))
}

#[derive(OpenApi)]
#[openapi(paths(list_all, patch_any, list_org, patch_org), components(schemas(Schedule, SchedulePatch)))]
pub struct SchedulesApi;

// ---------- pages ----------

#[derive(Deserialize)]
struct ScheduleForm {
    #[serde(default)]
    cron: String,
    #[serde(default)]
    time_zone: String,
    /// A checkbox: absent when unticked.
    #[serde(default)]
    enabled: Option<String>,
}

impl ScheduleForm {
    fn patch(&self) -> SchedulePatch {
        SchedulePatch {
            cron: Some(self.cron.clone()),
            enabled: Some(self.enabled.as_deref() == Some("1")),
            time_zone: Some(self.time_zone.clone()),
        }
    }
}

/// Re-renders the list with the failed form's input and its field errors.
fn failed(ui: &Ui, list: Vec<Schedule>, base: &str, id: &str, f: &ScheduleForm, e: CoreError) -> Response {
    match e {
        CoreError::Validation(_) | CoreError::Conflict { .. } => {
            let errors: serde_json::Map<String, Value> = e
                .field_errors()
                .into_iter()
                .map(|FieldError { field, message }| (field, Value::String(message)))
                .collect();
            ui.render_status(
                e.status(),
                "schedules.html",
                json!({"schedules": list, "base": base, "instance_view": base == "/admin/schedules", "failed": id, "errors": errors, "error": e.public_detail(),
                       "form": {"cron": f.cron, "time_zone": f.time_zone, "enabled": f.enabled.as_deref() == Some("1")}}),
            )
        }
        e => UiError(e).into_response(),
    }
}

async fn admin_page(ui: Ui, actor: Actor) -> Result<Response, UiError> {
    let admin = actor.require_instance_admin()?;
    let list = schedules::list_all(&ui.st.db, &admin).await?;
    Ok(ui.render("schedules.html", json!({"schedules": list, "base": "/admin/schedules", "instance_view": true})))
}

async fn admin_save(
    ui: Ui,
    actor: Actor,
    Path(id): Path<String>,
    Form(f): Form<ScheduleForm>,
) -> Result<Response, UiError> {
    let admin = actor.require_instance_admin()?;
    match schedules::update(&ui.st.db, &actor.who(), ScheduleScopeCap::Instance(&admin), &id, f.patch()).await {
        Ok(_) => Ok(Redirect::to("/admin/schedules").into_response()),
        Err(e) => {
            let list = schedules::list_all(&ui.st.db, &admin).await?;
            Ok(failed(&ui, list, "/admin/schedules", &id, &f, e))
        }
    }
}

async fn org_page(ui: Ui, ctx: OrgCtx) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let list = schedules::list_org(&ui.st.db, &cap).await?;
    let base = format!("/o/{}/settings/schedules", ctx.org.slug);
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("schedules.html", json!({"schedules": list, "base": base, "org_zone": ctx.org.timezone})))
}

async fn org_save(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<ScheduleForm>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let base = format!("/o/{}/settings/schedules", ctx.org.slug);
    match schedules::update(&ui.st.db, &ctx.who(), ScheduleScopeCap::Org(&cap), &id, f.patch()).await {
        Ok(_) => Ok(Redirect::to(&base).into_response()),
        Err(e) => {
            let list = schedules::list_org(&ui.st.db, &cap).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(failed(&ui, list, &base, &id, &f, e))
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/schedules", get(list_all))
        .route("/api/v1/admin/schedules/{id}", axum::routing::patch(patch_any))
        .route("/api/v1/orgs/{org}/schedules", get(list_org))
        .route("/api/v1/orgs/{org}/schedules/{id}", axum::routing::patch(patch_org))
        .route("/admin/schedules", get(admin_page))
        .route("/admin/schedules/{id}", post(admin_save))
        .route("/o/{org}/settings/schedules", get(org_page))
        .route("/o/{org}/settings/schedules/{id}", post(org_save))
}
