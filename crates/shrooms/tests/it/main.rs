//! The one integration-test binary of the `shrooms` crate. Every test starts
//! the real application on a random port (on SQLite and on PostgreSQL, see
//! `testkit::db_test!`) and talks HTTP to it. Do not add more test binaries:
//! add a module here.

mod alerts;
mod api;
mod auth;
mod backups;
mod cli;
mod custom_fields;
mod dashboard;
mod e2e;
mod files;
mod imports;
mod isolation;
mod mail;
mod modules;
mod outage;
mod person_account;
mod privacy;
mod schedules;
mod timeline;
mod ui;

use shrooms_core::Modules;

/// The modules of the real build, plus `notes`, a small module that exists
/// only in tests to exercise the module interface (migrations, routes,
/// permissions, enabling and disabling).
pub fn modules() -> Modules {
    let mut list = shrooms::module_list();
    list.push(std::sync::Arc::new(modules::NotesModule));
    Modules::new(list).expect("valid module list")
}
