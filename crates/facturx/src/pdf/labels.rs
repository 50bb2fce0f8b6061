//! The printed words, in French and in English.

use crate::{DocKind, Lang};

pub(crate) struct Labels {
    pub(crate) invoice: &'static str,
    pub(crate) credit_note: &'static str,
    pub(crate) quote: &'static str,
    pub(crate) number: &'static str,
    pub(crate) issue_date: &'static str,
    pub(crate) due_date: &'static str,
    pub(crate) valid_until: &'static str,
    pub(crate) delivery_date: &'static str,
    pub(crate) service_period: &'static str,
    pub(crate) seller: &'static str,
    pub(crate) buyer: &'static str,
    pub(crate) vat_number: &'static str,
    pub(crate) buyer_reference: &'static str,
    pub(crate) corrects: &'static str,
    pub(crate) of_date: &'static str,
    pub(crate) continued: &'static str,
    pub(crate) col_description: &'static str,
    pub(crate) col_quantity: &'static str,
    pub(crate) col_unit: &'static str,
    pub(crate) col_unit_price: &'static str,
    pub(crate) col_vat: &'static str,
    pub(crate) col_net: &'static str,
    pub(crate) period: &'static str,
    pub(crate) vat_breakdown: &'static str,
    pub(crate) vat_basis: &'static str,
    pub(crate) vat_amount: &'static str,
    pub(crate) total_net: &'static str,
    pub(crate) total_vat: &'static str,
    pub(crate) total_gross: &'static str,
    pub(crate) prepaid: &'static str,
    pub(crate) due: &'static str,
    pub(crate) payment: &'static str,
    pub(crate) means: &'static str,
    pub(crate) remittance: &'static str,
    pub(crate) payment_terms: &'static str,
    pub(crate) notes: &'static str,
    pub(crate) page: &'static str,
}

const FR: Labels = Labels {
    invoice: "Facture",
    credit_note: "Avoir",
    quote: "Devis",
    number: "N°",
    issue_date: "Date d’émission",
    due_date: "Échéance",
    valid_until: "Valable jusqu’au",
    delivery_date: "Date de livraison",
    service_period: "Période de prestation",
    seller: "ÉMETTEUR",
    buyer: "CLIENT",
    vat_number: "N° TVA",
    buyer_reference: "Référence client",
    corrects: "Avoir sur la facture",
    of_date: "du",
    continued: "suite",
    col_description: "Désignation",
    col_quantity: "Qté",
    col_unit: "Unité",
    col_unit_price: "Prix unit. HT",
    col_vat: "TVA",
    col_net: "Montant HT",
    period: "Période",
    vat_breakdown: "TVA",
    vat_basis: "Base HT",
    vat_amount: "Montant TVA",
    total_net: "Total HT",
    total_vat: "Total TVA",
    total_gross: "Total TTC",
    prepaid: "Déjà réglé",
    due: "Net à payer",
    payment: "Règlement",
    means: "Moyen de paiement",
    remittance: "Référence à rappeler",
    payment_terms: "Conditions",
    notes: "Mentions légales",
    page: "Page",
};

const EN: Labels = Labels {
    invoice: "Invoice",
    credit_note: "Credit note",
    quote: "Quote",
    number: "No.",
    issue_date: "Issue date",
    due_date: "Due date",
    valid_until: "Valid until",
    delivery_date: "Delivery date",
    service_period: "Service period",
    seller: "FROM",
    buyer: "BILL TO",
    vat_number: "VAT no.",
    buyer_reference: "Your reference",
    corrects: "Credit note for invoice",
    of_date: "of",
    continued: "continued",
    col_description: "Description",
    col_quantity: "Qty",
    col_unit: "Unit",
    col_unit_price: "Unit price",
    col_vat: "VAT",
    col_net: "Net amount",
    period: "Period",
    vat_breakdown: "VAT",
    vat_basis: "Taxable amount",
    vat_amount: "VAT amount",
    total_net: "Total net",
    total_vat: "Total VAT",
    total_gross: "Total incl. VAT",
    prepaid: "Already paid",
    due: "Amount due",
    payment: "Payment",
    means: "Payment means",
    remittance: "Payment reference",
    payment_terms: "Terms",
    notes: "Legal notes",
    page: "Page",
};

pub(crate) fn labels(lang: Lang) -> &'static Labels {
    match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
    }
}

impl Labels {
    pub(crate) fn title(&self, kind: DocKind) -> &'static str {
        match kind {
            DocKind::Invoice => self.invoice,
            DocKind::CreditNote => self.credit_note,
            DocKind::Quote => self.quote,
        }
    }
}

/// UNTDID 4461 payment means people recognise; others print their code.
pub(crate) fn payment_means(code: &str, lang: Lang) -> String {
    let (fr, en) = match code {
        "10" => ("Espèces", "Cash"),
        "20" => ("Chèque", "Cheque"),
        "30" => ("Virement", "Credit transfer"),
        "42" => ("Virement sur compte bancaire", "Payment to bank account"),
        "48" => ("Carte bancaire", "Bank card"),
        "49" => ("Prélèvement", "Direct debit"),
        "57" => ("Ordre permanent", "Standing agreement"),
        "58" => ("Virement SEPA", "SEPA credit transfer"),
        "59" => ("Prélèvement SEPA", "SEPA direct debit"),
        "97" => ("Compensation", "Clearing between partners"),
        _ => return code.to_string(),
    };
    match lang {
        Lang::Fr => fr.into(),
        Lang::En => en.into(),
    }
}

/// UN/ECE Recommendation 20 units people recognise; others print their code.
pub(crate) fn unit(code: &str, lang: Lang) -> String {
    let (fr, en) = match code {
        "C62" | "H87" | "EA" => ("u.", "pc"),
        "HUR" => ("h", "h"),
        "MIN" => ("min", "min"),
        "DAY" => ("jour", "day"),
        "WEE" => ("semaine", "week"),
        "MON" => ("mois", "month"),
        "ANN" => ("an", "year"),
        "KGM" => ("kg", "kg"),
        "GRM" => ("g", "g"),
        "MTR" => ("m", "m"),
        "KMT" => ("km", "km"),
        "MTK" => ("m²", "m²"),
        "LTR" => ("l", "l"),
        "E48" => ("service", "service"),
        "LS" => ("forfait", "lump sum"),
        _ => return code.to_string(),
    };
    match lang {
        Lang::Fr => fr.into(),
        Lang::En => en.into(),
    }
}

/// How a VAT category without a rate reads in the breakdown.
pub(crate) fn category(code: &str, lang: Lang) -> Option<&'static str> {
    let (fr, en) = match code {
        "Z" => ("Taux zéro", "Zero rated"),
        "E" => ("Exonéré", "Exempt"),
        "AE" => ("Autoliquidation", "Reverse charge"),
        "K" => ("Livraison intracommunautaire", "Intra-community supply"),
        "G" => ("Exportation", "Export outside the EU"),
        "O" => ("Hors champ de la TVA", "Outside the scope of VAT"),
        _ => return None,
    };
    Some(match lang {
        Lang::Fr => fr,
        Lang::En => en,
    })
}
