//! JSON API of settings, VAT rates, catalogue, customers, numbering series
//! and documents (quotes, invoices, credit notes): thin handlers over the
//! services, each with its OpenAPI annotation.

use crate::billing::{
    self, BillingRun, NewBillingRun, NewPendingItem, PendingItem, PendingQuery, Subscription, SubscriptionInput,
};
use crate::catalogue::{self, NewVatRate, Product, ProductInput, Settings, SettingsInput, VatRate};
use crate::customers::{self, Customer, CustomerInput, CustomerPage, CustomerQuery};
use crate::documents::{self, CreditNoteInput, Document, DocumentInput, DocumentPage, DocumentQuery};
use crate::documents_send::SendInput;
use crate::numbering::{self, NewSeries, Series};
use crate::{render, MODULE};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shrooms_core::error::{CoreResult, Problem};
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::OpenApi;

type R<T> = CoreResult<T>;

/// A body read as JSON first, so that a record of another organisation is
/// "not found" before its body is checked.
fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> R<T> {
    serde_json::from_value(v).map_err(|err| shrooms_core::error::CoreError::validation("body", &err.to_string()))
}

/// Seeds the organisation's settings, VAT rates and series on first use.
pub(crate) async fn setup(st: &AppState, ctx: &OrgCtx) -> R<()> {
    catalogue::ensure_setup(&st.db, ctx.org.id, &ctx.org.name, &ctx.org.currency).await
}

// ---------- settings ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/settings", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name")),
    responses((status = 200, body = Settings), (status = 404, body = Problem)))]
