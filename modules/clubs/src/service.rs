//! The clubs' use cases and their SQL: every function takes the tenant first
//! (a capability for writes and restricted reads, the organisation id for
//! what is public), checks its input, and writes the change, its audit entry
//! and the stamp that invalidates cached syntheses in one transaction.

use crate::domain::{self, AttendanceInput, Direction, Scoring, State};
use serde::Serialize;
use serde_json::{json, Value};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Tx;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::module::RecordRef;
use shrooms_core::permissions::CanWrite;
use shrooms_core::sealed::DataKey;
use shrooms_core::{AppState, CoreError, CoreResult, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

pub const ACTIVITY: &str = "club_activity";

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn ts(ms: i64) -> String {
    Timestamp(ms).rfc3339()
}

/// Marks the organisation's clubs data as changed (cached syntheses are keyed by it).
pub async fn touch(tx: &mut Tx, org: OrgId) -> CoreResult<()> {
    sqlx::query(
        "INSERT INTO clubs_stamp (org_id, version) VALUES ($1, 1) \
         ON CONFLICT (org_id) DO UPDATE SET version = clubs_stamp.version + 1",
    )
    .bind(org.to_string())
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn stamp(db: &Db, org: OrgId) -> CoreResult<i64> {
    Ok(sqlx::query("SELECT version FROM clubs_stamp WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?
        .unwrap_or(0))
}

async fn record(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    action: &str,
    kind: &str,
    id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> CoreResult<()> {
    audit::record(
        tx,
        who,
        Change { org: Some(org), action, entity_type: kind, entity_id: id.to_string(), before, after },
    )
    .await?;
    touch(tx, org).await
}

fn text(v: &str) -> String {
    v.trim().to_string()
}

fn required(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize) {
    if v.trim().is_empty() {
        errors.push(FieldError::new(field, "This field is required."));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(field, "This is too long."));
    }
}

fn optional(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize) {
    if v.chars().count() > max {
        errors.push(FieldError::new(field, "This is too long."));
    }
}

fn done(errors: Vec<FieldError>) -> CoreResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Validation(errors))
    }
}

// ---------- time ----------

/// Reads "2026-03-12T14:30" (or with seconds, or a full RFC 3339 instant)
/// in the organisation's time zone; stored as UTC milliseconds.
pub fn parse_local(input: &str, zone: &str) -> Option<i64> {
    let s = input.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    dt.to_zoned(tz).ok().map(|z| z.timestamp().as_millisecond())
}

/// The local wall time of an instant, for forms and pages ("2026-03-12T14:30").
pub fn local(ms: i64, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz).strftime("%Y-%m-%dT%H:%M").to_string(),
        Err(_) => String::new(),
    }
}

fn valid_date(s: &str) -> bool {
    s.parse::<jiff::civil::Date>().is_ok()
}

// ---------- settings ----------

