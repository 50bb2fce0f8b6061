//! The shared PDF layer: printable documents (lists, reports, and later
//! receipts and invoices) with the organisation's branding, written here
//! without a dependency.
//!
//! A [`Document`] flows text, headings, key–value blocks and tables onto A4
//! pages, breaking pages where needed (a table repeats its header), and ends
//! each page with the organisation's name, the date and "page n / N". Text
//! uses the standard Helvetica faces with the WinAnsi encoding, which covers
//! French and the other western European languages (characters outside it
//! print as `?`). The standard faces are not embedded: documents that must
//! be PDF/A (invoices with Factur-X) will need an embedded font, to be added
//! here.

/// What the organisation puts on its documents.
#[derive(Clone, Debug)]
pub struct Branding {
    pub org_name: String,
    /// The brand colour (`#RRGGBB`), used for the top bar and table headers.
    pub colour: String,
}

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 48.0;
const BOTTOM: f32 = 60.0;

include!("pdf_metrics.rs");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Regular,
    Bold,
}

/// A document being laid out.
pub struct Document {
    title: String,
    branding: Branding,
    pages: Vec<String>,
    page: String,
    y: f32,
}

fn rgb(hex: &str) -> (f32, f32, f32) {
    let h = hex.trim_start_matches('#');
    let c = |i: usize| u8::from_str_radix(h.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128) as f32 / 255.0;
    if h.len() == 6 {
        (c(0), c(2), c(4))
    } else {
        (1.0, 0.42, 0.21)
    }
}

/// The WinAnsi byte of a character, `?` when it has none.
fn win_ansi(c: char) -> u8 {
    let u = c as u32;
    match u {
        0x20..=0x7E | 0xA0..=0xFF => u as u8,
        _ => match c {
            '€' => 0x80,
            '‚' => 0x82,
            'ƒ' => 0x83,
            '„' => 0x84,
            '…' => 0x85,
            '†' => 0x86,
            '‡' => 0x87,
            'ˆ' => 0x88,
            '‰' => 0x89,
            'Š' => 0x8A,
            '‹' => 0x8B,
            'Œ' => 0x8C,
            'Ž' => 0x8E,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '˜' => 0x98,
            '™' => 0x99,
            'š' => 0x9A,
            '›' => 0x9B,
            'œ' => 0x9C,
            'ž' => 0x9E,
            'Ÿ' => 0x9F,
            '\u{202f}' | '\u{2009}' => 0xA0,
            _ => b'?',
        },
    }
}

/// Width of `text` in points at `size`.
pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    let units: u32 = text
        .chars()
        .map(|c| {
            let b = win_ansi(c);
            if b >= 32 {
                table[(b - 32) as usize] as u32
            } else {
                table[0] as u32
            }
        })
        .sum();
    units as f32 * size / 1000.0
}

/// A PDF string literal in WinAnsi.
fn pdf_string(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in text.chars() {
        let b = win_ansi(c);
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// Breaks `text` into lines no wider than `width`.
pub fn wrap(text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if text_width(&candidate, size, bold) <= width || line.is_empty() {
                line = candidate;
                // A single word wider than the line is cut.
                while text_width(&line, size, bold) > width && line.chars().count() > 1 {
                    let cut: String = line
                        .chars()
                        .take_while({
                            let mut w = 0.0;
                            move |c| {
                                w += text_width(&c.to_string(), size, bold);
                                w <= width
                            }
                        })
                        .collect();
                    let rest: String = line.chars().skip(cut.chars().count().max(1)).collect();
                    lines.push(if cut.is_empty() { line.chars().take(1).collect() } else { cut });
                    line = rest;
                }
            } else {
                lines.push(std::mem::take(&mut line));
                line = word.to_string();
            }
        }
        lines.push(line);
    }
    lines
}

/// Shortens `text` with an ellipsis to fit `width`.
fn fit(text: &str, size: f32, bold: bool, width: f32) -> String {
    if text_width(text, size, bold) <= width {
        return text.to_string();
    }
    let mut s: String = text.to_string();
    while !s.is_empty() && text_width(&format!("{s}…"), size, bold) > width {
        s.pop();
    }
    format!("{}…", s.trim_end())
}

