//! The printed document: an A4 layout that flows onto as many pages as the
//! lines and notes need, drawn with the embedded Liberation Sans faces.
//! Layout first records drawing operations per page; the writer then knows
//! every glyph used and embeds only those.

mod font;
mod image;
mod labels;
mod writer;

use crate::format::{format_amount, format_date, format_quantity, format_rate};
use crate::{DocKind, Document, Lang, Party};
use font::Font;
use labels::Labels;

pub(crate) const PAGE_W: f32 = 595.28;
pub(crate) const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// Content stops here; the footer sits below.
const BOTTOM: f32 = 64.0;

const INK: (f32, f32, f32) = (0.12, 0.14, 0.17);
const MUTED: (f32, f32, f32) = (0.40, 0.44, 0.50);
const RULE: (f32, f32, f32) = (0.82, 0.84, 0.87);
const SHADE: (f32, f32, f32) = (0.95, 0.96, 0.97);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Face {
    Regular = 0,
    Bold = 1,
}

pub(crate) enum Op {
    Text { x: f32, y: f32, size: f32, face: Face, colour: (f32, f32, f32), text: String },
    Rect { x: f32, y: f32, w: f32, h: f32, colour: (f32, f32, f32) },
    Rule { x1: f32, y1: f32, x2: f32, y2: f32, width: f32, colour: (f32, f32, f32) },
    Image { x: f32, y: f32, w: f32, h: f32 },
}

/// A line of text with its face, size and colour.
type Styled = (String, Face, f32, (f32, f32, f32));

pub(crate) struct Page {
    pub(crate) ops: Vec<Op>,
}

fn rgb(hex: &str) -> (f32, f32, f32) {
    let h = hex.trim_start_matches('#');
    let c = |i: usize| u8::from_str_radix(h.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128) as f32 / 255.0;
    if h.len() == 6 && h.is_ascii() {
        (c(0), c(2), c(4))
    } else {
        (0.20, 0.30, 0.45)
    }
}

/// Relative luminance, to choose dark or white text on the brand colour.
fn luminance((r, g, b): (f32, f32, f32)) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// A table column: where it starts, how wide, and whether numbers align right.
struct Col {
    x: f32,
    w: f32,
    right: bool,
}

struct Layout<'a> {
    doc: &'a Document,
    l: &'static Labels,
    fonts: [Font; 2],
    pages: Vec<Page>,
    ops: Vec<Op>,
    y: f32,
    brand: (f32, f32, f32),
    /// Text colour on a brand-coloured background.
    on_brand: (f32, f32, f32),
    /// The brand colour, or ink when the brand is too light to read as text.
    brand_text: (f32, f32, f32),
}

impl<'a> Layout<'a> {
    fn width(&self, text: &str, size: f32, face: Face) -> f32 {
        self.fonts[face as usize].width(text, size)
    }

