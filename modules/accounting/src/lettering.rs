//! Lettering (lettrage) of third-party accounts: the lines of a client's,
//! supplier's or member's account that settle each other get one letter
//! code (`AA`, `AB`, … per account). A selection whose debits and credits
//! balance is complete (capitals); one that does not is partial (the same
//! code in lower case, as the FEC allows), until it is lettered again with
//! the rest. The FEC export writes the code and date (EcritureLet, DateLet).

use crate::domain::{Amount, Day};
use crate::error::{AcctError, AcctResult};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Db;
use shrooms_core::error::FieldError;
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use utoipa::ToSchema;

/// The code after `code` in the sequence AA, AB, … AZ, BA, … ZZ, AAA, …
pub fn next_code(code: Option<&str>) -> String {
    let Some(code) = code else { return "AA".into() };
    let mut b: Vec<u8> = code.to_ascii_uppercase().into_bytes();
    for i in (0..b.len()).rev() {
        if b[i] < b'Z' {
            b[i] += 1;
            return String::from_utf8(b).unwrap_or_default();
        }
        b[i] = b'A';
    }
    "A".repeat(b.len() + 1)
}

/// Orders codes as the sequence does: shorter first, then alphabetically.
fn code_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a.to_ascii_uppercase()).cmp(&(b.len(), b.to_ascii_uppercase()))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRef {
    pub entry_id: String,
    pub line_no: i64,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterInput {
    /// The account the lines are on (411…, 401…, a member's 4…).
    pub account: String,
    pub lines: Vec<LineRef>,
    /// Extend this partial letter instead of taking a new code: its lines
    /// are lettered again together with the new ones.
    #[serde(default)]
    pub letter: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Lettering {
    /// `AB` when complete, `ab` when partial.
    pub letter: String,
    pub partial: bool,
    pub debit: String,
    pub credit: String,
    pub lines: usize,
}

fn change<'a>(cap: &CanWrite, action: &'a str, id: String, after: serde_json::Value) -> Change<'a> {
    Change { org: Some(cap.org()), action, entity_type: "lettering", entity_id: id, before: None, after: Some(after) }
}

