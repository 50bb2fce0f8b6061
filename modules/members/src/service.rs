//! Use cases of memberships and dues, with their SQL: every function takes a
//! capability (the tenant travels in it), checks its input, and writes the
//! change with its audit entry in one transaction. Dues post their ledger
//! entry through the accounting module's `post_entries`, in the same
//! durable transaction.
//!
//! Members are the core's people: this module reads `people` (names,
//! e-mail) and never writes it; what only members have (postal address,
//! household) lives in `mem_profiles`.

use crate::domain::{
    self, cents_text, effective_end, parse_date, CloseReason, FeeRule, Origin, PeriodFacts, PeriodRule, Rules, Span,
    Standing, Tier, TypeKind,
};
use crate::error::{MemError, MemResult};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entries, NewEntry};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{placeholders, Tx};
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::{CoreError, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

pub const MODULE: &str = "members";

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Today in the organisation's time zone.
pub fn today(zone: &str) -> Date {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned(tz).date()
}

/// Today in the time zone of an organisation read by id (jobs and hooks
/// that have no `Org` at hand).
pub(crate) async fn org_today(conn: &mut sqlx::AnyConnection, org: OrgId) -> shrooms_core::CoreResult<Date> {
    let tz: Option<String> = sqlx::query("SELECT timezone FROM orgs WHERE id = $1")
        .bind(org.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(today(tz.as_deref().unwrap_or("UTC")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    action: &str,
    kind: &str,
    id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> MemResult<()> {
    audit::record(
        tx,
        who,
        Change { org: Some(org), action, entity_type: kind, entity_id: id.to_string(), before, after },
    )
    .await?;
    Ok(())
}

pub(crate) fn opt_date(s: Option<String>) -> Option<Date> {
    s.and_then(|s| s.parse().ok())
}

pub(crate) fn text_field(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize, required: bool) -> String {
    let v = v.trim().to_string();
    if required && v.is_empty() {
        errors.push(FieldError::new(field, "This field is required."));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(field, format!("Use at most {max} characters.")));
    }
    v
}

// ---------- settings ----------

/// How dues are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuesPath {
    /// A receipt numbered by this module, and the ledger entry of the payment.
    Receipt,
    /// An invoice line through the invoicing module (not wired yet: refused).
    Invoice,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    pub dues_path: DuesPath,
    /// The income account dues are credited to (7561 "cotisations sans contrepartie").
    pub dues_account: String,
    /// The account debited for payments other than cash.
    pub bank_account: String,
    /// The account debited for cash payments.
    pub cash_account: String,
    /// The income account donations are credited to (7541 "dons manuels").
    #[serde(default = "default_donations_account")]
    pub donations_account: String,
    /// The organisation's identity on tax receipts: its legal name (the
    /// organisation's name when empty), address and object.
    #[serde(default)]
    pub legal_name: String,
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub postcode: String,
    #[serde(default)]
    pub city: String,
    /// What the organisation is for, as its statutes say.
    #[serde(default)]
    pub object: String,
    /// `general_interest` (œuvre ou organisme d'intérêt général),
    /// `public_utility` (reconnue d'utilité publique), `other`.
    #[serde(default = "default_organism_kind")]
    pub organism_kind: String,
    /// Who signs tax receipts (name and office).
    #[serde(default)]
    pub signatory: String,
}

fn default_donations_account() -> String {
    "7541".into()
}

fn default_organism_kind() -> String {
    "general_interest".into()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dues_path: DuesPath::Receipt,
            dues_account: "7561".into(),
            bank_account: "512".into(),
            cash_account: "531".into(),
            donations_account: default_donations_account(),
            legal_name: String::new(),
            street: String::new(),
            postcode: String::new(),
            city: String::new(),
            object: String::new(),
            organism_kind: default_organism_kind(),
            signatory: String::new(),
        }
    }
}

const SETTINGS_COLS: &str =
    "dues_path, dues_account, bank_account, cash_account, donations_account, legal_name, street, \
     postcode, city, object, organism_kind, signatory FROM mem_settings";

fn settings_row(r: &AnyRow) -> MemResult<Settings> {
    Ok(Settings {
        dues_path: if r.try_get::<String, _>(0)? == "invoice" { DuesPath::Invoice } else { DuesPath::Receipt },
        dues_account: r.try_get(1)?,
        bank_account: r.try_get(2)?,
        cash_account: r.try_get(3)?,
        donations_account: r.try_get(4)?,
        legal_name: r.try_get(5)?,
        street: r.try_get(6)?,
        postcode: r.try_get(7)?,
        city: r.try_get(8)?,
        object: r.try_get(9)?,
        organism_kind: r.try_get(10)?,
        signatory: r.try_get(11)?,
    })
}

pub const INVOICE_PATH_UNAVAILABLE: &str = "Dues are invoiced (the settings' dues path): record the payment of the member's dues invoice (the member's page, or POST …/members/invoice-payments), or let the member pay it online.";

pub async fn settings(db: &Db, org: OrgId) -> MemResult<Settings> {
    let mut conn = db.pool().acquire().await?;
    settings_in(&mut conn, org).await
}

pub(crate) async fn settings_in(conn: &mut sqlx::AnyConnection, org: OrgId) -> MemResult<Settings> {
    let r = sqlx::query(&format!("SELECT {SETTINGS_COLS} WHERE org_id = $1"))
        .bind(org.to_string())
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(settings_row).transpose().map(Option::unwrap_or_default)
}

pub async fn save_settings(db: &Db, who: &Who, cap: &CanAdmin, s: Settings) -> MemResult<Settings> {
    if s.dues_path == DuesPath::Invoice {
        crate::billing::check_available(db, cap.org()).await?;
    }
    let mut errors = Vec::new();
    let mut account = |f: &str, v: &str| -> String {
        if shrooms_accounting::domain::parse_account_number(v).is_err() {
            errors.push(FieldError::new(f, "Write an account number of the chart, such as 7561 or 512."));
        }
        v.trim().to_string()
    };
    let clean = Settings {
        dues_path: s.dues_path,
        dues_account: account("dues_account", &s.dues_account),
        bank_account: account("bank_account", &s.bank_account),
        cash_account: account("cash_account", &s.cash_account),
        donations_account: account("donations_account", &s.donations_account),
        legal_name: text_field(&mut errors, "legal_name", &s.legal_name, 200, false),
        street: text_field(&mut errors, "street", &s.street, 200, false),
        postcode: text_field(&mut errors, "postcode", &s.postcode, 16, false),
        city: text_field(&mut errors, "city", &s.city, 100, false),
        object: text_field(&mut errors, "object", &s.object, 1000, false),
        organism_kind: s.organism_kind.trim().to_string(),
        signatory: text_field(&mut errors, "signatory", &s.signatory, 200, false),
    };
    if !["general_interest", "public_utility", "other"].contains(&clean.organism_kind.as_str()) {
        errors.push(FieldError::new("organism_kind", "Choose general_interest, public_utility or other."));
    }
    MemError::check(errors)?;
    let before = settings(db, cap.org()).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_settings (org_id, dues_path, dues_account, bank_account, cash_account, donations_account, \
         legal_name, street, postcode, city, object, organism_kind, signatory, updated_at) \
         VALUES ($1, $14, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (org_id) DO UPDATE SET \
         dues_path = $14, dues_account = $2, bank_account = $3, cash_account = $4, donations_account = $5, legal_name = $6, street = $7, \
         postcode = $8, city = $9, object = $10, organism_kind = $11, signatory = $12, updated_at = $13",
    )
    .bind(cap.org().to_string())
    .bind(&clean.dues_account)
    .bind(&clean.bank_account)
    .bind(&clean.cash_account)
    .bind(&clean.donations_account)
    .bind(&clean.legal_name)
    .bind(&clean.street)
    .bind(&clean.postcode)
    .bind(&clean.city)
    .bind(&clean.object)
    .bind(&clean.organism_kind)
    .bind(&clean.signatory)
    .bind(Timestamp::now().0)
    .bind(if clean.dues_path == DuesPath::Invoice { "invoice" } else { "receipt" })
    .execute(tx.conn())
    .await?;
    let org = cap.org().to_string();
    record(
        &mut tx,
        who,
        cap.org(),
        "members.settings",
        "members_settings",
        &org,
        Some(json!(before)),
        Some(json!(clean)),
    )
    .await?;
    tx.commit().await?;
    Ok(clean)
}

// ---------- membership types ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MembershipType {
    pub id: String,
    pub name: String,
    pub kind: TypeKind,
    pub fee_rule: FeeRule,
    /// Fixed fee, minimum of a free amount, or the fee of a whole period when prorated.
    pub fee_cents: i64,
    pub tiers: Vec<Tier>,
    pub period_rule: PeriodRule,
    /// First month of the school year (1–12), for `school_year`.
    pub school_start_month: i64,
    /// Whether members of this type vote at general assemblies.
    pub voting: bool,
    pub archived: bool,
}

