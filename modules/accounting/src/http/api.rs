//! JSON API of the ledger: thin handlers over the service, each with its
//! OpenAPI annotation.

use crate::bank::{
    self, BankAccount, BankAccountInput, EntryFromLine, MatchInput, Reconciliation, ReconciliationQuery,
    StatementImport, StatementImportReport,
};
use crate::budget::{self, BudgetInput, BudgetLine};
use crate::deferral::{self, Deferral, DeferralInput};
use crate::domain::{Amount, Day};
use crate::error::AcctError;
use crate::fec;
use crate::lettering::{self, AccountLettering, LetterInput, Lettering, LetteringQuery};
use crate::repo::FiscalYear;
use crate::reports::{self, ReportParams, Table};
use crate::service::{
    self, Account, AccountInput, AccountPatch, Books, Closing, Entry, EntryFilter, EntryInput, NewYear, OpenBooks,
    ReverseInput, SimpleInput, MODULE,
};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use shrooms_core::error::{CoreError, CoreResult, Problem};
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::{AppState, OrgCtx};
use utoipa::{OpenApi, ToSchema};

type R<T> = CoreResult<T>;

fn e(err: AcctError) -> CoreError {
    err.into()
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/books", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id or URL name")),
    responses((status = 200, body = Books), (status = 404, body = Problem), (status = 409, body = Problem, description = "Books not opened yet")))]
