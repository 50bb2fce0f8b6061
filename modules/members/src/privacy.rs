//! Members' part of a person's personal data ([`shrooms_core::privacy`]):
//! export, erasure, and the retention period after which former members
//! are erased by a daily job.
//!
//! At erasure (see docs/MEMBERS.md, "Personal data"):
//! - the profile's address and card token are emptied, the household link
//!   removed (a household no one else belongs to is pseudonymised);
//! - membership periods keep their dates, types and fees (statistics), the
//!   notes of their events are emptied;
//! - dues keep their receipt number, amount, method and date, the payer's
//!   name becomes the pseudonym (the ledger entry is the accounting record);
//! - donations not yet receipted take the pseudonym; **tax receipts issued**
//!   and the donations they cover are kept unchanged: the organisation must
//!   be able to show the counterfoil of every receipt to the tax
//!   administration (livre des procédures fiscales, art. L102 E: 6 years);
//!   the daily retention job pseudonymises them once those years have
//!   passed (see [`pseudonymise_old_receipts`]), erased donor or not;
//! - mandates are revoked, their IBAN and BIC removed, the debtor's name
//!   pseudonymised; in the stored pain.008 files the person's debtor block
//!   and IBAN are replaced (amounts, references and dates stay).
//!
//! The retention job also pseudonymises, for every donor, member or not,
//! the tax receipts issued more than [`TAX_RECEIPT_KEEPING_YEARS`] years
//! before the current year: their numbers, dates and amounts stay, so the
//! yearly totals and the continuous numbering still add up.
//!
//! Something still binds a member when a period covers today or starts
//! later and is not closed (record the resignation first), or when a direct
//! debit is yet to be collected.

use crate::debits::iban_hint_of;
use crate::donations::{receipt_reference, Donor};
use crate::error::{MemError, MemResult};
use crate::service::{self, MODULE};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::db::Tx;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::privacy::{
    self, mask_iban, rows, Col, Erasure, ErasureNote, Outcome, PersonalData, PrivacyFuture, Section, Subject,
};
use shrooms_core::web::AppState;
use shrooms_core::{CoreError, CoreResult, Db};
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

pub struct MembersPersonalData;