impl MembershipType {
    pub fn rules(&self) -> Rules {
        Rules {
            fee_rule: self.fee_rule,
            fee_cents: self.fee_cents,
            tiers: self.tiers.clone(),
            period_rule: self.period_rule,
            school_start_month: self.school_start_month as i8,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeInput {
    pub name: Option<String>,
    #[schema(value_type = Option<String>, example = "individual")]
    pub kind: Option<String>,
    #[schema(value_type = Option<String>, example = "fixed")]
    pub fee_rule: Option<String>,
    pub fee_cents: Option<i64>,
    pub tiers: Option<Vec<Tier>>,
    #[schema(value_type = Option<String>, example = "calendar_year")]
    pub period_rule: Option<String>,
    pub school_start_month: Option<i64>,
    pub voting: Option<bool>,
    pub archived: Option<bool>,
}

const TYPE_COLS: &str =
    "id, name, kind, fee_rule, fee_cents, tiers, period_rule, school_start_month, voting, archived FROM mem_types";

fn type_row(r: &AnyRow) -> MemResult<MembershipType> {
    let bad = |what: &str| MemError::Core(CoreError::Internal(format!("stored membership type has a bad {what}")));
    Ok(MembershipType {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: TypeKind::parse(&r.try_get::<String, _>(2)?).ok_or_else(|| bad("kind"))?,
        fee_rule: FeeRule::parse(&r.try_get::<String, _>(3)?).ok_or_else(|| bad("fee rule"))?,
        fee_cents: r.try_get(4)?,
        tiers: serde_json::from_str(&r.try_get::<String, _>(5)?).map_err(|_| bad("tier list"))?,
        period_rule: PeriodRule::parse(&r.try_get::<String, _>(6)?).ok_or_else(|| bad("period rule"))?,
        school_start_month: r.try_get(7)?,
        voting: r.try_get::<i64, _>(8)? != 0,
        archived: r.try_get::<i64, _>(9)? != 0,
    })
}

pub async fn types(db: &Db, cap: &CanRead) -> MemResult<Vec<MembershipType>> {
    let mut conn = db.pool().acquire().await?;
    list_types_in(&mut conn, cap.org()).await
}

/// The organisation's types, archived last, by name.
async fn list_types_in(conn: &mut sqlx::AnyConnection, org: OrgId) -> MemResult<Vec<MembershipType>> {
    let rows = sqlx::query(&format!("SELECT {TYPE_COLS} WHERE org_id = $1 ORDER BY archived, name"))
        .bind(org.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(type_row).collect()
}

pub(crate) async fn type_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<MembershipType>> {
    let r = sqlx::query(&format!("SELECT {TYPE_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(type_row).transpose()
}

pub async fn get_type(db: &Db, cap: &CanRead, id: &str) -> MemResult<MembershipType> {
    let mut conn = db.pool().acquire().await?;
    type_in(&mut conn, cap.org(), id).await?.ok_or(MemError::Core(CoreError::NotFound))
}

/// Merges an input over a type (or the defaults) and checks it all.
fn merge_type(input: &TypeInput, base: Option<&MembershipType>) -> MemResult<MembershipType> {
    let mut errors = Vec::new();
    let name = text_field(
        &mut errors,
        "name",
        input.name.as_deref().or(base.map(|b| b.name.as_str())).unwrap_or(""),
        100,
        true,
    );
    let mut pick = |field: &str, v: &Option<String>, old: Option<&'static str>, default: &'static str| -> String {
        let s = v.as_deref().map(str::trim).unwrap_or(old.unwrap_or(default)).to_string();
        if s.is_empty() {
            errors.push(FieldError::new(field, "This field is required."));
        }
        s
    };
    let kind = pick("kind", &input.kind, base.map(|b| b.kind.as_str()), "individual");
    let fee_rule = pick("fee_rule", &input.fee_rule, base.map(|b| b.fee_rule.as_str()), "fixed");
    let period_rule = pick("period_rule", &input.period_rule, base.map(|b| b.period_rule.as_str()), "calendar_year");
    let kind = TypeKind::parse(&kind);
    if kind.is_none() {
        errors.push(FieldError::new("kind", "Choose individual, family, legal_entity, honorary or free."));
    }
    let fee_rule = FeeRule::parse(&fee_rule);
    if fee_rule.is_none() {
        errors.push(FieldError::new("fee_rule", "Choose fixed, tiers, free_amount or prorated."));
    }
    let period_rule = PeriodRule::parse(&period_rule);
    if period_rule.is_none() {
        errors
            .push(FieldError::new("period_rule", "Choose calendar_year, school_year, rolling_12_months or lifetime."));
    }
    let month = input.school_start_month.or(base.map(|b| b.school_start_month)).unwrap_or(9);
    let (Some(kind), Some(fee_rule), Some(period_rule)) = (kind, fee_rule, period_rule) else {
        return Err(MemError::Invalid(errors));
    };
    let rules = Rules {
        fee_rule,
        fee_cents: input.fee_cents.or(base.map(|b| b.fee_cents)).unwrap_or(0),
        tiers: input.tiers.clone().or(base.map(|b| b.tiers.clone())).unwrap_or_default(),
        period_rule,
        school_start_month: month.clamp(0, 13) as i8,
    };
    errors.extend(rules.check());
    MemError::check(errors)?;
    Ok(MembershipType {
        id: base.map(|b| b.id.clone()).unwrap_or_else(new_id),
        name,
        kind,
        fee_rule,
        fee_cents: rules.fee_cents,
        tiers: rules.tiers.iter().map(|t| Tier { label: t.label.trim().into(), fee_cents: t.fee_cents }).collect(),
        period_rule,
        school_start_month: month,
        voting: input.voting.or(base.map(|b| b.voting)).unwrap_or(true),
        archived: input.archived.or(base.map(|b| b.archived)).unwrap_or(false),
    })
}

fn name_taken(e: sqlx::Error) -> MemError {
    MemError::Core(CoreError::from(e).on_conflict("name", "A membership type already has this name."))
}

pub async fn create_type(db: &Db, who: &Who, cap: &CanAdmin, input: TypeInput) -> MemResult<MembershipType> {
    let t = merge_type(&input, None)?;
    let mut tx = db.begin().await?;
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO mem_types (id, org_id, name, kind, fee_rule, fee_cents, tiers, period_rule, school_start_month, \
         voting, archived, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&t.id)
    .bind(cap.org().to_string())
    .bind(&t.name)
    .bind(t.kind.as_str())
    .bind(t.fee_rule.as_str())
    .bind(t.fee_cents)
    .bind(serde_json::to_string(&t.tiers).unwrap_or_else(|_| "[]".into()))
    .bind(t.period_rule.as_str())
    .bind(t.school_start_month)
    .bind(t.voting as i64)
    .bind(t.archived as i64)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(name_taken)?;
    record(&mut tx, who, cap.org(), "members.type.create", "membership_type", &t.id, None, Some(json!(t))).await?;
    tx.commit().await?;
    Ok(t)
}

/// Changes a type. Periods already recorded keep their dates and fees:
/// rules apply to the periods that start after the change.
pub async fn update_type(db: &Db, who: &Who, cap: &CanAdmin, id: &str, input: TypeInput) -> MemResult<MembershipType> {
    let mut tx = db.begin().await?;
    let before = type_in(tx.conn(), cap.org(), id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    let t = merge_type(&input, Some(&before))?;
    sqlx::query(
        "UPDATE mem_types SET name = $1, kind = $2, fee_rule = $3, fee_cents = $4, tiers = $5, period_rule = $6, \
         school_start_month = $7, voting = $8, archived = $9, updated_at = $10 WHERE org_id = $11 AND id = $12",
    )
    .bind(&t.name)
    .bind(t.kind.as_str())
    .bind(t.fee_rule.as_str())
    .bind(t.fee_cents)
    .bind(serde_json::to_string(&t.tiers).unwrap_or_else(|_| "[]".into()))
    .bind(t.period_rule.as_str())
    .bind(t.school_start_month)
    .bind(t.voting as i64)
    .bind(t.archived as i64)
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(id)
    .execute(tx.conn())
    .await
    .map_err(name_taken)?;
    record(&mut tx, who, cap.org(), "members.type.update", "membership_type", id, Some(json!(before)), Some(json!(t)))
        .await?;
    tx.commit().await?;
    Ok(t)
}

// ---------- people, profiles, households ----------

/// A member as this module shows them: the core person's name and e-mail,
/// and the address of their profile or, failing that, of their household.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberPerson {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    /// The person's e-mail, or the household's.
    pub email: Option<String>,
    pub address: Address,
    /// Whether the address is the household's.
    pub shares_household_address: bool,
    pub household: Option<HouseholdRef>,
}

#[derive(Clone, Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct Address {
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub postcode: String,
    #[serde(default)]
    pub city: String,
    /// ISO 3166-1 alpha-2 code, `FR` when left empty.
    #[serde(default)]
    pub country: String,
}

/// An address is read from a JSON object only (serde would also take a
/// list of its fields), each field optional, no other field.
impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default)]
            street: String,
            #[serde(default)]
            postcode: String,
            #[serde(default)]
            city: String,
            #[serde(default)]
            country: String,
        }
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let f: Fields = serde_json::from_value(Value::Object(map)).map_err(serde::de::Error::custom)?;
        Ok(Address { street: f.street, postcode: f.postcode, city: f.city, country: f.country })
    }
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.street.is_empty() && self.postcode.is_empty() && self.city.is_empty()
    }
    pub(crate) fn check(&self, prefix: &str, errors: &mut Vec<FieldError>) -> Address {
        let f = |n: &str| format!("{prefix}{n}");
        let street = text_field(errors, &f("street"), &self.street, 200, false);
        let postcode = text_field(errors, &f("postcode"), &self.postcode, 16, false);
        let city = text_field(errors, &f("city"), &self.city, 100, false);
        let mut country = self.country.trim().to_ascii_uppercase();
        if country.is_empty() {
            country = "FR".into();
        }
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(FieldError::new(f("country"), "Use the two-letter country code, such as FR or BE."));
        }
        Address { street, postcode, city, country }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HouseholdRef {
    pub id: String,
    pub name: String,
    /// `head`, `member` or `representative`.
    pub role: String,
}

const MEMBER_SELECT: &str =
    "SELECT p.id, p.given_name, p.family_name, p.email, m.street, m.postcode, m.city, m.country, \
     h.id, h.name, m.household_role, h.email, h.street, h.postcode, h.city, h.country \
     FROM people p LEFT JOIN mem_profiles m ON m.org_id = p.org_id AND m.person_id = p.id \
     LEFT JOIN mem_households h ON h.org_id = p.org_id AND h.id = m.household_id";

