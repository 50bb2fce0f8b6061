//! Pages of payments: the list and the record form, a payment, deposit
//! slips, customer credit, reminder settings and the overdue board,
//! reports with their exports, online payment settings, and the public
//! "pay online" page of an invoice.

use crate::dunning::{self, ReminderLevel};
use crate::payments::{self, AllocationInput, ApplyCredit, PaymentFilter, PaymentInput};
use crate::payments_slips::{self, SlipInput};
use crate::providers::{self, ProviderConfigInput};
use crate::reports::{self, ReportParams};
use crate::MODULE;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_accounting::domain::{Amount, Day};
use shrooms_core::error::{CoreError, CoreResult};
use shrooms_core::people::ExportFormat;
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx, Visitor};
use sqlx::Row;

type Page = Result<Response, UiError>;
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).unwrap_or("")
}

fn opt(f: &Fields, k: &str) -> Option<String> {
    Some(field(f, k).to_string()).filter(|s| !s.is_empty())
}

fn base(ctx: &OrgCtx) -> String {
    format!("/o/{}/invoicing", ctx.org.slug)
}

/// Adds `<name>_text` (`1 234,50` in French) next to every `<name>_cents`
/// of a page's data, and `rate_text` next to `rate_bp`: templates show
/// money without doing arithmetic.
fn with_money(v: &mut Value, lang: &str) {
    match v {
        Value::Object(o) => {
            let mut extra = Vec::new();
            for (k, x) in o.iter_mut() {
                if let (Some(stem), Some(c)) = (k.strip_suffix("_cents"), x.as_i64()) {
                    extra.push((format!("{stem}_text"), json!(Amount(c).display(lang))));
                } else if let ("rate_bp", Some(bp)) = (k.as_str(), x.as_i64()) {
                    extra.push(("rate_text".to_string(), json!(reports::rate_text(bp))));
                } else {
                    with_money(x, lang);
                }
            }
            o.extend(extra);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| with_money(x, lang)),
        _ => {}
    }
}

/// Renders a page of this file, with money shown for people.
fn page(ui: &Ui, name: &str, mut data: Value) -> Response {
    with_money(&mut data, &ui.page.lang);
    ui.render(name, data)
}

fn page_error(ui: &Ui, name: &str, e: CoreError, mut data: Value) -> Response {
    with_money(&mut data, &ui.page.lang);
    ui.form_error(name, e, data)
}

fn to(url: String) -> Response {
    Redirect::to(&url).into_response()
}

/// Cents from a decimal amount typed in a form (`12,50`).
fn cents(f: &Fields, k: &str) -> CoreResult<i64> {
    Amount::parse(field(f, k)).map(|a| a.0).map_err(|m| CoreError::validation("amount_cents", m))
}

/// Customers and their open invoices, for the forms' choices.
async fn choices(st: &AppState, ctx: &OrgCtx) -> CoreResult<Value> {
    let org = ctx.org.id.to_string();
    let customers =
        sqlx::query("SELECT id, name FROM inv_customers WHERE org_id = $1 AND archived = 0 ORDER BY name LIMIT 1000")
            .bind(&org)
            .fetch_all(st.db.pool())
            .await?;
    let invoices = sqlx::query(&format!(
        "SELECT d.id, d.number, c.name, d.gross_cents - d.paid_cents - d.credited_cents FROM inv_documents d \
         JOIN inv_customers c ON c.id = d.customer_id WHERE d.org_id = $1 AND d.kind = 'invoice' \
         AND d.status IN {} AND d.gross_cents - d.paid_cents - d.credited_cents > 0 ORDER BY d.issue_date, d.seq LIMIT 1000",
        payments::OPEN_STATUSES
    ))
    .bind(&org)
    .fetch_all(st.db.pool())
    .await?;
    let mut cs = vec![json!(["", ""])];
    for r in customers {
        cs.push(json!([r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?]));
    }
    let mut is = vec![json!(["", ""])];
    for r in invoices {
        let due: i64 = r.try_get(3)?;
        is.push(json!([
            r.try_get::<String, _>(0)?,
            format!(
                "{} – {} – {}",
                r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                r.try_get::<String, _>(2)?,
                payments::money(due)
            )
        ]));
    }
    Ok(json!({"customers": cs, "invoices": is}))
}

// ---------- payments ----------

