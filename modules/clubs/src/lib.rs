//! Clubs and activities: a page per club (presentation, activities,
//! gallery, progress, syntheses), attendance by one-time code, participants
//! with their history, executives and their attendance, the action
//! programme with its execution rate, the cash book (sealed at rest), a
//! global dashboard for the federation, and PDF activity reports.
//!
//! It serves student clubs (the AESI requirements) and any organisation with
//! sections, workshops or events. It owns the `clubs*` tables only; people
//! signing attendance are participants of this module, not core people.

pub mod access;
pub mod demo;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod privacy;
pub mod service;
pub mod synthesis;

use shrooms_core::db::Migration;
use shrooms_core::module::{MenuEntry, Module, RecordFuture, RecordKind, RecordRef, Widget};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::{AppState, OrgCtx};

pub const MODULE: &str = "clubs";

pub struct ClubsModule;

static MIGRATIONS: &[Migration] =
    &[Migration { id: "m20261121_200_clubs_init", sql: include_str!("../migrations/m20261121_200_clubs_init.sql") }];

fn find_activity(st: AppState, ctx: OrgCtx, id: String) -> RecordFuture {
    Box::pin(async move {
        ctx.can_read(MODULE)?;
        let a = service::activity_by_id(&st.db, ctx.org.id, &ctx.org.timezone, &id).await?;
        let Some(a) = a else { return Ok(None) };
        let club = service::club(&st.db, ctx.org.id, &a.club_id).await?;
        Ok(Some(RecordRef {
            entity_type: service::ACTIVITY.into(),
            entity_id: a.id.clone(),
            title: a.theme.clone(),
            path: format!("/o/{}/clubs/{}/activities/{}", ctx.org.slug, club.slug, a.id),
        }))
    })
}

fn progress_widget(st: AppState, ctx: OrgCtx) -> shrooms_core::module::WidgetFuture {
    Box::pin(async move {
        ctx.can_read(MODULE)?;
        let d = synthesis::dashboard(&st, ctx.org.id, &ctx.org.timezone).await?;
        let clubs: Vec<serde_json::Value> = d
            .clubs
            .iter()
            .map(|c| serde_json::json!({"name": c.club_name, "slug": c.club_slug, "rate": c.execution_rate, "upcoming": c.upcoming, "participants": c.participants}))
            .collect();
        Ok(serde_json::json!({"clubs": clubs, "rate": d.execution_rate, "attendances": d.attendances}))
    })
}

impl Module for ClubsModule {
    fn id(&self) -> &'static str {
        MODULE
    }
    fn name_key(&self) -> &'static str {
        "module.clubs.name"
    }
    fn description_key(&self) -> &'static str {
        "module.clubs.description"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    /// Owners and administrators are the federation's executives; managers
    /// and staff may be club executives (when listed in a club); members see
    /// what the public sees, signed in.
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
            MenuEntry { label_key: "clubs.menu", path: "clubs", min_access: Access::Read, order: 30 },
            MenuEntry { label_key: "clubs.gallery", path: "clubs/gallery", min_access: Access::Read, order: 31 },
        ]
    }
    fn router(&self) -> axum::Router<AppState> {
        http::api::router().merge(http::ui::router())
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(http::api::openapi())
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("clubs_index.html", include_str!("../templates/clubs_index.html")),
            ("clubs_club.html", include_str!("../templates/clubs_club.html")),
            ("clubs_activity.html", include_str!("../templates/clubs_activity.html")),
            ("clubs_attend.html", include_str!("../templates/clubs_attend.html")),
            ("clubs_participants.html", include_str!("../templates/clubs_participants.html")),
            ("clubs_gallery.html", include_str!("../templates/clubs_gallery.html")),
            ("clubs_money.html", include_str!("../templates/clubs_money.html")),
            ("clubs_team.html", include_str!("../templates/clubs_team.html")),
            ("clubs_macros.html", include_str!("../templates/clubs_macros.html")),
            ("clubs_widget.html", include_str!("../templates/clubs_widget.html")),
            ("email_clubs_report.txt", include_str!("../templates/email_clubs_report.txt")),
            ("email_clubs_report.html", include_str!("../templates/email_clubs_report.html")),
        ]
    }
    fn personal_data(&self) -> Option<std::sync::Arc<dyn shrooms_core::privacy::PersonalData>> {
        Some(std::sync::Arc::new(privacy::ClubsPersonalData))
    }
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[("en", include_str!("../i18n/en.toml")), ("fr", include_str!("../i18n/fr.toml"))]
    }
    fn assets(&self) -> &'static [(&'static str, &'static [u8])] {
        &[
            ("clubs/clubs.js", include_bytes!("../static/clubs.js")),
            ("clubs/clubs.css", include_bytes!("../static/clubs.css")),
        ]
    }
    fn widgets(&self) -> Vec<Widget> {
        vec![Widget {
            id: "clubs.progress",
            title_key: "clubs.widget.title",
            template: "clubs_widget.html",
            min_access: Access::Read,
            order: 30,
            load: progress_widget,
        }]
    }
    fn demo(&self) -> Option<fn(AppState, shrooms_core::module::DemoCtx) -> shrooms_core::module::DemoFuture> {
        Some(demo::run)
    }
    fn jobs(&self) -> Vec<shrooms_core::jobs::JobSpec> {
        vec![jobs::REPORT]
    }
    fn record_kinds(&self) -> Vec<RecordKind> {
        vec![RecordKind { entity_type: service::ACTIVITY, module: MODULE, find: find_activity }]
    }
}
