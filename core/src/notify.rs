//! Notifications: what the bell shows, and the mails that go with it.
//!
//! A module sends a notification in one call, inside its own write
//! transaction: [`send`] with the recipients and a [`Notice`]. For each
//! recipient the kind's defaults (declared by the module, see
//! [`crate::module::NotificationKind`]) or the person's own preferences
//! decide whether it shows under the bell, is mailed at once (through the
//! outbox, in the recipient's language) or waits for the daily digest
//! ([`DIGEST`] job). The actor is never notified of their own action.

use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult};
use crate::identity::Account;
use crate::ids::{AccountId, OrgId, Timestamp};
use crate::jobs::{JobCtx, JobFuture, JobSpec};
use crate::module::{MailMode, NotificationKind};
use crate::web::AppState;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What happened, as the recipients will read it: "<actor> <verb> <title>".
#[derive(Clone, Debug)]
pub struct Notice {
    pub kind: &'static str,
    pub org: Option<OrgId>,
    /// Who did it (left out of the recipients).
    pub actor: Option<AccountId>,
    pub actor_label: String,
    /// The record's title.
    pub title: String,
    /// A short excerpt: the comment, the note of a status change.
    pub excerpt: String,
    /// A status change, as translation keys of the states (`from`, `to`):
    /// shown in each recipient's language before the excerpt.
    pub status: Option<(Option<String>, String)>,
    /// The page to open, from the site root.
    pub link: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub org_id: Option<String>,
    /// The sentence, in the recipient's language at the time it was sent.
    pub title: String,
    pub body: String,
    pub link: String,
    pub actor_label: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub read: bool,
}

/// One kind's setting for one person.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preference {
    pub kind: String,
    /// The kind's name in the person's language (ignored when saving).
    #[serde(default)]
    pub label: String,
    pub in_app: bool,
    pub mail: MailMode,
}

/// Notifies `recipients` (duplicates and the actor are left out); returns
/// how many notifications were stored.
pub async fn send(st: &AppState, tx: &mut Tx, recipients: &[AccountId], n: &Notice) -> CoreResult<usize> {
    let kind = st
        .modules
        .notification_kind(n.kind)
        .ok_or_else(|| CoreError::Internal(format!("notification kind `{}` is not declared by any module", n.kind)))?;
    let mut done: Vec<AccountId> = Vec::new();
    let now = Timestamp::now().0;
    for &to in recipients {
        if Some(to) == n.actor || done.contains(&to) {
            continue;
        }
        done.push(to);
        let (in_app, mail) = preference(tx, to, &kind).await?;
        if !in_app && mail == MailMode::Off {
            continue;
        }
        let Some(Account { email, lang, disabled, .. }) = account(tx, to).await? else { continue };
        if disabled {
            continue;
        }
        let lang = crate::outbox::language_for(&st.db, lang.as_deref()).await?;
        let title = sentence(st, &lang, &kind, n);
        let text = excerpt(&body_in(st, &lang, n));
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO notifications (id, account_id, org_id, kind, title, body, link, actor_label, in_app, mail, created_at, mailed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&id)
            .bind(to.to_string())
            .bind(n.org.map(|o| o.to_string()))
            .bind(n.kind)
            .bind(&title)
            .bind(&text)
            .bind(&n.link)
            .bind(&n.actor_label)
            .bind(in_app as i64)
            .bind(mail.as_str())
            .bind(now)
            .bind((mail == MailMode::Immediate).then_some(now))
            .execute(tx.conn())
            .await?;
        if mail == MailMode::Immediate {
            let link = format!("{}{}", st.base_url(), n.link);
            let m = crate::web::api::compose(
                st,
                "notification",
                &lang,
                serde_json::json!({"title": title, "excerpt": text, "link": link}),
            )
            .await?;
            crate::outbox::enqueue(tx, n.org, "notification", &email, &m).await?;
        }
    }
    Ok(done.len())
}

fn sentence(st: &AppState, lang: &str, kind: &NotificationKind, n: &Notice) -> String {
    format!("{} {} {}", n.actor_label, st.templates.tr(lang, kind.verb_key), n.title).trim().to_string()
}