/// Reads a person of the organisation (and their profile); 404 if none.
pub async fn person_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<MemberPerson>> {
    let r = sqlx::query(&format!("{MEMBER_SELECT} WHERE p.org_id = $1 AND p.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(member_row).transpose()
}

/// Several people of the organisation by id, read a few hundred at a time
/// (the renewal run): those found, by id.
pub(crate) async fn people_in(tx: &mut Tx, org: OrgId, ids: &[&str]) -> MemResult<HashMap<String, MemberPerson>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(tx.backend().ids_per_statement(1)) {
        let sql = format!("{MEMBER_SELECT} WHERE p.org_id = $1 AND p.id IN ({})", placeholders(2, chunk.len()));
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(tx.conn()).await? {
            let m = member_row(&r)?;
            out.insert(m.id.clone(), m);
        }
    }
    Ok(out)
}

fn member_row(r: &AnyRow) -> MemResult<MemberPerson> {
    let own = Address {
        street: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        postcode: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        city: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
        country: r.try_get::<Option<String>, _>(7)?.unwrap_or_default(),
    };
    let hid: Option<String> = r.try_get(8)?;
    let household = match &hid {
        Some(h) => Some(HouseholdRef {
            id: h.clone(),
            name: r.try_get(9)?,
            role: r.try_get::<Option<String>, _>(10)?.unwrap_or_default(),
        }),
        None => None,
    };
    let hh_address = if hid.is_some() {
        Address { street: r.try_get(12)?, postcode: r.try_get(13)?, city: r.try_get(14)?, country: r.try_get(15)? }
    } else {
        Address::default()
    };
    let shares = own.is_empty() && !hh_address.is_empty();
    let email: Option<String> = r.try_get(3)?;
    let hh_email: Option<String> = if hid.is_some() { r.try_get(11)? } else { None };
    Ok(MemberPerson {
        id: r.try_get(0)?,
        given_name: r.try_get(1)?,
        family_name: r.try_get(2)?,
        email: email.or(hh_email),
        address: if shares { hh_address } else { own },
        shares_household_address: shares,
        household,
    })
}

pub fn display_name(p: &MemberPerson) -> String {
    format!("{} {}", p.given_name, p.family_name).trim().to_string()
}

pub(crate) async fn require_person(tx: &mut Tx, org: OrgId, field: &str, id: &str) -> MemResult<MemberPerson> {
    person_in(tx.conn(), org, id).await?.ok_or_else(|| MemError::field(field, "No such person in this organisation."))
}

/// Takes the person's profile row (creating it), which serialises the
/// writes about one member: two joins sent at once cannot both pass the
/// overlap check.
pub(crate) async fn lock_member(tx: &mut Tx, org: OrgId, person: &str) -> MemResult<()> {
    lock_members(tx, org, &[person]).await
}

/// [`lock_member`] for several people at once, by multi-row statements. The
/// rows are taken in id order, so two runs locking overlapping sets wait for
/// each other instead of deadlocking.
pub(crate) async fn lock_members(tx: &mut Tx, org: OrgId, people: &[&str]) -> MemResult<()> {
    let mut ids: Vec<&str> = people.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let now = Timestamp::now().0;
    for chunk in ids.chunks(tx.backend().ids_per_statement(2)) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, '', '', '', '', $2)", i + 3)).collect();
        let sql = format!(
            "INSERT INTO mem_profiles (org_id, person_id, street, postcode, city, country, updated_at) VALUES {} \
             ON CONFLICT (org_id, person_id) DO UPDATE SET street = mem_profiles.street",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string()).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// The member's own address; leave it empty to use the household's.
    pub address: Option<Address>,
}

