//! Use cases of the ledger: each checks its capability, checks the input
//! against the books, writes, and records the change in the audit log, in
//! one transaction. Ledger writes use the durable transaction
//! (`Db::begin_durable`): a number shown to a user survives a power cut.
//!
//! Other modules post through [`post_entry`] / [`post_entries`], inside
//! their own transaction.

use crate::domain::{self, Amount, Chart, Day, Line};
use crate::error::{AcctError, AcctResult};
use crate::repo::{self, EntryRow, FiscalYear, Ledger, StoredEntry};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::CoreError;
use sqlx::Row;
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub const MODULE: &str = "accounting";

// ---------- books ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Books {
    pub chart: String,
    /// ISO 4217 code of the organisation's currency (`EUR`).
    pub currency: String,
    /// The organisation's SIREN (9 digits), used to name the FEC file.
    pub siren: String,
    pub years: Vec<FiscalYear>,
    pub journals: Vec<Journal>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBooks {
    /// `associations` (ANC 2018-06) or `pcg` (general chart).
    pub chart: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub siren: Option<String>,
    /// First day of the first fiscal year (`2025-01-01`).
    pub first_year_start: String,
    /// Last day of the first fiscal year; default: twelve months later. A
    /// first year may be short or long (up to 24 months).
    #[serde(default)]
    pub first_year_end: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Journal {
    pub code: String,
    pub label: String,
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Account {
    pub number: String,
    pub label: String,
    pub archived: bool,
}

fn changed(
    org: OrgId,
    action: &'static str,
    kind: &'static str,
    id: String,
) -> impl FnOnce(Option<serde_json::Value>, Option<serde_json::Value>) -> Change<'static> {
    move |before, after| Change { org: Some(org), action, entity_type: kind, entity_id: id, before, after }
}

fn check_siren(s: &str) -> Result<String, &'static str> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.is_empty() {
        return Ok(String::new());
    }
    if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("A SIREN has 9 digits.");
    }
    Ok(s)
}

fn check_currency(s: &str) -> Result<String, &'static str> {
    let s = s.trim().to_ascii_uppercase();
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("A currency is a three-letter ISO 4217 code, such as EUR.");
    }
    Ok(s)
}

fn check_year_bounds(start: Day, end: Day, field: &str) -> AcctResult<()> {
    if end <= start {
        return Err(AcctError::field(field, "A fiscal year ends after it starts."));
    }
    if end > start.add_months(24).prev() {
        return Err(AcctError::field(field, "A fiscal year lasts at most 24 months."));
    }
    Ok(())
}

pub async fn books(db: &Db, cap: &CanRead) -> AcctResult<Books> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger(&mut conn, cap.org()).await?;
    Ok(books_of(&l))
}

fn books_of(l: &Ledger) -> Books {
    Books {
        chart: l.chart.clone(),
        currency: l.currency.clone(),
        siren: l.siren.clone(),
        years: l.years.clone(),
        journals: l
            .journals
            .iter()
            .map(|(c, (label, kind))| Journal { code: c.clone(), label: label.clone(), kind: kind.clone() })
            .collect(),
    }
}

/// Opens an organisation's books: the chart loaded from its template, the
/// standard journals, the first fiscal year.
pub async fn open_books(db: &Db, who: &Who, cap: &CanAdmin, input: OpenBooks) -> AcctResult<Books> {
    open_books_of(db, who, cap.org(), input).await
}

/// Opening the books for the instance itself (the demo data), without a
/// member's capability; everything else is as [`open_books`].
pub(crate) async fn open_books_of(db: &Db, who: &Who, org: OrgId, input: OpenBooks) -> AcctResult<Books> {
    let mut errors = Vec::new();
    let chart = Chart::parse(input.chart.trim());
    if chart.is_none() {
        errors.push(FieldError::new("chart", "Choose `associations` or `pcg`."));
    }
    let currency = check_currency(input.currency.as_deref().unwrap_or("EUR"))
        .map_err(|m| errors.push(FieldError::new("currency", m)))
        .ok();
    let siren =
        check_siren(input.siren.as_deref().unwrap_or("")).map_err(|m| errors.push(FieldError::new("siren", m))).ok();
    let start =
        Day::parse(&input.first_year_start).map_err(|m| errors.push(FieldError::new("first_year_start", m))).ok();
    let end = match (&input.first_year_end, start) {
        (Some(e), _) if !e.trim().is_empty() => {
            Day::parse(e).map_err(|m| errors.push(FieldError::new("first_year_end", m))).ok()
        }
        (_, Some(s)) => Some(s.add_years(1).prev()),
        _ => None,
    };
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let (chart, currency, siren, start, end) = (
        chart.unwrap_or(Chart::Pcg),
        currency.unwrap_or_default(),
        siren.unwrap_or_default(),
        start.unwrap(),
        end.unwrap(),
    );
    check_year_bounds(start, end, "first_year_end")?;
    let mut tx = db.begin_durable().await?;
    let exists = sqlx::query("SELECT 1 FROM acct_books WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(tx.conn())
        .await?;
    if exists.is_some() {
        return Err(AcctError::Conflict("The books of this organisation are already opened.".into()));
    }
    sqlx::query("INSERT INTO acct_books (org_id, chart, currency, siren, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(org.to_string())
        .bind(chart.as_str())
        .bind(&currency)
        .bind(&siren)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    let accounts = chart.accounts();
    for chunk in accounts.chunks(300) {
        let mut sql = String::from("INSERT INTO acct_accounts (org_id, number, label, archived) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, 0)", i * 3 + 1, i * 3 + 2, i * 3 + 3));
        }
        let mut q = sqlx::query(&sql);
        for (n, l) in chunk {
            q = q.bind(org.to_string()).bind(*n).bind(*l);
        }
        q.execute(tx.conn()).await?;
    }
    for (code, label, kind) in domain::DEFAULT_JOURNALS {
        sqlx::query("INSERT INTO acct_journals (org_id, code, label, kind) VALUES ($1, $2, $3, $4)")
            .bind(org.to_string())
            .bind(*code)
            .bind(*label)
            .bind(*kind)
            .execute(tx.conn())
            .await?;
    }
    insert_year(&mut tx, org, start, end).await?;
    let l = repo::ledger(tx.conn(), org).await?;
    let b = books_of(&l);
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.books.open", "books", org.to_string())(
            None,
            Some(serde_json::json!({"chart": b.chart, "currency": b.currency, "siren": b.siren, "accounts": accounts.len(), "first_year": [start.iso(), end.iso()]})),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(b)
}

