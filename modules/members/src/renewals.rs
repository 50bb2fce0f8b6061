//! Renewal notices and reminders.
//!
//! A daily schedule per organisation (`members.renewals`, 07:00 in its time
//! zone) runs the job `members.renewals`, which:
//!
//! - sends a **notice** to each member whose period (not closed, not lifetime)
//!   ends within `notice_days` and who has no following period of the type;
//!   with the invoice path, the run also records the renewal period and its
//!   invoice (the call for dues), so the notice carries the amount to pay;
//! - sends a **reminder** `reminder_days[i]` days after the end of a period
//!   that is not followed by a paid period of the type (at most 30 days
//!   late: a reminder missed for a month is not sent any more).
//!
//! Each mail (through the core outbox) carries the member's **personal
//! renewal link**: a signed token (HS256 with a key derived from the
//! instance's signing key, expiring after 120 days) to the public page
//! `/o/{org}/members/renew/{token}`. Each notice is recorded once in
//! `mem_notices` (unique person + period + kind), so a rerun never sends
//! twice. The run works by chunks of a few hundred members, one transaction
//! each: an interrupted run resumes where it stopped.

use crate::billing;
use crate::error::{MemError, MemResult};
use crate::service::{self, DuesPath, RenewInput, MODULE};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::db::{Backend, Db, Tx};
use shrooms_core::error::{CoreError, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::schedules::ScheduleSpec;
use shrooms_core::web::AppState;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// Members handled per transaction.
pub const CHUNK: usize = 250;
/// How long a renewal link stays valid.
const LINK_DAYS: i64 = 120;
/// A reminder later than its day by more than this is not sent any more.
const REMINDER_WINDOW_DAYS: i64 = 30;

// ---------- settings ----------

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewalSettings {
    /// Days before a period's end the renewal notice is sent (0: no notice).
    pub notice_days: i64,
    /// Days after a period's end reminders are sent, e.g. `[15, 45]` (empty: none).
    pub reminder_days: Vec<i64>,
    /// Whether the daily schedule sends them (07:00 in the organisation's
    /// time zone). Off until an administrator switches it on; left out of a
    /// change, it stays as it is.
    #[serde(default)]
    pub automatic: Option<bool>,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        RenewalSettings { notice_days: 30, reminder_days: vec![15, 45], automatic: Some(false) }
    }
}

/// The per-organisation daily schedule of the renewal run.
pub const RENEWALS_SCHEDULE: &str = "members.renewals";

