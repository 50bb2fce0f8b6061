//! Invoicing and payments: the catalogue with dated VAT rates, customers,
//! quotes, invoices and credit notes numbered without gaps, Factur-X and
//! UBL, payments, deposit slips, customer credit, online payment providers,
//! reminders and reports. Every invoice, credit note and payment posts to
//! the ledger through the accounting module's posting interface.
//!
//! It owns the `inv_*` tables. Other modules bill through the pending-items
//! interface (`inv_pending_items`): they never write invoices themselves.

pub mod billing;
pub mod catalogue;
pub mod customers;
pub mod documents;
pub mod documents_files;
pub mod documents_mentions;
pub mod documents_send;
pub mod http;
pub mod numbering;
pub mod posting;
pub mod privacy;
pub mod render;
pub mod settlement;
// Payments (inv-pay).
pub mod dunning;
pub mod payments;
pub mod payments_slips;
pub mod providers;
pub mod reports;
pub mod suspensions;

use axum::Router;
use shrooms_core::db::Migration;
use shrooms_core::module::{MenuEntry, Module, RecordKind};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::AppState;

pub const MODULE: &str = "invoicing";

pub struct InvoicingModule;

impl Module for InvoicingModule {
    fn id(&self) -> &'static str {
        MODULE
    }
    fn name_key(&self) -> &'static str {
        "invoicing.name"
    }
    fn description_key(&self) -> &'static str {
        "invoicing.description"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["accounting"]
    }
    fn migrations(&self) -> &'static [Migration] {
        &[
            Migration {
                id: "m20261121_100_invoicing_documents",
                sql: include_str!("../migrations/m20261121_100_invoicing_documents.sql"),
            },
            Migration {
                id: "m20261121_200_invoicing_payments",
                sql: include_str!("../migrations/m20261121_200_invoicing_payments.sql"),
            },
            Migration {
                id: "m20261121_210_invoicing_customer_person",
                sql: include_str!("../migrations/m20261121_210_invoicing_customer_person.sql"),
            },
            Migration {
                id: "m20261121_220_invoicing_document_indexes",
                sql: include_str!("../migrations/m20261121_220_invoicing_document_indexes.sql"),
            },
        ]
    }
    fn default_access(&self, role: BuiltinRole) -> Access {
        match role {
            BuiltinRole::Owner | BuiltinRole::Admin => Access::Admin,
            BuiltinRole::Manager => Access::Write,
            BuiltinRole::Staff => Access::Read,
            BuiltinRole::Member | BuiltinRole::Client => Access::None,
        }
    }
    fn menu(&self) -> Vec<MenuEntry> {
        vec![MenuEntry { label_key: "invoicing.title", path: "invoicing", min_access: Access::Read, order: 45 }]
    }
    fn router(&self) -> Router<AppState> {
        http::router()
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(http::openapi())
    }
    fn jobs(&self) -> Vec<shrooms_core::jobs::JobSpec> {
        vec![documents_files::PDF_JOB, billing::RUN_JOB, dunning::DUNNING]
    }
    fn record_kinds(&self) -> Vec<RecordKind> {
        vec![RecordKind { entity_type: documents::ENTITY, module: MODULE, find: documents::find_record }]
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
    fn personal_data(&self) -> Option<std::sync::Arc<dyn shrooms_core::privacy::PersonalData>> {
        Some(std::sync::Arc::new(privacy::InvoicingPersonalData))
    }
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("en", include_str!("../i18n/en.toml")),
            ("fr", include_str!("../i18n/fr.toml")),
            ("en", include_str!("../i18n/pay.en.toml")),
            ("fr", include_str!("../i18n/pay.fr.toml")),
        ]
    }
    fn schedules(&self) -> Vec<shrooms_core::schedules::ScheduleSpec> {
        // Off until an organisation's administrator switches it on: nobody
        // starts dunning their customers by surprise.
        vec![shrooms_core::schedules::ScheduleSpec::each_org("invoicing.dunning", dunning::DUNNING.name, "0 8 * * *")
            .disabled()]
    }
}

