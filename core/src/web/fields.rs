//! Custom field definitions over HTTP: `/api/v1/orgs/{org}/custom-fields` and
//! the settings page `/o/{org}/settings/fields`. Defining fields of a kind
//! of record takes administration of the module that owns it.

use super::api::{ApiJson, ApiQuery};
use super::auth::OrgCtx;
use super::ui::{Ui, UiError};
use super::AppState;
use crate::custom_fields::{self, FieldDef, FieldInput, FieldKind};
use crate::error::{CoreError, CoreResult, Problem};
use crate::permissions::{Access, CanAdmin};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi};

/// Administration of the module owning `entity_type` (404 for an unknown kind of record).
fn admin_for(st: &AppState, ctx: &OrgCtx, entity_type: &str) -> CoreResult<CanAdmin> {
    let kind = st.modules.record_kind(entity_type).ok_or(CoreError::NotFound)?;
    ctx.can_admin(kind.module)
}

/// Field definitions the caller may see: those of kinds whose module they can read.
async fn visible(st: &AppState, ctx: &OrgCtx, entity_type: Option<&str>) -> CoreResult<Vec<FieldDef>> {
    let all = custom_fields::list_all(&st.db, ctx.org.id).await?;
    Ok(all
        .into_iter()
        .filter(|f| entity_type.is_none_or(|t| t == f.entity_type))
        .filter(|f| st.modules.record_kind(&f.entity_type).is_some_and(|k| ctx.access(k.module) >= Access::Read))
        .collect())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldParams {
    /// Only the fields of this kind of record (`person`, …).
    pub entity_type: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/custom-fields", tag = "custom fields", security(("bearer" = [])),
    params(("org" = String, Path), FieldParams), responses((status = 200, body = [FieldDef]), (status = 404, body = Problem)))]