impl PersonalData for MembersPersonalData {
    fn export<'a>(&'a self, db: &'a Db, s: &'a Subject) -> PrivacyFuture<'a, Vec<Section>> {
        Box::pin(async move {
            let org = s.org.to_string();
            let b = [org.as_str(), s.person_id.as_str()];
            use Col::*;
            let profile = rows(
                db,
                "SELECT street, postcode, city, country, household_role, updated_at FROM mem_profiles WHERE org_id = $1 AND person_id = $2",
                &b,
                &[("street", Text), ("postcode", Text), ("city", Text), ("country", Text), ("household_role", OptText), ("updated_at", Time)],
            )
            .await?;
            let household = rows(
                db,
                "SELECT h.kind, h.name, h.email, h.street, h.postcode, h.city, h.country FROM mem_households h \
                 JOIN mem_profiles p ON p.org_id = h.org_id AND p.household_id = h.id WHERE p.org_id = $1 AND p.person_id = $2",
                &b,
                &[("kind", Text), ("name", Text), ("email", OptText), ("street", Text), ("postcode", Text), ("city", Text), ("country", Text)],
            )
            .await?;
            let periods = rows(
                db,
                "SELECT t.name, p.origin, p.starts_on, p.ends_on, p.fee_cents, p.tier, p.closed_on, p.closed_reason FROM mem_periods p \
                 JOIN mem_types t ON t.id = p.type_id WHERE p.org_id = $1 AND p.person_id = $2 ORDER BY p.starts_on",
                &b,
                &[("type", Text), ("origin", Text), ("starts_on", Text), ("ends_on", OptText), ("fee_cents", Int), ("tier", OptText), ("closed_on", OptText), ("closed_reason", OptText)],
            )
            .await?;
            let events = rows(
                db,
                "SELECT kind, happened_on, note FROM mem_events WHERE org_id = $1 AND person_id = $2 ORDER BY happened_on, created_at",
                &b,
                &[("kind", Text), ("happened_on", Text), ("note", Text)],
            )
            .await?;
            let dues = rows(
                db,
                "SELECT receipt_number, payer_name, amount_cents, method, paid_on, status FROM mem_dues WHERE org_id = $1 AND person_id = $2 ORDER BY receipt_number",
                &b,
                &[("receipt_number", Int), ("payer_name", Text), ("amount_cents", Int), ("method", Text), ("paid_on", Text), ("status", Text)],
            )
            .await?;
            let donations = rows(
                db,
                "SELECT donor_kind, donor_name, siren, amount_cents, received_on, form, nature, method, recurring FROM mem_donations \
                 WHERE org_id = $1 AND person_id = $2 ORDER BY received_on",
                &b,
                &[("donor_kind", Text), ("donor_name", Text), ("siren", OptText), ("amount_cents", Int), ("received_on", Text), ("form", Text), ("nature", Text), ("method", Text), ("recurring", Bool)],
            )
            .await?;
            let receipts = rows(
                db,
                "SELECT number, year, donor_kind, donor, amount_cents, issued_on, emailed_to FROM mem_tax_receipts WHERE org_id = $1 AND person_id = $2 ORDER BY number",
                &b,
                &[("number", Int), ("year", Int), ("donor_kind", Text), ("donor", Text), ("amount_cents", Int), ("issued_on", Text), ("emailed_to", OptText)],
            )
            .await?;
            // Masked from the hint kept beside the sealed IBAN: no key needed.
            let mut mandates = rows(
                db,
                "SELECT reference, iban, iban_hint, bic, debtor_name, signed_on, status FROM mem_mandates WHERE org_id = $1 AND person_id = $2 ORDER BY created_at",
                &b,
                &[("reference", Text), ("iban", Text), ("iban_hint", OptText), ("bic", OptText), ("debtor_name", Text), ("signed_on", Text), ("status", Text)],
            )
            .await?;
            for m in &mut mandates {
                let hint =
                    iban_hint_of(m["iban_hint"].as_str().map(String::from), m["iban"].as_str().unwrap_or_default());
                m["iban"] = json!(mask_iban(hint.as_deref().unwrap_or_default()));
                if let Some(o) = m.as_object_mut() {
                    o.remove("iban_hint");
                }
            }
            let debits = rows(
                db,
                "SELECT b.collection_date, d.amount_cents, d.end_to_end_id, d.sequence, d.status, d.reason, d.returned_on FROM mem_debits d \
                 JOIN mem_debit_batches b ON b.id = d.batch_id WHERE d.org_id = $1 AND d.person_id = $2 ORDER BY b.collection_date",
                &b,
                &[("collection_date", Text), ("amount_cents", Int), ("end_to_end_id", Text), ("sequence", Text), ("status", Text), ("reason", OptText), ("returned_on", OptText)],
            )
            .await?;
            let gift_plans = rows(
                db,
                "SELECT amount_cents, frequency, method, first_on, ends_on, next_on, status FROM mem_gift_plans \
                 WHERE org_id = $1 AND person_id = $2 ORDER BY first_on",
                &b,
                &[
                    ("amount_cents", Int),
                    ("frequency", Text),
                    ("method", Text),
                    ("first_on", Text),
                    ("ends_on", OptText),
                    ("next_on", Text),
                    ("status", Text),
                ],
            )
            .await?;
            Ok(vec![
                Section::new(MODULE, "profile", profile),
                Section::new(MODULE, "household", household),
                Section::new(MODULE, "periods", periods),
                Section::new(MODULE, "events", events),
                Section::new(MODULE, "dues", dues),
                Section::new(MODULE, "donations", donations),
                Section::new(MODULE, "gift_plans", gift_plans),
                Section::new(MODULE, "tax_receipts", receipts),
                Section::new(MODULE, "mandates", mandates),
                Section::new(MODULE, "debits", debits),
            ])
        })
    }

    fn obligations<'a>(&'a self, tx: &'a mut Tx, s: &'a Subject) -> PrivacyFuture<'a, Vec<String>> {
        Box::pin(async move {
            let today = service::org_today(tx.conn(), s.org).await?.to_string();
            let mut out = Vec::new();
            let open = sqlx::query(
                "SELECT t.name, p.starts_on, p.ends_on FROM mem_periods p JOIN mem_types t ON t.id = p.type_id \
                 WHERE p.org_id = $1 AND p.person_id = $2 AND p.closed_on IS NULL AND (p.ends_on IS NULL OR p.ends_on >= $3) ORDER BY p.starts_on",
            )
            .bind(s.org.to_string())
            .bind(&s.person_id)
            .bind(&today)
            .fetch_all(tx.conn())
            .await?;
            for r in &open {
                let (name, from, to): (String, String, Option<String>) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                out.push(format!(
                    "Their membership \"{name}\" ({from} – {}) is current: record their resignation first.",
                    to.as_deref().unwrap_or("lifetime")
                ));
            }
            let pending = sqlx::query(
                "SELECT b.collection_date, d.amount_cents FROM mem_debits d JOIN mem_debit_batches b ON b.id = d.batch_id \
                 WHERE d.org_id = $1 AND d.person_id = $2 AND d.status = 'sent' AND b.collection_date >= $3",
            )
            .bind(s.org.to_string())
            .bind(&s.person_id)
            .bind(&today)
            .fetch_all(tx.conn())
            .await?;
            for r in &pending {
                let (day, cents): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                out.push(format!(
                    "A direct debit of {} is to be collected on {day}.",
                    crate::domain::cents_text(cents)
                ));
            }
            Ok(out)
        })
    }

    fn erase<'a>(&'a self, tx: &'a mut Tx, e: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>> {
        Box::pin(async move { erase(tx, e).await })
    }
}

