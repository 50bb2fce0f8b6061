//! Durable background jobs. A module declares its jobs ([`JobSpec`]: a
//! name and a function); code enqueues one in its own transaction, so the
//! job exists if and only if the change that asked for it commits. Workers
//! (one per `serve` process) claim due jobs with a lease: on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so several replicas never run the same job; on
//! SQLite under the single writer. A job that fails is retried with
//! exponential backoff and becomes `dead` after its last attempt; a worker
//! that dies mid-job leaves a lease that expires, and the job runs again.
//! Jobs must therefore be idempotent.

use crate::db::{Backend, Db, Tx};
use crate::error::{CoreError, CoreResult};
use crate::ids::{OrgId, Timestamp};
use crate::web::AppState;
use serde::Serialize;
use sqlx::Row;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What a job function receives.
#[derive(Clone, Debug)]
pub struct JobCtx {
    pub id: String,
    pub org: Option<OrgId>,
    pub payload: serde_json::Value,
    /// 1 for the first run.
    pub attempt: i64,
}

impl JobCtx {
    /// Write access to `module` in the job's organisation, for the core
    /// services that take a capability (storing a file). A job exists only
    /// because authorised code enqueued it, so it acts for that code; it has
    /// no account (the nil id): audit its changes as `Who::system(<job>)`.
    /// `None` for an instance-wide job.
    pub fn write_grant(&self, module: &'static str) -> Option<crate::permissions::CanWrite> {
        self.org.map(|o| crate::permissions::CanWrite::operator(o, module))
    }
}

/// A kind of job, declared by a module.
#[derive(Clone, Copy)]
pub struct JobSpec {
    /// Unique, stable, prefixed by the module id: `members.renewal_reminders`.
    pub name: &'static str,
    pub max_attempts: i64,
    /// First retry delay; doubles at each attempt (capped at one hour).
    pub backoff_secs: i64,
    /// A run taking longer is abandoned and retried.
    pub timeout_secs: i64,
    pub run: fn(AppState, JobCtx) -> JobFuture,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    pub id: String,
    pub name: String,
    pub org_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Enqueues a job in the caller's transaction. With a `dedup_key`, a job with
/// the same key is enqueued once; its id is returned.
pub async fn enqueue(
    tx: &mut Tx,
    spec: &JobSpec,
    org: Option<OrgId>,
    payload: serde_json::Value,
    dedup_key: Option<&str>,
    delay_secs: i64,
) -> CoreResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now();
    sqlx::query(
        "INSERT INTO jobs (id, name, org_id, payload, status, attempts, max_attempts, run_at, dedup_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, $8) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(&id)
    .bind(spec.name)
    .bind(org.map(|o| o.to_string()))
    .bind(payload.to_string())
    .bind(spec.max_attempts.max(1))
    .bind(now.plus_secs(delay_secs.max(0)).0)
    .bind(dedup_key)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    match dedup_key {
        Some(k) => Ok(sqlx::query("SELECT id FROM jobs WHERE dedup_key = $1")
            .bind(k)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?),
        None => Ok(id),
    }
}

/// [`enqueue`] for many jobs of one kind at once (multi-row inserts, in the
/// caller's transaction): each `(payload, dedup_key)` is one job; a job
/// whose key exists already is skipped, as with [`enqueue`]. For bulk
/// writers (the members' renewal run) that queue thousands of jobs.
pub async fn enqueue_many(
    tx: &mut Tx,
    spec: &JobSpec,
    org: Option<OrgId>,
    jobs: &[(serde_json::Value, Option<String>)],
    delay_secs: i64,
) -> CoreResult<()> {
    let now = Timestamp::now();
    for chunk in jobs.chunks(500) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 6 + i * 3;
                format!("(${b}, $1, $2, ${}, 'queued', 0, $3, $4, ${}, $5, $5)", b + 1, b + 2)
            })
            .collect();
        let sql = format!(
            "INSERT INTO jobs (id, name, org_id, payload, status, attempts, max_attempts, run_at, dedup_key, created_at, \
             updated_at) VALUES {} ON CONFLICT (dedup_key) DO NOTHING",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(spec.name)
            .bind(org.map(|o| o.to_string()))
            .bind(spec.max_attempts.max(1))
            .bind(now.plus_secs(delay_secs.max(0)).0)
            .bind(now.0);
        for (payload, key) in chunk {
            q = q.bind(uuid::Uuid::now_v7().to_string()).bind(payload.to_string()).bind(key.clone());
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

struct Claimed {
    id: String,
    name: String,
    org: Option<String>,
    payload: String,
    attempts: i64,
    max_attempts: i64,
}

/// Claims up to `batch` due jobs in one transaction: first those waiting
/// (index on status, run_at), then those whose worker's lease expired.
async fn claim(
    db: &Db,
    worker: &str,
    names: &[&'static str],
    lease_secs: i64,
    batch: usize,
) -> CoreResult<Vec<Claimed>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let now = Timestamp::now().0;
    let list: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 4)).collect();
    let lock = if db.backend() == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let mut out = Vec::new();
    let mut tx = db.begin().await?;
    for due in ["status = 'queued' AND run_at <= $3", "status = 'running' AND locked_until < $3"] {
        if out.len() >= batch {
            break;
        }
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE {due} AND name IN ({}) ORDER BY run_at LIMIT {}{lock}) \
             RETURNING id, name, org_id, payload, attempts, max_attempts",
            list.join(", "),
            batch - out.len()
        );
        let mut q = sqlx::query(&sql).bind(worker).bind(now + lease_secs * 1000).bind(now);
        for n in names {
            q = q.bind(*n);
        }
        for r in q.fetch_all(tx.conn()).await? {
            out.push(Claimed {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                org: r.try_get(2)?,
                payload: r.try_get(3)?,
                attempts: r.try_get(4)?,
                max_attempts: r.try_get(5)?,
            });
        }
    }
    tx.commit().await?;
    Ok(out)
}

