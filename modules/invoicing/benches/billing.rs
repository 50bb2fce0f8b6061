//! The billing run benchmark, on SQLite and, when reachable, PostgreSQL:
//! `cargo bench -p shrooms-invoicing --bench billing`.
//!
//! Creates INVOICES (default 10,000) business customers with one monthly
//! subscription each (two lines), then times, through the real HTTP API and
//! the job worker, a billing run that turns every due period into a
//! validated invoice: number, frozen parties, ledger entry (posted in
//! batches), and its PDF/A-3 with the Factur-X XML inside, kept as a file.
//! `SHROOMS_TEST_SKIP_POSTGRES=1` runs SQLite only.

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
    ];
    Modules::new(list).expect("modules")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(backend: Backend) -> anyhow::Result<()> {
    let n = env("INVOICES", 10_000);
    let app = TestApp::spawn(backend, modules()).await;
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    let (s, b) = app
        .post(
            t,
            &format!("/api/v1/orgs/{o}/accounting/books"),
            json!({"chart": "pcg", "siren": "732829320", "first_year_start": "2026-01-01"}),
        )
        .await;
    anyhow::ensure!(s == 201, "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &format!("/api/v1/orgs/{o}/invoicing/settings"),
            json!({"legal_name": "Coopérative Hébergement", "siren": "732829320", "vat_number": "FR44732829320",
                   "address": "12 rue des Serveurs", "postcode": "69001", "city": "Lyon",
                   "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP"}),
        )
        .await;
    anyhow::ensure!(s == 200, "{b}");
    // Customers and subscriptions in bulk: the set-up is not what is measured.
    let setup = Instant::now();
    let db = &app.state.db;
    let now = shrooms_core::ids::Timestamp::now().0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = db.begin().await?;
        for i in chunk {
            let cid = uuid::Uuid::now_v7().to_string();
            let sid = uuid::Uuid::now_v7().to_string();
            sqlx::query(
                "INSERT INTO inv_customers (id, org_id, kind, name, siren, vat_number, email, address, postcode, city, country, \
                 lang, aux_account, created_at, updated_at) VALUES ($1, $2, 'business', $3, '552100554', 'FR96552100554', \
                 $4, '3 place de la Gare', '75010', 'Paris', 'FR', 'fr', $5, $6, $6)",
            )
            .bind(&cid)
            .bind(&f.org_id)
            .bind(format!("Customer {i:05} SARL"))
            .bind(format!("billing{i}@example.org"))
            .bind(format!("C{:05}", i + 1))
            .bind(now)
            .execute(tx.conn())
            .await?;
            sqlx::query(
                "INSERT INTO inv_subscriptions (id, org_id, customer_id, label, frequency, anchor_date, next_date, active, \
                 created_at, updated_at) VALUES ($1, $2, $3, 'Hosting', 'monthly', '2026-11-01', '2026-11-01', 1, $4, $4)",
            )
            .bind(&sid)
            .bind(&f.org_id)
            .bind(&cid)
            .bind(now)
            .execute(tx.conn())
            .await?;
            for (pos, name, qty, price) in [(1, "VM S", 1000, 1200), (2, "Backup GB", 50_000, 2)] {
                sqlx::query(
                    "INSERT INTO inv_subscription_lines (subscription_id, position, name, quantity_milli, unit_code, \
                     unit_price_cents, vat_code) VALUES ($1, $2, $3, $4, 'C62', $5, 'FR-20')",
                )
                .bind(&sid)
                .bind(pos)
                .bind(name)
                .bind(qty)
                .bind(price)
                .execute(tx.conn())
                .await?;
            }
        }
        tx.commit().await?;
    }
    sqlx::query("UPDATE inv_settings SET last_customer_no = $1 WHERE org_id = $2")
        .bind(n as i64)
        .bind(&f.org_id)
        .execute(db.pool())
        .await?;
    eprintln!(
        "[{}] set-up of {n} customers and subscriptions: {:.1} s",
        app.backend_name(),
        setup.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (s, r) =
        app.post(t, &format!("/api/v1/orgs/{o}/invoicing/billing-runs"), json!({"run_date": "2026-11-21"})).await;
    anyhow::ensure!(s == 202, "{r}");
    let id = r["id"].as_str().unwrap_or_default().to_string();
    let mut last_print = Instant::now();
    let r = loop {
        let (_, r) = app.get(t, &format!("/api/v1/orgs/{o}/invoicing/billing-runs/{id}")).await;
        if !matches!(r["status"].as_str(), Some("queued" | "running")) {
            break r;
        }
        if last_print.elapsed().as_secs() >= 10 {
            eprintln!("  {} / {} customers after {:.0} s", r["done"], r["total"], started.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(r["status"] == "done" && r["invoices"] == n, "{r}");
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inv_documents WHERE org_id = $1 AND pdf_file_id IS NOT NULL")
            .bind(&f.org_id)
            .fetch_one(db.pool())
            .await?;
    anyhow::ensure!(stored == n as i64, "{stored} PDFs stored of {n}");
    println!(
        "[{}] billing run: {n} invoices (numbered, posted, PDF/A-3 + Factur-X XML stored) in {secs:.1} s = {:.0} invoices/s",
        app.backend_name(),
        n as f64 / secs
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        run(Backend::Sqlite).await?;
        if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err() {
            run(Backend::Postgres).await?;
        }
        Ok(())
    })
}
