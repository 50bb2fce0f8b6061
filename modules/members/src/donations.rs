//! Donations and tax receipts (reçus fiscaux). A donation is recorded with
//! its donor (anyone of the directory, member or not, as an individual or
//! for a company),
//! its form, nature and method, and posts its ledger entry (money gifts);
//! a tax receipt gathers one or more donations of one donor in one calendar
//! year under a continuous number, with the content of Cerfa 11580
//! (individuals, article 200 CGI) or 16216 (companies, article 238 bis
//! CGI). Receipts are issued one at a time or as the yearly batch, mailed
//! through the outbox with a personal download link.

use crate::error::{MemError, MemResult};
use crate::french;
use crate::service::{
    self, check_key, display_name, lock_member, new_id, next_number, person_in, record, settings_in, Address, Method,
    Settings, MODULE,
};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entry, NewEntry};
use shrooms_core::audit::Who;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::{AppState, CoreError, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

/// How the gift was made (the Cerfa's "forme du don").
pub const FORMS: [&str; 4] = ["authentic_act", "private_deed", "manual_gift", "other"];
/// What was given (the Cerfa's "nature du don").
pub const NATURES: [&str; 3] = ["money", "securities", "in_kind"];

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Donation {
    pub id: String,
    /// The donor in the directory; empty once the receipt covering the gift
    /// was pseudonymised, its six years past.
    pub person_id: String,
    /// `individual` or `company`.
    pub donor_kind: String,
    pub donor_name: String,
    pub siren: Option<String>,
    pub legal_form: Option<String>,
    pub amount_cents: i64,
    pub received_on: String,
    /// `authentic_act`, `private_deed`, `manual_gift` or `other`.
    pub form: String,
    /// `money`, `securities` or `in_kind`.
    pub nature: String,
    pub method: Method,
    /// Part of a recurring gift (a standing order, a monthly debit).
    pub recurring: bool,
    /// The ledger entry of a gift of money.
    pub entry_id: Option<String>,
    /// The tax receipt that covers it, once issued.
    pub receipt_id: Option<String>,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonationInput {
    /// Anyone of the organisation's directory, member or not.
    pub person_id: String,
    /// `individual` (default) or `company`; a company needs its SIREN.
    pub donor_kind: Option<String>,
    /// The company's name; the person's name for an individual.
    pub company_name: Option<String>,
    pub siren: Option<String>,
    pub legal_form: Option<String>,
    pub amount_cents: i64,
    /// `YYYY-MM-DD`; today when left out.
    pub received_on: Option<String>,
    pub form: Option<String>,
    pub nature: Option<String>,
    #[schema(value_type = Option<String>, example = "transfer")]
    pub method: Option<String>,
    #[serde(default)]
    pub recurring: bool,
    pub request_key: Option<String>,
}

const DONATION_COLS: &str =
    "id, person_id, donor_kind, donor_name, siren, legal_form, amount_cents, received_on, form, \
     nature, method, recurring, entry_id, receipt_id, created_at FROM mem_donations";

fn donation_row(r: &AnyRow) -> MemResult<Donation> {
    Ok(Donation {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        donor_kind: r.try_get(2)?,
        donor_name: r.try_get(3)?,
        siren: r.try_get(4)?,
        legal_form: r.try_get(5)?,
        amount_cents: r.try_get(6)?,
        received_on: r.try_get(7)?,
        form: r.try_get(8)?,
        nature: r.try_get(9)?,
        method: Method::parse(&r.try_get::<String, _>(10)?).unwrap_or(Method::Transfer),
        recurring: r.try_get::<i64, _>(11)? != 0,
        entry_id: r.try_get(12)?,
        receipt_id: r.try_get(13)?,
        created_at: Timestamp(r.try_get(14)?).rfc3339(),
    })
}

/// A SIREN: nine digits passing the Luhn check.
pub fn valid_siren(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()) && {
        let sum: u32 = s
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = (b - b'0') as u32;
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 {
                        x - 9
                    } else {
                        x
                    }
                } else {
                    d
                }
            })
            .sum();
        sum % 10 == 0
    }
}

