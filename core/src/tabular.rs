//! Reading tables out of the files people actually have: CSV exported by a
//! spreadsheet or an old membership tool (any of `,` `;` tab as separator,
//! RFC 4180 quoting, UTF-8 with or without a byte-order mark, UTF-16 from
//! "Unicode text" exports, Windows-1252 when the bytes are not UTF-8) and
//! OpenDocument spreadsheets (`.ods`, the first sheet).
//!
//! A reader yields rows of strings and the line (or sheet row) each starts
//! on, so an import can say where a bad value is. It knows nothing of what
//! the columns mean: that is [`crate::import`]'s job. It never allocates for
//! the empty cells and rows a spreadsheet repeats to its last column and row.

use std::fmt;

/// One row of the file: the line (CSV) or sheet row (ODS) it starts on,
/// 1-based as people count them, and its cells, trailing empty ones removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub cells: Vec<String>,
}

/// A file read as a table: the header row's column names and the rows after it.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// What was read, for the preview: `csv (;, windows-1252)` or `ods`.
    pub format: String,
}

impl Table {
    /// The cell of a row under a column, empty when the row is shorter.
    pub fn cell(row: &Row, column: usize) -> &str {
        row.cells.get(column).map(String::as_str).unwrap_or("")
    }
}

/// Why a file could not be read as a table; the message is for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TabularError(pub String);

impl fmt::Display for TabularError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TabularError {}

fn err<T>(m: impl Into<String>) -> Result<T, TabularError> {
    Err(TabularError(m.into()))
}

/// Most rows a file may hold (a bigger file is refused, not truncated).
pub const MAX_ROWS: usize = 1_000_000;
/// Most columns kept per row.
pub const MAX_COLUMNS: usize = 512;
/// Largest `content.xml` inflated from an ODS file (a guard against zip bombs).
pub const MAX_INFLATED: usize = 512 * 1024 * 1024;

/// Reads a CSV or ODS file (told apart by content, not by name) into a table
/// whose first non-empty row is the header.
pub fn read(bytes: &[u8]) -> Result<Table, TabularError> {
    let (rows, format) = if bytes.starts_with(b"PK\x03\x04") {
        (read_ods(bytes)?, "ods".to_string())
    } else {
        let (text, encoding) = decode_text(bytes);
        let sep = detect_separator(&text);
        let name = match sep {
            '\t' => "tab".to_string(),
            c => c.to_string(),
        };
        (read_csv(&text, sep)?, format!("csv ({name}, {encoding})"))
    };
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return err("The file is empty: it needs a header row and at least one row of data.");
    };
    let columns = header
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let c = c.trim();
            if c.is_empty() {
                format!("#{}", i + 1)
            } else {
                c.to_string()
            }
        })
        .collect();
    Ok(Table { columns, rows: rows.collect(), format })
}

// ---------- text decoding ----------

/// Windows-1252's characters for the bytes 0x80–0x9F (the rest is Latin-1).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘', '’',
    '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// The text of a file and the name of the encoding it was read in: UTF-8
/// (byte-order mark dropped), UTF-16 when it starts with its byte-order
/// mark, else Windows-1252, what French spreadsheets and Galette exports
/// write when they are not UTF-8 (a superset of Latin-1 for letters).
pub fn decode_text(bytes: &[u8]) -> (String, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        if let Ok(s) = std::str::from_utf8(rest) {
            return (s.to_string(), "utf-8");
        }
    }
    for (bom, le) in [(b"\xFF\xFE", true), (b"\xFE\xFF", false)] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            let units = rest.chunks_exact(2).map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            return (char::decode_utf16(units).map(|r| r.unwrap_or('\u{FFFD}')).collect(), "utf-16");
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), "utf-8");
    }
    let s = bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[(b - 0x80) as usize],
            b => b as char,
        })
        .collect();
    (s, "windows-1252")
}

// ---------- CSV ----------

/// The separator of the header line (outside quotes): the most frequent of
/// tab, `;` and `,` (in that order on a tie); `,` when there is none.
pub fn detect_separator(text: &str) -> char {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            '\t' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            ',' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    if best == 0 {
        return ',';
    }
    ['\t', ';', ','][counts.iter().position(|&n| n == best).unwrap_or(2)]
}

