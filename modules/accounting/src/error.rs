//! The accounting module's errors and their one translation to the core's
//! web error (problem+json with field errors naming the line and field).

use shrooms_core::error::{CoreError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum AcctError {
    /// Bad input: each error names its field (`lines[2].account`, `line 14: Debit`).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The books of this organisation are not opened yet.
    #[error("books not opened")]
    NoBooks,
    /// A validated entry, or an entry of a closed year, cannot change.
    #[error("final: {0}")]
    Final(String),
    /// The request conflicts with the state of the books (a year to close has drafts…).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Core(#[from] CoreError),
}

pub type AcctResult<T> = Result<T, AcctError>;

impl AcctError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> AcctError {
        AcctError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for AcctError {
    fn from(e: sqlx::Error) -> Self {
        AcctError::Core(e.into())
    }
}

impl From<AcctError> for CoreError {
    fn from(e: AcctError) -> CoreError {
        match e {
            AcctError::Invalid(v) => CoreError::Validation(v),
            AcctError::NoBooks => CoreError::Conflict {
                field: None,
                message: "The books of this organisation are not opened yet: choose a chart of accounts first.".into(),
            },
            AcctError::Final(m) | AcctError::Conflict(m) => CoreError::Conflict { field: None, message: m },
            AcctError::Core(c) => c,
        }
    }
}
