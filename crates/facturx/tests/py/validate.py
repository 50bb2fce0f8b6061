"""Independent checks of what shrooms-facturx writes, run by tests/it.

    validate.py cii FILE.xml               XSD (+ EN 16931 schematron if saxonche is installed)
    validate.py ubl FILE.xml               UBL 2.1 XSD, EN 16931 essentials and sums (+ schematron)
    validate.py pdf FILE.pdf FILE.xml      PDF/A-3 + Factur-X structure; the embedded XML equals FILE.xml
    validate.py plainpdf FILE.pdf          a quote: fonts embedded, no attachment

Exits non-zero with the reasons on any failure.
"""

import os
import re
import sys
from decimal import Decimal
from io import BytesIO

import facturx
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import IndirectObject

HERE = os.path.dirname(facturx.__file__)
SCHEMATRON = {
    "cii": os.path.join(HERE, "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"),
    "ubl": os.path.join(HERE, "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt"),
}
errors = []


def fail(msg):
    errors.append(msg)


def schematron(kind, path):
    """Runs the official EN 16931 schematron (compiled XSLT 2) with Saxon-HE."""
    try:
        from saxonche import PySaxonProcessor
    except ImportError:
        print("schematron: SKIPPED, saxonche is not installed (pip install saxonche)")
        return
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        exe = xslt.compile_stylesheet(stylesheet_file=SCHEMATRON[kind])
        out = exe.transform_to_string(source_file=os.path.abspath(path))
    svrl = etree.fromstring(out.encode("utf-8"))
    ns = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
    fired = svrl.xpath("//svrl:fired-rule", namespaces=ns)
    if not fired:
        fail("schematron: no rule fired, the document was not recognised")
    for a in svrl.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=ns):
        text = " ".join("".join(a.itertext()).split())
        flag = a.get("flag", "fatal")
        msg = f"schematron {flag} {a.get('id', '')}: {text} at {a.get('location')}"
        if flag == "warning":
            print(msg)
        else:
            fail(msg)
    print(f"schematron: {len(fired)} rules fired")


def check_cii(path):
    xml = open(path, "rb").read()
    root = etree.fromstring(xml)
    if facturx.get_level(root, "factur-x") != "en16931":
        fail("the guideline does not say EN 16931")
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as e:
        fail(f"XSD: {e}")
    schematron("cii", path)


def amount(root, xpath, ns):
    found = root.xpath(xpath, namespaces=ns)
    if not found:
        fail(f"missing {xpath}")
        return Decimal(0)
    return Decimal(found[0].text)


def check_ubl(path):
    xml = open(path, "rb").read()
    root = etree.fromstring(xml)
    credit = root.tag.endswith("}CreditNote")
    flavor = "ubl-2.1-creditnote" if credit else "ubl-2.1-invoice"
    try:
        facturx.xml_check_xsd(xml, flavor=flavor)
    except Exception as e:
        fail(f"XSD: {e}")
    ns = {
        "d": root.nsmap[None],
        "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    }
    # The EN 16931 mandatory business terms, by their UBL paths.
    mandatory = [
        "cbc:CustomizationID",
        "cbc:ID",
        "cbc:IssueDate",
        "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode",
        "cbc:DocumentCurrencyCode",
        "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
        "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
        "cac:TaxTotal/cbc:TaxAmount",
        "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID",
        "cac:LegalMonetaryTotal/cbc:PayableAmount",
    ]
    for p in mandatory:
        if not root.xpath(p, namespaces=ns):
            fail(f"missing {p}")
    if root.xpath("cbc:CustomizationID/text()", namespaces=ns) != ["urn:cen.eu:en16931:2017"]:
        fail("CustomizationID is not urn:cen.eu:en16931:2017")
    line_el = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    lines = root.xpath(line_el, namespaces=ns)
    if not lines:
        fail("no line")
    qty = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    line_sum = Decimal(0)
    for i, line in enumerate(lines):
        for p in ["cbc:ID", qty, "cbc:LineExtensionAmount", "cac:Item/cbc:Name",
                  "cac:Item/cac:ClassifiedTaxCategory/cbc:ID", "cac:Price/cbc:PriceAmount"]:
            if not line.xpath(p, namespaces=ns):
                fail(f"line {i}: missing {p}")
        line_sum += amount(line, "cbc:LineExtensionAmount", ns)
    lmt = "cac:LegalMonetaryTotal/cbc:"
    net = amount(root, lmt + "LineExtensionAmount", ns)
    excl = amount(root, lmt + "TaxExclusiveAmount", ns)
    incl = amount(root, lmt + "TaxInclusiveAmount", ns)
    payable = amount(root, lmt + "PayableAmount", ns)
    prepaid = sum((Decimal(x) for x in root.xpath(lmt + "PrepaidAmount/text()", namespaces=ns)), Decimal(0))
    tax = amount(root, "cac:TaxTotal/cbc:TaxAmount", ns)
    subtotals = root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=ns)
    if line_sum != net:
        fail(f"lines sum to {line_sum}, LineExtensionAmount is {net}")
    if excl != net:
        fail(f"TaxExclusiveAmount {excl} != LineExtensionAmount {net}")
    if incl != excl + tax:
        fail(f"TaxInclusiveAmount {incl} != {excl} + {tax}")
    if payable != incl - prepaid:
        fail(f"PayableAmount {payable} != {incl} - {prepaid}")
    if sum(amount(s, "cbc:TaxAmount", ns) for s in subtotals) != tax:
        fail("the VAT subtotals do not sum to the VAT total")
    if sum(amount(s, "cbc:TaxableAmount", ns) for s in subtotals) != net:
        fail("the VAT bases do not sum to the net total")
    schematron("ubl", path)


