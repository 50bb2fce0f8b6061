//! The file: objects, fonts, and — for e-invoices — what PDF/A-3b and
//! Factur-X require: XMP metadata that matches the Info dictionary, an sRGB
//! output intent, embedded (subset) fonts with ToUnicode maps, the XML as an
//! associated file (/AF, /AFRelationship /Data) and a document ID.

use super::font::Font;
use super::image::Image;
use super::{Face, Op, Page, PAGE_H, PAGE_W};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const ICC_SRGB: &[u8] = include_bytes!("../../icc/sRGB.icc");

/// What goes into the file besides the pages.
pub(crate) struct Meta<'a> {
    pub(crate) title: String,
    pub(crate) author: String,
    pub(crate) lang: &'a str,
    /// The Factur-X XML: when present the file is PDF/A-3b with it embedded.
    pub(crate) facturx_xml: Option<&'a str>,
}

struct Objects {
    out: Vec<u8>,
    offsets: Vec<usize>,
}

impl Objects {
    fn reserve(&mut self) -> usize {
        self.offsets.push(0);
        self.offsets.len()
    }

    fn put(&mut self, id: usize, body: &[u8]) {
        self.offsets[id - 1] = self.out.len();
        self.out.extend_from_slice(format!("{id} 0 obj\n").as_bytes());
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\nendobj\n");
    }

    /// A stream; `dict` holds the entries besides /Length and /Filter.
    fn stream(&mut self, id: usize, dict: &str, data: &[u8], compress: bool) {
        let (data, filter) = if compress {
            (miniz_oxide::deflate::compress_to_vec_zlib(data, 9), " /Filter /FlateDecode")
        } else {
            (data.to_vec(), "")
        };
        let mut body = format!("<< {dict}{filter} /Length {} >>\nstream\n", data.len()).into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\nendstream");
        self.put(id, &body);
    }
}

