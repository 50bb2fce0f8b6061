//! SEPA direct debit without I/O: IBAN (ISO 13616, mod 97), BIC (ISO 9362)
//! and creditor identifier (ICS) checks, the SEPA character set, the
//! pain.008.001.08 collection file with structured addresses, and reading
//! returned or rejected debits from pain.002, camt.054 or a CSV file.

use shrooms_core::error::FieldError;
use std::fmt::Write;

/// IBAN lengths of the SEPA countries and territories.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
];

/// The remainder modulo 97 of a string of digits and letters (A = 10 … Z = 35).
fn mod97(s: &str) -> Option<u32> {
    let mut r: u32 = 0;
    for c in s.chars() {
        let v = c.to_digit(36)?;
        r = if v >= 10 { (r * 100 + v) % 97 } else { (r * 10 + v) % 97 };
    }
    Some(r)
}

/// Removes spaces, upper-cases.
pub fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

/// Checks an IBAN; returns it compact, or what is wrong with it.
pub fn check_iban(input: &str) -> Result<String, String> {
    let iban = compact(input);
    if iban.len() < 5 || !iban.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("Write the IBAN as on the bank details (RIB), such as FR76 3000 6000 0112 3456 7890 189.".into());
    }
    let country = &iban[..2];
    let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return Err(format!("{country} is not a country of the SEPA area."));
    };
    if iban.len() != *len {
        return Err(format!("An IBAN of {country} has {len} characters; this one has {}.", iban.len()));
    }
    if !iban[2..4].chars().all(|c| c.is_ascii_digit()) {
        return Err("The third and fourth characters of an IBAN are its check digits.".into());
    }
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    if mod97(&rearranged) != Some(1) {
        return Err("This IBAN's check digits do not match: a character is probably mistyped.".into());
    }
    Ok(iban)
}

/// Checks a BIC: 4 letters (bank), 2 letters (country), 2 letters or digits
/// (location), optionally 3 letters or digits (branch).
pub fn check_bic(input: &str) -> Result<String, String> {
    let bic = compact(input);
    let ok = bic.is_ascii()
        && (bic.len() == 8 || bic.len() == 11)
        && bic[..6].chars().all(|c| c.is_ascii_uppercase())
        && bic[6..].chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(bic)
    } else {
        Err("A BIC has 8 or 11 characters, such as BNPAFRPPXXX.".into())
    }
}

/// Checks a SEPA creditor identifier (ICS): country, check digits, a
/// business code (ignored by the check), then the national identifier.
pub fn check_ics(input: &str) -> Result<String, String> {
    let ics = compact(input);
    if ics.len() < 8 || ics.len() > 35 || !ics.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("Write the creditor identifier given by your bank, such as FR12ZZZ123456.".into());
    }
    if !ics[..2].chars().all(|c| c.is_ascii_uppercase()) || !ics[2..4].chars().all(|c| c.is_ascii_digit()) {
        return Err("A creditor identifier starts with the country and two check digits.".into());
    }
    let check = format!("{}{}00", &ics[7..], &ics[..2]);
    let digits = 98 - mod97(&check).unwrap_or(0);
    if format!("{digits:02}") != ics[2..4] {
        return Err("This creditor identifier's check digits do not match.".into());
    }
    Ok(ics)
}

/// A mandate reference: 1–35 characters of the SEPA set, no spaces.
pub fn check_reference(s: &str) -> Result<String, String> {
    let r = s.trim();
    let ok = !r.is_empty()
        && r.len() <= 35
        && r.chars().all(|c| c.is_ascii_alphanumeric() || "/-?:().,'+".contains(c))
        && !r.starts_with('/')
        && !r.contains("//");
    if ok {
        Ok(r.to_string())
    } else {
        Err("Use 1 to 35 letters, digits or / - ? : ( ) . , ' + (no space, not starting with / nor holding //).".into())
    }
}

