//! Members and dues: membership types (fee and period rules, voting right),
//! each person's history of membership periods (joined, renewed, lapsed,
//! resigned, excluded) from which "up to date" is computed, households and
//! legal entities sharing an address and an e-mail, and dues recorded as
//! receipts with continuous numbers whose payment is posted to the ledger,
//! donations and tax receipts (Cerfa 11580 and 16216 content, PDF, yearly
//! batch by mail, yearly totals to declare), SEPA direct debit (mandates,
//! pain.008.001.08 batches, pre-notification, returned debits).
//!
//! It owns the `mem_*` tables. Members are the core's people: it never
//! copies or writes the person record. It never writes the ledger itself:
//! payments go through the accounting module's `post_entries`, in the same
//! durable transaction as the receipt. Billing through invoices will go
//! through the invoicing module's pending items (`billing.rs`) when the
//! organisation chooses dues as invoices; renewal notices and reminders are
//! sent by a daily schedule (`renewals.rs`).

pub mod billing;
pub mod debits;
pub mod directory;
pub mod domain;
pub mod donations;
pub mod error;
pub mod french;
pub mod gift_plans;
pub mod http;
pub mod import;
pub mod mailing;
pub mod privacy;
pub mod renewals;
pub mod selfservice;
pub mod sepa;
pub mod service;
pub mod stats;

use axum::Router;
use shrooms_core::db::Migration;
use shrooms_core::module::{MenuEntry, Module};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::AppState;

pub use service::MODULE;

pub struct MembersModule;

impl Module for MembersModule {
    fn id(&self) -> &'static str {
        MODULE
    }
    fn name_key(&self) -> &'static str {
        "members.name"
    }
    fn description_key(&self) -> &'static str {
        "members.description"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["accounting"]
    }
    fn migrations(&self) -> &'static [Migration] {
        &[
            Migration {
                id: "m20261121_600_members_init",
                sql: include_str!("../migrations/m20261121_600_members_init.sql"),
            },
            Migration {
                id: "m20261121_610_members_billing",
                sql: include_str!("../migrations/m20261121_610_members_billing.sql"),
            },
            Migration {
                id: "m20261121_620_members_selfservice",
                sql: include_str!("../migrations/m20261121_620_members_selfservice.sql"),
            },
            Migration {
                id: "m20261121_630_members_directory",
                sql: include_str!("../migrations/m20261121_630_members_directory.sql"),
            },
            Migration {
                id: "m20261121_640_members_retention",
                sql: include_str!("../migrations/m20261121_640_members_retention.sql"),
            },
            Migration {
                id: "m20261121_650_members_debit_invoices",
                sql: include_str!("../migrations/m20261121_650_members_debit_invoices.sql"),
            },
            Migration {
                id: "m20261121_660_members_directory_indexes",
                sql: include_str!("../migrations/m20261121_660_members_directory_indexes.sql"),
            },
            Migration {
                id: "m20261121_670_members_renewal_runs",
                sql: include_str!("../migrations/m20261121_670_members_renewal_runs.sql"),
            },
            Migration {
                id: "m20261122_680_members_invoice_payments",
                sql: include_str!("../migrations/m20261122_680_members_invoice_payments.sql"),
            },
            Migration {
                id: "m20261122_690_members_mandate_iban_sealed",
                sql: include_str!("../migrations/m20261122_690_members_mandate_iban_sealed.sql"),
            },
            Migration {
                id: "m20261122_700_members_retention_schedule_on",
                sql: include_str!("../migrations/m20261122_700_members_retention_schedule_on.sql"),
            },
            Migration {
                id: "m20261122_710_members_gift_plans",
                sql: include_str!("../migrations/m20261122_710_members_gift_plans.sql"),
            },
        ]
    }
    /// The secretary and the treasurer (managers) record memberships and
    /// dues; staff read the list (to check a card at the door); members see
    /// nothing of others.
    fn default_access(&self, role: BuiltinRole) -> Access {
        match role {
            BuiltinRole::Owner | BuiltinRole::Admin => Access::Admin,
            BuiltinRole::Manager => Access::Write,
            BuiltinRole::Staff => Access::Read,
            BuiltinRole::Member | BuiltinRole::Client => Access::None,
        }
    }
    fn menu(&self) -> Vec<MenuEntry> {
        vec![
            MenuEntry { label_key: "members.title", path: "members", min_access: Access::Read, order: 20 },
            // The member space: any signed-in person of the organisation's directory.
            MenuEntry { label_key: "members.me.menu", path: "members/me", min_access: Access::None, order: 21 },
        ]
    }
    fn router(&self) -> Router<AppState> {
        http::api::router()
            .merge(http::ui::router())
            .merge(http::api_dir::router())
            .merge(http::ui_dir::router())
            .merge(http::api_stats::router())
            .merge(http::ui_stats::router())
            .merge(http::api_billing::router())
            .merge(http::ui_billing::router())
            .merge(http::api_self::router())
            .merge(http::ui_self::router())
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        use utoipa::OpenApi;
        let mut doc = http::api::MembersApi::openapi();
        doc.merge(http::api_dir::DirectoryApi::openapi());
        doc.merge(http::api_stats::StatsApi::openapi());
        doc.merge(http::api_billing::BillingApi::openapi());
        doc.merge(http::api_self::SelfServiceApi::openapi());
        Some(doc)
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("en", include_str!("../i18n/en.toml")),
            ("fr", include_str!("../i18n/fr.toml")),
            ("en", include_str!("../i18n/dir.en.toml")),
            ("fr", include_str!("../i18n/dir.fr.toml")),
            ("en", include_str!("../i18n/stats.en.toml")),
            ("fr", include_str!("../i18n/stats.fr.toml")),
            ("en", include_str!("../i18n/billing.en.toml")),
            ("fr", include_str!("../i18n/billing.fr.toml")),
            ("en", include_str!("../i18n/self.en.toml")),
            ("fr", include_str!("../i18n/self.fr.toml")),
        ]
    }
    fn assets(&self) -> &'static [(&'static str, &'static [u8])] {
        &[
            ("members/stats.js", include_bytes!("../static/stats.js")),
            ("members/stats.css", include_bytes!("../static/stats.css")),
        ]
    }
    fn jobs(&self) -> Vec<shrooms_core::jobs::JobSpec> {
        vec![
            mailing::MAILING_SEND,
            privacy::RETENTION,
            renewals::RENEWALS_JOB,
            renewals::RUN_JOB,
            billing::INVOICE_SETTLED,
            debits::SEAL_IBANS,
        ]
    }
    fn importers(&self) -> Vec<std::sync::Arc<dyn shrooms_core::import::Importer>> {
        vec![std::sync::Arc::new(import::MembersImporter)]
    }
    fn schedules(&self) -> Vec<shrooms_core::schedules::ScheduleSpec> {
        // Each organisation, daily, in its time zone: tax receipts past
        // their six years are pseudonymised everywhere; former members are
        // erased only where a retention period is set.
        vec![
            shrooms_core::schedules::ScheduleSpec::each_org(
                privacy::RETENTION_SCHEDULE,
                privacy::RETENTION.name,
                "20 4 * * *",
            ),
            renewals::schedule(),
            debits::seal_schedule(),
        ]
    }
    fn notification_kinds(&self) -> Vec<shrooms_core::module::NotificationKind> {
        vec![
            shrooms_core::module::NotificationKind {
                id: selfservice::JOIN_REQUEST_NOTICE,
                label_key: "members.notify.kind.join_request",
                verb_key: "members.notify.verb.join_request",
                in_app: true,
                mail: shrooms_core::module::MailMode::Immediate,
            },
            // A profile change is not urgent: mailed in the daily digest.
            shrooms_core::module::NotificationKind {
                id: selfservice::CHANGE_REQUEST_NOTICE,
                label_key: "members.notify.kind.change_request",
                verb_key: "members.notify.verb.change_request",
                in_app: true,
                mail: shrooms_core::module::MailMode::Digest,
            },
        ]
    }
    fn personal_data(&self) -> Option<std::sync::Arc<dyn shrooms_core::privacy::PersonalData>> {
        Some(std::sync::Arc::new(privacy::MembersPersonalData))
    }
}

