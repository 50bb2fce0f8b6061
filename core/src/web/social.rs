//! Timelines and notifications over HTTP: the JSON API (`/api/v1/orgs/{org}/timeline/…`,
//! `/api/v1/notifications…`) and the pages (`/o/{org}/timeline/…`, `/notifications`).
//! Handlers are thin: the services are [`crate::timeline`] and [`crate::notify`].

use super::api::{ApiJson, ApiQuery};
use super::auth::{Actor, OrgCtx};
use super::ui::{Ui, UiError};
use super::AppState;
use crate::error::{CoreError, CoreResult, Problem};
use crate::module::MailMode;
use crate::notify::{self, Notification, Preference};
use crate::permissions::{Access, CanRead};
use crate::timeline::{self, Entry, TimelinePage};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

// ---------- JSON API: timeline ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// At most this many entries (default 50, at most 200).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    // Checked by the service, after the record is found: another
    // organisation's record answers 404 whatever the body.
    #[serde(default)]
    /// Markdown; `@name` mentions a member by the start of their email address (`@camille.martin`) or the whole address.
    pub body: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowInput {
    /// `true` (the default) to follow, `false` to stop.
    #[serde(default = "yes")]
    pub following: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/timeline/{entity_type}/{id}", tag = "timeline", security(("bearer" = [])),
    params(("org" = String, Path), ("entity_type" = String, Path, description = "Kind of record: `person`, or one a module declares"), ("id" = String, Path), TimelineParams),
    responses((status = 200, body = TimelinePage), (status = 404, body = Problem)))]
pub async fn get_timeline(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    ApiQuery(p): ApiQuery<TimelineParams>,
) -> CoreResult<Json<TimelinePage>> {
    let (record, cap) = timeline::resolve(&st, &ctx, &kind, &id).await?;
    Ok(Json(timeline::list(&st.db, &cap, &record, p.cursor.as_deref(), p.limit.unwrap_or(50)).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/timeline/{entity_type}/{id}/comments", tag = "timeline", security(("bearer" = [])),
    params(("org" = String, Path), ("entity_type" = String, Path), ("id" = String, Path)), request_body = CommentInput,
    responses((status = 201, body = Entry), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn post_comment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<CommentInput>,
) -> CoreResult<(StatusCode, Json<Entry>)> {
    let (record, cap) = timeline::resolve(&st, &ctx, &kind, &id).await?;
    let e = timeline::comment(&st, &ctx.who(), &cap, &record, &input.body).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/timeline/{entity_type}/{id}/comments/{comment}", tag = "timeline", security(("bearer" = [])),
    params(("org" = String, Path), ("entity_type" = String, Path), ("id" = String, Path), ("comment" = String, Path)), request_body = CommentInput,
    responses((status = 200, body = Entry), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_comment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, kind, id, comment)): Path<(String, String, String, String)>,
    ApiJson(input): ApiJson<CommentInput>,
) -> CoreResult<Json<Entry>> {
    let (record, cap) = timeline::resolve(&st, &ctx, &kind, &id).await?;
    Ok(Json(timeline::edit_comment(&st, &ctx.who(), &cap, &record, &comment, &input.body).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/timeline/{entity_type}/{id}/comments/{comment}", tag = "timeline", security(("bearer" = [])),
    params(("org" = String, Path), ("entity_type" = String, Path), ("id" = String, Path), ("comment" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_comment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, kind, id, comment)): Path<(String, String, String, String)>,
) -> CoreResult<StatusCode> {
    let (record, cap) = timeline::resolve(&st, &ctx, &kind, &id).await?;
    let admin = ctx.access(cap.module()) >= Access::Admin;
    timeline::delete_comment(&st.db, &ctx.who(), &cap, admin, &record, &comment).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/timeline/{entity_type}/{id}/following", tag = "timeline", security(("bearer" = [])),
    params(("org" = String, Path), ("entity_type" = String, Path), ("id" = String, Path)), request_body = FollowInput,
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn put_following(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<FollowInput>,
) -> CoreResult<StatusCode> {
    let (record, cap) = timeline::resolve(&st, &ctx, &kind, &id).await?;
    timeline::set_following(&st.db, &cap, &record, input.following).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- JSON API: notifications ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Only unread notifications.
    pub unread: Option<bool>,
    /// Notifications older than this id (the last one of the previous page).
    pub before: Option<String>,
    /// At most this many (default 30, at most 100).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Unread notifications in all.
    pub unread: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Preferences {
    pub preferences: Vec<Preference>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])), params(NotificationParams),
    responses((status = 200, body = NotificationPage), (status = 401, body = Problem)))]
pub async fn list_notifications(
    State(st): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<NotificationParams>,
) -> CoreResult<Json<NotificationPage>> {
    let id = actor.account.id;
    let items = notify::list(&st.db, id, p.unread.unwrap_or(false), p.before.as_deref(), p.limit.unwrap_or(30)).await?;
    Ok(Json(NotificationPage { items, unread: notify::unread_count(&st.db, id).await? }))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn read_notification(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> CoreResult<StatusCode> {
    notify::mark_read(&st.db, actor.account.id, Some(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 204)))]
pub async fn read_all_notifications(State(st): State<AppState>, actor: Actor) -> CoreResult<StatusCode> {
    notify::mark_read(&st.db, actor.account.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Preferences)))]
pub async fn get_preferences(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Preferences>> {
    let lang = crate::outbox::language_for(&st.db, actor.account.lang.as_deref()).await?;
    Ok(Json(Preferences { preferences: notify::preferences(&st, actor.account.id, &lang).await? }))
}

#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications", security(("bearer" = [])), request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 422, body = Problem)))]
pub async fn put_preferences(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<Preferences>,
) -> CoreResult<Json<Preferences>> {
    notify::save_preferences(&st, &actor.who(), actor.account.id, &input.preferences).await?;
    get_preferences(State(st), actor).await
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_timeline,
        post_comment,
        patch_comment,
        delete_comment,
        put_following,
        list_notifications,
        read_notification,
        read_all_notifications,
        get_preferences,
        put_preferences
    ),
    components(schemas(
        Entry,
        TimelinePage,
        CommentInput,
        FollowInput,
        Notification,
        NotificationPage,
        Preference,
        Preferences,
        MailMode
    ))
)]
pub struct SocialApi;

