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
    /// Every template's source by name (the theme's in place of the embedded ones).
    sources: Arc<HashMap<String, String>>,
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
    "vendor/htmx/LICENSE",
    "vendor/chartjs/chart.umd.min.js",
    "vendor/chartjs/LICENSE.md"
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
                let table: toml::Table =
                    src.parse().map_err(|e| anyhow::anyhow!("translations of module {} ({lang}): {e}", m.id()))?;
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
            let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "en".into());
            translate(&cat, &lang, key)
        });
        let cat = catalog.clone();
        env.add_filter("t", move |state: &State, key: &str| -> String {
            let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "en".into());
            translate(&cat, &lang, key)
        });
        // Compiled on first use, not all at start: a server that renders a
        // dozen pages does not hold the compiled form of two hundred (a
        // third of an idle server's memory went there, docs/PERFORMANCE.md).
        // A theme's own files are still checked now, so that an integrator's
        // mistake stops the start with its name instead of failing a page.
        if let Some(theme) = theme {
            let mut check = Environment::new();
            for (name, src) in sources.iter().filter(|(n, _)| theme.join("templates").join(n).is_file()) {
                check
                    .add_template_owned(name.clone(), src.clone())
                    .map_err(|e| anyhow::anyhow!("template {name} of the theme: {e}"))?;
            }
        }
        let sources = Arc::new(sources);
        let names = sources.clone();
        env.set_loader(move |name| Ok(names.get(name).cloned()));
        Ok(Templates { env: Arc::new(env), catalog, sources })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// A mail of one kind in one language: subject from the catalogue
    /// (`mail.<kind>.subject`), plain text from `email_<kind>.txt`, HTML from
    /// `email_<kind>.html` when it exists. Overridable by a theme like pages.
    pub fn render_mail(
        &self,
        kind: &str,
        lang: &str,
        instance_name: &str,
        ctx: serde_json::Value,
    ) -> Result<crate::outbox::Mail, minijinja::Error> {
        let subject = format!("{} — {instance_name}", self.tr(lang, &format!("mail.{kind}.subject")));
        let mut full = serde_json::json!({"lang": lang, "instance_name": instance_name, "subject": subject});
        if let (Some(f), serde_json::Value::Object(extra)) = (full.as_object_mut(), ctx) {
            f.extend(extra);
        }
        let value = Value::from_serialize(&full);
        let text = self.render(&format!("email_{kind}.txt"), value.clone())?;
        let html = match self.env.get_template(&format!("email_{kind}.html")) {
            Ok(t) => Some(t.render(value)?),
            Err(_) => None,
        };
        Ok(crate::outbox::Mail { subject, text, html })
    }

    /// Compiles every template (they are otherwise compiled on first use):
    /// the errors, by template name. For tests and `shrooms check`.
    pub fn compile_all(&self) -> Vec<String> {
        let mut errors: Vec<String> =
            self.sources.keys().filter_map(|n| self.env.get_template(n).err().map(|e| format!("{n}: {e}"))).collect();
        errors.sort();
        errors
    }

    pub fn names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    pub fn tr(&self, lang: &str, key: &str) -> String {
        translate(&self.catalog, lang, key)
    }

    pub fn catalog_keys(&self, lang: &str) -> Vec<String> {
        let mut v: Vec<String> = self.catalog.get(lang).map(|m| m.keys().cloned().collect()).unwrap_or_default();
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
pub fn negotiate_lang(choice: Option<&str>, accept_language: Option<&str>, default: &str) -> String {
    if let Some(c) = choice.filter(|c| LANGS.contains(c)) {
        return c.to_string();
    }
    if let Some(al) = accept_language {
        for part in al.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
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
    /// Unread notifications of the signed-in person (the bell).
    pub unread: i64,
}

#[cfg(test)]
mod tests {
    //! Every template renders with a rich sample context (so a broken
    //! template fails CI), respects the Content-Security-Policy, and every
    //! translation key exists in every language.
    use super::*;
    use crate::core_module::{CoreModule, TEMPLATES};
    use crate::module::Module;
    use serde_json::{json, Value as Json};
    use std::collections::BTreeSet;

    fn templates() -> Templates {
        let modules = Modules::new(vec![Arc::new(CoreModule)]).expect("modules");
        Templates::new(&modules, None).expect("templates")
    }

    fn merge(mut a: Json, b: Json) -> Json {
        if let (Some(a), Json::Object(b)) = (a.as_object_mut(), b) {
            a.extend(b);
        }
        a
    }

    fn audit_entry(seq: i64, action: &str, before: Option<Json>, after: Option<Json>) -> Json {
        json!({"seq": seq, "at": "2026-11-21T09:30:12.345Z", "actor_id": "0193a1b2-0000-7000-8000-000000000001",
            "actor_label": "ada@example.org", "org_id": "0193a1b2-0000-7000-8000-0000000000aa", "action": action,
            "entity_type": "person", "entity_id": "0193a1b2-0000-7000-8000-0000000000p1",
            "before": before, "after": after, "address": "127.0.0.1", "hash": "ab12"})
    }

    fn person(id: &str, given: &str, family: &str, email: Option<&str>, phone: Option<&str>) -> Json {
        json!({"id": id, "org_id": "org1", "given_name": given, "family_name": family, "email": email,
            "phone": phone, "notes": "Trésorière.\nArrivée en 2024 <b>&</b>", "account_id": null,
            "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-21T08:00:00Z",
            "custom": {"taille": "M", "langues": ["fr", "en"], "benevole": true, "cotisation": 12.5, "photo": "file1"}})
    }

    fn module_states(all_enabled: bool) -> Json {
        json!([
            {"id": "core", "name": "Cœur", "enabled": true, "always_on": true, "depends_on": [],
             "description": "Personnes, rôles", "checked": true},
            {"id": "members", "name": "Adhérents", "enabled": all_enabled, "always_on": false, "depends_on": [],
             "description": "Adhésions et cotisations", "checked": all_enabled},
            {"id": "clubs", "name": "Clubs", "enabled": true, "always_on": false, "depends_on": ["members"],
             "description": "Activités des clubs", "checked": true},
        ])
    }

    /// Page context shared by every page, signed in (admin of one of two organisations) or not.
    fn page(lang: &str, signed_in: bool) -> Json {
        if !signed_in {
            return json!({"lang": lang, "csrf": "csrf-token-0123456789abcdef0123456789", "instance_name": "Shrooms AESI",
                "path": "/login", "user": null, "org": null, "orgs": [], "menu": [], "flash": null});
        }
        json!({
            "lang": lang, "csrf": "csrf-token-0123456789abcdef0123456789", "instance_name": "Shrooms AESI",
            "path": "/o/aesi/people",
            "user": {"id": "acc1", "email": "ada@example.org", "display_name": "Ada Lovelace",
                     "is_instance_admin": true, "totp_enabled": false, "email_verified": false},
            "org": {"id": "org1", "slug": "aesi", "name": "AESI", "logo_url": "https://example.org/logo.png",
                    "color_primary": "#FF6B35", "color_accent": "#3182CE", "is_admin": true},
            "orgs": [{"slug": "aesi", "name": "AESI"}, {"slug": "club-info", "name": "Club d'informatique"}],
            "menu": [
                {"label": "Tableau de bord", "href": "/o/aesi/", "active": false},
                {"label": "Personnes", "href": "/o/aesi/people", "active": true},
            ],
            "flash": "Saved.",
            "unread": 12,
        })
    }

    /// Everything any page may receive, with errors, optional values set and lists filled.
    fn rich(lang: &str) -> Json {
        let roles = json!([
            {"id": "r1", "key": "owner", "name": "owner", "builtin": true, "permissions": {"core": "admin"}, "require_totp": true},
            {"id": "r2", "key": "member", "name": "member", "builtin": true, "permissions": {"core": "read"}, "require_totp": false},
            {"id": "r3", "key": "tresorerie", "name": "Trésorerie", "builtin": false, "permissions": {"core": "write", "members": "admin"}, "require_totp": false},
        ]);
        let mut ctx = page(lang, true);
        ctx = merge(
            ctx,
            json!({
                "status": 422, "detail": "Some fields are invalid.",
                "error": "Some fields are invalid.",
                "errors": {"instance_name": "Give the instance a name of 1 to 120 characters.", "email": "Enter a valid email address, like name@example.org.",
                           "password": "Use at least 10 characters.", "first_org": "Name your first organisation.", "modules": "Module `clubs` needs module `members`.",
                           "code": "Wrong second-factor code.", "name": "Give a name of 1 to 120 characters.", "slug": "This URL name is already taken.",
                           "family_name": "Give at least a given name or a family name.", "phone": "Use digits, spaces and + - . ( ) only.",
                           "notes": "Keep notes under 20,000 characters.", "timezone": "Use an IANA time zone like Europe/Paris.",
                           "currency": "Use a three-letter ISO 4217 code like EUR.", "logo_url": "Use an https:// address or a path on this site.",
                           "color_primary": "Use a colour like #2e7d32.", "color_accent": "Use a colour like #2e7d32.",
                           "key": "Use 1 to 40 lowercase letters, digits, - or _.", "role": "Unknown role.", "default_lang": "Choose fr or en."},
                "form": {"instance_name": "AESI", "default_lang": "fr", "admin_name": "Ada", "admin_email": "ada@example",
                         "first_org": "AESI", "email": "ada@example", "given_name": "Awa", "family_name": "Ouédraogo",
                         "phone": "+226 70 00 00 00", "notes": "Note", "name": "Club", "slug": "club"},
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "member_form": {"email": "new@example.org", "role": "member"},
                "modules": module_states(true),
                "next": "/o/aesi/people?q=a&b",
                "sent": true, "done": true, "token": "tok123",
                "attachments": {"module": "core", "entity_type": "person", "entity_id": "p1", "return_to": "/o/aesi/people/p1",
                    "can_write": true, "max_upload_mib": 20, "files": [
                    {"id": "f1", "name": "reçu <1>.jpg", "content_type": "image/jpeg", "size": 123456, "public": true,
                     "variants": ["original", "thumb", "display"], "width": 4000, "height": 3000, "created_at": "2026-11-21T08:00:00Z"},
                    {"id": "f2", "name": "statuts.pdf", "content_type": "application/pdf", "size": 2048, "public": false,
                     "variants": ["original"], "width": null, "height": null, "created_at": "2026-11-21T08:00:00Z"}]},
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "required": true, "verification_sent": true, "new_key": "shr_abcd1234_secretsecretsecret",
                "totp_secret": null, "totp_uri": null,
                "account": {"id": "acc1", "email": "ada@example.org", "display_name": "Ada Lovelace", "email_verified": false,
                            "is_instance_admin": true, "totp_enabled": true, "lang": "fr", "last_org_id": null, "disabled": false},
                "keys": [
                    {"id": "k1", "name": "Laptop", "prefix": "abcd1234", "created_at": "2026-11-01T10:00:00Z", "last_used_at": null, "revoked": false},
                    {"id": "k2", "name": "Old", "prefix": "ffff0000", "created_at": "2026-10-01T10:00:00Z", "last_used_at": "2026-10-02T10:00:00Z", "revoked": true},
                ],
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "all_orgs": [{"id": "org1", "slug": "aesi", "name": "AESI", "timezone": "Africa/Ouagadougou", "currency": "XOF",
                              "logo_url": null, "color_primary": null, "color_accent": null, "created_at": "2026-11-20T08:00:00Z"}],
                "widgets": [
                    {"id": "core.people", "title": "Personnes", "html": "<p class=\"stat\">3</p>"},
                    {"id": "core.activity", "title": "Activité", "html": "<ol><li>x</li></ol>"},
                ],
                "data": {"count": 3, "org": "aesi", "entries": [audit_entry(3, "person.update", Some(json!({"given_name": "Awa"})), Some(json!({"given_name": "Awa", "phone": "+226"}))), audit_entry(2, "something.unknown", None, None)]},
                "people": [person("p1", "Awa", "Ouédraogo", Some("awa@example.org"), Some("+226 70 00 00 00")), person("p2", "", "Sawadogo", None, None)],
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "next_cursor": "WyJTYXdhZG9nbyIsIiIsInAyIl0",
                "q": "a&b c+d#e",
                "can_write": true,
                "is_new": false,
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "person": person("p1", "Awa", "Ouédraogo", Some("awa@example.org"), None),
                "history": [audit_entry(6, "person.update", Some(json!({"given_name": "Awa", "phone": null, "n": 1, "ok": false})), Some(json!({"given_name": "Awa", "phone": "+226", "n": 2, "tags": ["a", null], "ok": true}))),
                            audit_entry(5, "person.create", None, Some(json!({"given_name": "Awa", "email": null, "tags": ["a", "b"], "n": 1}))),
                            audit_entry(4, "instance.setup", None, Some(json!(["not", "a", "map"])))],
                "entries": [audit_entry(5, "person.create", None, Some(json!({"given_name": "Awa"}))), audit_entry(4, "module.enable", Some(json!({"enabled": false})), Some(json!({"enabled": true})))],
                "filters": {"actor": "ada@example.org", "action": null, "entity_type": "person"},
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "members": [
                    {"account_id": "acc1", "email": "ada@example.org", "display_name": "Ada Lovelace", "role": "owner"},
                    {"account_id": "acc2", "email": "bob@example.org", "display_name": "", "role": "gone-role"},
                ],
                "groups": [
                    {"id": "g1", "name": "Bureau", "members": ["acc1"]},
                    {"id": "g2", "name": "Vide", "members": []},
                ],
                "instance": {"name": "Fédération AESI", "default_lang": "fr"},
                "roles": roles,
                "org_full": {"id": "org1", "slug": "aesi", "name": "AESI", "timezone": "Africa/Ouagadougou", "currency": "XOF",
                             "logo_url": "https://example.org/logo.png", "color_primary": "#FF6B35", "color_accent": null, "created_at": "2026-11-20T08:00:00Z"},
                "module_ids": ["core", "members", "clubs"],
            }),
        );
        ctx = merge(
            ctx,
            json!({
                "timeline": {
                    "record": {"entity_type": "person", "entity_id": "p1", "title": "Awa Ouédraogo", "path": "/o/aesi/people/p1"},
                    "base": "/o/aesi/timeline/person/p1", "following": true, "next_cursor": "e0",
                    "items": [
                        {"id": "e3", "kind": "comment", "author_id": "acc1", "author_label": "Ada", "body": "Hi **@bob**",
                         "body_html": "<p>Hi <strong class=\"mention\">@bob</strong></p>", "status_from": null, "status_to": null,
                         "data": {}, "created_at": "2026-11-21T09:00:00Z", "edited_at": "2026-11-21T09:05:00Z", "deleted": false, "can_delete": true},
                        {"id": "e2", "kind": "status", "author_id": "acc2", "author_label": "Bob", "body": "Done", "body_html": "<p>Done</p>",
                         "status_from": "status.planned", "status_to": "status.done", "data": {}, "created_at": "2026-11-21T08:00:00Z",
                         "edited_at": null, "deleted": false, "can_delete": false},
                        {"id": "e1", "kind": "comment", "author_id": "acc2", "author_label": "Bob", "body": "", "body_html": "",
                         "status_from": null, "status_to": null, "data": {}, "created_at": "2026-11-20T08:00:00Z", "edited_at": null,
                         "deleted": true, "can_delete": false},
                        {"id": "e0", "kind": "event", "author_id": null, "author_label": "system", "body": "File attached", "body_html": "<p>File attached</p>",
                         "status_from": null, "status_to": null, "data": {}, "created_at": "2026-11-19T08:00:00Z", "edited_at": null,
                         "deleted": false, "can_delete": false},
                        {"id": "e-1", "kind": "event", "author_id": "acc1", "author_label": "Ada", "body": "x", "body_html": "<p>x</p>",
                         "status_from": null, "status_to": null, "data": {"file": "file1", "name": "carte.jpg"}, "created_at": "2026-11-19T07:00:00Z",
                         "edited_at": null, "deleted": false, "can_delete": false},
                        {"id": "e-2", "kind": "event", "author_id": "acc1", "author_label": "Ada", "body": "x", "body_html": "<p>x</p>",
                         "status_from": null, "status_to": null, "data": {"file_deleted": "file0", "name": "old.pdf"}, "created_at": "2026-11-19T06:00:00Z",
                         "edited_at": null, "deleted": false, "can_delete": false},
                    ],
                },
                "notifications": [
                    {"id": "n2", "kind": "timeline.mention", "org_id": "org1", "title": "Ada vous a mentionné sur Awa Ouédraogo", "body": "Hi @bob <b>",
                     "link": "/o/aesi/people/p1#entry-e3", "actor_label": "Ada", "created_at": "2026-11-21T09:00:00Z", "read": false},
                    {"id": "n1", "kind": "timeline.comment", "org_id": null, "title": "Ada a commenté Awa", "body": "",
                     "link": "/o/aesi/people/p1", "actor_label": "Ada", "created_at": "2026-11-20T09:00:00Z", "read": true},
                ],
                "more": "n1",
                "fields": [
                    {"id": "f1", "entity_type": "person", "key": "taille", "label": "Taille", "kind": "choice", "options": ["S", "M", "L"], "required": true, "in_list": true, "position": 10, "archived": false},
                    {"id": "f2", "entity_type": "person", "key": "langues", "label": "Langues", "kind": "multi", "options": ["fr", "en"], "required": false, "in_list": false, "position": 20, "archived": false},
                    {"id": "f3", "entity_type": "person", "key": "benevole", "label": "Bénévole", "kind": "bool", "options": [], "required": false, "in_list": true, "position": 30, "archived": false},
                    {"id": "f4", "entity_type": "person", "key": "arrivee", "label": "Arrivée", "kind": "date", "options": [], "required": false, "in_list": false, "position": 40, "archived": true},
                    {"id": "f5", "entity_type": "person", "key": "cotisation", "label": "Cotisation", "kind": "number", "options": [], "required": false, "in_list": false, "position": 50, "archived": false},
                    {"id": "f6", "entity_type": "person", "key": "parrain", "label": "Parrain", "kind": "person", "options": [], "required": false, "in_list": false, "position": 60, "archived": false},
                    {"id": "f7", "entity_type": "person", "key": "note", "label": "Note", "kind": "text", "options": [], "required": false, "in_list": false, "position": 70, "archived": false},
                    {"id": "f8", "entity_type": "person", "key": "photo", "label": "Photo", "kind": "file", "options": [], "required": false, "in_list": false, "position": 80, "archived": false},
                ],
                "columns": [
                    {"id": "f1", "entity_type": "person", "key": "taille", "label": "Taille", "kind": "choice", "options": ["S", "M", "L"], "required": true, "in_list": true, "position": 10, "archived": false},
                    {"id": "f3", "entity_type": "person", "key": "benevole", "label": "Bénévole", "kind": "bool", "options": [], "required": false, "in_list": true, "position": 30, "archived": false},
                ],
                "kinds": [{"entity_type": "person", "module": "core"}, {"entity_type": "activity", "module": "clubs"}],
                "cf": "taille=M",
                "filterable": [
                    {"id": "f1", "entity_type": "person", "key": "taille", "label": "Taille", "kind": "choice", "options": ["S", "M", "L"], "required": true, "in_list": true, "position": 10, "archived": false},
                    {"id": "f3", "entity_type": "person", "key": "benevole", "label": "Bénévole", "kind": "bool", "options": [], "required": false, "in_list": true, "position": 30, "archived": false},
                ],
                "chosen": {"taille": "M"},
                "record_files": [{"id": "file1", "name": "carte.jpg"}],
                "health": {"version": "0.1.0", "database_backend": "sqlite", "database_ok": true, "database_latency_ms": 0.4,
                           "jobs": {"done": 10, "dead": 1}, "mail": {"sent": 3}, "uptime_secs": 100, "memory_rss_kib": 20480,
                           "data_free_kib": 1048576, "data_total_kib": 10485760, "process_cpu_secs": 1.5, "load_average": [0.5, 0.4, 0.3],
                           "cpu_cores": 2, "routes": [{"route": "GET /o/{org}/people", "requests": 3, "mean_ms": 2.5, "server_errors": 0}],
                           "alerts": [{"key": "disk", "message": "The data folder is almost full", "first_at": "2026-11-21T08:00:00Z",
                                       "last_at": "2026-11-21T09:00:00Z", "occurrences": 3, "resolved": false},
                                      {"key": "mail", "message": "Mail failing", "first_at": "2026-11-20T08:00:00Z",
                                       "last_at": "2026-11-20T09:00:00Z", "occurrences": 1, "resolved": true}]},
                "arrangement": [
                    {"id": "core.people", "title": "Personnes", "visible": true, "first": true, "last": false},
                    {"id": "core.activity", "title": "Activité", "visible": false, "first": false, "last": true},
                ],
                "preferences": [
                    {"kind": "timeline.mention", "label": "Quelqu'un me mentionne", "in_app": true, "mail": "immediate"},
                    {"kind": "timeline.comment", "label": "Nouveau commentaire", "in_app": false, "mail": "digest"},
                    {"kind": "timeline.status", "label": "Statut", "in_app": true, "mail": "off"},
                ],
            }),
        );
        ctx["errors"]["mapping.email"] = json!("The file has no such column.");
        ctx = merge(ctx, sample_import("failed", false));
        ctx
    }

    /// An import (the import pages): failed with bad rows, or running.
    fn sample_import(status: &str, busy: bool) -> Json {
        let bad = status == "failed";
        json!({
            "import": {"id": "imp1", "kind": "people", "status": status, "file_name": "adhérents 2026.csv",
                "file_format": "csv (;, windows-1252)", "columns": ["Nom", "Prénom", "Courriel", "Ville"],
                "fields": [{"key": "given_name", "label_key": "field.given_name", "required": false},
                           {"key": "email", "label_key": "field.email", "required": true}],
                "mapping": {"given_name": "Prénom"}, "skip_duplicates": bad, "rows_total": 1200, "rows_done": if bad { 0 } else { 600 },
                "rows_skipped": if bad { 2 } else { 0 }, "error_count": if bad { 2 } else { 0 },
                "errors": [], "preview": [{"line": 2, "values": ["Léa", "lea@example.org"], "ok": true}, {"line": 3, "values": ["", "pas-un-mail"], "ok": false}],
                "message": if bad { json!("Some rows are bad: nothing was imported.") } else { Json::Null },
                "created_at": "2026-11-21T08:00:00Z", "finished_at": null},
            "labels": ["Prénom", "E-mail"], "percent": if bad { 0 } else { 50 }, "to_write": 1198,
            "errors_shown": if bad { json!([{"line": 0, "column": null, "field": "email", "message": "No column is mapped to this required field."},
                                          {"line": 3, "column": "Courriel", "field": "email", "message": "Enter a valid email address, like name@example.org."}]) } else { json!([]) },
            "errors_hidden": if bad { 1 } else { 0 }, "busy": busy, "kind": "people", "max_mib": 64,
        })
    }

    /// The other branches: no errors, empty lists, pending second factor, first visit.
    fn sparse(lang: &str) -> Json {
        let extra = json!({
            "status": 404, "detail": "The resource does not exist or you cannot see it.",
            "form": {}, "modules": module_states(false), "next": "/",
            "token": "tok123",
            "account": {"id": "acc1", "email": "ada@example.org", "display_name": "", "email_verified": true,
                        "is_instance_admin": false, "totp_enabled": false, "lang": null, "last_org_id": null, "disabled": false},
            "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp_uri": "otpauth://totp/Shrooms:ada%40example.org?secret=JBSWY3DPEHPK3PXP&issuer=Shrooms",
            "keys": [], "all_orgs": [], "widgets": [],
            "data": {"count": 1, "org": "aesi", "entries": []},
            "people": [], "next_cursor": null, "q": "", "can_write": false, "is_new": true,
            "person": {"id": "p1", "given_name": "", "family_name": "", "email": null, "phone": null, "notes": "",
                       "account_id": "acc9", "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z"},
            "history": [], "entries": [], "filters": {"actor": null, "action": null, "entity_type": null},
            "members": [], "roles": [], "module_ids": ["core"],
            "org_full": {"id": "org1", "slug": "aesi", "name": "AESI", "timezone": "Europe/Paris", "currency": "EUR",
                         "logo_url": null, "color_primary": null, "color_accent": null, "created_at": "2026-11-20T08:00:00Z"},
            "timeline": {"record": {"entity_type": "person", "entity_id": "p1", "title": "", "path": "/o/aesi/people/p1"},
                         "base": "/o/aesi/timeline/person/p1", "following": false, "next_cursor": null, "items": []},
            "notifications": [], "more": null, "preferences": [], "unread": 0,
            "fields": [], "columns": [], "kinds": [{"entity_type": "person", "module": "core"}], "cf": "", "filterable": [], "chosen": {}, "arrangement": [],
        });
        let extra = merge(extra, sample_import("running", true));
        let mut p = page(lang, true);
        p["flash"] = Json::Null;
        p["org"]["logo_url"] = Json::Null;
        p["orgs"] = json!([]);
        p["user"]["is_instance_admin"] = json!(false);
        merge(p, extra)
    }

    /// What the error page and the signed-out pages get.
    fn signed_out(lang: &str) -> Json {
        merge(
            page(lang, false),
            json!({"status": 500, "detail": "An internal error occurred; it has been logged.", "next": "/", "form": {},
                   "modules": module_states(true), "token": ""}),
        )
    }

    /// Problems a rendered page must not have.
    fn check_html(name: &str, variant: &str, html: &str) {
        let at = |what: &str| format!("{name} ({variant}): {what}");
        for bad in ["Undefined", "None", "True", "False", "{{", "}}", "{%", "%}", "[object Object]"] {
            assert!(!html.contains(bad), "{}\n{html}", at(&format!("contains {bad:?}")));
        }
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains(" style=") && !lower.contains("<style"), "{}", at("inline style (CSP)"));
        for (i, _) in lower.match_indices("<script") {
            let tag = &lower[i..i + lower[i..].find('>').unwrap_or(0)];
            assert!(tag.contains(" src="), "{}", at("inline script (CSP)"));
        }
        for ev in [" onclick=", " onsubmit=", " onchange=", " oninput=", " onload=", "javascript:"] {
            assert!(!lower.contains(ev), "{}", at(&format!("event handler {ev}")));
        }
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("<form") {
            let form = &rest[i..];
            let end = form.find("</form>").unwrap_or(form.len());
            let tag_end = form.find('>').unwrap_or(0);
            if form[..tag_end].contains("method=\"post\"") {
                assert!(form[..end].contains("name=\"_csrf\""), "{}\n{}", at("POST form without _csrf"), &form[..end]);
            }
            rest = &form[end.max(5)..];
        }
        let mut ids = BTreeSet::new();
        let mut rest = html;
        while let Some(i) = rest.find(" id=\"") {
            let s = &rest[i + 5..];
            let id = &s[..s.find('"').unwrap_or(0)];
            assert!(ids.insert(id.to_string()), "{}", at(&format!("duplicate id {id}")));
            rest = s;
        }
    }

    /// Pages a visitor sees before signing in (or when an error page is shown).
    const SIGNED_OUT_PAGES: &[&str] = &[
        "layout.html",
        "macros.html",
        "error.html",
        "setup.html",
        "login.html",
        "login_totp.html",
        "password_forgot.html",
        "password_reset.html",
        "email_verify.html",
        "api_docs.html",
    ];

    #[test]
    fn every_mail_renders_in_both_languages() {
        let t = templates();
        for lang in LANGS {
            for kind in ["password_reset", "verify_email", "invitation", "notification", "digest"] {
                let link = "https://shrooms.example/x?token=abc&next=1";
                let ctx = serde_json::json!({"link": link, "org_name": "Club <Info>", "title": "Ada mentioned you on Club <Info>",
                    "excerpt": "Hi <b>@bob</b>", "items": [{"title": "Ada commented on Club <Info>", "excerpt": "ok", "link": link}]});
                let m = t.render_mail(kind, lang, "AESI", ctx).unwrap();
                assert!(!m.subject.starts_with("mail."), "{kind} {lang}: untranslated subject");
                assert!(m.text.contains(link), "{kind} {lang}: the text part carries the raw link");
                let html = m.html.expect("html part");
                assert!(html.contains("token=abc&amp;next=1"), "{kind} {lang}: the HTML part escapes the link");
                assert!(!html.contains("Club <Info>"), "{kind} {lang}: names are escaped");
                for bad in ["Undefined", "{{", "{%"] {
                    assert!(!m.text.contains(bad) && !html.contains(bad), "{kind} {lang}: {bad}");
                }
            }
        }
    }

    #[test]
    fn every_template_renders_with_sample_contexts() {
        let t = templates();
        for lang in LANGS {
            for (variant, ctx) in [("rich", rich(lang)), ("sparse", sparse(lang)), ("signed-out", signed_out(lang))] {
                for (name, _) in TEMPLATES {
                    if variant == "signed-out" && !SIGNED_OUT_PAGES.contains(name) {
                        continue;
                    }
                    if name.starts_with("email_") {
                        continue; // mails: see every_mail_renders_in_both_languages
                    }
                    let html = t
                        .render(name, Value::from_serialize(&ctx))
                        .unwrap_or_else(|e| panic!("{name} ({variant}, {lang}): {e:#}"));
                    if *name != "macros.html" && !name.starts_with("widget_") && !name.ends_with("_partial.html") {
                        assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{name}: no <html lang>");
                    }
                    check_html(name, &format!("{variant}, {lang}"), &html);
                }
            }
        }
    }

    #[test]
    fn pages_show_what_their_context_holds() {
        let t = templates();
        // minijinja escapes "/" in HTML; browsers decode it.
        let r = |name: &str, ctx: &Json| t.render(name, Value::from_serialize(ctx)).unwrap().replace("&#x2f;", "/");
        let fr = rich("fr");
        let html = r("people_list.html", &fr);
        assert!(html.contains("hx-get=\"/o/aesi/people\""));
        assert!(html.contains("q=a%26b+c%2Bd%23e&amp;cf=taille%3DM&amp;cursor=WyJTYXdhZG9nbyIsIiIsInAyIl0"), "{html}");
        assert!(
            html.contains("<th scope=\"col\">Taille</th>") && html.contains("<td data-label=\"Bénévole\">Oui</td>"),
            "{html}"
        );
        assert!(html.contains("href=\"/o/aesi/brand.css\""));
        assert!(html.contains("aria-current=\"page\""));
        assert!(
            html.contains("Utilisez au moins 10 caractères")
                || r("setup.html", &fr).contains("Utilisez au moins 10 caractères")
        );
        let rows = r("people_rows_partial.html", &fr);
        assert!(!rows.contains("<html") && rows.contains("<tr"));
        let sec = r("account_security.html", &sparse("en"));
        assert!(sec.contains("<span class=\"secret-chunk\">Y3DP</span>"), "{sec}");
        assert!(sec.contains("/account/totp/confirm"));
        let sec = r("account_security.html", &fr);
        assert!(sec.contains("/account/totp/disable") && sec.contains("shr_abcd1234_secretsecretsecret"));
        let settings = r("org_settings.html", &fr);
        assert!(settings.contains("name=\"perm_members\""));
        assert!(settings.contains("<option value=\"admin\" selected>"));
        assert!(!settings.contains("/settings/modules/core"), "always-on modules have no toggle");
        let imp = r("import_show.html", &fr);
        assert!(imp.contains("name=\"map.email\"") && imp.contains("<option value=\"Prénom\" selected>"), "{imp}");
        assert!(
            imp.contains("Une fiche") || imp.contains("Saisissez une adresse e-mail valide"),
            "row errors are translated"
        );
        assert!(!imp.contains("hx-trigger"), "a failed import is not polled");
        let running = r("import_progress_partial.html", &sparse("en"));
        assert!(running.contains("hx-trigger=\"every 1s\"") && running.contains("value=\"600\""), "{running}");
        let err = r("error.html", &signed_out("fr"));
        assert!(err.contains("500"));
    }

    /// Keys called as t("...") in the templates.
    fn template_keys() -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (name, src) in TEMPLATES {
            let mut rest = *src;
            while let Some(i) = rest.find("t(\"") {
                let prev = rest[..i].chars().last();
                let s = &rest[i + 3..];
                let end = s.find('"').unwrap_or_else(|| panic!("{name}: unterminated t(\""));
                if !prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    keys.insert(s[..end].to_string());
                }
                rest = &s[end..];
            }
        }
        keys
    }

    #[test]
    fn catalogues_have_the_same_keys_and_cover_every_use() {
        let cat = |src: &str| -> BTreeSet<String> {
            src.parse::<toml::Table>().expect("valid TOML").keys().cloned().collect()
        };
        // The core's catalogues and the personal data pages' own pair.
        let both = |a: &str, b: &str| -> BTreeSet<String> { cat(a).union(&cat(b)).cloned().collect() };
        let (en, fr) = (
            both(include_str!("../../i18n/en.toml"), include_str!("../../i18n/privacy.en.toml")),
            both(include_str!("../../i18n/fr.toml"), include_str!("../../i18n/privacy.fr.toml")),
        );
        let only_en: Vec<_> = en.difference(&fr).collect();
        let only_fr: Vec<_> = fr.difference(&en).collect();
        assert!(only_en.is_empty() && only_fr.is_empty(), "only in en: {only_en:?}\nonly in fr: {only_fr:?}");
        let m = CoreModule;
        let mut used = template_keys();
        used.insert(m.name_key().into());
        used.insert(m.description_key().into());
        used.extend(m.menu().iter().map(|e| e.label_key.to_string()));
        used.extend(m.widgets().iter().map(|w| w.title_key.to_string()));
        let missing: Vec<_> = used.iter().filter(|k| !en.contains(*k)).collect();
        assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
    }
}
