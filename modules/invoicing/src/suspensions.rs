//! The suspension hook. A module that suspends a service because an invoice
//! is not paid (the cooperative host closing a mailbox) registers the
//! suspension here, naming the job to enqueue when it is lifted. When the
//! invoice is paid, [`crate::settlement::settle`] calls [`lift_for`] in the
//! paying transaction: the suspension is marked lifted and its job enqueued,
//! both exactly once (conditional update, and a dedup key per suspension).
//!
//! This file never restores a service itself: the module that suspended it
//! does, in its job.

use crate::MODULE;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs;
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::timeline;
use shrooms_core::web::AppState;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionInput {
    /// The module that suspended the service (`hosting`).
    pub module: String,
    /// What it suspended, in its own words (`mailbox:4411`).
    pub target_ref: String,
    /// The unpaid invoice.
    pub invoice_id: String,
    /// The job to enqueue when the invoice is paid (`hosting.resume`); a job of this build.
    pub job_kind: String,
    /// The job's payload.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Suspension {
    pub id: String,
    pub module: String,
    pub target_ref: String,
    pub invoice_id: String,
    pub job_kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    pub lifted_at: Option<String>,
    /// The job enqueued when it was lifted.
    pub job_id: Option<String>,
}

const COLS: &str = "id, module, target_ref, document_id, job_kind, payload, created_at, lifted_at, job_id";

fn from_row(r: &sqlx::any::AnyRow) -> CoreResult<Suspension> {
    let payload: String = r.try_get(5)?;
    Ok(Suspension {
        id: r.try_get(0)?,
        module: r.try_get(1)?,
        target_ref: r.try_get(2)?,
        invoice_id: r.try_get(3)?,
        job_kind: r.try_get(4)?,
        payload: serde_json::from_str(&payload).unwrap_or(json!({})),
        created_at: Timestamp(r.try_get(6)?).rfc3339(),
        lifted_at: r.try_get::<Option<i64>, _>(7)?.map(|t| Timestamp(t).rfc3339()),
        job_id: r.try_get(8)?,
    })
}

