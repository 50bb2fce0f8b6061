//! The module interface. A module declares what it contributes to the
//! platform, and the binary registers modules in one explicit list. The core
//! itself is written as a module (`core`), the same way every domain module is.

use crate::db::Migration;
use crate::error::CoreResult;
use crate::permissions::{Access, BuiltinRole};
use crate::web::{AppState, OrgCtx};
use axum::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An entry of an organisation's navigation; `path` is relative to `/o/{org}/`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MenuEntry {
    pub label_key: &'static str,
    pub path: &'static str,
    pub min_access: Access,
    pub order: i32,
}

pub type WidgetFuture = Pin<Box<dyn Future<Output = CoreResult<serde_json::Value>> + Send>>;

/// A dashboard widget: data loaded by `load`, rendered by `template` (a
/// template name of the module) with that data as `data`.
#[derive(Clone)]
pub struct Widget {
    pub id: &'static str,
    pub title_key: &'static str,
    pub template: &'static str,
    pub min_access: Access,
    pub order: i32,
    pub load: fn(AppState, OrgCtx) -> WidgetFuture,
}

pub type DemoFuture = Pin<Box<dyn Future<Output = CoreResult<String>> + Send>>;

/// What a module's demo data generator gets: the demo organisations the
/// core created, the scale and seed given to `shrooms demo`, and the demo
/// administrator. It returns one line for the report.
#[derive(Clone, Debug)]
pub struct DemoCtx {
    pub orgs: Vec<crate::ids::OrgId>,
    pub scale: usize,
    pub seed: u64,
    pub admin: crate::ids::AccountId,
}

pub type RecordFuture = Pin<Box<dyn Future<Output = CoreResult<Option<RecordRef>>> + Send>>;

/// A kind of record that can carry a timeline (comments, status changes,
/// events) and be followed: a person, an activity, a ticket, an invoice.
#[derive(Clone)]
pub struct RecordKind {
    /// The `entity_type` of the record, as in the audit log: `person`, `activity`.
    pub entity_type: &'static str,
    /// The module whose permissions apply: reading the record's timeline
    /// needs read access to it, and so does commenting.
    pub module: &'static str,
    /// Finds the record for the caller: `None` when it does not exist in the
    /// organisation or the caller may not see it (record-level visibility).
    pub find: fn(AppState, OrgCtx, String) -> RecordFuture,
}

/// A record as notifications and timelines name it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordRef {
    pub entity_type: String,
    pub entity_id: String,
    /// What people call it: "Camille Martin", "Workshop of 12 March".
    pub title: String,
    /// Its page, from the site root: `/o/aesi/people/…`.
    pub path: String,
}

/// How a kind of notification reaches people who did not choose otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailMode {
    /// No mail.
    Off,
    /// One mail per notification, sent at once.
    Immediate,
    /// Gathered into one mail a day.
    Digest,
}

impl MailMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MailMode::Off => "off",
            MailMode::Immediate => "immediate",
            MailMode::Digest => "digest",
        }
    }
    pub fn parse(s: &str) -> Option<MailMode> {
        Some(match s {
            "off" => MailMode::Off,
            "immediate" => MailMode::Immediate,
            "digest" => MailMode::Digest,
            _ => return None,
        })
    }
}

/// A kind of notification a module sends, with its defaults; each person
/// may change them in their preferences.
#[derive(Clone, Debug)]
pub struct NotificationKind {
    /// Stable id, prefixed by the module: `timeline.mention`, `members.renewal_due`.
    pub id: &'static str,
    /// Translation key of the kind's name in the preferences page.
    pub label_key: &'static str,
    /// Translation key of the verb in "<actor> <verb> <record>": "mentioned you on".
    pub verb_key: &'static str,
    pub in_app: bool,
    pub mail: MailMode,
}

