//! The statistics page (`/o/{org}/members/stats`): charts with the same
//! figures in tables under them, and, for administrators, the retention
//! period of former members' data with a button that runs it now.

use crate::privacy::{self, Retention, RetentionRun};
use crate::service::{self, MODULE};
use crate::stats::{self, Stats};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_core::error::{CoreError, FieldError};
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx};

type Page = Result<Response, UiError>;

/// The series of each chart, as the page's script reads them; `t` names
/// the datasets in the reader's language.
fn charts(s: &Stats, t: impl Fn(&str) -> String) -> Value {
    let months: Vec<&str> = s.members_by_month.iter().map(|m| m.month.as_str()).collect();
    let set = |key: &str, values: Vec<f64>| json!({"label": t(key), "values": values});
    json!({
        "members": json!({"labels": months,
            "datasets": [set("members.stats.members", s.members_by_month.iter().map(|m| m.members as f64).collect())]}).to_string(),
        "types": json!({"labels": s.by_type.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            "datasets": [set("members.stats.members", s.by_type.iter().map(|t| t.members as f64).collect())]}).to_string(),
        "moves": json!({"labels": months, "datasets": [
            set("members.stats.joins", s.moves_by_month.iter().map(|m| m.joins as f64).collect()),
            set("members.stats.departures", s.moves_by_month.iter().map(|m| m.departures as f64).collect())]}).to_string(),
        "dues": json!({"labels": months,
            "datasets": [set("members.stats.amount", s.dues_by_month.iter().map(|m| m.amount_cents as f64 / 100.0).collect())]}).to_string(),
    })
}

async fn render(ui: Ui, ctx: &OrgCtx, form: Option<Value>, err: Option<CoreError>, run: Option<RetentionRun>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let s = stats::stats(&ui.st.db, &cap, service::today(&ctx.org.timezone)).await.map_err(CoreError::from)?;
    let can_admin = ctx.access(MODULE) >= Access::Admin && ctx.access("core") >= Access::Admin;
    let retention = if can_admin {
        privacy::retention(&ui.st.db, &cap).await.map_err(CoreError::from)?
    } else {
        Retention { months: None }
    };
    let c = charts(&s, |k| ui.t(k));
    let form = form.unwrap_or_else(|| json!({"months": retention.months.map(|m| m.to_string()).unwrap_or_default()}));
    let extra = json!({"stats": s, "charts": c, "currency": ctx.org.currency, "can_admin": can_admin,
        "retention": retention, "retention_form": form, "run": run});
    let ui = ui.with_org(ctx).await?;
    Ok(match err {
        Some(e) => ui.form_error("members_stats.html", e, extra),
        None => ui.render("members_stats.html", extra),
    })
}

async fn page(ui: Ui, ctx: OrgCtx) -> Page {
    render(ui, &ctx, None, None, None).await
}

async fn save_retention(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    ctx.can_admin("core")?;
    let typed = f.iter().find(|(k, _)| k == "months").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let months = if typed.is_empty() {
        Ok(None)
    } else {
        typed.parse::<i64>().map(Some).map_err(|_| {
            CoreError::Validation(vec![FieldError::new("months", "Give a whole number of months, or leave it empty.")])
        })
    };
    let result = match months {
        Ok(months) => {
            privacy::set_retention(&ui.st.db, &ctx.who(), &cap, Retention { months }).await.map_err(CoreError::from)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/members/stats", ctx.org.slug)).into_response()),
        Err(e) => render(ui, &ctx, Some(json!({"months": typed})), Some(e), None).await,
    }
}

async fn run_now(ui: Ui, ctx: OrgCtx, State(st): State<AppState>) -> Page {
    ctx.can_admin(MODULE)?;
    ctx.can_admin("core")?;
    let run = privacy::run_retention(&st, ctx.org.id, &ctx.who()).await.map_err(CoreError::from)?;
    render(ui, &ctx, None, None, Some(run)).await
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members/stats", get(page))
        .route("/o/{org}/members/retention", post(save_retention))
        .route("/o/{org}/members/retention/run", post(run_now))
}