pub async fn settings(db: &Db, org: OrgId) -> MemResult<RenewalSettings> {
    let r = sqlx::query("SELECT notice_days, reminder_days FROM mem_renewal_settings WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(db.pool())
        .await?;
    let automatic: Option<i64> = sqlx::query_scalar("SELECT enabled FROM schedules WHERE org_id = $1 AND name = $2")
        .bind(org.to_string())
        .bind(RENEWALS_SCHEDULE)
        .fetch_optional(db.pool())
        .await?;
    let automatic = Some(automatic.unwrap_or(0) != 0);
    Ok(match r {
        Some(r) => RenewalSettings {
            notice_days: r.try_get(0)?,
            reminder_days: serde_json::from_str(&r.try_get::<String, _>(1)?).unwrap_or_default(),
            automatic,
        },
        None => RenewalSettings { automatic, ..RenewalSettings::default() },
    })
}

pub async fn save_settings(db: &Db, who: &Who, cap: &CanAdmin, s: RenewalSettings) -> MemResult<RenewalSettings> {
    let mut errors = Vec::new();
    if !(0..=365).contains(&s.notice_days) {
        errors.push(FieldError::new("notice_days", "Give a number of days from 0 to 365."));
    }
    let mut days = s.reminder_days.clone();
    days.sort_unstable();
    days.dedup();
    if days.len() > 5 {
        errors.push(FieldError::new("reminder_days", "Give at most 5 reminders."));
    }
    if days.iter().any(|d| !(1..=365).contains(d)) {
        errors.push(FieldError::new("reminder_days", "Each reminder is 1 to 365 days after the end."));
    }
    MemError::check(errors)?;
    let clean = RenewalSettings { notice_days: s.notice_days, reminder_days: days, automatic: s.automatic };
    let before = settings(db, cap.org()).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_renewal_settings (org_id, notice_days, reminder_days, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO UPDATE SET notice_days = $2, reminder_days = $3, updated_at = $4",
    )
    .bind(cap.org().to_string())
    .bind(clean.notice_days)
    .bind(serde_json::to_string(&clean.reminder_days).unwrap_or_default())
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let org = cap.org().to_string();
    service::record(
        &mut tx,
        who,
        cap.org(),
        "members.renewal_settings",
        "members_settings",
        &org,
        Some(json!(before)),
        Some(json!(clean)),
    )
    .await?;
    tx.commit().await?;
    // The daily run: switched on or off as asked (its own audit entry).
    if let Some(on) = clean.automatic {
        shrooms_core::schedules::switch_org(db, who, cap, RENEWALS_SCHEDULE, on).await?;
    }
    settings(db, cap.org()).await
}

// ---------- the personal renewal link ----------

#[derive(Serialize, Deserialize)]
struct Claims {
    typ: String,
    org: String,
    person: String,
    period: String,
    exp: i64,
}

const TOKEN_TYPE: &str = "members.renewal";

fn key(st: &AppState) -> [u8; 32] {
    // Derived, so a renewal token is never an access token and the reverse.
    shrooms_core::crypto::hmac_sha256(&st.signing_key, TOKEN_TYPE.as_bytes())
}

/// The signed token of a member's renewal link for the period that ends.
pub fn token(st: &AppState, org: OrgId, person: &str, period: &str) -> String {
    let claims = Claims {
        typ: TOKEN_TYPE.into(),
        org: org.to_string(),
        person: person.into(),
        period: period.into(),
        exp: Timestamp::now().0 / 1000 + LINK_DAYS * 86_400,
    };
    shrooms_core::crypto::jwt_sign(&key(st), &claims)
}

/// The person and period of a valid, unexpired token of this organisation.
fn verify(st: &AppState, org: OrgId, token: &str) -> Option<(String, String)> {
    let c: Claims = shrooms_core::crypto::jwt_verify(&key(st), token)?;
    (c.typ == TOKEN_TYPE && c.org == org.to_string() && c.exp > Timestamp::now().0 / 1000)
        .then_some((c.person, c.period))
}

// ---------- the run ----------

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct RenewalRun {
    pub id: String,
    /// `queued`, `running`, `cancelling`, `cancelled`, `done` or `failed`.
    pub status: String,
    /// The day the run is for (the organisation's today).
    pub on: String,
    /// Members the run has to write to (notices and reminders), counted
    /// when it starts.
    pub total: i64,
    /// Members handled so far: the progress.
    pub done: i64,
    pub notices: i64,
    pub reminders: i64,
    /// Renewal periods recorded and invoiced with their notice (invoice path).
    pub invoiced: i64,
    /// Notices recorded for people without an e-mail (nothing mailed).
    pub without_email: i64,
    /// `api`, `page`, `cli` or `schedule`.
    pub started_by: String,
    pub error: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// The daily schedule's job: a run for the organisation's today.
pub const RENEWALS_JOB: JobSpec =
    JobSpec { name: "members.renewals", max_attempts: 3, backoff_secs: 60, timeout_secs: 3600, run: run_job };

/// The job of a run started from the pages, the API or the command line.
/// Its retries are for a worker that died mid-run (the run, still
/// `running`, continues); a run that failed with an error stays failed and
/// a new run does what is left.
pub const RUN_JOB: JobSpec =
    JobSpec { name: "members.renewals.run", max_attempts: 3, backoff_secs: 30, timeout_secs: 3600, run: started_job };

pub fn schedule() -> ScheduleSpec {
    // Created off: an administrator switches automatic notices on.
    ScheduleSpec::each_org(RENEWALS_SCHEDULE, RENEWALS_JOB.name, "0 7 * * *").disabled()
}

fn run_job(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let cap = ctx.write_grant(MODULE).ok_or_else(|| anyhow::anyhow!("the renewal run has an organisation"))?;
        let who = Who::system("members: renewal run");
        let r = match run(&st, &who, &cap, None, "schedule").await {
            // A run started by hand is under way: it does today's work.
            Err(MemError::Core(CoreError::Conflict { .. })) => return Ok(()),
            r => r.map_err(|e| anyhow::anyhow!("{}", CoreError::from(e)))?,
        };
        tracing::info!(org = %cap.org(), notices = r.notices, reminders = r.reminders, invoiced = r.invoiced, "members: renewal run");
        Ok(())
    })
}

