//! The timeline of a record: comments, status changes and events, on any
//! record of any module, with one table, one API shape and one template
//! partial (`timeline_partial.html`).
//!
//! A module declares which of its records carry a timeline
//! ([`crate::module::RecordKind`]) and, in its own write transactions, adds
//! entries in one call: [`status_change`] when a record changes state,
//! [`event`] for anything else worth showing. People comment through the
//! core's routes; `@mentions` of members notify them, and everyone following
//! the record (authors of comments, people mentioned, people who chose to
//! follow) hears of new comments and status changes.

use crate::audit::{self, Change, Who};
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{AccountId, OrgId, Timestamp};
use crate::module::RecordRef;
use crate::notify::{self, Notice};
use crate::permissions::{Access, CanRead};
use crate::web::{AppState, OrgCtx};
use serde::Serialize;
use sqlx::Row;

pub const MAX_COMMENT_CHARS: usize = 10_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    /// `comment`, `status` or `event`.
    pub kind: String,
    pub author_id: Option<String>,
    pub author_label: String,
    /// The comment as written (Markdown); for an event, its text.
    pub body: String,
    /// The comment rendered to safe HTML.
    pub body_html: String,
    /// For a status change: translation keys (or plain text) of the states.
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
}

const COLS: &str = "id, entity_type, entity_id, kind, author_id, author_label, body, body_html, status_from, status_to, data, created_at, edited_at, deleted_at";

fn from_row(r: &sqlx::any::AnyRow) -> CoreResult<Entry> {
    let deleted = r.try_get::<Option<i64>, _>(13)?.is_some();
    Ok(Entry {
        id: r.try_get(0)?,
        entity_type: r.try_get(1)?,
        entity_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        author_id: r.try_get(4)?,
        author_label: r.try_get(5)?,
        body: if deleted { String::new() } else { r.try_get(6)? },
        body_html: if deleted { String::new() } else { r.try_get(7)? },
        status_from: r.try_get(8)?,
        status_to: r.try_get(9)?,
        data: serde_json::from_str(&r.try_get::<String, _>(10)?).unwrap_or(serde_json::Value::Null),
        created_at: Timestamp(r.try_get(11)?).rfc3339(),
        edited_at: r.try_get::<Option<i64>, _>(12)?.map(|t| Timestamp(t).rfc3339()),
        deleted,
    })
}

struct NewEntry<'a> {
    kind: &'a str,
    body: &'a str,
    body_html: &'a str,
    status_from: Option<&'a str>,
    status_to: Option<&'a str>,
    data: serde_json::Value,
}

async fn insert(tx: &mut Tx, who: &Who, org: OrgId, record: &RecordRef, e: NewEntry<'_>) -> CoreResult<Entry> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(&format!("INSERT INTO timeline_entries ({COLS}, org_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, $13)"))
        .bind(&id)
        .bind(&record.entity_type)
        .bind(&record.entity_id)
        .bind(e.kind)
        .bind(who.account.map(|a| a.to_string()))
        .bind(&who.label)
        .bind(e.body)
        .bind(e.body_html)
        .bind(e.status_from)
        .bind(e.status_to)
        .bind(e.data.to_string())
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .execute(tx.conn())
        .await?;
    get_in(tx, org, &id).await
}

async fn get_in(tx: &mut Tx, org: OrgId, id: &str) -> CoreResult<Entry> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM timeline_entries WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    from_row(&r)
}

/// Records a status change of a record, in the module's write transaction,
/// and tells the record's followers. `from` and `to` are translation keys of
/// the states (`clubs.status.done`) or plain text.
pub async fn status_change(
    st: &AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    record: &RecordRef,
    from: Option<&str>,
    to: &str,
    note: &str,
) -> CoreResult<Entry> {
    let html = crate::markdown::render(note, &[]);
    let e = insert(
        tx,
        who,
        org,
        record,
        NewEntry {
            kind: "status",
            body: note,
            body_html: &html,
            status_from: from,
            status_to: Some(to),
            data: serde_json::json!({}),
        },
    )
    .await?;
    let followers = followers(tx, org, record).await?;
    notify::send(
        st,
        tx,
        &followers,
        &Notice {
            kind: "timeline.status",
            org: Some(org),
            actor: who.account,
            actor_label: who.label.clone(),
            title: record.title.clone(),
            excerpt: note.to_string(),
            status: Some((from.map(str::to_string), to.to_string())),
            link: record.path.clone(),
        },
    )
    .await?;
    Ok(e)
}

