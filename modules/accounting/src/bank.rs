//! Bank accounts, statement imports and reconciliation: statement lines are
//! matched to the ledger lines of the bank account (512…), suggested by
//! exact amount and close date, then by amount and shared words of the
//! label; an unmatched statement line can become an entry (the simple
//! form). Every write is checked, audited and scoped to the organisation,
//! in one transaction.

use crate::domain::{Amount, Day};
use crate::error::{AcctError, AcctResult};
use crate::repo;
use crate::service::{self, SimpleInput, MODULE};
use crate::statements::{self, StatementLine};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Db;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::CoreError;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

fn change<'a>(org: OrgId, action: &'a str, entity_type: &'a str, id: &str, after: serde_json::Value) -> Change<'a> {
    Change { org: Some(org), action, entity_type, entity_id: id.to_string(), before: None, after: Some(after) }
}

// ---------- bank accounts ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BankAccount {
    pub id: String,
    /// The ledger account (512…).
    pub account: String,
    pub label: String,
    pub iban: String,
    /// The closing balance of the latest statement that stated one.
    pub statement_balance: Option<String>,
    pub statement_date: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountInput {
    /// A 51… account; created in the chart with `label` when missing.
    pub account: String,
    pub label: String,
    #[serde(default)]
    pub iban: Option<String>,
}

/// Checks an IBAN's form and its ISO 13616 check digits (mod 97); returns
/// it without spaces, in capitals.
pub fn parse_iban(s: &str) -> Result<String, &'static str> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    if t.len() < 15 || t.len() > 34 || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("An IBAN has 15 to 34 letters and digits, such as FR76 3000 6000 0112 3456 7890 189.");
    }
    let (head, rest) = t.split_at(4);
    let mut r: u32 = 0;
    for c in rest.chars().chain(head.chars()) {
        let v = c.to_digit(36).unwrap_or(0);
        r = if v >= 10 { (r * 100 + v) % 97 } else { (r * 10 + v) % 97 };
    }
    if r != 1 {
        return Err("This IBAN's check digits are wrong: check for a typing mistake.");
    }
    Ok(t)
}

fn bank_from_row(r: &sqlx::any::AnyRow) -> Result<BankAccount, sqlx::Error> {
    Ok(BankAccount {
        id: r.try_get(0)?,
        account: r.try_get(1)?,
        label: r.try_get(2)?,
        iban: r.try_get(3)?,
        statement_balance: r.try_get::<Option<i64>, _>(4)?.map(|a| Amount(a).plain()),
        statement_date: r.try_get(5)?,
    })
}

const BANK_COLS: &str = "id, account, label, iban, statement_balance, statement_date";

pub async fn bank_accounts(db: &Db, cap: &CanRead) -> AcctResult<Vec<BankAccount>> {
    let rows = sqlx::query(&format!("SELECT {BANK_COLS} FROM acct_bank_accounts WHERE org_id = $1 ORDER BY account"))
        .bind(cap.org().to_string())
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(bank_from_row).collect::<Result<_, _>>()?)
}

async fn bank(conn: &mut AnyConnection, org: OrgId, id: &str) -> AcctResult<BankAccount> {
    let r = sqlx::query(&format!("SELECT {BANK_COLS} FROM acct_bank_accounts WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AcctError::Core(CoreError::NotFound))?;
    Ok(bank_from_row(&r)?)
}

pub async fn create_bank_account(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    input: BankAccountInput,
) -> AcctResult<BankAccount> {
    create_bank_account_of(db, who, cap.org(), input).await
}

/// [`create_bank_account`] for the instance itself (the demo data).
pub(crate) async fn create_bank_account_of(
    db: &Db,
    who: &Who,
    org: OrgId,
    input: BankAccountInput,
) -> AcctResult<BankAccount> {
    let mut errors = Vec::new();
    let account = crate::domain::parse_account_number(&input.account)
        .map_err(|m| errors.push(FieldError::new("account", m)))
        .ok()
        .filter(|a| {
            let ok = a.starts_with("51");
            if !ok {
                errors.push(FieldError::new("account", "A bank account is a 51… account, such as 5121."));
            }
            ok
        });
    let label = input.label.trim().to_string();
    if label.is_empty() || label.chars().count() > 100 {
        errors.push(FieldError::new("label", "Name the account in 1 to 100 characters."));
    }
    let iban = match input.iban.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(s) => parse_iban(s).map_err(|m| errors.push(FieldError::new("iban", m))).unwrap_or_default(),
    };
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let account = account.unwrap_or_default();
    let mut tx = db.begin_durable().await?;
    let l = repo::ledger(tx.conn(), org).await?;
    if !l.accounts.contains_key(&account) {
        sqlx::query("INSERT INTO acct_accounts (org_id, number, label, archived) VALUES ($1, $2, $3, 0)")
            .bind(org.to_string())
            .bind(&account)
            .bind(&label)
            .execute(tx.conn())
            .await?;
    }
    let taken = sqlx::query("SELECT 1 FROM acct_bank_accounts WHERE org_id = $1 AND account = $2")
        .bind(org.to_string())
        .bind(&account)
        .fetch_optional(tx.conn())
        .await?;
    if taken.is_some() {
        return Err(AcctError::field("account", format!("The account {account} is already a bank account.")));
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO acct_bank_accounts (id, org_id, account, label, iban, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&account)
    .bind(&label)
    .bind(&iban)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.bank.create",
            "bank_account",
            &id,
            serde_json::json!({"account": account, "label": label, "iban": iban}),
        ),
    )
    .await?;
    let b = bank(tx.conn(), org, &id).await?;
    tx.commit().await?;
    Ok(b)
}