    /// Breaks `text` into lines no wider than `width`; a word wider than
    /// the line is cut.
    fn wrap(&self, text: &str, size: f32, face: Face, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in para.split_whitespace() {
                let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
                if self.width(&candidate, size, face) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let mut rest = word.to_string();
                while self.width(&rest, size, face) > width && rest.chars().count() > 1 {
                    let mut cut = String::new();
                    for c in rest.chars() {
                        cut.push(c);
                        if self.width(&cut, size, face) > width {
                            cut.pop();
                            break;
                        }
                    }
                    if cut.is_empty() {
                        cut = rest.chars().next().unwrap().to_string();
                    }
                    rest = rest[cut.len()..].to_string();
                    lines.push(cut);
                }
                line = rest;
            }
            lines.push(line);
        }
        lines
    }

    /// Shortens `text` with an ellipsis to fit `width`.
    fn fit(&self, text: &str, size: f32, face: Face, width: f32) -> String {
        if self.width(text, size, face) <= width {
            return text.to_string();
        }
        let mut s = text.to_string();
        while !s.is_empty() && self.width(&format!("{s}…"), size, face) > width {
            s.pop();
        }
        format!("{}…", s.trim_end())
    }

    fn text(&mut self, x: f32, y: f32, text: &str, size: f32, face: Face, colour: (f32, f32, f32)) {
        if !text.is_empty() {
            let text = text.chars().map(|c| self.fonts[face as usize].printable(c)).collect();
            self.ops.push(Op::Text { x, y, size, face, colour, text });
        }
    }

    fn text_right(&mut self, right: f32, y: f32, text: &str, size: f32, face: Face, colour: (f32, f32, f32)) {
        let w = self.width(text, size, face);
        self.text(right - w, y, text, size, face, colour);
    }

    fn rule(&mut self, y: f32, x1: f32, x2: f32) {
        self.ops.push(Op::Rule { x1, y1: y, x2, y2: y, width: 0.5, colour: RULE });
    }

    fn title(&self) -> String {
        format!("{} {} {}", self.l.title(self.doc.kind), self.l.number, self.doc.number)
    }

    /// Ends the page and starts the next with a short running header.
    fn new_page(&mut self) {
        self.pages.push(Page { ops: std::mem::take(&mut self.ops) });
        self.top_bar();
        let y = PAGE_H - 36.0;
        let org = self.doc.branding.org_name.clone();
        self.text(MARGIN, y, &org, 9.0, Face::Bold, INK);
        let running = format!("{} ({})", self.title(), self.l.continued);
        self.text_right(PAGE_W - MARGIN, y, &running, 9.0, Face::Regular, MUTED);
        self.rule(y - 8.0, MARGIN, PAGE_W - MARGIN);
        self.y = y - 26.0;
    }

    fn top_bar(&mut self) {
        self.ops.push(Op::Rect { x: 0.0, y: PAGE_H - 10.0, w: PAGE_W, h: 10.0, colour: self.brand });
    }

    /// Room for `h` points more on this page, or a new page (true).
    fn need(&mut self, h: f32) -> bool {
        if self.y - h < BOTTOM {
            self.new_page();
            true
        } else {
            false
        }
    }

    /// The first page's head: logo and organisation on the left, the title,
    /// number and dates on the right. Returns the lowest point drawn.
    fn header(&mut self, logo: Option<&image::Image>) {
        self.top_bar();
        let top = PAGE_H - 34.0;
        let mut left = top;
        if let Some(img) = logo {
            let (max_w, max_h) = (150.0, 56.0);
            let scale = (max_w / img.width as f32).min(max_h / img.height as f32);
            let (w, h) = (img.width as f32 * scale, img.height as f32 * scale);
            self.ops.push(Op::Image { x: MARGIN, y: top - h, w, h });
            left = top - h - 8.0;
        }
        let org = self.doc.branding.org_name.clone();
        for line in self.wrap(&org, 13.0, Face::Bold, CONTENT_W / 2.0 - 10.0) {
            left -= 13.0;
            self.text(MARGIN, left, &line, 13.0, Face::Bold, INK);
            left -= 3.0;
        }

        let right_edge = PAGE_W - MARGIN;
        let mut right = top - 18.0;
        let title = self.l.title(self.doc.kind).to_uppercase();
        self.text_right(right_edge, right, &title, 20.0, Face::Bold, self.brand_text);
        right -= 18.0;
        let number = format!("{} {}", self.l.number, self.doc.number);
        self.text_right(right_edge, right, &number, 11.0, Face::Bold, INK);
        right -= 16.0;
        let lang = self.doc.lang;
        let mut dates = vec![(self.l.issue_date, format_date(self.doc.issue_date, lang))];
        if let Some(d) = self.doc.due_date {
            let label = if self.doc.kind == DocKind::Quote { self.l.valid_until } else { self.l.due_date };
            dates.push((label, format_date(d, lang)));
        }
        if let Some(d) = self.doc.delivery_date {
            dates.push((self.l.delivery_date, format_date(d, lang)));
        }
        if let Some((a, b)) = self.doc.service_period {
            dates.push((self.l.service_period, self.period(a, b)));
        }
        let value_w = dates.iter().map(|(_, v)| self.width(v, 9.0, Face::Regular)).fold(0.0, f32::max);
        for (label, value) in dates {
            self.text_right(right_edge - value_w - 8.0, right, label, 9.0, Face::Regular, MUTED);
            self.text_right(right_edge, right, &value, 9.0, Face::Regular, INK);
            right -= 13.0;
        }
        self.y = left.min(right) - 14.0;
    }

    fn period(&self, a: time::Date, b: time::Date) -> String {
        let lang = self.doc.lang;
        match lang {
            Lang::Fr => format!("du {} au {}", format_date(a, lang), format_date(b, lang)),
            Lang::En => format!("{} – {}", format_date(a, lang), format_date(b, lang)),
        }
    }

    /// The lines of a party block, each with its face and size.
    fn party_lines(&self, p: &Party, width: f32) -> Vec<Styled> {
        let mut out = Vec::new();
        for l in self.wrap(&p.name, 11.0, Face::Bold, width) {
            out.push((l, Face::Bold, 11.0, INK));
        }
        let mut plain = p.address_lines.clone();
        plain.push(format!("{} {}", p.postcode, p.city).trim().to_string());
        plain.push(p.country.clone());
        if let Some(siren) = &p.siren {
            plain.push(format!("SIREN {siren}"));
        }
        if let Some(siret) = &p.siret {
            plain.push(format!("SIRET {siret}"));
        }
        if let Some(vat) = &p.vat_number {
            plain.push(format!("{} {vat}", self.l.vat_number));
        }
        if let Some(email) = &p.email {
            plain.push(email.clone());
        }
        for text in plain.iter().filter(|t| !t.trim().is_empty()) {
            for l in self.wrap(text, 9.0, Face::Regular, width) {
                out.push((l, Face::Regular, 9.0, INK));
            }
        }
        out
    }

    fn parties(&mut self) {
        let gap = 24.0;
        let col_w = (CONTENT_W - gap) / 2.0;
        let blocks = [
            (self.l.seller, self.party_lines(&self.doc.seller, col_w - 12.0)),
            (self.l.buyer, self.party_lines(&self.doc.buyer, col_w - 12.0)),
        ];
        let height = blocks.iter().map(|(_, ls)| ls.iter().map(|l| l.2 + 3.0).sum::<f32>()).fold(0.0, f32::max) + 30.0;
        self.need(height);
        let top = self.y;
        for (i, (heading, lines)) in blocks.into_iter().enumerate() {
            let x = MARGIN + i as f32 * (col_w + gap);
            if i == 1 {
                self.ops.push(Op::Rect { x, y: top - height + 6.0, w: col_w, h: height, colour: SHADE });
            }
            let mut y = top - 4.0;
            self.text(x + 8.0, y, heading, 8.0, Face::Bold, MUTED);
            y -= 16.0;
            for (text, face, size, colour) in lines {
                self.text(x + 8.0, y, &text, size, face, colour);
                y -= size + 3.0;
            }
        }
        self.y = top - height - 8.0;

        let mut refs = Vec::new();
        if let Some(r) = &self.doc.buyer_reference {
            refs.push(format!("{} : {r}", self.l.buyer_reference));
        }
        if let Some((number, date)) = &self.doc.preceding_invoice {
            refs.push(format!(
                "{} {} {} {}",
                self.l.corrects,
                number,
                self.l.of_date,
                format_date(*date, self.doc.lang)
            ));
        }
        for r in refs {
            for line in self.wrap(&r, 9.0, Face::Regular, CONTENT_W) {
                self.need(13.0);
                self.text(MARGIN, self.y, &line, 9.0, Face::Regular, INK);
                self.y -= 13.0;
            }
        }
        self.y -= 6.0;
    }

    fn line_columns() -> [Col; 6] {
        let widths = [0.0, 44.0, 44.0, 74.0, 46.0, 80.0];
        let desc = CONTENT_W - widths.iter().sum::<f32>();
        let mut x = MARGIN;
        let mut cols = Vec::new();
        for (i, w) in widths.iter().enumerate() {
            let w = if i == 0 { desc } else { *w };
            cols.push(Col { x, w, right: i != 0 && i != 2 });
            x += w;
        }
        cols.try_into().ok().unwrap()
    }

    fn table_header(&mut self, cols: &[Col], titles: &[&str]) {
        self.ops.push(Op::Rect {
            x: cols[0].x,
            y: self.y - 5.0,
            w: cols.iter().map(|c| c.w).sum(),
            h: 17.0,
            colour: self.brand,
        });
        for (c, t) in cols.iter().zip(titles) {
            let t = self.fit(t, 8.5, Face::Bold, c.w - 8.0);
            if c.right {
                self.text_right(c.x + c.w - 4.0, self.y, &t, 8.5, Face::Bold, self.on_brand);
            } else {
                self.text(c.x + 4.0, self.y, &t, 8.5, Face::Bold, self.on_brand);
            }
        }
        self.y -= 19.0;
    }

    fn lines(&mut self) {
        let cols = Layout::line_columns();
        let l = self.l;
        let titles = [l.col_description, l.col_quantity, l.col_unit, l.col_unit_price, l.col_vat, l.col_net];
        self.need(60.0);
        self.table_header(&cols, &titles);
        let lang = self.doc.lang;
        let cur = self.doc.currency.clone();
        for line in &self.doc.lines {
            // The description column: name, then description and period in small grey.
            let mut rows: Vec<Styled> = self
                .wrap(&line.name, 9.0, Face::Regular, cols[0].w - 8.0)
                .into_iter()
                .map(|t| (t, Face::Regular, 9.0, INK))
                .collect();
            if let Some(d) = &line.description {
                for t in self.wrap(d, 8.0, Face::Regular, cols[0].w - 8.0) {
                    rows.push((t, Face::Regular, 8.0, MUTED));
                }
            }
            if let Some((a, b)) = line.period {
                let p = format!("{} : {}", l.period, self.period(a, b));
                for t in self.wrap(&p, 8.0, Face::Regular, cols[0].w - 8.0) {
                    rows.push((t, Face::Regular, 8.0, MUTED));
                }
            }
            let height: f32 = rows.iter().map(|r| r.2 + 3.0).sum::<f32>() + 5.0;
            // A line of ordinary length stays on one page; a huge one flows.
            if self.need(height.min(120.0)) {
                self.table_header(&cols, &titles);
            }
            let rate = if line.vat_category == "O" { "—".to_string() } else { format_rate(line.vat_rate_bp, lang) };
            let cells = [
                String::new(),
                format_quantity(line.quantity_milli, lang),
                labels::unit(&line.unit_code, lang),
                format_amount(line.unit_price_cents, &cur, lang),
                rate,
                format_amount(line.net_cents, &cur, lang),
            ];
            for (c, cell) in cols.iter().zip(&cells).skip(1) {
                let t = self.fit(cell, 9.0, Face::Regular, c.w - 6.0);
                if c.right {
                    self.text_right(c.x + c.w - 4.0, self.y, &t, 9.0, Face::Regular, INK);
                } else {
                    self.text(c.x + 4.0, self.y, &t, 9.0, Face::Regular, INK);
                }
            }
            for (i, (text, face, size, colour)) in rows.into_iter().enumerate() {
                if i > 0 && self.need(size + 3.0) {
                    self.table_header(&cols, &titles);
                }
                self.text(cols[0].x + 4.0, self.y, &text, size, face, colour);
                self.y -= size + 3.0;
            }
            self.y -= 2.0;
            self.rule(self.y + 6.0, MARGIN, PAGE_W - MARGIN);
            self.y -= 5.0;
        }
        self.y -= 8.0;
    }

    /// The VAT breakdown on the left and the totals on the right, kept together.
    fn totals(&mut self) {
        let lang = self.doc.lang;
        let cur = self.doc.currency.clone();
        let l = self.l;
        let left_w = CONTENT_W * 0.52;
        let vat_cols = [
            Col { x: MARGIN, w: left_w * 0.36, right: false },
            Col { x: MARGIN + left_w * 0.36, w: left_w * 0.32, right: true },
            Col { x: MARGIN + left_w * 0.68, w: left_w * 0.32, right: true },
        ];
        let vat_rows: Vec<[String; 3]> = self
            .doc
            .vat
            .iter()
            .map(|v| {
                let name = match (v.category.as_str(), labels::category(&v.category, lang)) {
                    ("S", _) | (_, None) => format_rate(v.rate_bp, lang),
                    (_, Some(n)) => n.to_string(),
                };
                [name, format_amount(v.basis_cents, &cur, lang), format_amount(v.vat_cents, &cur, lang)]
            })
            .collect();
        let reasons: Vec<String> = self
            .doc
            .vat
            .iter()
            .filter_map(|v| v.exemption_reason.clone())
            .flat_map(|r| self.wrap(&r, 8.0, Face::Regular, left_w))
            .collect();

        let t = &self.doc.totals;
        let mut totals: Vec<(&str, String, bool)> = vec![
            (l.total_net, format_amount(t.net_cents, &cur, lang), false),
            (l.total_vat, format_amount(t.vat_cents, &cur, lang), false),
            (l.total_gross, format_amount(t.gross_cents, &cur, lang), true),
        ];
        if self.doc.kind != DocKind::Quote {
            if t.prepaid_cents != 0 {
                totals.push((l.prepaid, format_amount(-t.prepaid_cents, &cur, lang), false));
            }
            totals.push((l.due, format_amount(t.due_cents, &cur, lang), true));
        }
        let left_h = 19.0 + 14.0 * vat_rows.len() as f32 + 4.0 + 11.0 * reasons.len() as f32;
        let right_h = 16.0 * totals.len() as f32 + 6.0;
        self.need(left_h.max(right_h) + 10.0);
        let top = self.y;

        let titles = [l.vat_breakdown, l.vat_basis, l.vat_amount];
        self.table_header(&vat_cols, &titles);
        for row in &vat_rows {
            for (c, cell) in vat_cols.iter().zip(row) {
                let t = self.fit(cell, 9.0, Face::Regular, c.w - 6.0);
                if c.right {
                    self.text_right(c.x + c.w - 4.0, self.y, &t, 9.0, Face::Regular, INK);
                } else {
                    self.text(c.x + 4.0, self.y, &t, 9.0, Face::Regular, INK);
                }
            }
            self.y -= 14.0;
        }
        self.y -= 4.0;
        for r in reasons {
            self.text(MARGIN, self.y, &r, 8.0, Face::Regular, MUTED);
            self.y -= 11.0;
        }
        let left_bottom = self.y;

        let x0 = MARGIN + left_w + 24.0;
        let right_edge = PAGE_W - MARGIN;
        let mut y = top;
        let last = totals.len() - 1;
        for (i, (label, value, strong)) in totals.into_iter().enumerate() {
            let face = if strong { Face::Bold } else { Face::Regular };
            let mut colour = INK;
            if i == last && self.doc.kind != DocKind::Quote {
                self.ops.push(Op::Rect { x: x0, y: y - 6.0, w: right_edge - x0, h: 19.0, colour: self.brand });
                colour = self.on_brand;
            }
            self.text(x0 + 6.0, y, label, 10.0, face, colour);
            self.text_right(right_edge - 6.0, y, &value, 10.0, face, colour);
            y -= 16.0;
            if i == 1 {
                self.rule(y + 11.0, x0, right_edge);
            }
        }
        self.y = left_bottom.min(y) - 12.0;
    }

    fn section(&mut self, heading: &str, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            return;
        }
        let label_w = pairs.iter().map(|(k, _)| self.width(k, 9.0, Face::Bold)).fold(0.0, f32::max).min(170.0) + 12.0;
        self.need(20.0 + 13.0 * pairs.len().min(3) as f32);
        self.text(MARGIN, self.y, heading, 10.0, Face::Bold, self.brand_text);
        self.y -= 15.0;
        for (k, v) in pairs {
            let lines = self.wrap(v, 9.0, Face::Regular, CONTENT_W - label_w);
            self.need(13.0);
            let k = self.fit(k, 9.0, Face::Bold, label_w - 12.0);
            self.text(MARGIN, self.y, &k, 9.0, Face::Bold, INK);
            for (i, line) in lines.iter().enumerate() {
                if i > 0 {
                    self.need(13.0);
                }
                self.text(MARGIN + label_w, self.y, line, 9.0, Face::Regular, INK);
                self.y -= 13.0;
            }
        }
        self.y -= 8.0;
    }

    fn payment(&mut self) {
        let l = self.l;
        let lang = self.doc.lang;
        let mut pairs = Vec::new();
        if let Some(p) = &self.doc.payment {
            pairs.push((l.means.to_string(), labels::payment_means(&p.means_code, lang)));
            if let Some(iban) = &p.iban {
                pairs.push(("IBAN".to_string(), spaced_iban(iban)));
            }
            if let Some(bic) = &p.bic {
                pairs.push(("BIC".to_string(), bic.clone()));
            }
            if let Some(r) = &p.remittance {
                pairs.push((l.remittance.to_string(), r.clone()));
            }
        }
        if let (Some(d), true) = (self.doc.due_date, self.doc.kind != DocKind::Quote) {
            pairs.push((l.due_date.to_string(), format_date(d, lang)));
        }
        if let Some(t) = &self.doc.payment_terms {
            pairs.push((l.payment_terms.to_string(), t.clone()));
        }
        self.section(l.payment, &pairs);
    }

    fn notes(&mut self) {
        let notes: Vec<String> = self.doc.notes.iter().filter(|n| !n.trim().is_empty()).cloned().collect();
        if notes.is_empty() {
            return;
        }
        self.need(32.0);
        self.text(MARGIN, self.y, self.l.notes, 10.0, Face::Bold, self.brand_text);
        self.y -= 14.0;
        for n in notes {
            for line in self.wrap(&n, 8.0, Face::Regular, CONTENT_W) {
                self.need(11.0);
                self.text(MARGIN, self.y, &line, 8.0, Face::Regular, MUTED);
                self.y -= 11.0;
            }
            self.y -= 3.0;
        }
    }

    /// Every page's foot: who issued the document, and "page n / N".
    fn footers(&mut self) {
        self.pages.push(Page { ops: std::mem::take(&mut self.ops) });
        let n = self.pages.len();
        let s = &self.doc.seller;
        let mut who = vec![s.name.clone()];
        if let Some(siren) = &s.siren {
            who.push(format!("SIREN {siren}"));
        }
        if let Some(vat) = &s.vat_number {
            who.push(format!("{} {vat}", self.l.vat_number));
        }
        let left = format!("{} · {}", who.join(" · "), self.title());
        let left = self.fit(&left, 7.5, Face::Regular, CONTENT_W - 70.0);
        for i in 0..n {
            let num = format!("{} {} / {n}", self.l.page, i + 1);
            self.ops.push(Op::Rule { x1: MARGIN, y1: 44.0, x2: PAGE_W - MARGIN, y2: 44.0, width: 0.5, colour: RULE });
            self.text(MARGIN, 32.0, &left, 7.5, Face::Regular, MUTED);
            self.text_right(PAGE_W - MARGIN, 32.0, &num, 7.5, Face::Regular, MUTED);
            let ops = std::mem::take(&mut self.ops);
            self.pages[i].ops.extend(ops);
        }
    }
}

