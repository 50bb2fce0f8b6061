//! JSON API of self-service: the public join form (tagged `members
//! (public)`), the member space of the signed-in person (`…/members/me…`),
//! the requests a secretary decides (`…/members/requests…`), the
//! self-service settings and card revocation.

use crate::error::MemError;
use crate::selfservice::{
    self, ChangeRequest, Decision, JoinAnswer, JoinForm, JoinOffer, JoinRequest, MySpace, Own, ProfileChange,
    ProfileOutcome, Requests, SelfSettings,
};
use crate::service::{self, MODULE};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::web::api::ApiJson;
use shrooms_core::web::{AppState, OrgCtx, Visitor};
use utoipa::OpenApi;

type R<T> = CoreResult<T>;

const PUBLIC: &str = "members (public)";

fn e(err: MemError) -> CoreError {
    err.into()
}

/// The client's address, for counting join submissions.
pub struct Address(pub String);

impl FromRequestParts<AppState> for Address {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Address(shrooms_core::web::auth::client_address(parts)))
    }
}

/// The signed-in person's own records; 404 when the account is nobody of
/// the organisation's directory.
pub async fn own(st: &AppState, ctx: &OrgCtx) -> R<Own> {
    selfservice::own(&st.db, ctx).await.map_err(e)?.ok_or(CoreError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/join", tag = PUBLIC,
    params(("org" = String, Path, description = "Organisation id or URL name")),
    responses((status = 200, body = JoinOffer, description = "The types the join form offers and the terms"),
        (status = 404, body = Problem, description = "No such organisation, or its join form is closed")))]
