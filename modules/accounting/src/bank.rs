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
    let org = cap.org();
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
    let org = cap.org();
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

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub entry_id: String,
    pub line_no: i64,
    pub date: String,
    pub label: String,
    pub reference: Option<String>,
    /// `amount_and_date` (same amount, within 7 days), `amount_and_words`, or
    /// `several_lines` (two or three lines within 7 days adding up to the amount).
    pub reason: String,
    /// The other lines of a `several_lines` suggestion.
    pub also: Vec<MatchedLine>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementLineView {
    pub id: String,
    pub date: String,
    pub label: String,
    /// Signed: positive when money came in.
    pub amount: String,
    pub reference: String,
    /// The ledger lines it is reconciled with (one, or several adding up to its amount).
    pub matches: Vec<MatchedLine>,
    /// The first of them.
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

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Reconciliation {
    pub bank_account: BankAccount,
    pub lines: Vec<StatementLineView>,
    /// Ledger lines of the bank account no statement line is matched with.
    pub unmatched_ledger: Vec<LedgerLineView>,
    /// Balance of the ledger account (all entries, drafts and the balance carried forward included).
    pub ledger_balance: String,
    /// The sum of the ledger lines matched with statement lines.
    pub reconciled_balance: String,
    /// The sum of all imported statement lines.
    pub statement_lines_total: String,
    /// The closing balance stated by the bank, when a statement gave one.
    pub statement_balance: Option<String>,
    /// statement balance − reconciled balance, when the bank stated one.
    pub difference: Option<String>,
}

struct LedgerLine {
    entry_id: String,
    line_no: i64,
    date: String,
    label: String,
    reference: Option<String>,
    amount: i64,
    /// The balance carried forward (à-nouveaux): in the balance, never on a statement.
    opening: bool,
    words: HashSet<String>,
}

/// Ledger lines on the account, with whether a statement line is matched with each.
async fn ledger_lines(conn: &mut AnyConnection, org: OrgId, account: &str) -> AcctResult<Vec<(LedgerLine, bool)>> {
    let rows = sqlx::query(
        "SELECT l.entry_id, l.line_no, l.entry_date, e.label, l.label, e.journal, e.number, l.debit, l.credit, s.statement_line_id, e.kind, e.piece_ref \
         FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id \
         LEFT JOIN acct_statement_matches s ON s.org_id = l.org_id AND s.entry_id = l.entry_id AND s.line_no = l.line_no \
         WHERE l.org_id = $1 AND l.account = $2 AND l.closing = 0 ORDER BY l.entry_date, l.entry_id, l.line_no",
    )
    .bind(org.to_string())
    .bind(account)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let line_label: String = r.try_get(4)?;
            let entry_label: String = r.try_get(3)?;
            let piece_ref: String = r.try_get(11)?;
            // The words a bank's label may share with the books: the line's and
            // the entry's labels and the receipt or invoice number.
            let words = words(&format!("{line_label} {entry_label} {piece_ref}"));
            let number: Option<i64> = r.try_get(6)?;
            let journal: String = r.try_get(5)?;
            Ok((
                LedgerLine {
                    entry_id: r.try_get(0)?,
                    line_no: r.try_get(1)?,
                    date: r.try_get(2)?,
                    label: if line_label.is_empty() { entry_label } else { line_label },
                    reference: number.map(|n| crate::domain::entry_ref(&journal, n)),
                    amount: r.try_get::<i64, _>(7)? - r.try_get::<i64, _>(8)?,
                    opening: r.try_get::<String, _>(10)? == "opening",
                    words,
                },
                r.try_get::<Option<String>, _>(9)?.is_some(),
            ))
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

/// Suggestions for one statement line among the free ledger lines: the same
/// amount within 7 days first (closest date first), then the same amount
/// with a word of the label in common.
/// `same_amount`: the free ledger lines of that amount.
fn suggest(date: &str, label: &str, same_amount: &[&LedgerLine], rejected: &HashSet<(String, i64)>) -> Vec<Suggestion> {
    let Ok(d) = Day::parse(date) else { return Vec::new() };
    let ws = words(label);
    let mut out: Vec<(i64, i64, Suggestion)> = Vec::new();
    for l in same_amount {
        if rejected.contains(&(l.entry_id.clone(), l.line_no)) {
            continue;
        }
        let gap = Day::parse(&l.date).map(|ld| d.days_until(ld).abs()).unwrap_or(i64::MAX);
        let reason = if gap <= 7 {
            "amount_and_date"
        } else if !ws.is_disjoint(&l.words) {
            "amount_and_words"
        } else {
            continue;
        };
        out.push((
            if reason == "amount_and_date" { 0 } else { 1 },
            gap,
            Suggestion {
                entry_id: l.entry_id.clone(),
                line_no: l.line_no,
                date: l.date.clone(),
                label: l.label.clone(),
                reference: l.reference.clone(),
                reason: reason.into(),
                also: Vec::new(),
            },
        ));
    }
    out.sort_by_key(|x| (x.0, x.1));
    out.into_iter().take(5).map(|x| x.2).collect()
}

/// When no single line has the amount: two or three free lines of the same
/// direction within 7 days that add up to it (a deposit of cheques booked
/// one by one), the closest in time first.
fn suggest_several(date: &str, amount: i64, free: &[&LedgerLine]) -> Option<Suggestion> {
    let d = Day::parse(date).ok()?;
    let mut near: Vec<(i64, &LedgerLine)> = free
        .iter()
        .filter(|l| l.amount.signum() == amount.signum() && l.amount.abs() < amount.abs())
        .filter_map(|l| {
            let gap = Day::parse(&l.date).ok().map(|ld| d.days_until(ld).abs())?;
            (gap <= 7).then_some((gap, *l))
        })
        .collect();
    near.sort_by_key(|x| x.0);
    near.truncate(25);
    let n = near.len();
    let mut found: Option<Vec<&LedgerLine>> = None;
    'pairs: for i in 0..n {
        for j in i + 1..n {
            if near[i].1.amount + near[j].1.amount == amount {
                found = Some(vec![near[i].1, near[j].1]);
                break 'pairs;
            }
        }
    }
    if found.is_none() {
        'triples: for i in 0..n {
            for j in i + 1..n {
                for k in j + 1..n {
                    if near[i].1.amount + near[j].1.amount + near[k].1.amount == amount {
                        found = Some(vec![near[i].1, near[j].1, near[k].1]);
                        break 'triples;
                    }
                }
            }
        }
    }
    let lines = found?;
    Some(Suggestion {
        entry_id: lines[0].entry_id.clone(),
        line_no: lines[0].line_no,
        date: lines[0].date.clone(),
        label: lines.iter().map(|l| l.label.as_str()).collect::<Vec<_>>().join(" + "),
        reference: lines[0].reference.clone(),
        reason: "several_lines".into(),
        also: lines[1..].iter().map(|l| MatchedLine { entry_id: l.entry_id.clone(), line_no: l.line_no }).collect(),
    })
}