pub const TEMPLATES: &[(&str, &str)] = &[
    ("members_index.html", include_str!("../templates/members_index.html")),
    ("members_person.html", include_str!("../templates/members_person.html")),
    ("members_types.html", include_str!("../templates/members_types.html")),
    ("members_households.html", include_str!("../templates/members_households.html")),
    ("members_dues.html", include_str!("../templates/members_dues.html")),
    ("members_settings.html", include_str!("../templates/members_settings.html")),
    ("members_nav.html", include_str!("../templates/members_nav.html")),
    ("members_macros.html", include_str!("../templates/members_macros.html")),
    ("members_donations.html", include_str!("../templates/members_donations.html")),
    ("email_members_tax_receipt.txt", include_str!("../templates/email_members_tax_receipt.txt")),
    ("email_members_debit_notice.txt", include_str!("../templates/email_members_debit_notice.txt")),
    ("members_sepa.html", include_str!("../templates/members_sepa.html")),
    ("members_check.html", include_str!("../templates/members_check.html")),
    ("members_directory.html", include_str!("../templates/members_directory.html")),
    ("members_mailing.html", include_str!("../templates/members_mailing.html")),
    ("members_unsubscribe.html", include_str!("../templates/members_unsubscribe.html")),
    ("members_stats.html", include_str!("../templates/members_stats.html")),
    ("members_renew.html", include_str!("../templates/members_renew.html")),
    ("members_renew_person.html", include_str!("../templates/members_renew_person.html")),
    ("members_renew_late.html", include_str!("../templates/members_renew_late.html")),
    ("members_renew_runs.html", include_str!("../templates/members_renew_runs.html")),
    ("members_renew_settings.html", include_str!("../templates/members_renew_settings.html")),
    ("members_renew_settings_form.html", include_str!("../templates/members_renew_settings_form.html")),
    ("email_members_renewal.txt", include_str!("../templates/email_members_renewal.txt")),
    ("email_members_renewal_reminder.txt", include_str!("../templates/email_members_renewal_reminder.txt")),
    ("members_join.html", include_str!("../templates/members_join.html")),
    ("members_join_settings.html", include_str!("../templates/members_join_settings.html")),
    ("members_me.html", include_str!("../templates/members_me.html")),
    ("members_requests.html", include_str!("../templates/members_requests.html")),
];