// ---------- statement import ----------

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementImport {
    /// The file's text: CSV, OFX (1.x SGML or 2.x XML) or CAMT.053, told apart by content.
    pub content: String,
    /// CSV only: field (`date`, `label`, `amount`, `debit`, `credit`, `reference`, `balance`) → column name,
    /// where the columns' names are not recognised.
    #[serde(default)]
    pub mapping: HashMap<String, String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementImportReport {
    pub id: String,
    /// `csv`, `ofx` or `camt.053`.
    pub format: String,
    /// Lines added.
    pub added: usize,
    /// Lines already imported (same bank reference and amount, or same date, amount and label), skipped.
    pub skipped: usize,
}

/// What makes a movement the same on a second import.
fn dedup_keys(lines: &[StatementLine]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    lines
        .iter()
        .map(|l| {
            let base = if l.reference.is_empty() {
                format!("{}|{}|{}", l.date, l.amount.0, l.label.to_lowercase())
            } else {
                format!("ref|{}|{}", l.reference, l.amount.0)
            };
            // Two identical movements in one file are two movements.
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            format!("{base}|{n}")
        })
        .collect()
}

pub async fn import_statement(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    bank_id: &str,
    bytes: &[u8],
    mapping: &HashMap<String, String>,
) -> AcctResult<StatementImportReport> {
    import_statement_of(db, who, cap.org(), bank_id, bytes, mapping).await
}

/// [`import_statement`] for the instance itself (the demo data).
pub(crate) async fn import_statement_of(
    db: &Db,
    who: &Who,
    org: OrgId,
    bank_id: &str,
    bytes: &[u8],
    mapping: &HashMap<String, String>,
) -> AcctResult<StatementImportReport> {
    {
        let mut conn = db.pool().acquire().await?;
        bank(&mut conn, org, bank_id).await?;
    }
    let mut map: Vec<(String, String)> = mapping.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    map.sort();
    let st = statements::read(bytes, &map).map_err(AcctError::Invalid)?;
    let keys = dedup_keys(&st.lines);
    let mut tx = db.begin_durable().await?;
    let existing: HashSet<String> =
        sqlx::query("SELECT dedup_key FROM acct_statement_lines WHERE org_id = $1 AND bank_id = $2")
            .bind(org.to_string())
            .bind(bank_id)
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    let fresh: Vec<(&StatementLine, &String)> =
        st.lines.iter().zip(&keys).filter(|(_, k)| !existing.contains(*k)).collect();
    let skipped = st.lines.len() - fresh.len();
    sqlx::query("INSERT INTO acct_statement_imports (id, org_id, bank_id, format, added, skipped, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&id)
        .bind(org.to_string())
        .bind(bank_id)
        .bind(st.format)
        .bind(fresh.len() as i64)
        .bind(skipped as i64)
        .bind(now)
        .execute(tx.conn())
        .await?;
    for chunk in fresh.chunks(20) {
        let mut sql = String::from(
            "INSERT INTO acct_statement_lines (id, org_id, bank_id, import_id, op_date, label, amount, reference, dedup_key) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 9;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        let mut q = sqlx::query(&sql);
        for (l, k) in chunk {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(org.to_string())
                .bind(bank_id)
                .bind(&id)
                .bind(l.date.iso())
                .bind(l.label.chars().take(300).collect::<String>())
                .bind(l.amount.0)
                .bind(&l.reference)
                .bind(*k);
        }
        q.execute(tx.conn()).await?;
    }
    if let Some((balance, date)) = st.closing_balance {
        sqlx::query("UPDATE acct_bank_accounts SET statement_balance = $1, statement_date = $2 WHERE org_id = $3 AND id = $4 AND (statement_date IS NULL OR statement_date <= $2)")
            .bind(balance.0)
            .bind(date.iso())
            .bind(org.to_string())
            .bind(bank_id)
            .execute(tx.conn())
            .await?;
    }
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.import",
            "statement_import",
            &id,
            serde_json::json!({"bank_account": bank_id, "format": st.format, "added": fresh.len(), "skipped": skipped,
                "closing_balance": st.closing_balance.map(|(a, d)| serde_json::json!([a.plain(), d.iso()]))}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatementImportReport { id, format: st.format.into(), added: fresh.len(), skipped })
}

// ---------- reconciliation ----------

/// A ledger line, as a statement line is matched with it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchedLine {
    pub entry_id: String,
    pub line_no: i64,
}

/// How far apart (days) a statement line and the ledger lines of a suggestion may be.
const WINDOW_DAYS: i64 = 7;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub entry_id: String,
    pub line_no: i64,
    pub date: String,
    pub label: String,
    pub reference: Option<String>,
    /// `amount_and_date` (same amount, within 7 days), `amount_and_words`,
    /// `several_lines` (two or three ledger lines within 7 days adding up to
    /// the amount), or `several_statement_lines` (one ledger line that this
    /// statement line and one or two others within 7 days add up to).
    pub reason: String,
    /// The other ledger lines of a `several_lines` suggestion.
    pub also: Vec<MatchedLine>,
    /// The other statement lines of a `several_statement_lines` suggestion.
    pub statement_lines: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementLineView {
    pub id: String,
    pub date: String,
    pub label: String,
    /// Signed: positive when money came in.
    pub amount: String,
    pub reference: String,
    /// The reconciliation this line belongs to, when it is reconciled.
    pub match_id: Option<String>,
    /// The ledger lines it is reconciled with (one, or several adding up to its amount).
    pub matches: Vec<MatchedLine>,
    /// The other statement lines reconciled in the same group (a ledger line
    /// the bank credited in several parts).
    pub matched_with: Vec<String>,
    /// The first of the ledger lines.
    pub entry_id: Option<String>,
    pub line_no: Option<i64>,
    /// For unmatched lines, best first.
    pub suggestions: Vec<Suggestion>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LedgerLineView {
    pub entry_id: String,
    pub line_no: i64,
    pub date: String,
    pub label: String,
    pub reference: Option<String>,
    /// Signed like the statement: debit of the bank account positive.
    pub amount: String,
}

/// One page of a bank account's reconciliation, with the account's totals.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub bank_account: BankAccount,
    /// The statement lines of this page, in date order.
    pub lines: Vec<StatementLineView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Pass as `cursor` for the previous page; absent on the first page.
    pub prev_cursor: Option<String>,
    /// Ledger lines of the bank account no statement line is matched with
    /// (within the `from`/`to` range when given), oldest first, at most 200.
    pub unmatched_ledger: Vec<LedgerLineView>,
    /// How many such lines there are in all.
    pub unmatched_ledger_count: i64,
    /// Balance of the ledger account (all entries, drafts and the balance carried forward included).
    pub ledger_balance: String,
    /// The sum of the reconciled statement lines (each group adds up, so also of their ledger lines).
    pub reconciled_balance: String,
    /// The sum of all imported statement lines.
    pub statement_lines_total: String,
    /// How many statement lines are not reconciled yet.
    pub unmatched_count: i64,
    /// The closing balance stated by the bank, when a statement gave one.
    pub statement_balance: Option<String>,
    /// statement balance − reconciled balance, when the bank stated one.
    pub difference: Option<String>,
}

/// Which statement lines a reconciliation page shows.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` or `prev_cursor` of the page seen, with the same filters.
    pub cursor: Option<String>,
    /// Only the statement lines not reconciled yet.
    pub unmatched: Option<bool>,
    /// Lines on or after this day (`2025-03-01`).
    pub from: Option<String>,
    /// Lines on or before this day.
    pub to: Option<String>,
}

struct LedgerLine {
    entry_id: String,
    line_no: i64,
    date: String,
    label: String,
    reference: Option<String>,
    amount: i64,
    words: HashSet<String>,
}

/// The free ledger lines of the account (reconciled with nothing, not the
/// à-nouveaux) that a page's suggestions may use: those dated in `window`,
/// and those of one of `amounts` at any date (found by their words).
async fn free_ledger_lines(
    conn: &mut AnyConnection,
    org: OrgId,
    account: &str,
    window: (&str, &str),
    amounts: &[i64],
) -> AcctResult<Vec<LedgerLine>> {
    let mut sql = String::from(
        "SELECT l.entry_id, l.line_no, l.entry_date, e.label, l.label, e.journal, e.number, l.debit, l.credit, e.piece_ref \
         FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id \
         WHERE l.org_id = $1 AND l.account = $2 AND l.closing = 0 AND e.kind <> 'opening' \
         AND NOT EXISTS (SELECT 1 FROM acct_match_ledger_lines m WHERE m.org_id = l.org_id AND m.entry_id = l.entry_id AND m.line_no = l.line_no) \
         AND ((l.entry_date >= $3 AND l.entry_date <= $4)",
    );
    if !amounts.is_empty() {
        let list: Vec<String> = (0..amounts.len()).map(|i| format!("${}", i + 5)).collect();
        sql.push_str(&format!(" OR (l.debit - l.credit) IN ({})", list.join(", ")));
    }
    sql.push_str(") ORDER BY l.entry_date, l.entry_id, l.line_no LIMIT 5000");
    let mut q = sqlx::query(&sql).bind(org.to_string()).bind(account).bind(window.0).bind(window.1);
    for a in amounts {
        q = q.bind(*a);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let line_label: String = r.try_get(4)?;
            let entry_label: String = r.try_get(3)?;
            let piece_ref: String = r.try_get(9)?;
            // The words a bank's label may share with the books: the line's and
            // the entry's labels and the receipt or invoice number.
            let words = words(&format!("{line_label} {entry_label} {piece_ref}"));
            let number: Option<i64> = r.try_get(6)?;
            let journal: String = r.try_get(5)?;
            Ok(LedgerLine {
                entry_id: r.try_get(0)?,
                line_no: r.try_get(1)?,
                date: r.try_get(2)?,
                label: if line_label.is_empty() { entry_label } else { line_label },
                reference: number.map(|n| crate::domain::entry_ref(&journal, n)),
                amount: r.try_get::<i64, _>(7)? - r.try_get::<i64, _>(8)?,
                words,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

fn words(s: &str) -> HashSet<String> {
    shrooms_core::people::fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn gap(a: &str, b: &str) -> Option<i64> {
    Some(Day::parse(a).ok()?.days_until(Day::parse(b).ok()?).abs())
}

fn suggestion(l: &LedgerLine, reason: &str) -> Suggestion {
    Suggestion {
        entry_id: l.entry_id.clone(),
        line_no: l.line_no,
        date: l.date.clone(),
        label: l.label.clone(),
        reference: l.reference.clone(),
        reason: reason.into(),
        also: Vec::new(),
        statement_lines: Vec::new(),
    }
}

/// Suggestions for one statement line among the free ledger lines: the same
/// amount within 7 days first (closest date first), then the same amount
/// with a word of the label in common.
fn suggest(
    date: &str,
    label: &str,
    amount: i64,
    free: &[LedgerLine],
    rejected: &HashSet<(String, i64)>,
) -> Vec<Suggestion> {
    let ws = words(label);
    let mut out: Vec<(i64, i64, Suggestion)> = Vec::new();
    for l in free.iter().filter(|l| l.amount == amount) {
        if rejected.contains(&(l.entry_id.clone(), l.line_no)) {
            continue;
        }
        let g = gap(date, &l.date).unwrap_or(i64::MAX);
        let (rank, reason) = if g <= WINDOW_DAYS {
            (0, "amount_and_date")
        } else if !ws.is_disjoint(&l.words) {
            (1, "amount_and_words")
        } else {
            continue;
        };
        out.push((rank, g, suggestion(l, reason)));
    }
    out.sort_by_key(|x| (x.0, x.1));
    out.into_iter().take(5).map(|x| x.2).collect()
}

/// Up to `max` items of `pool` (at most 25 are tried) adding up to `target`,
/// fewest first: a bounded search for a deposit split in parts.
fn subset_sum<'a, T>(pool: &[&'a T], value: impl Fn(&T) -> i64, target: i64, max: usize) -> Option<Vec<&'a T>> {
    let pool = &pool[..pool.len().min(25)];
    let n = pool.len();
    if max >= 1 {
        if let Some(a) = pool.iter().find(|a| value(a) == target) {
            return Some(vec![*a]);
        }
    }
    if max >= 2 {
        for i in 0..n {
            for j in i + 1..n {
                if value(pool[i]) + value(pool[j]) == target {
                    return Some(vec![pool[i], pool[j]]);
                }
            }
        }
    }
    if max >= 3 {
        for i in 0..n {
            for j in i + 1..n {
                for k in j + 1..n {
                    if value(pool[i]) + value(pool[j]) + value(pool[k]) == target {
                        return Some(vec![pool[i], pool[j], pool[k]]);
                    }
                }
            }
        }
    }
    None
}

/// When no single line has the amount: two or three free ledger lines of the
/// same direction within 7 days that add up to it (a deposit of cheques
/// booked one by one), the closest in time first.
fn suggest_several(date: &str, amount: i64, free: &[LedgerLine]) -> Option<Suggestion> {
    let mut near: Vec<(i64, &LedgerLine)> = free
        .iter()
        .filter(|l| l.amount.signum() == amount.signum() && l.amount.abs() < amount.abs())
        .filter_map(|l| gap(date, &l.date).filter(|g| *g <= WINDOW_DAYS).map(|g| (g, l)))
        .collect();
    near.sort_by_key(|x| x.0);
    let pool: Vec<&LedgerLine> = near.into_iter().map(|x| x.1).collect();
    let lines = subset_sum(&pool, |l| l.amount, amount, 3).filter(|v| v.len() >= 2)?;
    let mut s = suggestion(lines[0], "several_lines");
    s.label = lines.iter().map(|l| l.label.as_str()).collect::<Vec<_>>().join(" + ");
    s.also = lines[1..].iter().map(|l| MatchedLine { entry_id: l.entry_id.clone(), line_no: l.line_no }).collect();
    Some(s)
}

/// An unmatched statement line, as a part of a larger ledger line.
struct FreeStatementLine {
    id: String,
    date: String,
    amount: i64,
}

/// When the bank split one booked amount in parts: a free ledger line that
/// this statement line and one or two other unmatched ones, all within 7
/// days of it, add up to.
fn suggest_parts(
    id: &str,
    date: &str,
    amount: i64,
    free: &[LedgerLine],
    others: &[FreeStatementLine],
) -> Option<Suggestion> {
    let mut candidates: Vec<(i64, &LedgerLine)> = free
        .iter()
        .filter(|l| l.amount.signum() == amount.signum() && l.amount.abs() > amount.abs())
        .filter_map(|l| gap(date, &l.date).filter(|g| *g <= WINDOW_DAYS).map(|g| (g, l)))
        .collect();
    candidates.sort_by_key(|x| x.0);
    for (_, l) in candidates.into_iter().take(10) {
        let mut near: Vec<(i64, &FreeStatementLine)> = others
            .iter()
            .filter(|o| o.id != id && o.amount.signum() == amount.signum() && o.amount.abs() < l.amount.abs())
            .filter_map(|o| gap(&o.date, &l.date).filter(|g| *g <= WINDOW_DAYS).map(|g| (g, o)))
            .collect();
        near.sort_by_key(|x| x.0);
        let pool: Vec<&FreeStatementLine> = near.into_iter().map(|x| x.1).collect();
        if let Some(parts) = subset_sum(&pool, |o| o.amount, l.amount - amount, 2) {
            let mut s = suggestion(l, "several_statement_lines");
            s.statement_lines = parts.iter().map(|o| o.id.clone()).collect();
            return Some(s);
        }
    }
    None
}

fn bad_cursor() -> AcctError {
    AcctError::field("cursor", "This cursor is not valid for this list; start again without it.")
}

/// A cursor: the direction and the (date, id) of the page's edge line.
fn encode_cursor(direction: &str, date: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&[direction, date, id]).unwrap_or_default())
}

fn decode_cursor(c: &str) -> AcctResult<(bool, String, String)> {
    use base64::Engine;
    let v: Vec<String> = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad_cursor)?;
    match v.as_slice() {
        [d, date, id] if d == "after" || d == "before" => Ok((d == "after", date.clone(), id.clone())),
        _ => Err(bad_cursor()),
    }
}

