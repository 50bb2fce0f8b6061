//! Pages of the documents part: the invoicing home (documents with
//! filters and totals), a document (lines, totals, status, timeline,
//! actions), the document form (lines added by a submit button, so it
//! works without JavaScript), customers, catalogue, VAT rates, settings,
//! subscriptions and billing runs with their progress.

use crate::billing::{self, NewBillingRun, SubscriptionInput, SubscriptionLineInput};
use crate::catalogue::{self, NewVatRate, ProductInput, SettingsInput};
use crate::customers::{self, CustomerInput, CustomerQuery};
use crate::documents::{self, CreditNoteInput, DocumentInput, DocumentQuery, LineInput};
use crate::documents_send::SendInput;
use crate::render::{self, Format};
use crate::MODULE;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_accounting::domain::Amount;
use shrooms_core::error::{CoreError, FieldError};
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx};

type Page = Result<Response, UiError>;
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn all<'a>(f: &'a Fields, k: &str) -> Vec<&'a str> {
    f.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
}

fn opt(f: &Fields, k: &str) -> Option<String> {
    let v = field(f, k).trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// "12,50" → 1250 cents; errors name `name`.
fn cents(v: &str, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    if v.trim().is_empty() {
        return None;
    }
    match Amount::parse(v) {
        Ok(a) => Some(a.0),
        Err(m) => {
            errors.push(FieldError::new(name, m));
            None
        }
    }
}

/// "1,5" → 1500 thousandths.
fn milli(v: &str, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    let t = v.trim().replace(',', ".");
    if t.is_empty() {
        return None;
    }
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    let ok = !int.is_empty()
        && frac.len() <= 3
        && int.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        errors.push(FieldError::new(name, "Write a quantity such as 1, 2.5 or 0.125."));
        return None;
    }
    let neg = int.starts_with('-');
    let f: i64 = format!("{frac:0<3}").parse().unwrap_or(0);
    let m = int.trim_start_matches('-').parse::<i64>().ok().and_then(|i| i.checked_mul(1000)?.checked_add(f));
    let Some(m) = m else {
        errors.push(FieldError::new(name, "This quantity is too large."));
        return None;
    };
    Some(if neg { -m } else { m })
}

/// Percent "10" or "5,5" → hundredths of a percent.
fn percent_bp(v: &str, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    cents(v, name, errors)
}

fn can(ctx: &OrgCtx, a: Access) -> bool {
    ctx.access(MODULE) >= a
}

async fn setup(ui: &Ui, ctx: &OrgCtx) -> Result<(), UiError> {
    catalogue::ensure_setup(&ui.st.db, ctx.org.id, &ctx.org.name, &ctx.org.currency).await?;
    Ok(())
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

// ---------- home: documents ----------

async fn home(ui: Ui, ctx: OrgCtx, Query(q): Query<DocumentQuery>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let page = documents::list(&ui.st.db, &cap, &q).await?;
    let customers = customers::list(&ui.st.db, &cap, &CustomerQuery { limit: Some(200), ..Default::default() }).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "inv_doc_list.html",
        json!({"page": page, "filter": {"kind": q.kind, "status": q.status, "customer_id": q.customer_id, "from": q.from, "to": q.to},
               "customers": customers.items, "can_write": can(&ctx, Access::Write), "can_admin": can(&ctx, Access::Admin)}),
    ))
}

// ---------- the document form ----------

