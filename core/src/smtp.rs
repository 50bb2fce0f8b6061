//! A small SMTP client (RFC 5321) for the mail outbox: plain, STARTTLS or
//! implicit TLS (certificates checked against the Mozilla roots), AUTH
//! PLAIN, one recipient per message, a UTF-8 text body sent base64-encoded
//! so that any server accepts it.

use crate::config::SmtpConfig;
use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::rustls;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Conn = BufReader<Box<dyn Stream>>;

const TIMEOUT: Duration = Duration::from_secs(30);

fn tls_connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_wrap(host: &str, tcp: Box<dyn Stream>) -> anyhow::Result<Box<dyn Stream>> {
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).context("SMTP host is not a valid TLS name")?;
    let s = tls_connector().connect(name, tcp).await.context("TLS handshake with the SMTP server failed")?;
    Ok(Box::new(s))
}

/// Reads one reply (possibly multi-line); returns its code and text.
async fn reply(conn: &mut Conn) -> anyhow::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, conn.read_line(&mut line)).await.context("SMTP server timed out")??;
        if n == 0 {
            bail!("SMTP server closed the connection");
        }
        let code: u16 =
            line.get(..3).and_then(|c| c.parse().ok()).with_context(|| format!("malformed SMTP reply: {line:?}"))?;
        text.push_str(line.get(4..).unwrap_or("").trim_end());
        text.push('\n');
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

async fn command(conn: &mut Conn, cmd: &str, expect: &[u16]) -> anyhow::Result<String> {
    conn.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).await?;
    conn.get_mut().flush().await?;
    let (code, text) = reply(conn).await?;
    if !expect.contains(&code) {
        let shown = if cmd.starts_with("AUTH") { "AUTH" } else { cmd };
        bail!("SMTP server answered {code} to {shown}: {}", text.trim());
    }
    Ok(text)
}

fn encode_header(s: &str) -> String {
    if s.is_ascii() && !s.contains(['\r', '\n']) {
        s.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", B64.encode(s.replace(['\r', '\n'], " ")))
    }
}

fn base64_lines(s: &str) -> String {
    let encoded = B64.encode(s.replace("\r\n", "\n").replace('\n', "\r\n"));
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

/// The message as sent after DATA: headers, then the text (and, when given,
/// the HTML alternative), base64-encoded so no line starts with a dot.
pub fn format_message(from: &str, to: &str, subject: &str, text: &str, html: Option<&str>, message_id: &str) -> String {
    format_message_with_headers(from, to, subject, text, html, message_id, &[])
}

/// [`format_message`] with extra headers after `MIME-Version` (already
/// checked by `outbox::check_headers`; a value with a line break is dropped).
pub fn format_message_with_headers(
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    html: Option<&str>,
    message_id: &str,
    extra: &[(String, String)],
) -> String {
    let date =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n",
        encode_header(subject)
    );
    for (name, value) in extra.iter().filter(|(n, v)| !n.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n'])) {
        m.push_str(&format!("{name}: {value}\r\n"));
    }
    match html {
        None => {
            m.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
            m.push_str(&base64_lines(text));
        }
        Some(html) => {
            let boundary = format!("=_shrooms_{}", message_id.split('@').next().unwrap_or("part").replace('-', ""));
            m.push_str(&format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"));
            m.push_str(&format!(
                "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ));
            m.push_str(&base64_lines(text));
            m.push_str(&format!(
                "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ));
            m.push_str(&base64_lines(html));
            m.push_str(&format!("--{boundary}--\r\n"));
        }
    }
    m
}

/// The bare address of `Name <address>` or `address`.
fn bare_address(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].trim(),
        _ => from.trim(),
    }
}

pub async fn send(
    cfg: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
    html: Option<&str>,
    message_id: &str,
) -> anyhow::Result<()> {
    send_with_headers(cfg, to, subject, body, html, message_id, &[]).await
}

/// [`send`] with extra headers (see `outbox::EXTRA_HEADERS`).
pub async fn send_with_headers(
    cfg: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
    html: Option<&str>,
    message_id: &str,
    extra: &[(String, String)],
) -> anyhow::Result<()> {
    let from_addr = bare_address(&cfg.from);
    if to.contains(['\r', '\n', '<', '>'])
        || from_addr.contains(['\r', '\n', '<', '>'])
        || cfg.from.contains(['\r', '\n'])
    {
        bail!("invalid address");
    }
    let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((cfg.host.as_str(), cfg.port)))
        .await
        .context("connecting to the SMTP server timed out")?
        .with_context(|| format!("connecting to the SMTP server {}:{}", cfg.host, cfg.port))?;
    let mut stream: Box<dyn Stream> = Box::new(tcp);
    if cfg.security == "tls" {
        stream = tls_wrap(&cfg.host, stream).await?;
    }
    let mut conn: Conn = BufReader::new(stream);
    let (code, text) = reply(&mut conn).await?;
    if code != 220 {
        bail!("SMTP server greeting {code}: {}", text.trim());
    }
    let hostname = "shrooms.localdomain";
    let mut caps = command(&mut conn, &format!("EHLO {hostname}"), &[250]).await?;
    if cfg.security == "starttls" {
        if !caps.to_ascii_uppercase().contains("STARTTLS") {
            bail!("the SMTP server does not offer STARTTLS (set security = \"none\" only for a trusted local relay)");
        }
        command(&mut conn, "STARTTLS", &[220]).await?;
        let plain = conn.into_inner();
        conn = BufReader::new(tls_wrap(&cfg.host, plain).await?);
        caps = command(&mut conn, &format!("EHLO {hostname}"), &[250]).await?;
    }
    if let Some(user) = &cfg.username {
        let _ = &caps;
        let pass = cfg.password.as_ref().map(|p| p.0.as_str()).unwrap_or("");
        let token = B64.encode(format!("\0{user}\0{pass}"));
        command(&mut conn, &format!("AUTH PLAIN {token}"), &[235]).await?;
    }
    command(&mut conn, &format!("MAIL FROM:<{from_addr}>"), &[250]).await?;
    command(&mut conn, &format!("RCPT TO:<{to}>"), &[250, 251]).await?;
    command(&mut conn, "DATA", &[354]).await?;
    let msg = format_message_with_headers(&cfg.from, to, subject, body, html, message_id, extra);
    // Base64 lines never start with a dot; the headers are ours.
    conn.get_mut().write_all(msg.as_bytes()).await?;
    command(&mut conn, ".", &[250]).await?;
    let _ = command(&mut conn, "QUIT", &[221]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_are_allowed_in_from() {
        assert_eq!(super::bare_address("Atelier Vélo <atelier@example.org>"), "atelier@example.org");
        assert_eq!(super::bare_address("atelier@example.org"), "atelier@example.org");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_and_bodies_are_base64() {
        let m =
            super::format_message("a@b.org", "c@d.org", "Réinitialiser", "ligne 1\nligne 2", Some("<p>x</p>"), "x@y");
        assert!(m.contains("multipart/alternative") && m.contains("text/html"));
        assert!(m.contains("Subject: =?UTF-8?B?"));
        assert!(m.contains("Content-Transfer-Encoding: base64"));
        assert!(m.lines().all(|l| l.len() <= 998));
    }
}
