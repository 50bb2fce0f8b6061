//! The personal dashboard of an organisation: the widgets that enabled
//! modules offer to the caller's role, in the order the person chose, minus
//! the ones they hid. Page `/o/{org}/`, API `/api/v1/orgs/{org}/dashboard`.

use super::api::ApiJson;
use super::auth::OrgCtx;
use super::ui::{Ui, UiError};
use super::AppState;
use crate::audit::{self, Change};
use crate::error::{CoreError, CoreResult, FieldError, Problem};
use crate::ids::Timestamp;
use crate::instance;
use crate::module::Widget;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::{OpenApi, ToSchema};

/// A person's arrangement: widget ids in order, and the hidden ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Widget ids, first shown first; widgets left out follow in their default order.
    #[serde(default)]
    pub order: Vec<String>,
    /// Widget ids not shown.
    #[serde(default)]
    pub hidden: Vec<String>,
}

/// The widgets the caller may see, in their order, with `visible`.
pub async fn arranged(st: &AppState, ctx: &OrgCtx) -> CoreResult<(Vec<(Widget, bool)>, Layout)> {
    let enabled = instance::enabled_modules(&st.db, &st.modules, Some(ctx.org.id)).await?;
    let mut all: Vec<Widget> = Vec::new();
    for m in st.modules.all() {
        if !enabled.iter().any(|e| e == m.id()) {
            continue;
        }
        all.extend(m.widgets().into_iter().filter(|w| ctx.access(m.id()) >= w.min_access));
    }
    all.sort_by_key(|w| w.order);
    let layout = load(st, ctx).await?;
    let rank = |w: &Widget| layout.order.iter().position(|id| id == w.id).unwrap_or(usize::MAX);
    all.sort_by_key(|w| (rank(w), w.order));
    let out = all.into_iter().map(|w| {
        let visible = !layout.hidden.iter().any(|h| h == w.id);
        (w, visible)
    });
    Ok((out.collect(), layout))
}

async fn load(st: &AppState, ctx: &OrgCtx) -> CoreResult<Layout> {
    let r = sqlx::query("SELECT layout FROM dashboard_layouts WHERE account_id = $1 AND org_id = $2")
        .bind(ctx.actor.account.id.to_string())
        .bind(ctx.org.id.to_string())
        .fetch_optional(st.db.pool())
        .await?;
    Ok(match r {
        Some(r) => serde_json::from_str(&r.try_get::<String, _>(0)?).unwrap_or_default(),
        None => Layout::default(),
    })
}

/// Saves the caller's arrangement (audited); ids must be widgets they can see.
pub async fn save(st: &AppState, ctx: &OrgCtx, layout: &Layout) -> CoreResult<()> {
    let (widgets, before) = arranged(st, ctx).await?;
    let known = |id: &String| widgets.iter().any(|(w, _)| w.id == id);
    let mut errors = Vec::new();
    for (field, ids) in [("order", &layout.order), ("hidden", &layout.hidden)] {
        if let Some(bad) = ids.iter().find(|id| !known(id)) {
            errors.push(FieldError::new(field, format!("There is no widget `{bad}` on this dashboard.")));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM dashboard_layouts WHERE account_id = $1 AND org_id = $2")
        .bind(ctx.actor.account.id.to_string())
        .bind(ctx.org.id.to_string())
        .execute(tx.conn())
        .await?;
    sqlx::query("INSERT INTO dashboard_layouts (account_id, org_id, layout, updated_at) VALUES ($1, $2, $3, $4)")
        .bind(ctx.actor.account.id.to_string())
        .bind(ctx.org.id.to_string())
        .bind(serde_json::to_string(layout).unwrap_or_default())
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        &ctx.who(),
        Change {
            org: Some(ctx.org.id),
            action: "dashboard.arrange",
            entity_type: "account",
            entity_id: ctx.actor.account.id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(layout).ok(),
        },
    )
    .await?;
    tx.commit().await
}

#[derive(Serialize, ToSchema)]
pub struct DashboardWidget {
    pub id: String,
    pub title: String,
    pub visible: bool,
    /// What the widget shows (its shape is the module's); absent for hidden widgets.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    pub widgets: Vec<DashboardWidget>,
}

async fn view(st: &AppState, ctx: &OrgCtx, lang: &str) -> CoreResult<Dashboard> {
    let (widgets, _) = arranged(st, ctx).await?;
    let mut out = Vec::new();
    for (w, visible) in widgets {
        let data = if visible { Some((w.load)(st.clone(), ctx.clone()).await?) } else { None };
        out.push(DashboardWidget { id: w.id.into(), title: st.templates.tr(lang, w.title_key), visible, data });
    }
    Ok(Dashboard { widgets: out })
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/dashboard", tag = "dashboard", security(("bearer" = [])), params(("org" = String, Path)),
    responses((status = 200, body = Dashboard), (status = 404, body = Problem)))]
