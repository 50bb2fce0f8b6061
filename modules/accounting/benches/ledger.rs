//! Ledger benchmarks on SQLite and, when reachable, PostgreSQL:
//! `cargo bench -p shrooms-accounting --bench ledger`.
//!
//! Loads LINES ledger lines (default 1,000,000: two-line validated entries
//! spread evenly over five fiscal years, 2021–2025) into one organisation
//! through the posting interface in batches of BATCH entries (default
//! 10,000) — the batch posting rate is measured there — then times, through
//! the real HTTP API, the trial balance and the income statement of 2025
//! (median of 5) and the FEC export of 2025. `SHROOMS_TEST_SKIP_POSTGRES=1`
//! runs SQLite only.

use serde_json::json;
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entries, NewEntry};
use shrooms_core::audit::Who;
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use std::time::Instant;
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![Arc::new(CoreModule), Arc::new(shrooms_accounting::AccountingModule)];
    Modules::new(list).expect("modules")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn line(account: &str, debit: i64, credit: i64, tag: Option<&str>) -> Line {
    Line {
        account: account.into(),
        aux: String::new(),
        aux_label: String::new(),
        label: String::new(),
        debit: Amount(debit),
        credit: Amount(credit),
        currency_amount: None,
        currency: None,
        tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
    }
}

async fn median_ms(app: &TestApp, token: &str, path: &str) -> f64 {
    let mut v = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (s, b) = app.get(token, path).await;
        assert_eq!(s, 200, "{b}");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[2]
}

async fn run(backend: Backend) -> anyhow::Result<()> {
    let lines = env("LINES", 1_000_000);
    let batch = env("BATCH", 10_000);
    let app = TestApp::spawn(backend, modules()).await;
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let url = |p: &str| format!("/api/v1/orgs/{org}/accounting{p}");
    let (s, b) = app
        .post(
            t,
            &url("/books"),
            json!({"chart": "associations", "siren": "123456789", "first_year_start": "2021-01-01"}),
        )
        .await;
    anyhow::ensure!(s == 201, "{b}");
    for y in 2022..=2025 {
        let (s, b) =
            app.post(t, &url("/years"), json!({"start": format!("{y}-01-01"), "end": format!("{y}-12-31")})).await;
        anyhow::ensure!(s == 201, "{b}");
    }
    let org_id = f.org_id.parse()?;
    let who = Who::system("bench");
    let entries = lines / 2;
    let per_year = entries / 5;
    let kinds = [
        ("BQ", "512", "7561"),
        ("VE", "411", "706"),
        ("AC", "6064", "401"),
        ("BQ", "627", "512"),
        ("CA", "531", "7541"),
    ];
    let started = Instant::now();
    let mut posted = 0usize;
    let mut n = 0usize;
    while n < entries {
        let k = batch.min(entries - n);
        let mut v = Vec::with_capacity(k);
        for i in n..n + k {
            let year = 2021 + (i / per_year).min(4) as i32;
            let day_of_year = (i % per_year) * 365 / per_year.max(1);
            let date = Day(time::Date::from_ordinal_date(year, (day_of_year + 1) as u16)?);
            let (journal, d, c) = kinds[i % kinds.len()];
            let amount = 100 + (i as i64 * 7919) % 100_000;
            let tag = (i % 10 == 0).then_some("project:bench");
            v.push(NewEntry {
                journal: journal.into(),
                date,
                label: format!("Bench entry {i}"),
                piece_ref: format!("P{i}"),
                piece_date: None,
                lines: vec![line(d, amount, 0, tag), line(c, 0, amount, None)],
            });
        }
        let mut tx = app.state.db.begin_durable().await?;
        post_entries(&mut tx, &who, org_id, "bench", v, true).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        tx.commit().await?;
        n += k;
        posted += k;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: posted {posted} validated entries ({} lines) in {secs:.1} s: {:.0} entries/s",
        app.backend_name(),
        posted * 2,
        posted as f64 / secs
    );
    if backend == Backend::Postgres {
        // What autovacuum does after a bulk load: statistics and the visibility
        // map that lets the reports read the covering index only.
        sqlx::query("VACUUM ANALYZE").execute(app.state.db.pool()).await?;
    }
    let tb = median_ms(&app, t, &url("/reports/trial-balance?from=2025-01-01&to=2025-12-31&compare=false")).await;
    let tbc = median_ms(&app, t, &url("/reports/trial-balance?from=2025-01-01&to=2025-12-31")).await;
    let is = median_ms(&app, t, &url("/reports/income-statement?from=2025-01-01&to=2025-12-31&compare=false")).await;
    let isc = median_ms(&app, t, &url("/reports/income-statement?from=2025-01-01&to=2025-12-31")).await;
    println!("{}: trial balance 2025 {tb:.0} ms ({tbc:.0} ms with 2024 beside it); income statement {is:.0} ms ({isc:.0} ms with 2024)", app.backend_name());
    let (_, years) = app.get(t, &url("/years")).await;
    let y2025 = years[4]["id"].as_str().unwrap_or_default().to_string();
    let start = Instant::now();
    let r = app.http.get(app.url(&url(&format!("/years/{y2025}/fec")))).bearer_auth(t).send().await?;
    let body = r.bytes().await?;
    let fec_lines = body.iter().filter(|&&b| b == b'\n').count() - 1;
    println!(
        "{}: FEC of 2025: {fec_lines} lines, {:.1} MB in {:.2} s",
        app.backend_name(),
        body.len() as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    run(Backend::Sqlite).await?;
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err() {
        run(Backend::Postgres).await?;
    }
    Ok(())
}
