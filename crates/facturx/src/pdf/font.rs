//! The embedded TrueType fonts: metrics for layout, and a subset holding
//! only the glyphs a document uses, renumbered from 0 so that the CIDs in
//! the content streams are the subset's glyph ids (CIDToGIDMap /Identity).
//!
//! Only what PDF needs of a TrueType program is kept: the outlines (glyf,
//! loca), the metrics (head, hhea, hmtx, maxp), the hinting programs (cvt,
//! fpgm, prep: glyph instructions call them), OS/2 and a post table without
//! glyph names. Glyph ids are looked up in the Unicode BMP cmap (3,1,4).

use std::collections::{BTreeMap, BTreeSet};

pub(crate) const REGULAR: &[u8] = include_bytes!("../../fonts/LiberationSans-Regular.ttf");
pub(crate) const BOLD: &[u8] = include_bytes!("../../fonts/LiberationSans-Bold.ttf");

fn u16_at(d: &[u8], at: usize) -> u16 {
    d.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}
fn i16_at(d: &[u8], at: usize) -> i16 {
    u16_at(d, at) as i16
}
fn u32_at(d: &[u8], at: usize) -> u32 {
    d.get(at..at + 4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) struct Font {
    data: &'static [u8],
    tables: BTreeMap<[u8; 4], (usize, usize)>,
    pub(crate) units_per_em: u16,
    num_glyphs: u16,
    num_hmetrics: u16,
    long_loca: bool,
    /// The (3,1) format-4 subtable's offset.
    cmap4: usize,
    /// The PostScript name, e.g. `LiberationSans-Bold`.
    pub(crate) name: &'static str,
}

impl Font {
    /// Parses one of the vendored fonts (a broken vendored file is a build bug).
    pub(crate) fn parse(data: &'static [u8], name: &'static str) -> Font {
        let mut tables = BTreeMap::new();
        for i in 0..u16_at(data, 4) as usize {
            let rec = 12 + 16 * i;
            let tag: [u8; 4] = data[rec..rec + 4].try_into().unwrap();
            tables.insert(tag, (u32_at(data, rec + 8) as usize, u32_at(data, rec + 12) as usize));
        }
        let head = tables[b"head"].0;
        let cmap = tables[b"cmap"].0;
        let mut cmap4 = 0;
        for i in 0..u16_at(data, cmap + 2) as usize {
            let rec = cmap + 4 + 8 * i;
            let sub = cmap + u32_at(data, rec + 4) as usize;
            if u16_at(data, rec) == 3 && u16_at(data, rec + 2) == 1 && u16_at(data, sub) == 4 {
                cmap4 = sub;
            }
        }
        assert!(cmap4 != 0, "the vendored font has a Unicode BMP cmap");
        Font {
            data,
            units_per_em: u16_at(data, head + 18),
            long_loca: i16_at(data, head + 50) == 1,
            num_glyphs: u16_at(data, tables[b"maxp"].0 + 4),
            num_hmetrics: u16_at(data, tables[b"hhea"].0 + 34),
            tables,
            cmap4,
            name,
        }
    }

    fn table(&self, tag: &[u8; 4]) -> &'static [u8] {
        self.tables.get(tag).map_or(&[], |&(off, len)| &self.data[off..off + len])
    }

    /// The glyph of a character, 0 (.notdef) when the font has none.
    pub(crate) fn glyph(&self, c: char) -> u16 {
        let c = c as u32;
        if c > 0xFFFF {
            return 0;
        }
        let c = c as u16;
        let d = self.data;
        let t = self.cmap4;
        let seg_x2 = u16_at(d, t + 6) as usize;
        let ends = t + 14;
        let starts = ends + seg_x2 + 2;
        let deltas = starts + seg_x2;
        let ranges = deltas + seg_x2;
        // Segments are sorted by end code: binary search the first end ≥ c.
        let (mut lo, mut hi) = (0, seg_x2 / 2);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if u16_at(d, ends + 2 * mid) < c {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == seg_x2 / 2 || u16_at(d, starts + 2 * lo) > c {
            return 0;
        }
        let start = u16_at(d, starts + 2 * lo);
        let delta = u16_at(d, deltas + 2 * lo);
        let range = u16_at(d, ranges + 2 * lo) as usize;
        if range == 0 {
            c.wrapping_add(delta)
        } else {
            let g = u16_at(d, ranges + 2 * lo + range + 2 * (c - start) as usize);
            if g == 0 {
                0
            } else {
                g.wrapping_add(delta)
            }
        }
    }

    /// The character printed for `c`: itself, or `?` when the font has no
    /// glyph for it (PDF/A forbids showing .notdef).
    pub(crate) fn printable(&self, c: char) -> char {
        if self.glyph(c) != 0 {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '?'
        }
    }

    /// Advance width in font units.
    pub(crate) fn advance(&self, gid: u16) -> u16 {
        let hmtx = self.tables[b"hmtx"].0;
        let i = gid.min(self.num_hmetrics - 1) as usize;
        u16_at(self.data, hmtx + 4 * i)
    }

    /// Width of `text` in points at `size`.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text.chars().map(|c| self.advance(self.glyph(self.printable(c))) as u32).sum();
        units as f32 * size / self.units_per_em as f32
    }

    /// Per mille of the em, as PDF wants font metrics.
    pub(crate) fn milli(&self, units: i32) -> i32 {
        (units as f64 * 1000.0 / self.units_per_em as f64).round() as i32
    }

    pub(crate) fn ascent(&self) -> i32 {
        self.milli(i16_at(self.data, self.tables[b"hhea"].0 + 4) as i32)
    }
    pub(crate) fn descent(&self) -> i32 {
        self.milli(i16_at(self.data, self.tables[b"hhea"].0 + 6) as i32)
    }
    pub(crate) fn cap_height(&self) -> i32 {
        let os2 = self.table(b"OS/2");
        if u16_at(os2, 0) >= 2 {
            self.milli(i16_at(os2, 88) as i32)
        } else {
            self.ascent()
        }
    }
    pub(crate) fn bbox(&self) -> [i32; 4] {
        let head = self.tables[b"head"].0;
        [36, 38, 40, 42].map(|o| self.milli(i16_at(self.data, head + o) as i32))
    }
    pub(crate) fn bold(&self) -> bool {
        u16_at(self.table(b"OS/2"), 4) >= 600
    }

    fn glyph_data(&self, gid: u16) -> &'static [u8] {
        let loca = self.tables[b"loca"].0;
        let glyf = self.table(b"glyf");
        let (a, b) = if self.long_loca {
            (
                u32_at(self.data, loca + 4 * gid as usize) as usize,
                u32_at(self.data, loca + 4 * gid as usize + 4) as usize,
            )
        } else {
            (
                u16_at(self.data, loca + 2 * gid as usize) as usize * 2,
                u16_at(self.data, loca + 2 * gid as usize + 2) as usize * 2,
            )
        };
        glyf.get(a..b).unwrap_or(&[])
    }

    /// The positions of the component glyph ids in a composite glyph.
    fn components(data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        if data.len() < 10 || i16_at(data, 0) >= 0 {
            return out;
        }
        let mut at = 10;
        loop {
            let flags = u16_at(data, at);
            out.push(at + 2);
            at += 4;
            at += if flags & 0x0001 != 0 { 4 } else { 2 };
            if flags & 0x0008 != 0 {
                at += 2;
            } else if flags & 0x0040 != 0 {
                at += 4;
            } else if flags & 0x0080 != 0 {
                at += 8;
            }
            if flags & 0x0020 == 0 || at + 4 > data.len() {
                return out;
            }
        }
    }

    /// A font program with glyph 0 and `used` (and the glyphs their
    /// composites are made of), and the old glyph id of each new one.
    pub(crate) fn subset(&self, used: &BTreeSet<u16>) -> (Vec<u8>, Vec<u16>) {
        let mut keep: BTreeSet<u16> = used.iter().copied().filter(|&g| g < self.num_glyphs).collect();
        keep.insert(0);
        let mut todo: Vec<u16> = keep.iter().copied().collect();
        while let Some(g) = todo.pop() {
            let data = self.glyph_data(g);
            for at in Font::components(data) {
                let c = u16_at(data, at);
                if c < self.num_glyphs && keep.insert(c) {
                    todo.push(c);
                }
            }
        }
        let old: Vec<u16> = keep.into_iter().collect();
        let new_of: BTreeMap<u16, u16> = old.iter().enumerate().map(|(i, &g)| (g, i as u16)).collect();

        let mut glyf = Vec::new();
        let mut loca = Vec::new();
        let mut hmtx = Vec::new();
        let hmtx_old = self.tables[b"hmtx"].0;
        for &g in &old {
            loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
            let mut data = self.glyph_data(g).to_vec();
            for at in Font::components(&data) {
                let c = new_of[&u16_at(&data, at)];
                data[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
            glyf.extend_from_slice(&data);
            while glyf.len() % 4 != 0 {
                glyf.push(0);
            }
            hmtx.extend_from_slice(&self.advance(g).to_be_bytes());
            let lsb = if g < self.num_hmetrics {
                i16_at(self.data, hmtx_old + 4 * g as usize + 2)
            } else {
                i16_at(self.data, hmtx_old + 4 * self.num_hmetrics as usize + 2 * (g - self.num_hmetrics) as usize)
            };
            hmtx.extend_from_slice(&lsb.to_be_bytes());
        }
        loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
        let n = old.len() as u16;

        let mut head = self.table(b"head").to_vec();
        head[8..12].fill(0);
        head[50..52].copy_from_slice(&1i16.to_be_bytes());
        let mut hhea = self.table(b"hhea").to_vec();
        hhea[34..36].copy_from_slice(&n.to_be_bytes());
        let mut maxp = self.table(b"maxp").to_vec();
        maxp[4..6].copy_from_slice(&n.to_be_bytes());
        let mut post = self.table(b"post")[..32].to_vec();
        post[0..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());

        let mut tables: Vec<(&[u8; 4], Vec<u8>)> = vec![
            (b"OS/2", self.table(b"OS/2").to_vec()),
            (b"cvt ", self.table(b"cvt ").to_vec()),
            (b"fpgm", self.table(b"fpgm").to_vec()),
            (b"glyf", glyf),
            (b"head", head),
            (b"hhea", hhea),
            (b"hmtx", hmtx),
            (b"loca", loca),
            (b"maxp", maxp),
            (b"post", post),
            (b"prep", self.table(b"prep").to_vec()),
        ];
        tables.retain(|(_, t)| !t.is_empty());
        (assemble(&tables), old)
    }
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(w))
    })
}