/// A PDF text string: literal when ASCII, UTF-16BE hex otherwise.
fn text_string(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        let mut out = String::from("(");
        for c in s.chars() {
            if matches!(c, '(' | ')' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push(')');
        out
    } else {
        let mut out = String::from("<FEFF");
        for u in s.encode_utf16() {
            let _ = write!(out, "{u:04X}");
        }
        out.push('>');
        out
    }
}

fn xml_escape(s: &str) -> String {
    crate::xml::escape(s)
}

/// A 128-bit fingerprint (two FNV-1a lanes) for the document ID and subset tags.
fn fingerprint(parts: &[&[u8]]) -> [u8; 16] {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for p in parts {
        for &byte in *p {
            a = (a ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
        }
        a = a.rotate_left(7);
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// One font as used by the document: which glyphs, which characters they show.
struct UsedFont {
    font: Font,
    glyphs: BTreeSet<u16>,
    unicode: BTreeMap<u16, char>,
}

fn rgb(c: (f32, f32, f32)) -> String {
    format!("{:.3} {:.3} {:.3}", c.0, c.1, c.2)
}

pub(crate) fn write(pages: &[Page], logo: Option<&Image>, meta: &Meta) -> Vec<u8> {
    let mut fonts = [
        UsedFont {
            font: Font::parse(super::font::REGULAR, "LiberationSans"),
            glyphs: BTreeSet::new(),
            unicode: BTreeMap::new(),
        },
        UsedFont {
            font: Font::parse(super::font::BOLD, "LiberationSans-Bold"),
            glyphs: BTreeSet::new(),
            unicode: BTreeMap::new(),
        },
    ];
    for page in pages {
        for op in &page.ops {
            if let Op::Text { face, text, .. } = op {
                let f = &mut fonts[*face as usize];
                for c in text.chars() {
                    let g = f.font.glyph(c);
                    f.glyphs.insert(g);
                    f.unicode.entry(g).or_insert(c);
                }
            }
        }
    }
    // Subset first: content streams are written with the subset's glyph ids.
    let subsets: Vec<(Vec<u8>, BTreeMap<u16, u16>)> = fonts
        .iter()
        .map(|f| {
            let (program, old) = f.font.subset(&f.glyphs);
            let new_of = old.iter().enumerate().map(|(i, &g)| (g, i as u16)).collect();
            (program, new_of)
        })
        .collect();

    let mut o = Objects { out: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(), offsets: Vec::new() };
    let catalog = o.reserve();
    let pages_id = o.reserve();
    let info = o.reserve();
    let font_ids: Vec<usize> = (0..2).map(|_| o.reserve()).collect();
    let logo_id = logo.map(|_| o.reserve());
    let page_ids: Vec<(usize, usize)> = pages.iter().map(|_| (o.reserve(), o.reserve())).collect();

    // Pages.
    let kids: Vec<String> = page_ids.iter().map(|(p, _)| format!("{p} 0 R")).collect();
    o.put(pages_id, format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).as_bytes());
    let xobjects = logo_id.map_or(String::new(), |id| format!(" /XObject << /Im1 {id} 0 R >>"));
    for (page, &(page_id, content_id)) in pages.iter().zip(&page_ids) {
        o.put(
            page_id,
            format!(
                "<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 {} 0 R /F2 {} 0 R >>{xobjects} >> /Contents {content_id} 0 R >>",
                font_ids[0], font_ids[1]
            )
            .as_bytes(),
        );
        let mut s = String::new();
        for op in &page.ops {
            match op {
                Op::Rect { x, y, w, h, colour } => {
                    let _ = writeln!(s, "{} rg {x:.2} {y:.2} {w:.2} {h:.2} re f", rgb(*colour));
                }
                Op::Rule { x1, y1, x2, y2, width, colour } => {
                    let _ = writeln!(s, "{} RG {width:.2} w {x1:.2} {y1:.2} m {x2:.2} {y2:.2} l S", rgb(*colour));
                }
                Op::Image { x, y, w, h } => {
                    let _ = writeln!(s, "q {w:.2} 0 0 {h:.2} {x:.2} {y:.2} cm /Im1 Do Q");
                }
                Op::Text { x, y, size, face, colour, text } => {
                    let new_of = &subsets[*face as usize].1;
                    let f = &fonts[*face as usize].font;
                    let glyphs: String = text.chars().map(|c| format!("{:04X}", new_of[&f.glyph(c)])).collect();
                    let name = if *face == Face::Bold { "F2" } else { "F1" };
                    let _ =
                        writeln!(s, "BT {} rg /{name} {size:.1} Tf {x:.2} {y:.2} Td <{glyphs}> Tj ET", rgb(*colour));
                }
            }
        }
        o.stream(content_id, "", s.as_bytes(), true);
    }

    // Fonts: Type0 over a CIDFontType2 with the subset program.
    let tag_seed = fingerprint(&[meta.title.as_bytes(), &subsets[0].0, &subsets[1].0]);
    for (i, (f, (program, new_of))) in fonts.iter().zip(&subsets).enumerate() {
        let tag: String = tag_seed[i * 6..i * 6 + 6].iter().map(|b| (b'A' + b % 26) as char).collect();
        let base = format!("{tag}+{}", f.font.name);
        let (cid, descriptor, file, tounicode) = (o.reserve(), o.reserve(), o.reserve(), o.reserve());
        o.put(
            font_ids[i],
            format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H /DescendantFonts [{cid} 0 R] /ToUnicode {tounicode} 0 R >>"
            )
            .as_bytes(),
        );
        let mut widths = String::new();
        let mut old_of: Vec<u16> = vec![0; new_of.len()];
        for (&old, &new) in new_of {
            old_of[new as usize] = old;
        }
        for &old in &old_of {
            let _ = write!(widths, "{} ", f.font.milli(f.font.advance(old) as i32));
        }
        o.put(
            cid,
            format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{base} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /DW 1000 /W [0 [{}]] /CIDToGIDMap /Identity >>",
                widths.trim_end()
            )
            .as_bytes(),
        );
        let [x0, y0, x1, y1] = f.font.bbox();
        o.put(
            descriptor,
            format!(
                "<< /Type /FontDescriptor /FontName /{base} /Flags 32 /FontBBox [{x0} {y0} {x1} {y1}] /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV {} /FontWeight {} /FontFile2 {file} 0 R >>",
                f.font.ascent(),
                f.font.descent(),
                f.font.cap_height(),
                if f.font.bold() { 140 } else { 80 },
                if f.font.bold() { 700 } else { 400 },
            )
            .as_bytes(),
        );
        o.stream(file, &format!("/Length1 {}", program.len()), program, true);
        o.stream(tounicode, "", to_unicode(&f.unicode, new_of).as_bytes(), true);
    }

    if let (Some(img), Some(id)) = (logo, logo_id) {
        let dict = format!(
            "/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /{} /BitsPerComponent 8 /Filter /{}",
            img.width, img.height, img.colour_space, img.filter
        );
        let mut body = format!("<< {dict} /Length {} >>\nstream\n", img.data.len()).into_bytes();
        body.extend_from_slice(&img.data);
        body.extend_from_slice(b"\nendstream");
        o.put(id, &body);
    }

    // Metadata, both in the Info dictionary and (identical) in XMP.
    let now = time::OffsetDateTime::now_utc();
    let pdf_date = format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let xmp_date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    const PRODUCER: &str = "Shrooms";
    o.put(
        info,
        format!(
            "<< /Title {} /Author {} /Creator ({PRODUCER}) /Producer ({PRODUCER}) /CreationDate ({pdf_date}) /ModDate ({pdf_date}) >>",
            text_string(&meta.title),
            text_string(&meta.author)
        )
        .as_bytes(),
    );

    let mut catalog_extra = String::new();
    if let Some(xml) = meta.facturx_xml {
        let (metadata, icc, intent, filespec, embedded) =
            (o.reserve(), o.reserve(), o.reserve(), o.reserve(), o.reserve());
        o.stream(metadata, "/Type /Metadata /Subtype /XML", xmp(meta, &xmp_date).as_bytes(), false);
        o.stream(icc, "/N 3", ICC_SRGB, true);
        o.put(
            intent,
            format!(
                "<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1) /RegistryName (http://www.color.org) /Info (sRGB IEC61966-2.1) /DestOutputProfile {icc} 0 R >>"
            )
            .as_bytes(),
        );
        o.stream(
            embedded,
            &format!(
                "/Type /EmbeddedFile /Subtype /text#2Fxml /Params << /Size {} /ModDate ({pdf_date}) >>",
                xml.len()
            ),
            xml.as_bytes(),
            true,
        );
        o.put(
            filespec,
            format!(
                "<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /Desc (Factur-X invoice) /AFRelationship /Data /EF << /F {embedded} 0 R /UF {embedded} 0 R >> >>"
            )
            .as_bytes(),
        );
        let _ = write!(
            catalog_extra,
            " /Metadata {metadata} 0 R /OutputIntents [{intent} 0 R] /AF [{filespec} 0 R] /Names << /EmbeddedFiles << /Names [(factur-x.xml) {filespec} 0 R] >> >> /MarkInfo << /Marked false >>"
        );
    }
    o.put(
        catalog,
        format!(
            "<< /Type /Catalog /Pages {pages_id} 0 R /Lang {} /ViewerPreferences << /DisplayDocTitle true >>{catalog_extra} >>",
            text_string(meta.lang)
        )
        .as_bytes(),
    );

    let id = hex(&fingerprint(&[meta.title.as_bytes(), pdf_date.as_bytes(), &o.out]));
    let xref = o.out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", o.offsets.len() + 1);
    for off in &o.offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root {catalog} 0 R /Info {info} 0 R /ID [<{id}> <{id}>] >>\nstartxref\n{xref}\n%%EOF\n",
        o.offsets.len() + 1
    );
    o.out.extend_from_slice(tail.as_bytes());
    o.out
}