/// Rows of the form: one entry per line; an empty row is ignored.
fn lines_of(f: &Fields, errors: &mut Vec<FieldError>) -> (Vec<LineInput>, Vec<Value>) {
    let products = all(f, "line_product");
    let names = all(f, "line_name");
    let qty = all(f, "line_quantity");
    let price = all(f, "line_price");
    let vat = all(f, "line_vat");
    let disc = all(f, "line_discount");
    let n = names.len().max(products.len());
    let (mut lines, mut rows) = (Vec::new(), Vec::new());
    for i in 0..n {
        let g = |v: &Vec<&str>| v.get(i).copied().unwrap_or("").trim().to_string();
        let (p, name, q, pr, v, d) = (g(&products), g(&names), g(&qty), g(&price), g(&vat), g(&disc));
        rows.push(json!({"product": p, "name": name, "quantity": q, "price": pr, "vat": v, "discount": d}));
        if p.is_empty() && name.is_empty() {
            continue;
        }
        let k = lines.len();
        lines.push(LineInput {
            product_id: Some(p).filter(|s| !s.is_empty()),
            name: Some(name).filter(|s| !s.is_empty()),
            quantity_milli: milli(&q, &format!("lines[{k}].quantity_milli"), errors),
            unit_price_cents: cents(&pr, &format!("lines[{k}].unit_price_cents"), errors),
            vat_code: Some(v).filter(|s| !s.is_empty()),
            discount_bp: percent_bp(&d, &format!("lines[{k}].discount_bp"), errors),
            ..Default::default()
        });
    }
    (lines, rows)
}

fn document_input(f: &Fields, errors: &mut Vec<FieldError>) -> (DocumentInput, Vec<Value>) {
    let (lines, rows) = lines_of(f, errors);
    (
        DocumentInput {
            kind: opt(f, "kind"),
            customer_id: field(f, "customer_id").to_string(),
            series: None,
            issue_date: opt(f, "issue_date"),
            due_date: opt(f, "due_date"),
            valid_until: opt(f, "valid_until"),
            delivery_date: None,
            period_start: opt(f, "period_start"),
            period_end: opt(f, "period_end"),
            lang: opt(f, "lang"),
            operation_category: opt(f, "operation_category"),
            buyer_reference: opt(f, "buyer_reference"),
            notes: opt(f, "notes"),
            lines,
        },
        rows,
    )
}

async fn form_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, UiError> {
    let cap = ctx.can_read(MODULE)?;
    let customers = customers::list(&ui.st.db, &cap, &CustomerQuery { limit: Some(200), ..Default::default() }).await?;
    let products = catalogue::list_products(&ui.st.db, &cap, false).await?;
    let mut codes: Vec<String> =
        catalogue::list_vat_rates(&ui.st.db, &cap).await?.into_iter().map(|r| r.code).collect();
    codes.dedup();
    Ok(json!({"customers": customers.items, "products": products, "vat_codes": codes}))
}

fn blank_rows(n: usize) -> Vec<Value> {
    (0..n).map(|_| json!({"quantity": "1", "vat": "FR-20"})).collect()
}

async fn new_document(ui: Ui, ctx: OrgCtx, Query(q): Query<DocumentQuery>) -> Page {
    ctx.can_write(MODULE)?;
    setup(&ui, &ctx).await?;
    let mut c = form_context(&ui, &ctx).await?;
    let kind = q.kind.filter(|k| k == "quote").unwrap_or_else(|| "invoice".into());
    c["form"] = json!({"kind": kind, "customer_id": q.customer_id});
    c["rows"] = json!(blank_rows(3));
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("inv_doc_form.html", c))
}

async fn save_document(ui: Ui, ctx: OrgCtx, id: Option<String>, f: Fields) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let mut errors = Vec::new();
    let (input, mut rows) = document_input(&f, &mut errors);
    let mut c = form_context(&ui, &ctx).await?;
    let form: serde_json::Map<String, Value> = f.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    c["form"] = Value::Object(form);
    c["id"] = json!(id);
    if field(&f, "action") == "add_line" {
        rows.extend(blank_rows(1));
        c["rows"] = json!(rows);
        let ui = ui.with_org(&ctx).await?;
        return Ok(ui.render("inv_doc_form.html", c));
    }
    c["rows"] = json!(rows);
    let result = if !errors.is_empty() {
        Err(CoreError::Validation(errors))
    } else {
        match &id {
            None => documents::create(&ui.st.db, &ctx.who(), &cap, &ctx.org.slug, input).await,
            Some(id) => documents::update(&ui.st.db, &ctx.who(), &cap, &ctx.org.slug, id, input).await,
        }
    };
    match result {
        Ok(d) => Ok(Redirect::to(&format!("/o/{}/invoicing/documents/{}", ctx.org.slug, d.id)).into_response()),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("inv_doc_form.html", e, c))
        }
    }
}