async fn insert_year(tx: &mut Tx, org: OrgId, start: Day, end: Day) -> AcctResult<FiscalYear> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO acct_years (id, org_id, start_date, end_date, status) VALUES ($1, $2, $3, $4, 'open')")
        .bind(&id)
        .bind(org.to_string())
        .bind(start.iso())
        .bind(end.iso())
        .execute(tx.conn())
        .await?;
    Ok(FiscalYear { id, start: start.iso(), end: end.iso(), status: "open".into(), closed_at: None, closed_hash: None })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewYear {
    pub start: String,
    pub end: String,
}

/// Adds a fiscal year. Years follow each other without gap or overlap.
pub async fn create_year(db: &Db, who: &Who, cap: &CanAdmin, input: NewYear) -> AcctResult<FiscalYear> {
    let start = Day::parse(&input.start).map_err(|m| AcctError::field("start", m))?;
    let end = Day::parse(&input.end).map_err(|m| AcctError::field("end", m))?;
    check_year_bounds(start, end, "end")?;
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let l = repo::ledger(tx.conn(), org).await?;
    if let Some(last) = l.years.last() {
        if start != last.end_day().next() {
            return Err(AcctError::field(
                "start",
                format!("The next fiscal year starts on {}, the day after the last one ends.", last.end_day().next()),
            ));
        }
    }
    let y = insert_year(&mut tx, org, start, end).await?;
    // Deferred revenue waiting for this year moves from 487 on its first day.
    crate::deferral::post_due(&mut tx, who, org).await?;
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.year.create", "fiscal_year", y.id.clone())(None, serde_json::to_value(&y).ok()),
    )
    .await?;
    tx.commit().await?;
    Ok(y)
}

pub async fn accounts(db: &Db, cap: &CanRead) -> AcctResult<Vec<Account>> {
    let rows = sqlx::query("SELECT number, label, archived FROM acct_accounts WHERE org_id = $1 ORDER BY number")
        .bind(cap.org().to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok(Account { number: r.try_get(0)?, label: r.try_get(1)?, archived: r.try_get::<i64, _>(2)? != 0 }))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    pub number: String,
    pub label: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default)]
    pub label: Option<String>,
    /// An archived account keeps its history but takes no new line.
    #[serde(default)]
    pub archived: Option<bool>,
}

fn check_label(s: &str, field: &str, max: usize) -> Result<String, FieldError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max || s.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(field, format!("Write 1 to {max} characters.")));
    }
    Ok(s.to_string())
}

pub async fn create_account(db: &Db, who: &Who, cap: &CanAdmin, input: AccountInput) -> AcctResult<Account> {
    let mut errors = Vec::new();
    let number =
        domain::parse_account_number(&input.number).map_err(|m| errors.push(FieldError::new("number", m))).ok();
    let label = check_label(&input.label, "label", 200).map_err(|e| errors.push(e)).ok();
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let a = Account { number: number.unwrap_or_default(), label: label.unwrap_or_default(), archived: false };
    let org = cap.org();
    let mut tx = db.begin().await?;
    let l = repo::ledger(tx.conn(), org).await?;
    if let Some(chart) = Chart::parse(&l.chart) {
        chart.check_number(&a.number).map_err(|m| AcctError::field("number", m))?;
    }
    if l.accounts.contains_key(&a.number) {
        return Err(AcctError::field("number", format!("The account {} exists already.", a.number)));
    }
    sqlx::query("INSERT INTO acct_accounts (org_id, number, label, archived) VALUES ($1, $2, $3, 0)")
        .bind(org.to_string())
        .bind(&a.number)
        .bind(&a.label)
        .execute(tx.conn())
        .await
        .map_err(|e| CoreError::from(e).on_conflict("number", "This account number exists already."))?;
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.account.create", "account", a.number.clone())(None, serde_json::to_value(&a).ok()),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn patch_account(db: &Db, who: &Who, cap: &CanAdmin, number: &str, p: AccountPatch) -> AcctResult<Account> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let r = sqlx::query("SELECT label, archived FROM acct_accounts WHERE org_id = $1 AND number = $2")
        .bind(org.to_string())
        .bind(number)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    let before = Account { number: number.to_string(), label: r.try_get(0)?, archived: r.try_get::<i64, _>(1)? != 0 };
    let mut after = before.clone();
    if let Some(l) = &p.label {
        after.label = check_label(l, "label", 200).map_err(|e| AcctError::Invalid(vec![e]))?;
    }
    if let Some(a) = p.archived {
        after.archived = a;
    }
    if after.archived && !before.archived {
        refuse_archiving_with_balance(tx.conn(), org, number).await?;
    }
    sqlx::query("UPDATE acct_accounts SET label = $1, archived = $2 WHERE org_id = $3 AND number = $4")
        .bind(&after.label)
        .bind(after.archived as i64)
        .bind(org.to_string())
        .bind(number)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.account.update", "account", number.to_string())(
            serde_json::to_value(&before).ok(),
            serde_json::to_value(&after).ok(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// An account that still holds money in an open fiscal year cannot be
/// archived: its balance would stay in the reports with no way to move it.
/// A balance-sheet account's balance runs from the first open year (the
/// à-nouveaux included); an income or expense account's is the year's.
async fn refuse_archiving_with_balance(conn: &mut sqlx::AnyConnection, org: OrgId, number: &str) -> AcctResult<()> {
    let years: Vec<FiscalYear> = repo::years(conn, org).await?.into_iter().filter(|y| !y.is_closed()).collect();
    let Some(first) = years.first() else { return Ok(()) };
    for y in &years {
        let from = if domain::is_balance_sheet(number) { &first.start } else { &y.start };
        let r = sqlx::query(
            "SELECT CAST(COALESCE(SUM(debit), 0) AS BIGINT), CAST(COALESCE(SUM(credit), 0) AS BIGINT) FROM acct_lines \
             WHERE org_id = $1 AND account = $2 AND entry_date >= $3 AND entry_date <= $4 AND closing = 0",
        )
        .bind(org.to_string())
        .bind(number)
        .bind(from)
        .bind(&y.end)
        .fetch_one(&mut *conn)
        .await?;
        let balance = repo::sum_i64(&r, 0)? - repo::sum_i64(&r, 1)?;
        if balance != 0 {
            return Err(AcctError::field(
                "archived",
                format!(
                    "The account {number} has a balance of {} in the fiscal year {} to {}: move it to another account before archiving this one.",
                    Amount(balance),
                    y.start,
                    y.end
                ),
            ));
        }
    }
    Ok(())
}

// ---------- entries: input ----------

/// One line as typed in a form or sent to the API. Amounts are decimal
/// strings (`"12.50"`, `"1 234,56"`); a JSON number with decimals is refused.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    pub account: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub debit: serde_json::Value,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub credit: serde_json::Value,
    /// Auxiliary account: the member, client or supplier (FEC CompAuxNum).
    #[serde(default)]
    pub aux: Option<String>,
    #[serde(default)]
    pub aux_label: Option<String>,
    /// The line's amount in a foreign currency.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub currency_amount: serde_json::Value,
    #[serde(default)]
    pub currency: Option<String>,
    /// Analytical tags: `project:garden`, `club:chess`, `site:lyon`.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Journal code (`BQ`, `VE`, `AC`, `CA`, `OD`).
    pub journal: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub label: String,
    /// The receipt or invoice number.
    #[serde(default)]
    pub piece_ref: Option<String>,
    #[serde(default)]
    pub piece_date: Option<String>,
    pub lines: Vec<LineInput>,
    /// Validate at once (final, numbered) instead of saving a draft.
    #[serde(default)]
    pub validate: bool,
}

/// An entry to post, checked for form (balanced, positive amounts, valid
/// dates and numbers); [`post_entries`] checks it against the books.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub journal: String,
    pub date: Day,
    pub label: String,
    pub piece_ref: String,
    pub piece_date: Option<Day>,
    pub lines: Vec<Line>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Opening,
    Closing,
    Reversal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Opening => "opening",
            Kind::Closing => "closing",
            Kind::Reversal => "reversal",
        }
    }
}