/// An sfnt file from its tables (sorted by tag), with the head checksum adjustment.
fn assemble(tables: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let n = tables.len() as u16;
    let mut pow = 1u16;
    let mut log = 0u16;
    while pow * 2 <= n {
        pow *= 2;
        log += 1;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [n, pow * 16, log, n * 16 - pow * 16] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = 0;
    for (tag, data) in tables {
        if *tag == b"head" {
            head_at = offset;
        }
        out.extend_from_slice(*tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().div_ceil(4) * 4;
    }
    for (_, data) in tables {
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    let adjust = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_at + 8..head_at + 12].copy_from_slice(&adjust.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_helvetica() {
        // Liberation Sans is metric-compatible with Helvetica/Arial.
        let f = Font::parse(REGULAR, "LiberationSans");
        assert_eq!(f.units_per_em, 2048);
        assert!((f.width("W", 1000.0) - 944.0).abs() < 1.0);
        assert!((f.width("i", 1000.0) - 222.0).abs() < 1.0);
        assert_ne!(f.glyph('é'), 0);
        assert_ne!(f.glyph('€'), 0);
        assert_eq!(f.glyph('\u{10000}'), 0);
        let b = Font::parse(BOLD, "LiberationSans-Bold");
        assert!(b.bold() && !f.bold());
    }

    #[test]
    fn a_subset_keeps_the_used_glyphs_and_their_components() {
        let f = Font::parse(REGULAR, "LiberationSans");
        let used: BTreeSet<u16> = "Aé€".chars().map(|c| f.glyph(c)).collect();
        let (program, old) = f.subset(&used);
        assert_eq!(old[0], 0);
        assert!(used.iter().all(|g| old.contains(g)));
        assert!(program.len() < 20_000, "{} bytes", program.len());
        // The subset parses back with the same advances.
        let leaked: &'static [u8] = Box::leak(program.into_boxed_slice());
        let s = Font::parse_tables_only(leaked);
        assert_eq!(s.num_glyphs as usize, old.len());
        for (new, &o) in old.iter().enumerate() {
            assert_eq!(s.advance(new as u16), f.advance(o));
        }
        assert_eq!(checksum(leaked), 0xB1B0_AFBA);
    }

    impl Font {
        /// A subset has no cmap: parse only its tables.
        pub(super) fn parse_tables_only(data: &'static [u8]) -> Font {
            let mut tables = BTreeMap::new();
            for i in 0..u16_at(data, 4) as usize {
                let rec = 12 + 16 * i;
                let tag: [u8; 4] = data[rec..rec + 4].try_into().unwrap();
                tables.insert(tag, (u32_at(data, rec + 8) as usize, u32_at(data, rec + 12) as usize));
            }
            Font {
                data,
                units_per_em: u16_at(data, tables[b"head"].0 + 18),
                long_loca: true,
                num_glyphs: u16_at(data, tables[b"maxp"].0 + 4),
                num_hmetrics: u16_at(data, tables[b"hhea"].0 + 34),
                tables,
                cmap4: 0,
                name: "",
            }
        }
    }
}