async fn exec(tx: &mut Tx, sql: &str, binds: &[&str]) -> CoreResult<i64> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.execute(tx.conn()).await?.rows_affected() as i64)
}

async fn erase(tx: &mut Tx, e: &Erasure) -> CoreResult<Vec<ErasureNote>> {
    let s = &e.subject;
    let org = s.org.to_string();
    let (o, p, ps) = (org.as_str(), s.person_id.as_str(), e.pseudonym.as_str());
    let mut notes = Vec::new();

    let household: Option<String> =
        sqlx::query("SELECT household_id FROM mem_profiles WHERE org_id = $1 AND person_id = $2")
            .bind(o)
            .bind(p)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .flatten();
    let n = exec(
        tx,
        "UPDATE mem_profiles SET street = '', postcode = '', city = '', country = '', household_id = NULL, household_role = NULL, \
         card_token = NULL WHERE org_id = $1 AND person_id = $2",
        &[o, p],
    )
    .await?;
    notes.push(ErasureNote::new(
        MODULE,
        "profile",
        Outcome::Pseudonymised,
        n,
        "Postal address emptied, household link and membership card removed.",
    ));
    if let Some(h) = household {
        let others: i64 = sqlx::query("SELECT COUNT(*) FROM mem_profiles WHERE org_id = $1 AND household_id = $2")
            .bind(o)
            .bind(&h)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
        if others == 0 {
            let n = exec(
                tx,
                "UPDATE mem_households SET name = $1, email = NULL, street = '', postcode = '', city = '', country = '' WHERE org_id = $2 AND id = $3",
                &[ps, o, &h],
            )
            .await?;
            notes.push(ErasureNote::new(
                MODULE,
                "household",
                Outcome::Pseudonymised,
                n,
                "Their household had no one else: its name, e-mail and address replaced.",
            ));
        }
    }
    let n = exec(tx, "UPDATE mem_events SET note = '' WHERE org_id = $1 AND person_id = $2", &[o, p]).await?;
    notes.push(ErasureNote::new(
        MODULE,
        "periods",
        Outcome::Kept,
        n,
        "Membership periods keep their type, dates and fee (statistics, the organisation's history); notes of their events emptied.",
    ));
    let n = exec(tx, "UPDATE mem_dues SET payer_name = $1 WHERE org_id = $2 AND person_id = $3", &[ps, o, p]).await?;
    notes.push(ErasureNote::new(
        MODULE,
        "dues",
        Outcome::Pseudonymised,
        n,
        "Receipts keep their number, amount, method and date (accounting records, kept 10 years); the payer's name is the pseudonym.",
    ));
    let n = exec(
        tx,
        "UPDATE mem_donations SET donor_name = $1 WHERE org_id = $2 AND person_id = $3 AND receipt_id IS NULL",
        &[ps, o, p],
    )
    .await?;
    notes.push(ErasureNote::new(
        MODULE,
        "donations",
        Outcome::Pseudonymised,
        n,
        "Donations without a tax receipt keep their amount and date; the donor's name is the pseudonym.",
    ));
    // A recurring gift of someone erased is no longer expected.
    let n = exec(tx, "DELETE FROM mem_gift_plans WHERE org_id = $1 AND person_id = $2", &[o, p]).await?;
    notes.push(ErasureNote::new(
        MODULE,
        "gift_plans",
        Outcome::Deleted,
        n,
        "Recurring gift plans are removed (the gifts received stay as donations, above).",
    ));
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM mem_tax_receipts WHERE org_id = $1 AND person_id = $2")
        .bind(o)
        .bind(p)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    notes.push(ErasureNote::new(
        MODULE,
        "tax_receipts",
        Outcome::Kept,
        n,
        "Tax receipts issued and the donations they cover are kept unchanged: their counterfoils must be shown to the tax administration for 6 years (LPF art. L102 E); the daily retention job pseudonymises them after that.",
    ));

    // Stored collection files: the person's debtor block and IBAN.
    let debits = sqlx::query(
        "SELECT d.batch_id, d.end_to_end_id, m.iban_hint, m.iban FROM mem_debits d JOIN mem_mandates m ON m.id = d.mandate_id \
         WHERE d.org_id = $1 AND d.person_id = $2",
    )
    .bind(o)
    .bind(p)
    .fetch_all(tx.conn())
    .await?;
    for r in &debits {
        let (batch, e2e): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let hint = iban_hint_of(r.try_get(2)?, &r.try_get::<String, _>(3)?);
        let xml: String = sqlx::query("SELECT xml FROM mem_debit_batches WHERE org_id = $1 AND id = $2")
            .bind(o)
            .bind(&batch)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
        let redacted = redact_debtor(
            &xml,
            &e2e,
            &crate::sepa::sepa_text(ps, 140),
            &mask_iban(hint.as_deref().unwrap_or_default()),
        );
        if redacted != xml {
            exec(tx, "UPDATE mem_debit_batches SET xml = $1 WHERE org_id = $2 AND id = $3", &[&redacted, o, &batch])
                .await?;
        }
    }
    let n = exec(
        tx,
        "UPDATE mem_mandates SET iban = '', iban_hint = NULL, bic = NULL, debtor_name = $1, status = 'revoked' WHERE org_id = $2 AND person_id = $3",
        &[ps, o, p],
    )
    .await?;
    notes.push(ErasureNote::new(
        MODULE,
        "mandates",
        Outcome::Pseudonymised,
        n,
        "Mandates revoked; IBAN and BIC removed, the debtor's name is the pseudonym, also in the stored collection files (amounts, references and dates stay).",
    ));
    Ok(notes)
}