async fn create_document(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    save_document(ui, ctx, None, f).await
}

async fn edit_document(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let d = documents::get(&ui.st.db, &cap.as_read(), &id).await?;
    if d.status != "draft" {
        return Ok(Redirect::to(&format!("/o/{}/invoicing/documents/{id}", ctx.org.slug)).into_response());
    }
    let mut c = form_context(&ui, &ctx).await?;
    let money = |c: i64| documents::money(c);
    let mut rows: Vec<Value> = d
        .lines
        .iter()
        .map(|l| {
            json!({"product": l.product_id, "name": l.name, "quantity": format!("{}", l.quantity_milli as f64 / 1000.0),
                   "price": money(l.unit_price_cents), "vat": l.vat_code, "discount": if l.discount_bp == 0 { String::new() } else { money(l.discount_bp) }})
        })
        .collect();
    rows.extend(blank_rows(1));
    c["rows"] = json!(rows);
    c["id"] = json!(id);
    c["form"] = json!({"kind": d.kind, "customer_id": d.customer_id, "issue_date": d.issue_date, "due_date": d.due_date,
        "valid_until": d.valid_until, "period_start": d.period_start, "period_end": d.period_end, "lang": d.lang,
        "buyer_reference": d.buyer_reference, "notes": d.notes});
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("inv_doc_form.html", c))
}

async fn update_document(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    save_document(ui, ctx, Some(id), f).await
}

// ---------- one document ----------

async fn show_document(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let d = documents::get(&ui.st.db, &cap, &id).await?;
    show(ui, &ctx, d, None).await
}

async fn show(ui: Ui, ctx: &OrgCtx, d: documents::Document, err: Option<CoreError>) -> Page {
    let timeline = shrooms_core::web::social::partial_context(&ui.st, ctx, documents::ENTITY, &d.id).await?;
    let c = json!({"doc": d, "timeline": timeline, "can_write": can(ctx, Access::Write)});
    let ui = ui.with_org(ctx).await?;
    Ok(match err {
        None => ui.render("inv_doc_show.html", c),
        Some(e) => ui.form_error("inv_doc_show.html", e, c),
    })
}

