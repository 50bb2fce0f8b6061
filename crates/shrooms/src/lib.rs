//! The modules of this build, in one explicit list: what `shrooms` serves
//! and what the integration tests start.

pub mod alloc;

use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;

pub fn module_list() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_clubs::ClubsModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_invoicing::InvoicingModule),
        Arc::new(shrooms_members::MembersModule),
    ]
}

pub fn modules() -> anyhow::Result<Modules> {
    Modules::new(module_list())
}
