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
    fn widgets(&self) -> Vec<Widget> {
        Vec::new()
    }
    /// Background jobs this module runs (see [`crate::jobs`]).
    fn jobs(&self) -> Vec<crate::jobs::JobSpec> {
        Vec::new()
    }
    /// What this module's records can be imported from (CSV, ODS); see [`crate::import`].
    fn importers(&self) -> Vec<Arc<dyn crate::import::Importer>> {
        Vec::new()
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
        let mut job_names: Vec<&str> = Vec::new();
        for m in &list {
            for j in m.jobs() {
                if job_names.contains(&j.name) {
                    anyhow::bail!("job `{}` is declared twice", j.name);
                }
                job_names.push(j.name);
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

    /// Default permissions of a built-in role over every module.
    pub fn default_permissions(&self, role: BuiltinRole) -> crate::permissions::Permissions {
        crate::permissions::Permissions(
            self.list.iter().map(|m| (m.id().to_string(), m.default_access(role))).collect(),
        )
    }
}
