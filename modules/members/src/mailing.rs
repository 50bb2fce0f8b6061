//! What the board does with a selection of the directory: mass e-mail
//! through the core outbox (preview, confirmation with the count, a job that
//! sends with progress, an unsubscribe link per message), bounce tracking
//! (permanent SMTP failures of the outbox, delivery status notifications),
//! address labels and printable lists, spreadsheet exports.
//!
//! Opt-outs are per person and per list kind: a newsletter is skipped for
//! people who opted out of newsletters, a service mail (`service`) is not.
//! People with a permanent failure recorded are skipped by every mass mail.

use crate::directory::{self, DirFilter, DirRow};
use crate::error::{MemError, MemResult};
use crate::service::{new_id, record, text_field, MODULE};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::outbox::Mail;
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::web::{AppState, OrgCtx};
use shrooms_core::{CoreError, Db};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

pub const LIST_KINDS: &[&str] = &["newsletter", "service"];

// ---------- unsubscribe tokens ----------

fn mac(key: &[u8], org: OrgId, person: &str, kind: &str) -> String {
    let m = shrooms_core::crypto::hmac_sha256(key, format!("members.unsubscribe:{org}:{person}:{kind}").as_bytes());
    shrooms_core::crypto::hex(&m[..16])
}

/// The secret of a person's unsubscribe link: who, which list, and a
/// signature by the instance's key, so that nothing needs storing.
pub fn unsubscribe_token(key: &[u8], org: OrgId, person: &str, kind: &str) -> String {
    format!("{person}.{kind}.{}", mac(key, org, person, kind))
}

