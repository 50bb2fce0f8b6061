//! Renewal run benchmark (`cargo bench -p shrooms-members --bench renewals`):
//! an organisation with 50,000 members whose periods end together in 20
//! days, dues as invoices. `POST /api/v1/orgs/{org}/members/renewals/run`
//! against the real server queues 50,000 renewal notices (outbox mails with
//! their personal link) and records and invoices the 50,000 renewals
//! (pending items, validated invoices with their numbers and ledger
//! entries), on SQLite and PostgreSQL. People, types and periods are seeded
//! with SQL first (not timed). Target: under 2 minutes each.
//!
//! `MEMBERS=50000` changes the size; `DUES_PATH=receipt` runs the notices only.

use serde_json::json;
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use std::time::Instant;
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_invoicing::InvoicingModule),
        Arc::new(shrooms_members::MembersModule),
    ];
    Modules::new(list).expect("modules")
}

fn count() -> usize {
    std::env::var("MEMBERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000)
}

async fn run_bench(backend: Backend, n: usize, invoice: bool) {
    let app = TestApp::spawn(backend, modules()).await;
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.clone());
    let today = jiff::Zoned::now().date();
    let (s, b) = app
        .post(
            t,
            &format!("/api/v1/orgs/{org}/accounting/books"),
            json!({"chart": "associations", "siren": "732829320", "first_year_start": format!("{}-01-01", today.year())}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let next_year = today.year() + 1;
    let (s, b) = app
        .post(
            t,
            &format!("/api/v1/orgs/{org}/accounting/years"),
            json!({"start": format!("{next_year}-01-01"), "end": format!("{next_year}-12-31")}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &format!("/api/v1/orgs/{org}/invoicing/settings"),
            json!({"legal_name": "Association des Jardins", "siren": "732 829 320", "siret": "73282932000074",
                   "vat_number": "FR44732829320", "address": "12 rue des Lilas", "postcode": "69001", "city": "Lyon", "vat_regime": "franchise"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, ty) = app
        .post(
            t,
            &format!("/api/v1/orgs/{org}/members/types"),
            json!({"name": "Adhésion", "kind": "individual", "fee_rule": "fixed", "fee_cents": 3000, "period_rule": "rolling_12_months"}),
        )
        .await;
    assert_eq!(s, 201, "{ty}");
    if invoice {
        let (_, mut settings) = app.get(t, &format!("/api/v1/orgs/{org}/members/settings")).await;
        settings["dues_path"] = json!("invoice");
        let (s, b) = app.send(reqwest::Method::PUT, t, &format!("/api/v1/orgs/{org}/members/settings"), settings).await;
        assert_eq!(s, 200, "{b}");
    }
    // Seeding (not timed): people and a period each, ending in 20 days.
    let ends = today.checked_add(jiff::Span::new().days(20)).unwrap();
    let starts = ends.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap();
    let db = &app.state.db;
    let now = shrooms_core::ids::Timestamp::now().0;
    let type_id = ty["id"].as_str().unwrap().to_string();
    let seed = Instant::now();
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for (c, chunk) in ids.chunks(100).enumerate() {
        let mut tx = db.begin().await.unwrap();
        for (i, id) in chunk.iter().enumerate() {
            let k = c * 100 + i;
            sqlx::query("INSERT INTO people (id, org_id, given_name, family_name, email, search, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '', $6, $6)")
                .bind(id)
                .bind(&f.org_id)
                .bind(format!("Membre{k}"))
                .bind("Bench")
                .bind(format!("m{k}@example.org"))
                .bind(now)
                .execute(tx.conn())
                .await
                .unwrap();
            sqlx::query("INSERT INTO mem_profiles (org_id, person_id, street, postcode, city, country, updated_at) VALUES ($1, $2, $3, '69002', 'Lyon', 'FR', $4)")
                .bind(&f.org_id)
                .bind(id)
                .bind(format!("{k} rue Vaubecour"))
                .bind(now)
                .execute(tx.conn())
                .await
                .unwrap();
            sqlx::query("INSERT INTO mem_periods (id, org_id, person_id, type_id, origin, starts_on, ends_on, fee_cents, created_at) VALUES ($1, $2, $3, $4, 'joined', $5, $6, 3000, $7)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&f.org_id)
                .bind(id)
                .bind(&type_id)
                .bind(starts.to_string())
                .bind(ends.to_string())
                .bind(now)
                .execute(tx.conn())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // The statistics an organisation's tables have once autovacuum (or
    // `shrooms demo`, or an import) went by: without them PostgreSQL takes
    // the 50,000 people just written for a few rows and reads them all for
    // each chunk's 250.
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    let seeding = seed.elapsed().as_secs_f64();
    let started = Instant::now();
    let (s, b) = app.post(t, &format!("/api/v1/orgs/{org}/members/renewals/run"), json!({})).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["notices"], n as i64, "{b}");
    if invoice {
        assert_eq!(b["invoiced"], n as i64, "{b}");
    }
    println!(
        "renewal run on {} ({} path): {n} notices{} in {took:.1} s (seeding {seeding:.1} s)",
        app.backend_name(),
        if invoice { "invoice" } else { "receipt" },
        if invoice { format!(", {n} renewals invoiced") } else { String::new() },
    );
    // Run again: nothing is sent twice.
    let (s, b) = app.post(t, &format!("/api/v1/orgs/{org}/members/renewals/run"), json!({})).await;
    assert_eq!((s, b["notices"].as_i64()), (200, Some(0)), "{b}");
}

fn main() {
    let n = count();
    let invoice = std::env::var("DUES_PATH").map(|v| v != "receipt").unwrap_or(true);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var("BENCH_SKIP_SQLITE").is_err() {
        rt.block_on(run_bench(Backend::Sqlite, n, invoice));
    }
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err() {
        rt.block_on(run_bench(Backend::Postgres, n, invoice));
    }
}
