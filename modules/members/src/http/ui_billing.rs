//! Pages of dues invoices, renewal notices and reminders: the member's
//! invoices and notices (a part of the member's page, loaded by htmx), the
//! board's late list with reminder counts (a part of the Dues page), the
//! renewal settings, and the public renewal page of the personal link.

use crate::billing;
use crate::error::MemError;
use crate::renewals::{self, RenewalSettings};
use crate::service::MODULE;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
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

/// The member's dues invoices (with "pay online") and notices: a part of the member's page.
async fn person_part(ui: Ui, ctx: OrgCtx, Path((_, person)): Path<(String, String)>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let invoices = billing::invoices_of(&ui.st, cap.org(), &ctx.org.slug, &person, true).await.map_err(ce)?;
    let notices = renewals::notices_of(&ui.st.db, &cap, &person).await.map_err(ce)?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_renew_person.html", json!({"invoices": invoices, "notices": notices})))
}

/// Who is late, with the reminders sent: a part of the Dues page.
async fn late_part(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let late = renewals::late(&ui.st.db, &cap, &ctx.org.timezone).await.map_err(ce)?;
    let can_write = ctx.access(MODULE) >= Access::Write;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("members_renew_late.html", json!({"late": late, "can_write": can_write})))
}

/// Starts a renewal run in the background and shows its progress.
async fn run_now(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    let started = match renewals::run_day(Some(field(&f, "on"))) {
        Ok(on) => renewals::start(&ui.st, &ctx.who(), &cap, on, "page").await,
        Err(e) => Err(e),
    };
    match started {
        Ok(r) => Ok(Redirect::to(&format!("/o/{}/members/renewals/runs/{}", ctx.org.slug, r.id)).into_response()),
        Err(e) => runs_render(ui, ctx, None, Some(ce(e))).await,
    }
}

async fn runs_page(ui: Ui, ctx: OrgCtx) -> Page {
    runs_render(ui, ctx, None, None).await
}

async fn run_page(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    runs_render(ui, ctx, Some(id), None).await
}

async fn run_cancel(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Page {
    let cap = ctx.can_write(MODULE)?;
    match renewals::cancel_run(&ui.st.db, &ctx.who(), &cap, &id).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/members/renewals/runs/{id}", ctx.org.slug)).into_response()),
        Err(e) => runs_render(ui, ctx, Some(id), Some(ce(e))).await,
    }
}

/// The runs, and one run's progress (the page refreshes itself while it runs).
async fn runs_render(ui: Ui, ctx: OrgCtx, id: Option<String>, err: Option<CoreError>) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let runs = renewals::list_runs(&ui.st.db, &cap).await.map_err(ce)?;
    let run = match &id {
        Some(id) => Some(renewals::get_run(&ui.st.db, &cap, id).await.map_err(ce)?),
        None => None,
    };
    let busy = run.as_ref().is_some_and(|r| matches!(r.status.as_str(), "queued" | "running" | "cancelling"));
    let c = json!({"runs": runs, "run": run, "busy": busy, "today": crate::service::today(&ctx.org.timezone).to_string(),
        "can_write": ctx.access(MODULE) >= Access::Write});
    let ui = ui.with_org(&ctx).await?;
    Ok(match err {
        None => ui.render("members_renew_runs.html", c),
        Some(e) => ui.form_error("members_renew_runs.html", e, c),
    })
}

fn settings_context(s: &RenewalSettings, ctx: &OrgCtx) -> Value {
    json!({
        "notice_days": s.notice_days.to_string(),
        "reminder_days": s.reminder_days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        "automatic": s.automatic.unwrap_or(false),
        "can_admin": ctx.access(MODULE) >= Access::Admin,
    })
}

/// The renewal settings form: the whole page, or only the form for the settings page (`HX-Request`).
async fn settings_page(ui: Ui, ctx: OrgCtx) -> Page {
    let cap = ctx.can_read(MODULE)?;
    let s = renewals::settings(&ui.st.db, cap.org()).await.map_err(ce)?;
    let name = if ui.htmx { "members_renew_settings_form.html" } else { "members_renew_settings.html" };
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(name, settings_context(&s, &ctx)))
}

async fn settings_save(ui: Ui, ctx: OrgCtx, Form(f): Form<Fields>) -> Page {
    let cap = ctx.can_admin(MODULE)?;
    let automatic = !field(&f, "automatic").is_empty();
    let typed = json!({"notice_days": field(&f, "notice_days"), "reminder_days": field(&f, "reminder_days"),
        "automatic": automatic, "can_admin": true});
    let mut errors = Vec::new();
    let notice_days = field(&f, "notice_days").parse::<i64>().unwrap_or_else(|_| {
        errors.push(FieldError::new("notice_days", "Give a number of days."));
        0
    });
    let mut reminder_days = Vec::new();
    for part in field(&f, "reminder_days").split([',', ';', ' ']).filter(|s| !s.trim().is_empty()) {
        match part.trim().parse::<i64>() {
            Ok(d) => reminder_days.push(d),
            Err(_) => {
                errors.push(FieldError::new("reminder_days", "Write days separated by commas, such as 15, 45."));
                break;
            }
        }
    }
    let result = if errors.is_empty() {
        renewals::save_settings(
            &ui.st.db,
            &ctx.who(),
            &cap,
            RenewalSettings { notice_days, reminder_days, automatic: Some(automatic) },
        )
        .await
        .map_err(ce)
    } else {
        Err(CoreError::Validation(errors))
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/members/settings", ctx.org.slug)).into_response()),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("members_renew_settings.html", e, typed))
        }
    }
}

fn public_ui(mut ui: Ui, v: &Visitor) -> Ui {
    let o = &v.org;
    ui.page.org = Some(
        json!({"id": o.id, "slug": o.slug, "name": o.name, "logo_url": o.logo_url, "color_primary": o.color_primary, "color_accent": o.color_accent, "is_admin": false}),
    );
    ui
}

/// The personal renewal link: who, which membership, the fee, a button.
async fn renew_page(ui: Ui, v: Visitor, Path((_, token)): Path<(String, String)>) -> Page {
    let view = renewals::renew_by_token(&ui.st, &v.org, &token, false).await.map_err(ce)?;
    let ui = public_ui(ui, &v);
    Ok(ui.render("members_renew.html", json!({"r": view, "token": token, "org_name": v.org.name, "done": false})))
}

async fn renew_submit(ui: Ui, v: Visitor, Path((_, token)): Path<(String, String)>) -> Page {
    let view = renewals::renew_by_token(&ui.st, &v.org, &token, true).await.map_err(ce)?;
    if let Some(p) = view.pay_path.as_deref().filter(|_| !view.paid) {
        return Ok(Redirect::to(p).into_response());
    }
    let ui = public_ui(ui, &v);
    Ok(ui.render("members_renew.html", json!({"r": view, "token": token, "org_name": v.org.name, "done": true})))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/members/people/{person}/billing", get(person_part))
        .route("/o/{org}/members/dues/late", get(late_part))
        .route("/o/{org}/members/renewals/run", post(run_now))
        .route("/o/{org}/members/renewals/runs", get(runs_page))
        .route("/o/{org}/members/renewals/runs/{id}", get(run_page))
        .route("/o/{org}/members/renewals/runs/{id}/cancel", post(run_cancel))
        .route("/o/{org}/members/renewal-settings", get(settings_page).post(settings_save))
        .route("/o/{org}/members/renew/{token}", get(renew_page).post(renew_submit))
}