pub async fn reconciliation(db: &Db, cap: &CanRead, bank_id: &str) -> AcctResult<Reconciliation> {
    let org = cap.org();
    let mut conn = db.pool().acquire().await?;
    let b = bank(&mut conn, org, bank_id).await?;
    let rows = sqlx::query(
        "SELECT id, op_date, label, amount, reference FROM acct_statement_lines WHERE org_id = $1 AND bank_id = $2 ORDER BY op_date, id",
    )
    .bind(org.to_string())
    .bind(bank_id)
    .fetch_all(&mut *conn)
    .await?;
    let rejected: HashSet<(String, String, i64)> = sqlx::query(
        "SELECT r.statement_line_id, r.entry_id, r.line_no FROM acct_match_rejections r JOIN acct_statement_lines s ON s.id = r.statement_line_id WHERE r.org_id = $1 AND s.bank_id = $2",
    )
    .bind(org.to_string())
    .bind(bank_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let mut matches: HashMap<String, Vec<MatchedLine>> = HashMap::new();
    for r in sqlx::query(
        "SELECT m.statement_line_id, m.entry_id, m.line_no FROM acct_statement_matches m JOIN acct_statement_lines s ON s.id = m.statement_line_id \
         WHERE m.org_id = $1 AND s.bank_id = $2 ORDER BY m.entry_id, m.line_no",
    )
    .bind(org.to_string())
    .bind(bank_id)
    .fetch_all(&mut *conn)
    .await?
    {
        matches
            .entry(r.try_get(0)?)
            .or_default()
            .push(MatchedLine { entry_id: r.try_get(1)?, line_no: r.try_get(2)? });
    }
    let ledger = ledger_lines(&mut conn, org, &b.account).await?;
    let free: Vec<&LedgerLine> = ledger.iter().filter(|(l, m)| !m && !l.opening).map(|(l, _)| l).collect();
    let mut by_amount: HashMap<i64, Vec<&LedgerLine>> = HashMap::new();
    for l in &free {
        by_amount.entry(l.amount).or_default().push(l);
    }
    let by_key: HashMap<(String, i64), i64> =
        ledger.iter().map(|(l, _)| ((l.entry_id.clone(), l.line_no), l.amount)).collect();
    let mut lines = Vec::new();
    let (mut total, mut reconciled) = (0i64, 0i64);
    for r in &rows {
        let id: String = r.try_get(0)?;
        let date: String = r.try_get(1)?;
        let label: String = r.try_get(2)?;
        let amount: i64 = r.try_get(3)?;
        total += amount;
        let matched = matches.remove(&id).unwrap_or_default();
        let suggestions = if matched.is_empty() {
            let rej: HashSet<(String, i64)> =
                rejected.iter().filter(|x| x.0 == id).map(|x| (x.1.clone(), x.2)).collect();
            let mut v = suggest(&date, &label, by_amount.get(&amount).map(Vec::as_slice).unwrap_or(&[]), &rej);
            if v.is_empty() {
                v.extend(suggest_several(&date, amount, &free));
            }
            v
        } else {
            reconciled +=
                matched.iter().map(|m| by_key.get(&(m.entry_id.clone(), m.line_no)).copied().unwrap_or(0)).sum::<i64>();
            Vec::new()
        };
        lines.push(StatementLineView {
            id,
            date,
            label,
            amount: Amount(amount).plain(),
            reference: r.try_get(4)?,
            entry_id: matched.first().map(|m| m.entry_id.clone()),
            line_no: matched.first().map(|m| m.line_no),
            matches: matched,
            suggestions,
        });
    }
    let ledger_balance: i64 = ledger.iter().map(|(l, _)| l.amount).sum();
    let statement_balance = b.statement_balance.as_deref().and_then(|s| Amount::parse(s).ok());
    Ok(Reconciliation {
        unmatched_ledger: free
            .iter()
            .map(|l| LedgerLineView {
                entry_id: l.entry_id.clone(),
                line_no: l.line_no,
                date: l.date.clone(),
                label: l.label.clone(),
                reference: l.reference.clone(),
                amount: Amount(l.amount).plain(),
            })
            .collect(),
        bank_account: b,
        lines,
        ledger_balance: Amount(ledger_balance).plain(),
        reconciled_balance: Amount(reconciled).plain(),
        statement_lines_total: Amount(total).plain(),
        difference: statement_balance.map(|s| Amount(s.0 - reconciled).plain()),
        statement_balance: statement_balance.map(Amount::plain),
    })
}

/// One ledger line (`entry_id` and `line_no`), or several (`lines`) whose
/// amounts add up to the statement line's.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchInput {
    #[serde(default)]
    pub entry_id: Option<String>,
    #[serde(default)]
    pub line_no: Option<i64>,
    #[serde(default)]
    pub lines: Vec<MatchedLine>,
}

