//! Pages of the ledger: overview and books set-up, entries, the simple form
//! for treasurers, the accountant's form, chart of accounts, reports.

use crate::bank::{self, BankAccountInput, EntryFromLine, MatchInput};
use crate::error::AcctError;
use crate::lettering;
use crate::reports::{self, ReportParams};
use crate::service::{
    self, AccountInput, AccountPatch, EntryFilter, EntryInput, LineInput, OpenBooks, ReverseInput, SimpleInput, MODULE,
};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_core::error::CoreError;
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx};

type Page = Result<Response, UiError>;

fn ce(e: AcctError) -> CoreError {
    e.into()
}

fn get_field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
}

async fn overview(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let books = match service::books(&ui.st.db, &cap).await {
        Ok(b) => Some(b),
        Err(AcctError::NoBooks) => None,
        Err(e) => return Err(ce(e).into()),
    };
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_overview.html",
        json!({"books": books, "can_admin": ctx.access(MODULE) >= Access::Admin, "can_write": ctx.access(MODULE) >= Access::Write}),
    ))
}

async fn open_books(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let input = OpenBooks {
        chart: get_field(&f, "chart").into(),
        currency: Some(ctx.org.currency.clone()),
        siren: Some(get_field(&f, "siren").into()),
        first_year_start: get_field(&f, "first_year_start").into(),
        first_year_end: Some(get_field(&f, "first_year_end").into()),
    };
    match service::open_books(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/accounting", ctx.org.slug)).into_response()),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_overview.html", ce(e), json!({"books": null, "can_admin": true, "form": f})))
        }
    }
}

/// Taking over books: a FEC or a CSV journal uploaded on the overview.
async fn import_books(ui: Ui, ctx: OrgCtx, mut mp: axum::extract::Multipart) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let (mut bytes, mut kind) = (Vec::new(), String::new());
    let bad = |e: axum::extract::multipart::MultipartError| CoreError::BadRequest(e.body_text());
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        match field.name() {
            Some("file") => bytes = field.bytes().await.map_err(bad)?.to_vec(),
            Some("kind") => kind = field.text().await.map_err(bad)?,
            _ => {}
        }
    }
    let db = &ui.st.db;
    let result = if kind == "csv" {
        crate::fec::import_csv_journal(db, &ctx.who(), &cap, &bytes, true).await
    } else {
        crate::fec::import_bytes(db, &ctx.who(), &cap, &bytes).await
    };
    let books = service::books(db, &cap.as_write().as_read()).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    let base = json!({"books": books, "can_admin": true, "can_write": true});
    match result {
        Ok(r) => {
            let mut c = base;
            c["import_report"] = json!(r);
            Ok(ui.render("accounting_overview.html", c))
        }
        Err(AcctError::Invalid(v)) => {
            let mut c = base;
            c["import_errors"] =
                json!(v.iter().map(|f| json!({"field": f.field, "message": f.message})).collect::<Vec<_>>());
            Ok(ui.form_error("accounting_overview.html", CoreError::Validation(v), c))
        }
        Err(e) => Err(ce(e).into()),
    }
}

async fn close_year(ui: Ui, ctx: OrgCtx, Path((_, year)): Path<(String, String)>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    service::close_year(&ui.st.db, &ctx.who(), &cap, &year).await.map_err(ce)?;
    Ok(Redirect::to(&format!("/o/{}/accounting", ctx.org.slug)).into_response())
}

async fn fec(ui: Ui, ctx: OrgCtx, Path((_, year)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let (name, body) = crate::fec::export(&ui.st.db, &cap, &year).await.map_err(ce)?;
    Ok(super::api::download(&name, "text/plain; charset=utf-8", body))
}

async fn entries(ui: Ui, ctx: OrgCtx, Query(f): Query<EntryFilter>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let list = service::list_entries(&ui.st.db, &cap, &f).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_entries.html",
        json!({"entries": list, "filter": {"journal": f.journal, "status": f.status, "account": f.account, "tag": f.tag}, "can_write": ctx.access(MODULE) >= Access::Write}),
    ))
}