def resolve(o):
    return o.get_object() if isinstance(o, IndirectObject) else o


def check_fonts(reader):
    fonts = 0
    for n, page in enumerate(reader.pages):
        res = resolve(page.get("/Resources")) or {}
        for name, ref in (resolve(res.get("/Font")) or {}).items():
            font = resolve(ref)
            fonts += 1
            if "/ToUnicode" not in font:
                fail(f"page {n + 1} font {name}: no ToUnicode map")
            targets = [font]
            if font.get("/Subtype") == "/Type0":
                targets = [resolve(d) for d in font["/DescendantFonts"]]
            for f in targets:
                desc = resolve(f.get("/FontDescriptor"))
                if desc is None or not any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    fail(f"page {n + 1} font {name} ({f.get('/BaseFont')}): not embedded")
                elif not re.match(r"^/[A-Z]{6}\+", str(desc["/FontName"])):
                    fail(f"font {desc['/FontName']}: a subset needs a six-letter tag")
    if fonts == 0:
        fail("no font at all")


def check_pdf(path, xml_path):
    data = open(path, "rb").read()
    reader = PdfReader(BytesIO(data))
    root = reader.trailer["/Root"]
    if not data.startswith(b"%PDF-1.7\n%") or max(data[10:14]) < 128:
        fail("the header is not %PDF-1.7 followed by a binary comment")
    if "/ID" not in reader.trailer:
        fail("no document ID in the trailer")
    if "/Encrypt" in reader.trailer:
        fail("encrypted")
    if data.rstrip(b"\r\n")[-5:] != b"%%EOF":
        fail("data after %%EOF")

    # XMP: PDF/A-3b and the Factur-X properties.
    meta = resolve(root.get("/Metadata"))
    if meta is None:
        fail("no XMP metadata")
    else:
        if "/Filter" in meta:
            fail("the XMP stream is compressed")
        xmp = etree.fromstring(meta.get_data())
        ns = {
            "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
            "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
            "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
        }
        expect = {
            "//pdfaid:part": "3",
            "//pdfaid:conformance": "B",
            "//fx:DocumentType": "INVOICE",
            "//fx:DocumentFileName": "factur-x.xml",
            "//fx:Version": "1.0",
            "//fx:ConformanceLevel": "EN 16931",
            "//pdfaSchema:prefix": "fx",
        }
        for xpath, value in expect.items():
            found = [e.text for e in xmp.xpath(xpath, namespaces=ns)]
            if found != [value]:
                fail(f"XMP {xpath} is {found}, expected {value}")
        info = reader.metadata
        if reader.xmp_metadata.dc_title.get("x-default") != info.title:
            fail("the Info title and dc:title differ")
        if reader.xmp_metadata.pdf_producer != info.producer:
            fail("the Info producer and pdf:Producer differ")
        if reader.xmp_metadata.xmp_create_date != info.creation_date.replace(tzinfo=None) and \
                reader.xmp_metadata.xmp_create_date.replace(tzinfo=None) != info.creation_date.replace(tzinfo=None):
            fail("the Info creation date and xmp:CreateDate differ")

    # Output intent with an RGB ICC profile.
    intents = resolve(root.get("/OutputIntents")) or []
    if len(intents) != 1:
        fail(f"{len(intents)} output intents, expected 1")
    else:
        oi = resolve(intents[0])
        if oi.get("/S") != "/GTS_PDFA1":
            fail("the output intent is not GTS_PDFA1")
        icc = resolve(oi.get("/DestOutputProfile"))
        profile = icc.get_data() if icc is not None else b""
        if icc is None or icc.get("/N") != 3 or profile[36:40] != b"acsp" or profile[16:20] != b"RGB ":
            fail("the output intent has no RGB ICC profile")

    # The XML, attached and associated.
    af = resolve(root.get("/AF")) or []
    specs = [resolve(s) for s in af]
    if [s.get("/F") for s in specs] != ["factur-x.xml"]:
        fail(f"/AF holds {[s.get('/F') for s in specs]}")
    for s in specs:
        if s.get("/AFRelationship") != "/Data":
            fail("AFRelationship is not /Data")
        if s.get("/UF") != "factur-x.xml":
            fail("the file specification has no /UF")
        ef = resolve(resolve(s["/EF"])["/F"])
        if ef.get("/Subtype") != "/text/xml":
            fail(f"the embedded file's MIME type is {ef.get('/Subtype')}")
        if "/ModDate" not in resolve(ef.get("/Params")):
            fail("the embedded file has no modification date")
    names = [a.name for a in reader.attachment_list]
    if names != ["factur-x.xml"]:
        fail(f"attachments: {names}")
    found = facturx.get_facturx_xml_from_pdf(data, check_xsd=True)
    if not found or found[0] != "factur-x.xml":
        fail(f"factur-x found no valid factur-x.xml: {found}")
    elif found[1] != open(xml_path, "rb").read():
        fail("the embedded XML differs from cii_xml()")
    check_fonts(reader)


def check_plain_pdf(path):
    reader = PdfReader(path)
    if list(reader.attachment_list):
        fail("a quote carries an attachment")
    if "/AF" in reader.trailer["/Root"]:
        fail("a quote has associated files")
    check_fonts(reader)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"cii": check_cii, "ubl": check_ubl, "pdf": check_pdf, "plainpdf": check_plain_pdf}[cmd](*args)
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("ok")