fn opt_text(s: &Option<String>, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = s.as_deref().unwrap_or("").trim();
    if t.chars().count() > max || t.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(field, format!("Write at most {max} characters, on one line.")));
    }
    t.to_string()
}

/// Checks the form of an entry; every error names its field, lines as
/// `lines[i].field` (counted from 0).
pub fn check_entry(input: &EntryInput) -> Result<NewEntry, Vec<FieldError>> {
    let mut errors = Vec::new();
    let journal =
        domain::parse_journal_code(&input.journal).map_err(|m| errors.push(FieldError::new("journal", m))).ok();
    let date = Day::parse(&input.date).map_err(|m| errors.push(FieldError::new("date", m))).ok();
    let label = check_label(&input.label, "label", 200).map_err(|e| errors.push(e)).ok();
    let piece_ref = opt_text(&input.piece_ref, "piece_ref", 60, &mut errors);
    let piece_date = match input.piece_date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Day::parse(s).map_err(|m| errors.push(FieldError::new("piece_date", m))).ok(),
    };
    if input.lines.len() > 10_000 {
        errors.push(FieldError::new("lines", "An entry has at most 10,000 lines."));
    }
    let mut lines = Vec::new();
    for (i, l) in input.lines.iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        let before = errors.len();
        let account =
            domain::parse_account_number(&l.account).map_err(|m| errors.push(FieldError::new(f("account"), m))).ok();
        let debit = Amount::from_json(&l.debit).map_err(|m| errors.push(FieldError::new(f("debit"), m))).ok().flatten();
        let credit =
            Amount::from_json(&l.credit).map_err(|m| errors.push(FieldError::new(f("credit"), m))).ok().flatten();
        let (debit, credit) = (debit.unwrap_or_default(), credit.unwrap_or_default());
        if errors.len() == before {
            if debit.0 < 0 || credit.0 < 0 {
                errors.push(FieldError::new(
                    f("debit"),
                    "Amounts are positive: put a negative amount on the other side.",
                ));
            } else if !debit.is_zero() && !credit.is_zero() {
                errors.push(FieldError::new(f("credit"), "A line is either a debit or a credit, not both."));
            } else if debit.is_zero() && credit.is_zero() {
                errors.push(FieldError::new(f("debit"), "Give the line a debit or a credit amount."));
            }
        }
        let currency_amount = Amount::from_json(&l.currency_amount)
            .map_err(|m| errors.push(FieldError::new(f("currency_amount"), m)))
            .ok()
            .flatten();
        let currency = match l.currency.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => check_currency(c).map_err(|m| errors.push(FieldError::new(f("currency"), m))).ok(),
        };
        if currency_amount.is_some() != currency.is_some() {
            errors.push(FieldError::new(f("currency"), "Give both the foreign amount and its currency, or neither."));
        }
        let mut tags = Vec::new();
        for (j, t) in l.tags.iter().enumerate() {
            match domain::parse_tag(t) {
                Ok(t) if !tags.contains(&t) => tags.push(t),
                Ok(_) => {}
                Err(m) => errors.push(FieldError::new(format!("lines[{i}].tags[{j}]"), m)),
            }
        }
        let aux = opt_text(&l.aux, &f("aux"), 40, &mut errors);
        let aux_label = opt_text(&l.aux_label, &f("aux_label"), 100, &mut errors);
        let line_label = opt_text(&l.label, &f("label"), 200, &mut errors);
        if let Some(account) = account {
            lines.push(Line {
                account,
                aux,
                aux_label,
                label: line_label,
                debit,
                credit,
                currency_amount,
                currency,
                tags,
            });
        }
    }
    if errors.is_empty() {
        if let Err(e) = domain::check_balanced(&lines) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewEntry {
        journal: journal.unwrap_or_default(),
        date: date.unwrap_or_else(Day::today),
        label: label.unwrap_or_default(),
        piece_ref,
        piece_date,
        lines,
    })
}

/// Checks an entry against the books: journal, accounts, an open fiscal
/// year. `prefix` goes before field names (`entries[3].` in a batch).
fn check_in_books<'l>(l: &'l Ledger, e: &NewEntry, prefix: &str) -> Result<&'l FiscalYear, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !l.journals.contains_key(&e.journal) {
        errors.push(FieldError::new(format!("{prefix}journal"), format!("There is no journal {}.", e.journal)));
    }
    for (i, line) in e.lines.iter().enumerate() {
        match l.accounts.get(&line.account) {
            None => errors.push(FieldError::new(
                format!("{prefix}lines[{i}].account"),
                format!("There is no account {} in the chart of accounts.", line.account),
            )),
            Some((_, true)) => errors.push(FieldError::new(
                format!("{prefix}lines[{i}].account"),
                format!("The account {} is archived.", line.account),
            )),
            _ => {}
        }
    }
    let year = match l.year_of(&e.date.iso()) {
        None => {
            errors.push(FieldError::new(format!("{prefix}date"), format!("No fiscal year holds {}.", e.date)));
            None
        }
        Some(y) if y.is_closed() => {
            errors.push(FieldError::new(
                format!("{prefix}date"),
                format!("The fiscal year {} – {} is closed: nothing can be posted to it.", y.start, y.end),
            ));
            None
        }
        Some(y) => Some(y),
    };
    match year {
        Some(y) if errors.is_empty() => Ok(y),
        _ => Err(errors),
    }
}