async fn renew(db: &Db, worker: &str, ids: &[String], lease_secs: i64) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    for id in ids {
        sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND status = 'running'")
            .bind(Timestamp::now().0 + lease_secs * 1000)
            .bind(id)
            .bind(worker)
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await
}

/// Marks jobs that ran well as done, in one statement.
async fn finish_done(db: &Db, ids: &[String], worker: &str) -> CoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now().0;
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, last_error = NULL, finished_at = $1, updated_at = $1 \
         WHERE locked_by = $2 AND id IN ({})",
        list.join(", ")
    );
    let mut tx = db.begin().await?;
    let mut q = sqlx::query(&sql).bind(now).bind(worker);
    for id in ids {
        q = q.bind(id);
    }
    q.execute(tx.conn()).await?;
    tx.commit().await
}

/// A run failed: back to the queue after the backoff, or dead after the last
/// attempt. Only while the lease is still this worker's.
async fn fail(db: &Db, job: &Claimed, worker: &str, error: &str, backoff_secs: i64) -> CoreResult<()> {
    let now = Timestamp::now().0;
    let dead = job.attempts >= job.max_attempts;
    let delay = (backoff_secs.max(0) << (job.attempts - 1).clamp(0, 20)).min(3600);
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE jobs SET status = $1, run_at = $2, locked_by = NULL, locked_until = NULL, last_error = $3, updated_at = $4, finished_at = $5 WHERE id = $6 AND locked_by = $7")
        .bind(if dead { "dead" } else { "queued" })
        .bind(now + delay * 1000)
        .bind(error.chars().take(2000).collect::<String>())
        .bind(now)
        .bind(dead.then_some(now))
        .bind(&job.id)
        .bind(worker)
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

/// Runs due jobs, claimed in small batches; returns how many ran.
pub async fn run_due(st: &AppState, worker: &str, max: usize) -> CoreResult<usize> {
    let specs = st.modules.jobs();
    let names: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
    let lease = specs.iter().map(|s| s.timeout_secs).max().unwrap_or(300).max(1) + 30;
    let mut ran = 0;
    while ran < max {
        let claimed = claim(&st.db, worker, &names, lease, 32.min(max - ran)).await?;
        if claimed.is_empty() {
            break;
        }
        let mut done = Vec::new();
        let mut leased_at = std::time::Instant::now();
        let ids: Vec<String> = claimed.iter().map(|j| j.id.clone()).collect();
        for (k, job) in claimed.into_iter().enumerate() {
            // Slow jobs early in a batch: renew the leases of the ones still
            // waiting, so no other worker takes them as abandoned.
            if leased_at.elapsed() > Duration::from_secs(lease as u64 / 2) {
                renew(&st.db, worker, &ids[k..], lease).await?;
                leased_at = std::time::Instant::now();
            }
            let Some(spec) = specs.iter().find(|s| s.name == job.name).copied() else { continue };
            // A module switched off (for the instance or the job's organisation)
            // runs nothing; its jobs wait, untouched, until it is on again.
            let org: Option<OrgId> = job.org.as_deref().and_then(|o| o.parse().ok());
            if let Some(module) = st.modules.job_module(&job.name) {
                if !crate::instance::module_enabled(&st.db, &st.modules, module, org).await? {
                    sqlx::query("UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $1, locked_by = NULL, locked_until = NULL WHERE id = $2")
                        .bind(Timestamp::now().plus_secs(300).0)
                        .bind(&job.id)
                        .execute(st.db.pool())
                        .await?;
                    continue;
                }
            }
            let ctx = JobCtx {
                id: job.id.clone(),
                org,
                payload: serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null),
                attempt: job.attempts,
            };
            let timeout = Duration::from_secs(spec.timeout_secs.max(1) as u64);
            let outcome = match tokio::time::timeout(timeout, (spec.run)(st.clone(), ctx)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(_) => Err(format!("timed out after {} s", spec.timeout_secs)),
            };
            match outcome {
                Ok(()) => done.push(job.id.clone()),
                Err(e) => {
                    tracing::warn!(job = %job.name, id = %job.id, attempt = job.attempts, error = %e, "job failed");
                    fail(&st.db, &job, worker, &e, spec.backoff_secs).await?;
                }
            }
            ran += 1;
        }
        finish_done(&st.db, &done, worker).await?;
    }
    Ok(ran)
}