pub trait Module: Send + Sync + 'static {
    /// Stable identifier, also the permission key: `core`, `members`, `clubs`, ...
    fn id(&self) -> &'static str;
    /// Translation key of the display name.
    fn name_key(&self) -> &'static str;
    /// Translation key of a one-line description (shown in setup and settings).
    fn description_key(&self) -> &'static str;
    /// Modules that must be enabled for this one to be enabled.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// The core cannot be disabled.
    fn always_on(&self) -> bool {
        false
    }
    /// Whether a fresh instance enables it when setup does not say otherwise.
    fn enabled_by_default(&self) -> bool {
        true
    }
    /// Schema changes, applied by `shrooms migrate` and at startup.
    fn migrations(&self) -> &'static [Migration] {
        &[]
    }
    /// The access each built-in role gets on this module in a new organisation.
    fn default_access(&self, role: BuiltinRole) -> Access;
    fn menu(&self) -> Vec<MenuEntry> {
        Vec::new()
    }
    /// HTML and JSON routes with their full paths. Organisation routes contain
    /// `{org}`; while the module is disabled they answer 404.
    fn router(&self) -> Router<AppState> {
        Router::new()
    }
    /// The OpenAPI description of the module's JSON routes.
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        None
    }
    /// Embedded templates: (name, source). A theme folder may override each.
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Translation catalogues: (language, TOML source of `key = "text"`).
    fn translations(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Realistic, reproducible demo data for `shrooms demo` (same seed, same data).
    fn demo(&self) -> Option<fn(AppState, DemoCtx) -> DemoFuture> {
        None
    }
    /// Embedded static files (scripts, styles), served at `/static/<path>`;
    /// prefix the path with the module id (`clubs/gallery.js`). A theme's
    /// `static/` folder may override each, as it does the core's.
    fn assets(&self) -> &'static [(&'static str, &'static [u8])] {
        &[]
    }
    fn widgets(&self) -> Vec<Widget> {
        Vec::new()
    }
    /// Background jobs this module runs (see [`crate::jobs`]).
    fn jobs(&self) -> Vec<crate::jobs::JobSpec> {
        Vec::new()
    }
    /// Kinds of record that carry a timeline (see [`crate::timeline`]).
    fn record_kinds(&self) -> Vec<RecordKind> {
        Vec::new()
    }
    /// Kinds of notification this module sends (see [`crate::notify`]).
    fn notification_kinds(&self) -> Vec<NotificationKind> {
        Vec::new()
    }
    /// Recurring schedules of jobs, for the instance or for every
    /// organisation (see [`crate::schedules`]).
    fn schedules(&self) -> Vec<crate::schedules::ScheduleSpec> {
        Vec::new()
    }
    /// What this module's records can be imported from (CSV, ODS); see [`crate::import`].
    fn importers(&self) -> Vec<Arc<dyn crate::import::Importer>> {
        Vec::new()
    }
    /// What this module holds about people, for their data export and
    /// erasure (see [`crate::privacy`]); `None` when it holds nothing.
    fn personal_data(&self) -> Option<Arc<dyn crate::privacy::PersonalData>> {
        None
    }
}

/// The registered modules, validated: unique ids, known dependencies, no cycles.
#[derive(Clone)]
pub struct Modules {
    list: Vec<Arc<dyn Module>>,
}