pub async fn scoring(db: &Db, org: OrgId) -> CoreResult<Scoring> {
    let r = sqlx::query(
        "SELECT points_attendance, points_first, points_second, points_third, points_other_rank, code_valid_minutes \
         FROM clubs_settings WHERE org_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(db.pool())
    .await?;
    Ok(match r {
        Some(r) => Scoring {
            points_attendance: r.try_get(0)?,
            points_first: r.try_get(1)?,
            points_second: r.try_get(2)?,
            points_third: r.try_get(3)?,
            points_other_rank: r.try_get(4)?,
            code_valid_minutes: r.try_get(5)?,
        },
        None => Scoring::default(),
    })
}

pub async fn save_scoring(db: &Db, who: &Who, cap: &CanWrite, s: Scoring) -> CoreResult<Scoring> {
    s.check()?;
    let before = scoring(db, cap.org()).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO clubs_settings (org_id, points_attendance, points_first, points_second, points_third, points_other_rank, code_valid_minutes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET points_attendance = $2, points_first = $3, \
         points_second = $4, points_third = $5, points_other_rank = $6, code_valid_minutes = $7",
    )
    .bind(cap.org().to_string())
    .bind(s.points_attendance)
    .bind(s.points_first)
    .bind(s.points_second)
    .bind(s.points_third)
    .bind(s.points_other_rank)
    .bind(s.code_valid_minutes)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.settings",
        "clubs_settings",
        &cap.org().to_string(),
        serde_json::to_value(before).ok(),
        serde_json::to_value(s).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

// ---------- clubs ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Club {
    pub id: String,
    /// URL name: `/o/{org}/clubs/{slug}`.
    pub slug: String,
    pub name: String,
    /// One line, shown on cards.
    pub summary: String,
    /// The presentation (Markdown).
    pub description: String,
    pub archived: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ClubInput {
    pub name: Option<String>,
    /// Defaults to a URL name made from the name.
    pub slug: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub archived: Option<bool>,
}

const CLUB_COLS: &str = "id, slug, name, summary, description, archived, created_at";

fn club_row(r: &AnyRow) -> CoreResult<Club> {
    Ok(Club {
        id: r.try_get(0)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        summary: r.try_get(3)?,
        description: r.try_get(4)?,
        archived: r.try_get::<i64, _>(5)? != 0,
        created_at: ts(r.try_get(6)?),
    })
}

pub async fn list_clubs(db: &Db, org: OrgId) -> CoreResult<Vec<Club>> {
    let rows = sqlx::query(&format!("SELECT {CLUB_COLS} FROM clubs WHERE org_id = $1 ORDER BY archived, name"))
        .bind(org.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(club_row).collect()
}

/// A club by id or URL name.
pub async fn club(db: &Db, org: OrgId, key: &str) -> CoreResult<Club> {
    let r = sqlx::query(&format!("SELECT {CLUB_COLS} FROM clubs WHERE org_id = $1 AND (id = $2 OR slug = $2)"))
        .bind(org.to_string())
        .bind(key)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    club_row(&r)
}

fn check_slug(errors: &mut Vec<FieldError>, slug: &str) {
    if slug.is_empty()
        || slug.len() > 60
        || !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || matches!(slug, "attend" | "gallery" | "participants" | "settings" | "dashboard" | "new")
    {
        errors.push(FieldError::new("slug", "Use lowercase letters, digits and dashes (not a reserved word)."));
    }
}

pub async fn create_club(db: &Db, who: &Who, cap: &CanWrite, input: ClubInput) -> CoreResult<Club> {
    let name = text(input.name.as_deref().unwrap_or(""));
    let slug = input.slug.map(|s| text(&s)).filter(|s| !s.is_empty()).unwrap_or_else(|| domain::slugify(&name));
    let summary = text(input.summary.as_deref().unwrap_or(""));
    let description = input.description.unwrap_or_default();
    let mut errors = Vec::new();
    required(&mut errors, "name", &name, 120);
    check_slug(&mut errors, &slug);
    optional(&mut errors, "summary", &summary, 300);
    optional(&mut errors, "description", &description, 20_000);
    done(errors)?;
    let id = new_id();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO clubs (id, org_id, slug, name, summary, description, archived, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)")
        .bind(&id)
        .bind(cap.org().to_string())
        .bind(&slug)
        .bind(&name)
        .bind(&summary)
        .bind(&description)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await
        .map_err(|e| CoreError::from(e).on_conflict("slug", "Another club already has this URL name."))?;
    let r = sqlx::query(&format!("SELECT {CLUB_COLS} FROM clubs WHERE id = $1")).bind(&id).fetch_one(tx.conn()).await?;
    let c = club_row(&r)?;
    record(&mut tx, who, cap.org(), "clubs.club.create", "club", &id, None, serde_json::to_value(&c).ok()).await?;
    tx.commit().await?;
    Ok(c)
}

pub async fn update_club(db: &Db, who: &Who, cap: &CanWrite, before: &Club, input: ClubInput) -> CoreResult<Club> {
    let name = input.name.map(|s| text(&s)).unwrap_or_else(|| before.name.clone());
    let slug = input.slug.map(|s| text(&s)).unwrap_or_else(|| before.slug.clone());
    let summary = input.summary.map(|s| text(&s)).unwrap_or_else(|| before.summary.clone());
    let description = input.description.unwrap_or_else(|| before.description.clone());
    let archived = input.archived.unwrap_or(before.archived);
    let mut errors = Vec::new();
    required(&mut errors, "name", &name, 120);
    check_slug(&mut errors, &slug);
    optional(&mut errors, "summary", &summary, 300);
    optional(&mut errors, "description", &description, 20_000);
    done(errors)?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE clubs SET name = $1, slug = $2, summary = $3, description = $4, archived = $5 WHERE org_id = $6 AND id = $7")
        .bind(&name)
        .bind(&slug)
        .bind(&summary)
        .bind(&description)
        .bind(archived as i64)
        .bind(cap.org().to_string())
        .bind(&before.id)
        .execute(tx.conn())
        .await
        .map_err(|e| CoreError::from(e).on_conflict("slug", "Another club already has this URL name."))?;
    let r = sqlx::query(&format!("SELECT {CLUB_COLS} FROM clubs WHERE id = $1"))
        .bind(&before.id)
        .fetch_one(tx.conn())
        .await?;
    let c = club_row(&r)?;
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.club.update",
        "club",
        &c.id,
        serde_json::to_value(before).ok(),
        serde_json::to_value(&c).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(c)
}

// ---------- activities ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub id: String,
    pub club_id: String,
    pub theme: String,
    /// RFC 3339, UTC.
    pub starts_at: String,
    pub ends_at: Option<String>,
    /// Local wall time in the organisation's zone, as forms show it.
    pub starts_local: String,
    pub place: String,
    pub description: String,
    pub state: State,
    pub is_competition: bool,
    /// Difficulties met: for the club's executives only (absent otherwise).
    pub difficulties: Option<String>,
    /// Number of participants who signed the attendance form.
    pub participants: i64,
    #[serde(skip)]
    pub starts_ms: i64,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ActivityInput {
    pub theme: Option<String>,
    /// Local time in the organisation's zone (`2026-03-12T14:30`) or an RFC 3339 instant.
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub place: Option<String>,
    pub description: Option<String>,
    pub difficulties: Option<String>,
    pub is_competition: Option<bool>,
}

const ACT_COLS: &str = "a.id, a.club_id, a.theme, a.starts_at, a.ends_at, a.place, a.description, a.state, a.is_competition, a.difficulties, \
     (SELECT COUNT(*) FROM clubs_attendances t WHERE t.activity_id = a.id)";

fn activity_row(r: &AnyRow, zone: &str) -> CoreResult<Activity> {
    let starts: i64 = r.try_get(3)?;
    let state: String = r.try_get(7)?;
    Ok(Activity {
        id: r.try_get(0)?,
        club_id: r.try_get(1)?,
        theme: r.try_get(2)?,
        starts_at: ts(starts),
        ends_at: r.try_get::<Option<i64>, _>(4)?.map(ts),
        starts_local: local(starts, zone),
        place: r.try_get(5)?,
        description: r.try_get(6)?,
        state: State::parse(&state).unwrap_or(State::Planned),
        is_competition: r.try_get::<i64, _>(8)? != 0,
        difficulties: Some(r.try_get(9)?),
        participants: r.try_get(10)?,
        starts_ms: starts,
    })
}

/// Activities of a club (or of every club), newest first.
pub async fn list_activities(db: &Db, org: OrgId, zone: &str, club_id: Option<&str>) -> CoreResult<Vec<Activity>> {
    let rows = match club_id {
        Some(c) => sqlx::query(&format!("SELECT {ACT_COLS} FROM clubs_activities a WHERE a.org_id = $1 AND a.club_id = $2 ORDER BY a.starts_at DESC"))
            .bind(org.to_string())
            .bind(c)
            .fetch_all(db.pool())
            .await?,
        None => sqlx::query(&format!("SELECT {ACT_COLS} FROM clubs_activities a WHERE a.org_id = $1 ORDER BY a.starts_at DESC"))
            .bind(org.to_string())
            .fetch_all(db.pool())
            .await?,
    };
    rows.iter().map(|r| activity_row(r, zone)).collect()
}

pub async fn activity(db: &Db, org: OrgId, zone: &str, club_id: &str, id: &str) -> CoreResult<Activity> {
    let r = sqlx::query(&format!(
        "SELECT {ACT_COLS} FROM clubs_activities a WHERE a.org_id = $1 AND a.club_id = $2 AND a.id = $3"
    ))
    .bind(org.to_string())
    .bind(club_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(CoreError::NotFound)?;
    activity_row(&r, zone)
}

pub async fn activity_by_id(db: &Db, org: OrgId, zone: &str, id: &str) -> CoreResult<Option<Activity>> {
    let r = sqlx::query(&format!("SELECT {ACT_COLS} FROM clubs_activities a WHERE a.org_id = $1 AND a.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    r.map(|r| activity_row(&r, zone)).transpose()
}

struct ActivityFields {
    theme: String,
    starts: i64,
    ends: Option<i64>,
    place: String,
    description: String,
    difficulties: String,
    competition: bool,
}

fn activity_fields(input: ActivityInput, zone: &str, before: Option<&Activity>) -> CoreResult<ActivityFields> {
    let mut errors = Vec::new();
    let theme = input.theme.map(|s| text(&s)).or(before.map(|b| b.theme.clone())).unwrap_or_default();
    required(&mut errors, "theme", &theme, 200);
    let starts = match input.starts_at.as_deref() {
        Some(s) => parse_local(s, zone),
        None => before.map(|b| b.starts_ms),
    };
    if starts.is_none() {
        errors.push(FieldError::new("starts_at", "Give the date and time (for example 2026-03-12T14:30)."));
    }
    let ends = match input.ends_at.as_deref().map(str::trim) {
        Some("") => None,
        Some(s) => match parse_local(s, zone) {
            Some(e) => Some(e),
            None => {
                errors.push(FieldError::new("ends_at", "Give the date and time (for example 2026-03-12T16:30)."));
                None
            }
        },
        None => before
            .and_then(|b| b.ends_at.as_deref())
            .and_then(|e| e.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond()),
    };
    if let (Some(s), Some(e)) = (starts, ends) {
        if e < s {
            errors.push(FieldError::new("ends_at", "The end comes before the start."));
        }
    }
    let place = input.place.map(|s| text(&s)).or(before.map(|b| b.place.clone())).unwrap_or_default();
    optional(&mut errors, "place", &place, 200);
    let description = input.description.or(before.map(|b| b.description.clone())).unwrap_or_default();
    optional(&mut errors, "description", &description, 20_000);
    let difficulties = input.difficulties.or(before.and_then(|b| b.difficulties.clone())).unwrap_or_default();
    optional(&mut errors, "difficulties", &difficulties, 20_000);
    let competition = input.is_competition.or(before.map(|b| b.is_competition)).unwrap_or(false);
    done(errors)?;
    Ok(ActivityFields { theme, starts: starts.unwrap_or(0), ends, place, description, difficulties, competition })
}

pub async fn create_activity(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    club: &Club,
    input: ActivityInput,
) -> CoreResult<Activity> {
    let f = activity_fields(input, zone, None)?;
    let id = new_id();
    let now = Timestamp::now().0;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO clubs_activities (id, org_id, club_id, theme, starts_at, ends_at, place, description, state, difficulties, is_competition, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'planned', $9, $10, $11, $11)",
    )
    .bind(&id)
    .bind(cap.org().to_string())
    .bind(&club.id)
    .bind(&f.theme)
    .bind(f.starts)
    .bind(f.ends)
    .bind(&f.place)
    .bind(&f.description)
    .bind(&f.difficulties)
    .bind(f.competition as i64)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let r = sqlx::query(&format!("SELECT {ACT_COLS} FROM clubs_activities a WHERE a.id = $1"))
        .bind(&id)
        .fetch_one(tx.conn())
        .await?;
    let a = activity_row(&r, zone)?;
    record(&mut tx, who, cap.org(), "clubs.activity.create", ACTIVITY, &id, None, serde_json::to_value(&a).ok())
        .await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn update_activity(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    before: &Activity,
    input: ActivityInput,
) -> CoreResult<Activity> {
    let f = activity_fields(input, zone, Some(before))?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE clubs_activities SET theme = $1, starts_at = $2, ends_at = $3, place = $4, description = $5, difficulties = $6, \
         is_competition = $7, updated_at = $8 WHERE org_id = $9 AND id = $10",
    )
    .bind(&f.theme)
    .bind(f.starts)
    .bind(f.ends)
    .bind(&f.place)
    .bind(&f.description)
    .bind(&f.difficulties)
    .bind(f.competition as i64)
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(&before.id)
    .execute(tx.conn())
    .await?;
    let r = sqlx::query(&format!("SELECT {ACT_COLS} FROM clubs_activities a WHERE a.id = $1"))
        .bind(&before.id)
        .fetch_one(tx.conn())
        .await?;
    let a = activity_row(&r, zone)?;
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.activity.update",
        ACTIVITY,
        &a.id,
        serde_json::to_value(before).ok(),
        serde_json::to_value(&a).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// Changes the state, with the change on the activity's timeline (followers told).
pub async fn set_state(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    a: &Activity,
    rec: &RecordRef,
    to: State,
    note: &str,
) -> CoreResult<()> {
    if !a.state.can_become(to) {
        return Err(CoreError::validation("state", "The activity is already in this state."));
    }
    let mut tx = st.db.begin().await?;
    let n = sqlx::query(
        "UPDATE clubs_activities SET state = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(&a.id)
    .bind(a.state.as_str())
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(CoreError::Conflict {
            field: Some("state".into()),
            message: "Someone changed the state meanwhile; reload the page.".into(),
        });
    }
    shrooms_core::timeline::status_change(st, &mut tx, who, cap.org(), rec, Some(a.state.key()), to.key(), note)
        .await?;
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.activity.state",
        ACTIVITY,
        &a.id,
        Some(json!({"state": a.state})),
        Some(json!({"state": to, "note": note})),
    )
    .await?;
    tx.commit().await
}

// ---------- competition results ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ResultRow {
    pub rank: i64,
    pub winner_name: String,
    pub participant_id: Option<String>,
    pub prize: String,
}

#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ResultInput {
    pub rank: i64,
    /// A participant of the activity, or only a name.
    pub participant_id: Option<String>,
    #[serde(default)]
    pub winner_name: String,
    #[serde(default)]
    pub prize: String,
}

pub async fn results(db: &Db, org: OrgId, activity_id: &str) -> CoreResult<Vec<ResultRow>> {
    let rows = sqlx::query("SELECT rank_no, winner_name, participant_id, prize FROM clubs_results WHERE org_id = $1 AND activity_id = $2 ORDER BY rank_no, winner_name")
        .bind(org.to_string())
        .bind(activity_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ResultRow {
                rank: r.try_get(0)?,
                winner_name: r.try_get(1)?,
                participant_id: r.try_get(2)?,
                prize: r.try_get(3)?,
            })
        })
        .collect()
}

/// Every result of the organisation's competitions, with its activity, by rank.
pub async fn all_results(db: &Db, org: OrgId) -> CoreResult<Vec<(String, ResultRow)>> {
    let rows = sqlx::query(
        "SELECT activity_id, rank_no, winner_name, participant_id, prize FROM clubs_results WHERE org_id = $1 ORDER BY rank_no",
    )
    .bind(org.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let row = ResultRow {
                rank: r.try_get(1)?,
                winner_name: r.try_get(2)?,
                participant_id: r.try_get(3)?,
                prize: r.try_get(4)?,
            };
            Ok((r.try_get(0)?, row))
        })
        .collect()
}

