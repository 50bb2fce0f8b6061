//! Accounting's part of a person's personal data ([`shrooms_core::privacy`]).
//!
//! The ledger holds no person record: a person appears in the labels of
//! entry lines (a payer's or customer's name, an auxiliary account label)
//! and of bank statement lines. The export lists the lines whose labels
//! contain the person's full name. Erasure **keeps them unchanged**: the
//! books and their supporting records are kept for 10 years (Code de
//! commerce L123-22) and validated entries are hash-chained and may not be
//! altered (FEC, art. A47 A-1 LPF).

use crate::service::MODULE;
use shrooms_core::db::Tx;
use shrooms_core::privacy::{rows, Col, Erasure, ErasureNote, Outcome, PersonalData, PrivacyFuture, Section, Subject};
use shrooms_core::Db;
use sqlx::Row;

pub struct AccountingPersonalData;

/// The LIKE pattern of the person's full name; `None` when too short to
/// find them rather than everyone.
fn pattern(s: &Subject) -> Option<String> {
    let name = s.full_name().to_lowercase();
    (name.chars().count() >= 5).then(|| format!("%{}%", name.replace(['%', '_'], "")))
}

const LINES: &str = "FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id \
                     WHERE l.org_id = $1 AND (LOWER(l.label) LIKE $2 OR LOWER(l.aux_label) LIKE $2 OR LOWER(e.label) LIKE $2)";

impl PersonalData for AccountingPersonalData {
    fn export<'a>(&'a self, db: &'a Db, s: &'a Subject) -> PrivacyFuture<'a, Vec<Section>> {
        Box::pin(async move {
            let Some(p) = pattern(s) else { return Ok(vec![]) };
            let org = s.org.to_string();
            use Col::*;
            let lines = rows(
                db,
                &format!(
                    "SELECT e.journal, e.number, l.entry_date, e.piece_ref, l.account, l.aux, l.aux_label, l.label, l.debit, l.credit \
                     {LINES} ORDER BY l.entry_date, l.entry_id, l.line_no"
                ),
                &[&org, &p],
                &[("journal", Text), ("number", OptInt), ("date", Text), ("piece_ref", Text), ("account", Text), ("aux", Text),
                  ("aux_label", Text), ("label", Text), ("debit_cents", Int), ("credit_cents", Int)],
            )
            .await?;
            let statements = rows(
                db,
                "SELECT op_date, label, amount, reference FROM acct_statement_lines WHERE org_id = $1 AND LOWER(label) LIKE $2 ORDER BY op_date",
                &[&org, &p],
                &[("date", Text), ("label", Text), ("amount_cents", Int), ("reference", Text)],
            )
            .await?;
            Ok(vec![
                Section::new(MODULE, "ledger_lines", lines),
                Section::new(MODULE, "bank_statement_lines", statements),
            ])
        })
    }

    fn erase<'a>(&'a self, tx: &'a mut Tx, e: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>> {
        Box::pin(async move {
            let Some(p) = pattern(&e.subject) else { return Ok(vec![]) };
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) {LINES}"))
                .bind(e.subject.org.to_string())
                .bind(&p)
                .fetch_one(tx.conn())
                .await?
                .try_get(0)?;
            Ok(vec![ErasureNote::new(
                MODULE,
                "ledger_lines",
                Outcome::Kept,
                n,
                "Ledger entries and bank statement lines are kept unchanged: the books are kept for 10 years (Code de commerce L123-22) and validated entries may not be altered.",
            )])
        })
    }
}