impl Modules {
    pub fn new(list: Vec<Arc<dyn Module>>) -> anyhow::Result<Modules> {
        let ids: Vec<&str> = list.iter().map(|m| m.id()).collect();
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                anyhow::bail!("module `{id}` is registered twice");
            }
        }
        for m in &list {
            for d in m.depends_on() {
                if !ids.contains(d) {
                    anyhow::bail!("module `{}` depends on `{d}`, which is not registered", m.id());
                }
            }
        }
        let mut kinds: Vec<&str> = Vec::new();
        for m in &list {
            for k in m.record_kinds() {
                if kinds.contains(&k.entity_type) {
                    anyhow::bail!("record kind `{}` is declared twice", k.entity_type);
                }
                kinds.push(k.entity_type);
            }
            for n in m.notification_kinds() {
                if kinds.contains(&n.id) {
                    anyhow::bail!("notification kind `{}` is declared twice", n.id);
                }
                kinds.push(n.id);
            }
        }
        let mut job_names: Vec<&str> = Vec::new();
        for m in &list {
            for j in m.jobs() {
                if job_names.contains(&j.name) {
                    anyhow::bail!("job `{}` is declared twice", j.name);
                }
                job_names.push(j.name);
            }
        }
        let mut schedule_names: Vec<&str> = Vec::new();
        for m in &list {
            for s in m.schedules() {
                if schedule_names.contains(&s.name) {
                    anyhow::bail!("schedule `{}` is declared twice", s.name);
                }
                schedule_names.push(s.name);
                if !job_names.contains(&s.job) {
                    anyhow::bail!("schedule `{}` runs job `{}`, which no module declares", s.name, s.job);
                }
                if let Err(e) = crate::cron::Cron::parse(s.cron) {
                    anyhow::bail!("schedule `{}`: {e}", s.name);
                }
                if let Some(z) = s.time_zone {
                    if !crate::cron::valid_zone(z) {
                        anyhow::bail!("schedule `{}`: unknown time zone `{z}`", s.name);
                    }
                }
            }
        }
        let mut import_kinds: Vec<&str> = Vec::new();
        for m in &list {
            for i in m.importers() {
                if import_kinds.contains(&i.kind()) {
                    anyhow::bail!("import kind `{}` is declared twice", i.kind());
                }
                import_kinds.push(i.kind());
            }
        }
        let mods = Modules { list };
        for m in &mods.list {
            let mut seen = vec![m.id()];
            mods.check_cycle(m.id(), &mut seen)?;
        }
        Ok(mods)
    }

    fn check_cycle(&self, id: &str, path: &mut Vec<&'static str>) -> anyhow::Result<()> {
        let Some(m) = self.get(id) else { return Ok(()) };
        for d in m.depends_on() {
            if path.contains(d) {
                anyhow::bail!("modules depend on each other in a cycle: {} -> {d}", path.join(" -> "));
            }
            path.push(d);
            self.check_cycle(d, path)?;
            path.pop();
        }
        Ok(())
    }

    pub fn all(&self) -> &[Arc<dyn Module>] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Module>> {
        self.list.iter().find(|m| m.id() == id)
    }

    /// Every job of every module.
    pub fn jobs(&self) -> Vec<crate::jobs::JobSpec> {
        self.list.iter().flat_map(|m| m.jobs()).collect()
    }

    /// Every schedule of every module, with the module that declares it.
    pub fn schedules(&self) -> Vec<(&'static str, crate::schedules::ScheduleSpec)> {
        self.list.iter().flat_map(|m| m.schedules().into_iter().map(move |s| (m.id(), s))).collect()
    }

    /// The module that declares a job.
    pub fn job_module(&self, job: &str) -> Option<&'static str> {
        self.list.iter().find(|m| m.jobs().iter().any(|j| j.name == job)).map(|m| m.id())
    }

    /// The importer of a kind of record (`people`, ...) and the module that declares it.
    pub fn importer(&self, kind: &str) -> Option<(&'static str, Arc<dyn crate::import::Importer>)> {
        self.list.iter().find_map(|m| m.importers().into_iter().find(|i| i.kind() == kind).map(|i| (m.id(), i)))
    }

    pub fn migrations(&self) -> Vec<(&'static str, Migration)> {
        self.list.iter().flat_map(|m| m.migrations().iter().map(move |mig| (m.id(), *mig))).collect()
    }

    /// The record kind of an entity type, with the module that declares it.
    pub fn record_kind(&self, entity_type: &str) -> Option<RecordKind> {
        self.list.iter().flat_map(|m| m.record_kinds()).find(|k| k.entity_type == entity_type)
    }

    pub fn notification_kinds(&self) -> Vec<NotificationKind> {
        self.list.iter().flat_map(|m| m.notification_kinds()).collect()
    }

    pub fn notification_kind(&self, id: &str) -> Option<NotificationKind> {
        self.notification_kinds().into_iter().find(|k| k.id == id)
    }

    /// What an account may do in an organisation: every permission for an
    /// instance administrator or an owner; otherwise its role's, where a
    /// module registered after the role was saved gives built-in roles the
    /// module's default and custom roles nothing until edited. `None` when
    /// the account is not a member.
    pub fn effective_permissions(
        &self,
        role: Option<&crate::orgs::Role>,
        instance_admin: bool,
    ) -> Option<crate::permissions::Permissions> {
        match (role, instance_admin) {
            (_, true) => Some(self.default_permissions(BuiltinRole::Owner)),
            (Some(r), false) if r.key == "owner" => Some(self.default_permissions(BuiltinRole::Owner)),
            (Some(r), false) => {
                let mut p = r.permissions.clone();
                if let Some(builtin) = BuiltinRole::from_key(&r.key).filter(|_| r.builtin) {
                    for m in self.all() {
                        p.0.entry(m.id().to_string()).or_insert_with(|| m.default_access(builtin));
                    }
                }
                Some(p)
            }
            (None, false) => None,
        }
    }

    /// Default permissions of a built-in role over every module.
    pub fn default_permissions(&self, role: BuiltinRole) -> crate::permissions::Permissions {
        crate::permissions::Permissions(
            self.list.iter().map(|m| (m.id().to_string(), m.default_access(role))).collect(),
        )
    }
}
