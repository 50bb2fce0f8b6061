//! Alerts to instance administrators when something critical fails: the
//! data folder almost full, background jobs dying, mail that cannot be
//! delivered, backups failing.
//!
//! [`check`] looks at the state shared by all replicas and [`raise`]s what
//! it finds; it runs as the `core.health.check` job, every five minutes by
//! the scheduler, so a single replica checks each time. An alert notifies
//! every instance administrator (kind `core.alert`: under the bell and by
//! mail at once, unless they chose otherwise), then stays quiet for
//! [`QUIET_HOURS`] while the problem lasts; a check that no longer finds it
//! marks it resolved.

use crate::error::CoreResult;
use crate::ids::{AccountId, Timestamp};
use crate::jobs::{JobCtx, JobFuture, JobSpec};
use crate::notify::{self, Notice};
use crate::web::AppState;
use serde::Serialize;
use sqlx::Row;

/// Hours before administrators hear again of a problem that lasts.
pub const QUIET_HOURS: i64 = 6;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub key: String,
    pub message: String,
    /// RFC 3339, UTC.
    pub first_at: String,
    pub last_at: String,
    pub occurrences: i64,
    pub resolved: bool,
}

/// Records a problem; notifies the administrators unless they were told of
/// it within the quiet period. Returns whether they were notified.
pub async fn raise(st: &AppState, key: &str, message: &str) -> CoreResult<bool> {
    let now = Timestamp::now().0;
    let mut tx = st.db.begin().await?;
    let row = sqlx::query("SELECT notified_at, resolved_at FROM alerts WHERE key = $1")
        .bind(key)
        .fetch_optional(tx.conn())
        .await?;
    let notify_now = match &row {
        None => true,
        Some(r) => {
            let notified: Option<i64> = r.try_get(0)?;
            let resolved: Option<i64> = r.try_get(1)?;
            resolved.is_some() || notified.is_none_or(|n| now - n >= QUIET_HOURS * 3_600_000)
        }
    };
    if row.is_none() {
        sqlx::query("INSERT INTO alerts (key, message, first_at, last_at, notified_at, occurrences) VALUES ($1, $2, $3, $3, NULL, 1)")
            .bind(key)
            .bind(message)
            .bind(now)
            .execute(tx.conn())
            .await?;
    } else {
        let reopened = row.as_ref().and_then(|r| r.try_get::<Option<i64>, _>(1).ok().flatten()).is_some();
        sqlx::query(if reopened {
            "UPDATE alerts SET message = $1, last_at = $2, first_at = $2, occurrences = 1, resolved_at = NULL WHERE key = $3"
        } else {
            "UPDATE alerts SET message = $1, last_at = $2, occurrences = occurrences + 1 WHERE key = $3"
        })
        .bind(message)
        .bind(now)
        .bind(key)
        .execute(tx.conn())
        .await?;
    }
    if notify_now {
        let admins: Vec<AccountId> =
            sqlx::query("SELECT id FROM accounts WHERE is_instance_admin = 1 AND disabled_at IS NULL")
                .fetch_all(tx.conn())
                .await?
                .iter()
                .map(|r| crate::ids::parse_id(&r.try_get::<String, _>(0)?))
                .collect::<CoreResult<_>>()?;
        notify::send(
            st,
            &mut tx,
            &admins,
            &Notice {
                kind: "core.alert",
                org: None,
                actor: None,
                actor_label: String::new(),
                title: message.to_string(),
                excerpt: String::new(),
                status: None,
                link: "/admin/health".into(),
            },
        )
        .await?;
        sqlx::query("UPDATE alerts SET notified_at = $1 WHERE key = $2").bind(now).bind(key).execute(tx.conn()).await?;
        tracing::warn!(alert = key, "{message}");
    }
    tx.commit().await?;
    Ok(notify_now)
}