pub(crate) async fn donation_by_key(
    conn: &mut sqlx::AnyConnection,
    org: OrgId,
    key: &str,
) -> MemResult<Option<Donation>> {
    let r = sqlx::query(&format!("SELECT {DONATION_COLS} WHERE org_id = $1 AND request_key = $2"))
        .bind(org.to_string())
        .bind(key)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(donation_row).transpose()
}

async fn donation_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<Donation>> {
    let r = sqlx::query(&format!("SELECT {DONATION_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(donation_row).transpose()
}

pub struct Recorded<T> {
    pub item: T,
    pub created: bool,
}

/// Records a donation and, for a gift of money, its validated ledger entry
/// (bank or cash against the donations account), in one durable transaction.
pub async fn record_donation(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    input: DonationInput,
) -> MemResult<Recorded<Donation>> {
    let mut tx = db.begin_durable().await?;
    let r = record_donation_in(&mut tx, who, cap, zone, input).await?;
    if r.created {
        tx.commit().await?;
    }
    Ok(r)
}

/// [`record_donation`] in the caller's transaction (a gift plan's expected
/// gift is recorded with the plan's move, at once); the caller commits.
pub(crate) async fn record_donation_in(
    tx: &mut shrooms_core::db::Tx,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    input: DonationInput,
) -> MemResult<Recorded<Donation>> {
    let org = cap.org();
    let mut errors = Vec::new();
    let key = check_key(&input.request_key, "request_key", &mut errors);
    let kind = input.donor_kind.as_deref().unwrap_or("individual").trim().to_string();
    if kind != "individual" && kind != "company" {
        errors.push(FieldError::new("donor_kind", "Choose individual or company."));
    }
    let siren: Option<String> = input.siren.as_deref().map(|s| s.chars().filter(|c| !c.is_whitespace()).collect());
    let siren = siren.filter(|s| !s.is_empty());
    if kind == "company" {
        match &siren {
            None => errors.push(FieldError::new("siren", "A company's gift needs its SIREN (9 digits).")),
            Some(s) if !valid_siren(s) => errors.push(FieldError::new(
                "siren",
                "This SIREN is not valid: 9 digits whose check digit matches (as on the company's Kbis).",
            )),
            _ => {}
        }
        if input.company_name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            errors.push(FieldError::new("company_name", "Give the company's name."));
        }
    }
    if input.amount_cents <= 0 || input.amount_cents > 10_000_000_000 {
        errors.push(FieldError::new("amount_cents", "The amount must be more than zero."));
    }
    let received = match input.received_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => crate::domain::parse_date("received_on", s).map_err(|e| errors.push(e)).ok(),
        None => Some(service::today(zone)),
    };
    let form = input.form.as_deref().unwrap_or("manual_gift").trim().to_string();
    if !FORMS.contains(&form.as_str()) {
        errors.push(FieldError::new("form", "Choose authentic_act, private_deed, manual_gift or other."));
    }
    let nature = input.nature.as_deref().unwrap_or("money").trim().to_string();
    if !NATURES.contains(&nature.as_str()) {
        errors.push(FieldError::new("nature", "Choose money, securities or in_kind."));
    }
    let method = Method::parse(input.method.as_deref().unwrap_or("transfer").trim());
    if method.is_none() {
        errors.push(FieldError::new("method", "Choose cash, cheque, transfer, card or direct_debit."));
    }
    if let Some(k) = &key {
        if let Some(d) = donation_by_key(tx.conn(), org, k).await? {
            return Ok(Recorded { item: d, created: false });
        }
    }
    let person = if input.person_id.trim().is_empty() {
        errors.push(FieldError::new(
            "person_id",
            "Choose the donor: find them in the directory, member or not (add them to it first if needed).",
        ));
        None
    } else {
        let p = person_in(tx.conn(), org, input.person_id.trim()).await?;
        if p.is_none() {
            errors.push(FieldError::new("person_id", "No such person in this organisation."));
        }
        p
    };
    MemError::check(errors)?;
    let (Some(person), Some(received), Some(method)) = (person, received, method) else {
        unreachable!("checked above")
    };
    lock_member(tx, org, &person.id).await?;
    let donor_name = if kind == "company" {
        input.company_name.clone().unwrap_or_default().trim().to_string()
    } else {
        display_name(&person)
    };
    let s = settings_in(tx.conn(), org).await?;
    let entry_id = if nature == "money" {
        let (journal, account) =
            if method == Method::Cash { ("CA", s.cash_account.clone()) } else { ("BQ", s.bank_account.clone()) };
        let label = format!("Don {donor_name}");
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
            journal: journal.into(),
            date: Day::parse(&received.to_string()).map_err(|m| MemError::field("received_on", m))?,
            label: label.clone(),
            piece_ref: String::new(),
            piece_date: None,
            lines: vec![line(account, input.amount_cents, 0), line(s.donations_account.clone(), 0, input.amount_cents)],
        };
        Some(post_entry(tx, who, org, MODULE, entry, true).await.map_err(|e| {
            match MemError::from(e) {
                MemError::Ledger(shrooms_accounting::error::AcctError::Invalid(v)) => MemError::Invalid(
                    v.into_iter()
                        .map(|f| {
                            FieldError::new(if f.field == "date" { "received_on".into() } else { f.field }, f.message)
                        })
                        .collect(),
                ),
                other => other,
            }
        })?)
        .map(|p| p.id)
    } else {
        None
    };
    let id = new_id();
    sqlx::query(
        "INSERT INTO mem_donations (id, org_id, person_id, donor_kind, donor_name, siren, legal_form, amount_cents, \
         received_on, form, nature, method, recurring, entry_id, request_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&person.id)
    .bind(&kind)
    .bind(&donor_name)
    .bind(if kind == "company" { siren.clone() } else { None })
    .bind(input.legal_form.as_deref().map(str::trim).filter(|s| !s.is_empty() && kind == "company"))
    .bind(input.amount_cents)
    .bind(received.to_string())
    .bind(&form)
    .bind(&nature)
    .bind(method.as_str())
    .bind(input.recurring as i64)
    .bind(&entry_id)
    .bind(&key)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let d = donation_in(tx.conn(), org, &id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(tx, who, org, "members.donation.record", "donation", &id, None, Some(json!(d))).await?;
    Ok(Recorded { item: d, created: true })
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DonationFilter {
    pub person_id: Option<String>,
    /// Calendar year of the gift.
    pub year: Option<i64>,
}

pub async fn donations(db: &Db, cap: &CanRead, f: &DonationFilter) -> MemResult<Vec<Donation>> {
    let (from, to) = match f.year {
        Some(y) => (format!("{y:04}-01-01"), format!("{y:04}-12-31")),
        None => (String::new(), String::new()),
    };
    let rows = sqlx::query(&format!(
        "SELECT {DONATION_COLS} WHERE org_id = $1 AND ($2 = '' OR person_id = $2) AND ($3 = '' OR received_on >= $3) \
         AND ($4 = '' OR received_on <= $4) ORDER BY received_on DESC, created_at DESC LIMIT 1000"
    ))
    .bind(cap.org().to_string())
    .bind(f.person_id.clone().unwrap_or_default())
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(donation_row).collect()
}

// ---------- tax receipts ----------

/// The donor as printed on the receipt, kept as it was when it was issued
/// for the six years the law requires; then the name becomes a pseudonym and
/// the SIREN, address and e-mail are removed (`privacy::pseudonymise_old_receipts`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Donor {
    pub name: String,
    pub siren: Option<String>,
    pub legal_form: Option<String>,
    pub address: Address,
    pub email: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaxReceipt {
    pub id: String,
    /// Continuous in the organisation.
    pub number: i64,
    /// `2026-000042`: the year of the gifts and the number.
    pub reference: String,
    pub year: i64,
    /// The donor in the directory; empty once pseudonymised, its six years past.
    pub person_id: String,
    /// `individual` (Cerfa 11580, article 200 CGI) or `company` (Cerfa 16216, article 238 bis CGI).
    pub donor_kind: String,
    pub donor: Donor,
    pub amount_cents: i64,
    pub issued_on: String,
    /// Issued by the yearly batch.
    pub batch: bool,
    pub emailed_to: Option<String>,
    pub donations: Vec<Donation>,
}

pub fn receipt_reference(year: i64, number: i64) -> String {
    format!("{year}-{number:06}")
}

const RECEIPT_COLS: &str =
    "id, number, year, person_id, donor_kind, donor, amount_cents, issued_on, batch, emailed_to, token \
     FROM mem_tax_receipts";

async fn receipt_row(conn: &mut sqlx::AnyConnection, org: OrgId, r: &AnyRow) -> MemResult<(TaxReceipt, String)> {
    let id: String = r.try_get(0)?;
    let number: i64 = r.try_get(1)?;
    let year: i64 = r.try_get(2)?;
    let donor: Donor = serde_json::from_str(&r.try_get::<String, _>(5)?)
        .map_err(|e| MemError::Core(CoreError::Internal(format!("stored donor of receipt {id}: {e}"))))?;
    let rows =
        sqlx::query(&format!("SELECT {DONATION_COLS} WHERE org_id = $1 AND receipt_id = $2 ORDER BY received_on"))
            .bind(org.to_string())
            .bind(&id)
            .fetch_all(conn)
            .await?;
    let donations = rows.iter().map(donation_row).collect::<MemResult<Vec<_>>>()?;
    Ok((
        TaxReceipt {
            reference: receipt_reference(year, number),
            number,
            year,
            person_id: r.try_get(3)?,
            donor_kind: r.try_get(4)?,
            donor,
            amount_cents: r.try_get(6)?,
            issued_on: r.try_get(7)?,
            batch: r.try_get::<i64, _>(8)? != 0,
            emailed_to: r.try_get(9)?,
            donations,
            id,
        },
        r.try_get(10)?,
    ))
}

pub async fn receipts(db: &Db, cap: &CanRead, year: Option<i64>) -> MemResult<Vec<TaxReceipt>> {
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT {RECEIPT_COLS} WHERE org_id = $1 AND ($2 = 0 OR year = $2) ORDER BY number DESC LIMIT 2000"
    ))
    .bind(cap.org().to_string())
    .bind(year.unwrap_or(0))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(receipt_row(&mut conn, cap.org(), r).await?.0);
    }
    Ok(out)
}

