//! Markdown for what people write (comments, descriptions), rendered to
//! HTML that is safe to show to anyone.
//!
//! Sanitising is by construction: the renderer below emits only an
//! allow-list of tags and never passes HTML written by the author through
//! (it is shown as text). Links keep only `http`, `https` and `mailto`
//! addresses and open with `rel="nofollow noopener"`; images become links,
//! so a comment cannot make every reader's browser fetch an address.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Renders `source` to safe HTML. `mentions` are the `@handles` that name a
/// person; they are highlighted.
pub fn render(source: &str, mentions: &[String]) -> String {
    let mut out = String::with_capacity(source.len() + source.len() / 2);
    let opts = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // Inside a link we drop nested links' markup but keep their text.
    let mut link_depth = 0usize;
    for ev in Parser::new_ext(source, opts) {
        match ev {
            Event::Start(tag) => match tag {
                Tag::Paragraph => out.push_str("<p>"),
                Tag::Heading { level, .. } => {
                    // Headings inside a comment are demoted: the page has its own.
                    out.push_str(&format!("<h{}>", heading(level)));
                }
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(_) => out.push_str("<pre><code>"),
                Tag::List(Some(start)) if start != 1 => out.push_str(&format!("<ol start=\"{start}\">\n")),
                Tag::List(Some(_)) => out.push_str("<ol>\n"),
                Tag::List(None) => out.push_str("<ul>\n"),
                Tag::Item => out.push_str("<li>"),
                Tag::Emphasis => out.push_str("<em>"),
                Tag::Strong => out.push_str("<strong>"),
                Tag::Strikethrough => out.push_str("<del>"),
                Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                    link_depth += 1;
                    if link_depth == 1 {
                        match safe_url(&dest_url) {
                            Some(url) => {
                                out.push_str("<a href=\"");
                                escape_into(&mut out, url);
                                out.push_str("\" rel=\"nofollow noopener noreferrer\">");
                            }
                            None => out.push_str("<a>"),
                        }
                    }
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("</p>\n"),
                TagEnd::Heading(level) => out.push_str(&format!("</h{}>\n", heading(level))),
                TagEnd::BlockQuote(_) => out.push_str("</blockquote>\n"),
                TagEnd::CodeBlock => out.push_str("</code></pre>\n"),
                TagEnd::List(true) => out.push_str("</ol>\n"),
                TagEnd::List(false) => out.push_str("</ul>\n"),
                TagEnd::Item => out.push_str("</li>\n"),
                TagEnd::Emphasis => out.push_str("</em>"),
                TagEnd::Strong => out.push_str("</strong>"),
                TagEnd::Strikethrough => out.push_str("</del>"),
                TagEnd::Link | TagEnd::Image => {
                    if link_depth == 1 {
                        out.push_str("</a>");
                    }
                    link_depth = link_depth.saturating_sub(1);
                }
                _ => {}
            },
            Event::Text(text) => text_with_mentions(&mut out, &text, mentions),
            Event::Code(code) => {
                out.push_str("<code>");
                escape_into(&mut out, &code);
                out.push_str("</code>");
            }
            // What the author wrote as HTML is shown, not interpreted.
            Event::Html(html) | Event::InlineHtml(html) => escape_into(&mut out, &html),
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>\n"),
            Event::Rule => out.push_str("<hr>\n"),
            Event::TaskListMarker(done) => {
                out.push_str(if done { "☑ " } else { "☐ " });
            }
            _ => {}
        }
    }
    out
}

fn heading(level: HeadingLevel) -> usize {
    // h1 → h3 … h6 stays h6.
    (level as usize + 2).min(6)
}

/// Only addresses that cannot run script or reach the local machine's schemes.
fn safe_url(url: &str) -> Option<&str> {
    let u = url.trim();
    let lower = u.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")).then_some(u)
}

