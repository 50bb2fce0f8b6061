//! The people directory of an organisation: everyone it deals with
//! (members, volunteers, clients, contacts), whether or not they have an account.

use crate::audit::{self, Change, Who};
use crate::custom_fields::Bind;
use crate::db::{Backend, Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::identity::normalize_email;
use crate::ids::{parse_id, AccountId, OrgId, PersonId, Timestamp};
use crate::permissions::{CanAdmin, CanRead, CanWrite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Person {
    #[schema(value_type = String)]
    pub id: PersonId,
    pub org_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: String,
    pub account_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Values of the organisation's custom fields for people, by key.
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

const COLS: &str = "id, org_id, given_name, family_name, email, phone, notes, account_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> CoreResult<Person> {
    Ok(Person {
        id: parse_id(&r.try_get::<String, _>(0)?)?,
        org_id: r.try_get(1)?,
        given_name: r.try_get(2)?,
        family_name: r.try_get(3)?,
        email: r.try_get(4)?,
        phone: r.try_get(5)?,
        notes: r.try_get(6)?,
        account_id: r.try_get(7)?,
        created_at: Timestamp(r.try_get(8)?).rfc3339(),
        updated_at: Timestamp(r.try_get(9)?).rfc3339(),
        custom: serde_json::Map::new(),
    })
}

/// Adds the custom field values to people read from the database.
async fn fill_custom(db: &Db, org: crate::ids::OrgId, people: &mut [Person]) -> CoreResult<()> {
    let ids: Vec<String> = people.iter().map(|p| p.id.to_string()).collect();
    let mut values = crate::custom_fields::values_for(db, org, "person", &ids).await?;
    for p in people {
        if let Some(v) = values.remove(&p.id.to_string()) {
            p.custom = v;
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    /// Custom field values by key; on update, fields left out keep their value.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
}

struct Clean {
    given: String,
    family: String,
    email: Option<String>,
    phone: Option<String>,
    notes: String,
}

fn clean(input: &PersonInput, base: Option<&Person>) -> Result<Clean, Vec<FieldError>> {
    let mut errors = Vec::new();
    let pick = |v: &Option<String>, old: Option<&String>| {
        v.as_ref().map(|s| s.trim().to_string()).or(old.cloned()).unwrap_or_default()
    };
    let given = pick(&input.given_name, base.map(|b| &b.given_name));
    let family = pick(&input.family_name, base.map(|b| &b.family_name));
    if given.is_empty() && family.is_empty() {
        errors.push(FieldError::new("family_name", "Give at least a given name or a family name."));
    }
    for (f, v) in [("given_name", &given), ("family_name", &family)] {
        if v.chars().count() > 100 {
            errors.push(FieldError::new(f, "Use at most 100 characters."));
        }
    }
    let email = match &input.email {
        Some(e) if e.trim().is_empty() => None,
        Some(e) => match normalize_email(e) {
            Ok(e) => Some(e),
            Err(fe) => {
                errors.push(fe);
                None
            }
        },
        None => base.and_then(|b| b.email.clone()),
    };
    let phone = match &input.phone {
        Some(p) if p.trim().is_empty() => None,
        Some(p) => {
            let p = p.trim().to_string();
            if p.len() > 40 || !p.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c)) {
                errors.push(FieldError::new("phone", "Use digits, spaces and + - . ( ) only."));
            }
            Some(p)
        }
        None => base.and_then(|b| b.phone.clone()),
    };
    let notes = input.notes.clone().or(base.map(|b| b.notes.clone())).unwrap_or_default();
    if notes.chars().count() > 20_000 {
        errors.push(FieldError::new("notes", "Keep notes under 20,000 characters."));
    }
    if errors.is_empty() {
        Ok(Clean { given, family, email, phone, notes })
    } else {
        Err(errors)
    }
}

/// The rules of the person form applied to one imported row: the values as
/// they would be stored (given, family, email, phone), or the field errors.
#[allow(clippy::type_complexity)]
pub fn check_import(input: &PersonInput) -> Result<(String, String, Option<String>, Option<String>), Vec<FieldError>> {
    clean(input, None).map(|c| (c.given, c.family, c.email, c.phone))
}

/// Lowercases and folds accents, keeping ASCII letters and digits; any other
/// character separates words.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'œ' => {
                out.push_str("oe");
                continue;
            }
            'æ' => {
                out.push_str("ae");
                continue;
            }
            c => c,
        };
        out.push(if c.is_ascii_alphanumeric() { c } else { ' ' });
    }
    out
}

/// The words a person is found by: names, email (whole and in parts) and
/// phone (its digits from each group to the end).
pub fn terms_of(
    given: &str,
    family: &str,
    email: Option<&str>,
    phone: Option<&str>,
) -> std::collections::BTreeSet<String> {
    let mut t: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for part in [given, family, email.unwrap_or("")] {
        for w in fold(part).split_whitespace() {
            t.insert(w.chars().take(64).collect());
        }
    }
    if let Some(e) = email {
        let whole: String = fold(e).split_whitespace().collect();
        if !whole.is_empty() {
            t.insert(whole.chars().take(64).collect());
        }
    }
    if let Some(p) = phone {
        // From each group to the end, in one run of digits: a search for any
        // run of consecutive groups ("6 12 34", or just "34") is a prefix of
        // one of them. Six terms for a French number, not one per digit.
        let groups: Vec<String> = fold(p).split_whitespace().map(str::to_string).collect();
        for start in 0..groups.len() {
            let run: String = groups[start..].concat().chars().take(64).collect();
            if !run.is_empty() {
                t.insert(run);
            }
        }
    }
    t
}

