//! Shrooms core: the platform every module stands on.
//!
//! It owns storage (one portable SQL dialect for SQLite and PostgreSQL),
//! identity (accounts, sessions, tokens, second factor), organisations,
//! roles and permissions, people, the hash-chained audit log, the mail
//! outbox, the module interface and the web shell (HTML pages and JSON API).
//!
//! It must never know about any particular domain module: modules plug in
//! through [`module::Module`] and are registered by the binary.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod cache;
pub mod config;
pub mod core_module;
pub mod cron;
pub mod crypto;
pub mod custom_fields;
pub mod db;
pub mod demo;
pub mod error;
pub mod files;
pub mod groups;
pub mod identity;
pub mod ids;
pub mod images;
pub mod import;
pub mod instance;
pub mod jobs;
pub mod markdown;
pub mod module;
pub mod notify;
pub mod ods;
pub mod orgs;
pub mod outbox;
pub mod pdf;
pub mod people;
pub mod permissions;
pub mod privacy;
pub mod schedules;
pub mod sealed;
pub mod smtp;
pub mod tabular;
pub mod timeline;
pub mod web;

pub use config::Config;
pub use db::Db;
pub use error::{CoreError, CoreResult};
pub use module::{Module, Modules};
pub use web::AppState;

/// Connects, migrates and builds the application state: what `serve` and the
/// test harness both do before listening.
pub async fn boot(cfg: Config, modules: Modules) -> anyhow::Result<AppState> {
    let db = Db::connect(&cfg).await?;
    migrate(&cfg, &db, &modules).await?;
    AppState::new(cfg, db, modules).await
}

/// Applies pending migrations, then the data steps that follow some of them
/// (rebuilding the people search words after the migration that creates them).
///
/// Before changing an existing database, a backup is written to
/// `<data>/backups/pre-migration-<time>.*`: each migration runs in its own
/// transaction and a failed one rolls back, but a migration that succeeds
/// and turns out wrong can only be undone from a copy.
pub async fn migrate(cfg: &Config, db: &Db, modules: &Modules) -> anyhow::Result<Vec<String>> {
    let pending = db::pending_migrations(db, &modules.migrations()).await?;
    let fresh = pending.len() == modules.migrations().len();
    if !pending.is_empty() && !fresh {
        let out = cfg.data.join("backups").join(format!(
            "pre-migration-{}-{}.{}",
            backup::stamp(),
            &crypto::hex(&crypto::random_bytes::<3>()),
            if db.backend() == db::Backend::Sqlite { "db" } else { "pgdump" }
        ));
        let path = backup::backup(cfg, db, Some(out))
            .await
            .map_err(|e| anyhow::anyhow!("backup before migrating failed, nothing was changed: {e:#}"))?;
        tracing::info!(backup = %path.display(), pending = pending.len(), "database backed up before migrating");
    }
    let applied = db::migrate(db, &modules.migrations()).await?;
    for m in &applied {
        tracing::info!(migration = %m, "migration applied");
    }
    // Migrations after which the search terms of people are computed differently.
    const REINDEX: [&str; 2] = ["m20261121_002_core_people_terms", "m20261121_004_core_people_terms_phone"];
    if applied.iter().any(|m| REINDEX.contains(&m.as_str())) {
        let n = people::reindex_all(db).await.map_err(|e| anyhow::anyhow!("indexing people for search: {e}"))?;
        if n > 0 {
            tracing::info!(people = n, "people indexed for search");
        }
    }
    Ok(applied)
}
