//! Customers: the people and organisations invoices are addressed to, with
//! their legal identity, addresses, payment terms and language. Each gets
//! an auxiliary account in the ledger (C00001, C00002…) when created.

use crate::catalogue::{self, audited, country, required, text};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::Who;
use shrooms_core::db::{placeholders, Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: String,
    /// The person of the organisation's directory this customer is, if any.
    pub person_id: Option<String>,
    /// `individual` or `business` (businesses get the 40 € recovery indemnity mention).
    pub kind: String,
    pub name: String,
    pub siren: String,
    pub siret: String,
    pub vat_number: String,
    pub email: String,
    /// Street lines of the billing address, one per line.
    pub address: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    pub delivery_address: String,
    pub delivery_postcode: String,
    pub delivery_city: String,
    pub delivery_country: String,
    /// Days to pay; the organisation's terms when null.
    pub payment_terms_days: Option<i64>,
    /// `fr` or `en`: the language of this customer's documents.
    pub lang: String,
    /// Auxiliary account in the ledger (C00001).
    pub aux_account: String,
    pub archived: bool,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub person_id: Option<String>,
    /// `individual` (default) or `business`.
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub siren: Option<String>,
    #[serde(default)]
    pub siret: Option<String>,
    #[serde(default)]
    pub vat_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub delivery_address: Option<String>,
    #[serde(default)]
    pub delivery_postcode: Option<String>,
    #[serde(default)]
    pub delivery_city: Option<String>,
    #[serde(default)]
    pub delivery_country: Option<String>,
    #[serde(default)]
    pub payment_terms_days: Option<i64>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

const COLS: &str = "id, person_id, kind, name, siren, siret, vat_number, email, address, postcode, city, country, \
    delivery_address, delivery_postcode, delivery_city, delivery_country, payment_terms_days, lang, aux_account, archived";

fn from_row(r: &AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        name: r.try_get(3)?,
        siren: r.try_get(4)?,
        siret: r.try_get(5)?,
        vat_number: r.try_get(6)?,
        email: r.try_get(7)?,
        address: r.try_get(8)?,
        postcode: r.try_get(9)?,
        city: r.try_get(10)?,
        country: r.try_get(11)?,
        delivery_address: r.try_get(12)?,
        delivery_postcode: r.try_get(13)?,
        delivery_city: r.try_get(14)?,
        delivery_country: r.try_get(15)?,
        payment_terms_days: r.try_get(16)?,
        lang: r.try_get(17)?,
        aux_account: r.try_get(18)?,
        archived: r.try_get::<i64, _>(19)? != 0,
    })
}

pub async fn customer_in(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Option<Customer>> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM inv_customers WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.as_ref().map(from_row).transpose()?)
}

/// Several customers of the organisation at once, by id.
pub async fn customers_in(
    conn: &mut AnyConnection,
    org: OrgId,
    ids: &[String],
) -> CoreResult<std::collections::HashMap<String, Customer>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!("SELECT {COLS} FROM inv_customers WHERE org_id = $1 AND id IN ({})", params.join(","));
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let c = from_row(&r)?;
            out.insert(c.id.clone(), c);
        }
    }
    Ok(out)
}

pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Customer> {
    let mut conn = db.pool().acquire().await?;
    customer_in(&mut conn, cap.org(), id).await?.ok_or(CoreError::NotFound)
}

/// A page of customers: `q` matches the start of the name, the email or the
/// SIREN (case-insensitive); ordered by name then id; keyset cursor.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    pub q: Option<String>,
    /// Include archived customers.
    pub archived: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<Customer>,
    pub next_cursor: Option<String>,
}

pub async fn list(db: &Db, cap: &CanRead, q: &CustomerQuery) -> CoreResult<CustomerPage> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let after: Option<(String, String)> = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(crate::catalogue::decode_cursor::<(String, String)>(c).ok_or_else(|| {
            CoreError::validation("cursor", "This cursor does not fit the list: start again without it.")
        })?),
    };
    let needle = q.q.as_deref().map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let like = format!("{}%", needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let (an, ai) = after.clone().unwrap_or_default();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM inv_customers WHERE org_id = $1 AND (archived = 0 OR $2 = 1) \
         AND ($3 = '' OR LOWER(name) LIKE $4 ESCAPE '\\' OR LOWER(email) LIKE $4 ESCAPE '\\' OR siren LIKE $4 ESCAPE '\\' \
              OR LOWER(name) LIKE $5 ESCAPE '\\') \
         AND ($6 = 0 OR name > $7 OR (name = $7 AND id > $8)) \
         ORDER BY name, id LIMIT $9"
    ))
    .bind(cap.org().to_string())
    .bind(q.archived.unwrap_or(false) as i64)
    .bind(&needle)
    .bind(&like)
    .bind(format!("% {}", &like))
    .bind(after.is_some() as i64)
    .bind(&an)
    .bind(&ai)
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    let mut items: Vec<Customer> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|c| crate::catalogue::encode_cursor(&(c.name.clone(), c.id.clone())))
    } else {
        None
    };
    Ok(CustomerPage { items, next_cursor })
}

