//! Prometheus metrics of this process: request counts and latency
//! histograms per route, database pool, uptime. Each replica exposes its own.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Series>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { started: Instant::now(), requests: Mutex::default(), latency: Mutex::default() }
    }
}

/// A request slower than this is logged as a warning, with its context.
const SLOW_SECS: f64 = 0.5;

/// Counts and times every request, gives it an id (the caller's
/// `X-Request-Id` when it is a sane one), logs it inside a span carrying
/// that id, and logs slow ones as warnings.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let route = route.unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", id = %request_id, method = %method, route = %route);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if secs > SLOW_SECS {
        tracing::warn!(parent: &span, status, ms = (secs * 1000.0) as u64, "slow request");
    } else {
        tracing::debug!(parent: &span, status, ms = (secs * 1000.0) as u64, "request");
    }
    if let Ok(mut m) = state.metrics.requests.lock() {
        *m.entry((method, route.clone(), status)).or_default() += 1;
    }
    if let Ok(mut l) = state.metrics.latency.lock() {
        let s = l.entry(route).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }
    resp
}

/// Per-route figures of this process, slowest first (for the health page).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RouteStats {
    pub route: String,
    pub requests: u64,
    pub mean_ms: f64,
    pub server_errors: u64,
}

impl Metrics {
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn routes(&self) -> Vec<RouteStats> {
        let errors: BTreeMap<String, u64> = match self.requests.lock() {
            Ok(m) => m.iter().filter(|((_, _, s), _)| *s >= 500).fold(BTreeMap::new(), |mut acc, ((_, r, _), n)| {
                *acc.entry(r.clone()).or_default() += n;
                acc
            }),
            Err(_) => BTreeMap::new(),
        };
        let mut out: Vec<RouteStats> = match self.latency.lock() {
            Ok(l) => l
                .iter()
                .map(|(route, s)| RouteStats {
                    route: route.clone(),
                    requests: s.count,
                    mean_ms: if s.count == 0 { 0.0 } else { s.sum * 1000.0 / s.count as f64 },
                    server_errors: errors.get(route).copied().unwrap_or(0),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms));
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub async fn endpoint(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP shrooms_http_requests_total HTTP requests by method, route and status.\n# TYPE shrooms_http_requests_total counter\n");
    if let Ok(m) = state.metrics.requests.lock() {
        for ((method, route, status), n) in m.iter() {
            out.push_str(&format!(
                "shrooms_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}\n",
                esc(method),
                esc(route)
            ));
        }
    }
    out.push_str("# HELP shrooms_http_request_duration_seconds Request latency by route.\n# TYPE shrooms_http_request_duration_seconds histogram\n");
    if let Ok(l) = state.metrics.latency.lock() {
        for (route, s) in l.iter() {
            let r = esc(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "shrooms_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}\n",
                    s.buckets[i]
                ));
            }
            out.push_str(&format!(
                "shrooms_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\n",
                s.count
            ));
            out.push_str(&format!("shrooms_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\n", s.sum));
            out.push_str(&format!("shrooms_http_request_duration_seconds_count{{route=\"{r}\"}} {}\n", s.count));
        }
    }
    let (size, idle) = state.db.pool_stats();
    out.push_str(&format!(
        "# HELP shrooms_db_pool_connections Open database connections.\n# TYPE shrooms_db_pool_connections gauge\nshrooms_db_pool_connections{{state=\"open\"}} {size}\nshrooms_db_pool_connections{{state=\"idle\"}} {idle}\n"
    ));
    out.push_str(&format!(
        "# HELP shrooms_db_pool_max Pool size limit.\n# TYPE shrooms_db_pool_max gauge\nshrooms_db_pool_max {}\n",
        state.cfg.effective_pool_size()
    ));
    let (queued, failed) = outbox_counts(&state).await;
    out.push_str(&format!(
        "# HELP shrooms_jobs Background work waiting or failed (mail outbox).\n# TYPE shrooms_jobs gauge\nshrooms_jobs{{queue=\"mail\",state=\"queued\"}} {queued}\nshrooms_jobs{{queue=\"mail\",state=\"failed\"}} {failed}\n"
    ));
    out.push_str("# HELP shrooms_background_jobs Background jobs by status.\n# TYPE shrooms_background_jobs gauge\n");
    for (status, n) in crate::jobs::counts(&state.db).await.unwrap_or_default() {
        out.push_str(&format!("shrooms_background_jobs{{status=\"{}\"}} {n}\n", esc(&status)));
    }
    if let Ok((on, off, retired)) = crate::schedules::counts(&state.db).await {
        out.push_str(&format!("# HELP shrooms_schedules Recurring schedules by state.\n# TYPE shrooms_schedules gauge\nshrooms_schedules{{state=\"enabled\"}} {on}\nshrooms_schedules{{state=\"disabled\"}} {off}\nshrooms_schedules{{state=\"retired\"}} {retired}\n"));
    }
    out.push_str(&format!("# HELP shrooms_uptime_seconds Seconds since start.\n# TYPE shrooms_uptime_seconds gauge\nshrooms_uptime_seconds {}\n", state.metrics.started.elapsed().as_secs()));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

async fn outbox_counts(state: &AppState) -> (i64, i64) {
    use sqlx::Row;
    let q = |s: &'static str| async move {
        sqlx::query("SELECT COUNT(*) FROM mail_outbox WHERE status = $1")
            .bind(s)
            .fetch_one(state.db.pool())
            .await
            .ok()
            .and_then(|r| r.try_get::<i64, _>(0).ok())
            .unwrap_or(0)
    };
    (q("queued").await, q("failed").await)
}
