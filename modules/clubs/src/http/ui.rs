//! The clubs' pages (`/o/{org}/clubs…`): public for anyone with the link,
//! with the restricted parts shown to the club's executives.

use super::api::{self, attend_url, ActivityPage, GalleryQuery, Period};
use super::{read_multipart, Address};
use crate::access::Viewer;
use crate::domain::State;
use crate::service::{self, ParticipantFilter};
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, Request, State as AxState};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use shrooms_core::web::ui::{Ui, UiError};
use shrooms_core::web::AppState;
use shrooms_core::{CoreError, CoreResult};
use std::collections::HashMap;

type Page = Result<Response, UiError>;

/// Adds the organisation (branding, and the menu for members) to the page.
async fn ui_for(ui: Ui, v: &Viewer) -> CoreResult<Ui> {
    match &v.visitor.ctx {
        Some(ctx) => ui.with_org(ctx).await,
        None => {
            let mut ui = ui;
            let o = &v.visitor.org;
            ui.page.org = Some(
                json!({"id": o.id, "slug": o.slug, "name": o.name, "logo_url": o.logo_url, "color_primary": o.color_primary, "color_accent": o.color_accent, "is_admin": false}),
            );
            Ok(ui)
        }
    }
}

fn base(v: &Viewer) -> String {
    format!("/o/{}/clubs", v.visitor.org.slug)
}

fn back(to: &str, error: Option<String>) -> Response {
    match error {
        Some(e) => Redirect::to(&format!(
            "{to}{}error={}",
            if to.contains('?') { "&" } else { "?" },
            shrooms_core::web::auth::urlencode(&e)
        ))
        .into_response(),
        None => Redirect::to(to).into_response(),
    }
}

/// A form's outcome: back to the page, with the error's text when it failed.
fn outcome<T>(to: &str, r: CoreResult<T>) -> Page {
    match r {
        Ok(_) => Ok(back(to, None)),
        Err(e @ (CoreError::Validation(_) | CoreError::Conflict { .. })) => {
            let fields = e.field_errors();
            let msg = if fields.is_empty() {
                e.public_detail()
            } else {
                fields.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ")
            };
            Ok(back(to, Some(msg)))
        }
        Err(e) => Err(e.into()),
    }
}

fn field(f: &HashMap<String, String>, k: &str) -> Option<String> {
    f.get(k).cloned()
}

#[derive(serde::Deserialize, Default)]
struct Flash {
    error: Option<String>,
    done: Option<String>,
}

fn viewer_json(v: &Viewer) -> Value {
    json!({"federation": v.sees_all(), "executive": v.is_executive(), "second_factor": v.second_factor, "signed_in": v.visitor.actor.is_some(), "clubs": v.exec_clubs})
}

// ---------- the federation's dashboard ----------

async fn index(AxState(st): AxState<AppState>, v: Viewer, ui: Ui, Query(flash): Query<Flash>) -> Page {
    let org = &v.visitor.org;
    let d = crate::synthesis::dashboard(&st, org.id, &org.timezone).await?;
    let d = crate::synthesis::visible(&d, v.sees_all(), |c| v.sees(c));
    let clubs = service::list_clubs(&st.db, org.id).await?;
    let photos = api::gallery_photos(&st, &v, None).await?.into_iter().take(8).collect::<Vec<_>>();
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render(
        "clubs_index.html",
        json!({"d": d, "clubs": clubs, "photos": photos, "viewer": viewer_json(&v), "base": base(&v), "currency": org.currency, "notice": {"error": flash.error, "done": flash.done},
            "chart": json!({"labels": d.per_month.iter().map(|m| m.month.clone()).collect::<Vec<_>>(), "values": d.per_month.iter().map(|m| m.participants).collect::<Vec<_>>()}).to_string()}),
    ))
}

async fn create_club(AxState(st): AxState<AppState>, v: Viewer, Form(f): Form<HashMap<String, String>>) -> Page {
    let to = base(&v);
    let r = async {
        let cap = v.all()?;
        service::create_club(
            &st.db,
            &v.visitor.who(),
            &cap,
            service::ClubInput {
                name: field(&f, "name"),
                slug: field(&f, "slug"),
                summary: field(&f, "summary"),
                description: field(&f, "description"),
                archived: None,
            },
        )
        .await
    }
    .await;
    match r {
        Ok(c) => Ok(back(&format!("{to}/{}", c.slug), None)),
        Err(e) => outcome::<()>(&to, Err(e)),
    }
}

// ---------- a club ----------