/// The module's templates: documents ("docs") and payments parts.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("email_inv_doc.txt", include_str!("../templates/email_inv_doc.txt")),
    ("email_inv_doc.html", include_str!("../templates/email_inv_doc.html")),
    ("inv_doc_nav.html", include_str!("../templates/inv_doc_nav.html")),
    ("inv_doc_list.html", include_str!("../templates/inv_doc_list.html")),
    ("inv_doc_form.html", include_str!("../templates/inv_doc_form.html")),
    ("inv_doc_show.html", include_str!("../templates/inv_doc_show.html")),
    ("inv_doc_customers.html", include_str!("../templates/inv_doc_customers.html")),
    ("inv_doc_customer.html", include_str!("../templates/inv_doc_customer.html")),
    ("inv_doc_customer_fields.html", include_str!("../templates/inv_doc_customer_fields.html")),
    ("inv_doc_catalogue.html", include_str!("../templates/inv_doc_catalogue.html")),
    ("inv_doc_vat.html", include_str!("../templates/inv_doc_vat.html")),
    ("inv_doc_settings.html", include_str!("../templates/inv_doc_settings.html")),
    ("inv_doc_subscriptions.html", include_str!("../templates/inv_doc_subscriptions.html")),
    ("inv_doc_runs.html", include_str!("../templates/inv_doc_runs.html")),
    // Payments, reminders and reports (inv-pay).
    ("inv_pay_payments.html", include_str!("../templates/inv_pay_payments.html")),
    ("inv_pay_payment.html", include_str!("../templates/inv_pay_payment.html")),
    ("inv_pay_slips.html", include_str!("../templates/inv_pay_slips.html")),
    ("inv_pay_credits.html", include_str!("../templates/inv_pay_credits.html")),
    ("inv_pay_reminders.html", include_str!("../templates/inv_pay_reminders.html")),
    ("inv_pay_reports.html", include_str!("../templates/inv_pay_reports.html")),
    ("inv_pay_providers.html", include_str!("../templates/inv_pay_providers.html")),
    ("inv_pay_public.html", include_str!("../templates/inv_pay_public.html")),
];

#[cfg(test)]
mod tests {
    /// The keys of a catalogue (`"key" = "text"` lines).
    fn keys(src: &str) -> std::collections::BTreeSet<String> {
        src.lines().filter_map(|l| l.strip_prefix('"')?.split_once('"').map(|(k, _)| k.to_string())).collect()
    }

    #[test]
    fn french_and_english_catalogues_have_the_same_keys() {
        let (en, fr) = (keys(include_str!("../i18n/en.toml")), keys(include_str!("../i18n/fr.toml")));
        assert_eq!(en.difference(&fr).collect::<Vec<_>>(), Vec::<&String>::new(), "missing in French");
        assert_eq!(fr.difference(&en).collect::<Vec<_>>(), Vec::<&String>::new(), "missing in English");
    }

    #[test]
    fn every_key_the_templates_use_is_translated() {
        let mut en = keys(include_str!("../i18n/en.toml"));
        en.extend(keys(include_str!("../i18n/pay.en.toml")));
        for (name, src) in super::TEMPLATES {
            let mut rest = *src;
            while let Some(i) = rest.find("t(\"") {
                let prev = rest[..i].chars().last();
                let s = &rest[i + 3..];
                let end = s.find('"').expect("closed");
                let key = &s[..end];
                if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    rest = &s[end..];
                    continue; // `input("…"`, not a translation
                }
                let core =
                    key.starts_with("layout.") || key.starts_with("mail.link_fallback") || key == "invoicing.title";
                // `t("inv.kind." ~ d.kind)`: some key continues the prefix.
                let dynamic = (key.ends_with('.') || key.ends_with('_')) && en.iter().any(|k| k.starts_with(key));
                assert!(core || dynamic || en.contains(key), "{name}: {key} is not translated");
                rest = &s[end..];
            }
        }
    }
}
