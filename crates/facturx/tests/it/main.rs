//! The crate's one integration test binary. The XML is checked with the
//! official schemas (and the EN 16931 schematron when Saxon is installed)
//! through the `factur-x` Python package; the PDF is read back with pypdf,
//! `factur-x`, and poppler's pdftoppm and pdftotext.

mod consistency;
mod fixtures;
mod pdf;
mod tools;
mod xml;