/// The person and list kind of a token, when its signature holds.
pub fn check_token(key: &[u8], org: OrgId, token: &str) -> Option<(String, String)> {
    let mut parts = token.splitn(3, '.');
    let (person, kind, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let good = mac(key, org, person, kind);
    (LIST_KINDS.contains(&kind) && shrooms_core::crypto::constant_time_eq(good.as_bytes(), sig.as_bytes()))
        .then(|| (person.to_string(), kind.to_string()))
}

/// Records that a person wants no more mail of this kind (idempotent);
/// `false` for a token that is no person of this organisation.
pub async fn unsubscribe(db: &Db, key: &[u8], org: OrgId, token: &str) -> MemResult<bool> {
    let Some((person, kind)) = check_token(key, org, token) else { return Ok(false) };
    let mut tx = db.begin().await?;
    let exists = sqlx::query("SELECT 1 FROM people WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(&person)
        .fetch_optional(tx.conn())
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let n = sqlx::query(
        "INSERT INTO mem_mail_optouts (org_id, person_id, list_kind, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, person_id, list_kind) DO NOTHING",
    )
    .bind(org.to_string())
    .bind(&person)
    .bind(&kind)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n > 0 {
        let who = Who { account: None, label: "unsubscribe link".into(), address: String::new() };
        record(&mut tx, &who, org, "members.mail.optout", "person", &person, None, Some(json!({"list": kind}))).await?;
    }
    tx.commit().await?;
    Ok(true)
}

// ---------- bounces ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Bounce {
    pub id: String,
    pub person_id: String,
    pub email: String,
    /// The enhanced status code (`5.1.1`) or SMTP reply code (`550`).
    pub status: String,
    /// `outbox` (a message of a mailing that failed for good) or `dsn` (a report sent in).
    pub source: String,
    pub created_at: String,
}

async fn insert_bounce(
    tx: &mut shrooms_core::db::Tx,
    org: OrgId,
    person: &str,
    email: &str,
    status: &str,
    source: &str,
    message: Option<&str>,
) -> MemResult<Option<String>> {
    let id = new_id();
    let n = sqlx::query(
        "INSERT INTO mem_bounces (id, org_id, person_id, email, status, source, message_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(person)
    .bind(email)
    .bind(status)
    .bind(source)
    .bind(message)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok((n > 0).then_some(id))
}

/// The SMTP reply code of a permanent failure in an error text (`550 5.1.1 …`).
pub fn permanent_code(error: &str) -> Option<String> {
    error
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|w| w.len() >= 3 && w.starts_with('5') && w.as_bytes()[1].is_ascii_digit())
        .map(|w| w.trim_end_matches('.').to_string())
}

/// Records as bounces the mailing messages the outbox gave up on with a
/// permanent (5xx) failure. Run before each mailing and when bounces are listed.
pub async fn sync_outbox_bounces(db: &Db, org: OrgId) -> MemResult<()> {
    let rows = sqlx::query(
        "SELECT o.id, o.to_addr, o.last_error FROM mail_outbox o WHERE o.org_id = $1 AND o.kind = 'members.mailing' \
         AND o.status IN ('failed', 'dead') AND NOT EXISTS (SELECT 1 FROM mem_bounces b WHERE b.org_id = $1 AND b.message_id = o.id)",
    )
    .bind(org.to_string())
    .fetch_all(db.pool())
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for r in &rows {
        let (id, to, err): (String, String, Option<String>) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let Some(code) = err.as_deref().and_then(permanent_code) else { continue };
        for person in people_with_email(&mut tx, org, &to).await? {
            insert_bounce(&mut tx, org, &person, &to, &code, "outbox", Some(&id)).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn people_with_email(tx: &mut shrooms_core::db::Tx, org: OrgId, email: &str) -> MemResult<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND LOWER(email) = $2")
        .bind(org.to_string())
        .bind(email.trim().to_lowercase())
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

pub async fn bounces(db: &Db, cap: &CanRead) -> MemResult<Vec<Bounce>> {
    sync_outbox_bounces(db, cap.org()).await?;
    let rows = sqlx::query(
        "SELECT id, person_id, email, status, source, created_at FROM mem_bounces WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 1000",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Bounce {
                id: r.try_get(0)?,
                person_id: r.try_get(1)?,
                email: r.try_get(2)?,
                status: r.try_get(3)?,
                source: r.try_get(4)?,
                created_at: Timestamp(r.try_get(5)?).rfc3339(),
            })
        })
        .collect()
}

/// A delivery status notification (RFC 3464) as received: the whole message
/// or its `message/delivery-status` part.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DsnInput {
    pub content: String,
}

/// The recipients and status codes of a report: each per-recipient block's
/// `Final-Recipient` (or `Original-Recipient`) with its `Status`.
pub fn parse_dsn(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut recipient: Option<String> = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" => {
                let addr = value.split_once(';').map(|(_, a)| a).unwrap_or(value).trim();
                let addr = addr.trim_matches(['<', '>']).to_lowercase();
                if addr.contains('@') && (name.trim().eq_ignore_ascii_case("final-recipient") || recipient.is_none()) {
                    recipient = Some(addr);
                }
            }
            "status" => {
                let code = value.split_whitespace().next().unwrap_or("");
                let parts: Vec<&str> = code.split('.').collect();
                let ok = parts.len() == 3
                    && ["2", "4", "5"].contains(&parts[0])
                    && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                if let (true, Some(r)) = (ok, recipient.take()) {
                    out.push((r, code.to_string()));
                }
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Records the permanent failures (`5.x.x`) of a report on the people of the
/// organisation with that address.
pub async fn record_dsn(db: &Db, who: &Who, cap: &CanWrite, input: &DsnInput) -> MemResult<Vec<Bounce>> {
    if input.content.len() > 1_000_000 {
        return Err(MemError::field("content", "The report is too large (at most 1 MB)."));
    }
    let Some(found) = parse_dsn(&input.content) else {
        return Err(MemError::field(
            "content",
            "This is not a delivery status notification: no Final-Recipient with a Status such as 5.1.1.",
        ));
    };
    let org = cap.org();
    let mut tx = db.begin().await?;
    let mut ids = Vec::new();
    for (email, status) in found.iter().filter(|(_, s)| s.starts_with("5.")) {
        for person in people_with_email(&mut tx, org, email).await? {
            if let Some(id) = insert_bounce(&mut tx, org, &person, email, status, "dsn", None).await? {
                record(
                    &mut tx,
                    who,
                    org,
                    "members.mail.bounce",
                    "person",
                    &person,
                    None,
                    Some(json!({"email": email, "status": status})),
                )
                .await?;
                ids.push(id);
            }
        }
    }
    tx.commit().await?;
    let all = bounces(db, &cap.as_read()).await?;
    Ok(all.into_iter().filter(|b| ids.contains(&b.id)).collect())
}

// ---------- mass mail ----------

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailingInput {
    pub subject: Option<String>,
    /// Plain text; `{{ first_name }}`, `{{ last_name }}`, `{{ name }}`,
    /// `{{ email }}`, `{{ type }}`, `{{ ends_on }}` are replaced for each person.
    pub body: Option<String>,
    /// A saved search, or else `filter`.
    pub saved: Option<String>,
    #[serde(default, deserialize_with = "shrooms_core::web::api::nested_object")]
    pub filter: Option<DirFilter>,
    /// `newsletter` (the default: skips people who opted out) or `service`.
    pub list_kind: Option<String>,
    /// To send: the count the preview announced, as the confirmation.
    pub confirm_count: Option<i64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MailingPreview {
    /// How many will receive it.
    pub recipients: i64,
    pub skipped_no_email: i64,
    pub skipped_opted_out: i64,
    pub skipped_bounced: i64,
    /// The first message as it will read (subject and text).
    pub subject: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Mailing {
    pub id: String,
    pub subject: String,
    pub list_kind: String,
    /// `queued`, `sending`, `done`.
    pub status: String,
    pub total: i64,
    /// Messages handed to the outbox so far.
    pub sent: i64,
    pub skipped: i64,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Replaces the placeholders of a text for one person (unknown ones stay).
pub fn render(text: &str, r: &DirRow) -> String {
    let vals = [
        ("first_name", r.given_name.clone()),
        ("last_name", r.family_name.clone()),
        ("name", format!("{} {}", r.given_name, r.family_name).trim().to_string()),
        ("email", r.email.clone().unwrap_or_default()),
        ("type", r.type_name.clone().unwrap_or_default()),
        ("ends_on", r.ends_on.clone().unwrap_or_default()),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                let key = after[..j].trim();
                match vals.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[i..i + 2 + j + 2]),
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

struct Checked {
    subject: String,
    body: String,
    kind: String,
    filter: DirFilter,
}

async fn check_input(db: &Db, cap: &CanRead, input: &MailingInput) -> MemResult<Checked> {
    let mut errors = Vec::new();
    let subject = text_field(&mut errors, "subject", input.subject.as_deref().unwrap_or(""), 200, true);
    let body = text_field(&mut errors, "body", input.body.as_deref().unwrap_or(""), 50_000, true);
    let kind = input.list_kind.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("newsletter").to_string();
    if !LIST_KINDS.contains(&kind.as_str()) {
        errors.push(FieldError::new("list_kind", "Choose newsletter or service."));
    }
    if subject.contains(['\r', '\n']) {
        errors.push(FieldError::new("subject", "Write the subject on one line."));
    }
    MemError::check(errors)?;
    let filter = match input.saved.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => {
            directory::saved_search(db, cap, id)
                .await
                .map_err(|_| MemError::field("saved", "There is no such saved search."))?
                .filter
        }
        None => input.filter.clone().unwrap_or_default(),
    };
    directory::check_filter(&filter)?;
    Ok(Checked { subject, body, kind, filter })
}

struct Split {
    send: Vec<DirRow>,
    no_email: i64,
    opted_out: i64,
    bounced: i64,
}

async fn split(db: &Db, cap: &CanRead, zone: &str, c: &Checked) -> MemResult<Split> {
    sync_outbox_bounces(db, cap.org()).await?;
    let rows = directory::select_all(db, cap, zone, &c.filter).await?;
    let opted: HashSet<String> =
        sqlx::query("SELECT person_id FROM mem_mail_optouts WHERE org_id = $1 AND list_kind = $2")
            .bind(cap.org().to_string())
            .bind(&c.kind)
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    let mut s = Split { send: vec![], no_email: 0, opted_out: 0, bounced: 0 };
    for r in rows {
        if r.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            s.no_email += 1;
        } else if r.bounced {
            s.bounced += 1;
        } else if c.kind == "newsletter" && opted.contains(&r.person_id) {
            s.opted_out += 1;
        } else {
            s.send.push(r);
        }
    }
    Ok(s)
}

fn unsubscribe_url(st: &AppState, slug: &str, token: &str) -> String {
    format!("{}/o/{slug}/members/unsubscribe/{token}", st.base_url())
}

/// The one-click unsubscribe address of mail programs (RFC 8058): the API's,
/// which takes a POST without a form token (`List-Unsubscribe=One-Click`).
fn one_click_url(st: &AppState, slug: &str, token: &str) -> String {
    format!("{}/api/v1/orgs/{slug}/members/unsubscribe/{token}", st.base_url())
}

/// A message of a mailing and its extra headers: newsletters carry the
/// unsubscribe link in the text and as `List-Unsubscribe` with
/// `List-Unsubscribe-Post` (one click in the mail program).
fn compose(
    st: &AppState,
    org: OrgId,
    slug: &str,
    c: &Checked,
    r: &DirRow,
    lang: &str,
) -> (Mail, Vec<(&'static str, String)>) {
    let mut text = render(&c.body, r);
    let mut headers = Vec::new();
    if c.kind == "newsletter" {
        let token = unsubscribe_token(&st.signing_key, org, &r.person_id, &c.kind);
        let url = unsubscribe_url(st, slug, &token);
        let line =
            if lang == "fr" { "Pour ne plus recevoir ces messages :" } else { "To stop receiving these messages:" };
        text.push_str(&format!("\n\n-- \n{line} {url}\n"));
        headers.push(("List-Unsubscribe", format!("<{}>", one_click_url(st, slug, &token))));
        headers.push(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()));
    }
    (Mail { subject: render(&c.subject, r), text, html: None }, headers)
}

pub fn lang_of(ctx: &OrgCtx) -> String {
    ctx.actor.account.lang.clone().filter(|l| l == "en" || l == "fr").unwrap_or_else(|| "fr".into())
}

pub async fn preview(st: &AppState, ctx: &OrgCtx, cap: &CanWrite, input: &MailingInput) -> MemResult<MailingPreview> {
    let read = cap.as_read();
    let c = check_input(&st.db, &read, input).await?;
    let s = split(&st.db, &read, &ctx.org.timezone, &c).await?;
    let (subject, text) = match s.send.first() {
        Some(r) => {
            let (m, _) = compose(st, ctx.org.id, &ctx.org.slug, &c, r, &lang_of(ctx));
            (m.subject, m.text)
        }
        None => (c.subject.clone(), c.body.clone()),
    };
    Ok(MailingPreview {
        recipients: s.send.len() as i64,
        skipped_no_email: s.no_email,
        skipped_opted_out: s.opted_out,
        skipped_bounced: s.bounced,
        subject,
        text,
    })
}

/// Freezes the recipients and queues the job that sends; refused for an
/// empty selection or when the confirmed count is not the current one.
pub async fn send(st: &AppState, ctx: &OrgCtx, cap: &CanWrite, input: MailingInput) -> MemResult<Mailing> {
    let read = cap.as_read();
    let c = check_input(&st.db, &read, &input).await?;
    let s = split(&st.db, &read, &ctx.org.timezone, &c).await?;
    let n = s.send.len() as i64;
    if n == 0 {
        return Err(MemError::field("filter", "Nobody in this selection can receive it: nothing to send."));
    }
    match input.confirm_count {
        None => return Err(MemError::field("confirm_count", format!("Confirm the number of recipients ({n})."))),
        Some(k) if k != n => {
            return Err(MemError::field(
                "confirm_count",
                format!("The selection now has {n} recipients, not {k}: check the preview again."),
            ))
        }
        _ => {}
    }
    let org = cap.org();
    let id = new_id();
    let now = Timestamp::now().0;
    let skipped = s.no_email + s.opted_out + s.bounced;
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_mailings (id, org_id, subject, body, filter, status, total, sent, skipped, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7, $8, $9)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&c.subject)
    .bind(&c.body)
    .bind(json!({"filter": c.filter, "list_kind": c.kind, "lang": lang_of(ctx)}).to_string())
    .bind(n)
    .bind(skipped)
    .bind(ctx.who().account.map(|a| a.to_string()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    for chunk in s.send.chunks(300) {
        let mut sql = String::from("INSERT INTO mem_mailing_recipients (mailing_id, org_id, person_id) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("($1, $2, ${})", i + 3));
        }
        let mut q = sqlx::query(&sql).bind(&id).bind(org.to_string());
        for r in chunk {
            q = q.bind(r.person_id.as_str());
        }
        q.execute(tx.conn()).await?;
    }
    shrooms_core::jobs::enqueue(
        &mut tx,
        &MAILING_SEND,
        Some(org),
        json!({"mailing": id}),
        Some(&format!("mailing:{id}")),
        0,
    )
    .await?;
    record(
        &mut tx,
        &ctx.who(),
        org,
        "members.mailing.send",
        "members_mailing",
        &id,
        None,
        Some(
            json!({"subject": c.subject, "recipients": n, "skipped": skipped, "list_kind": c.kind, "filter": c.filter}),
        ),
    )
    .await?;
    tx.commit().await?;
    mailing(&st.db, &read, &id).await
}

const MAILING_COLS: &str =
    "id, subject, filter, status, total, sent, skipped, created_at, finished_at FROM mem_mailings";

fn mailing_row(r: &sqlx::any::AnyRow) -> MemResult<Mailing> {
    let meta: serde_json::Value = serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or_default();
    Ok(Mailing {
        id: r.try_get(0)?,
        subject: r.try_get(1)?,
        list_kind: meta["list_kind"].as_str().unwrap_or("newsletter").to_string(),
        status: r.try_get(3)?,
        total: r.try_get(4)?,
        sent: r.try_get(5)?,
        skipped: r.try_get(6)?,
        created_at: Timestamp(r.try_get(7)?).rfc3339(),
        finished_at: r.try_get::<Option<i64>, _>(8)?.map(|t| Timestamp(t).rfc3339()),
    })
}

pub async fn mailings(db: &Db, cap: &CanRead) -> MemResult<Vec<Mailing>> {
    let rows =
        sqlx::query(&format!("SELECT {MAILING_COLS} WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT 200"))
            .bind(cap.org().to_string())
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(mailing_row).collect()
}

pub async fn mailing(db: &Db, cap: &CanRead, id: &str) -> MemResult<Mailing> {
    let r = sqlx::query(&format!("SELECT {MAILING_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(mailing_row).transpose()?.ok_or(MemError::Core(CoreError::NotFound))
}

/// Sends a mailing in batches: each batch's messages enter the outbox with
/// the progress count in one transaction, so a retried job goes on where
/// the last run stopped and never sends twice.
pub const MAILING_SEND: JobSpec =
    JobSpec { name: "members.mailing.send", max_attempts: 5, backoff_secs: 30, timeout_secs: 600, run: run_mailing };

const MAIL_BATCH: i64 = 200;

fn run_mailing(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let id = ctx.payload["mailing"].as_str().unwrap_or_default().to_string();
        send_batches(&st, &id).await.map_err(|e| anyhow::anyhow!("mailing {id}: {}", CoreError::from(e)))
    })
}

async fn send_batches(st: &AppState, id: &str) -> MemResult<()> {
    let Some(r) = sqlx::query("SELECT org_id, subject, body, filter, sent, total FROM mem_mailings WHERE id = $1")
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
    else {
        return Ok(());
    };
    let org: OrgId = r
        .try_get::<String, _>(0)?
        .parse()
        .map_err(|_| MemError::Core(CoreError::Internal("bad organisation id".into())))?;
    let meta: serde_json::Value = serde_json::from_str(&r.try_get::<String, _>(3)?).unwrap_or_default();
    let c = Checked {
        subject: r.try_get(1)?,
        body: r.try_get(2)?,
        kind: meta["list_kind"].as_str().unwrap_or("newsletter").to_string(),
        filter: DirFilter::default(),
    };
    let lang = meta["lang"].as_str().unwrap_or("fr").to_string();
    let Some(o) = shrooms_core::orgs::find_org(&st.db, &org.to_string()).await? else { return Ok(()) };
    let cap = CanWrite::operator(org, MODULE).as_read();
    let mut sent: i64 = r.try_get(4)?;
    let total: i64 = r.try_get(5)?;
    // Everyone of the organisation, by id, to fill in the placeholders.
    let everyone: HashMap<String, DirRow> = directory::select_all(
        &st.db,
        &cap,
        &o.timezone,
        &DirFilter { status: Some(directory::STATUSES.join(",")), ..Default::default() },
    )
    .await?
    .into_iter()
    .map(|r| (r.person_id.clone(), r))
    .collect();
    sqlx::query("UPDATE mem_mailings SET status = 'sending' WHERE id = $1 AND status = 'queued'")
        .bind(id)
        .execute(st.db.pool())
        .await?;
    while sent < total {
        let rows = sqlx::query(&format!(
            "SELECT person_id FROM mem_mailing_recipients WHERE mailing_id = $1 ORDER BY person_id LIMIT {MAIL_BATCH} OFFSET {sent}"
        ))
        .bind(id)
        .fetch_all(st.db.pool())
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = st.db.begin().await?;
        for row in &rows {
            let person: String = row.try_get(0)?;
            let Some(p) = everyone.get(&person) else { continue };
            let Some(to) = p.email.as_deref() else { continue };
            let (mail, headers) = compose(st, org, &o.slug, &c, p, &lang);
            shrooms_core::outbox::enqueue_with_headers(&mut tx, Some(org), "members.mailing", to, &mail, &headers)
                .await?;
        }
        sent += rows.len() as i64;
        sqlx::query("UPDATE mem_mailings SET sent = $1 WHERE id = $2").bind(sent).bind(id).execute(tx.conn()).await?;
        tx.commit().await?;
    }
    sqlx::query("UPDATE mem_mailings SET status = 'done', finished_at = $1 WHERE id = $2")
        .bind(Timestamp::now().0)
        .bind(id)
        .execute(st.db.pool())
        .await?;
    Ok(())
}

// ---------- exports, lists, labels ----------

fn status_text(s: &str, fr: bool) -> &'static str {
    match (s, fr) {
        ("up_to_date", true) => "à jour",
        ("up_to_date", false) => "up to date",
        ("dues_unpaid", true) => "en retard",
        ("dues_unpaid", false) => "late",
        ("not_started", true) => "à venir",
        ("not_started", false) => "not started",
        ("lapsed", true) => "expirée",
        ("lapsed", false) => "lapsed",
        ("resigned", true) => "démission",
        ("resigned", false) => "resigned",
        ("excluded", true) => "exclusion",
        ("excluded", false) => "excluded",
        (_, true) => "jamais",
        (_, false) => "never",
    }
}

/// The selection as a CSV or ODS file.
pub fn table(rows: &[DirRow], ods: bool) -> Vec<u8> {
    let header = [
        "Family name",
        "Given name",
        "E-mail",
        "Phone",
        "Membership type",
        "Standing",
        "First day",
        "Last day",
        "Joined",
        "SEPA",
        "Bounced",
    ];
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.family_name.clone(),
                r.given_name.clone(),
                r.email.clone().unwrap_or_default(),
                r.phone.clone().unwrap_or_default(),
                r.type_name.clone().unwrap_or_default(),
                r.status.clone(),
                r.starts_on.clone().unwrap_or_default(),
                r.ends_on.clone().unwrap_or_default(),
                r.joined_on.clone().unwrap_or_default(),
                if r.sepa { "yes" } else { "no" }.into(),
                if r.bounced { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    shrooms_core::people::table_file(ods, "Members", &header, &data)
}

/// A printable list: name, type, standing, end date, e-mail, phone.
pub fn list_pdf(rows: &[DirRow], org_name: &str, colour: &str, lang: &str) -> Vec<u8> {
    let fr = lang == "fr";
    let mut doc = shrooms_core::pdf::Document::new(
        if fr { "Liste des adhérents" } else { "List of members" },
        shrooms_core::pdf::Branding { org_name: org_name.to_string(), colour: colour.to_string() },
    );
    doc.paragraph(&format!("{} {}", rows.len(), if fr { "personnes" } else { "people" }));
    let headers: [&str; 6] = if fr {
        ["Nom", "Adhésion", "Situation", "Fin", "Courriel", "Téléphone"]
    } else {
        ["Name", "Membership", "Standing", "Ends", "E-mail", "Phone"]
    };
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{} {}", r.family_name, r.given_name).trim().to_string(),
                r.type_name.clone().unwrap_or_default(),
                status_text(&r.status, fr).to_string(),
                r.ends_on.clone().unwrap_or_default(),
                r.email.clone().unwrap_or_default(),
                r.phone.clone().unwrap_or_default(),
            ]
        })
        .collect();
    doc.table(&headers, &[120.0, 80.0, 60.0, 60.0, 130.0, 75.0], &data);
    doc.finish(&jiff::Zoned::now().date().to_string())
}

/// One address label: up to five lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub lines: Vec<String>,
}

/// Address lines, and the household (id, name) whose address it is.
type Addressed = (Vec<String>, Option<(String, String)>);

/// The labels of a selection: one per person with an address, one per
/// household for the people who share their household's address.
pub async fn labels(db: &Db, cap: &CanRead, rows: &[DirRow]) -> MemResult<Vec<Label>> {
    let wanted: HashSet<&str> = rows.iter().map(|r| r.person_id.as_str()).collect();
    let found = sqlx::query(
        "SELECT m.person_id, m.street, m.postcode, m.city, m.country, h.id, h.name, h.street, h.postcode, h.city, h.country \
         FROM mem_profiles m LEFT JOIN mem_households h ON h.org_id = m.org_id AND h.id = m.household_id WHERE m.org_id = $1",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    let mut addr: HashMap<String, Addressed> = HashMap::new();
    for r in &found {
        let person: String = r.try_get(0)?;
        if !wanted.contains(person.as_str()) {
            continue;
        }
        let own: [String; 4] = [r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?];
        let hid: Option<String> = r.try_get(5)?;
        if own[0].is_empty() && own[2].is_empty() {
            if let Some(h) = hid {
                let hh: [String; 4] = [r.try_get(7)?, r.try_get(8)?, r.try_get(9)?, r.try_get(10)?];
                if !hh[0].is_empty() || !hh[2].is_empty() {
                    addr.insert(person, (address_lines(&hh), Some((h, r.try_get(6)?))));
                }
            }
        } else {
            addr.insert(person, (address_lines(&own), None));
        }
    }
    let mut out = Vec::new();
    let mut households = HashSet::new();
    for r in rows {
        let Some((lines, hh)) = addr.get(&r.person_id) else { continue };
        let name = match hh {
            Some((id, name)) => {
                if !households.insert(id.clone()) {
                    continue;
                }
                name.clone()
            }
            None => format!("{} {}", r.given_name, r.family_name).trim().to_string(),
        };
        let mut l = vec![name];
        l.extend(lines.iter().cloned());
        out.push(Label { lines: l });
    }
    Ok(out)
}

fn address_lines(a: &[String; 4]) -> Vec<String> {
    let mut v: Vec<String> = a[0].lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    v.push(format!("{} {}", a[1], a[2]).trim().to_string());
    if !a[3].is_empty() && a[3] != "FR" {
        v.push(a[3].clone());
    }
    v
}

/// A4 sheets of 3 × 8 labels (70 × 37 mm each).
pub fn labels_pdf(labels: &[Label]) -> Vec<u8> {
    const MM: f32 = 72.0 / 25.4;
    let (w, h) = (70.0 * MM, 37.0 * MM);
    let top = 842.0 - 0.5 * MM;
    let pages: Vec<Vec<shrooms_core::pdf::Placed>> = labels
        .chunks(24)
        .map(|sheet| {
            let mut placed = Vec::new();
            for (i, l) in sheet.iter().enumerate() {
                let (col, row) = ((i % 3) as f32, (i / 3) as f32);
                let x = col * w + 5.0 * MM;
                let mut y = top - row * h - 8.0 * MM;
                for (k, line) in l.lines.iter().take(5).enumerate() {
                    placed.push(shrooms_core::pdf::Placed { x, y, text: line.clone(), size: 10.0, bold: k == 0 });
                    y -= 12.0;
                }
            }
            placed
        })
        .collect();
    shrooms_core::pdf::placed_pages("Labels", &pages, w - 10.0 * MM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_reports_are_read_per_recipient() {
        let dsn = "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; Ana@Example.org\nAction: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822;bob@example.org\nAction: delayed\nStatus: 4.4.7 (timeout)\n";
        assert_eq!(
            parse_dsn(dsn).unwrap(),
            vec![("ana@example.org".into(), "5.1.1".into()), ("bob@example.org".into(), "4.4.7".into())]
        );
        assert!(parse_dsn("Hello\nStatus: 5.1.1\n").is_none());
        assert!(parse_dsn("Final-Recipient: rfc822; a@b.c\nStatus: five\n").is_none());
    }

    #[test]
    fn permanent_codes_are_found_in_smtp_errors() {
        assert_eq!(permanent_code("server said: 550 5.1.1 <a@b.c>: user unknown").as_deref(), Some("550"));
        assert_eq!(permanent_code("451 4.7.1 try later"), None);
        assert_eq!(permanent_code("connection refused"), None);
    }

    #[test]
    fn tokens_are_signed_per_person_and_list() {
        let org = OrgId(uuid::Uuid::nil());
        let t = unsubscribe_token(b"key", org, "p1", "newsletter");
        assert_eq!(check_token(b"key", org, &t), Some(("p1".into(), "newsletter".into())));
        assert_eq!(check_token(b"other", org, &t), None);
        assert_eq!(check_token(b"key", org, &t.replace("p1", "p2")), None);
    }
}