async fn get_settings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Settings>> {
    let cap = ctx.can_read(MODULE)?;
    setup(&st, &ctx).await?;
    Ok(Json(catalogue::get_settings(&st.db, &cap).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/invoicing/settings", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SettingsInput,
    responses((status = 200, body = Settings), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_settings(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SettingsInput>,
) -> R<Json<Settings>> {
    let cap = ctx.can_admin(MODULE)?;
    setup(&st, &ctx).await?;
    Ok(Json(catalogue::update_settings(&st.db, &ctx.who(), &cap, input).await?))
}

// ---------- VAT rates ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/vat-rates", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [VatRate]), (status = 404, body = Problem)))]
async fn list_vat_rates(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<VatRate>>> {
    let cap = ctx.can_read(MODULE)?;
    setup(&st, &ctx).await?;
    Ok(Json(catalogue::list_vat_rates(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/vat-rates", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewVatRate,
    responses((status = 201, body = VatRate, description = "The new rate; the code's previous rate now ends the day before"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_vat_rate(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewVatRate>,
) -> R<(StatusCode, Json<VatRate>)> {
    let cap = ctx.can_admin(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(catalogue::add_vat_rate(&st.db, &ctx.who(), &cap, input).await?)))
}

// ---------- products ----------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProductQuery {
    /// Include archived products.
    archived: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/products", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ProductQuery), responses((status = 200, body = [Product]), (status = 404, body = Problem)))]
async fn list_products(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> R<Json<Vec<Product>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(catalogue::list_products(&st.db, &cap, q.archived.unwrap_or(false)).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/products", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = ProductInput,
    responses((status = 201, body = Product), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_product(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<ProductInput>,
) -> R<(StatusCode, Json<Product>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(catalogue::create_product(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/products/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Product), (status = 404, body = Problem)))]
async fn get_product(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Product>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(catalogue::get_product(&st.db, &cap, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/products/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = ProductInput,
    responses((status = 200, body = Product), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_product(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Product>> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    catalogue::get_product(&st.db, &cap.as_read(), &id).await?;
    let input: ProductInput = parse(input)?;
    Ok(Json(catalogue::update_product(&st.db, &ctx.who(), &cap, &id, input).await?))
}

// ---------- customers ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/customers", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), CustomerQuery), responses((status = 200, body = CustomerPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_customers(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> R<Json<CustomerPage>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(customers::list(&st.db, &cap, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/customers", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = CustomerInput,
    responses((status = 201, body = Customer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_customer(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<CustomerInput>,
) -> R<(StatusCode, Json<Customer>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(customers::create(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/customers/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Customer), (status = 404, body = Problem)))]
async fn get_customer(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Customer>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(customers::get(&st.db, &cap, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/customers/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = CustomerInput,
    responses((status = 200, body = Customer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_customer(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Customer>> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    customers::get(&st.db, &cap.as_read(), &id).await?;
    let input: CustomerInput = parse(input)?;
    Ok(Json(customers::update(&st.db, &ctx.who(), &cap, &id, input).await?))
}

// ---------- series ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/series", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [Series]), (status = 404, body = Problem)))]
async fn list_series(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Series>>> {
    let cap = ctx.can_read(MODULE)?;
    setup(&st, &ctx).await?;
    Ok(Json(numbering::list(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/series", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewSeries,
    responses((status = 201, body = Series), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_series(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewSeries>,
) -> R<(StatusCode, Json<Series>)> {
    let cap = ctx.can_admin(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(numbering::create(&st.db, &ctx.who(), &cap, input).await?)))
}

// ---------- documents ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), DocumentQuery),
    responses((status = 200, body = DocumentPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_documents(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<DocumentQuery>,
) -> R<Json<DocumentPage>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(documents::list(&st.db, &cap, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = DocumentInput,
    responses((status = 201, body = Document, description = "A draft quote or invoice"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<DocumentInput>,
) -> R<(StatusCode, Json<Document>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(documents::create(&st.db, &ctx.who(), &cap, &ctx.org.slug, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Document), (status = 404, body = Problem)))]
async fn get_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Document>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(documents::get(&st.db, &cap, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/documents/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = DocumentInput,
    responses((status = 200, body = Document), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The document is validated: it cannot change"), (status = 422, body = Problem)))]
async fn update_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Document>> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    documents::get(&st.db, &cap.as_read(), &id).await?;
    let input: DocumentInput = parse(input)?;
    Ok(Json(documents::update(&st.db, &ctx.who(), &cap, &ctx.org.slug, &id, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/invoicing/documents/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "The draft is deleted"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Only drafts are deleted")))]
async fn delete_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    documents::delete(&st.db, &ctx.who(), &cap, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/validate", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Document, description = "Numbered, frozen and (invoices, credit notes) posted to the ledger"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Not a draft, or the books are not opened"),
        (status = 422, body = Problem, description = "A legal field is missing (`seller.siren`, `buyer.address`…) or the ledger refuses the entry (`ledger.date`)")))]
async fn validate_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Document>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(documents::validate(&st, &ctx.who(), &cap, &ctx.org.slug, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/accept", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Document), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "Not a sent quote")))]
async fn accept_quote(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Document>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(documents::accept(&st, &ctx.who(), &cap, &ctx.org.slug, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/refuse", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Document), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "Not a sent quote")))]
async fn refuse_quote(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Document>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(documents::refuse(&st, &ctx.who(), &cap, &ctx.org.slug, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/convert", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 201, body = Document, description = "The draft invoice made from the quote"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Not an accepted quote")))]
async fn convert_quote(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<(StatusCode, Json<Document>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(documents::convert(&st, &ctx.who(), &cap, &ctx.org.slug, &id).await?)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/credit-notes", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "The validated invoice to credit")), request_body = CreditNoteInput,
    responses((status = 201, body = Document, description = "A draft credit note; validate it to post it"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Not a validated invoice"), (status = 422, body = Problem)))]
async fn create_credit_note(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<(StatusCode, Json<Document>)> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    documents::get(&st.db, &cap.as_read(), &id).await?;
    let input: CreditNoteInput = parse(input)?;
    Ok((StatusCode::CREATED, Json(documents::credit_note(&st, &ctx.who(), &cap, &ctx.org.slug, &id, input).await?)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/send", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = SendInput,
    responses((status = 200, body = Document, description = "Queued in the outbox; an invoice becomes `sent`"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "A draft is not sent"), (status = 422, body = Problem)))]
async fn send_document(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Document>> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    documents::get(&st.db, &cap.as_read(), &id).await?;
    let input: SendInput = parse(input)?;
    Ok(Json(crate::documents_send::send(&st, &ctx.who(), &cap, &ctx.org, &id, input).await?))
}

// ---------- pending items, subscriptions, billing runs ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/pending-items", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), PendingQuery), responses((status = 200, body = [PendingItem]), (status = 404, body = Problem)))]
async fn list_pending(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<PendingQuery>,
) -> R<Json<Vec<PendingItem>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(billing::list_pending(&st.db, &cap, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/pending-items", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewPendingItem,
    responses((status = 201, body = PendingItem, description = "Billed at the next run; the same source_module + source_ref returns the item already there"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn add_pending(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewPendingItem>,
) -> R<(StatusCode, Json<PendingItem>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(billing::add_pending(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/subscriptions", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [Subscription]), (status = 404, body = Problem)))]
async fn list_subscriptions(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Subscription>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(billing::list_subscriptions(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/subscriptions", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SubscriptionInput,
    responses((status = 201, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_subscription(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> R<(StatusCode, Json<Subscription>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::CREATED, Json(billing::create_subscription(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/subscriptions/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Subscription), (status = 404, body = Problem)))]
async fn get_subscription(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Subscription>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(billing::get_subscription(&st.db, &cap, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/subscriptions/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = SubscriptionInput,
    responses((status = 200, body = Subscription), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Billed periods fix the anchor and frequency"), (status = 422, body = Problem)))]
async fn update_subscription(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Subscription>> {
    let cap = ctx.can_write(MODULE)?;
    // The record first: another organisation's id is 404 whatever the body.
    billing::get_subscription(&st.db, &cap.as_read(), &id).await?;
    let input: SubscriptionInput = parse(input)?;
    Ok(Json(billing::update_subscription(&st.db, &ctx.who(), &cap, &id, input).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/billing-runs", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [BillingRun]), (status = 404, body = Problem)))]
async fn list_runs(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<BillingRun>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(billing::list_runs(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/billing-runs", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewBillingRun,
    responses((status = 202, body = BillingRun, description = "Queued: follow its progress with GET"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Another run is in progress"), (status = 422, body = Problem)))]
async fn start_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewBillingRun>,
) -> R<(StatusCode, Json<BillingRun>)> {
    let cap = ctx.can_write(MODULE)?;
    setup(&st, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(billing::start_run(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/billing-runs/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = BillingRun), (status = 404, body = Problem)))]
async fn get_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<BillingRun>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(billing::get_run(&st.db, &cap, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/billing-runs/{id}/cancel", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = BillingRun, description = "Stops after the chunk being billed"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<BillingRun>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(billing::cancel_run(&st.db, &ctx.who(), &cap, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/billing-runs/{id}/resume", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = BillingRun, description = "Continues where it stopped"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn resume_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<BillingRun>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(billing::resume_run(&st.db, &ctx.who(), &cap, &id).await?))
}

fn download(name: &str, content_type: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/pdf", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Invoices and credit notes: Factur-X (PDF/A-3 with factur-x.xml); quotes: a plain PDF", content_type = "application/pdf"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "A draft has no PDF")))]
async fn document_pdf(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let (name, body) = crate::documents_files::pdf(&st, &cap, &ctx.org, &id).await?;
    Ok(download(&name, "application/pdf", body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/facturx.xml", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The Factur-X (EN 16931) Cross Industry Invoice XML", content_type = "application/xml"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "A draft or a quote has no e-invoice")))]
async fn document_facturx(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let (name, body) = render::render(&st, &cap, &ctx.org, &id, render::Format::FacturX).await?;
    Ok(download(&name, "application/xml", body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/ubl.xml", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The UBL 2.1 Invoice or CreditNote", content_type = "application/xml"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "A draft or a quote has no e-invoice")))]
async fn document_ubl(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let (name, body) = render::render(&st, &cap, &ctx.org, &id, render::Format::Ubl).await?;
    Ok(download(&name, "application/xml", body))
}

#[derive(OpenApi)]
#[openapi(paths(
    get_settings,
    patch_settings,
    list_vat_rates,
    add_vat_rate,
    list_products,
    create_product,
    get_product,
    update_product,
    list_customers,
    create_customer,
    get_customer,
    update_customer,
    list_series,
    create_series,
    list_documents,
    create_document,
    get_document,
    update_document,
    delete_document,
    validate_document,
    accept_quote,
    refuse_quote,
    convert_quote,
    create_credit_note,
    send_document,
    document_pdf,
    document_facturx,
    document_ubl,
    list_pending,
    add_pending,
    list_subscriptions,
    create_subscription,
    get_subscription,
    update_subscription,
    list_runs,
    start_run,
    get_run,
    cancel_run,
    resume_run
))]
pub struct DocsApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/invoicing";
    Router::new()
        .route(&format!("{base}/settings"), get(get_settings).patch(patch_settings))
        .route(&format!("{base}/vat-rates"), get(list_vat_rates).post(add_vat_rate))
        .route(&format!("{base}/products"), get(list_products).post(create_product))
        .route(&format!("{base}/products/{{id}}"), get(get_product).put(update_product))
        .route(&format!("{base}/customers"), get(list_customers).post(create_customer))
        .route(&format!("{base}/customers/{{id}}"), get(get_customer).put(update_customer))
        .route(&format!("{base}/series"), get(list_series).post(create_series))
        .route(&format!("{base}/documents"), get(list_documents).post(create_document))
        .route(&format!("{base}/documents/{{id}}"), get(get_document).put(update_document).delete(delete_document))
        .route(&format!("{base}/documents/{{id}}/validate"), post(validate_document))
        .route(&format!("{base}/documents/{{id}}/accept"), post(accept_quote))
        .route(&format!("{base}/documents/{{id}}/refuse"), post(refuse_quote))
        .route(&format!("{base}/documents/{{id}}/convert"), post(convert_quote))
        .route(&format!("{base}/documents/{{id}}/credit-notes"), post(create_credit_note))
        .route(&format!("{base}/documents/{{id}}/send"), post(send_document))
        .route(&format!("{base}/documents/{{id}}/pdf"), get(document_pdf))
        .route(&format!("{base}/documents/{{id}}/facturx.xml"), get(document_facturx))
        .route(&format!("{base}/documents/{{id}}/ubl.xml"), get(document_ubl))
        .route(&format!("{base}/pending-items"), get(list_pending).post(add_pending))
        .route(&format!("{base}/subscriptions"), get(list_subscriptions).post(create_subscription))
        .route(&format!("{base}/subscriptions/{{id}}"), get(get_subscription).put(update_subscription))
        .route(&format!("{base}/billing-runs"), get(list_runs).post(start_run))
        .route(&format!("{base}/billing-runs/{{id}}"), get(get_run))
        .route(&format!("{base}/billing-runs/{{id}}/cancel"), post(cancel_run))
        .route(&format!("{base}/billing-runs/{{id}}/resume"), post(resume_run))
}
