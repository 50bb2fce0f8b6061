//! SEPA direct debit benchmarks (`cargo bench -p shrooms-members --bench sepa`):
//!
//! 1. **File**: the pain.008.001.08 file of 10,000 debits generated from
//!    memory (`sepa::pain008`), median of 5 runs. Target < 5 s.
//! 2. **Batch**: `POST /api/v1/orgs/{org}/members/sepa/batches` with 10,000
//!    debits against the real server, on SQLite and PostgreSQL: 10,000
//!    receipts, 10,000 validated ledger entries, 10,000 debits, the file and
//!    the pre-notification mails, in one transaction. People and mandates
//!    are seeded with SQL first (not timed).
//!
//! `DEBITS=10000` changes the size; `BENCH=file` or `BENCH=batch` runs one.

use serde_json::json;
use shrooms_core::{core_module::CoreModule, Module, Modules};
use shrooms_members::sepa::{pain008, Creditor, Debit, PostalAddress};
use std::sync::Arc;
use std::time::Instant;
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_members::MembersModule),
    ];
    Modules::new(list).expect("modules")
}

fn count() -> usize {
    std::env::var("DEBITS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn file_bench(n: usize) {
    let creditor = Creditor {
        name: "Coopérative d'hébergement".into(),
        iban: "FR7630006000011234567890189".into(),
        bic: "AGRIFRPP".into(),
        ics: "FR72ZZZ123456".into(),
        address: PostalAddress {
            street: "5 avenue Foch".into(),
            postcode: "75016".into(),
            city: "Paris".into(),
            country: "FR".into(),
        },
    };
    let debits: Vec<Debit> = (0..n)
        .map(|i| Debit {
            end_to_end_id: format!("RC-{i:06}"),
            amount_cents: 1000 + (i % 5000) as i64,
            mandate_reference: format!("ADH-{i:06}"),
            mandate_signed_on: "2025-09-01".into(),
            first: i % 7 == 0,
            debtor_name: format!("Membre {i} Lefèvre"),
            debtor_iban: "DE89370400440532013000".into(),
            debtor_bic: Some("COBADEFFXXX".into()),
            debtor_address: PostalAddress {
                street: format!("{i} rue de la Paix"),
                postcode: "69001".into(),
                city: "Lyon".into(),
                country: "FR".into(),
            },
            remittance: format!("Cotisation RC-{i:06}"),
        })
        .collect();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let xml = pain008("SHR-BENCH", "2026-11-21T10:00:00Z", "2027-01-05", &creditor, &debits);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        size = xml.len();
    }
    times.sort_by(f64::total_cmp);
    println!("file: {n} debits, {:.1} MB, median {:.1} ms (max {:.1} ms)", size as f64 / 1e6, times[2], times[4]);
}

async fn batch_bench(backend: Backend, n: usize) {
    let app = TestApp::spawn(backend, modules()).await;
    let f = app.bootstrap().await;
    let org = f.org_slug.clone();
    let tomorrow = jiff::Zoned::now().date().tomorrow().unwrap();
    let (s, b) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/accounting/books"),
            json!({"chart": "associations", "first_year_start": format!("{}-01-01", tomorrow.year())}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/members/sepa/creditor"),
            json!({"name": "Bench", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "ics": "FR72ZZZ123456", "address": {"city": "Lyon"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // Seeding (not timed): people and their mandates, in chunks.
    let db = &app.state.db;
    let now = shrooms_core::ids::Timestamp::now().0;
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let t = Instant::now();
    for (c, chunk) in ids.chunks(50).enumerate() {
        let mut tx = db.begin().await.unwrap();
        for (i, id) in chunk.iter().enumerate() {
            let k = c * 50 + i;
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
            sqlx::query("INSERT INTO mem_mandates (id, org_id, person_id, reference, iban, bic, debtor_name, signed_on, status, created_at) VALUES ($1, $2, $3, $4, 'DE89370400440532013000', NULL, $5, '2025-09-01', 'active', $6)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&f.org_id)
                .bind(id)
                .bind(format!("ADH-{k:06}"))
                .bind(format!("Membre{k} Bench"))
                .bind(now)
                .execute(tx.conn())
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let seeding = t.elapsed().as_secs_f64();
    let items: Vec<_> = ids.iter().map(|p| json!({"person_id": p, "amount_cents": 3000})).collect();
    let t = Instant::now();
    let (s, b) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/members/sepa/batches"),
            json!({"collection_date": tomorrow.to_string(), "items": items}),
        )
        .await;
    let took = t.elapsed().as_secs_f64();
    assert_eq!(s, 201, "{}", b.to_string().chars().take(500).collect::<String>());
    assert_eq!(b["debit_count"], n);
    println!(
        "batch on {}: {n} debits (receipts, ledger entries, file, {n} pre-notifications) in {took:.2} s (seeding {seeding:.1} s)",
        app.backend_name()
    );
}

fn main() {
    let n = count();
    let which = std::env::var("BENCH").unwrap_or_default();
    if which.is_empty() || which == "file" {
        file_bench(n);
    }
    if which.is_empty() || which == "batch" {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(batch_bench(Backend::Sqlite, n));
        if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err() {
            rt.block_on(batch_bench(Backend::Postgres, n));
        }
    }
}