pub async fn set_profile(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    person: &str,
    input: ProfileInput,
) -> MemResult<MemberPerson> {
    let mut errors = Vec::new();
    let address = input.address.unwrap_or_default().check("address.", &mut errors);
    MemError::check(errors)?;
    let mut tx = db.begin().await?;
    let before = person_in(tx.conn(), cap.org(), person).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    lock_member(&mut tx, cap.org(), person).await?;
    sqlx::query(
        "UPDATE mem_profiles SET street = $1, postcode = $2, city = $3, country = $4, updated_at = $5 \
         WHERE org_id = $6 AND person_id = $7",
    )
    .bind(&address.street)
    .bind(&address.postcode)
    .bind(&address.city)
    .bind(if address.is_empty() { "" } else { address.country.as_str() })
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(person)
    .execute(tx.conn())
    .await?;
    let after = person_in(tx.conn(), cap.org(), person).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(
        &mut tx,
        who,
        cap.org(),
        "members.profile.update",
        "person",
        person,
        Some(json!(before)),
        Some(json!(after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Household {
    pub id: String,
    /// `family` or `legal_entity` (an organisation with its representatives).
    pub kind: String,
    pub name: String,
    /// Shared by members without their own.
    pub email: Option<String>,
    pub address: Address,
    pub members: Vec<HouseholdMember>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HouseholdMember {
    pub person_id: String,
    pub name: String,
    pub role: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdInput {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub address: Option<Address>,
}

pub async fn households(db: &Db, cap: &CanRead) -> MemResult<Vec<Household>> {
    let rows = sqlx::query(
        "SELECT id, kind, name, email, street, postcode, city, country FROM mem_households WHERE org_id = $1 ORDER BY name, id",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(household_row(r)?);
    }
    let links = sqlx::query(
        "SELECT m.household_id, m.person_id, p.given_name, p.family_name, m.household_role FROM mem_profiles m \
         JOIN people p ON p.org_id = m.org_id AND p.id = m.person_id \
         WHERE m.org_id = $1 AND m.household_id IS NOT NULL ORDER BY p.family_name, p.given_name",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    let mut by: HashMap<String, Vec<HouseholdMember>> = HashMap::new();
    for r in &links {
        by.entry(r.try_get(0)?).or_default().push(HouseholdMember {
            person_id: r.try_get(1)?,
            name: format!("{} {}", r.try_get::<String, _>(2)?, r.try_get::<String, _>(3)?).trim().to_string(),
            role: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        });
    }
    for h in &mut out {
        h.members = by.remove(&h.id).unwrap_or_default();
    }
    Ok(out)
}

fn household_row(r: &AnyRow) -> MemResult<Household> {
    Ok(Household {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        name: r.try_get(2)?,
        email: r.try_get(3)?,
        address: Address {
            street: r.try_get(4)?,
            postcode: r.try_get(5)?,
            city: r.try_get(6)?,
            country: r.try_get(7)?,
        },
        members: vec![],
    })
}

pub async fn household(db: &Db, cap: &CanRead, id: &str) -> MemResult<Household> {
    households(db, cap).await?.into_iter().find(|h| h.id == id).ok_or(MemError::Core(CoreError::NotFound))
}

pub async fn create_household(db: &Db, who: &Who, cap: &CanWrite, input: HouseholdInput) -> MemResult<Household> {
    let mut errors = Vec::new();
    let name = text_field(&mut errors, "name", input.name.as_deref().unwrap_or(""), 150, true);
    let kind = input.kind.as_deref().unwrap_or("family").trim().to_string();
    if kind != "family" && kind != "legal_entity" {
        errors.push(FieldError::new("kind", "Choose family or legal_entity."));
    }
    // An empty address is not an address: leave the field out (or null) for none.
    let email = match input.email.as_deref().map(str::trim) {
        Some("") => {
            errors.push(FieldError::new("email", "Write an e-mail address, or leave the field out."));
            None
        }
        Some(e) => match shrooms_core::identity::normalize_email(e) {
            Ok(e) => Some(e),
            Err(fe) => {
                errors.push(fe);
                None
            }
        },
        None => None,
    };
    let address = input.address.unwrap_or_default().check("address.", &mut errors);
    MemError::check(errors)?;
    let h = Household { id: new_id(), kind, name, email, address, members: vec![] };
    let mut tx = db.begin().await?;
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO mem_households (id, org_id, kind, name, email, street, postcode, city, country, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(&h.id)
    .bind(cap.org().to_string())
    .bind(&h.kind)
    .bind(&h.name)
    .bind(&h.email)
    .bind(&h.address.street)
    .bind(&h.address.postcode)
    .bind(&h.address.city)
    .bind(&h.address.country)
    .bind(now)
    .execute(tx.conn())
    .await?;
    record(&mut tx, who, cap.org(), "members.household.create", "household", &h.id, None, Some(json!(h))).await?;
    tx.commit().await?;
    Ok(h)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdLink {
    pub person_id: Option<String>,
    /// `head`, `member` (default) or `representative` (of a legal entity).
    pub role: Option<String>,
}

/// Links a person to a household (moving them from another one).
pub async fn link_household(db: &Db, who: &Who, cap: &CanWrite, id: &str, link: HouseholdLink) -> MemResult<Household> {
    let mut tx = db.begin().await?;
    let exists = sqlx::query("SELECT id FROM mem_households WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_none() {
        return Err(MemError::Core(CoreError::NotFound));
    }
    let role = link.role.as_deref().unwrap_or("member").trim().to_string();
    if !["head", "member", "representative"].contains(&role.as_str()) {
        return Err(MemError::field("role", "Choose head, member or representative."));
    }
    let person = link.person_id.as_deref().map(str::trim).unwrap_or("");
    if person.is_empty() {
        return Err(MemError::field("person_id", "Choose the person to link."));
    }
    let before = require_person(&mut tx, cap.org(), "person_id", person).await?;
    lock_member(&mut tx, cap.org(), person).await?;
    sqlx::query(
        "UPDATE mem_profiles SET household_id = $1, household_role = $2, updated_at = $3 WHERE org_id = $4 AND person_id = $5",
    )
    .bind(id)
    .bind(&role)
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(person)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        who,
        cap.org(),
        "members.household.link",
        "person",
        person,
        Some(json!({"household": before.household})),
        Some(json!({"household": id, "role": role})),
    )
    .await?;
    tx.commit().await?;
    household(db, &cap.as_read(), id).await
}

pub async fn unlink_household(db: &Db, who: &Who, cap: &CanWrite, id: &str, person: &str) -> MemResult<()> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("UPDATE mem_profiles SET household_id = NULL, household_role = NULL, updated_at = $1 WHERE org_id = $2 AND person_id = $3 AND household_id = $4")
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .bind(person)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(MemError::Core(CoreError::NotFound));
    }
    record(&mut tx, who, cap.org(), "members.household.unlink", "person", person, Some(json!({"household": id})), None)
        .await?;
    tx.commit().await?;
    Ok(())
}

// ---------- periods ----------

/// (Named `MembershipPeriod` in the OpenAPI document: the accounting
/// module's report `Period` has the plain name.)
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MembershipPeriod)]
pub struct Period {
    pub id: String,
    pub person_id: String,
    pub type_id: String,
    pub type_name: String,
    pub origin: Origin,
    pub starts_on: String,
    /// Last day; none for a lifetime membership.
    pub ends_on: Option<String>,
    pub fee_cents: i64,
    pub tier: Option<String>,
    /// Dues recorded for this period (returned debits excluded).
    pub paid_cents: i64,
    pub closed_on: Option<String>,
    pub closed_reason: Option<CloseReason>,
    pub voting: bool,
    pub created_at: String,
    /// The invoice of its dues (invoice path); its payment counts in `paid_cents`.
    pub invoice_id: Option<String>,
}

impl Period {
    fn facts(&self) -> PeriodFacts {
        PeriodFacts {
            span: Span { start: self.starts_on.parse().unwrap_or(Date::MIN), end: opt_date(self.ends_on.clone()) },
            closed_on: opt_date(self.closed_on.clone()),
            closed_reason: self.closed_reason,
            fee_cents: self.fee_cents,
            paid_cents: self.paid_cents,
        }
    }
    fn span(&self) -> Span {
        let f = self.facts();
        Span { start: f.span.start, end: effective_end(f.span.end, f.closed_on) }
    }
}

const PERIOD_SELECT: &str = "SELECT p.id, p.person_id, p.type_id, t.name, p.origin, p.starts_on, p.ends_on, p.fee_cents, \
     p.tier, p.closed_on, p.closed_reason, t.voting, p.created_at, \
     COALESCE((SELECT CAST(SUM(d.amount_cents) AS BIGINT) FROM mem_dues d WHERE d.org_id = p.org_id AND d.period_id = p.id AND d.status = 'paid'), 0), \
     p.invoice_id \
     FROM mem_periods p JOIN mem_types t ON t.id = p.type_id";

fn period_row(r: &AnyRow) -> MemResult<Period> {
    Ok(Period {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        type_id: r.try_get(2)?,
        type_name: r.try_get(3)?,
        origin: Origin::parse(&r.try_get::<String, _>(4)?).unwrap_or(Origin::Joined),
        starts_on: r.try_get(5)?,
        ends_on: r.try_get(6)?,
        fee_cents: r.try_get(7)?,
        tier: r.try_get(8)?,
        closed_on: r.try_get(9)?,
        closed_reason: r.try_get::<Option<String>, _>(10)?.and_then(|s| CloseReason::parse(&s)),
        voting: r.try_get::<i64, _>(11)? != 0,
        created_at: Timestamp(r.try_get(12)?).rfc3339(),
        paid_cents: r.try_get(13)?,
        invoice_id: r.try_get(14)?,
    })
}

pub(crate) async fn periods_of(conn: &mut sqlx::AnyConnection, org: OrgId, person: &str) -> MemResult<Vec<Period>> {
    let rows = sqlx::query(&format!(
        "{PERIOD_SELECT} WHERE p.org_id = $1 AND p.person_id = $2 ORDER BY p.starts_on, p.created_at"
    ))
    .bind(org.to_string())
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    let mut periods = rows.iter().map(period_row).collect::<MemResult<Vec<_>>>()?;
    crate::billing::settle_periods(conn, org, &mut periods).await?;
    Ok(periods)
}

/// The periods of several people (the renewal run), read a few hundred
/// people at a time in the caller's transaction: by person, each list in
/// the order of [`periods_of`]; a person without periods is left out.
pub(crate) async fn periods_of_many(
    tx: &mut Tx,
    org: OrgId,
    people: &[&str],
) -> MemResult<HashMap<String, Vec<Period>>> {
    let mut all = Vec::new();
    for chunk in people.chunks(tx.backend().ids_per_statement(1)) {
        let sql = format!(
            "{PERIOD_SELECT} WHERE p.org_id = $1 AND p.person_id IN ({}) ORDER BY p.person_id, p.starts_on, p.created_at",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for p in chunk {
            q = q.bind(*p);
        }
        for r in q.fetch_all(tx.conn()).await? {
            all.push(period_row(&r)?);
        }
    }
    crate::billing::settle_periods(tx.conn(), org, &mut all).await?;
    let mut out: HashMap<String, Vec<Period>> = HashMap::new();
    for p in all {
        out.entry(p.person_id.clone()).or_default().push(p);
    }
    Ok(out)
}

async fn period_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> MemResult<Option<Period>> {
    let r = sqlx::query(&format!("{PERIOD_SELECT} WHERE p.org_id = $1 AND p.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let mut p = r.as_ref().map(period_row).transpose()?.into_iter().collect::<Vec<_>>();
    crate::billing::settle_periods(conn, org, &mut p).await?;
    Ok(p.pop())
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinInput {
    pub type_id: String,
    /// First day (`YYYY-MM-DD`); today when left out.
    pub starts_on: Option<String>,
    /// The tier, for a type with a fee by tier.
    pub tier: Option<String>,
    /// The amount chosen, for a type with a free amount.
    pub amount_cents: Option<i64>,
    /// Sent again with the same key (a form submitted twice), the request
    /// returns the period already created instead of a second one.
    pub request_key: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewInput {
    pub type_id: String,
    /// The renewal date: the new period follows the last one, or starts on
    /// this date after a gap. Today when left out.
    pub on: Option<String>,
    pub tier: Option<String>,
    pub amount_cents: Option<i64>,
    pub request_key: Option<String>,
}

/// What a join or renewal writes, checked.
struct NewPeriod {
    person: String,
    type_: MembershipType,
    origin: Origin,
    start: Date,
    end: Option<Date>,
    fee: i64,
    tier: Option<String>,
    request_key: Option<String>,
}

fn period_text(s: &Span) -> String {
    match s.end {
        Some(e) => format!("{} – {}", s.start, e),
        None => format!("from {} (lifetime)", s.start),
    }
}

fn check_overlap(existing: &[Period], type_id: &str, span: Span, field: &str, errors: &mut Vec<FieldError>) {
    if let Some(o) = existing.iter().find(|p| p.type_id == type_id && p.span().overlaps(&span)) {
        errors.push(FieldError::new(
            field,
            format!(
                "This period ({}) overlaps the period {} of the same membership type ({}) this person already has: \
                 renew after it ends, or close it first.",
                period_text(&span),
                period_text(&o.span()),
                o.type_name
            ),
        ));
    }
}

/// Existing period of a repeated request, if the key was already used.
async fn by_request_key(tx: &mut Tx, org: OrgId, key: Option<&str>) -> MemResult<Option<Period>> {
    let Some(k) = key else { return Ok(None) };
    let r = sqlx::query("SELECT id FROM mem_periods WHERE org_id = $1 AND request_key = $2")
        .bind(org.to_string())
        .bind(k)
        .fetch_optional(tx.conn())
        .await?;
    match r {
        Some(r) => period_in(tx.conn(), org, &r.try_get::<String, _>(0)?).await,
        None => Ok(None),
    }
}

pub(crate) fn check_key(key: &Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let k = key.as_deref().map(str::trim).filter(|k| !k.is_empty())?;
    if k.len() > 100 {
        errors.push(FieldError::new(field, "Use at most 100 characters."));
    }
    Some(k.to_string())
}

/// Prepares a join: the type, the dates, the fee, the overlap check.
async fn prepare_join(
    tx: &mut Tx,
    org: OrgId,
    person: &str,
    input: &JoinInput,
    today: Date,
    prefix: &str,
) -> MemResult<Result<NewPeriod, Vec<FieldError>>> {
    let f = |n: &str| format!("{prefix}{n}");
    let mut errors = Vec::new();
    let key = check_key(&input.request_key, &f("request_key"), &mut errors);
    if person_in(tx.conn(), org, person).await?.is_none() {
        errors.push(FieldError::new(f("person_id"), "No such person in this organisation."));
        return Ok(Err(errors));
    }
    let Some(t) = type_in(tx.conn(), org, &input.type_id).await? else {
        errors.push(FieldError::new(f("type_id"), "No such membership type."));
        return Ok(Err(errors));
    };
    if t.archived {
        errors.push(FieldError::new(f("type_id"), "This membership type is archived: nobody joins it any more."));
    }
    let start = match input.starts_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => match parse_date(&f("starts_on"), s) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => Some(today),
    };
    let Some(start) = start else { return Ok(Err(errors)) };
    let rules = t.rules();
    let end = rules.period_end(start);
    match rules.fee(start, input.tier.as_deref(), input.amount_cents) {
        Ok((fee, tier)) => {
            lock_member(tx, org, person).await?;
            let existing = periods_of(tx.conn(), org, person).await?;
            check_overlap(&existing, &t.id, Span { start, end }, &f("starts_on"), &mut errors);
            let origin = if existing.iter().any(|p| p.type_id == t.id) { Origin::Renewed } else { Origin::Joined };
            if errors.is_empty() {
                return Ok(Ok(NewPeriod {
                    person: person.into(),
                    type_: t,
                    origin,
                    start,
                    end,
                    fee,
                    tier,
                    request_key: key,
                }));
            }
        }
        Err(e) => errors.push(FieldError::new(f(&e.field), e.message)),
    }
    Ok(Err(errors))
}

/// Prepares a renewal: the period that follows the person's last one of the type.
async fn prepare_renewal(
    tx: &mut Tx,
    org: OrgId,
    person: &str,
    input: &RenewInput,
    today: Date,
    prefix: &str,
) -> MemResult<Result<NewPeriod, Vec<FieldError>>> {
    let found = person_in(tx.conn(), org, person).await?.is_some();
    let t = type_in(tx.conn(), org, &input.type_id).await?;
    let mut existing = Vec::new();
    if found && t.is_some() {
        lock_member(tx, org, person).await?;
        existing = periods_of(tx.conn(), org, person).await?;
    }
    Ok(renewal_of(person, found, input, t, &existing, today, prefix))
}

/// The checks of a renewal, on what was read (the person exists, their
/// periods, read once the member was locked): the new period, or why not.
fn renewal_of(
    person: &str,
    found: bool,
    input: &RenewInput,
    t: Option<MembershipType>,
    existing: &[Period],
    today: Date,
    prefix: &str,
) -> Result<NewPeriod, Vec<FieldError>> {
    let f = |n: &str| format!("{prefix}{n}");
    let mut errors = Vec::new();
    let key = check_key(&input.request_key, &f("request_key"), &mut errors);
    if !found {
        errors.push(FieldError::new(f("person_id"), "No such person in this organisation."));
        return Err(errors);
    }
    let Some(t) = t else {
        errors.push(FieldError::new(f("type_id"), "No such membership type."));
        return Err(errors);
    };
    let on = match input.on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse_date(&f("on"), s).map_err(|e| vec![e])?,
        None => today,
    };
    let Some(last) = existing.iter().filter(|p| p.type_id == t.id).max_by_key(|p| p.starts_on.clone()) else {
        errors.push(FieldError::new(
            f("type_id"),
            format!("This person has never been a member of type {}: record a join instead.", t.name),
        ));
        return Err(errors);
    };
    if let Some(reason) = last.closed_reason {
        errors.push(FieldError::new(
            f("type_id"),
            format!(
                "This membership was closed ({}) on {}: record a new join if the person comes back.",
                reason.as_str(),
                last.closed_on.clone().unwrap_or_default()
            ),
        ));
        return Err(errors);
    }
    let rules = t.rules();
    let Some(start) = rules.renewal_start(opt_date(last.ends_on.clone()), on) else {
        errors.push(FieldError::new(f("type_id"), "A lifetime membership does not need renewing."));
        return Err(errors);
    };
    let end = rules.period_end(start);
    // A tier or a chosen amount carries over from the last period unless given.
    let tier = input.tier.clone().or(last.tier.clone());
    let amount = input.amount_cents.or(Some(last.fee_cents));
    match rules.fee(start, tier.as_deref(), amount) {
        Ok((fee, tier)) => {
            check_overlap(existing, &t.id, Span { start, end }, &f("on"), &mut errors);
            if errors.is_empty() {
                return Ok(NewPeriod {
                    person: person.into(),
                    type_: t,
                    origin: Origin::Renewed,
                    start,
                    end,
                    fee,
                    tier,
                    request_key: key,
                });
            }
        }
        Err(e) => errors.push(FieldError::new(f(&e.field), e.message)),
    }
    Err(errors)
}

async fn insert_period(tx: &mut Tx, who: &Who, org: OrgId, p: &NewPeriod) -> MemResult<String> {
    let id = new_id();
    insert_periods(tx, who, org, &[(id.clone(), p)]).await?;
    Ok(id)
}

/// Records checked periods with the given ids: the periods, their events
/// (joined, renewed), their audit entries and their people's summary rows,
/// by multi-row statements (the renewal run records thousands).
async fn insert_periods(tx: &mut Tx, who: &Who, org: OrgId, new: &[(String, &NewPeriod)]) -> MemResult<()> {
    let now = Timestamp::now().0;
    for chunk in new.chunks(tx.backend().rows_per_statement(9)) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 3 + i * 9;
                let v: Vec<String> = (0..9).map(|k| format!("${}", b + k)).collect();
                format!("({}, $1, {}, $2)", v[0], v[1..].join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO mem_periods (id, org_id, person_id, type_id, origin, starts_on, ends_on, fee_cents, tier, \
             request_key, created_at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string()).bind(now);
        for (id, p) in chunk {
            q = q
                .bind(id.as_str())
                .bind(&p.person)
                .bind(&p.type_.id)
                .bind(p.origin.as_str())
                .bind(p.start.to_string())
                .bind(p.end.map(|e| e.to_string()))
                .bind(p.fee)
                .bind(&p.tier)
                .bind(&p.request_key);
        }
        q.execute(tx.conn()).await.map_err(|e| {
            MemError::Core(CoreError::from(e).on_conflict("request_key", "This request was already recorded."))
        })?;
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 2 + i * 5;
                format!("(${b}, $1, ${}, ${}, ${}, ${}, '', {now})", b + 1, b + 2, b + 3, b + 4)
            })
            .collect();
        let sql = format!(
            "INSERT INTO mem_events (id, org_id, person_id, period_id, kind, happened_on, note, created_at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for (id, p) in chunk {
            q = q.bind(new_id()).bind(&p.person).bind(id.as_str()).bind(p.origin.as_str()).bind(p.start.to_string());
        }
        q.execute(tx.conn()).await?;
    }
    let actions: Vec<String> = new.iter().map(|(_, p)| format!("members.period.{}", p.origin.as_str())).collect();
    let changes = new
        .iter()
        .zip(&actions)
        .map(|((id, p), action)| audit::Change {
            org: Some(org),
            action,
            entity_type: "membership_period",
            entity_id: id.clone(),
            before: None,
            after: Some(json!({"person": p.person, "type": p.type_.id, "type_name": p.type_.name, "origin": p.origin,
                "starts_on": p.start.to_string(), "ends_on": p.end.map(|e| e.to_string()), "fee_cents": p.fee, "tier": p.tier})),
        })
        .collect();
    audit::record_many(tx, who, changes).await?;
    // mem-dir: the directory's summary rows
    crate::directory::refresh_many(tx, org, new.iter().map(|(_, p)| p.person.clone()).collect()).await?;
    Ok(())
}

async fn insert_event(
    tx: &mut Tx,
    org: OrgId,
    person: &str,
    period: &str,
    kind: &str,
    on: Date,
    note: &str,
) -> MemResult<()> {
    sqlx::query(
        "INSERT INTO mem_events (id, org_id, person_id, period_id, kind, happened_on, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id())
    .bind(org.to_string())
    .bind(person)
    .bind(period)
    .bind(kind)
    .bind(on.to_string())
    .bind(note)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether a join or renewal created a period, or found the one of the same request.
pub struct Written {
    pub period: Period,
    pub created: bool,
}

pub async fn join(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    person: &str,
    input: JoinInput,
) -> MemResult<Written> {
    let org = cap.org();
    crate::billing::prepare(db, org).await?;
    let mut tx = db.begin().await?;
    let w = join_in(&mut tx, who, org, today(zone), person, &input).await?;
    if w.created {
        tx.commit().await?;
    }
    Ok(w)
}

/// A join inside the caller's transaction (the self-service join request
/// approved with its period): the same checks and audit as [`join`].
pub(crate) async fn join_in(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    today: Date,
    person: &str,
    input: &JoinInput,
) -> MemResult<Written> {
    if let Some(p) = by_request_key(tx, org, input.request_key.as_deref().map(str::trim)).await? {
        return Ok(Written { period: p, created: false });
    }
    let p = prepare_join(tx, org, person, input, today, "").await?.map_err(MemError::Invalid)?;
    let id = insert_period(tx, who, org, &p).await?;
    crate::billing::invoice_periods(tx, who, org, std::slice::from_ref(&id)).await?;
    let period = period_in(tx.conn(), org, &id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    Ok(Written { period, created: true })
}

pub async fn renew(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    person: &str,
    input: RenewInput,
) -> MemResult<Written> {
    let org = cap.org();
    crate::billing::prepare(db, org).await?;
    let mut tx = db.begin().await?;
    if let Some(p) = by_request_key(&mut tx, org, input.request_key.as_deref().map(str::trim)).await? {
        return Ok(Written { period: p, created: false });
    }
    let p = prepare_renewal(&mut tx, org, person, &input, today(zone), "").await?.map_err(MemError::Invalid)?;
    let id = insert_period(&mut tx, who, org, &p).await?;
    crate::billing::invoice_periods(&mut tx, who, org, std::slice::from_ref(&id)).await?;
    let period = period_in(tx.conn(), org, &id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    tx.commit().await?;
    Ok(Written { period, created: true })
}

/// A renewal in the caller's transaction (the renewal run, the renewal
/// link): the new period's id, or why it cannot be renewed.
pub(crate) async fn renew_in(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    person: &str,
    input: &RenewInput,
    today: Date,
) -> MemResult<Result<String, Vec<FieldError>>> {
    match prepare_renewal(tx, org, person, input, today, "").await? {
        Ok(p) => Ok(Ok(insert_period(tx, who, org, &p).await?)),
        Err(e) => Ok(Err(e)),
    }
}

/// Several renewals in the caller's transaction (the renewal run), each
/// checked as [`renew_in`] checks it (distinct people, or distinct types of
/// one person), then recorded together ([`insert_periods`]): the new
/// period's id, or why it cannot be renewed, in the order given.
pub(crate) async fn renew_many_in(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    renewals: &[(&str, RenewInput)],
    today: Date,
) -> MemResult<Vec<Result<String, Vec<FieldError>>>> {
    // What the checks read, for the whole list at once: the people, the
    // organisation's types, then (the members locked) their periods.
    let ids: Vec<&str> = renewals.iter().map(|(p, _)| *p).collect();
    let people = people_in(tx, org, &ids).await?;
    let types: HashMap<String, MembershipType> =
        list_types_in(tx.conn(), org).await?.into_iter().map(|t| (t.id.clone(), t)).collect();
    let known: Vec<&str> = renewals
        .iter()
        .filter(|(p, i)| people.contains_key(*p) && types.contains_key(&i.type_id))
        .map(|(p, _)| *p)
        .collect();
    lock_members(tx, org, &known).await?;
    let periods = periods_of_many(tx, org, &known).await?;
    let mut out = Vec::with_capacity(renewals.len());
    let mut new = Vec::new();
    for (person, input) in renewals {
        let existing = periods.get(*person).map(Vec::as_slice).unwrap_or_default();
        let t = types.get(&input.type_id).cloned();
        match renewal_of(person, people.contains_key(*person), input, t, existing, today, "") {
            Ok(p) => {
                let id = new_id();
                out.push(Ok(id.clone()));
                new.push((id, p));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    let refs: Vec<(String, &NewPeriod)> = new.iter().map(|(id, p)| (id.clone(), p)).collect();
    insert_periods(tx, who, org, &refs).await?;
    Ok(out)
}

/// A person's periods, read in the caller's transaction.
pub(crate) async fn periods_in(tx: &mut Tx, org: OrgId, person: &str) -> MemResult<Vec<Period>> {
    periods_of(tx.conn(), org, person).await
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// `resigned` or `excluded`.
    #[schema(example = "resigned")]
    pub reason: Option<String>,
    /// The last day of membership; today when left out.
    pub on: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// Ends a period before its term (resignation, exclusion). The period and
/// its history stay; a closed period cannot be closed again.
pub async fn close_period(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    id: &str,
    input: CloseInput,
) -> MemResult<Period> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let p = period_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    let mut errors = Vec::new();
    let reason = CloseReason::parse(input.reason.as_deref().unwrap_or("").trim());
    if reason.is_none() {
        errors.push(FieldError::new("reason", "Choose resigned or excluded."));
    }
    let on = match input.on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse_date("on", s).map_err(|e| errors.push(e)).ok(),
        None => Some(today(zone)),
    };
    let note = text_field(&mut errors, "note", &input.note, 2000, false);
    MemError::check(errors)?;
    let (Some(reason), Some(on)) = (reason, on) else { unreachable!("checked above") };
    lock_member(&mut tx, org, &p.person_id).await?;
    if p.closed_on.is_some() {
        return Err(MemError::field("reason", "This period is already closed."));
    }
    let span = p.span();
    if on < span.start || span.end.is_some_and(|e| on > e) {
        return Err(MemError::field("on", format!("Choose a day within the period ({}).", period_text(&span))));
    }
    sqlx::query(
        "UPDATE mem_periods SET closed_on = $1, closed_reason = $2 WHERE org_id = $3 AND id = $4 AND closed_on IS NULL",
    )
    .bind(on.to_string())
    .bind(reason.as_str())
    .bind(org.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    insert_event(&mut tx, org, &p.person_id, id, reason.as_str(), on, &note).await?;
    crate::directory::refresh(&mut tx, org, &p.person_id).await?; // mem-dir: the directory's summary row
    record(
        &mut tx,
        who,
        org,
        &format!("members.period.{}", reason.as_str()),
        "membership_period",
        id,
        None,
        Some(json!({"closed_on": on.to_string(), "reason": reason, "note": note})),
    )
    .await?;
    let after = period_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    tx.commit().await?;
    Ok(after)
}

// ---------- a member's page: standing, history, dues ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    /// `joined`, `renewed`, `lapsed`, `resigned` or `excluded`.
    pub kind: String,
    pub on: String,
    pub type_name: String,
    pub period_id: String,
    pub note: String,
}

/// Why the member is (not) up to date, in data the page words.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StandingView {
    pub standing: Standing,
    pub up_to_date: bool,
    /// Up to date in a type that gives a vote at general assemblies.
    pub votes: bool,
    /// The day it was computed for.
    pub on: String,
    /// The period it is about.
    pub period: Option<Period>,
    /// What is left to pay on that period.
    pub due_cents: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Membership {
    pub person: MemberPerson,
    /// The secret of the member's card, once a card was printed: the check
    /// page is `/o/{org}/members/check/{card_token}`.
    pub card_token: Option<String>,
    pub standing: StandingView,
    pub periods: Vec<Period>,
    pub history: Vec<HistoryEvent>,
    pub dues: Vec<Due>,
}

pub fn standing_of(periods: &[Period], on: Date) -> StandingView {
    let facts: Vec<PeriodFacts> = periods.iter().map(Period::facts).collect();
    let (s, i) = domain::standing(&facts, on);
    let period = i.map(|i| periods[i].clone());
    StandingView {
        standing: s,
        up_to_date: s == Standing::UpToDate,
        votes: s == Standing::UpToDate && period.as_ref().is_some_and(|p| p.voting),
        on: on.to_string(),
        due_cents: period.as_ref().map(|p| (p.fee_cents - p.paid_cents).max(0)).unwrap_or(0),
        period,
    }
}

pub async fn membership(db: &Db, cap: &CanRead, zone: &str, person: &str) -> MemResult<Membership> {
    let org = cap.org();
    let mut conn = db.pool().acquire().await?;
    let p = person_in(&mut conn, org, person).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    let periods = periods_of(&mut conn, org, person).await?;
    let today = today(zone);
    let rows = sqlx::query(
        "SELECT e.kind, e.happened_on, t.name, e.period_id, e.note FROM mem_events e \
         JOIN mem_periods p ON p.id = e.period_id JOIN mem_types t ON t.id = p.type_id \
         WHERE e.org_id = $1 AND e.person_id = $2 ORDER BY e.happened_on, e.created_at",
    )
    .bind(org.to_string())
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    let mut history = rows
        .iter()
        .map(|r| {
            Ok(HistoryEvent {
                kind: r.try_get(0)?,
                on: r.try_get(1)?,
                type_name: r.try_get(2)?,
                period_id: r.try_get(3)?,
                note: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // Lapses are not written: a period that ended, unclosed, with no period
    // of the same type the next day, lapsed the day after its end.
    for p in &periods {
        let (Some(end), None) = (opt_date(p.ends_on.clone()), &p.closed_on) else { continue };
        let Ok(next) = end.tomorrow() else { continue };
        let followed =
            periods.iter().any(|o| o.type_id == p.type_id && o.starts_on.parse::<Date>().is_ok_and(|s| s == next));
        if next <= today && !followed {
            history.push(HistoryEvent {
                kind: "lapsed".into(),
                on: next.to_string(),
                type_name: p.type_name.clone(),
                period_id: p.id.clone(),
                note: String::new(),
            });
        }
    }
    history.sort_by(|a, b| a.on.cmp(&b.on));
    let dues = dues_of(&mut conn, org, person).await?;
    let card_token = sqlx::query("SELECT card_token FROM mem_profiles WHERE org_id = $1 AND person_id = $2")
        .bind(org.to_string())
        .bind(person)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get::<Option<String>, _>(0))
        .transpose()?
        .flatten();
    Ok(Membership { person: p, card_token, standing: standing_of(&periods, today), periods, history, dues })
}

// ---------- dues ----------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Cash,
    Cheque,
    Transfer,
    Card,
    DirectDebit,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Cash => "cash",
            Method::Cheque => "cheque",
            Method::Transfer => "transfer",
            Method::Card => "card",
            Method::DirectDebit => "direct_debit",
        }
    }
    pub fn parse(s: &str) -> Option<Method> {
        [Method::Cash, Method::Cheque, Method::Transfer, Method::Card, Method::DirectDebit]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Due {
    pub id: String,
    /// Continuous in the organisation: 1, 2, 3…
    pub receipt_number: i64,
    /// `RC-000042`.
    pub receipt: String,
    pub person_id: String,
    pub payer_name: String,
    pub period_id: Option<String>,
    pub amount_cents: i64,
    pub method: Method,
    pub paid_on: String,
    /// `paid`, or `unpaid` after a returned direct debit.
    pub status: String,
    /// The ledger entry of the payment.
    pub entry_id: String,
    pub created_at: String,
}

pub fn receipt_ref(n: i64) -> String {
    format!("RC-{n:06}")
}

pub(crate) fn due_row(r: &AnyRow) -> MemResult<Due> {
    let n: i64 = r.try_get(1)?;
    Ok(Due {
        id: r.try_get(0)?,
        receipt_number: n,
        receipt: receipt_ref(n),
        person_id: r.try_get(2)?,
        payer_name: r.try_get(3)?,
        period_id: r.try_get(4)?,
        amount_cents: r.try_get(5)?,
        method: Method::parse(&r.try_get::<String, _>(6)?).unwrap_or(Method::Cash),
        paid_on: r.try_get(7)?,
        status: r.try_get(8)?,
        entry_id: r.try_get(9)?,
        created_at: Timestamp(r.try_get(10)?).rfc3339(),
    })
}

pub(crate) const DUE_COLS: &str = "id, receipt_number, person_id, payer_name, period_id, amount_cents, method, paid_on, status, entry_id, created_at FROM mem_dues";

async fn dues_of(conn: &mut sqlx::AnyConnection, org: OrgId, person: &str) -> MemResult<Vec<Due>> {
    let rows = sqlx::query(&format!("SELECT {DUE_COLS} WHERE org_id = $1 AND person_id = $2 ORDER BY receipt_number"))
        .bind(org.to_string())
        .bind(person)
        .fetch_all(conn)
        .await?;
    rows.iter().map(due_row).collect()
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct DueFilter {
    pub person_id: Option<String>,
    /// `YYYY-MM-DD`, inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<i64>,
}

pub async fn dues(db: &Db, cap: &CanRead, f: &DueFilter) -> MemResult<Vec<Due>> {
    let rows = sqlx::query(&format!(
        "SELECT {DUE_COLS} WHERE org_id = $1 AND ($2 = '' OR person_id = $2) AND ($3 = '' OR paid_on >= $3) \
         AND ($4 = '' OR paid_on <= $4) ORDER BY receipt_number DESC LIMIT $5"
    ))
    .bind(cap.org().to_string())
    .bind(f.person_id.clone().unwrap_or_default())
    .bind(f.from.clone().unwrap_or_default())
    .bind(f.to.clone().unwrap_or_default())
    .bind(f.limit.unwrap_or(200).clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(due_row).collect()
}

pub async fn get_due(db: &Db, cap: &CanRead, id: &str) -> MemResult<Due> {
    let r = sqlx::query(&format!("SELECT {DUE_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(MemError::Core(CoreError::NotFound))?;
    due_row(&r)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DueInput {
    pub person_id: String,
    /// The membership period this pays; none for a contribution outside a period.
    pub period_id: Option<String>,
    /// What was paid, in cents; by default what is left to pay on the period.
    pub amount_cents: Option<i64>,
    #[schema(value_type = String, example = "cheque")]
    pub method: String,
    /// The payment date (`YYYY-MM-DD`); today when left out.
    pub paid_on: Option<String>,
    /// Sent again with the same key, the request returns the due already recorded.
    pub request_key: Option<String>,
}

pub(crate) struct NewDue {
    pub(crate) person: MemberPerson,
    pub(crate) period_id: Option<String>,
    pub(crate) amount: i64,
    pub(crate) method: Method,
    pub(crate) paid_on: Date,
    pub(crate) request_key: Option<String>,
}

pub(crate) async fn check_due(
    tx: &mut Tx,
    org: OrgId,
    input: &DueInput,
    today: Date,
    prefix: &str,
    pending: &HashMap<String, i64>,
) -> MemResult<Result<NewDue, Vec<FieldError>>> {
    let f = |n: &str| format!("{prefix}{n}");
    let mut errors = Vec::new();
    let key = check_key(&input.request_key, &f("request_key"), &mut errors);
    let method = Method::parse(input.method.trim());
    if method.is_none() {
        errors.push(FieldError::new(f("method"), "Choose cash, cheque, transfer, card or direct_debit."));
    }
    let paid_on = match input.paid_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse_date(&f("paid_on"), s).map_err(|e| errors.push(e)).ok(),
        None => Some(today),
    };
    let Some(person) = person_in(tx.conn(), org, &input.person_id).await? else {
        errors.push(FieldError::new(f("person_id"), "No such person in this organisation."));
        return Ok(Err(errors));
    };
    // Two payments of one period sent at once must not both pass the check of what is left.
    lock_member(tx, org, &person.id).await?;
    let mut amount = input.amount_cents;
    let period_id = input.period_id.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    if let Some(pid) = &period_id {
        match period_in(tx.conn(), org, pid).await? {
            Some(p) if p.person_id == person.id => {
                let left = p.fee_cents - p.paid_cents - pending.get(pid).copied().unwrap_or(0);
                let a = *amount.get_or_insert(left);
                if left <= 0 {
                    errors.push(FieldError::new(
                        f("period_id"),
                        format!("The dues of this period ({}) are already paid.", cents_text(p.fee_cents)),
                    ));
                } else if a > left {
                    errors.push(FieldError::new(
                        f("amount_cents"),
                        format!("Only {} is left to pay on this period.", cents_text(left)),
                    ));
                }
            }
            _ => errors.push(FieldError::new(f("period_id"), "No such membership period for this person.")),
        }
    }
    match amount {
        None => errors.push(FieldError::new(f("amount_cents"), "Give the amount paid.")),
        Some(a) if a <= 0 => errors.push(FieldError::new(f("amount_cents"), "The amount must be more than zero.")),
        Some(a) if a > domain::MAX_FEE_CENTS => {
            errors.push(FieldError::new(f("amount_cents"), "This amount is too large."))
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let (Some(method), Some(paid_on), Some(amount)) = (method, paid_on, amount) else { unreachable!("checked above") };
    Ok(Ok(NewDue { person, period_id, amount, method, paid_on, request_key: key }))
}

pub(crate) async fn next_number(tx: &mut Tx, org: OrgId, name: &str, count: i64) -> MemResult<i64> {
    let r = sqlx::query(
        "INSERT INTO mem_counters (org_id, name, last_number) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, name) DO UPDATE SET last_number = mem_counters.last_number + $3 RETURNING last_number",
    )
    .bind(org.to_string())
    .bind(name)
    .bind(count)
    .fetch_one(tx.conn())
    .await?;
    Ok(r.try_get::<i64, _>(0)? - count + 1)
}

/// Writes checked dues: receipt numbers, rows, one ledger entry each
/// (posted together), the audit. In the caller's durable transaction.
pub(crate) async fn write_dues(tx: &mut Tx, who: &Who, org: OrgId, items: Vec<NewDue>) -> MemResult<Vec<Due>> {
    let s = settings_in(tx.conn(), org).await?;
    if s.dues_path == DuesPath::Invoice {
        return Err(MemError::Unavailable(INVOICE_PATH_UNAVAILABLE.into()));
    }
    let first = next_number(tx, org, "receipt", items.len() as i64).await?;
    let mut entries = Vec::with_capacity(items.len());
    for (i, d) in items.iter().enumerate() {
        let n = first + i as i64;
        let (journal, account) =
            if d.method == Method::Cash { ("CA", s.cash_account.clone()) } else { ("BQ", s.bank_account.clone()) };
        let label = format!("Cotisation {} ({})", display_name(&d.person), receipt_ref(n));
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
        entries.push(NewEntry {
            journal: journal.into(),
            date: Day::parse(&d.paid_on.to_string()).map_err(|m| MemError::field("paid_on", m))?,
            label: label.clone(),
            piece_ref: receipt_ref(n),
            piece_date: None,
            lines: vec![line(account, d.amount, 0), line(s.dues_account.clone(), 0, d.amount)],
        });
    }
    let posted = post_entries(tx, who, org, MODULE, entries, true).await?;
    let now = Timestamp::now().0;
    let dues: Vec<(Due, Option<String>)> = items
        .into_iter()
        .zip(posted)
        .enumerate()
        .map(|(i, (d, e))| {
            let n = first + i as i64;
            let due = Due {
                id: new_id(),
                receipt_number: n,
                receipt: receipt_ref(n),
                person_id: d.person.id.clone(),
                payer_name: display_name(&d.person),
                period_id: d.period_id,
                amount_cents: d.amount,
                method: d.method,
                paid_on: d.paid_on.to_string(),
                status: "paid".into(),
                entry_id: e.id,
                created_at: Timestamp(now).rfc3339(),
            };
            (due, d.request_key)
        })
        .collect();
    // Multi-row inserts: SQLite pays per parameter of a statement, PostgreSQL per round trip.
    let per = if tx.backend() == shrooms_core::db::Backend::Sqlite { 15 } else { 300 };
    for chunk in dues.chunks(per) {
        let mut sql = String::from(
            "INSERT INTO mem_dues (id, org_id, receipt_number, person_id, payer_name, period_id, amount_cents, method, \
             paid_on, status, entry_id, request_key, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 12;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 'paid', ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11,
                b + 12
            ));
        }
        let mut q = sqlx::query(&sql);
        for (d, key) in chunk {
            q = q
                .bind(&d.id)
                .bind(org.to_string())
                .bind(d.receipt_number)
                .bind(&d.person_id)
                .bind(&d.payer_name)
                .bind(&d.period_id)
                .bind(d.amount_cents)
                .bind(d.method.as_str())
                .bind(&d.paid_on)
                .bind(&d.entry_id)
                .bind(key)
                .bind(now);
        }
        q.execute(tx.conn()).await.map_err(|e| {
            MemError::Core(CoreError::from(e).on_conflict("request_key", "This payment was already recorded."))
        })?;
    }
    let summary = |d: &Due| {
        json!({"id": d.id, "receipt": d.receipt, "person": d.person_id, "period": d.period_id, "amount_cents": d.amount_cents,
            "method": d.method, "paid_on": d.paid_on, "entry": d.entry_id})
    };
    // One audit entry per payment; a batch is one entry listing every payment.
    if let [(d, _)] = dues.as_slice() {
        record(tx, who, org, "members.due.record", "due", &d.id, None, Some(summary(d))).await?;
    } else {
        let (a, b) = (&dues[0].0.receipt, &dues[dues.len() - 1].0.receipt);
        let list: Vec<_> = dues.iter().map(|(d, _)| summary(d)).collect();
        record(tx, who, org, "members.due.record_batch", "due_batch", &format!("{a}..{b}"), None, Some(json!(list)))
            .await?;
    }
    // mem-dir: the directory's summary rows of the payers.
    crate::directory::refresh_many(tx, org, dues.iter().map(|(d, _)| d.person_id.clone()).collect()).await?;
    Ok(dues.into_iter().map(|(d, _)| d).collect())
}

async fn due_by_key(tx: &mut Tx, org: OrgId, key: Option<&str>) -> MemResult<Option<Due>> {
    let Some(k) = key.filter(|k| !k.is_empty()) else { return Ok(None) };
    let r = sqlx::query(&format!("SELECT {DUE_COLS} WHERE org_id = $1 AND request_key = $2"))
        .bind(org.to_string())
        .bind(k)
        .fetch_optional(tx.conn())
        .await?;
    r.as_ref().map(due_row).transpose()
}

pub struct RecordedDue {
    pub due: Due,
    pub created: bool,
}

/// Records one payment of dues: a receipt number, the row, the ledger
/// entry (validated), the audit entry, all in one durable transaction.
pub async fn record_due(db: &Db, who: &Who, cap: &CanWrite, zone: &str, input: DueInput) -> MemResult<RecordedDue> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    if let Some(d) = due_by_key(&mut tx, org, input.request_key.as_deref().map(str::trim)).await? {
        return Ok(RecordedDue { due: d, created: false });
    }
    let d = check_due(&mut tx, org, &input, today(zone), "", &HashMap::new()).await?.map_err(MemError::Invalid)?;
    let due = write_dues(&mut tx, who, org, vec![d]).await?.remove(0);
    tx.commit().await?;
    Ok(RecordedDue { due, created: true })
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDues {
    pub items: Vec<DueInput>,
}

pub const MAX_BULK: usize = 5000;

pub(crate) fn check_bulk_size(n: usize, field: &str) -> MemResult<()> {
    if n == 0 {
        return Err(MemError::field(field, "Choose at least one."));
    }
    if n > MAX_BULK {
        return Err(MemError::field(field, format!("At most {MAX_BULK} at once.")));
    }
    Ok(())
}

/// Records many payments at once: all or nothing; errors name the item.
pub async fn record_dues(db: &Db, who: &Who, cap: &CanWrite, zone: &str, input: BulkDues) -> MemResult<Vec<Due>> {
    check_bulk_size(input.items.len(), "items")?;
    let org = cap.org();
    let today = today(zone);
    let mut tx = db.begin_durable().await?;
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut keys = std::collections::HashSet::new();
    for (i, item) in input.items.iter().enumerate() {
        let prefix = format!("items[{i}].");
        if let Some(k) = item.request_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            if !keys.insert(k.to_string()) || due_by_key(&mut tx, org, Some(k)).await?.is_some() {
                errors.push(FieldError::new(format!("{prefix}request_key"), "This payment was already recorded."));
                continue;
            }
        }
        match check_due(&mut tx, org, item, today, &prefix, &pending).await? {
            Ok(d) => {
                if let Some(p) = &d.period_id {
                    *pending.entry(p.clone()).or_default() += d.amount;
                }
                ok.push(d)
            }
            Err(e) => errors.extend(e),
        }
    }
    MemError::check(errors)?;
    let out = write_dues(&mut tx, who, org, ok).await?;
    tx.commit().await?;
    Ok(out)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRenew {
    pub person_ids: Vec<String>,
    pub type_id: String,
    /// The renewal date; today when left out.
    pub on: Option<String>,
}

/// Renews a list of members in one type: all or nothing; errors name the
/// person (`person_ids[3]`).
pub async fn renew_many(db: &Db, who: &Who, cap: &CanWrite, zone: &str, input: BulkRenew) -> MemResult<Vec<Period>> {
    check_bulk_size(input.person_ids.len(), "person_ids")?;
    let org = cap.org();
    let today = today(zone);
    crate::billing::prepare(db, org).await?;
    let mut tx = db.begin().await?;
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    for (i, person) in dedup(&input.person_ids).into_iter().enumerate() {
        let r = RenewInput { type_id: input.type_id.clone(), on: input.on.clone(), ..Default::default() };
        match prepare_renewal(&mut tx, org, &person, &r, today, &format!("person_ids[{i}].")).await? {
            Ok(p) => ok.push(p),
            Err(e) => errors.extend(e),
        }
    }
    MemError::check(errors)?;
    let mut ids = Vec::new();
    for p in &ok {
        ids.push(insert_period(&mut tx, who, org, p).await?);
    }
    crate::billing::invoice_periods(&mut tx, who, org, &ids).await?;
    let mut out = Vec::new();
    for id in &ids {
        out.push(period_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?);
    }
    tx.commit().await?;
    Ok(out)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyType {
    pub person_ids: Vec<String>,
    pub type_id: String,
    /// First day of the periods; today when left out.
    pub starts_on: Option<String>,
    pub tier: Option<String>,
    pub amount_cents: Option<i64>,
}

/// Gives a membership type to a selection of people (a join each): all or
/// nothing; errors name the person (`person_ids[3]`).
pub async fn apply_type(db: &Db, who: &Who, cap: &CanWrite, zone: &str, input: ApplyType) -> MemResult<Vec<Period>> {
    check_bulk_size(input.person_ids.len(), "person_ids")?;
    let org = cap.org();
    let today = today(zone);
    crate::billing::prepare(db, org).await?;
    let mut tx = db.begin().await?;
    let mut errors = Vec::new();
    let mut ok = Vec::new();
    for (i, person) in dedup(&input.person_ids).into_iter().enumerate() {
        let j = JoinInput {
            type_id: input.type_id.clone(),
            starts_on: input.starts_on.clone(),
            tier: input.tier.clone(),
            amount_cents: input.amount_cents,
            request_key: None,
        };
        match prepare_join(&mut tx, org, &person, &j, today, &format!("person_ids[{i}].")).await? {
            Ok(p) => ok.push(p),
            Err(e) => errors.extend(e),
        }
    }
    MemError::check(errors)?;
    let mut ids = Vec::new();
    for p in &ok {
        ids.push(insert_period(&mut tx, who, org, p).await?);
    }
    crate::billing::invoice_periods(&mut tx, who, org, &ids).await?;
    let mut out = Vec::new();
    for id in &ids {
        out.push(period_in(tx.conn(), org, id).await?.ok_or(MemError::Core(CoreError::NotFound))?);
    }
    tx.commit().await?;
    Ok(out)
}

/// The same person twice in a selection is one person.
fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().map(|s| s.trim().to_string()).filter(|s| seen.insert(s.clone())).collect()
}

// ---------- the list of members ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberRow {
    pub person_id: String,
    pub name: String,
    pub email: Option<String>,
    pub standing: StandingView,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberFilter {
    /// Words starting a word of the name, e-mail or phone (`mar dub`).
    pub q: Option<String>,
    /// Only this standing (`up_to_date`, `dues_unpaid`, `lapsed`…); several
    /// may be given, comma-separated.
    pub standing: Option<String>,
    /// The type of the period the standing is about.
    pub type_id: Option<String>,
    /// 1 to 5000, 500 when left out.
    pub limit: Option<i64>,
    /// Where the previous page stopped (the `cursor` of its `Link` header).
    pub cursor: Option<String>,
}

/// A page of the list of members.
#[derive(Clone, Debug, Serialize)]
pub struct MemberPage {
    pub items: Vec<MemberRow>,
    pub next_cursor: Option<String>,
}

/// The directory's filter for the list's: the list is the directory search
/// (summary rows, indexes, keyset paging), whatever the organisation's size.
fn list_filter(f: &MemberFilter) -> MemResult<crate::directory::DirFilter> {
    let standing = f.standing.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = standing {
        for st in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if st != "late" && (st == "never" || !crate::directory::STATUSES.contains(&st)) {
                return Err(MemError::field("standing", format!("Unknown standing `{st}`.")));
            }
        }
    }
    let t = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    Ok(crate::directory::DirFilter {
        q: t(&f.q),
        status: standing.map(str::to_string),
        type_id: t(&f.type_id),
        ..Default::default()
    })
}

/// The standing of each row, from the periods of these people only (by
/// chunks: never every period of the organisation at once).
async fn with_standing(
    db: &Db,
    org: OrgId,
    zone: &str,
    rows: Vec<crate::directory::DirRow>,
) -> MemResult<Vec<MemberRow>> {
    let mut periods: HashMap<String, Vec<Period>> = HashMap::new();
    for chunk in rows.chunks(500) {
        let marks = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "{PERIOD_SELECT} WHERE p.org_id = $1 AND p.person_id IN ({marks}) ORDER BY p.person_id, p.starts_on, p.created_at"
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for r in chunk {
            q = q.bind(r.person_id.as_str());
        }
        let mut loaded = q.fetch_all(db.pool()).await?.iter().map(period_row).collect::<MemResult<Vec<_>>>()?;
        {
            // Dues paid through their invoice count as paid.
            let mut conn = db.pool().acquire().await?;
            crate::billing::settle_periods(&mut conn, org, &mut loaded).await?;
        }
        for p in loaded {
            periods.entry(p.person_id.clone()).or_default().push(p);
        }
    }
    let today = today(zone);
    Ok(rows
        .into_iter()
        .map(|r| {
            let standing = standing_of(periods.get(&r.person_id).map(Vec::as_slice).unwrap_or(&[]), today);
            MemberRow {
                name: format!("{} {}", r.given_name, r.family_name).trim().to_string(),
                person_id: r.person_id,
                email: r.email,
                standing,
            }
        })
        .collect())
}

/// One page of everyone who has held a membership, with their standing
/// today, in name order (family name, given name).
pub async fn members_page(db: &Db, cap: &CanRead, zone: &str, f: &MemberFilter) -> MemResult<MemberPage> {
    let filter = list_filter(f)?;
    let limit = f.limit.unwrap_or(500).clamp(1, 5000) as usize;
    let mut rows = Vec::new();
    let mut cursor = f.cursor.clone().filter(|c| !c.trim().is_empty());
    loop {
        let want = (limit - rows.len()).min(200) as i64;
        let page =
            crate::directory::search(db, cap, zone, &filter, crate::directory::Sort::Name, cursor.as_deref(), want)
                .await?;
        rows.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() || rows.len() >= limit {
            break;
        }
    }
    Ok(MemberPage { items: with_standing(db, cap.org(), zone, rows).await?, next_cursor: cursor })
}

/// The first page of [`members_page`] (at most `limit` rows).
pub async fn members(db: &Db, cap: &CanRead, zone: &str, f: &MemberFilter) -> MemResult<Vec<MemberRow>> {
    Ok(members_page(db, cap, zone, f).await?.items)
}

// ---------- membership card ----------

/// The secret of a member's card, made on first use: the QR code of the card
/// links to `/o/{org}/members/check/{token}`, which anyone may open.
pub async fn card_token(db: &Db, who: &Who, cap: &CanWrite, person: &str) -> MemResult<String> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    require_person(&mut tx, org, "person", person).await.map_err(|_| MemError::Core(CoreError::NotFound))?;
    lock_member(&mut tx, org, person).await?;
    let r = sqlx::query("SELECT card_token FROM mem_profiles WHERE org_id = $1 AND person_id = $2")
        .bind(org.to_string())
        .bind(person)
        .fetch_one(tx.conn())
        .await?;
    if let Some(t) = r.try_get::<Option<String>, _>(0)? {
        return Ok(t);
    }
    let token = shrooms_core::crypto::random_token();
    sqlx::query("UPDATE mem_profiles SET card_token = $1 WHERE org_id = $2 AND person_id = $3")
        .bind(&token)
        .bind(org.to_string())
        .bind(person)
        .execute(tx.conn())
        .await?;
    record(&mut tx, who, org, "members.card.issue", "person", person, None, None).await?;
    tx.commit().await?;
    Ok(token)
}

/// What the check page shows for a card's token: the member and their
/// standing today; `None` for a token that is no card of this organisation.
pub async fn check_card(
    db: &Db,
    org: OrgId,
    zone: &str,
    token: &str,
) -> MemResult<Option<(MemberPerson, StandingView)>> {
    let mut conn = db.pool().acquire().await?;
    let r = sqlx::query("SELECT person_id FROM mem_profiles WHERE org_id = $1 AND card_token = $2")
        .bind(org.to_string())
        .bind(token)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(r) = r else { return Ok(None) };
    let person: String = r.try_get(0)?;
    let Some(p) = person_in(&mut conn, org, &person).await? else { return Ok(None) };
    let periods = periods_of(&mut conn, org, &person).await?;
    Ok(Some((p, standing_of(&periods, today(zone)))))
}

/// The card as a PDF: name, membership, validity, and the QR code of the check link.
pub fn card_pdf(m: &Membership, org_name: &str, colour: &str, check_url: &str, lang: &str) -> Vec<u8> {
    let fr = lang == "fr";
    let mut doc = shrooms_core::pdf::Document::new(
        if fr { "Carte d'adhérent" } else { "Membership card" },
        shrooms_core::pdf::Branding { org_name: org_name.to_string(), colour: colour.to_string() },
    );
    doc.heading(&display_name(&m.person));
    let s = &m.standing;
    let (kind, until) = match &s.period {
        Some(p) => (p.type_name.clone(), p.closed_on.clone().or(p.ends_on.clone()).unwrap_or_else(|| "—".into())),
        None => (String::new(), String::new()),
    };
    let state = match (s.up_to_date, fr) {
        (true, true) => "à jour",
        (true, false) => "up to date",
        (false, true) => "pas à jour",
        (false, false) => "not up to date",
    };
    doc.key_values(&[
        (if fr { "Adhésion" } else { "Membership" }, &kind),
        (if fr { "Valable jusqu'au" } else { "Valid until" }, &until),
        (if fr { "Situation à l'émission" } else { "Standing when printed" }, state),
    ]);
    if let Ok(code) = qrcode::QrCode::new(check_url.as_bytes()) {
        let w = code.width();
        let colors = code.to_colors();
        let cells: Vec<Vec<bool>> =
            (0..w).map(|r| (0..w).map(|c| colors[r * w + c] == qrcode::Color::Dark).collect()).collect();
        doc.matrix(&cells, 4.0);
    }
    doc.paragraph(if fr {
        "Scannez ce code pour vérifier que la carte est valable aujourd'hui."
    } else {
        "Scan this code to check that the card is valid today."
    });
    doc.finish(check_url)
}

// ---------- exports ----------

/// The list of members with the same filters, as rows of a CSV or ODS file.
/// Every member of the selection (not only a page), their periods read by chunks.
pub async fn export(db: &Db, cap: &CanRead, zone: &str, f: &MemberFilter, ods: bool) -> MemResult<Vec<u8>> {
    let selected = crate::directory::select_all(db, cap, zone, &list_filter(f)?).await?;
    let rows = with_standing(db, cap.org(), zone, selected).await?;
    let header = [
        "Name",
        "E-mail",
        "Membership type",
        "Standing",
        "First day",
        "Last day",
        "Fee",
        "Paid",
        "Left to pay",
        "Votes",
    ];
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let p = r.standing.period.as_ref();
            vec![
                r.name.clone(),
                r.email.clone().unwrap_or_default(),
                p.map(|p| p.type_name.clone()).unwrap_or_default(),
                json!(r.standing.standing).as_str().unwrap_or("").to_string(),
                p.map(|p| p.starts_on.clone()).unwrap_or_default(),
                p.and_then(|p| p.closed_on.clone().or(p.ends_on.clone())).unwrap_or_default(),
                p.map(|p| cents_text(p.fee_cents)).unwrap_or_default(),
                p.map(|p| cents_text(p.paid_cents)).unwrap_or_default(),
                cents_text(r.standing.due_cents),
                if r.standing.votes { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    Ok(shrooms_core::people::table_file(ods, "Members", &header, &data))
}