pub async fn get_dashboard(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Dashboard>> {
    let lang = crate::outbox::language_for(&st.db, ctx.actor.account.lang.as_deref()).await?;
    Ok(Json(view(&st, &ctx, &lang).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/dashboard", tag = "dashboard", security(("bearer" = [])), params(("org" = String, Path)),
    request_body = Layout, responses((status = 200, body = Dashboard), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_dashboard(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(layout): ApiJson<Layout>,
) -> CoreResult<Json<Dashboard>> {
    save(&st, &ctx, &layout).await?;
    get_dashboard(State(st), ctx).await
}

#[derive(OpenApi)]
#[openapi(paths(get_dashboard, put_dashboard), components(schemas(Layout, Dashboard, DashboardWidget)))]
pub struct DashboardApi;

// ---------- pages ----------

pub async fn page(ui: Ui, ctx: OrgCtx) -> Result<Response, UiError> {
    let _ = crate::identity::set_last_org(&ui.st.db, ctx.actor.account.id, &ctx.org.id.to_string()).await;
    let ui = ui.with_org(&ctx).await?;
    let (widgets, _) = arranged(&ui.st, &ctx).await?;
    let mut shown = Vec::new();
    let mut all = Vec::new();
    for (i, (w, visible)) in widgets.iter().enumerate() {
        all.push(json!({"id": w.id, "title": ui.t(w.title_key), "visible": visible, "first": i == 0, "last": i + 1 == widgets.len()}));
        if !visible {
            continue;
        }
        let data = (w.load)(ui.st.clone(), ctx.clone()).await?;
        let html = ui
            .render_fragment(w.template, json!({"data": data}))
            .map_err(|e| CoreError::Internal(format!("widget {}: {e}", w.id)))?;
        shown.push(json!({"id": w.id, "title": ui.t(w.title_key), "html": html}));
    }
    Ok(ui.render("dashboard.html", json!({"widgets": shown, "arrangement": all})))
}

#[derive(Deserialize)]
struct ArrangeForm {
    action: String,
    #[serde(default)]
    widget: String,
}

/// One step of arranging from the page: move up or down, hide, show, reset.
async fn arrange(ui: Ui, ctx: OrgCtx, Form(f): Form<ArrangeForm>) -> Result<Response, UiError> {
    let (widgets, mut layout) = arranged(&ui.st, &ctx).await?;
    let mut order: Vec<String> = widgets.iter().map(|(w, _)| w.id.to_string()).collect();
    let Some(i) = order.iter().position(|id| *id == f.widget).or((f.action == "reset").then_some(0)) else {
        return Err(UiError(CoreError::NotFound));
    };
    match f.action.as_str() {
        "up" if i > 0 => order.swap(i, i - 1),
        "down" if i + 1 < order.len() => order.swap(i, i + 1),
        "hide" => layout.hidden.push(f.widget.clone()),
        "show" => layout.hidden.retain(|h| *h != f.widget),
        "reset" => {
            order.clear();
            layout.hidden.clear();
        }
        "up" | "down" => {}
        _ => return Err(UiError(CoreError::BadRequest("Unknown action.".into()))),
    }
    layout.order = order;
    layout.hidden.sort();
    layout.hidden.dedup();
    save(&ui.st, &ctx, &layout).await?;
    Ok(Redirect::to(&format!("/o/{}/#arrange", ctx.org.slug)).into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/dashboard", get(get_dashboard).put(put_dashboard))
        .route("/o/{org}/dashboard/arrange", post(arrange))
}
