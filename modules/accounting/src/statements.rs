//! Bank statements as banks hand them out, read into statement lines
//! without I/O: CSV exports (columns found by their French or English names,
//! or mapped by the user), OFX 1.x (SGML, closing tags optional) and 2.x
//! (XML), and ISO 20022 CAMT.053. Every error names the line of the file
//! (CSV) or the element (`Ntry 3: Amt`) it comes from.

use crate::domain::{Amount, Day};
use shrooms_core::error::FieldError;
use shrooms_core::import::{auto_mapping, Field, FieldKind};

/// One movement of the statement. `amount` is signed from the account
/// holder's side: positive when money comes in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    pub date: Day,
    pub label: String,
    pub amount: Amount,
    /// The bank's identifier of the movement (OFX FITID, CAMT AcctSvcrRef or
    /// NtryRef, a CSV reference column); empty when the file has none.
    pub reference: String,
    /// Where it is in the file, for messages: `line 4`, `STMTTRN 2`, `Ntry 3`.
    pub place: String,
}

/// A statement read from a file.
#[derive(Clone, Debug, Default)]
pub struct Statement {
    pub format: &'static str,
    pub lines: Vec<StatementLine>,
    /// The closing balance the bank states, with its date, when the file has one.
    pub closing_balance: Option<(Amount, Day)>,
}

fn bad(place: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(place.to_string(), message)
}

/// Reads a statement, told apart by content: XML with `<Document` and
/// `BkToCstmrStmt` is CAMT.053, `<OFX>` is OFX, anything else a CSV or ODS
/// table. `mapping` names the CSV columns (field key → column name) where
/// the automatic match by name is not enough.
pub fn read(bytes: &[u8], mapping: &[(String, String)]) -> Result<Statement, Vec<FieldError>> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_string();
    // French banks' OFX 1.x files are often Windows-1252 (CHARSET:1252):
    // the same decoding as for CSV keeps their accents.
    if head.contains("BkToCstmrStmt") || head.contains("camt.053") {
        return read_camt(&shrooms_core::tabular::decode_text(bytes).0);
    }
    if head.to_ascii_uppercase().contains("<OFX") || head.contains("OFXHEADER") {
        return read_ofx(&shrooms_core::tabular::decode_text(bytes).0);
    }
    read_table(bytes, mapping)
}

// ---------- CSV / ODS ----------

/// The columns of a statement table, with the names banks give them.
pub const FIELDS: &[Field] = &[
    Field {
        key: "date",
        label_key: "accounting.date",
        kind: FieldKind::Date,
        required: true,
        synonyms: &[
            "date operation",
            "date d'operation",
            "date de l'operation",
            "date comptable",
            "booking date",
            "transaction date",
            "posted date",
            "date valeur",
            "value date",
        ],
    },
    Field {
        key: "label",
        label_key: "accounting.label",
        kind: FieldKind::Text,
        required: true,
        synonyms: &["libelle", "libelle operation", "description", "memo", "intitule", "details", "narrative"],
    },
    Field {
        key: "amount",
        label_key: "accounting.amount",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["montant", "montant eur", "montant (eur)", "somme", "value"],
    },
    Field {
        key: "debit",
        label_key: "accounting.debit",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["debit eur", "debit (eur)", "sortie", "withdrawal", "paid out", "money out"],
    },
    Field {
        key: "credit",
        label_key: "accounting.credit",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["credit eur", "credit (eur)", "entree", "deposit", "paid in", "money in"],
    },
    Field {
        key: "reference",
        label_key: "accounting.reference",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["ref", "reference operation", "numero", "transaction id", "id"],
    },
    Field {
        key: "balance",
        label_key: "accounting.bank.statement_balance",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["solde", "solde eur", "solde (eur)", "running balance", "balance eur"],
    },
];

