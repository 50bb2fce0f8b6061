//! `check` refuses what does not add up, and says which field is wrong.

use crate::fixtures::*;
use shrooms_facturx::*;

fn errors(doc: &Document) -> Vec<String> {
    check(doc).expect_err("the document is inconsistent")
}

fn has(errors: &[String], field: &str) -> bool {
    errors.iter().any(|e| e.starts_with(&format!("{field}:")))
}

#[test]
fn the_samples_are_consistent() {
    for doc in [standard_invoice(), mixed_invoice(), exempt_invoice(), credit_note(), quote(), long_invoice()] {
        assert_eq!(check(&doc), Ok(()), "{}", doc.number);
    }
}

#[test]
fn a_line_net_that_is_not_quantity_times_price_is_named() {
    let mut doc = standard_invoice();
    doc.lines[1].net_cents += 100;
    let e = errors(&doc);
    assert!(has(&e, "lines[1].net_cents"), "{e:?}");
    // The sums then disagree too.
    assert!(has(&e, "totals.net_cents"), "{e:?}");
}

#[test]
fn totals_that_do_not_add_up_are_named() {
    let mut doc = standard_invoice();
    doc.totals.gross_cents += 1;
    assert!(has(&errors(&doc), "totals.gross_cents"));
    let mut doc = standard_invoice();
    doc.totals.due_cents = doc.totals.gross_cents;
    assert!(has(&errors(&doc), "totals.due_cents"));
    let mut doc = standard_invoice();
    doc.totals.vat_cents -= 10;
    doc.totals.gross_cents -= 10;
    doc.totals.due_cents -= 10;
    assert!(has(&errors(&doc), "totals.vat_cents"));
}

#[test]
fn the_vat_breakdown_must_match_the_lines() {
    let mut doc = mixed_invoice();
    doc.vat[1].basis_cents += 100;
    let e = errors(&doc);
    assert!(has(&e, "vat[1].basis_cents"), "{e:?}");
    let mut doc = mixed_invoice();
    doc.vat[0].vat_cents += 7;
    assert!(has(&errors(&doc), "vat[0].vat_cents"));
    let mut doc = mixed_invoice();
    let removed = doc.vat.pop().unwrap();
    doc.totals.vat_cents -= removed.vat_cents;
    doc.totals.gross_cents -= removed.vat_cents;
    doc.totals.due_cents -= removed.vat_cents;
    let e = errors(&doc);
    assert!(e.iter().any(|m| m.starts_with("vat:") && m.contains("S at 550")), "{e:?}");
    let mut doc = mixed_invoice();
    doc.vat[0].rate_bp = 1000;
    assert!(has(&errors(&doc), "vat[0].category"));
}

#[test]
fn exempt_categories_need_their_reason() {
    let mut doc = exempt_invoice();
    doc.vat[0].exemption_reason = None;
    let e = errors(&doc);
    assert!(has(&e, "vat[0].exemption_reason"), "{e:?}");
    let mut doc = exempt_invoice();
    doc.lines[0].vat_rate_bp = 2000;
    assert!(has(&errors(&doc), "lines[0].vat_rate_bp"));
}

#[test]
fn standard_rated_lines_need_the_sellers_vat_number() {
    let mut doc = standard_invoice();
    doc.seller.vat_number = None;
    assert!(has(&errors(&doc), "seller.vat_number"));
    // A quote is not an e-invoice: no VAT number needed to print it.
    let mut q = quote();
    q.seller.vat_number = None;
    assert_eq!(check(&q), Ok(()));
}

#[test]
fn identifiers_and_codes_are_checked() {
    let mut doc = standard_invoice();
    doc.seller.siren = Some("12345".into());
    doc.buyer.country = "France".into();
    doc.currency = "euro".into();
    doc.lines[0].vat_category = "X".into();
    let e = errors(&doc);
    for field in ["seller.siren", "buyer.country", "currency", "lines[0].vat_category"] {
        assert!(has(&e, field), "{field} in {e:?}");
    }
}

#[test]
fn an_amount_due_needs_a_due_date_or_terms() {
    let mut doc = standard_invoice();
    doc.due_date = None;
    doc.payment_terms = None;
    assert!(has(&errors(&doc), "due_date"));
}

#[test]
fn writers_refuse_inconsistent_documents() {
    let mut doc = standard_invoice();
    doc.totals.net_cents += 1;
    assert!(matches!(cii_xml(&doc), Err(Error::Inconsistent(e)) if has(&e, "totals.net_cents")));
    assert!(matches!(ubl_xml(&doc), Err(Error::Inconsistent(_))));
    assert!(matches!(pdf(&doc), Err(Error::Inconsistent(_))));
}
