//! Optional TLS termination (rustls with the ring provider), for instances
//! served without a reverse proxy. Certificate and key are PEM files.

use crate::config::TlsConfig;
use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tower::ServiceExt;

pub fn acceptor(cfg: &TlsConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.certificate)
        .with_context(|| format!("reading certificate {}", cfg.certificate.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cfg.certificate.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(&cfg.key).with_context(|| format!("reading private key {}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections until `shutdown`, then stops accepting and lets
/// open connections finish (at most 10 seconds).
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    cfg: &TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let acceptor = acceptor(cfg)?;
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            // A client that never finishes its handshake does not hold a task forever.
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(addr));
                    app.clone().oneshot(req)
                });
                if let Err(e) = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
