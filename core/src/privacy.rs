//! Personal data of a person, across every module: the full export (JSON or
//! CSV) and erasure by pseudonymisation.
//!
//! Each module that holds data about people implements [`PersonalData`] and
//! returns it from [`crate::module::Module::personal_data`]. The core calls
//! every registered module (enabled or not: a disabled module's tables keep
//! their rows), the core itself last.
//!
//! Erasure is irreversible and all or nothing: one durable transaction that
//! first asks every module whether something still binds the person to the
//! organisation (an unpaid invoice, an office in a club, an account that
//! still has access), then lets each module replace names, addresses,
//! e-mails, phones and free text by a pseudonym, keeping what the law
//! requires to keep (issued invoices, ledger entries, tax receipts: amounts,
//! numbers and dates). Each module says what it kept and why, in the report.
//! The audit entry of the erasure holds the pseudonym and the counts, never
//! the erased values. The audit log itself is not rewritten: it is
//! hash-chained, and rewriting it would break the proof it exists for.

use crate::audit::{self, Change, Who};
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{OrgId, Timestamp};
use crate::module::Modules;
use crate::permissions::CanWrite;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use std::future::Future;
use std::pin::Pin;

pub type PrivacyFuture<'a, T> = Pin<Box<dyn Future<Output = CoreResult<T>> + Send + 'a>>;

/// The person whose data is exported or erased, as the directory knew them
/// before erasure (modules match their own records on these values).
#[derive(Clone, Debug, Serialize)]
pub struct Subject {
    pub org: OrgId,
    pub person_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub account_id: Option<String>,
}

impl Subject {
    /// "Camille Martin" (either part may be empty).
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name.trim(), self.family_name.trim()).trim().to_string()
    }
}

/// What an erasure is done with: the pseudonym that replaces the person's
/// names, and who erases (for the audit entries modules may write).
#[derive(Clone, Debug)]
pub struct Erasure {
    pub subject: Subject,
    /// `Erased 7K2M4Q`: replaces names wherever a name must stay (a receipt's payer).
    pub pseudonym: String,
    pub who: Who,
}

/// One part of an export: a module's rows of one kind.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Section {
    pub module: String,
    /// `person`, `profile`, `customers`, `mandates`…
    pub section: String,
    /// One JSON object per record.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

impl Section {
    pub fn new(module: &str, section: &str, rows: Vec<Value>) -> Section {
        Section { module: module.into(), section: section.into(), rows }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Names, addresses, contact details and free text replaced or emptied.
    Pseudonymised,
    /// Removed altogether.
    Deleted,
    /// Left unchanged, for the reason given.
    Kept,
}

/// What a module did with one kind of record at erasure.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureNote {
    pub module: String,
    pub section: String,
    pub outcome: Outcome,
    pub count: i64,
    /// Why it was kept, or what was replaced.
    pub reason: String,
}

impl ErasureNote {
    pub fn new(module: &str, section: &str, outcome: Outcome, count: i64, reason: &str) -> ErasureNote {
        ErasureNote { module: module.into(), section: section.into(), outcome, count, reason: reason.into() }
    }
}

/// A module's part in exporting and erasing a person's data.
pub trait PersonalData: Send + Sync + 'static {
    /// Everything the module holds about the person, one section per kind of
    /// record. Bank details are masked (the person knows them; an export
    /// file travels).
    fn export<'a>(&'a self, db: &'a Db, subject: &'a Subject) -> PrivacyFuture<'a, Vec<Section>>;
    /// What still binds the person to the organisation and forbids erasing
    /// them now ("Invoice F2026-0004 is not paid (12.00 left)"); empty when
    /// nothing does. Called in the erasure's transaction.
    fn obligations<'a>(&'a self, _tx: &'a mut Tx, _subject: &'a Subject) -> PrivacyFuture<'a, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Pseudonymises what the module holds, in the erasure's transaction,
    /// and says what it did and what it kept and why.
    fn erase<'a>(&'a self, tx: &'a mut Tx, erasure: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>>;
}

/// The result of an erasure, as the API answers it and the audit keeps it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    pub person_id: String,
    pub pseudonym: String,
    /// RFC 3339, UTC.
    pub erased_at: String,
    pub notes: Vec<ErasureNote>,
}

/// Why a person was erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An administrator erased them (the person's request); the name typed
    /// as confirmation must match.
    Request,
    /// The retention period after their last tie to the organisation ended.
    Retention,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Request => "request",
            Reason::Retention => "retention",
        }
    }
}

