//! A small indenting XML writer: the two e-invoice syntaxes need elements,
//! attributes and escaped text, nothing more.

pub(crate) struct Xml {
    out: String,
    open: Vec<&'static str>,
}

/// Escapes text and attribute values; drops the control characters XML 1.0 forbids.
pub(crate) fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\t' | '\n' | '\r' => s.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => s.push(c),
        }
    }
    s
}

impl Xml {
    pub(crate) fn new() -> Xml {
        Xml { out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"), open: Vec::new() }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        self.out.push('>');
    }

    /// Opens an element that will hold other elements.
    pub(crate) fn open(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push('\n');
        self.open.push(name);
    }

    pub(crate) fn close(&mut self) {
        let name = self.open.pop().expect("close matches an open");
        self.indent();
        self.out.push_str(&format!("</{name}>\n"));
    }

    /// An element holding text.
    pub(crate) fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.start_tag(name, attrs);
        self.out.push_str(&escape(text));
        self.out.push_str(&format!("</{name}>\n"));
    }

    /// An element holding text, only when there is some.
    pub(crate) fn opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) {
            self.text(name, &[], t);
        }
    }

    pub(crate) fn finish(self) -> String {
        assert!(self.open.is_empty(), "every element is closed");
        self.out
    }
}
