//! OASIS UBL 2.1 Invoice and CreditNote with the EN 16931 customization.
//! Element order follows the UBL 2.1 schemas (checked by the tests' XSD run).

use crate::format::{date_iso, decimal_cents, decimal_milli, decimal_rate};
use crate::xml::Xml;
use crate::{DocKind, Document, Party};

const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

fn party(x: &mut Xml, element: &'static str, p: &Party) {
    x.open(element, &[]);
    x.open("cac:Party", &[]);
    if let Some(email) = &p.email {
        x.text("cbc:EndpointID", &[("schemeID", "EM")], email);
    }
    if let Some(siret) = &p.siret {
        x.open("cac:PartyIdentification", &[]);
        x.text("cbc:ID", &[("schemeID", "0009")], siret);
        x.close();
    }
    x.open("cac:PostalAddress", &[]);
    let lines: Vec<&str> = p.address_lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    x.opt("cbc:StreetName", lines.first().copied());
    x.opt("cbc:AdditionalStreetName", lines.get(1).copied());
    x.opt("cbc:CityName", Some(p.city.as_str()));
    x.opt("cbc:PostalZone", Some(p.postcode.as_str()));
    if lines.len() > 2 {
        x.open("cac:AddressLine", &[]);
        x.text("cbc:Line", &[], &lines[2..].join(", "));
        x.close();
    }
    x.open("cac:Country", &[]);
    x.text("cbc:IdentificationCode", &[], &p.country);
    x.close();
    x.close();
    if let Some(vat) = &p.vat_number {
        x.open("cac:PartyTaxScheme", &[]);
        x.text("cbc:CompanyID", &[], vat);
        x.open("cac:TaxScheme", &[]);
        x.text("cbc:ID", &[], "VAT");
        x.close();
        x.close();
    }
    x.open("cac:PartyLegalEntity", &[]);
    x.text("cbc:RegistrationName", &[], &p.name);
    if let Some(siren) = &p.siren {
        x.text("cbc:CompanyID", &[("schemeID", "0002")], siren);
    }
    x.close();
    x.close();
    x.close();
}

fn tax_category(x: &mut Xml, element: &'static str, category: &str, rate_bp: i64, reason: Option<&str>) {
    x.open(element, &[]);
    x.text("cbc:ID", &[], category);
    if category != "O" {
        x.text("cbc:Percent", &[], &decimal_rate(rate_bp));
    }
    x.opt("cbc:TaxExemptionReason", reason);
    x.open("cac:TaxScheme", &[]);
    x.text("cbc:ID", &[], "VAT");
    x.close();
    x.close();
}

fn period(x: &mut Xml, (start, end): (time::Date, time::Date)) {
    x.open("cac:InvoicePeriod", &[]);
    x.text("cbc:StartDate", &[], &date_iso(start));
    x.text("cbc:EndDate", &[], &date_iso(end));
    x.close();
}