async fn club(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Path((_, key)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Page {
    let page = api::club_page(&st, &v, &key).await?;
    let photos = api::gallery_photos(&st, &v, Some(&page.club.id)).await?.into_iter().take(12).collect::<Vec<_>>();
    let html = shrooms_core::markdown::render(&page.club.description, &[]);
    let now = jiff::Timestamp::now().as_millisecond();
    let (upcoming, past): (Vec<_>, Vec<_>) = page
        .activities
        .iter()
        .cloned()
        .partition(|a| a.starts_ms >= now && a.state != State::Done && a.state != State::Cancelled);
    let syn = page.synthesis.as_ref();
    let chart = json!({
        "labels": syn.map(|s| s.per_activity.iter().map(|p| format!("{} {}", p.date, p.theme)).collect::<Vec<_>>()).unwrap_or_default(),
        "values": syn.map(|s| s.per_activity.iter().map(|p| p.participants).collect::<Vec<_>>()).unwrap_or_default(),
    })
    .to_string();
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render(
        "clubs_club.html",
        json!({"p": page, "description_html": html, "upcoming": upcoming.into_iter().rev().collect::<Vec<_>>(), "past": past, "photos": photos, "chart": chart,
            "viewer": viewer_json(&v), "base": base(&v), "notice": {"error": flash.error, "done": flash.done}, "today": jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()}),
    ))
}

async fn create_activity(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let to = format!("{}/{key}", base(&v));
    let r = async {
        let c = service::club(&st.db, v.org(), &key).await?;
        let cap = v.club(&c.id)?;
        let input = service::ActivityInput {
            theme: field(&f, "theme"),
            starts_at: field(&f, "starts_at"),
            ends_at: field(&f, "ends_at"),
            place: field(&f, "place"),
            description: field(&f, "description"),
            difficulties: None,
            is_competition: Some(f.contains_key("is_competition")),
        };
        service::create_activity(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, input).await
    }
    .await;
    match r {
        Ok(a) => Ok(back(&format!("{to}/activities/{}", a.id), None)),
        Err(e) => outcome::<()>(&to, Err(e)),
    }
}

// ---------- an activity ----------

fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(c) => c.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).quiet_zone(true).build(),
        Err(_) => String::new(),
    }
}

async fn activity(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Path((_, key, id)): Path<(String, String, String)>,
    Query(flash): Query<Flash>,
) -> Page {
    let (c, page): (service::Club, ActivityPage) = api::activity_page(&st, &v, &key, &id).await?;
    let photos: Vec<_> = api::gallery_photos(&st, &v, Some(&c.id))
        .await?
        .into_iter()
        .filter(|p| p.activity_id == page.activity.id)
        .collect();
    let code = page.code.as_ref().map(|code| {
        let url = attend_url(&st, &v, &code.code);
        json!({"code": code.code, "expires_at": code.expires_at, "url": url, "qr": qr_svg(&url)})
    });
    let timeline = match &v.visitor.ctx {
        Some(ctx) if ctx.access(crate::MODULE) >= shrooms_core::permissions::Access::Read => {
            Some(shrooms_core::web::social::partial_context(&st, ctx, service::ACTIVITY, &page.activity.id).await?)
        }
        _ => None,
    };
    let description_html = shrooms_core::markdown::render(&page.activity.description, &[]);
    let states = [State::Planned, State::InProgress, State::Done, State::Cancelled]
        .iter()
        .map(|s| json!({"value": s.as_str(), "key": s.key()}))
        .collect::<Vec<_>>();
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render(
        "clubs_activity.html",
        json!({"club": c, "p": page, "photos": photos, "code": code, "timeline": timeline, "description_html": description_html, "states": states,
            "restricted": v.sees(&c.id), "viewer": viewer_json(&v), "base": base(&v), "notice": {"error": flash.error, "done": flash.done}}),
    ))
}