async fn sum_query(conn: &mut AnyConnection, sql: &str, org: OrgId, key: &str) -> AcctResult<(i64, i64)> {
    let r = sqlx::query(sql).bind(org.to_string()).bind(key).fetch_one(&mut *conn).await?;
    Ok((repo::sum_i64(&r, 0)?, r.try_get::<i64, _>(1)?))
}

pub async fn reconciliation(
    db: &Db,
    cap: &CanRead,
    bank_id: &str,
    q: &ReconciliationQuery,
) -> AcctResult<Reconciliation> {
    let org = cap.org();
    let mut errors = Vec::new();
    let mut day = |field: &str, v: &Option<String>| match v.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Day::parse(s).map_err(|m| errors.push(FieldError::new(field, m))).ok(),
    };
    let (from, to) = (day("from", &q.from), day("to", &q.to));
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let unmatched_only = q.unmatched.unwrap_or(false);
    let mut conn = db.pool().acquire().await?;
    let b = bank(&mut conn, org, bank_id).await?;

    // ---- the page of statement lines ----
    let not_matched = "NOT EXISTS (SELECT 1 FROM acct_match_statement_lines ms WHERE ms.org_id = s.org_id AND ms.statement_line_id = s.id)";
    let mut sql = String::from(
        "SELECT s.id, s.op_date, s.label, s.amount, s.reference FROM acct_statement_lines s WHERE s.org_id = $1 AND s.bank_id = $2",
    );
    let mut binds: Vec<String> = vec![org.to_string(), bank_id.to_string()];
    if unmatched_only {
        sql.push_str(&format!(" AND {not_matched}"));
    }
    if let Some(d) = from {
        binds.push(d.iso());
        sql.push_str(&format!(" AND s.op_date >= ${}", binds.len()));
    }
    if let Some(d) = to {
        binds.push(d.iso());
        sql.push_str(&format!(" AND s.op_date <= ${}", binds.len()));
    }
    let forward = cursor.as_ref().is_none_or(|c| c.0);
    if let Some((after, date, id)) = &cursor {
        binds.push(date.clone());
        binds.push(id.clone());
        let op = if *after { ">" } else { "<" };
        sql.push_str(&format!(" AND (s.op_date, s.id) {op} (${}, ${})", binds.len() - 1, binds.len()));
    }
    sql.push_str(if forward { " ORDER BY s.op_date, s.id" } else { " ORDER BY s.op_date DESC, s.id DESC" });
    sql.push_str(&format!(" LIMIT {}", limit + 1));
    let mut query = sqlx::query(&sql);
    for v in &binds {
        query = query.bind(v);
    }
    let mut rows: Vec<(String, String, String, i64, String)> = query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !forward {
        rows.reverse();
    }
    let (next_cursor, prev_cursor) = {
        let first = rows.first().map(|r| encode_cursor("before", &r.1, &r.0));
        let last = rows.last().map(|r| encode_cursor("after", &r.1, &r.0));
        match (&cursor, forward) {
            (None, _) => (if more { last } else { None }, None),
            (Some(_), true) => (if more { last } else { None }, first),
            (Some(_), false) => (last, if more { first } else { None }),
        }
    };

    // ---- what the page's lines are reconciled with ----
    let ids: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    let mut group_of: HashMap<String, String> = HashMap::new();
    let mut ledger_of: HashMap<String, Vec<MatchedLine>> = HashMap::new();
    let mut statements_of: HashMap<String, Vec<String>> = HashMap::new();
    if !ids.is_empty() {
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let groups = format!(
            "SELECT match_id FROM acct_match_statement_lines WHERE org_id = $1 AND statement_line_id IN ({})",
            list.join(", ")
        );
        let sql = format!(
            "SELECT 's', match_id, statement_line_id, 0 FROM acct_match_statement_lines WHERE org_id = $1 AND match_id IN ({groups}) \
             UNION ALL SELECT 'l', match_id, entry_id, line_no FROM acct_match_ledger_lines WHERE org_id = $1 AND match_id IN ({groups}) \
             ORDER BY 1, 2, 3, 4"
        );
        let mut query = sqlx::query(&sql).bind(org.to_string());
        for id in &ids {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&mut *conn).await? {
            let kind: String = r.try_get(0)?;
            let group: String = r.try_get(1)?;
            let key: String = r.try_get(2)?;
            if kind == "s" {
                group_of.insert(key.clone(), group.clone());
                statements_of.entry(group).or_default().push(key);
            } else {
                ledger_of.entry(group).or_default().push(MatchedLine { entry_id: key, line_no: r.try_get(3)? });
            }
        }
    }

    // ---- suggestions for the page's unmatched lines ----
    let open: Vec<&(String, String, String, i64, String)> =
        rows.iter().filter(|r| !group_of.contains_key(&r.0)).collect();
    let mut suggestions: HashMap<String, Vec<Suggestion>> = HashMap::new();
    if let (Some(lo), Some(hi)) = (open.iter().map(|r| r.1.as_str()).min(), open.iter().map(|r| r.1.as_str()).max()) {
        let widen = |d: &str, n: i64| {
            Day::parse(d).map(|d| Day(d.0 + time::Duration::days(n)).iso()).unwrap_or_else(|_| d.to_string())
        };
        let (lo2, hi2) = (widen(lo, -2 * WINDOW_DAYS), widen(hi, 2 * WINDOW_DAYS));
        let mut amounts: Vec<i64> = open.iter().map(|r| r.3).collect();
        amounts.sort_unstable();
        amounts.dedup();
        let free = free_ledger_lines(&mut conn, org, &b.account, (&lo2, &hi2), &amounts).await?;
        let others: Vec<FreeStatementLine> = sqlx::query(&format!(
            "SELECT s.id, s.op_date, s.amount FROM acct_statement_lines s WHERE s.org_id = $1 AND s.bank_id = $2 \
             AND s.op_date >= $3 AND s.op_date <= $4 AND {not_matched} ORDER BY s.op_date, s.id LIMIT 2000"
        ))
        .bind(org.to_string())
        .bind(bank_id)
        .bind(&lo2)
        .bind(&hi2)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok(FreeStatementLine { id: r.try_get(0)?, date: r.try_get(1)?, amount: r.try_get(2)? }))
        .collect::<Result<_, sqlx::Error>>()?;
        let mut rejected: HashMap<String, HashSet<(String, i64)>> = HashMap::new();
        {
            let list: Vec<String> = (0..open.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT statement_line_id, entry_id, line_no FROM acct_match_rejections WHERE org_id = $1 AND statement_line_id IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(org.to_string());
            for r in &open {
                query = query.bind(&r.0);
            }
            for r in query.fetch_all(&mut *conn).await? {
                rejected.entry(r.try_get(0)?).or_default().insert((r.try_get(1)?, r.try_get(2)?));
            }
        }
        let none = HashSet::new();
        for (id, date, label, amount, _) in open {
            let mut v = suggest(date, label, *amount, &free, rejected.get(id).unwrap_or(&none));
            if v.is_empty() {
                v.extend(suggest_several(date, *amount, &free));
            }
            if v.is_empty() {
                v.extend(suggest_parts(id, date, *amount, &free, &others));
            }
            suggestions.insert(id.clone(), v);
        }
    }
    let lines = rows
        .into_iter()
        .map(|(id, date, label, amount, reference)| {
            let group = group_of.get(&id).cloned();
            let matches = group.as_ref().and_then(|g| ledger_of.get(g)).cloned().unwrap_or_default();
            let matched_with = group
                .as_ref()
                .and_then(|g| statements_of.get(g))
                .map(|v| v.iter().filter(|x| **x != id).cloned().collect())
                .unwrap_or_default();
            StatementLineView {
                suggestions: suggestions.remove(&id).unwrap_or_default(),
                id,
                date,
                label,
                amount: Amount(amount).plain(),
                reference,
                entry_id: matches.first().map(|m| m.entry_id.clone()),
                line_no: matches.first().map(|m| m.line_no),
                match_id: group,
                matches,
                matched_with,
            }
        })
        .collect();

    // ---- the account's totals ----
    let (total, _) = sum_query(
        &mut conn,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT), COUNT(*) FROM acct_statement_lines WHERE org_id = $1 AND bank_id = $2",
        org,
        bank_id,
    )
    .await?;
    let (reconciled, matched_count) = sum_query(
        &mut conn,
        "SELECT CAST(COALESCE(SUM(s.amount), 0) AS BIGINT), COUNT(*) FROM acct_statement_lines s \
         JOIN acct_match_statement_lines ms ON ms.org_id = s.org_id AND ms.statement_line_id = s.id WHERE s.org_id = $1 AND s.bank_id = $2",
        org,
        bank_id,
    )
    .await?;
    let (_, all_count) = sum_query(
        &mut conn,
        "SELECT 0, COUNT(*) FROM acct_statement_lines WHERE org_id = $1 AND bank_id = $2",
        org,
        bank_id,
    )
    .await?;
    let (ledger_balance, _) = sum_query(
        &mut conn,
        "SELECT CAST(COALESCE(SUM(debit - credit), 0) AS BIGINT), COUNT(*) FROM acct_lines WHERE org_id = $1 AND account = $2 AND closing = 0",
        org,
        &b.account,
    )
    .await?;
    // Free ledger lines, in the date range asked for.
    let free_filter = "FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id \
         WHERE l.org_id = $1 AND l.account = $2 AND l.closing = 0 AND e.kind <> 'opening' \
         AND l.entry_date >= $3 AND l.entry_date <= $4 \
         AND NOT EXISTS (SELECT 1 FROM acct_match_ledger_lines m WHERE m.org_id = l.org_id AND m.entry_id = l.entry_id AND m.line_no = l.line_no)";
    let (lo, hi) = (from.map(Day::iso).unwrap_or_default(), to.map(Day::iso).unwrap_or_else(|| "9999-12-31".into()));
    let unmatched_ledger_count: i64 = sqlx::query(&format!("SELECT COUNT(*) {free_filter}"))
        .bind(org.to_string())
        .bind(&b.account)
        .bind(&lo)
        .bind(&hi)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let unmatched_ledger = sqlx::query(&format!(
        "SELECT l.entry_id, l.line_no, l.entry_date, CASE WHEN l.label = '' THEN e.label ELSE l.label END, e.journal, e.number, l.debit - l.credit \
         {free_filter} ORDER BY l.entry_date, l.entry_id, l.line_no LIMIT 200"
    ))
    .bind(org.to_string())
    .bind(&b.account)
    .bind(&lo)
    .bind(&hi)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let number: Option<i64> = r.try_get(5)?;
        let journal: String = r.try_get(4)?;
        Ok(LedgerLineView {
            entry_id: r.try_get(0)?,
            line_no: r.try_get(1)?,
            date: r.try_get(2)?,
            label: r.try_get(3)?,
            reference: number.map(|n| crate::domain::entry_ref(&journal, n)),
            amount: Amount(r.try_get(6)?).plain(),
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let statement_balance = b.statement_balance.as_deref().and_then(|s| Amount::parse(s).ok());
    Ok(Reconciliation {
        bank_account: b,
        lines,
        next_cursor,
        prev_cursor,
        unmatched_ledger,
        unmatched_ledger_count,
        ledger_balance: Amount(ledger_balance).plain(),
        reconciled_balance: Amount(reconciled).plain(),
        statement_lines_total: Amount(total).plain(),
        unmatched_count: all_count - matched_count,
        difference: statement_balance.map(|s| Amount(s.0 - reconciled).plain()),
        statement_balance: statement_balance.map(Amount::plain),
    })
}

/// The ledger lines (`entry_id` and `line_no`, or several in `lines`) and
/// the other statement lines (`statement_lines`) reconciled together with
/// the statement line named in the path; the amounts on both sides must add
/// up exactly.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchInput {
    #[serde(default)]
    pub entry_id: Option<String>,
    #[serde(default)]
    pub line_no: Option<i64>,
    #[serde(default)]
    pub lines: Vec<MatchedLine>,
    /// Other statement lines of the same bank account, reconciled in the
    /// same group (one ledger line the bank credited in several parts).
    #[serde(default)]
    pub statement_lines: Vec<String>,
}

