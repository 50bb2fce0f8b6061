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
    enqueue_with_headers(tx, org, kind, to, mail, &[]).await
}

/// The extra headers a message may carry: those of mailing lists (RFC 2369
/// and the one-click unsubscribe of RFC 8058). Everything else about a
/// message's headers is the SMTP sender's.
pub const EXTRA_HEADERS: &[&str] = &["List-Unsubscribe", "List-Unsubscribe-Post"];

/// Checks extra headers: allowed names (written as in [`EXTRA_HEADERS`]),
/// values on one line (no CR or LF: no header injection), at most 900
/// characters so the line stays within SMTP's limit.
pub fn check_headers(headers: &[(&str, String)]) -> CoreResult<Vec<(String, String)>> {
    headers
        .iter()
        .map(|(name, value)| {
            let Some(name) = EXTRA_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(name.trim())) else {
                return Err(crate::error::CoreError::validation(
                    "headers",
                    &format!("The header `{name}` cannot be set; only {} can.", EXTRA_HEADERS.join(" and ")),
                ));
            };
            if value.contains(['\r', '\n']) || value.trim().is_empty() || value.len() > 900 || !value.is_ascii() {
                return Err(crate::error::CoreError::validation(
                    "headers",
                    &format!("The value of `{name}` must be one line of at most 900 ASCII characters."),
                ));
            }
            Ok((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// [`enqueue`] with extra headers (see [`EXTRA_HEADERS`]); a header that is
/// not allowed or a value holding a line break is refused (422).
pub async fn enqueue_with_headers(
    tx: &mut Tx,
    org: Option<OrgId>,
    kind: &str,
    to: &str,
    mail: &Mail,
    headers: &[(&str, String)],
) -> CoreResult<()> {
    let headers = check_headers(headers)?;
    let stored = (!headers.is_empty()).then(|| serde_json::to_string(&headers).unwrap_or_default());
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO mail_outbox (id, org_id, kind, to_addr, subject, body_text, body_html, status, created_at, headers) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)")
        .bind(&id)
        .bind(org.map(|o| o.to_string()))
        .bind(kind)
        .bind(to)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(Timestamp::now().0)
        .bind(stored)
        .execute(tx.conn())
        .await?;
    crate::jobs::enqueue(tx, &MAIL_DELIVER, org, serde_json::json!({"message": id}), Some(&format!("mail:{id}")), 0)
        .await?;
    Ok(())
}

/// [`enqueue`] for many messages of one kind at once (multi-row inserts of
/// the messages and their delivery jobs, in the caller's transaction), for
/// bulk senders such as the members' renewal run. Each `(to, mail)` is one
/// message, stored and delivered exactly as [`enqueue`] would.
pub async fn enqueue_many(tx: &mut Tx, org: Option<OrgId>, kind: &str, mails: &[(String, Mail)]) -> CoreResult<()> {
    let now = Timestamp::now().0;
    let mut jobs = Vec::with_capacity(mails.len());
    for chunk in mails.chunks(200) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 4 + i * 5;
                format!("(${b}, $1, $2, ${}, ${}, ${}, ${}, 'queued', $3, NULL)", b + 1, b + 2, b + 3, b + 4)
            })
            .collect();
        let sql = format!(
            "INSERT INTO mail_outbox (id, org_id, kind, to_addr, subject, body_text, body_html, status, created_at, \
             headers) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.map(|o| o.to_string())).bind(kind).bind(now);
        for (to, mail) in chunk {
            let id = uuid::Uuid::now_v7().to_string();
            q = q.bind(id.clone()).bind(to.as_str()).bind(&mail.subject).bind(&mail.text).bind(&mail.html);
            jobs.push((serde_json::json!({"message": id}), Some(format!("mail:{id}"))));
        }
        q.execute(tx.conn()).await?;
    }
    crate::jobs::enqueue_many(tx, &MAIL_DELIVER, org, &jobs, 0).await
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
        let Some(r) = sqlx::query(
            "SELECT to_addr, subject, body_text, status, kind, body_html, headers FROM mail_outbox WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(st.db.pool())
        .await?
        else {
            return Ok(());
        };
        let (to, subject, body, status, kind): (String, String, String, String, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        let html: Option<String> = r.try_get(5)?;
        // Checked again when sent: what is stored is never trusted to be one line.
        let stored: Vec<(String, String)> =
            r.try_get::<Option<String>, _>(6)?.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default();
        let pairs: Vec<(&str, String)> = stored.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let headers = check_headers(&pairs)?;
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
        let message_id = format!("{id}@{domain}");
        match crate::smtp::send_with_headers(smtp, &to, &subject, &body, html.as_deref(), &message_id, &headers).await {
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

#[cfg(test)]
mod tests {
    use super::check_headers;

    #[test]
    fn only_list_headers_on_one_line_are_accepted() {
        let ok = check_headers(&[
            ("list-unsubscribe", "<https://example.org/u/1>".into()),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ])
        .unwrap();
        assert_eq!(ok[0].0, "List-Unsubscribe", "the name is written as the standard writes it");
        assert!(check_headers(&[("Bcc", "x@example.org".into())]).is_err());
        assert!(check_headers(&[("List-Unsubscribe", "<https://a>\r\nBcc: x@example.org".into())]).is_err());
        assert!(check_headers(&[("List-Unsubscribe", "<https://a>\nX: y".into())]).is_err());
        let m = crate::smtp::format_message_with_headers("a@b.org", "c@d.org", "s", "t", None, "x@y", &ok);
        assert!(m.contains("\r\nList-Unsubscribe: <https://example.org/u/1>\r\n"), "{m}");
        assert!(m.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{m}");
    }
}