/// Replaces the results of a competition.
pub async fn set_results(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    a: &Activity,
    input: Vec<ResultInput>,
) -> CoreResult<Vec<ResultRow>> {
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let names: HashMap<String, String> = attendances(db, cap.org(), Some(&a.id), None)
        .await?
        .into_iter()
        .map(|t| (t.participant_id.clone(), format!("{} {}", t.first_name, t.last_name)))
        .collect();
    for (i, r) in input.into_iter().enumerate() {
        if !(1..=1000).contains(&r.rank) {
            errors.push(FieldError::new(format!("results[{i}].rank"), "Give a rank from 1."));
        }
        let name = match &r.participant_id {
            Some(p) => match names.get(p) {
                Some(n) => n.clone(),
                None => {
                    errors.push(FieldError::new(
                        format!("results[{i}].participant_id"),
                        "This person did not attend the activity.",
                    ));
                    String::new()
                }
            },
            None => text(&r.winner_name),
        };
        if r.participant_id.is_none() && name.is_empty() {
            errors.push(FieldError::new(format!("results[{i}].winner_name"), "Give the winner's name."));
        }
        optional(&mut errors, &format!("results[{i}].prize"), &r.prize, 200);
        rows.push(ResultRow {
            rank: r.rank,
            winner_name: name,
            participant_id: r.participant_id,
            prize: text(&r.prize),
        });
    }
    done(errors)?;
    let before = results(db, cap.org(), &a.id).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM clubs_results WHERE org_id = $1 AND activity_id = $2")
        .bind(cap.org().to_string())
        .bind(&a.id)
        .execute(tx.conn())
        .await?;
    for r in &rows {
        sqlx::query("INSERT INTO clubs_results (id, org_id, activity_id, participant_id, winner_name, rank_no, prize) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(new_id())
            .bind(cap.org().to_string())
            .bind(&a.id)
            .bind(&r.participant_id)
            .bind(&r.winner_name)
            .bind(r.rank)
            .bind(&r.prize)
            .execute(tx.conn())
            .await?;
    }
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.activity.results",
        ACTIVITY,
        &a.id,
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&rows).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(rows)
}

// ---------- attendance codes ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Code {
    /// Six digits.
    pub code: String,
    pub opened_at: String,
    pub expires_at: String,
    #[serde(skip)]
    pub expires_ms: i64,
}

/// The code of an activity that is open now, if any.
pub async fn open_code(db: &Db, org: OrgId, activity_id: &str) -> CoreResult<Option<Code>> {
    let now = Timestamp::now().0;
    let r = sqlx::query("SELECT code, opened_at, expires_at FROM clubs_codes WHERE org_id = $1 AND activity_id = $2 AND closed_at IS NULL AND expires_at > $3 ORDER BY opened_at DESC LIMIT 1")
        .bind(org.to_string())
        .bind(activity_id)
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
    r.map(|r| {
        let e: i64 = r.try_get(2)?;
        Ok(Code { code: r.try_get(0)?, opened_at: ts(r.try_get(1)?), expires_at: ts(e), expires_ms: e })
    })
    .transpose()
}

/// Opens attendance: a new 6-digit code, valid for the organisation's
/// duration (3 hours unless changed), unique among the open codes of the
/// organisation; any earlier code of the activity stops working.
pub async fn open_attendance(db: &Db, who: &Who, cap: &CanWrite, a: &Activity) -> CoreResult<Code> {
    if a.state == State::Cancelled {
        return Err(CoreError::validation("state", "The activity is cancelled: attendance cannot be opened."));
    }
    let minutes = scoring(db, cap.org()).await?.code_valid_minutes;
    let now = Timestamp::now().0;
    let expires = now + minutes * 60_000;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE clubs_codes SET closed_at = $1 WHERE org_id = $2 AND activity_id = $3 AND closed_at IS NULL")
        .bind(now)
        .bind(cap.org().to_string())
        .bind(&a.id)
        .execute(tx.conn())
        .await?;
    let mut code = String::new();
    for _ in 0..20 {
        let b = shrooms_core::crypto::random_bytes::<4>();
        let candidate = format!("{:06}", u32::from_le_bytes(b) % 1_000_000);
        let taken = sqlx::query(
            "SELECT 1 FROM clubs_codes WHERE org_id = $1 AND code = $2 AND closed_at IS NULL AND expires_at > $3",
        )
        .bind(cap.org().to_string())
        .bind(&candidate)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?
        .is_some();
        if !taken {
            code = candidate;
            break;
        }
    }
    if code.is_empty() {
        return Err(CoreError::Internal("no free attendance code".into()));
    }
    sqlx::query("INSERT INTO clubs_codes (id, org_id, activity_id, code, opened_by, opened_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(new_id())
        .bind(cap.org().to_string())
        .bind(&a.id)
        .bind(&code)
        .bind(who.account.map(|a| a.to_string()))
        .bind(now)
        .bind(expires)
        .execute(tx.conn())
        .await?;
    // The code itself stays out of the audit log: it is a (short-lived) secret.
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.attendance.open",
        ACTIVITY,
        &a.id,
        None,
        Some(json!({"expires_at": ts(expires)})),
    )
    .await?;
    tx.commit().await?;
    Ok(Code { code, opened_at: ts(now), expires_at: ts(expires), expires_ms: expires })
}

