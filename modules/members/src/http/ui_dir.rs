//! Pages of the member directory: the filtered search with its saved
//! searches and the links to exports, lists and labels of the selection;
//! the mass mail form (preview, confirmation with the count, progress);
//! the public unsubscribe page of a mail's link.

use crate::directory::{self, DirQuery, SavedSearchInput};
use crate::error::MemError;
use crate::mailing::{self, MailingInput};
use crate::service::{self, MODULE};
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_core::error::CoreError;
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx};

type Page = Result<Response, UiError>;
type Fields = Vec<(String, String)>;

fn ce(e: MemError) -> CoreError {
    e.into()
}

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).unwrap_or("")
}

fn opt(f: &Fields, k: &str) -> Option<String> {
    Some(field(f, k).to_string()).filter(|s| !s.is_empty())
}

fn form_json(f: &Fields) -> Value {
    Value::Object(f.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

async fn directory_context(ui: &Ui, ctx: &OrgCtx, q: &DirQuery, raw: &str) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let f = directory::resolve(db, &cap, q).await.map_err(ce)?;
    let sort = directory::parse_sort(q.sort.as_deref()).map_err(ce)?;
    let page = directory::search(db, &cap, &ctx.org.timezone, &f, sort, q.cursor.as_deref(), q.limit.unwrap_or(50))
        .await
        .map_err(ce)?;
    let types = service::types(db, &cap).await.map_err(ce)?;
    let saved = directory::saved_searches(db, &cap).await.map_err(ce)?;
    // The query string without its cursor, for the next page and the exports.
    let qs: Vec<&str> = raw.split('&').filter(|p| !p.is_empty() && !p.starts_with("cursor=")).collect();
    Ok(json!({"page": page, "filter": f, "types": types, "saved": saved, "qs": qs.join("&"),
        "saved_id": q.saved, "statuses": directory::STATUSES,
        "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn directory_page(
    ui: Ui,
    ctx: OrgCtx,
    RawQuery(raw): RawQuery,
    q: Result<Query<DirQuery>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let q = q.map(|q| q.0).map_err(|e| CoreError::validation("query", &e.body_text()))?;
    let c = directory_context(&ui, &ctx, &q, raw.as_deref().unwrap_or("")).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_directory.html", c))
}

/// Saves the filters of the page under a name.
async fn search_save(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let q = DirQuery {
        q: opt(&f, "q"),
        status: opt(&f, "status"),
        type_id: opt(&f, "type_id"),
        joined_from: opt(&f, "joined_from"),
        joined_to: opt(&f, "joined_to"),
        ends_from: opt(&f, "ends_from"),
        ends_to: opt(&f, "ends_to"),
        household_id: opt(&f, "household_id"),
        sepa: opt(&f, "sepa").map(|v| v == "true"),
        bounced: opt(&f, "bounced").map(|v| v == "true"),
        cf: opt(&f, "cf"),
        ..Default::default()
    };
    let input = SavedSearchInput { name: Some(field(&f, "name").into()), filter: Some(q.filter()) };
    match directory::create_saved_search(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(s) => Ok(Redirect::to(&format!("/o/{}/members/directory?saved={}", ctx.org.slug, s.id)).into_response()),
        Err(e) => {
            let c = directory_context(&ui, &ctx, &q, "").await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_directory.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

async fn search_rename(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = SavedSearchInput { name: Some(field(&f, "name").into()), filter: None };
    match directory::update_saved_search(&ui.st.db, &ctx.who(), &cap, &id, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/members/directory?saved={id}", ctx.org.slug)).into_response()),
        Err(e) => {
            let q = DirQuery { saved: Some(id), ..Default::default() };
            let c = directory_context(&ui, &ctx, &q, "").await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_directory.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

async fn search_delete(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    directory::delete_saved_search(&ui.st.db, &ctx.who(), &cap, &id).await.map_err(ce)?;
    Ok(Redirect::to(&format!("/o/{}/members/directory", ctx.org.slug)).into_response())
}

async fn mailing_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let saved = directory::saved_searches(&ui.st.db, &cap).await.map_err(ce)?;
    let list = mailing::mailings(&ui.st.db, &cap).await.map_err(ce)?;
    Ok(json!({"saved": saved, "mailings": list}))
}

async fn mailing_page(ui: Ui, ctx: OrgCtx) -> Page {
    let c = mailing_context(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_mailing.html", c))
}

/// First the preview with the count; sent once the count is confirmed.
async fn mailing_post(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = MailingInput {
        subject: opt(&f, "subject"),
        body: opt(&f, "body"),
        saved: opt(&f, "saved"),
        filter: None,
        list_kind: opt(&f, "list_kind"),
        confirm_count: field(&f, "confirm_count").parse().ok(),
    };
    let result = if input.confirm_count.is_some() {
        mailing::send(&ui.st, &ctx, &cap, input).await.map(|_| None)
    } else {
        mailing::preview(&ui.st, &ctx, &cap, &input).await.map(Some)
    };
    let c = mailing_context(&ui, &ctx).await?;
    match result {
        Ok(None) => Ok(Redirect::to(&format!("/o/{}/members/mailings", ctx.org.slug)).into_response()),
        Ok(Some(p)) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.render("members_mailing.html", merge(c, json!({"form": form_json(&f), "preview": p}))))
        }
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_mailing.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

/// The page an unsubscribe link opens: a button, so that a link checker
/// following links does not unsubscribe anyone.
async fn unsubscribe_page(ui: Ui, Path((org, token)): Path<(String, String)>) -> Page {
    let org = shrooms_core::orgs::find_org(&ui.st.db, &org).await?.ok_or(CoreError::NotFound)?;
    let valid = mailing::check_token(&ui.st.signing_key, org.id, &token).is_some();
    Ok(ui.render("members_unsubscribe.html", json!({"org_name": org.name, "valid": valid, "done": false})))
}

async fn unsubscribe_post(ui: Ui, Path((org, token)): Path<(String, String)>) -> Page {
    let org = shrooms_core::orgs::find_org(&ui.st.db, &org).await?.ok_or(CoreError::NotFound)?;
    let done = mailing::unsubscribe(&ui.st.db, &ui.st.signing_key, org.id, &token).await.map_err(ce)?;
    Ok(ui.render("members_unsubscribe.html", json!({"org_name": org.name, "valid": done, "done": done})))
}

/// The one-click unsubscribe of mail programs (RFC 8058) and of the API.
pub async fn unsubscribe_api(
    State(st): State<AppState>,
    Path((org, token)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, CoreError> {
    let org = shrooms_core::orgs::find_org(&st.db, &org).await?.ok_or(CoreError::NotFound)?;
    if mailing::unsubscribe(&st.db, &st.signing_key, org.id, &token).await.map_err(ce)? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(CoreError::NotFound)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members/directory", get(directory_page))
        .route("/o/{org}/members/searches", post(search_save))
        .route("/o/{org}/members/searches/{id}", post(search_rename))
        .route("/o/{org}/members/searches/{id}/delete", post(search_delete))
        .route("/o/{org}/members/mailings", get(mailing_page).post(mailing_post))
        .route("/o/{org}/members/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe_post))
        .route("/api/v1/orgs/{org}/members/unsubscribe/{token}", post(unsubscribe_api))
}