/// Text in the SEPA character set (Latin letters without accents, digits,
/// `/ - ? : ( ) . , ' +` and spaces), cut to `max` characters.
pub fn sepa_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let mapped: &str = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
            'À' | 'Â' | 'Ä' | 'Á' | 'Ã' | 'Å' => "A",
            'ç' => "c",
            'Ç' => "C",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'É' | 'È' | 'Ê' | 'Ë' => "E",
            'î' | 'ï' | 'í' | 'ì' => "i",
            'Î' | 'Ï' | 'Í' | 'Ì' => "I",
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' | 'ø' => "o",
            'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' | 'Ø' => "O",
            'ù' | 'û' | 'ü' | 'ú' => "u",
            'Ù' | 'Û' | 'Ü' | 'Ú' => "U",
            'ÿ' | 'ý' => "y",
            'ñ' => "n",
            'Ñ' => "N",
            'œ' => "oe",
            'Œ' => "OE",
            'æ' => "ae",
            'Æ' => "AE",
            'ß' => "ss",
            '’' | '‘' => "'",
            '&' => "+",
            _ if c.is_ascii_alphanumeric() || " /-?:().,'+".contains(c) => {
                out.push(c);
                continue;
            }
            _ => " ",
        };
        out.push_str(mapped);
    }
    let t: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    t.chars().take(max).collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// A postal address, written structured (StrtNm, PstCd, TwnNm, Ctry).
#[derive(Clone, Debug, Default)]
pub struct PostalAddress {
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
}

pub struct Creditor {
    pub name: String,
    pub iban: String,
    pub bic: String,
    pub ics: String,
    pub address: PostalAddress,
}

pub struct Debit {
    pub end_to_end_id: String,
    pub amount_cents: i64,
    pub mandate_reference: String,
    /// `YYYY-MM-DD`
    pub mandate_signed_on: String,
    pub first: bool,
    pub debtor_name: String,
    pub debtor_iban: String,
    pub debtor_bic: Option<String>,
    pub debtor_address: PostalAddress,
    pub remittance: String,
}

fn address(out: &mut String, a: &PostalAddress) {
    out.push_str("<PstlAdr>");
    let mut el = |tag: &str, v: &str, max: usize| {
        let v = sepa_text(v, max);
        if !v.is_empty() {
            let _ = write!(out, "<{tag}>{}</{tag}>", esc(&v));
        }
    };
    el("StrtNm", &a.street, 70);
    el("PstCd", &a.postcode, 16);
    el("TwnNm", &a.city, 35);
    let country = if a.country.len() == 2 { a.country.as_str() } else { "FR" };
    let _ = write!(out, "<Ctry>{country}</Ctry></PstlAdr>");
}

