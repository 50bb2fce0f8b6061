//! Templates and translations. Templates are minijinja files embedded in the
//! binary by each module; a theme folder (`theme = "..."` in the
//! configuration) overrides any of them, and any static file, by name,
//! without recompiling. Translations are flat `key = "text"` TOML catalogues
//! per language; templates call `t("key")`.

use crate::module::Modules;
use minijinja::value::Value;
use minijinja::{Environment, State};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const LANGS: [&str; 2] = ["fr", "en"];

type Catalog = HashMap<String, HashMap<String, String>>;

#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    catalog: Arc<Catalog>,
}

macro_rules! embed_static {
    ($($name:literal),* $(,)?) => {
        /// Static files compiled into the binary.
        pub fn embedded_static(path: &str) -> Option<&'static [u8]> {
            match path {
                $($name => Some(include_bytes!(concat!("../../static/", $name))),)*
                _ => None,
            }
        }
    };
}

embed_static!(
    "app.css",
    "app.js",
    "api-docs.js",
    "api-docs.css",
    "logo.svg",
    "vendor/htmx/htmx.min.js",
    "vendor/htmx/LICENSE"
);

impl Templates {
    pub fn new(modules: &Modules, theme: Option<&Path>) -> anyhow::Result<Templates> {
        let mut sources: HashMap<String, String> = HashMap::new();
        let mut catalog: Catalog = HashMap::new();
        for m in modules.all() {
            for (name, src) in m.templates() {
                sources.insert(name.to_string(), src.to_string());
            }
            for (lang, src) in m.translations() {
                let table: toml::Table = src.parse().map_err(|e| {
                    anyhow::anyhow!("translations of module {} ({lang}): {e}", m.id())
                })?;
                let entry = catalog.entry(lang.to_string()).or_default();
                for (k, v) in table {
                    if let toml::Value::String(s) = v {
                        entry.insert(k, s);
                    }
                }
            }
        }
        if let Some(theme) = theme {
            let dir = theme.join("templates");
            if dir.is_dir() {
                for entry in std::fs::read_dir(&dir)? {
                    let p = entry?.path();
                    if p.is_file() {
                        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                            sources.insert(name.to_string(), std::fs::read_to_string(&p)?);
                        }
                    }
                }
            }
        }
        let catalog = Arc::new(catalog);
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        let cat = catalog.clone();
        env.add_function("t", move |state: &State, key: &str| -> String {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "en".into());
            translate(&cat, &lang, key)
        });
        let cat = catalog.clone();
        env.add_filter("t", move |state: &State, key: &str| -> String {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "en".into());
            translate(&cat, &lang, key)
        });
        for (name, src) in sources {
            env.add_template_owned(name.clone(), src)
                .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
        }
        Ok(Templates {
            env: Arc::new(env),
            catalog,
        })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    pub fn names(&self) -> Vec<String> {
        self.env.templates().map(|(n, _)| n.to_string()).collect()
    }

    pub fn tr(&self, lang: &str, key: &str) -> String {
        translate(&self.catalog, lang, key)
    }

    pub fn catalog_keys(&self, lang: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .catalog
            .get(lang)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn translate(cat: &Catalog, lang: &str, key: &str) -> String {
    cat.get(lang)
        .and_then(|m| m.get(key))
        .or_else(|| cat.get("en").and_then(|m| m.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// Picks the language: explicit choice, else the browser's, else the instance default.
pub fn negotiate_lang(
    choice: Option<&str>,
    accept_language: Option<&str>,
    default: &str,
) -> String {
    if let Some(c) = choice.filter(|c| LANGS.contains(c)) {
        return c.to_string();
    }
    if let Some(al) = accept_language {
        for part in al.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            if LANGS.contains(&primary) {
                return primary.to_string();
            }
        }
    }
    if LANGS.contains(&default) {
        default.to_string()
    } else {
        "fr".to_string()
    }
}

/// What every page knows: language, CSRF token, signed-in account,
/// current organisation and its menu.
#[derive(Serialize, Default, Clone)]
pub struct Page {
    pub lang: String,
    pub csrf: String,
    pub instance_name: String,
    pub path: String,
    pub user: Option<serde_json::Value>,
    pub org: Option<serde_json::Value>,
    pub orgs: Vec<serde_json::Value>,
    pub menu: Vec<serde_json::Value>,
    pub flash: Option<String>,
}