async fn activity_action(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key, id, action)): Path<(String, String, String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let to = format!("{}/{key}/activities/{id}", base(&v));
    let r: CoreResult<()> = async {
        let c = service::club(&st.db, v.org(), &key).await?;
        let cap = v.club(&c.id)?;
        let zone = v.visitor.org.timezone.clone();
        let a = service::activity(&st.db, v.org(), &zone, &c.id, &id).await?;
        let who = v.visitor.who();
        match action.as_str() {
            "open" => service::open_attendance(&st.db, &who, &cap, &a).await.map(|_| ()),
            "close" => service::close_attendance(&st.db, &who, &cap, &a).await,
            "state" => {
                let to = State::parse(f.get("state").map(String::as_str).unwrap_or(""))
                    .ok_or_else(|| CoreError::validation("state", "Choose a state."))?;
                service::set_state(
                    &st,
                    &who,
                    &cap,
                    &a,
                    &api::record_of(&v, &c, &a),
                    to,
                    f.get("note").map(String::as_str).unwrap_or(""),
                )
                .await
            }
            "edit" => {
                let input = service::ActivityInput {
                    theme: field(&f, "theme"),
                    starts_at: field(&f, "starts_at"),
                    ends_at: field(&f, "ends_at"),
                    place: field(&f, "place"),
                    description: field(&f, "description"),
                    difficulties: field(&f, "difficulties"),
                    is_competition: Some(f.contains_key("is_competition")),
                };
                service::update_activity(&st.db, &who, &cap, &zone, &a, input).await.map(|_| ())
            }
            "results" => {
                // Lines "rank;name;prize", one per winner.
                let mut rows = Vec::new();
                for line in f.get("results").map(String::as_str).unwrap_or("").lines().filter(|l| !l.trim().is_empty())
                {
                    let mut parts = line.splitn(3, ';').map(str::trim);
                    let rank = parts.next().unwrap_or("").parse::<i64>().unwrap_or(0);
                    rows.push(service::ResultInput {
                        rank,
                        participant_id: None,
                        winner_name: parts.next().unwrap_or("").to_string(),
                        prize: parts.next().unwrap_or("").to_string(),
                    });
                }
                service::set_results(&st.db, &who, &cap, &a, rows).await.map(|_| ())
            }
            _ => Err(CoreError::NotFound),
        }
    }
    .await;
    outcome(&to, r)
}

// ---------- attendance (public) ----------

#[derive(serde::Deserialize, Default)]
struct CodeQuery {
    code: Option<String>,
}

/// Step 1: the code (from the QR code's link, or typed); step 2: the form.
async fn attend_page(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Address(addr): Address,
    Query(q): Query<CodeQuery>,
) -> Page {
    let ui = ui_for(ui, &v).await?;
    let Some(code) = q.code.filter(|c| !c.trim().is_empty()) else {
        return Ok(ui.render("clubs_attend.html", json!({"step": "code", "base": base(&v)})));
    };
    match api::code_info(&st, &v, &code, &addr).await {
        Ok(info) => Ok(ui.render("clubs_attend.html", json!({"step": "form", "info": info, "code": code, "base": base(&v), "submission_id": uuid::Uuid::now_v7().to_string(), "form": {}}))),
        Err(e @ (CoreError::Validation(_) | CoreError::TooManyRequests { .. })) => {
            Ok(ui.form_error("clubs_attend.html", e, json!({"step": "code", "code": code, "base": base(&v)})))
        }
        Err(e) => Err(e.into()),
    }
}

async fn attend_submit(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Address(addr): Address,
    req: Request,
) -> Page {
    let ui = ui_for(ui, &v).await?;
    let (input, photos) = match api::attendance_form(&st, req).await {
        Ok(x) => x,
        Err(e) => return Ok(ui.form_error("clubs_attend.html", e, json!({"step": "code", "base": base(&v)}))),
    };
    let kept = input.clone();
    let org = &v.visitor.org;
    match service::submit(
        &st,
        &v.visitor.who(),
        &v.visitor.public_form_grant(crate::MODULE),
        &org.timezone,
        input,
        photos,
        &addr,
    )
    .await
    {
        Ok(s) => {
            let a = service::activity_by_id(&st.db, org.id, &org.timezone, &s.activity_id).await?;
            Ok(ui.render("clubs_attend.html", json!({"step": "done", "submitted": s, "theme": a.map(|a| a.theme), "first_name": kept.first_name, "base": base(&v)})))
        }
        Err(e) => {
            // A wrong or expired code sends back to step 1; other errors keep the form and what was typed.
            let code_error =
                e.field_errors().iter().any(|f| f.field == "code") || matches!(e, CoreError::TooManyRequests { .. });
            let info = if code_error { None } else { api::code_info(&st, &v, &kept.code, &addr).await.ok() };
            let step = if info.is_some() { "form" } else { "code" };
            Ok(ui.form_error(
                "clubs_attend.html",
                e,
                json!({"step": step, "info": info, "code": kept.code, "form": kept, "submission_id": kept.submission_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string()), "base": base(&v)}),
            ))
        }
    }
}

// ---------- participants ----------

async fn participants(AxState(st): AxState<AppState>, v: Viewer, ui: Ui, Query(f): Query<ParticipantFilter>) -> Page {
    let (clubs, list) = api::participant_list(&st, &v, &f).await?;
    let ui = ui_for(ui, &v).await?;
    let qs = serde_urlencoded_like(&f);
    Ok(ui.render("clubs_participants.html", json!({"clubs": clubs, "list": list, "f": {"club": f.club, "q": f.q, "field": f.field, "level": f.level}, "qs": qs, "viewer": viewer_json(&v), "base": base(&v)})))
}