async fn check(conn: &mut AnyConnection, org: OrgId, i: CustomerInput) -> CoreResult<Customer> {
    let (c, mut e) = fields(i);
    if let Some(p) = &c.person_id {
        let found = sqlx::query("SELECT 1 FROM people WHERE org_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(p)
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_none() {
            e.push(no_person());
        }
    }
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    Ok(c)
}

fn no_person() -> FieldError {
    FieldError::new("person_id", "There is no such person in this organisation.")
}

/// The checks of a customer's fields that need no reading (all but the
/// person's existence): the customer to store, and what is wrong.
fn fields(i: CustomerInput) -> (Customer, Vec<FieldError>) {
    let mut e = Vec::new();
    let kind = i.kind.as_deref().unwrap_or("individual").trim().to_string();
    if kind != "individual" && kind != "business" {
        e.push(FieldError::new("kind", "Choose `individual` or `business`."));
    }
    let name = required(&i.name, "name", 200, &mut e);
    let siren = catalogue::check_siren(i.siren.as_deref().unwrap_or(""))
        .map_err(|m| e.push(FieldError::new("siren", m)))
        .unwrap_or_default();
    let siret = catalogue::check_siret(i.siret.as_deref().unwrap_or(""))
        .map_err(|m| e.push(FieldError::new("siret", m)))
        .unwrap_or_default();
    let siren = if siren.is_empty() && siret.len() == 14 { siret[..9].to_string() } else { siren };
    if !siret.is_empty() && !siret.starts_with(&siren) {
        e.push(FieldError::new("siret", "The SIRET starts with the SIREN."));
    }
    let vat_number = catalogue::check_vat_number(i.vat_number.as_deref().unwrap_or(""))
        .map_err(|m| e.push(FieldError::new("vat_number", m)))
        .unwrap_or_default();
    // No email is left out or null; a string given must be an address.
    let email = text(i.email.as_deref().unwrap_or(""), "email", 200, &mut e).to_lowercase();
    let bad = |m: &str| {
        let (user, domain) = m.split_once('@').unwrap_or(("", ""));
        user.is_empty() || domain.is_empty() || domain.contains('@') || m.contains(char::is_whitespace)
    };
    if i.email.is_some() && bad(&email) {
        e.push(FieldError::new("email", "Enter a valid email address, like name@example.org."));
    }
    let address = text(i.address.as_deref().unwrap_or(""), "address", 400, &mut e);
    let postcode = text(i.postcode.as_deref().unwrap_or(""), "postcode", 20, &mut e);
    let city = text(i.city.as_deref().unwrap_or(""), "city", 100, &mut e);
    let country = country(i.country.as_deref().unwrap_or("FR"), "country", &mut e);
    let delivery_address = text(i.delivery_address.as_deref().unwrap_or(""), "delivery_address", 400, &mut e);
    let delivery_postcode = text(i.delivery_postcode.as_deref().unwrap_or(""), "delivery_postcode", 20, &mut e);
    let delivery_city = text(i.delivery_city.as_deref().unwrap_or(""), "delivery_city", 100, &mut e);
    let delivery_country = match i.delivery_country.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(c) => catalogue::country(c, "delivery_country", &mut e),
    };
    if let Some(d) = i.payment_terms_days {
        if !(0..=365).contains(&d) {
            e.push(FieldError::new("payment_terms_days", "Give a whole number of days from 0 to 365."));
        }
    }
    let lang = i.lang.as_deref().unwrap_or("fr").trim().to_string();
    if lang != "fr" && lang != "en" {
        e.push(FieldError::new("lang", "Choose `fr` or `en`."));
    }
    let person_id = i.person_id.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_string);
    let c = Customer {
        id: String::new(),
        person_id,
        kind,
        name,
        siren,
        siret,
        vat_number,
        email,
        address,
        postcode,
        city,
        country,
        delivery_address,
        delivery_postcode,
        delivery_city,
        delivery_country,
        payment_terms_days: i.payment_terms_days,
        lang,
        aux_account: String::new(),
        archived: i.archived.unwrap_or(false),
    };
    (c, e)
}

/// Creates a customer in the caller's transaction: its auxiliary account
/// is the next number of the organisation's counter.
pub async fn insert(conn: &mut AnyConnection, org: OrgId, input: CustomerInput) -> CoreResult<Customer> {
    let mut c = check(conn, org, input).await?;
    let first = take_numbers(conn, org, 1).await?;
    number(&mut c, first);
    write_rows(conn, org, &[&c]).await?;
    Ok(c)
}