async fn document_action(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id, action)): Path<(String, String, String)>,
    Form(f): Form<Fields>,
) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let (st, who, slug) = (&ui.st, ctx.who(), ctx.org.slug.clone());
    let result = match action.as_str() {
        "validate" => documents::validate(st, &who, &cap, &slug, &id).await,
        "accept" => documents::accept(st, &who, &cap, &slug, &id).await,
        "refuse" => documents::refuse(st, &who, &cap, &slug, &id).await,
        "convert" => documents::convert(st, &who, &cap, &slug, &id).await,
        "credit" => documents::credit_note(st, &who, &cap, &slug, &id, CreditNoteInput::default()).await,
        "send" => {
            let input = SendInput { to: opt(&f, "to"), message: opt(&f, "message") };
            crate::documents_send::send(st, &who, &cap, &ctx.org, &id, input).await
        }
        "delete" => {
            documents::delete(&st.db, &who, &cap, &id).await?;
            return Ok(Redirect::to(&format!("/o/{slug}/invoicing")).into_response());
        }
        _ => return Err(CoreError::NotFound.into()),
    };
    match result {
        Ok(d) => Ok(Redirect::to(&format!("/o/{slug}/invoicing/documents/{}", d.id)).into_response()),
        Err(e @ (CoreError::Validation(_) | CoreError::Conflict { .. })) => {
            let d = documents::get(&ui.st.db, &cap.as_read(), &id).await?;
            show(ui, &ctx, d, Some(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn document_file(ui: Ui, ctx: OrgCtx, Path((_, id, format)): Path<(String, String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let (name, body, ct) = match format.as_str() {
        "pdf" => {
            let (n, b) = crate::documents_files::pdf(&ui.st, &cap, &ctx.org, &id).await?;
            (n, b, "application/pdf")
        }
        "facturx.xml" => {
            let (n, b) = render::render(&ui.st, &cap, &ctx.org, &id, Format::FacturX).await?;
            (n, b, "application/xml")
        }
        "ubl.xml" => {
            let (n, b) = render::render(&ui.st, &cap, &ctx.org, &id, Format::Ubl).await?;
            (n, b, "application/xml")
        }
        _ => return Err(CoreError::NotFound.into()),
    };
    Ok(download(&name, ct, body))
}

// ---------- customers ----------

fn customer_input(f: &Fields) -> CustomerInput {
    let terms = field(f, "payment_terms_days").trim();
    CustomerInput {
        person_id: opt(f, "person_id"),
        kind: opt(f, "kind"),
        name: field(f, "name").to_string(),
        siren: opt(f, "siren"),
        siret: opt(f, "siret"),
        vat_number: opt(f, "vat_number"),
        email: opt(f, "email"),
        address: opt(f, "address"),
        postcode: opt(f, "postcode"),
        city: opt(f, "city"),
        country: opt(f, "country"),
        delivery_address: opt(f, "delivery_address"),
        delivery_postcode: opt(f, "delivery_postcode"),
        delivery_city: opt(f, "delivery_city"),
        delivery_country: opt(f, "delivery_country"),
        payment_terms_days: if terms.is_empty() { None } else { Some(terms.parse().unwrap_or(-1)) },
        lang: opt(f, "lang"),
        archived: Some(field(f, "archived") == "on"),
    }
}

async fn customers_page(ui: Ui, ctx: OrgCtx, Query(q): Query<CustomerQuery>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let page = customers::list(&ui.st.db, &cap, &q).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "inv_doc_customers.html",
        json!({"page": page, "q": q.q, "archived": q.archived, "can_write": can(&ctx, Access::Write), "form": {"kind": "business", "country": "FR", "lang": "fr"}}),
    ))
}

async fn create_customer(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    setup(&ui, &ctx).await?;
    match customers::create(&ui.st.db, &ctx.who(), &cap, customer_input(&f)).await {
        Ok(c) => Ok(Redirect::to(&format!("/o/{}/invoicing/customers/{}", ctx.org.slug, c.id)).into_response()),
        Err(e) => {
            let page = customers::list(&ui.st.db, &cap.as_read(), &CustomerQuery::default()).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("inv_doc_customers.html", e, json!({"page": page, "can_write": true, "form": form})))
        }
    }
}

async fn customer_page(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let c = customers::get(&ui.st.db, &cap, &id).await?;
    let docs = documents::list(&ui.st.db, &cap, &DocumentQuery { customer_id: Some(id.clone()), ..Default::default() })
        .await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "inv_doc_customer.html",
        json!({"customer": c, "form": c, "docs": docs, "can_write": can(&ctx, Access::Write)}),
    ))
}

async fn update_customer(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    match customers::update(&ui.st.db, &ctx.who(), &cap, &id, customer_input(&f)).await {
        Ok(c) => Ok(Redirect::to(&format!("/o/{}/invoicing/customers/{}", ctx.org.slug, c.id)).into_response()),
        Err(e) => {
            let c = customers::get(&ui.st.db, &cap.as_read(), &id).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("inv_doc_customer.html", e, json!({"customer": c, "form": form, "can_write": true})))
        }
    }
}

// ---------- catalogue ----------