impl MatchInput {
    pub fn one(entry_id: String, line_no: i64) -> MatchInput {
        MatchInput { entry_id: Some(entry_id), line_no: Some(line_no), ..Default::default() }
    }
    /// The ledger lines named, each once.
    fn refs(&self) -> Vec<MatchedLine> {
        let mut v: Vec<MatchedLine> = Vec::new();
        let first = match (&self.entry_id, self.line_no) {
            (Some(e), Some(n)) => Some(MatchedLine { entry_id: e.clone(), line_no: n }),
            _ => None,
        };
        for m in first.into_iter().chain(self.lines.iter().cloned()) {
            if !v.contains(&m) {
                v.push(m);
            }
        }
        v
    }
}

struct StmtRow {
    bank_id: String,
    amount: i64,
    date: String,
    label: String,
    match_id: Option<String>,
}

async fn statement_line(conn: &mut AnyConnection, org: OrgId, id: &str) -> AcctResult<StmtRow> {
    let r = sqlx::query(
        "SELECT s.bank_id, s.amount, s.op_date, s.label, ms.match_id FROM acct_statement_lines s \
         LEFT JOIN acct_match_statement_lines ms ON ms.org_id = s.org_id AND ms.statement_line_id = s.id \
         WHERE s.org_id = $1 AND s.id = $2",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AcctError::Core(CoreError::NotFound))?;
    Ok(StmtRow {
        bank_id: r.try_get(0)?,
        amount: r.try_get(1)?,
        date: r.try_get(2)?,
        label: r.try_get(3)?,
        match_id: r.try_get(4)?,
    })
}