/// Replaces, in a pain.008 file, the debtor block and the IBAN of the
/// transaction with this end-to-end id.
pub fn redact_debtor(xml: &str, end_to_end_id: &str, name: &str, iban: &str) -> String {
    let marker = format!("<EndToEndId>{end_to_end_id}</EndToEndId>");
    let Some(start) = xml.find(&marker) else { return xml.to_string() };
    let Some(end) = xml[start..].find("</DrctDbtTxInf>").map(|i| start + i) else { return xml.to_string() };
    let mut tx = xml[start..end].to_string();
    if let (Some(a), Some(b)) = (tx.find("<Dbtr>"), tx.find("</Dbtr>")) {
        tx.replace_range(a..b + "</Dbtr>".len(), &format!("<Dbtr><Nm>{name}</Nm></Dbtr>"));
    }
    if let (Some(a), Some(b)) = (tx.find("<IBAN>"), tx.find("</IBAN>")) {
        tx.replace_range(a..b + "</IBAN>".len(), &format!("<IBAN>{iban}</IBAN>"));
    }
    format!("{}{}{}", &xml[..start], tx, &xml[end..])
}

// ---------- retention ----------

/// The retention period of an organisation: former members are erased once
/// this many months have passed since their last membership ended; `None`
/// keeps them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// 1 to 600 months; null (or absent) switches the retention off.
    pub months: Option<i64>,
}

pub async fn retention(db: &Db, cap: &CanRead) -> MemResult<Retention> {
    let months: Option<i64> = sqlx::query("SELECT months FROM mem_retention WHERE org_id = $1")
        .bind(cap.org().to_string())
        .fetch_optional(db.pool())
        .await
        .map_err(CoreError::from)?
        .map(|r| r.try_get::<Option<i64>, _>(0))
        .transpose()
        .map_err(CoreError::from)?
        .flatten();
    Ok(Retention { months })
}