/// Marks a problem over (the next occurrence notifies again at once).
pub async fn resolve(st: &AppState, key: &str) -> CoreResult<()> {
    let mut tx = st.db.begin().await?;
    sqlx::query("UPDATE alerts SET resolved_at = $1 WHERE key = $2 AND resolved_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(key)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

/// Current and recent alerts, newest first.
pub async fn recent(st: &AppState, limit: i64) -> CoreResult<Vec<Alert>> {
    let rows = sqlx::query(&format!(
        "SELECT key, message, first_at, last_at, occurrences, resolved_at FROM alerts ORDER BY resolved_at IS NOT NULL, last_at DESC LIMIT {}",
        limit.clamp(1, 100)
    ))
    .fetch_all(st.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Alert {
                key: r.try_get(0)?,
                message: r.try_get(1)?,
                first_at: Timestamp(r.try_get(2)?).rfc3339(),
                last_at: Timestamp(r.try_get(3)?).rfc3339(),
                occurrences: r.try_get(4)?,
                resolved: r.try_get::<Option<i64>, _>(5)?.is_some(),
            })
        })
        .collect()
}

/// Free and total space of a folder's file system, in KiB.
pub fn disk_kib(path: &std::path::Path) -> Option<(u64, u64)> {
    // `df` is everywhere this runs; the standard library has no free-space call.
    let out = std::process::Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let cols: Vec<&str> = text.lines().nth(1)?.split_whitespace().collect();
    Some((cols.get(3)?.parse().ok()?, cols.get(1)?.parse().ok()?))
}

/// Looks for critical problems and raises or resolves their alerts; returns
/// the keys raised.
pub async fn check(st: &AppState) -> CoreResult<Vec<String>> {
    let mut raised = Vec::new();
    let hour_ago = Timestamp::now().0 - 3_600_000;

    // The data folder: below the configured share free, or below 1 GiB.
    let min_percent = st.cfg.alerts.disk_free_percent;
    match disk_kib(&st.cfg.data) {
        Some((free, total)) if total > 0 && (free * 100 < total * min_percent || free < 1024 * 1024) => {
            let msg = format!(
                "The data folder is almost full: {} MiB free of {} MiB ({}%).",
                free / 1024,
                total / 1024,
                free * 100 / total
            );
            raise(st, "disk", &msg).await?;
            raised.push("disk".to_string());
        }
        Some(_) => resolve(st, "disk").await?,
        None => {}
    }

    // Background jobs that gave up within the last hour, by kind.
    let dead = sqlx::query(
        "SELECT name, COUNT(*) FROM jobs WHERE status = 'dead' AND finished_at >= $1 GROUP BY name ORDER BY name",
    )
    .bind(hour_ago)
    .fetch_all(st.db.pool())
    .await?;
    if dead.is_empty() {
        resolve(st, "jobs").await?;
    } else {
        let kinds: Vec<String> = dead
            .iter()
            .map(|r| Ok(format!("{} ({})", r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<CoreResult<_>>()?;
        let msg = format!("Background jobs failed for good in the last hour: {}.", kinds.join(", "));
        raise(st, "jobs", &msg).await?;
        raised.push("jobs".to_string());
        if dead.iter().any(|r| r.try_get::<String, _>(0).is_ok_and(|n| n.starts_with("core.backup"))) {
            raise(st, "backup", "A backup failed: see the failed jobs on the jobs page.").await?;
            raised.push("backup".to_string());
        }
    }

    // Mail given up on, among the messages of the last day.
    let failed: i64 = sqlx::query("SELECT COUNT(*) FROM mail_outbox WHERE status = 'failed' AND created_at >= $1")
        .bind(Timestamp::now().0 - 86_400_000)
        .fetch_one(st.db.pool())
        .await?
        .try_get(0)?;
    if failed > 0 {
        raise(st, "mail", &format!("{failed} mail message(s) could not be delivered: check the SMTP settings."))
            .await?;
        raised.push("mail".to_string());
    } else {
        resolve(st, "mail").await?;
    }
    Ok(raised)
}

/// The periodic check, run by the scheduler.
pub const CHECK: JobSpec =
    JobSpec { name: "core.health.check", max_attempts: 1, backoff_secs: 60, timeout_secs: 120, run: run_check };

fn run_check(st: AppState, _ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        check(&st).await?;
        Ok(())
    })
}