/// Registers a suspension in the caller's transaction: the interface for
/// other modules, which have checked their own permission. Registering the
/// same target for the same invoice again returns the first one. An invoice
/// already paid gets its suspension lifted at once.
pub async fn register_in(
    st: &AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    input: SuspensionInput,
) -> CoreResult<Suspension> {
    let mut errors = Vec::new();
    let module = input.module.trim().to_string();
    let target = input.target_ref.trim().to_string();
    if module.is_empty() || module.len() > 50 {
        errors.push(FieldError::new("module", "Name the module that suspended the service."));
    }
    if target.is_empty() || target.len() > 200 {
        errors.push(FieldError::new("target_ref", "Name what was suspended (1 to 200 characters)."));
    }
    if !st.modules.jobs().iter().any(|j| j.name == input.job_kind) {
        errors.push(FieldError::new("job_kind", "No module of this build declares this job."));
    }
    let doc = sqlx::query("SELECT kind, status FROM inv_documents WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(&input.invoice_id)
        .fetch_optional(tx.conn())
        .await?;
    let status: Option<String> = match doc {
        Some(r) if r.try_get::<String, _>(0)? == "invoice" => {
            let status: String = r.try_get(1)?;
            if status == "draft" {
                errors.push(FieldError::new(
                    "invoice_id",
                    "This invoice is a draft: nothing is owed until it is validated.",
                ));
            }
            Some(status)
        }
        _ => {
            errors.push(FieldError::new("invoice_id", "There is no such invoice."));
            None
        }
    };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO inv_suspensions (id, org_id, module, target_ref, document_id, job_kind, payload, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (org_id, module, target_ref, document_id) DO NOTHING",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&module)
    .bind(&target)
    .bind(&input.invoice_id)
    .bind(&input.job_kind)
    .bind(input.payload.unwrap_or(json!({})).to_string())
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM inv_suspensions WHERE org_id = $1 AND module = $2 AND target_ref = $3 AND document_id = $4"
    ))
    .bind(org.to_string())
    .bind(&module)
    .bind(&target)
    .bind(&input.invoice_id)
    .fetch_one(tx.conn())
    .await?;
    let s = from_row(&r)?;
    if s.id == id {
        audit::record(
            tx,
            who,
            Change {
                org: Some(org),
                action: "invoicing.suspension.register",
                entity_type: "invoicing_suspension",
                entity_id: id.clone(),
                before: None,
                after: Some(json!({"module": module, "target_ref": target, "invoice_id": input.invoice_id, "job_kind": input.job_kind})),
            },
        )
        .await?;
        let record = crate::payments::invoice_record(tx.conn(), org, &input.invoice_id).await?;
        timeline::event(
            tx,
            who,
            org,
            &record,
            &format!("Service suspended by {module}: {target}"),
            json!({"suspension_id": id}),
        )
        .await?;
    }
    if matches!(status.as_deref(), Some("paid") | Some("cancelled")) {
        lift_for(st, tx, who, org, &input.invoice_id).await?;
    }
    let r = sqlx::query(&format!("SELECT {COLS} FROM inv_suspensions WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(&s.id)
        .fetch_one(tx.conn())
        .await?;
    from_row(&r)
}

/// Registers a suspension through the API: write access to invoicing.
pub async fn register(st: &AppState, who: &Who, cap: &CanWrite, input: SuspensionInput) -> CoreResult<Suspension> {
    let mut tx = st.db.begin().await?;
    let s = register_in(st, &mut tx, who, cap.org(), input).await?;
    tx.commit().await?;
    Ok(s)
}

/// Lifts every suspension still waiting for this invoice and enqueues each
/// one's job, in the caller's transaction. Run twice, it does nothing more.
pub async fn lift_for(st: &AppState, tx: &mut Tx, who: &Who, org: OrgId, document_id: &str) -> CoreResult<()> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM inv_suspensions WHERE org_id = $1 AND document_id = $2 AND lifted_at IS NULL ORDER BY id"
    ))
    .bind(org.to_string())
    .bind(document_id)
    .fetch_all(tx.conn())
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let specs = st.modules.jobs();
    for r in rows {
        let s = from_row(&r)?;
        let now = Timestamp::now().0;
        let claimed = sqlx::query(
            "UPDATE inv_suspensions SET lifted_at = $1 WHERE org_id = $2 AND id = $3 AND lifted_at IS NULL",
        )
        .bind(now)
        .bind(org.to_string())
        .bind(&s.id)
        .execute(tx.conn())
        .await?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        let job_id = match specs.iter().find(|j| j.name == s.job_kind) {
            Some(spec) => {
                let mut payload = s.payload.clone();
                if let Some(o) = payload.as_object_mut() {
                    o.insert("suspension_id".into(), json!(s.id));
                    o.insert("target_ref".into(), json!(s.target_ref));
                    o.insert("invoice_id".into(), json!(s.invoice_id));
                }
                Some(
                    jobs::enqueue(tx, spec, Some(org), payload, Some(&format!("{MODULE}.suspension:{}", s.id)), 0)
                        .await?,
                )
            }
            // The module that declared the job is gone from this build: the
            // suspension is lifted all the same, and says so.
            None => {
                tracing::warn!(suspension = %s.id, job = %s.job_kind, "suspension lifted without a job: not declared");
                None
            }
        };
        sqlx::query("UPDATE inv_suspensions SET job_id = $1 WHERE org_id = $2 AND id = $3")
            .bind(&job_id)
            .bind(org.to_string())
            .bind(&s.id)
            .execute(tx.conn())
            .await?;
        audit::record(
            tx,
            who,
            Change {
                org: Some(org),
                action: "invoicing.suspension.lift",
                entity_type: "invoicing_suspension",
                entity_id: s.id.clone(),
                before: Some(json!({"lifted_at": null})),
                after: Some(json!({"lifted_at": Timestamp(now).rfc3339(), "job_id": job_id})),
            },
        )
        .await?;
        let record = crate::payments::invoice_record(tx.conn(), org, document_id).await?;
        timeline::event(
            tx,
            who,
            org,
            &record,
            &format!("Suspension lifted: {} {}", s.module, s.target_ref),
            json!({"suspension_id": s.id, "job_id": job_id}),
        )
        .await?;
    }
    Ok(())
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuspensionFilter {
    pub invoice_id: Option<String>,
    /// Only those not lifted yet, when true.
    pub active: Option<bool>,
}

pub async fn list(db: &Db, cap: &CanRead, f: &SuspensionFilter) -> CoreResult<Vec<Suspension>> {
    let mut sql = format!("SELECT {COLS} FROM inv_suspensions WHERE org_id = $1");
    if f.invoice_id.is_some() {
        sql.push_str(" AND document_id = $2");
    }
    if f.active == Some(true) {
        sql.push_str(" AND lifted_at IS NULL");
    }
    sql.push_str(" ORDER BY id DESC LIMIT 500");
    let mut q = sqlx::query(&sql).bind(cap.org().to_string());
    if let Some(i) = &f.invoice_id {
        q = q.bind(i);
    }
    q.fetch_all(db.pool()).await?.iter().map(from_row).collect()
}
