//! The web shell: application state, router assembly (every module merges
//! its own router), middleware (security headers, CSRF, metrics, module
//! gates, error pages), health and metrics endpoints, embedded static assets.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod fields;
pub mod files;
pub mod imports;
pub mod metrics;
pub mod privacy;
pub mod schedules;
pub mod social;
pub mod templates;
pub mod tls;
pub mod ui;

use crate::cache::TtlCache;
use crate::config::Config;
use crate::db::Db;
use crate::error::CoreError;
use crate::instance;
use crate::module::Modules;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use auth::{Actor, OrgCtx, Visitor};
pub use templates::{Page, Templates};

#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

pub struct StateInner {
    pub cfg: Config,
    pub db: Db,
    pub modules: Modules,
    pub templates: Templates,
    pub metrics: metrics::Metrics,
    pub signing_key: Vec<u8>,
    /// The key of sealed fields ([`crate::sealed`]), held outside the database.
    pub data_key: crate::sealed::DataKey,
    /// Account behind an access token, by (account id, token family).
    pub token_cache: TtlCache<(String, String), crate::identity::Account>,
    /// Organisation and the caller's role in it, by (org id or slug, account).
    pub org_cache: TtlCache<(String, crate::ids::AccountId), Option<(crate::orgs::Org, Option<crate::orgs::Role>)>>,
    setup_done: AtomicBool,
}

impl Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl AppState {
    pub async fn new(cfg: Config, db: Db, modules: Modules) -> anyhow::Result<AppState> {
        instance::ensure(&db).await?;
        let inst = instance::load(&db).await?;
        let templates = Templates::new(&modules, cfg.theme.as_deref())?;
        let data_key = crate::sealed::DataKey::load(&cfg)?;
        let ttl = std::time::Duration::from_millis(cfg.security.auth_cache_ms.max(0) as u64);
        Ok(AppState(Arc::new(StateInner {
            token_cache: TtlCache::new(ttl),
            org_cache: TtlCache::new(ttl),
            cfg,
            db,
            modules,
            templates,
            metrics: metrics::Metrics::default(),
            signing_key: inst.signing_key,
            data_key,
            setup_done: AtomicBool::new(inst.setup_done),
        })))
    }

    /// Whether first-run setup is complete (possibly by another replica).
    pub async fn setup_done(&self) -> bool {
        if self.setup_done.load(Ordering::Relaxed) {
            return true;
        }
        let done = instance::load(&self.db).await.map(|i| i.setup_done).unwrap_or(false);
        if done {
            self.setup_done.store(true, Ordering::Relaxed);
        }
        done
    }

    pub fn base_url(&self) -> String {
        self.cfg.base_url()
    }
}

/// Builds the whole application: every module's routes (gated by whether the
/// module is enabled), platform endpoints, and the middleware stack.
pub fn router(state: AppState) -> Router {
    let mut app: Router<AppState> = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::endpoint))
        .route("/static/{*path}", get(static_asset));
    for m in state.modules.all() {
        let r = m.router();
        // A module without routes (only jobs, say) has nothing to gate.
        let r = if m.always_on() || !r.has_routes() {
            r
        } else {
            r.route_layer(middleware::from_fn_with_state((state.clone(), m.id()), module_gate))
        };
        app = app.merge(r);
    }
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), ui::render_errors))
        .layer(middleware::from_fn_with_state(state.clone(), auth::csrf))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(DefaultBodyLimit::max(state.cfg.max_body_bytes))
        .layer(axum::Extension(auth::TrustedProxies(Arc::new(state.cfg.trusted_proxies.clone()))))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

async fn not_found() -> Response {
    ui::UiError(CoreError::NotFound).into_response()
}

/// A disabled module answers 404 on all its routes; its data stays intact.
async fn module_gate(
    State((state, module)): State<(AppState, &'static str)>,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let mut org = None;
    for (k, v) in &params {
        if k == "org" {
            match crate::orgs::find_org(&state.db, v).await {
                Ok(Some(o)) => org = Some(o.id),
                Ok(None) => return ui::UiError(CoreError::NotFound).into_response(),
                Err(e) => return ui::UiError(e).into_response(),
            }
        }
    }
    match instance::module_enabled(&state.db, &state.modules, module, org).await {
        Ok(true) => next.run(req).await,
        Ok(false) => ui::UiError(CoreError::NotFound).into_response(),
        Err(e) => ui::UiError(e).into_response(),
    }
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let tls = state.cfg.secure_cookies();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(self), geolocation=(), microphone=()"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if tls {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(d) => Json(serde_json::json!({
            "status": "ok",
            "database": {"status": "ok", "backend": state.db.backend().name(), "latency_ms": d.as_secs_f64() * 1000.0},
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "database": {"status": "unavailable", "backend": state.db.backend().name(), "error": e.public_detail()},
                "version": env!("CARGO_PKG_VERSION"),
            })),
        )
            .into_response(),
    }
}

/// Static files: the theme folder's `static/` first, then the embedded ones.
async fn static_asset(
    State(state): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    if path.contains("..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body: Option<Vec<u8>> = match state.cfg.theme.as_ref().map(|t| t.join("static").join(&path)) {
        Some(p) if p.is_file() => tokio::fs::read(p).await.ok(),
        _ => templates::embedded_static(&path).map(|b| b.to_vec()).or_else(|| {
            state
                .modules
                .all()
                .iter()
                .flat_map(|m| m.assets().iter())
                .find(|(p, _)| *p == path)
                .map(|(_, b)| b.to_vec())
        }),
    };
    let Some(body) = body else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ct = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("md") | Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ct)
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Methods that change state; CSRF and audit concern these.
pub fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Runs the server until ctrl-c / SIGTERM; in-flight requests finish first.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let tls = state.cfg.tls.clone();
    tokio::spawn(crate::jobs::run_worker(state.clone()));
    tokio::spawn(crate::schedules::run_scheduler(state.clone()));
    let app = router(state);
    match tls {
        None => {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(shutdown_signal())
                .await?;
            Ok(())
        }
        Some(tls) => tls::serve(app, listener, &tls, shutdown_signal()).await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