async fn payments_page(ui: Ui, ctx: OrgCtx, Query(f): Query<PaymentFilter>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let list = payments::list(&ui.st.db, &cap, &f).await?;
    let ch = choices(&ui.st, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(
        &ui,
        "inv_pay_payments.html",
        json!({"payments": list, "choices": ch, "filter": {"method": f.method, "status": f.status},
            "form": {"received_date": Day::today().iso(), "method": "cheque"},
            "can_write": ctx.access(MODULE) >= Access::Write}),
    ))
}

async fn record_payment(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let result = async {
        let amount = cents(&f, "amount")?;
        let allocations =
            opt(&f, "invoice_id").map(|id| vec![AllocationInput { invoice_id: id, amount_cents: amount }]);
        let input = PaymentInput {
            customer_id: field(&f, "customer_id").into(),
            method: field(&f, "method").into(),
            amount_cents: amount,
            received_date: opt(&f, "received_date"),
            payer: opt(&f, "payer"),
            cheque_bank: opt(&f, "cheque_bank"),
            cheque_number: opt(&f, "cheque_number"),
            reference: opt(&f, "reference"),
            allocations,
            keep_credit: field(&f, "keep_credit") == "1",
            notes: opt(&f, "notes"),
        };
        payments::record(&ui.st, &ctx.who(), &cap, input).await
    }
    .await;
    match result {
        Ok(p) => Ok(to(format!("{}/payments/{}", base(&ctx), p.id))),
        Err(e) => {
            let list = payments::list(&ui.st.db, &cap.as_read(), &PaymentFilter::default()).await?;
            let ch = choices(&ui.st, &ctx).await?;
            let form: serde_json::Map<String, Value> = f.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(
                &ui,
                "inv_pay_payments.html",
                e,
                json!({"payments": list, "choices": ch, "filter": {}, "form": form, "can_write": true}),
            ))
        }
    }
}

async fn payment_page(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let p = payments::get(&ui.st.db, &cap, &id).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(&ui, "inv_pay_payment.html", json!({"payment": p, "can_write": ctx.access(MODULE) >= Access::Write})))
}

async fn cancel_payment(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    payments::cancel(&ui.st, &ctx.who(), &cap, &id).await?;
    Ok(to(format!("{}/payments/{id}", base(&ctx))))
}

// ---------- deposit slips ----------