/// The CMap that maps the subset's glyph ids back to Unicode, for text extraction.
fn to_unicode(unicode: &BTreeMap<u16, char>, new_of: &BTreeMap<u16, u16>) -> String {
    let mut pairs: Vec<(u16, char)> = unicode.iter().map(|(old, c)| (new_of[old], *c)).collect();
    pairs.sort();
    let mut s = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in pairs.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", chunk.len());
        for (gid, c) in chunk {
            let utf16: String = c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(s, "<{gid:04X}> <{utf16}>");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s
}

/// The XMP packet: PDF/A-3 part and conformance, the Dublin Core and PDF
/// properties that mirror the Info dictionary, the Factur-X properties, and
/// the extension schema that declares those (PDF/A requires non-standard
/// XMP properties to be described).
fn xmp(meta: &Meta, date: &str) -> String {
    let title = xml_escape(&meta.title);
    let author = xml_escape(&meta.author);
    let fx_property = |name: &str, description: &str| {
        format!(
            "            <rdf:li rdf:parseType=\"Resource\">\n              <pdfaProperty:name>{name}</pdfaProperty:name>\n              <pdfaProperty:valueType>Text</pdfaProperty:valueType>\n              <pdfaProperty:category>external</pdfaProperty:category>\n              <pdfaProperty:description>{description}</pdfaProperty:description>\n            </rdf:li>\n"
        )
    };
    let properties = [
        fx_property("DocumentFileName", "File name of the embedded invoice XML"),
        fx_property("DocumentType", "Kind of the embedded document"),
        fx_property("Version", "Version of the Factur-X XML schema"),
        fx_property("ConformanceLevel", "Factur-X profile of the embedded XML"),
    ]
    .concat();
    format!(
        r#"<?xpacket begin="{bom}" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
  <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
    <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
      <pdfaid:part>3</pdfaid:part>
      <pdfaid:conformance>B</pdfaid:conformance>
    </rdf:Description>
    <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
      <dc:format>application/pdf</dc:format>
      <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
      <dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>
    </rdf:Description>
    <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
      <pdf:Producer>Shrooms</pdf:Producer>
    </rdf:Description>
    <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
      <xmp:CreatorTool>Shrooms</xmp:CreatorTool>
      <xmp:CreateDate>{date}</xmp:CreateDate>
      <xmp:ModifyDate>{date}</xmp:ModifyDate>
    </rdf:Description>
    <rdf:Description rdf:about="" xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#">
      <fx:DocumentType>INVOICE</fx:DocumentType>
      <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>
      <fx:Version>1.0</fx:Version>
      <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>
    </rdf:Description>
    <rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
      <pdfaExtension:schemas>
        <rdf:Bag>
          <rdf:li rdf:parseType="Resource">
            <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
            <pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>
            <pdfaSchema:prefix>fx</pdfaSchema:prefix>
            <pdfaSchema:property>
              <rdf:Seq>
{properties}              </rdf:Seq>
            </pdfaSchema:property>
          </rdf:li>
        </rdf:Bag>
      </pdfaExtension:schemas>
    </rdf:Description>
  </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#,
        bom = '\u{feff}'
    )
}