async fn get_books(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Books>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::books(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/books", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = OpenBooks,
    responses((status = 201, body = Books), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn open_books(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(mut input): ApiJson<OpenBooks>,
) -> R<(StatusCode, Json<Books>)> {
    let cap = ctx.can_admin(MODULE)?;
    if input.currency.is_none() {
        input.currency = Some(ctx.org.currency.clone());
    }
    Ok((StatusCode::CREATED, Json(service::open_books(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/accounts", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [Account]), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn list_accounts(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<Account>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::accounts(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/accounts", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = AccountInput,
    responses((status = 201, body = Account), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_account(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<AccountInput>,
) -> R<(StatusCode, Json<Account>)> {
    let cap = ctx.can_admin(MODULE)?;
    Ok((StatusCode::CREATED, Json(service::create_account(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/accounting/accounts/{number}", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("number" = String, Path)), request_body = AccountPatch,
    responses((status = 200, body = Account), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_account(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, number)): Path<(String, String)>,
    ApiJson(p): ApiJson<AccountPatch>,
) -> R<Json<Account>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(service::patch_account(&st.db, &ctx.who(), &cap, &number, p).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/years", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [FiscalYear]), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn list_years(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<FiscalYear>>> {
    let cap = ctx.can_read(MODULE)?;
    let mut conn = st.db.pool().acquire().await?;
    Ok(Json(crate::repo::years(&mut conn, cap.org()).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/years", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = NewYear,
    responses((status = 201, body = FiscalYear), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_year(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<NewYear>,
) -> R<(StatusCode, Json<FiscalYear>)> {
    let cap = ctx.can_admin(MODULE)?;
    Ok((StatusCode::CREATED, Json(service::create_year(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/years/{year}/close", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("year" = String, Path, description = "Fiscal year id")),
    responses((status = 200, body = Closing, description = "Closed, sealed, carried forward; cannot be undone"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn close_year(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, year)): Path<(String, String)>,
) -> R<Json<Closing>> {
    let cap = ctx.can_admin(MODULE)?;
    Ok(Json(service::close_year(&st.db, &ctx.who(), &cap, &year).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/years/{year}/fec", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("year" = String, Path)),
    responses((status = 200, description = "The FEC, SIRENFECAAAAMMJJ.txt, tab-separated", content_type = "text/plain"), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn fec_export(State(st): State<AppState>, ctx: OrgCtx, Path((_, year)): Path<(String, String)>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let (name, body) = fec::export(&st.db, &cap, &year).await.map_err(e)?;
    Ok(download(&name, "text/plain; charset=utf-8", body))
}

pub fn download(name: &str, content_type: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FecImport {
    /// The whole FEC file as text (tab- or pipe-separated, header line first).
    #[serde(default)]
    pub content: Option<String>,
    /// Or the file's bytes in base64, as downloaded: read as UTF-8 (with or
    /// without a byte-order mark) when valid, else as Windows-1252 (ISO-8859-15).
    #[serde(default)]
    pub content_base64: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/imports/fec", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = FecImport,
    responses((status = 201, body = fec::ImportReport), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem, description = "Nothing imported; each error names the line and column")))]
async fn fec_import(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<FecImport>,
) -> R<(StatusCode, Json<fec::ImportReport>)> {
    let cap = ctx.can_admin(MODULE)?;
    let r = match (input.content, input.content_base64) {
        (Some(text), None) => fec::import(&st.db, &ctx.who(), &cap, &text).await,
        (None, Some(b64)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| CoreError::validation("content_base64", "This is not base64."))?;
            fec::import_bytes(&st.db, &ctx.who(), &cap, &bytes).await
        }
        _ => {
            return Err(CoreError::validation(
                "content",
                "Send the file as `content` or as `content_base64`, not both.",
            ))
        }
    };
    Ok((StatusCode::CREATED, Json(r.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/entries", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), EntryFilter), responses((status = 200, body = [Entry]), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn list_entries(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(f): ApiQuery<EntryFilter>,
) -> R<Json<Vec<Entry>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::list_entries(&st.db, &cap, &f).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/entries", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = EntryInput,
    responses((status = 201, body = Entry), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem, description = "Errors name the field: `lines[2].account`")))]
async fn create_entry(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<EntryInput>,
) -> R<(StatusCode, Json<Entry>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(service::create_entry(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/simple-entries", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SimpleInput,
    responses((status = 201, body = Entry), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn simple_entry(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SimpleInput>,
) -> R<(StatusCode, Json<Entry>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(service::simple_entry(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/entries/{id}", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Entry), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn get_entry(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<Json<Entry>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(service::get_entry(&st.db, &cap, &id).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/accounting/entries/{id}", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = EntryInput,
    responses((status = 200, body = Entry), (status = 404, body = Problem), (status = 409, body = Problem, description = "Validated entries are final"), (status = 422, body = Problem)))]
async fn update_entry(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Entry>> {
    let cap = ctx.can_write(MODULE)?;
    // The entry first: another organisation's id is 404 whatever the body.
    service::get_entry(&st.db, &cap.as_read(), &id).await.map_err(e)?;
    let input: EntryInput =
        serde_json::from_value(input).map_err(|err| CoreError::validation("body", &err.to_string()))?;
    Ok(Json(service::update_draft(&st.db, &ctx.who(), &cap, &id, input).await.map_err(e)?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/accounting/entries/{id}", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem, description = "Validated entries are final")))]
async fn delete_entry(State(st): State<AppState>, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    service::delete_draft(&st.db, &ctx.who(), &cap, &id).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/entries/{id}/validate", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Entry), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn validate_entry(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Entry>> {
    let cap = ctx.can_write(MODULE)?;
    Ok(Json(service::validate_entry(&st.db, &ctx.who(), &cap, &id).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/entries/{id}/reverse", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = ReverseInput,
    responses((status = 201, body = Entry, description = "The reversing entry"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn reverse_entry(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<ReverseInput>,
) -> R<(StatusCode, Json<Entry>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(service::reverse_entry(&st.db, &ctx.who(), &cap, &id, input).await.map_err(e)?)))
}

/// Answers a report as JSON, or as an ODS or PDF download.
fn report_response<T: serde::Serialize>(
    ctx: &OrgCtx,
    name: &str,
    p: &ReportParams,
    v: T,
    table: impl Fn(&T) -> Table,
) -> R<Response> {
    match p.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(v).into_response()),
        f @ ("ods" | "pdf") => {
            let body = reports::render_file(
                &table(&v),
                f == "ods",
                &ctx.org.name,
                ctx.org.color_primary.as_deref().unwrap_or("#2F6F4E"),
            );
            let ct = if f == "ods" { "application/vnd.oasis.opendocument.spreadsheet" } else { "application/pdf" };
            Ok(download(&format!("{name}-{}.{f}", ctx.org.slug), ct, body))
        }
        _ => Err(CoreError::validation("format", "Choose json, ods or pdf.")),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/trial-balance", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::TrialBalance = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn trial_balance(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::trial_balance(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "trial-balance", &p, v, |v| v.table())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/income-statement", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::IncomeStatement = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn income_statement(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::income_statement(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "income-statement", &p, v, |v| v.table())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/balance-sheet", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::BalanceSheet = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn balance_sheet(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::balance_sheet(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "balance-sheet", &p, v, |v| v.table())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/general-ledger", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::GeneralLedger = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn general_ledger(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::general_ledger(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "general-ledger", &p, v, |v| v.table())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/journal", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::JournalReport = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn journal_report(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::journal(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "journal", &p, v, |v| v.table())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/analytics", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((reports::Analytics = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn analytics(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = reports::analytics(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "analytics", &p, v, |v| v.table())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub year: Option<String>,
    /// `csv` (default) or `ods`.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/export", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ExportParams),
    responses((status = 200, description = "Every line of the period, CSV or ODS", content_type = "text/csv"), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn export_lines(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ExportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let mut conn = st.db.pool().acquire().await?;
    let l = crate::repo::ledger(&mut conn, cap.org()).await.map_err(e)?;
    drop(conn);
    let period =
        reports::period(&l, &ReportParams { from: p.from, to: p.to, year: p.year, ..Default::default() }).map_err(e)?;
    let (header, rows) = fec::lines_table(&st.db, &cap, &period.from.iso(), &period.to.iso()).await.map_err(e)?;
    let ods = p.format.as_deref() == Some("ods");
    let body = shrooms_core::people::table_file(ods, "Ecritures", &header, &rows);
    let (ext, ct) = if ods {
        ("ods", "application/vnd.oasis.opendocument.spreadsheet")
    } else {
        ("csv", "text/csv; charset=utf-8")
    };
    Ok(download(&format!("ecritures-{}-{}-{}.{ext}", ctx.org.slug, period.from, period.to), ct, body))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitInput {
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
    /// First day of the service paid for.
    pub start: String,
    /// Last day of the service.
    pub end: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Split {
    pub shares: Vec<SplitShare>,
}

/// One fiscal year's share of the amount.
#[derive(serde::Serialize, ToSchema)]
pub struct SplitShare {
    /// First and last day of the part of the service in this fiscal year.
    pub from: String,
    pub to: String,
    pub days: i64,
    /// Decimal text, like every amount of this API (`1234.56`).
    pub amount: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/deferral-split", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = SplitInput,
    responses((status = 200, body = Split, description = "The amount split over the fiscal years the service spans, to the cent"), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn deferral_split(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<SplitInput>,
) -> R<Json<Split>> {
    let cap = ctx.can_read(MODULE)?;
    let amount = Amount::from_json(&input.amount)
        .map_err(|m| CoreError::validation("amount", m))?
        .ok_or_else(|| CoreError::validation("amount", "Give an amount."))?;
    let start = Day::parse(&input.start).map_err(|m| CoreError::validation("start", m))?;
    let end = Day::parse(&input.end).map_err(|m| CoreError::validation("end", m))?;
    let mut conn = st.db.pool().acquire().await?;
    let l = crate::repo::ledger(&mut conn, cap.org()).await.map_err(e)?;
    // Known fiscal years, extended by twelve-month years both ways to cover the service.
    let bounds = deferral::year_bounds(&l, start, end);
    if bounds.is_empty() {
        return Err(e(AcctError::NoBooks));
    }
    let shares =
        crate::domain::split_by_days(amount, start, end, &bounds).map_err(|m| CoreError::validation("end", &m))?;
    let shares = shares
        .into_iter()
        .map(|s| SplitShare { from: s.from, to: s.to, days: s.days, amount: s.amount.plain() })
        .collect();
    Ok(Json(Split { shares }))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/bank-accounts", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), responses((status = 200, body = [BankAccount]), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn list_bank_accounts(State(st): State<AppState>, ctx: OrgCtx) -> R<Json<Vec<BankAccount>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(bank::bank_accounts(&st.db, &cap).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/bank-accounts", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = BankAccountInput,
    responses((status = 201, body = BankAccount), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_bank_account(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<BankAccountInput>,
) -> R<(StatusCode, Json<BankAccount>)> {
    let cap = ctx.can_admin(MODULE)?;
    Ok((StatusCode::CREATED, Json(bank::create_bank_account(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/bank-accounts/{bank}/statements", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("bank" = String, Path, description = "Bank account id")), request_body = StatementImport,
    responses((status = 201, body = StatementImportReport), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem, description = "Nothing imported; each error names the line (`line 4: amount`) or element (`Ntry 2: Amt`)")))]
async fn import_statement(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, bank_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<StatementImport>,
) -> R<(StatusCode, Json<StatementImportReport>)> {
    let cap = ctx.can_write(MODULE)?;
    let r = bank::import_statement(&st.db, &ctx.who(), &cap, &bank_id, input.content.as_bytes(), &input.mapping)
        .await
        .map_err(e)?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/bank-accounts/{bank}/reconciliation", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("bank" = String, Path), ReconciliationQuery),
    responses((status = 200, body = Reconciliation, description = "One page of statement lines (`next_cursor`, `prev_cursor`) and the account's totals"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"),
        (status = 422, body = Problem, description = "A date or the cursor is invalid")))]
async fn reconciliation(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, bank_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReconciliationQuery>,
) -> R<Json<Reconciliation>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(bank::reconciliation(&st.db, &cap, &bank_id, &q).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/statement-lines/{line}/match", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("line" = String, Path, description = "Statement line id")), request_body = MatchInput,
    responses((status = 204, description = "Reconciled"), (status = 404, body = Problem), (status = 409, body = Problem, description = "The statement line is already reconciled"),
        (status = 422, body = Problem, description = "A line is unknown, already reconciled, or the amounts do not add up (the error gives the difference)")))]
async fn match_line(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, line)): Path<(String, String)>,
    ApiJson(input): ApiJson<MatchInput>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    bank::match_line(&st.db, &ctx.who(), &cap, &line, input).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/accounting/statement-lines/{line}/match", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("line" = String, Path)), responses((status = 204, description = "No longer reconciled: every statement line and ledger line of its group is free again"), (status = 404, body = Problem)))]
async fn unmatch_line(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, line)): Path<(String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    bank::unmatch_line(&st.db, &ctx.who(), &cap, &line).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/statement-lines/{line}/reject", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("line" = String, Path)), request_body = MatchInput,
    responses((status = 204, description = "The suggestion is not offered again"), (status = 404, body = Problem)))]
async fn reject_suggestion(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, line)): Path<(String, String)>,
    ApiJson(input): ApiJson<MatchInput>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    bank::reject_suggestion(&st.db, &ctx.who(), &cap, &line, input).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/statement-lines/{line}/entry", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("line" = String, Path)), request_body = EntryFromLine,
    responses((status = 201, body = Entry, description = "The entry, reconciled with the statement line"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn entry_from_line(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, line)): Path<(String, String)>,
    ApiJson(input): ApiJson<EntryFromLine>,
) -> R<(StatusCode, Json<Entry>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(bank::entry_from_line(&st.db, &ctx.who(), &cap, &line, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/lettering", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), LetteringQuery), responses((status = 200, body = AccountLettering), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn lettering_lines(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(q): ApiQuery<LetteringQuery>,
) -> R<Json<AccountLettering>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(lettering::account_lines(&st.db, &cap, &q).await.map_err(e)?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/lettering", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = LetterInput,
    responses((status = 201, body = Lettering, description = "Lettered; `partial` when debits and credits differ"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem, description = "Each error names the line: `lines[1].entry_id`")))]
async fn letter_lines(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<LetterInput>,
) -> R<(StatusCode, Json<Lettering>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(lettering::letter(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/accounting/lettering/{account}/{letter}", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("account" = String, Path), ("letter" = String, Path)),
    responses((status = 204, description = "The letter is removed from all its lines"), (status = 404, body = Problem)))]
async fn unletter(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, account, letter)): Path<(String, String, String)>,
) -> R<StatusCode> {
    let cap = ctx.can_write(MODULE)?;
    lettering::unletter(&st.db, &ctx.who(), &cap, &account, &letter).await.map_err(e)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvJournalImport {
    /// The CSV: one ledger line per row with the columns date, journal,
    /// piece, account, label, debit, credit (French or English names;
    /// optional: account label, auxiliary account).
    pub content: String,
    /// Bring the entries in validated (default) or as drafts.
    #[serde(default)]
    pub validate: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/imports/journal-csv", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = CsvJournalImport,
    responses((status = 201, body = fec::ImportReport), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem, description = "Nothing imported; each error names the line and the file's column")))]
async fn csv_journal_import(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<CsvJournalImport>,
) -> R<(StatusCode, Json<fec::ImportReport>)> {
    let cap = ctx.can_admin(MODULE)?;
    let r = fec::import_csv_journal(&st.db, &ctx.who(), &cap, input.content.as_bytes(), input.validate.unwrap_or(true))
        .await
        .map_err(e)?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/years/{year}/budget", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("year" = String, Path)), responses((status = 200, body = [BudgetLine]), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet")))]
async fn get_budget(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, year)): Path<(String, String)>,
) -> R<Json<Vec<BudgetLine>>> {
    let cap = ctx.can_read(MODULE)?;
    Ok(Json(budget::budget(&st.db, &cap, &year).await.map_err(e)?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/accounting/years/{year}/budget", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("year" = String, Path)), request_body = BudgetInput,
    responses((status = 200, body = [BudgetLine], description = "The year's budget, replaced"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_budget(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, year)): Path<(String, String)>,
    ApiJson(input): ApiJson<serde_json::Value>,
) -> R<Json<Vec<BudgetLine>>> {
    let cap = ctx.can_write(MODULE)?;
    // The year first: another organisation's is 404 whatever the body.
    budget::budget(&st.db, &cap.as_read(), &year).await.map_err(e)?;
    let input: BudgetInput =
        serde_json::from_value(input).map_err(|err| CoreError::validation("body", &err.to_string()))?;
    Ok(Json(budget::set_budget(&st.db, &ctx.who(), &cap, &year, input).await.map_err(e)?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/reports/budget", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ReportParams), responses((status = 200, description = "JSON, or ODS / PDF with `format`", content((budget::BudgetReport = "application/json"), (Vec<u8> = "application/vnd.oasis.opendocument.spreadsheet"), (Vec<u8> = "application/pdf"))), (status = 404, body = Problem), (status = 409, body = Problem, description = "The books are not opened yet"), (status = 422, body = Problem)))]
async fn budget_report(State(st): State<AppState>, ctx: OrgCtx, ApiQuery(p): ApiQuery<ReportParams>) -> R<Response> {
    let cap = ctx.can_read(MODULE)?;
    let v = budget::report(&st.db, &cap, &p).await.map_err(e)?;
    report_response(&ctx, "budget", &p, v, |v| v.table())
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/accounting/deferrals", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path)), request_body = DeferralInput,
    responses((status = 201, body = Deferral, description = "The payment or invoice posted with its split over the fiscal years"), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn post_deferral(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(input): ApiJson<DeferralInput>,
) -> R<(StatusCode, Json<Deferral>)> {
    let cap = ctx.can_write(MODULE)?;
    Ok((StatusCode::CREATED, Json(deferral::post_deferral(&st.db, &ctx.who(), &cap, input).await.map_err(e)?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/accounting/entries/{id}/deferral", tag = "accounting", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Deferral, description = "The split this entry belongs to"), (status = 404, body = Problem, description = "No such entry, or not part of a deferral")))]
async fn entry_deferral(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> R<Json<Deferral>> {
    let cap = ctx.can_read(MODULE)?;
    deferral::of_entry(&st.db, &cap, &id).await.map_err(e)?.map(Json).ok_or(CoreError::NotFound)
}

#[derive(OpenApi)]
#[openapi(paths(
    get_books,
    open_books,
    list_accounts,
    create_account,
    patch_account,
    list_years,
    create_year,
    close_year,
    fec_export,
    fec_import,
    csv_journal_import,
    list_entries,
    create_entry,
    simple_entry,
    get_entry,
    update_entry,
    delete_entry,
    validate_entry,
    reverse_entry,
    trial_balance,
    income_statement,
    balance_sheet,
    general_ledger,
    journal_report,
    analytics,
    export_lines,
    deferral_split,
    list_bank_accounts,
    create_bank_account,
    import_statement,
    reconciliation,
    match_line,
    unmatch_line,
    reject_suggestion,
    entry_from_line,
    lettering_lines,
    letter_lines,
    unletter,
    get_budget,
    put_budget,
    budget_report,
    post_deferral,
    entry_deferral
))]
pub struct AccountingApi;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/orgs/{org}/accounting";
    Router::new()
        .route(&format!("{base}/books"), get(get_books).post(open_books))
        .route(&format!("{base}/accounts"), get(list_accounts).post(create_account))
        .route(&format!("{base}/accounts/{{number}}"), patch(patch_account))
        .route(&format!("{base}/years"), get(list_years).post(create_year))
        .route(&format!("{base}/years/{{year}}/close"), post(close_year))
        .route(&format!("{base}/years/{{year}}/fec"), get(fec_export))
        .route(&format!("{base}/imports/fec"), post(fec_import))
        .route(&format!("{base}/imports/journal-csv"), post(csv_journal_import))
        .route(&format!("{base}/entries"), get(list_entries).post(create_entry))
        .route(&format!("{base}/simple-entries"), post(simple_entry))
        .route(&format!("{base}/entries/{{id}}"), get(get_entry).put(update_entry).delete(delete_entry))
        .route(&format!("{base}/entries/{{id}}/validate"), post(validate_entry))
        .route(&format!("{base}/entries/{{id}}/reverse"), post(reverse_entry))
        .route(&format!("{base}/reports/trial-balance"), get(trial_balance))
        .route(&format!("{base}/reports/income-statement"), get(income_statement))
        .route(&format!("{base}/reports/balance-sheet"), get(balance_sheet))
        .route(&format!("{base}/reports/general-ledger"), get(general_ledger))
        .route(&format!("{base}/reports/journal"), get(journal_report))
        .route(&format!("{base}/reports/analytics"), get(analytics))
        .route(&format!("{base}/export"), get(export_lines))
        .route(&format!("{base}/deferral-split"), post(deferral_split))
        .route(&format!("{base}/bank-accounts"), get(list_bank_accounts).post(create_bank_account))
        .route(&format!("{base}/bank-accounts/{{bank}}/statements"), post(import_statement))
        .route(&format!("{base}/bank-accounts/{{bank}}/reconciliation"), get(reconciliation))
        .route(&format!("{base}/statement-lines/{{line}}/match"), post(match_line).delete(unmatch_line))
        .route(&format!("{base}/statement-lines/{{line}}/reject"), post(reject_suggestion))
        .route(&format!("{base}/statement-lines/{{line}}/entry"), post(entry_from_line))
        .route(&format!("{base}/lettering"), get(lettering_lines).post(letter_lines))
        .route(&format!("{base}/years/{{year}}/budget"), get(get_budget).put(put_budget))
        .route(&format!("{base}/reports/budget"), get(budget_report))
        .route(&format!("{base}/deferrals"), post(post_deferral))
        .route(&format!("{base}/entries/{{id}}/deferral"), get(entry_deferral))
        .route(&format!("{base}/lettering/{{account}}/{{letter}}"), delete(unletter))
}
