//! Backup and restore. SQLite: `VACUUM INTO` writes a consistent copy while
//! the server runs; restore swaps the file (server stopped). PostgreSQL: the
//! standard `pg_dump` custom format, a consistent snapshot, restored with
//! `pg_restore --clean`.

use crate::config::Config;
use crate::db::{Backend, Db};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn stamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:04}{:02}{:02}-{:02}{:02}{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

pub async fn backup(cfg: &Config, db: &Db, output: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let ext = if db.backend() == Backend::Sqlite { "db" } else { "pgdump" };
    let out = match output {
        Some(p) => p,
        None => cfg.data.join("backups").join(format!("shrooms-{}.{ext}", stamp())),
    };
    if let Some(dir) = out.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    if out.exists() {
        bail!("{} exists already; choose another name", out.display());
    }
    match db.backend() {
        Backend::Sqlite => {
            db.sqlite_snapshot(&out).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Backend::Postgres => {
            let url = cfg.database_url.as_ref().map(|u| u.0.clone()).unwrap_or_default();
            let status = Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(&out)
                .arg("--dbname")
                .arg(&url)
                .status()
                .context("running pg_dump (install the PostgreSQL client tools)")?;
            if !status.success() {
                bail!("pg_dump failed with {status}");
            }
        }
    }
    Ok(out)
}

pub async fn restore(cfg: &Config, file: &Path) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    match &cfg.database_url {
        None => {
            // Check it is a Shrooms SQLite database before replacing anything.
            let mut check = cfg.clone();
            let tmp_dir = std::env::temp_dir().join(format!("shrooms-restore-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&tmp_dir)?;
            std::fs::copy(file, tmp_dir.join("shrooms.db"))?;
            check.data = tmp_dir.clone();
            let db = Db::connect(&check).await?;
            let ok = sqlx::query("SELECT COUNT(*) FROM schema_migrations").fetch_one(db.pool()).await.is_ok();
            db.close().await;
            let _ = std::fs::remove_dir_all(&tmp_dir);
            if !ok {
                bail!("{} is not a Shrooms backup", file.display());
            }
            if std::net::TcpListener::bind(&cfg.listen).is_err() {
                bail!("something listens on {}: stop the server before restoring", cfg.listen);
            }
            std::fs::create_dir_all(&cfg.data)?;
            let target = cfg.sqlite_path();
            if target.exists() {
                // The current database with its write-ahead log, which may hold
                // committed transactions if the server did not stop cleanly.
                let keep = cfg.data.join(format!("shrooms.db.before-restore-{}", stamp()));
                std::fs::rename(&target, &keep).with_context(|| "moving the current database aside")?;
                for suffix in ["-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", target.display()));
                    if p.exists() {
                        std::fs::rename(&p, format!("{}{suffix}", keep.display()))?;
                    }
                }
                eprintln!("previous database kept as {}", keep.display());
            }
            std::fs::copy(file, &target)?;
            Ok(())
        }
        Some(url) => {
            let status = Command::new("pg_restore")
                .args(["--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname"])
                .arg(&url.0)
                .arg(file)
                .status()
                .context("running pg_restore (install the PostgreSQL client tools)")?;
            if !status.success() {
                bail!("pg_restore failed with {status}");
            }
            Ok(())
        }
    }
}
