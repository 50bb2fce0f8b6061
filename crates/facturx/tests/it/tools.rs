//! The outside checkers: Python with `factur-x` and pypdf, and poppler.
//! A test that needs one that is missing says so and passes as skipped;
//! CI installs them all (.ci/run).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn scratch(name: &str) -> PathBuf {
    // Kept after the run (under the target directory) so a person can look at them.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("facturx");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/validate.py")
}

/// Whether python3 has the `factur-x` and pypdf packages.
pub fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import facturx, pypdf, lxml"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "SKIPPED: python3 with the factur-x and pypdf packages is not installed (pip install factur-x pypdf)"
        );
    }
    ok
}

pub fn poppler_ready() -> bool {
    let ok =
        Command::new("pdftoppm").arg("-v").output().is_ok() && Command::new("pdftotext").arg("-v").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: poppler-utils (pdftoppm, pdftotext) is not installed");
    }
    ok
}

/// Runs `validate.py <args>`, panicking with its output when it fails.
pub fn validate(args: &[&str]) -> String {
    let out = Command::new("python3").arg(script()).args(args).output().expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "validate.py {args:?} failed:\n{text}");
    text
}

/// Text of a page range, no-break spaces read as spaces.
pub fn pdftotext(pdf: &Path, first: Option<usize>, last: Option<usize>) -> String {
    let mut cmd = Command::new("pdftotext");
    cmd.arg("-layout");
    if let Some(f) = first {
        cmd.args(["-f", &f.to_string()]);
    }
    if let Some(l) = last {
        cmd.args(["-l", &l.to_string()]);
    }
    let out = cmd.arg(pdf).arg("-").output().expect("pdftotext runs");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().replace(['\u{a0}', '\u{202f}'], " ")
}

/// Renders each page to greyscale and returns, per page, the share of
/// pixels that are not white.
pub fn ink_per_page(pdf: &Path) -> Vec<f64> {
    let prefix = scratch(&format!("{}-page", pdf.file_stem().unwrap().to_string_lossy()));
    // Pages of an earlier run must not count.
    for e in std::fs::read_dir(prefix.parent().unwrap()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(&*prefix.file_name().unwrap().to_string_lossy()) {
            std::fs::remove_file(p).unwrap();
        }
    }
    let out =
        Command::new("pdftoppm").args(["-gray", "-r", "40"]).arg(pdf).arg(&prefix).output().expect("pdftoppm runs");
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let dir = prefix.parent().unwrap();
    let stem = prefix.file_name().unwrap().to_string_lossy().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{stem}-")))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let pgm = std::fs::read(f).unwrap();
            // P5 <w> <h> <max> then one byte per pixel.
            let mut fields = Vec::new();
            let mut at = 0;
            while fields.len() < 4 {
                while pgm[at].is_ascii_whitespace() {
                    at += 1;
                }
                let start = at;
                while !pgm[at].is_ascii_whitespace() {
                    at += 1;
                }
                fields.push(String::from_utf8_lossy(&pgm[start..at]).to_string());
            }
            assert_eq!(fields[0], "P5");
            let pixels = &pgm[at + 1..];
            pixels.iter().filter(|&&p| p < 235).count() as f64 / pixels.len() as f64
        })
        .collect()
}

/// Checks with poppler's pdffonts that every font is embedded, subset, and
/// has a Unicode map.
pub fn fonts_embedded(pdf: &Path) {
    let out = Command::new("pdffonts").arg(pdf).output().expect("pdffonts runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert!(!rows.is_empty(), "no font:\n{text}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type… encoding emb sub uni object-id generation
        let flags = &cols[cols.len() - 5..cols.len() - 2];
        assert_eq!(flags, ["yes", "yes", "yes"], "font not embedded/subset/mapped: {row}");
    }
}
