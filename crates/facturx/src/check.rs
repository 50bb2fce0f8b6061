//! The consistency rules a document must meet before it is written: the
//! arithmetic of EN 16931 (BR-CO-*) and the identifiers each VAT category
//! needs (BR-S/Z/E/AE/IC/G/O-*). Each message starts with the field it is about.

use crate::{DocKind, Document, Party};
use std::collections::BTreeMap;

const CATEGORIES: [&str; 7] = ["S", "Z", "E", "AE", "K", "G", "O"];

/// Every rule the document breaks, or `Ok`.
pub fn check(doc: &Document) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, msg: String| errors.push(format!("{field}: {msg}"));

    if doc.number.trim().is_empty() {
        err("number", "is empty".into());
    }
    if doc.currency.len() != 3 || !doc.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        err("currency", format!("{:?} is not an ISO 4217 code", doc.currency));
    }
    if doc.lines.is_empty() {
        err("lines", "a document needs at least one line".into());
    }
    if let Some(due) = doc.due_date {
        if due < doc.issue_date {
            err("due_date", "is before the issue date".into());
        }
    }
    for (name, p) in [("seller", &doc.seller), ("buyer", &doc.buyer)] {
        party(name, p, &mut err);
    }
    if let Some((start, end)) = doc.service_period {
        if end < start {
            err("service_period", "ends before it starts".into());
        }
    }

    // Lines, and their sums per (category, rate).
    let mut groups: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut net_sum = 0i64;
    for (i, l) in doc.lines.iter().enumerate() {
        let f = |what: &str| format!("lines[{i}].{what}");
        if l.id.trim().is_empty() {
            err(&f("id"), "is empty".into());
        }
        if l.name.trim().is_empty() {
            err(&f("name"), "is empty".into());
        }
        if l.unit_code.trim().is_empty() {
            err(&f("unit_code"), "is empty".into());
        }
        if l.unit_price_cents < 0 {
            err(&f("unit_price_cents"), "a price is never negative (BR-27); use a negative quantity".into());
        }
        // qty × price, rounded half away from zero to the cent.
        let exact = l.quantity_milli as i128 * l.unit_price_cents as i128;
        let expected = ((exact.abs() + 500) / 1000 * exact.signum()) as i64;
        if (expected - l.net_cents).abs() > 1 {
            err(&f("net_cents"), format!("{} but quantity × unit price is {expected}", l.net_cents));
        }
        category_rate(&f("vat_category"), &f("vat_rate_bp"), &l.vat_category, l.vat_rate_bp, &mut err);
        if let Some((start, end)) = l.period {
            if end < start {
                err(&f("period"), "ends before it starts".into());
            }
        }
        *groups.entry((l.vat_category.clone(), l.vat_rate_bp)).or_default() += l.net_cents;
        net_sum += l.net_cents;
    }
    if net_sum != doc.totals.net_cents {
        err("totals.net_cents", format!("{} but the lines sum to {net_sum}", doc.totals.net_cents));
    }

    // The VAT breakdown: one per (category, rate) of the lines, each matching them.
    let mut vat_sum = 0i64;
    let mut seen = BTreeMap::new();
    for (i, v) in doc.vat.iter().enumerate() {
        let f = |what: &str| format!("vat[{i}].{what}");
        category_rate(&f("category"), &f("rate_bp"), &v.category, v.rate_bp, &mut err);
        let key = (v.category.clone(), v.rate_bp);
        if seen.insert(key.clone(), i).is_some() {
            err(&f("category"), format!("{} at {} appears twice in the breakdown", v.category, v.rate_bp));
        }
        match groups.get(&key) {
            None => err(&f("category"), format!("no line has VAT {} at {}", v.category, v.rate_bp)),
            Some(&basis) if basis != v.basis_cents => err(
                &f("basis_cents"),
                format!("{} but the lines of {} at {} sum to {basis}", v.basis_cents, v.category, v.rate_bp),
            ),
            _ => {}
        }
        let exact = v.basis_cents as i128 * v.rate_bp as i128;
        let expected = ((exact.abs() + 5000) / 10000 * exact.signum()) as i64;
        if (expected - v.vat_cents).abs() > 1 {
            err(&f("vat_cents"), format!("{} but basis × rate is {expected}", v.vat_cents));
        }
        let exempt = matches!(v.category.as_str(), "E" | "AE" | "K" | "G" | "O");
        let reason = v.exemption_reason.as_deref().is_some_and(|r| !r.trim().is_empty());
        if exempt && !reason {
            err(&f("exemption_reason"), format!("category {} needs an exemption reason", v.category));
        }
        if !exempt && reason {
            err(&f("exemption_reason"), format!("category {} takes no exemption reason", v.category));
        }
        vat_sum += v.vat_cents;
    }
    for (cat, rate) in groups.keys() {
        if !seen.contains_key(&(cat.clone(), *rate)) {
            err("vat", format!("no breakdown for the lines with VAT {cat} at {rate}"));
        }
    }
    if vat_sum != doc.totals.vat_cents {
        err("totals.vat_cents", format!("{} but the breakdown sums to {vat_sum}", doc.totals.vat_cents));
    }
    let t = &doc.totals;
    if t.gross_cents != t.net_cents + t.vat_cents {
        err("totals.gross_cents", format!("{} but net + VAT is {}", t.gross_cents, t.net_cents + t.vat_cents));
    }
    if t.due_cents != t.gross_cents - t.prepaid_cents {
        err("totals.due_cents", format!("{} but gross − prepaid is {}", t.due_cents, t.gross_cents - t.prepaid_cents));
    }

    if doc.kind != DocKind::Quote {
        e_invoice_rules(doc, &groups, &mut err);
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn party(name: &str, p: &Party, err: &mut impl FnMut(&str, String)) {
    if p.name.trim().is_empty() {
        err(&format!("{name}.name"), "is empty".into());
    }
    if p.country.len() != 2 || !p.country.bytes().all(|b| b.is_ascii_uppercase()) {
        err(&format!("{name}.country"), format!("{:?} is not an ISO 3166-1 alpha-2 code", p.country));
    }
    if let Some(s) = &p.siren {
        if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            err(&format!("{name}.siren"), "a SIREN has 9 digits".into());
        }
    }
    if let Some(s) = &p.siret {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
            err(&format!("{name}.siret"), "a SIRET has 14 digits".into());
        } else if let Some(siren) = &p.siren {
            if !s.starts_with(siren.as_str()) {
                err(&format!("{name}.siret"), "does not start with the SIREN".into());
            }
        }
    }
    if let Some(v) = &p.vat_number {
        if v.len() < 4 || !v.as_bytes()[..2].iter().all(|b| b.is_ascii_uppercase()) {
            err(&format!("{name}.vat_number"), "a VAT number starts with its country prefix".into());
        }
    }
}

