//! SEPA direct debit with its SQL: the creditor (the organisation's account
//! and identifier), mandates, collection batches (a receipt and its ledger
//! entry per debit, the pain.008 file, pre-notification mails) and the
//! import of returned or rejected debits, which marks the dues unpaid and
//! reverses their ledger entry.
//!
//! A debtor's IBAN is sealed at rest ([`shrooms_core::sealed`]): only the
//! collection file opens it. What lists, pages, exports and the audit log
//! show is the masked IBAN, from its first and last four characters kept
//! beside it (`iban_hint`), so they need no key. Nothing looks a mandate up
//! by its IBAN (returns match the end-to-end id), so no digest of it is kept.

use crate::error::{MemError, MemResult};
use crate::sepa::{self, Creditor as SepaCreditor, Debit, PostalAddress};
use crate::service::{
    self, check_due, display_name, next_number, person_in, record, settings_in, text_field, write_dues, DueInput,
    Method, MODULE,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entry, NewEntry};
use shrooms_core::audit::Who;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::schedules::ScheduleSpec;
use shrooms_core::sealed::{is_sealed, DataKey};
use shrooms_core::{AppState, CoreError, CoreResult, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

// ---------- creditor ----------

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Creditor {
    pub name: String,
    pub iban: String,
    pub bic: String,
    /// The SEPA creditor identifier (ICS) given by the bank.
    pub ics: String,
    #[serde(default)]
    pub address: service::Address,
}

pub async fn creditor(db: &Db, org: OrgId) -> MemResult<Option<Creditor>> {
    let mut conn = db.pool().acquire().await?;
    creditor_in(&mut conn, org).await
}

async fn creditor_in(conn: &mut sqlx::AnyConnection, org: OrgId) -> MemResult<Option<Creditor>> {
    let r = sqlx::query(
        "SELECT name, iban, bic, ics, street, postcode, city, country FROM mem_sepa_creditor WHERE org_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(Creditor {
        name: r.try_get(0)?,
        iban: r.try_get(1)?,
        bic: r.try_get(2)?,
        ics: r.try_get(3)?,
        address: service::Address {
            street: r.try_get(4)?,
            postcode: r.try_get(5)?,
            city: r.try_get(6)?,
            country: r.try_get(7)?,
        },
    }))
}

pub async fn save_creditor(db: &Db, who: &Who, cap: &CanAdmin, c: Creditor) -> MemResult<Creditor> {
    let mut errors = Vec::new();
    let name = text_field(&mut errors, "name", &c.name, 70, true);
    let mut check = |field: &str, r: Result<String, String>| match r {
        Ok(v) => v,
        Err(m) => {
            errors.push(FieldError::new(field, m));
            String::new()
        }
    };
    let iban = check("iban", sepa::check_iban(&c.iban));
    let bic = check("bic", sepa::check_bic(&c.bic));
    let ics = check("ics", sepa::check_ics(&c.ics));
    let country =
        if c.address.country.trim().is_empty() { "FR".to_string() } else { c.address.country.trim().to_uppercase() };
    if country.len() != 2 {
        errors.push(FieldError::new("address.country", "Use the two-letter country code, such as FR."));
    }
    if c.address.city.trim().is_empty() {
        errors.push(FieldError::new("address.city", "A collection file carries the creditor's town."));
    }
    MemError::check(errors)?;
    let clean = Creditor {
        name,
        iban,
        bic,
        ics,
        address: service::Address {
            street: c.address.street.trim().into(),
            postcode: c.address.postcode.trim().into(),
            city: c.address.city.trim().into(),
            country,
        },
    };
    let mut tx = db.begin().await?;
    let before = creditor_in(tx.conn(), cap.org()).await?;
    sqlx::query(
        "INSERT INTO mem_sepa_creditor (org_id, name, iban, bic, ics, street, postcode, city, country, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (org_id) DO UPDATE SET name = $2, iban = $3, \
         bic = $4, ics = $5, street = $6, postcode = $7, city = $8, country = $9, updated_at = $10",
    )
    .bind(cap.org().to_string())
    .bind(&clean.name)
    .bind(&clean.iban)
    .bind(&clean.bic)
    .bind(&clean.ics)
    .bind(&clean.address.street)
    .bind(&clean.address.postcode)
    .bind(&clean.address.city)
    .bind(&clean.address.country)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let org = cap.org().to_string();
    record(
        &mut tx,
        who,
        cap.org(),
        "members.sepa.creditor",
        "sepa_creditor",
        &org,
        Some(json!(before)),
        Some(json!(clean)),
    )
    .await?;
    tx.commit().await?;
    Ok(clean)
}