fn serde_urlencoded_like(f: &ParticipantFilter) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("club", &f.club), ("q", &f.q), ("field", &f.field), ("level", &f.level)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", shrooms_core::web::auth::urlencode(v)));
        }
    }
    parts.join("&")
}

async fn participants_export(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Path((_, format)): Path<(String, String)>,
    Query(f): Query<ParticipantFilter>,
) -> Page {
    let ods = match format.as_str() {
        "export.csv" => false,
        "export.ods" => true,
        _ => return Err(CoreError::NotFound.into()),
    };
    Ok(api::participants_file(&st, &v, &f, ods, &ui.page.lang).await?)
}

// ---------- gallery ----------

async fn gallery(AxState(st): AxState<AppState>, v: Viewer, ui: Ui, Query(q): Query<GalleryQuery>) -> Page {
    let photos = api::gallery_photos(&st, &v, q.club.as_deref()).await?;
    let clubs = service::list_clubs(&st.db, v.org()).await?;
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render("clubs_gallery.html", json!({"photos": photos, "clubs": clubs, "club": q.club, "base": base(&v)})))
}

// ---------- team: executives, meetings, programme ----------

async fn team(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Path((_, key)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Page {
    let c = service::club(&st.db, v.org(), &key).await?;
    v.club(&c.id)?;
    let zone = v.visitor.org.timezone.clone();
    let execs = service::executives(&st.db, v.org(), &c.id).await?;
    let meetings = service::meetings(&st.db, v.org(), &zone, &c.id).await?;
    let year = service::this_year(&zone);
    let tasks = service::tasks(&st.db, v.org(), Some(&c.id), Some(year)).await?;
    let done = tasks.iter().filter(|t| t.done).count() as i64;
    let activities = service::list_activities(&st.db, v.org(), &zone, Some(&c.id)).await?;
    // Attendance rate of each executive at meetings.
    let rates: HashMap<String, (i64, i64)> = execs
        .iter()
        .map(|e| {
            let present = meetings.iter().filter(|m| m.present.contains(&e.id)).count() as i64;
            let total =
                meetings.iter().filter(|m| m.present.contains(&e.id) || m.absent.contains(&e.id)).count() as i64;
            (e.id.clone(), (present, total))
        })
        .collect();
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render(
        "clubs_team.html",
        json!({"club": c, "execs": execs, "meetings": meetings, "tasks": tasks, "year": year, "rate": crate::domain::execution_rate(done, tasks.len() as i64),
            "rates": rates, "activities": activities, "base": base(&v), "notice": {"error": flash.error, "done": flash.done}}),
    ))
}

async fn team_action(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key, action)): Path<(String, String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let to = format!("{}/{key}/team", base(&v));
    let one: HashMap<String, String> = f.iter().cloned().collect();
    let r: CoreResult<()> = async {
        let c = service::club(&st.db, v.org(), &key).await?;
        let cap = v.club(&c.id)?;
        let who = v.visitor.who();
        let zone = v.visitor.org.timezone.clone();
        match action.as_str() {
            "executives" => {
                let input = service::ExecutiveInput {
                    last_name: field(&one, "last_name"),
                    first_name: field(&one, "first_name"),
                    email: field(&one, "email"),
                    phone: field(&one, "phone"),
                    field_of_study: field(&one, "field_of_study"),
                    level: field(&one, "level"),
                    position: field(&one, "position"),
                    is_head: Some(one.contains_key("is_head")),
                };
                service::save_executive(&st.db, &who, &cap, &c, None, input).await.map(|_| ())
            }
            "meetings" => {
                let present: Vec<String> = f.iter().filter(|(k, _)| k == "present").map(|(_, v)| v.clone()).collect();
                service::create_meeting(
                    &st.db,
                    &who,
                    &cap,
                    &zone,
                    &c,
                    service::MeetingInput {
                        title: field(&one, "title"),
                        held_at: field(&one, "held_at"),
                        activity_id: field(&one, "activity_id"),
                        present,
                    },
                )
                .await
                .map(|_| ())
            }
            "tasks" => {
                let input = service::TaskInput {
                    title: field(&one, "title"),
                    year: None,
                    assignee_id: field(&one, "assignee_id"),
                    activity_id: field(&one, "activity_id"),
                    due_on: field(&one, "due_on"),
                    done: Some(false),
                };
                service::save_task(&st.db, &who, &cap, &zone, &c, None, input).await.map(|_| ())
            }
            "toggle" => {
                let t =
                    service::task(&st.db, v.org(), &c.id, one.get("task").map(String::as_str).unwrap_or("")).await?;
                service::save_task(
                    &st.db,
                    &who,
                    &cap,
                    &zone,
                    &c,
                    Some(&t),
                    service::TaskInput { done: Some(!t.done), ..Default::default() },
                )
                .await
                .map(|_| ())
            }
            "remove-executive" => {
                let e =
                    service::executive(&st.db, v.org(), &c.id, one.get("executive").map(String::as_str).unwrap_or(""))
                        .await?;
                service::delete_executive(&st, &who, &cap, &e).await
            }
            _ => Err(CoreError::NotFound),
        }
    }
    .await;
    outcome(&to, r)
}

