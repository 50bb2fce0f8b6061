//! The invoicing module's JSON API and HTML pages.

pub mod api_docs;
pub mod api_pay;
pub mod ui_docs;
pub mod ui_pay;

use axum::Router;
use shrooms_core::web::AppState;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new().merge(api_docs::router()).merge(ui_docs::router()).merge(api_pay::router()).merge(ui_pay::router())
}

/// The module's OpenAPI document: each part's paths merged.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_docs::DocsApi::openapi();
    doc.merge(api_pay::PaymentsApi::openapi());
    doc
}