async fn join_offer(State(st): State<AppState>, v: Visitor) -> R<Json<JoinOffer>> {
    Ok(Json(selfservice::offer(&st.db, &v.org).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/join", tag = PUBLIC,
    params(("org" = String, Path)), request_body = JoinForm,
    responses((status = 201, body = JoinAnswer, description = "Recorded: a request waiting for approval, or the membership"),
        (status = 200, body = JoinAnswer, description = "The same submission, or an open request of the same person for the type: nothing new"),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn join_submit(
    State(st): State<AppState>,
    v: Visitor,
    Address(addr): Address,
    ApiJson(form): ApiJson<JoinForm>,
) -> R<(StatusCode, Json<JoinAnswer>)> {
    let grant = v.public_form_grant(MODULE);
    let a = selfservice::submit_join(&st, &v.who(), &grant, &v.org, form, &addr).await.map_err(e)?;
    Ok((if a.already_recorded { StatusCode::OK } else { StatusCode::CREATED }, Json(a)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/self-service", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = SelfSettings), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_self_settings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<SelfSettings>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(selfservice::self_settings(&st.db, cap.org()).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/self-service", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SelfSettings,
    responses((status = 200, body = SelfSettings), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_self_settings(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(s): ApiJson<SelfSettings>,
) -> R<Json<SelfSettings>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(selfservice::save_self_settings(&st.db, &ctx.who(), &cap, s).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/me", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = MySpace, description = "The signed-in person's memberships, standing, dues, receipts, mandates and requests"),
        (status = 401, body = Problem), (status = 404, body = Problem, description = "No such organisation, or the account is nobody of its directory")))]
async fn my_membership(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<MySpace>> {
    let o = own(&st, &ctx).await?;
    Ok(Json(selfservice::my_space(&st, &o, &ctx.org).await.map_err(e)?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/me/profile", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = ProfileChange,
    responses((status = 200, body = ProfileOutcome, description = "Fields applied at once, and the request of those that wait for approval"),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn me_profile(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<ProfileChange>,
) -> R<Json<ProfileOutcome>> {
    let o = own(&st, &ctx).await?;
    Ok(Json(selfservice::change_profile(&st, &ctx.who(), &o, &ctx.org, input).await.map_err(e)?))
}

/// The card PDF of the signed-in member.
pub async fn card_response(st: &AppState, ctx: &OrgCtx, lang: &str) -> R<Response> {
    let o = own(st, ctx).await?;
    let (m, token) = selfservice::my_card(&st.db, &ctx.who(), &o, &ctx.org.timezone).await.map_err(e)?;
    let url = format!("{}/o/{}/members/check/{token}", st.base_url(), ctx.org.slug);
    let colour = ctx.org.color_primary.clone().unwrap_or_else(|| "#2f5d8a".into());
    let body = service::card_pdf(&m, &ctx.org.name, &colour, &url, lang);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, "inline; filename=\"carte.pdf\"".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct LangQuery {
    /// `fr` or `en` (the account's language when left out).
    lang: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/me/card.pdf", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), LangQuery),
    responses((status = 200, description = "The membership card as a PDF", content_type = "application/pdf"),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn me_card(State(st): State<AppState>, ctx: OrgCtx, Query(q): Query<LangQuery>) -> R<Response> {
    let lang = q.lang.or(ctx.actor.account.lang.clone()).unwrap_or_else(|| "fr".into());
    card_response(&st, &ctx, if lang == "en" { "en" } else { "fr" }).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/me/tax-receipts/{id}/pdf", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "One of the member's tax receipts as a PDF", content_type = "application/pdf"),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn me_receipt(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let o = own(&st, &ctx).await?;
    let r = selfservice::my_receipt(&st.db, &o, &id).await.map_err(e)?;
    super::api::receipt_download(&st, &ctx.org, &r).await
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct StatusQuery {
    /// `pending` (default), `approved`, `refused` or `rejected`.
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/requests", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), StatusQuery),
    responses((status = 200, body = Requests, description = "Join requests and profile change requests"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_requests(State(st): State<AppState>, ctx: OrgCtx, Query(q): Query<StatusQuery>) -> R<Json<Requests>> {
    let cap = ctx.can_read(MODULE)?;
    let status = q.status.unwrap_or_else(|| "pending".into());
    Ok(Json(selfservice::requests(&st.db, &cap, &status).await.map_err(e)?))
}

/// The optional body of a decision: nothing, or `{"note": "…"}`.
fn decision(body: &[u8]) -> R<Decision> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Decision::default());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Null) => Ok(Decision::default()),
        Ok(v) if v.is_object() => {
            serde_json::from_value(v).map_err(|err| CoreError::validation("body", &err.to_string()))
        }
        Ok(_) => Err(CoreError::validation("body", "Send a JSON object.")),
        Err(err) => Err(CoreError::validation("body", &format!("The body is not JSON: {err}"))),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/requests/joins/{id}/approve", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body(content = Option<Decision>),
    responses((status = 200, body = JoinRequest, description = "Approved: the membership period is recorded"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already decided"), (status = 422, body = Problem)))]
async fn approve_join(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> R<Json<JoinRequest>> {
    let cap = ctx.can_write(MODULE)?;
    let d = decision(&body)?;
    Ok(Json(selfservice::approve_join(&st.db, &ctx.who(), &cap, &ctx.org, &id, d).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/requests/joins/{id}/refuse", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body(content = Option<Decision>),
    responses((status = 200, body = JoinRequest), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already decided"), (status = 422, body = Problem)))]
async fn refuse_join(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> R<Json<JoinRequest>> {
    let cap = ctx.can_write(MODULE)?;
    let d = decision(&body)?;
    Ok(Json(selfservice::refuse_join(&st.db, &ctx.who(), &cap, &ctx.org, &id, d).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/requests/changes/{id}/approve", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body(content = Option<Decision>),
    responses((status = 200, body = ChangeRequest, description = "Approved: the changes are applied"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already decided"), (status = 422, body = Problem)))]
async fn approve_change(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> R<Json<ChangeRequest>> {
    let cap = ctx.can_write(MODULE)?;
    let d = decision(&body)?;
    Ok(Json(selfservice::approve_change(&st.db, &ctx.who(), &cap, &ctx.org, &id, d).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/requests/changes/{id}/reject", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body(content = Option<Decision>),
    responses((status = 200, body = ChangeRequest), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already decided"), (status = 422, body = Problem)))]
async fn reject_change(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> R<Json<ChangeRequest>> {
    let cap = ctx.can_write(MODULE)?;
    let d = decision(&body)?;
    Ok(Json(selfservice::reject_change(&st.db, &ctx.who(), &cap, &ctx.org, &id, d).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/people/{person}/card/revoke", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person" = String, Path)),
    responses((status = 204, description = "Revoked: the old card's QR code now says so; print a new card"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The member has no card")))]
async fn revoke_card(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    selfservice::revoke_card(&st.db, &ctx.who(), &cap, &person).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(OpenApi)]
#[openapi(paths(
    join_offer,
    join_submit,
    get_self_settings,
    put_self_settings,
    my_membership,
    me_profile,
    me_card,
    me_receipt,
    list_requests,
    approve_join,
    refuse_join,
    approve_change,
    reject_change,
    revoke_card
))]
pub struct SelfServiceApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/members";
    Router::new()
        .route(&format!("{base}/join"), get(join_offer).post(join_submit))
        .route(&format!("{base}/self-service"), get(get_self_settings).put(put_self_settings))
        .route(&format!("{base}/me"), get(my_membership))
        .route(&format!("{base}/me/profile"), axum::routing::patch(me_profile))
        .route(&format!("{base}/me/card.pdf"), get(me_card))
        .route(&format!("{base}/me/tax-receipts/{{id}}/pdf"), get(me_receipt))
        .route(&format!("{base}/requests"), get(list_requests))
        .route(&format!("{base}/requests/joins/{{id}}/approve"), post(approve_join))
        .route(&format!("{base}/requests/joins/{{id}}/refuse"), post(refuse_join))
        .route(&format!("{base}/requests/changes/{{id}}/approve"), post(approve_change))
        .route(&format!("{base}/requests/changes/{{id}}/reject"), post(reject_change))
        .route(&format!("{base}/people/{{person}}/card/revoke"), post(revoke_card))
}
