//! The module's HTTP edge: JSON API and pages.

pub mod api;
pub mod ui;
