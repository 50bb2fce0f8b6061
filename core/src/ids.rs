//! Identifiers and time. IDs are UUIDv7 newtypes stored as text; times are
//! UTC milliseconds since the Unix epoch, stored as BIGINT on both databases.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a UUIDv7 identifier newtype (`OrgId`, `AccountId`, ...).
#[macro_export]
macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);
        impl $name {
            pub fn new() -> Self { Self(uuid::Uuid::now_v7()) }
            pub fn as_string(&self) -> String { self.0.to_string() }
        }
        impl Default for $name { fn default() -> Self { Self::new() } }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
        }
        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { uuid::Uuid::parse_str(s).map(Self) }
        }
    };
}

id_type!(
    /// An organisation (tenant) of the instance.
    OrgId
);
id_type!(
    /// A sign-in account: one per human for the whole instance.
    AccountId
);
id_type!(
    /// A person record inside one organisation's directory.
    PersonId
);
id_type!(
    /// A role of one organisation.
    RoleId
);

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
    pub fn plus_secs(self, s: i64) -> Self {
        Timestamp(self.0 + s * 1000)
    }
    pub fn rfc3339(self) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Parses a stored id column; a malformed id in the database is a bug, reported as such.
pub fn parse_id<T: FromStr>(s: &str) -> Result<T, crate::error::CoreError> {
    s.parse().map_err(|_| crate::error::CoreError::Internal(format!("malformed id in database: {s}")))
}
