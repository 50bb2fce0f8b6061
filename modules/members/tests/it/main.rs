//! The one integration-test binary of the members module: the real server
//! on a random port, on SQLite and on PostgreSQL (`testkit::db_test!`),
//! spoken to over HTTP, with the accounting module it posts to.

mod billing;
mod directory;
mod donations;
mod dues;
mod import;
mod invoice_payments;
mod journey;
mod mailing;
mod memberships;
mod pages;
mod privacy;
mod renewals;
mod selfservice;
mod sepa;
mod sepa_invoices;
mod stats;

use serde_json::{json, Value};
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use testkit::TestApp;

pub fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_invoicing::InvoicingModule),
        Arc::new(shrooms_members::MembersModule),
    ];
    Modules::new(list).expect("valid module list")
}

/// `/api/v1/orgs/{org}/members{path}`
pub fn url(org: &str, path: &str) -> String {
    format!("/api/v1/orgs/{org}/members{path}")
}

pub struct Setup {
    pub org: String,
    pub admin: String,
}

/// This year (the server computes standings for today).
pub fn year() -> i16 {
    jiff::Zoned::now().date().year()
}

/// An organisation with its books opened for this year (associations' chart).
pub async fn setup(app: &TestApp) -> Setup {
    let f = app.bootstrap().await;
    let (s, b) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{}/accounting/books", f.org_slug),
            json!({"chart": "associations", "first_year_start": format!("{}-01-01", year())}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    Setup { org: f.org_slug, admin: f.admin_token }
}

pub async fn person(app: &TestApp, s: &Setup, given: &str, family: &str) -> String {
    let (st, p) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/people", s.org),
            json!({"given_name": given, "family_name": family, "email": format!("{}@example.org", given.to_lowercase())}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

/// A yearly type at 30.00, calendar year, with a vote.
pub async fn yearly(app: &TestApp, s: &Setup, name: &str) -> String {
    let (st, t) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": name, "kind": "individual", "fee_rule": "fixed", "fee_cents": 3000, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

pub async fn join(app: &TestApp, s: &Setup, person: &str, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, &format!("/people/{person}/periods")), body).await
}

/// The field errors of a problem+json answer, as (field, message) pairs.
pub fn field_errors(b: &Value) -> Vec<(String, String)> {
    b["errors"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (e["field"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Audit entries of the organisation with this action.
pub async fn audited(app: &TestApp, s: &Setup, action: &str) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/audit?action={action}&limit=500", s.org)).await;
    assert_eq!(st, 200, "{b}");
    b["items"].as_array().cloned().unwrap_or_default()
}

/// Waits (by the clock) until the directory search `status=…` lists the
/// person: payments made in invoicing reach it through a job.
pub async fn wait_in_directory(app: &TestApp, s: &Setup, status: &str, person: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, found) = app.get(&s.admin, &url(&s.org, &format!("/search?status={status}"))).await;
        if found.to_string().contains(person) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the directory never listed {person} as {status}: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