/// Creates several customers in the caller's transaction (a members'
/// renewal run makes thousands): each checked as [`insert`] checks it, the
/// valid ones numbered in order and stored by multi-row inserts. Gives, in
/// the order given, each customer made or what is wrong with its input.
pub async fn insert_many(
    tx: &mut Tx,
    org: OrgId,
    inputs: Vec<CustomerInput>,
) -> CoreResult<Vec<Result<Customer, Vec<FieldError>>>> {
    let mut checked: Vec<(Customer, Vec<FieldError>)> = inputs.into_iter().map(fields).collect();
    let people: Vec<&str> = checked.iter().filter_map(|(c, _)| c.person_id.as_deref()).collect();
    let mut found = std::collections::HashSet::new();
    for chunk in people.chunks(tx.backend().ids_per_statement(1)) {
        let sql = format!("SELECT id FROM people WHERE org_id = $1 AND id IN ({})", placeholders(2, chunk.len()));
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for p in chunk {
            q = q.bind(*p);
        }
        for r in q.fetch_all(tx.conn()).await? {
            found.insert(r.try_get::<String, _>(0)?);
        }
    }
    for (c, e) in checked.iter_mut() {
        if c.person_id.as_ref().is_some_and(|p| !found.contains(p)) {
            e.push(no_person());
        }
    }
    let valid = checked.iter().filter(|(_, e)| e.is_empty()).count() as i64;
    let mut next = if valid > 0 { take_numbers(tx.conn(), org, valid).await? } else { 0 };
    let out: Vec<Result<Customer, Vec<FieldError>>> = checked
        .into_iter()
        .map(|(mut c, e)| {
            if !e.is_empty() {
                return Err(e);
            }
            number(&mut c, next);
            next += 1;
            Ok(c)
        })
        .collect();
    let made: Vec<&Customer> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
    for chunk in made.chunks(tx.backend().rows_per_statement(ROW_VALUES)) {
        write_rows(tx.conn(), org, chunk).await?;
    }
    Ok(out)
}

/// Takes `n` numbers of the organisation's customer counter: the first.
async fn take_numbers(conn: &mut AnyConnection, org: OrgId, n: i64) -> CoreResult<i64> {
    let last: i64 = sqlx::query(
        "UPDATE inv_settings SET last_customer_no = last_customer_no + $2 WHERE org_id = $1 RETURNING last_customer_no",
    )
    .bind(org.to_string())
    .bind(n)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(last - n + 1)
}

/// A new customer's id and auxiliary account (C00001…), from its number.
fn number(c: &mut Customer, n: i64) {
    c.id = uuid::Uuid::now_v7().to_string();
    c.aux_account = format!("C{n:05}");
}

/// Values bound per customer row (beside the organisation and the time).
const ROW_VALUES: usize = 20;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds a customer's details, `person_id` to `lang`, in the columns' order.
fn bind_details<'q>(q: Query<'q>, c: &'q Customer) -> Query<'q> {
    q.bind(&c.person_id)
        .bind(&c.kind)
        .bind(&c.name)
        .bind(&c.siren)
        .bind(&c.siret)
        .bind(&c.vat_number)
        .bind(&c.email)
        .bind(&c.address)
        .bind(&c.postcode)
        .bind(&c.city)
        .bind(&c.country)
        .bind(&c.delivery_address)
        .bind(&c.delivery_postcode)
        .bind(&c.delivery_city)
        .bind(&c.delivery_country)
        .bind(c.payment_terms_days)
        .bind(&c.lang)
}

async fn write_rows(conn: &mut AnyConnection, org: OrgId, rows: &[&Customer]) -> CoreResult<()> {
    let values: Vec<String> = (0..rows.len())
        .map(|k| {
            let b = 3 + k * ROW_VALUES;
            format!("($1, {}, $2, $2)", placeholders(b, ROW_VALUES))
        })
        .collect();
    let sql = format!(
        "INSERT INTO inv_customers (org_id, id, person_id, kind, name, siren, siret, vat_number, email, address, \
         postcode, city, country, delivery_address, delivery_postcode, delivery_city, delivery_country, \
         payment_terms_days, lang, aux_account, archived, created_at, updated_at) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(org.to_string()).bind(Timestamp::now().0);
    for c in rows {
        q = bind_details(q.bind(&c.id), c).bind(&c.aux_account).bind(c.archived as i64);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

pub async fn create(db: &Db, who: &Who, cap: &CanWrite, input: CustomerInput) -> CoreResult<Customer> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let c = insert(tx.conn(), org, input).await?;
    audited(&mut tx, who, org, "invoicing.customer.create", "inv_customer", &c.id, None, serde_json::to_value(&c).ok())
        .await?;
    tx.commit().await?;
    Ok(c)
}

/// Replaces a customer's details. Issued documents keep the buyer they were
/// validated with (their snapshot).
pub async fn update(db: &Db, who: &Who, cap: &CanWrite, id: &str, input: CustomerInput) -> CoreResult<Customer> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = customer_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    let mut c = check(tx.conn(), org, input).await?;
    c.id = before.id.clone();
    c.aux_account = before.aux_account.clone();
    let q = sqlx::query(
        "UPDATE inv_customers SET person_id = $1, kind = $2, name = $3, siren = $4, siret = $5, vat_number = $6, \
         email = $7, address = $8, postcode = $9, city = $10, country = $11, delivery_address = $12, \
         delivery_postcode = $13, delivery_city = $14, delivery_country = $15, payment_terms_days = $16, lang = $17, \
         archived = $18, updated_at = $19 WHERE org_id = $20 AND id = $21",
    );
    bind_details(q, &c)
        .bind(c.archived as i64)
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.customer.update",
        "inv_customer",
        id,
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&c).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(c)
}