pub(crate) fn write(doc: &Document) -> String {
    let credit = doc.kind == DocKind::CreditNote;
    let (root, ns, line_el, qty_el) = if credit {
        (
            "CreditNote",
            "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
            "cac:CreditNoteLine",
            "cbc:CreditedQuantity",
        )
    } else {
        ("Invoice", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "cac:InvoiceLine", "cbc:InvoicedQuantity")
    };
    let cur = doc.currency.as_str();
    let money = [("currencyID", cur)];
    let mut x = Xml::new();
    x.open(root, &[("xmlns", ns), ("xmlns:cac", CAC), ("xmlns:cbc", CBC)]);
    x.text("cbc:CustomizationID", &[], crate::cii::GUIDELINE);
    x.text("cbc:ID", &[], &doc.number);
    x.text("cbc:IssueDate", &[], &date_iso(doc.issue_date));
    if let (false, Some(d)) = (credit, doc.due_date) {
        x.text("cbc:DueDate", &[], &date_iso(d));
    }
    x.text(if credit { "cbc:CreditNoteTypeCode" } else { "cbc:InvoiceTypeCode" }, &[], doc.kind.type_code().unwrap());
    for note in doc.notes.iter().filter(|n| !n.trim().is_empty()) {
        x.text("cbc:Note", &[], note);
    }
    x.text("cbc:DocumentCurrencyCode", &[], cur);
    x.opt("cbc:BuyerReference", doc.buyer_reference.as_deref());
    if let Some(p) = doc.service_period {
        period(&mut x, p);
    }
    if let Some((number, issued)) = &doc.preceding_invoice {
        x.open("cac:BillingReference", &[]);
        x.open("cac:InvoiceDocumentReference", &[]);
        x.text("cbc:ID", &[], number);
        x.text("cbc:IssueDate", &[], &date_iso(*issued));
        x.close();
        x.close();
    }
    party(&mut x, "cac:AccountingSupplierParty", &doc.seller);
    party(&mut x, "cac:AccountingCustomerParty", &doc.buyer);
    if let Some(d) = doc.delivery_date {
        x.open("cac:Delivery", &[]);
        x.text("cbc:ActualDeliveryDate", &[], &date_iso(d));
        x.close();
    }
    if let Some(p) = &doc.payment {
        x.open("cac:PaymentMeans", &[]);
        x.text("cbc:PaymentMeansCode", &[], &p.means_code);
        if let (true, Some(d)) = (credit, doc.due_date) {
            x.text("cbc:PaymentDueDate", &[], &date_iso(d));
        }
        x.opt("cbc:PaymentID", p.remittance.as_deref());
        if let Some(iban) = &p.iban {
            x.open("cac:PayeeFinancialAccount", &[]);
            x.text("cbc:ID", &[], &iban.replace(' ', ""));
            if let Some(bic) = &p.bic {
                x.open("cac:FinancialInstitutionBranch", &[]);
                x.text("cbc:ID", &[], bic);
                x.close();
            }
            x.close();
        }
        x.close();
    }
    if let Some(terms) = &doc.payment_terms {
        x.open("cac:PaymentTerms", &[]);
        x.text("cbc:Note", &[], terms);
        x.close();
    }
    let t = &doc.totals;
    x.open("cac:TaxTotal", &[]);
    x.text("cbc:TaxAmount", &money, &decimal_cents(t.vat_cents));
    for v in &doc.vat {
        x.open("cac:TaxSubtotal", &[]);
        x.text("cbc:TaxableAmount", &money, &decimal_cents(v.basis_cents));
        x.text("cbc:TaxAmount", &money, &decimal_cents(v.vat_cents));
        tax_category(&mut x, "cac:TaxCategory", &v.category, v.rate_bp, v.exemption_reason.as_deref());
        x.close();
    }
    x.close();
    x.open("cac:LegalMonetaryTotal", &[]);
    x.text("cbc:LineExtensionAmount", &money, &decimal_cents(t.net_cents));
    x.text("cbc:TaxExclusiveAmount", &money, &decimal_cents(t.net_cents));
    x.text("cbc:TaxInclusiveAmount", &money, &decimal_cents(t.gross_cents));
    if t.prepaid_cents != 0 {
        x.text("cbc:PrepaidAmount", &money, &decimal_cents(t.prepaid_cents));
    }
    x.text("cbc:PayableAmount", &money, &decimal_cents(t.due_cents));
    x.close();
    for l in &doc.lines {
        x.open(line_el, &[]);
        x.text("cbc:ID", &[], &l.id);
        x.text(qty_el, &[("unitCode", &l.unit_code)], &decimal_milli(l.quantity_milli));
        x.text("cbc:LineExtensionAmount", &money, &decimal_cents(l.net_cents));
        if let Some(p) = l.period {
            period(&mut x, p);
        }
        x.open("cac:Item", &[]);
        x.opt("cbc:Description", l.description.as_deref());
        x.text("cbc:Name", &[], &l.name);
        tax_category(&mut x, "cac:ClassifiedTaxCategory", &l.vat_category, l.vat_rate_bp, None);
        x.close();
        x.open("cac:Price", &[]);
        x.text("cbc:PriceAmount", &money, &decimal_cents(l.unit_price_cents));
        x.close();
        x.close();
    }
    x.close();
    x.finish()
}