/// Parses CSV text (RFC 4180, leniently: a quote inside an unquoted field is
/// kept as a character; `\r\n`, `\n` and `\r` all end a record). Blank lines
/// are skipped; each row keeps the line it starts on.
pub fn read_csv(text: &str, sep: char) -> Result<Vec<Row>, TabularError> {
    let mut rows = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut quoted = false; // inside a quoted field
    let mut was_quoted = false; // the current field started with a quote
    let mut chars = text.chars().peekable();
    let end_record = |cells: &mut Vec<String>, field: &mut String, start_line: usize, rows: &mut Vec<Row>| {
        cells.push(std::mem::take(field));
        while cells.last().is_some_and(|c| c.is_empty()) {
            cells.pop();
        }
        if !cells.is_empty() {
            cells.truncate(MAX_COLUMNS);
            rows.push(Row { line: start_line, cells: std::mem::take(cells) });
        }
        rows.len() <= MAX_ROWS
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    field.push('\n');
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            c if c == sep => {
                cells.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !end_record(&mut cells, &mut field, start_line, &mut rows) {
                    return err(format!("The file has more than {MAX_ROWS} rows; split it."));
                }
                was_quoted = false;
                line += 1;
                start_line = line;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return err(format!("A quoted field that starts on line {start_line} is never closed."));
    }
    if !end_record(&mut cells, &mut field, start_line, &mut rows) {
        return err(format!("The file has more than {MAX_ROWS} rows; split it."));
    }
    Ok(rows)
}

// ---------- ZIP (just what reading an ODS file needs) ----------

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// One entry of a ZIP archive, inflated if it was deflated, found through the
/// central directory (local headers may leave sizes to a trailing descriptor).
pub fn zip_entry(zip: &[u8], wanted: &str) -> Result<Vec<u8>, TabularError> {
    const BAD: &str = "The file looks like a spreadsheet but its archive is damaged.";
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
    let floor = zip.len().saturating_sub(65_535 + 22);
    let eocd = (floor..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| TabularError(BAD.into()))?;
    let count = u16_at(zip, eocd + 10).ok_or_else(|| TabularError(BAD.into()))?;
    let mut at = u32_at(zip, eocd + 16).ok_or_else(|| TabularError(BAD.into()))?;
    for _ in 0..count {
        let entry = (|| {
            if zip.get(at..at + 4)? != [0x50, 0x4b, 0x01, 0x02] {
                return None;
            }
            let method = u16_at(zip, at + 10)?;
            let compressed = u32_at(zip, at + 20)?;
            let size = u32_at(zip, at + 24)?;
            let (name_len, extra_len, comment_len) =
                (u16_at(zip, at + 28)?, u16_at(zip, at + 30)?, u16_at(zip, at + 32)?);
            let local = u32_at(zip, at + 42)?;
            let name = zip.get(at + 46..at + 46 + name_len)?;
            Some((method, compressed, size, local, name, 46 + name_len + extra_len + comment_len))
        })();
        let Some((method, compressed, size, local, name, len)) = entry else {
            return err(BAD);
        };
        at += len;
        if name != wanted.as_bytes() {
            continue;
        }
        let data = (|| {
            if zip.get(local..local + 4)? != [0x50, 0x4b, 0x03, 0x04] {
                return None;
            }
            let start = local + 30 + u16_at(zip, local + 26)? + u16_at(zip, local + 28)?;
            zip.get(start..start.checked_add(compressed)?)
        })()
        .ok_or_else(|| TabularError(BAD.into()))?;
        return match method {
            0 => Ok(data.to_vec()),
            8 => {
                if size > MAX_INFLATED {
                    return err("The spreadsheet is too large once uncompressed.");
                }
                miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_INFLATED)
                    .map_err(|_| TabularError(BAD.into()))
            }
            _ => {
                err("The spreadsheet uses a compression method that is not supported; save it again from LibreOffice.")
            }
        };
    }
    err(format!("The archive has no {wanted}: is it an OpenDocument spreadsheet (.ods)?"))
}

