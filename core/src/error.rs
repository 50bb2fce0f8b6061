//! The core's error type and its one translation to HTTP: RFC 9457
//! `application/problem+json` with a stable `type` per error kind.
//! Causes of 5xx errors are logged, never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("a second factor is required")]
    TotpRequired,
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {message}")]
    Conflict { field: Option<String>, message: String },
    #[error("too large: {0}")]
    PayloadTooLarge(String),
    #[error("too many attempts")]
    TooManyRequests { retry_after_secs: i64 },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type CoreResult<T> = Result<T, CoreError>;

impl From<sqlx::Error> for CoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => CoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                CoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(d) if d.is_unique_violation() => CoreError::Conflict {
                field: None,
                message: "a record with the same unique value already exists".into(),
            },
            sqlx::Error::Database(d) => {
                let msg = d.message().to_ascii_lowercase();
                // SQLite read-only, locked, full or failing file, PostgreSQL shutting down: the
                // store is unavailable, not broken (SQLite rolls the transaction back).
                let sqlite_cannot_write = msg.contains("readonly")
                    || msg.contains("disk i/o error")
                    || msg.contains("database or disk is full")
                    || msg.contains("unable to open database file");
                if sqlite_cannot_write {
                    crate::db::note_sqlite_write_trouble();
                }
                if sqlite_cannot_write
                    || msg.contains("read-only")
                    || msg.contains("database is locked")
                    || msg.contains("shutting down")
                    || msg.contains("terminating connection")
                {
                    CoreError::Unavailable(e.to_string())
                } else {
                    CoreError::Database(e)
                }
            }
            _ => CoreError::Database(e),
        }
    }
}

impl From<anyhow::Error> for CoreError {
    fn from(e: anyhow::Error) -> Self {
        CoreError::Internal(format!("{e:#}"))
    }
}

impl CoreError {
    pub fn validation(field: &str, message: &str) -> Self {
        CoreError::Validation(vec![FieldError::new(field, message)])
    }

    /// Turns a unique violation into a field error (launchbadge's `on_constraint`).
    pub fn on_conflict(self, field: &str, message: &str) -> Self {
        match self {
            CoreError::Conflict { .. } => CoreError::Conflict { field: Some(field.into()), message: message.into() },
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            CoreError::NotFound => StatusCode::NOT_FOUND,
            CoreError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            CoreError::Forbidden(_) | CoreError::TotpRequired => StatusCode::FORBIDDEN,
            CoreError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CoreError::Conflict { .. } => StatusCode::CONFLICT,
            CoreError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Database(_) | CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem kind, part of the `type` URI.
    pub fn kind(&self) -> &'static str {
        match self {
            CoreError::NotFound => "not-found",
            CoreError::Unauthorized(_) => "unauthorized",
            CoreError::Forbidden(_) => "forbidden",
            CoreError::TotpRequired => "totp-required",
            CoreError::Validation(_) => "validation",
            CoreError::BadRequest(_) => "bad-request",
            CoreError::Conflict { .. } => "conflict",
            CoreError::PayloadTooLarge(_) => "payload-too-large",
            CoreError::TooManyRequests { .. } => "rate-limited",
            CoreError::Unavailable(_) => "unavailable",
            CoreError::Database(_) | CoreError::Internal(_) => "internal",
        }
    }

    /// A message safe to show to the user.
    pub fn public_detail(&self) -> String {
        match self {
            CoreError::NotFound => "The resource does not exist or you cannot see it.".into(),
            CoreError::Unauthorized(m) => m.clone(),
            CoreError::Forbidden(m) => m.clone(),
            CoreError::TotpRequired => "Enrol a TOTP second factor to continue.".into(),
            CoreError::Validation(_) => "Some fields are invalid.".into(),
            CoreError::BadRequest(m) => m.clone(),
            CoreError::Conflict { message, .. } => message.clone(),
            CoreError::PayloadTooLarge(m) => m.clone(),
            CoreError::TooManyRequests { retry_after_secs } => {
                format!("Too many attempts; try again in {retry_after_secs} seconds.")
            }
            CoreError::Unavailable(_) => {
                "The database is unavailable right now; nothing was changed. Try again shortly.".into()
            }
            CoreError::Database(_) | CoreError::Internal(_) => "An internal error occurred; it has been logged.".into(),
        }
    }

    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            CoreError::Validation(v) => v.clone(),
            CoreError::Conflict { field: Some(f), message } => vec![FieldError::new(f, message)],
            _ => vec![],
        }
    }

    pub fn log(&self) {
        match self {
            CoreError::Database(_) | CoreError::Internal(_) => {
                tracing::error!(error = %self, "request failed")
            }
            CoreError::Unavailable(_) => tracing::warn!(error = %self, "database unavailable"),
            _ => {}
        }
    }
}

/// The RFC 9457 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub const PROBLEM_BASE: &str = "urn:shrooms:problem:";

pub fn problem_response(status: StatusCode, kind: &str, detail: String, errors: Vec<FieldError>) -> Response {
    let body = Problem {
        kind: format!("{PROBLEM_BASE}{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}

impl IntoResponse for CoreError {
    fn into_response(self) -> Response {
        self.log();
        let mut resp = problem_response(self.status(), self.kind(), self.public_detail(), self.field_errors());
        if let CoreError::TooManyRequests { retry_after_secs } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let CoreError::Unavailable(_) = &self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}
