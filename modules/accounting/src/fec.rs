//! The Fichier des Écritures Comptables (FEC, article A47 A-1 of the French
//! tax procedure code): export of a fiscal year's validated entries in the
//! 18 standard columns, and import of a FEC written by another tool to take
//! over its books.
//!
//! The export holds the opening entries (à-nouveaux) and every entry of the
//! year, and leaves out the closing entry that balances income and expense
//! accounts into the result, as the administration asks ("hors écritures
//! de solde des comptes de charges et de produits"). Tab-separated, dates
//! `AAAAMMJJ`, amounts with a comma, UTF-8.

use crate::domain::{self, Amount, Day, Line};
use crate::error::{AcctError, AcctResult};
use crate::repo;
use crate::service::{self, NewEntry};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Db;
use shrooms_core::error::FieldError;
use shrooms_core::import::{auto_mapping, Field, FieldKind};
use shrooms_core::permissions::{CanAdmin, CanRead};
use sqlx::Row;
use std::collections::BTreeMap;

pub const COLUMNS: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

/// A field of the FEC: no separator, no line break inside.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c == '\t' || c == '|' || c == '\n' || c == '\r' { ' ' } else { c }).collect()
}

/// `SIRENFECAAAAMMJJ.txt`, AAAAMMJJ being the last day of the fiscal year.
pub fn file_name(siren: &str, end: Day) -> String {
    let siren = if siren.is_empty() { "000000000" } else { siren };
    format!("{siren}FEC{}.txt", end.compact())
}

/// The FEC of a fiscal year: (file name, content).
pub async fn export(db: &Db, cap: &CanRead, year_id: &str) -> AcctResult<(String, Vec<u8>)> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger_or_404(&mut conn, cap.org()).await?;
    let y = l.year(year_id).ok_or(shrooms_core::CoreError::NotFound)?.clone();
    let rows = sqlx::query(
        "SELECT e.journal, e.number, e.entry_date, l.account, l.aux, l.aux_label, e.piece_ref, e.piece_date, \
         CASE WHEN l.label = '' THEN e.label ELSE l.label END, l.debit, l.credit, l.letter, l.letter_date, e.validated_at, \
         l.currency_amount, l.currency \
         FROM acct_entries e JOIN acct_lines l ON l.entry_id = e.id \
         WHERE e.org_id = $1 AND e.year_id = $2 AND e.status = 'validated' AND e.kind <> 'closing' \
         ORDER BY e.entry_date, e.journal, e.number, l.line_no",
    )
    .bind(cap.org().to_string())
    .bind(&y.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = String::with_capacity(rows.len() * 160 + 256);
    out.push_str(&COLUMNS.join("\t"));
    out.push_str("\r\n");
    for r in &rows {
        let journal: String = r.try_get(0)?;
        let number: i64 = r.try_get::<Option<i64>, _>(1)?.unwrap_or(0);
        let date: String = r.try_get(2)?;
        let account: String = r.try_get(3)?;
        let piece_ref: String = r.try_get(6)?;
        let piece_date: Option<String> = r.try_get(7)?;
        let validated_at: Option<i64> = r.try_get(13)?;
        let compact = |d: &str| Day::parse(d).map(|d| d.compact()).unwrap_or_default();
        let valid = validated_at
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t / 1000).ok())
            .map(|t| Day(t.date()).compact())
            .unwrap_or_else(|| compact(&date));
        let reference = domain::entry_ref(&journal, number);
        let currency_amount: Option<i64> = r.try_get(14)?;
        let currency: Option<String> = r.try_get(15)?;
        let fields = [
            journal.clone(),
            clean(&l.journals.get(&journal).map(|j| j.0.clone()).unwrap_or_default()),
            reference.clone(),
            compact(&date),
            account.clone(),
            clean(&l.accounts.get(&account).map(|a| a.0.clone()).unwrap_or_default()),
            clean(&r.try_get::<String, _>(4)?),
            clean(&r.try_get::<String, _>(5)?),
            clean(if piece_ref.is_empty() { &reference } else { &piece_ref }),
            compact(piece_date.as_deref().unwrap_or(&date)),
            clean(&r.try_get::<String, _>(8)?),
            Amount(r.try_get(9)?).fec(),
            Amount(r.try_get(10)?).fec(),
            clean(&r.try_get::<Option<String>, _>(11)?.unwrap_or_default()),
            r.try_get::<Option<String>, _>(12)?.map(|d| compact(&d)).unwrap_or_default(),
            valid,
            currency_amount.map(|a| Amount(a).fec()).unwrap_or_default(),
            currency.unwrap_or_default(),
        ];
        out.push_str(&fields.join("\t"));
        out.push_str("\r\n");
    }
    Ok((file_name(&l.siren, y.end_day()), out.into_bytes()))
}