async fn entry(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let e = service::get_entry(&ui.st.db, &cap, &id).await.map_err(ce)?;
    let back = format!("/o/{}/accounting/entries/{id}", ctx.org.slug);
    let attachments = shrooms_core::web::files::partial_context(&ui.st, &ctx, MODULE, "entry", &id, &back).await?;
    let deferral = crate::deferral::of_entry(&ui.st.db, &cap, &id).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_entry.html",
        json!({"entry": e, "attachments": attachments, "deferral": deferral, "can_write": ctx.access(MODULE) >= Access::Write}),
    ))
}

async fn validate(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    service::validate_entry(&ui.st.db, &ctx.who(), &cap, &id).await.map_err(ce)?;
    Ok(Redirect::to(&format!("/o/{}/accounting/entries/{id}", ctx.org.slug)).into_response())
}

async fn reverse(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let r = service::reverse_entry(&ui.st.db, &ctx.who(), &cap, &id, ReverseInput::default()).await.map_err(ce)?;
    Ok(Redirect::to(&format!("/o/{}/accounting/entries/{}", ctx.org.slug, r.id)).into_response())
}

/// Account choices for the forms: (number, "number label").
async fn choices(ui: &Ui, ctx: &OrgCtx) -> Result<Value, UiError> {
    let cap = ctx.can_read(MODULE)?;
    let accounts = service::accounts(&ui.st.db, &cap).await.map_err(ce)?;
    let opt = |pred: &dyn Fn(&str) -> bool| -> Vec<Value> {
        accounts
            .iter()
            .filter(|a| !a.archived && pred(&a.number))
            .map(|a| json!([a.number, format!("{} {}", a.number, a.label)]))
            .collect()
    };
    Ok(json!({
        "income": opt(&|n| n.starts_with('7')),
        "expense": opt(&|n| n.starts_with('6')),
        "payment": opt(&|n| n.starts_with("51") || n.starts_with("53")),
        "all": opt(&|_| true),
    }))
}

async fn simple_form(ui: Ui, ctx: OrgCtx) -> Page {
    ctx.can_write(MODULE)?;
    let c = choices(&ui, &ctx).await?;
    // Most money goes through the bank: its account is the first choice,
    // today the first date.
    let bank = c["payment"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o[0].as_str().is_some_and(|n| n.starts_with("512"))))
        .map(|o| o[0].clone());
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_simple.html",
        json!({"choices": c, "form": {"kind": "expense", "payment": bank, "date": today}}),
    ))
}

async fn simple_submit(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = SimpleInput {
        kind: get_field(&f, "kind").into(),
        date: get_field(&f, "date").into(),
        label: get_field(&f, "label").into(),
        amount: Value::String(get_field(&f, "amount").into()),
        category: get_field(&f, "category").into(),
        payment: get_field(&f, "payment").into(),
        piece_ref: Some(get_field(&f, "piece_ref").into()),
        aux: None,
        tags: get_field(&f, "tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
        validate: get_field(&f, "validate") == "1",
    };
    match service::simple_entry(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(e) => Ok(Redirect::to(&format!("/o/{}/accounting/entries/{}", ctx.org.slug, e.id)).into_response()),
        Err(err) => {
            let c = choices(&ui, &ctx).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_simple.html", ce(err), json!({"choices": c, "form": form})))
        }
    }
}

const FORM_LINES: usize = 8;

async fn entry_form(ui: Ui, ctx: OrgCtx) -> Page {
    ctx.can_write(MODULE)?;
    let c = choices(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_entry_form.html",
        json!({"choices": c, "form": {"journal": "OD"}, "rows": (0..FORM_LINES).collect::<Vec<_>>()}),
    ))
}