/// The notice's excerpt in `lang`, after its status change if it has one.
fn body_in(st: &AppState, lang: &str, n: &Notice) -> String {
    let Some((from, to)) = &n.status else { return n.excerpt.clone() };
    let tr = |k: &str| st.templates.tr(lang, k);
    let change = match from {
        Some(f) => format!("{} → {}", tr(f), tr(to)),
        None => tr(to),
    };
    if n.excerpt.trim().is_empty() {
        change
    } else {
        format!("{change} — {}", n.excerpt.trim())
    }
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= 280 {
        return s.to_string();
    }
    let mut e: String = s.chars().take(279).collect();
    e.push('…');
    e
}

async fn preference(tx: &mut Tx, account: AccountId, kind: &NotificationKind) -> CoreResult<(bool, MailMode)> {
    let r = sqlx::query("SELECT in_app, mail FROM notification_prefs WHERE account_id = $1 AND kind = $2")
        .bind(account.to_string())
        .bind(kind.id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(match r {
        Some(r) => (r.try_get::<i64, _>(0)? != 0, MailMode::parse(&r.try_get::<String, _>(1)?).unwrap_or(kind.mail)),
        None => (kind.in_app, kind.mail),
    })
}

fn from_row(r: &sqlx::any::AnyRow) -> CoreResult<Notification> {
    Ok(Notification {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        org_id: r.try_get(2)?,
        title: r.try_get(3)?,
        body: r.try_get(4)?,
        link: r.try_get(5)?,
        actor_label: r.try_get(6)?,
        created_at: Timestamp(r.try_get(7)?).rfc3339(),
        read: r.try_get::<Option<i64>, _>(8)?.is_some(),
    })
}

/// The bell's list: newest first, `before` a notification id for the next page.
pub async fn list(
    db: &Db,
    account: AccountId,
    unread_only: bool,
    before: Option<&str>,
    limit: i64,
) -> CoreResult<Vec<Notification>> {
    let rows = sqlx::query(&format!(
        "SELECT id, kind, org_id, title, body, link, actor_label, created_at, read_at FROM notifications \
         WHERE account_id = $1 AND in_app = 1 AND ($2 = 0 OR read_at IS NULL) AND ($3 = '' OR id < $3) \
         ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 100)
    ))
    .bind(account.to_string())
    .bind(unread_only as i64)
    .bind(before.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// One notification of this account.
pub async fn get(db: &Db, account: AccountId, id: &str) -> CoreResult<Notification> {
    let r = sqlx::query(
        "SELECT id, kind, org_id, title, body, link, actor_label, created_at, read_at FROM notifications WHERE account_id = $1 AND id = $2",
    )
    .bind(account.to_string())
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .ok_or(CoreError::NotFound)?;
    from_row(&r)
}

pub async fn unread_count(db: &Db, account: AccountId) -> CoreResult<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM notifications WHERE account_id = $1 AND in_app = 1 AND read_at IS NULL")
        .bind(account.to_string())
        .fetch_one(db.pool())
        .await?
        .try_get(0)?)
}

/// Marks one notification (or, with `None`, all of them) read; a
/// notification of someone else is "not found".
pub async fn mark_read(db: &Db, account: AccountId, id: Option<&str>) -> CoreResult<u64> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE notifications SET read_at = $1 WHERE account_id = $2 AND read_at IS NULL AND ($3 = '' OR id = $3)",
    )
    .bind(Timestamp::now().0)
    .bind(account.to_string())
    .bind(id.unwrap_or(""))
    .execute(tx.conn())
    .await?
    .rows_affected();
    if let Some(id) = id {
        if done == 0 {
            let exists = sqlx::query("SELECT 1 FROM notifications WHERE account_id = $1 AND id = $2")
                .bind(account.to_string())
                .bind(id)
                .fetch_optional(tx.conn())
                .await?;
            if exists.is_none() {
                return Err(CoreError::NotFound);
            }
        }
    }
    tx.commit().await?;
    Ok(done)
}

/// Every kind of notification with this person's setting, labelled in `lang`.
pub async fn preferences(st: &AppState, account: AccountId, lang: &str) -> CoreResult<Vec<Preference>> {
    let rows = sqlx::query("SELECT kind, in_app, mail FROM notification_prefs WHERE account_id = $1")
        .bind(account.to_string())
        .fetch_all(st.db.pool())
        .await?;
    let mut out = Vec::new();
    for k in st.modules.notification_kinds() {
        let own = rows.iter().find(|r| r.try_get::<String, _>(0).ok().as_deref() == Some(k.id));
        let (in_app, mail) = match own {
            Some(r) => (r.try_get::<i64, _>(1)? != 0, MailMode::parse(&r.try_get::<String, _>(2)?).unwrap_or(k.mail)),
            None => (k.in_app, k.mail),
        };
        out.push(Preference { kind: k.id.to_string(), label: st.templates.tr(lang, k.label_key), in_app, mail });
    }
    Ok(out)
}