pub async fn receipt(db: &Db, cap: &CanRead, id: &str) -> MemResult<TaxReceipt> {
    let mut conn = db.pool().acquire().await?;
    let r = sqlx::query(&format!("SELECT {RECEIPT_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(MemError::Core(CoreError::NotFound))?;
    Ok(receipt_row(&mut conn, cap.org(), &r).await?.0)
}

/// A receipt by its download token (the link mailed to the donor).
pub async fn receipt_by_token(db: &Db, org: OrgId, token: &str) -> MemResult<Option<TaxReceipt>> {
    let mut conn = db.pool().acquire().await?;
    let r = sqlx::query(&format!("SELECT {RECEIPT_COLS} WHERE org_id = $1 AND token = $2"))
        .bind(org.to_string())
        .bind(shrooms_core::crypto::token_hash(token))
        .fetch_optional(&mut *conn)
        .await?;
    match r {
        Some(r) => Ok(Some(receipt_row(&mut conn, org, &r).await?.0)),
        None => Ok(None),
    }
}

/// The organisation's identity must be complete before a receipt is issued.
fn check_identity(s: &Settings) -> MemResult<()> {
    for (field, v, what) in [
        ("street", &s.street, "its address"),
        ("city", &s.city, "its city"),
        ("object", &s.object, "its object"),
        ("signatory", &s.signatory, "who signs"),
    ] {
        if v.trim().is_empty() {
            return Err(MemError::Precondition(
                field.into(),
                format!("A tax receipt names the organisation: fill in {what} in the members settings first."),
            ));
        }
    }
    Ok(())
}

/// One receipt for a group of donations of one donor (same kind), numbered
/// now, in the caller's transaction. Returns the receipt id and its token.
async fn write_receipt(
    tx: &mut shrooms_core::db::Tx,
    who: &Who,
    org: OrgId,
    year: i64,
    issued_on: Date,
    batch: bool,
    group: &[Donation],
) -> MemResult<(String, String)> {
    let first = &group[0];
    let person = person_in(tx.conn(), org, &first.person_id)
        .await?
        .ok_or_else(|| MemError::field("person_id", "The donor is no longer in the directory."))?;
    let donor = Donor {
        name: first.donor_name.clone(),
        siren: first.siren.clone(),
        legal_form: first.legal_form.clone(),
        address: person.address.clone(),
        email: person.email.clone(),
    };
    let amount: i64 = group.iter().map(|d| d.amount_cents).sum();
    let number = next_number(tx, org, "tax_receipt", 1).await?;
    let id = new_id();
    let token = shrooms_core::crypto::random_token();
    sqlx::query(
        "INSERT INTO mem_tax_receipts (id, org_id, number, year, person_id, donor_kind, donor, amount_cents, issued_on, \
         batch, token, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(number)
    .bind(year)
    .bind(&first.person_id)
    .bind(&first.donor_kind)
    .bind(serde_json::to_string(&donor).unwrap_or_default())
    .bind(amount)
    .bind(issued_on.to_string())
    .bind(batch as i64)
    .bind(shrooms_core::crypto::token_hash(&token))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    for d in group {
        // A donation is covered by one receipt: the condition makes a second claim change nothing.
        let n = sqlx::query(
            "UPDATE mem_donations SET receipt_id = $1 WHERE org_id = $2 AND id = $3 AND receipt_id IS NULL",
        )
        .bind(&id)
        .bind(org.to_string())
        .bind(&d.id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n != 1 {
            return Err(MemError::field("donation_id", "This donation already has a tax receipt."));
        }
    }
    record(
        tx,
        who,
        org,
        "members.tax_receipt.issue",
        "tax_receipt",
        &id,
        None,
        Some(json!({"reference": receipt_reference(year, number), "donor": donor, "amount_cents": amount,
            "donations": group.iter().map(|d| d.id.clone()).collect::<Vec<_>>()})),
    )
    .await?;
    Ok((id, token))
}

/// Issues the tax receipt of one donation.
pub async fn issue_receipt(db: &Db, who: &Who, cap: &CanWrite, zone: &str, donation_id: &str) -> MemResult<TaxReceipt> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let d = donation_in(tx.conn(), org, donation_id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    check_identity(&settings_in(tx.conn(), org).await?)?;
    lock_member(&mut tx, org, &d.person_id).await?;
    if let Some(r) = &d.receipt_id {
        let n =
            sqlx::query("SELECT year, number FROM mem_tax_receipts WHERE id = $1").bind(r).fetch_one(tx.conn()).await?;
        return Err(MemError::field(
            "donation_id",
            format!(
                "This donation already has tax receipt {}: a gift is receipted once.",
                receipt_reference(n.try_get(0)?, n.try_get(1)?)
            ),
        ));
    }
    let year = d.received_on.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    let (id, _) = write_receipt(&mut tx, who, org, year, service::today(zone), false, &[d]).await?;
    tx.commit().await?;
    receipt(db, &cap.as_read(), &id).await
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearBatch {
    pub year: i64,
    /// Mail each donor their receipt's link (donors without e-mail are counted).
    #[serde(default)]
    pub email: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchReport {
    pub year: i64,
    /// Receipts issued by this run.
    pub issued: i64,
    pub amount_cents: i64,
    pub emailed: i64,
    /// Donors who have no e-mail: print their receipt.
    pub without_email: Vec<String>,
}

/// The yearly batch: one receipt per donor (and kind) for the gifts of the
/// year not yet receipted, numbered in donor order; run again, it issues
/// only what is new. Mails are queued in the same transaction.
pub async fn issue_year(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    org_slug: &str,
    input: YearBatch,
) -> MemResult<BatchReport> {
    let org = cap.org();
    if !(1900..=9999).contains(&input.year) {
        return Err(MemError::field("year", "Give a year such as 2026."));
    }
    let db = &st.db;
    // Mails are composed before the transaction (templates read the instance).
    let mut tx = db.begin_durable().await?;
    check_identity(&settings_in(tx.conn(), org).await?)?;
    let rows = sqlx::query(&format!(
        "SELECT {DONATION_COLS} WHERE org_id = $1 AND receipt_id IS NULL AND received_on >= $2 AND received_on <= $3 \
         ORDER BY donor_name, person_id, donor_kind, received_on"
    ))
    .bind(org.to_string())
    .bind(format!("{:04}-01-01", input.year))
    .bind(format!("{:04}-12-31", input.year))
    .fetch_all(tx.conn())
    .await?;
    let all = rows.iter().map(donation_row).collect::<MemResult<Vec<_>>>()?;
    let mut groups: Vec<Vec<Donation>> = Vec::new();
    for d in all {
        match groups.last_mut() {
            Some(g)
                if g[0].person_id == d.person_id
                    && g[0].donor_kind == d.donor_kind
                    && g[0].donor_name == d.donor_name =>
            {
                g.push(d)
            }
            _ => groups.push(vec![d]),
        }
    }
    let today = service::today(zone);
    let mut report = BatchReport { year: input.year, issued: 0, amount_cents: 0, emailed: 0, without_email: vec![] };
    let lang = shrooms_core::outbox::language_for(db, None).await?;
    for g in &groups {
        let (id, token) = write_receipt(&mut tx, who, org, input.year, today, true, g).await?;
        report.issued += 1;
        report.amount_cents += g.iter().map(|d| d.amount_cents).sum::<i64>();
        if !input.email {
            continue;
        }
        let email = person_in(tx.conn(), org, &g[0].person_id).await?.and_then(|p| p.email);
        match email {
            Some(to) => {
                let link = format!("{}/o/{org_slug}/members/receipts/{token}", st.base_url());
                let mail = shrooms_core::web::api::compose(
                    st,
                    "members_tax_receipt",
                    &lang,
                    json!({"donor": g[0].donor_name, "year": input.year, "link": link,
                        "amount": french_amount(g.iter().map(|d| d.amount_cents).sum())}),
                )
                .await?;
                shrooms_core::outbox::enqueue(&mut tx, Some(org), "members_tax_receipt", &to, &mail).await?;
                sqlx::query("UPDATE mem_tax_receipts SET emailed_to = $1 WHERE org_id = $2 AND id = $3")
                    .bind(&to)
                    .bind(org.to_string())
                    .bind(&id)
                    .execute(tx.conn())
                    .await?;
                report.emailed += 1;
            }
            None => report.without_email.push(g[0].donor_name.clone()),
        }
    }
    record(
        &mut tx,
        who,
        org,
        "members.tax_receipt.batch",
        "tax_receipt_batch",
        &input.year.to_string(),
        None,
        Some(json!(report)),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct YearTotals {
    pub year: i64,
    /// Number of tax receipts issued for the gifts of the year.
    pub receipts: i64,
    /// Their total amount: what the organisation declares.
    pub amount_cents: i64,
    pub individuals: i64,
    pub companies: i64,
    /// Gifts of the year without a receipt yet.
    pub not_receipted: i64,
}

/// What the organisation declares each year: the number of receipts and
/// their total amount.
pub async fn totals(db: &Db, cap: &CanRead, year: i64) -> MemResult<YearTotals> {
    let r = sqlx::query(
        "SELECT COUNT(*), COALESCE(CAST(SUM(amount_cents) AS BIGINT), 0), \
         COALESCE(CAST(SUM(CASE WHEN donor_kind = 'individual' THEN 1 ELSE 0 END) AS BIGINT), 0) \
         FROM mem_tax_receipts WHERE org_id = $1 AND year = $2",
    )
    .bind(cap.org().to_string())
    .bind(year)
    .fetch_one(db.pool())
    .await?;
    let n = sqlx::query(
        "SELECT COUNT(*) FROM mem_donations WHERE org_id = $1 AND receipt_id IS NULL AND received_on >= $2 AND received_on <= $3",
    )
    .bind(cap.org().to_string())
    .bind(format!("{year:04}-01-01"))
    .bind(format!("{year:04}-12-31"))
    .fetch_one(db.pool())
    .await?;
    let receipts: i64 = r.try_get(0)?;
    let individuals: i64 = r.try_get(2)?;
    Ok(YearTotals {
        year,
        receipts,
        amount_cents: r.try_get(1)?,
        individuals,
        companies: receipts - individuals,
        not_receipted: n.try_get(0)?,
    })
}

// ---------- the receipt as a document ----------

/// `1 234,56 €`
pub fn french_amount(cents: i64) -> String {
    let e = (cents.abs() / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in e.chars().enumerate() {
        if i > 0 && (e.len() - i) % 3 == 0 {
            grouped.push('\u{a0}');
        }
        grouped.push(c);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{grouped},{:02}\u{a0}€", cents.abs() % 100)
}

fn french_date(iso: &str) -> String {
    match iso.parse::<Date>() {
        Ok(d) => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
        Err(_) => iso.to_string(),
    }
}

fn form_label(f: &str) -> &'static str {
    match f {
        "authentic_act" => "Acte authentique",
        "private_deed" => "Acte sous seing privé",
        "manual_gift" => "Déclaration de don manuel",
        _ => "Autre",
    }
}

fn nature_label(n: &str) -> &'static str {
    match n {
        "money" => "Numéraire",
        "securities" => "Titres de sociétés cotés",
        _ => "Don en nature",
    }
}

fn method_label(m: Method) -> &'static str {
    match m {
        Method::Cash => "Remise d'espèces",
        Method::Cheque => "Chèque",
        Method::Transfer => "Virement",
        Method::Card => "Carte bancaire",
        Method::DirectDebit => "Prélèvement",
    }
}

fn organism_label(kind: &str) -> &'static str {
    match kind {
        "public_utility" => "Association ou fondation reconnue d'utilité publique",
        "general_interest" => "Œuvre ou organisme d'intérêt général",
        _ => "Organisme habilité à recevoir des dons",
    }
}

/// The receipt as a PDF, in French (a tax document), with the content of
/// Cerfa 11580 for individuals and 16216 for companies.
pub fn receipt_pdf(r: &TaxReceipt, s: &Settings, org_name: &str, colour: &str) -> Vec<u8> {
    let company = r.donor_kind == "company";
    let (model, heading) = if company {
        ("16216", "Dons et versements effectués par les entreprises")
    } else {
        ("11580", "Reçu au titre des dons à certains organismes d'intérêt général")
    };
    let name = if s.legal_name.trim().is_empty() { org_name } else { s.legal_name.trim() };
    let mut doc = shrooms_core::pdf::Document::new(
        &format!("Reçu fiscal n° {}", r.reference),
        shrooms_core::pdf::Branding { org_name: name.to_string(), colour: colour.to_string() },
    );
    doc.heading(heading);
    doc.paragraph(&format!("Contenu du formulaire Cerfa n° {model}."));
    doc.key_values(&[("Numéro d'ordre du reçu", &r.reference), ("Date d'émission", &french_date(&r.issued_on))]);
    doc.heading("Bénéficiaire des versements");
    let address = format!("{}, {} {}", s.street, s.postcode, s.city);
    doc.key_values(&[
        ("Nom ou dénomination", name),
        ("Adresse", &address),
        ("Objet", &s.object),
        ("Qualité", organism_label(&s.organism_kind)),
    ]);
    doc.heading(if company { "Entreprise donatrice" } else { "Donateur" });
    let a = &r.donor.address;
    let donor_address = if a.is_empty() {
        "(adresse non renseignée)".to_string()
    } else {
        format!("{}, {} {} {}", a.street, a.postcode, a.city, a.country).trim().to_string()
    };
    let mut donor: Vec<(&str, String)> =
        vec![(if company { "Dénomination" } else { "Nom et prénoms" }, r.donor.name.clone())];
    if company {
        donor.push(("SIREN", r.donor.siren.clone().unwrap_or_default()));
        if let Some(f) = &r.donor.legal_form {
            donor.push(("Forme juridique", f.clone()));
        }
    }
    donor.push(("Adresse", donor_address));
    let pairs: Vec<(&str, &str)> = donor.iter().map(|(k, v)| (*k, v.as_str())).collect();
    doc.key_values(&pairs);
    doc.heading("Dons et versements");
    doc.paragraph(
        "Le bénéficiaire reconnaît avoir reçu, au titre des dons et versements ouvrant droit à réduction d'impôt, \
         la somme de :",
    );
    doc.key_values(&[
        ("Montant", &french_amount(r.amount_cents)),
        ("Somme en toutes lettres", &french::euros(r.amount_cents)),
    ]);
    let rows: Vec<Vec<String>> = r
        .donations
        .iter()
        .map(|d| {
            vec![
                french_date(&d.received_on),
                form_label(&d.form).to_string(),
                nature_label(&d.nature).to_string(),
                if d.nature == "money" { method_label(d.method).to_string() } else { String::new() },
                french_amount(d.amount_cents),
            ]
        })
        .collect();
    doc.table(
        &["Date du versement", "Forme du don", "Nature du don", "Mode de versement", "Montant"],
        &[0.16, 0.24, 0.2, 0.22, 0.18],
        &rows,
    );
    let article = if company { "238 bis" } else { "200" };
    doc.paragraph(
        "Le bénéficiaire certifie sur l'honneur que les dons et versements qu'il reçoit ouvrent droit à la \
         réduction d'impôt prévue à l'article :",
    );
    doc.key_values(&[("Article", &format!("{article} du code général des impôts (CGI)"))]);
    doc.key_values(&[("Signataire", &s.signatory), ("Fait le", &french_date(&r.issued_on))]);
    doc.finish(&format!("Reçu fiscal {} · {name}", r.reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sirens_are_checked() {
        assert!(valid_siren("732829320"));
        assert!(valid_siren("552100554"));
        assert!(!valid_siren("732829321"));
        assert!(!valid_siren("73282932"));
        assert!(!valid_siren("73282932a"));
    }

    #[test]
    fn amounts_are_written_the_french_way() {
        assert_eq!(french_amount(123_456), "1\u{a0}234,56\u{a0}€");
        assert_eq!(french_amount(5), "0,05\u{a0}€");
        assert_eq!(french_amount(100_000_000), "1\u{a0}000\u{a0}000,00\u{a0}€");
    }
}