// ---------- entries: output ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = LedgerEntry)]
pub struct Entry {
    pub id: String,
    pub year_id: String,
    pub journal: String,
    /// The continuous number in the journal and fiscal year, once validated.
    pub number: Option<i64>,
    /// `BQ-000012`, once validated.
    pub reference: Option<String>,
    pub date: String,
    pub label: String,
    pub piece_ref: String,
    pub piece_date: Option<String>,
    /// `normal`, `opening`, `closing` or `reversal`.
    pub kind: String,
    /// `draft` or `validated`.
    pub status: String,
    pub reverses: Option<String>,
    pub reversed_by: Option<String>,
    /// The module that posted it (`accounting` for entries typed by people).
    pub source: String,
    /// RFC 3339.
    pub created_at: String,
    pub validated_at: Option<String>,
    pub total: String,
    pub lines: Vec<EntryLine>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EntryLine {
    pub line_no: i64,
    pub account: String,
    pub account_label: String,
    pub aux: String,
    pub aux_label: String,
    pub label: String,
    pub debit: String,
    pub credit: String,
    pub currency_amount: Option<String>,
    pub currency: Option<String>,
    pub tags: Vec<String>,
    pub letter: Option<String>,
}

pub(crate) fn to_entry(e: StoredEntry, l: &Ledger) -> Entry {
    Entry {
        reference: e.number.map(|n| domain::entry_ref(&e.journal, n)),
        total: e.lines.iter().map(|x| x.line.debit).sum::<Amount>().plain(),
        lines: e
            .lines
            .into_iter()
            .map(|s| EntryLine {
                line_no: s.line_no,
                account_label: l.accounts.get(&s.line.account).map(|a| a.0.clone()).unwrap_or_default(),
                account: s.line.account,
                aux: s.line.aux,
                aux_label: s.line.aux_label,
                label: s.line.label,
                debit: s.line.debit.plain(),
                credit: s.line.credit.plain(),
                currency_amount: s.line.currency_amount.map(Amount::plain),
                currency: s.line.currency,
                tags: s.line.tags,
                letter: s.letter,
            })
            .collect(),
        id: e.id,
        year_id: e.year_id,
        journal: e.journal,
        number: e.number,
        date: e.date,
        label: e.label,
        piece_ref: e.piece_ref,
        piece_date: e.piece_date,
        kind: e.kind,
        status: e.status,
        reverses: e.reverses,
        reversed_by: e.reversed_by,
        source: e.source,
        created_at: Timestamp(e.created_at).rfc3339(),
        validated_at: e.validated_at.map(|t| Timestamp(t).rfc3339()),
    }
}

// ---------- posting ----------

/// What [`post_entries`] returns for each entry, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Posted {
    pub id: String,
    pub journal: String,
    pub number: Option<i64>,
}

/// Posts one entry in the caller's transaction: the interface every
/// money-handling module uses (invoicing, dues, club cash…). `source` is the
/// calling module's id. The caller has checked its own permission; the
/// entry is checked against the books (journal, accounts, open year) and,
/// with `validate`, numbered and sealed at once. Audited in the same
/// transaction. Begin that transaction with `Db::begin_durable`.
pub async fn post_entry(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    source: &str,
    entry: NewEntry,
    validate: bool,
) -> AcctResult<Posted> {
    let mut v = post_entries(tx, who, org, source, vec![entry], validate).await?;
    Ok(v.remove(0))
}

/// Posts many entries at once (imports, batch runs): all or nothing, a few
/// multi-row statements, one audit entry for the batch holding a digest of
/// every entry (one per entry for a single entry). Errors name the entry
/// (`entries[12].lines[1].account`).
pub async fn post_entries(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    source: &str,
    entries: Vec<NewEntry>,
    validate: bool,
) -> AcctResult<Vec<Posted>> {
    let l = repo::ledger(tx.conn(), org).await?;
    post_checked(tx, who, &l, source, entries.into_iter().map(|e| (e, Kind::Normal, None)).collect(), validate).await
}

async fn post_checked(
    tx: &mut Tx,
    who: &Who,
    l: &Ledger,
    source: &str,
    entries: Vec<(NewEntry, Kind, Option<String>)>,
    validate: bool,
) -> AcctResult<Vec<Posted>> {
    let single = entries.len() == 1;
    let mut errors = Vec::new();
    let mut years = Vec::with_capacity(entries.len());
    for (i, (e, _, _)) in entries.iter().enumerate() {
        let prefix = if single { String::new() } else { format!("entries[{i}].") };
        if let Err(e) = domain::check_balanced(&e.lines) {
            errors.push(FieldError::new(format!("{prefix}{}", e.field), e.message));
        }
        match check_in_books(l, e, &prefix) {
            Ok(y) => years.push(y.id.clone()),
            Err(mut v) => errors.append(&mut v),
        }
        if errors.len() > 200 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    // Numbers: one counter update per journal and year in the batch.
    let mut numbers: Vec<Option<i64>> = vec![None; entries.len()];
    if validate {
        let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (i, (e, _, _)) in entries.iter().enumerate() {
            groups.entry((years[i].clone(), e.journal.clone())).or_default().push(i);
        }
        for ((year, journal), idx) in groups {
            let first = repo::take_numbers(tx.conn(), l.org, &year, &journal, idx.len() as i64).await?;
            for (k, i) in idx.into_iter().enumerate() {
                numbers[i] = Some(first + k as i64);
            }
        }
    }
    let now = Timestamp::now().0;
    let org_s = l.org.to_string();
    let rows: Vec<EntryRow> = entries
        .iter()
        .enumerate()
        .map(|(i, (e, kind, reverses))| {
            let hash = numbers[i].map(|n| {
                domain::entry_hash(
                    &org_s,
                    &years[i],
                    &e.journal,
                    n,
                    &e.date.iso(),
                    &e.label,
                    &e.piece_ref,
                    e.piece_date.map(|d| d.iso()).as_deref(),
                    kind.as_str(),
                    &e.lines,
                )
            });
            EntryRow {
                id: uuid::Uuid::now_v7().to_string(),
                year_id: years[i].clone(),
                journal: &e.journal,
                number: numbers[i],
                date: e.date.iso(),
                label: &e.label,
                piece_ref: &e.piece_ref,
                piece_date: e.piece_date.map(|d| d.iso()),
                kind: kind.as_str(),
                reverses: reverses.as_deref(),
                source,
                created_at: now,
                validated_at: numbers[i].map(|_| now),
                hash,
                lines: &e.lines,
            }
        })
        .collect();
    repo::insert_entries(tx.conn(), l.org, &rows).await?;
    let posted: Vec<Posted> =
        rows.iter().map(|r| Posted { id: r.id.clone(), journal: r.journal.to_string(), number: r.number }).collect();
    if single {
        let r = &rows[0];
        let after = entry_summary(r);
        audit::record(
            tx,
            who,
            changed(
                l.org,
                if validate { "accounting.entry.validate" } else { "accounting.entry.create" },
                "entry",
                r.id.clone(),
            )(None, Some(after)),
        )
        .await?;
    } else if !rows.is_empty() {
        // One audit entry for the batch: each entry's id, number and a digest
        // of its content, so the chain still covers every line.
        let digest: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let d = domain::entry_hash(
                    &org_s,
                    &r.year_id,
                    r.journal,
                    r.number.unwrap_or(0),
                    &r.date,
                    r.label,
                    r.piece_ref,
                    r.piece_date.as_deref(),
                    r.kind,
                    r.lines,
                );
                serde_json::json!([r.id, r.journal, r.number, d])
            })
            .collect();
        audit::record(
            tx,
            who,
            changed(l.org, "accounting.entries.post", "entry_batch", rows[0].id.clone())(
                None,
                Some(serde_json::json!({"source": source, "validated": validate, "count": rows.len(), "entries": digest})),
            ),
        )
        .await?;
    }
    Ok(posted)
}