async fn executive_photo(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key, id)): Path<(String, String, String)>,
    mp: Multipart,
) -> Page {
    let to = format!("{}/{key}/team", base(&v));
    let r = async {
        let c = service::club(&st.db, v.org(), &key).await?;
        let cap = v.club(&c.id)?;
        let e = service::executive(&st.db, v.org(), &c.id, &id).await?;
        let mut form = read_multipart(mp, st.cfg.files.max_upload_bytes, 1).await?;
        let photo = form.files.pop().ok_or_else(|| CoreError::validation("photo", "Choose a photo."))?;
        service::set_executive_photo(&st, &v.visitor.who(), &cap, &e, photo).await
    }
    .await;
    outcome(&to, r)
}

// ---------- money ----------

async fn money(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ui: Ui,
    Path((_, key)): Path<(String, String)>,
    Query(p): Query<Period>,
    Query(flash): Query<Flash>,
) -> Page {
    let c = service::club(&st.db, v.org(), &key).await?;
    let cap = v.club(&c.id)?;
    let book = api::cash_book(&st, &v, &c, &cap, &p).await?;
    let reports = shrooms_core::files::list_for(&st.db, &cap.as_read(), "club_report", &c.id).await?;
    let activities = service::list_activities(&st.db, v.org(), &v.visitor.org.timezone, Some(&c.id)).await?;
    let ui = ui_for(ui, &v).await?;
    Ok(ui.render(
        "clubs_money.html",
        json!({"club": c, "book": book, "period": {"from": p.from, "to": p.to}, "reports": reports, "activities": activities, "base": base(&v),
            "today": jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(), "notice": {"error": flash.error, "done": flash.done}}),
    ))
}

async fn money_add(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key)): Path<(String, String)>,
    req: Request,
) -> Page {
    let to = format!("{}/{key}/money", base(&v));
    outcome(&to, api::add_money(&st, &v, &key, req).await)
}

async fn report(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, key)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Page {
    let to = format!("{}/{key}/money", base(&v));
    let r = async {
        let c = service::club(&st.db, v.org(), &key).await?;
        let cap = v.club(&c.id)?;
        let me = v.visitor.actor.as_ref().map(|a| a.account.email.clone());
        crate::jobs::request(
            &st,
            &v.visitor.who(),
            &cap,
            &c,
            f.get("from").map(String::as_str).unwrap_or(""),
            f.get("to").map(String::as_str).unwrap_or(""),
            me.as_deref(),
        )
        .await
    }
    .await;
    match r {
        Ok(_) => Ok(Redirect::to(&format!("{to}?done=report")).into_response()),
        Err(e) => outcome::<()>(&to, Err(e)),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{org}/clubs", get(index).post(create_club))
        .route("/o/{org}/clubs/gallery", get(gallery))
        .route("/o/{org}/clubs/attend", get(attend_page).post(attend_submit).layer(DefaultBodyLimit::disable()))
        .route("/o/{org}/clubs/participants", get(participants))
        .route("/o/{org}/clubs/participants/{format}", get(participants_export))
        .route("/o/{org}/clubs/{club}", get(club))
        .route("/o/{org}/clubs/{club}/activities", post(create_activity))
        .route("/o/{org}/clubs/{club}/activities/{activity}", get(activity))
        .route("/o/{org}/clubs/{club}/activities/{activity}/{action}", post(activity_action))
        .route("/o/{org}/clubs/{club}/team", get(team))
        .route("/o/{org}/clubs/{club}/team/{action}", post(team_action))
        .route(
            "/o/{org}/clubs/{club}/team/executives/{executive}/photo",
            post(executive_photo).layer(DefaultBodyLimit::disable()),
        )
        .route("/o/{org}/clubs/{club}/money", get(money).post(money_add).layer(DefaultBodyLimit::disable()))
        .route("/o/{org}/clubs/{club}/reports", post(report))
}