/// The worker of a `serve` process.
pub async fn run_worker(st: AppState) {
    let worker = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7());
    loop {
        match run_due(&st, &worker, 100).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "job worker: database unavailable; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn list(db: &Db, status: Option<&str>, limit: i64) -> CoreResult<Vec<JobInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT id, name, org_id, status, attempts, max_attempts, run_at, last_error, created_at, finished_at FROM jobs \
         WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 500)
    ))
    .bind(status.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JobInfo {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                org_id: r.try_get(2)?,
                status: r.try_get(3)?,
                attempts: r.try_get(4)?,
                max_attempts: r.try_get(5)?,
                run_at: Timestamp(r.try_get(6)?).rfc3339(),
                last_error: r.try_get(7)?,
                created_at: Timestamp(r.try_get(8)?).rfc3339(),
                finished_at: r.try_get::<Option<i64>, _>(9)?.map(|t| Timestamp(t).rfc3339()),
            })
        })
        .collect()
}

/// Runs a dead or cancelled job again (attempts start over).
pub async fn retry(
    db: &Db,
    who: &crate::audit::Who,
    _admin: &crate::permissions::InstanceAdmin,
    id: &str,
) -> CoreResult<()> {
    set_status(
        db,
        who,
        id,
        "job.retry",
        "status IN ('dead', 'cancelled')",
        "status = 'queued', attempts = 0, run_at = $1, finished_at = NULL",
    )
    .await
}

/// Cancels a job that has not started.
pub async fn cancel(
    db: &Db,
    who: &crate::audit::Who,
    _admin: &crate::permissions::InstanceAdmin,
    id: &str,
) -> CoreResult<()> {
    set_status(db, who, id, "job.cancel", "status = 'queued'", "status = 'cancelled', finished_at = $1").await
}

async fn set_status(db: &Db, who: &crate::audit::Who, id: &str, action: &str, when: &str, set: &str) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    let n = sqlx::query(&format!("UPDATE jobs SET {set}, updated_at = $1 WHERE id = $2 AND {when}"))
        .bind(Timestamp::now().0)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        let exists =
            sqlx::query("SELECT 1 FROM jobs WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?.is_some();
        return Err(if exists {
            CoreError::Conflict { field: None, message: "The job is not in a state that allows this.".into() }
        } else {
            CoreError::NotFound
        });
    }
    crate::audit::record(
        &mut tx,
        who,
        crate::audit::Change {
            org: None,
            action,
            entity_type: "job",
            entity_id: id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

pub async fn counts(db: &Db) -> CoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetch_all(db.pool()).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}