async fn entry_submit(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let mut lines = Vec::new();
    for i in 0..FORM_LINES {
        let g = |k: &str| get_field(&f, &format!("l{i}_{k}")).trim().to_string();
        if g("account").is_empty() && g("debit").is_empty() && g("credit").is_empty() {
            continue;
        }
        lines.push(LineInput {
            account: g("account"),
            label: Some(g("label")),
            debit: Value::String(g("debit")),
            credit: Value::String(g("credit")),
            tags: g("tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
            ..Default::default()
        });
    }
    let input = EntryInput {
        journal: get_field(&f, "journal").into(),
        date: get_field(&f, "date").into(),
        label: get_field(&f, "label").into(),
        piece_ref: Some(get_field(&f, "piece_ref").into()),
        piece_date: None,
        lines,
        validate: get_field(&f, "validate") == "1",
    };
    match service::create_entry(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(e) => Ok(Redirect::to(&format!("/o/{}/accounting/entries/{}", ctx.org.slug, e.id)).into_response()),
        Err(err) => {
            let c = choices(&ui, &ctx).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error(
                "accounting_entry_form.html",
                ce(err),
                json!({"choices": c, "form": form, "rows": (0..FORM_LINES).collect::<Vec<_>>()}),
            ))
        }
    }
}

async fn accounts(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let list = service::accounts(&ui.st.db, &cap).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_accounts.html",
        json!({"accounts": list, "can_admin": ctx.access(MODULE) >= Access::Admin}),
    ))
}

#[derive(serde::Deserialize)]
struct ChartQuery {
    #[serde(default)]
    prefix: String,
}

/// The chart editing page: the accounts (those starting with `prefix`), each
/// with its rename and archive forms; `failed` names the form an error
/// belongs to (`add` or an account number).
async fn chart_page(
    ui: Ui,
    ctx: &OrgCtx,
    cap: &shrooms_core::permissions::CanAdmin,
    prefix: &str,
    failed: Option<(&str, CoreError, &[(String, String)])>,
) -> Page {
    let prefix: String = prefix.trim().chars().filter(char::is_ascii_digit).take(20).collect();
    let list: Vec<_> = service::accounts(&ui.st.db, &cap.as_write().as_read())
        .await
        .map_err(ce)?
        .into_iter()
        .filter(|a| a.number.starts_with(&prefix))
        .collect();
    let ui = ui.with_org(ctx).await?;
    let mut c = json!({"accounts": list, "prefix": prefix});
    match failed {
        None => Ok(ui.render("accounting_chart.html", c)),
        Some((which, err, form)) => {
            c["failed"] = json!(which);
            c["form"] = json!(form.iter().cloned().collect::<std::collections::HashMap<_, _>>());
            Ok(ui.form_error("accounting_chart.html", err, c))
        }
    }
}

async fn chart_edit(ui: Ui, ctx: OrgCtx, Query(q): Query<ChartQuery>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    chart_page(ui, &ctx, &cap, &q.prefix, None).await
}

fn chart_back(ctx: &OrgCtx, prefix: &str) -> Response {
    let q: String = prefix.chars().filter(char::is_ascii_digit).collect();
    let query = if q.is_empty() { String::new() } else { format!("?prefix={q}") };
    Redirect::to(&format!("/o/{}/accounting/accounts/edit{query}", ctx.org.slug)).into_response()
}

async fn add_account(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let input = AccountInput { number: get_field(&f, "number").into(), label: get_field(&f, "label").into() };
    match service::create_account(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(a) => Ok(chart_back(&ctx, &a.number)),
        Err(err) => chart_page(ui, &ctx, &cap, "", Some(("add", ce(err), &f))).await,
    }
}