async fn catalogue_page(ui: Ui, ctx: OrgCtx) -> Page {
    catalogue_render(ui, ctx, None, json!({"unit_code": "C62", "vat_code": "FR-20", "product_type": "service"})).await
}

async fn catalogue_render(ui: Ui, ctx: OrgCtx, err: Option<CoreError>, form: Value) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let products = catalogue::list_products(&ui.st.db, &cap, true).await?;
    let c = json!({"products": products, "form": form, "can_write": can(&ctx, Access::Write)});
    let ui = ui.with_org(&ctx).await?;
    Ok(match err {
        None => ui.render("inv_doc_catalogue.html", c),
        Some(e) => ui.form_error("inv_doc_catalogue.html", e, c),
    })
}

async fn create_product(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    setup(&ui, &ctx).await?;
    let mut errors = Vec::new();
    let price = cents(field(&f, "unit_price"), "unit_price_cents", &mut errors);
    let input = ProductInput {
        sku: field(&f, "sku").into(),
        name: field(&f, "name").into(),
        description: opt(&f, "description"),
        product_type: opt(&f, "product_type"),
        unit_code: opt(&f, "unit_code"),
        unit_price_cents: price.unwrap_or(0),
        vat_code: field(&f, "vat_code").into(),
        revenue_account: opt(&f, "revenue_account"),
        archived: None,
    };
    let result = if errors.is_empty() {
        catalogue::create_product(&ui.st.db, &ctx.who(), &cap, input).await.map(|_| ())
    } else {
        Err(CoreError::Validation(errors))
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/o/{}/invoicing/catalogue", ctx.org.slug)).into_response()),
        Err(e) => {
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            catalogue_render(ui, ctx, Some(e), Value::Object(form)).await
        }
    }
}

// ---------- VAT rates ----------

async fn vat_page(ui: Ui, ctx: OrgCtx) -> Page {
    vat_render(ui, ctx, None, json!({"category": "S"})).await
}

async fn vat_render(ui: Ui, ctx: OrgCtx, err: Option<CoreError>, form: Value) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let rates = catalogue::list_vat_rates(&ui.st.db, &cap).await?;
    let c = json!({"rates": rates, "form": form, "can_admin": can(&ctx, Access::Admin)});
    let ui = ui.with_org(&ctx).await?;
    Ok(match err {
        None => ui.render("inv_doc_vat.html", c),
        Some(e) => ui.form_error("inv_doc_vat.html", e, c),
    })
}

async fn add_vat_rate(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    setup(&ui, &ctx).await?;
    let mut errors = Vec::new();
    let rate = percent_bp(field(&f, "rate"), "rate_bp", &mut errors);
    let input = NewVatRate {
        code: field(&f, "code").into(),
        label: field(&f, "label").into(),
        category: opt(&f, "category"),
        rate_bp: rate.unwrap_or(0),
        valid_from: field(&f, "valid_from").into(),
        exemption_reason: opt(&f, "exemption_reason"),
        account: opt(&f, "account"),
    };
    let result = if errors.is_empty() {
        catalogue::add_vat_rate(&ui.st.db, &ctx.who(), &cap, input).await.map(|_| ())
    } else {
        Err(CoreError::Validation(errors))
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/o/{}/invoicing/vat-rates", ctx.org.slug)).into_response()),
        Err(e) => {
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            vat_render(ui, ctx, Some(e), Value::Object(form)).await
        }
    }
}

// ---------- settings ----------

async fn settings_page(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let s = catalogue::get_settings(&ui.st.db, &cap).await?;
    let mut form = serde_json::to_value(&s).unwrap_or_default();
    form["min_invoice"] = json!(documents::money(s.min_invoice_cents));
    let series = crate::numbering::list(&ui.st.db, &cap).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "inv_doc_settings.html",
        json!({"form": form, "series": series, "can_admin": can(&ctx, Access::Admin)}),
    ))
}