fn started_job(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let cap = ctx.write_grant(MODULE).ok_or_else(|| anyhow::anyhow!("the renewal run has an organisation"))?;
        let id = ctx.payload["run"].as_str().unwrap_or_default().to_string();
        execute(&st, &cap, &id).await.map_err(|e| anyhow::anyhow!("{}", CoreError::from(e)))
    })
}

const RUN_COLS: &str = "id, status, on_date, total, done, notices, reminders, invoiced, without_email, started_by, \
     error, started_at, finished_at FROM mem_renewal_runs";

fn run_row(r: &sqlx::any::AnyRow) -> Result<RenewalRun, sqlx::Error> {
    Ok(RenewalRun {
        id: r.try_get(0)?,
        status: r.try_get(1)?,
        on: r.try_get(2)?,
        total: r.try_get(3)?,
        done: r.try_get(4)?,
        notices: r.try_get(5)?,
        reminders: r.try_get(6)?,
        invoiced: r.try_get(7)?,
        without_email: r.try_get(8)?,
        started_by: r.try_get(9)?,
        error: r.try_get(10)?,
        started_at: Timestamp(r.try_get(11)?).rfc3339(),
        finished_at: r.try_get::<Option<i64>, _>(12)?.map(|t| Timestamp(t).rfc3339()),
    })
}

