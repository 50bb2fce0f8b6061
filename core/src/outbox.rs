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

pub async fn enqueue(
    tx: &mut Tx,
    cfg: &Config,
    org: Option<OrgId>,
    kind: &str,
    to: &str,
    subject: &str,
    body_text: &str,
) -> CoreResult<()> {
    let status = if cfg.smtp.is_some() { "queued" } else { "logged" };
    sqlx::query("INSERT INTO mail_outbox (id, org_id, kind, to_addr, subject, body_text, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org.map(|o| o.to_string()))
        .bind(kind)
        .bind(to)
        .bind(subject)
        .bind(body_text)
        .bind(status)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    if cfg.smtp.is_none() {
        tracing::info!(kind, to, subject, "no SMTP configured; mail kept in the outbox and shown here:\n{body_text}");
    }
    Ok(())
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