/// An IBAN in groups of four, as printed on bank details.
fn spaced_iban(iban: &str) -> String {
    let compact: Vec<char> = iban.chars().filter(|c| !c.is_whitespace()).collect();
    compact.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// Lays the document out and writes the file; `facturx_xml` makes it PDF/A-3b.
pub(crate) fn render(doc: &Document, facturx_xml: Option<&str>) -> Vec<u8> {
    let brand = rgb(&doc.branding.colour);
    let lum = luminance(brand);
    let mut layout = Layout {
        doc,
        l: labels::labels(doc.lang),
        fonts: [Font::parse(font::REGULAR, "LiberationSans"), Font::parse(font::BOLD, "LiberationSans-Bold")],
        pages: Vec::new(),
        ops: Vec::new(),
        y: 0.0,
        brand,
        on_brand: if lum < 0.6 { (1.0, 1.0, 1.0) } else { INK },
        brand_text: if lum < 0.6 { brand } else { INK },
    };
    let logo = doc.branding.logo_png_or_jpeg.as_deref().and_then(image::load);
    layout.header(logo.as_ref());
    layout.parties();
    layout.lines();
    layout.totals();
    layout.payment();
    layout.notes();
    layout.footers();
    let meta = writer::Meta {
        title: layout.title(),
        author: doc.seller.name.clone(),
        lang: match doc.lang {
            Lang::Fr => "fr",
            Lang::En => "en",
        },
        facturx_xml,
    };
    writer::write(&layout.pages, logo.as_ref(), &meta)
}
