//! The UN/CEFACT Cross Industry Invoice (D16B) as Factur-X profile EN 16931
//! restricts it. Element order follows the schema's sequences, which the XSD
//! check in the tests enforces.

use crate::format::{date_102, decimal_cents, decimal_milli, decimal_rate};
use crate::xml::Xml;
use crate::{Document, Party};

const RSM: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
const QDT: &str = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100";
const RAM: &str = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
const UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";

/// The guideline (BT-24) of the EN 16931 profile.
pub(crate) const GUIDELINE: &str = "urn:cen.eu:en16931:2017";

fn date(x: &mut Xml, element: &'static str, d: time::Date) {
    x.open(element, &[]);
    x.text("udt:DateTimeString", &[("format", "102")], &date_102(d));
    x.close();
}

fn party(x: &mut Xml, element: &'static str, p: &Party) {
    x.open(element, &[]);
    if let Some(siret) = &p.siret {
        x.text("ram:GlobalID", &[("schemeID", "0009")], siret);
    }
    x.text("ram:Name", &[], &p.name);
    if let Some(siren) = &p.siren {
        x.open("ram:SpecifiedLegalOrganization", &[]);
        x.text("ram:ID", &[("schemeID", "0002")], siren);
        x.close();
    }
    x.open("ram:PostalTradeAddress", &[]);
    x.opt("ram:PostcodeCode", Some(&p.postcode));
    // Three address lines in CII; any further ones join the third.
    let lines: Vec<&str> = p.address_lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    for (i, element) in ["ram:LineOne", "ram:LineTwo", "ram:LineThree"].into_iter().enumerate() {
        let text =
            if i == 2 { lines.get(2..).map(|rest| rest.join(", ")) } else { lines.get(i).map(|l| l.to_string()) };
        x.opt(element, text.as_deref());
    }
    x.opt("ram:CityName", Some(&p.city));
    x.text("ram:CountryID", &[], &p.country);
    x.close();
    if let Some(email) = &p.email {
        x.open("ram:URIUniversalCommunication", &[]);
        x.text("ram:URIID", &[("schemeID", "EM")], email);
        x.close();
    }
    if let Some(vat) = &p.vat_number {
        x.open("ram:SpecifiedTaxRegistration", &[]);
        x.text("ram:ID", &[("schemeID", "VA")], vat);
        x.close();
    }
    x.close();
}

fn period(x: &mut Xml, (start, end): (time::Date, time::Date)) {
    x.open("ram:BillingSpecifiedPeriod", &[]);
    date(x, "ram:StartDateTime", start);
    date(x, "ram:EndDateTime", end);
    x.close();
}

