//! Recurring schedules: a background job enqueued at each occurrence of a
//! cron expression ([`crate::cron`]), read in a time zone.
//!
//! Modules declare schedules ([`ScheduleSpec`], from `Module::schedules()`),
//! for the instance or for every organisation; [`sync`] stores one row per
//! schedule and scope (created if missing, the module's expression changes
//! applied, schedules no module declares any more switched off). The
//! scheduler ([`run_scheduler`], one per `serve` process) calls [`tick`]
//! every few seconds: each due schedule gets exactly one job per occurrence,
//! even with several servers, because the job is enqueued in the same
//! transaction as a compare-and-set of `next_run_at`, which only one server
//! can win. A server that was down over several occurrences runs the
//! schedule once, not once per missed occurrence.
//!
//! Times are read in the schedule's own zone, else its organisation's
//! (`orgs.timezone`), else the instance's default (`instance.time_zone`).
//! Administrators change a schedule's expression, zone or switch it off
//! ([`update`], audited); a module's later change of its declared
//! expression does not overwrite an administrator's.
//!
//! This module never runs jobs: [`crate::jobs`] does.

use crate::audit::{self, Change, Who};
use crate::cron::{self, Cron};
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{OrgId, Timestamp};
use crate::module::Modules;
use crate::permissions::{CanAdmin, InstanceAdmin};
use crate::web::AppState;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::time::Duration;

/// How often each server looks for due schedules: a schedule runs at most
/// this long after its time.
pub const TICK: Duration = Duration::from_secs(5);
/// How often each server stores the schedules of organisations created since.
const SYNC_EVERY: Duration = Duration::from_secs(60);

/// For whom a module's schedule exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleScope {
    /// Once for the whole instance; its job gets no organisation.
    Instance,
    /// Once per organisation; its job gets the organisation. It runs only
    /// while the module is on for that organisation.
    EachOrg,
}

/// A schedule declared by a module:
///
/// ```ignore
/// ScheduleSpec::each_org("members.dues_reminders", "members.send_reminders", "0 9 * * mon")
/// ```
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// Unique, stable, prefixed by the module id. Renaming it makes a new
    /// schedule (and switches the old one off).
    pub name: &'static str,
    /// The job to enqueue: a `JobSpec` name declared by some module.
    pub job: &'static str,
    /// The default expression; administrators may change it.
    pub cron: &'static str,
    pub scope: ScheduleScope,
    /// The job's payload at each occurrence.
    pub payload: serde_json::Value,
    /// A fixed zone; `None` follows the organisation's (or the instance's).
    pub time_zone: Option<&'static str>,
    /// Whether a new schedule starts switched on (default `true`).
    pub enabled: bool,
}

impl ScheduleSpec {
    fn new(name: &'static str, job: &'static str, cron: &'static str, scope: ScheduleScope) -> Self {
        ScheduleSpec { name, job, cron, scope, payload: serde_json::json!({}), time_zone: None, enabled: true }
    }
    /// Once for the instance, in the instance's time zone.
    pub fn instance(name: &'static str, job: &'static str, cron: &'static str) -> Self {
        Self::new(name, job, cron, ScheduleScope::Instance)
    }
    /// Once per organisation, in each organisation's time zone.
    pub fn each_org(name: &'static str, job: &'static str, cron: &'static str) -> Self {
        Self::new(name, job, cron, ScheduleScope::EachOrg)
    }
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
    pub fn in_zone(mut self, zone: &'static str) -> Self {
        self.time_zone = Some(zone);
        self
    }
    /// Created switched off: administrators switch it on where they want it.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: String,
    /// Stable name given by the module, e.g. `members.dues_reminders`.
    pub name: String,
    pub module: String,
    /// `None` for an instance-wide schedule.
    pub org_id: Option<String>,
    pub org_slug: Option<String>,
    /// The job enqueued at each occurrence.
    pub job: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The expression that runs.
    pub cron: String,
    /// The module's expression (differs once an administrator changed it).
    pub default_cron: String,
    /// The zone the expression is read in.
    pub time_zone: String,
    /// The schedule's own zone; `None` follows the organisation's (or the instance's).
    pub own_time_zone: Option<String>,
    pub enabled: bool,
    /// False once no module declares it: it never runs again.
    pub declared: bool,
    /// Next occurrence, RFC 3339 in UTC; `None` when switched off.
    pub next_run_at: Option<String>,
    /// Next occurrence in `time_zone`, `YYYY-MM-DD HH:MM`.
    pub next_run_local: Option<String>,
    pub last_run_at: Option<String>,
    pub last_job_id: Option<String>,
    /// Status of the last job: queued, running, done, dead or cancelled.
    pub last_job_status: Option<String>,
}