/// Renames, archives or unarchives one account (`action`).
async fn change_account(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let number = get_field(&f, "number");
    let prefix = get_field(&f, "prefix");
    let patch = match get_field(&f, "action") {
        "rename" => AccountPatch { label: Some(get_field(&f, "label").into()), archived: None },
        "archive" => AccountPatch { label: None, archived: Some(true) },
        "unarchive" => AccountPatch { label: None, archived: Some(false) },
        _ => return Err(CoreError::BadRequest("Unknown action.".into()).into()),
    };
    match service::patch_account(&ui.st.db, &ctx.who(), &cap, number, patch).await {
        Ok(_) => Ok(chart_back(&ctx, prefix)),
        Err(err) => chart_page(ui, &ctx, &cap, prefix, Some((number, ce(err), &f))).await,
    }
}

async fn report(ui: Ui, ctx: OrgCtx, Path((_, kind)): Path<(String, String)>, Query(p): Query<ReportParams>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let table = match kind.as_str() {
        "trial-balance" => reports::trial_balance(db, &cap, &p).await.map(|r| r.table()),
        "income-statement" => reports::income_statement(db, &cap, &p).await.map(|r| r.table()),
        "balance-sheet" => reports::balance_sheet(db, &cap, &p).await.map(|r| r.table()),
        "general-ledger" => reports::general_ledger(db, &cap, &p).await.map(|r| r.table()),
        "journal" => reports::journal(db, &cap, &p).await.map(|r| r.table()),
        "analytics" => reports::analytics(db, &cap, &p).await.map(|r| r.table()),
        "budget" => crate::budget::report(db, &cap, &p).await.map(|r| r.table()),
        _ => return Err(CoreError::NotFound.into()),
    }
    .map_err(ce)?;
    let mut table = table;
    if ui.page.lang == "en" {
        reports::in_english(&mut table);
    }
    if let Some(f @ ("ods" | "pdf")) = p.format.as_deref() {
        let body = reports::render_file(
            &table,
            f == "ods",
            &ctx.org.name,
            ctx.org.color_primary.as_deref().unwrap_or("#2F6F4E"),
        );
        let ct = if f == "ods" { "application/vnd.oasis.opendocument.spreadsheet" } else { "application/pdf" };
        return Ok(super::api::download(&format!("{kind}-{}.{f}", ctx.org.slug), ct, body));
    }
    let query = serde_urlencoded::to_string([
        ("from", p.from.clone().unwrap_or_default()),
        ("to", p.to.clone().unwrap_or_default()),
        ("year", p.year.clone().unwrap_or_default()),
    ])
    .unwrap_or_default();
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "accounting_report.html",
        json!({"kind": kind, "title": table.title, "header": table.header, "rows": table.rows, "query": query, "params": {"from": p.from, "to": p.to}}),
    ))
}

// ---------- bank accounts and reconciliation ----------

async fn banks(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let list = bank::bank_accounts(&ui.st.db, &cap).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("accounting_bank.html", json!({"banks": list, "can_admin": ctx.access(MODULE) >= Access::Admin})))
}

async fn add_bank(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let input = BankAccountInput {
        account: get_field(&f, "account").into(),
        label: get_field(&f, "label").into(),
        iban: Some(get_field(&f, "iban").into()),
    };
    match bank::create_bank_account(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(b) => Ok(Redirect::to(&format!("/o/{}/accounting/bank/{}", ctx.org.slug, b.id)).into_response()),
        Err(err) => {
            let list = bank::bank_accounts(&ui.st.db, &cap.as_write().as_read()).await.map_err(ce)?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_bank.html", ce(err), json!({"banks": list, "can_admin": true, "form": form})))
        }
    }
}

/// The page's filters and cursor as a query string, rebuilt from what was
/// parsed (never echoed raw).
fn reconciliation_query(q: &bank::ReconciliationQuery, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if q.unmatched == Some(true) {
        pairs.push(("unmatched", "true".into()));
    }
    for (k, v) in [("from", &q.from), ("to", &q.to)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            pairs.push((k, v.to_string()));
        }
    }
    if let Some(l) = q.limit {
        pairs.push(("limit", l.to_string()));
    }
    if let Some(c) = cursor {
        pairs.push(("cursor", c.to_string()));
    }
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

