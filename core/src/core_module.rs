//! The core, declared through the same [`Module`] interface as every domain
//! module: its migrations, routes, menu, dashboard widgets, templates and
//! translations.

use crate::db::Migration;
use crate::module::{MailMode, MenuEntry, Module, NotificationKind, RecordKind, RecordRef, Widget};
use crate::permissions::{Access, BuiltinRole};
use crate::web::{api, ui, AppState, OrgCtx};
use axum::Router;

pub struct CoreModule;

pub const MIGRATIONS: &[Migration] = &[
    Migration { id: "m20261121_001_core_init", sql: include_str!("../migrations/m20261121_001_core_init.sql") },
    Migration {
        id: "m20261121_002_core_people_terms",
        sql: include_str!("../migrations/m20261121_002_core_people_terms.sql"),
    },
    Migration { id: "m20261121_003_core_jobs", sql: include_str!("../migrations/m20261121_003_core_jobs.sql") },
    Migration {
        id: "m20261121_004_core_people_terms_phone",
        sql: include_str!("../migrations/m20261121_004_core_people_terms_phone.sql"),
    },
    Migration { id: "m20261121_040_core_timeline", sql: include_str!("../migrations/m20261121_040_core_timeline.sql") },
    Migration {
        id: "m20261121_050_core_custom_fields",
        sql: include_str!("../migrations/m20261121_050_core_custom_fields.sql"),
    },
    Migration {
        id: "m20261121_060_core_dashboards",
        sql: include_str!("../migrations/m20261121_060_core_dashboards.sql"),
    },
    Migration { id: "m20261121_070_core_alerts", sql: include_str!("../migrations/m20261121_070_core_alerts.sql") },
    Migration {
        id: "m20261121_080_core_people_terms_nofk",
        sql: include_str!("../migrations/m20261121_080_core_people_terms_nofk.sql"),
    },
    Migration { id: "m20261121_010_core_files", sql: include_str!("../migrations/m20261121_010_core_files.sql") },
    Migration {
        id: "m20261121_030_core_schedules",
        sql: include_str!("../migrations/m20261121_030_core_schedules.sql"),
    },
    Migration { id: "m20261121_020_core_imports", sql: include_str!("../migrations/m20261121_020_core_imports.sql") },
    Migration { id: "m20261121_090_core_privacy", sql: include_str!("../migrations/m20261121_090_core_privacy.sql") },
    Migration {
        id: "m20261121_090_core_outbox_headers",
        sql: include_str!("../migrations/m20261121_090_core_outbox_headers.sql"),
    },
    Migration {
        id: "m20261121_095_core_people_terms_names",
        sql: include_str!("../migrations/m20261121_095_core_people_terms_names.sql"),
    },
];

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

pub const TEMPLATES: &[(&str, &str)] = templates!(
    "layout.html",
    "macros.html",
    "error.html",
    "home.html",
    "setup.html",
    "login.html",
    "login_totp.html",
    "password_forgot.html",
    "password_reset.html",
    "email_verify.html",
    "account_security.html",
    "admin.html",
    "admin_jobs.html",
    "admin_health.html",
    "schedules.html",
    "dashboard.html",
    "people_list.html",
    "people_rows_partial.html",
    "person_form.html",
    "person_show.html",
    "audit_list.html",
    "org_settings.html",
    "api_docs.html",
    "widget_people.html",
    "widget_activity.html",
    "email_layout.html",
    "email_password_reset.html",
    "email_password_reset.txt",
    "email_verify_email.html",
    "email_verify_email.txt",
    "email_invitation.html",
    "email_invitation.txt",
    "timeline_partial.html",
    "timeline_page.html",
    "custom_fields.html",
    "notifications.html",
    "email_notification.html",
    "email_notification.txt",
    "email_digest.html",
    "email_digest.txt",
    "files_partial.html",
    "import_upload.html",
    "import_show.html",
    "import_progress_partial.html",
    "person_erase.html",
);