pub async fn set_retention(db: &Db, who: &Who, cap: &CanAdmin, input: Retention) -> MemResult<Retention> {
    if let Some(m) = input.months {
        if !(1..=600).contains(&m) {
            return Err(CoreError::Validation(vec![FieldError::new(
                "months",
                "Give a number of months between 1 and 600, or leave it empty to keep former members.",
            )])
            .into());
        }
    }
    let org = cap.as_write().org();
    let before = retention(db, &cap.as_write().as_read()).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM mem_retention WHERE org_id = $1")
        .bind(org.to_string())
        .execute(tx.conn())
        .await
        .map_err(CoreError::from)?;
    sqlx::query("INSERT INTO mem_retention (org_id, months, updated_at) VALUES ($1, $2, $3)")
        .bind(org.to_string())
        .bind(input.months)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await
        .map_err(CoreError::from)?;
    service::record(
        &mut tx,
        who,
        org,
        "members.retention.update",
        "members_retention",
        &org.to_string(),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&input).ok(),
    )
    .await?;
    tx.commit().await?;
    // The daily schedule is created switched off. Once the organisation has
    // chosen, it runs whatever the choice: without a period it erases no
    // one but still pseudonymises the tax receipts past their six years.
    shrooms_core::schedules::switch_org(db, who, cap, RETENTION_SCHEDULE, true).await?;
    Ok(input)
}

/// The per-organisation daily schedule of the retention job.
pub const RETENTION_SCHEDULE: &str = "members.retention";

/// What a retention run did: the pseudonyms of the people erased (never
/// their names), how many former members it left because something still
/// binds them, and the tax receipts it pseudonymised.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RetentionRun {
    /// Null when the retention is off: no former member was erased.
    pub months: Option<i64>,
    /// Memberships that ended before this day are past the delay.
    pub ended_before: Option<String>,
    pub erased: Vec<String>,
    /// Former members past the delay who still have a tie (an account with
    /// access, an unpaid invoice, an office in a club…).
    pub kept: i64,
    /// Tax receipts past their six years, done whether the retention of
    /// former members is on or off.
    pub receipts: ReceiptRetention,
}

/// How long a tax receipt keeps its donor's identity, in years. The
/// organisation must keep the duplicate (souche) of every receipt it issued,
/// and what it needs to check it, for the tax administration for six years
/// (livre des procédures fiscales, art. L102 E), counted here from the end
/// of the year of issue: never shorter than the law's count. A legal
/// minimum: a constant, never a setting, so no one can shorten it.
pub const TAX_RECEIPT_KEEPING_YEARS: i16 = 6;

/// Receipts pseudonymised per transaction: a first run on years of
/// receipts does not hold one long write transaction.
const RECEIPTS_PER_TX: i64 = 200;

/// Tax receipts issued before this day have kept their donor's identity
/// for [`TAX_RECEIPT_KEEPING_YEARS`] full years after their year of issue.
pub fn receipts_kept_until(today: Date) -> String {
    format!("{:04}-01-01", today.year() - TAX_RECEIPT_KEEPING_YEARS)
}

/// The tax receipts part of a retention run.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct ReceiptRetention {
    /// Receipts issued before this day are past their six years.
    pub issued_before: String,
    /// Receipts pseudonymised by this run (with the gifts they cover).
    pub pseudonymised: i64,
    /// The pseudonyms given to their donors, one per donor (never names).
    pub pseudonyms: Vec<String>,
}