fn category_rate(cat_field: &str, rate_field: &str, cat: &str, rate: i64, err: &mut impl FnMut(&str, String)) {
    if !CATEGORIES.contains(&cat) {
        err(cat_field, format!("{cat:?} is not one of {}", CATEGORIES.join(", ")));
    } else if cat == "S" && rate <= 0 {
        err(rate_field, "standard-rated VAT needs a rate above zero (BR-S-05)".into());
    } else if cat != "S" && cat != "O" && rate != 0 {
        err(rate_field, format!("category {cat} has a rate of zero"));
    } else if cat == "O" && rate != 0 {
        err(rate_field, "category O (not subject to VAT) has no rate, give 0".into());
    }
    if !(0..=10000).contains(&rate) {
        err(rate_field, format!("{rate} is not between 0 and 10000 (100 %)"));
    }
}

/// The identifiers each VAT category requires of an e-invoice (EN 16931).
fn e_invoice_rules(doc: &Document, groups: &BTreeMap<(String, i64), i64>, err: &mut impl FnMut(&str, String)) {
    let has = |cat: &str| groups.keys().any(|(c, _)| c == cat);
    let seller_vat = doc.seller.vat_number.is_some();
    let buyer_vat = doc.buyer.vat_number.is_some();
    for cat in ["S", "Z", "E", "AE", "K", "G"] {
        if has(cat) && !seller_vat {
            err("seller.vat_number", format!("lines with VAT category {cat} need the seller's VAT number"));
        }
    }
    if (has("AE") || has("K")) && !buyer_vat {
        err("buyer.vat_number", "reverse charge and intra-community supplies need the buyer's VAT number".into());
    }
    if has("K") && doc.delivery_date.is_none() && doc.service_period.is_none() {
        err("delivery_date", "an intra-community supply needs a delivery date or an invoicing period".into());
    }
    if has("O") {
        if groups.len() > 1 {
            err("lines", "category O (not subject to VAT) cannot be mixed with other categories".into());
        }
        if seller_vat {
            err("seller.vat_number", "a document not subject to VAT (O) carries no seller VAT number".into());
        }
        if buyer_vat {
            err("buyer.vat_number", "a document not subject to VAT (O) carries no buyer VAT number".into());
        }
    }
    if doc.totals.due_cents > 0 && doc.due_date.is_none() && doc.payment_terms.is_none() {
        err("due_date", "an amount due needs a due date or payment terms (BR-CO-25)".into());
    }
    if let Some(p) = &doc.payment {
        if p.means_code.trim().is_empty() {
            err("payment.means_code", "is empty".into());
        }
        if matches!(p.means_code.as_str(), "30" | "58") && p.iban.is_none() {
            err("payment.iban", "a credit transfer needs the IBAN (BR-61)".into());
        }
    }
}
