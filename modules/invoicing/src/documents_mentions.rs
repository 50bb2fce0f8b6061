//! The legal mentions of a document, in its language (French or English):
//! the seller's identity (legal form, capital, SIREN, RCS, VAT number), the
//! operation category, exemptions, payment terms, late-payment penalties
//! and, for business customers, the 40 € recovery indemnity
//! (Code de commerce, art. L441-10 and D441-5), and the reference of the
//! invoice a credit note corrects.

use crate::documents::Document;

fn fr(d: &Document) -> bool {
    d.lang != "en"
}

/// Mentions printed at the foot of the document, in order.
pub fn mentions(d: &Document) -> Vec<String> {
    let fr = fr(d);
    let mut out = Vec::new();
    let Some(seller) = d.seller.as_ref() else { return out };
    let mut id = vec![seller.name.clone()];
    if !seller.legal_form.is_empty() {
        id.push(seller.legal_form.clone());
    }
    if !seller.share_capital.is_empty() {
        id.push(if fr {
            format!("au capital de {}", seller.share_capital)
        } else {
            format!("share capital {}", seller.share_capital)
        });
    }
    if !seller.siren.is_empty() {
        id.push(format!("SIREN {}", seller.siren));
    }
    if !seller.rcs.is_empty() {
        id.push(seller.rcs.clone());
    }
    if !seller.vat_number.is_empty() {
        id.push(if fr {
            format!("TVA intracommunautaire {}", seller.vat_number)
        } else {
            format!("VAT {}", seller.vat_number)
        });
    }
    out.push(id.join(" — "));
    let category = match (d.operation_category.as_str(), fr) {
        ("goods", true) => "Catégorie de l'opération : livraison de biens",
        ("goods", false) => "Operation category: supply of goods",
        ("mixed", true) => "Catégorie de l'opération : livraison de biens et prestation de services",
        ("mixed", false) => "Operation category: supply of goods and services",
        (_, true) => "Catégorie de l'opération : prestation de services",
        (_, false) => "Operation category: supply of services",
    };
    out.push(category.to_string());
    let mut reasons: Vec<String> = d.vat.iter().filter_map(|v| v.exemption_reason.clone()).collect();
    reasons.dedup();
    out.extend(reasons);
    if d.kind == "credit_note" {
        if let (Some(n), Some(date)) = (&d.origin_number, &d.origin_issue_date) {
            out.push(if fr {
                format!("Avoir se rapportant à la facture {n} du {date}.")
            } else {
                format!("Credit note for invoice {n} of {date}.")
            });
        }
        return out;
    }
    if d.kind == "quote" {
        if let Some(v) = &d.valid_until {
            out.push(if fr { format!("Devis valable jusqu'au {v}.") } else { format!("Quote valid until {v}.") });
        }
        return out;
    }
    if let Some(due) = &d.due_date {
        out.push(if fr { format!("Date d'échéance : {due}.") } else { format!("Due date: {due}.") });
    }
    out.push(if fr { "Pas d'escompte pour paiement anticipé." } else { "No discount for early payment." }.to_string());
    let business = d.buyer.as_ref().is_some_and(|b| b.kind == "business");
    if business {
        let penalty = if seller.late_penalty.is_empty() {
            if fr {
                "Pénalités de retard : trois fois le taux d'intérêt légal, exigibles dès le lendemain de l'échéance."
                    .to_string()
            } else {
                "Late-payment penalties: three times the French legal interest rate, due from the day after the due date.".to_string()
            }
        } else if fr {
            format!("Pénalités de retard : {}", seller.late_penalty)
        } else {
            format!("Late-payment penalties: {}", seller.late_penalty)
        };
        out.push(penalty);
        out.push(
            if fr {
                "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 € (art. L441-10 et D441-5 du Code de commerce)."
            } else {
                "Fixed compensation for recovery costs in case of late payment: €40 (French Commercial Code, art. L441-10 and D441-5)."
            }
            .to_string(),
        );
    }
    out
}