/// Imports a FEC file as it was downloaded: UTF-8 (with or without a
/// byte-order mark) when its bytes are valid UTF-8, else Windows-1252 —
/// what French accounting software writes when it says ISO-8859-15 or
/// "ANSI"; its letters (é, à, ç, œ) and the euro sign read the same.
pub async fn import_bytes(db: &Db, who: &Who, cap: &CanAdmin, bytes: &[u8]) -> AcctResult<ImportReport> {
    let (text, encoding) = shrooms_core::tabular::decode_text(bytes);
    let mut report = import(db, who, cap, &text).await?;
    report.encoding = Some(encoding.to_string());
    Ok(report)
}

/// What an import did.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub entries: usize,
    pub lines: usize,
    pub accounts_created: Vec<String>,
    pub journals_created: Vec<String>,
    /// How the file's bytes were read (`utf-8`, `windows-1252`), when a file was sent rather than text.
    pub encoding: Option<String>,
}

fn parse_fec_amount(s: &str) -> Result<Amount, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Amount::ZERO);
    }
    // A FEC amount has no thousands separator: "1234,56" or "1234.56".
    if s.matches([',', '.']).count() > 1 {
        return Err("A FEC amount has one decimal separator and no thousands separator.");
    }
    Amount::parse(s)
}

