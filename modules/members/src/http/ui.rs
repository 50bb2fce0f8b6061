//! Pages of members and dues: the list with standings and bulk actions, a
//! member's page (standing explained, periods, history, dues, forms),
//! membership types, households, dues, settings. Forms re-render with
//! field errors; success redirects (post/redirect/get).

use crate::debits::{self, CollectionInput, CollectionItem, Creditor, MandateInput, ReturnsInput};
use crate::domain::Tier;
use crate::donations::{self, DonationFilter, DonationInput, YearBatch};
use crate::error::MemError;
use crate::gift_plans::{self, GiftPlanFilter, GiftPlanInput, ReceiveInput};
use crate::service::{
    self, Address, ApplyType, BulkDues, BulkRenew, CloseInput, DueFilter, DueInput, HouseholdInput, HouseholdLink,
    JoinInput, MemberFilter, ProfileInput, RenewInput, Settings, TypeInput, MODULE,
};
use axum::extract::{Path, Query, State};
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

fn ce(e: MemError) -> CoreError {
    e.into()
}

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).unwrap_or("")
}

fn opt(f: &Fields, k: &str) -> Option<String> {
    Some(field(f, k).to_string()).filter(|s| !s.is_empty())
}

fn all(f: &Fields, k: &str) -> Vec<String> {
    f.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

/// A decimal amount from a form (`12.50`, `12,50`) in cents; `None` when empty.
fn cents(f: &Fields, k: &str, into: &str) -> Result<Option<i64>, CoreError> {
    match opt(f, k) {
        None => Ok(None),
        Some(s) => {
            Amount::parse(&s).map(|a| Some(a.0)).map_err(|m| CoreError::Validation(vec![FieldError::new(into, m)]))
        }
    }
}

fn form_json(f: &Fields) -> Value {
    Value::Object(f.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn back(ctx: &OrgCtx, path: &str) -> Response {
    Redirect::to(&format!("/o/{}/members{path}", ctx.org.slug)).into_response()
}

fn flags(ctx: &OrgCtx) -> Value {
    json!({"can_write": ctx.access(MODULE) >= Access::Write, "can_admin": ctx.access(MODULE) >= Access::Admin})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

// ---------- the list ----------

async fn index_context(ui: &Ui, ctx: &OrgCtx, f: &MemberFilter, find: Option<&str>) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let page = service::members_page(db, &cap, &ctx.org.timezone, f).await.map_err(ce)?;
    let types = service::types(db, &cap).await.map_err(ce)?;
    // Finding someone of the directory to make them a member.
    let found = match (find.map(str::trim).filter(|s| !s.is_empty()), ctx.can_read("core")) {
        (Some(q), Ok(core)) => {
            let q = shrooms_core::people::ListQuery {
                q: Some(q.to_string()),
                filters: vec![],
                sort: Default::default(),
                cursor: None,
                limit: 20,
            };
            shrooms_core::people::list(db, &core, &q).await?.items
        }
        _ => vec![],
    };
    Ok(merge(
        json!({"members": page.items, "next_cursor": page.next_cursor, "cursor": f.cursor, "types": types, "found": found, "find": find.unwrap_or(""),
            "filter": {"q": f.q, "standing": f.standing, "type_id": f.type_id},
            "standings": ["up_to_date", "dues_unpaid", "not_started", "lapsed", "resigned", "excluded"]}),
        flags(ctx),
    ))
}

#[derive(serde::Deserialize, Default)]
struct IndexQuery {
    q: Option<String>,
    standing: Option<String>,
    type_id: Option<String>,
    find: Option<String>,
    cursor: Option<String>,
}

/// Members shown per page of the list.
const LIST_PAGE: i64 = 100;

async fn index(ui: Ui, ctx: OrgCtx, Query(q): Query<IndexQuery>) -> Page {
    let f = MemberFilter { q: q.q, standing: q.standing, type_id: q.type_id, limit: Some(LIST_PAGE), cursor: q.cursor };
    let c = index_context(&ui, &ctx, &f, q.find.as_deref()).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_index.html", c))
}

/// Bulk actions on the ticked members: renew them, give them a type.
async fn bulk(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let people = all(&f, "person_ids");
    let db = &ui.st.db;
    let zone = &ctx.org.timezone;
    let result = match field(&f, "action") {
        "renew" => service::renew_many(
            db,
            &ctx.who(),
            &cap,
            zone,
            BulkRenew { person_ids: people, type_id: field(&f, "type_id").into(), on: opt(&f, "on") },
        )
        .await
        .map(|_| ()),
        _ => service::apply_type(
            db,
            &ctx.who(),
            &cap,
            zone,
            ApplyType {
                person_ids: people,
                type_id: field(&f, "type_id").into(),
                starts_on: opt(&f, "on"),
                tier: None,
                amount_cents: None,
            },
        )
        .await
        .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(back(&ctx, "")),
        Err(e) => {
            let first = MemberFilter { limit: Some(LIST_PAGE), ..Default::default() };
            let c = index_context(&ui, &ctx, &first, None).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_index.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

/// The bulk dues form with dues as invoices: a payment of each ticked
/// member's dues invoice (what is left on it). Cheques are recorded one by
/// one on the member's page, each with its number.
async fn dues_bulk_invoices(ui: Ui, ctx: OrgCtx, cap: shrooms_core::permissions::CanWrite, f: Fields) -> Page {
    let result = if field(&f, "method") == "cheque" {
        Err(MemError::field(
            "method",
            "Each cheque has its own number: record cheques on the member's page, one by one.",
        ))
    } else {
        let items: Vec<crate::billing::InvoicePaymentInput> = all(&f, "period_ids")
            .into_iter()
            .filter_map(|v| {
                let (person, period) = v.split_once(':')?;
                Some(crate::billing::InvoicePaymentInput {
                    person_id: person.into(),
                    period_id: Some(period.into()),
                    method: field(&f, "method").into(),
                    paid_on: opt(&f, "paid_on"),
                    reference: opt(&f, "reference"),
                    ..Default::default()
                })
            })
            .collect();
        crate::billing::record_invoice_payments(&ui.st, &ctx.who(), &cap, &ctx.org.timezone, items).await.map(|_| ())
    };
    match result {
        Ok(()) => Ok(back(&ctx, "/dues")),
        Err(e) => {
            let c = dues_context(&ui, &ctx, &DuesQuery::default()).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_dues.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

// ---------- a member ----------

async fn person_context(ui: &Ui, ctx: &OrgCtx, person: &str) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let m = service::membership(db, &cap, &ctx.org.timezone, person).await.map_err(ce)?;
    let types = service::types(db, &cap).await.map_err(ce)?;
    let households = service::households(db, &cap).await.map_err(ce)?;
    let invoice_path = service::settings(db, cap.org()).await.map_err(ce)?.dues_path == service::DuesPath::Invoice;
    Ok(merge(
        json!({"mb": m, "types": types, "households": households, "today": service::today(&ctx.org.timezone).to_string(),
            "request_key": uuid::Uuid::now_v7().to_string(), "invoice_path": invoice_path,
            "methods": ["cash", "cheque", "transfer", "card", "direct_debit"]}),
        flags(ctx),
    ))
}

async fn person(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>) -> Page {
    let c = person_context(&ui, &ctx, &person).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_person.html", c))
}

/// Re-renders the member's page with the form's errors under `form_name`.
async fn person_error(ui: Ui, ctx: &OrgCtx, person: &str, form_name: &str, f: &Fields, err: CoreError) -> Page {
    let c = person_context(&ui, ctx, person).await?;
    let ui = ui.with_org(ctx).await?;
    Ok(ui.form_error("members_person.html", err, merge(c, json!({"form": form_json(f), "form_name": form_name}))))
}

async fn join(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let amount = match cents(&f, "amount", "amount_cents") {
        Ok(a) => a,
        Err(e) => return person_error(ui, &ctx, &person, "join", &f, e).await,
    };
    let input = JoinInput {
        type_id: field(&f, "type_id").into(),
        starts_on: opt(&f, "starts_on"),
        tier: opt(&f, "tier"),
        amount_cents: amount,
        request_key: opt(&f, "request_key"),
    };
    match service::join(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &person, input).await {
        Ok(_) => Ok(back(&ctx, &format!("/people/{person}"))),
        Err(e) => person_error(ui, &ctx, &person, "join", &f, ce(e)).await,
    }
}

async fn renew(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = RenewInput {
        type_id: field(&f, "type_id").into(),
        on: opt(&f, "on"),
        tier: None,
        amount_cents: None,
        request_key: opt(&f, "request_key"),
    };
    match service::renew(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &person, input).await {
        Ok(_) => Ok(back(&ctx, &format!("/people/{person}"))),
        Err(e) => person_error(ui, &ctx, &person, "renew", &f, ce(e)).await,
    }
}

async fn pay(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let amount = match cents(&f, "amount", "amount_cents") {
        Ok(a) => a,
        Err(e) => return person_error(ui, &ctx, &person, "pay", &f, e).await,
    };
    // Dues as invoices: the payment of the member's dues invoice.
    let path = service::settings(&ui.st.db, cap.org()).await.map_err(ce)?.dues_path;
    if path == service::DuesPath::Invoice {
        let input = crate::billing::InvoicePaymentInput {
            person_id: person.clone(),
            period_id: opt(&f, "period_id"),
            amount_cents: amount,
            method: field(&f, "method").into(),
            paid_on: opt(&f, "paid_on"),
            cheque_number: opt(&f, "cheque_number"),
            reference: opt(&f, "reference"),
            request_key: opt(&f, "request_key"),
        };
        return match crate::billing::record_invoice_payments(&ui.st, &ctx.who(), &cap, &ctx.org.timezone, vec![input])
            .await
        {
            Ok(_) => Ok(back(&ctx, &format!("/people/{person}"))),
            Err(e) => person_error(ui, &ctx, &person, "pay", &f, ce(e)).await,
        };
    }
    let input = DueInput {
        person_id: person.clone(),
        period_id: opt(&f, "period_id"),
        amount_cents: amount,
        method: field(&f, "method").into(),
        paid_on: opt(&f, "paid_on"),
        request_key: opt(&f, "request_key"),
    };
    match service::record_due(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await {
        Ok(_) => Ok(back(&ctx, &format!("/people/{person}"))),
        Err(e) => person_error(ui, &ctx, &person, "pay", &f, ce(e)).await,
    }
}

async fn profile(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let address = Address {
        street: field(&f, "street").into(),
        postcode: field(&f, "postcode").into(),
        city: field(&f, "city").into(),
        country: field(&f, "country").into(),
    };
    let db = &ui.st.db;
    let mut result =
        service::set_profile(db, &ctx.who(), &cap, &person, ProfileInput { address: Some(address) }).await.map(|_| ());
    if result.is_ok() {
        if let Some(h) = opt(&f, "household_id") {
            let link = HouseholdLink { person_id: Some(person.clone()), role: opt(&f, "household_role") };
            result = service::link_household(db, &ctx.who(), &cap, &h, link).await.map(|_| ());
        }
    }
    match result {
        Ok(()) => Ok(back(&ctx, &format!("/people/{person}"))),
        Err(e) => person_error(ui, &ctx, &person, "profile", &f, ce(e)).await,
    }
}

async fn close(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let person = field(&f, "person_id").to_string();
    let input = CloseInput { reason: opt(&f, "reason"), on: opt(&f, "on"), note: field(&f, "note").into() };
    match service::close_period(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &id, input).await {
        Ok(p) => Ok(back(&ctx, &format!("/people/{}", p.person_id))),
        Err(e) => person_error(ui, &ctx, &person, "close", &f, ce(e)).await,
    }
}

// ---------- types ----------

async fn types_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let types = service::types(&ui.st.db, &cap).await.map_err(ce)?;
    Ok(merge(
        json!({"types": types,
            "kinds": ["individual", "family", "legal_entity", "honorary", "free"],
            "fee_rules": ["fixed", "tiers", "free_amount", "prorated"],
            "period_rules": ["calendar_year", "school_year", "rolling_12_months", "lifetime"]}),
        flags(ctx),
    ))
}

async fn types(ui: Ui, ctx: OrgCtx) -> Page {
    let c = types_context(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_types.html", c))
}

/// Tiers written one per line: `Student: 10.00`.
fn parse_tiers(s: &str) -> Result<Vec<Tier>, CoreError> {
    let mut out = Vec::new();
    for (i, line) in s.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let Some((label, amount)) = line.rsplit_once(':') else {
            return Err(CoreError::validation("tiers", &format!("Line {}: write a tier as Name: 10.00.", i + 1)));
        };
        let a = Amount::parse(amount)
            .map_err(|m| CoreError::Validation(vec![FieldError::new("tiers", format!("Line {}: {m}", i + 1))]))?;
        out.push(Tier { label: label.trim().into(), fee_cents: a.0 });
    }
    Ok(out)
}

async fn type_save(ui: Ui, ctx: OrgCtx, id: Option<String>, f: Fields) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let parsed = (|| -> Result<TypeInput, CoreError> {
        Ok(TypeInput {
            name: Some(field(&f, "name").into()),
            kind: Some(field(&f, "kind").into()),
            fee_rule: Some(field(&f, "fee_rule").into()),
            fee_cents: Some(cents(&f, "fee", "fee_cents")?.unwrap_or(0)),
            tiers: Some(parse_tiers(field(&f, "tiers"))?),
            period_rule: Some(field(&f, "period_rule").into()),
            school_start_month: field(&f, "school_start_month").parse().ok(),
            voting: Some(field(&f, "voting") == "1"),
            archived: Some(field(&f, "archived") == "1"),
        })
    })();
    let result = match parsed {
        Ok(input) => match &id {
            Some(id) => service::update_type(&ui.st.db, &ctx.who(), &cap, id, input).await.map_err(ce),
            None => service::create_type(&ui.st.db, &ctx.who(), &cap, input).await.map_err(ce),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(back(&ctx, "/types")),
        Err(e) => {
            let c = types_context(&ui, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_types.html", e, merge(c, json!({"form": form_json(&f), "editing": id}))))
        }
    }
}

async fn type_create(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    type_save(ui, ctx, None, f).await
}

async fn type_update(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    type_save(ui, ctx, Some(id), f).await
}

// ---------- households ----------

async fn households_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let list = service::households(&ui.st.db, &cap).await.map_err(ce)?;
    Ok(merge(json!({"households": list}), flags(ctx)))
}

async fn households(ui: Ui, ctx: OrgCtx) -> Page {
    let c = households_context(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_households.html", c))
}

async fn household_create(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = HouseholdInput {
        kind: Some(field(&f, "kind").into()),
        name: Some(field(&f, "name").into()),
        email: opt(&f, "email"),
        address: Some(Address {
            street: field(&f, "street").into(),
            postcode: field(&f, "postcode").into(),
            city: field(&f, "city").into(),
            country: field(&f, "country").into(),
        }),
    };
    match service::create_household(&ui.st.db, &ctx.who(), &cap, input).await {
        Ok(_) => Ok(back(&ctx, "/households")),
        Err(e) => {
            let c = households_context(&ui, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_households.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

async fn household_unlink(ui: Ui, ctx: OrgCtx, Path((_, id, person)): Path<(String, String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    service::unlink_household(&ui.st.db, &ctx.who(), &cap, &id, &person).await.map_err(ce)?;
    Ok(back(&ctx, "/households"))
}

// ---------- dues ----------

#[derive(serde::Deserialize, Default)]
struct DuesQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn dues_context(ui: &Ui, ctx: &OrgCtx, q: &DuesQuery) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let f = DueFilter { person_id: None, from: q.from.clone(), to: q.to.clone(), limit: Some(500) };
    let list = service::dues(&ui.st.db, &cap, &f).await.map_err(ce)?;
    let total: i64 = list.iter().filter(|d| d.status == "paid").map(|d| d.amount_cents).sum();
    // Who owes dues today: the board's list for bulk recording.
    let unpaid = service::members(
        &ui.st.db,
        &cap,
        &ctx.org.timezone,
        &MemberFilter { standing: Some("dues_unpaid".into()), limit: Some(1000), ..Default::default() },
    )
    .await
    .map_err(ce)?;
    let invoice_path =
        service::settings(&ui.st.db, cap.org()).await.map_err(ce)?.dues_path == service::DuesPath::Invoice;
    Ok(merge(
        json!({"dues": list, "total_cents": total, "filter": {"from": q.from, "to": q.to}, "unpaid": unpaid,
            "invoice_path": invoice_path,
            "today": service::today(&ctx.org.timezone).to_string(),
            "methods": ["cash", "cheque", "transfer", "card", "direct_debit"]}),
        flags(ctx),
    ))
}

async fn dues(ui: Ui, ctx: OrgCtx, Query(q): Query<DuesQuery>) -> Page {
    let c = dues_context(&ui, &ctx, &q).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_dues.html", c))
}

/// Records the dues of every ticked member (what is left on their current
/// period), with one method and date.
async fn dues_bulk(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let path = service::settings(&ui.st.db, cap.org()).await.map_err(ce)?.dues_path;
    if path == service::DuesPath::Invoice {
        return dues_bulk_invoices(ui, ctx, cap, f).await;
    }
    let items: Vec<DueInput> = all(&f, "period_ids")
        .into_iter()
        .filter_map(|v| {
            let (person, period) = v.split_once(':')?;
            Some(DueInput {
                person_id: person.into(),
                period_id: Some(period.into()),
                amount_cents: None,
                method: field(&f, "method").into(),
                paid_on: opt(&f, "paid_on"),
                request_key: None,
            })
        })
        .collect();
    match service::record_dues(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, BulkDues { items }).await {
        Ok(_) => Ok(back(&ctx, "/dues")),
        Err(e) => {
            let c = dues_context(&ui, &ctx, &DuesQuery::default()).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_dues.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

// ---------- settings ----------

async fn settings(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let s = service::settings(&ui.st.db, cap.org()).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_settings.html", merge(json!({"settings": s, "form": s}), flags(&ctx))))
}

async fn settings_save(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let s = Settings {
        dues_path: if field(&f, "dues_path") == "invoice" {
            service::DuesPath::Invoice
        } else {
            service::DuesPath::Receipt
        },
        dues_account: field(&f, "dues_account").into(),
        bank_account: field(&f, "bank_account").into(),
        cash_account: field(&f, "cash_account").into(),
        donations_account: field(&f, "donations_account").into(),
        legal_name: field(&f, "legal_name").into(),
        street: field(&f, "street").into(),
        postcode: field(&f, "postcode").into(),
        city: field(&f, "city").into(),
        object: field(&f, "object").into(),
        organism_kind: field(&f, "organism_kind").into(),
        signatory: field(&f, "signatory").into(),
    };
    match service::save_settings(&ui.st.db, &ctx.who(), &cap, s).await {
        Ok(_) => Ok(back(&ctx, "/settings")),
        Err(e) => {
            let current = service::settings(&ui.st.db, cap.org()).await.map_err(ce)?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error(
                "members_settings.html",
                ce(e),
                merge(json!({"settings": current, "form": form_json(&f)}), flags(&ctx)),
            ))
        }
    }
}

// ---------- donations and tax receipts ----------

#[derive(serde::Deserialize, Default)]
struct DonationsQuery {
    year: Option<i64>,
    /// The donor search: a name or an e-mail of the directory.
    find: Option<String>,
    /// A donor chosen beforehand (shown checked in the form).
    person_id: Option<String>,
}

/// Donors offered by one search of the donations form.
const DONOR_CHOICES: i64 = 20;

/// The donors the form offers: the directory's people matching `find`
/// (anyone, member or not, searched through the directory's index: never
/// the whole directory), the chosen one first. Empty, with `can_search`
/// false, when the role may not read the directory.
async fn donor_choices(ui: &Ui, ctx: &OrgCtx, find: Option<&str>, chosen: Option<&str>) -> Result<Value, CoreError> {
    let Ok(core) = ctx.can_read("core") else {
        return Ok(json!({"found": [], "more": false, "can_search": false}));
    };
    let db = &ui.st.db;
    let (mut found, more) = match find {
        Some(q) => {
            let q = shrooms_core::people::ListQuery {
                q: Some(q.to_string()),
                filters: vec![],
                sort: Default::default(),
                cursor: None,
                limit: DONOR_CHOICES,
            };
            let page = shrooms_core::people::list(db, &core, &q).await?;
            (page.items, page.next_cursor.is_some())
        }
        None => (vec![], false),
    };
    if let Some(id) = chosen {
        match found.iter().position(|p| p.id.to_string() == id) {
            Some(i) => {
                let p = found.remove(i);
                found.insert(0, p);
            }
            None => match shrooms_core::people::get(db, &core, id).await {
                Ok(p) => found.insert(0, p),
                // A chosen id that is not (or no longer) there: the form says so on submit.
                Err(CoreError::NotFound) => {}
                Err(e) => return Err(e),
            },
        }
    }
    let found: Vec<Value> = found
        .iter()
        .map(|p| json!({"id": p.id.to_string(), "name": format!("{} {}", p.given_name, p.family_name).trim(), "email": p.email}))
        .collect();
    Ok(json!({"found": found, "more": more, "can_search": true}))
}

/// The donations page. `light` (a search typed in the donor field, asked
/// by htmx) leaves out the year's lists: only the donor choices are used.
async fn donations_context(
    ui: &Ui,
    ctx: &OrgCtx,
    year: Option<i64>,
    find: Option<&str>,
    chosen: Option<&str>,
    light: bool,
) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let year = year.unwrap_or_else(|| service::today(&ctx.org.timezone).year() as i64);
    let find = find.map(str::trim).filter(|s| !s.is_empty());
    let chosen = chosen.map(str::trim).filter(|s| !s.is_empty());
    let choices =
        if ctx.access(MODULE) >= Access::Write { donor_choices(ui, ctx, find, chosen).await? } else { json!({}) };
    let (list, receipts, plans) = if light {
        (vec![], vec![], vec![])
    } else {
        let list =
            donations::donations(db, &cap, &DonationFilter { person_id: None, year: Some(year) }).await.map_err(ce)?;
        let active = GiftPlanFilter { status: Some("active".into()) };
        // Each "Received" button carries its own key: clicked twice, one gift.
        let plans = gift_plans::list(db, &cap, &ctx.org.timezone, &active)
            .await
            .map_err(ce)?
            .into_iter()
            .map(|p| merge(json!(p), json!({"request_key": uuid::Uuid::now_v7().to_string()})))
            .collect();
        (list, donations::receipts(db, &cap, Some(year)).await.map_err(ce)?, plans)
    };
    let totals = donations::totals(db, &cap, year).await.map_err(ce)?;
    Ok(merge(
        merge(
            json!({"donations": list, "receipts": receipts, "plans": plans, "totals": totals, "year": year,
                "find": find.unwrap_or(""),
                "chosen": chosen, "can_add_person": ctx.access("core") >= Access::Write,
                "today": service::today(&ctx.org.timezone).to_string(), "request_key": uuid::Uuid::now_v7().to_string()}),
            choices,
        ),
        flags(ctx),
    ))
}

async fn donations_page(ui: Ui, ctx: OrgCtx, Query(q): Query<DonationsQuery>) -> Page {
    // Typed in the donor field: htmx takes the choices out of the page.
    let light = ui.htmx && q.find.is_some();
    let c = donations_context(&ui, &ctx, q.year, q.find.as_deref(), q.person_id.as_deref(), light).await?;
    let ui = ui.with_org(&ctx).await?;
    let mut resp = ui.render("members_donations.html", c);
    resp.headers_mut().insert(axum::http::header::VARY, axum::http::HeaderValue::from_static("HX-Request"));
    Ok(resp)
}

async fn donation_create(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let result = match cents(&f, "amount", "amount_cents") {
        Ok(amount) => {
            let input = DonationInput {
                person_id: field(&f, "person_id").into(),
                donor_kind: opt(&f, "donor_kind"),
                company_name: opt(&f, "company_name"),
                siren: opt(&f, "siren"),
                legal_form: opt(&f, "legal_form"),
                amount_cents: amount.unwrap_or(0),
                received_on: opt(&f, "received_on"),
                form: opt(&f, "form"),
                nature: opt(&f, "nature"),
                method: opt(&f, "method"),
                recurring: field(&f, "recurring") == "1",
                request_key: opt(&f, "request_key"),
            };
            donations::record_donation(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, input)
                .await
                .map(|_| ())
                .map_err(ce)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(back(&ctx, "/donations")),
        Err(e) => {
            let c =
                donations_context(&ui, &ctx, None, opt(&f, "find").as_deref(), opt(&f, "person_id").as_deref(), false)
                    .await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_donations.html", e, merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

async fn donation_receipt(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    match donations::issue_receipt(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &id).await {
        Ok(_) => Ok(back(&ctx, "/donations")),
        Err(e) => {
            let c = donations_context(&ui, &ctx, None, None, None, false).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_donations.html", ce(e), c))
        }
    }
}

async fn receipts_batch(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let year: i64 = field(&f, "year").parse().unwrap_or(0);
    let input = YearBatch { year, email: field(&f, "email") == "1" };
    match donations::issue_year(&ui.st, &ctx.who(), &cap, &ctx.org.timezone, &ctx.org.slug, input).await {
        Ok(report) => {
            let c = donations_context(&ui, &ctx, Some(year), None, None, false).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.render("members_donations.html", merge(c, json!({"report": report}))))
        }
        Err(e) => {
            let c = donations_context(&ui, &ctx, None, None, None, false).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_donations.html", ce(e), merge(c, json!({"form": form_json(&f)}))))
        }
    }
}

/// The donations page again with a gift plan form's error (`plan_form`
/// keeps the donation form's fields apart).
async fn gift_plan_error(ui: Ui, ctx: &OrgCtx, f: &Fields, e: CoreError) -> Page {
    let c = donations_context(&ui, ctx, None, opt(f, "find").as_deref(), opt(f, "person_id").as_deref(), false).await?;
    let ui = ui.with_org(ctx).await?;
    Ok(ui.form_error("members_donations.html", e, merge(c, json!({"form": form_json(f), "plan_form": true}))))
}

async fn gift_plan_create(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let result = match cents(&f, "amount", "amount_cents") {
        Ok(amount) => {
            let input = GiftPlanInput {
                person_id: field(&f, "person_id").into(),
                amount_cents: amount.unwrap_or(0),
                frequency: field(&f, "frequency").into(),
                method: opt(&f, "method"),
                form: None,
                nature: None,
                first_on: opt(&f, "first_on"),
                ends_on: opt(&f, "ends_on"),
            };
            gift_plans::create(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, input).await.map(|_| ()).map_err(ce)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(back(&ctx, "/donations")),
        Err(e) => gift_plan_error(ui, &ctx, &f, e).await,
    }
}

async fn gift_plan_receive(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input =
        ReceiveInput { received_on: opt(&f, "received_on"), amount_cents: None, request_key: opt(&f, "request_key") };
    match gift_plans::receive(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &id, input).await {
        Ok(_) => Ok(back(&ctx, "/donations")),
        Err(e) => gift_plan_error(ui, &ctx, &f, ce(e)).await,
    }
}

async fn gift_plan_stop(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    match gift_plans::stop(&ui.st.db, &ctx.who(), &cap, &ctx.org.timezone, &id).await {
        Ok(_) => Ok(back(&ctx, "/donations")),
        Err(e) => gift_plan_error(ui, &ctx, &f, ce(e)).await,
    }
}

async fn receipt_pdf(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let r = donations::receipt(&ui.st.db, &cap, &id).await.map_err(ce)?;
    Ok(super::api::receipt_download(&ui.st, &ctx.org, &r).await?)
}

/// The link mailed to a donor: the receipt, for whoever holds the token.
async fn public_receipt(State(st): State<AppState>, Path((org, token)): Path<(String, String)>) -> Page {
    let org = shrooms_core::orgs::find_org(&st.db, &org).await?.ok_or(CoreError::NotFound)?;
    let r = donations::receipt_by_token(&st.db, org.id, &token).await.map_err(ce)?.ok_or(CoreError::NotFound)?;
    Ok(super::api::receipt_download(&st, &org, &r).await?)
}

// ---------- SEPA direct debit ----------

async fn sepa_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let db = &ui.st.db;
    let creditor = debits::creditor(db, cap.org()).await.map_err(ce)?;
    let mandates = debits::mandates(db, &cap, None).await.map_err(ce)?;
    let batches = debits::batches(db, &cap).await.map_err(ce)?;
    let people =
        service::members(db, &cap, &ctx.org.timezone, &MemberFilter { limit: Some(2000), ..Default::default() })
            .await
            .map_err(ce)?;
    Ok(merge(json!({"creditor": creditor, "mandates": mandates, "batches": batches, "people": people}), flags(ctx)))
}

async fn sepa_page(ui: Ui, ctx: OrgCtx) -> Page {
    let c = sepa_context(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_sepa.html", c))
}

async fn sepa_error(ui: Ui, ctx: &OrgCtx, form_name: &str, f: &Fields, e: CoreError) -> Page {
    let c = sepa_context(&ui, ctx).await?;
    let ui = ui.with_org(ctx).await?;
    Ok(ui.form_error("members_sepa.html", e, merge(c, json!({"form": form_json(f), "form_name": form_name}))))
}

async fn sepa_creditor(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let c = Creditor {
        name: field(&f, "name").into(),
        iban: field(&f, "iban").into(),
        bic: field(&f, "bic").into(),
        ics: field(&f, "ics").into(),
        address: Address {
            street: field(&f, "street").into(),
            postcode: field(&f, "postcode").into(),
            city: field(&f, "city").into(),
            country: field(&f, "country").into(),
        },
    };
    match debits::save_creditor(&ui.st.db, &ctx.who(), &cap, c).await {
        Ok(_) => Ok(back(&ctx, "/sepa")),
        Err(e) => sepa_error(ui, &ctx, "creditor", &f, ce(e)).await,
    }
}

async fn sepa_mandate(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = MandateInput {
        person_id: field(&f, "person_id").into(),
        reference: opt(&f, "reference"),
        iban: opt(&f, "iban"),
        bic: opt(&f, "bic"),
        debtor_name: opt(&f, "debtor_name"),
        signed_on: opt(&f, "signed_on"),
    };
    match debits::create_mandate(&ui.st.db, &ui.st.data_key, &ctx.who(), &cap, &ctx.org.timezone, input).await {
        Ok(_) => Ok(back(&ctx, "/sepa")),
        Err(e) => sepa_error(ui, &ctx, "mandate", &f, ce(e)).await,
    }
}

/// A batch of every member who owes dues and has an active mandate.
async fn sepa_batch(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let db = &ui.st.db;
    let mandates = debits::mandates(db, &cap.as_read(), None).await.map_err(ce)?;
    let owing = service::members(
        db,
        &cap.as_read(),
        &ctx.org.timezone,
        &MemberFilter { standing: Some("dues_unpaid".into()), limit: Some(5000), ..Default::default() },
    )
    .await
    .map_err(ce)?;
    let items: Vec<CollectionItem> = owing
        .iter()
        .filter(|r| mandates.iter().any(|m| m.person_id == r.person_id && m.status == "active"))
        .filter_map(|r| {
            r.standing.period.as_ref().map(|p| CollectionItem {
                person_id: r.person_id.clone(),
                period_id: Some(p.id.clone()),
                amount_cents: None,
            })
        })
        .collect();
    let input = CollectionInput { collection_date: opt(&f, "collection_date"), items, request_key: None };
    match debits::create_batch(&ui.st, &ctx.who(), &cap, &ctx.org.timezone, input).await {
        Ok(_) => Ok(back(&ctx, "/sepa")),
        Err(e) => sepa_error(ui, &ctx, "batch", &f, ce(e)).await,
    }
}

async fn sepa_batch_xml(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let (name, xml) = debits::batch_xml(&ui.st.db, &cap, &id).await.map_err(ce)?;
    Ok(super::api::xml_download(&name, xml))
}

async fn sepa_returns(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let input = ReturnsInput { content: field(&f, "content").into(), returned_on: opt(&f, "returned_on") };
    match debits::import_returns(&ui.st, &ctx.who(), &cap, &ctx.org.timezone, input).await {
        Ok(report) => {
            let c = sepa_context(&ui, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.render("members_sepa.html", merge(c, json!({"report": report}))))
        }
        Err(e) => sepa_error(ui, &ctx, "returns", &f, ce(e)).await,
    }
}

// ---------- membership card ----------

async fn card(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let db = &ui.st.db;
    let token = service::card_token(db, &ctx.who(), &cap, &person).await.map_err(ce)?;
    let m = service::membership(db, &cap.as_read(), &ctx.org.timezone, &person).await.map_err(ce)?;
    let url = format!("{}/o/{}/members/check/{token}", ui.st.base_url(), ctx.org.slug);
    let colour = ctx.org.color_primary.clone().unwrap_or_else(|| "#2f5d8a".into());
    let body = service::card_pdf(&m, &ctx.org.name, &colour, &url, &ui.page.lang);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, "inline; filename=\"carte.pdf\"".to_string()),
        ],
        body,
    )
        .into_response())
}

/// The page a card's QR code opens: valid today or not, for anyone with the link.
async fn check(ui: Ui, Path((org, token)): Path<(String, String)>) -> Page {
    let org = shrooms_core::orgs::find_org(&ui.st.db, &org).await?.ok_or(CoreError::NotFound)?;
    let found = service::check_card(&ui.st.db, org.id, &org.timezone, &token).await.map_err(ce)?;
    let c = match found {
        Some((p, s)) => json!({"found": true, "name": service::display_name(&p), "standing": s, "org_name": org.name}),
        None => match crate::selfservice::revoked_card(&ui.st.db, org.id, &token).await.map_err(ce)? {
            Some((p, on)) => json!({"found": false, "revoked": true, "name": service::display_name(&p),
                "revoked_on": on, "org_name": org.name}),
            None => json!({"found": false, "org_name": org.name}),
        },
    };
    Ok(ui.render("members_check.html", c))
}

async fn export(ui: Ui, ctx: OrgCtx, Path((_, file)): Path<(String, String)>, Query(q): Query<IndexQuery>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let ods = match file.as_str() {
        "export.csv" => false,
        "export.ods" => true,
        _ => return Err(CoreError::NotFound.into()),
    };
    let f = MemberFilter { q: q.q, standing: q.standing, type_id: q.type_id, limit: None, cursor: None };
    let body = service::export(&ui.st.db, &cap, &ctx.org.timezone, &f, ods).await.map_err(ce)?;
    let (name, ct) = if ods {
        ("members.ods", "application/vnd.oasis.opendocument.spreadsheet")
    } else {
        ("members.csv", "text/csv; charset=utf-8")
    };
    Ok(super::api::file_download(name, ct, body))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members", get(index))
        .route("/o/{org}/members/bulk", post(bulk))
        .route("/o/{org}/members/list/{file}", get(export))
        .route("/o/{org}/members/people/{person}", get(person))
        .route("/o/{org}/members/people/{person}/join", post(join))
        .route("/o/{org}/members/people/{person}/renew", post(renew))
        .route("/o/{org}/members/people/{person}/pay", post(pay))
        .route("/o/{org}/members/people/{person}/profile", post(profile))
        .route("/o/{org}/members/periods/{id}/close", post(close))
        .route("/o/{org}/members/types", get(types).post(type_create))
        .route("/o/{org}/members/types/{id}", post(type_update))
        .route("/o/{org}/members/households", get(households).post(household_create))
        .route("/o/{org}/members/households/{id}/members/{person}/remove", post(household_unlink))
        .route("/o/{org}/members/dues", get(dues))
        .route("/o/{org}/members/dues/bulk", post(dues_bulk))
        .route("/o/{org}/members/settings", get(settings).post(settings_save))
        .route("/o/{org}/members/donations", get(donations_page).post(donation_create))
        .route("/o/{org}/members/donations/{id}/receipt", post(donation_receipt))
        .route("/o/{org}/members/gift-plans", post(gift_plan_create))
        .route("/o/{org}/members/gift-plans/{id}/receive", post(gift_plan_receive))
        .route("/o/{org}/members/gift-plans/{id}/stop", post(gift_plan_stop))
        .route("/o/{org}/members/tax-receipts/batch", post(receipts_batch))
        .route("/o/{org}/members/tax-receipts/{id}/pdf", get(receipt_pdf))
        .route("/o/{org}/members/receipts/{token}", get(public_receipt))
        .route("/o/{org}/members/people/{person}/card.pdf", get(card))
        .route("/o/{org}/members/check/{token}", get(check))
        .route("/o/{org}/members/sepa", get(sepa_page))
        .route("/o/{org}/members/sepa/creditor", post(sepa_creditor))
        .route("/o/{org}/members/sepa/mandates", post(sepa_mandate))
        .route("/o/{org}/members/sepa/batches", post(sepa_batch))
        .route("/o/{org}/members/sepa/batches/{id}/xml", get(sepa_batch_xml))
        .route("/o/{org}/members/sepa/returns", post(sepa_returns))
}