fn entry_summary(r: &EntryRow) -> serde_json::Value {
    serde_json::json!({
        "journal": r.journal, "number": r.number, "date": r.date, "label": r.label, "piece_ref": r.piece_ref,
        "kind": r.kind, "source": r.source, "hash": r.hash,
        "lines": r.lines.iter().map(|l| serde_json::json!({"account": l.account, "aux": l.aux, "label": l.label, "debit": l.debit.plain(), "credit": l.credit.plain(), "tags": l.tags})).collect::<Vec<_>>(),
    })
}

// ---------- entries: use cases ----------

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryFilter {
    /// Fiscal year id.
    pub year: Option<String>,
    pub journal: Option<String>,
    /// Entries with a line on this account.
    pub account: Option<String>,
    /// `draft` or `validated`.
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries with a line carrying this tag.
    pub tag: Option<String>,
    /// At most 500 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list_entries(db: &Db, cap: &CanRead, f: &EntryFilter) -> AcctResult<Vec<Entry>> {
    let mut conn = db.pool().acquire().await?;
    let l = match repo::ledger(&mut conn, cap.org()).await {
        Ok(l) => l,
        Err(AcctError::NoBooks) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut cond = String::new();
    let mut binds = Vec::new();
    let mut push = |c: &str, v: String, binds: &mut Vec<String>| {
        binds.push(v);
        cond.push_str(&c.replace('?', &format!("${}", binds.len() + 1)));
    };
    if let Some(y) = &f.year {
        push(" AND e.year_id = ?", y.clone(), &mut binds);
    }
    if let Some(j) = &f.journal {
        push(" AND e.journal = ?", j.clone(), &mut binds);
    }
    if let Some(s) = &f.status {
        push(" AND e.status = ?", s.clone(), &mut binds);
    }
    if let Some(d) = &f.from {
        let d = Day::parse(d).map_err(|m| AcctError::field("from", m))?;
        push(" AND e.entry_date >= ?", d.iso(), &mut binds);
    }
    if let Some(d) = &f.to {
        let d = Day::parse(d).map_err(|m| AcctError::field("to", m))?;
        push(" AND e.entry_date <= ?", d.iso(), &mut binds);
    }
    if let Some(a) = &f.account {
        push(" AND e.id IN (SELECT entry_id FROM acct_lines WHERE org_id = $1 AND account = ?)", a.clone(), &mut binds);
    }
    if let Some(t) = &f.tag {
        push(" AND e.id IN (SELECT entry_id FROM acct_line_tags WHERE org_id = $1 AND tag = ?)", t.clone(), &mut binds);
    }
    let order = format!(
        "ORDER BY e.entry_date DESC, e.journal, e.number DESC, e.id DESC LIMIT {} OFFSET {}",
        f.limit.unwrap_or(100).clamp(1, 500),
        f.offset.unwrap_or(0).max(0)
    );
    let entries = repo::load_entries(&mut conn, cap.org(), &cond, &binds, &order).await?;
    Ok(entries.into_iter().map(|e| to_entry(e, &l)).collect())
}

pub async fn get_entry(db: &Db, cap: &CanRead, id: &str) -> AcctResult<Entry> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger(&mut conn, cap.org()).await.map_err(|_| CoreError::NotFound)?;
    let e = repo::entry(&mut conn, cap.org(), id).await?;
    Ok(to_entry(e, &l))
}

/// Creates an entry from the accountant's form: a draft, or validated at once.
pub async fn create_entry(db: &Db, who: &Who, cap: &CanWrite, input: EntryInput) -> AcctResult<Entry> {
    let validate = input.validate;
    let e = check_entry(&input).map_err(AcctError::Invalid)?;
    let mut tx = db.begin_durable().await?;
    let p = post_entry(&mut tx, who, cap.org(), MODULE, e, validate).await?;
    let l = repo::ledger(tx.conn(), cap.org()).await?;
    let stored = repo::entry(tx.conn(), cap.org(), &p.id).await?;
    tx.commit().await?;
    Ok(to_entry(stored, &l))
}