async fn reconciliation_context(
    ui: &Ui,
    ctx: &OrgCtx,
    bank_id: &str,
    q: &bank::ReconciliationQuery,
) -> Result<Value, UiError> {
    let cap = ctx.can_read(MODULE)?;
    let rec = bank::reconciliation(&ui.st.db, &cap, bank_id, q).await.map_err(ce)?;
    let c = choices(ui, ctx).await?;
    let mut income = c["income"].as_array().cloned().unwrap_or_default();
    let mut expense = c["expense"].as_array().cloned().unwrap_or_default();
    // Money may also settle a client's or supplier's account.
    for v in c["all"].as_array().into_iter().flatten() {
        if v[0].as_str().is_some_and(|n| n.starts_with("41") || n.starts_with("40")) {
            income.push(v.clone());
            expense.push(v.clone());
        }
    }
    let pages = json!({
        "here": reconciliation_query(q, q.cursor.as_deref()),
        "next": rec.next_cursor.as_deref().map(|c| reconciliation_query(q, Some(c))),
        "prev": rec.prev_cursor.as_deref().map(|c| reconciliation_query(q, Some(c))),
    });
    Ok(
        json!({"rec": rec, "filters": {"unmatched": q.unmatched == Some(true), "from": q.from, "to": q.to}, "pages": pages,
        "categories": {"income": income, "expense": expense}, "can_write": ctx.access(MODULE) >= Access::Write}),
    )
}

async fn reconciliation_page(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, bank_id)): Path<(String, String)>,
    Query(q): Query<bank::ReconciliationQuery>,
) -> Page {
    let c = match reconciliation_context(&ui, &ctx, &bank_id, &q).await {
        Ok(c) => c,
        // A bad date or cursor in the address: the page without filters, with the error.
        Err(UiError(err @ CoreError::Validation(_))) => {
            let c = reconciliation_context(&ui, &ctx, &bank_id, &Default::default()).await?;
            let ui = ui.with_org(&ctx).await?;
            return Ok(ui.form_error("accounting_reconciliation.html", err, c));
        }
        Err(e) => return Err(e),
    };
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("accounting_reconciliation.html", c))
}

async fn upload_statement(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, bank_id)): Path<(String, String)>,
    mut mp: axum::extract::Multipart,
) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let mut bytes = Vec::new();
    let mut mapping = std::collections::HashMap::new();
    let mut form = serde_json::Map::new();
    let bad = |e: axum::extract::multipart::MultipartError| CoreError::BadRequest(e.body_text());
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            bytes = field.bytes().await.map_err(bad)?.to_vec();
        } else if let Some(key) = name.strip_prefix("map_") {
            let v = field.text().await.map_err(bad)?.trim().to_string();
            if !v.is_empty() {
                form.insert(name.clone(), Value::String(v.clone()));
                mapping.insert(key.to_string(), v);
            }
        }
    }
    let result = bank::import_statement(&ui.st.db, &ctx.who(), &cap, &bank_id, &bytes, &mapping).await;
    let mut c = reconciliation_context(&ui, &ctx, &bank_id, &Default::default()).await?;
    c["form"] = Value::Object(form);
    let ui = ui.with_org(&ctx).await?;
    match result {
        Ok(r) => {
            c["report"] = json!(r);
            Ok(ui.render("accounting_reconciliation.html", c))
        }
        Err(err) => Ok(ui.form_error("accounting_reconciliation.html", ce(err), c)),
    }
}

