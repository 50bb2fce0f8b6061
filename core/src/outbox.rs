//! The mail outbox: every outgoing message is stored first, in the caller's
//! transaction. Delivery by SMTP is done by the job runner of the platform
//! services; an instance without SMTP configuration logs the message instead,
//! so sign-up and password reset work on a laptop.

use crate::config::Config;
use crate::db::{Db, Tx};
use crate::error::CoreResult;
use crate::ids::{OrgId, Timestamp};
use serde::Serialize;
use sqlx::Row;

/// Stores a message in the caller's transaction: it exists if and only if the change that sent it commits.
pub async fn enqueue(
    tx: &mut Tx,
    _cfg: &Config,
    org: Option<OrgId>,
    kind: &str,
    to: &str,
    subject: &str,
    body_text: &str,
) -> CoreResult<()> {
    sqlx::query("INSERT INTO mail_outbox (id, org_id, kind, to_addr, subject, body_text, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org.map(|o| o.to_string()))
        .bind(kind)
        .bind(to)
        .bind(subject)
        .bind(body_text)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Hands committed messages over. Without SMTP configuration they are
/// written to the log (status `logged`), which is what a laptop or a test
/// instance wants. Several replicas never take the same message (row locks
/// with SKIP LOCKED on PostgreSQL, the single writer on SQLite).
pub async fn deliver_pending(db: &Db, cfg: &Config) -> CoreResult<usize> {
    if cfg.smtp.is_some() {
        // SMTP delivery arrives with the platform services (job runner); until
        // then messages stay queued and visible in the outbox.
        return Ok(0);
    }
    let lock = if db.backend() == crate::db::Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let mut tx = db.begin().await?;
    let rows = sqlx::query(&format!(
        "UPDATE mail_outbox SET status = 'logged', attempts = attempts + 1, sent_at = $1 WHERE id IN \
         (SELECT id FROM mail_outbox WHERE status = 'queued' ORDER BY created_at LIMIT 50{lock}) RETURNING kind, to_addr, subject, body_text"
    ))
    .bind(Timestamp::now().0)
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    for r in &rows {
        let (kind, to, subject, body): (String, String, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        tracing::info!(kind, to, subject, "no SMTP configured; message kept in the outbox and shown here:\n{body}");
    }
    Ok(rows.len())
}

/// Runs until the process ends: delivers the outbox every second.
pub async fn run_worker(db: Db, cfg: Config) {
    if cfg.smtp.is_some() {
        tracing::warn!(
            "SMTP is configured but SMTP delivery is not implemented yet: outgoing mail stays queued in the outbox"
        );
        return;
    }
    loop {
        if let Err(e) = deliver_pending(&db, &cfg).await {
            tracing::warn!(error = %e, "mail outbox delivery failed; retrying");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

pub async fn list(db: &Db, to: Option<&str>, limit: i64) -> CoreResult<Vec<OutboxMessage>> {
    let rows = sqlx::query(&format!(
        "SELECT id, kind, to_addr, subject, body_text, status, attempts, last_error, created_at FROM mail_outbox WHERE ($1 = '' OR to_addr = $1) ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 200)
    ))
    .bind(to.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxMessage {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                to: r.try_get(2)?,
                subject: r.try_get(3)?,
                body_text: r.try_get(4)?,
                status: r.try_get(5)?,
                attempts: r.try_get(6)?,
                last_error: r.try_get(7)?,
                created_at: Timestamp(r.try_get(8)?).rfc3339(),
            })
        })
        .collect()
}
