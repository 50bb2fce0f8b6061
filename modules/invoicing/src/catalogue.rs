//! What an organisation sells and how it bills: its invoicing settings (the
//! seller's legal identity, terms, ledger accounts), dated VAT rates with
//! their exemption mentions, and the catalogue of products and services.
//!
//! Settings, default VAT rates and numbering series are seeded on first use
//! ([`ensure_setup`]). A VAT rate is never edited: a new rate for a code
//! starts on a date, and documents store the rate they were computed with.

use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

// ---------- identity checks (pure) ----------

fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = (c - b'0') as u32;
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '.' && *c != '-').collect()
}

/// A SIREN: 9 digits with a valid Luhn key. Empty stays empty.
pub fn check_siren(s: &str) -> Result<String, &'static str> {
    let s = compact(s);
    if s.is_empty() {
        return Ok(s);
    }
    if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("A SIREN has 9 digits, such as 732 829 320.");
    }
    if !luhn(&s) {
        return Err("This SIREN's check digit is wrong: check for a typing mistake.");
    }
    Ok(s)
}

/// A SIRET: 14 digits with a valid Luhn key (La Poste's establishments
/// excepted, whose SIRENs add up differently).
pub fn check_siret(s: &str) -> Result<String, &'static str> {
    let s = compact(s);
    if s.is_empty() {
        return Ok(s);
    }
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("A SIRET has 14 digits: the SIREN and 5 digits of the establishment.");
    }
    let la_poste = s.starts_with("356000000") && s.bytes().map(|b| (b - b'0') as u32).sum::<u32>() % 5 == 0;
    if !luhn(&s) && !la_poste {
        return Err("This SIRET's check digit is wrong: check for a typing mistake.");
    }
    Ok(s)
}

/// An intra-community VAT number; French ones (FR + key + SIREN) have their key checked.
pub fn check_vat_number(s: &str) -> Result<String, &'static str> {
    let s = compact(s).to_ascii_uppercase();
    if s.is_empty() {
        return Ok(s);
    }
    // ASCII only, so that slicing by bytes below is slicing by characters.
    if !s.is_ascii() || s.len() < 4 || s.len() > 16 || !s.as_bytes()[..2].iter().all(|b| b.is_ascii_uppercase()) {
        return Err("A VAT number starts with the country code, such as FR40303265045.");
    }
    if !s[2..].bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("A VAT number has letters and digits only after its country code.");
    }
    if let Some(rest) = s.strip_prefix("FR") {
        if rest.len() != 11 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err("A French VAT number is FR, a 2-digit key and the SIREN.");
        }
        let key: u64 = rest[..2].parse().unwrap_or(0);
        let siren: u64 = rest[2..].parse().unwrap_or(0);
        if key != (12 + 3 * (siren % 97)) % 97 {
            return Err("This French VAT number's key does not match its SIREN.");
        }
    }
    Ok(s)
}

/// An IBAN with a valid mod-97 check.
pub fn check_iban(s: &str) -> Result<String, &'static str> {
    let s = compact(s).to_ascii_uppercase();
    if s.is_empty() {
        return Ok(s);
    }
    if s.len() < 15 || s.len() > 34 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("An IBAN has 15 to 34 letters and digits, such as FR76 3000 6000 0112 3456 7890 189.");
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap_or(0);
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    if rem != 1 {
        return Err("This IBAN's check digits are wrong: check for a typing mistake.");
    }
    Ok(s)
}

/// A BIC: 8 or 11 characters, bank (4 letters), country (2 letters), place, branch.
pub fn check_bic(s: &str) -> Result<String, &'static str> {
    let s = compact(s).to_ascii_uppercase();
    if s.is_empty() {
        return Ok(s);
    }
    let ok = s.is_ascii()
        && (s.len() == 8 || s.len() == 11)
        && s[..6].bytes().all(|b| b.is_ascii_uppercase())
        && s[6..].bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err("A BIC has 8 or 11 characters, such as AGRIFRPP or AGRIFRPP882.");
    }
    Ok(s)
}

pub(crate) fn text(s: &str, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = s.trim();
    if t.chars().count() > max || t.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        errors.push(FieldError::new(field, format!("Write at most {max} characters.")));
    }
    t.replace("\r\n", "\n")
}

