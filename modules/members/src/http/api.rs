//! JSON API of members and dues: thin handlers over the service, each with
//! its OpenAPI annotation. Paths live under `/api/v1/orgs/{org}/members/…`
//! next to the core's organisation memberships (`/members`, `/members/{account}`),
//! which are accounts, not members of the association.

use crate::debits::{
    self, Batch, CollectionInput, CollectionItem, Creditor, DebitView, Mandate, MandateInput, ReturnsInput,
    ReturnsReport,
};
use crate::domain::Tier;
use crate::donations::{
    self, BatchReport, Donation, DonationFilter, DonationInput, Donor, TaxReceipt, YearBatch, YearTotals,
};
use crate::error::MemError;
use crate::gift_plans::{self, GiftPlan, GiftPlanFilter, GiftPlanInput, ReceiveInput, ReceivedGift};
use crate::service::{
    self, Address, ApplyType, BulkDues, BulkRenew, CloseInput, Due, DueFilter, DueInput, Household, HouseholdInput,
    HouseholdLink, HouseholdMember, HouseholdRef, JoinInput, MemberFilter, MemberPerson, MemberRow, Membership,
    MembershipType, Period, ProfileInput, RenewInput, Settings, StandingView, TypeInput, MODULE,
};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::OpenApi;

type R<T> = CoreResult<T>;

fn e(err: MemError) -> CoreError {
    err.into()
}

/// A request body that must be a JSON object: bodies whose fields are all
/// optional would otherwise also be read from a list (`[]`).
fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> CoreResult<T> {
    if !v.is_object() {
        return Err(CoreError::validation("body", "Send a JSON object."));
    }
    serde_json::from_value(v).map_err(|e| CoreError::validation("body", &e.to_string()))
}

