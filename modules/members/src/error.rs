//! The members module's errors and their one translation to the core's web
//! error (problem+json; bad input as field errors).

use shrooms_accounting::error::AcctError;
use shrooms_core::error::{CoreError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// Bad input: each error names its field (`starts_on`, `items[3].person_id`).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The organisation's settings do not allow this yet (the invoice path
    /// without the invoicing module…).
    #[error("not available: {0}")]
    Unavailable(String),
    /// Something must be set up first (the organisation's identity for tax
    /// receipts…): the field to fill in, and why.
    #[error("precondition: {1}")]
    Precondition(String, String),
    /// Posting to the ledger failed (books not opened, year closed, account missing).
    #[error(transparent)]
    Ledger(#[from] AcctError),
    #[error(transparent)]
    Core(#[from] CoreError),
}

pub type MemResult<T> = Result<T, MemError>;

impl MemError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> MemError {
        MemError::Invalid(vec![FieldError::new(field, message)])
    }
    pub fn check(errors: Vec<FieldError>) -> MemResult<()> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(MemError::Invalid(errors))
        }
    }
}

impl From<sqlx::Error> for MemError {
    fn from(e: sqlx::Error) -> Self {
        MemError::Core(e.into())
    }
}

impl From<MemError> for CoreError {
    fn from(e: MemError) -> CoreError {
        match e {
            MemError::Invalid(v) => CoreError::Validation(v),
            MemError::Unavailable(m) => CoreError::Conflict { field: Some("dues_path".into()), message: m },
            MemError::Precondition(f, m) => CoreError::Conflict { field: Some(f), message: m },
            MemError::Ledger(AcctError::Invalid(v)) => CoreError::Validation(
                v.into_iter().map(|f| FieldError::new(ledger_field(&f.field), f.message)).collect(),
            ),
            MemError::Ledger(a) => a.into(),
            MemError::Core(c) => c,
        }
    }
}

/// The ledger names the fields of its entries (`entries[2].date`); here the
/// entries are the items of the request and the date is the payment date.
fn ledger_field(f: &str) -> String {
    let (prefix, rest) = match f.strip_prefix("entries[").and_then(|r| r.split_once("].")) {
        Some((i, rest)) => (format!("items[{i}]."), rest),
        None => (String::new(), f),
    };
    match rest {
        "date" => format!("{prefix}paid_on"),
        other => format!("{prefix}ledger.{other}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ledger_fields_are_named_as_the_request() {
        assert_eq!(super::ledger_field("date"), "paid_on");
        assert_eq!(super::ledger_field("entries[3].date"), "items[3].paid_on");
        assert_eq!(super::ledger_field("entries[3].lines[0].account"), "items[3].ledger.lines[0].account");
        assert_eq!(super::ledger_field("lines[1].account"), "ledger.lines[1].account");
    }
}