async fn slips_context(st: &AppState, ctx: &OrgCtx) -> CoreResult<Value> {
    let cap = ctx.can_read(MODULE)?;
    let slips = payments_slips::list(&st.db, &cap).await?;
    let waiting =
        payments::list(&st.db, &cap, &PaymentFilter { undeposited: Some(true), ..Default::default() }).await?;
    let waiting_total: i64 = waiting.iter().map(|p| p.amount_cents).sum();
    Ok(json!({"slips": slips, "waiting": waiting, "waiting_total_cents": waiting_total, "today": Day::today().iso(),
        "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn slips_page(ui: Ui, ctx: OrgCtx) -> Page {
    let c = slips_context(&ui.st, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(&ui, "inv_pay_slips.html", c))
}

async fn create_slip(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let ids: Vec<String> = f.iter().filter(|(k, _)| k == "payment_id").map(|(_, v)| v.clone()).collect();
    let input = SlipInput { payment_ids: Some(ids), deposit_date: opt(&f, "deposit_date") };
    match payments_slips::create(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(_) => Ok(to(format!("{}/deposit-slips", base(&ctx)))),
        Err(e) => {
            let c = slips_context(&ui.st, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_slips.html", e, c))
        }
    }
}

async fn slip_pdf(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let slip = payments_slips::get(&ui.st.db, &cap, &id).await?;
    let colour = ctx.org.color_primary.clone().unwrap_or_else(|| "#2F5D50".into());
    let body = payments_slips::pdf(&slip, &ctx.org.name, &colour, &ui.page.lang);
    Ok(shrooms_core::web::api::download(&format!("remise-{}", slip.number), ExportFormat::Pdf, body))
}

// ---------- customer credit ----------

async fn credits_context(st: &AppState, ctx: &OrgCtx) -> CoreResult<Value> {
    let cap = ctx.can_read(MODULE)?;
    let credits = payments::credits(&st.db, &cap).await?;
    let ch = choices(st, ctx).await?;
    Ok(json!({"credits": credits, "choices": ch, "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn credits_page(ui: Ui, ctx: OrgCtx) -> Page {
    let c = credits_context(&ui.st, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(&ui, "inv_pay_credits.html", c))
}

async fn apply_credit(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let amount = match opt(&f, "amount") {
        Some(_) => Some(cents(&f, "amount")?),
        None => None,
    };
    let input = ApplyCredit { invoice_id: field(&f, "invoice_id").into(), amount_cents: amount };
    match payments::apply_credit(&ui.st, &ctx.who(), &cap, &id, input).await {
        Ok(_) => Ok(to(format!("{}/credits", base(&ctx)))),
        Err(e) => {
            let c = credits_context(&ui.st, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_credits.html", e, c))
        }
    }
}

// ---------- reminders ----------

#[derive(serde::Deserialize, Default)]
struct AsOf {
    as_of: Option<String>,
}

async fn reminders_context(
    st: &AppState,
    ctx: &OrgCtx,
    as_of: Day,
    levels: Option<Vec<ReminderLevel>>,
) -> CoreResult<Value> {
    let cap = ctx.can_read(MODULE)?;
    let stored = dunning::levels(&st.db, &cap).await?;
    let mut rows =
        levels.unwrap_or_else(|| if stored.is_empty() { dunning::suggested_levels() } else { stored.clone() });
    if rows.len() < 10 {
        rows.push(ReminderLevel {
            level: rows.len() as i64 + 1,
            delay_days: 0,
            subject_fr: String::new(),
            body_fr: String::new(),
            subject_en: String::new(),
            body_en: String::new(),
            suspend: false,
        });
    }
    let board = dunning::board(&st.db, &cap, as_of).await?;
    Ok(json!({"levels": rows, "configured": !stored.is_empty(), "board": board, "as_of": as_of.iso(),
        "can_write": ctx.access(MODULE) >= Access::Write, "can_admin": ctx.access(MODULE) >= Access::Admin}))
}

async fn reminders_page(ui: Ui, ctx: OrgCtx, Query(q): Query<AsOf>) -> Page {
    let as_of = match q.as_of.as_deref().filter(|s| !s.is_empty()) {
        Some(d) => Day::parse(d).map_err(|m| CoreError::validation("as_of", m))?,
        None => Day::today(),
    };
    let c = reminders_context(&ui.st, &ctx, as_of, None).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(&ui, "inv_pay_reminders.html", c))
}

/// The levels form: rows `delay_days_<i>`, `subject_fr_<i>`…; a row whose
/// delay and subjects are empty is left out.
fn levels_from(f: &Fields) -> Vec<ReminderLevel> {
    let mut out = Vec::new();
    for i in 0..10 {
        let g = |k: &str| field(f, &format!("{k}_{i}")).to_string();
        let delay = g("delay_days");
        if delay.is_empty() && g("subject_fr").is_empty() && g("subject_en").is_empty() {
            continue;
        }
        out.push(ReminderLevel {
            level: out.len() as i64 + 1,
            delay_days: delay.parse().unwrap_or(-1),
            subject_fr: g("subject_fr"),
            body_fr: g("body_fr"),
            subject_en: g("subject_en"),
            body_en: g("body_en"),
            suspend: g("suspend") == "1",
        });
    }
    out
}

async fn save_levels(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let levels = levels_from(&f);
    match dunning::set_levels(&ui.st.db, &ctx.who(), &cap, levels.clone()).await {
        Ok(_) => Ok(to(format!("{}/reminders", base(&ctx)))),
        Err(e) => {
            let c = reminders_context(&ui.st, &ctx, Day::today(), Some(levels)).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_reminders.html", e, c))
        }
    }
}

async fn run_reminders(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_write(MODULE)?;
    dunning::run(&ui.st, &ctx.who(), cap.org(), Day::today()).await?;
    Ok(to(format!("{}/reminders", base(&ctx))))
}

async fn remind_now(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    match dunning::remind_now(&ui.st, &ctx.who(), &cap, &id).await {
        Ok(_) => Ok(to(format!("{}/reminders", base(&ctx)))),
        Err(e) => {
            let c = reminders_context(&ui.st, &ctx, Day::today(), None).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_reminders.html", e, c))
        }
    }
}

// ---------- reports ----------

async fn reports_page(ui: Ui, ctx: OrgCtx, Query(p): Query<ReportParams>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let period = p.period()?;
    let as_of = p.as_of()?;
    let db = &ui.st.db;
    let ageing = reports::ageing(db, &cap, as_of).await?;
    let revenue = reports::revenue(db, &cap, &period).await?;
    let received = reports::payments_received(db, &cap, &period).await?;
    let vat = reports::vat_collected(db, &cap, &period).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(
        &ui,
        "inv_pay_reports.html",
        json!({"from": period.from.iso(), "to": period.to.iso(), "as_of": as_of.iso(),
            "ageing": ageing, "revenue": revenue, "received": received, "vat": vat}),
    ))
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    report: String,
    format: String,
    from: Option<String>,
    to: Option<String>,
    as_of: Option<String>,
}

async fn report_export(ui: Ui, ctx: OrgCtx, Query(q): Query<ExportQuery>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let p = ReportParams { from: q.from, to: q.to, as_of: q.as_of, format: None };
    let db = &ui.st.db;
    let table = match q.report.as_str() {
        "ageing" => reports::ageing_table(&reports::ageing(db, &cap, p.as_of()?).await?),
        "revenue" => reports::revenue_table(&reports::revenue(db, &cap, &p.period()?).await?),
        "payments" => reports::payments_table(&reports::payments_received(db, &cap, &p.period()?).await?),
        "vat" => reports::vat_table(&reports::vat_collected(db, &cap, &p.period()?).await?),
        _ => return Err(CoreError::NotFound.into()),
    };
    let ods = q.format == "ods";
    let body = shrooms_core::people::table_file(ods, table.name, &table.header, &table.rows);
    let fmt = if ods { ExportFormat::Ods } else { ExportFormat::Csv };
    Ok(shrooms_core::web::api::download(&format!("{}-{}", table.name, ctx.org.slug), fmt, body))
}

// ---------- providers ----------

async fn providers_page(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let stripe = providers::config(&ui.st, &cap.as_write().as_read(), "stripe", &ctx.org.slug).await?;
    let settings = payments::settings(&ui.st.db, &cap.as_write().as_read()).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(page(&ui, "inv_pay_providers.html", json!({"stripe": stripe, "settings": settings})))
}

async fn save_provider(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let input = ProviderConfigInput {
        enabled: Some(field(&f, "enabled") == "1"),
        secret_key: opt(&f, "secret_key"),
        webhook_secret: opt(&f, "webhook_secret"),
        api_base: Some(field(&f, "api_base").to_string()),
    };
    match providers::set_config(&ui.st, &ctx.who(), &cap, "stripe", &ctx.org.slug, input).await {
        Ok(_) => Ok(to(format!("{}/payment-settings", base(&ctx)))),
        Err(e) => {
            let stripe = providers::config(&ui.st, &cap.as_write().as_read(), "stripe", &ctx.org.slug).await?;
            let settings = payments::settings(&ui.st.db, &cap.as_write().as_read()).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_providers.html", e, json!({"stripe": stripe, "settings": settings})))
        }
    }
}

async fn save_accounts(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let input = payments::PaySettingsInput {
        bank_account: opt(&f, "bank_account"),
        cash_account: opt(&f, "cash_account"),
        cheque_account: opt(&f, "cheque_account"),
        card_account: opt(&f, "card_account"),
        online_account: opt(&f, "online_account"),
        bank_journal: opt(&f, "bank_journal"),
        cash_journal: opt(&f, "cash_journal"),
    };
    match payments::update_settings(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(_) => Ok(to(format!("{}/payment-settings", base(&ctx)))),
        Err(e) => {
            let stripe = providers::config(&ui.st, &cap.as_write().as_read(), "stripe", &ctx.org.slug).await?;
            let settings = payments::settings(&ui.st.db, &cap.as_write().as_read()).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(page_error(&ui, "inv_pay_providers.html", e, json!({"stripe": stripe, "settings": settings})))
        }
    }
}

// ---------- the public "pay online" page ----------

fn public_ui(mut ui: Ui, v: &Visitor) -> Ui {
    let o = &v.org;
    ui.page.org = Some(
        json!({"id": o.id, "slug": o.slug, "name": o.name, "logo_url": o.logo_url, "color_primary": o.color_primary, "color_accent": o.color_accent, "is_admin": false}),
    );
    ui
}

#[derive(serde::Deserialize, Default)]
struct PaidQuery {
    paid: Option<String>,
}

async fn public_page(ui: Ui, v: Visitor, Path((_, token)): Path<(String, String)>, Query(q): Query<PaidQuery>) -> Page {
    let inv = providers::by_token(&ui.st, &token).await?;
    if inv.org_id != v.org.id.to_string() {
        return Err(CoreError::NotFound.into());
    }
    let ui = public_ui(ui, &v);
    Ok(page(
        &ui,
        "inv_pay_public.html",
        json!({"invoice": inv, "token": token, "paid": q.paid.is_some(), "checkout": null}),
    ))
}

async fn public_checkout(ui: Ui, v: Visitor, Path((_, token)): Path<(String, String)>) -> Page {
    let inv = providers::by_token(&ui.st, &token).await?;
    if inv.org_id != v.org.id.to_string() {
        return Err(CoreError::NotFound.into());
    }
    let back = format!("{}{}", ui.st.cfg.base_url(), crate::providers::pay_path(&v.org.slug, &token));
    let provider = inv.providers.first().cloned().unwrap_or_else(|| "stripe".into());
    let result = providers::create_checkout(&ui.st, &v.who(), v.org.id, &provider, &inv.document_id, &back).await;
    let ui = public_ui(ui, &v);
    match result {
        // A link, not a redirect: the page's form-action policy keeps forms on this site.
        Ok(c) => {
            Ok(page(&ui, "inv_pay_public.html", json!({"invoice": inv, "token": token, "paid": false, "checkout": c})))
        }
        Err(e) => Ok(page_error(
            &ui,
            "inv_pay_public.html",
            e,
            json!({"invoice": inv, "token": token, "paid": false, "checkout": null}),
        )),
    }
}

pub fn router() -> Router<AppState> {
    let b = "/o/{org}/invoicing";
    Router::new()
        .route(&format!("{b}/payments"), get(payments_page).post(record_payment))
        .route(&format!("{b}/payments/{{id}}"), get(payment_page))
        .route(&format!("{b}/payments/{{id}}/cancel"), post(cancel_payment))
        .route(&format!("{b}/deposit-slips"), get(slips_page).post(create_slip))
        .route(&format!("{b}/deposit-slips/{{id}}/pdf"), get(slip_pdf))
        .route(&format!("{b}/credits"), get(credits_page))
        .route(&format!("{b}/customers/{{id}}/credit/apply"), post(apply_credit))
        .route(&format!("{b}/reminders"), get(reminders_page))
        .route(&format!("{b}/reminders/levels"), post(save_levels))
        .route(&format!("{b}/reminders/run"), post(run_reminders))
        .route(&format!("{b}/documents/{{id}}/remind"), post(remind_now))
        .route(&format!("{b}/reports"), get(reports_page))
        .route(&format!("{b}/reports/export"), get(report_export))
        .route(&format!("{b}/payment-settings"), get(providers_page))
        .route(&format!("{b}/payment-settings/stripe"), post(save_provider))
        .route(&format!("{b}/payment-settings/accounts"), post(save_accounts))
        .route(&format!("{b}/pay/{{token}}"), get(public_page).post(public_checkout))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn keys(src: &str) -> BTreeSet<String> {
        src.lines()
            .filter_map(|l| l.strip_prefix('"'))
            .filter_map(|l| l.split_once("\" = ").map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn pay_catalogues_have_the_same_keys_and_cover_the_templates() {
        let en = keys(include_str!("../../i18n/pay.en.toml"));
        let fr = keys(include_str!("../../i18n/pay.fr.toml"));
        assert_eq!(en, fr, "the English and French catalogues differ");
        let mut used = BTreeSet::new();
        for (name, src) in crate::TEMPLATES.iter().filter(|(n, _)| n.starts_with("inv_pay_")) {
            let mut rest = *src;
            while let Some(i) = rest.find("t(\"invoicing.pay.") {
                let s = &rest[i + 3..];
                let end = s.find('"').unwrap_or_else(|| panic!("{name}: unterminated key"));
                let key = &s[..end];
                // `t("invoicing.pay.method." ~ p.method)`: every method and status is checked below.
                if !key.ends_with('.') {
                    used.insert(key.to_string());
                }
                rest = &s[end..];
            }
        }
        for m in crate::payments::METHODS {
            used.insert(format!("invoicing.pay.method.{m}"));
        }
        used.insert("invoicing.pay.status.recorded".into());
        used.insert("invoicing.pay.status.cancelled".into());
        let missing: Vec<_> = used.difference(&en).collect();
        assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
    }
}