impl Document {
    pub fn new(title: &str, branding: Branding) -> Document {
        let mut d = Document { title: title.to_string(), branding, pages: Vec::new(), page: String::new(), y: 0.0 };
        d.start_page();
        d
    }

    fn start_page(&mut self) {
        if !self.page.is_empty() {
            self.pages.push(std::mem::take(&mut self.page));
        }
        let (r, g, b) = rgb(&self.branding.colour);
        // The brand bar, then the organisation's name and the title.
        self.page.push_str(&format!("{r:.3} {g:.3} {b:.3} rg 0 {:.2} {PAGE_W:.2} 8 re f\n", PAGE_H - 8.0));
        self.y = PAGE_H - MARGIN;
        let org = self.branding.org_name.clone();
        self.text_at(MARGIN, self.y, &org, 10.0, Face::Bold, (0.3, 0.3, 0.3));
        let title = fit(&self.title, 10.0, false, PAGE_W / 2.0);
        let w = text_width(&title, 10.0, false);
        self.text_at(PAGE_W - MARGIN - w, self.y, &title, 10.0, Face::Regular, (0.3, 0.3, 0.3));
        self.y -= 28.0;
    }

    fn text_at(&mut self, x: f32, y: f32, text: &str, size: f32, face: Face, colour: (f32, f32, f32)) {
        let font = if face == Face::Bold { "F2" } else { "F1" };
        self.page.push_str(&format!(
            "BT {:.3} {:.3} {:.3} rg /{font} {size} Tf {x:.2} {y:.2} Td ",
            colour.0, colour.1, colour.2
        ));
        // The page is kept as one char per byte (Latin-1 view of WinAnsi).
        self.page.extend(pdf_string(text).into_iter().map(|b| b as char));
        self.page.push_str(" Tj ET\n");
    }

    /// Room for `h` points more on this page, or a new page.
    fn need(&mut self, h: f32) -> bool {
        if self.y - h < BOTTOM {
            self.start_page();
            true
        } else {
            false
        }
    }

    pub fn heading(&mut self, text: &str) {
        self.need(40.0);
        self.y -= 6.0;
        for line in wrap(text, 16.0, true, PAGE_W - 2.0 * MARGIN) {
            self.need(20.0);
            self.text_at(MARGIN, self.y, &line, 16.0, Face::Bold, (0.1, 0.13, 0.17));
            self.y -= 20.0;
        }
        self.y -= 4.0;
    }

    pub fn paragraph(&mut self, text: &str) {
        for line in wrap(text, 10.0, false, PAGE_W - 2.0 * MARGIN) {
            self.need(14.0);
            self.text_at(MARGIN, self.y, &line, 10.0, Face::Regular, (0.18, 0.22, 0.28));
            self.y -= 14.0;
        }
        self.y -= 6.0;
    }

    /// A square matrix of dark cells (a QR code), `cell` points each, at the
    /// left margin, on one page.
    pub fn matrix(&mut self, cells: &[Vec<bool>], cell: f32) {
        let side = cells.len() as f32 * cell;
        self.need(side + 12.0);
        let top = self.y;
        self.page.push_str("0 0 0 rg\n");
        for (r, row) in cells.iter().enumerate() {
            for (c, dark) in row.iter().enumerate() {
                if *dark {
                    let x = MARGIN + c as f32 * cell;
                    let y = top - (r as f32 + 1.0) * cell;
                    self.page.push_str(&format!("{x:.2} {y:.2} {cell:.2} {cell:.2} re f\n"));
                }
            }
        }
        self.y -= side + 12.0;
    }