/// Reads the person of an organisation; any other answers NotFound.
pub async fn subject(conn: &mut sqlx::AnyConnection, org: OrgId, person: &str) -> CoreResult<Subject> {
    let r = sqlx::query(
        "SELECT id, given_name, family_name, email, phone, account_id FROM people WHERE org_id = $1 AND id = $2",
    )
    .bind(org.to_string())
    .bind(person)
    .fetch_optional(conn)
    .await?
    .ok_or(CoreError::NotFound)?;
    Ok(Subject {
        org,
        person_id: r.try_get(0)?,
        given_name: r.try_get(1)?,
        family_name: r.try_get(2)?,
        email: r.try_get(3)?,
        phone: r.try_get(4)?,
        account_id: r.try_get(5)?,
    })
}

/// The person's data held by every module, the core's first.
pub async fn export(db: &Db, modules: &Modules, org: OrgId, person: &str) -> CoreResult<Vec<Section>> {
    let mut conn = db.pool().acquire().await?;
    let s = subject(&mut conn, org, person).await?;
    drop(conn);
    let mut out = Vec::new();
    for m in modules.all() {
        if let Some(pd) = m.personal_data() {
            out.extend(pd.export(db, &s).await?);
        }
    }
    Ok(out)
}

/// One CSV of an export: a line per value (module, section, record number, field, value).
pub fn export_csv(sections: &[Section]) -> Vec<u8> {
    let mut rows = Vec::new();
    for s in sections {
        for (i, row) in s.rows.iter().enumerate() {
            let fields: Vec<(String, &Value)> = match row.as_object() {
                Some(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
                None => vec![("value".into(), row)],
            };
            for (k, v) in fields {
                let text = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                rows.push(vec![s.module.clone(), s.section.clone(), (i + 1).to_string(), k, text]);
            }
        }
    }
    crate::people::csv_file(&["module", "section", "record", "field", "value"], &rows)
}

/// When the person was erased, if they were.
pub async fn erased_at(conn: &mut sqlx::AnyConnection, org: OrgId, person: &str) -> CoreResult<Option<i64>> {
    Ok(sqlx::query("SELECT erased_at FROM privacy_erasures WHERE org_id = $1 AND person_id = $2")
        .bind(org.to_string())
        .bind(person)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

fn folded_name(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A new pseudonym: `Erased` and six random characters.
pub fn new_pseudonym() -> String {
    let code = crate::crypto::base32_encode(&crate::crypto::random_bytes::<5>());
    format!("Erased {}", &code[..6.min(code.len())])
}

/// Erases a person of the capability's organisation: every module's part in
/// one durable transaction, with its audit entry. `confirmation` is the
/// person's name as typed by the administrator (required for
/// [`Reason::Request`]). Errors: NotFound, 422 on `confirmation`, 409 when
/// already erased or when a module reports an obligation.
pub async fn erase(
    db: &Db,
    modules: &Modules,
    who: &Who,
    cap: &CanWrite,
    person: &str,
    reason: Reason,
    confirmation: Option<&str>,
) -> CoreResult<ErasureReport> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let s = subject(tx.conn(), org, person).await?;
    if let Some(at) = erased_at(tx.conn(), org, person).await? {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("This person was already erased on {}.", &Timestamp(at).rfc3339()[..10]),
        });
    }
    if reason == Reason::Request {
        let typed = confirmation.map(folded_name).unwrap_or_default();
        let expected = folded_name(&s.full_name());
        if typed.is_empty() || typed != expected {
            return Err(CoreError::Validation(vec![FieldError::new(
                "confirmation",
                format!("Type the person's name exactly ({}) to confirm: erasure cannot be undone.", s.full_name()),
            )]));
        }
    }
    let mut blocking = Vec::new();
    for m in modules.all() {
        if let Some(pd) = m.personal_data() {
            blocking.extend(pd.obligations(&mut tx, &s).await?);
        }
    }
    if !blocking.is_empty() {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("This person cannot be erased yet: {}", blocking.join(" ")),
        });
    }
    let erasure = Erasure { subject: s, pseudonym: new_pseudonym(), who: who.clone() };
    let mut notes = Vec::new();
    // Modules first, the core last: modules may still read the person row.
    for m in modules.all().iter().filter(|m| m.id() != "core").chain(modules.get("core")) {
        if let Some(pd) = m.personal_data() {
            notes.extend(pd.erase(&mut tx, &erasure).await?);
        }
    }
    let now = Timestamp::now();
    sqlx::query(
        "INSERT INTO privacy_erasures (org_id, person_id, pseudonym, reason, erased_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org.to_string())
    .bind(person)
    .bind(&erasure.pseudonym)
    .bind(reason.as_str())
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    let report = ErasureReport {
        person_id: person.to_string(),
        pseudonym: erasure.pseudonym.clone(),
        erased_at: now.rfc3339(),
        notes,
    };
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "person.erase",
            entity_type: "person",
            entity_id: person.to_string(),
            before: None,
            after: Some(json!({"pseudonym": report.pseudonym, "reason": reason.as_str(), "notes": report.notes})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

// ---------- the core's own part ----------

/// The core's personal data: the person record and its custom field values,
/// the timeline of the person's page and the comments their account wrote in
/// the organisation, files attached to the person, mail sent to them, the
/// audit entries about them (export only).
pub struct CorePersonalData;

const CORE: &str = "core";

fn opt_ts(v: Option<i64>) -> Value {
    v.map(|t| Value::String(Timestamp(t).rfc3339())).unwrap_or(Value::Null)
}

impl PersonalData for CorePersonalData {
    fn export<'a>(&'a self, db: &'a Db, s: &'a Subject) -> PrivacyFuture<'a, Vec<Section>> {
        Box::pin(async move {
            let org = s.org.to_string();
            let pool = db.pool();
            let r = sqlx::query(
                "SELECT given_name, family_name, email, phone, notes, account_id, created_at, updated_at FROM people WHERE org_id = $1 AND id = $2",
            )
            .bind(&org)
            .bind(&s.person_id)
            .fetch_one(pool)
            .await?;
            let mut person = json!({
                "id": s.person_id,
                "given_name": r.try_get::<String, _>(0)?,
                "family_name": r.try_get::<String, _>(1)?,
                "email": r.try_get::<Option<String>, _>(2)?,
                "phone": r.try_get::<Option<String>, _>(3)?,
                "notes": r.try_get::<String, _>(4)?,
                "account_id": r.try_get::<Option<String>, _>(5)?,
                "created_at": Timestamp(r.try_get(6)?).rfc3339(),
                "updated_at": Timestamp(r.try_get(7)?).rfc3339(),
            });
            let custom = crate::custom_fields::values_for(db, s.org, "person", std::slice::from_ref(&s.person_id))
                .await?
                .remove(&s.person_id)
                .unwrap_or_default();
            person["custom"] = Value::Object(custom);
            let mut out = vec![Section::new(CORE, "person", vec![person])];

            if let Some(acc) = &s.account_id {
                let rows = sqlx::query("SELECT email, display_name, created_at FROM accounts WHERE id = $1")
                    .bind(acc)
                    .fetch_all(pool)
                    .await?;
                let rows = rows
                    .iter()
                    .map(|r| -> CoreResult<Value> {
                        Ok(json!({"email": r.try_get::<String, _>(0)?, "display_name": r.try_get::<String, _>(1)?,
                            "created_at": Timestamp(r.try_get(2)?).rfc3339()}))
                    })
                    .collect::<CoreResult<Vec<_>>>()?;
                out.push(Section::new(CORE, "account", rows));
            }

            let rows = sqlx::query(
                "SELECT kind, author_label, body, status_from, status_to, created_at FROM timeline_entries \
                 WHERE org_id = $1 AND ((entity_type = 'person' AND entity_id = $2) OR author_id = $3) AND deleted_at IS NULL ORDER BY id",
            )
            .bind(&org)
            .bind(&s.person_id)
            .bind(s.account_id.as_deref().unwrap_or(""))
            .fetch_all(pool)
            .await?;
            let rows = rows
                .iter()
                .map(|r| -> CoreResult<Value> {
                    Ok(json!({"kind": r.try_get::<String, _>(0)?, "author": r.try_get::<String, _>(1)?,
                        "body": r.try_get::<String, _>(2)?, "status_from": r.try_get::<Option<String>, _>(3)?,
                        "status_to": r.try_get::<Option<String>, _>(4)?, "created_at": Timestamp(r.try_get(5)?).rfc3339()}))
                })
                .collect::<CoreResult<Vec<_>>>()?;
            out.push(Section::new(CORE, "timeline", rows));

            let rows = sqlx::query(
                "SELECT name, content_type, size, created_at FROM files WHERE org_id = $1 AND module = 'core' AND entity_type = 'person' AND entity_id = $2 ORDER BY id",
            )
            .bind(&org)
            .bind(&s.person_id)
            .fetch_all(pool)
            .await?;
            let rows = rows
                .iter()
                .map(|r| -> CoreResult<Value> {
                    Ok(json!({"name": r.try_get::<String, _>(0)?, "content_type": r.try_get::<String, _>(1)?,
                        "size": r.try_get::<i64, _>(2)?, "created_at": Timestamp(r.try_get(3)?).rfc3339()}))
                })
                .collect::<CoreResult<Vec<_>>>()?;
            out.push(Section::new(CORE, "files", rows));

            let mut mail = Vec::new();
            if let Some(email) = &s.email {
                let rows = sqlx::query(
                    "SELECT kind, subject, status, created_at, sent_at FROM mail_outbox WHERE org_id = $1 AND LOWER(to_addr) = LOWER($2) ORDER BY id",
                )
                .bind(&org)
                .bind(email)
                .fetch_all(pool)
                .await?;
                for r in &rows {
                    mail.push(json!({"kind": r.try_get::<String, _>(0)?, "subject": r.try_get::<String, _>(1)?,
                        "status": r.try_get::<String, _>(2)?, "created_at": Timestamp(r.try_get(3)?).rfc3339(),
                        "sent_at": opt_ts(r.try_get(4)?)}));
                }
            }
            out.push(Section::new(CORE, "mail", mail));

            let rows = sqlx::query(
                "SELECT action, actor_label, at FROM audit_log WHERE org_id = $1 AND entity_type = 'person' AND entity_id = $2 ORDER BY seq",
            )
            .bind(&org)
            .bind(&s.person_id)
            .fetch_all(pool)
            .await?;
            let rows = rows
                .iter()
                .map(|r| -> CoreResult<Value> {
                    Ok(json!({"action": r.try_get::<String, _>(0)?, "by": r.try_get::<String, _>(1)?,
                        "at": Timestamp(r.try_get(2)?).rfc3339()}))
                })
                .collect::<CoreResult<Vec<_>>>()?;
            out.push(Section::new(CORE, "history", rows));
            Ok(out)
        })
    }

    fn obligations<'a>(&'a self, tx: &'a mut Tx, s: &'a Subject) -> PrivacyFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Some(acc) = &s.account_id else { return Ok(Vec::new()) };
            let member = sqlx::query("SELECT 1 FROM memberships WHERE org_id = $1 AND account_id = $2")
                .bind(s.org.to_string())
                .bind(acc)
                .fetch_optional(tx.conn())
                .await?
                .is_some();
            Ok(if member {
                vec!["Their account still has access to the organisation: remove it from the organisation's members first.".into()]
            } else {
                Vec::new()
            })
        })
    }

    fn erase<'a>(&'a self, tx: &'a mut Tx, e: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>> {
        Box::pin(async move {
            let s = &e.subject;
            let org = s.org.to_string();
            let (given, family) = e.pseudonym.split_once(' ').unwrap_or(("", e.pseudonym.as_str()));
            sqlx::query(
                "UPDATE people SET given_name = $1, family_name = $2, email = NULL, phone = NULL, notes = '', account_id = NULL, search = $3, updated_at = $4 \
                 WHERE org_id = $5 AND id = $6",
            )
            .bind(given)
            .bind(family)
            .bind(e.pseudonym.to_lowercase())
            .bind(Timestamp::now().0)
            .bind(&org)
            .bind(&s.person_id)
            .execute(tx.conn())
            .await?;
            write_terms(tx, &org, &s.person_id, given, family).await?;
            let mut notes = vec![ErasureNote::new(
                CORE,
                "person",
                Outcome::Pseudonymised,
                1,
                "Names replaced by the pseudonym; e-mail, phone and notes emptied; the link to the sign-in account removed (the account itself belongs to the instance).",
            )];

            let custom = count(
                tx,
                "SELECT COUNT(*) FROM custom_values WHERE org_id = $1 AND entity_type = 'person' AND entity_id = $2",
                &org,
                &s.person_id,
            )
            .await?;
            crate::custom_fields::forget(tx, s.org, "person", &s.person_id).await?;
            notes.push(ErasureNote::new(
                CORE,
                "custom_fields",
                Outcome::Deleted,
                custom,
                "Custom field values removed.",
            ));

            let files = crate::files::delete_for(tx, &e.who, &CanWrite::operator(s.org, CORE), "person", &s.person_id)
                .await? as i64;
            notes.push(ErasureNote::new(
                CORE,
                "files",
                Outcome::Deleted,
                files,
                "Files attached to the person removed.",
            ));

            let timeline = count(
                tx,
                "SELECT COUNT(*) FROM timeline_entries WHERE org_id = $1 AND entity_type = 'person' AND entity_id = $2",
                &org,
                &s.person_id,
            )
            .await?;
            crate::timeline::forget(tx, s.org, "person", &s.person_id).await?;
            notes.push(ErasureNote::new(
                CORE,
                "timeline",
                Outcome::Deleted,
                timeline,
                "Comments and events on the person's page removed.",
            ));

            if let Some(acc) = &s.account_id {
                let n = sqlx::query(
                    "UPDATE timeline_entries SET author_id = NULL, author_label = $1 WHERE org_id = $2 AND author_id = $3",
                )
                .bind(&e.pseudonym)
                .bind(&org)
                .bind(acc)
                .execute(tx.conn())
                .await?
                .rows_affected() as i64;
                notes.push(ErasureNote::new(
                    CORE,
                    "comments_authored",
                    Outcome::Pseudonymised,
                    n,
                    "Comments they wrote on other records keep their text, signed with the pseudonym.",
                ));
            }

            if let Some(email) = &s.email {
                let queued = sqlx::query(
                    "DELETE FROM mail_outbox WHERE org_id = $1 AND LOWER(to_addr) = LOWER($2) AND status = 'queued'",
                )
                .bind(&org)
                .bind(email)
                .execute(tx.conn())
                .await?
                .rows_affected() as i64;
                let sent = sqlx::query(
                    "UPDATE mail_outbox SET to_addr = 'erased@invalid', subject = '', body_text = '', body_html = NULL \
                     WHERE org_id = $1 AND LOWER(to_addr) = LOWER($2)",
                )
                .bind(&org)
                .bind(email)
                .execute(tx.conn())
                .await?
                .rows_affected() as i64;
                notes.push(ErasureNote::new(
                    CORE,
                    "mail",
                    Outcome::Pseudonymised,
                    queued + sent,
                    "Mail not yet sent cancelled; the address, subject and text of mail sent emptied.",
                ));
            }
            notes.push(ErasureNote::new(
                CORE,
                "audit",
                Outcome::Kept,
                0,
                "The audit log is hash-chained proof of who changed what; it is not rewritten and only administrators read it.",
            ));
            Ok(notes)
        })
    }
}