fn read_table(bytes: &[u8], mapping: &[(String, String)]) -> Result<Statement, Vec<FieldError>> {
    let table = shrooms_core::tabular::read(bytes).map_err(|e| vec![bad("file", e.0)])?;
    let mut cols = auto_mapping(FIELDS, &table.columns);
    let mut errors = Vec::new();
    for (key, column) in mapping {
        let Some(fi) = FIELDS.iter().position(|f| f.key == key) else {
            errors.push(bad(&format!("mapping.{key}"), "This is not a column of a statement."));
            continue;
        };
        match table.columns.iter().position(|c| c.trim() == column.trim()) {
            Some(ci) => cols[fi] = Some(ci),
            None if column.trim().is_empty() => cols[fi] = None,
            None => errors.push(bad(&format!("mapping.{key}"), format!("The file has no column named “{column}”."))),
        }
    }
    let col = |key: &str| cols[FIELDS.iter().position(|f| f.key == key).unwrap_or(0)];
    if col("date").is_none() {
        errors.push(bad("mapping.date", "Which column holds the date? No column is named Date."));
    }
    if col("label").is_none() {
        errors.push(bad("mapping.label", "Which column holds the label? No column is named Libellé or Label."));
    }
    if col("amount").is_none() && (col("debit").is_none() || col("credit").is_none()) {
        errors.push(bad(
            "mapping.amount",
            "Which column holds the amount? Name a Montant/Amount column, or both Débit and Crédit columns.",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let cell = |row: &shrooms_core::tabular::Row, key: &str| -> String {
        col(key).map(|c| shrooms_core::tabular::Table::cell(row, c).trim().to_string()).unwrap_or_default()
    };
    let mut lines = Vec::new();
    // The balance after the last movement, when the file has a balance column.
    let mut closing_balance: Option<(Amount, Day)> = None;
    for row in &table.rows {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let place = format!("line {}", row.line);
        let date = match shrooms_core::import::parse_date(&cell(row, "date")).map(|d| Day::parse(&d)) {
            Some(Ok(d)) => Some(d),
            _ => {
                errors.push(bad(&format!("{place}: date"), format!("“{}” is not a date.", cell(row, "date"))));
                None
            }
        };
        let label = cell(row, "label");
        if label.is_empty() {
            errors.push(bad(&format!("{place}: label"), "The label is empty."));
        }
        let parse = |key: &str, errors: &mut Vec<FieldError>| -> Amount {
            let v = cell(row, key);
            if v.is_empty() {
                return Amount::ZERO;
            }
            // Some banks write debits with a minus sign in the Débit column.
            Amount::parse(&v).unwrap_or_else(|m| {
                errors.push(bad(&format!("{place}: {key}"), format!("“{v}”: {m}")));
                Amount::ZERO
            })
        };
        let amount = if col("amount").is_some() {
            let a = parse("amount", &mut errors);
            if a.is_zero() && errors.last().is_none_or(|e| !e.field.starts_with(&place)) {
                errors.push(bad(&format!("{place}: amount"), "The amount is empty or zero."));
            }
            a
        } else {
            let d = parse("debit", &mut errors);
            let c = parse("credit", &mut errors);
            Amount(c.0.abs() - d.0.abs())
        };
        let balance = cell(row, "balance");
        if let (Some(d), false) = (date, balance.is_empty()) {
            match Amount::parse(&balance) {
                Ok(b) if closing_balance.is_none_or(|(_, cd)| d >= cd) => closing_balance = Some((b, d)),
                Ok(_) => {}
                Err(m) => errors.push(bad(&format!("{place}: balance"), format!("“{balance}”: {m}"))),
            }
        }
        if let Some(date) = date {
            lines.push(StatementLine { date, label, amount, reference: cell(row, "reference"), place });
        }
        if errors.len() > 100 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Statement { format: "csv", lines, closing_balance })
}

// ---------- OFX ----------

/// The value of an OFX element inside `block`: `<TAG>value` up to the next
/// tag (SGML OFX leaves closing tags out) or `</TAG>`.
fn ofx_value(block: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = block.find(&open)? + open.len();
    let rest = &block[start..];
    let end = rest.find('<').unwrap_or(rest.len());
    Some(xml_unescape(rest[..end].trim()))
}

/// OFX dates: `20250131`, `20250131120000`, `20250131120000.000[-5:EST]`.
fn ofx_date(s: &str) -> Result<Day, &'static str> {
    if s.len() < 8 {
        return Err("Write a date as YYYYMMDD.");
    }
    Day::parse(&s[..8])
}

fn read_ofx(text: &str) -> Result<Statement, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let upper = text.to_string();
    let mut rest = upper.as_str();
    let mut n = 0;
    while let Some(i) = rest.find("<STMTTRN>") {
        n += 1;
        let after = &rest[i + 9..];
        let end = after.find("</STMTTRN>").or_else(|| after.find("<STMTTRN>")).unwrap_or(after.len());
        let block = &after[..end];
        rest = &after[end..];
        let place = format!("STMTTRN {n}");
        let date = match ofx_value(block, "DTPOSTED") {
            None => {
                errors.push(bad(&format!("{place}: DTPOSTED"), "The movement has no date."));
                None
            }
            Some(d) => ofx_date(&d).map_err(|m| errors.push(bad(&format!("{place}: DTPOSTED"), m))).ok(),
        };
        let amount = match ofx_value(block, "TRNAMT") {
            None => {
                errors.push(bad(&format!("{place}: TRNAMT"), "The movement has no amount."));
                None
            }
            Some(a) => Amount::parse(&a).map_err(|m| errors.push(bad(&format!("{place}: TRNAMT"), m))).ok(),
        };
        let name = ofx_value(block, "NAME").unwrap_or_default();
        let memo = ofx_value(block, "MEMO").unwrap_or_default();
        let label = match (name.is_empty(), memo.is_empty()) {
            (false, false) if name != memo => format!("{name} {memo}"),
            (false, _) => name,
            _ => memo,
        };
        let reference = ofx_value(block, "FITID").unwrap_or_default();
        if let (Some(date), Some(amount)) = (date, amount) {
            lines.push(StatementLine { date, label, amount, reference, place });
        }
    }
    if n == 0 && !text.contains("<BANKTRANLIST>") {
        errors.push(bad("OFX", "This OFX file holds no bank statement (no BANKTRANLIST)."));
    }
    let closing_balance = text.find("<LEDGERBAL>").and_then(|i| {
        let block = &text[i..];
        let block = &block[..block.find("</LEDGERBAL>").unwrap_or(block.len().min(400))];
        let amount = Amount::parse(&ofx_value(block, "BALAMT")?).ok()?;
        let date = ofx_date(&ofx_value(block, "DTASOF")?).ok()?;
        Some((amount, date))
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Statement { format: "ofx", lines, closing_balance })
}

// ---------- CAMT.053 ----------

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The blocks `<tag …>…</tag>` directly found in `xml`, in order (namespace
/// prefixes tolerated: `<ns:Ntry>`). Enough for CAMT, whose elements of
/// one name do not nest.
fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((start, attrs_end, name_len)) = find_open(&xml[pos..], tag) {
        let open_end = pos + attrs_end;
        let attrs = &xml[pos + start + 1 + name_len..open_end - 1];
        let close = format!("/{}>", &xml[pos + start + 1..pos + start + 1 + name_len]);
        let Some(c) = xml[open_end..].find(&format!("<{close}")) else { break };
        out.push((attrs, &xml[open_end..open_end + c]));
        pos = open_end + c + close.len() + 1;
    }
    out
}

/// Finds `<tag` or `<prefix:tag` followed by `>` or whitespace: (index of
/// `<`, index after `>`, length of the qualified name).
fn find_open(s: &str, tag: &str) -> Option<(usize, usize, usize)> {
    let mut from = 0;
    while let Some(i) = s[from..].find('<') {
        let at = from + i;
        let rest = &s[at + 1..];
        let name_len = rest.find(|c: char| c == '>' || c == '/' || c.is_whitespace()).unwrap_or(rest.len());
        let name = &rest[..name_len];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == tag {
            let gt = rest.find('>')?;
            if rest.as_bytes()[gt.saturating_sub(1)] != b'/' {
                return Some((at, at + 1 + gt + 1, name_len));
            }
        }
        from = at + 1;
    }
    None
}

fn first<'a>(xml: &'a str, path: &[&str]) -> Option<(&'a str, &'a str)> {
    let mut cur = ("", xml);
    for tag in path {
        cur = *blocks(cur.1, tag).first()?;
    }
    Some(cur)
}

fn text_of(xml: &str, path: &[&str]) -> Option<String> {
    first(xml, path).map(|(_, t)| xml_unescape(t.trim())).filter(|t| !t.is_empty())
}

fn camt_amount(block: &str, place: &str, errors: &mut Vec<FieldError>) -> Option<Amount> {
    let Some((attrs, amt)) = first(block, &["Amt"]) else {
        errors.push(bad(&format!("{place}: Amt"), "The entry has no amount."));
        return None;
    };
    if !attrs.contains("Ccy=") {
        errors.push(bad(&format!("{place}: Amt"), "The amount has no currency (Ccy)."));
    }
    let a = Amount::parse(amt.trim()).map_err(|m| errors.push(bad(&format!("{place}: Amt"), m))).ok()?;
    match text_of(block, &["CdtDbtInd"]).as_deref() {
        Some("CRDT") => Some(a),
        Some("DBIT") => Some(-a),
        _ => {
            errors.push(bad(&format!("{place}: CdtDbtInd"), "Write CRDT or DBIT."));
            None
        }
    }
}

fn read_camt(text: &str) -> Result<Statement, Vec<FieldError>> {
    let mut errors = Vec::new();
    let stmts = blocks(text, "Stmt");
    if stmts.is_empty() {
        return Err(vec![bad("Stmt", "This CAMT.053 file holds no statement (Stmt).")]);
    }
    let mut lines = Vec::new();
    let mut closing_balance = None;
    let mut n = 0;
    for (_, stmt) in stmts {
        for (_, bal) in blocks(stmt, "Bal") {
            if text_of(bal, &["Tp", "CdOrPrtry", "Cd"]).as_deref() == Some("CLBD") {
                let mut errs = Vec::new();
                let a = camt_amount(bal, "Bal CLBD", &mut errs);
                // `<Dt><Dt>2025-03-31</Dt></Dt>` (or `<DtTm>`): the element nests
                // in itself, so take the text after the last tag.
                let d = text_of(bal, &["Dt"]).and_then(|d| {
                    let d = d.rsplit('>').next().unwrap_or("").trim().to_string();
                    Day::parse(&d[..d.len().min(10)]).ok()
                });
                if let (Some(a), Some(d), true) = (a, d, errs.is_empty()) {
                    closing_balance = Some((a, d));
                }
            }
        }
        for (_, ntry) in blocks(stmt, "Ntry") {
            n += 1;
            let place = format!("Ntry {n}");
            let amount = camt_amount(ntry, &place, &mut errors);
            let date = match text_of(ntry, &["BookgDt", "Dt"]).or_else(|| text_of(ntry, &["BookgDt", "DtTm"])) {
                None => {
                    errors.push(bad(&format!("{place}: BookgDt"), "The entry has no booking date."));
                    None
                }
                Some(d) => Day::parse(&d[..d.len().min(10)])
                    .map_err(|m| errors.push(bad(&format!("{place}: BookgDt"), m)))
                    .ok(),
            };
            let reference = text_of(ntry, &["AcctSvcrRef"]).or_else(|| text_of(ntry, &["NtryRef"])).unwrap_or_default();
            let label = blocks(ntry, "Ustrd")
                .iter()
                .map(|(_, t)| xml_unescape(t.trim()))
                .chain(text_of(ntry, &["AddtlNtryInf"]))
                .collect::<Vec<_>>()
                .join(" ");
            if let (Some(date), Some(amount)) = (date, amount) {
                lines.push(StatementLine { date, label, amount, reference, place });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Statement { format: "camt.053", lines, closing_balance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ofx_sgml_without_closing_tags() {
        let f = "OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><BANKTRANLIST>\n<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>20250305\n<TRNAMT>-42.10\n<FITID>A1\n<NAME>EDF &amp; co\n</STMTTRN>\n<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20250306120000.000[+1:CET]<TRNAMT>30,00<FITID>A2<MEMO>Cotisation Dupont</STMTTRN>\n</BANKTRANLIST><LEDGERBAL><BALAMT>1000.00<DTASOF>20250331</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>";
        let s = read(f.as_bytes(), &[]).unwrap();
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.lines[0].amount, Amount(-4210));
        assert_eq!(s.lines[0].label, "EDF & co");
        assert_eq!(s.lines[1].date.iso(), "2025-03-06");
        assert_eq!(s.lines[1].reference, "A2");
        assert_eq!(s.closing_balance.unwrap().0, Amount(100000));
        // Windows-1252 bytes (é = 0xE9) are read as such.
        let mut latin = b"OFXHEADER:100\nCHARSET:1252\n<OFX><BANKTRANLIST><STMTTRN><DTPOSTED>20250305<TRNAMT>-1.00<FITID>X<NAME>Caf".to_vec();
        latin.extend_from_slice(b"\xe9</STMTTRN></BANKTRANLIST></OFX>");
        assert_eq!(read(&latin, &[]).unwrap().lines[0].label, "Café");
    }

    #[test]
    fn camt_errors_name_the_entry_and_element() {
        let f = r#"<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-03-01</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="EUR">1O.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><BookgDt><Dt>2025-03-01</Dt></BookgDt></Ntry>
</Stmt></BkToCstmrStmt></Document>"#;
        let e = read(f.as_bytes(), &[]).unwrap_err();
        assert_eq!(e[0].field, "Ntry 2: Amt");
    }

    #[test]
    fn csv_with_debit_and_credit_columns() {
        let f = "Date;Libellé;Débit;Crédit\n01/03/2025;Loyer;500,00;\n02/03/2025;Don;;25\n";
        let s = read(f.as_bytes(), &[]).unwrap();
        assert_eq!(s.lines.iter().map(|l| l.amount.0).collect::<Vec<_>>(), [-50000, 2500]);
        let with_balance = "Date;Libellé;Montant;Solde\n02/03/2025;Don;25;1025\n01/03/2025;Loyer;-500;1000\n";
        let s = read(with_balance.as_bytes(), &[]).unwrap();
        assert_eq!(s.closing_balance.map(|(a, d)| (a.0, d.iso())), Some((102500, "2025-03-02".into())));
        let bad = "Date;Libellé;Montant\n31/02/2025;Loyer;-500\n";
        assert_eq!(read(bad.as_bytes(), &[]).unwrap_err()[0].field, "line 2: date");
    }
}