fn refuse_if_final(e: &StoredEntry) -> AcctResult<()> {
    if e.status == "validated" {
        return Err(AcctError::Final(format!(
            "The entry {} is validated: it can no longer be changed or deleted, only reversed by a new entry.",
            e.number.map(|n| domain::entry_ref(&e.journal, n)).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Replaces a draft's content. Validated entries are final.
pub async fn update_draft(db: &Db, who: &Who, cap: &CanWrite, id: &str, input: EntryInput) -> AcctResult<Entry> {
    let validate = input.validate;
    let e = check_entry(&input).map_err(AcctError::Invalid)?;
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let before = repo::entry(tx.conn(), org, id).await?;
    refuse_if_final(&before)?;
    let l = repo::ledger(tx.conn(), org).await?;
    if l.year(&before.year_id).is_some_and(|y| y.is_closed()) {
        return Err(AcctError::Final("This entry belongs to a closed fiscal year.".into()));
    }
    let year = check_in_books(&l, &e, "").map_err(AcctError::Invalid)?.id.clone();
    let number = if validate { Some(repo::take_numbers(tx.conn(), org, &year, &e.journal, 1).await?) } else { None };
    let now = Timestamp::now().0;
    let hash = number.map(|n| {
        domain::entry_hash(
            &org.to_string(),
            &year,
            &e.journal,
            n,
            &e.date.iso(),
            &e.label,
            &e.piece_ref,
            e.piece_date.map(|d| d.iso()).as_deref(),
            &before.kind,
            &e.lines,
        )
    });
    crate::bank::unmatch_entry(tx.conn(), org, id).await?;
    sqlx::query("DELETE FROM acct_line_tags WHERE org_id = $1 AND entry_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM acct_lines WHERE org_id = $1 AND entry_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM acct_entries WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let row = EntryRow {
        id: id.to_string(),
        year_id: year,
        journal: &e.journal,
        number,
        date: e.date.iso(),
        label: &e.label,
        piece_ref: &e.piece_ref,
        piece_date: e.piece_date.map(|d| d.iso()),
        kind: &before.kind,
        reverses: before.reverses.as_deref(),
        source: &before.source,
        created_at: before.created_at,
        validated_at: number.map(|_| now),
        hash,
        lines: &e.lines,
    };
    repo::insert_entries(tx.conn(), org, std::slice::from_ref(&row)).await?;
    let after = entry_summary(&row);
    let before_json = serde_json::to_value(to_entry(before, &l)).ok();
    audit::record(
        &mut tx,
        who,
        changed(
            org,
            if validate { "accounting.entry.validate" } else { "accounting.entry.update" },
            "entry",
            id.to_string(),
        )(before_json, Some(after)),
    )
    .await?;
    let stored = repo::entry(tx.conn(), org, id).await?;
    tx.commit().await?;
    Ok(to_entry(stored, &l))
}

pub async fn delete_draft(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> AcctResult<()> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let before = repo::entry(tx.conn(), org, id).await?;
    refuse_if_final(&before)?;
    let l = repo::ledger(tx.conn(), org).await?;
    crate::bank::unmatch_entry(tx.conn(), org, id).await?;
    sqlx::query("DELETE FROM acct_line_tags WHERE org_id = $1 AND entry_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM acct_lines WHERE org_id = $1 AND entry_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM acct_entries WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.entry.delete", "entry", id.to_string())(
            serde_json::to_value(to_entry(before, &l)).ok(),
            None,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Validates a draft: it gets the next number of its journal in its fiscal
/// year and its seal, in this one durable transaction.
pub async fn validate_entry(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> AcctResult<Entry> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let e = repo::entry(tx.conn(), org, id).await?;
    refuse_if_final(&e)?;
    let l = repo::ledger(tx.conn(), org).await?;
    let lines: Vec<Line> = e.lines.iter().map(|s| s.line.clone()).collect();
    let ne = NewEntry {
        journal: e.journal.clone(),
        date: Day::parse(&e.date).map_err(|m| AcctError::field("date", m))?,
        label: e.label.clone(),
        piece_ref: e.piece_ref.clone(),
        piece_date: e.piece_date.as_deref().and_then(|d| Day::parse(d).ok()),
        lines: lines.clone(),
    };
    domain::check_balanced(&lines).map_err(|f| AcctError::Invalid(vec![f]))?;
    let year = check_in_books(&l, &ne, "").map_err(AcctError::Invalid)?.id.clone();
    let n = repo::take_numbers(tx.conn(), org, &year, &e.journal, 1).await?;
    let hash = domain::entry_hash(
        &org.to_string(),
        &year,
        &e.journal,
        n,
        &e.date,
        &e.label,
        &e.piece_ref,
        e.piece_date.as_deref(),
        &e.kind,
        &lines,
    );
    let now = Timestamp::now().0;
    sqlx::query("UPDATE acct_entries SET status = 'validated', number = $1, validated_at = $2, hash = $3, year_id = $4 WHERE org_id = $5 AND id = $6 AND status = 'draft'")
        .bind(n)
        .bind(now)
        .bind(&hash)
        .bind(&year)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.entry.validate", "entry", id.to_string())(
            Some(serde_json::json!({"status": "draft"})),
            Some(serde_json::json!({"status": "validated", "journal": e.journal, "number": n, "hash": hash})),
        ),
    )
    .await?;
    let stored = repo::entry(tx.conn(), org, id).await?;
    tx.commit().await?;
    Ok(to_entry(stored, &l))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseInput {
    /// Date of the reversing entry (default: today, or the original's date
    /// when today is outside an open fiscal year).
    #[serde(default)]
    pub date: Option<String>,
}

/// Cancels a validated entry the only way the books allow: a new, validated
/// entry with debits and credits swapped.
pub async fn reverse_entry(db: &Db, who: &Who, cap: &CanWrite, id: &str, input: ReverseInput) -> AcctResult<Entry> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let e = repo::entry(tx.conn(), org, id).await?;
    if e.status != "validated" {
        return Err(AcctError::Conflict("A draft is not reversed: change or delete it instead.".into()));
    }
    if let Some(r) = &e.reversed_by {
        return Err(AcctError::Conflict(format!("This entry was already reversed (entry {r}).")));
    }
    let l = repo::ledger(tx.conn(), org).await?;
    let date = match input.date.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => Day::parse(d).map_err(|m| AcctError::field("date", m))?,
        _ => {
            let today = Day::today();
            if l.year_of(&today.iso()).is_some_and(|y| !y.is_closed()) {
                today
            } else {
                Day::parse(&e.date).unwrap_or(today)
            }
        }
    };
    let reference = e.number.map(|n| domain::entry_ref(&e.journal, n)).unwrap_or_default();
    let ne = NewEntry {
        journal: e.journal.clone(),
        date,
        label: truncate(&format!("Extourne {reference} – {}", e.label), 200),
        piece_ref: e.piece_ref.clone(),
        piece_date: e.piece_date.as_deref().and_then(|d| Day::parse(d).ok()),
        lines: e.lines.iter().map(|s| Line { debit: s.line.credit, credit: s.line.debit, ..s.line.clone() }).collect(),
    };
    let p = post_checked(&mut tx, who, &l, MODULE, vec![(ne, Kind::Reversal, Some(e.id.clone()))], true).await?;
    let new_id = p[0].id.clone();
    sqlx::query("UPDATE acct_entries SET reversed_by = $1 WHERE org_id = $2 AND id = $3")
        .bind(&new_id)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let stored = repo::entry(tx.conn(), org, &new_id).await?;
    tx.commit().await?;
    Ok(to_entry(stored, &l))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The simple form for people who are not accountants.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimpleInput {
    /// `income`, `expense` or `transfer`.
    pub kind: String,
    pub date: String,
    pub label: String,
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
    /// The category: an income (7…) or expense (6…) account; for a
    /// transfer, the account that receives the money.
    pub category: String,
    /// How the money moved: the bank or cash account (512…, 530…); for a
    /// transfer, the account the money leaves.
    pub payment: String,
    #[serde(default)]
    pub piece_ref: Option<String>,
    /// The member, client or supplier.
    #[serde(default)]
    pub aux: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub validate: bool,
}

/// Turns the simple form into its double entry: income debits the bank or
/// cash account and credits the category; an expense the other way round;
/// a transfer debits the receiving account. The journal follows the payment
/// account: bank (51) → BQ, cash (53) → CA, otherwise OD.
pub fn simple_to_entry(input: &SimpleInput) -> Result<EntryInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let amount = match Amount::from_json(&input.amount) {
        Ok(Some(a)) if a.0 > 0 => Some(a),
        Ok(_) => {
            errors.push(FieldError::new("amount", "Give a positive amount."));
            None
        }
        Err(m) => {
            errors.push(FieldError::new("amount", m));
            None
        }
    };
    let category =
        domain::parse_account_number(&input.category).map_err(|m| errors.push(FieldError::new("category", m))).ok();
    let payment =
        domain::parse_account_number(&input.payment).map_err(|m| errors.push(FieldError::new("payment", m))).ok();
    let kind = input.kind.trim();
    if !["income", "expense", "transfer"].contains(&kind) {
        errors.push(FieldError::new("kind", "Choose income, expense or transfer."));
    }
    if let (Some(c), Some(p)) = (&category, &payment) {
        if c == p {
            errors.push(FieldError::new("category", "Choose two different accounts."));
        }
        if kind == "income" && !c.starts_with('7') && !c.starts_with('4') && !c.starts_with('1') {
            errors.push(FieldError::new("category", "An income goes to an income account (7…)."));
        }
        if kind == "expense" && !c.starts_with('6') && !c.starts_with('4') && !c.starts_with('2') {
            errors.push(FieldError::new("category", "An expense goes to an expense account (6…)."));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (amount, category, payment) =
        (amount.unwrap_or_default(), category.unwrap_or_default(), payment.unwrap_or_default());
    let journal = if payment.starts_with("51") {
        "BQ"
    } else if payment.starts_with("53") {
        "CA"
    } else {
        "OD"
    };
    let a = serde_json::Value::String(amount.plain());
    let line = |account: &str, debit: bool, tags: Vec<String>| LineInput {
        account: account.to_string(),
        label: Some(input.label.clone()),
        debit: if debit { a.clone() } else { serde_json::Value::Null },
        credit: if debit { serde_json::Value::Null } else { a.clone() },
        aux: input.aux.clone(),
        tags,
        ..Default::default()
    };
    // Analytical tags go on the category line: that is what reports by tag add up.
    let lines = match kind {
        "income" => vec![line(&payment, true, vec![]), line(&category, false, input.tags.clone())],
        "expense" => vec![line(&category, true, input.tags.clone()), line(&payment, false, vec![])],
        _ => vec![line(&category, true, input.tags.clone()), line(&payment, false, vec![])],
    };
    Ok(EntryInput {
        journal: journal.into(),
        date: input.date.clone(),
        label: input.label.clone(),
        piece_ref: input.piece_ref.clone(),
        piece_date: None,
        lines,
        validate: input.validate,
    })
}

pub async fn simple_entry(db: &Db, who: &Who, cap: &CanWrite, input: SimpleInput) -> AcctResult<Entry> {
    let e = simple_to_entry(&input).map_err(AcctError::Invalid)?;
    create_entry(db, who, cap, e).await.map_err(|e| match e {
        // The form's fields, not the generated lines', are what the user sees.
        AcctError::Invalid(v) => AcctError::Invalid(
            v.into_iter()
                .map(|f| {
                    let field = if f.field.starts_with("lines[") {
                        if input.kind == "income" && f.field.starts_with("lines[0]")
                            || input.kind != "income" && f.field.starts_with("lines[1]")
                        {
                            "payment".to_string()
                        } else {
                            "category".to_string()
                        }
                    } else {
                        f.field
                    };
                    FieldError::new(field, f.message)
                })
                .collect(),
        ),
        other => other,
    })
}

// ---------- closing ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Closing {
    pub year: FiscalYear,
    pub next_year: FiscalYear,
    /// The result of the year: positive = surplus (120), negative = deficit (129).
    pub result: String,
    pub closing_entry: Option<String>,
    pub opening_entry: Option<String>,
}

/// The seal of a year: a hash over its validated entries' seals, in order
/// of journal and number (sorted here, not by the database's collation).
pub fn seal_of(mut entries: Vec<(String, i64, String)>) -> String {
    entries.sort();
    let mut all = String::with_capacity(entries.len() * 65);
    for (_, _, h) in &entries {
        all.push_str(h);
        all.push('\n');
    }
    shrooms_core::crypto::sha256_hex(all.as_bytes())
}

pub async fn year_seal(conn: &mut sqlx::AnyConnection, org: OrgId, year_id: &str) -> AcctResult<(String, i64)> {
    let rows = sqlx::query(
        "SELECT journal, number, hash FROM acct_entries WHERE org_id = $1 AND year_id = $2 AND status = 'validated'",
    )
    .bind(org.to_string())
    .bind(year_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut v = Vec::with_capacity(rows.len());
    for r in &rows {
        v.push((
            r.try_get(0)?,
            r.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
            r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
        ));
    }
    Ok((seal_of(v), rows.len() as i64))
}

/// Closes a fiscal year: income and expense accounts (and the contributions
/// in kind) are balanced into the result (120 surplus / 129 deficit) by a
/// closing entry; balance-sheet accounts and the result are carried into
/// the next year by an opening entry (à-nouveaux, journal AN); the year is
/// sealed and locked. There is no way back: a closed year cannot be
/// reopened.
pub async fn close_year(db: &Db, who: &Who, cap: &CanAdmin, year_id: &str) -> AcctResult<Closing> {
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let mut l = repo::ledger_or_404(tx.conn(), org).await?;
    let y = l.year(year_id).cloned().ok_or(CoreError::NotFound)?;
    if y.is_closed() {
        return Err(AcctError::Final("This fiscal year is closed already; a closed year cannot be reopened.".into()));
    }
    if let Some(prev) = l.years.iter().find(|p| p.start < y.start && !p.is_closed()) {
        return Err(AcctError::Conflict(format!("Close the fiscal year {} – {} first.", prev.start, prev.end)));
    }
    let drafts: i64 =
        sqlx::query("SELECT COUNT(*) FROM acct_entries WHERE org_id = $1 AND year_id = $2 AND status = 'draft'")
            .bind(org.to_string())
            .bind(&y.id)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?;
    if drafts > 0 {
        return Err(AcctError::Conflict(format!(
            "{drafts} draft entries remain in this year: validate or delete them before closing."
        )));
    }
    for (code, label, kind) in [("AN", "À-nouveaux", "opening"), ("CL", "Clôture", "closing")] {
        if !l.journals.contains_key(code) {
            sqlx::query("INSERT INTO acct_journals (org_id, code, label, kind) VALUES ($1, $2, $3, $4)")
                .bind(org.to_string())
                .bind(code)
                .bind(label)
                .bind(kind)
                .execute(tx.conn())
                .await?;
            l.journals.insert(code.into(), (label.into(), kind.into()));
        }
    }
    for (n, label) in [("120", "Résultat de l'exercice (excédent)"), ("129", "Résultat de l'exercice (déficit)")] {
        if !l.accounts.contains_key(n) {
            sqlx::query("INSERT INTO acct_accounts (org_id, number, label, archived) VALUES ($1, $2, $3, 0)")
                .bind(org.to_string())
                .bind(n)
                .bind(label)
                .execute(tx.conn())
                .await?;
            l.accounts.insert(n.into(), (label.into(), false));
        }
        if let Some(a) = l.accounts.get_mut(n) {
            a.1 = false;
        }
    }
    let next = match l.years.iter().find(|n| n.start_day() == y.end_day().next()) {
        Some(n) => n.clone(),
        None => {
            let start = y.end_day().next();
            let n = insert_year(&mut tx, org, start, start.add_years(1).prev()).await?;
            l.years.push(n.clone());
            n
        }
    };
    // Balances of the year per account and auxiliary account.
    let rows = sqlx::query(
        "SELECT account, aux, MAX(aux_label), CAST(SUM(debit) AS BIGINT), CAST(SUM(credit) AS BIGINT) FROM acct_lines WHERE org_id = $1 AND entry_date >= $2 AND entry_date <= $3 AND closing = 0 GROUP BY account, aux ORDER BY account, aux",
    )
    .bind(org.to_string())
    .bind(&y.start)
    .bind(&y.end)
    .fetch_all(tx.conn())
    .await?;
    let mut closing_lines = Vec::new();
    let mut opening_lines = Vec::new();
    let mut result = 0i64; // credit − debit of classes 6 and 7
    let mut in_kind = 0i64;
    for r in &rows {
        let account: String = r.try_get(0)?;
        let aux: String = r.try_get(1)?;
        let aux_label: String = r.try_get::<Option<String>, _>(2)?.unwrap_or_default();
        let bal = repo::sum_i64(r, 3)? - repo::sum_i64(r, 4)?; // debit balance
        if bal == 0 {
            continue;
        }
        let line = |label: &str, debit: i64| Line {
            account: account.clone(),
            aux: aux.clone(),
            aux_label: aux_label.clone(),
            label: label.to_string(),
            debit: Amount(debit.max(0)),
            credit: Amount((-debit).max(0)),
            currency_amount: None,
            currency: None,
            tags: vec![],
        };
        match domain::account_class(&account) {
            6 | 7 => {
                result -= bal;
                closing_lines.push(line("Solde de clôture", -bal));
            }
            8 => {
                in_kind += bal;
                closing_lines.push(line("Solde de clôture", -bal));
            }
            _ => opening_lines.push(line("Report à nouveau", bal)),
        }
    }
    if in_kind != 0 {
        return Err(AcctError::Conflict(format!(
            "The contributions in kind (87) and their uses (86) differ by {}: they must match before closing.",
            Amount(in_kind.abs())
        )));
    }
    let result_line = |label: &str| Line {
        account: if result >= 0 { "120".into() } else { "129".into() },
        aux: String::new(),
        aux_label: String::new(),
        label: label.into(),
        debit: Amount((-result).max(0)),
        credit: Amount(result.max(0)),
        currency_amount: None,
        currency: None,
        tags: vec![],
    };
    let mut to_post = Vec::new();
    if result != 0 {
        closing_lines.push(result_line("Résultat de l'exercice"));
        opening_lines.push(result_line("Résultat de l'exercice précédent"));
    }
    let end = y.end_day();
    let label = format!("Clôture de l'exercice {} – {}", y.start, y.end);
    let has_closing = closing_lines.len() >= 2;
    if has_closing {
        to_post.push((
            NewEntry {
                journal: "CL".into(),
                date: end,
                label: label.clone(),
                piece_ref: "CLOTURE".into(),
                piece_date: Some(end),
                lines: closing_lines,
            },
            Kind::Closing,
            None,
        ));
    }
    // Post the closing entry while the year is still open…
    let closing_posted = if to_post.is_empty() {
        vec![]
    } else {
        post_checked(&mut tx, who, &l, MODULE, std::mem::take(&mut to_post), true).await?
    };
    // …then seal and lock it…
    let (seal, count) = year_seal(tx.conn(), org, &y.id).await?;
    let now = Timestamp::now().0;
    sqlx::query("UPDATE acct_years SET status = 'closed', closed_at = $1, closed_hash = $2, closed_entries = $3 WHERE org_id = $4 AND id = $5 AND status = 'open'")
        .bind(now)
        .bind(&seal)
        .bind(count)
        .bind(org.to_string())
        .bind(&y.id)
        .execute(tx.conn())
        .await?;
    // …and open the next one with the carried-forward balances.
    let start = next.start_day();
    let opening_posted = if opening_lines.len() >= 2 {
        post_checked(
            &mut tx,
            who,
            &l,
            MODULE,
            vec![(
                NewEntry {
                    journal: "AN".into(),
                    date: start,
                    label: format!("À-nouveaux de l'exercice {} – {}", y.start, y.end),
                    piece_ref: "A-NOUVEAUX".into(),
                    piece_date: Some(start),
                    lines: opening_lines,
                },
                Kind::Opening,
                None,
            )],
            true,
        )
        .await?
    } else {
        vec![]
    };
    crate::deferral::post_due(&mut tx, who, org).await?;
    let mut closed = y.clone();
    closed.status = "closed".into();
    closed.closed_at = Some(now);
    closed.closed_hash = Some(seal.clone());
    let out = Closing {
        year: closed,
        next_year: next,
        result: Amount(result).plain(),
        closing_entry: closing_posted.first().map(|p| p.id.clone()),
        opening_entry: opening_posted.first().map(|p| p.id.clone()),
    };
    audit::record(
        &mut tx,
        who,
        changed(org, "accounting.year.close", "fiscal_year", y.id.clone())(
            serde_json::to_value(&y).ok(),
            Some(serde_json::json!({"status": "closed", "seal": seal, "entries": count, "result": out.result, "closing_entry": out.closing_entry, "opening_entry": out.opening_entry})),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}
