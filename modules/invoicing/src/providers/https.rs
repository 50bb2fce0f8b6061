//! The one outgoing HTTP call providers need: a form POST with a bearer
//! key, answered with JSON. Written over tokio and rustls (already in the
//! build for SMTP) rather than pulling an HTTP client with its own TLS
//! stack. HTTPS checks certificates against the Mozilla roots compiled in;
//! plain HTTP is only accepted for a local stand-in (`127.0.0.1`,
//! `localhost`), which is what the tests use.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_RESPONSE: usize = 1 << 20;

/// A base URL split into its parts; `None` when it is not one we call.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path_prefix: String,
}

pub fn parse_base(url: &str) -> Option<Target> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return None;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        return None;
    }
    if !tls && host != "127.0.0.1" && host != "localhost" {
        return None;
    }
    Some(Target { tls, host: host.to_string(), port, path_prefix: path.to_string() })
}

fn connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// POSTs `form` (already URL-encoded) to `base + path`; returns the status and body.
pub async fn post_form(base: &str, path: &str, bearer: &str, form: &str) -> anyhow::Result<(u16, String)> {
    let t = parse_base(base).ok_or_else(|| anyhow::anyhow!("unsupported provider URL"))?;
    let request = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nAccept: application/json\r\nUser-Agent: shrooms\r\nConnection: close\r\n\r\n{form}",
        t.path_prefix,
        t.host,
        form.len()
    );
    let run = async {
        let tcp = TcpStream::connect((t.host.as_str(), t.port)).await?;
        if t.tls {
            let name = rustls_pki_types::ServerName::try_from(t.host.clone())?;
            let stream = connector().connect(name, tcp).await?;
            exchange(stream, request.as_bytes()).await
        } else {
            exchange(tcp, request.as_bytes()).await
        }
    };
    tokio::time::timeout(TIMEOUT, run).await.map_err(|_| anyhow::anyhow!("the provider did not answer in time"))?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &[u8]) -> anyhow::Result<(u16, String)> {
    s.write_all(request).await?;
    s.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // Servers that close without TLS close_notify: what we have is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            anyhow::bail!("the provider's answer is too large");
        }
    }
    parse_response(&buf)
}

/// Status and body of an HTTP/1.1 response read to its end (chunked or not).
pub fn parse_response(buf: &[u8]) -> anyhow::Result<(u16, String)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow::anyhow!("malformed answer"))?;
    let head = std::str::from_utf8(&buf[..end])?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("malformed status line"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &buf[end + 4..];
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let i = b.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow::anyhow!("malformed chunk"))?;
        let size_text = std::str::from_utf8(&b[..i])?.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            anyhow::bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_a_local_stand_in() {
        assert_eq!(
            parse_base("https://api.stripe.com"),
            Some(Target { tls: true, host: "api.stripe.com".into(), port: 443, path_prefix: "".into() })
        );
        assert_eq!(parse_base("http://127.0.0.1:4242/").unwrap().port, 4242);
        assert_eq!(parse_base("http://10.0.0.3"), None);
        assert_eq!(parse_base("ftp://x"), None);
        assert_eq!(parse_base("https://a b"), None);
    }

    #[test]
    fn chunked_and_plain_answers() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{}".into()));
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (201, "{\"a\":1}".into()));
    }
}
