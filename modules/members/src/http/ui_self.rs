//! Pages of self-service: the public join form, the member space, the
//! requests a secretary decides, the self-service settings, card revocation.
//! Forms re-render with field errors and what was typed.

use super::api_self::{self, Address as ClientAddress};
use crate::error::MemError;
use crate::selfservice::{self, Decision, JoinForm, JoinMode, ProfileChange, SelfSettings, PROFILE_FIELDS};
use crate::service::{self, Address, MODULE};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use shrooms_accounting::domain::Amount;
use shrooms_core::error::{CoreError, FieldError};
use shrooms_core::permissions::Access;
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::{AppState, OrgCtx, Visitor};

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

fn form_json(f: &Fields) -> Value {
    Value::Object(f.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn back(slug: &str, path: &str) -> Response {
    Redirect::to(&format!("/o/{slug}/members{path}")).into_response()
}

fn address_of(f: &Fields) -> Address {
    Address {
        street: field(f, "street").into(),
        postcode: field(f, "postcode").into(),
        city: field(f, "city").into(),
        country: field(f, "country").into(),
    }
}

/// The page context of a visitor: the organisation's menu for its members,
/// its name and colours for anyone else.
async fn ui_for(ui: Ui, v: &Visitor) -> Result<Ui, CoreError> {
    match &v.ctx {
        Some(ctx) => ui.with_org(ctx).await,
        None => {
            let mut ui = ui;
            let o = &v.org;
            ui.page.org = Some(
                json!({"id": o.id, "slug": o.slug, "name": o.name, "logo_url": o.logo_url, "color_primary": o.color_primary, "color_accent": o.color_accent, "is_admin": false}),
            );
            Ok(ui)
        }
    }
}

// ---------- the public join form ----------

/// What the form needs besides the offer: the tiers to choose from, and
/// whether a type takes a free amount.
fn offer_extras(offer: &selfservice::JoinOffer) -> Value {
    let money = |c: i64| format!("{}.{:02}", c / 100, c % 100);
    let tiers: Vec<Value> = offer
        .types
        .iter()
        .flat_map(|t| t.tiers.iter().map(move |ti| (t, ti)))
        .map(|(t, ti)| json!([ti.label, format!("{} · {} · {}", t.name, ti.label, money(ti.fee_cents))]))
        .collect();
    let has_free = offer.types.iter().any(|t| t.fee_rule == crate::domain::FeeRule::FreeAmount);
    json!({"tier_options": tiers, "has_free": has_free})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

async fn join_page(State(st): State<AppState>, v: Visitor, ui: Ui) -> Page {
    let offer = selfservice::offer(&st.db, &v.org).await.map_err(ce)?;
    let ui = ui_for(ui, &v).await?;
    let form = json!({"country": "FR", "type_id": offer.types.first().map(|t| t.id.clone())});
    let extras = offer_extras(&offer);
    Ok(ui.render(
        "members_join.html",
        merge(
            json!({"step": "form", "offer": offer, "form": form, "submission_id": uuid::Uuid::now_v7().to_string()}),
            extras,
        ),
    ))
}

async fn join_submit(
    State(st): State<AppState>,
    v: Visitor,
    ClientAddress(addr): ClientAddress,
    ui: Ui,
    Form(f): Form<Fields>,
) -> Page {
    let offer = selfservice::offer(&st.db, &v.org).await.map_err(ce)?;
    let ui = ui_for(ui, &v).await?;
    let amount = match opt(&f, "amount") {
        None => Ok(None),
        Some(s) => Amount::parse(&s)
            .map(|a| Some(a.0))
            .map_err(|m| CoreError::Validation(vec![FieldError::new("amount_cents", m)])),
    };
    let submission = opt(&f, "submission_id");
    let result = match amount {
        Ok(amount_cents) => {
            let form = JoinForm {
                given_name: field(&f, "given_name").into(),
                family_name: field(&f, "family_name").into(),
                email: field(&f, "email").into(),
                phone: field(&f, "phone").into(),
                address: address_of(&f),
                type_id: field(&f, "type_id").into(),
                tier: opt(&f, "tier"),
                amount_cents,
                consent: !field(&f, "consent").is_empty(),
                submission_id: submission.clone(),
            };
            let grant = v.public_form_grant(MODULE);
            selfservice::submit_join(&st, &v.who(), &grant, &v.org, form, &addr).await.map_err(ce)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(answer) => Ok(ui.render("members_join.html", json!({"step": "done", "offer": offer, "answer": answer}))),
        Err(e) => {
            let extras = offer_extras(&offer);
            let c = json!({"step": "form", "offer": offer, "form": form_json(&f),
                "submission_id": submission.unwrap_or_else(|| uuid::Uuid::now_v7().to_string())});
            Ok(ui.form_error("members_join.html", e, merge(c, extras)))
        }
    }
}

// ---------- the member space ----------

async fn me_context(ui: &Ui, ctx: &OrgCtx) -> Result<Value, CoreError> {
    let st = &ui.st;
    let Some(o) = selfservice::own(&st.db, ctx).await.map_err(ce)? else {
        return Ok(json!({"linked": false}));
    };
    let space = selfservice::my_space(st, &o, &ctx.org).await.map_err(ce)?;
    let p = &space.membership.person;
    // The member's own address: one shared with the household is not theirs to change here.
    let a = if p.shares_household_address { Address::default() } else { p.address.clone() };
    let form = json!({"given_name": p.given_name, "family_name": p.family_name, "email": space.email,
        "phone": space.phone, "street": a.street, "postcode": a.postcode, "city": a.city,
        "country": if a.country.is_empty() { "FR".to_string() } else { a.country.clone() }});
    Ok(json!({"linked": true, "me": space, "form": form}))
}

async fn me_page(ui: Ui, ctx: OrgCtx) -> Page {
    let c = me_context(&ui, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_me.html", c))
}

async fn me_profile(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let o = api_self::own(&ui.st, &ctx).await?;
    let input = ProfileChange {
        given_name: Some(field(&f, "given_name").into()),
        family_name: Some(field(&f, "family_name").into()),
        email: Some(field(&f, "email").into()),
        phone: Some(field(&f, "phone").into()),
        address: Some(address_of(&f)),
    };
    match selfservice::change_profile(&ui.st, &ctx.who(), &o, &ctx.org, input).await {
        Ok(out) => {
            let c = me_context(&ui, &ctx).await?;
            let ui = ui.with_org(&ctx).await?;
            let mut c = c;
            if let Some(obj) = c.as_object_mut() {
                obj.insert("outcome".into(), json!(out));
            }
            Ok(ui.render("members_me.html", c))
        }
        Err(e) => {
            let mut c = me_context(&ui, &ctx).await?;
            if let Some(obj) = c.as_object_mut() {
                obj.insert("form".into(), form_json(&f));
            }
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_me.html", ce(e), c))
        }
    }
}

async fn me_card(ui: Ui, ctx: OrgCtx) -> Page {
    Ok(api_self::card_response(&ui.st, &ctx, &ui.page.lang).await?)
}

async fn me_receipt(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let o = api_self::own(&ui.st, &ctx).await?;
    let r = selfservice::my_receipt(&ui.st.db, &o, &id).await.map_err(ce)?;
    Ok(super::api::receipt_download(&ui.st, &ctx.org, &r).await?)
}

// ---------- requests ----------

#[derive(serde::Deserialize, Default)]
struct StatusQuery {
    status: Option<String>,
}

async fn requests_context(ui: &Ui, ctx: &OrgCtx, status: &str) -> Result<Value, CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let r = selfservice::requests(&ui.st.db, &cap, status).await.map_err(ce)?;
    Ok(json!({"requests": r, "status": status, "can_write": ctx.access(MODULE) >= Access::Write}))
}

async fn requests_page(ui: Ui, ctx: OrgCtx, Query(q): Query<StatusQuery>) -> Page {
    let status = q.status.unwrap_or_else(|| "pending".into());
    let c = requests_context(&ui, &ctx, &status).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_requests.html", c))
}

async fn decide(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, kind, id, action)): Path<(String, String, String, String)>,
    Form(f): Form<Fields>,
) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let db = &ui.st.db;
    let d = Decision { note: field(&f, "note").into() };
    let who = ctx.who();
    let r = match (kind.as_str(), action.as_str()) {
        ("joins", "approve") => selfservice::approve_join(db, &who, &cap, &ctx.org, &id, d).await.map(|_| ()),
        ("joins", "refuse") => selfservice::refuse_join(db, &who, &cap, &ctx.org, &id, d).await.map(|_| ()),
        ("changes", "approve") => selfservice::approve_change(db, &who, &cap, &ctx.org, &id, d).await.map(|_| ()),
        ("changes", "reject") => selfservice::reject_change(db, &who, &cap, &ctx.org, &id, d).await.map(|_| ()),
        _ => return Err(CoreError::NotFound.into()),
    };
    match r {
        Ok(()) => Ok(back(&ctx.org.slug, "/requests")),
        Err(e) => {
            let c = requests_context(&ui, &ctx, "pending").await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_requests.html", ce(e), c))
        }
    }
}

// ---------- settings ----------

async fn settings_context(ui: &Ui, ctx: &OrgCtx) -> Result<(Value, SelfSettings), CoreError> {
    let cap = ctx.can_read(MODULE)?;
    let s = selfservice::self_settings(&ui.st.db, cap.org()).await.map_err(ce)?;
    let types = service::types(&ui.st.db, &cap).await.map_err(ce)?;
    Ok((json!({"types": types, "fields": PROFILE_FIELDS, "can_admin": ctx.access(MODULE) >= Access::Admin}), s))
}

async fn settings_page(ui: Ui, ctx: OrgCtx) -> Page {
    let (mut c, s) = settings_context(&ui, &ctx).await?;
    if let Some(o) = c.as_object_mut() {
        o.insert("form".into(), json!(s));
    }
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_join_settings.html", c))
}

async fn settings_save(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let s = SelfSettings {
        join_enabled: !field(&f, "join_enabled").is_empty(),
        join_mode: if field(&f, "join_mode") == "automatic" { JoinMode::Automatic } else { JoinMode::Approval },
        join_type_ids: all(&f, "join_type_ids"),
        terms_text: field(&f, "terms_text").into(),
        payment_instructions: field(&f, "payment_instructions").into(),
        checked_fields: all(&f, "checked_fields"),
    };
    let typed = json!(s);
    match selfservice::save_self_settings(&ui.st.db, &ctx.who(), &cap, s).await {
        Ok(_) => Ok(back(&ctx.org.slug, "/settings/self-service")),
        Err(e) => {
            let (mut c, _) = settings_context(&ui, &ctx).await?;
            if let Some(o) = c.as_object_mut() {
                o.insert("form".into(), typed);
            }
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_join_settings.html", ce(e), c))
        }
    }
}

// ---------- card revocation ----------

async fn revoke_card(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    selfservice::revoke_card(&ui.st.db, &ctx.who(), &cap, &person).await.map_err(ce)?;
    Ok(back(&ctx.org.slug, &format!("/people/{person}")))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members/join", get(join_page).post(join_submit))
        .route("/o/{org}/members/me", get(me_page))
        .route("/o/{org}/members/me/profile", post(me_profile))
        .route("/o/{org}/members/me/card.pdf", get(me_card))
        .route("/o/{org}/members/me/tax-receipts/{id}/pdf", get(me_receipt))
        .route("/o/{org}/members/requests", get(requests_page))
        .route("/o/{org}/members/requests/{kind}/{id}/{action}", post(decide))
        .route("/o/{org}/members/settings/self-service", get(settings_page).post(settings_save))
        .route("/o/{org}/members/people/{person}/card/revoke", post(revoke_card))
}
