//! JSON API of dues invoices, online payment links, renewal notices and
//! reminders (`/api/v1/orgs/{org}/members/…`).

use crate::billing::{self, DuesInvoice, InvoicePayment, InvoicePaymentInput};
use crate::error::MemError;
use crate::renewals::{self, LateMember, NewRenewalRun, Notice, RenewalRun, RenewalSettings};
use crate::service::{self, StandingView, MODULE};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::web::api::ApiJson;
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::{OpenApi, ToSchema};

type R<T> = CoreResult<T>;

fn e(err: MemError) -> CoreError {
    err.into()
}

/// A member's dues as the invoice path shows them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberDues {
    pub standing: StandingView,
    /// The dues invoices, newest first, each with its public pay page when
    /// something is due and online payment is set up.
    pub invoices: Vec<DuesInvoice>,
    /// Renewal notices and reminders sent, newest first.
    pub notices: Vec<Notice>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/people/{person}/dues", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name"), ("person" = String, Path)),
    responses((status = 200, body = MemberDues), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn member_dues(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, person)): Path<(String, String)>,
) -> R<Json<MemberDues>> {
    let cap = ctx.can_read(MODULE)?;
    let m = service::membership(&st.db, &cap, &ctx.org.timezone, &person).await.map_err(e)?;
    let invoices = billing::invoices_of(&st, cap.org(), &ctx.org.slug, &person, true).await.map_err(e)?;
    let notices = renewals::notices_of(&st.db, &cap, &person).await.map_err(e)?;
    Ok(Json(MemberDues { standing: m.standing, invoices, notices }))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/renewal-settings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = RenewalSettings), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_renewal_settings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<RenewalSettings>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(renewals::settings(&st.db, cap.org()).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/renewal-settings", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = RenewalSettings,
    responses((status = 200, body = RenewalSettings), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_renewal_settings(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(s): ApiJson<RenewalSettings>,
) -> R<Json<RenewalSettings>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(renewals::save_settings(&st.db, &ctx.who(), &cap, s).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/renewals/run", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = RenewalRun, description = "What the run sent (the daily schedule does the same)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Invoice path without the invoicing module, or invoicing not set up")))]
async fn run_renewals(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<RenewalRun>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(renewals::run(&st, &ctx.who(), &cap, None, "api").await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/renewals/runs", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewRenewalRun,
    responses((status = 202, body = RenewalRun, description = "Queued: follow its progress with GET"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Another run is in progress, or the invoice path without the invoicing module"),
        (status = 422, body = Problem)))]
async fn start_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewRenewalRun>,
) -> R<(StatusCode, Json<RenewalRun>)> {
    let cap = ctx.can_write(MODULE)?;
    let on = renewals::run_day(input.on.as_deref()).map_err(e)?;
    Ok((StatusCode::ACCEPTED, Json(renewals::start(&st, &ctx.who(), &cap, on, "api").await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/renewals/runs", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [RenewalRun], description = "The 50 latest runs, newest first"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_runs(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<RenewalRun>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(renewals::list_runs(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/renewals/runs/{id}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = RenewalRun, description = "The run, with its progress (`done` of `total`)"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<RenewalRun>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(renewals::get_run(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/renewals/runs/{id}/cancel", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = RenewalRun, description = "Cancelled, or stopping after the chunk it is writing"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The run has ended")))]
async fn cancel_run(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<RenewalRun>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(renewals::cancel_run(&st.db, &ctx.who(), &cap, &id).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/late", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)),
    responses((status = 200, body = [LateMember], description = "Who owes dues or lapsed after reminders, with the reminders sent"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn late(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<LateMember>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(renewals::late(&st.db, &cap, &ctx.org.timezone).await.map_err(e)?))
}

/// Several payments of dues invoices at once.
#[derive(Clone, Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInvoicePayments {
    pub items: Vec<InvoicePaymentInput>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/invoice-payments", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = InvoicePaymentInput,
    responses((status = 201, body = InvoicePayment, description = "Recorded by invoicing: allocated to the dues invoice, its ledger entry validated"),
        (status = 200, body = InvoicePayment, description = "The same request_key was already recorded: that payment, nothing new"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Dues are recorded as receipts (dues path), or the books are not opened"),
        (status = 422, body = Problem, description = "Unknown person or period, nothing left to pay, amount over what is left, cheque without its number, date in the future")))]
async fn record_invoice_payment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<InvoicePaymentInput>,
) -> R<(StatusCode, Json<InvoicePayment>)> {
    let cap = ctx.can_write(MODULE)?;
    let (mut out, created) =
        billing::record_invoice_payments(&st, &ctx.who(), &cap, &ctx.org.timezone, vec![input]).await.map_err(e)?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(out.remove(0))))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members/invoice-payments/bulk", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = BulkInvoicePayments,
    responses((status = 201, body = [InvoicePayment], description = "Every payment recorded, or none"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem, description = "Errors name the item: `items[2].amount_cents`")))]
async fn record_invoice_payments(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<BulkInvoicePayments>,
) -> R<(StatusCode, Json<Vec<InvoicePayment>>)> {
    let cap = ctx.can_write(MODULE)?;
    let (out, _) =
        billing::record_invoice_payments(&st, &ctx.who(), &cap, &ctx.org.timezone, input.items).await.map_err(e)?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        member_dues,
        get_renewal_settings,
        put_renewal_settings,
        run_renewals,
        start_run,
        list_runs,
        get_run,
        cancel_run,
        late,
        record_invoice_payment,
        record_invoice_payments
    ),
    components(schemas(
        MemberDues,
        DuesInvoice,
        Notice,
        RenewalSettings,
        RenewalRun,
        NewRenewalRun,
        LateMember,
        InvoicePaymentInput,
        InvoicePayment,
        BulkInvoicePayments,
        Problem
    ))
)]
pub struct BillingApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/members";
    Router::new()
        .route(&format!("{base}/people/{{person}}/dues"), get(member_dues))
        .route(&format!("{base}/renewal-settings"), get(get_renewal_settings).put(put_renewal_settings))
        .route(&format!("{base}/renewals/run"), post(run_renewals))
        .route(&format!("{base}/renewals/runs"), get(list_runs).post(start_run))
        .route(&format!("{base}/renewals/runs/{{id}}"), get(get_run))
        .route(&format!("{base}/renewals/runs/{{id}}/cancel"), post(cancel_run))
        .route(&format!("{base}/late"), get(late))
        .route(&format!("{base}/invoice-payments"), post(record_invoice_payment))
        .route(&format!("{base}/invoice-payments/bulk"), post(record_invoice_payments))
}