pub async fn list_fields(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<FieldParams>,
) -> CoreResult<Json<Vec<FieldDef>>> {
    Ok(Json(visible(&st, &ctx, p.entity_type.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/custom-fields", tag = "custom fields", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = FieldInput,
    responses((status = 201, body = FieldDef), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_field(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<FieldInput>,
) -> CoreResult<(StatusCode, Json<FieldDef>)> {
    let entity_type = input.entity_type.clone().unwrap_or_else(|| "person".into());
    let cap = admin_for(&st, &ctx, &entity_type).map_err(|e| {
        if matches!(e, CoreError::NotFound) {
            CoreError::validation("entity_type", "Unknown kind of record.")
        } else {
            e
        }
    })?;
    Ok((StatusCode::CREATED, Json(custom_fields::create(&st.db, &ctx.who(), &cap, &entity_type, &input).await?)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/custom-fields/{field}", tag = "custom fields", security(("bearer" = [])),
    params(("org" = String, Path), ("field" = String, Path)), request_body = FieldInput,
    responses((status = 200, body = FieldDef), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_field(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(p): ApiJson<FieldInput>,
) -> CoreResult<Json<FieldDef>> {
    let def = custom_fields::get(&st.db, ctx.org.id, &id).await?;
    let cap = admin_for(&st, &ctx, &def.entity_type)?;
    let mut out = custom_fields::update(&st.db, &ctx.who(), &cap, &id, &p).await?;
    if let Some(a) = p.archived.filter(|a| *a != out.archived) {
        out = custom_fields::set_archived(&st.db, &ctx.who(), &cap, &id, a).await?;
    }
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/custom-fields/{field}", tag = "custom fields", security(("bearer" = [])),
    params(("org" = String, Path), ("field" = String, Path)),
    responses((status = 204, description = "Archived: hidden, values kept"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn archive_field(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let def = custom_fields::get(&st.db, ctx.org.id, &id).await?;
    let cap = admin_for(&st, &ctx, &def.entity_type)?;
    custom_fields::set_archived(&st.db, &ctx.who(), &cap, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(OpenApi)]
#[openapi(
    paths(list_fields, create_field, patch_field, archive_field),
    components(schemas(FieldDef, FieldInput, FieldKind))
)]
pub struct FieldsApi;

// ---------- the settings page ----------

#[derive(Deserialize, Default)]
struct FieldForm {
    #[serde(default)]
    entity_type: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    options: String,
    #[serde(default)]
    required: Option<String>,
    #[serde(default)]
    in_list: Option<String>,
    #[serde(default)]
    position: Option<String>,
}

impl FieldForm {
    fn input(&self) -> FieldInput {
        FieldInput {
            entity_type: None,
            key: Some(self.key.clone()).filter(|k| !k.trim().is_empty()),
            label: Some(self.label.clone()),
            kind: serde_json::from_value(json!(self.kind)).ok(),
            options: Some(self.options.lines().map(str::to_string).collect()),
            required: Some(self.required.is_some()),
            in_list: Some(self.in_list.is_some()),
            position: self.position.as_deref().and_then(|p| p.trim().parse().ok()),
            archived: None,
        }
    }
}

/// Kinds of record the caller administers, for the "add a field" form.
fn kinds(st: &AppState, ctx: &OrgCtx) -> Vec<serde_json::Value> {
    st.modules
        .all()
        .iter()
        .flat_map(|m| m.record_kinds())
        .filter(|k| ctx.access(k.module) >= Access::Admin)
        .map(|k| json!({"entity_type": k.entity_type, "module": k.module}))
        .collect()
}

async fn page(ui: Ui, ctx: &OrgCtx, extra: serde_json::Value, status: Option<CoreError>) -> Result<Response, UiError> {
    let fields = visible(&ui.st, ctx, None).await?;
    let kinds = kinds(&ui.st, ctx);
    if kinds.is_empty() {
        return Err(UiError(CoreError::Forbidden("Only administrators define custom fields.".into())));
    }
    let ui = ui.with_org(ctx).await?;
    let mut ctx_json = json!({"fields": fields, "kinds": kinds});
    if let (Some(o), serde_json::Value::Object(e)) = (ctx_json.as_object_mut(), extra) {
        o.extend(e);
    }
    Ok(match status {
        Some(e) => ui.form_error("custom_fields.html", e, ctx_json),
        None => ui.render("custom_fields.html", ctx_json),
    })
}

async fn fields_page(ui: Ui, ctx: OrgCtx) -> Result<Response, UiError> {
    page(ui, &ctx, json!({"form": {"kind": "text", "entity_type": "person"}}), None).await
}

async fn fields_create(ui: Ui, ctx: OrgCtx, Form(f): Form<FieldForm>) -> Result<Response, UiError> {
    let entity_type = if f.entity_type.is_empty() { "person".to_string() } else { f.entity_type.clone() };
    let cap = admin_for(&ui.st, &ctx, &entity_type)?;
    match custom_fields::create(&ui.st.db, &ctx.who(), &cap, &entity_type, &f.input()).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/settings/fields", ctx.org.slug)).into_response()),
        Err(e) => {
            let form = json!({"entity_type": entity_type, "label": f.label, "key": f.key, "kind": f.kind, "options": f.options,
                "required": f.required.is_some(), "in_list": f.in_list.is_some()});
            page(ui, &ctx, json!({"form": form}), Some(e)).await
        }
    }
}

async fn fields_update(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<FieldForm>,
) -> Result<Response, UiError> {
    let def = custom_fields::get(&ui.st.db, ctx.org.id, &id).await?;
    let cap = admin_for(&ui.st, &ctx, &def.entity_type)?;
    let mut input = f.input();
    input.key = None;
    input.kind = None;
    match custom_fields::update(&ui.st.db, &ctx.who(), &cap, &id, &input).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/settings/fields", ctx.org.slug)).into_response()),
        Err(e) => {
            page(ui, &ctx, json!({"form": {"kind": "text", "entity_type": "person"}, "editing": id}), Some(e)).await
        }
    }
}

async fn fields_archive(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let def = custom_fields::get(&ui.st.db, ctx.org.id, &id).await?;
    let cap = admin_for(&ui.st, &ctx, &def.entity_type)?;
    custom_fields::set_archived(&ui.st.db, &ctx.who(), &cap, &id, !def.archived).await?;
    Ok(Redirect::to(&format!("/o/{}/settings/fields", ctx.org.slug)).into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/custom-fields", get(list_fields).post(create_field))
        .route("/api/v1/orgs/{org}/custom-fields/{field}", patch(patch_field).delete(archive_field))
        .route("/o/{org}/settings/fields", get(fields_page).post(fields_create))
        .route("/o/{org}/settings/fields/{field}", post(fields_update))
        .route("/o/{org}/settings/fields/{field}/archive", post(fields_archive))
}