pub async fn close_attendance(db: &Db, who: &Who, cap: &CanWrite, a: &Activity) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE clubs_codes SET closed_at = $1 WHERE org_id = $2 AND activity_id = $3 AND closed_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .bind(&a.id)
        .execute(tx.conn())
        .await?;
    record(&mut tx, who, cap.org(), "clubs.attendance.close", ACTIVITY, &a.id, None, None).await?;
    tx.commit().await
}

pub const WRONG_CODE: &str = "This code is not valid. Check the six digits shown in the room.";
pub const EXPIRED_CODE: &str =
    "This code has expired: attendance closes 3 hours after it opens. Ask the club's executives.";
pub const CLOSED_CODE: &str = "Attendance for this activity was closed by the club's executives.";
pub const ALREADY: &str = "You have already signed the attendance of this activity: one submission per person.";

/// Wrong codes per address and per organisation within 15 minutes before
/// the form refuses to check more (a code has a million values).
const MAX_WRONG_CODES: i64 = 10;

/// Finds the activity of a code typed by a participant. Wrong codes are
/// counted per address; too many within 15 minutes are refused (429).
pub async fn check_code(db: &Db, org: OrgId, zone: &str, code: &str, address: &str) -> CoreResult<Activity> {
    let subject = format!("clubs.code:{org}:{address}");
    shrooms_core::identity::rate_check(db, &subject, MAX_WRONG_CODES, 15).await?;
    let code: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
    let r = if code.len() == 6 {
        sqlx::query("SELECT activity_id, expires_at, closed_at FROM clubs_codes WHERE org_id = $1 AND code = $2 ORDER BY opened_at DESC LIMIT 1")
            .bind(org.to_string())
            .bind(&code)
            .fetch_optional(db.pool())
            .await?
    } else {
        None
    };
    let now = Timestamp::now().0;
    let Some(r) = r else {
        shrooms_core::identity::rate_limit(db, &subject, MAX_WRONG_CODES + 1, 15).await?;
        return Err(CoreError::validation("code", WRONG_CODE));
    };
    let expires: i64 = r.try_get(1)?;
    let closed: Option<i64> = r.try_get(2)?;
    if let Some(c) = closed {
        if c < expires && c <= now {
            return Err(CoreError::validation("code", CLOSED_CODE));
        }
    }
    if expires <= now {
        return Err(CoreError::validation("code", EXPIRED_CODE));
    }
    let id: String = r.try_get(0)?;
    activity_by_id(db, org, zone, &id).await?.ok_or(CoreError::NotFound)
}

/// A photo sent with the attendance form.
pub struct Photo {
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub attendance_id: String,
    pub participant_id: String,
    pub activity_id: String,
    /// True when this very submission had already been recorded (a retry).
    pub already_recorded: bool,
    pub photos: i64,
}