/// More people than this sharing a search word make the name-order plan
/// cheaper than sorting the candidates (docs/PERFORMANCE.md).
const BROAD_WORD: i64 = 500;

async fn is_broad(db: &Db, cap: &CanRead, word: &str) -> CoreResult<bool> {
    let (range, hi) = match prefix_upper_bound(word) {
        Some(hi) => ("term >= $2 AND term < $3", Some(hi)),
        None => ("term >= $2", None),
    };
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM people_terms WHERE org_id = $1 AND {range} LIMIT {BROAD_WORD}) AS candidates"
    );
    let mut q = sqlx::query(&sql).bind(cap.org().to_string()).bind(word);
    if let Some(hi) = &hi {
        q = q.bind(hi.as_str());
    }
    Ok(q.fetch_one(db.pool()).await?.try_get::<i64, _>(0)? >= BROAD_WORD)
}

/// The condition on `term` for the words that start with `word`, its values
/// added to `binds`.
fn term_range(binds: &mut Vec<Bind>, word: &str) -> String {
    binds.push(Bind::Text(word.to_string()));
    let lo = binds.len();
    match prefix_upper_bound(word) {
        Some(hi) => {
            binds.push(Bind::Text(hi));
            format!("term >= ${lo} AND term < ${}", lo + 1)
        }
        None => format!("term >= ${lo}"),
    }
}

/// The words of a search, as the index holds them: folded, a phone number
/// typed in groups (`+33 6 12`) joined into one run of digits (`33612`),
/// longest first (usually the most selective), at most six.
fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut digits_run = false;
    for w in fold(text).split_whitespace() {
        let digits = w.chars().all(|c| c.is_ascii_digit());
        match words.last_mut() {
            Some(last) if digits && digits_run => last.push_str(w),
            _ => words.push(w.to_string()),
        }
        digits_run = digits;
    }
    words.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    words.dedup();
    words.truncate(6);
    words
}

/// The smallest string greater than every string starting with `prefix`
/// (letters and digits only, so the bound holds in byte order and in the
/// usual PostgreSQL collations alike); `None` when there is none.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '0'..='8' | 'a'..='y' => Some(((last as u8) + 1) as char),
            '9' => Some('a'),
            _ => None,
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