async fn count(tx: &mut Tx, sql: &str, org: &str, id: &str) -> CoreResult<i64> {
    Ok(sqlx::query(sql).bind(org).bind(id).fetch_one(tx.conn()).await?.try_get(0)?)
}

/// Rewrites the search words of a person (same words as the directory computes).
async fn write_terms(tx: &mut Tx, org: &str, id: &str, given: &str, family: &str) -> CoreResult<()> {
    sqlx::query("DELETE FROM people_terms WHERE org_id = $1 AND person_id = $2")
        .bind(org)
        .bind(id)
        .execute(tx.conn())
        .await?;
    for term in crate::people::terms_of(given, family, None, None) {
        sqlx::query(
            "INSERT INTO people_terms (org_id, term, family_name, given_name, person_id) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org)
        .bind(term)
        .bind(family)
        .bind(given)
        .bind(id)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

// ---------- helpers for modules' exports ----------

/// The kind of a column read by [`rows`].
#[derive(Clone, Copy, Debug)]
pub enum Col {
    Text,
    OptText,
    Int,
    OptInt,
    /// UTC milliseconds, written as RFC 3339.
    Time,
    /// 0/1, written as a boolean.
    Bool,
}

/// Runs a query whose parameters are all text and turns each row into a
/// JSON object with the given column names and kinds, in select order.
pub async fn rows(db: &Db, sql: &str, binds: &[&str], cols: &[(&str, Col)]) -> CoreResult<Vec<Value>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let found = q.fetch_all(db.pool()).await?;
    let mut out = Vec::with_capacity(found.len());
    for r in &found {
        let mut o = serde_json::Map::new();
        for (i, (name, kind)) in cols.iter().enumerate() {
            let v = match kind {
                Col::Text => Value::String(r.try_get::<String, _>(i)?),
                Col::OptText => r.try_get::<Option<String>, _>(i)?.map(Value::String).unwrap_or(Value::Null),
                Col::Int => Value::from(r.try_get::<i64, _>(i)?),
                Col::OptInt => r.try_get::<Option<i64>, _>(i)?.map(Value::from).unwrap_or(Value::Null),
                Col::Time => Value::String(Timestamp(r.try_get::<i64, _>(i)?).rfc3339()),
                Col::Bool => Value::Bool(r.try_get::<i64, _>(i)? != 0),
            };
            o.insert((*name).to_string(), v);
        }
        out.push(Value::Object(o));
    }
    Ok(out)
}

/// An IBAN as an export shows it: country, check digits and the last four
/// characters (`FR76 **** 0189`).
pub fn mask_iban(iban: &str) -> String {
    let c: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() < 8 {
        return "****".into();
    }
    format!("{} **** {}", &c[..4], &c[c.len() - 4..])
}