impl Module for CoreModule {
    fn id(&self) -> &'static str {
        "core"
    }
    fn name_key(&self) -> &'static str {
        "module.core.name"
    }
    fn description_key(&self) -> &'static str {
        "module.core.description"
    }
    fn always_on(&self) -> bool {
        true
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    fn default_access(&self, role: BuiltinRole) -> Access {
        match role {
            BuiltinRole::Owner | BuiltinRole::Admin => Access::Admin,
            BuiltinRole::Manager | BuiltinRole::Staff => Access::Write,
            BuiltinRole::Member => Access::Read,
            BuiltinRole::Client => Access::None,
        }
    }
    fn menu(&self) -> Vec<MenuEntry> {
        vec![
            MenuEntry { label_key: "nav.dashboard", path: "", min_access: Access::None, order: 0 },
            MenuEntry { label_key: "nav.people", path: "people", min_access: Access::Read, order: 10 },
            MenuEntry { label_key: "nav.audit", path: "audit", min_access: Access::Admin, order: 900 },
            MenuEntry { label_key: "nav.settings", path: "settings", min_access: Access::Admin, order: 1000 },
        ]
    }
    fn router(&self) -> Router<AppState> {
        api::router()
            .merge(ui::router())
            .merge(crate::web::social::router())
            .merge(crate::web::fields::router())
            .merge(crate::web::dashboard::router())
            .merge(crate::web::files::router())
            .merge(crate::web::schedules::router())
            .merge(crate::web::imports::router())
            .merge(crate::web::privacy::router())
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        None // the core's document is the base of `api::openapi_document`
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("en", include_str!("../i18n/en.toml")),
            ("fr", include_str!("../i18n/fr.toml")),
            ("en", include_str!("../i18n/privacy.en.toml")),
            ("fr", include_str!("../i18n/privacy.fr.toml")),
        ]
    }
    fn personal_data(&self) -> Option<std::sync::Arc<dyn crate::privacy::PersonalData>> {
        Some(std::sync::Arc::new(crate::privacy::CorePersonalData))
    }
    fn jobs(&self) -> Vec<crate::jobs::JobSpec> {
        vec![
            crate::outbox::MAIL_DELIVER,
            crate::notify::DIGEST,
            crate::alerts::CHECK,
            crate::backup::RUN,
            crate::files::CLEANUP,
            crate::files::RENDITIONS,
            crate::import::IMPORT_RUN,
        ]
    }
    fn schedules(&self) -> Vec<crate::schedules::ScheduleSpec> {
        use crate::schedules::ScheduleSpec;
        vec![
            // In the instance's time zone; administrators may change or switch them off.
            ScheduleSpec::instance("core.backup", crate::backup::RUN.name, "30 3 * * *"),
            ScheduleSpec::instance("core.health", crate::alerts::CHECK.name, "*/5 * * * *"),
            ScheduleSpec::instance("core.digest", crate::notify::DIGEST.name, "0 7 * * *"),
        ]
    }
    fn record_kinds(&self) -> Vec<RecordKind> {
        vec![RecordKind { entity_type: "person", module: "core", find: find_person }]
    }
    fn notification_kinds(&self) -> Vec<NotificationKind> {
        vec![
            NotificationKind {
                id: "timeline.mention",
                label_key: "notify.kind.mention",
                verb_key: "notify.verb.mention",
                in_app: true,
                mail: MailMode::Immediate,
            },
            NotificationKind {
                id: "timeline.comment",
                label_key: "notify.kind.comment",
                verb_key: "notify.verb.comment",
                in_app: true,
                mail: MailMode::Digest,
            },
            NotificationKind {
                id: "core.alert",
                label_key: "notify.kind.alert",
                verb_key: "notify.verb.alert",
                in_app: true,
                mail: MailMode::Immediate,
            },
            NotificationKind {
                id: "timeline.status",
                label_key: "notify.kind.status",
                verb_key: "notify.verb.status",
                in_app: true,
                mail: MailMode::Off,
            },
        ]
    }
    fn importers(&self) -> Vec<std::sync::Arc<dyn crate::import::Importer>> {
        vec![std::sync::Arc::new(crate::import::PeopleImporter)]
    }
    fn widgets(&self) -> Vec<Widget> {
        vec![
            Widget {
                id: "core.people",
                title_key: "widget.people",
                template: "widget_people.html",
                min_access: Access::Read,
                order: 0,
                load: people_widget,
            },
            Widget {
                id: "core.activity",
                title_key: "widget.activity",
                template: "widget_activity.html",
                min_access: Access::Admin,
                order: 100,
                load: activity_widget,
            },
        ]
    }
}

fn people_widget(st: AppState, ctx: OrgCtx) -> crate::module::WidgetFuture {
    Box::pin(async move {
        let cap = ctx.can_read("core")?;
        let n = crate::people::count(&st.db, &cap).await?;
        Ok(serde_json::json!({"count": n, "org": ctx.org.slug}))
    })
}

fn activity_widget(st: AppState, ctx: OrgCtx) -> crate::module::WidgetFuture {
    Box::pin(async move {
        ctx.can_admin("core")?;
        let page = api::audit_page(
            &st,
            Some(ctx.org.id),
            api::AuditParams {
                actor: None,
                action: None,
                entity_type: None,
                entity_id: None,
                limit: Some(8),
                cursor: None,
            },
        )
        .await?;
        Ok(serde_json::json!({"entries": page.items, "org": ctx.org.slug}))
    })
}

fn find_person(st: AppState, ctx: OrgCtx, id: String) -> crate::module::RecordFuture {
    Box::pin(async move {
        let cap = ctx.can_read("core")?;
        match crate::people::get(&st.db, &cap, &id).await {
            Ok(p) => Ok(Some(RecordRef {
                entity_type: "person".into(),
                title: format!("{} {}", p.given_name, p.family_name).trim().to_string(),
                path: format!("/o/{}/people/{}", ctx.org.slug, p.id),
                entity_id: p.id.to_string(),
            })),
            Err(crate::error::CoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    })
}