/// Imports a FEC (tab- or pipe-separated, with its header line) into open
/// fiscal years: all of it, or nothing. Lines are grouped into entries by
/// journal and EcritureNum; each entry must balance. Missing accounts and
/// journals are created from CompteLib and JournalLib. Entries with a
/// ValidDate come in validated (numbered anew in each journal), the others
/// as drafts. Errors name the line of the file and the column.
pub async fn import(db: &Db, who: &Who, cap: &CanAdmin, content: &str) -> AcctResult<ImportReport> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut lines = content.lines();
    let header = lines.next().ok_or_else(|| AcctError::field("line 1", "The file is empty."))?;
    // The administration allows a tab or a vertical bar between columns.
    let sep = if header.contains('\t') {
        '\t'
    } else if header.contains('|') {
        '|'
    } else {
        return Err(AcctError::field("line 1", "The columns of a FEC are separated by tabs or by vertical bars (|)."));
    };
    let cols: Vec<String> = header.split(sep).map(|c| c.trim().to_string()).collect();
    let pos = |name: &str| cols.iter().position(|c| c.eq_ignore_ascii_case(name));
    let mut errors = Vec::new();
    let mut idx = BTreeMap::new();
    for c in COLUMNS {
        match pos(c) {
            Some(i) => {
                idx.insert(c, i);
            }
            None if matches!(c, "Montantdevise" | "Idevise") => {}
            None => errors.push(FieldError::new("line 1", format!("The column {c} is missing from the header."))),
        }
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let mut records = Vec::new();
    for (n, raw) in lines.enumerate() {
        let line_no = n + 2;
        if raw.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = raw.split(sep).collect();
        if f.len() < idx.len() {
            errors.push(FieldError::new(
                format!("line {line_no}"),
                format!("The line has {} columns; the header has {}.", f.len(), cols.len()),
            ));
            continue;
        }
        let values = COLUMNS
            .iter()
            .map(|c| idx.get(c).and_then(|&i| f.get(i)).map(|s| s.trim().to_string()).unwrap_or_default())
            .collect();
        records.push((line_no, values));
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    import_records(db, who, cap, records, &|c| c.to_string(), Origin::Fec).await
}

/// Where imported lines come from: the audit action, the entries' source,
/// how the importer is named in the audit log.
#[derive(Clone, Copy)]
pub(crate) enum Origin {
    Fec,
    CsvJournal,
}

/// Imports records holding the FEC's columns in [`COLUMNS`] order, each
/// with its line in the file; `name` gives a column as the file names it
/// (for errors). All or nothing.
pub(crate) async fn import_records(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    records: Vec<(usize, Vec<String>)>,
    name: &(dyn Fn(&str) -> String + Sync),
    origin: Origin,
) -> AcctResult<ImportReport> {
    let (source, importer, action) = match origin {
        Origin::Fec => ("accounting.fec", "FEC import", "accounting.fec.import"),
        Origin::CsvJournal => ("accounting.csv", "CSV journal import", "accounting.csv.import"),
    };
    let mut errors = Vec::new();
    // (journal, EcritureNum) → entry being built, in file order.
    struct Building {
        first_line: usize,
        journal: String,
        date: Option<Day>,
        label: String,
        piece_ref: String,
        piece_date: Option<Day>,
        validated: bool,
        lines: Vec<Line>,
        /// Each line's letter (EcritureLet) and its date (DateLet, `YYYY-MM-DD`).
        letters: Vec<Option<(String, String)>>,
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut entries: BTreeMap<(String, String), Building> = BTreeMap::new();
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    let mut journals: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0usize;
    let mut broken: std::collections::HashSet<(String, String)> = Default::default();
    let mut pending: Option<((String, String), usize)> = None;
    for (line_no, f) in &records {
        let line_no = *line_no;
        count += 1;
        let get =
            |c: &str| COLUMNS.iter().position(|x| *x == c).and_then(|i| f.get(i)).map(String::as_str).unwrap_or("");
        // An entry with a bad line is not also reported as unbalanced.
        if let Some((k, n)) = pending.take() {
            if errors.len() > n {
                broken.insert(k);
            }
        }
        pending = Some(((get("JournalCode").to_string(), get("EcritureNum").to_string()), errors.len()));
        let mut err =
            |col: &str, m: &str| errors.push(FieldError::new(format!("line {line_no}: {}", name(col)), m.to_string()));
        let journal = domain::parse_journal_code(get("JournalCode")).map_err(|m| err("JournalCode", m)).ok();
        let num = get("EcritureNum").to_string();
        if num.is_empty() {
            err("EcritureNum", "The entry number is missing.");
        }
        let date = Day::parse(get("EcritureDate")).map_err(|m| err("EcritureDate", m)).ok();
        let account = domain::parse_account_number(get("CompteNum")).map_err(|m| err("CompteNum", m)).ok();
        let debit = parse_fec_amount(get("Debit")).map_err(|m| err("Debit", m)).ok();
        let credit = parse_fec_amount(get("Credit")).map_err(|m| err("Credit", m)).ok();
        let piece_date = match get("PieceDate") {
            "" => None,
            s => Day::parse(s).map_err(|m| err("PieceDate", m)).ok(),
        };
        let validated = match get("ValidDate") {
            "" => false,
            s => Day::parse(s).map_err(|m| err("ValidDate", m)).is_ok(),
        };
        let currency_amount = match get("Montantdevise") {
            "" => None,
            s => parse_fec_amount(s).map_err(|m| err("Montantdevise", m)).ok().map(|a| Amount(a.0.abs())),
        };
        let currency = match get("Idevise") {
            "" => None,
            s if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) => Some(s.to_ascii_uppercase()),
            _ => {
                err("Idevise", "A currency is a three-letter ISO 4217 code.");
                None
            }
        };
        let (Some(journal), Some(account), Some(mut debit), Some(mut credit)) = (journal, account, debit, credit)
        else {
            continue;
        };
        // Some tools write a negative amount instead of the other side.
        if debit.0 < 0 {
            credit = credit + (-debit);
            debit = Amount::ZERO;
        }
        if credit.0 < 0 {
            debit = debit + (-credit);
            credit = Amount::ZERO;
        }
        if !debit.is_zero() && !credit.is_zero() {
            errors.push(FieldError::new(
                format!("line {line_no}: {}", name("Credit")),
                "A line is a debit or a credit, not both.",
            ));
            continue;
        }
        if debit.is_zero() && credit.is_zero() {
            // Zero lines carry nothing; FEC files from some tools have them.
            continue;
        }
        accounts.entry(account.clone()).or_insert_with(|| clean(get("CompteLib")));
        journals.entry(journal.clone()).or_insert_with(|| clean(get("JournalLib")));
        let key = (journal.clone(), num);
        let b = entries.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Building {
                first_line: line_no,
                journal: journal.clone(),
                date,
                label: clean(get("EcritureLib")),
                piece_ref: clean(get("PieceRef")),
                piece_date,
                validated,
                lines: vec![],
                letters: vec![],
            }
        });
        if b.date != date {
            errors.push(FieldError::new(
                format!("line {line_no}: {}", name("EcritureDate")),
                "The lines of one entry have different dates.",
            ));
        }
        let letter = match clean(get("EcritureLet")).trim() {
            "" => None,
            code if code.chars().count() > 10 => {
                errors.push(FieldError::new(
                    format!("line {line_no}: {}", name("EcritureLet")),
                    "A letter has at most 10 characters.",
                ));
                None
            }
            // Lettered on the day the other tool says, else today.
            code => match get("DateLet") {
                "" => Some((code.to_string(), Day::today().iso())),
                d => match Day::parse(d) {
                    Ok(d) => Some((code.to_string(), d.iso())),
                    Err(m) => {
                        errors.push(FieldError::new(format!("line {line_no}: {}", name("DateLet")), m));
                        None
                    }
                },
            },
        };
        b.letters.push(letter);
        b.lines.push(Line {
            account,
            aux: clean(get("CompAuxNum")),
            aux_label: clean(get("CompAuxLib")),
            label: clean(get("EcritureLib")),
            debit,
            credit,
            currency_amount,
            currency,
            tags: vec![],
        });
        if errors.len() > 200 {
            break;
        }
    }
    if let Some((k, n)) = pending.take() {
        if errors.len() > n {
            broken.insert(k);
        }
    }
    if count == 0 && errors.is_empty() {
        errors.push(FieldError::new("line 2", "The file holds no entry."));
    }
    let mut validated = Vec::new();
    let mut validated_letters = Vec::new();
    let mut drafts = Vec::new();
    for key in &order {
        let b = &entries[key];
        if broken.contains(key) {
            continue;
        }
        if let Err(e) = domain::check_balanced(&b.lines) {
            errors
                .push(FieldError::new(format!("line {}: {} {}", b.first_line, name("EcritureNum"), key.1), e.message));
            continue;
        }
        let Some(date) = b.date else { continue };
        let label =
            if b.label.is_empty() { format!("Écriture {}", key.1) } else { b.label.chars().take(200).collect() };
        let e = NewEntry {
            journal: b.journal.clone(),
            date,
            label,
            piece_ref: if b.piece_ref.is_empty() { key.1.clone() } else { b.piece_ref.chars().take(60).collect() },
            piece_date: b.piece_date,
            lines: b.lines.clone(),
        };
        if b.validated {
            validated.push((b.first_line, e));
            validated_letters.push(b.letters.clone());
        } else {
            drafts.push((b.first_line, e));
        }
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let org = cap.org();
    let mut tx = db.begin_durable().await?;
    let l = repo::ledger(tx.conn(), org).await?;
    // Dates must fall in open fiscal years.
    for (first, e) in validated.iter().chain(drafts.iter()) {
        match l.year_of(&e.date.iso()) {
            None => errors.push(FieldError::new(
                format!("line {first}: {}", name("EcritureDate")),
                format!("No fiscal year holds {}: create it first.", e.date),
            )),
            Some(y) if y.is_closed() => errors.push(FieldError::new(
                format!("line {first}: {}", name("EcritureDate")),
                format!("The fiscal year holding {} is closed.", e.date),
            )),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let mut accounts_created = Vec::new();
    for (n, label) in &accounts {
        if !l.accounts.contains_key(n) {
            let label = if label.is_empty() { format!("Compte {n}") } else { label.chars().take(200).collect() };
            sqlx::query("INSERT INTO acct_accounts (org_id, number, label, archived) VALUES ($1, $2, $3, 0)")
                .bind(org.to_string())
                .bind(n)
                .bind(&label)
                .execute(tx.conn())
                .await?;
            accounts_created.push(n.clone());
        }
    }
    let mut journals_created = Vec::new();
    for (code, label) in &journals {
        if !l.journals.contains_key(code) {
            let label = if label.is_empty() { code.clone() } else { label.chars().take(100).collect() };
            let kind = if code == "AN" { "opening" } else { "miscellaneous" };
            sqlx::query("INSERT INTO acct_journals (org_id, code, label, kind) VALUES ($1, $2, $3, $4)")
                .bind(org.to_string())
                .bind(code)
                .bind(&label)
                .bind(kind)
                .execute(tx.conn())
                .await?;
            journals_created.push(code.clone());
        }
    }
    let n_entries = validated.len() + drafts.len();
    let n_lines: usize = validated.iter().chain(drafts.iter()).map(|(_, e)| e.lines.len()).sum();
    let line_of: Vec<usize> = validated.iter().map(|(f, _)| *f).chain(drafts.iter().map(|(f, _)| *f)).collect();
    let rename = |e: AcctError, offset: usize| match e {
        AcctError::Invalid(v) => AcctError::Invalid(
            v.into_iter()
                .map(|f| {
                    let i: Option<usize> =
                        f.field.strip_prefix("entries[").and_then(|s| s.split(']').next()).and_then(|s| s.parse().ok());
                    match i.and_then(|i| line_of.get(i + offset)) {
                        Some(line) => FieldError::new(format!("line {line}"), f.message),
                        None => f,
                    }
                })
                .collect(),
        ),
        other => other,
    };
    let import_who = Who { label: format!("{} ({importer})", who.label), ..who.clone() };
    let nv = validated.len();
    if !validated.is_empty() {
        let posted = service::post_entries(
            &mut tx,
            &import_who,
            org,
            source,
            validated.into_iter().map(|x| x.1).collect(),
            true,
        )
        .await
        .map_err(|e| rename(e, 0))?;
        // The lettering done in the other tool comes along (validated entries
        // only: lettering is for final lines).
        for (p, letters) in posted.iter().zip(&validated_letters) {
            for (i, l) in letters.iter().enumerate() {
                let Some((code, date)) = l else { continue };
                sqlx::query("UPDATE acct_lines SET letter = $1, letter_date = $2 WHERE org_id = $3 AND entry_id = $4 AND line_no = $5")
                    .bind(code)
                    .bind(date)
                    .bind(org.to_string())
                    .bind(&p.id)
                    .bind(i as i64 + 1)
                    .execute(tx.conn())
                    .await?;
            }
        }
    }
    if !drafts.is_empty() {
        service::post_entries(&mut tx, &import_who, org, source, drafts.into_iter().map(|x| x.1).collect(), false)
            .await
            .map_err(|e| rename(e, nv))?;
    }
    let report =
        ImportReport { entries: n_entries, lines: n_lines, accounts_created, journals_created, encoding: None };
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action,
            entity_type: "books",
            entity_id: org.to_string(),
            before: None,
            after: serde_json::to_value(&report).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Every line of the books in a period as a table (the general CSV/ODS export).
pub async fn lines_table(
    db: &Db,
    cap: &CanRead,
    from: &str,
    to: &str,
) -> AcctResult<(Vec<&'static str>, Vec<Vec<String>>)> {
    let rows = sqlx::query(
        "SELECT e.entry_date, e.journal, e.number, e.status, e.piece_ref, e.label, l.account, l.aux, l.label, l.debit, l.credit, l.letter, \
         (SELECT MIN(t.tag) FROM acct_line_tags t WHERE t.entry_id = l.entry_id AND t.line_no = l.line_no) \
         FROM acct_entries e JOIN acct_lines l ON l.entry_id = e.id \
         WHERE e.org_id = $1 AND e.entry_date >= $2 AND e.entry_date <= $3 ORDER BY e.entry_date, e.journal, e.number, e.id, l.line_no",
    )
    .bind(cap.org().to_string())
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let journal: String = r.try_get(1)?;
        let number: Option<i64> = r.try_get(2)?;
        out.push(vec![
            r.try_get(0)?,
            journal.clone(),
            number.map(|n| domain::entry_ref(&journal, n)).unwrap_or_default(),
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(8)?,
            Amount(r.try_get(9)?).plain(),
            Amount(r.try_get(10)?).plain(),
            r.try_get::<Option<String>, _>(11)?.unwrap_or_default(),
            r.try_get::<Option<String>, _>(12)?.unwrap_or_default(),
        ]);
    }
    Ok((
        vec![
            "date",
            "journal",
            "number",
            "status",
            "piece_ref",
            "entry_label",
            "account",
            "aux",
            "line_label",
            "debit",
            "credit",
            "letter",
            "tag",
        ],
        out,
    ))
}

// ---------- CSV journal import ----------

/// The columns of a journal exported as CSV or ODS by another tool, with the
/// names tools give them; `(field, FEC column)`.
const CSV_FIELDS: &[(Field, &str)] = &[
    (
        Field {
            key: "date",
            label_key: "accounting.date",
            kind: FieldKind::Text,
            required: true,
            synonyms: &["date ecriture", "date d'ecriture", "entry date", "date operation"],
        },
        "EcritureDate",
    ),
    (
        Field {
            key: "journal",
            label_key: "accounting.journal",
            kind: FieldKind::Text,
            required: true,
            synonyms: &["code journal", "journal code", "jnl"],
        },
        "JournalCode",
    ),
    (
        Field {
            key: "piece",
            label_key: "accounting.piece_ref",
            kind: FieldKind::Text,
            required: true,
            synonyms: &["piece", "n piece", "numero de piece", "reference", "ref", "entry number", "numero"],
        },
        "EcritureNum",
    ),
    (
        Field {
            key: "account",
            label_key: "accounting.account",
            kind: FieldKind::Text,
            required: true,
            synonyms: &["compte", "n compte", "numero de compte", "account number", "compte general"],
        },
        "CompteNum",
    ),
    (
        Field {
            key: "account_label",
            label_key: "accounting.label",
            kind: FieldKind::Text,
            required: false,
            synonyms: &["libelle compte", "intitule compte", "account name"],
        },
        "CompteLib",
    ),
    (
        Field {
            key: "aux",
            label_key: "accounting.aux",
            kind: FieldKind::Text,
            required: false,
            synonyms: &["compte auxiliaire", "tiers", "auxiliary", "third party"],
        },
        "CompAuxNum",
    ),
    (
        Field {
            key: "label",
            label_key: "accounting.label",
            kind: FieldKind::Text,
            required: true,
            synonyms: &["libelle", "libelle ecriture", "description", "intitule"],
        },
        "EcritureLib",
    ),
    (
        Field {
            key: "debit",
            label_key: "accounting.debit",
            kind: FieldKind::Text,
            required: false,
            synonyms: &["montant debit", "debit amount"],
        },
        "Debit",
    ),
    (
        Field {
            key: "credit",
            label_key: "accounting.credit",
            kind: FieldKind::Text,
            required: false,
            synonyms: &["montant credit", "credit amount"],
        },
        "Credit",
    ),
    (
        Field {
            key: "letter",
            label_key: "accounting.lettering.letter",
            kind: FieldKind::Text,
            required: false,
            synonyms: &["lettre", "lettrage", "code lettrage", "let", "matching"],
        },
        "EcritureLet",
    ),
];

/// Imports a journal kept in another tool, as a CSV (or ODS) of lines —
/// date, journal, piece, account, label, debit, credit, optionally the
/// account's label and an auxiliary account — grouped into entries by
/// journal and piece. All or nothing, as the FEC import; errors name the
/// line and the file's own column (`line 5: Débit`). With `validate`, the
/// entries come in validated (the books taken over were final).
pub async fn import_csv_journal(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    bytes: &[u8],
    validate: bool,
) -> AcctResult<ImportReport> {
    let table = shrooms_core::tabular::read(bytes).map_err(|e| AcctError::field("file", e.0))?;
    let fields: Vec<Field> = CSV_FIELDS.iter().map(|(f, _)| *f).collect();
    let cols = auto_mapping(&fields, &table.columns);
    let mut errors = Vec::new();
    for (i, (f, _)) in CSV_FIELDS.iter().enumerate() {
        if f.required && cols[i].is_none() {
            errors.push(FieldError::new("line 1", format!("No column holds the {}: name one “{}”.", f.key, f.key)));
        }
    }
    if cols[7].is_none() && cols[8].is_none() {
        errors.push(FieldError::new("line 1", "No column holds the debit or the credit."));
    }
    if !errors.is_empty() {
        return Err(AcctError::Invalid(errors));
    }
    let mut records = Vec::new();
    for row in &table.rows {
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |fec: &str| -> String {
            CSV_FIELDS
                .iter()
                .position(|(_, c)| *c == fec)
                .and_then(|i| cols[i])
                .map(|c| shrooms_core::tabular::Table::cell(row, c).trim().to_string())
                .unwrap_or_default()
        };
        let date = cell("EcritureDate");
        let date = shrooms_core::import::parse_date(&date).unwrap_or(date);
        // Amounts as people write them (`1 234,56`), given to the FEC reader plainly.
        let amount = |v: String| Amount::parse(&v).map(|a| a.plain()).unwrap_or(v);
        let values = COLUMNS
            .iter()
            .map(|c| match *c {
                "EcritureDate" => date.clone(),
                "PieceRef" => cell("EcritureNum"),
                "ValidDate" if validate => date.clone(),
                "Debit" | "Credit" => amount(cell(c)),
                other => cell(other),
            })
            .collect();
        records.push((row.line, values));
    }
    let name = |fec: &str| -> String {
        CSV_FIELDS
            .iter()
            .position(|(_, c)| *c == fec)
            .and_then(|i| cols[i])
            .and_then(|c| table.columns.get(c).cloned())
            .unwrap_or_else(|| fec.to_string())
    };
    import_records(db, who, cap, records, &name, Origin::CsvJournal).await
}