/// Records something that happened to a record (a file attached, a mail
/// sent), in the module's write transaction. Followers are not notified.
pub async fn event(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    record: &RecordRef,
    text: &str,
    data: serde_json::Value,
) -> CoreResult<Entry> {
    let html = crate::markdown::render(text, &[]);
    insert(
        tx,
        who,
        org,
        record,
        NewEntry { kind: "event", body: text, body_html: &html, status_from: None, status_to: None, data },
    )
    .await
}

/// Several events (each on its record, with its text and data) in the
/// caller's transaction, by multi-row inserts; what [`event`] writes for
/// each, without reading the entries back (a batch of thousands of records,
/// such as the invoices of the renewal run).
pub async fn events_many(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    events: &[(RecordRef, String, serde_json::Value)],
) -> CoreResult<()> {
    let now = Timestamp::now().0;
    let author = who.account.map(|a| a.to_string());
    for chunk in events.chunks(tx.backend().rows_per_statement(6)) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 5 + i * 6;
                format!(
                    "(${b}, ${}, ${}, 'event', $1, $2, ${}, ${}, NULL, NULL, ${}, $3, NULL, NULL, $4)",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let sql = format!("INSERT INTO timeline_entries ({COLS}, org_id) VALUES {}", rows.join(", "));
        let mut q = sqlx::query(&sql).bind(author.clone()).bind(&who.label).bind(now).bind(org.to_string());
        for (record, text, data) in chunk {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&record.entity_type)
                .bind(&record.entity_id)
                .bind(text.as_str())
                .bind(crate::markdown::render(text, &[]))
                .bind(data.to_string());
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

/// Removes the timeline and followers of a deleted record, in the module's
/// delete transaction (the audit log keeps what was said).
pub async fn forget(tx: &mut Tx, org: OrgId, entity_type: &str, entity_id: &str) -> CoreResult<()> {
    for table in ["timeline_entries", "timeline_followers"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3"))
            .bind(org.to_string())
            .bind(entity_type)
            .bind(entity_id)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// The record an organisation route names, if the caller may see it, with
/// the module whose permissions apply. Unknown kinds and invisible records
/// are "not found".
pub async fn resolve(st: &AppState, ctx: &OrgCtx, entity_type: &str, id: &str) -> CoreResult<(RecordRef, CanRead)> {
    let kind = st.modules.record_kind(entity_type).ok_or(CoreError::NotFound)?;
    if !crate::instance::module_enabled(&st.db, &st.modules, kind.module, Some(ctx.org.id)).await? {
        return Err(CoreError::NotFound);
    }
    // No read access to the module: the record does not exist for this caller.
    let cap = ctx.can_read(kind.module).map_err(|_| CoreError::NotFound)?;
    let record = (kind.find)(st.clone(), ctx.clone(), id.to_string()).await?.ok_or(CoreError::NotFound)?;
    Ok((record, cap))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelinePage {
    pub items: Vec<Entry>,
    /// Pass as `cursor` for older entries.
    pub next_cursor: Option<String>,
    /// Whether the caller follows the record.
    pub following: bool,
}

/// The entries of a record, newest first.
pub async fn list(
    db: &Db,
    cap: &CanRead,
    record: &RecordRef,
    cursor: Option<&str>,
    limit: i64,
) -> CoreResult<TimelinePage> {
    let limit = limit.clamp(1, 200);
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM timeline_entries WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT {}",
        limit + 1
    ))
    .bind(cap.org().to_string())
    .bind(&record.entity_type)
    .bind(&record.entity_id)
    .bind(cursor.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let mut items = rows.iter().map(from_row).collect::<CoreResult<Vec<_>>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.clone())
    } else {
        None
    };
    let following = sqlx::query(
        "SELECT 1 FROM timeline_followers WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 AND account_id = $4",
    )
    .bind(cap.org().to_string())
    .bind(&record.entity_type)
    .bind(&record.entity_id)
    .bind(cap.actor().to_string())
    .fetch_optional(db.pool())
    .await?
    .is_some();
    Ok(TimelinePage { items, next_cursor, following })
}

fn check_body(body: &str) -> CoreResult<&str> {
    let body = body.trim();
    if body.is_empty() {
        return Err(CoreError::Validation(vec![FieldError::new("body", "Write something first.")]));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(CoreError::Validation(vec![FieldError::new("body", "Keep a comment under 10,000 characters.")]));
    }
    Ok(body)
}

/// A comment's safe HTML, with the members it mentions highlighted, and those members.
async fn render_comment(
    st: &AppState,
    tx: &mut Tx,
    org: OrgId,
    module: &str,
    body: &str,
) -> CoreResult<(String, Vec<(AccountId, String)>)> {
    let handles = crate::markdown::mentioned_handles(body);
    let mentioned = mentioned_members(st, tx, org, module, &handles).await?;
    let names: Vec<String> = mentioned.iter().map(|(_, h)| h.clone()).collect();
    Ok((crate::markdown::render(body, &names), mentioned))
}

/// Members of the organisation named by `@handles` who may read the module.
async fn mentioned_members(
    st: &AppState,
    tx: &mut Tx,
    org: OrgId,
    module: &str,
    handles: &[String],
) -> CoreResult<Vec<(AccountId, String)>> {
    let mut found = Vec::new();
    for h in handles.iter().take(20) {
        let rows = sqlx::query(
            "SELECT a.id, a.email FROM memberships m JOIN accounts a ON a.id = m.account_id \
             WHERE m.org_id = $1 AND a.disabled_at IS NULL AND (lower(a.email) = $2 OR substr(lower(a.email), 1, length($2) + 1) = $2 || '@')",
        )
        .bind(org.to_string())
        .bind(h)
        .fetch_all(tx.conn())
        .await?;
        // A handle that names several people (the same local part at two
        // domains) names nobody: write the whole address.
        if rows.len() != 1 {
            continue;
        }
        let id: AccountId = crate::ids::parse_id(&rows[0].try_get::<String, _>(0)?)?;
        if may_read(st, org, id, module).await? && !found.iter().any(|(a, _)| *a == id) {
            found.push((id, h.clone()));
        }
    }
    Ok(found)
}

/// Whether an account's role in the organisation gives it read access to a
/// module (the same rule as for the account's own requests).
async fn may_read(st: &AppState, org: OrgId, account: AccountId, module: &str) -> CoreResult<bool> {
    let a = crate::identity::get_account(&st.db, account).await?;
    let role = crate::orgs::membership_role(&st.db, org, account).await?;
    Ok(st
        .modules
        .effective_permissions(role.as_ref(), a.is_instance_admin)
        .is_some_and(|p| p.get(module) >= Access::Read))
}

async fn followers(tx: &mut Tx, org: OrgId, record: &RecordRef) -> CoreResult<Vec<AccountId>> {
    let rows = sqlx::query(
        "SELECT account_id FROM timeline_followers WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 ORDER BY created_at",
    )
    .bind(org.to_string())
    .bind(&record.entity_type)
    .bind(&record.entity_id)
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(|r| crate::ids::parse_id(&r.try_get::<String, _>(0)?)).collect()
}

async fn add_follower(tx: &mut Tx, org: OrgId, record: &RecordRef, account: AccountId) -> CoreResult<()> {
    let exists = sqlx::query(
        "SELECT 1 FROM timeline_followers WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 AND account_id = $4",
    )
    .bind(org.to_string())
    .bind(&record.entity_type)
    .bind(&record.entity_id)
    .bind(account.to_string())
    .fetch_optional(tx.conn())
    .await?;
    if exists.is_none() {
        sqlx::query("INSERT INTO timeline_followers (org_id, entity_type, entity_id, account_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(org.to_string())
            .bind(&record.entity_type)
            .bind(&record.entity_id)
            .bind(account.to_string())
            .bind(Timestamp::now().0)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Follows or stops following a record.
pub async fn set_following(db: &Db, cap: &CanRead, record: &RecordRef, follow: bool) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    if follow {
        add_follower(&mut tx, cap.org(), record, cap.actor()).await?;
    } else {
        sqlx::query("DELETE FROM timeline_followers WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 AND account_id = $4")
            .bind(cap.org().to_string())
            .bind(&record.entity_type)
            .bind(&record.entity_id)
            .bind(cap.actor().to_string())
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A comment by the caller on a record they can read: stored with its safe
/// HTML, audited; the author follows the record from now on; members
/// mentioned are notified (and follow), other followers hear of it.
pub async fn comment(st: &AppState, who: &Who, cap: &CanRead, record: &RecordRef, body: &str) -> CoreResult<Entry> {
    let body = check_body(body)?;
    let org = cap.org();
    let mut tx = st.db.begin().await?;
    let (html, mentioned) = render_comment(st, &mut tx, org, cap.module(), body).await?;
    let e = insert(
        &mut tx,
        who,
        org,
        record,
        NewEntry {
            kind: "comment",
            body,
            body_html: &html,
            status_from: None,
            status_to: None,
            data: serde_json::json!({"mentions": mentioned.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>()}),
        },
    )
    .await?;
    let others = followers(&mut tx, org, record).await?;
    add_follower(&mut tx, org, record, cap.actor()).await?;
    let ids: Vec<AccountId> = mentioned.iter().map(|(a, _)| *a).collect();
    for a in &ids {
        add_follower(&mut tx, org, record, *a).await?;
    }
    let base = Notice {
        kind: "timeline.mention",
        org: Some(org),
        actor: who.account,
        actor_label: who.label.clone(),
        title: record.title.clone(),
        excerpt: body.to_string(),
        status: None,
        link: format!("{}#entry-{}", record.path, e.id),
    };
    notify::send(st, &mut tx, &ids, &base).await?;
    let rest: Vec<AccountId> = others.into_iter().filter(|a| !ids.contains(a)).collect();
    notify::send(st, &mut tx, &rest, &Notice { kind: "timeline.comment", ..base }).await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "timeline.comment",
            entity_type: &record.entity_type,
            entity_id: record.entity_id.clone(),
            before: None,
            after: Some(serde_json::json!({"entry": e.id, "body": body})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(e)
}

/// Edits a comment: only its author may.
pub async fn edit_comment(
    st: &AppState,
    who: &Who,
    cap: &CanRead,
    record: &RecordRef,
    id: &str,
    body: &str,
) -> CoreResult<Entry> {
    let body = check_body(body)?;
    let org = cap.org();
    let mut tx = st.db.begin().await?;
    let old = comment_of(&mut tx, org, record, id).await?;
    if old.author_id.as_deref() != Some(cap.actor().to_string().as_str()) {
        return Err(CoreError::Forbidden("Only its author can edit a comment.".into()));
    }
    let (html, _) = render_comment(st, &mut tx, org, cap.module(), body).await?;
    sqlx::query("UPDATE timeline_entries SET body = $1, body_html = $2, edited_at = $3 WHERE org_id = $4 AND id = $5")
        .bind(body)
        .bind(&html)
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "timeline.comment_edit",
            entity_type: &record.entity_type,
            entity_id: record.entity_id.clone(),
            before: Some(serde_json::json!({"entry": id, "body": old.body})),
            after: Some(serde_json::json!({"entry": id, "body": body})),
        },
    )
    .await?;
    let e = get_in(&mut tx, org, id).await?;
    tx.commit().await?;
    Ok(e)
}

/// Deletes a comment (its author, or an administrator of the module): the
/// entry stays in the timeline as "deleted"; the text stays in the audit log.
pub async fn delete_comment(
    db: &Db,
    who: &Who,
    cap: &CanRead,
    module_admin: bool,
    record: &RecordRef,
    id: &str,
) -> CoreResult<()> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let old = comment_of(&mut tx, org, record, id).await?;
    if old.author_id.as_deref() != Some(cap.actor().to_string().as_str()) && !module_admin {
        return Err(CoreError::Forbidden("Only its author or an administrator can delete a comment.".into()));
    }
    sqlx::query("UPDATE timeline_entries SET deleted_at = $1 WHERE org_id = $2 AND id = $3")
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "timeline.comment_delete",
            entity_type: &record.entity_type,
            entity_id: record.entity_id.clone(),
            before: Some(serde_json::json!({"entry": id, "body": old.body})),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn comment_of(tx: &mut Tx, org: OrgId, record: &RecordRef, id: &str) -> CoreResult<Entry> {
    let e = get_in(tx, org, id).await?;
    if e.kind != "comment" || e.deleted || e.entity_type != record.entity_type || e.entity_id != record.entity_id {
        return Err(CoreError::NotFound);
    }
    Ok(e)
}