/// What administrators may change. Absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    /// A cron expression: five fields or a shortcut like `@daily`.
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    /// An IANA time zone for this schedule alone; `""` follows the
    /// organisation's (or the instance's) zone again.
    pub time_zone: Option<String>,
}

/// Who changes a schedule: an instance administrator (any schedule) or an
/// organisation's administrator (that organisation's schedules only).
pub enum ScheduleScopeCap<'a> {
    Instance(&'a InstanceAdmin),
    Org(&'a CanAdmin),
}

const LIST_COLS: &str = "s.id, s.name, s.module, s.org_id, o.slug, s.job, s.payload, s.cron, s.default_cron, \
     COALESCE(s.time_zone, o.timezone, i.time_zone), s.time_zone, s.enabled, s.declared, s.next_run_at, s.last_run_at, s.last_job_id, j.status";
const LIST_FROM: &str =
    "FROM schedules s LEFT JOIN orgs o ON o.id = s.org_id LEFT JOIN jobs j ON j.id = s.last_job_id \
     CROSS JOIN instance i WHERE i.id = 1";

fn schedule_from_row(r: &AnyRow) -> CoreResult<Schedule> {
    let zone: String = r.try_get(9)?;
    let enabled = r.try_get::<i64, _>(11)? != 0;
    let declared = r.try_get::<i64, _>(12)? != 0;
    let next = r.try_get::<Option<i64>, _>(13)?.filter(|_| enabled && declared);
    let local = next.and_then(|n| {
        let t = jiff::Timestamp::from_millisecond(n).ok()?;
        Some(cron::local_display(t, &cron::zone(&zone)?))
    });
    Ok(Schedule {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        module: r.try_get(2)?,
        org_id: r.try_get(3)?,
        org_slug: r.try_get(4)?,
        job: r.try_get(5)?,
        payload: serde_json::from_str(&r.try_get::<String, _>(6)?).unwrap_or(serde_json::Value::Null),
        cron: r.try_get(7)?,
        default_cron: r.try_get(8)?,
        time_zone: zone,
        own_time_zone: r.try_get(10)?,
        enabled,
        declared,
        next_run_at: next.map(|n| Timestamp(n).rfc3339()),
        next_run_local: local,
        last_run_at: r.try_get::<Option<i64>, _>(14)?.map(|t| Timestamp(t).rfc3339()),
        last_job_id: r.try_get(15)?,
        last_job_status: r.try_get(16)?,
    })
}

/// Every schedule of the instance: instance-wide ones first, then by organisation.
pub async fn list_all(db: &Db, _admin: &InstanceAdmin) -> CoreResult<Vec<Schedule>> {
    let rows = sqlx::query(&format!(
        "SELECT {LIST_COLS} {LIST_FROM} ORDER BY CASE WHEN s.org_id IS NULL THEN 0 ELSE 1 END, o.slug, s.name"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(schedule_from_row).collect()
}

/// The schedules of one organisation.
pub async fn list_org(db: &Db, cap: &CanAdmin) -> CoreResult<Vec<Schedule>> {
    let rows = sqlx::query(&format!("SELECT {LIST_COLS} {LIST_FROM} AND s.org_id = $1 ORDER BY s.name"))
        .bind(cap.org().to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(schedule_from_row).collect()
}

async fn get_tx(tx: &mut Tx, id: &str, org: Option<OrgId>) -> CoreResult<Schedule> {
    let r = match org {
        Some(o) => {
            sqlx::query(&format!("SELECT {LIST_COLS} {LIST_FROM} AND s.id = $1 AND s.org_id = $2"))
                .bind(id)
                .bind(o.to_string())
                .fetch_optional(tx.conn())
                .await?
        }
        None => {
            sqlx::query(&format!("SELECT {LIST_COLS} {LIST_FROM} AND s.id = $1"))
                .bind(id)
                .fetch_optional(tx.conn())
                .await?
        }
    };
    r.as_ref().map(schedule_from_row).transpose()?.ok_or(CoreError::NotFound)
}

/// Checks an expression for a form or an API field named `field`.
pub fn parse_cron(field: &str, expr: &str) -> Result<Cron, FieldError> {
    Cron::parse(expr).map_err(|e| FieldError::new(field, e.to_string()))
}

/// The next occurrence after `now` in the zone named `zone` (UTC if that
/// name is unknown, which validation prevents for new values).
fn next_run(c: &Cron, zone: &str, now: Timestamp) -> Option<i64> {
    let z = cron::zone(zone).unwrap_or_else(|| {
        tracing::warn!(zone, "unknown time zone; reading the schedule in UTC");
        jiff::tz::TimeZone::UTC
    });
    let after = jiff::Timestamp::from_millisecond(now.0).ok()?;
    c.next_after(after, &z).map(|t| t.as_millisecond())
}

/// Switches one of the organisation's schedules, found by its declared name,
/// on or off (audited by [`update`]; nothing is written when it already is).
/// Modules use it when a setting of theirs decides whether a daily run
/// happens. Returns whether the schedule exists.
pub async fn switch_org(db: &Db, who: &Who, cap: &CanAdmin, name: &str, on: bool) -> CoreResult<bool> {
    let Some(sch) = list_org(db, cap).await?.into_iter().find(|s| s.name == name) else {
        return Ok(false);
    };
    if sch.enabled != on {
        let patch = SchedulePatch { cron: None, enabled: Some(on), time_zone: None };
        update(db, who, ScheduleScopeCap::Org(cap), &sch.id, patch).await?;
    }
    Ok(true)
}

/// Changes a schedule's expression, zone or switch, audited. An
/// organisation's administrator reaches only that organisation's schedules
/// (others answer 404).
pub async fn update(
    db: &Db,
    who: &Who,
    scope: ScheduleScopeCap<'_>,
    id: &str,
    patch: SchedulePatch,
) -> CoreResult<Schedule> {
    let mut errors = Vec::new();
    let new_cron = match patch.cron.as_deref().map(str::trim) {
        Some(expr) => match parse_cron("cron", expr) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let own_zone = patch.time_zone.as_deref().map(str::trim);
    if let Some(z) = own_zone {
        if !z.is_empty() && !cron::valid_zone(z) {
            errors.push(FieldError::new("time_zone", "Use an IANA time zone like Europe/Paris."));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let org = match scope {
        ScheduleScopeCap::Instance(_) => None,
        ScheduleScopeCap::Org(cap) => Some(cap.org()),
    };
    let mut tx = db.begin().await?;
    let before = get_tx(&mut tx, id, org).await?;
    if patch.enabled == Some(true) && !before.declared {
        return Err(CoreError::Conflict {
            field: Some("enabled".into()),
            message: "No module declares this schedule any more: it cannot run.".into(),
        });
    }
    let cron_text = new_cron.as_ref().map(|c| c.as_str().to_string()).unwrap_or_else(|| before.cron.clone());
    let own = match own_zone {
        Some("") => None,
        Some(z) => Some(z.to_string()),
        None => before.own_time_zone.clone(),
    };
    let enabled = patch.enabled.unwrap_or(before.enabled);
    // The effective zone after the change: the schedule's own, else the one it followed.
    let zone = match &own {
        Some(z) => z.clone(),
        None => inherited_zone(&mut tx, before.org_id.as_deref()).await?,
    };
    let c = match new_cron {
        Some(c) => c,
        None => Cron::parse(&cron_text).map_err(|e| CoreError::Internal(format!("stored expression: {e}")))?,
    };
    // From now: switching back on never catches up on the time it was off.
    let next = next_run(&c, &zone, Timestamp::now());
    sqlx::query(
        "UPDATE schedules SET cron = $1, time_zone = $2, enabled = $3, next_run_at = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(&cron_text)
    .bind(&own)
    .bind(enabled as i64)
    .bind(next)
    .bind(Timestamp::now().0)
    .bind(&before.id)
    .execute(tx.conn())
    .await?;
    let after = get_tx(&mut tx, id, org).await?;
    let view = |s: &Schedule| serde_json::json!({"cron": s.cron, "enabled": s.enabled, "time_zone": s.own_time_zone});
    audit::record(
        &mut tx,
        who,
        Change {
            org: before.org_id.as_deref().and_then(|o| o.parse().ok()),
            action: "schedule.update",
            entity_type: "schedule",
            entity_id: before.id.clone(),
            before: Some(view(&before)),
            after: Some(view(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// The zone a schedule without its own follows: its organisation's, or the instance's.
async fn inherited_zone(tx: &mut Tx, org: Option<&str>) -> CoreResult<String> {
    let r = match org {
        Some(o) => sqlx::query("SELECT timezone FROM orgs WHERE id = $1").bind(o).fetch_one(tx.conn()).await?,
        None => sqlx::query("SELECT time_zone FROM instance WHERE id = 1").fetch_one(tx.conn()).await?,
    };
    Ok(r.try_get(0)?)
}

/// Recomputes the next run of the schedules that follow a zone that just
/// changed: an organisation's (`Some(org)`) or the instance's (`None`).
/// Called in the transaction that changes the zone.
pub async fn zone_changed(tx: &mut Tx, org: Option<OrgId>, zone: &str) -> CoreResult<()> {
    let rows = match org {
        Some(o) => {
            sqlx::query("SELECT id, cron FROM schedules WHERE org_id = $1 AND time_zone IS NULL")
                .bind(o.to_string())
                .fetch_all(tx.conn())
                .await?
        }
        None => {
            sqlx::query("SELECT id, cron FROM schedules WHERE org_id IS NULL AND time_zone IS NULL")
                .fetch_all(tx.conn())
                .await?
        }
    };
    let now = Timestamp::now();
    for r in rows {
        let id: String = r.try_get(0)?;
        let Ok(c) = Cron::parse(&r.try_get::<String, _>(1)?) else { continue };
        sqlx::query("UPDATE schedules SET next_run_at = $1, updated_at = $2 WHERE id = $3")
            .bind(next_run(&c, zone, now))
            .bind(now.0)
            .bind(&id)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Stores the per-organisation schedules of a new organisation, in the
/// transaction that creates it (so they exist from its first moment).
pub async fn create_for_org(tx: &mut Tx, modules: &Modules, org: OrgId, zone: &str) -> CoreResult<()> {
    let now = Timestamp::now();
    for (module, spec) in modules.schedules().into_iter().filter(|(_, s)| s.scope == ScheduleScope::EachOrg) {
        let c = Cron::parse(spec.cron).map_err(|e| CoreError::Internal(format!("schedule {}: {e}", spec.name)))?;
        sqlx::query(
            "INSERT INTO schedules (id, name, module, scope, org_id, job, payload, cron, default_cron, time_zone, enabled, declared, next_run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $7, $8, $9, 1, $10, $11, $11) ON CONFLICT (name, scope) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(spec.name)
        .bind(module)
        .bind(org.to_string())
        .bind(spec.job)
        .bind(spec.payload.to_string())
        .bind(spec.cron)
        .bind(spec.time_zone)
        .bind(spec.enabled as i64)
        .bind(next_run(&c, spec.time_zone.unwrap_or(zone), now))
        .bind(now.0)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

struct Stored {
    id: String,
    name: String,
    scope: String,
    module: String,
    job: String,
    payload: String,
    cron: String,
    default_cron: String,
    declared: bool,
}

/// What a sync changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: usize,
    pub updated: usize,
    pub retired: usize,
}

/// Stores the modules' schedules: one row per schedule and scope, created
/// when missing (never twice, even with several servers at once), updated
/// when the module changed it, switched off when no module declares it.
/// Runs when each server starts, then every minute (for new organisations).
pub async fn sync(db: &Db, modules: &Modules, now: Timestamp) -> CoreResult<SyncReport> {
    let specs = modules.schedules();
    let stored: Vec<Stored> =
        sqlx::query("SELECT id, name, scope, module, job, payload, cron, default_cron, declared FROM schedules")
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(Stored {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    scope: r.try_get(2)?,
                    module: r.try_get(3)?,
                    job: r.try_get(4)?,
                    payload: r.try_get(5)?,
                    cron: r.try_get(6)?,
                    default_cron: r.try_get(7)?,
                    declared: r.try_get::<i64, _>(8)? != 0,
                })
            })
            .collect::<CoreResult<_>>()?;
    let orgs: Vec<(String, String)> = if specs.iter().any(|(_, s)| s.scope == ScheduleScope::EachOrg) {
        sqlx::query("SELECT id, timezone FROM orgs ORDER BY id")
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<CoreResult<_>>()?
    } else {
        Vec::new()
    };
    let instance_zone: String =
        sqlx::query("SELECT time_zone FROM instance WHERE id = 1").fetch_one(db.pool()).await?.try_get(0)?;

    let mut report = SyncReport::default();
    let mut tx: Option<Tx> = None;
    let mut wanted: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    for (module, spec) in &specs {
        let cron = Cron::parse(spec.cron).map_err(|e| CoreError::Internal(format!("schedule {}: {e}", spec.name)))?;
        let payload = spec.payload.to_string();
        let targets: Vec<(Option<&str>, &str, &str)> = match spec.scope {
            ScheduleScope::Instance => vec![(None, "instance", instance_zone.as_str())],
            ScheduleScope::EachOrg => {
                orgs.iter().map(|(id, tz)| (Some(id.as_str()), id.as_str(), tz.as_str())).collect()
            }
        };
        for (org, scope, inherited) in targets {
            wanted.insert((spec.name, scope));
            let zone = spec.time_zone.unwrap_or(inherited);
            let existing = stored.iter().find(|s| s.name == spec.name && s.scope == scope);
            match existing {
                None => {
                    let t = match &mut tx {
                        Some(t) => t,
                        None => tx.insert(db.begin().await?),
                    };
                    let n = sqlx::query(
                        "INSERT INTO schedules (id, name, module, scope, org_id, job, payload, cron, default_cron, time_zone, enabled, declared, next_run_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, 1, $11, $12, $12) ON CONFLICT (name, scope) DO NOTHING",
                    )
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(spec.name)
                    .bind(*module)
                    .bind(scope)
                    .bind(org)
                    .bind(spec.job)
                    .bind(&payload)
                    .bind(spec.cron)
                    .bind(spec.time_zone)
                    .bind(spec.enabled as i64)
                    .bind(next_run(&cron, zone, now))
                    .bind(now.0)
                    .execute(t.conn())
                    .await?
                    .rows_affected();
                    report.created += n as usize;
                }
                Some(s)
                    if s.default_cron != spec.cron
                        || s.job != spec.job
                        || s.payload != payload
                        || s.module != *module
                        || !s.declared =>
                {
                    // The module's new expression replaces the old one unless an
                    // administrator had chosen another.
                    let own_choice = s.cron != s.default_cron;
                    let cron_text = if own_choice { s.cron.as_str() } else { spec.cron };
                    let runs = Cron::parse(cron_text).unwrap_or_else(|_| cron.clone());
                    let t = match &mut tx {
                        Some(t) => t,
                        None => tx.insert(db.begin().await?),
                    };
                    // A schedule declared again starts as the module says.
                    let n = sqlx::query(
                        "UPDATE schedules SET module = $1, job = $2, payload = $3, cron = $4, default_cron = $5, \
                         next_run_at = CASE WHEN $12 = 1 THEN next_run_at ELSE $6 END, updated_at = $7, \
                         enabled = CASE WHEN declared = 1 THEN enabled ELSE $9 END, declared = 1 \
                         WHERE id = $8 AND default_cron = $10 AND declared = $11",
                    )
                    .bind(*module)
                    .bind(spec.job)
                    .bind(&payload)
                    .bind(cron_text)
                    .bind(spec.cron)
                    .bind(next_run(&runs, zone, now))
                    .bind(now.0)
                    .bind(&s.id)
                    .bind(spec.enabled as i64)
                    .bind(&s.default_cron)
                    .bind(s.declared as i64)
                    // Same expression, still declared: keep a due occurrence due.
                    .bind((s.declared && cron_text == s.cron) as i64)
                    .execute(t.conn())
                    .await?
                    .rows_affected();
                    if n > 0 {
                        report.updated += 1;
                        audit::record(
                            t,
                            &Who::system("scheduler"),
                            Change {
                                org: org.and_then(|o| o.parse().ok()),
                                action: "schedule.sync",
                                entity_type: "schedule",
                                entity_id: s.id.clone(),
                                before: Some(serde_json::json!({"default_cron": s.default_cron, "job": s.job, "declared": s.declared})),
                                after: Some(serde_json::json!({"default_cron": spec.cron, "cron": cron_text, "job": spec.job, "declared": true})),
                            },
                        )
                        .await?;
                    }
                }
                Some(_) => {}
            }
        }
    }
    for s in stored.iter().filter(|s| s.declared && !wanted.contains(&(s.name.as_str(), s.scope.as_str()))) {
        let t = match &mut tx {
            Some(t) => t,
            None => tx.insert(db.begin().await?),
        };
        let n = sqlx::query(
            "UPDATE schedules SET declared = 0, enabled = 0, updated_at = $1 WHERE id = $2 AND declared = 1",
        )
        .bind(now.0)
        .bind(&s.id)
        .execute(t.conn())
        .await?
        .rows_affected();
        if n > 0 {
            report.retired += 1;
            tracing::info!(schedule = %s.name, scope = %s.scope, "no module declares this schedule any more; switched off");
            audit::record(
                t,
                &Who::system("scheduler"),
                Change {
                    org: s.scope.parse().ok(),
                    action: "schedule.retire",
                    entity_type: "schedule",
                    entity_id: s.id.clone(),
                    before: Some(serde_json::json!({"declared": true})),
                    after: Some(serde_json::json!({"declared": false, "enabled": false})),
                },
            )
            .await?;
        }
    }
    if let Some(t) = tx {
        t.commit().await?;
    }
    Ok(report)
}

/// What a tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Jobs enqueued.
    pub enqueued: usize,
    /// Occurrences passed without a job: the module is off for the
    /// organisation, or its job is not registered.
    pub skipped: usize,
}

/// Enqueues the job of every schedule due at `now`, once per occurrence,
/// and moves each to its next occurrence after `now`. Safe to run at the
/// same moment on several servers: only the server whose compare-and-set of
/// `next_run_at` succeeds enqueues, in the same transaction. Exposed for
/// tests, which choose `now`; servers call it with the current time.
pub async fn tick(st: &AppState, now: Timestamp) -> CoreResult<TickReport> {
    let mut report = TickReport::default();
    // Batches until nothing is due: each handled schedule moves past `now`.
    for _ in 0..1000 {
        if tick_batch(st, now, &mut report).await? < BATCH {
            break;
        }
    }
    Ok(report)
}

const BATCH: usize = 200;

/// One batch of due schedules; returns how many were read.
async fn tick_batch(st: &AppState, now: Timestamp, report: &mut TickReport) -> CoreResult<usize> {
    let rows = sqlx::query(&format!(
        "SELECT s.id, s.name, s.module, s.org_id, s.job, s.payload, s.cron, COALESCE(s.time_zone, o.timezone, i.time_zone), s.next_run_at \
         FROM schedules s LEFT JOIN orgs o ON o.id = s.org_id CROSS JOIN instance i \
         WHERE i.id = 1 AND s.enabled = 1 AND s.declared = 1 AND s.next_run_at <= $1 ORDER BY s.next_run_at LIMIT {BATCH}"
    ))
    .bind(now.0)
    .fetch_all(st.db.pool())
    .await?;
    let read = rows.len();
    let specs = st.modules.jobs();
    for r in rows {
        let id: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let module: String = r.try_get(2)?;
        let org: Option<String> = r.try_get(3)?;
        let job: String = r.try_get(4)?;
        let payload: String = r.try_get(5)?;
        let expr: String = r.try_get(6)?;
        let zone: String = r.try_get(7)?;
        let due: i64 = r.try_get(8)?;
        let org_id: Option<OrgId> = org.as_deref().and_then(|o| o.parse().ok());
        let (next, missed) = match Cron::parse(&expr) {
            Ok(c) => {
                let next = next_run(&c, &zone, now);
                (next, missed_occurrences(&c, &zone, due, now))
            }
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "stored expression is invalid; the schedule stops until it is corrected");
                (None, 0)
            }
        };
        let spec = specs.iter().find(|s| s.name == job);
        let module_on = crate::instance::module_enabled(&st.db, &st.modules, &module, org_id).await?;
        let mut tx = st.db.begin().await?;
        let won = sqlx::query(
            "UPDATE schedules SET next_run_at = $1, updated_at = $2 WHERE id = $3 AND next_run_at = $4 AND enabled = 1",
        )
        .bind(next)
        .bind(now.0)
        .bind(&id)
        .bind(due)
        .execute(tx.conn())
        .await?
        .rows_affected()
            == 1;
        if !won {
            // Another server took this occurrence.
            continue;
        }
        match spec {
            Some(spec) if module_on => {
                let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null);
                let key = format!("schedule:{id}:{due}");
                let job_id = crate::jobs::enqueue(&mut tx, spec, org_id, payload, Some(&key), 0).await?;
                sqlx::query("UPDATE schedules SET last_run_at = $1, last_job_id = $2 WHERE id = $3")
                    .bind(now.0)
                    .bind(&job_id)
                    .bind(&id)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
                if missed > 0 {
                    tracing::warn!(schedule = %name, org = ?org, missed, "occurrences were missed while no server ran; the job runs once now");
                }
                tracing::debug!(schedule = %name, org = ?org, job = %job_id, "scheduled job enqueued");
                report.enqueued += 1;
            }
            _ => {
                tx.commit().await?;
                if spec.is_none() {
                    tracing::warn!(schedule = %name, job = %job, "no module declares this job; occurrence skipped");
                }
                report.skipped += 1;
            }
        }
    }
    Ok(read)
}

/// Occurrences after `due` that also passed before `now` (at most 1000 counted).
fn missed_occurrences(c: &Cron, zone: &str, due: i64, now: Timestamp) -> usize {
    let z = cron::zone(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let (Ok(mut t), Ok(end)) = (jiff::Timestamp::from_millisecond(due), jiff::Timestamp::from_millisecond(now.0))
    else {
        return 0;
    };
    let mut n = 0;
    while n < 1000 {
        match c.next_after(t, &z) {
            Some(next) if next <= end => {
                n += 1;
                t = next;
            }
            _ => break,
        }
    }
    n
}

/// The scheduler of a `serve` process: stores the modules' schedules, then
/// every [`TICK`] enqueues the due ones (and every minute stores those of
/// new organisations).
pub async fn run_scheduler(st: AppState) {
    let mut last_sync: Option<std::time::Instant> = None;
    loop {
        if last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY) {
            match sync(&st.db, &st.modules, Timestamp::now()).await {
                Ok(r) => {
                    last_sync = Some(std::time::Instant::now());
                    if r != SyncReport::default() {
                        tracing::info!(
                            created = r.created,
                            updated = r.updated,
                            retired = r.retired,
                            "schedules stored"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduler: storing schedules failed; retrying"),
            }
        }
        if let Err(e) = tick(&st, Timestamp::now()).await {
            tracing::warn!(error = %e, "scheduler: database unavailable; retrying");
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Schedules by state, for `/metrics`: (enabled, disabled, retired).
pub async fn counts(db: &Db) -> CoreResult<(i64, i64, i64)> {
    let r = sqlx::query(
        "SELECT COUNT(CASE WHEN declared = 1 AND enabled = 1 THEN 1 END), \
         COUNT(CASE WHEN declared = 1 AND enabled = 0 THEN 1 END), COUNT(CASE WHEN declared = 0 THEN 1 END) FROM schedules",
    )
    .fetch_one(db.pool())
    .await?;
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
}