async fn save_settings(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    setup(&ui, &ctx).await?;
    let mut errors = Vec::new();
    let int = |k: &str, errors: &mut Vec<FieldError>| -> Option<i64> {
        let v = field(&f, k).trim();
        if v.is_empty() {
            return None;
        }
        v.parse().map_err(|_| errors.push(FieldError::new(k, "Give a whole number."))).ok()
    };
    let s = |k: &str| Some(field(&f, k).to_string());
    let input = SettingsInput {
        legal_name: field(&f, "legal_name").to_string(),
        legal_form: s("legal_form"),
        share_capital: s("share_capital"),
        siren: s("siren"),
        siret: s("siret"),
        vat_number: s("vat_number"),
        rcs: s("rcs"),
        address: s("address"),
        postcode: s("postcode"),
        city: s("city"),
        country: opt(&f, "country"),
        email: s("email"),
        phone: s("phone"),
        iban: s("iban"),
        bic: s("bic"),
        vat_regime: opt(&f, "vat_regime"),
        payment_terms_days: int("payment_terms_days", &mut errors),
        late_penalty: s("late_penalty"),
        min_invoice_cents: cents(field(&f, "min_invoice"), "min_invoice_cents", &mut errors),
        overage_grace_days: int("overage_grace_days", &mut errors),
        receivable_account: opt(&f, "receivable_account"),
        revenue_account: opt(&f, "revenue_account"),
        vat_account: opt(&f, "vat_account"),
        sales_journal: opt(&f, "sales_journal"),
        number_with_year: Some(field(&f, "number_with_year") == "on"),
        quote_validity_days: int("quote_validity_days", &mut errors),
    };
    let result = if errors.is_empty() {
        catalogue::update_settings(&ui.st.db, &ctx.who(), &cap, input).await.map(|_| ())
    } else {
        Err(CoreError::Validation(errors))
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/o/{}/invoicing/settings", ctx.org.slug)).into_response()),
        Err(e) => {
            let series = crate::numbering::list(&ui.st.db, &cap.as_write().as_read()).await?;
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("inv_doc_settings.html", e, json!({"form": form, "series": series, "can_admin": true})))
        }
    }
}

// ---------- subscriptions ----------

async fn subscriptions_page(ui: Ui, ctx: OrgCtx) -> Page {
    subscriptions_render(ui, ctx, None, json!({"frequency": "monthly", "vat_code": "FR-20", "quantity": "1"})).await
}

async fn subscriptions_render(ui: Ui, ctx: OrgCtx, err: Option<CoreError>, form: Value) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let subs = billing::list_subscriptions(&ui.st.db, &cap).await?;
    let mut c = form_context(&ui, &ctx).await?;
    c["subscriptions"] = json!(subs);
    c["form"] = form;
    c["can_write"] = json!(can(&ctx, Access::Write));
    let ui = ui.with_org(&ctx).await?;
    Ok(match err {
        None => ui.render("inv_doc_subscriptions.html", c),
        Some(e) => ui.form_error("inv_doc_subscriptions.html", e, c),
    })
}

async fn create_subscription(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    setup(&ui, &ctx).await?;
    let mut errors = Vec::new();
    let input = SubscriptionInput {
        customer_id: field(&f, "customer_id").into(),
        label: field(&f, "label").into(),
        frequency: field(&f, "frequency").into(),
        anchor_date: field(&f, "anchor_date").into(),
        end_date: opt(&f, "end_date"),
        active: Some(true),
        lines: vec![SubscriptionLineInput {
            product_id: opt(&f, "product_id"),
            name: opt(&f, "name"),
            quantity_milli: milli(field(&f, "quantity"), "lines[0].quantity_milli", &mut errors),
            unit_code: None,
            unit_price_cents: cents(field(&f, "unit_price"), "lines[0].unit_price_cents", &mut errors),
            vat_code: opt(&f, "vat_code"),
            revenue_account: None,
        }],
    };
    let result = if errors.is_empty() {
        billing::create_subscription(&ui.st.db, &ctx.who(), &cap, input).await.map(|_| ())
    } else {
        Err(CoreError::Validation(errors))
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/o/{}/invoicing/subscriptions", ctx.org.slug)).into_response()),
        Err(e) => {
            let form: serde_json::Map<String, Value> = f.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            subscriptions_render(ui, ctx, Some(e), Value::Object(form)).await
        }
    }
}