// ---------- mandates ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Mandate {
    pub id: String,
    pub person_id: String,
    /// Unique in the organisation (RUM).
    pub reference: String,
    // Masked (`FR76 •••• •••• 0189`): the full IBAN is sealed and only goes
    // into the collection file.
    pub iban: String,
    pub bic: Option<String>,
    pub debtor_name: String,
    pub signed_on: String,
    /// `active` or `revoked`.
    pub status: String,
    /// The sequence of the next debit: `FRST` until one is collected, then `RCUR`.
    pub next_sequence: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MandateInput {
    pub person_id: String,
    /// The mandate reference; `ADH-000001`… when left out.
    pub reference: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
    /// The account holder; the person's name when left out.
    pub debtor_name: Option<String>,
    /// The date the debtor signed (`YYYY-MM-DD`): required.
    pub signed_on: Option<String>,
}

/// Column 10 is the IBAN as stored (sealed, or in clear when written
/// before IBANs were sealed), for the collection file only.
const MANDATE_COLS: &str =
    "m.id, m.person_id, m.reference, m.iban_hint, m.bic, m.debtor_name, m.signed_on, m.status, m.created_at, \
     (SELECT COUNT(*) FROM mem_debits d WHERE d.org_id = m.org_id AND d.mandate_id = m.id AND d.status = 'sent'), \
     m.iban FROM mem_mandates m";

fn mandate_row(r: &AnyRow) -> MemResult<Mandate> {
    let collected: i64 = r.try_get(9)?;
    let hint = iban_hint_of(r.try_get(3)?, &r.try_get::<String, _>(10)?);
    Ok(Mandate {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        reference: r.try_get(2)?,
        iban: mask_iban(hint.as_deref().unwrap_or_default()),
        bic: r.try_get(4)?,
        debtor_name: r.try_get(5)?,
        signed_on: r.try_get(6)?,
        status: r.try_get(7)?,
        created_at: Timestamp(r.try_get(8)?).rfc3339(),
        next_sequence: if collected > 0 { "RCUR".into() } else { "FRST".into() },
    })
}