/// Escapes a value (an e-mail address, a file name) put into the Markdown of
/// a timeline entry, where `*` or a `_` next to punctuation would start
/// emphasis. Common values (`jean_dupont@example.org`, `devis_2026.pdf`)
/// stay as typed: the entry's text is also what the API returns.
pub fn escape_text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|c| c.is_alphanumeric());
        let markup = match c {
            '\\' | '`' | '*' | '~' | '[' | ']' | '<' | '>' | '&' | '!' => true,
            '_' => !(word(i.checked_sub(1)) && word(Some(i + 1))),
            _ => false,
        };
        if markup {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn text_with_mentions(out: &mut String, text: &str, mentions: &[String]) {
    if mentions.is_empty() || !text.contains('@') {
        escape_into(out, text);
        return;
    }
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        escape_into(out, &rest[..at]);
        let after = &rest[at + 1..];
        let len = handle_len(after);
        let handle = &after[..len];
        let starts_word = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric());
        if starts_word && len > 0 && mentions.iter().any(|m| m.eq_ignore_ascii_case(handle)) {
            out.push_str("<strong class=\"mention\">@");
            escape_into(out, handle);
            out.push_str("</strong>");
            rest = &after[len..];
        } else {
            out.push('@');
            rest = after;
        }
    }
    escape_into(out, rest);
}

/// Length of the handle after an `@`: letters, digits and `._-+`, then
/// optionally `@domain` (a whole email address), without trailing dots.
fn handle_len(s: &str) -> usize {
    let part = |s: &str| s.find(|c: char| !(c.is_alphanumeric() || "._-+".contains(c))).unwrap_or(s.len());
    let mut n = part(s);
    if s[n..].starts_with('@') {
        let d = part(&s[n + 1..]);
        if d > 0 {
            n += 1 + d;
        }
    }
    while n > 0 && s[..n].ends_with(['.', '-']) {
        n -= 1;
    }
    n
}

/// The `@handles` written in `source` (outside code), in order, without
/// duplicates: a local part (`@camille.martin`) or a whole address.
pub fn mentioned_handles(source: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for ev in Parser::new_ext(source, Options::empty()) {
        if let Event::Text(text) = ev {
            let mut rest: &str = &text;
            while let Some(at) = rest.find('@') {
                let starts_word = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric());
                let after = &rest[at + 1..];
                let len = handle_len(after);
                if starts_word && len > 0 {
                    let h = after[..len].to_lowercase();
                    if !found.contains(&h) {
                        found.push(h);
                    }
                }
                rest = &after[len..];
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_values_render_as_typed() {
        assert_eq!(escape_text("jean_dupont@example.org"), "jean_dupont@example.org");
        for v in ["*draft*_v2_.pdf", "_a_@example.org", "[x](javascript:y)"] {
            let html = render(&format!("📎 {}", escape_text(v)), &[]);
            assert!(!html.contains("<em>") && !html.contains("<a "), "{v}: {html}");
        }
        assert!(render(&escape_text("*draft*.pdf"), &[]).contains("*draft*.pdf"));
    }

    #[test]
    fn markdown_basics() {
        let h = render("Hello **world**, *this* is `code`.\n\n- one\n- two\n\n1. a\n2. b", &[]);
        assert!(h.contains("<p>Hello <strong>world</strong>, <em>this</em> is <code>code</code>.</p>"), "{h}");
        assert!(h.contains("<ul>\n<li>one</li>"), "{h}");
        assert!(h.contains("<ol>"), "{h}");
        assert_eq!(render("# Title", &[]), "<h3>Title</h3>\n");
    }

    #[test]
    fn html_and_scripts_are_shown_not_run() {
        let h = render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> there", &[]);
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        let h = render("[click](javascript:alert(1)) [ok](https://example.org/?a=1&b=\"2\")", &[]);
        assert!(!h.contains("javascript:"), "{h}");
        assert!(h.contains("<a>click</a>"), "{h}");
        assert!(
            h.contains("href=\"https://example.org/?a=1&amp;b=%222%22\"")
                || h.contains("href=\"https://example.org/?a=1&amp;b=&quot;2&quot;\""),
            "{h}"
        );
        let h = render("![pic](https://tracker.example/p.png)", &[]);
        assert!(!h.contains("<img"), "{h}");
        assert!(h.contains("<a href=\"https://tracker.example/p.png\""), "{h}");
    }

    #[test]
    fn mentions_are_found_and_highlighted() {
        let src = "Thanks @camille.martin and @Bob@example.org. Not me@example.org nor `@code`.";
        assert_eq!(mentioned_handles(src), vec!["camille.martin", "bob@example.org"]);
        let h = render(src, &["camille.martin".into()]);
        assert!(h.contains("<strong class=\"mention\">@camille.martin</strong> and @Bob@example.org."), "{h}");
        assert!(h.contains("me@example.org"), "{h}");
    }
}