/// Records a participant's attendance: the code is checked again, photos
/// are checked and stored first (public, in the gallery), then the
/// participant and the attendance in one transaction. A second submission
/// by the same person is refused; the same submission sent again (a retry
/// after a dropped connection) answers what the first one did.
pub async fn submit(
    st: &AppState,
    who: &Who,
    grant: &CanWrite,
    zone: &str,
    input: AttendanceInput,
    photos: Vec<Photo>,
    address: &str,
) -> CoreResult<Submitted> {
    let org = grant.org();
    let a = check_code(&st.db, org, zone, &input.code, address).await?;
    let input = input.checked()?;
    let key = domain::identity_key(&input.last_name, &input.first_name);
    let submission = input.submission_id.clone().unwrap_or_else(new_id);
    // A retry of a submission that was recorded: same answer, nothing new.
    if let Some(r) = sqlx::query(
        "SELECT id, participant_id, activity_id FROM clubs_attendances WHERE org_id = $1 AND submission_key = $2",
    )
    .bind(org.to_string())
    .bind(&submission)
    .fetch_optional(st.db.pool())
    .await?
    {
        return Ok(Submitted {
            attendance_id: r.try_get(0)?,
            participant_id: r.try_get(1)?,
            activity_id: r.try_get(2)?,
            already_recorded: true,
            photos: 0,
        });
    }
    if sqlx::query("SELECT 1 FROM clubs_attendances t JOIN clubs_participants p ON p.id = t.participant_id WHERE t.org_id = $1 AND t.activity_id = $2 AND p.identity_key = $3")
        .bind(org.to_string())
        .bind(&a.id)
        .bind(&key)
        .fetch_optional(st.db.pool())
        .await?
        .is_some()
    {
        return Err(CoreError::Conflict { field: Some("last_name".into()), message: ALREADY.into() });
    }
    if photos.len() > 3 {
        return Err(CoreError::validation("photos", "Send at most 3 photos."));
    }
    let attendance_id = new_id();
    let mut stored = Vec::new();
    for p in photos {
        let owner = shrooms_core::files::Owner::new(ACTIVITY, &a.id);
        match shrooms_core::files::store_deferred(
            st,
            who,
            grant,
            &owner,
            shrooms_core::files::Upload { name: p.name, bytes: p.bytes, public: true },
        )
        .await
        {
            Ok(f) if f.is_image() => stored.push(f.id),
            Ok(f) => {
                stored.push(f.id);
                discard(st, who, grant, &stored).await;
                return Err(CoreError::validation("photos", "Only photos are accepted (JPEG, PNG, WebP, GIF)."));
            }
            Err(e) => {
                discard(st, who, grant, &stored).await;
                return Err(match e {
                    CoreError::Validation(v) => {
                        CoreError::Validation(v.into_iter().map(|f| FieldError::new("photos", f.message)).collect())
                    }
                    other => other,
                });
            }
        }
    }
    let saved = async {
        let mut tx = st.db.begin().await?;
        let now = Timestamp::now().0;
        sqlx::query(
            "INSERT INTO clubs_participants (id, org_id, identity_key, last_name, first_name, field_of_study, level, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id, identity_key) DO UPDATE SET \
             last_name = $4, first_name = $5, field_of_study = $6, level = $7",
        )
        .bind(new_id())
        .bind(org.to_string())
        .bind(&key)
        .bind(&input.last_name)
        .bind(&input.first_name)
        .bind(&input.field_of_study)
        .bind(&input.level)
        .bind(now)
        .execute(tx.conn())
        .await?;
        let pid: String = sqlx::query("SELECT id FROM clubs_participants WHERE org_id = $1 AND identity_key = $2")
            .bind(org.to_string())
            .bind(&key)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
        sqlx::query(
            "INSERT INTO clubs_attendances (id, org_id, club_id, activity_id, participant_id, submission_key, field_of_study, level, rating, suggestion, submitted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&attendance_id)
        .bind(org.to_string())
        .bind(&a.club_id)
        .bind(&a.id)
        .bind(&pid)
        .bind(&submission)
        .bind(&input.field_of_study)
        .bind(&input.level)
        .bind(input.rating)
        .bind(&input.suggestion)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(|e| CoreError::from(e).on_conflict("last_name", ALREADY))?;
        record(
            &mut tx,
            who,
            org,
            "clubs.attendance.submit",
            "club_attendance",
            &attendance_id,
            None,
            Some(json!({"activity_id": a.id, "participant_id": pid, "photos": stored})),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, CoreError>(pid)
    }
    .await;
    match saved {
        Ok(pid) => Ok(Submitted {
            attendance_id,
            participant_id: pid,
            activity_id: a.id,
            already_recorded: false,
            photos: stored.len() as i64,
        }),
        Err(e) => {
            discard(st, who, grant, &stored).await;
            Err(e)
        }
    }
}

async fn discard(st: &AppState, who: &Who, grant: &CanWrite, ids: &[String]) {
    for id in ids {
        if let Err(e) = shrooms_core::files::delete(st, who, grant, id).await {
            tracing::warn!(file = %id, error = %e, "could not remove a photo of a refused submission");
        }
    }
}

// ---------- participants ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AttendanceRow {
    pub id: String,
    pub activity_id: String,
    pub club_id: String,
    pub participant_id: String,
    pub last_name: String,
    pub first_name: String,
    pub field_of_study: String,
    pub level: String,
    pub rating: Option<i64>,
    pub suggestion: String,
    pub submitted_at: String,
}

/// Attendances of one activity, or of one club, or of the organisation.
pub async fn attendances(
    db: &Db,
    org: OrgId,
    activity_id: Option<&str>,
    club_id: Option<&str>,
) -> CoreResult<Vec<AttendanceRow>> {
    let mut sql = String::from(
        "SELECT t.id, t.activity_id, t.club_id, t.participant_id, p.last_name, p.first_name, t.field_of_study, t.level, t.rating, t.suggestion, t.submitted_at \
         FROM clubs_attendances t JOIN clubs_participants p ON p.id = t.participant_id WHERE t.org_id = $1",
    );
    let mut binds = vec![org.to_string()];
    if let Some(a) = activity_id {
        binds.push(a.to_string());
        sql.push_str(&format!(" AND t.activity_id = ${}", binds.len()));
    }
    if let Some(c) = club_id {
        binds.push(c.to_string());
        sql.push_str(&format!(" AND t.club_id = ${}", binds.len()));
    }
    sql.push_str(" ORDER BY t.submitted_at, t.id");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(AttendanceRow {
                id: r.try_get(0)?,
                activity_id: r.try_get(1)?,
                club_id: r.try_get(2)?,
                participant_id: r.try_get(3)?,
                last_name: r.try_get(4)?,
                first_name: r.try_get(5)?,
                field_of_study: r.try_get(6)?,
                level: r.try_get(7)?,
                rating: r.try_get(8)?,
                suggestion: r.try_get(9)?,
                submitted_at: ts(r.try_get(10)?),
            })
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Participant {
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    pub field_of_study: String,
    pub level: String,
    /// Activities attended (in the clubs asked for).
    pub attendances: i64,
    /// Names of the clubs whose activities they attended.
    pub clubs: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// Ranking points (see the clubs settings).
    pub points: i64,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParticipantFilter {
    /// A club's id or URL name.
    pub club: Option<String>,
    /// Words of the name, field of study or level.
    pub q: Option<String>,
    /// Only those of this field of study.
    pub field: Option<String>,
    /// Only those of this level.
    pub level: Option<String>,
}

/// One line per participant, with their history folded in, sorted by name.
pub async fn participants(
    db: &Db,
    org: OrgId,
    clubs: &[Club],
    filter: &ParticipantFilter,
    scoring: &Scoring,
) -> CoreResult<Vec<Participant>> {
    let club_id = match filter.club.as_deref().filter(|c| !c.is_empty()) {
        Some(k) => Some(
            clubs
                .iter()
                .find(|c| c.id == k || c.slug == k)
                .ok_or_else(|| CoreError::validation("club", "No such club."))?
                .id
                .clone(),
        ),
        None => None,
    };
    let rows = attendances(db, org, None, club_id.as_deref()).await?;
    let names: HashMap<&str, &str> = clubs.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect();
    let ranks = ranks_by_participant(db, org, club_id.as_deref()).await?;
    let mut by: HashMap<String, Participant> = HashMap::new();
    let detail = participant_details(db, org).await?;
    for t in &rows {
        let p = by.entry(t.participant_id.clone()).or_insert_with(|| {
            let d = detail.get(&t.participant_id);
            Participant {
                id: t.participant_id.clone(),
                last_name: t.last_name.clone(),
                first_name: t.first_name.clone(),
                field_of_study: d.map(|d| d.0.clone()).unwrap_or_default(),
                level: d.map(|d| d.1.clone()).unwrap_or_default(),
                attendances: 0,
                clubs: Vec::new(),
                first_seen: t.submitted_at.clone(),
                last_seen: t.submitted_at.clone(),
                points: 0,
            }
        });
        p.attendances += 1;
        p.points += scoring.points_attendance;
        p.last_seen = t.submitted_at.clone();
        let n = names.get(t.club_id.as_str()).copied().unwrap_or("").to_string();
        if !p.clubs.contains(&n) {
            p.clubs.push(n);
        }
    }
    for (pid, list) in ranks {
        if let Some(p) = by.get_mut(&pid) {
            p.points += list.iter().map(|r| scoring.for_rank(*r)).sum::<i64>();
        }
    }
    let q = filter
        .q
        .as_deref()
        .map(|q| domain::identity_key(q, "").trim_end_matches('|').to_string())
        .filter(|q| !q.is_empty());
    let mut out: Vec<Participant> = by
        .into_values()
        .filter(|p| {
            let hay =
                domain::identity_key(&format!("{} {} {} {}", p.last_name, p.first_name, p.field_of_study, p.level), "");
            q.as_ref().is_none_or(|q| q.split(' ').all(|w| hay.contains(w)))
                && filter
                    .field
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .is_none_or(|f| p.field_of_study.eq_ignore_ascii_case(f))
                && filter.level.as_deref().filter(|f| !f.is_empty()).is_none_or(|f| p.level.eq_ignore_ascii_case(f))
        })
        .collect();
    out.sort_by(|a, b| {
        (a.last_name.to_lowercase(), a.first_name.to_lowercase())
            .cmp(&(b.last_name.to_lowercase(), b.first_name.to_lowercase()))
    });
    Ok(out)
}

async fn participant_details(db: &Db, org: OrgId) -> CoreResult<HashMap<String, (String, String)>> {
    let rows = sqlx::query("SELECT id, field_of_study, level FROM clubs_participants WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?)))).collect()
}

/// Competition ranks of participants (linked results only), by participant.
async fn ranks_by_participant(db: &Db, org: OrgId, club_id: Option<&str>) -> CoreResult<HashMap<String, Vec<i64>>> {
    let rows = sqlx::query(
        "SELECT r.participant_id, r.rank_no, a.club_id FROM clubs_results r JOIN clubs_activities a ON a.id = r.activity_id \
         WHERE r.org_id = $1 AND r.participant_id IS NOT NULL",
    )
    .bind(org.to_string())
    .fetch_all(db.pool())
    .await?;
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for r in rows {
        let c: String = r.try_get(2)?;
        if club_id.is_some_and(|k| k != c) {
            continue;
        }
        out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
    }
    Ok(out)
}

// ---------- executives ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Executive {
    pub id: String,
    pub club_id: String,
    pub last_name: String,
    pub first_name: String,
    /// Contact details: for the club's executives only (absent otherwise).
    pub email: Option<String>,
    pub phone: Option<String>,
    pub field_of_study: String,
    pub level: String,
    /// Position held: president, treasurer, secretary…
    pub position: String,
    /// The club head receives the reports and records the others' attendance.
    pub is_head: bool,
    pub photo_file_id: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ExecutiveInput {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    /// Their sign-in email: with a role that can write to `clubs`, it gives
    /// access to the club's restricted data.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub field_of_study: Option<String>,
    pub level: Option<String>,
    pub position: Option<String>,
    pub is_head: Option<bool>,
}

const EXEC_COLS: &str =
    "id, club_id, last_name, first_name, email, phone, field_of_study, level, position, is_head, photo_file_id";

fn exec_row(r: &AnyRow) -> CoreResult<Executive> {
    Ok(Executive {
        id: r.try_get(0)?,
        club_id: r.try_get(1)?,
        last_name: r.try_get(2)?,
        first_name: r.try_get(3)?,
        email: Some(r.try_get(4)?),
        phone: Some(r.try_get(5)?),
        field_of_study: r.try_get(6)?,
        level: r.try_get(7)?,
        position: r.try_get(8)?,
        is_head: r.try_get::<i64, _>(9)? != 0,
        photo_file_id: r.try_get(10)?,
    })
}

pub async fn executives(db: &Db, org: OrgId, club_id: &str) -> CoreResult<Vec<Executive>> {
    let rows = sqlx::query(&format!("SELECT {EXEC_COLS} FROM clubs_executives WHERE org_id = $1 AND club_id = $2 ORDER BY is_head DESC, last_name, first_name"))
        .bind(org.to_string())
        .bind(club_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(exec_row).collect()
}

pub async fn executive(db: &Db, org: OrgId, club_id: &str, id: &str) -> CoreResult<Executive> {
    let r = sqlx::query(&format!(
        "SELECT {EXEC_COLS} FROM clubs_executives WHERE org_id = $1 AND club_id = $2 AND id = $3"
    ))
    .bind(org.to_string())
    .bind(club_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(CoreError::NotFound)?;
    exec_row(&r)
}

fn exec_fields(input: ExecutiveInput, before: Option<&Executive>) -> CoreResult<Executive> {
    let pick = |v: Option<String>, b: Option<String>| v.map(|s| text(&s)).or(b).unwrap_or_default();
    let e = Executive {
        id: before.map(|b| b.id.clone()).unwrap_or_else(new_id),
        club_id: before.map(|b| b.club_id.clone()).unwrap_or_default(),
        last_name: pick(input.last_name, before.map(|b| b.last_name.clone())),
        first_name: pick(input.first_name, before.map(|b| b.first_name.clone())),
        email: Some(pick(input.email, before.and_then(|b| b.email.clone())).to_lowercase()),
        phone: Some(pick(input.phone, before.and_then(|b| b.phone.clone()))),
        field_of_study: pick(input.field_of_study, before.map(|b| b.field_of_study.clone())),
        level: pick(input.level, before.map(|b| b.level.clone())),
        position: pick(input.position, before.map(|b| b.position.clone())),
        is_head: input.is_head.or(before.map(|b| b.is_head)).unwrap_or(false),
        photo_file_id: before.and_then(|b| b.photo_file_id.clone()),
    };
    let mut errors = Vec::new();
    required(&mut errors, "last_name", &e.last_name, 100);
    required(&mut errors, "first_name", &e.first_name, 100);
    required(&mut errors, "position", &e.position, 100);
    let email = e.email.as_deref().unwrap_or("");
    if !email.is_empty()
        && (email.len() > 254
            || !email.contains('@')
            || email.contains(' ')
            || email.starts_with('@')
            || email.ends_with('@'))
    {
        errors.push(FieldError::new("email", "This is not an email address."));
    }
    optional(&mut errors, "phone", e.phone.as_deref().unwrap_or(""), 40);
    optional(&mut errors, "field_of_study", &e.field_of_study, 100);
    optional(&mut errors, "level", &e.level, 50);
    done(errors)?;
    Ok(e)
}

pub async fn save_executive(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    club: &Club,
    before: Option<&Executive>,
    input: ExecutiveInput,
) -> CoreResult<Executive> {
    let mut e = exec_fields(input, before)?;
    e.club_id = club.id.clone();
    let mut tx = db.begin().await?;
    if e.is_head {
        // One head per club.
        sqlx::query("UPDATE clubs_executives SET is_head = 0 WHERE org_id = $1 AND club_id = $2 AND id <> $3")
            .bind(cap.org().to_string())
            .bind(&club.id)
            .bind(&e.id)
            .execute(tx.conn())
            .await?;
    }
    if before.is_some() {
        sqlx::query(
            "UPDATE clubs_executives SET last_name = $1, first_name = $2, email = $3, phone = $4, field_of_study = $5, level = $6, position = $7, is_head = $8 \
             WHERE org_id = $9 AND id = $10",
        )
        .bind(&e.last_name)
        .bind(&e.first_name)
        .bind(e.email.as_deref().unwrap_or(""))
        .bind(e.phone.as_deref().unwrap_or(""))
        .bind(&e.field_of_study)
        .bind(&e.level)
        .bind(&e.position)
        .bind(e.is_head as i64)
        .bind(cap.org().to_string())
        .bind(&e.id)
        .execute(tx.conn())
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO clubs_executives (id, org_id, club_id, last_name, first_name, email, phone, field_of_study, level, position, is_head, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&e.id)
        .bind(cap.org().to_string())
        .bind(&club.id)
        .bind(&e.last_name)
        .bind(&e.first_name)
        .bind(e.email.as_deref().unwrap_or(""))
        .bind(e.phone.as_deref().unwrap_or(""))
        .bind(&e.field_of_study)
        .bind(&e.level)
        .bind(&e.position)
        .bind(e.is_head as i64)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    }
    let action = if before.is_some() { "clubs.executive.update" } else { "clubs.executive.create" };
    record(
        &mut tx,
        who,
        cap.org(),
        action,
        "club_executive",
        &e.id,
        before.and_then(|b| serde_json::to_value(b).ok()),
        serde_json::to_value(&e).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(e)
}

pub async fn set_executive_photo(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    e: &Executive,
    photo: Photo,
) -> CoreResult<Executive> {
    let f = shrooms_core::files::store(
        st,
        who,
        cap,
        &shrooms_core::files::Owner::new("club_executive", &e.id),
        shrooms_core::files::Upload { name: photo.name, bytes: photo.bytes, public: true },
    )
    .await?;
    if !f.is_image() {
        shrooms_core::files::delete(st, who, cap, &f.id).await?;
        return Err(CoreError::validation("photo", "Only photos are accepted (JPEG, PNG, WebP, GIF)."));
    }
    let mut tx = st.db.begin().await?;
    sqlx::query("UPDATE clubs_executives SET photo_file_id = $1 WHERE org_id = $2 AND id = $3")
        .bind(&f.id)
        .bind(cap.org().to_string())
        .bind(&e.id)
        .execute(tx.conn())
        .await?;
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.executive.photo",
        "club_executive",
        &e.id,
        Some(json!({"photo": e.photo_file_id})),
        Some(json!({"photo": f.id})),
    )
    .await?;
    tx.commit().await?;
    if let Some(old) = &e.photo_file_id {
        let _ = shrooms_core::files::delete(st, who, cap, old).await;
    }
    let mut e = e.clone();
    e.photo_file_id = Some(f.id);
    Ok(e)
}

pub async fn delete_executive(st: &AppState, who: &Who, cap: &CanWrite, e: &Executive) -> CoreResult<()> {
    let before = serde_json::to_value(e).ok();
    delete_with_files(st, who, cap, "clubs_executives", "club_executive", "clubs.executive.delete", &e.id, before).await
}

/// Deletes a record that may carry files (their rows go in the same
/// transaction, their blobs with the cleanup job), with its audit entry.
#[allow(clippy::too_many_arguments)]
async fn delete_with_files(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    table: &str,
    kind: &str,
    action: &str,
    id: &str,
    before: Option<Value>,
) -> CoreResult<()> {
    let mut tx = st.db.begin().await?;
    shrooms_core::files::delete_for(&mut tx, who, cap, kind, id).await?;
    sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    record(&mut tx, who, cap.org(), action, kind, id, before, None).await?;
    tx.commit().await
}

// ---------- meetings: executives' attendance ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Meeting {
    pub id: String,
    pub title: String,
    pub held_at: String,
    pub held_local: String,
    pub activity_id: Option<String>,
    /// Ids of the executives who were present.
    pub present: Vec<String>,
    /// Ids of the executives who were expected and absent.
    pub absent: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct MeetingInput {
    pub title: Option<String>,
    /// Local time or RFC 3339 instant.
    pub held_at: Option<String>,
    /// An activity of the club the meeting was (or prepared).
    pub activity_id: Option<String>,
    /// Executives present; every other executive of the club is recorded absent.
    #[serde(default)]
    pub present: Vec<String>,
}

pub async fn meetings(db: &Db, org: OrgId, zone: &str, club_id: &str) -> CoreResult<Vec<Meeting>> {
    let rows = sqlx::query("SELECT id, title, held_at, activity_id FROM clubs_meetings WHERE org_id = $1 AND club_id = $2 ORDER BY held_at DESC")
        .bind(org.to_string())
        .bind(club_id)
        .fetch_all(db.pool())
        .await?;
    let pres = sqlx::query("SELECT p.meeting_id, p.executive_id, p.present FROM clubs_meeting_presence p JOIN clubs_meetings m ON m.id = p.meeting_id WHERE m.org_id = $1 AND m.club_id = $2")
        .bind(org.to_string())
        .bind(club_id)
        .fetch_all(db.pool())
        .await?;
    let mut by: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
    for r in pres {
        let e = by.entry(r.try_get(0)?).or_default();
        if r.try_get::<i64, _>(2)? != 0 {
            e.0.push(r.try_get(1)?);
        } else {
            e.1.push(r.try_get(1)?);
        }
    }
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(0)?;
            let held: i64 = r.try_get(2)?;
            let (present, absent) = by.remove(&id).unwrap_or_default();
            Ok(Meeting {
                id,
                title: r.try_get(1)?,
                held_at: ts(held),
                held_local: local(held, zone),
                activity_id: r.try_get(3)?,
                present,
                absent,
            })
        })
        .collect()
}

pub async fn create_meeting(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    club: &Club,
    input: MeetingInput,
) -> CoreResult<Meeting> {
    let mut errors = Vec::new();
    let title = text(input.title.as_deref().unwrap_or(""));
    required(&mut errors, "title", &title, 200);
    let held = input.held_at.as_deref().and_then(|s| parse_local(s, zone));
    if held.is_none() {
        errors.push(FieldError::new("held_at", "Give the date and time (for example 2026-03-12T14:30)."));
    }
    let execs = executives(db, cap.org(), &club.id).await?;
    for (i, p) in input.present.iter().enumerate() {
        if !execs.iter().any(|e| &e.id == p) {
            errors.push(FieldError::new(format!("present[{i}]"), "Not an executive of this club."));
        }
    }
    let activity_id = input.activity_id.filter(|a| !a.is_empty());
    if let Some(a) = &activity_id {
        if activity(db, cap.org(), zone, &club.id, a).await.is_err() {
            errors.push(FieldError::new("activity_id", "Not an activity of this club."));
        }
    }
    done(errors)?;
    let id = new_id();
    let held = held.unwrap_or(0);
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO clubs_meetings (id, org_id, club_id, title, held_at, activity_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&id)
        .bind(cap.org().to_string())
        .bind(&club.id)
        .bind(&title)
        .bind(held)
        .bind(&activity_id)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for e in &execs {
        let here = input.present.contains(&e.id);
        sqlx::query(
            "INSERT INTO clubs_meeting_presence (meeting_id, executive_id, org_id, present) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(&e.id)
        .bind(cap.org().to_string())
        .bind(here as i64)
        .execute(tx.conn())
        .await?;
        if here {
            present.push(e.id.clone())
        } else {
            absent.push(e.id.clone())
        }
    }
    let m = Meeting {
        id: id.clone(),
        title,
        held_at: ts(held),
        held_local: local(held, zone),
        activity_id,
        present,
        absent,
    };
    record(&mut tx, who, cap.org(), "clubs.meeting.create", "club_meeting", &id, None, serde_json::to_value(&m).ok())
        .await?;
    tx.commit().await?;
    Ok(m)
}

// ---------- action programme ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: String,
    pub club_id: String,
    pub year: i64,
    pub title: String,
    pub assignee_id: Option<String>,
    pub activity_id: Option<String>,
    /// `YYYY-MM-DD`.
    pub due_on: Option<String>,
    pub done: bool,
    pub done_at: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskInput {
    pub title: Option<String>,
    /// The programme's year (defaults to the current one).
    pub year: Option<i64>,
    /// An executive of the club, or empty for nobody.
    pub assignee_id: Option<String>,
    pub activity_id: Option<String>,
    pub due_on: Option<String>,
    pub done: Option<bool>,
}

const TASK_COLS: &str = "id, club_id, year, title, assignee_id, activity_id, due_on, done_at";

fn task_row(r: &AnyRow) -> CoreResult<Task> {
    let done_at: Option<i64> = r.try_get(7)?;
    Ok(Task {
        id: r.try_get(0)?,
        club_id: r.try_get(1)?,
        year: r.try_get(2)?,
        title: r.try_get(3)?,
        assignee_id: r.try_get(4)?,
        activity_id: r.try_get(5)?,
        due_on: r.try_get(6)?,
        done: done_at.is_some(),
        done_at: done_at.map(ts),
    })
}

pub async fn tasks(db: &Db, org: OrgId, club_id: Option<&str>, year: Option<i64>) -> CoreResult<Vec<Task>> {
    let mut sql = format!("SELECT {TASK_COLS} FROM clubs_tasks WHERE org_id = $1");
    let mut binds: Vec<String> = vec![org.to_string()];
    if let Some(c) = club_id {
        binds.push(c.to_string());
        sql.push_str(&format!(" AND club_id = ${}", binds.len()));
    }
    if let Some(y) = year {
        sql.push_str(&format!(" AND year = {y}"));
    }
    sql.push_str(" ORDER BY due_on, title");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    q.fetch_all(db.pool()).await?.iter().map(task_row).collect()
}

pub async fn task(db: &Db, org: OrgId, club_id: &str, id: &str) -> CoreResult<Task> {
    let r = sqlx::query(&format!("SELECT {TASK_COLS} FROM clubs_tasks WHERE org_id = $1 AND club_id = $2 AND id = $3"))
        .bind(org.to_string())
        .bind(club_id)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    task_row(&r)
}

pub fn this_year(zone: &str) -> i64 {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned(tz).year() as i64
}

pub async fn save_task(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    club: &Club,
    before: Option<&Task>,
    input: TaskInput,
) -> CoreResult<Task> {
    let mut errors = Vec::new();
    let title = input.title.map(|s| text(&s)).or(before.map(|b| b.title.clone())).unwrap_or_default();
    required(&mut errors, "title", &title, 300);
    let year = input.year.or(before.map(|b| b.year)).unwrap_or_else(|| this_year(zone));
    if !(2000..=2200).contains(&year) {
        errors.push(FieldError::new("year", "Give a year like 2026."));
    }
    let assignee = match input.assignee_id {
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a),
        None => before.and_then(|b| b.assignee_id.clone()),
    };
    if let Some(a) = &assignee {
        if executive(db, cap.org(), &club.id, a).await.is_err() {
            errors.push(FieldError::new("assignee_id", "Not an executive of this club."));
        }
    }
    let activity_id = match input.activity_id {
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a),
        None => before.and_then(|b| b.activity_id.clone()),
    };
    if let Some(a) = &activity_id {
        if activity(db, cap.org(), zone, &club.id, a).await.is_err() {
            errors.push(FieldError::new("activity_id", "Not an activity of this club."));
        }
    }
    let due = match input.due_on.map(|s| text(&s)) {
        Some(d) if d.is_empty() => None,
        Some(d) => {
            if !valid_date(&d) {
                errors.push(FieldError::new("due_on", "Give a date like 2026-03-31."));
            }
            Some(d)
        }
        None => before.and_then(|b| b.due_on.clone()),
    };
    done(errors)?;
    let done_flag = input.done.or(before.map(|b| b.done)).unwrap_or(false);
    let done_at = match (done_flag, before.and_then(|b| b.done_at.as_deref())) {
        (false, _) => None,
        (true, Some(prev)) => prev.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond()),
        (true, None) => Some(Timestamp::now().0),
    };
    let id = before.map(|b| b.id.clone()).unwrap_or_else(new_id);
    let mut tx = db.begin().await?;
    if before.is_some() {
        sqlx::query("UPDATE clubs_tasks SET title = $1, year = $2, assignee_id = $3, activity_id = $4, due_on = $5, done_at = $6 WHERE org_id = $7 AND id = $8")
            .bind(&title)
            .bind(year)
            .bind(&assignee)
            .bind(&activity_id)
            .bind(&due)
            .bind(done_at)
            .bind(cap.org().to_string())
            .bind(&id)
            .execute(tx.conn())
            .await?;
    } else {
        sqlx::query("INSERT INTO clubs_tasks (id, org_id, club_id, year, title, assignee_id, activity_id, due_on, done_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&id)
            .bind(cap.org().to_string())
            .bind(&club.id)
            .bind(year)
            .bind(&title)
            .bind(&assignee)
            .bind(&activity_id)
            .bind(&due)
            .bind(done_at)
            .bind(Timestamp::now().0)
            .execute(tx.conn())
            .await?;
    }
    let r = sqlx::query(&format!("SELECT {TASK_COLS} FROM clubs_tasks WHERE id = $1"))
        .bind(&id)
        .fetch_one(tx.conn())
        .await?;
    let t = task_row(&r)?;
    let action = if before.is_some() { "clubs.task.update" } else { "clubs.task.create" };
    record(
        &mut tx,
        who,
        cap.org(),
        action,
        "club_task",
        &id,
        before.and_then(|b| serde_json::to_value(b).ok()),
        serde_json::to_value(&t).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(t)
}

pub async fn delete_task(db: &Db, who: &Who, cap: &CanWrite, t: &Task) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM clubs_tasks WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(&t.id)
        .execute(tx.conn())
        .await?;
    record(&mut tx, who, cap.org(), "clubs.task.delete", "club_task", &t.id, serde_json::to_value(t).ok(), None)
        .await?;
    tx.commit().await
}

// ---------- money (sealed) ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MoneyLine {
    pub id: String,
    pub club_id: String,
    pub direction: Direction,
    /// `YYYY-MM-DD`.
    pub occurred_on: String,
    /// Exact decimal with two places, as text ("12.50"): money is never a float.
    pub amount: String,
    #[serde(skip)]
    pub cents: i64,
    pub reason: String,
    pub comment: String,
    pub activity_id: Option<String>,
    /// Files attached (the receipt).
    pub receipts: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct MoneyInput {
    /// `expense` or `income`.
    pub direction: Option<String>,
    /// Exact decimal as text ("12.50" or "12,50").
    pub amount: Option<String>,
    pub occurred_on: Option<String>,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub activity_id: Option<String>,
}

fn ctx_of(id: &str, field: &str) -> String {
    format!("clubs_money.{field}:{id}")
}

/// The cash book of a club (or of every club), oldest first, opened with the data key.
pub async fn money(db: &Db, key: &DataKey, org: OrgId, club_id: Option<&str>) -> CoreResult<Vec<MoneyLine>> {
    let mut sql = String::from("SELECT id, club_id, direction, occurred_on, amount_sealed, reason_sealed, comment_sealed, activity_id FROM clubs_money WHERE org_id = $1");
    if club_id.is_some() {
        sql.push_str(" AND club_id = $2");
    }
    sql.push_str(" ORDER BY occurred_on, id");
    let mut q = sqlx::query(&sql).bind(org.to_string());
    if let Some(c) = club_id {
        q = q.bind(c);
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(0)?;
            let cents = key.open_i64(&ctx_of(&id, "amount"), &r.try_get::<String, _>(4)?)?;
            Ok(MoneyLine {
                club_id: r.try_get(1)?,
                direction: Direction::parse(&r.try_get::<String, _>(2)?).unwrap_or(Direction::Expense),
                occurred_on: r.try_get(3)?,
                amount: domain::format_cents(cents),
                cents,
                reason: key.open(&ctx_of(&id, "reason"), &r.try_get::<String, _>(5)?)?,
                comment: key.open(&ctx_of(&id, "comment"), &r.try_get::<String, _>(6)?)?,
                activity_id: r.try_get(7)?,
                receipts: Vec::new(),
                id,
            })
        })
        .collect()
}

pub async fn add_money(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    club: &Club,
    input: MoneyInput,
    receipt: Option<Photo>,
) -> CoreResult<MoneyLine> {
    let mut errors = Vec::new();
    let direction = Direction::parse(input.direction.as_deref().unwrap_or("expense"));
    if direction.is_none() {
        errors.push(FieldError::new("direction", "Choose expense or income."));
    }
    let cents = match domain::parse_amount(input.amount.as_deref().unwrap_or("")) {
        Ok(c) => c,
        Err(m) => {
            errors.push(FieldError::new("amount", m));
            0
        }
    };
    let on = text(input.occurred_on.as_deref().unwrap_or(""));
    let on = if on.is_empty() {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC))
            .date()
            .to_string()
    } else {
        on
    };
    if !valid_date(&on) {
        errors.push(FieldError::new("occurred_on", "Give a date like 2026-03-31."));
    }
    let reason = text(input.reason.as_deref().unwrap_or(""));
    required(&mut errors, "reason", &reason, 300);
    let comment = input.comment.unwrap_or_default().trim().to_string();
    optional(&mut errors, "comment", &comment, 5000);
    let activity_id = input.activity_id.filter(|a| !a.is_empty());
    if let Some(a) = &activity_id {
        if activity(&st.db, cap.org(), zone, &club.id, a).await.is_err() {
            errors.push(FieldError::new("activity_id", "Not an activity of this club."));
        }
    }
    done(errors)?;
    let direction = direction.unwrap_or(Direction::Expense);
    let id = new_id();
    let key = &st.data_key;
    // The receipt first: a refused file stores nothing.
    let mut receipts = Vec::new();
    if let Some(p) = receipt.filter(|p| !p.bytes.is_empty()) {
        let f = shrooms_core::files::store(
            st,
            who,
            cap,
            &shrooms_core::files::Owner::new("club_money", &id),
            shrooms_core::files::Upload { name: p.name, bytes: p.bytes, public: false },
        )
        .await
        .map_err(|e| match e {
            CoreError::Validation(v) => {
                CoreError::Validation(v.into_iter().map(|f| FieldError::new("receipt", f.message)).collect())
            }
            other => other,
        })?;
        receipts.push(f.id);
    }
    let line = MoneyLine {
        id: id.clone(),
        club_id: club.id.clone(),
        direction,
        occurred_on: on,
        amount: domain::format_cents(cents),
        cents,
        reason,
        comment,
        activity_id,
        receipts,
    };
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "INSERT INTO clubs_money (id, org_id, club_id, activity_id, direction, occurred_on, amount_sealed, reason_sealed, comment_sealed, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(cap.org().to_string())
    .bind(&club.id)
    .bind(&line.activity_id)
    .bind(direction.as_str())
    .bind(&line.occurred_on)
    .bind(key.seal_i64(&ctx_of(&id, "amount"), cents))
    .bind(key.seal(&ctx_of(&id, "reason"), &line.reason))
    .bind(key.seal(&ctx_of(&id, "comment"), &line.comment))
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    // The audit log is readable by administrators: it says a line was added, not its amount.
    record(
        &mut tx,
        who,
        cap.org(),
        "clubs.money.create",
        "club_money",
        &id,
        None,
        Some(json!({"club_id": club.id, "direction": direction, "occurred_on": line.occurred_on})),
    )
    .await?;
    tx.commit().await?;
    Ok(line)
}