// ---------- pages ----------

/// The timeline of a record as the partial shows it, for the record's own page.
pub async fn partial_context(st: &AppState, ctx: &OrgCtx, entity_type: &str, id: &str) -> CoreResult<Value> {
    let (record, cap) = timeline::resolve(st, ctx, entity_type, id).await?;
    let page = timeline::list(&st.db, &cap, &record, None, 50).await?;
    Ok(timeline_value(ctx, &record, page, &cap))
}

fn timeline_value(ctx: &OrgCtx, record: &crate::module::RecordRef, page: TimelinePage, cap: &CanRead) -> Value {
    let me = ctx.actor.account.id.to_string();
    let admin = ctx.access(cap.module()) >= Access::Admin;
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|e| {
            let mine = e.author_id.as_deref() == Some(me.as_str());
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            v["can_delete"] = json!(e.kind == "comment" && !e.deleted && (mine || admin));
            v
        })
        .collect();
    json!({
        "record": record,
        "items": items,
        "next_cursor": page.next_cursor,
        "following": page.following,
        "base": format!("/o/{}/timeline/{}/{}", ctx.org.slug, record.entity_type, record.entity_id),
    })
}

#[derive(Deserialize)]
struct CommentForm {
    body: String,
}

#[derive(Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

async fn timeline_page(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    axum::extract::Query(q): axum::extract::Query<CursorQuery>,
) -> Result<Response, UiError> {
    let (record, cap) = timeline::resolve(&ui.st, &ctx, &kind, &id).await?;
    let page = timeline::list(&ui.st.db, &cap, &record, q.cursor.as_deref(), 50).await?;
    let tl = timeline_value(&ctx, &record, page, &cap);
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(if ui.htmx { "timeline_partial.html" } else { "timeline_page.html" }, json!({"timeline": tl})))
}

async fn comment_submit(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    Form(f): Form<CommentForm>,
) -> Result<Response, UiError> {
    let (record, cap) = timeline::resolve(&ui.st, &ctx, &kind, &id).await?;
    match timeline::comment(&ui.st, &ctx.who(), &cap, &record, &f.body).await {
        Ok(_) if !ui.htmx => Ok(Redirect::to(&format!("{}#timeline", record.path)).into_response()),
        Ok(_) => {
            let page = timeline::list(&ui.st.db, &cap, &record, None, 50).await?;
            let tl = timeline_value(&ctx, &record, page, &cap);
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.render("timeline_partial.html", json!({"timeline": tl})))
        }
        Err(e) => {
            let page = timeline::list(&ui.st.db, &cap, &record, None, 50).await?;
            let tl = timeline_value(&ctx, &record, page, &cap);
            let ui = ui.with_org(&ctx).await?;
            let name = if ui.htmx { "timeline_partial.html" } else { "timeline_page.html" };
            Ok(ui.form_error(name, e, json!({"timeline": tl, "form": {"body": f.body}})))
        }
    }
}

async fn comment_delete(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, kind, id, comment)): Path<(String, String, String, String)>,
) -> Result<Response, UiError> {
    let (record, cap) = timeline::resolve(&ui.st, &ctx, &kind, &id).await?;
    let admin = ctx.access(cap.module()) >= Access::Admin;
    timeline::delete_comment(&ui.st.db, &ctx.who(), &cap, admin, &record, &comment).await?;
    Ok(Redirect::to(&format!("{}#timeline", record.path)).into_response())
}