/// Reconciles the statement line `id` and `others` with the ledger lines
/// `refs`, as one group; returns the group's id.
async fn do_match(
    tx: &mut shrooms_core::db::Tx,
    org: OrgId,
    id: &str,
    others: &[String],
    refs: &[MatchedLine],
) -> AcctResult<String> {
    let s = statement_line(tx.conn(), org, id).await?;
    if s.match_id.is_some() {
        return Err(AcctError::Conflict("This statement line is already reconciled; undo that first.".into()));
    }
    if refs.is_empty() || refs.len() > 100 {
        return Err(AcctError::field("lines", "Name 1 to 100 ledger lines."));
    }
    if others.len() > 100 {
        return Err(AcctError::field("statement_lines", "Name at most 100 other statement lines."));
    }
    let b = bank(tx.conn(), org, &s.bank_id).await?;
    let mut errors = Vec::new();
    let mut statement_total = s.amount;
    let mut seen: HashSet<&str> = HashSet::from([id]);
    for (i, o) in others.iter().enumerate() {
        let field = format!("statement_lines[{i}]");
        if !seen.insert(o.as_str()) {
            errors.push(FieldError::new(field, "This statement line is named twice."));
            continue;
        }
        match statement_line(tx.conn(), org, o).await {
            Ok(x) if x.bank_id != s.bank_id => {
                errors.push(FieldError::new(field, "This statement line is on another bank account."))
            }
            Ok(x) if x.match_id.is_some() => {
                errors.push(FieldError::new(field, "This statement line is already reconciled."))
            }
            Ok(x) => statement_total += x.amount,
            Err(AcctError::Core(CoreError::NotFound)) => {
                errors.push(FieldError::new(field, "There is no such statement line."))
            }
            Err(e) => return Err(e),
        }
    }
    let single = refs.len() == 1;
    let field = |i: usize| if single { "entry_id".to_string() } else { format!("lines[{i}].entry_id") };
    let mut total = 0i64;
    for (i, m) in refs.iter().enumerate() {
        let line = sqlx::query(
            "SELECT l.account, l.debit, l.credit, (SELECT COUNT(*) FROM acct_match_ledger_lines m WHERE m.org_id = l.org_id AND m.entry_id = l.entry_id AND m.line_no = l.line_no) \
             FROM acct_lines l WHERE l.org_id = $1 AND l.entry_id = $2 AND l.line_no = $3",
        )
        .bind(org.to_string())
        .bind(&m.entry_id)
        .bind(m.line_no)
        .fetch_optional(tx.conn())
        .await?;
        let Some(line) = line else {
            errors.push(FieldError::new(field(i), "There is no such ledger line."));
            continue;
        };
        let account: String = line.try_get(0)?;
        if account != b.account {
            errors.push(FieldError::new(
                field(i),
                format!("This line is on account {account}, not on the bank account {}.", b.account),
            ));
        }
        if line.try_get::<i64, _>(3)? > 0 {
            errors
                .push(FieldError::new(field(i), "This ledger line is already reconciled with another statement line."));
        }
        total += line.try_get::<i64, _>(1)? - line.try_get::<i64, _>(2)?;
    }
    if errors.is_empty() && total != statement_total {
        let side = if others.is_empty() { "on the statement" } else { "on the statement lines together" };
        errors.push(FieldError::new(
            if single { "entry_id" } else { "lines" },
            format!(
                "The amounts differ by {}: {} {side}, {} in the books.",
                Amount((statement_total - total).abs()),
                Amount(statement_total),
                Amount(total)
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let group = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO acct_matches (id, org_id, bank_id, matched_at) VALUES ($1, $2, $3, $4)")
        .bind(&group)
        .bind(org.to_string())
        .bind(&s.bank_id)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    for st in std::iter::once(id).chain(others.iter().map(String::as_str)) {
        sqlx::query("INSERT INTO acct_match_statement_lines (org_id, match_id, statement_line_id) VALUES ($1, $2, $3)")
            .bind(org.to_string())
            .bind(&group)
            .bind(st)
            .execute(tx.conn())
            .await?;
    }
    for m in refs {
        sqlx::query(
            "INSERT INTO acct_match_ledger_lines (org_id, match_id, entry_id, line_no) VALUES ($1, $2, $3, $4)",
        )
        .bind(org.to_string())
        .bind(&group)
        .bind(&m.entry_id)
        .bind(m.line_no)
        .execute(tx.conn())
        .await?;
    }
    Ok(group)
}

/// Reconciles a statement line (and the other statement lines named) with
/// the ledger lines named, their amounts adding up exactly.
pub async fn match_line(db: &Db, who: &Who, cap: &CanWrite, id: &str, m: MatchInput) -> AcctResult<()> {
    match_line_of(db, who, cap.org(), id, m).await
}

/// [`match_line`] for the instance itself (the demo data).
pub(crate) async fn match_line_of(db: &Db, who: &Who, org: OrgId, id: &str, m: MatchInput) -> AcctResult<()> {
    let mut tx = db.begin_durable().await?;
    let refs = m.refs();
    let group = do_match(&mut tx, org, id, &m.statement_lines, &refs).await?;
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.match",
            "statement_line",
            id,
            serde_json::json!({"match_id": group, "lines": refs, "statement_lines": m.statement_lines}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Reconciles, in one transaction, each unmatched statement line dated on
/// or before `until` with a free ledger line of the same date and amount
/// (the demo data's treasurer who kept up until June). Returns how many.
pub(crate) async fn reconcile_same_day(
    db: &Db,
    who: &Who,
    org: OrgId,
    bank_id: &str,
    until: &str,
) -> AcctResult<usize> {
    let mut tx = db.begin_durable().await?;
    let b = bank(tx.conn(), org, bank_id).await?;
    let lines: Vec<(String, String, i64)> = sqlx::query(
        "SELECT s.id, s.op_date, s.amount FROM acct_statement_lines s WHERE s.org_id = $1 AND s.bank_id = $2 AND s.op_date <= $3 \
         AND NOT EXISTS (SELECT 1 FROM acct_match_statement_lines ms WHERE ms.org_id = s.org_id AND ms.statement_line_id = s.id) ORDER BY s.op_date, s.id",
    )
    .bind(org.to_string())
    .bind(bank_id)
    .bind(until)
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut free: HashMap<(String, i64), Vec<MatchedLine>> = HashMap::new();
    for l in free_ledger_lines(tx.conn(), org, &b.account, ("0000-01-01", until), &[]).await? {
        free.entry((l.date, l.amount)).or_default().push(MatchedLine { entry_id: l.entry_id, line_no: l.line_no });
    }
    let mut n = 0usize;
    for (id, date, amount) in &lines {
        let Some(m) = free.get_mut(&(date.clone(), *amount)).and_then(|v| (!v.is_empty()).then(|| v.remove(0))) else {
            continue;
        };
        do_match(&mut tx, org, id, &[], &[m]).await?;
        n += 1;
    }
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.match",
            "bank_account",
            bank_id,
            serde_json::json!({"same_day": n, "until": until}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Turns a suggestion down: it is not offered again for this statement line.
pub async fn reject_suggestion(db: &Db, who: &Who, cap: &CanWrite, id: &str, m: MatchInput) -> AcctResult<()> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    statement_line(tx.conn(), org, id).await?;
    let (Some(entry_id), Some(line_no)) = (m.entry_id.clone(), m.line_no) else {
        return Err(AcctError::field("entry_id", "Name the suggested ledger line (entry_id and line_no)."));
    };
    sqlx::query("INSERT INTO acct_match_rejections (org_id, statement_line_id, entry_id, line_no) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(org.to_string())
        .bind(id)
        .bind(&entry_id)
        .bind(line_no)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.reject",
            "statement_line",
            id,
            serde_json::json!({"entry_id": entry_id, "line_no": line_no}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes reconciliation groups, with their members; returns what they held.
async fn delete_groups(
    conn: &mut AnyConnection,
    org: OrgId,
    groups: &[String],
) -> AcctResult<(Vec<String>, Vec<MatchedLine>)> {
    let (mut statements, mut ledger) = (Vec::new(), Vec::new());
    for g in groups {
        for r in sqlx::query(
            "SELECT statement_line_id FROM acct_match_statement_lines WHERE org_id = $1 AND match_id = $2 ORDER BY statement_line_id",
        )
        .bind(org.to_string())
        .bind(g)
        .fetch_all(&mut *conn)
        .await?
        {
            statements.push(r.try_get(0)?);
        }
        for r in sqlx::query(
            "SELECT entry_id, line_no FROM acct_match_ledger_lines WHERE org_id = $1 AND match_id = $2 ORDER BY entry_id, line_no",
        )
        .bind(org.to_string())
        .bind(g)
        .fetch_all(&mut *conn)
        .await?
        {
            ledger.push(MatchedLine { entry_id: r.try_get(0)?, line_no: r.try_get(1)? });
        }
        for table in ["acct_match_statement_lines", "acct_match_ledger_lines"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1 AND match_id = $2"))
                .bind(org.to_string())
                .bind(g)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("DELETE FROM acct_matches WHERE org_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(g)
            .execute(&mut *conn)
            .await?;
    }
    Ok((statements, ledger))
}

/// Undoes the reconciliation a statement line belongs to: every statement
/// line and ledger line of its group is free again.
pub async fn unmatch_line(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> AcctResult<()> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let s = statement_line(tx.conn(), org, id).await?;
    let Some(group) = s.match_id else { return Ok(()) };
    let (statements, ledger) = delete_groups(tx.conn(), org, std::slice::from_ref(&group)).await?;
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.unmatch",
            "statement_line",
            id,
            serde_json::json!({"match_id": group, "was": ledger, "statement_lines": statements}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A ledger entry for a statement line no entry matches (bank charges, a
/// transfer received): the simple form's categories.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryFromLine {
    /// The income or expense account (7…/6…), or a third-party account (4…).
    pub category: String,
    /// Defaults to the statement line's label.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub aux: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub validate: bool,
}

pub async fn entry_from_line(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    id: &str,
    input: EntryFromLine,
) -> AcctResult<service::Entry> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let s = statement_line(tx.conn(), org, id).await?;
    if s.match_id.is_some() {
        return Err(AcctError::Conflict("This statement line is already reconciled.".into()));
    }
    let b = bank(tx.conn(), org, &s.bank_id).await?;
    let simple = SimpleInput {
        kind: if s.amount > 0 { "income" } else { "expense" }.into(),
        date: s.date.clone(),
        label: input
            .label
            .clone()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| s.label.chars().take(200).collect()),
        amount: serde_json::Value::String(Amount(s.amount.abs()).plain()),
        category: input.category.clone(),
        payment: b.account.clone(),
        piece_ref: None,
        aux: input.aux.clone(),
        tags: input.tags.clone(),
        validate: input.validate,
    };
    let e = service::simple_to_entry(&simple).map_err(AcctError::Invalid)?;
    let validate = e.validate;
    let e = service::check_entry(&e).map_err(AcctError::Invalid)?;
    let posted = service::post_entry(&mut tx, who, org, MODULE, e, validate).await.map_err(|e| match e {
        AcctError::Invalid(v) => AcctError::Invalid(
            v.into_iter()
                .map(|f| if f.field.starts_with("lines[") { FieldError::new("category", f.message) } else { f })
                .collect(),
        ),
        other => other,
    })?;
    // The bank line is the payment line: first for income, second for an expense.
    let line_no = if s.amount > 0 { 1 } else { 2 };
    do_match(&mut tx, org, id, &[], &[MatchedLine { entry_id: posted.id.clone(), line_no }]).await?;
    audit::record(
        &mut tx,
        who,
        change(
            org,
            "accounting.statement.match",
            "statement_line",
            id,
            serde_json::json!({"entry_id": posted.id, "line_no": line_no, "created": true}),
        ),
    )
    .await?;
    let l = repo::ledger(tx.conn(), org).await?;
    let stored = repo::entry(tx.conn(), org, &posted.id).await?;
    tx.commit().await?;
    Ok(service::to_entry(stored, &l))
}

/// Forgets the reconciliations an entry's lines are in (a draft deleted or
/// rewritten): their groups are undone whole, so no group is left unbalanced.
pub async fn unmatch_entry(conn: &mut AnyConnection, org: OrgId, entry_id: &str) -> AcctResult<()> {
    let groups: Vec<String> =
        sqlx::query("SELECT DISTINCT match_id FROM acct_match_ledger_lines WHERE org_id = $1 AND entry_id = $2")
            .bind(org.to_string())
            .bind(entry_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    delete_groups(conn, org, &groups).await?;
    Ok(())
}
