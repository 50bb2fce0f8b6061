//! The clubs' JSON API (`/api/v1/orgs/{org}/clubs…`). Operations tagged
//! `clubs (public)` answer anyone with the link, as the club pages do; the
//! others need a club executive (their own club) or a federation executive,
//! with a second factor.

use super::{read_multipart, Address, Exec};
use crate::access::Viewer;
use crate::domain::{AttendanceInput, Scoring, State};
use crate::service::{self, Activity, Club, Executive};
use crate::synthesis;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shrooms_core::error::Problem;
use shrooms_core::people::ExportFormat;
use shrooms_core::permissions::CanWrite;
use shrooms_core::web::api::{ApiJson, ApiQuery};
use shrooms_core::web::AppState;
use shrooms_core::{CoreError, CoreResult};
use utoipa::{OpenApi, ToSchema};

const PUBLIC: &str = "clubs (public)";
const TAG: &str = "clubs";

/// What a visitor may see of an activity: difficulties are for executives.
pub fn shown_activity(mut a: Activity, v: &Viewer) -> Activity {
    if !v.sees(&a.club_id) {
        a.difficulties = None;
    }
    a
}

/// What a visitor may see of an executive: contacts are for executives.
pub fn shown_executive(mut e: Executive, v: &Viewer) -> Executive {
    if !v.sees(&e.club_id) {
        e.email = None;
        e.phone = None;
    }
    e
}

#[derive(Serialize, ToSchema)]
pub struct ClubPage {
    pub club: Club,
    pub synthesis: Option<synthesis::ClubSynthesis>,
    pub activities: Vec<Activity>,
    pub executives: Vec<Executive>,
    /// The year's programme: for executives (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<service::Task>>,
    /// Whether the viewer sees the restricted parts.
    pub restricted: bool,
}

pub async fn club_page(st: &AppState, v: &Viewer, key: &str) -> CoreResult<ClubPage> {
    let org = &v.visitor.org;
    let club = service::club(&st.db, org.id, key).await?;
    let d = synthesis::dashboard(st, org.id, &org.timezone).await?;
    let d = synthesis::visible(&d, v.sees_all(), |c| v.sees(c));
    let syn = d.clubs.into_iter().find(|c| c.club_id == club.id);
    let activities = service::list_activities(&st.db, org.id, &org.timezone, Some(&club.id))
        .await?
        .into_iter()
        .map(|a| shown_activity(a, v))
        .collect();
    let executives =
        service::executives(&st.db, org.id, &club.id).await?.into_iter().map(|e| shown_executive(e, v)).collect();
    let restricted = v.sees(&club.id);
    let tasks = if restricted {
        Some(service::tasks(&st.db, org.id, Some(&club.id), Some(service::this_year(&org.timezone))).await?)
    } else {
        None
    };
    Ok(ClubPage { club, synthesis: syn, activities, executives, tasks, restricted })
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs", tag = PUBLIC, params(("org" = String, Path)),
    responses((status = 200, body = Vec<Club>), (status = 404, body = Problem)))]