async fn write_terms(conn: &mut sqlx::AnyConnection, org: &str, id: &str, c: &Clean) -> CoreResult<()> {
    sqlx::query("DELETE FROM people_terms WHERE person_id = $1").bind(id).execute(&mut *conn).await?;
    let terms = terms_of(&c.given, &c.family, c.email.as_deref(), c.phone.as_deref());
    if terms.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("INSERT INTO people_terms (org_id, term, family_name, given_name, person_id) VALUES ");
    for (i, _) in terms.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("($1, ${}, $3, $4, $2)", i + 5));
    }
    let mut q = sqlx::query(&sql).bind(org).bind(id).bind(c.family.as_str()).bind(c.given.as_str());
    for t in &terms {
        q = q.bind(t.as_str());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Rebuilds the search words of every person (after the search index
/// migration, or by an operator); returns how many people were indexed.
pub async fn reindex_all(db: &Db) -> CoreResult<usize> {
    let mut done = 0;
    let mut after = String::new();
    loop {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM people WHERE id > $1 ORDER BY id LIMIT 500"))
            .bind(&after)
            .fetch_all(db.pool())
            .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = db.begin().await?;
        for r in &rows {
            let p = from_row(r)?;
            let c = Clean {
                given: p.given_name.clone(),
                family: p.family_name.clone(),
                email: p.email.clone(),
                phone: p.phone.clone(),
                notes: String::new(),
            };
            write_terms(tx.conn(), &p.org_id, &p.id.to_string(), &c).await?;
            after = p.id.to_string();
            done += 1;
        }
        tx.commit().await?;
    }
}

/// Inserts many people of one organisation in the caller's transaction
/// (imports, demo data); the caller records one audit entry for the batch.
pub async fn insert_bulk(
    tx: &mut crate::db::Tx,
    cap: &CanWrite,
    people: &[(String, String, Option<String>, Option<String>)],
) -> CoreResult<usize> {
    let now = Timestamp::now().0;
    let org = cap.org();
    // Rows per statement. sqlx's SQLite driver looks every parameter up by
    // name, which costs time in proportion to the parameters of the
    // statement: big statements cost the square of their size there, while
    // PostgreSQL wants few, big statements (round trips). docs/PERFORMANCE.md.
    let (people_rows, term_rows) = match tx.backend() {
        crate::db::Backend::Sqlite => (20, 30),
        crate::db::Backend::Postgres => (200, 2000),
    };
    let ids: Vec<String> = people.iter().map(|_| PersonId::new().to_string()).collect();
    for (chunk, chunk_ids) in people.chunks(people_rows).zip(ids.chunks(people_rows)) {
        let mut sql = format!("INSERT INTO people ({COLS}, search) VALUES ");
        for k in 0..chunk.len() {
            let b = k * 5;
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, $1, ${}, ${}, ${}, ${}, '', NULL, {now}, {now}, '')",
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for ((g, f, e, p), id) in chunk.iter().zip(chunk_ids) {
            q = q.bind(id.as_str()).bind(g.as_str()).bind(f.as_str()).bind(e.as_deref()).bind(p.as_deref());
        }
        q.execute(tx.conn()).await?;
    }
    // The search words of all of them in a few statements (new ids have
    // none to delete), in index order so that neighbouring words land on
    // the same index pages: one statement per person made big imports wait
    // on round trips, on PostgreSQL above all.
    let mut terms: Vec<(String, &str, &str, &str)> = Vec::new();
    for ((g, f, e, p), id) in people.iter().zip(&ids) {
        terms.extend(
            terms_of(g, f, e.as_deref(), p.as_deref()).into_iter().map(|t| (t, f.as_str(), g.as_str(), id.as_str())),
        );
    }
    terms.sort_unstable();
    for part in terms.chunks(term_rows) {
        let mut sql =
            String::from("INSERT INTO people_terms (org_id, term, family_name, given_name, person_id) VALUES ");
        for k in 0..part.len() {
            if k > 0 {
                sql.push(',');
            }
            let b = 4 * k;
            sql.push_str(&format!("($1, ${}, ${}, ${}, ${})", b + 2, b + 3, b + 4, b + 5));
        }
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for (t, f, g, id) in part {
            q = q.bind(t.as_str()).bind(*f).bind(*g).bind(*id);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(people.len())
}

fn search_text(c: &Clean) -> String {
    format!("{} {} {} {}", c.given, c.family, c.email.as_deref().unwrap_or(""), c.phone.as_deref().unwrap_or(""))
        .to_lowercase()
}

pub async fn create(db: &Db, who: &Who, cap: &CanWrite, input: PersonInput) -> CoreResult<Person> {
    let custom = crate::custom_fields::parse(db, cap.org(), "person", input.custom.as_ref(), None).await?;
    let c = match (clean(&input, None), custom) {
        (Ok(c), Ok(custom)) => (c, custom),
        (a, b) => {
            let mut errors = a.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            return Err(CoreError::Validation(errors));
        }
    };
    let (c, custom) = c;
    let id = PersonId::new();
    let now = Timestamp::now().0;
    let mut tx = db.begin().await?;
    sqlx::query(&format!("INSERT INTO people ({COLS}, search) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8, $9)"))
        .bind(id.to_string())
        .bind(cap.org().to_string())
        .bind(&c.given)
        .bind(&c.family)
        .bind(&c.email)
        .bind(&c.phone)
        .bind(&c.notes)
        .bind(now)
        .bind(search_text(&c))
        .execute(tx.conn())
        .await?;
    write_terms(tx.conn(), &cap.org().to_string(), &id.to_string(), &c).await?;
    crate::custom_fields::write(&mut tx, cap.org(), "person", &id.to_string(), &custom).await?;
    let mut p = from_row(
        &sqlx::query(&format!("SELECT {COLS} FROM people WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(tx.conn())
            .await?,
    )?;
    crate::custom_fields::apply(&custom, &mut p.custom);
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "person.create",
            entity_type: "person",
            entity_id: id.to_string(),
            before: None,
            after: serde_json::to_value(&p).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// The person of `org` that is the signed-in `account` (the person↔account
/// link, `people.account_id`), for "my space" pages. When no person is
/// linked yet, the one person of the organisation with the account's e-mail
/// and no account is linked now (audited `person.link_account`): accounts
/// exist only by an organisation's invitation, so the address was vouched
/// for. Several candidates link none (a secretary must tell them apart, with
/// [`link_account`]), nor does a person a secretary unlinked from this
/// account by hand ([`unlink_account`]).
pub async fn of_account(db: &Db, who: &Who, org: OrgId, account: AccountId, email: &str) -> CoreResult<Option<Person>> {
    if let Some(p) = linked_person(db.pool(), org, account).await? {
        return Ok(Some(p));
    }
    let Ok(email) = normalize_email(email) else { return Ok(None) };
    let mut tx = db.begin().await?;
    // The same lock as a secretary's link takes, so that the two never link
    // one account to two people; then look again under it.
    lock_membership(&mut tx, org, account).await?;
    if let Some(p) = linked_person(tx.conn(), org, account).await? {
        return Ok(Some(p));
    }
    let rows = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND email = $2 AND account_id IS NULL LIMIT 2")
        .bind(org.to_string())
        .bind(&email)
        .fetch_all(tx.conn())
        .await?;
    let [r] = rows.as_slice() else { return Ok(None) };
    let id: String = r.try_get(0)?;
    if unlinked_by_hand(&mut tx, org, &id, account).await? {
        return Ok(None);
    }
    sqlx::query("UPDATE people SET account_id = $1 WHERE org_id = $2 AND id = $3 AND account_id IS NULL")
        .bind(account.to_string())
        .bind(org.to_string())
        .bind(&id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "person.link_account",
            entity_type: "person",
            entity_id: id.clone(),
            before: None,
            after: Some(serde_json::json!({"account_id": account.to_string()})),
        },
    )
    .await?;
    let p = from_row(
        &sqlx::query(&format!("SELECT {COLS} FROM people WHERE id = $1")).bind(&id).fetch_one(tx.conn()).await?,
    )?;
    tx.commit().await?;
    Ok(Some(p))
}

/// The person of `org` linked to `account`, if any.
async fn linked_person<'c, E>(conn: E, org: OrgId, account: AccountId) -> CoreResult<Option<Person>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(&format!("SELECT {COLS} FROM people WHERE org_id = $1 AND account_id = $2 ORDER BY id LIMIT 1"))
        .bind(org.to_string())
        .bind(account.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// Serialises the links of one account in one organisation: its membership
/// row, taken on PostgreSQL (SQLite write transactions are already one at a
/// time). Without it, two links made at once (a secretary's and the
/// automatic one, or two secretaries') could each see the account free and
/// link it to two people. `people` has no unique index on the link, so this
/// lock is what keeps "one person per account and organisation".
async fn lock_membership(tx: &mut Tx, org: OrgId, account: AccountId) -> CoreResult<()> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT account_id FROM memberships WHERE org_id = $1 AND account_id = $2 FOR UPDATE")
            .bind(org.to_string())
            .bind(account.to_string())
            .fetch_optional(tx.conn())
            .await?;
    }
    Ok(())
}

/// Whether a secretary unlinked `account` from this person by hand: the
/// automatic link must not undo that on the account's next visit. The audit
/// log is the record of it (hash-chained, never purged, written in the
/// unlink's transaction), read through its `(entity_type, entity_id)` index;
/// only the rare first visit with exactly one candidate asks.
async fn unlinked_by_hand(tx: &mut Tx, org: OrgId, person: &str, account: AccountId) -> CoreResult<bool> {
    let rows = sqlx::query(
        "SELECT before_json FROM audit_log WHERE entity_type = 'person' AND entity_id = $1 AND org_id = $2 AND action = 'person.unlink_account'",
    )
    .bind(person)
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    let account = account.to_string();
    for r in rows {
        let before: Option<String> = r.try_get(0)?;
        let before: serde_json::Value = before.and_then(|b| serde_json::from_str(&b).ok()).unwrap_or_default();
        if before["account_id"].as_str() == Some(account.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Which account a secretary links to a person: its e-mail (any case, as
/// accounts store it lowercased) or its id, one of the two.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLink {
    /// The e-mail the account signs in with.
    pub email: Option<String>,
    /// Or the account's id (`account_id` of the organisation's members).
    pub account_id: Option<String>,
}

/// A person with the e-mail of the account linked to them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PersonWithAccount {
    #[serde(flatten)]
    pub person: Person,
    /// The e-mail of the linked account; null when none is linked.
    pub account_email: Option<String>,
}

/// The member account an [`AccountLink`] names: the field it was named by,
/// its id and e-mail. An account that does not exist and one that is not a
/// member of the organisation get the same answer, so that an organisation's
/// administrator learns nothing about the instance's other accounts.
async fn member_account(tx: &mut Tx, org: OrgId, input: &AccountLink) -> CoreResult<(&'static str, AccountId, String)> {
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let (field, sql, key) = match (given(&input.email), given(&input.account_id)) {
        (Some(_), Some(_)) => {
            return Err(CoreError::validation("account_id", "Give the account's email or its id, not both."))
        }
        (None, None) => return Err(CoreError::validation("email", "Give the email of the account to link.")),
        (Some(e), None) => {
            ("email", "a.email = $2", normalize_email(&e).map_err(|fe| CoreError::Validation(vec![fe]))?)
        }
        (None, Some(id)) => {
            let id: AccountId =
                id.parse().map_err(|_| CoreError::validation("account_id", "This is not an account id."))?;
            ("account_id", "a.id = $2", id.to_string())
        }
    };
    let lock = if tx.backend() == Backend::Postgres { " FOR UPDATE OF m" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT a.id, a.email FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.org_id = $1 AND {sql}{lock}"
    ))
    .bind(org.to_string())
    .bind(&key)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Err(CoreError::validation(
            field,
            if field == "email" {
                "No member of this organisation has an account with this email. Add them to the organisation's members first."
            } else {
                "No member of this organisation has this account."
            },
        ));
    };
    let id: AccountId =
        row.try_get::<String, _>(0)?.parse().map_err(|_| CoreError::Internal("an account id is not a UUID".into()))?;
    Ok((field, id, row.try_get(1)?))
}

/// One person of `org`, read in the transaction; on PostgreSQL its row is
/// locked until the end of it when `lock` is set.
async fn person_in(tx: &mut Tx, org: OrgId, id: &str, lock: bool) -> CoreResult<Option<Person>> {
    let lock = if lock && tx.backend() == Backend::Postgres { " FOR UPDATE" } else { "" };
    sqlx::query(&format!("SELECT {COLS} FROM people WHERE org_id = $1 AND id = $2{lock}"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

async fn account_email(conn: &mut sqlx::AnyConnection, account: &str) -> CoreResult<Option<String>> {
    Ok(sqlx::query("SELECT email FROM accounts WHERE id = $1")
        .bind(account)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

fn person_ref(id: &str) -> crate::module::RecordRef {
    crate::module::RecordRef {
        entity_type: "person".into(),
        entity_id: id.into(),
        title: String::new(),
        path: String::new(),
    }
}

fn display_name(p: &Person) -> String {
    let name = format!("{} {}", p.given_name, p.family_name).trim().to_string();
    if name.is_empty() {
        "another person".into()
    } else {
        name
    }
}

/// A secretary links a member's account to a person by hand: the account
/// holder then sees this person's member space. Needed when the automatic
/// link by e-mail cannot choose (two people of a family share the address)
/// or cannot find (the account's e-mail is not the person's).
///
/// It takes `CanAdmin` on the core, not `CanWrite`: the member space shows
/// the person's personal data (standing, dues, tax receipts, mandates,
/// address) to whoever holds the account, so linking is as sensitive as the
/// personal-data export and the erasure, which also need administration of
/// the core; a role that may edit people may not hand their data to an
/// account.
///
/// Rules: the account must be a member of the organisation (else a field
/// error on `email` or `account_id`); an account already linked to another
/// person of the organisation is a conflict naming that person (unlink it
/// there first: nothing moves silently); a person linked to another account
/// is relinked, the audit entry keeping both; an erased person cannot be
/// linked; a person of another organisation is not found. Linking the
/// account the person already has changes nothing and records nothing.
pub async fn link_account(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    id: &str,
    input: &AccountLink,
) -> CoreResult<PersonWithAccount> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    // The person first: another organisation's answers 404 whatever was sent.
    if person_in(&mut tx, org, id, false).await?.is_none() {
        return Err(CoreError::NotFound);
    }
    if crate::privacy::erased_at(tx.conn(), org, id).await?.is_some() {
        return Err(CoreError::Conflict {
            field: None,
            message: "This person was erased: their record cannot be linked to an account.".into(),
        });
    }
    // The account's membership row, then the person's row: the order the
    // automatic link takes them in too.
    let (field, account, email) = member_account(&mut tx, org, input).await?;
    let before = person_in(&mut tx, org, id, true).await?.ok_or(CoreError::NotFound)?;
    if before.account_id.as_deref() == Some(account.to_string().as_str()) {
        drop(tx);
        let person = get(db, &cap.as_write().as_read(), id).await?;
        return Ok(PersonWithAccount { person, account_email: Some(email) });
    }
    let other = sqlx::query(&format!(
        "SELECT {COLS} FROM people WHERE org_id = $1 AND account_id = $2 AND id <> $3 ORDER BY id LIMIT 1"
    ))
    .bind(org.to_string())
    .bind(account.to_string())
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(other) = other {
        let other = from_row(&other)?;
        return Err(CoreError::Conflict {
            field: Some(field.into()),
            message: format!(
                "This account is already linked to {} ({}) in this organisation: unlink it there first.",
                display_name(&other),
                other.id
            ),
        });
    }
    let old_email = match &before.account_id {
        Some(old) => account_email(tx.conn(), old).await?,
        None => None,
    };
    sqlx::query("UPDATE people SET account_id = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(account.to_string())
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
            action: "person.link_account",
            entity_type: "person",
            entity_id: id.to_string(),
            before: Some(serde_json::json!({"account_id": before.account_id, "account_email": old_email})),
            after: Some(serde_json::json!({"account_id": account.to_string(), "account_email": email})),
        },
    )
    .await?;
    let text = match &old_email {
        Some(old) => format!(
            "Account linked: {} (instead of {}).",
            crate::markdown::escape_text(&email),
            crate::markdown::escape_text(old)
        ),
        None => format!("Account linked: {}.", crate::markdown::escape_text(&email)),
    };
    crate::timeline::event(
        &mut tx,
        who,
        org,
        &person_ref(id),
        &text,
        serde_json::json!({"account_link": account.to_string(), "previous": before.account_id}),
    )
    .await?;
    tx.commit().await?;
    let person = get(db, &cap.as_write().as_read(), id).await?;
    Ok(PersonWithAccount { person, account_email: Some(email) })
}

/// A secretary unlinks the account from a person by hand (same capability
/// as [`link_account`], for the same reason): the account holder no longer
/// sees the person's member space, and the automatic link by e-mail will not
/// link them back (a secretary may link them again). Unlinking a person who
/// has no account changes nothing; a person of another organisation is not
/// found.
pub async fn unlink_account(db: &Db, who: &Who, cap: &CanAdmin, id: &str) -> CoreResult<()> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = person_in(&mut tx, org, id, true).await?.ok_or(CoreError::NotFound)?;
    let Some(account) = before.account_id else { return Ok(()) };
    let email = account_email(tx.conn(), &account).await?;
    sqlx::query("UPDATE people SET account_id = NULL, updated_at = $1 WHERE org_id = $2 AND id = $3")
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
            action: "person.unlink_account",
            entity_type: "person",
            entity_id: id.to_string(),
            before: Some(serde_json::json!({"account_id": account, "account_email": email})),
            after: Some(serde_json::json!({"account_id": null, "account_email": null})),
        },
    )
    .await?;
    let text = match &email {
        Some(e) => format!("Account unlinked: {}.", crate::markdown::escape_text(e)),
        None => "Account unlinked.".to_string(),
    };
    crate::timeline::event(&mut tx, who, org, &person_ref(id), &text, serde_json::json!({"account_unlink": account}))
        .await?;
    tx.commit().await
}

/// The e-mail of the account linked to a person of the capability's
/// organisation (none when no account is linked or the person is not theirs).
pub async fn linked_account_email(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Option<String>> {
    Ok(sqlx::query(
        "SELECT a.email FROM people p JOIN accounts a ON a.id = p.account_id WHERE p.org_id = $1 AND p.id = $2",
    )
    .bind(cap.org().to_string())
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?)
}

/// The person of the capability's organisation linked to the account that
/// signs in with `email`, if any (to show a secretary who holds it).
pub async fn linked_to_email(db: &Db, cap: &CanRead, email: &str) -> CoreResult<Option<Person>> {
    let Ok(email) = normalize_email(email) else { return Ok(None) };
    sqlx::query(&format!(
        "SELECT {} FROM people p JOIN accounts a ON a.id = p.account_id WHERE p.org_id = $1 AND a.email = $2 ORDER BY p.id LIMIT 1",
        COLS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(cap.org().to_string())
    .bind(&email)
    .fetch_optional(db.pool())
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// Reads one person of the capability's organisation; any other answers NotFound.
pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Person> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM people WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    let mut p = [from_row(&r)?];
    fill_custom(db, cap.org(), &mut p).await?;
    let [p] = p;
    Ok(p)
}

pub async fn update(db: &Db, who: &Who, cap: &CanWrite, id: &str, input: PersonInput) -> CoreResult<Person> {
    let existing = crate::custom_fields::values_for(db, cap.org(), "person", &[id.to_string()]).await?.remove(id);
    let custom = crate::custom_fields::parse(
        db,
        cap.org(),
        "person",
        input.custom.as_ref(),
        Some(&existing.clone().unwrap_or_default()),
    )
    .await?;
    let mut tx = db.begin().await?;
    let mut before = from_row(
        &sqlx::query(&format!("SELECT {COLS} FROM people WHERE org_id = $1 AND id = $2"))
            .bind(cap.org().to_string())
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or(CoreError::NotFound)?,
    )?;
    before.custom = existing.unwrap_or_default();
    let (c, custom) = match (clean(&input, Some(&before)), custom) {
        (Ok(c), Ok(custom)) => (c, custom),
        (a, b) => {
            let mut errors = a.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            return Err(CoreError::Validation(errors));
        }
    };
    sqlx::query("UPDATE people SET given_name = $1, family_name = $2, email = $3, phone = $4, notes = $5, search = $6, updated_at = $7 WHERE org_id = $8 AND id = $9")
        .bind(&c.given)
        .bind(&c.family)
        .bind(&c.email)
        .bind(&c.phone)
        .bind(&c.notes)
        .bind(search_text(&c))
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    write_terms(tx.conn(), &cap.org().to_string(), id, &c).await?;
    crate::custom_fields::write(&mut tx, cap.org(), "person", id, &custom).await?;
    let mut after = from_row(
        &sqlx::query(&format!("SELECT {COLS} FROM people WHERE id = $1")).bind(id).fetch_one(tx.conn()).await?,
    )?;
    after.custom = before.custom.clone();
    crate::custom_fields::apply(&custom, &mut after.custom);
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "person.update",
            entity_type: "person",
            entity_id: id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    let before = sqlx::query(&format!("SELECT {COLS} FROM people WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    let before = from_row(&before)?;
    sqlx::query("DELETE FROM people WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    // No foreign key cascades to the search words (see migration 080).
    sqlx::query("DELETE FROM people_terms WHERE org_id = $1 AND person_id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    // The person's files go with them (their blobs by the cleanup job).
    crate::files::delete_for(&mut tx, who, cap, "person", id).await?;
    // After the files: their removal would otherwise leave timeline entries behind.
    crate::timeline::forget(&mut tx, cap.org(), "person", id).await?;
    crate::custom_fields::forget(&mut tx, cap.org(), "person", id).await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "person.delete",
            entity_type: "person",
            entity_id: id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeopleSort {
    /// Family name, then given name.
    #[default]
    Name,
    /// Newest first.
    Newest,
    /// Oldest first.
    Oldest,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub struct ListQuery {
    pub q: Option<String>,
    /// Custom field filters: `key=value`, `key>=value`, `key<=value`, `key~text` (all must hold).
    pub filters: Vec<String>,
    pub sort: PeopleSort,
    pub cursor: Option<String>,
    pub limit: i64,
}

fn bad_cursor() -> CoreError {
    CoreError::validation("cursor", "This cursor is not valid for this list; start again without it.")
}

/// Keyset-paginated list: stable under inserts, constant cost per page.
pub async fn list(db: &Db, cap: &CanRead, q: &ListQuery) -> CoreResult<Page<Person>> {
    let limit = q.limit.clamp(1, 200);
    let mut sql = format!("SELECT {COLS} FROM people WHERE org_id = $1");
    let mut binds: Vec<Bind> = vec![Bind::Text(cap.org().to_string())];
    // Every word of the query must start a word of the person (index range scans).
    // The longest word picks the candidates through the index; each other word
    // is then checked among the few terms of each candidate. A word that many
    // people have (an email domain) would make thousands of candidates to
    // sort: then the people are read in name order and each is checked, which
    // stops at the first page.
    //
    // In name order without custom-field filters, the page is chosen from the
    // search words' index alone, which carries the names: the candidates' keys
    // are sorted there and only the page's people are read. The cursor then
    // applies inside (below); the outer query sorts the page again.
    let mut cursor: Option<Vec<String>> = match &q.cursor {
        Some(c) => Some(B64.decode(c).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(bad_cursor)?),
        None => None,
    };
    if let Some(text) = q.q.as_deref() {
        let words = search_words(text);
        let broad = match words.first() {
            Some(w) => is_broad(db, cap, w).await?,
            None => false,
        };
        let ranges: Vec<String> = words.iter().map(|w| term_range(&mut binds, w)).collect();
        if !broad && !ranges.is_empty() && q.filters.is_empty() && q.sort == PeopleSort::Name {
            let mut page = format!(
                "SELECT DISTINCT family_name, given_name, person_id FROM people_terms WHERE org_id = $1 AND {}",
                ranges[0]
            );
            for r in &ranges[1..] {
                page.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM people_terms t WHERE t.person_id = people_terms.person_id AND t.{r})"
                ));
            }
            if let Some(c) = cursor.take() {
                if c.len() != 3 {
                    return Err(bad_cursor());
                }
                let n = binds.len();
                page.push_str(&format!(
                    " AND (family_name, given_name, person_id) > (${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3
                ));
                binds.extend(c.into_iter().map(Bind::Text));
            }
            page.push_str(&format!(" ORDER BY family_name, given_name, person_id LIMIT {}", limit + 1));
            sql.push_str(&format!(" AND id IN (SELECT person_id FROM ({page}) AS page)"));
        } else {
            for (i, r) in ranges.iter().enumerate() {
                if i == 0 && !broad {
                    sql.push_str(&format!(" AND id IN (SELECT person_id FROM people_terms WHERE org_id = $1 AND {r})"));
                } else {
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM people_terms t WHERE t.person_id = people.id AND t.{r})"
                    ));
                }
            }
        }
    }
    for f in q.filters.iter().take(10) {
        let (cond, more) =
            crate::custom_fields::filter_clause(db, cap.org(), "person", "people.id", f, binds.len() + 1).await?;
        sql.push_str(" AND ");
        sql.push_str(&cond);
        binds.extend(more);
    }
    let n = binds.len();
    let (order, keys): (&str, usize) = match q.sort {
        PeopleSort::Name => {
            if let Some(c) = &cursor {
                if c.len() != 3 {
                    return Err(bad_cursor());
                }
                sql.push_str(&format!(" AND (family_name, given_name, id) > (${}, ${}, ${})", n + 1, n + 2, n + 3));
            }
            ("family_name, given_name, id", 3)
        }
        PeopleSort::Newest | PeopleSort::Oldest => {
            let op = if q.sort == PeopleSort::Newest { "<" } else { ">" };
            if let Some(c) = &cursor {
                if c.len() != 1 {
                    return Err(bad_cursor());
                }
                sql.push_str(&format!(" AND id {op} ${}", n + 1));
            }
            (if q.sort == PeopleSort::Newest { "id DESC" } else { "id" }, 1)
        }
    };
    let _ = keys;
    if let Some(c) = cursor {
        binds.extend(c.into_iter().map(Bind::Text));
    }
    sql.push_str(&format!(" ORDER BY {order} LIMIT {}", limit + 1));
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = match b {
            Bind::Text(t) => query.bind(t),
            Bind::Int(i) => query.bind(*i),
        };
    }
    let rows = query.fetch_all(db.pool()).await?;
    let mut items = rows.iter().map(from_row).collect::<CoreResult<Vec<_>>>()?;
    fill_custom(db, cap.org(), &mut items).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|p| {
            let key = match q.sort {
                PeopleSort::Name => vec![p.family_name.clone(), p.given_name.clone(), p.id.to_string()],
                _ => vec![p.id.to_string()],
            };
            B64.encode(serde_json::to_vec(&key).unwrap_or_default())
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// A CSV file as spreadsheet programs read it: UTF-8 with a byte-order mark,
/// CRLF lines, cells that would run as formulas made text.
pub fn csv_file(header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    out.push_str(&header.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn csv_cell(s: &str) -> String {
    // Cells that a spreadsheet would run as a formula are quoted as text.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Export formats of the people list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// UTF-8 with a byte-order mark, so spreadsheet programs read accents right.
    Csv,
    /// OpenDocument spreadsheet, what LibreOffice opens natively.
    Ods,
    /// A printable list (name, email, phone and the list columns), with the
    /// organisation's branding.
    Pdf,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ods => "ods",
            ExportFormat::Pdf => "pdf",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            ExportFormat::Pdf => "application/pdf",
        }
    }
}

/// A table as an ODS spreadsheet or else a CSV file.
pub fn table_file(ods: bool, sheet: &str, header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    if ods {
        crate::ods::spreadsheet(sheet, header, rows)
    } else {
        csv_file(header, rows)
    }
}

const EXPORT_HEADER: [&str; 8] =
    ["id", "given_name", "family_name", "email", "phone", "notes", "created_at", "updated_at"];

/// The filtered list, in every page, as a file. The export is audited: it
/// takes personal data out of the application.
pub async fn export(
    db: &Db,
    who: &Who,
    cap: &CanRead,
    q: Option<String>,
    filters: Vec<String>,
    format: ExportFormat,
    tr: &(dyn Fn(&str) -> String + Sync),
) -> CoreResult<Vec<u8>> {
    let fields = crate::custom_fields::definitions(db, cap.org(), "person").await?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(
            db,
            cap,
            &ListQuery { q: q.clone(), filters: filters.clone(), sort: PeopleSort::Name, cursor, limit: 200 },
        )
        .await?;
        for p in page.items {
            let mut row = vec![
                p.id.to_string(),
                p.given_name,
                p.family_name,
                p.email.unwrap_or_default(),
                p.phone.unwrap_or_default(),
                p.notes,
                p.created_at,
                p.updated_at,
            ];
            for f in &fields {
                row.push(match p.custom.get(&f.key) {
                    Some(serde_json::Value::Array(a)) => {
                        a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    }
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                });
            }
            rows.push(row);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut tx = db.begin().await?;
    let fmt = format.extension();
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "person.export",
            entity_type: "person",
            entity_id: "*".into(),
            before: None,
            after: Some(serde_json::json!({"rows": rows.len(), "q": q, "format": fmt})),
        },
    )
    .await?;
    tx.commit().await?;
    let header: Vec<&str> = EXPORT_HEADER.iter().copied().chain(fields.iter().map(|f| f.key.as_str())).collect();
    Ok(match format {
        ExportFormat::Csv | ExportFormat::Ods => table_file(format == ExportFormat::Ods, "People", &header, &rows),
        ExportFormat::Pdf => {
            let org = crate::orgs::find_org(db, &cap.org().to_string()).await?.ok_or(CoreError::NotFound)?;
            let mut doc = crate::pdf::Document::new(
                &tr("people.title"),
                crate::pdf::Branding {
                    org_name: org.name.clone(),
                    colour: org.color_primary.clone().unwrap_or_else(|| "#FF6B35".into()),
                },
            );
            doc.heading(&format!("{} — {}", tr("people.title"), org.name));
            let search =
                q.as_deref().filter(|q| !q.trim().is_empty()).map(|q| format!(" · {} « {q} »", tr("action.search")));
            doc.paragraph(&format!("{} {}{}", tr("people.pdf_count"), rows.len(), search.unwrap_or_default()));
            // Name, email, phone, then the custom fields shown in lists.
            let listed: Vec<usize> =
                fields.iter().enumerate().filter(|(_, f)| f.in_list).map(|(i, _)| EXPORT_HEADER.len() + i).collect();
            let labels = [tr("field.name"), tr("field.email"), tr("field.phone")];
            let mut head: Vec<&str> = labels.iter().map(String::as_str).collect();
            head.extend(listed.iter().map(|&i| fields[i - EXPORT_HEADER.len()].label.as_str()));
            let mut widths = vec![3.0, 3.5, 2.2];
            widths.extend(listed.iter().map(|_| 1.6));
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut out = vec![format!("{} {}", r[2], r[1]).trim().to_string(), r[3].clone(), r[4].clone()];
                    out.extend(listed.iter().map(|&i| r[i].clone()));
                    out
                })
                .collect();
            doc.table(&head, &widths, &table);
            let now = time::OffsetDateTime::now_utc();
            doc.finish(&format!("{:04}-{:02}-{:02} (UTC)", now.year(), now.month() as u8, now.day()))
        }
    })
}

pub async fn count(db: &Db, cap: &CanRead) -> CoreResult<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM people WHERE org_id = $1")
        .bind(cap.org().to_string())
        .fetch_one(db.pool())
        .await?
        .try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_split() {
        let t = terms_of("Zoé", "Lefèvre-Dubois", Some("Zoe.L@Example.org"), Some("+33 6 12"));
        for w in ["zoe", "lefevre", "dubois", "example", "org", "zoelexampleorg", "33612", "612", "12"] {
            assert!(t.contains(w), "{w} missing from {t:?}");
        }
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("+33 6 12"), "'+33 6 12");
    }

    #[test]
    fn phone_digits_are_found_from_any_group() {
        let t = terms_of("A", "B", None, Some("+33 6 12 34 56 78"));
        let phone: Vec<&String> = t.iter().filter(|w| w.starts_with(|c: char| c.is_ascii_digit())).collect();
        assert_eq!(phone, ["12345678", "33612345678", "345678", "5678", "612345678", "78"]);
        // Any run of whole groups, as typed, is the start of one of them.
        for q in ["+33 6 12", "6 12 34", "34 56", "78", "33"] {
            let w = &search_words(q)[0];
            assert!(t.iter().any(|term| term.starts_with(w.as_str())), "{q} finds nothing in {t:?}");
        }
        assert!(terms_of("A", "B", None, Some("12")).contains("12"));
    }

    #[test]
    fn searches_join_digit_groups_and_start_with_the_longest_word() {
        assert_eq!(search_words("+33 6 12"), vec!["33612"]);
        assert_eq!(search_words("camille Martin"), vec!["camille", "martin"]);
        assert_eq!(search_words("zo marie-léa 06 12"), vec!["marie", "0612", "lea", "zo"]);
        assert_eq!(search_words("a a a"), vec!["a"]);
    }

    #[test]
    fn emails_in_timeline_text_stay_readable_and_inert() {
        assert_eq!(crate::markdown::escape_text("jean_dupont@example.org"), "jean_dupont@example.org");
        assert_eq!(crate::markdown::escape_text("_a*b_@x.org"), "\\_a\\*b\\_@x.org");
        let html = crate::markdown::render(&crate::markdown::escape_text("_a*b_@x.org"), &[]);
        assert!(html.contains("_a*b_@x.org") && !html.contains("<em>"), "{html}");
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("mar").as_deref(), Some("mas"));
        assert_eq!(prefix_upper_bound("az").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("a9").as_deref(), Some("aa"));
        assert_eq!(prefix_upper_bound("zz"), None);
    }
}
