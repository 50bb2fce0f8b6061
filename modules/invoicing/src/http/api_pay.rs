//! JSON API of payments, deposit slips, customer credit, online payment,
//! reminders, suspensions and reports: thin handlers over the services,
//! each with its OpenAPI annotation.

use crate::dunning::{self, OverdueInvoice, ReminderLevel, ReminderSent, RunReport, SentReminder};
use crate::payments::{
    self, Allocation, ApplyCredit, CustomerCredit, PaySettings, PaySettingsInput, Payment, PaymentFilter, PaymentInput,
};
use crate::payments_slips::{self, DepositSlip, SlipInput};
use crate::providers::{self, CheckoutSession, ProviderConfig, ProviderConfigInput, WebhookOutcome};
use crate::reports::{self, Ageing, PaymentsReceived, ReportParams, Revenue, Table, VatCollected};
use crate::suspensions::{self, Suspension, SuspensionFilter, SuspensionInput};
use crate::MODULE;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::people::ExportFormat;
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::{OpenApi, ToSchema};

type R<T> = CoreResult<T>;

// ---------- payments ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/payments", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name"), PaymentFilter),
    responses((status = 200, body = [Payment]), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_payments(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<PaymentFilter>,
) -> R<Json<Vec<Payment>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::list(&st.db, &cap, &f).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/payments", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = PaymentInput,
    responses((status = 201, body = Payment, description = "Recorded, allocated and posted to the ledger"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The books are not opened, or an invoice changed meanwhile"),
        (status = 422, body = Problem, description = "Bad input, or more than what is due without keep_credit")))]