// ---------- billing runs ----------

async fn runs_page(ui: Ui, ctx: OrgCtx) -> Page {
    runs_render(ui, ctx, None, None).await
}

async fn run_page(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    runs_render(ui, ctx, Some(id), None).await
}

async fn runs_render(ui: Ui, ctx: OrgCtx, id: Option<String>, err: Option<CoreError>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    setup(&ui, &ctx).await?;
    let runs = billing::list_runs(&ui.st.db, &cap).await?;
    let run = match &id {
        Some(id) => Some(billing::get_run(&ui.st.db, &cap, id).await?),
        None => None,
    };
    let busy = run.as_ref().is_some_and(|r| matches!(r.status.as_str(), "queued" | "running" | "cancelling"));
    let c = json!({"runs": runs, "run": run, "busy": busy, "today": shrooms_accounting::domain::Day::today().iso(),
        "can_write": can(&ctx, Access::Write)});
    let ui = ui.with_org(&ctx).await?;
    Ok(match err {
        None => ui.render("inv_doc_runs.html", c),
        Some(e) => ui.form_error("inv_doc_runs.html", e, c),
    })
}

async fn start_run(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    setup(&ui, &ctx).await?;
    let input = NewBillingRun { run_date: opt(&f, "run_date"), stop_after: None };
    match billing::start_run(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(r) => Ok(Redirect::to(&format!("/o/{}/invoicing/billing-runs/{}", ctx.org.slug, r.id)).into_response()),
        Err(e) => runs_render(ui, ctx, None, Some(e)).await,
    }
}

async fn run_action(ui: Ui, ctx: OrgCtx, Path((_, id, action)): Path<(String, String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let r = match action.as_str() {
        "cancel" => billing::cancel_run(&ui.st.db, &ctx.who(), &cap, &id).await,
        "resume" => billing::resume_run(&ui.st.db, &ctx.who(), &cap, &id).await,
        _ => return Err(CoreError::NotFound.into()),
    };
    match r {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/invoicing/billing-runs/{id}", ctx.org.slug)).into_response()),
        Err(e) => runs_render(ui, ctx, Some(id), Some(e)).await,
    }
}

pub fn router() -> Router<AppState> {
    let base = "/o/{org}/invoicing";
    Router::new()
        .route(base, get(home))
        .route(&format!("{base}/documents"), post(create_document))
        .route(&format!("{base}/documents/new"), get(new_document))
        .route(&format!("{base}/documents/{{id}}"), get(show_document))
        .route(&format!("{base}/documents/{{id}}/edit"), get(edit_document).post(update_document))
        .route(&format!("{base}/documents/{{id}}/do/{{action}}"), post(document_action))
        .route(&format!("{base}/documents/{{id}}/file/{{format}}"), get(document_file))
        .route(&format!("{base}/customers"), get(customers_page).post(create_customer))
        .route(&format!("{base}/customers/{{id}}"), get(customer_page).post(update_customer))
        .route(&format!("{base}/catalogue"), get(catalogue_page).post(create_product))
        .route(&format!("{base}/vat-rates"), get(vat_page).post(add_vat_rate))
        .route(&format!("{base}/settings"), get(settings_page).post(save_settings))
        .route(&format!("{base}/subscriptions"), get(subscriptions_page).post(create_subscription))
        .route(&format!("{base}/billing-runs"), get(runs_page).post(start_run))
        .route(&format!("{base}/billing-runs/{{id}}"), get(run_page))
        .route(&format!("{base}/billing-runs/{{id}}/{{action}}"), post(run_action))
}