/// Pseudonymises the tax receipts issued before [`receipts_kept_until`]:
/// on the receipt, the donor's name becomes a pseudonym (the person's
/// erasure pseudonym if they were erased), their SIREN, address and e-mail
/// are removed, the mailed download link stops working and the receipt is
/// no longer tied to the person; the gifts it covers lose the name, SIREN
/// and tie too. Number, year, date of issue, amount and kind of the
/// receipt, and date, amount, form, nature and method of each gift stay:
/// the yearly totals and the continuous numbering still add up, and the
/// PDF, drawn from these rows, shows the pseudonym. The ledger entries are
/// the accounting record and are left to the books.
///
/// A receipt no longer tied to a person (`person_id` empty) is done: run
/// again, it changes nothing. Each batch of receipts is one transaction
/// with its audit entry (references, count and pseudonyms, never names).
pub async fn pseudonymise_old_receipts(db: &Db, who: &Who, org: OrgId, today: Date) -> MemResult<ReceiptRetention> {
    let before = receipts_kept_until(today);
    let mut out = ReceiptRetention { issued_before: before.clone(), pseudonymised: 0, pseudonyms: vec![] };
    let mut given: HashMap<String, String> = HashMap::new();
    loop {
        let mut tx = db.begin_durable().await?;
        let rows = sqlx::query(&format!(
            "SELECT id, number, year, person_id, donor FROM mem_tax_receipts \
             WHERE org_id = $1 AND person_id <> '' AND issued_on < $2 ORDER BY number LIMIT {RECEIPTS_PER_TX}"
        ))
        .bind(org.to_string())
        .bind(&before)
        .fetch_all(tx.conn())
        .await
        .map_err(CoreError::from)?;
        let mut references = Vec::new();
        let mut pseudonyms: Vec<String> = Vec::new();
        for r in &rows {
            let (id, number, year, person, donor): (String, i64, i64, String, String) = (
                r.try_get(0).map_err(CoreError::from)?,
                r.try_get(1).map_err(CoreError::from)?,
                r.try_get(2).map_err(CoreError::from)?,
                r.try_get(3).map_err(CoreError::from)?,
                r.try_get(4).map_err(CoreError::from)?,
            );
            let pseudonym = match given.get(&person) {
                Some(p) => p.clone(),
                None => {
                    let erased: Option<String> =
                        sqlx::query("SELECT pseudonym FROM privacy_erasures WHERE org_id = $1 AND person_id = $2")
                            .bind(org.to_string())
                            .bind(&person)
                            .fetch_optional(tx.conn())
                            .await
                            .map_err(CoreError::from)?
                            .map(|r| r.try_get(0))
                            .transpose()
                            .map_err(CoreError::from)?;
                    let p = erased.unwrap_or_else(privacy::new_pseudonym);
                    given.insert(person.clone(), p.clone());
                    p
                }
            };
            // Only the company's legal form is kept from the stored donor: a
            // donor that does not read is replaced all the same, or its
            // personal data would outlive their period.
            let legal_form = serde_json::from_str::<serde_json::Value>(&donor)
                .ok()
                .and_then(|v| v.get("legal_form").and_then(|f| f.as_str()).map(String::from));
            let donor = Donor {
                name: pseudonym.clone(),
                siren: None,
                legal_form,
                address: service::Address::default(),
                email: None,
            };
            let token = shrooms_core::crypto::token_hash(&shrooms_core::crypto::random_token());
            // The condition makes a concurrent run's second claim change nothing.
            let n = sqlx::query(
                "UPDATE mem_tax_receipts SET person_id = '', donor = $1, emailed_to = NULL, token = $2 \
                 WHERE org_id = $3 AND id = $4 AND person_id <> ''",
            )
            .bind(serde_json::to_string(&donor).map_err(|e| CoreError::Internal(e.to_string()))?)
            .bind(token)
            .bind(org.to_string())
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(CoreError::from)?
            .rows_affected();
            if n == 0 {
                continue;
            }
            exec(
                &mut tx,
                "UPDATE mem_donations SET person_id = '', donor_name = $1, siren = NULL WHERE org_id = $2 AND receipt_id = $3",
                &[&pseudonym, &org.to_string(), &id],
            )
            .await?;
            references.push(receipt_reference(year, number));
            if !pseudonyms.contains(&pseudonym) {
                pseudonyms.push(pseudonym.clone());
            }
            if !out.pseudonyms.contains(&pseudonym) {
                out.pseudonyms.push(pseudonym);
            }
        }
        if !references.is_empty() {
            service::record(
                &mut tx,
                who,
                org,
                "members.tax_receipt.pseudonymise",
                "members_retention",
                &org.to_string(),
                None,
                Some(json!({"issued_before": before, "count": references.len(), "receipts": references,
                    "pseudonyms": pseudonyms})),
            )
            .await?;
        }
        tx.commit().await?;
        out.pseudonymised += references.len() as i64;
        if (rows.len() as i64) < RECEIPTS_PER_TX {
            return Ok(out);
        }
    }
}

pub const RETENTION: JobSpec =
    JobSpec { name: "members.retention", max_attempts: 3, backoff_secs: 300, timeout_secs: 600, run: retention_job };

fn retention_job(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let Some(org) = ctx.org else { return Ok(()) };
        run_retention(&st, org, &Who::system(RETENTION.name)).await?;
        Ok(())
    })
}