async fn line_action(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, bank_id, line, action)): Path<(String, String, String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let (db, who) = (&ui.st.db, ctx.who());
    // A suggestion of several lines carries the others as `also`
    // (`entry:line,entry:line`) and the other statement lines as `with` (`id,id`).
    let m = || MatchInput {
        entry_id: Some(get_field(&f, "entry_id").to_string()),
        line_no: get_field(&f, "line_no").parse().ok(),
        lines: get_field(&f, "also")
            .split(',')
            .filter_map(|x| x.trim().rsplit_once(':'))
            .map(|(e, n)| bank::MatchedLine { entry_id: e.to_string(), line_no: n.parse().unwrap_or(0) })
            .collect(),
        statement_lines: get_field(&f, "with")
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let result = match action.as_str() {
        "match" => bank::match_line(db, &who, &cap, &line, m()).await,
        "reject" => bank::reject_suggestion(db, &who, &cap, &line, m()).await,
        "unmatch" => bank::unmatch_line(db, &who, &cap, &line).await,
        "entry" => {
            let input =
                EntryFromLine { category: get_field(&f, "category").into(), validate: true, ..Default::default() };
            bank::entry_from_line(db, &who, &cap, &line, input).await.map(|_| ())
        }
        _ => return Err(CoreError::NotFound.into()),
    };
    // Back to the page the button was on (its filters and cursor).
    let q: bank::ReconciliationQuery = serde_urlencoded::from_str(get_field(&f, "back")).unwrap_or_default();
    match result {
        Ok(()) => {
            let query = reconciliation_query(&q, q.cursor.as_deref());
            let sep = if query.is_empty() { "" } else { "?" };
            Ok(Redirect::to(&format!("/o/{}/accounting/bank/{bank_id}{sep}{query}", ctx.org.slug)).into_response())
        }
        Err(err) => {
            let c = match reconciliation_context(&ui, &ctx, &bank_id, &q).await {
                Ok(c) => c,
                Err(_) => reconciliation_context(&ui, &ctx, &bank_id, &Default::default()).await?,
            };
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_reconciliation.html", ce(err), c))
        }
    }
}

// ---------- lettering ----------

#[derive(serde::Deserialize, Default)]
struct LetteringPageQuery {
    account: Option<String>,
    aux: Option<String>,
    open: Option<String>,
}

async fn lettering_context(ui: &Ui, ctx: &OrgCtx, q: &LetteringPageQuery) -> Result<Value, UiError> {
    let cap = ctx.can_read(MODULE)?;
    let account = q.account.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let aux = q.aux.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(String::from);
    let open = q.open.as_deref() == Some("true");
    let lettering = match account {
        Some(a) => Some(
            lettering::account_lines(
                &ui.st.db,
                &cap,
                &lettering::LetteringQuery { account: a.to_string(), aux: aux.clone(), open: Some(open) },
            )
            .await
            .map_err(ce)?,
        ),
        None => None,
    };
    let mut letters: Vec<String> =
        lettering.iter().flat_map(|l| l.lines.iter().filter_map(|x| x.letter.clone())).collect();
    letters.sort();
    letters.dedup();
    Ok(json!({"lettering": lettering, "letters": letters, "query": {"account": account, "aux": aux, "open": open},
        "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn lettering_page(ui: Ui, ctx: OrgCtx, Query(q): Query<LetteringPageQuery>) -> Page {
    let c = lettering_context(&ui, &ctx, &q).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("accounting_lettering.html", c))
}

fn lettering_back(ctx: &OrgCtx, account: &str, aux: &str) -> String {
    let q = serde_urlencoded::to_string([("account", account), ("aux", aux)]).unwrap_or_default();
    format!("/o/{}/accounting/lettering?{q}", ctx.org.slug)
}

async fn letter_submit(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let (account, aux) = (get_field(&f, "account").to_string(), get_field(&f, "aux").to_string());
    let lines = f
        .iter()
        .filter(|(k, _)| k == "line")
        .filter_map(|(_, v)| v.rsplit_once(':'))
        .map(|(e, n)| lettering::LineRef { entry_id: e.to_string(), line_no: n.parse().unwrap_or(0) })
        .collect();
    let letter = Some(get_field(&f, "letter").trim().to_string()).filter(|s| !s.is_empty());
    let input = lettering::LetterInput { account: account.clone(), lines, letter };
    match lettering::letter(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(_) => Ok(Redirect::to(&lettering_back(&ctx, &account, &aux)).into_response()),
        Err(err) => {
            let q = LetteringPageQuery { account: Some(account), aux: Some(aux), open: None };
            let c = lettering_context(&ui, &ctx, &q).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_lettering.html", ce(err), c))
        }
    }
}

async fn unletter_submit(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let (account, aux) = (get_field(&f, "account"), get_field(&f, "aux"));
    lettering::unletter(&ui.st.db, &ctx.who(), &cap, account, get_field(&f, "letter")).await.map_err(ce)?;
    Ok(Redirect::to(&lettering_back(&ctx, account, aux)).into_response())
}

// ---------- budget ----------

#[derive(serde::Deserialize, Default)]
struct YearQuery {
    year: Option<String>,
}

const BUDGET_BLANK_ROWS: usize = 5;

async fn budget_context(ui: &Ui, ctx: &OrgCtx, year: Option<&str>, rows: Option<Vec<Value>>) -> Result<Value, UiError> {
    let cap = ctx.can_read(MODULE)?;
    let books = service::books(&ui.st.db, &cap).await.map_err(ce)?;
    let today = crate::domain::Day::today().iso();
    let y = match year {
        Some(id) => books.years.iter().find(|y| y.id == id).ok_or(CoreError::NotFound)?,
        None => books.years.iter().find(|y| y.contains(&today)).or(books.years.last()).ok_or(CoreError::NotFound)?,
    }
    .clone();
    let rows = match rows {
        Some(r) => r,
        None => {
            let mut r: Vec<Value> = crate::budget::budget(&ui.st.db, &cap, &y.id)
                .await
                .map_err(ce)?
                .into_iter()
                .map(|l| json!({"target": l.target, "label": l.label, "amount": l.amount}))
                .collect();
            r.extend((0..BUDGET_BLANK_ROWS).map(|_| json!({"target": "", "label": "", "amount": ""})));
            r
        }
    };
    Ok(json!({"year": y, "years": books.years, "rows": rows, "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn budget_page(ui: Ui, ctx: OrgCtx, Query(q): Query<YearQuery>) -> Page {
    let c = budget_context(&ui, &ctx, q.year.as_deref(), None).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("accounting_budget.html", c))
}

async fn budget_submit(ui: Ui, ctx: OrgCtx, Query(q): Query<YearQuery>, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let col = |k: &str| f.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).collect::<Vec<_>>();
    let (targets, labels, amounts) = (col("target"), col("label"), col("amount"));
    // Rows left blank are not budget lines.
    let rows: Vec<(String, String, String)> = targets
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, labels.get(i).cloned().unwrap_or_default(), amounts.get(i).cloned().unwrap_or_default()))
        .filter(|(t, l, a)| !(t.is_empty() && l.is_empty() && a.is_empty()))
        .collect();
    let input = crate::budget::BudgetInput {
        lines: rows
            .iter()
            .map(|(t, l, a)| crate::budget::BudgetLineInput {
                target: t.clone(),
                label: Some(l.clone()).filter(|l| !l.is_empty()),
                amount: Value::String(a.clone()),
            })
            .collect(),
    };
    let c = budget_context(&ui, &ctx, q.year.as_deref(), None).await?;
    let year_id = c["year"]["id"].as_str().unwrap_or_default().to_string();
    match crate::budget::set_budget(&ui.st.db, &ctx.who(), &cap, &year_id, input).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/o/{}/accounting/reports/budget?year={year_id}", ctx.org.slug)).into_response())
        }
        Err(err) => {
            let mut shown: Vec<Value> =
                rows.iter().map(|(t, l, a)| json!({"target": t, "label": l, "amount": a})).collect();
            shown.extend((0..BUDGET_BLANK_ROWS).map(|_| json!({"target": "", "label": "", "amount": ""})));
            let c = budget_context(&ui, &ctx, Some(&year_id), Some(shown)).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_budget.html", ce(err), c))
        }
    }
}