fn created<T>(created: bool, body: T) -> (StatusCode, Json<T>) {
    (if created { StatusCode::CREATED } else { StatusCode::OK }, Json(body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/settings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name")),
    responses((status = 200, body = Settings), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_settings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Settings>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::settings(&st.db, cap.org()).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/settings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = Settings,
    responses((status = 200, body = Settings), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The invoice path needs the invoicing module's billing interface"), (status = 422, body = Problem)))]
async fn put_settings(State(st): State<AppState>, ctx: OrgCtx, ApiJson(s): ApiJson<Settings>) -> R<Json<Settings>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(service::save_settings(&st.db, &ctx.who(), &cap, s).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/types", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [MembershipType]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_types(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<MembershipType>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::types(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/types", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = TypeInput,
    responses((status = 201, body = MembershipType), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "A type already has this name"), (status = 422, body = Problem)))]
async fn create_type(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<MembershipType>)> {
    let cap = ctx.can_admin(MODULE)?;
    let input: TypeInput = object(input)?;
    Ok((StatusCode::CREATED, Json(service::create_type(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/types/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = MembershipType), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_type(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<MembershipType>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::get_type(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/types/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = TypeInput,
    responses((status = 200, body = MembershipType), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn patch_type(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<MembershipType>> {
    let cap = ctx.can_admin(MODULE)?;
    let input: TypeInput = object(input)?;
    Ok(Json(service::update_type(&st.db, &ctx.who(), &cap, &id, input).await.map_err(e)?))
}

/// A query string value, percent-encoded (everything but unreserved characters).
fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/directory", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), MemberFilter),
    responses((status = 200, body = [MemberRow],
            description = "Everyone who has held a membership, with their standing today, in name order (family name, given name). \
                A page of `limit` rows; when there are more, the `Link` header gives the next page (`rel=\"next\"`, with `cursor`).",
            headers(("Link" = String, description = "`<…/members/directory?…&cursor=…>; rel=\"next\"` when there is a next page"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn directory(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(f): ApiQuery<MemberFilter>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let page = service::members_page(&st.db, &cap, &ctx.org.timezone, &f).await.map_err(e)?;
    let mut res = Json(page.items).into_response();
    if let Some(c) = page.next_cursor {
        let mut qs: Vec<String> = vec![];
        for (k, v) in [("q", &f.q), ("standing", &f.standing), ("type_id", &f.type_id)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                qs.push(format!("{k}={}", query_value(v)));
            }
        }
        if let Some(l) = f.limit {
            qs.push(format!("limit={l}"));
        }
        qs.push(format!("cursor={c}"));
        let link = format!("</api/v1/orgs/{}/members/directory?{}>; rel=\"next\"", ctx.org.slug, qs.join("&"));
        if let Ok(v) = header::HeaderValue::from_str(&link) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/people/{person}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person" = String, Path, description = "A person of the organisation's directory")),
    responses((status = 200, body = Membership, description = "Standing today and why, periods, history, dues"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn membership(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
) -> R<Json<Membership>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::membership(&st.db, &cap, &ctx.org.timezone, &person).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/people/{person}/profile", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person" = String, Path)), request_body = ProfileInput,
    responses((status = 200, body = MemberPerson), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_profile(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<MemberPerson>> {
    let cap = ctx.can_write(MODULE)?;
    let input: ProfileInput = object(input)?;
    Ok(Json(service::set_profile(&st.db, &ctx.who(), &cap, &person, input).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/people/{person}/periods", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person" = String, Path)), request_body = JoinInput,
    responses((status = 201, body = Period, description = "Joined (or joined again) for a new period"),
        (status = 200, body = Period, description = "The same request_key was already recorded: that period, nothing new"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "Overlap with an existing period of the type, unknown type, fee rule not met")))]
async fn join(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
    ApiJson(input): ApiJson<JoinInput>,
) -> R<(StatusCode, Json<Period>)> {
    let cap = ctx.can_write(MODULE)?;
    let w = service::join(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &person, input).await.map_err(e)?;
    Ok(created(w.created, w.period))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/people/{person}/renewals", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person" = String, Path)), request_body = RenewInput,
    responses((status = 201, body = Period, description = "The period that follows the last one"),
        (status = 200, body = Period, description = "The same request_key was already recorded"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn renew(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
    ApiJson(input): ApiJson<RenewInput>,
) -> R<(StatusCode, Json<Period>)> {
    let cap = ctx.can_write(MODULE)?;
    let w = service::renew(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &person, input).await.map_err(e)?;
    Ok(created(w.created, w.period))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/periods/{id}/close", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = CloseInput,
    responses((status = 200, body = Period, description = "Closed: resigned or excluded; the history keeps it"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn close_period(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<CloseInput>,
) -> R<Json<Period>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(service::close_period(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &id, input).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/renewals", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = BulkRenew,
    responses((status = 201, body = [Period], description = "Every member of the list renewed, or none"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "Errors name the person: `person_ids[3].on`")))]
async fn renew_many(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<BulkRenew>,
) -> R<(StatusCode, Json<Vec<Period>>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((
        StatusCode::CREATED,
        Json(service::renew_many(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?),
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/apply-type", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = ApplyType,
    responses((status = 201, body = [Period], description = "A period of the type for every person of the selection, or none"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "Errors name the person: `person_ids[3].starts_on`")))]
async fn apply_type(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<ApplyType>,
) -> R<(StatusCode, Json<Vec<Period>>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((
        StatusCode::CREATED,
        Json(service::apply_type(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/households", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [Household]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_households(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Household>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::households(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/households", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = HouseholdInput,
    responses((status = 201, body = Household), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_household(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<Household>)> {
    let cap = ctx.can_write(MODULE)?;
    let input: HouseholdInput = object(input)?;
    Ok((StatusCode::CREATED, Json(service::create_household(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/households/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Household), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_household(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Household>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::household(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/households/{id}/members", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = HouseholdLink,
    responses((status = 200, body = Household, description = "The person belongs to this household (and no other)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn link_household(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Household>> {
    let cap = ctx.can_write(MODULE)?;
    let input: HouseholdLink = object(input)?;
    Ok(Json(service::link_household(&st.db, &ctx.who(), &cap, &id, input).await.map_err(e)?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/households/{id}/members/{person}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path), ("person" = String, Path)),
    responses((status = 204, description = "The person left the household"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn unlink_household(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id, person)): Path<(String, String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    service::unlink_household(&st.db, &ctx.who(), &cap, &id, &person).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/dues", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("person_id" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = [Due], description = "Newest receipt first"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_dues(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(f): ApiQuery<DueFilter>) -> R<Json<Vec<Due>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::dues(&st.db, &cap, &f).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/dues", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = DueInput,
    responses((status = 201, body = Due, description = "Recorded with the next receipt number; its ledger entry is validated"),
        (status = 200, body = Due, description = "The same request_key was already recorded: that receipt, nothing new"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Books not opened, or the invoice path is chosen"),
        (status = 422, body = Problem, description = "Unknown person or period, amount over what is left, date outside an open fiscal year")))]
async fn record_due(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<DueInput>,
) -> R<(StatusCode, Json<Due>)> {
    let cap = ctx.can_write(MODULE)?;
    let r = service::record_due(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?;
    Ok(created(r.created, r.due))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/dues/bulk", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = BulkDues,
    responses((status = 201, body = [Due], description = "Every payment recorded, or none"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "Errors name the item: `items[2].amount_cents`")))]
async fn record_dues(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<BulkDues>,
) -> R<(StatusCode, Json<Vec<Due>>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((
        StatusCode::CREATED,
        Json(service::record_dues(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/dues/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Due), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_due(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Json<Due>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::get_due(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/donations", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), DonationFilter),
    responses((status = 200, body = [Donation], description = "Newest first"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_donations(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<DonationFilter>,
) -> R<Json<Vec<Donation>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(donations::donations(&st.db, &cap, &f).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/donations", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = DonationInput,
    responses((status = 201, body = Donation, description = "Recorded; a gift of money is posted to the ledger (validated)"),
        (status = 200, body = Donation, description = "The same request_key was already recorded"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The books are not opened"),
        (status = 422, body = Problem, description = "Unknown person, company without a valid SIREN, date outside an open fiscal year")))]
async fn record_donation(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<DonationInput>,
) -> R<(StatusCode, Json<Donation>)> {
    let cap = ctx.can_write(MODULE)?;
    let r = donations::record_donation(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?;
    Ok(created(r.created, r.item))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/gift-plans", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), GiftPlanFilter),
    responses((status = 200, body = [GiftPlan], description = "Active first, by next expected day; `late` when expected before today"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_gift_plans(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<GiftPlanFilter>,
) -> R<Json<Vec<GiftPlan>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(gift_plans::list(&st.db, &cap, &ctx.org.timezone, &f).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/gift-plans", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = GiftPlanInput,
    responses((status = 201, body = GiftPlan, description = "Planned: the first gift is expected on `first_on`"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "Amount not above zero, unknown person, unknown frequency or method, bad dates")))]
async fn create_gift_plan(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<GiftPlanInput>,
) -> R<(StatusCode, Json<GiftPlan>)> {
    let cap = ctx.can_write(MODULE)?;
    let p = gift_plans::create(&st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/gift-plans/{id}/stop", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Gift plan id")),
    responses((status = 200, body = GiftPlan, description = "Stopped (a stopped plan is returned as it is)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn stop_gift_plan(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<GiftPlan>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(gift_plans::stop(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &id).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/gift-plans/{id}/receive", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Gift plan id")), request_body = ReceiveInput,
    responses((status = 201, body = ReceivedGift, description = "The donation recorded as by hand (recurring, posted to the ledger); the plan moved to its next expected day"),
        (status = 200, body = ReceivedGift, description = "The same request_key was already recorded"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The plan is stopped, or the books are not opened"),
        (status = 422, body = Problem, description = "Received in the future or outside an open fiscal year, amount not above zero")))]
async fn receive_gift(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<ReceivedGift>)> {
    let cap = ctx.can_write(MODULE)?;
    let input: ReceiveInput = object(input)?;
    let r = gift_plans::receive(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &id, input).await.map_err(e)?;
    Ok(created(r.created, r.item))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/donations/{id}/tax-receipt", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Donation id")),
    responses((status = 201, body = TaxReceipt, description = "Issued with the next receipt number"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The organisation's identity is not filled in (settings)"),
        (status = 422, body = Problem, description = "The donation already has a receipt")))]
async fn issue_receipt(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<(StatusCode, Json<TaxReceipt>)> {
    let cap = ctx.can_write(MODULE)?;
    let r = donations::issue_receipt(&st.db, &ctx.who(), &cap, &ctx.org.timezone, &id).await.map_err(e)?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// Calendar year of the gifts.
    pub year: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/tax-receipts", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), YearQuery),
    responses((status = 200, body = [TaxReceipt], description = "Highest number first"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_receipts(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> R<Json<Vec<TaxReceipt>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(donations::receipts(&st.db, &cap, q.year).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/tax-receipts/batch", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = YearBatch,
    responses((status = 200, body = BatchReport, description = "Receipts issued for the year's gifts not yet receipted, mailed if asked"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The organisation's identity is not filled in"), (status = 422, body = Problem)))]
async fn receipt_batch(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<YearBatch>,
) -> R<Json<BatchReport>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(donations::issue_year(&st, &ctx.who(), &cap, &ctx.org.timezone, &ctx.org.slug, input).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/tax-receipts/totals", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), YearQuery),
    responses((status = 200, body = YearTotals, description = "Number and amount of the receipts of the year: what is declared"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn receipt_totals(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<YearQuery>,
) -> R<Json<YearTotals>> {
    let cap = ctx.can_read(MODULE)?;
    let year = q.year.unwrap_or_else(|| service::today(&ctx.org.timezone).year() as i64);
    Ok(Json(donations::totals(&st.db, &cap, year).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/tax-receipts/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = TaxReceipt), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_receipt(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<TaxReceipt>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(donations::receipt(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/tax-receipts/{id}/pdf", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The receipt as a PDF", content_type = "application/pdf"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn receipt_pdf(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let r = donations::receipt(&st.db, &cap, &id).await.map_err(e)?;
    receipt_download(&st, &ctx.org, &r).await
}

/// The PDF of a receipt as a download.
pub async fn receipt_download(st: &AppState, org: &shrooms_core::orgs::Org, r: &TaxReceipt) -> R<Response> {
    let s = service::settings(&st.db, org.id).await.map_err(e)?;
    let colour = org.color_primary.clone().unwrap_or_else(|| "#2f5d8a".into());
    let body = donations::receipt_pdf(r, &s, &org.name, &colour);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"recu-fiscal-{}.pdf\"", r.reference)),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/sepa/creditor", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = Creditor), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem, description = "No creditor yet, or no such organisation")))]
async fn get_creditor(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Creditor>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(debits::creditor(&st.db, cap.org()).await.map_err(e)?.ok_or(CoreError::NotFound)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/sepa/creditor", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = Creditor,
    responses((status = 200, body = Creditor), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "IBAN, BIC or creditor identifier not valid")))]
async fn put_creditor(State(st): State<AppState>, ctx: OrgCtx, ApiJson(c): ApiJson<Creditor>) -> R<Json<Creditor>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(debits::save_creditor(&st.db, &ctx.who(), &cap, c).await.map_err(e)?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PersonQuery {
    pub person_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/sepa/mandates", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), PersonQuery),
    responses((status = 200, body = [Mandate]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_mandates(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<PersonQuery>,
) -> R<Json<Vec<Mandate>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(debits::mandates(&st.db, &cap, q.person_id.as_deref()).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/sepa/mandates", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = MandateInput,
    responses((status = 201, body = Mandate), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Another mandate has this reference"),
        (status = 422, body = Problem, description = "IBAN checksum, BIC, missing signature date, unknown person")))]
async fn create_mandate(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<MandateInput>,
) -> R<(StatusCode, Json<Mandate>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((
        StatusCode::CREATED,
        Json(
            debits::create_mandate(&st.db, &st.data_key, &ctx.who(), &cap, &ctx.org.timezone, input)
                .await
                .map_err(e)?,
        ),
    ))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/sepa/mandates/{id}/revoke", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Mandate), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke_mandate(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Mandate>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(debits::revoke_mandate(&st.db, &ctx.who(), &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/sepa/batches", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [Batch], description = "Newest first, without their debits"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_batches(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Batch>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(debits::batches(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/sepa/batches", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = CollectionInput,
    responses((status = 201, body = Batch, description = "Dues recorded, the pain.008 file made, pre-notifications queued"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "No creditor yet, or the books are not opened"),
        (status = 422, body = Problem, description = "Errors name the item: `items[2].person_id` (no active mandate)")))]
async fn create_batch(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<CollectionInput>,
) -> R<(StatusCode, Json<Batch>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((
        StatusCode::CREATED,
        Json(debits::create_batch(&st, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/sepa/batches/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Batch), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_batch(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Json<Batch>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(debits::batch(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/sepa/batches/{id}/xml", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The pain.008.001.08 file", content_type = "application/xml"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn batch_xml(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let (name, xml) = debits::batch_xml(&st.db, &cap, &id).await.map_err(e)?;
    Ok(xml_download(&name, xml))
}

pub fn xml_download(name: &str, xml: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.xml\"")),
        ],
        xml,
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/sepa/returns", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = ReturnsInput,
    responses((status = 200, body = ReturnsReport, description = "Matching debits returned: dues unpaid, entries reversed"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "The file could not be read; nothing changed")))]
async fn import_returns(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<ReturnsInput>,
) -> R<Json<ReturnsReport>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(debits::import_returns(&st, &ctx.who(), &cap, &ctx.org.timezone, input).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/directory/export.csv", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), MemberFilter),
    responses((status = 200, description = "The filtered list as CSV", content_type = "text/csv"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn export_csv(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(f): ApiQuery<MemberFilter>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let body = service::export(&st.db, &cap, &ctx.org.timezone, &f, false).await.map_err(e)?;
    Ok(file_download("members.csv", "text/csv; charset=utf-8", body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/directory/export.ods", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), MemberFilter),
    responses((status = 200, description = "The filtered list as an OpenDocument spreadsheet", content_type = "application/vnd.oasis.opendocument.spreadsheet"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn export_ods(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(f): ApiQuery<MemberFilter>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let body = service::export(&st.db, &cap, &ctx.org.timezone, &f, true).await.map_err(e)?;
    Ok(file_download("members.ods", "application/vnd.oasis.opendocument.spreadsheet", body))
}

pub fn file_download(name: &str, content_type: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_settings, put_settings, list_types, create_type, get_type, patch_type, directory, membership, put_profile,
        join, renew, close_period, renew_many, apply_type, list_households, create_household, get_household,
        link_household, unlink_household, list_dues, record_due, record_dues, get_due, list_donations,
        record_donation, issue_receipt, list_gift_plans, create_gift_plan, stop_gift_plan, receive_gift, list_receipts, receipt_batch, receipt_totals, get_receipt, receipt_pdf,
        get_creditor, put_creditor, list_mandates, create_mandate, revoke_mandate, list_batches, create_batch, get_batch,
        batch_xml, import_returns, export_csv, export_ods
    ),
    components(schemas(
        Settings, MembershipType, TypeInput, Tier, MemberRow, Membership, MemberPerson, Address, HouseholdRef,
        StandingView, Period, JoinInput, RenewInput, CloseInput, BulkRenew, ApplyType, Household, HouseholdMember,
        HouseholdInput, HouseholdLink, ProfileInput, Due, DueInput, BulkDues, Donation, DonationInput, GiftPlan, GiftPlanInput,
        ReceiveInput, ReceivedGift, TaxReceipt, Donor,
        YearBatch, BatchReport, YearTotals, Creditor, Mandate, MandateInput, Batch, DebitView, CollectionInput,
        CollectionItem, ReturnsInput, ReturnsReport, Problem
    )),
    tags((name = "members", description = "Members and dues: membership types, periods, households, dues"))
)]
pub struct MembersApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/members";
    Router::new()
        .route(&format!("{base}/settings"), get(get_settings).put(put_settings))
        .route(&format!("{base}/types"), get(list_types).post(create_type))
        .route(&format!("{base}/types/{{id}}"), get(get_type).patch(patch_type))
        .route(&format!("{base}/directory"), get(directory))
        .route(&format!("{base}/directory/export.csv"), get(export_csv))
        .route(&format!("{base}/directory/export.ods"), get(export_ods))
        .route(&format!("{base}/people/{{person}}"), get(membership))
        .route(&format!("{base}/people/{{person}}/profile"), axum::routing::put(put_profile))
        .route(&format!("{base}/people/{{person}}/periods"), post(join))
        .route(&format!("{base}/people/{{person}}/renewals"), post(renew))
        .route(&format!("{base}/periods/{{id}}/close"), post(close_period))
        .route(&format!("{base}/renewals"), post(renew_many))
        .route(&format!("{base}/apply-type"), post(apply_type))
        .route(&format!("{base}/households"), get(list_households).post(create_household))
        .route(&format!("{base}/households/{{id}}"), get(get_household))
        .route(&format!("{base}/households/{{id}}/members"), post(link_household))
        .route(&format!("{base}/households/{{id}}/members/{{person}}"), delete(unlink_household))
        .route(&format!("{base}/dues"), get(list_dues).post(record_due))
        .route(&format!("{base}/dues/bulk"), post(record_dues))
        .route(&format!("{base}/dues/{{id}}"), get(get_due))
        .route(&format!("{base}/donations"), get(list_donations).post(record_donation))
        .route(&format!("{base}/donations/{{id}}/tax-receipt"), post(issue_receipt))
        .route(&format!("{base}/gift-plans"), get(list_gift_plans).post(create_gift_plan))
        .route(&format!("{base}/gift-plans/{{id}}/stop"), post(stop_gift_plan))
        .route(&format!("{base}/gift-plans/{{id}}/receive"), post(receive_gift))
        .route(&format!("{base}/tax-receipts"), get(list_receipts))
        .route(&format!("{base}/tax-receipts/batch"), post(receipt_batch))
        .route(&format!("{base}/tax-receipts/totals"), get(receipt_totals))
        .route(&format!("{base}/tax-receipts/{{id}}"), get(get_receipt))
        .route(&format!("{base}/tax-receipts/{{id}}/pdf"), get(receipt_pdf))
        .route(&format!("{base}/sepa/creditor"), get(get_creditor).put(put_creditor))
        .route(&format!("{base}/sepa/mandates"), get(list_mandates).post(create_mandate))
        .route(&format!("{base}/sepa/mandates/{{id}}/revoke"), post(revoke_mandate))
        .route(&format!("{base}/sepa/batches"), get(list_batches).post(create_batch))
        .route(&format!("{base}/sepa/batches/{{id}}"), get(get_batch))
        .route(&format!("{base}/sepa/batches/{{id}}/xml"), get(batch_xml))
        .route(&format!("{base}/sepa/returns"), post(import_returns))
}