pub(crate) fn write(doc: &Document) -> String {
    let type_code = doc.kind.type_code().expect("quotes are refused before");
    let cur = doc.currency.as_str();
    let mut x = Xml::new();
    x.open(
        "rsm:CrossIndustryInvoice",
        &[("xmlns:rsm", RSM), ("xmlns:qdt", QDT), ("xmlns:ram", RAM), ("xmlns:udt", UDT)],
    );

    x.open("rsm:ExchangedDocumentContext", &[]);
    x.open("ram:GuidelineSpecifiedDocumentContextParameter", &[]);
    x.text("ram:ID", &[], GUIDELINE);
    x.close();
    x.close();

    x.open("rsm:ExchangedDocument", &[]);
    x.text("ram:ID", &[], &doc.number);
    x.text("ram:TypeCode", &[], type_code);
    date(&mut x, "ram:IssueDateTime", doc.issue_date);
    for note in doc.notes.iter().filter(|n| !n.trim().is_empty()) {
        x.open("ram:IncludedNote", &[]);
        x.text("ram:Content", &[], note);
        x.close();
    }
    x.close();

    x.open("rsm:SupplyChainTradeTransaction", &[]);
    for l in &doc.lines {
        x.open("ram:IncludedSupplyChainTradeLineItem", &[]);
        x.open("ram:AssociatedDocumentLineDocument", &[]);
        x.text("ram:LineID", &[], &l.id);
        x.close();
        x.open("ram:SpecifiedTradeProduct", &[]);
        x.text("ram:Name", &[], &l.name);
        x.opt("ram:Description", l.description.as_deref());
        x.close();
        x.open("ram:SpecifiedLineTradeAgreement", &[]);
        x.open("ram:NetPriceProductTradePrice", &[]);
        x.text("ram:ChargeAmount", &[], &decimal_cents(l.unit_price_cents));
        x.close();
        x.close();
        x.open("ram:SpecifiedLineTradeDelivery", &[]);
        x.text("ram:BilledQuantity", &[("unitCode", &l.unit_code)], &decimal_milli(l.quantity_milli));
        x.close();
        x.open("ram:SpecifiedLineTradeSettlement", &[]);
        x.open("ram:ApplicableTradeTax", &[]);
        x.text("ram:TypeCode", &[], "VAT");
        x.text("ram:CategoryCode", &[], &l.vat_category);
        if l.vat_category != "O" {
            x.text("ram:RateApplicablePercent", &[], &decimal_rate(l.vat_rate_bp));
        }
        x.close();
        if let Some(p) = l.period {
            period(&mut x, p);
        }
        x.open("ram:SpecifiedTradeSettlementLineMonetarySummation", &[]);
        x.text("ram:LineTotalAmount", &[], &decimal_cents(l.net_cents));
        x.close();
        x.close();
        x.close();
    }

    x.open("ram:ApplicableHeaderTradeAgreement", &[]);
    x.opt("ram:BuyerReference", doc.buyer_reference.as_deref());
    party(&mut x, "ram:SellerTradeParty", &doc.seller);
    party(&mut x, "ram:BuyerTradeParty", &doc.buyer);
    x.close();

    x.open("ram:ApplicableHeaderTradeDelivery", &[]);
    if let Some(d) = doc.delivery_date {
        x.open("ram:ActualDeliverySupplyChainEvent", &[]);
        date(&mut x, "ram:OccurrenceDateTime", d);
        x.close();
    }
    x.close();

    x.open("ram:ApplicableHeaderTradeSettlement", &[]);
    if let Some(p) = &doc.payment {
        x.opt("ram:PaymentReference", p.remittance.as_deref());
    }
    x.text("ram:InvoiceCurrencyCode", &[], cur);
    if let Some(p) = &doc.payment {
        x.open("ram:SpecifiedTradeSettlementPaymentMeans", &[]);
        x.text("ram:TypeCode", &[], &p.means_code);
        if let Some(iban) = &p.iban {
            x.open("ram:PayeePartyCreditorFinancialAccount", &[]);
            x.text("ram:IBANID", &[], &iban.replace(' ', ""));
            x.close();
        }
        if let Some(bic) = &p.bic {
            x.open("ram:PayeeSpecifiedCreditorFinancialInstitution", &[]);
            x.text("ram:BICID", &[], bic);
            x.close();
        }
        x.close();
    }
    for v in &doc.vat {
        x.open("ram:ApplicableTradeTax", &[]);
        x.text("ram:CalculatedAmount", &[], &decimal_cents(v.vat_cents));
        x.text("ram:TypeCode", &[], "VAT");
        x.opt("ram:ExemptionReason", v.exemption_reason.as_deref());
        x.text("ram:BasisAmount", &[], &decimal_cents(v.basis_cents));
        x.text("ram:CategoryCode", &[], &v.category);
        if v.category != "O" {
            x.text("ram:RateApplicablePercent", &[], &decimal_rate(v.rate_bp));
        }
        x.close();
    }
    if let Some(p) = doc.service_period {
        period(&mut x, p);
    }
    if doc.payment_terms.is_some() || doc.due_date.is_some() {
        x.open("ram:SpecifiedTradePaymentTerms", &[]);
        x.opt("ram:Description", doc.payment_terms.as_deref());
        if let Some(d) = doc.due_date {
            date(&mut x, "ram:DueDateDateTime", d);
        }
        x.close();
    }
    let t = &doc.totals;
    x.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation", &[]);
    x.text("ram:LineTotalAmount", &[], &decimal_cents(t.net_cents));
    x.text("ram:TaxBasisTotalAmount", &[], &decimal_cents(t.net_cents));
    x.text("ram:TaxTotalAmount", &[("currencyID", cur)], &decimal_cents(t.vat_cents));
    x.text("ram:GrandTotalAmount", &[], &decimal_cents(t.gross_cents));
    if t.prepaid_cents != 0 {
        x.text("ram:TotalPrepaidAmount", &[], &decimal_cents(t.prepaid_cents));
    }
    x.text("ram:DuePayableAmount", &[], &decimal_cents(t.due_cents));
    x.close();
    if let Some((number, issued)) = &doc.preceding_invoice {
        x.open("ram:InvoiceReferencedDocument", &[]);
        x.text("ram:IssuerAssignedID", &[], number);
        x.open("ram:FormattedIssueDateTime", &[]);
        x.text("qdt:DateTimeString", &[("format", "102")], &date_102(*issued));
        x.close();
        x.close();
    }
    x.close();

    x.close();
    x.close();
    x.finish()
}
