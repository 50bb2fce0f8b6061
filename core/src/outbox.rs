//! The mail outbox: every outgoing message is stored first, in the caller's
//! transaction, with a job (`core.mail.deliver`) that sends it by SMTP, or
//! logs it when no SMTP server is configured, so sign-up and password reset
//! work on a laptop too. Failures are retried and visible.

use crate::db::{Db, Tx};
use crate::error::CoreResult;
use crate::ids::{OrgId, Timestamp};
use crate::jobs::{JobCtx, JobFuture, JobSpec};
use crate::web::AppState;
use serde::Serialize;
use sqlx::Row;

/// A composed message (see `Templates::render_mail`).
#[derive(Clone, Debug)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The language to write to someone in: theirs, else the instance's.
pub async fn language_for(db: &Db, account_lang: Option<&str>) -> CoreResult<String> {
    match account_lang {
        Some(l) if crate::web::templates::LANGS.contains(&l) => Ok(l.to_string()),
        _ => Ok(crate::instance::load(db).await?.default_lang),
    }
}

/// Stores a message in the caller's transaction, with the job that delivers
/// it: both exist if and only if the change that sent the message commits.
pub async fn enqueue(tx: &mut Tx, org: Option<OrgId>, kind: &str, to: &str, mail: &Mail) -> CoreResult<()> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO mail_outbox (id, org_id, kind, to_addr, subject, body_text, body_html, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8)")
        .bind(&id)
        .bind(org.map(|o| o.to_string()))
        .bind(kind)
        .bind(to)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    crate::jobs::enqueue(tx, &MAIL_DELIVER, org, serde_json::json!({"message": id}), Some(&format!("mail:{id}")), 0)
        .await?;
    Ok(())
}

/// Delivers one stored message: by SMTP when `[smtp]` is configured, else
/// into the log (status `logged`), which is what a laptop or a test
/// instance wants. Failures are retried by the job runner with backoff; the
/// message shows its attempts and last error, and `failed` after the last.
pub const MAIL_DELIVER: JobSpec =
    JobSpec { name: "core.mail.deliver", max_attempts: 8, backoff_secs: 30, timeout_secs: 90, run: deliver };

fn deliver(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let id = ctx.payload["message"].as_str().unwrap_or_default().to_string();
        let Some(r) =
            sqlx::query("SELECT to_addr, subject, body_text, status, kind, body_html FROM mail_outbox WHERE id = $1")
                .bind(&id)
                .fetch_optional(st.db.pool())
                .await?
        else {
            return Ok(());
        };
        let (to, subject, body, status, kind): (String, String, String, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        let html: Option<String> = r.try_get(5)?;
        if status == "sent" || status == "logged" {
            return Ok(()); // already delivered: a job may run twice
        }
        let now = Timestamp::now().0;
        let Some(smtp) = &st.cfg.smtp else {
            tracing::info!(kind, to, subject, "no SMTP configured; message kept in the outbox and shown here:\n{body}");
            sqlx::query(
                "UPDATE mail_outbox SET status = 'logged', attempts = attempts + 1, sent_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(&id)
            .execute(st.db.pool())
            .await?;
            return Ok(());
        };
        let domain = smtp.from.rsplit('@').next().unwrap_or("localhost").to_string();
        match crate::smtp::send(smtp, &to, &subject, &body, html.as_deref(), &format!("{id}@{domain}")).await {
            Ok(()) => {
                sqlx::query("UPDATE mail_outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, sent_at = $1 WHERE id = $2").bind(now).bind(&id).execute(st.db.pool()).await?;
                Ok(())
            }
            Err(e) => {
                let last = ctx.attempt >= MAIL_DELIVER.max_attempts;
                sqlx::query(
                    "UPDATE mail_outbox SET status = $1, attempts = attempts + 1, last_error = $2 WHERE id = $3",
                )
                .bind(if last { "failed" } else { "queued" })
                .bind(format!("{e:#}"))
                .bind(&id)
                .execute(st.db.pool())
                .await?;
                Err(e)
            }
        }
    })
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