pub async fn mandates(db: &Db, cap: &CanRead, person: Option<&str>) -> MemResult<Vec<Mandate>> {
    let rows = sqlx::query(&format!(
        "SELECT {MANDATE_COLS} WHERE m.org_id = $1 AND ($2 = '' OR m.person_id = $2) ORDER BY m.created_at DESC LIMIT 2000"
    ))
    .bind(cap.org().to_string())
    .bind(person.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(mandate_row).collect()
}

async fn mandate_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<Mandate>> {
    let r = sqlx::query(&format!("SELECT {MANDATE_COLS} WHERE m.org_id = $1 AND m.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(mandate_row).transpose()
}

pub async fn create_mandate(
    db: &Db,
    key: &DataKey,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    input: MandateInput,
) -> MemResult<Mandate> {
    let org = cap.org();
    let mut errors = Vec::new();
    let iban = match sepa::check_iban(input.iban.as_deref().unwrap_or("")) {
        Ok(i) => i,
        Err(m) => {
            errors.push(FieldError::new("iban", m));
            String::new()
        }
    };
    let bic = match input.bic.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => sepa::check_bic(b).map_err(|m| errors.push(FieldError::new("bic", m))).ok(),
        None => None,
    };
    let signed_on = match input.signed_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errors.push(FieldError::new(
                "signed_on",
                "A mandate needs the date the debtor signed it: no debit without a signed mandate.",
            ));
            None
        }
        Some(s) => match crate::domain::parse_date("signed_on", s) {
            Ok(d) if d > service::today(zone) => {
                errors.push(FieldError::new("signed_on", "The signature date cannot be in the future."));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let reference = match input.reference.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => sepa::check_reference(r).map_err(|m| errors.push(FieldError::new("reference", m))).ok(),
        None => None,
    };
    let mut tx = db.begin().await?;
    let person = person_in(tx.conn(), org, &input.person_id).await?;
    if person.is_none() {
        errors.push(FieldError::new("person_id", "No such person in this organisation."));
    }
    MemError::check(errors)?;
    let (Some(person), Some(signed_on)) = (person, signed_on) else { unreachable!("checked above") };
    let reference = match reference {
        Some(r) => r,
        None => format!("ADH-{:06}", next_number(&mut tx, org, "mandate", 1).await?),
    };
    let debtor = input.debtor_name.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let debtor = debtor.unwrap_or_else(|| display_name(&person));
    let id = service::new_id();
    sqlx::query(
        "INSERT INTO mem_mandates (id, org_id, person_id, reference, iban, iban_hint, bic, debtor_name, signed_on, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&person.id)
    .bind(&reference)
    .bind(key.seal(&iban_context(&id), &iban))
    .bind(iban_hint(&iban))
    .bind(&bic)
    .bind(&debtor)
    .bind(signed_on.to_string())
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await
    .map_err(|e| {
        MemError::Core(CoreError::from(e).on_conflict("reference", "Another mandate has this reference: it must be unique."))
    })?;
    let m = mandate_in(tx.conn(), org, &id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(&mut tx, who, org, "members.mandate.create", "sepa_mandate", &id, None, Some(json!(m))).await?;
    tx.commit().await?;
    Ok(m)
}

pub async fn revoke_mandate(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> MemResult<Mandate> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = mandate_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    sqlx::query("UPDATE mem_mandates SET status = 'revoked' WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let after = mandate_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(&mut tx, who, org, "members.mandate.revoke", "sepa_mandate", id, Some(json!(before)), Some(json!(after)))
        .await?;
    tx.commit().await?;
    Ok(after)
}

// ---------- sealed IBANs ----------

/// The place a mandate's sealed IBAN is bound to: a value copied into
/// another mandate's row does not open.
fn iban_context(mandate_id: &str) -> String {
    format!("mem_mandates.iban:{mandate_id}")
}

/// The IBAN of a mandate from its stored value: sealed, or still in clear
/// when it was written before IBANs were sealed ([`seal_clear_ibans`] has
/// not reached it yet); empty once the person was erased.
fn open_iban(key: &DataKey, mandate_id: &str, stored: &str) -> CoreResult<String> {
    if is_sealed(stored) {
        key.open(&iban_context(mandate_id), stored)
    } else {
        Ok(stored.to_string())
    }
}

/// The first four characters of an IBAN (country, check digits) and its
/// last four: what a masked IBAN shows, kept in clear beside the sealed one.
fn iban_hint(iban: &str) -> Option<String> {
    let c: Vec<char> = iban.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() < 8 {
        return None;
    }
    Some(c[..4].iter().chain(&c[c.len() - 4..]).collect())
}

/// A mandate's hint: its `iban_hint` column, or taken from an IBAN still in
/// clear (rows written before IBANs were sealed have none).
pub(crate) fn iban_hint_of(column: Option<String>, stored: &str) -> Option<String> {
    column.or_else(|| if is_sealed(stored) { None } else { iban_hint(stored) })
}

/// `FR76 •••• •••• 0189` from an IBAN or its hint: enough for the debtor to
/// recognise their account; empty when there is none (an erased person's).
pub fn mask_iban(iban_or_hint: &str) -> String {
    match iban_hint(iban_or_hint) {
        Some(h) => {
            let (head, tail): (String, String) = (h.chars().take(4).collect(), h.chars().skip(4).collect());
            format!("{head} •••• •••• {tail}")
        }
        None => String::new(),
    }
}

/// How many rows [`seal_clear_ibans`] seals per transaction.
const SEAL_BATCH: i64 = 500;

/// Seals the IBANs still in clear: rows written before IBANs were sealed
/// (or by a server of an older version during an upgrade). SQL cannot seal,
/// so the migration that brought sealing only added `iban_hint`; this runs
/// from an hourly instance schedule and does nothing once every IBAN is
/// sealed. Each row is rewritten only if it still holds the value read, so
/// two servers running it at once never seal a value twice (the second
/// finds nothing to change and stops). Returns how many rows it sealed.
pub async fn seal_clear_ibans(db: &Db, key: &DataKey) -> MemResult<u64> {
    let mut sealed = 0;
    loop {
        let rows = sqlx::query(
            "SELECT org_id, id, iban FROM mem_mandates WHERE iban <> '' AND substr(iban, 1, 3) <> $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(shrooms_core::sealed::PREFIX)
        .bind(SEAL_BATCH)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = db.begin().await?;
        let mut now = 0;
        for r in &rows {
            let (org, id, iban): (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            now += sqlx::query(
                "UPDATE mem_mandates SET iban = $1, iban_hint = $2 WHERE org_id = $3 AND id = $4 AND iban = $5",
            )
            .bind(key.seal(&iban_context(&id), &iban))
            .bind(iban_hint(&iban))
            .bind(&org)
            .bind(&id)
            .bind(&iban)
            .execute(tx.conn())
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        sealed += now;
        // Another server sealed this batch first: it is at work, let it finish.
        if now == 0 {
            break;
        }
    }
    if sealed > 0 {
        tracing::info!(sealed, "members: mandates' IBANs sealed");
    }
    Ok(sealed)
}

/// The job of [`seal_clear_ibans`], for the whole instance.
pub const SEAL_IBANS: JobSpec =
    JobSpec { name: "members.seal_ibans", max_attempts: 3, backoff_secs: 300, timeout_secs: 1800, run: seal_job };

pub const SEAL_IBANS_SCHEDULE: &str = "members.seal_ibans";

/// Hourly: after an upgrade, the IBANs in clear are sealed within the hour.
pub fn seal_schedule() -> ScheduleSpec {
    ScheduleSpec::instance(SEAL_IBANS_SCHEDULE, SEAL_IBANS.name, "17 * * * *")
}

fn seal_job(st: AppState, _ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        seal_clear_ibans(&st.db, &st.data_key).await.map_err(|e| anyhow::anyhow!("{}", CoreError::from(e)))?;
        Ok(())
    })
}

// ---------- collection batches ----------

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionItem {
    pub person_id: String,
    /// The membership period to collect; what is left on it by default.
    pub period_id: Option<String>,
    pub amount_cents: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionInput {
    /// The day the bank debits the members (`YYYY-MM-DD`), after today.
    pub collection_date: Option<String>,
    pub items: Vec<CollectionItem>,
    /// Sent again with the same key, returns the batch already made.
    pub request_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Batch {
    pub id: String,
    pub msg_id: String,
    pub collection_date: String,
    pub debit_count: i64,
    pub total_cents: i64,
    pub created_at: String,
    pub debits: Vec<DebitView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DebitView {
    pub id: String,
    pub person_id: String,
    pub mandate_id: String,
    /// The receipt it paid (dues recorded as receipts); null when it paid an invoice.
    pub due_id: Option<String>,
    /// The dues invoice it paid (dues billed by invoice).
    pub invoice_id: Option<String>,
    pub amount_cents: i64,
    pub end_to_end_id: String,
    /// `FRST` or `RCUR`.
    pub sequence: String,
    /// `sent` or `returned`.
    pub status: String,
    pub reason: Option<String>,
}

async fn batch_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<Batch>> {
    let r = sqlx::query(
        "SELECT id, msg_id, collection_date, debit_count, total_cents, created_at FROM mem_debit_batches WHERE org_id = $1 AND id = $2",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let rows = sqlx::query(
        "SELECT id, person_id, mandate_id, due_id, amount_cents, end_to_end_id, sequence, status, reason, invoice_id FROM mem_debits \
         WHERE org_id = $1 AND batch_id = $2 ORDER BY end_to_end_id",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let debits = rows
        .iter()
        .map(|d| {
            Ok(DebitView {
                id: d.try_get(0)?,
                person_id: d.try_get(1)?,
                mandate_id: d.try_get(2)?,
                due_id: d.try_get(3)?,
                amount_cents: d.try_get(4)?,
                end_to_end_id: d.try_get(5)?,
                sequence: d.try_get(6)?,
                status: d.try_get(7)?,
                reason: d.try_get(8)?,
                invoice_id: d.try_get(9)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(Batch {
        id: r.try_get(0)?,
        msg_id: r.try_get(1)?,
        collection_date: r.try_get(2)?,
        debit_count: r.try_get(3)?,
        total_cents: r.try_get(4)?,
        created_at: Timestamp(r.try_get(5)?).rfc3339(),
        debits,
    }))
}

pub async fn batch(db: &Db, cap: &CanRead, id: &str) -> MemResult<Batch> {
    let mut conn = db.pool().acquire().await?;
    batch_in(&mut conn, cap.org(), id).await?.ok_or(MemError::Core(CoreError::NotFound))
}

pub async fn batches(db: &Db, cap: &CanRead) -> MemResult<Vec<Batch>> {
    let rows = sqlx::query(
        "SELECT id, msg_id, collection_date, debit_count, total_cents, created_at FROM mem_debit_batches WHERE org_id = $1 \
         ORDER BY created_at DESC LIMIT 200",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Batch {
                id: r.try_get(0)?,
                msg_id: r.try_get(1)?,
                collection_date: r.try_get(2)?,
                debit_count: r.try_get(3)?,
                total_cents: r.try_get(4)?,
                created_at: Timestamp(r.try_get(5)?).rfc3339(),
                debits: vec![],
            })
        })
        .collect()
}

/// The pain.008.001.08 file of a batch, as it was generated.
pub async fn batch_xml(db: &Db, cap: &CanRead, id: &str) -> MemResult<(String, String)> {
    let r = sqlx::query("SELECT msg_id, xml FROM mem_debit_batches WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(MemError::Core(CoreError::NotFound))?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

fn to_sepa(c: &Creditor) -> SepaCreditor {
    SepaCreditor {
        name: c.name.clone(),
        iban: c.iban.clone(),
        bic: c.bic.clone(),
        ics: c.ics.clone(),
        address: PostalAddress {
            street: c.address.street.clone(),
            postcode: c.address.postcode.clone(),
            city: c.address.city.clone(),
            country: c.address.country.clone(),
        },
    }
}

/// The most debits in one batch.
pub const MAX_DEBITS: usize = 20_000;

/// Makes a collection batch: for each item, the member's active mandate, a
/// due recorded as paid by direct debit on the collection date (receipt
/// and ledger entry), the debit (FRST or RCUR); the pain.008 file; a
/// pre-notification mail to each debtor. All in one durable transaction.
pub async fn create_batch(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    input: CollectionInput,
) -> MemResult<Batch> {
    let org = cap.org();
    let db = &st.db;
    if input.items.is_empty() || input.items.len() > MAX_DEBITS {
        return Err(MemError::field("items", format!("A batch holds 1 to {MAX_DEBITS} debits.")));
    }
    let mut errors = Vec::new();
    // The key becomes the file's MsgId: at most 35 characters of the SEPA set.
    let key = match input.request_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => sepa::check_reference(k).map_err(|m| errors.push(FieldError::new("request_key", m))).ok(),
        None => None,
    };
    let today = service::today(zone);
    let date = match input.collection_date.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errors.push(FieldError::new("collection_date", "Choose the collection date."));
            None
        }
        Some(s) => match crate::domain::parse_date("collection_date", s) {
            Ok(d) if d <= today => {
                errors.push(FieldError::new(
                    "collection_date",
                    "The collection date must be after today (members are told in advance).",
                ));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    MemError::check(std::mem::take(&mut errors))?;
    let Some(date) = date else { unreachable!("checked above") };
    let mut tx = db.begin_durable().await?;
    if let Some(k) = &key {
        let r = sqlx::query("SELECT id FROM mem_debit_batches WHERE org_id = $1 AND msg_id = $2")
            .bind(org.to_string())
            .bind(k)
            .fetch_optional(tx.conn())
            .await?;
        if let Some(r) = r {
            let id: String = r.try_get(0)?;
            return batch_in(tx.conn(), org, &id).await?.ok_or(MemError::Core(CoreError::NotFound));
        }
    }
    let Some(creditor) = creditor_in(tx.conn(), org).await? else {
        return Err(MemError::Precondition(
            "creditor".into(),
            "Fill in the creditor (the organisation's IBAN, BIC and creditor identifier) before collecting.".into(),
        ));
    };
    // Active mandates of the people of the batch, newest first, with their
    // IBAN as stored (opened below for the debits of the batch only).
    let mut mandate_of: HashMap<String, Mandate> = HashMap::new();
    let mut stored_iban: HashMap<String, String> = HashMap::new();
    let rows = sqlx::query(&format!(
        "SELECT {MANDATE_COLS} WHERE m.org_id = $1 AND m.status = 'active' ORDER BY m.signed_on, m.created_at"
    ))
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    for r in &rows {
        let m = mandate_row(r)?;
        stored_iban.insert(m.id.clone(), r.try_get(10)?);
        mandate_of.insert(m.person_id.clone(), m);
    }
    let mut checked = Vec::with_capacity(input.items.len());
    let mut mandates = Vec::with_capacity(input.items.len());
    let mut invoiced: Vec<(InvoicedDebit, Mandate)> = Vec::new();
    let mut pending = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in input.items.iter().enumerate() {
        let prefix = format!("items[{i}].");
        let Some(m) = mandate_of.get(&item.person_id) else {
            errors
                .push(FieldError::new(format!("{prefix}person_id"), "This person has no active direct debit mandate."));
            continue;
        };
        if !seen.insert(item.person_id.clone()) {
            errors.push(FieldError::new(format!("{prefix}person_id"), "This person is twice in the batch."));
            continue;
        }
        // A period billed by invoice: the debit pays what is due on the invoice.
        if let Some(inv) = invoiced_period(&mut tx, org, item).await? {
            match check_invoiced(&mut tx, org, item, &inv, &prefix, &mut errors).await? {
                Some(c) => {
                    invoiced.push((c, m.clone()));
                }
                None => continue,
            }
            continue;
        }
        let due = DueInput {
            person_id: item.person_id.clone(),
            period_id: item.period_id.clone(),
            amount_cents: item.amount_cents,
            method: Method::DirectDebit.as_str().into(),
            paid_on: Some(date.to_string()),
            request_key: None,
        };
        match check_due(&mut tx, org, &due, today, &prefix, &pending).await? {
            Ok(d) => {
                if let Some(p) = &d.period_id {
                    *pending.entry(p.clone()).or_default() += d.amount;
                }
                checked.push(d);
                mandates.push(m.clone());
            }
            Err(e) => errors.extend(e),
        }
        if errors.len() > 200 {
            break;
        }
    }
    MemError::check(errors)?;
    let people: Vec<_> = checked.iter().map(|d| d.person.clone()).collect();
    let dues = if checked.is_empty() { Vec::new() } else { write_dues(&mut tx, who, org, checked).await? };
    let batch_id = service::new_id();
    let n = next_number(&mut tx, org, "debit_batch", 1).await?;
    let msg_id = key.unwrap_or_else(|| format!("SHR-{}-{n:06}", date.to_string().replace('-', "")));
    let now = Timestamp::now();
    let mut rows: Vec<DebitRow> = Vec::with_capacity(dues.len() + invoiced.len());
    for ((due, m), person) in dues.into_iter().zip(&mandates).zip(&people) {
        rows.push(DebitRow {
            due_id: Some(due.id.clone()),
            invoice_id: None,
            payment_id: None,
            person_id: due.person_id.clone(),
            person: person.clone(),
            amount_cents: due.amount_cents,
            end_to_end_id: due.receipt.clone(),
            reference: due.receipt.clone(),
            payer_name: due.payer_name.clone(),
            mandate: m.clone(),
        });
    }
    if !invoiced.is_empty() {
        let first = next_number(&mut tx, org, "debit", invoiced.len() as i64).await?;
        for (i, (c, m)) in invoiced.into_iter().enumerate() {
            let e2e = format!("PRLV-{:06}", first + i as i64);
            let payment_id = shrooms_invoicing::payments::record_collected(
                st,
                &mut tx,
                who,
                org,
                shrooms_invoicing::payments::PaymentInput {
                    customer_id: c.customer_id.clone(),
                    method: "direct_debit".into(),
                    amount_cents: c.amount_cents,
                    received_date: Some(date.to_string()),
                    payer: Some(m.debtor_name.clone()),
                    reference: Some(format!("{e2e} {}", m.reference)),
                    allocations: Some(vec![shrooms_invoicing::payments::AllocationInput {
                        invoice_id: c.invoice_id.clone(),
                        amount_cents: c.amount_cents,
                    }]),
                    ..Default::default()
                },
            )
            .await?;
            rows.push(DebitRow {
                due_id: None,
                invoice_id: Some(c.invoice_id.clone()),
                payment_id: Some(payment_id),
                person_id: c.person.id.to_string(),
                person: c.person.clone(),
                amount_cents: c.amount_cents,
                end_to_end_id: e2e,
                reference: c.number.clone(),
                payer_name: display_name(&c.person),
                mandate: m,
            });
        }
        // The directory follows the invoices' statuses (paid by the debit).
        let ids: Vec<String> = rows.iter().filter(|r| r.invoice_id.is_some()).map(|r| r.person_id.clone()).collect();
        crate::directory::refresh_many(&mut tx, org, ids).await?;
    }
    let mut debits = Vec::with_capacity(rows.len());
    for r in &rows {
        let m = &r.mandate;
        let iban = open_iban(&st.data_key, &m.id, stored_iban.get(&m.id).map_or("", String::as_str))?;
        debits.push(Debit {
            end_to_end_id: r.end_to_end_id.clone(),
            amount_cents: r.amount_cents,
            mandate_reference: m.reference.clone(),
            mandate_signed_on: m.signed_on.clone(),
            first: m.next_sequence == "FRST",
            debtor_name: m.debtor_name.clone(),
            debtor_iban: iban,
            debtor_bic: m.bic.clone(),
            debtor_address: PostalAddress {
                street: r.person.address.street.clone(),
                postcode: r.person.address.postcode.clone(),
                city: r.person.address.city.clone(),
                country: r.person.address.country.clone(),
            },
            remittance: format!("Cotisation {} {}", r.reference, display_name(&r.person)),
        });
    }
    let xml = sepa::pain008(&msg_id, &now.rfc3339(), &date.to_string(), &to_sepa(&creditor), &debits);
    let total: i64 = debits.iter().map(|d| d.amount_cents).sum();
    sqlx::query(
        "INSERT INTO mem_debit_batches (id, org_id, msg_id, collection_date, debit_count, total_cents, xml, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&batch_id)
    .bind(org.to_string())
    .bind(&msg_id)
    .bind(date.to_string())
    .bind(debits.len() as i64)
    .bind(total)
    .bind(&xml)
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    let per = if tx.backend() == shrooms_core::db::Backend::Sqlite { 12 } else { 250 };
    for chunk in rows.chunks(per) {
        let mut sql = String::from(
            "INSERT INTO mem_debits (id, org_id, batch_id, mandate_id, due_id, invoice_id, payment_id, person_id, \
             amount_cents, end_to_end_id, sequence, status, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 12;
            if i > 0 {
                sql.push_str(", ");
            }
            let marks: Vec<String> = (1..=12).map(|k| format!("${}", b + k)).collect();
            sql.push_str(&format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'sent', {})",
                marks[0],
                marks[1],
                marks[2],
                marks[3],
                marks[4],
                marks[5],
                marks[6],
                marks[7],
                marks[8],
                marks[9],
                marks[10],
                marks[11]
            ));
        }
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(service::new_id())
                .bind(org.to_string())
                .bind(&batch_id)
                .bind(&r.mandate.id)
                .bind(r.due_id.clone())
                .bind(r.invoice_id.clone())
                .bind(r.payment_id.clone())
                .bind(&r.person_id)
                .bind(r.amount_cents)
                .bind(&r.end_to_end_id)
                .bind(if r.mandate.next_sequence == "FRST" { "FRST" } else { "RCUR" })
                .bind(now.0);
        }
        q.execute(tx.conn()).await?;
    }
    // Pre-notifications: composed from the templates (the instance's name read once).
    let lang = shrooms_core::outbox::language_for(db, None).await?;
    let instance = shrooms_core::instance::load(db).await?.name;
    for r in &rows {
        let Some(to) = &r.person.email else { continue };
        let mail = st
            .templates
            .render_mail(
                "members_debit_notice",
                &lang,
                &instance,
                json!({"name": r.payer_name, "amount": crate::donations::french_amount(r.amount_cents),
                    "date": date.to_string(), "mandate": r.mandate.reference, "ics": creditor.ics, "creditor": creditor.name, "receipt": r.reference}),
            )
            .map_err(|e| MemError::Core(CoreError::Internal(format!("mail template: {e:#}"))))?;
        shrooms_core::outbox::enqueue(&mut tx, Some(org), "members_debit_notice", to, &mail).await?;
    }
    record(
        &mut tx,
        who,
        org,
        "members.sepa.batch",
        "sepa_batch",
        &batch_id,
        None,
        Some(
            json!({"msg_id": msg_id, "collection_date": date.to_string(), "count": debits.len(), "total_cents": total,
            "xml_sha256": shrooms_core::crypto::sha256_hex(xml.as_bytes())}),
        ),
    )
    .await?;
    let b = batch_in(tx.conn(), org, &batch_id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    tx.commit().await?;
    Ok(b)
}

// ---------- returns ----------

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnsInput {
    /// The file's text: a pain.002 status report, a camt.054 notification,
    /// or CSV lines `end_to_end_id;reason`.
    pub content: String,
    /// The day the bank returned the debits (`YYYY-MM-DD`); today when left out.
    pub returned_on: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReturnsReport {
    /// `pain.002`, `camt.054` or `csv`.
    pub format: String,
    /// Debits marked returned now: their dues are unpaid, their entries reversed.
    pub returned: Vec<String>,
    /// Debits already marked returned by an earlier import.
    pub already: Vec<String>,
    /// References that match no debit of this organisation.
    pub unknown: Vec<String>,
}

/// Imports returned or rejected debits: each matching debit is marked
/// returned with its reason, its due becomes unpaid and the ledger gets the
/// reversing entry (dues account debited, bank credited) on the return date.
/// Importing the same file again changes nothing.
pub async fn import_returns(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    input: ReturnsInput,
) -> MemResult<ReturnsReport> {
    let org = cap.org();
    let (format, returns) = sepa::read_returns(&input.content).map_err(MemError::Invalid)?;
    if returns.is_empty() {
        return Err(MemError::field("content", "This file holds no returned or rejected debit."));
    }
    let on = match input.returned_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => crate::domain::parse_date("returned_on", s).map_err(|e| MemError::Invalid(vec![e]))?,
        None => service::today(zone),
    };
    let mut tx = st.db.begin_durable().await?;
    let s = settings_in(tx.conn(), org).await?;
    let mut report = ReturnsReport { format: format.into(), returned: vec![], already: vec![], unknown: vec![] };
    for r in returns {
        let row = sqlx::query(
            "SELECT d.id, d.status, d.due_id, d.amount_cents, d.person_id, u.payer_name, d.payment_id FROM mem_debits d \
             LEFT JOIN mem_dues u ON u.id = d.due_id WHERE d.org_id = $1 AND d.end_to_end_id = $2",
        )
        .bind(org.to_string())
        .bind(&r.end_to_end_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            report.unknown.push(r.end_to_end_id);
            continue;
        };
        let (id, status): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if status == "returned" {
            report.already.push(r.end_to_end_id);
            continue;
        }
        let day = Day::parse(&on.to_string()).map_err(|m| MemError::field("returned_on", m))?;
        let Some(due_id) = row.try_get::<Option<String>, _>(2)? else {
            // A debit that paid a dues invoice: its payment is cancelled in
            // invoicing (entry reversed on the return day, the invoice open
            // again, the member's dues unpaid).
            let payment: String = row.try_get::<Option<String>, _>(6)?.unwrap_or_default();
            shrooms_invoicing::payments::cancel_in(st, &mut tx, who, org, &payment, Some(day)).await?;
            sqlx::query(
                "UPDATE mem_debits SET status = 'returned', reason = $1, returned_on = $2 \
                 WHERE org_id = $3 AND id = $4 AND status = 'sent'",
            )
            .bind(&r.reason)
            .bind(on.to_string())
            .bind(org.to_string())
            .bind(&id)
            .execute(tx.conn())
            .await?;
            crate::directory::refresh(&mut tx, org, &row.try_get::<String, _>(4)?).await?;
            record(
                &mut tx,
                who,
                org,
                "members.sepa.returned",
                "sepa_debit",
                &id,
                Some(json!({"status": "sent"})),
                Some(json!({"status": "returned", "debit": r.end_to_end_id, "reason": r.reason, "payment": payment})),
            )
            .await?;
            report.returned.push(r.end_to_end_id);
            continue;
        };
        let amount: i64 = row.try_get(3)?;
        let payer: String = row.try_get(5)?;
        let label = format!("Prélèvement rejeté {} {payer} ({})", r.end_to_end_id, r.reason);
        let line = |account: String, debit: i64, credit: i64| Line {
            account,
            aux: String::new(),
            aux_label: String::new(),
            label: label.clone(),
            debit: Amount(debit),
            credit: Amount(credit),
            currency_amount: None,
            currency: None,
            tags: vec![],
        };
        let entry = NewEntry {
            journal: "BQ".into(),
            date: day,
            label: label.clone(),
            piece_ref: r.end_to_end_id.clone(),
            piece_date: None,
            lines: vec![line(s.dues_account.clone(), amount, 0), line(s.bank_account.clone(), 0, amount)],
        };
        let posted = post_entry(&mut tx, who, org, MODULE, entry, true).await?;
        sqlx::query(
            "UPDATE mem_debits SET status = 'returned', reason = $1, returned_on = $2, reversal_entry_id = $3 \
             WHERE org_id = $4 AND id = $5 AND status = 'sent'",
        )
        .bind(&r.reason)
        .bind(on.to_string())
        .bind(&posted.id)
        .bind(org.to_string())
        .bind(&id)
        .execute(tx.conn())
        .await?;
        sqlx::query("UPDATE mem_dues SET status = 'unpaid' WHERE org_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(&due_id)
            .execute(tx.conn())
            .await?;
        // mem-dir: the payer's directory row (the period is no longer paid).
        crate::directory::refresh(&mut tx, org, &row.try_get::<String, _>(4)?).await?;
        record(
            &mut tx,
            who,
            org,
            "members.sepa.returned",
            "due",
            &due_id,
            Some(json!({"status": "paid"})),
            Some(json!({"status": "unpaid", "debit": r.end_to_end_id, "reason": r.reason, "reversal": posted.id})),
        )
        .await?;
        report.returned.push(r.end_to_end_id);
    }
    tx.commit().await?;
    Ok(report)
}

// ---------- debits of dues billed by invoice ----------

/// A debit that pays a dues invoice (the organisation bills dues by invoice).
struct InvoicedDebit {
    invoice_id: String,
    customer_id: String,
    number: String,
    person: service::MemberPerson,
    amount_cents: i64,
}

/// One line of a batch, from a receipt or from an invoice.
struct DebitRow {
    due_id: Option<String>,
    invoice_id: Option<String>,
    payment_id: Option<String>,
    person_id: String,
    person: service::MemberPerson,
    amount_cents: i64,
    end_to_end_id: String,
    /// What the member reads: the receipt or the invoice number.
    reference: String,
    payer_name: String,
    mandate: Mandate,
}

/// The invoice of the item's period, when the period was billed by invoice.
async fn invoiced_period(
    tx: &mut shrooms_core::db::Tx,
    org: OrgId,
    item: &CollectionItem,
) -> MemResult<Option<String>> {
    let Some(pid) = item.period_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let r = sqlx::query("SELECT invoice_id FROM mem_periods WHERE org_id = $1 AND id = $2 AND person_id = $3")
        .bind(org.to_string())
        .bind(pid)
        .bind(item.person_id.trim())
        .fetch_optional(tx.conn())
        .await?;
    Ok(match r {
        Some(r) => r.try_get::<Option<String>, _>(0)?,
        None => None,
    })
}

/// Checks a debit of an invoiced period: the invoice is open and the amount
/// (what is left on it by default) does not exceed what is due.
async fn check_invoiced(
    tx: &mut shrooms_core::db::Tx,
    org: OrgId,
    item: &CollectionItem,
    invoice_id: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> MemResult<Option<InvoicedDebit>> {
    let r = sqlx::query(
        "SELECT customer_id, COALESCE(number, ''), gross_cents - paid_cents - credited_cents, status FROM inv_documents \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org.to_string())
    .bind(invoice_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = r else {
        errors.push(FieldError::new(format!("{prefix}period_id"), "The invoice of this period does not exist."));
        return Ok(None);
    };
    let due: i64 = r.try_get(2)?;
    let status: String = r.try_get(3)?;
    if due <= 0 || !matches!(status.as_str(), "validated" | "sent" | "partially_paid") {
        errors.push(FieldError::new(
            format!("{prefix}period_id"),
            "The dues invoice of this period is already paid or cancelled.",
        ));
        return Ok(None);
    }
    let amount = item.amount_cents.unwrap_or(due);
    if amount <= 0 || amount > due {
        errors.push(FieldError::new(
            format!("{prefix}amount_cents"),
            format!("Between 0.01 and {} is left to pay on this period's invoice.", crate::domain::cents_text(due)),
        ));
        return Ok(None);
    }
    let Some(person) = person_in(tx.conn(), org, item.person_id.trim()).await? else {
        errors.push(FieldError::new(format!("{prefix}person_id"), "No such member."));
        return Ok(None);
    };
    Ok(Some(InvoicedDebit {
        invoice_id: invoice_id.to_string(),
        customer_id: r.try_get(0)?,
        number: r.try_get(1)?,
        person,
        amount_cents: amount,
    }))
}