#[derive(Deserialize)]
struct FollowForm {
    following: String,
}

async fn follow_submit(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, kind, id)): Path<(String, String, String)>,
    Form(f): Form<FollowForm>,
) -> Result<Response, UiError> {
    let (record, cap) = timeline::resolve(&ui.st, &ctx, &kind, &id).await?;
    timeline::set_following(&ui.st.db, &cap, &record, f.following == "1").await?;
    Ok(Redirect::to(&format!("{}#timeline", record.path)).into_response())
}

#[derive(Deserialize)]
struct BeforeQuery {
    before: Option<String>,
}

async fn notifications_page(
    ui: Ui,
    actor: Actor,
    axum::extract::Query(q): axum::extract::Query<BeforeQuery>,
) -> Result<Response, UiError> {
    let items = notify::list(&ui.st.db, actor.account.id, false, q.before.as_deref(), 30).await?;
    let prefs = notify::preferences(&ui.st, actor.account.id, &ui.page.lang).await?;
    let more = (items.len() == 30).then(|| items.last().map(|n| n.id.clone())).flatten();
    Ok(ui.render("notifications.html", json!({"notifications": items, "preferences": prefs, "more": more})))
}

#[derive(Deserialize)]
struct ReadForm {
    id: Option<String>,
}

async fn notifications_read(ui: Ui, actor: Actor, Form(f): Form<ReadForm>) -> Result<Response, UiError> {
    let id = f.id.filter(|s| !s.is_empty());
    notify::mark_read(&ui.st.db, actor.account.id, id.as_deref()).await?;
    Ok(Redirect::to("/notifications").into_response())
}

/// Opens a notification: marks it read and goes to its page.
async fn notification_open(ui: Ui, actor: Actor, Path(id): Path<String>) -> Result<Response, UiError> {
    notify::mark_read(&ui.st.db, actor.account.id, Some(&id)).await?;
    let n = notify::get(&ui.st.db, actor.account.id, &id).await?;
    let to = Some(n.link).filter(|l| l.starts_with('/') && !l.starts_with("//")).unwrap_or("/notifications".into());
    Ok(Redirect::to(&to).into_response())
}

async fn preferences_submit(ui: Ui, actor: Actor, Form(f): Form<Vec<(String, String)>>) -> Result<Response, UiError> {
    // Fields: `in_app.<kind>` = 1 when ticked, `mail.<kind>` = off|immediate|digest.
    let mut prefs = Vec::new();
    for k in ui.st.modules.notification_kinds() {
        let in_app = f.iter().any(|(n, v)| n == &format!("in_app.{}", k.id) && v == "1");
        let mail = f
            .iter()
            .find(|(n, _)| n == &format!("mail.{}", k.id))
            .and_then(|(_, v)| MailMode::parse(v))
            .ok_or_else(|| CoreError::BadRequest(format!("Choose how `{}` is mailed.", k.id)))?;
        prefs.push(Preference { kind: k.id.to_string(), label: String::new(), in_app, mail });
    }
    notify::save_preferences(&ui.st, &actor.who(), actor.account.id, &prefs).await?;
    Ok(Redirect::to("/notifications?saved=1#preferences").into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/timeline/{entity_type}/{id}", get(get_timeline))
        .route("/api/v1/orgs/{org}/timeline/{entity_type}/{id}/comments", post(post_comment))
        .route(
            "/api/v1/orgs/{org}/timeline/{entity_type}/{id}/comments/{comment}",
            axum::routing::patch(patch_comment).delete(delete_comment),
        )
        .route("/api/v1/orgs/{org}/timeline/{entity_type}/{id}/following", axum::routing::put(put_following))
        .route("/api/v1/notifications", get(list_notifications))
        .route("/api/v1/notifications/read-all", post(read_all_notifications))
        .route("/api/v1/notifications/preferences", get(get_preferences).put(put_preferences))
        .route("/api/v1/notifications/{id}/read", post(read_notification))
        .route("/o/{org}/timeline/{entity_type}/{id}", get(timeline_page))
        .route("/o/{org}/timeline/{entity_type}/{id}/comments", post(comment_submit))
        .route("/o/{org}/timeline/{entity_type}/{id}/comments/{comment}/delete", post(comment_delete))
        .route("/o/{org}/timeline/{entity_type}/{id}/following", post(follow_submit))
        .route("/notifications", get(notifications_page))
        .route("/notifications/read", post(notifications_read))
        .route("/notifications/preferences", post(preferences_submit))
        .route("/notifications/{id}", get(notification_open))
}