// ---------- ODS content.xml ----------

/// Replaces XML entities and character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of an attribute in the inside of a start tag (`name a="v" b='w'`).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i > 0 && rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok {
            if let Some(v) = after.strip_prefix('=') {
                let v = v.trim_start();
                let q = v.chars().next()?;
                if q == '"' || q == '\'' {
                    let end = v[1..].find(q)?;
                    return Some(&v[1..1 + end]);
                }
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

struct Sheet {
    rows: Vec<Row>,
    line: usize,
    cells: Vec<String>,
    /// Empty cells seen but not stored yet: stored only if a value follows.
    pending_empty: usize,
    row_repeat: usize,
    cell_repeat: usize,
    cell_value: Option<String>,
    cell_text: String,
    paragraphs: usize,
    in_cell: bool,
    in_p: usize,
    skip_depth: usize,
}

impl Sheet {
    fn end_cell(&mut self) -> Result<(), TabularError> {
        let text = std::mem::take(&mut self.cell_text);
        let value = match self.cell_value.take() {
            // Digits shown as typed keep their leading zeros (phone numbers, postcodes).
            Some(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text,
            Some(v) => v,
            None => text,
        };
        let n = self.cell_repeat.max(1);
        if value.is_empty() {
            self.pending_empty += n;
        } else {
            if self.cells.len() + self.pending_empty + n > MAX_COLUMNS {
                let room = MAX_COLUMNS.saturating_sub(self.cells.len());
                self.cells.extend(std::iter::repeat_n(String::new(), self.pending_empty.min(room)));
                let room = MAX_COLUMNS.saturating_sub(self.cells.len());
                self.cells.extend(std::iter::repeat_n(value, n.min(room)));
            } else {
                self.cells.extend(std::iter::repeat_n(String::new(), self.pending_empty));
                self.cells.extend(std::iter::repeat_n(value, n));
            }
            self.pending_empty = 0;
        }
        self.in_cell = false;
        Ok(())
    }

    fn end_row(&mut self) -> Result<(), TabularError> {
        let n = self.row_repeat.max(1);
        let cells = std::mem::take(&mut self.cells);
        self.pending_empty = 0;
        if !cells.is_empty() {
            if self.rows.len() + n > MAX_ROWS {
                return err(format!("The spreadsheet has more than {MAX_ROWS} rows; split it."));
            }
            for k in 0..n {
                self.rows.push(Row { line: self.line + k, cells: cells.clone() });
            }
        }
        self.line = self.line.saturating_add(n);
        Ok(())
    }
}

/// The rows of the first sheet of an ODS file.
pub fn read_ods(bytes: &[u8]) -> Result<Vec<Row>, TabularError> {
    let xml = zip_entry(bytes, "content.xml")?;
    let xml = std::str::from_utf8(&xml).map_err(|_| TabularError("The spreadsheet's content is not UTF-8.".into()))?;
    parse_content(xml)
}

fn parse_content(xml: &str) -> Result<Vec<Row>, TabularError> {
    let mut s = Sheet {
        rows: Vec::new(),
        line: 1,
        cells: Vec::new(),
        pending_empty: 0,
        row_repeat: 1,
        cell_repeat: 1,
        cell_value: None,
        cell_text: String::new(),
        paragraphs: 0,
        in_cell: false,
        in_p: 0,
        skip_depth: 0,
    };
    let mut table_depth = 0usize; // >0 inside the first table
    let mut seen_table = false;
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        if lt > 0 && s.in_p > 0 && s.skip_depth == 0 {
            s.cell_text.push_str(&unescape(&rest[..lt]));
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = r.find("-->").map(|e| &r[e + 3..]).unwrap_or("");
            continue;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let e = r.find("]]>").unwrap_or(r.len());
            if s.in_p > 0 && s.skip_depth == 0 {
                s.cell_text.push_str(&r[..e]);
            }
            rest = r.get(e + 3..).unwrap_or("");
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = rest.find('>').map(|e| &rest[e + 1..]).unwrap_or("");
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            if table_depth == 0 {
                continue;
            }
            match name {
                "table:table" => {
                    table_depth -= 1;
                    if table_depth == 0 {
                        break; // only the first sheet
                    }
                }
                "office:annotation" if s.skip_depth > 0 => s.skip_depth -= 1,
                _ if s.skip_depth > 0 => {}
                "table:table-row" => s.end_row()?,
                "table:table-cell" | "table:covered-table-cell" => s.end_cell()?,
                "text:p" | "text:h" => s.in_p = s.in_p.saturating_sub(1),
                _ => {}
            }
            continue;
        }
        let empty = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split(|c: char| c.is_ascii_whitespace()).next().unwrap_or("");
        if name == "table:table" {
            if seen_table && table_depth == 0 {
                continue;
            }
            seen_table = true;
            if !empty {
                table_depth += 1;
            }
            continue;
        }
        if table_depth == 0 {
            continue;
        }
        if s.skip_depth > 0 {
            if name == "office:annotation" && !empty {
                s.skip_depth += 1;
            }
            continue;
        }
        let repeat =
            |a: &str, cap: usize| attr(tag, a).and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).clamp(1, cap);
        match name {
            "office:annotation" if !empty => s.skip_depth = 1,
            "table:table-row" => {
                s.row_repeat = repeat("table:number-rows-repeated", MAX_ROWS + 1);
                s.cells.clear();
                s.pending_empty = 0;
                if empty {
                    s.end_row()?;
                }
            }
            "table:table-cell" | "table:covered-table-cell" => {
                s.cell_repeat = repeat("table:number-columns-repeated", MAX_COLUMNS + 1);
                s.cell_text.clear();
                s.paragraphs = 0;
                s.cell_value = match attr(tag, "office:value-type") {
                    Some("float" | "percentage" | "currency") => attr(tag, "office:value").map(unescape),
                    Some("date") => attr(tag, "office:date-value").map(unescape),
                    Some("time") => attr(tag, "office:time-value").map(unescape),
                    Some("boolean") => attr(tag, "office:boolean-value").map(unescape),
                    _ => None,
                };
                s.in_cell = true;
                if empty {
                    s.end_cell()?;
                }
            }
            "text:p" | "text:h" if s.in_cell => {
                if s.paragraphs > 0 {
                    s.cell_text.push('\n');
                }
                s.paragraphs += 1;
                if !empty {
                    s.in_p += 1;
                }
            }
            "text:s" if s.in_p > 0 => {
                let n = attr(tag, "text:c").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).min(1000);
                s.cell_text.extend(std::iter::repeat_n(' ', n));
            }
            "text:tab" if s.in_p > 0 => s.cell_text.push('\t'),
            "text:line-break" if s.in_p > 0 => s.cell_text.push('\n'),
            _ => {}
        }
    }
    Ok(s.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(rows: &[Row]) -> Vec<Vec<&str>> {
        rows.iter().map(|r| r.cells.iter().map(String::as_str).collect()).collect()
    }

    #[test]
    fn csv_quoting_and_separators() {
        let text = "Nom;Prénom;Note\r\nDupont;\"Jean; dit \"\"Jeannot\"\"\";\"deux\nlignes\"\r\n\r\nMartin;Léa;\n";
        assert_eq!(detect_separator(text), ';');
        let rows = read_csv(text, ';').unwrap();
        assert_eq!(
            cells(&rows),
            vec![
                vec!["Nom", "Prénom", "Note"],
                vec!["Dupont", "Jean; dit \"Jeannot\"", "deux\nlignes"],
                vec!["Martin", "Léa"]
            ]
        );
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 5]);
        assert_eq!(detect_separator("a\tb\tc\n1,5\t2\t3"), '\t');
        assert_eq!(detect_separator("\"a;b\",c\n"), ',');
        assert_eq!(detect_separator("single\n"), ',');
        assert!(read_csv("a,\"b\n", ',').is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFNom;Pr\xC3\xA9nom"), ("Nom;Prénom".to_string(), "utf-8"));
        assert_eq!(decode_text(b"Nom;Pr\xE9nom;\x80;\x9C"), ("Nom;Prénom;€;œ".to_string(), "windows-1252"));
        assert_eq!(decode_text(b"\xFF\xFEN\x00\xE9\x00"), ("Né".to_string(), "utf-16"));
        let t = read(b"\xEF\xBB\xBFnom,email\nA,a@x.org\n").unwrap();
        assert_eq!(t.columns, vec!["nom", "email"]);
        assert_eq!(t.rows[0].line, 2);
    }

    #[test]
    fn ods_stored_and_deflated() {
        let ods = crate::ods::spreadsheet("S", &["Nom", "Prénom"], &[vec!["Dupont".into(), "Zoé & co".into()]]);
        let t = read(&ods).unwrap();
        assert_eq!(t.columns, vec!["Nom", "Prénom"]);
        assert_eq!(cells(&t.rows), vec![vec!["Dupont", "Zoé & co"]]);
        // The same archive with content.xml deflated.
        let content = zip_entry(&ods, "content.xml").unwrap();
        let packed = miniz_oxide::deflate::compress_to_vec(&content, 6);
        let zip = one_entry_zip("content.xml", 8, &packed, content.len());
        assert_eq!(read_ods(&zip).unwrap(), read_ods(&ods).unwrap());
    }

    fn one_entry_zip(name: &str, method: u16, data: &[u8], size: usize) -> Vec<u8> {
        let mut z = Vec::new();
        let mut h = Vec::new();
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0; 8]); // time, date, crc
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(size as u32).to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(b"PK\x03\x04");
        z.extend_from_slice(&h);
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(data);
        let cd = z.len();
        z.extend_from_slice(b"PK\x01\x02\x14\x00");
        z.extend_from_slice(&h);
        z.extend_from_slice(&[0; 10]); // comment, disk, attributes
        z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        z.extend_from_slice(name.as_bytes());
        let cd_len = z.len() - cd;
        z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\x00\x01\x00");
        z.extend_from_slice(&(cd_len as u32).to_le_bytes());
        z.extend_from_slice(&(cd as u32).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z
    }

    #[test]
    fn ods_repeats_values_spans_and_annotations() {
        let xml = r#"<?xml version="1.0"?><office:document-content><office:body><office:spreadsheet>
<table:table table:name="One">
<table:table-column table:number-columns-repeated="3"/>
<table:table-row><table:table-cell office:value-type="string"><text:p>Nom</text:p></table:table-cell><table:table-cell><text:p>Né le</text:p></table:table-cell><table:table-cell><text:p>Tél</text:p></table:table-cell><table:table-cell table:number-columns-repeated="16380"/></table:table-row>
<table:table-row table:number-rows-repeated="2"><table:table-cell><text:p>L<text:span text:style-name="T1">é</text:span>a<text:s text:c="2"/>D</text:p><text:p>2e ligne</text:p><office:annotation><text:p>comment</text:p></office:annotation></table:table-cell><table:table-cell office:value-type="date" office:date-value="1990-05-17"><text:p>17/05/1990</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="612345678"><text:p>0612345678</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell table:number-columns-repeated="2"/><table:table-cell office:value-type="float" office:value="1234.5"><text:p>1 234,50</text:p></table:table-cell></table:table-row>
<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>
</table:table><table:table table:name="Two"><table:table-row><table:table-cell><text:p>ignored</text:p></table:table-cell></table:table-row></table:table>
</office:spreadsheet></office:body></office:document-content>"#;
        let rows = parse_content(xml).unwrap();
        assert_eq!(
            cells(&rows),
            vec![
                vec!["Nom", "Né le", "Tél"],
                vec!["Léa  D\n2e ligne", "1990-05-17", "0612345678"],
                vec!["Léa  D\n2e ligne", "1990-05-17", "0612345678"],
                vec!["", "", "1234.5"],
            ]
        );
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(unescape("a &amp; b &#233;&#xE9; &bogus; &"), "a & b éé &bogus; &");
    }

    #[test]
    fn damaged_files_are_refused_with_a_reason() {
        assert!(read(b"PK\x03\x04garbage").is_err());
        assert!(read(b"").is_err());
        assert!(read(b"\n\n").is_err());
    }
}
