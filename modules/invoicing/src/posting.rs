//! The ledger entries of invoices and credit notes, posted through the
//! accounting module's interface in the validating transaction.
//!
//! An invoice, in the sales journal: debit the receivable account (411)
//! with the customer's auxiliary account for the total, credit each revenue
//! account for its net amount and each VAT account for the VAT of its
//! rates. A credit note is the same entry the other way round.

use crate::documents::{Context, Frozen};
use shrooms_accounting::domain::{Amount, Line};
use shrooms_accounting::service::NewEntry;
use std::collections::BTreeMap;

fn line(account: &str, aux: &str, aux_label: &str, label: &str, debit: i64, credit: i64) -> Line {
    Line {
        account: account.to_string(),
        aux: aux.to_string(),
        aux_label: aux_label.to_string(),
        label: label.to_string(),
        debit: Amount(debit),
        credit: Amount(credit),
        currency_amount: None,
        currency: None,
        tags: Vec::new(),
    }
}

/// The entry of a frozen invoice or credit note numbered `number`.
pub(crate) fn entry_for(ctx: &Context, f: &Frozen, number: &str, origin_number: Option<&str>) -> NewEntry {
    let s = &ctx.settings;
    let credit_note = f.kind == "credit_note";
    let label = match (credit_note, origin_number) {
        (true, Some(o)) => format!("Avoir {number} (facture {o}) {}", f.buyer.name),
        (true, None) => format!("Avoir {number} {}", f.buyer.name),
        _ => format!("Facture {number} {}", f.buyer.name),
    };
    let label: String = label.chars().take(200).collect();
    // Net per revenue account, VAT per VAT account (the rate's own or the settings').
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    for l in &f.lines {
        *revenue.entry(l.revenue_account.clone()).or_default() += l.net_cents;
    }
    let mut vat: BTreeMap<String, i64> = BTreeMap::new();
    for v in crate::documents::breakdown(&f.lines).0 {
        if v.vat_cents == 0 {
            continue;
        }
        let account = f
            .lines
            .iter()
            .find(|l| l.vat_category == v.category && l.vat_rate_bp == v.rate_bp)
            .and_then(|l| crate::catalogue::pick_rate(&ctx.rates, &l.vat_code, f.issue))
            .and_then(|r| r.account.clone())
            .unwrap_or_else(|| s.vat_account.clone());
        *vat.entry(account).or_default() += v.vat_cents;
    }
    // Debit/credit as an invoice; swapped for a credit note. A negative
    // amount goes to the other side so every line stays positive.
    let side = |amount: i64, invoice_debit: bool| -> (i64, i64) {
        let debit = invoice_debit != credit_note;
        match (debit, amount >= 0) {
            (true, true) => (amount, 0),
            (true, false) => (0, -amount),
            (false, true) => (0, amount),
            (false, false) => (-amount, 0),
        }
    };
    let mut lines = Vec::new();
    let (d, c) = side(f.gross, true);
    lines.push(line(&s.receivable_account, &f.buyer.aux_account, &f.buyer.name, &label, d, c));
    for (account, net) in revenue.into_iter().filter(|(_, n)| *n != 0) {
        let (d, c) = side(net, false);
        lines.push(line(&account, "", "", &label, d, c));
    }
    for (account, v) in vat {
        let (d, c) = side(v, false);
        lines.push(line(&account, "", "", &label, d, c));
    }
    NewEntry {
        journal: s.sales_journal.clone(),
        date: f.issue,
        label,
        piece_ref: number.to_string(),
        piece_date: Some(f.issue),
        lines,
    }
}