// ---------- deferred revenue ----------

async fn deferral_choices(ui: &Ui, ctx: &OrgCtx) -> Result<Value, UiError> {
    let c = choices(ui, ctx).await?;
    let mut counterpart = c["payment"].as_array().cloned().unwrap_or_default();
    counterpart.extend(
        c["all"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v[0].as_str().is_some_and(|n| n.starts_with("41")))
            .cloned(),
    );
    Ok(json!({"income": c["income"], "counterpart": counterpart}))
}

async fn deferral_form(ui: Ui, ctx: OrgCtx) -> Page {
    ctx.can_write(MODULE)?;
    let c = deferral_choices(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("accounting_deferral.html", json!({"choices": c})))
}

async fn deferral_submit(ui: Ui, ctx: OrgCtx, Form(f): Form<Vec<(String, String)>>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let g = |k: &str| get_field(&f, k).to_string();
    let input = crate::deferral::DeferralInput {
        date: g("date"),
        label: g("label"),
        amount: Value::String(g("amount")),
        revenue_account: g("revenue_account"),
        counterpart: g("counterpart"),
        aux: Some(g("aux")),
        piece_ref: None,
        service_start: g("service_start"),
        service_end: g("service_end"),
    };
    match crate::deferral::post_deferral(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(d) => Ok(Redirect::to(&format!("/o/{}/accounting/entries/{}", ctx.org.slug, d.entry_id)).into_response()),
        Err(err) => {
            let c = deferral_choices(&ui, &ctx).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("accounting_deferral.html", ce(err), json!({"choices": c, "form": form})))
        }
    }
}

