//! Self-service benchmark (`cargo bench -p shrooms-members --bench selfservice`):
//! an open day's rush on the public join form. `JOINS` visitors (400 by
//! default) send the form through `POST /api/v1/orgs/{org}/members/join`,
//! `CONCURRENCY` at a time (20), each with their own e-mail (a new person
//! and a pending request each), against the real server on SQLite and
//! PostgreSQL; then the same forms are sent again (replays: nothing new).
//! Joins of one organisation are serialised on purpose (one person per
//! e-mail): this measures what that costs. Prints the throughput and the
//! median and 95th percentile latency.

use serde_json::json;
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_members::MembersModule),
    ];
    Modules::new(list).expect("modules")
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn rush(app: &Arc<TestApp>, org: &str, type_id: &str, n: usize, conc: usize, tag: &str) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let mut times = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let mut set = tokio::task::JoinSet::new();
        for i in next..(next + conc).min(n) {
            let app = app.clone();
            let path = format!("/api/v1/orgs/{org}/members/join");
            let body = json!({"given_name": "Visitor", "family_name": format!("N{i}"),
                "email": format!("visitor{i}@example.org"), "type_id": type_id, "consent": true,
                "submission_id": format!("{tag}-{i}")});
            set.spawn(async move {
                let t = Instant::now();
                // Each visitor comes from their own address (the form counts per address).
                let r = app
                    .http
                    .post(app.url(&path))
                    .header("x-forwarded-for", format!("10.0.{}.{}", i / 250, i % 250))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
                t.elapsed()
            });
        }
        next = (next + conc).min(n);
        while let Some(t) = set.join_next().await {
            times.push(t.unwrap());
        }
    }
    let total = start.elapsed().as_secs_f64();
    times.sort();
    (total, times)
}

async fn bench(backend: Backend, n: usize, conc: usize) {
    // The server trusts the local proxy, so that each visitor has their own address.
    let (mut cfg, dir) = testkit::test_config(backend, &modules()).await.expect("configuration");
    cfg.trusted_proxies = vec!["127.0.0.1".into()];
    let app = Arc::new(TestApp::spawn_with(cfg, dir, backend, modules()).await);
    let f = app.bootstrap().await;
    let base = format!("/api/v1/orgs/{}/members", f.org_slug);
    let (s, t) = app
        .post(
            &f.admin_token,
            &format!("{base}/types"),
            json!({"name": "Individuelle", "kind": "individual", "fee_rule": "fixed", "fee_cents": 3000, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let type_id = t["id"].as_str().unwrap().to_string();
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            &f.admin_token,
            &format!("{base}/self-service"),
            json!({"join_enabled": true, "join_type_ids": [type_id], "terms_text": "Statuts."}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let name = app.backend_name();
    for (label, tag) in [("new visitors", "first"), ("the same forms again", "first")] {
        let (total, times) = rush(&app, &f.org_slug, &type_id, n, conc, tag).await;
        println!(
            "{name}: {n} joins ({label}), {conc} at a time: {:.2} s, {:.0} joins/s, median {:.1} ms, p95 {:.1} ms",
            total,
            n as f64 / total,
            pct(&times, 0.5),
            pct(&times, 0.95)
        );
    }
    let (_, reqs) = app.get(&f.admin_token, &format!("{base}/requests")).await;
    assert_eq!(reqs["joins"].as_array().map(Vec::len), Some(n.min(500)), "one request per visitor");
}

fn main() {
    let n = knob("JOINS", 400);
    let conc = knob("CONCURRENCY", 20);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(bench(Backend::Sqlite, n, conc));
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err() {
        rt.block_on(bench(Backend::Postgres, n, conc));
    }
}