fn amount(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// The collection file: one payment information block per sequence type
/// (FRST, RCUR), all on `collection_date`. `created_at` is RFC 3339.
pub fn pain008(msg_id: &str, created_at: &str, collection_date: &str, creditor: &Creditor, debits: &[Debit]) -> String {
    let total: i64 = debits.iter().map(|d| d.amount_cents).sum();
    let mut out = String::with_capacity(1200 + debits.len() * 1100);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.008.001.08\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">");
    out.push_str("<CstmrDrctDbtInitn><GrpHdr>");
    let _ = write!(
        out,
        "<MsgId>{}</MsgId><CreDtTm>{}</CreDtTm><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum><InitgPty><Nm>{}</Nm></InitgPty></GrpHdr>",
        esc(msg_id),
        esc(created_at),
        debits.len(),
        amount(total),
        esc(&sepa_text(&creditor.name, 140))
    );
    for (seq, first) in [("FRST", true), ("RCUR", false)] {
        let group: Vec<&Debit> = debits.iter().filter(|d| d.first == first).collect();
        if group.is_empty() {
            continue;
        }
        let sum: i64 = group.iter().map(|d| d.amount_cents).sum();
        let _ = write!(
            out,
            "<PmtInf><PmtInfId>{}</PmtInfId><PmtMtd>DD</PmtMtd><BtchBookg>true</BtchBookg><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum>\
             <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl><LclInstrm><Cd>CORE</Cd></LclInstrm><SeqTp>{seq}</SeqTp></PmtTpInf>\
             <ReqdColltnDt>{}</ReqdColltnDt><Cdtr><Nm>{}</Nm>",
            esc(&format!("{}-{seq}", msg_id.chars().take(30).collect::<String>())),
            group.len(),
            amount(sum),
            esc(collection_date),
            esc(&sepa_text(&creditor.name, 140)),
        );
        address(&mut out, &creditor.address);
        let _ = write!(
            out,
            "</Cdtr><CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct><CdtrAgt><FinInstnId><BICFI>{}</BICFI></FinInstnId></CdtrAgt>\
             <ChrgBr>SLEV</ChrgBr><CdtrSchmeId><Id><PrvtId><Othr><Id>{}</Id><SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id></CdtrSchmeId>",
            esc(&creditor.iban),
            esc(&creditor.bic),
            esc(&creditor.ics)
        );
        for d in group {
            let _ = write!(
                out,
                "<DrctDbtTxInf><PmtId><EndToEndId>{}</EndToEndId></PmtId><InstdAmt Ccy=\"EUR\">{}</InstdAmt>\
                 <DrctDbtTx><MndtRltdInf><MndtId>{}</MndtId><DtOfSgntr>{}</DtOfSgntr></MndtRltdInf></DrctDbtTx><DbtrAgt><FinInstnId>",
                esc(&d.end_to_end_id),
                amount(d.amount_cents),
                esc(&d.mandate_reference),
                esc(&d.mandate_signed_on)
            );
            match &d.debtor_bic {
                Some(b) => {
                    let _ = write!(out, "<BICFI>{}</BICFI>", esc(b));
                }
                None => out.push_str("<Othr><Id>NOTPROVIDED</Id></Othr>"),
            }
            let _ = write!(out, "</FinInstnId></DbtrAgt><Dbtr><Nm>{}</Nm>", esc(&sepa_text(&d.debtor_name, 140)));
            address(&mut out, &d.debtor_address);
            let _ = write!(
                out,
                "</Dbtr><DbtrAcct><Id><IBAN>{}</IBAN></Id></DbtrAcct><RmtInf><Ustrd>{}</Ustrd></RmtInf></DrctDbtTxInf>",
                esc(&d.debtor_iban),
                esc(&sepa_text(&d.remittance, 140))
            );
        }
        out.push_str("</PmtInf>");
    }
    out.push_str("</CstmrDrctDbtInitn></Document>\n");
    out
}

// ---------- returned and rejected debits ----------

/// One returned or rejected debit: its end-to-end id and the reason code (AC04, MD06…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return {
    pub end_to_end_id: String,
    pub reason: String,
}

/// The inner text of each element named `tag` (any namespace prefix).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = xml[pos..].find('<') {
        let start = pos + i + 1;
        let rest = &xml[start..];
        let name_end = rest.find(|c: char| c == '>' || c == '/' || c.is_whitespace()).unwrap_or(rest.len());
        let name = &rest[..name_end];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local == tag && !name.starts_with('/') {
            let Some(gt) = rest.find('>') else { break };
            if rest.as_bytes()[gt - 1] == b'/' {
                pos = start + gt;
                continue;
            }
            let body_start = start + gt + 1;
            let close = format!("</{name}>");
            let Some(end) = xml[body_start..].find(&close) else { break };
            out.push(&xml[body_start..body_start + end]);
            pos = body_start + end + close.len();
        } else {
            pos = start;
        }
    }
    out
}

