//! Accounting: the double-entry ledger of an organisation, in the form a
//! French association or cooperative hands to its accountant — charts of
//! accounts (PCG, associations' ANC 2018-06), fiscal years, journals,
//! entries that always balance, validation that numbers and seals them,
//! closing with à-nouveaux, reports, the FEC, and a check of it all.
//!
//! It owns the `acct_*` tables. Other modules never write them: they post
//! through [`service::post_entry`] / [`service::post_entries`] in their own
//! transaction. Amounts are exact (cents in BIGINT), never floats.

pub mod bank;
pub mod budget;
pub mod charts;
pub mod check;
pub mod deferral;
pub mod demo;
pub mod domain;
pub mod error;
pub mod fec;
pub mod http;
pub mod lettering;
pub mod privacy;
pub mod repo;
pub mod reports;
pub mod service;
pub mod statements;

use axum::Router;
use shrooms_core::db::Migration;
use shrooms_core::module::{MenuEntry, Module, RecordFuture, RecordKind, RecordRef};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::{AppState, OrgCtx};

pub use service::MODULE;

pub struct AccountingModule;

/// Entries carry files (receipt photos) and a timeline.
fn find_entry(st: AppState, ctx: OrgCtx, id: String) -> RecordFuture {
    Box::pin(async move {
        let cap = ctx.can_read(MODULE)?;
        match service::get_entry(&st.db, &cap, &id).await {
            Ok(e) => Ok(Some(RecordRef {
                entity_type: "entry".into(),
                entity_id: e.id.clone(),
                title: format!("{} {}", e.reference.unwrap_or_else(|| e.journal.clone()), e.label),
                path: format!("/o/{}/accounting/entries/{}", ctx.org.slug, e.id),
            })),
            Err(error::AcctError::Core(shrooms_core::CoreError::NotFound)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
}

impl Module for AccountingModule {
    fn id(&self) -> &'static str {
        MODULE
    }
    fn name_key(&self) -> &'static str {
        "accounting.name"
    }
    fn description_key(&self) -> &'static str {
        "accounting.description"
    }
    fn migrations(&self) -> &'static [Migration] {
        &[
            Migration {
                id: "m20261121_100_accounting_init",
                sql: include_str!("../migrations/m20261121_100_accounting_init.sql"),
            },
            Migration {
                id: "m20261121_200_accounting_bank",
                sql: include_str!("../migrations/m20261121_200_accounting_bank.sql"),
            },
            Migration {
                id: "m20261121_300_accounting_budget",
                sql: include_str!("../migrations/m20261121_300_accounting_budget.sql"),
            },
            Migration {
                id: "m20261121_400_accounting_deferrals",
                sql: include_str!("../migrations/m20261121_400_accounting_deferrals.sql"),
            },
            Migration {
                id: "m20261121_500_accounting_statement_matches",
                sql: include_str!("../migrations/m20261121_500_accounting_statement_matches.sql"),
            },
            Migration {
                id: "m20261121_600_accounting_match_groups",
                sql: include_str!("../migrations/m20261121_600_accounting_match_groups.sql"),
            },
        ]
    }
    fn default_access(&self, role: BuiltinRole) -> Access {
        // The books are for the board and the treasurer; members see nothing.
        match role {
            BuiltinRole::Owner | BuiltinRole::Admin => Access::Admin,
            BuiltinRole::Manager => Access::Write,
            BuiltinRole::Staff | BuiltinRole::Member | BuiltinRole::Client => Access::None,
        }
    }
    fn menu(&self) -> Vec<MenuEntry> {
        vec![MenuEntry { label_key: "accounting.title", path: "accounting", min_access: Access::Read, order: 40 }]
    }
    fn router(&self) -> Router<AppState> {
        http::api::router().merge(http::ui::router())
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        use utoipa::OpenApi;
        Some(http::api::AccountingApi::openapi())
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
    fn personal_data(&self) -> Option<std::sync::Arc<dyn shrooms_core::privacy::PersonalData>> {
        Some(std::sync::Arc::new(privacy::AccountingPersonalData))
    }
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[("en", include_str!("../i18n/en.toml")), ("fr", include_str!("../i18n/fr.toml"))]
    }
    fn demo(&self) -> Option<fn(AppState, shrooms_core::module::DemoCtx) -> shrooms_core::module::DemoFuture> {
        Some(demo::run)
    }
    fn record_kinds(&self) -> Vec<RecordKind> {
        vec![RecordKind { entity_type: "entry", module: MODULE, find: find_entry }]
    }
}

pub const TEMPLATES: &[(&str, &str)] = &[
    ("accounting_overview.html", include_str!("../templates/accounting_overview.html")),
    ("accounting_entries.html", include_str!("../templates/accounting_entries.html")),
    ("accounting_entry.html", include_str!("../templates/accounting_entry.html")),
    ("accounting_entry_form.html", include_str!("../templates/accounting_entry_form.html")),
    ("accounting_simple.html", include_str!("../templates/accounting_simple.html")),
    ("accounting_accounts.html", include_str!("../templates/accounting_accounts.html")),
    ("accounting_chart.html", include_str!("../templates/accounting_chart.html")),
    ("accounting_report.html", include_str!("../templates/accounting_report.html")),
    ("accounting_bank.html", include_str!("../templates/accounting_bank.html")),
    ("accounting_budget.html", include_str!("../templates/accounting_budget.html")),
    ("accounting_deferral.html", include_str!("../templates/accounting_deferral.html")),
    ("accounting_lettering.html", include_str!("../templates/accounting_lettering.html")),
    ("accounting_reconciliation.html", include_str!("../templates/accounting_reconciliation.html")),
];