pub(crate) fn required(s: &str, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = text(s, field, max, errors);
    if t.is_empty() {
        errors.push(FieldError::new(field, "This field is required."));
    }
    t
}

pub(crate) fn country(s: &str, field: &str, errors: &mut Vec<FieldError>) -> String {
    let c = s.trim().to_ascii_uppercase();
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new(field, "A country is a two-letter ISO 3166 code, such as FR or BE."));
    }
    c
}

pub(crate) fn account(s: &str, field: &str, errors: &mut Vec<FieldError>) -> String {
    match shrooms_accounting::domain::parse_account_number(s) {
        Ok(a) => a,
        Err(m) => {
            errors.push(FieldError::new(field, m));
            String::new()
        }
    }
}

pub(crate) fn day(s: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<Day> {
    match Day::parse(s) {
        Ok(d) => Some(d),
        Err(m) => {
            errors.push(FieldError::new(field, m));
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn audited(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    action: &'static str,
    entity_type: &'static str,
    id: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> CoreResult<()> {
    audit::record(tx, who, Change { org: Some(org), action, entity_type, entity_id: id.to_string(), before, after })
        .await?;
    Ok(())
}

// ---------- settings ----------

/// The seller's identity and the organisation's invoicing rules.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InvoicingSettings)]
pub struct Settings {
    pub legal_name: String,
    /// SA, SARL, SAS, SCIC, association loi 1901…
    pub legal_form: String,
    /// Share capital as printed ("10 000 €"); empty for an association.
    pub share_capital: String,
    pub siren: String,
    pub siret: String,
    pub vat_number: String,
    /// "RCS Lyon 732 829 320"; empty when not registered.
    pub rcs: String,
    /// Street lines, one per line.
    pub address: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    pub email: String,
    pub phone: String,
    pub iban: String,
    pub bic: String,
    pub currency: String,
    /// `normal`, or `franchise` (franchise en base de TVA: every line is exempt).
    pub vat_regime: String,
    pub payment_terms_days: i64,
    /// The late-payment penalty printed on business invoices; a default is printed when empty.
    pub late_penalty: String,
    /// No invoice below this total: the billing run carries the items over.
    pub min_invoice_cents: i64,
    /// Overage items wait this many days after their period before they are billed.
    pub overage_grace_days: i64,
    pub receivable_account: String,
    pub revenue_account: String,
    pub vat_account: String,
    pub sales_journal: String,
    /// Put the issue year in numbers (F2026-00001).
    pub number_with_year: bool,
    pub quote_validity_days: i64,
}

/// Changes to the settings: fields left out keep their value; the legal
/// name, which every document prints, is always sent.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InvoicingSettingsInput)]
pub struct SettingsInput {
    pub legal_name: String,
    pub legal_form: Option<String>,
    pub share_capital: Option<String>,
    pub siren: Option<String>,
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    pub rcs: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub vat_regime: Option<String>,
    pub payment_terms_days: Option<i64>,
    pub late_penalty: Option<String>,
    pub min_invoice_cents: Option<i64>,
    pub overage_grace_days: Option<i64>,
    pub receivable_account: Option<String>,
    pub revenue_account: Option<String>,
    pub vat_account: Option<String>,
    pub sales_journal: Option<String>,
    pub number_with_year: Option<bool>,
    pub quote_validity_days: Option<i64>,
}

const SETTINGS_COLS: &str = "legal_name, legal_form, share_capital, siren, siret, vat_number, rcs, address, postcode, \
    city, country, email, phone, iban, bic, currency, vat_regime, payment_terms_days, late_penalty, min_invoice_cents, \
    overage_grace_days, receivable_account, revenue_account, vat_account, sales_journal, number_with_year, \
    quote_validity_days";

fn settings_from(r: &AnyRow) -> Result<Settings, sqlx::Error> {
    Ok(Settings {
        legal_name: r.try_get(0)?,
        legal_form: r.try_get(1)?,
        share_capital: r.try_get(2)?,
        siren: r.try_get(3)?,
        siret: r.try_get(4)?,
        vat_number: r.try_get(5)?,
        rcs: r.try_get(6)?,
        address: r.try_get(7)?,
        postcode: r.try_get(8)?,
        city: r.try_get(9)?,
        country: r.try_get(10)?,
        email: r.try_get(11)?,
        phone: r.try_get(12)?,
        iban: r.try_get(13)?,
        bic: r.try_get(14)?,
        currency: r.try_get(15)?,
        vat_regime: r.try_get(16)?,
        payment_terms_days: r.try_get(17)?,
        late_penalty: r.try_get(18)?,
        min_invoice_cents: r.try_get(19)?,
        overage_grace_days: r.try_get(20)?,
        receivable_account: r.try_get(21)?,
        revenue_account: r.try_get(22)?,
        vat_account: r.try_get(23)?,
        sales_journal: r.try_get(24)?,
        number_with_year: r.try_get::<i64, _>(25)? != 0,
        quote_validity_days: r.try_get(26)?,
    })
}

/// The standard rates of France, seeded on first use. FR-20 carries its
/// history (19.6 % until 2013-12-31), so old documents typed in later get
/// the rate of their date.
pub const DEFAULT_RATES: &[(&str, &str, &str, i64, &str, Option<&str>, Option<&str>)] = &[
    ("FR-20", "TVA 19,6 %", "S", 1960, "2000-04-01", Some("2013-12-31"), None),
    ("FR-20", "TVA 20 %", "S", 2000, "2014-01-01", None, None),
    ("FR-10", "TVA 7 %", "S", 700, "2012-01-01", Some("2013-12-31"), None),
    ("FR-10", "TVA 10 %", "S", 1000, "2014-01-01", None, None),
    ("FR-5.5", "TVA 5,5 %", "S", 550, "2000-01-01", None, None),
    ("FR-2.1", "TVA 2,1 %", "S", 210, "2000-01-01", None, None),
    ("E", "Exonéré (franchise en base)", "E", 0, "2000-01-01", None, Some(FRANCHISE_MENTION)),
];

pub const FRANCHISE_MENTION: &str = "TVA non applicable, art. 293 B du CGI";
/// The VAT code every line takes under the franchise regime.
pub const FRANCHISE_CODE: &str = "E";

/// Seeds the settings, the default VAT rates and the default numbering
/// series of an organisation, once; safe to run concurrently (replicas).
pub async fn ensure_setup(db: &Db, org: OrgId, org_name: &str, currency: &str) -> CoreResult<()> {
    let exists = sqlx::query("SELECT 1 FROM inv_settings WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(db.pool())
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    seed(tx.conn(), org, org_name, currency).await?;
    tx.commit().await
}

pub(crate) async fn seed(conn: &mut AnyConnection, org: OrgId, org_name: &str, currency: &str) -> CoreResult<()> {
    let now = Timestamp::now().0;
    let done = sqlx::query(
        "INSERT INTO inv_settings (org_id, legal_name, currency, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org.to_string())
    .bind(org_name)
    .bind(currency)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(());
    }
    for (code, label, cat, rate, from, to, reason) in DEFAULT_RATES {
        sqlx::query(
            "INSERT INTO inv_vat_rates (id, org_id, code, label, category, rate_bp, valid_from, valid_to, \
             exemption_reason, account, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10) \
             ON CONFLICT (org_id, code, valid_from) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(org.to_string())
        .bind(*code)
        .bind(*label)
        .bind(*cat)
        .bind(*rate)
        .bind(*from)
        .bind(*to)
        .bind(*reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for (code, kind, prefix, label) in crate::numbering::DEFAULT_SERIES {
        sqlx::query(
            "INSERT INTO inv_series (org_id, code, kind, prefix, label, is_default, last_number) \
             VALUES ($1, $2, $3, $4, $5, 1, 0) ON CONFLICT (org_id, code) DO NOTHING",
        )
        .bind(org.to_string())
        .bind(*code)
        .bind(*kind)
        .bind(*prefix)
        .bind(*label)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn settings_in(conn: &mut AnyConnection, org: OrgId) -> CoreResult<Settings> {
    let r = sqlx::query(&format!("SELECT {SETTINGS_COLS} FROM inv_settings WHERE org_id = $1"))
        .bind(org.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound)?;
    Ok(settings_from(&r)?)
}

pub async fn get_settings(db: &Db, cap: &CanRead) -> CoreResult<Settings> {
    let mut conn = db.pool().acquire().await?;
    settings_in(&mut conn, cap.org()).await
}

fn apply(s: &mut Settings, p: SettingsInput) -> Result<(), Vec<FieldError>> {
    let mut e = Vec::new();
    macro_rules! txt {
        ($f:ident, $max:expr) => {
            if let Some(v) = p.$f {
                s.$f = text(&v, stringify!($f), $max, &mut e);
            }
        };
    }
    s.legal_name = required(&p.legal_name, "legal_name", 200, &mut e);
    txt!(legal_form, 100);
    txt!(share_capital, 60);
    txt!(rcs, 100);
    txt!(address, 400);
    txt!(postcode, 20);
    txt!(city, 100);
    txt!(email, 200);
    txt!(phone, 40);
    txt!(late_penalty, 400);
    if let Some(v) = p.siren {
        s.siren = check_siren(&v).map_err(|m| e.push(FieldError::new("siren", m))).unwrap_or_default();
    }
    if let Some(v) = p.siret {
        s.siret = check_siret(&v).map_err(|m| e.push(FieldError::new("siret", m))).unwrap_or_default();
    }
    if let Some(v) = p.vat_number {
        s.vat_number = check_vat_number(&v).map_err(|m| e.push(FieldError::new("vat_number", m))).unwrap_or_default();
    }
    if let Some(v) = p.iban {
        s.iban = check_iban(&v).map_err(|m| e.push(FieldError::new("iban", m))).unwrap_or_default();
    }
    if let Some(v) = p.bic {
        s.bic = check_bic(&v).map_err(|m| e.push(FieldError::new("bic", m))).unwrap_or_default();
    }
    if let Some(v) = p.country {
        s.country = country(&v, "country", &mut e);
    }
    if let Some(v) = p.vat_regime {
        match v.trim() {
            "normal" | "franchise" => s.vat_regime = v.trim().to_string(),
            _ => e.push(FieldError::new("vat_regime", "Choose `normal` or `franchise`.")),
        }
    }
    let mut int = |v: Option<i64>, field: &str, max: i64, slot: &mut i64| {
        if let Some(v) = v {
            if !(0..=max).contains(&v) {
                e.push(FieldError::new(field, format!("Give a whole number from 0 to {max}.")));
            } else {
                *slot = v;
            }
        }
    };
    int(p.payment_terms_days, "payment_terms_days", 365, &mut s.payment_terms_days);
    int(p.min_invoice_cents, "min_invoice_cents", 100_000_000, &mut s.min_invoice_cents);
    int(p.overage_grace_days, "overage_grace_days", 365, &mut s.overage_grace_days);
    int(p.quote_validity_days, "quote_validity_days", 365, &mut s.quote_validity_days);
    if let Some(v) = p.receivable_account {
        s.receivable_account = account(&v, "receivable_account", &mut e);
    }
    if let Some(v) = p.revenue_account {
        s.revenue_account = account(&v, "revenue_account", &mut e);
    }
    if let Some(v) = p.vat_account {
        s.vat_account = account(&v, "vat_account", &mut e);
    }
    if let Some(v) = p.sales_journal {
        match shrooms_accounting::domain::parse_journal_code(&v) {
            Ok(j) => s.sales_journal = j,
            Err(m) => e.push(FieldError::new("sales_journal", m)),
        }
    }
    if let Some(v) = p.number_with_year {
        s.number_with_year = v;
    }
    if !s.siret.is_empty() && !s.siren.is_empty() && !s.siret.starts_with(&s.siren) {
        e.push(FieldError::new("siret", "The SIRET starts with the SIREN."));
    }
    if e.is_empty() {
        Ok(())
    } else {
        Err(e)
    }
}

pub async fn update_settings(db: &Db, who: &Who, cap: &CanAdmin, p: SettingsInput) -> CoreResult<Settings> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = settings_in(tx.conn(), org).await?;
    let mut s = before.clone();
    apply(&mut s, p).map_err(CoreError::Validation)?;
    sqlx::query(
        "UPDATE inv_settings SET legal_name = $1, legal_form = $2, share_capital = $3, siren = $4, siret = $5, \
         vat_number = $6, rcs = $7, address = $8, postcode = $9, city = $10, country = $11, email = $12, phone = $13, \
         iban = $14, bic = $15, vat_regime = $16, payment_terms_days = $17, late_penalty = $18, \
         min_invoice_cents = $19, overage_grace_days = $20, receivable_account = $21, revenue_account = $22, \
         vat_account = $23, sales_journal = $24, number_with_year = $25, quote_validity_days = $26, updated_at = $27 \
         WHERE org_id = $28",
    )
    .bind(&s.legal_name)
    .bind(&s.legal_form)
    .bind(&s.share_capital)
    .bind(&s.siren)
    .bind(&s.siret)
    .bind(&s.vat_number)
    .bind(&s.rcs)
    .bind(&s.address)
    .bind(&s.postcode)
    .bind(&s.city)
    .bind(&s.country)
    .bind(&s.email)
    .bind(&s.phone)
    .bind(&s.iban)
    .bind(&s.bic)
    .bind(&s.vat_regime)
    .bind(s.payment_terms_days)
    .bind(&s.late_penalty)
    .bind(s.min_invoice_cents)
    .bind(s.overage_grace_days)
    .bind(&s.receivable_account)
    .bind(&s.revenue_account)
    .bind(&s.vat_account)
    .bind(&s.sales_journal)
    .bind(s.number_with_year as i64)
    .bind(s.quote_validity_days)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .execute(tx.conn())
    .await?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.settings.update",
        "inv_settings",
        &org.to_string(),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&s).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

// ---------- VAT rates ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VatRate {
    pub id: String,
    /// The code lines and products use (`FR-20`, `E`).
    pub code: String,
    pub label: String,
    /// EN 16931 category: S standard, Z zero, E exempt, AE reverse charge,
    /// K intra-community, G export, O outside scope.
    pub category: String,
    /// Hundredths of a percent: 2000 is 20 %.
    pub rate_bp: i64,
    pub valid_from: String,
    pub valid_to: Option<String>,
    /// The legal mention printed for a non-standard category.
    pub exemption_reason: Option<String>,
    /// The VAT account of this rate; the settings' account when empty.
    pub account: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVatRate {
    pub code: String,
    pub label: String,
    /// S, Z, E, AE, K, G or O. Default S.
    #[serde(default)]
    pub category: Option<String>,
    pub rate_bp: i64,
    /// `YYYY-MM-DD`: the rate applies to documents issued from this day;
    /// the code's previous rate ends the day before.
    pub valid_from: String,
    #[serde(default)]
    pub exemption_reason: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
}

const CATEGORIES: &[&str] = &["S", "Z", "E", "AE", "K", "G", "O"];
const RATE_COLS: &str = "id, code, label, category, rate_bp, valid_from, valid_to, exemption_reason, account";

fn rate_from(r: &AnyRow) -> Result<VatRate, sqlx::Error> {
    Ok(VatRate {
        id: r.try_get(0)?,
        code: r.try_get(1)?,
        label: r.try_get(2)?,
        category: r.try_get(3)?,
        rate_bp: r.try_get(4)?,
        valid_from: r.try_get(5)?,
        valid_to: r.try_get(6)?,
        exemption_reason: r.try_get(7)?,
        account: r.try_get(8)?,
    })
}

pub async fn list_vat_rates(db: &Db, cap: &CanRead) -> CoreResult<Vec<VatRate>> {
    let rows =
        sqlx::query(&format!("SELECT {RATE_COLS} FROM inv_vat_rates WHERE org_id = $1 ORDER BY code, valid_from"))
            .bind(cap.org().to_string())
            .fetch_all(db.pool())
            .await?;
    Ok(rows.iter().map(rate_from).collect::<Result<_, _>>()?)
}

/// The rate of `code` on `date`, if the code exists and covers that day.
pub async fn rate_at(conn: &mut AnyConnection, org: OrgId, code: &str, date: Day) -> CoreResult<Option<VatRate>> {
    let d = date.iso();
    let r = sqlx::query(&format!(
        "SELECT {RATE_COLS} FROM inv_vat_rates WHERE org_id = $1 AND code = $2 AND valid_from <= $3 \
         AND (valid_to IS NULL OR valid_to >= $3) ORDER BY valid_from DESC LIMIT 1"
    ))
    .bind(org.to_string())
    .bind(code)
    .bind(&d)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(r.as_ref().map(rate_from).transpose()?)
}

/// Every rate of the organisation, to resolve many lines without a query each.
pub async fn all_rates(conn: &mut AnyConnection, org: OrgId) -> CoreResult<Vec<VatRate>> {
    let rows =
        sqlx::query(&format!("SELECT {RATE_COLS} FROM inv_vat_rates WHERE org_id = $1 ORDER BY code, valid_from"))
            .bind(org.to_string())
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.iter().map(rate_from).collect::<Result<_, _>>()?)
}

/// The rate of `code` on `date` among `rates`.
pub fn pick_rate<'a>(rates: &'a [VatRate], code: &str, date: Day) -> Option<&'a VatRate> {
    let d = date.iso();
    rates
        .iter()
        .filter(|r| r.code == code && r.valid_from <= d && r.valid_to.as_deref().is_none_or(|t| t >= d.as_str()))
        .max_by(|a, b| a.valid_from.cmp(&b.valid_from))
}

/// Adds a rate for a code from a date. The code's rate in force on that day
/// ends the day before; documents already computed keep their stored rate.
pub async fn add_vat_rate(db: &Db, who: &Who, cap: &CanAdmin, input: NewVatRate) -> CoreResult<VatRate> {
    let mut e = Vec::new();
    let code = input.code.trim().to_string();
    if code.is_empty()
        || code.len() > 20
        || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        e.push(FieldError::new("code", "A VAT code has 1 to 20 letters, digits, dots or dashes, such as FR-20."));
    }
    let label = required(&input.label, "label", 100, &mut e);
    let category = input.category.as_deref().unwrap_or("S").trim().to_ascii_uppercase();
    if !CATEGORIES.contains(&category.as_str()) {
        e.push(FieldError::new("category", "Choose S, Z, E, AE, K, G or O."));
    }
    if !(0..=10_000).contains(&input.rate_bp) {
        e.push(FieldError::new("rate_bp", "A rate is in hundredths of a percent, from 0 to 10000 (20 % is 2000)."));
    }
    if category == "S" && input.rate_bp == 0 {
        e.push(FieldError::new("rate_bp", "A standard rate is above zero; use category Z or E for a zero rate."));
    }
    if category != "S" && input.rate_bp != 0 {
        e.push(FieldError::new("rate_bp", "Only the standard category (S) has a non-zero rate."));
    }
    let reason = input.exemption_reason.as_deref().map(|r| text(r, "exemption_reason", 300, &mut e));
    let reason = reason.filter(|r| !r.is_empty());
    if category != "S" && reason.is_none() {
        e.push(FieldError::new(
            "exemption_reason",
            "Give the legal mention of this exemption, such as \"TVA non applicable, art. 293 B du CGI\".",
        ));
    }
    let acct = match input.account.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(account(a, "account", &mut e)),
    };
    let from = day(&input.valid_from, "valid_from", &mut e);
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    let from = from.expect("checked");
    let org = cap.org();
    let mut tx = db.begin().await?;
    // A later rate already planned for this code keeps its start: the new one ends before it.
    let next: Option<String> =
        sqlx::query("SELECT MIN(valid_from) FROM inv_vat_rates WHERE org_id = $1 AND code = $2 AND valid_from > $3")
            .bind(org.to_string())
            .bind(&code)
            .bind(from.iso())
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
    let same = sqlx::query("SELECT 1 FROM inv_vat_rates WHERE org_id = $1 AND code = $2 AND valid_from = $3")
        .bind(org.to_string())
        .bind(&code)
        .bind(from.iso())
        .fetch_optional(tx.conn())
        .await?;
    if same.is_some() {
        return Err(CoreError::Conflict {
            field: Some("valid_from".into()),
            message: format!("The code {code} already has a rate starting on {from}."),
        });
    }
    sqlx::query(
        "UPDATE inv_vat_rates SET valid_to = $1 WHERE org_id = $2 AND code = $3 AND valid_from < $4 \
         AND (valid_to IS NULL OR valid_to >= $4)",
    )
    .bind(from.prev().iso())
    .bind(org.to_string())
    .bind(&code)
    .bind(from.iso())
    .execute(tx.conn())
    .await?;
    let valid_to = next.and_then(|n| Day::parse(&n).ok()).map(|n| n.prev().iso());
    let rate = VatRate {
        id: uuid::Uuid::now_v7().to_string(),
        code,
        label,
        category,
        rate_bp: input.rate_bp,
        valid_from: from.iso(),
        valid_to,
        exemption_reason: reason,
        account: acct,
    };
    sqlx::query(
        "INSERT INTO inv_vat_rates (id, org_id, code, label, category, rate_bp, valid_from, valid_to, \
         exemption_reason, account, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&rate.id)
    .bind(org.to_string())
    .bind(&rate.code)
    .bind(&rate.label)
    .bind(&rate.category)
    .bind(rate.rate_bp)
    .bind(&rate.valid_from)
    .bind(&rate.valid_to)
    .bind(&rate.exemption_reason)
    .bind(&rate.account)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.vat_rate.add",
        "inv_vat_rate",
        &rate.id,
        None,
        serde_json::to_value(&rate).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(rate)
}

// ---------- products ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// service, goods, subscription, hosting, time, due…
    pub product_type: String,
    /// UN/ECE Recommendation 20 unit: C62 one, HUR hour, DAY day, MON month, KGM kilogram.
    pub unit_code: String,
    pub unit_price_cents: i64,
    pub vat_code: String,
    pub revenue_account: Option<String>,
    pub archived: bool,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub product_type: Option<String>,
    #[serde(default)]
    pub unit_code: Option<String>,
    pub unit_price_cents: i64,
    pub vat_code: String,
    #[serde(default)]
    pub revenue_account: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

const PRODUCT_COLS: &str =
    "id, sku, name, description, product_type, unit_code, unit_price_cents, vat_code, revenue_account, archived";

fn product_from(r: &AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        id: r.try_get(0)?,
        sku: r.try_get(1)?,
        name: r.try_get(2)?,
        description: r.try_get(3)?,
        product_type: r.try_get(4)?,
        unit_code: r.try_get(5)?,
        unit_price_cents: r.try_get(6)?,
        vat_code: r.try_get(7)?,
        revenue_account: r.try_get(8)?,
        archived: r.try_get::<i64, _>(9)? != 0,
    })
}

/// UN/ECE unit codes: 1 to 3 upper-case letters or digits.
pub fn check_unit(s: &str, field: &str, e: &mut Vec<FieldError>) -> String {
    let u = s.trim().to_ascii_uppercase();
    if u.is_empty() || u.len() > 3 || !u.bytes().all(|b| b.is_ascii_alphanumeric()) {
        e.push(FieldError::new(field, "A unit is a UN/ECE code such as C62 (one), HUR (hour), DAY or MON."));
    }
    u
}

pub async fn list_products(db: &Db, cap: &CanRead, include_archived: bool) -> CoreResult<Vec<Product>> {
    let rows = sqlx::query(&format!(
        "SELECT {PRODUCT_COLS} FROM inv_products WHERE org_id = $1 AND (archived = 0 OR $2 = 1) ORDER BY name, sku"
    ))
    .bind(cap.org().to_string())
    .bind(include_archived as i64)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(product_from).collect::<Result<_, _>>()?)
}

pub async fn product_in(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Option<Product>> {
    let r = sqlx::query(&format!("SELECT {PRODUCT_COLS} FROM inv_products WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.as_ref().map(product_from).transpose()?)
}

pub async fn get_product(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Product> {
    let mut conn = db.pool().acquire().await?;
    product_in(&mut conn, cap.org(), id).await?.ok_or(CoreError::NotFound)
}

async fn check_product(conn: &mut AnyConnection, org: OrgId, input: ProductInput) -> CoreResult<Product> {
    let mut e = Vec::new();
    let sku = required(&input.sku, "sku", 60, &mut e);
    let name = required(&input.name, "name", 200, &mut e);
    let description = text(input.description.as_deref().unwrap_or(""), "description", 2000, &mut e);
    let product_type = input.product_type.as_deref().unwrap_or("service").trim().to_ascii_lowercase();
    if product_type.is_empty()
        || product_type.len() > 30
        || !product_type.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        e.push(FieldError::new("product_type", "A type is a lower-case word: service, goods, subscription, hosting…"));
    }
    let unit_code = check_unit(input.unit_code.as_deref().unwrap_or("C62"), "unit_code", &mut e);
    if !(0..=10_000_000_000).contains(&input.unit_price_cents) {
        e.push(FieldError::new("unit_price_cents", "A price is a positive number of cents."));
    }
    let vat_code = input.vat_code.trim().to_string();
    let known = sqlx::query("SELECT 1 FROM inv_vat_rates WHERE org_id = $1 AND code = $2 LIMIT 1")
        .bind(org.to_string())
        .bind(&vat_code)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        e.push(FieldError::new("vat_code", format!("There is no VAT code {vat_code}.")));
    }
    let revenue_account = match input.revenue_account.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(account(a, "revenue_account", &mut e)),
    };
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    Ok(Product {
        id: String::new(),
        sku,
        name,
        description,
        product_type,
        unit_code,
        unit_price_cents: input.unit_price_cents,
        vat_code,
        revenue_account,
        archived: input.archived.unwrap_or(false),
    })
}

fn sku_taken(e: CoreError) -> CoreError {
    match e {
        CoreError::Conflict { .. } => {
            CoreError::Conflict { field: Some("sku".into()), message: "Another product has this SKU.".into() }
        }
        e => e,
    }
}

pub async fn create_product(db: &Db, who: &Who, cap: &CanWrite, input: ProductInput) -> CoreResult<Product> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let mut p = check_product(tx.conn(), org, input).await?;
    p.id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO inv_products (id, org_id, sku, name, description, product_type, unit_code, unit_price_cents, \
         vat_code, revenue_account, archived, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&p.id)
    .bind(org.to_string())
    .bind(&p.sku)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.product_type)
    .bind(&p.unit_code)
    .bind(p.unit_price_cents)
    .bind(&p.vat_code)
    .bind(&p.revenue_account)
    .bind(p.archived as i64)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(|e| sku_taken(e.into()))?;
    audited(&mut tx, who, org, "invoicing.product.create", "inv_product", &p.id, None, serde_json::to_value(&p).ok())
        .await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn update_product(db: &Db, who: &Who, cap: &CanWrite, id: &str, input: ProductInput) -> CoreResult<Product> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = product_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    let mut p = check_product(tx.conn(), org, input).await?;
    p.id = before.id.clone();
    sqlx::query(
        "UPDATE inv_products SET sku = $1, name = $2, description = $3, product_type = $4, unit_code = $5, \
         unit_price_cents = $6, vat_code = $7, revenue_account = $8, archived = $9, updated_at = $10 \
         WHERE org_id = $11 AND id = $12",
    )
    .bind(&p.sku)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.product_type)
    .bind(&p.unit_code)
    .bind(p.unit_price_cents)
    .bind(&p.vat_code)
    .bind(&p.revenue_account)
    .bind(p.archived as i64)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .bind(id)
    .execute(tx.conn())
    .await
    .map_err(|e| sku_taken(e.into()))?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.product.update",
        "inv_product",
        id,
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&p).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_numbers_are_checked() {
        assert_eq!(check_siren("732 829 320"), Ok("732829320".into()));
        assert!(check_siren("732829321").is_err());
        assert!(check_siren("12345").is_err());
        assert_eq!(check_siret("73282932000074"), Ok("73282932000074".into()));
        assert!(check_siret("73282932000075").is_err());
        assert_eq!(check_vat_number("FR44 732829320"), Ok("FR44732829320".into()));
        assert!(check_vat_number("FR45732829320").is_err());
        assert_eq!(check_iban("FR76 3000 6000 0112 3456 7890 189"), Ok("FR7630006000011234567890189".into()));
        assert!(check_iban("FR76 3000 6000 0112 3456 7890 188").is_err());
        assert_eq!(check_bic("agrifrpp"), Ok("AGRIFRPP".into()));
        assert!(check_bic("AGRI1RPP").is_err());
        // Whatever is typed, an answer and never a panic.
        for odd in ["\u{f1044}\u{f}\u{4}", "ÉÉ123456", "FR\u{e9}1234567890", "é", "AGRIFRé"] {
            let _ = (check_vat_number(odd), check_bic(odd), check_iban(odd), check_siren(odd), check_siret(odd));
        }
    }
}

// ---------- list cursors ----------

/// An opaque keyset cursor: the hex of the JSON of the last row's keys.
pub(crate) fn encode_cursor<T: Serialize>(keys: &T) -> String {
    shrooms_core::crypto::hex(&serde_json::to_vec(keys).unwrap_or_default())
}

pub(crate) fn decode_cursor<T: serde::de::DeserializeOwned>(c: &str) -> Option<T> {
    if c.len() % 2 != 0 || c.len() > 2000 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..c.len()).step_by(2).map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok()).collect();
    serde_json::from_slice(&bytes?).ok()
}
