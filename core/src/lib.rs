//! Shrooms core: the platform every module stands on.
//!
//! It owns storage (one portable SQL dialect for SQLite and PostgreSQL),
//! identity (accounts, sessions, tokens, second factor), organisations,
//! roles and permissions, people, the hash-chained audit log, the mail
//! outbox, the module interface and the web shell (HTML pages and JSON API).
//!
//! It must never know about any particular domain module: modules plug in
//! through [`module::Module`] and are registered by the binary.

pub mod audit;
pub mod backup;
pub mod config;
pub mod core_module;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod identity;
pub mod ids;
pub mod instance;
pub mod module;
pub mod orgs;
pub mod outbox;
pub mod people;
pub mod permissions;
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
    let applied = db::migrate(&db, &modules.migrations()).await?;
    for m in &applied {
        tracing::info!(migration = %m, "migration applied");
    }
    AppState::new(cfg, db, modules).await
}