impl MatchInput {
    pub fn one(entry_id: String, line_no: i64) -> MatchInput {
        MatchInput { entry_id: Some(entry_id), line_no: Some(line_no), lines: Vec::new() }
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
    matched: bool,
}

async fn statement_line(conn: &mut AnyConnection, org: OrgId, id: &str) -> AcctResult<StmtRow> {
    let r = sqlx::query(
        "SELECT bank_id, amount, op_date, label, (SELECT COUNT(*) FROM acct_statement_matches m WHERE m.org_id = s.org_id AND m.statement_line_id = s.id) FROM acct_statement_lines s WHERE s.org_id = $1 AND s.id = $2",
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
        matched: r.try_get::<i64, _>(4)? > 0,
    })
}

async fn do_match(tx: &mut shrooms_core::db::Tx, org: OrgId, id: &str, refs: &[MatchedLine]) -> AcctResult<()> {
    let s = statement_line(tx.conn(), org, id).await?;
    if s.matched {
        return Err(AcctError::Conflict("This statement line is already reconciled; undo that first.".into()));
    }
    if refs.is_empty() || refs.len() > 100 {
        return Err(AcctError::field("lines", "Name 1 to 100 ledger lines."));
    }
    let b = bank(tx.conn(), org, &s.bank_id).await?;
    let single = refs.len() == 1;
    let field = |i: usize| if single { "entry_id".to_string() } else { format!("lines[{i}].entry_id") };
    let mut errors = Vec::new();
    let mut total = 0i64;
    for (i, m) in refs.iter().enumerate() {
        let line = sqlx::query(
            "SELECT l.account, l.debit, l.credit, (SELECT COUNT(*) FROM acct_statement_matches m WHERE m.org_id = l.org_id AND m.entry_id = l.entry_id AND m.line_no = l.line_no) \
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
    if errors.is_empty() && total != s.amount {
        errors.push(FieldError::new(
            if single { "entry_id" } else { "lines" },
            format!("The amounts differ: {} on the statement, {} in the books.", Amount(s.amount), Amount(total)),
        ));
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let now = Timestamp::now().0;
    for m in refs {
        sqlx::query(
            "INSERT INTO acct_statement_matches (org_id, statement_line_id, entry_id, line_no, matched_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org.to_string())
        .bind(id)
        .bind(&m.entry_id)
        .bind(m.line_no)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Accepts a suggestion (or any ledger line of the bank account with the same amount).
pub async fn match_line(db: &Db, who: &Who, cap: &CanWrite, id: &str, m: MatchInput) -> AcctResult<()> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let refs = m.refs();
    do_match(&mut tx, org, id, &refs).await?;
    audit::record(
        &mut tx,
        who,
        change(org, "accounting.statement.match", "statement_line", id, serde_json::json!({"lines": refs})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
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

pub async fn unmatch_line(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> AcctResult<()> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    statement_line(tx.conn(), org, id).await?;
    let was: Vec<MatchedLine> = sqlx::query(
        "SELECT entry_id, line_no FROM acct_statement_matches WHERE org_id = $1 AND statement_line_id = $2",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(|r| Ok(MatchedLine { entry_id: r.try_get(0)?, line_no: r.try_get(1)? }))
    .collect::<Result<_, sqlx::Error>>()?;
    sqlx::query("DELETE FROM acct_statement_matches WHERE org_id = $1 AND statement_line_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        change(org, "accounting.statement.unmatch", "statement_line", id, serde_json::json!({"was": was})),
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
    if s.matched {
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
    do_match(&mut tx, org, id, &[MatchedLine { entry_id: posted.id.clone(), line_no }]).await?;
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

/// Forgets the reconciliation of an entry's lines (a draft deleted or rewritten).
pub async fn unmatch_entry(conn: &mut AnyConnection, org: OrgId, entry_id: &str) -> AcctResult<()> {
    sqlx::query("DELETE FROM acct_statement_matches WHERE org_id = $1 AND entry_id = $2")
        .bind(org.to_string())
        .bind(entry_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