async fn list(AxState(st): AxState<AppState>, v: Viewer) -> CoreResult<Json<Vec<Club>>> {
    Ok(Json(service::list_clubs(&st.db, v.org()).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs", tag = TAG, params(("org" = String, Path)), request_body = service::ClubInput,
    responses((status = 201, body = Club), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    ApiJson(input): ApiJson<service::ClubInput>,
) -> CoreResult<(StatusCode, Json<Club>)> {
    let cap = v.all()?;
    Ok((StatusCode::CREATED, Json(service::create_club(&st.db, &v.visitor.who(), &cap, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/{club}", tag = PUBLIC, params(("org" = String, Path), ("club" = String, Path)),
    responses((status = 200, body = ClubPage), (status = 404, body = Problem)))]
async fn get_club(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, club)): Path<(String, String)>,
) -> CoreResult<Json<ClubPage>> {
    Ok(Json(club_page(&st, &v, &club).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/clubs/{club}", tag = TAG, params(("org" = String, Path), ("club" = String, Path)), request_body = service::ClubInput,
    responses((status = 200, body = Club), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_club(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(input): ApiJson<service::ClubInput>,
) -> CoreResult<Json<Club>> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    Ok(Json(service::update_club(&st.db, &v.visitor.who(), &cap, &c, input).await?))
}

/// The club of a restricted operation and the capability for it (the
/// caller is a member: `Exec` turned strangers away before).
async fn club_cap(st: &AppState, v: &Viewer, key: &str) -> CoreResult<(Club, CanWrite)> {
    let c = service::club(&st.db, v.org(), key).await?;
    let cap = v.club(&c.id)?;
    Ok((c, cap))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/dashboard", tag = PUBLIC, params(("org" = String, Path)),
    responses((status = 200, body = synthesis::Dashboard), (status = 404, body = Problem)))]
async fn dashboard(AxState(st): AxState<AppState>, v: Viewer) -> CoreResult<Json<synthesis::Dashboard>> {
    let org = &v.visitor.org;
    let d = synthesis::dashboard(&st, org.id, &org.timezone).await?;
    Ok(Json(synthesis::visible(&d, v.sees_all(), |c| v.sees(c))))
}

#[derive(Serialize, ToSchema)]
pub struct GalleryPhoto {
    pub file_id: String,
    pub club_id: String,
    pub club_name: String,
    pub activity_id: String,
    pub theme: String,
    pub date: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Thumbnail, WebP with JPEG fallback through `format=jpeg`.
    pub thumb_url: String,
    pub display_url: String,
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct GalleryQuery {
    /// A club's id or URL name.
    pub club: Option<String>,
}

pub async fn gallery_photos(st: &AppState, v: &Viewer, club: Option<&str>) -> CoreResult<Vec<GalleryPhoto>> {
    let org = &v.visitor.org;
    let clubs = service::list_clubs(&st.db, org.id).await?;
    let only = match club.filter(|c| !c.is_empty()) {
        Some(k) => Some(clubs.iter().find(|c| c.id == k || c.slug == k).ok_or(CoreError::NotFound)?.id.clone()),
        None => None,
    };
    let acts = service::list_activities(&st.db, org.id, &org.timezone, None).await?;
    let files = shrooms_core::files::public_of(&st.db, org.id, crate::MODULE, service::ACTIVITY, 2000).await?;
    let mut out = Vec::new();
    for f in files.into_iter().filter(|f| f.is_image()) {
        let Some(a) = acts.iter().find(|a| a.id == f.entity_id) else { continue };
        if only.as_ref().is_some_and(|c| c != &a.club_id) {
            continue;
        }
        let c = clubs.iter().find(|c| c.id == a.club_id);
        out.push(GalleryPhoto {
            thumb_url: format!("/public/files/{}/content?variant=thumb", f.id),
            display_url: format!("/public/files/{}/content?variant=display", f.id),
            file_id: f.id,
            club_id: a.club_id.clone(),
            club_name: c.map(|c| c.name.clone()).unwrap_or_default(),
            activity_id: a.id.clone(),
            theme: a.theme.clone(),
            date: a.starts_local.get(..10).unwrap_or("").to_string(),
            width: f.width,
            height: f.height,
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/gallery", tag = PUBLIC, params(("org" = String, Path), GalleryQuery),
    responses((status = 200, body = Vec<GalleryPhoto>), (status = 404, body = Problem)))]
async fn gallery(
    AxState(st): AxState<AppState>,
    v: Viewer,
    ApiQuery(q): ApiQuery<GalleryQuery>,
) -> CoreResult<Json<Vec<GalleryPhoto>>> {
    Ok(Json(gallery_photos(&st, &v, q.club.as_deref()).await?))
}

// ---------- activities ----------

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    pub activity: Activity,
    pub results: Vec<service::ResultRow>,
    /// For executives: the open code and who signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<service::Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendances: Option<Vec<service::AttendanceRow>>,
}

async fn find_activity(st: &AppState, v: &Viewer, club: &str, id: &str) -> CoreResult<(Club, Activity)> {
    let c = service::club(&st.db, v.org(), club).await?;
    let a = service::activity(&st.db, v.org(), &v.visitor.org.timezone, &c.id, id).await?;
    Ok((c, a))
}

async fn restricted_activity(
    st: &AppState,
    v: &Viewer,
    club: &str,
    id: &str,
) -> CoreResult<(Club, Activity, CanWrite)> {
    let (c, cap) = club_cap(st, v, club).await?;
    let a = service::activity(&st.db, v.org(), &v.visitor.org.timezone, &c.id, id).await?;
    Ok((c, a, cap))
}

pub async fn activity_page(st: &AppState, v: &Viewer, club: &str, id: &str) -> CoreResult<(Club, ActivityPage)> {
    let (c, a) = find_activity(st, v, club, id).await?;
    let results = service::results(&st.db, v.org(), &a.id).await?;
    let (code, attendances) = if v.sees(&c.id) {
        (
            service::open_code(&st.db, v.org(), &a.id).await?,
            Some(service::attendances(&st.db, v.org(), Some(&a.id), None).await?),
        )
    } else {
        (None, None)
    };
    Ok((c, ActivityPage { activity: shown_activity(a, v), results, code, attendances }))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}", tag = PUBLIC,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)),
    responses((status = 200, body = ActivityPage), (status = 404, body = Problem)))]
async fn get_activity(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<Json<ActivityPage>> {
    Ok(Json(activity_page(&st, &v, &club, &id).await?.1))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/activities", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body = service::ActivityInput,
    responses((status = 201, body = Activity), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_activity(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(input): ApiJson<service::ActivityInput>,
) -> CoreResult<(StatusCode, Json<Activity>)> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let a = service::create_activity(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, input).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)), request_body = service::ActivityInput,
    responses((status = 200, body = Activity), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_activity(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<service::ActivityInput>,
) -> CoreResult<Json<Activity>> {
    let (_, a, cap) = restricted_activity(&st, &v, &club, &id).await?;
    Ok(Json(service::update_activity(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &a, input).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct StateChange {
    pub state: State,
    /// Why (shown on the timeline).
    #[serde(default)]
    pub note: String,
}

pub fn record_of(v: &Viewer, c: &Club, a: &Activity) -> shrooms_core::module::RecordRef {
    shrooms_core::module::RecordRef {
        entity_type: service::ACTIVITY.into(),
        entity_id: a.id.clone(),
        title: a.theme.clone(),
        path: format!("/o/{}/clubs/{}/activities/{}", v.visitor.org.slug, c.slug, a.id),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/state", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)), request_body = StateChange,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_state(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<StateChange>,
) -> CoreResult<StatusCode> {
    let (c, a, cap) = restricted_activity(&st, &v, &club, &id).await?;
    service::set_state(&st, &v.visitor.who(), &cap, &a, &record_of(&v, &c, &a), input.state, &input.note).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ResultsInput {
    pub results: Vec<service::ResultInput>,
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/results", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)), request_body = ResultsInput,
    responses((status = 200, body = Vec<service::ResultRow>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_results(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<ResultsInput>,
) -> CoreResult<Json<Vec<service::ResultRow>>> {
    let (_, a, cap) = restricted_activity(&st, &v, &club, &id).await?;
    Ok(Json(service::set_results(&st.db, &v.visitor.who(), &cap, &a, input.results).await?))
}

#[derive(Serialize, ToSchema)]
pub struct OpenedCode {
    #[serde(flatten)]
    pub code: service::Code,
    /// The attendance form with the code filled in (what the QR code holds).
    pub url: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/attendance", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)),
    responses((status = 201, body = OpenedCode), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn open_attendance(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<(StatusCode, Json<OpenedCode>)> {
    let (_, a, cap) = restricted_activity(&st, &v, &club, &id).await?;
    let code = service::open_attendance(&st.db, &v.visitor.who(), &cap, &a).await?;
    let url = attend_url(&st, &v, &code.code);
    Ok((StatusCode::CREATED, Json(OpenedCode { code, url })))
}

pub fn attend_url(st: &AppState, v: &Viewer, code: &str) -> String {
    format!("{}/o/{}/clubs/attend?code={code}", st.base_url(), v.visitor.org.slug)
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/attendance", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("activity" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn close_attendance(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let (_, a, cap) = restricted_activity(&st, &v, &club, &id).await?;
    service::close_attendance(&st.db, &v.visitor.who(), &cap, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CodeCheck {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeInfo {
    pub activity_id: String,
    pub theme: String,
    pub club: String,
    pub starts_at: String,
}

pub async fn code_info(st: &AppState, v: &Viewer, code: &str, address: &str) -> CoreResult<CodeInfo> {
    let org = &v.visitor.org;
    let a = service::check_code(&st.db, org.id, &org.timezone, code, address).await?;
    let c = service::club(&st.db, org.id, &a.club_id).await?;
    Ok(CodeInfo { activity_id: a.id, theme: a.theme, club: c.name, starts_at: a.starts_at })
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/attend/check", tag = PUBLIC, params(("org" = String, Path)), request_body = CodeCheck,
    responses((status = 200, body = CodeInfo), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn check_code(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Address(addr): Address,
    ApiJson(input): ApiJson<CodeCheck>,
) -> CoreResult<Json<CodeInfo>> {
    Ok(Json(code_info(&st, &v, &input.code, &addr).await?))
}

/// Reads the attendance form as JSON or as `multipart/form-data` (with photos).
pub async fn attendance_form(st: &AppState, req: Request) -> CoreResult<(AttendanceInput, Vec<service::Photo>)> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, st).await.map_err(|e| CoreError::BadRequest(e.body_text()))?;
        let form = read_multipart(mp, st.cfg.files.max_upload_bytes, 3).await?;
        let rating = match form.get("rating").filter(|r| !r.trim().is_empty()) {
            Some(r) => Some(
                r.trim().parse::<i64>().map_err(|_| CoreError::validation("rating", "Choose a rating from 1 to 5."))?,
            ),
            None => None,
        };
        let input = AttendanceInput {
            code: form.get("code").unwrap_or_default(),
            last_name: form.get("last_name").unwrap_or_default(),
            first_name: form.get("first_name").unwrap_or_default(),
            field_of_study: form.get("field_of_study").unwrap_or_default(),
            level: form.get("level").unwrap_or_default(),
            rating,
            suggestion: form.get("suggestion").unwrap_or_default(),
            submission_id: form.get("submission_id"),
        };
        Ok((input, form.files))
    } else {
        let ApiJson(input) = ApiJson::<AttendanceInput>::from_request(req, st)
            .await
            .map_err(|_| CoreError::BadRequest("Send the form as application/json or multipart/form-data.".into()))?;
        Ok((input, Vec::new()))
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/attend", tag = PUBLIC, params(("org" = String, Path)),
    request_body(content = AttendanceInput, description = "JSON, or multipart/form-data with the same fields and up to 3 `photos`"),
    responses((status = 201, body = service::Submitted), (status = 200, body = service::Submitted, description = "The same submission, already recorded"),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn attend(
    AxState(st): AxState<AppState>,
    v: Viewer,
    Address(addr): Address,
    req: Request,
) -> CoreResult<(StatusCode, Json<service::Submitted>)> {
    let (input, photos) = attendance_form(&st, req).await?;
    let org = &v.visitor.org;
    let s = service::submit(
        &st,
        &v.visitor.who(),
        &v.visitor.public_form_grant(crate::MODULE),
        &org.timezone,
        input,
        photos,
        &addr,
    )
    .await?;
    Ok((if s.already_recorded { StatusCode::OK } else { StatusCode::CREATED }, Json(s)))
}

// ---------- participants ----------

pub async fn participant_list(
    st: &AppState,
    v: &Viewer,
    filter: &service::ParticipantFilter,
) -> CoreResult<(Vec<Club>, Vec<service::Participant>)> {
    let clubs = service::list_clubs(&st.db, v.org()).await?;
    // A club executive sees their own club's participants; federation executives every club's.
    let mut filter_ = service::ParticipantFilter {
        club: filter.club.clone(),
        q: filter.q.clone(),
        field: filter.field.clone(),
        level: filter.level.clone(),
    };
    match filter.club.as_deref().filter(|c| !c.is_empty()) {
        Some(k) => {
            let c = clubs
                .iter()
                .find(|c| c.id == k || c.slug == k)
                .ok_or_else(|| CoreError::validation("club", "No such club."))?;
            v.club(&c.id)?;
        }
        None if v.federation => {
            v.all()?;
        }
        None => {
            let first = v.exec_clubs.first().cloned().unwrap_or_default();
            v.club(&first)?;
            filter_.club = Some(first);
        }
    }
    let scoring = service::scoring(&st.db, v.org()).await?;
    let list = service::participants(&st.db, v.org(), &clubs, &filter_, &scoring).await?;
    Ok((clubs, list))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/participants", tag = TAG, params(("org" = String, Path), service::ParticipantFilter),
    responses((status = 200, body = Vec<service::Participant>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn participants(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    ApiQuery(f): ApiQuery<service::ParticipantFilter>,
) -> CoreResult<Json<Vec<service::Participant>>> {
    Ok(Json(participant_list(&st, &v, &f).await?.1))
}

pub async fn participants_file(
    st: &AppState,
    v: &Viewer,
    f: &service::ParticipantFilter,
    ods: bool,
    lang: &str,
) -> CoreResult<Response> {
    let (_, list) = participant_list(st, v, f).await?;
    let t = |k: &str| st.templates.tr(lang, k);
    let header = [
        t("clubs.field.last_name"),
        t("clubs.field.first_name"),
        t("clubs.field.field_of_study"),
        t("clubs.field.level"),
        t("clubs.field.attendances"),
        t("clubs.field.points"),
        t("clubs.menu"),
        t("clubs.field.first_seen"),
        t("clubs.field.last_seen"),
    ];
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                p.last_name.clone(),
                p.first_name.clone(),
                p.field_of_study.clone(),
                p.level.clone(),
                p.attendances.to_string(),
                p.points.to_string(),
                p.clubs.join(", "),
                p.first_seen.clone(),
                p.last_seen.clone(),
            ]
        })
        .collect();
    let body = shrooms_core::people::table_file(ods, "Participants", &header, &rows);
    let mut tx = st.db.begin().await?;
    shrooms_core::audit::record(
        &mut tx,
        &v.visitor.who(),
        shrooms_core::audit::Change {
            org: Some(v.org()),
            action: "clubs.participants.export",
            entity_type: "club_participant",
            entity_id: String::new(),
            before: None,
            after: Some(json!({"rows": rows.len(), "club": f.club, "format": if ods { "ods" } else { "csv" }})),
        },
    )
    .await?;
    tx.commit().await?;
    let format = if ods { ExportFormat::Ods } else { ExportFormat::Csv };
    Ok(shrooms_core::web::api::download(&format!("participants-{}", v.visitor.org.slug), format, body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/participants/export.csv", tag = TAG, params(("org" = String, Path), service::ParticipantFilter),
    responses((status = 200, content_type = "text/csv"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn participants_csv(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    ApiQuery(f): ApiQuery<service::ParticipantFilter>,
) -> CoreResult<Response> {
    participants_file(&st, &v, &f, false, "en").await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/participants/export.ods", tag = TAG, params(("org" = String, Path), service::ParticipantFilter),
    responses((status = 200, content_type = "application/vnd.oasis.opendocument.spreadsheet"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn participants_ods(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    ApiQuery(f): ApiQuery<service::ParticipantFilter>,
) -> CoreResult<Response> {
    participants_file(&st, &v, &f, true, "en").await
}

// ---------- executives, meetings, tasks ----------

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/executives", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body = service::ExecutiveInput,
    responses((status = 201, body = Executive), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_executive(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(input): ApiJson<service::ExecutiveInput>,
) -> CoreResult<(StatusCode, Json<Executive>)> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    Ok((StatusCode::CREATED, Json(service::save_executive(&st.db, &v.visitor.who(), &cap, &c, None, input).await?)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/clubs/{club}/executives/{executive}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("executive" = String, Path)), request_body = service::ExecutiveInput,
    responses((status = 200, body = Executive), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_executive(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<service::ExecutiveInput>,
) -> CoreResult<Json<Executive>> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let before = service::executive(&st.db, v.org(), &c.id, &id).await?;
    Ok(Json(service::save_executive(&st.db, &v.visitor.who(), &cap, &c, Some(&before), input).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/clubs/{club}/executives/{executive}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("executive" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_executive(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let e = service::executive(&st.db, v.org(), &c.id, &id).await?;
    service::delete_executive(&st, &v.visitor.who(), &cap, &e).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/executives/{executive}/photo", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("executive" = String, Path)),
    request_body(content_type = "multipart/form-data", description = "One field `photo`"),
    responses((status = 200, body = Executive), (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn executive_photo(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> CoreResult<Json<Executive>> {
    let mp =
        mp.map_err(|e| CoreError::BadRequest(format!("Send the photo as multipart/form-data: {}", e.body_text())))?;
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let e = service::executive(&st.db, v.org(), &c.id, &id).await?;
    let mut form = read_multipart(mp, st.cfg.files.max_upload_bytes, 1).await?;
    let photo = form.files.pop().ok_or_else(|| CoreError::validation("photo", "Choose a photo."))?;
    Ok(Json(service::set_executive_photo(&st, &v.visitor.who(), &cap, &e, photo).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/{club}/meetings", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    responses((status = 200, body = Vec<service::Meeting>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_meetings(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
) -> CoreResult<Json<Vec<service::Meeting>>> {
    let (c, _) = club_cap(&st, &v, &club).await?;
    Ok(Json(service::meetings(&st.db, v.org(), &v.visitor.org.timezone, &c.id).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/meetings", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body = service::MeetingInput,
    responses((status = 201, body = service::Meeting), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_meeting(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(input): ApiJson<service::MeetingInput>,
) -> CoreResult<(StatusCode, Json<service::Meeting>)> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    Ok((
        StatusCode::CREATED,
        Json(service::create_meeting(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/{club}/tasks", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    responses((status = 200, body = Vec<service::Task>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_tasks(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
) -> CoreResult<Json<Vec<service::Task>>> {
    let (c, _) = club_cap(&st, &v, &club).await?;
    Ok(Json(service::tasks(&st.db, v.org(), Some(&c.id), None).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/tasks", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body = service::TaskInput,
    responses((status = 201, body = service::Task), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_task(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(input): ApiJson<service::TaskInput>,
) -> CoreResult<(StatusCode, Json<service::Task>)> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    Ok((
        StatusCode::CREATED,
        Json(service::save_task(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, None, input).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/clubs/{club}/tasks/{task}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("task" = String, Path)), request_body = service::TaskInput,
    responses((status = 200, body = service::Task), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_task(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<service::TaskInput>,
) -> CoreResult<Json<service::Task>> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let before = service::task(&st.db, v.org(), &c.id, &id).await?;
    Ok(Json(
        service::save_task(&st.db, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, Some(&before), input).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/clubs/{club}/tasks/{task}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("task" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_task(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let t = service::task(&st.db, v.org(), &c.id, &id).await?;
    service::delete_task(&st.db, &v.visitor.who(), &cap, &t).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- money ----------

#[derive(Serialize, ToSchema)]
pub struct CashBook {
    pub lines: Vec<service::MoneyLine>,
    pub summary: service::CashSummary,
    pub currency: String,
}

#[derive(Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day (`YYYY-MM-DD`), inclusive.
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`), inclusive.
    pub to: Option<String>,
}

/// A club's cash book; the capability is the proof that the caller may read it.
pub async fn cash_book(st: &AppState, v: &Viewer, c: &Club, cap: &CanWrite, p: &Period) -> CoreResult<CashBook> {
    let from = p.from.as_deref().filter(|s| !s.is_empty());
    let to = p.to.as_deref().filter(|s| !s.is_empty());
    let mut lines: Vec<service::MoneyLine> = service::money(&st.db, &st.data_key, v.org(), Some(&c.id))
        .await?
        .into_iter()
        .filter(|l| from.is_none_or(|f| l.occurred_on.as_str() >= f) && to.is_none_or(|t| l.occurred_on.as_str() <= t))
        .collect();
    for l in &mut lines {
        l.receipts = shrooms_core::files::list_for(&st.db, &cap.as_read(), "club_money", &l.id)
            .await?
            .into_iter()
            .map(|f| f.id)
            .collect();
    }
    let summary = service::cash_summary(&lines, None, None);
    Ok(CashBook { lines, summary, currency: v.visitor.org.currency.clone() })
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/{club}/money", tag = TAG, params(("org" = String, Path), ("club" = String, Path), Period),
    responses((status = 200, body = CashBook), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_money(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<Period>,
) -> CoreResult<Json<CashBook>> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    Ok(Json(cash_book(&st, &v, &c, &cap, &p).await?))
}

/// Reads a cash line as JSON or as `multipart/form-data` (with a `receipt`).
async fn money_form(st: &AppState, req: Request) -> CoreResult<(service::MoneyInput, Option<service::Photo>)> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, st).await.map_err(|e| CoreError::BadRequest(e.body_text()))?;
        let mut form = read_multipart(mp, st.cfg.files.max_upload_bytes, 1).await?;
        let input = service::MoneyInput {
            direction: form.get("direction"),
            amount: form.get("amount"),
            occurred_on: form.get("occurred_on"),
            reason: form.get("reason"),
            comment: form.get("comment"),
            activity_id: form.get("activity_id"),
        };
        Ok((input, form.files.pop()))
    } else {
        let ApiJson(input) = ApiJson::<service::MoneyInput>::from_request(req, st)
            .await
            .map_err(|_| CoreError::BadRequest("Send the line as application/json or multipart/form-data.".into()))?;
        Ok((input, None))
    }
}

pub async fn add_money(st: &AppState, v: &Viewer, club: &str, req: Request) -> CoreResult<service::MoneyLine> {
    let (c, cap) = club_cap(st, v, club).await?;
    let (input, receipt) = money_form(st, req).await?;
    service::add_money(st, &v.visitor.who(), &cap, &v.visitor.org.timezone, &c, input, receipt).await
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/money", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body(content = service::MoneyInput, description = "JSON, or multipart/form-data with the same fields and a `receipt` photo"),
    responses((status = 201, body = service::MoneyLine), (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn create_money(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    req: Request,
) -> CoreResult<(StatusCode, Json<service::MoneyLine>)> {
    Ok((StatusCode::CREATED, Json(add_money(&st, &v, &club, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/clubs/{club}/money/{line}", tag = TAG,
    params(("org" = String, Path), ("club" = String, Path), ("line" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_money(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club, id)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let line = service::money(&st.db, &st.data_key, v.org(), Some(&c.id))
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or(CoreError::NotFound)?;
    service::delete_money(&st, &v.visitor.who(), &cap, &line).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- settings and reports ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clubs/settings", tag = TAG, params(("org" = String, Path)),
    responses((status = 200, body = Scoring), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_settings(AxState(st): AxState<AppState>, Exec(v): Exec) -> CoreResult<Json<Scoring>> {
    v.all()?;
    Ok(Json(service::scoring(&st.db, v.org()).await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/clubs/settings", tag = TAG, params(("org" = String, Path)), request_body = Scoring,
    responses((status = 200, body = Scoring), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn put_settings(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    ApiJson(s): ApiJson<Scoring>,
) -> CoreResult<Json<Scoring>> {
    let cap = v.all()?;
    Ok(Json(service::save_scoring(&st.db, &v.visitor.who(), &cap, s).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ReportRequest {
    /// First day (`YYYY-MM-DD`).
    pub from: String,
    /// Last day (`YYYY-MM-DD`).
    pub to: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clubs/{club}/reports", tag = TAG, params(("org" = String, Path), ("club" = String, Path)),
    request_body = ReportRequest,
    responses((status = 202, description = "The report is written in the background and mailed to the club head and the requester"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn request_report(
    AxState(st): AxState<AppState>,
    Exec(v): Exec,
    Path((_, club)): Path<(String, String)>,
    ApiJson(r): ApiJson<ReportRequest>,
) -> CoreResult<(StatusCode, Json<Value>)> {
    let (c, cap) = club_cap(&st, &v, &club).await?;
    let me = v.visitor.actor.as_ref().map(|a| a.account.email.clone());
    let job = crate::jobs::request(&st, &v.visitor.who(), &cap, &c, &r.from, &r.to, me.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job}))))
}

#[derive(OpenApi)]
#[openapi(paths(
    list,
    create,
    get_club,
    patch_club,
    dashboard,
    gallery,
    get_activity,
    create_activity,
    patch_activity,
    set_state,
    put_results,
    open_attendance,
    close_attendance,
    check_code,
    attend,
    participants,
    participants_csv,
    participants_ods,
    create_executive,
    patch_executive,
    delete_executive,
    executive_photo,
    list_meetings,
    create_meeting,
    list_tasks,
    create_task,
    patch_task,
    delete_task,
    list_money,
    create_money,
    delete_money,
    get_settings,
    put_settings,
    request_report
))]
struct ClubsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ClubsApi::openapi()
}

pub fn router() -> Router<AppState> {
    let uploads = DefaultBodyLimit::disable();
    Router::new()
        .route("/api/v1/orgs/{org}/clubs", get(list).post(create))
        .route("/api/v1/orgs/{org}/clubs/dashboard", get(dashboard))
        .route("/api/v1/orgs/{org}/clubs/gallery", get(gallery))
        .route("/api/v1/orgs/{org}/clubs/settings", get(get_settings).put(put_settings))
        .route("/api/v1/orgs/{org}/clubs/participants", get(participants))
        .route("/api/v1/orgs/{org}/clubs/participants/export.csv", get(participants_csv))
        .route("/api/v1/orgs/{org}/clubs/participants/export.ods", get(participants_ods))
        .route("/api/v1/orgs/{org}/clubs/attend/check", post(check_code))
        .route("/api/v1/orgs/{org}/clubs/attend", post(attend).layer(uploads))
        .route("/api/v1/orgs/{org}/clubs/{club}", get(get_club).patch(patch_club))
        .route("/api/v1/orgs/{org}/clubs/{club}/activities", post(create_activity))
        .route("/api/v1/orgs/{org}/clubs/{club}/activities/{activity}", get(get_activity).patch(patch_activity))
        .route("/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/state", post(set_state))
        .route("/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/results", put(put_results))
        .route(
            "/api/v1/orgs/{org}/clubs/{club}/activities/{activity}/attendance",
            post(open_attendance).delete(close_attendance),
        )
        .route("/api/v1/orgs/{org}/clubs/{club}/executives", post(create_executive))
        .route(
            "/api/v1/orgs/{org}/clubs/{club}/executives/{executive}",
            axum::routing::patch(patch_executive).delete(delete_executive),
        )
        .route("/api/v1/orgs/{org}/clubs/{club}/executives/{executive}/photo", post(executive_photo).layer(uploads))
        .route("/api/v1/orgs/{org}/clubs/{club}/meetings", get(list_meetings).post(create_meeting))
        .route("/api/v1/orgs/{org}/clubs/{club}/tasks", get(list_tasks).post(create_task))
        .route("/api/v1/orgs/{org}/clubs/{club}/tasks/{task}", axum::routing::patch(patch_task).delete(delete_task))
        .route("/api/v1/orgs/{org}/clubs/{club}/money", get(list_money).post(create_money).layer(uploads))
        .route("/api/v1/orgs/{org}/clubs/{club}/money/{line}", axum::routing::delete(delete_money))
        .route("/api/v1/orgs/{org}/clubs/{club}/reports", post(request_report))
}