/// Letters the selected lines together.
pub async fn letter(db: &Db, who: &Who, cap: &CanWrite, input: LetterInput) -> AcctResult<Lettering> {
    let org = cap.org().to_string();
    let account = crate::domain::parse_account_number(&input.account).map_err(|m| AcctError::field("account", m))?;
    if input.lines.is_empty() || input.lines.len() > 1000 {
        return Err(AcctError::field("lines", "Select 1 to 1,000 lines."));
    }
    let mut tx = db.begin_durable().await?;
    // A line ticked twice counts once.
    let mut refs: Vec<(String, i64)> = Vec::new();
    for l in &input.lines {
        let k = (l.entry_id.clone(), l.line_no);
        if !refs.contains(&k) {
            refs.push(k);
        }
    }
    // Extending a partial letter: its lines join the selection.
    let extend = match input.letter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(code) => {
            let rows = sqlx::query(
                "SELECT entry_id, line_no FROM acct_lines WHERE org_id = $1 AND account = $2 AND letter = $3",
            )
            .bind(&org)
            .bind(&account)
            .bind(code.to_ascii_lowercase())
            .fetch_all(tx.conn())
            .await?;
            if rows.is_empty() {
                return Err(AcctError::field(
                    "letter",
                    format!("There is no partial letter {code} on account {account}."),
                ));
            }
            for r in rows {
                let k = (r.try_get(0)?, r.try_get(1)?);
                if !refs.contains(&k) {
                    refs.push(k);
                }
            }
            Some(code.to_ascii_uppercase())
        }
        None => None,
    };
    let mut errors = Vec::new();
    let (mut debit, mut credit) = (0i64, 0i64);
    let mut aux: Option<String> = None;
    let mut last_date = String::new();
    for (i, (entry_id, line_no)) in refs.iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        let row = sqlx::query(
            "SELECT l.account, l.aux, l.debit, l.credit, l.letter, l.entry_date, e.status FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id WHERE l.org_id = $1 AND l.entry_id = $2 AND l.line_no = $3",
        )
        .bind(&org)
        .bind(entry_id)
        .bind(line_no)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            errors.push(FieldError::new(field("entry_id"), "There is no such line."));
            continue;
        };
        let (acc, a, d, c, l, date, status): (String, String, i64, i64, Option<String>, String, String) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
        );
        if acc != account {
            errors.push(FieldError::new(field("entry_id"), format!("This line is on account {acc}, not {account}.")));
        }
        if status != "validated" {
            errors.push(FieldError::new(field("entry_id"), "Only lines of validated entries are lettered."));
        }
        if let Some(l) = l.filter(|l| extend.as_deref() != Some(&l.to_ascii_uppercase())) {
            errors.push(FieldError::new(field("entry_id"), format!("This line is already lettered {l}.")));
        }
        match &aux {
            None => aux = Some(a),
            Some(x) if *x != a => errors.push(FieldError::new(
                field("entry_id"),
                format!("This line belongs to the third party “{a}”, the others to “{x}”."),
            )),
            _ => {}
        }
        debit += d;
        credit += c;
        if date > last_date {
            last_date = date;
        }
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let code = match extend {
        Some(c) => c,
        None => {
            let used: Vec<String> = sqlx::query(
                "SELECT DISTINCT letter FROM acct_lines WHERE org_id = $1 AND account = $2 AND letter IS NOT NULL",
            )
            .bind(&org)
            .bind(&account)
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
            next_code(used.iter().max_by(|a, b| code_order(a, b)).map(String::as_str))
        }
    };
    let partial = debit != credit;
    let stored = if partial { code.to_ascii_lowercase() } else { code.clone() };
    // The lettering date: the day it was done (the FEC's DateLet).
    let today = Day::today().iso();
    for (entry_id, line_no) in &refs {
        sqlx::query(
            "UPDATE acct_lines SET letter = $1, letter_date = $2 WHERE org_id = $3 AND entry_id = $4 AND line_no = $5",
        )
        .bind(&stored)
        .bind(&today)
        .bind(&org)
        .bind(entry_id)
        .bind(line_no)
        .execute(tx.conn())
        .await?;
    }
    let out = Lettering {
        letter: stored.clone(),
        partial,
        debit: Amount(debit).plain(),
        credit: Amount(credit).plain(),
        lines: refs.len(),
    };
    audit::record(
        &mut tx,
        who,
        change(
            cap,
            "accounting.lettering.letter",
            format!("{account}:{code}"),
            serde_json::json!({"account": account, "letter": stored, "partial": partial, "debit": out.debit, "credit": out.credit,
                "lines": refs.iter().map(|(e, n)| serde_json::json!([e, n])).collect::<Vec<_>>()}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Removes a letter (complete or partial) from all its lines.
pub async fn unletter(db: &Db, who: &Who, cap: &CanWrite, account: &str, code: &str) -> AcctResult<usize> {
    let org = cap.org().to_string();
    let mut tx = db.begin_durable().await?;
    let r = sqlx::query("UPDATE acct_lines SET letter = NULL, letter_date = NULL WHERE org_id = $1 AND account = $2 AND (letter = $3 OR letter = $4)")
        .bind(&org)
        .bind(account)
        .bind(code.to_ascii_uppercase())
        .bind(code.to_ascii_lowercase())
        .execute(tx.conn())
        .await?;
    let n = r.rows_affected() as usize;
    if n == 0 {
        return Err(AcctError::Core(shrooms_core::CoreError::NotFound));
    }
    audit::record(
        &mut tx,
        who,
        change(
            cap,
            "accounting.lettering.unletter",
            format!("{account}:{code}"),
            serde_json::json!({"account": account, "letter": code, "lines": n}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LetterLine {
    pub entry_id: String,
    pub line_no: i64,
    pub date: String,
    pub reference: Option<String>,
    pub label: String,
    pub aux: String,
    pub debit: String,
    pub credit: String,
    pub letter: Option<String>,
    pub letter_date: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AccountLettering {
    pub account: String,
    pub lines: Vec<LetterLine>,
    /// Debits − credits of the lines not fully lettered (no letter or a partial one).
    pub open_balance: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LetteringQuery {
    pub account: String,
    /// Only this third party's lines.
    pub aux: Option<String>,
    /// Only lines not fully lettered.
    pub open: Option<bool>,
}

pub async fn account_lines(db: &Db, cap: &CanRead, q: &LetteringQuery) -> AcctResult<AccountLettering> {
    let mut sql = String::from(
        "SELECT l.entry_id, l.line_no, l.entry_date, e.journal, e.number, CASE WHEN l.label = '' THEN e.label ELSE l.label END, l.aux, l.debit, l.credit, l.letter, l.letter_date \
         FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id WHERE l.org_id = $1 AND l.account = $2 AND e.status = 'validated' AND l.closing = 0",
    );
    if q.aux.is_some() {
        sql.push_str(" AND l.aux = $3");
    }
    sql.push_str(" ORDER BY l.entry_date, e.journal, e.number, l.line_no");
    let mut query = sqlx::query(&sql).bind(cap.org().to_string()).bind(&q.account);
    if let Some(a) = &q.aux {
        query = query.bind(a);
    }
    let mut lines = Vec::new();
    let mut open = 0i64;
    for r in query.fetch_all(db.pool()).await? {
        let letter: Option<String> = r.try_get(9)?;
        let complete = letter.as_deref().is_some_and(|l| l.chars().all(|c| c.is_ascii_uppercase()));
        let (d, c): (i64, i64) = (r.try_get(7)?, r.try_get(8)?);
        if !complete {
            open += d - c;
        } else if q.open == Some(true) {
            continue;
        }
        let journal: String = r.try_get(3)?;
        lines.push(LetterLine {
            entry_id: r.try_get(0)?,
            line_no: r.try_get(1)?,
            date: r.try_get(2)?,
            reference: r.try_get::<Option<i64>, _>(4)?.map(|n| crate::domain::entry_ref(&journal, n)),
            label: r.try_get(5)?,
            aux: r.try_get(6)?,
            debit: Amount(d).plain(),
            credit: Amount(c).plain(),
            letter,
            letter_date: r.try_get(10)?,
        });
    }
    Ok(AccountLettering { account: q.account.clone(), lines, open_balance: Amount(open).plain() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_run_aa_to_zz_then_three_letters() {
        assert_eq!(next_code(None), "AA");
        assert_eq!(next_code(Some("AA")), "AB");
        assert_eq!(next_code(Some("az")), "BA");
        assert_eq!(next_code(Some("ZZ")), "AAA");
        assert_eq!(code_order("ZZ", "AAA"), std::cmp::Ordering::Less);
    }
}