pub async fn get_run(db: &Db, cap: &CanRead, id: &str) -> MemResult<RenewalRun> {
    let r = sqlx::query(&format!("SELECT {RUN_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(MemError::Core(CoreError::NotFound))?;
    Ok(run_row(&r)?)
}

/// The organisation's 50 latest runs, newest first.
pub async fn list_runs(db: &Db, cap: &CanRead) -> MemResult<Vec<RenewalRun>> {
    let rows = sqlx::query(&format!("SELECT {RUN_COLS} WHERE org_id = $1 ORDER BY started_at DESC, id DESC LIMIT 50"))
        .bind(cap.org().to_string())
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(run_row).collect::<Result<_, _>>()?)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRenewalRun {
    /// `YYYY-MM-DD`: the day the notices and reminders are due for (a day
    /// missed can be caught up). The organisation's today when left out.
    #[serde(default)]
    pub on: Option<String>,
}

/// The day asked for a run, checked (`None`: the organisation's today).
pub fn run_day(on: Option<&str>) -> MemResult<Option<Date>> {
    match on.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => crate::domain::parse_date("on", s).map(Some).map_err(|e| MemError::Invalid(vec![e])),
    }
}

const STARTED_BY: [&str; 4] = ["api", "page", "cli", "schedule"];

/// Records a run (refused while another of the organisation is under way),
/// queued for the job when `queue`, else running in the caller's task.
async fn create_run(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    on: Option<Date>,
    started_by: &str,
    queue: bool,
) -> MemResult<String> {
    let org = cap.org();
    let db = &st.db;
    debug_assert!(STARTED_BY.contains(&started_by));
    let o = shrooms_core::orgs::find_org(db, &org.to_string()).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    let on = on.unwrap_or_else(|| service::today(&o.timezone));
    let mut tx = db.begin().await?;
    let busy = sqlx::query(
        "SELECT id FROM mem_renewal_runs WHERE org_id = $1 AND status IN ('queued', 'running', 'cancelling')",
    )
    .bind(org.to_string())
    .fetch_optional(tx.conn())
    .await?;
    if busy.is_some() {
        return Err(MemError::Core(CoreError::Conflict {
            field: None,
            message: "A renewal run is in progress: wait for it to end.".into(),
        }));
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO mem_renewal_runs (id, org_id, on_date, status, started_by, created_by, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(on.to_string())
    .bind(if queue { "queued" } else { "running" })
    .bind(started_by)
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    if queue {
        let key = format!("members-renewals:{id}");
        shrooms_core::jobs::enqueue(&mut tx, &RUN_JOB, Some(org), json!({"run": id}), Some(&key), 0).await?;
    }
    service::record(
        &mut tx,
        who,
        org,
        "members.renewals.start",
        "members_renewal_run",
        &id,
        None,
        Some(json!({"on": on.to_string(), "started_by": started_by})),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Starts a run in the background (the job queue does the work): follow
/// its progress with [`get_run`].
pub async fn start(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    on: Option<Date>,
    started_by: &str,
) -> MemResult<RenewalRun> {
    let id = create_run(st, who, cap, on, started_by, true).await?;
    get_run(&st.db, &cap.as_read(), &id).await
}

/// Runs the notices and reminders due on `on` (the organisation's today
/// when `None`) and waits for the end. Safe to run again: what was sent is
/// not sent twice.
pub async fn run(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    on: Option<Date>,
    started_by: &str,
) -> MemResult<RenewalRun> {
    let id = create_run(st, who, cap, on, started_by, false).await?;
    execute(st, cap, &id).await?;
    get_run(&st.db, &cap.as_read(), &id).await
}

/// Asks a run to stop after the chunk it is writing (a queued run stops at
/// once). What it sent stays sent; a new run does the rest.
pub async fn cancel_run(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> MemResult<RenewalRun> {
    let run = get_run(db, &cap.as_read(), id).await?;
    let next = match run.status.as_str() {
        "queued" => "cancelled",
        "running" => "cancelling",
        s => return Err(MemError::Core(CoreError::Conflict { field: None, message: format!("This run is {s}.") })),
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE mem_renewal_runs SET status = $1, finished_at = CASE WHEN $1 = 'cancelled' THEN $2 ELSE finished_at END \
         WHERE org_id = $3 AND id = $4 AND status = $5",
    )
    .bind(next)
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(id)
    .bind(&run.status)
    .execute(tx.conn())
    .await?;
    service::record(&mut tx, who, cap.org(), "members.renewals.cancel", "members_renewal_run", id, None, None).await?;
    tx.commit().await?;
    get_run(db, &cap.as_read(), id).await
}

/// Does a recorded run; a failure is written on it.
async fn execute(st: &AppState, cap: &CanWrite, id: &str) -> MemResult<()> {
    match work(st, cap, id).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = CoreError::from(e);
            let fields: Vec<String> = e.field_errors().iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
            let text = if fields.is_empty() { e.public_detail() } else { fields.join("; ") };
            sqlx::query("UPDATE mem_renewal_runs SET status = 'failed', error = $1, finished_at = $2 WHERE id = $3")
                .bind(text)
                .bind(Timestamp::now().0)
                .bind(id)
                .execute(st.db.pool())
                .await?;
            Err(MemError::Core(e))
        }
    }
}

struct Candidate {
    period: String,
    person: String,
    type_id: String,
    type_name: String,
    ends_on: String,
    fee: i64,
}

fn shift(d: Date, days: i64) -> Date {
    d.checked_add(jiff::Span::new().days(days)).unwrap_or(d)
}

/// The work of a run: every pass's members counted first (the run's
/// total), then written to by chunks of [`CHUNK`], one transaction each,
/// the run's progress and counts updated after each. A run retried after a
/// crash counts again what is left: what was sent is not sent twice.
async fn work(st: &AppState, cap: &CanWrite, id: &str) -> MemResult<()> {
    let org = cap.org();
    let db = &st.db;
    let o = shrooms_core::orgs::find_org(db, &org.to_string()).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    let r = sqlx::query("SELECT on_date, status, done FROM mem_renewal_runs WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(MemError::Core(CoreError::NotFound))?;
    let (on, status, done): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    if !matches!(status.as_str(), "queued" | "running") {
        return Ok(());
    }
    let today: Date = on.parse().map_err(|_| CoreError::Internal(format!("renewal run {id}: bad day {on}")))?;
    let rs = settings(db, org).await?;
    let invoice = service::settings(db, org).await?.dues_path == DuesPath::Invoice;
    if invoice {
        billing::prepare(db, org).await?;
    }
    let who = Who::system("members: renewal run");
    let lang = shrooms_core::outbox::language_for(db, None).await?;
    let instance = shrooms_core::instance::load(db).await?.name;
    let base = st.base_url();
    let cols = "SELECT p.id, p.person_id, p.type_id, t.name, p.ends_on, p.fee_cents FROM mem_periods p \
                JOIN mem_types t ON t.id = p.type_id WHERE p.org_id = $1 AND p.closed_on IS NULL AND p.ends_on IS NOT NULL";
    // The notices' test names the person too, so it walks the unique index
    // (org, person, period, kind) instead of every notice of the organisation.
    let mut passes: Vec<(String, String)> = Vec::new();
    if rs.notice_days > 0 {
        passes.push((
            "notice".into(),
            format!(
                "{cols} AND p.ends_on >= $2 AND p.ends_on <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM mem_periods q WHERE q.org_id = p.org_id AND q.person_id = p.person_id \
                 AND q.type_id = p.type_id AND q.starts_on > p.starts_on) \
                 AND NOT EXISTS (SELECT 1 FROM mem_notices n WHERE n.org_id = p.org_id AND n.person_id = p.person_id \
                 AND n.period_id = p.id AND n.kind = $4) \
                 ORDER BY p.ends_on, p.id"
            ),
        ));
    }
    let paid_invoice = if invoice {
        " OR EXISTS (SELECT 1 FROM inv_documents i WHERE i.org_id = q.org_id AND i.id = q.invoice_id AND i.status = 'paid')"
    } else {
        ""
    };
    for d in &rs.reminder_days {
        passes.push((
            format!("reminder_{d}"),
            format!(
                "{cols} AND p.ends_on >= $2 AND p.ends_on <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM mem_periods q WHERE q.org_id = p.org_id AND q.person_id = p.person_id \
                 AND q.type_id = p.type_id AND q.starts_on > p.starts_on AND (q.fee_cents <= COALESCE((SELECT \
                 CAST(SUM(d.amount_cents) AS BIGINT) FROM mem_dues d WHERE d.org_id = q.org_id AND d.period_id = q.id \
                 AND d.status = 'paid'), 0){paid_invoice})) \
                 AND NOT EXISTS (SELECT 1 FROM mem_notices n WHERE n.org_id = p.org_id AND n.person_id = p.person_id \
                 AND n.period_id = p.id AND n.kind = $4) \
                 ORDER BY p.ends_on, p.id"
            ),
        ));
    }
    let mut work = Vec::with_capacity(passes.len());
    for (kind, sql) in &passes {
        let (from, to) = match kind.strip_prefix("reminder_").and_then(|d| d.parse::<i64>().ok()) {
            Some(d) => (shift(today, -d - REMINDER_WINDOW_DAYS), shift(today, -d)),
            None => (today, shift(today, rs.notice_days)),
        };
        let rows = sqlx::query(sql)
            .bind(org.to_string())
            .bind(from.to_string())
            .bind(to.to_string())
            .bind(kind)
            .fetch_all(db.pool())
            .await?;
        let candidates = rows
            .iter()
            .map(|r| {
                Ok(Candidate {
                    period: r.try_get(0)?,
                    person: r.try_get(1)?,
                    type_id: r.try_get(2)?,
                    type_name: r.try_get(3)?,
                    ends_on: r.try_get(4)?,
                    fee: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        work.push((kind, candidates));
    }
    let total = done + work.iter().map(|(_, c)| c.len() as i64).sum::<i64>();
    sqlx::query(
        "UPDATE mem_renewal_runs SET status = 'running', total = $1 WHERE id = $2 AND status IN ('queued', 'running')",
    )
    .bind(total)
    .bind(id)
    .execute(db.pool())
    .await?;
    for (kind, candidates) in &work {
        let is_notice = *kind == "notice";
        for chunk in candidates.chunks(CHUNK) {
            let mut counts = RenewalRun::default();
            let mut tx = if invoice && is_notice { db.begin_durable().await? } else { db.begin().await? };
            if tx.backend() == Backend::Postgres {
                // Each statement planned for its own values: the connection's
                // prepared statements would otherwise switch to a generic
                // plan after five runs, made while the run's tables (customers,
                // invoices, pending items) were still small and never
                // analysed, and keep it as they grow (docs/PERFORMANCE.md).
                sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(tx.conn()).await?;
            }
            // Claim the notices (a concurrent run claims none twice), then the renewals.
            let claimed = claim_notices(&mut tx, org, kind, chunk).await?;
            let mut sent = Vec::new();
            let mut renewed = Vec::new();
            // The renewals of the chunk are checked one by one and recorded
            // together (periods, events, audit entries, summary rows).
            let inputs: Vec<(&str, RenewInput)> = claimed
                .iter()
                .filter(|_| invoice && is_notice)
                .map(|(_, c)| (c.person.as_str(), RenewInput { type_id: c.type_id.clone(), ..Default::default() }))
                .collect();
            let mut results = service::renew_many_in(&mut tx, &who, org, &inputs, today).await?.into_iter();
            for (id, c) in claimed {
                let renewal = if invoice && is_notice { results.next().and_then(Result::ok) } else { None };
                if let Some(pid) = &renewal {
                    renewed.push(pid.clone());
                }
                sent.push((id, c, renewal));
            }
            // The invoices just made (number, amount), for the mails.
            let invoices = billing::invoice_periods(&mut tx, &who, org, &renewed).await?;
            counts.invoiced += renewed.len() as i64;
            let people: Vec<&str> = sent.iter().map(|(_, c, _)| c.person.as_str()).collect();
            let recipients = recipients(&mut tx, org, &people).await?;
            let mail_kind = if is_notice { "members_renewal" } else { "members_renewal_reminder" };
            let mut mails = Vec::new();
            // (notice id, address written to, renewal period) for the notices' rows.
            let mut marks: Vec<(String, String, Option<String>)> = Vec::new();
            for (id, c, renewal) in &sent {
                let (name, email) = recipients.get(c.person.as_str()).cloned().unwrap_or_default();
                let Some(to) = email else {
                    counts.without_email += 1;
                    if let Some(pid) = renewal {
                        marks.push((id.clone(), String::new(), Some(pid.clone())));
                    }
                    continue;
                };
                let link = format!("{base}/o/{}/members/renew/{}", o.slug, token(st, org, &c.person, &c.period));
                let invoice = renewal.as_ref().and_then(|p| invoices.get(p));
                let ctx = json!({
                    "name": name,
                    "org_name": o.name, "type_name": c.type_name, "ends_on": c.ends_on,
                    "fee": crate::domain::cents_text(invoice.map(|i| i.1).unwrap_or(c.fee)),
                    "invoice_number": invoice.map(|i| i.0.clone()),
                    "reminder": !is_notice, "link": link,
                });
                let mail = st
                    .templates
                    .render_mail(mail_kind, &lang, &instance, ctx)
                    .map_err(|e| CoreError::Internal(format!("mail template {mail_kind}: {e:#}")))?;
                marks.push((id.clone(), to.clone(), renewal.clone()));
                mails.push((to, mail));
            }
            mark_notices(&mut tx, &marks).await?;
            shrooms_core::outbox::enqueue_many(&mut tx, Some(org), mail_kind, &mails).await?;
            if !sent.is_empty() {
                let n = sent.len() as i64;
                if is_notice {
                    counts.notices += n;
                } else {
                    counts.reminders += n;
                }
                service::record(
                    &mut tx,
                    &who,
                    org,
                    &format!("members.renewals.{}", if is_notice { "notices" } else { "reminders" }),
                    "members_settings",
                    &org.to_string(),
                    None,
                    Some(json!({"kind": kind, "count": n, "on": today.to_string()})),
                )
                .await?;
            }
            // The progress, with the chunk's work: a cancel asked meanwhile
            // stops the run after it.
            let status: String = sqlx::query(
                "UPDATE mem_renewal_runs SET done = done + $1, notices = notices + $2, reminders = reminders + $3, \
                 invoiced = invoiced + $4, without_email = without_email + $5 WHERE id = $6 RETURNING status",
            )
            .bind(chunk.len() as i64)
            .bind(counts.notices)
            .bind(counts.reminders)
            .bind(counts.invoiced)
            .bind(counts.without_email)
            .bind(id)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
            tx.commit().await?;
            if status == "cancelling" {
                finish(db, id, "cancelled").await?;
                return Ok(());
            }
        }
    }
    finish(db, id, "done").await
}

async fn finish(db: &Db, id: &str, status: &str) -> MemResult<()> {
    sqlx::query("UPDATE mem_renewal_runs SET status = $1, finished_at = $2 WHERE id = $3")
        .bind(status)
        .bind(Timestamp::now().0)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records the notices of a chunk (one multi-row insert; a notice recorded
/// already, by a run at the same time, is skipped) and returns those this
/// run recorded, with their ids.
async fn claim_notices<'a>(
    tx: &mut Tx,
    org: OrgId,
    kind: &str,
    chunk: &'a [Candidate],
) -> MemResult<Vec<(String, &'a Candidate)>> {
    if chunk.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = chunk.iter().map(|_| service::new_id()).collect();
    let rows: Vec<String> =
        (0..chunk.len()).map(|i| format!("(${}, $1, ${}, ${}, $2, '', $3)", 4 + i * 3, 5 + i * 3, 6 + i * 3)).collect();
    let sql = format!(
        "INSERT INTO mem_notices (id, org_id, person_id, period_id, kind, sent_to, created_at) VALUES {} \
         ON CONFLICT (org_id, person_id, period_id, kind) DO NOTHING",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(org.to_string()).bind(kind).bind(Timestamp::now().0);
    for (id, c) in ids.iter().zip(chunk) {
        q = q.bind(id).bind(&c.person).bind(&c.period);
    }
    q.execute(tx.conn()).await?;
    let params: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("SELECT id FROM mem_notices WHERE org_id = $1 AND id IN ({})", params.join(","));
    let mut q = sqlx::query_scalar::<_, String>(&sql).bind(org.to_string());
    for id in &ids {
        q = q.bind(id);
    }
    let mine: HashSet<String> = q.fetch_all(tx.conn()).await?.into_iter().collect();
    Ok(ids.into_iter().zip(chunk).filter(|(id, _)| mine.contains(id)).collect())
}

/// The name and address to write to of each person (their own e-mail, else
/// their household's, as `service::person_in` gives it; none when blank).
async fn recipients(tx: &mut Tx, org: OrgId, people: &[&str]) -> MemResult<HashMap<String, (String, Option<String>)>> {
    let mut out = HashMap::new();
    for chunk in people.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT p.id, p.given_name, p.family_name, p.email, h.email FROM people p \
             LEFT JOIN mem_profiles m ON m.org_id = p.org_id AND m.person_id = p.id \
             LEFT JOIN mem_households h ON h.org_id = p.org_id AND h.id = m.household_id \
             WHERE p.org_id = $1 AND p.id IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for p in chunk {
            q = q.bind(*p);
        }
        for r in q.fetch_all(tx.conn()).await? {
            let name = format!("{} {}", r.try_get::<String, _>(1)?, r.try_get::<String, _>(2)?).trim().to_string();
            let email = r.try_get::<Option<String>, _>(3)?.or(r.try_get::<Option<String>, _>(4)?);
            out.insert(r.try_get(0)?, (name, email.filter(|e| !e.trim().is_empty())));
        }
    }
    Ok(out)
}

/// Writes on the notices the address written to and the renewal recorded
/// with them (one statement per 200 notices).
async fn mark_notices(tx: &mut Tx, marks: &[(String, String, Option<String>)]) -> MemResult<()> {
    for chunk in marks.chunks(200) {
        let (mut to, mut renewal, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for (i, _) in chunk.iter().enumerate() {
            let b = 1 + i * 3;
            to.push(format!("WHEN ${b} THEN ${}", b + 1));
            renewal.push(format!("WHEN ${b} THEN COALESCE(${}, renewal_period_id)", b + 2));
            ids.push(format!("${b}"));
        }
        let sql = format!(
            "UPDATE mem_notices SET sent_to = CASE id {} ELSE sent_to END, renewal_period_id = CASE id {} \
             ELSE renewal_period_id END WHERE id IN ({})",
            to.join(" "),
            renewal.join(" "),
            ids.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (id, sent_to, period) in chunk {
            q = q.bind(id).bind(sent_to).bind(period);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

// ---------- what the member's page and the dues page show ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Notice {
    /// `notice` or `reminder_<days>`.
    pub kind: String,
    pub period_id: String,
    /// The address written to; empty when the person has no e-mail.
    pub sent_to: String,
    /// RFC 3339.
    pub sent_at: String,
}

pub async fn notices_of(db: &Db, cap: &CanRead, person: &str) -> MemResult<Vec<Notice>> {
    let rows = sqlx::query(
        "SELECT kind, period_id, sent_to, created_at FROM mem_notices WHERE org_id = $1 AND person_id = $2 \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(cap.org().to_string())
    .bind(person)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Notice {
                kind: r.try_get(0)?,
                period_id: r.try_get(1)?,
                sent_to: r.try_get(2)?,
                sent_at: Timestamp(r.try_get(3)?).rfc3339(),
            })
        })
        .collect()
}

/// A member the board should chase: standing not up to date, with the reminders sent.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LateMember {
    pub person_id: String,
    pub name: String,
    pub standing: crate::domain::Standing,
    /// Reminders sent about their last period.
    pub reminders: i64,
    /// RFC 3339; none when no reminder was sent.
    pub last_reminder_at: Option<String>,
}

/// Who is late (dues unpaid or lapsed in the last year) with their reminder counts.
pub async fn late(db: &Db, cap: &CanRead, zone: &str) -> MemResult<Vec<LateMember>> {
    use crate::domain::Standing;
    let f =
        service::MemberFilter { standing: Some("dues_unpaid,lapsed".into()), limit: Some(5000), ..Default::default() };
    let rows = service::members(db, cap, zone, &f).await?;
    let counts = sqlx::query(
        "SELECT person_id, COUNT(*), MAX(created_at) FROM mem_notices WHERE org_id = $1 AND kind LIKE 'reminder%' \
         GROUP BY person_id",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    let mut by: HashMap<String, (i64, i64)> = HashMap::new();
    for r in &counts {
        by.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
    }
    let mut out = Vec::new();
    for r in rows {
        let late = match r.standing.standing {
            Standing::DuesUnpaid => true,
            Standing::Lapsed => by.contains_key(&r.person_id),
            _ => false,
        };
        if !late {
            continue;
        }
        let (n, at) = by.get(&r.person_id).copied().map(|(n, a)| (n, Some(a))).unwrap_or((0, None));
        out.push(LateMember {
            person_id: r.person_id,
            name: r.name,
            standing: r.standing.standing,
            reminders: n,
            last_reminder_at: at.map(|a| Timestamp(a).rfc3339()),
        });
    }
    Ok(out)
}

// ---------- the public renewal page ----------

#[derive(Clone, Debug, Serialize)]
pub struct RenewView {
    pub name: String,
    pub type_name: String,
    pub ends_on: Option<String>,
    /// The renewal: recorded already, or what it would be.
    pub renewed: bool,
    pub starts_on: String,
    pub new_ends_on: Option<String>,
    pub fee_cents: i64,
    pub paid: bool,
    pub invoice_number: Option<String>,
    pub pay_path: Option<String>,
    /// Why it cannot be renewed here (closed membership…).
    pub refused: Option<String>,
}

/// What the renewal link shows; `commit` records the renewal (and its invoice).
pub async fn renew_by_token(
    st: &AppState,
    org: &shrooms_core::orgs::Org,
    token: &str,
    commit: bool,
) -> MemResult<RenewView> {
    let (person, period) = verify(st, org.id, token).ok_or(MemError::Core(CoreError::NotFound))?;
    let cap = CanWrite::operator(org.id, MODULE);
    let m = service::membership(&st.db, &cap.as_read(), &org.timezone, &person).await?;
    let ended = m.periods.iter().find(|p| p.id == period).cloned().ok_or(MemError::Core(CoreError::NotFound))?;
    let name = service::display_name(&m.person);
    let next = m
        .periods
        .iter()
        .filter(|p| p.type_id == ended.type_id && p.starts_on > ended.starts_on)
        .max_by_key(|p| p.starts_on.clone())
        .cloned();
    let mut view = RenewView {
        name,
        type_name: ended.type_name.clone(),
        ends_on: ended.ends_on.clone(),
        renewed: false,
        starts_on: String::new(),
        new_ends_on: None,
        fee_cents: 0,
        paid: false,
        invoice_number: None,
        pay_path: None,
        refused: None,
    };
    let next = match next {
        Some(n) => Some(n),
        None if commit => {
            let who = Who::system("members: renewal link");
            billing::prepare(&st.db, org.id).await?;
            let input = RenewInput {
                type_id: ended.type_id.clone(),
                request_key: Some(format!("renew-link:{period}")),
                ..Default::default()
            };
            match service::renew(&st.db, &who, &cap, &org.timezone, &person, input).await {
                Ok(w) => Some(w.period),
                Err(MemError::Invalid(e)) => {
                    view.refused = e.first().map(|f| f.message.clone());
                    return Ok(view);
                }
                Err(e) => return Err(e),
            }
        }
        None => {
            // What the renewal would be, computed by the same rules and not kept.
            let mut tx = st.db.begin().await?;
            let input = RenewInput { type_id: ended.type_id.clone(), ..Default::default() };
            let who = Who::system("members: renewal link");
            match service::renew_in(&mut tx, &who, org.id, &person, &input, service::today(&org.timezone)).await? {
                Ok(id) => {
                    let m2 = service::periods_in(&mut tx, org.id, &person).await?;
                    if let Some(p) = m2.into_iter().find(|p| p.id == id) {
                        view.starts_on = p.starts_on;
                        view.new_ends_on = p.ends_on;
                        view.fee_cents = p.fee_cents;
                    }
                }
                Err(e) => view.refused = e.first().map(|f| f.message.clone()),
            }
            drop(tx);
            None
        }
    };
    if let Some(n) = next {
        view.renewed = true;
        view.starts_on = n.starts_on.clone();
        view.new_ends_on = n.ends_on.clone();
        view.fee_cents = n.fee_cents;
        view.paid = n.paid_cents >= n.fee_cents;
        if n.invoice_id.is_some() {
            let inv = billing::invoices_of(st, org.id, &org.slug, &person, true).await?;
            if let Some(i) = inv.into_iter().find(|i| i.period_id == n.id) {
                view.invoice_number = i.number;
                view.pay_path = i.pay_path;
            }
        }
    }
    Ok(view)
}
