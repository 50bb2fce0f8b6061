//! Storage: one pool type for both backends (the backend is chosen at the
//! pool, never by making handlers generic), write transactions, and the
//! migration runner. SQL is written once in a portable dialect: `$1`
//! placeholders, TEXT ids, BIGINT integers, booleans and UTC milliseconds.

use crate::config::Config;
use crate::error::{CoreError, CoreResult};
use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A statement slower than this is logged as a warning.
pub const SLOW_STATEMENT: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Rows per multi-row statement with `values_per_row` bound values each.
    /// sqlx's SQLite driver looks every parameter up by name, so a
    /// statement's cost there grows with the square of its parameters: a
    /// few hundred per statement is the sweet spot (a renewal run with 6,500
    /// per statement ran three times slower). PostgreSQL wants few, big
    /// statements (round trips), well under its 65,535 parameters.
    pub fn rows_per_statement(self, values_per_row: usize) -> usize {
        let budget = match self {
            Backend::Sqlite => 240,
            Backend::Postgres => 6_000,
        };
        (budget / values_per_row.max(1)).max(1)
    }

    /// The chunk size of an `IN (…)` list of ids read in the caller's
    /// transaction, with `others` more values bound beside it.
    pub fn ids_per_statement(self, others: usize) -> usize {
        self.rows_per_statement(1).saturating_sub(others).max(1)
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `$first, $first+1, …` for `n` values: the placeholders of an `IN (…)`
/// list or of one row of a multi-row insert.
pub fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: writers queue here instead of failing with SQLITE_BUSY.
    write_lock: Option<Arc<Mutex<()>>>,
    /// SQLite only: one connection with `synchronous = FULL`, for the writes
    /// that must survive a power cut once acknowledged (see [`Db::begin_durable`]).
    durable: Option<AnyPool>,
    /// Counts committed writes on this server; see [`crate::cache`].
    generation: Arc<AtomicU64>,
    field_defs: Arc<crate::custom_fields::DefsCache>,
    /// The SQLite database file, checked for writing by health checks.
    sqlite_file: Option<std::path::PathBuf>,
}

/// Set when SQLite could not write its files (read-only, I/O error, full
/// disk). A connection that failed then may still hold the write lock or have
/// been opened read-only, and would keep refusing writes once the files are
/// writable again; so until a write commits, the pool closes connections
/// instead of handing them out again, and each request opens a fresh one.
/// Process-wide because errors are classified without their pool (in
/// `CoreError::from`); one SQLite database per process in production.
static SQLITE_WRITE_TROUBLE: AtomicBool = AtomicBool::new(false);

pub(crate) fn note_sqlite_write_trouble() {
    SQLITE_WRITE_TROUBLE.store(true, Ordering::Release);
}

/// Whether this process may write the SQLite database and its write-ahead
/// log. A `SELECT` still works on a read-only file, so the health check and
/// new pool connections ask the kernel (`access(2)`: read-only file system,
/// immutable file, permissions). Never by opening the file: closing any
/// descriptor of it would drop this process's SQLite locks on it.
fn sqlite_writable(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    for f in [file.as_os_str(), wal.as_os_str()] {
        let Ok(c) = std::ffi::CString::new(f.as_bytes()) else { continue };
        // SAFETY: `c` is a valid NUL-terminated path; access(2) only reads it.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::NotFound {
                let name = std::path::Path::new(f).display();
                return Err(std::io::Error::new(e.kind(), format!("the database file {name} cannot be written: {e}")));
            }
        }
    }
    Ok(())
}

/// A write transaction. On SQLite it also holds the process's writer slot.
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    backend: Backend,
    _writer: Option<OwnedMutexGuard<()>>,
    generation: Arc<AtomicU64>,
}

impl Tx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }
    pub async fn commit(self) -> CoreResult<()> {
        self.tx.commit().await?;
        self.generation.fetch_add(1, Ordering::Release);
        if self.backend == Backend::Sqlite {
            SQLITE_WRITE_TROUBLE.store(false, Ordering::Release);
        }
        Ok(())
    }
}