/// Saves a person's settings (kinds left out keep theirs); audited.
pub async fn save_preferences(
    st: &AppState,
    who: &crate::audit::Who,
    account: AccountId,
    prefs: &[Preference],
) -> CoreResult<()> {
    let mut errors = Vec::new();
    for (i, p) in prefs.iter().enumerate() {
        if st.modules.notification_kind(&p.kind).is_none() {
            errors.push(crate::error::FieldError::new(&format!("preferences[{i}].kind"), "Unknown notification kind."));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = st.db.begin().await?;
    for p in prefs {
        sqlx::query("DELETE FROM notification_prefs WHERE account_id = $1 AND kind = $2")
            .bind(account.to_string())
            .bind(&p.kind)
            .execute(tx.conn())
            .await?;
        sqlx::query("INSERT INTO notification_prefs (account_id, kind, in_app, mail) VALUES ($1, $2, $3, $4)")
            .bind(account.to_string())
            .bind(&p.kind)
            .bind(p.in_app as i64)
            .bind(p.mail.as_str())
            .execute(tx.conn())
            .await?;
    }
    let after: Vec<_> =
        prefs.iter().map(|p| serde_json::json!({"kind": p.kind, "in_app": p.in_app, "mail": p.mail})).collect();
    crate::audit::record(
        &mut tx,
        who,
        crate::audit::Change {
            org: None,
            action: "account.notification_preferences",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: Some(serde_json::json!(after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Mails every person their waiting digest notifications, one mail each.
pub const DIGEST: JobSpec =
    JobSpec { name: "core.notify.digest", max_attempts: 5, backoff_secs: 300, timeout_secs: 600, run: run_digest };

fn run_digest(st: AppState, _ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let n = send_digests(&st).await?;
        if n > 0 {
            tracing::info!(mails = n, "notification digests sent");
        }
        Ok(())
    })
}

/// A recipient's account, `None` if it no longer exists.
async fn account(tx: &mut Tx, id: AccountId) -> CoreResult<Option<Account>> {
    match crate::identity::get_account_tx(tx, id).await {
        Ok(a) => Ok(Some(a)),
        Err(CoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends the digests now; returns how many mails were queued.
pub async fn send_digests(st: &AppState) -> CoreResult<usize> {
    let accounts: Vec<String> =
        sqlx::query("SELECT DISTINCT account_id FROM notifications WHERE mail = 'digest' AND mailed_at IS NULL")
            .fetch_all(st.db.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    let mut sent = 0;
    for account_id in accounts {
        let mut tx = st.db.begin().await?;
        let rows = sqlx::query(
            "SELECT id, title, body, link FROM notifications WHERE account_id = $1 AND mail = 'digest' AND mailed_at IS NULL ORDER BY id LIMIT 200",
        )
        .bind(&account_id)
        .fetch_all(tx.conn())
        .await?;
        let Some(Account { email, lang, disabled, .. }) = account(&mut tx, crate::ids::parse_id(&account_id)?).await?
        else {
            continue;
        };
        let base = st.base_url();
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| -> CoreResult<serde_json::Value> {
                Ok(serde_json::json!({
                    "title": r.try_get::<String, _>(1)?,
                    "excerpt": r.try_get::<String, _>(2)?,
                    "link": format!("{base}{}", r.try_get::<String, _>(3)?),
                }))
            })
            .collect::<CoreResult<_>>()?;
        if !disabled && !items.is_empty() {
            let lang = crate::outbox::language_for(&st.db, lang.as_deref()).await?;
            let m = crate::web::api::compose(
                st,
                "digest",
                &lang,
                serde_json::json!({"items": items, "link": format!("{base}/notifications")}),
            )
            .await?;
            crate::outbox::enqueue(&mut tx, None, "digest", &email, &m).await?;
            sent += 1;
        }
        let now = Timestamp::now().0;
        for r in &rows {
            sqlx::query("UPDATE notifications SET mailed_at = $1 WHERE id = $2")
                .bind(now)
                .bind(r.try_get::<String, _>(0)?)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
    }
    Ok(sent)
}