    /// Label: value lines, labels in bold.
    pub fn key_values(&mut self, pairs: &[(&str, &str)]) {
        let label_w = pairs.iter().map(|(k, _)| text_width(k, 10.0, true)).fold(0.0, f32::max).min(180.0) + 12.0;
        for (k, v) in pairs {
            let lines = wrap(v, 10.0, false, PAGE_W - 2.0 * MARGIN - label_w);
            self.need(14.0 * lines.len().max(1) as f32);
            self.text_at(MARGIN, self.y, &fit(k, 10.0, true, label_w - 12.0), 10.0, Face::Bold, (0.1, 0.13, 0.17));
            for l in lines {
                self.text_at(MARGIN + label_w, self.y, &l, 10.0, Face::Regular, (0.18, 0.22, 0.28));
                self.y -= 14.0;
            }
        }
        self.y -= 6.0;
    }

    /// A table: `widths` are shares of the text width; cells too long are
    /// shortened with an ellipsis; the header row repeats on every page.
    pub fn table(&mut self, headers: &[&str], widths: &[f32], rows: &[Vec<String>]) {
        let total: f32 = widths.iter().sum::<f32>().max(0.001);
        let avail = PAGE_W - 2.0 * MARGIN;
        let cols: Vec<f32> = widths.iter().map(|w| w / total * avail).collect();
        let header = |d: &mut Document| {
            let (r, g, b) = rgb(&d.branding.colour);
            d.page.push_str(&format!("{r:.3} {g:.3} {b:.3} rg {MARGIN:.2} {:.2} {avail:.2} 16 re f\n", d.y - 4.0));
            let mut x = MARGIN + 3.0;
            for (h, w) in headers.iter().zip(&cols) {
                let t = fit(h, 9.0, true, w - 6.0);
                d.text_at(x, d.y + 1.0, &t, 9.0, Face::Bold, (0.1, 0.13, 0.17));
                x += w;
            }
            d.y -= 18.0;
        };
        self.need(40.0);
        header(self);
        for (i, row) in rows.iter().enumerate() {
            if self.need(14.0) {
                header(self);
            }
            if i % 2 == 1 {
                self.page.push_str(&format!("0.95 0.96 0.97 rg {MARGIN:.2} {:.2} {avail:.2} 14 re f\n", self.y - 4.0));
            }
            let mut x = MARGIN + 3.0;
            for (cell, w) in row.iter().zip(&cols) {
                let t = fit(cell, 9.0, false, w - 6.0);
                self.text_at(x, self.y, &t, 9.0, Face::Regular, (0.18, 0.22, 0.28));
                x += w;
            }
            self.y -= 14.0;
        }
        self.y -= 8.0;
    }

    /// The finished file. `footer` is the line printed at the foot of every
    /// page before "n / N" (the date, a legal mention).
    pub fn finish(mut self, footer: &str) -> Vec<u8> {
        self.pages.push(std::mem::take(&mut self.page));
        let n = self.pages.len();
        let pages: Vec<String> = std::mem::take(&mut self.pages);
        let mut contents = Vec::new();
        for (i, mut p) in pages.into_iter().enumerate() {
            self.page = String::new();
            let left = fit(&format!("{} · {footer}", self.branding.org_name), 8.0, false, PAGE_W - 2.0 * MARGIN - 60.0);
            self.text_at(MARGIN, 30.0, &left, 8.0, Face::Regular, (0.45, 0.5, 0.56));
            let num = format!("{} / {n}", i + 1);
            let w = text_width(&num, 8.0, false);
            self.text_at(PAGE_W - MARGIN - w, 30.0, &num, 8.0, Face::Regular, (0.45, 0.5, 0.56));
            p.push_str(&self.page);
            contents.push(p);
        }
        write_pdf(&self.title, &contents)
    }
}

/// A line of text placed on a page, from the bottom left corner in points
/// (A4 is 595 × 842), for sheets laid out by their caller (address labels).
pub struct Placed {
    pub x: f32,
    pub y: f32,
    pub text: String,
    pub size: f32,
    pub bold: bool,
}