/// Erases the former members past the organisation's retention period, one
/// transaction each; records the run in the audit log when it erased or
/// kept someone.
pub async fn run_retention(st: &AppState, org: OrgId, who: &Who) -> MemResult<RetentionRun> {
    let cap = CanWrite::operator(org, MODULE);
    let Retention { months } = retention(&st.db, &cap.as_read()).await?;
    let mut conn = st.db.pool().acquire().await.map_err(CoreError::from)?;
    let today = service::org_today(&mut conn, org).await?;
    drop(conn);
    let mut run = RetentionRun { months, ended_before: None, erased: vec![], kept: 0, receipts: Default::default() };
    if let Some(months) = months {
        erase_former_members(st, org, who, today, months, &mut run).await?;
    }
    // After the erasures: a donor erased now gives their old receipts their pseudonym.
    run.receipts = pseudonymise_old_receipts(&st.db, who, org, today).await?;
    if !run.erased.is_empty() || run.kept > 0 || run.receipts.pseudonymised > 0 {
        let mut tx = st.db.begin().await?;
        service::record(
            &mut tx,
            who,
            org,
            "members.retention.run",
            "members_retention",
            &org.to_string(),
            None,
            serde_json::to_value(&run).ok(),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(run)
}

/// Erases the former members whose last membership ended `months` before
/// `today`, one transaction each.
async fn erase_former_members(
    st: &AppState,
    org: OrgId,
    who: &Who,
    today: Date,
    months: i64,
    run: &mut RetentionRun,
) -> MemResult<()> {
    let cutoff = today
        .checked_sub(jiff::Span::new().months(months))
        .map_err(|e| MemError::from(CoreError::Internal(e.to_string())))?
        .to_string();
    let candidates = sqlx::query(
        "SELECT p.person_id FROM mem_periods p WHERE p.org_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM privacy_erasures e WHERE e.org_id = p.org_id AND e.person_id = p.person_id) \
         GROUP BY p.person_id \
         HAVING SUM(CASE WHEN p.closed_on IS NULL AND p.ends_on IS NULL THEN 1 ELSE 0 END) = 0 \
         AND MAX(COALESCE(p.closed_on, p.ends_on)) < $2 ORDER BY p.person_id",
    )
    .bind(org.to_string())
    .bind(&cutoff)
    .fetch_all(st.db.pool())
    .await
    .map_err(CoreError::from)?;
    let core_cap = CanWrite::operator(org, "core");
    run.ended_before = Some(cutoff);
    for r in &candidates {
        let person: String = r.try_get(0).map_err(CoreError::from)?;
        match privacy::erase(&st.db, &st.modules, who, &core_cap, &person, privacy::Reason::Retention, None).await {
            Ok(report) => run.erased.push(report.pseudonym),
            Err(CoreError::Conflict { .. }) | Err(CoreError::NotFound) => run.kept += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{receipts_kept_until, redact_debtor};

    #[test]
    fn receipts_keep_their_donor_six_full_years_after_their_year_of_issue() {
        let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        // Issued on 31 December 2019: kept through 2025, pseudonymised from 2026.
        assert_eq!(receipts_kept_until(day("2026-01-01")), "2020-01-01");
        assert_eq!(receipts_kept_until(day("2026-12-31")), "2020-01-01");
        assert_eq!(receipts_kept_until(day("2025-12-31")), "2019-01-01");
    }

    #[test]
    fn only_the_persons_transaction_is_redacted() {
        let xml = "<DrctDbtTxInf><PmtId><EndToEndId>RC-1</EndToEndId></PmtId><Dbtr><Nm>Ana Lopez</Nm><PstlAdr><StrtNm>1 rue</StrtNm></PstlAdr></Dbtr><DbtrAcct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></DbtrAcct></DrctDbtTxInf>\
                   <DrctDbtTxInf><PmtId><EndToEndId>RC-2</EndToEndId></PmtId><Dbtr><Nm>Bo Chen</Nm></Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct></DrctDbtTxInf>";
        let out = redact_debtor(xml, "RC-1", "Erased ABC123", "FR76 **** 0189");
        assert!(!out.contains("Ana Lopez") && !out.contains("1 rue") && !out.contains("FR7630006000011234567890189"));
        assert!(out.contains("<Dbtr><Nm>Erased ABC123</Nm></Dbtr>") && out.contains("<IBAN>FR76 **** 0189</IBAN>"));
        assert!(out.contains("Bo Chen") && out.contains("DE89370400440532013000"));
    }
}