pub async fn delete_money(st: &AppState, who: &Who, cap: &CanWrite, line: &MoneyLine) -> CoreResult<()> {
    // What the audit keeps of a sealed line: not its amount.
    let before = Some(json!({"club_id": line.club_id, "direction": line.direction, "occurred_on": line.occurred_on}));
    delete_with_files(st, who, cap, "clubs_money", "club_money", "clubs.money.delete", &line.id, before).await
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CashSummary {
    pub income: String,
    pub expenses: String,
    /// Income minus expenses.
    pub balance: String,
    /// Per month (`YYYY-MM`): income, expenses.
    pub months: Vec<MonthCash>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MonthCash {
    pub month: String,
    pub income: String,
    pub expenses: String,
    #[serde(skip)]
    pub income_cents: i64,
    #[serde(skip)]
    pub expense_cents: i64,
}

/// Totals of cash lines, optionally within `[from, to]` (dates, inclusive).
pub fn cash_summary(lines: &[MoneyLine], from: Option<&str>, to: Option<&str>) -> CashSummary {
    let mut income = 0;
    let mut expenses = 0;
    let mut months: Vec<MonthCash> = Vec::new();
    for l in lines {
        if from.is_some_and(|f| l.occurred_on.as_str() < f) || to.is_some_and(|t| l.occurred_on.as_str() > t) {
            continue;
        }
        let month = l.occurred_on.get(..7).unwrap_or("").to_string();
        let m = match months.iter_mut().find(|m| m.month == month) {
            Some(m) => m,
            None => {
                months.push(MonthCash {
                    month: month.clone(),
                    income: String::new(),
                    expenses: String::new(),
                    income_cents: 0,
                    expense_cents: 0,
                });
                months.last_mut().expect("just pushed")
            }
        };
        match l.direction {
            Direction::Income => {
                income += l.cents;
                m.income_cents += l.cents;
            }
            Direction::Expense => {
                expenses += l.cents;
                m.expense_cents += l.cents;
            }
        }
    }
    months.sort_by(|a, b| a.month.cmp(&b.month));
    for m in &mut months {
        m.income = domain::format_cents(m.income_cents);
        m.expenses = domain::format_cents(m.expense_cents);
    }
    CashSummary {
        income: domain::format_cents(income),
        expenses: domain::format_cents(expenses),
        balance: domain::format_cents(income - expenses),
        months,
    }
}
