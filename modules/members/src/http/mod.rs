//! The module's HTTP edge: JSON API (`api*.rs`) and pages (`ui*.rs`) over the same services.

pub mod api;
pub mod api_billing;
pub mod api_dir;
pub mod api_self;
pub mod api_stats;
pub mod ui;
pub mod ui_billing;
pub mod ui_dir;
pub mod ui_self;
pub mod ui_stats;
