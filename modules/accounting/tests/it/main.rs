//! The one integration-test binary of the accounting module. Every test
//! starts the real server (SQLite and PostgreSQL, `testkit::db_test!`) and
//! talks HTTP to it.

mod association_year;
mod bank;
mod budget;
mod chart;
mod deferral;
mod demo;
mod fec_encodings;
mod ledger;
mod lettering;

use serde_json::{json, Value};
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use testkit::TestApp;

pub fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![Arc::new(CoreModule), Arc::new(shrooms_accounting::AccountingModule)];
    Modules::new(list).expect("valid module list")
}

/// `/api/v1/orgs/{org}/accounting{path}`
pub fn url(org: &str, path: &str) -> String {
    format!("/api/v1/orgs/{org}/accounting{path}")
}

/// Opens books with the associations' chart for the calendar year 2025.
pub async fn open_books(app: &TestApp, token: &str, org: &str) -> Value {
    let (s, b) = app
        .post(
            token,
            &url(org, "/books"),
            json!({"chart": "associations", "siren": "123456789", "first_year_start": "2025-01-01"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

/// Posts an entry from (account, debit, credit) triples; returns the entry.
pub async fn entry(
    app: &TestApp,
    token: &str,
    org: &str,
    journal: &str,
    date: &str,
    label: &str,
    lines: &[(&str, &str, &str)],
    validate: bool,
) -> Value {
    let lines: Vec<Value> = lines.iter().map(|(a, d, c)| json!({"account": a, "debit": d, "credit": c})).collect();
    let (s, b) = app
        .post(
            token,
            &url(org, "/entries"),
            json!({"journal": journal, "date": date, "label": label, "lines": lines, "validate": validate}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

pub async fn text(app: &TestApp, token: &str, path: &str) -> (u16, String, String) {
    let r = app.http.get(app.url(path)).bearer_auth(token).send().await.expect("request");
    let s = r.status().as_u16();
    let disposition = r.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (s, disposition, r.text().await.unwrap_or_default())
}