pub fn router() -> Router<AppState> {
    let base = "/o/{org}/accounting";
    Router::new()
        .route(base, get(overview))
        .route(&format!("{base}/open"), post(open_books))
        .route(&format!("{base}/imports"), post(import_books))
        .route(&format!("{base}/years/{{year}}/close"), post(close_year))
        .route(&format!("{base}/years/{{year}}/fec"), get(fec))
        .route(&format!("{base}/entries"), get(entries).post(entry_submit))
        .route(&format!("{base}/entries/new"), get(entry_form))
        .route(&format!("{base}/entries/{{id}}"), get(entry))
        .route(&format!("{base}/entries/{{id}}/validate"), post(validate))
        .route(&format!("{base}/entries/{{id}}/reverse"), post(reverse))
        .route(&format!("{base}/simple"), get(simple_form).post(simple_submit))
        .route(&format!("{base}/accounts"), get(accounts).post(add_account))
        .route(&format!("{base}/accounts/edit"), get(chart_edit).post(change_account))
        .route(&format!("{base}/reports/{{kind}}"), get(report))
        .route(&format!("{base}/bank"), get(banks).post(add_bank))
        .route(&format!("{base}/deferrals"), post(deferral_submit))
        .route(&format!("{base}/deferrals/new"), get(deferral_form))
        .route(&format!("{base}/budget"), get(budget_page).post(budget_submit))
        .route(&format!("{base}/lettering"), get(lettering_page).post(letter_submit))
        .route(&format!("{base}/lettering/unletter"), post(unletter_submit))
        .route(&format!("{base}/bank/{{bank}}"), get(reconciliation_page))
        .route(&format!("{base}/bank/{{bank}}/statements"), post(upload_statement))
        .route(&format!("{base}/bank/{{bank}}/lines/{{line}}/{{action}}"), post(line_action))
}