fn first_text(xml: &str, path: &[&str]) -> Option<String> {
    let mut cur = xml;
    for tag in path {
        cur = elements(cur, tag).into_iter().next()?;
    }
    let t = cur.trim();
    (!t.is_empty() && !t.contains('<')).then(|| t.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
}

/// Reads a returns file: pain.002 (status reports, RJCT transactions),
/// camt.054 (debit notifications with return information) or a CSV with
/// columns `end_to_end_id;reason`. Errors name the line or element.
pub fn read_returns(text: &str) -> Result<(&'static str, Vec<Return>), Vec<FieldError>> {
    let t = text.trim_start_matches('\u{feff}').trim();
    if t.starts_with('<') {
        if !elements(t, "CstmrPmtStsRpt").is_empty() {
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for (i, tx) in elements(t, "TxInfAndSts").into_iter().enumerate() {
                let status = first_text(tx, &["TxSts"]).unwrap_or_default();
                if status != "RJCT" {
                    continue;
                }
                match first_text(tx, &["OrgnlEndToEndId"]) {
                    Some(id) => out.push(Return {
                        end_to_end_id: id,
                        reason: first_text(tx, &["StsRsnInf", "Rsn", "Cd"]).unwrap_or_default(),
                    }),
                    None => errors.push(FieldError::new(
                        format!("TxInfAndSts {}", i + 1),
                        "A rejected transaction has no OrgnlEndToEndId.",
                    )),
                }
            }
            return if errors.is_empty() { Ok(("pain.002", out)) } else { Err(errors) };
        }
        if !elements(t, "BkToCstmrDbtCdtNtfctn").is_empty() {
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for (i, tx) in elements(t, "TxDtls").into_iter().enumerate() {
                if elements(tx, "RtrInf").is_empty() {
                    continue;
                }
                match first_text(tx, &["Refs", "EndToEndId"]) {
                    Some(id) => out.push(Return {
                        end_to_end_id: id,
                        reason: first_text(tx, &["RtrInf", "Rsn", "Cd"]).unwrap_or_default(),
                    }),
                    None => errors.push(FieldError::new(
                        format!("TxDtls {}", i + 1),
                        "A returned transaction has no Refs/EndToEndId.",
                    )),
                }
            }
            return if errors.is_empty() { Ok(("camt.054", out)) } else { Err(errors) };
        }
        return Err(vec![FieldError::new(
            "file",
            "This XML file is neither a pain.002 status report nor a camt.054 notification.",
        )]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in t.lines().enumerate() {
        let cols: Vec<&str> = line.split([';', ',', '\t']).map(|c| c.trim().trim_matches('"')).collect();
        let id = cols.first().copied().unwrap_or("");
        if id.is_empty() || (i == 0 && id.eq_ignore_ascii_case("end_to_end_id")) {
            continue;
        }
        if id.len() > 35 {
            errors.push(FieldError::new(format!("line {}", i + 1), "An end-to-end id has at most 35 characters."));
            continue;
        }
        out.push(Return { end_to_end_id: id.to_string(), reason: cols.get(1).copied().unwrap_or("").to_string() });
    }
    if errors.is_empty() {
        Ok(("csv", out))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked() {
        assert_eq!(check_iban("fr76 3000 6000 0112 3456 7890 189").unwrap(), "FR7630006000011234567890189");
        assert!(check_iban("DE89 3704 0044 0532 0130 00").is_ok());
        assert!(check_iban("GB82 WEST 1234 5698 7654 32").is_ok());
        assert!(check_iban("FR76 3000 6000 0112 3456 7890 188").unwrap_err().contains("check digits"));
        assert!(check_iban("FR76 3000 6000 0112 3456 7890").unwrap_err().contains("27 characters"));
        assert!(check_iban("US12 3456").unwrap_err().contains("SEPA"));
        assert!(check_iban("FR7é").is_err());
    }

    #[test]
    fn bics_and_creditor_identifiers_are_checked() {
        assert_eq!(check_bic("bnpa fr pp xxx").unwrap(), "BNPAFRPPXXX");
        assert!(check_bic("AGRIFRPP").is_ok());
        assert!(check_bic("AGRIFRP").is_err());
        assert!(check_bic("1GRIFRPP").is_err());
        // Multi-byte characters are refused, not sliced through.
        assert!(check_bic("00\u{80}\u{10000}").is_err());
        assert!(check_iban("FR\u{10000}76300060000112345678901").is_err());
        assert!(check_ics("FR\u{10000}ZZZ123456").is_err());
        assert!(check_ics("DE98ZZZ09999999999").is_ok());
        assert!(check_ics("FR72ZZZ123456").is_ok());
        assert!(check_ics("FR73ZZZ123456").is_err());
        assert!(check_ics("DE97ZZZ09999999999").is_err());
    }

    #[test]
    fn references_and_text_keep_to_the_sepa_set() {
        assert!(check_reference("ADH-2026-0001").is_ok());
        assert!(check_reference("ADH 1").is_err());
        assert!(check_reference("/ADH").is_err());
        assert!(check_reference(&"A".repeat(36)).is_err());
        assert_eq!(sepa_text("Œuvre d’Élise & Zoë <test>", 140), "OEuvre d'Elise + Zoe test");
        assert_eq!(sepa_text("abcdef", 3), "abc");
    }

    fn sample(n: usize) -> (Creditor, Vec<Debit>) {
        let creditor = Creditor {
            name: "Les Amis du Jardin".into(),
            iban: "FR7630006000011234567890189".into(),
            bic: "AGRIFRPP".into(),
            ics: "FR72ZZZ123456".into(),
            address: PostalAddress {
                street: "12 rue des Tilleuls".into(),
                postcode: "69003".into(),
                city: "Lyon".into(),
                country: "FR".into(),
            },
        };
        let debits = (0..n)
            .map(|i| Debit {
                end_to_end_id: format!("E2E-{i}"),
                amount_cents: 3000 + i as i64,
                mandate_reference: format!("MDT-{i}"),
                mandate_signed_on: "2026-01-15".into(),
                first: i % 2 == 0,
                debtor_name: "Zoë Lefèvre".into(),
                debtor_iban: "DE89370400440532013000".into(),
                debtor_bic: if i % 3 == 0 { None } else { Some("COBADEFFXXX".into()) },
                debtor_address: PostalAddress {
                    street: "1 quai".into(),
                    postcode: "75004".into(),
                    city: "Paris".into(),
                    country: "FR".into(),
                },
                remittance: "Cotisation 2027".into(),
            })
            .collect();
        (creditor, debits)
    }

    #[test]
    fn the_collection_file_groups_by_sequence_and_adds_up() {
        let (c, d) = sample(4);
        let x = pain008("MSG-1", "2026-11-21T10:00:00Z", "2026-12-05", &c, &d);
        assert!(x.contains("<NbOfTxs>4</NbOfTxs><CtrlSum>120.06</CtrlSum>"));
        assert_eq!(elements(&x, "PmtInf").len(), 2);
        assert!(x.contains("<SeqTp>FRST</SeqTp>") && x.contains("<SeqTp>RCUR</SeqTp>"));
        assert!(x.contains("<Nm>Zoe Lefevre</Nm><PstlAdr><StrtNm>1 quai</StrtNm><PstCd>75004</PstCd><TwnNm>Paris</TwnNm><Ctry>FR</Ctry></PstlAdr>"));
        assert!(x.contains("<Othr><Id>NOTPROVIDED</Id></Othr>"));
        assert!(x.contains("<InstdAmt Ccy=\"EUR\">30.01</InstdAmt>"));
    }

    #[test]
    fn returns_are_read_from_each_format() {
        let pain002 = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt><OrgnlPmtInfAndSts>\
            <TxInfAndSts><OrgnlEndToEndId>E2E-1</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>\
            <TxInfAndSts><OrgnlEndToEndId>E2E-2</OrgnlEndToEndId><TxSts>ACCP</TxSts></TxInfAndSts>\
            </OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>";
        assert_eq!(
            read_returns(pain002).unwrap(),
            ("pain.002", vec![Return { end_to_end_id: "E2E-1".into(), reason: "AC04".into() }])
        );
        let camt = "<Document><BkToCstmrDbtCdtNtfctn><Ntfctn><Ntry><NtryDtls>\
            <TxDtls><Refs><EndToEndId>E2E-3</EndToEndId></Refs><RtrInf><Rsn><Cd>MD06</Cd></Rsn></RtrInf></TxDtls>\
            <TxDtls><Refs><EndToEndId>E2E-4</EndToEndId></Refs></TxDtls>\
            </NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>";
        assert_eq!(
            read_returns(camt).unwrap().1,
            vec![Return { end_to_end_id: "E2E-3".into(), reason: "MD06".into() }]
        );
        let csv = "end_to_end_id;reason\nE2E-5;AM04\n\n\"E2E-6\";\n";
        assert_eq!(read_returns(csv).unwrap().1.len(), 2);
        assert!(read_returns("<Document><Other/></Document>").is_err());
        let bad =
            "<Document><CstmrPmtStsRpt><TxInfAndSts><TxSts>RJCT</TxSts></TxInfAndSts></CstmrPmtStsRpt></Document>";
        assert_eq!(read_returns(bad).unwrap_err()[0].field, "TxInfAndSts 1");
    }
}