impl Db {
    pub async fn connect(cfg: &Config) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let (url, backend, sqlite_file) = match &cfg.database_url {
            Some(u) => (u.0.clone(), Backend::Postgres, None),
            None => {
                std::fs::create_dir_all(&cfg.data)
                    .with_context(|| format!("creating data folder {}", cfg.data.display()))?;
                let path = std::fs::canonicalize(&cfg.data)?.join("shrooms.db");
                (format!("sqlite://{}?mode=rwc", path.display()), Backend::Sqlite, Some(path))
            }
        };
        // Every statement at debug level; slow ones as warnings, inside the
        // request's span (so with its request id).
        let opts = AnyConnectOptions::from_str(&url)
            .context("invalid database URL")?
            .log_statements(log::LevelFilter::Debug)
            .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
        let durable = match backend {
            Backend::Sqlite => Some(
                AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(5))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(opts.clone()),
            ),
            Backend::Postgres => None,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(cfg.effective_pool_size())
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .before_acquire(move |_conn, _meta| {
                Box::pin(async move { Ok(backend != Backend::Sqlite || !SQLITE_WRITE_TROUBLE.load(Ordering::Acquire)) })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .with_context(|| format!("connecting to the {} database", backend.name()))?;
        Ok(Db {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
            durable,
            generation: Arc::new(AtomicU64::new(0)),
            field_defs: Arc::new(crate::cache::TtlCache::new(Duration::from_millis(
                cfg.security.auth_cache_ms.max(0) as u64
            ))),
            sqlite_file,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction.
    pub async fn begin(&self) -> CoreResult<Tx> {
        let writer = match &self.write_lock {
            Some(l) => Some(l.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            // IMMEDIATE takes SQLite's write lock now, waiting for it under
            // busy_timeout: a deferred transaction that read first and then
            // writes fails at once (SQLITE_BUSY_SNAPSHOT) if a write outside
            // this process's lock (a session touch, a job claim) committed
            // in between.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, backend: self.backend, _writer: writer, generation: self.generation.clone() })
    }

    /// Begins a write transaction whose commit is on disk before it returns,
    /// even across a power cut: money and numbers shown to a user (ledger
    /// entries) use it. On SQLite the pool runs in WAL mode with
    /// `synchronous = NORMAL`, where the last commits may be lost by a power
    /// cut (never corrupted); this transaction runs on a connection kept at
    /// `synchronous = FULL`, which syncs the WAL at each commit. The pragma
    /// cannot change inside a transaction, hence a connection of its own.
    /// PostgreSQL commits are durable already (`synchronous_commit = on`).
    pub async fn begin_durable(&self) -> CoreResult<Tx> {
        let Some(durable) = &self.durable else {
            return self.begin().await;
        };
        let writer = match &self.write_lock {
            Some(l) => Some(l.clone().lock_owned().await),
            None => None,
        };
        let tx = durable.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Tx { tx, backend: self.backend, _writer: writer, generation: self.generation.clone() })
    }

    /// How many write transactions this server has committed: cached reads
    /// taken at an older generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Custom field definitions read recently (see [`crate::custom_fields`]).
    pub(crate) fn field_defs(&self) -> &crate::custom_fields::DefsCache {
        &self.field_defs
    }

    /// Marks cached reads stale after a write made outside [`Tx`].
    pub fn wrote(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Round-trips to the database; used by health checks.
    pub async fn ping(&self) -> CoreResult<Duration> {
        let start = std::time::Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if let Some(f) = &self.sqlite_file {
            sqlite_writable(f).map_err(|e| CoreError::Unavailable(e.to_string()))?;
        }
        Ok(start.elapsed())
    }

    pub async fn close(&self) {
        if let Some(d) = &self.durable {
            d.close().await;
        }
        self.pool.close().await;
    }

    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// A consistent copy of the whole database, taken while the server runs.
    /// SQLite: `VACUUM INTO` a file. PostgreSQL: see `backup::export`.
    pub async fn sqlite_snapshot(&self, dest: &std::path::Path) -> CoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(CoreError::BadRequest("not an SQLite database".into()));
        }
        let p = dest.to_string_lossy().replace('\'', "''");
        sqlx::query(&format!("VACUUM INTO '{p}'")).execute(&self.pool).await?;
        Ok(())
    }
}

/// One schema change of one module. Ids sort in application order:
/// `m<yyyymmdd>_<seq>_<module>_<what>`.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub id: &'static str,
    pub sql: &'static str,
}

fn checksum(sql: &str) -> String {
    crate::crypto::sha256_hex(sql.as_bytes())
}

/// Splits a migration into statements: `;` at the end of a line ends one.
/// Comment lines (`--`) are dropped. Migrations hold no triggers or procedures.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

const MIGRATION_LOCK: i64 = 0x5348_524f_4f4d; // "SHROOM"

/// Applies the pending migrations, in id order, each in its own transaction.
/// Several replicas starting at once on PostgreSQL wait on an advisory lock.
/// An applied migration whose text changed is refused: add a new one instead.
pub async fn migrate(db: &Db, migrations: &[(&'static str, Migration)]) -> anyhow::Result<Vec<String>> {
    let mut conn = db.pool.acquire().await?;
    if db.backend == Backend::Postgres {
        sqlx::query(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut *conn).await?;
    }
    let result = migrate_locked(&mut conn, migrations).await;
    if db.backend == Backend::Postgres {
        sqlx::query(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(&mut *conn).await?;
    }
    result
}

async fn migrate_locked(
    conn: &mut AnyConnection,
    migrations: &[(&'static str, Migration)],
) -> anyhow::Result<Vec<String>> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, module TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let rows = sqlx::query("SELECT id, checksum FROM schema_migrations").fetch_all(&mut *conn).await?;
    let applied: std::collections::HashMap<String, String> = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let mut sorted: Vec<_> = migrations.to_vec();
    sorted.sort_by_key(|(_, m)| m.id);
    let mut done = Vec::new();
    for (module, m) in sorted {
        let sum = checksum(m.sql);
        if let Some(prev) = applied.get(m.id) {
            if *prev != sum {
                anyhow::bail!(
                    "migration {} was changed after it was applied; never edit an applied migration, add a new one",
                    m.id
                );
            }
            continue;
        }
        let mut tx = conn.begin().await?;
        for stmt in statements(m.sql) {
            tx.execute(stmt.as_str())
                .await
                .with_context(|| format!("migration {} failed at: {}", m.id, stmt.trim()))?;
        }
        sqlx::query("INSERT INTO schema_migrations (id, module, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(m.id)
            .bind(module)
            .bind(&sum)
            .bind(crate::ids::Timestamp::now().0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done.push(m.id.to_string());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn splits_statements_and_drops_comments() {
        let s = statements("-- a comment\nCREATE TABLE a (x BIGINT);\n\nCREATE INDEX i ON a (x);\n");
        assert_eq!(s.len(), 2);
        assert!(s[1].contains("CREATE INDEX"));
    }

    #[test]
    fn numbers_placeholders_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(Backend::Sqlite.ids_per_statement(1), 239);
        assert_eq!(Backend::Postgres.ids_per_statement(2), 5_998);
    }
}

/// Ids of migrations not yet applied (used by `shrooms check`).
pub async fn pending_migrations(db: &Db, migrations: &[(&'static str, Migration)]) -> anyhow::Result<Vec<String>> {
    let exists = match db.backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        Backend::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'",
    };
    let n: i64 = sqlx::query(exists).fetch_one(&db.pool).await?.try_get(0)?;
    let applied: Vec<String> = if n == 0 {
        Vec::new()
    } else {
        let rows = sqlx::query("SELECT id FROM schema_migrations").fetch_all(&db.pool).await?;
        rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?
    };
    Ok(migrations.iter().map(|(_, m)| m.id.to_string()).filter(|id| !applied.contains(id)).collect())
}