/// A file of pages holding only the given placed lines: no brand bar, no
/// footer (labels are printed on pre-cut sheets). Text is cut to `width`.
pub fn placed_pages(title: &str, pages: &[Vec<Placed>], width: f32) -> Vec<u8> {
    let mut d = Document {
        title: title.to_string(),
        branding: Branding { org_name: String::new(), colour: String::new() },
        pages: Vec::new(),
        page: String::new(),
        y: 0.0,
    };
    let mut contents = Vec::new();
    for p in pages {
        d.page = String::new();
        for t in p {
            let line = fit(&t.text, t.size, t.bold, width);
            d.text_at(t.x, t.y, &line, t.size, if t.bold { Face::Bold } else { Face::Regular }, (0.0, 0.0, 0.0));
        }
        contents.push(std::mem::take(&mut d.page));
    }
    if contents.is_empty() {
        contents.push(String::new());
    }
    write_pdf(title, &contents)
}

/// Assembles the objects: catalog, pages, fonts, content streams, info.
fn write_pdf(title: &str, contents: &[String]) -> Vec<u8> {
    let mut out: Vec<u8> = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets: Vec<usize> = Vec::new();
    let n = contents.len();
    // Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, 5 info,
    // then for each page: page object, content stream.
    let page_id = |i: usize| 6 + 2 * i;
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", page_id(i))).collect();
    let obj = |out: &mut Vec<u8>, offsets: &mut Vec<usize>, body: &[u8]| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, &mut offsets, b"<< /Type /Catalog /Pages 2 0 R >>");
    obj(&mut out, &mut offsets, format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).as_bytes());
    obj(&mut out, &mut offsets, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    obj(
        &mut out,
        &mut offsets,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    );
    let now = time::OffsetDateTime::now_utc();
    let date = format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut info = b"<< /Title ".to_vec();
    info.extend_from_slice(&pdf_string(title));
    info.extend_from_slice(format!(" /Producer (Shrooms) /CreationDate ({date}) >>").as_bytes());
    obj(&mut out, &mut offsets, &info);
    for (i, c) in contents.iter().enumerate() {
        obj(
            &mut out,
            &mut offsets,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                page_id(i) + 1
            )
            .as_bytes(),
        );
        // Content streams hold WinAnsi bytes: rebuild them from the text.
        let bytes: Vec<u8> = c.chars().map(|ch| if (ch as u32) < 256 { ch as u32 as u8 } else { b'?' }).collect();
        let mut body = format!("<< /Length {} >>\nstream\n", bytes.len()).into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\nendstream");
        obj(&mut out, &mut offsets, &body);
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1)
            .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_font() {
        assert_eq!(text_width("i", 1000.0, false), 222.0);
        assert_eq!(text_width("W", 1000.0, false), 944.0);
        assert!(text_width("Bonjour", 10.0, true) > text_width("Bonjour", 10.0, false));
        assert_eq!(win_ansi('é'), 0xE9);
        assert_eq!(win_ansi('€'), 0x80);
        assert_eq!(win_ansi('œ'), 0x9C);
        assert_eq!(win_ansi('漢'), b'?');
    }

    #[test]
    fn long_text_wraps_within_the_width() {
        let text = "Les associations gèrent leurs adhérents, leurs cotisations et leurs activités avec Shrooms.";
        let lines = wrap(text, 10.0, false, 150.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, 10.0, false) <= 150.0), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn a_document_has_pages_and_a_valid_trailer() {
        let mut d =
            Document::new("Annuaire", Branding { org_name: "AESI (Club) \\ test".into(), colour: "#FF6B35".into() });
        d.heading("Personnes");
        let rows: Vec<Vec<String>> = (0..120).map(|i| vec![format!("Personne {i}"), "é@example.org".into()]).collect();
        d.table(&["Nom", "Email"], &[2.0, 3.0], &rows);
        let pdf = d.finish("21/11/2026");
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-1.7"));
        assert!(text.contains("/Count 3"), "120 rows need three pages");
        assert!(text.contains("(AESI \\(Club\\) \\\\ test)"), "strings are escaped");
        assert!(text.trim_end().ends_with("%%EOF"));
        assert!(pdf.windows(3).any(|w| w == [b'(', 0xE9, b'@']), "accents are WinAnsi bytes");
        // The xref offset points at the xref table.
        let start: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[start..].starts_with(b"xref"));
    }
}
