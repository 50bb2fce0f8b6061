//! The XML against the official schemas, and what it must say.

use crate::fixtures::*;
use crate::tools::*;
use shrooms_facturx::*;

fn cii_valid(name: &str, doc: &Document) -> String {
    let xml = cii_xml(doc).unwrap();
    if python_ready() {
        let path = write(&format!("{name}-cii.xml"), xml.as_bytes());
        let out = validate(&["cii", path.to_str().unwrap()]);
        eprintln!("{name}: {out}");
    }
    xml
}

fn ubl_valid(name: &str, doc: &Document) -> String {
    let xml = ubl_xml(doc).unwrap();
    if python_ready() {
        let path = write(&format!("{name}-ubl.xml"), xml.as_bytes());
        let out = validate(&["ubl", path.to_str().unwrap()]);
        eprintln!("{name}: {out}");
    }
    xml
}

#[test]
fn a_standard_rated_invoice_is_valid_cii() {
    let xml = cii_valid("standard", &standard_invoice());
    assert!(xml.contains("<ram:ID>urn:cen.eu:en16931:2017</ram:ID>"));
    assert!(xml.contains("<ram:TypeCode>380</ram:TypeCode>"));
    assert!(xml.contains(r#"<udt:DateTimeString format="102">20261121</udt:DateTimeString>"#));
    // 1.5 days at 333.33: 499.995 rounds to 500.00.
    assert!(xml.contains(r#"<ram:BilledQuantity unitCode="DAY">1.5</ram:BilledQuantity>"#), "{xml}");
    assert!(xml.contains("<ram:LineTotalAmount>500.00</ram:LineTotalAmount>"));
    assert!(xml.contains("<ram:TotalPrepaidAmount>50.00</ram:TotalPrepaidAmount>"));
    assert!(xml.contains("<ram:IBANID>FR7630006000011234567890189</ram:IBANID>"), "IBAN without spaces");
    assert!(xml.contains(r#"<ram:ID schemeID="0002">732829320</ram:ID>"#));
    assert!(xml.contains(r#"<ram:ID schemeID="VA">FR44732829320</ram:ID>"#));
    assert!(xml.contains("indemnité forfaitaire de 40 €"));
}

#[test]
fn a_mixed_rate_invoice_is_valid_cii_with_one_breakdown_per_rate() {
    let doc = mixed_invoice();
    let xml = cii_valid("mixed", &doc);
    assert!(xml.contains("<ram:RateApplicablePercent>5.50</ram:RateApplicablePercent>"));
    assert_eq!(xml.matches("<ram:CalculatedAmount>").count(), 2);
    // 3 × 19.90 + 4 × 12.99 = 111.66 at 5.5 % = 6.1413 → 6.14.
    assert!(xml.contains("<ram:CalculatedAmount>6.14</ram:CalculatedAmount>"), "{xml}");
    assert!(xml.contains("<ram:OccurrenceDateTime>"));
}

#[test]
fn an_exempt_invoice_is_valid_cii_with_its_reason() {
    let xml = cii_valid("exempt", &exempt_invoice());
    assert!(xml.contains("<ram:ExemptionReason>TVA non applicable, art. 293 B du CGI</ram:ExemptionReason>"));
    assert!(xml.contains("<ram:CategoryCode>E</ram:CategoryCode>"));
    assert!(xml.contains(r#"<ram:TaxTotalAmount currencyID="EUR">0.00</ram:TaxTotalAmount>"#));
}

#[test]
fn a_credit_note_is_valid_cii_and_names_the_invoice_it_corrects() {
    let xml = cii_valid("credit", &credit_note());
    assert!(xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
    assert!(xml.contains("<ram:IssuerAssignedID>F2026-0042</ram:IssuerAssignedID>"));
    assert!(xml.contains(r#"<qdt:DateTimeString format="102">20261121</qdt:DateTimeString>"#));
}

#[test]
fn ubl_invoices_and_credit_notes_are_valid() {
    for (name, doc) in [
        ("standard", standard_invoice()),
        ("mixed", mixed_invoice()),
        ("exempt", exempt_invoice()),
        ("credit", credit_note()),
    ] {
        let xml = ubl_valid(name, &doc);
        let credit = doc.kind == DocKind::CreditNote;
        assert!(xml.contains(if credit { "<CreditNote xmlns=" } else { "<Invoice xmlns=" }), "{name}");
        assert!(xml.contains("<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>"));
    }
}

#[test]
fn text_is_escaped() {
    let mut doc = standard_invoice();
    doc.lines[0].name = "Tom & Jerry <cotisation> \"duo\"".into();
    let xml = cii_xml(&doc).unwrap();
    assert!(xml.contains("Tom &amp; Jerry &lt;cotisation&gt; &quot;duo&quot;"));
    let ubl = ubl_xml(&doc).unwrap();
    assert!(ubl.contains("Tom &amp; Jerry"));
}

#[test]
fn quotes_have_no_xml() {
    assert_eq!(cii_xml(&quote()), Err(Error::QuoteHasNoXml));
    assert_eq!(ubl_xml(&quote()), Err(Error::QuoteHasNoXml));
}
