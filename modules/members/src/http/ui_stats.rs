//! The statistics page (`/o/{org}/members/stats`): a filter form (a GET
//! form, by membership type and custom fields), charts with the same
//! figures in tables under them, each table downloadable as CSV with the
//! filter (`/o/{org}/members/stats.csv`, for the signed-in browser), and,
//! for administrators, the retention period of former members' data with a
//! button that runs it now.

use crate::privacy::{self, Retention, RetentionRun};
use crate::service::{self, MODULE};
use crate::stats::{self, Stats, StatsCsvQuery, StatsFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Map, Value};
use shrooms_core::error::{CoreError, FieldError};
use shrooms_core::permissions::Access;
use shrooms_core::web::auth::urlencode;
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

/// The filter's part of a link (`&type_id=…&cf=…`), for the CSV links.
fn filter_query(f: &StatsFilter) -> String {
    let mut q = String::new();
    for (k, v) in [("type_id", &f.type_id), ("cf", &f.cf)] {
        if let Some(v) = v {
            q.push_str(&format!("&{k}={}", urlencode(v)));
        }
    }
    q
}

async fn render(
    ui: Ui,
    ctx: &OrgCtx,
    filter: Result<StatsFilter, CoreError>,
    form: Option<Value>,
    err: Option<CoreError>,
    run: Option<RetentionRun>,
) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let typed = filter.as_ref().map(StatsFilter::normalized).unwrap_or_default();
    // A filter that names an unknown type or field is shown on its form,
    // without figures (unfiltered figures under it would be misread).
    let figures = match filter {
        Ok(f) => stats::stats(db, &cap, service::today(&ctx.org.timezone), &f).await.map_err(CoreError::from),
        Err(e) => Err(e),
    };
    let (s, filter_errors) = match figures {
        Ok(s) => (Some(s), None),
        Err(e @ CoreError::Validation(_)) => (None, Some(e)),
        Err(e) => return Err(e.into()),
    };
    let can_admin = ctx.access(MODULE) >= Access::Admin && ctx.access("core") >= Access::Admin;
    let retention = if can_admin {
        privacy::retention(db, &cap).await.map_err(CoreError::from)?
    } else {
        Retention { months: None }
    };
    let types = service::types(db, &cap).await.map_err(CoreError::from)?;
    let mut type_options = vec![json!(["", ui.t("members.stats.all_types")])];
    for ty in &types {
        let name =
            if ty.archived { format!("{} ({})", ty.name, ui.t("members.stats.archived")) } else { ty.name.clone() };
        type_options.push(json!([ty.id, name]));
    }
    let type_name = typed.type_id.as_ref().and_then(|id| types.iter().find(|t| &t.id == id)).map(|t| t.name.clone());
    let c = s.as_ref().map(|s| charts(s, |k| ui.t(k)));
    let form = form.unwrap_or_else(|| json!({"months": retention.months.map(|m| m.to_string()).unwrap_or_default()}));
    let mut extra = json!({"stats": s, "charts": c, "currency": ctx.org.currency, "can_admin": can_admin,
        "retention": retention, "retention_form": form, "run": run,
        "filter": typed, "filtered": !typed.is_empty(), "type_name": type_name, "type_options": type_options,
        "filter_qs": filter_query(&typed)});
    let status = match &filter_errors {
        Some(e) => {
            let fields: Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            extra["filter_errors"] = Value::Object(fields);
            extra["filter_error"] = Value::String(e.public_detail());
            e.status()
        }
        None => StatusCode::OK,
    };
    let ui = ui.with_org(ctx).await?;
    Ok(match err {
        Some(e) => ui.form_error("members_stats.html", e, extra),
        None => ui.render_status(status, "members_stats.html", extra),
    })
}

/// The query string of the page; a malformed one is a form error.
fn read_filter(q: Result<Query<StatsFilter>, QueryRejection>) -> Result<StatsFilter, CoreError> {
    q.map(|Query(f)| f).map_err(|e| CoreError::validation("query", &e.body_text()))
}

async fn page(ui: Ui, ctx: OrgCtx, q: Result<Query<StatsFilter>, QueryRejection>) -> Page {
    render(ui, &ctx, read_filter(q), None, None, None).await
}

/// One table as CSV with the page's filter, for the signed-in browser (the
/// same file as `GET /api/v1/orgs/{org}/members/stats.csv`).
async fn csv(State(st): State<AppState>, ctx: OrgCtx, q: Result<Query<StatsCsvQuery>, QueryRejection>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let q = q.map(|Query(q)| q).map_err(|e| CoreError::validation("query", &e.body_text()))?;
    let today = service::today(&ctx.org.timezone);
    let (name, body) = stats::export(&st.db, &cap, today, &q).await.map_err(CoreError::from)?;
    Ok(super::api::file_download(&name, "text/csv; charset=utf-8", body))
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
        Err(e) => render(ui, &ctx, Ok(StatsFilter::default()), Some(json!({"months": typed})), Some(e), None).await,
    }
}

async fn run_now(ui: Ui, ctx: OrgCtx, State(st): State<AppState>) -> Page {
    ctx.can_admin(MODULE)?;
    ctx.can_admin("core")?;
    let run = privacy::run_retention(&st, ctx.org.id, &ctx.who()).await.map_err(CoreError::from)?;
    render(ui, &ctx, Ok(StatsFilter::default()), None, None, Some(run)).await
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members/stats", get(page))
        .route("/o/{org}/members/stats.csv", get(csv))
        .route("/o/{org}/members/retention", post(save_retention))
        .route("/o/{org}/members/retention/run", post(run_now))
}