async fn record_payment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<PaymentInput>,
) -> R<(StatusCode, Json<Payment>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(payments::record(&st, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/payments/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Payment), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_payment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Payment>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::get(&st.db, &cap, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/payments/{id}/cancel", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Payment, description = "Cancelled; its entry reversed"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already cancelled, deposited, or an online payment"), (status = 422, body = Problem)))]
async fn cancel_payment(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Payment>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(payments::cancel(&st, &ctx.who(), &cap, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/payment-settings", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = PaySettings), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_settings(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<PaySettings>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::settings(&st.db, &cap).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/payment-settings", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = PaySettingsInput,
    responses((status = 200, body = PaySettings), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_settings(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<PaySettingsInput>,
) -> R<Json<PaySettings>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(payments::update_settings(&st.db, &ctx.who(), &cap, input).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/payments", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = [Allocation], description = "What was allocated to the invoice"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn invoice_payments(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Vec<Allocation>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::of_invoice(&st.db, &cap, &id).await?))
}

// ---------- customer credit ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/credits", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [CustomerCredit], description = "Customers with a credit"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_credits(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<CustomerCredit>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::credits(&st.db, &cap).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/customers/{id}/credit", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = CustomerCredit), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_credit(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<CustomerCredit>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments::credit(&st.db, &cap, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/customers/{id}/credit/apply", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Customer id")), request_body = ApplyCredit,
    responses((status = 200, body = CustomerCredit, description = "The credit left"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "No credit"), (status = 422, body = Problem)))]
async fn apply_credit(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<CustomerCredit>> {
    let cap = ctx.can_write(MODULE)?;
    // The customer first: another organisation's id is 404 whatever the body.
    payments::credit(&st.db, &cap.as_read(), &id).await?;
    let input: ApplyCredit =
        serde_json::from_value(input).map_err(|err| CoreError::validation("body", &err.to_string()))?;
    Ok(Json(payments::apply_credit(&st, &ctx.who(), &cap, &id, input).await?))
}

// ---------- deposit slips ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/deposit-slips", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [DepositSlip]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_slips(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<DepositSlip>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments_slips::list(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/deposit-slips", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SlipInput,
    responses((status = 201, body = DepositSlip, description = "Made and posted (bank ← cheques to deposit)"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_slip(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SlipInput>,
) -> R<(StatusCode, Json<DepositSlip>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(payments_slips::create(&st.db, &ctx.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/deposit-slips/{id}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DepositSlip), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_slip(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<DepositSlip>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(payments_slips::get(&st.db, &cap, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/deposit-slips/{id}/pdf", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The slip to hand to the bank", content_type = "application/pdf"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn slip_pdf(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let slip = payments_slips::get(&st.db, &cap, &id).await?;
    let lang = ctx.actor.account.lang.clone().unwrap_or_else(|| "fr".into());
    let colour = ctx.org.color_primary.clone().unwrap_or_else(|| "#2F5D50".into());
    let body = payments_slips::pdf(&slip, &ctx.org.name, &colour, &lang);
    Ok(shrooms_core::web::api::download(&format!("remise-{}", slip.number), ExportFormat::Pdf, body))
}

// ---------- online payment ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/providers/{provider}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("provider" = String, Path, description = "`stripe`")),
    responses((status = 200, body = ProviderConfig, description = "Secrets are never shown, only whether they are set"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_provider(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, p)): Path<(String, String)>,
) -> R<Json<ProviderConfig>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(providers::config(&st, &cap.as_write().as_read(), &p, &ctx.org.slug).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/providers/{provider}", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("provider" = String, Path, description = "`stripe`")), request_body = ProviderConfigInput,
    responses((status = 200, body = ProviderConfig), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_provider(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, p)): Path<(String, String)>,
    ApiJson(input): ApiJson<ProviderConfigInput>,
) -> R<Json<ProviderConfig>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(providers::set_config(&st, &ctx.who(), &cap, &p, &ctx.org.slug, input).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    /// `stripe` (the default).
    #[serde(default)]
    pub provider: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/checkout", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Invoice id")), request_body = CheckoutInput,
    responses((status = 201, body = CheckoutSession, description = "A hosted payment page for the amount due"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Nothing due, no provider set up, or the provider refused"), (status = 422, body = Problem)))]
async fn create_checkout(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<CheckoutInput>,
) -> R<(StatusCode, Json<CheckoutSession>)> {
    let cap = ctx.can_write(MODULE)?;
    let token = providers::pay_link(&st, cap.org(), &id).await?;
    let back = format!("{}{}", st.cfg.base_url(), crate::providers::pay_path(&ctx.org.slug, &token));
    let p = input.provider.unwrap_or_else(|| "stripe".into());
    let s = providers::create_checkout(&st, &ctx.who(), cap.org(), &p, &id, &back).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[derive(Serialize, ToSchema)]
pub struct PayLink {
    /// The public page where the customer pays online, from the site root.
    pub path: String,
    pub url: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/pay-link", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = PayLink, description = "The invoice's \"pay online\" link (made once, then the same)"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "The invoice is a draft")))]
async fn pay_link(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Json<PayLink>> {
    let cap = ctx.can_write(MODULE)?;
    let token = providers::pay_link(&st, cap.org(), &id).await?;
    let path = crate::providers::pay_path(&ctx.org.slug, &token);
    Ok(Json(PayLink { url: format!("{}{path}", st.cfg.base_url()), path }))
}

#[utoipa::path(post, path = "/api/v1/hooks/invoicing/stripe/{org}", tag = "invoicing (public)",
    params(("org" = String, Path, description = "Organisation id or URL name"), ("Stripe-Signature" = String, Header, description = "t=<unix time>,v1=<HMAC-SHA256>")),
    request_body(content = Object, description = "A Stripe event, as Stripe sends it", content_type = "application/json"),
    responses((status = 200, body = WebhookOutcome, description = "Acknowledged: acted upon once, or a replay (outcome `duplicate`)"),
        (status = 400, body = Problem, description = "Bad or missing signature, too old, or unreadable"),
        (status = 404, body = Problem, description = "No such organisation, or Stripe is not set up for it"),
        (status = 409, body = Problem, description = "Could not be posted (books not opened): Stripe retries later"),
        (status = 422, body = Problem)))]
async fn stripe_webhook(
    State(st): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> R<Json<WebhookOutcome>> {
    // Unsigned is refused before anything is looked up.
    if !headers.contains_key("stripe-signature") {
        return Err(CoreError::BadRequest("The Stripe-Signature header is missing.".into()));
    }
    Ok(Json(providers::handle_webhook(&st, "stripe", &org, &headers, &body).await?))
}

// ---------- reminders ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reminder-levels", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [ReminderLevel]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_levels(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<ReminderLevel>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(dunning::levels(&st.db, &cap).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelsInput {
    /// Every level, in order; an empty list stops reminders.
    pub levels: Vec<ReminderLevel>,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/invoicing/reminder-levels", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = LevelsInput,
    responses((status = 200, body = [ReminderLevel], description = "The levels, replaced; an empty list stops reminders"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_levels(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<LevelsInput>,
) -> R<Json<Vec<ReminderLevel>>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(dunning::set_levels(&st.db, &ctx.who(), &cap, input.levels).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// Send what is due on this day (`YYYY-MM-DD`); today when left out.
    #[serde(default)]
    pub as_of: Option<String>,
}

fn day_or_today(v: Option<&str>, field: &str) -> R<Day> {
    match v.map(str::trim) {
        None | Some("") => Ok(Day::today()),
        Some(d) => Day::parse(d).map_err(|m| CoreError::validation(field, m)),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/reminders/run", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = RunInput,
    responses((status = 200, body = RunReport, description = "What the daily run sends, now"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn run_reminders(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<RunInput>,
) -> R<Json<RunReport>> {
    let cap = ctx.can_write(MODULE)?;
    let as_of = day_or_today(input.as_of.as_deref(), "as_of")?;
    Ok(Json(dunning::run(&st, &ctx.who(), cap.org(), as_of).await?))
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// The day overdue is counted to; today when left out.
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reminders/overdue", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), BoardQuery),
    responses((status = 200, body = [OverdueInvoice], description = "Overdue invoices, highest reminder level first"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn overdue(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> R<Json<Vec<OverdueInvoice>>> {
    let cap = ctx.can_read(MODULE)?;
    let as_of = day_or_today(q.as_of.as_deref(), "as_of")?;
    Ok(Json(dunning::board(&st.db, &cap, as_of).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/remind", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = SentReminder, description = "The next level, sent now"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Nothing overdue on it, or no levels configured")))]
async fn remind(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<SentReminder>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(dunning::remind_now(&st, &ctx.who(), &cap, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/documents/{id}/reminders", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path, description = "Invoice id")),
    responses((status = 200, body = [ReminderSent]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn reminders_of(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Vec<ReminderSent>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(dunning::history(&st.db, &cap, &id).await?))
}

// ---------- suspensions ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/suspensions", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), SuspensionFilter),
    responses((status = 200, body = [Suspension]), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_suspensions(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<SuspensionFilter>,
) -> R<Json<Vec<Suspension>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(suspensions::list(&st.db, &cap, &f).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invoicing/suspensions", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SuspensionInput,
    responses((status = 201, body = Suspension, description = "Registered (or the same one again); lifted at once if the invoice is already paid"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn register_suspension(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SuspensionInput>,
) -> R<(StatusCode, Json<Suspension>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(suspensions::register(&st, &ctx.who(), &cap, input).await?)))
}

// ---------- reports ----------

/// A report as JSON, or as a CSV or ODS download.
fn answer<T: Serialize>(format: Option<&str>, slug: &str, data: &T, table: impl FnOnce() -> Table) -> R<Response> {
    match format.unwrap_or("json") {
        "json" => Ok(Json(serde_json::to_value(data).map_err(|e| CoreError::Internal(e.to_string()))?).into_response()),
        f @ ("csv" | "ods") => {
            let t = table();
            let body = shrooms_core::people::table_file(f == "ods", t.name, &t.header, &t.rows);
            let fmt = if f == "ods" { ExportFormat::Ods } else { ExportFormat::Csv };
            Ok(shrooms_core::web::api::download(&format!("{}-{slug}", t.name), fmt, body))
        }
        _ => Err(CoreError::validation("format", "Choose json, csv or ods.")),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reports/ageing", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams),
    responses((status = 200, description = "JSON, or CSV / ODS with `format`", content((Ageing = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"))), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn report_ageing(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let r = reports::ageing(&st.db, &cap, p.as_of()?).await?;
    answer(p.format.as_deref(), &ctx.org.slug, &r, || reports::ageing_table(&r))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reports/revenue", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams),
    responses((status = 200, description = "JSON, or CSV / ODS with `format`", content((Revenue = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"))), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn report_revenue(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let r = reports::revenue(&st.db, &cap, &p.period()?).await?;
    answer(p.format.as_deref(), &ctx.org.slug, &r, || reports::revenue_table(&r))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reports/payments", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams),
    responses((status = 200, description = "JSON, or CSV / ODS with `format`", content((PaymentsReceived = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"))), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn report_payments(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let r = reports::payments_received(&st.db, &cap, &p.period()?).await?;
    answer(p.format.as_deref(), &ctx.org.slug, &r, || reports::payments_table(&r))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invoicing/reports/vat", tag = "invoicing", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams),
    responses((status = 200, description = "JSON, or CSV / ODS with `format`", content((VatCollected = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"))), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn report_vat(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let r = reports::vat_collected(&st.db, &cap, &p.period()?).await?;
    answer(p.format.as_deref(), &ctx.org.slug, &r, || reports::vat_table(&r))
}

#[derive(OpenApi)]
#[openapi(paths(
    list_payments,
    record_payment,
    get_payment,
    cancel_payment,
    get_settings,
    put_settings,
    invoice_payments,
    list_credits,
    get_credit,
    apply_credit,
    list_slips,
    create_slip,
    get_slip,
    slip_pdf,
    get_provider,
    put_provider,
    create_checkout,
    pay_link,
    stripe_webhook,
    get_levels,
    put_levels,
    run_reminders,
    overdue,
    remind,
    reminders_of,
    list_suspensions,
    register_suspension,
    report_ageing,
    report_revenue,
    report_payments,
    report_vat
))]
pub struct PaymentsApi;

pub fn router() -> Router<AppState> {
    let b = "/api/v1/orgs/{org}/invoicing";
    Router::new()
        .route(&format!("{b}/payments"), get(list_payments).post(record_payment))
        .route(&format!("{b}/payments/{{id}}"), get(get_payment))
        .route(&format!("{b}/payments/{{id}}/cancel"), post(cancel_payment))
        .route(&format!("{b}/payment-settings"), get(get_settings).put(put_settings))
        .route(&format!("{b}/documents/{{id}}/payments"), get(invoice_payments))
        .route(&format!("{b}/credits"), get(list_credits))
        .route(&format!("{b}/customers/{{id}}/credit"), get(get_credit))
        .route(&format!("{b}/customers/{{id}}/credit/apply"), post(apply_credit))
        .route(&format!("{b}/deposit-slips"), get(list_slips).post(create_slip))
        .route(&format!("{b}/deposit-slips/{{id}}"), get(get_slip))
        .route(&format!("{b}/deposit-slips/{{id}}/pdf"), get(slip_pdf))
        .route(&format!("{b}/providers/{{provider}}"), get(get_provider).put(put_provider))
        .route(&format!("{b}/documents/{{id}}/checkout"), post(create_checkout))
        .route(&format!("{b}/documents/{{id}}/pay-link"), post(pay_link))
        .route(&format!("{b}/documents/{{id}}/remind"), post(remind))
        .route(&format!("{b}/documents/{{id}}/reminders"), get(reminders_of))
        .route(&format!("{b}/reminder-levels"), get(get_levels).put(put_levels))
        .route(&format!("{b}/reminders/run"), post(run_reminders))
        .route(&format!("{b}/reminders/overdue"), get(overdue))
        .route(&format!("{b}/suspensions"), get(list_suspensions).post(register_suspension))
        .route(&format!("{b}/reports/ageing"), get(report_ageing))
        .route(&format!("{b}/reports/revenue"), get(report_revenue))
        .route(&format!("{b}/reports/payments"), get(report_payments))
        .route(&format!("{b}/reports/vat"), get(report_vat))
        .route("/api/v1/hooks/invoicing/stripe/{org}", post(stripe_webhook))
}
