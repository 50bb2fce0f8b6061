//! Backup and restore. SQLite: `VACUUM INTO` writes a consistent copy while
//! the server runs; restore swaps the file (server stopped). PostgreSQL: the
//! standard `pg_dump` custom format, a consistent snapshot, restored with
//! `pg_restore --clean`. Uploaded files (`<data>/files`) go beside the
//! database file, in `<backup>.files/` (hard links when the backup folder is
//! on the same file system: stored files never change, so a link is a copy
//! that costs nothing).
//!
//! Scheduled backups ([`RUN`], schedule `core.backup`, daily by default) keep a grandfather-father-son
//! set ([`select_kept`]): the newest backup of each of the last days, weeks and
//! months, and may copy each backup to a second folder.

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

/// The folder of uploaded files that goes with a backup file.
pub fn files_dir_of(backup: &Path) -> PathBuf {
    PathBuf::from(format!("{}.files", backup.display()))
}

/// A backup of the database and of the uploaded files.
pub async fn backup_all(cfg: &Config, db: &Db, output: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let out = backup(cfg, db, output).await?;
    let files = cfg.data.join("files");
    if files.is_dir() {
        copy_tree(&files, &files_dir_of(&out), true).with_context(|| "copying the uploaded files")?;
    }
    // Sealed fields are unreadable without their key: a backup of the data
    // folder's key goes with the database (a key given in the configuration
    // is the operator's to keep).
    let key = crate::sealed::key_file(cfg);
    if cfg.data_key.is_none() && key.is_file() {
        std::fs::create_dir_all(files_dir_of(&out)).with_context(|| "creating the backup's folder")?;
        std::fs::copy(&key, files_dir_of(&out).join("data.key")).with_context(|| "copying the data key")?;
    }
    Ok(out)
}

/// Copies a folder; with `link`, hard-links files where the file system allows.
fn copy_tree(src: &Path, dst: &Path, link: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_tree(&from, &to, link)?;
        } else if !link || std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// Puts the uploaded files of a backup back in the data folder (the current
/// ones are kept aside).
fn restore_files(cfg: &Config, file: &Path) -> anyhow::Result<()> {
    let saved = files_dir_of(file);
    if !saved.is_dir() {
        return Ok(());
    }
    let target = cfg.data.join("files");
    if target.exists() {
        let keep = cfg.data.join(format!("files.before-restore-{}", stamp()));
        std::fs::rename(&target, &keep).with_context(|| "moving the current files aside")?;
        eprintln!("previous files kept in {}", keep.display());
    }
    copy_tree(&saved, &target, false).with_context(|| "restoring the uploaded files")?;
    // The data key saved with the files goes back to `keys/`, not among the files.
    let saved_key = target.join("data.key");
    if saved_key.is_file() {
        let key = crate::sealed::key_file(cfg);
        if key.is_file() && std::fs::read(&key)? != std::fs::read(&saved_key)? {
            let keep = key.with_file_name(format!("data.key.before-restore-{}", stamp()));
            std::fs::rename(&key, &keep).with_context(|| "moving the current data key aside")?;
            eprintln!("previous data key kept in {}", keep.display());
        }
        if let Some(dir) = key.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(&saved_key, &key).with_context(|| "restoring the data key")?;
    }
    Ok(())
}

pub async fn restore(cfg: &Config, file: &Path) -> anyhow::Result<()> {
    restore_database(cfg, file).await?;
    restore_files(cfg, file)
}

async fn restore_database(cfg: &Config, file: &Path) -> anyhow::Result<()> {
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

// ---------- scheduled backups and retention ----------

/// How many backups to keep: the newest of each of the last `daily` days,
/// `weekly` ISO weeks and `monthly` months (a backup may count for several).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

/// The time a scheduled backup's name records: `shrooms-YYYYMMDD-HHMMSS.ext`.
fn parse_stamp(name: &str) -> Option<time::PrimitiveDateTime> {
    let rest = name.strip_prefix("shrooms-")?;
    let stamp = rest.get(..15)?;
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::PrimitiveDateTime::parse(stamp, fmt).ok()
}

/// Which of these backup names to keep (names that are not scheduled
/// backups, such as `pre-migration-…`, are never touched by retention).
pub fn select_kept(names: &[String], keep: Retention) -> std::collections::BTreeSet<String> {
    let mut dated: Vec<(time::PrimitiveDateTime, &String)> =
        names.iter().filter_map(|n| parse_stamp(n).map(|t| (t, n))).collect();
    dated.sort_by(|a, b| b.0.cmp(&a.0));
    let mut kept = std::collections::BTreeSet::new();
    let mut take = |period: &dyn Fn(time::PrimitiveDateTime) -> (i32, u32), count: usize| {
        let mut seen: Vec<(i32, u32)> = Vec::new();
        for (t, n) in &dated {
            let p = period(*t);
            if seen.len() >= count {
                break;
            }
            if !seen.contains(&p) {
                seen.push(p);
                kept.insert((*n).clone());
            }
        }
    };
    take(&|t| (t.year(), t.ordinal() as u32), keep.daily);
    take(
        &|t| {
            let (y, w, _) = t.to_iso_week_date();
            (y, w as u32)
        },
        keep.weekly,
    );
    take(&|t| (t.year(), t.month() as u32), keep.monthly);
    kept
}

/// Deletes the scheduled backups of `dir` that retention does not keep
/// (with their files folders); returns the names deleted.
pub fn prune(dir: &Path, keep: Retention) -> anyhow::Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| parse_stamp(n).is_some())
        .collect();
    let kept = select_kept(&names, keep);
    let mut deleted = Vec::new();
    for n in names {
        if kept.contains(&n) {
            continue;
        }
        let p = dir.join(&n);
        std::fs::remove_file(&p)?;
        let files = files_dir_of(&p);
        if files.is_dir() {
            std::fs::remove_dir_all(&files)?;
        }
        deleted.push(n);
    }
    Ok(deleted)
}

/// One scheduled backup: database and files into the backup folder, a copy
/// in the second folder if configured, then retention in both. Returns the
/// backup written.
pub async fn scheduled(cfg: &Config, db: &Db) -> anyhow::Result<PathBuf> {
    let folder = cfg.backup.folder.clone().unwrap_or_else(|| cfg.data.join("backups"));
    let ext = if db.backend() == Backend::Sqlite { "db" } else { "pgdump" };
    let out = backup_all(cfg, db, Some(folder.join(format!("shrooms-{}.{ext}", stamp())))).await?;
    let keep =
        Retention { daily: cfg.backup.keep_daily, weekly: cfg.backup.keep_weekly, monthly: cfg.backup.keep_monthly };
    if let Some(second) = &cfg.backup.copy_to {
        std::fs::create_dir_all(second).with_context(|| format!("creating {}", second.display()))?;
        let name = out.file_name().map(|n| n.to_owned()).unwrap_or_default();
        std::fs::copy(&out, second.join(&name))
            .with_context(|| format!("copying the backup to {}", second.display()))?;
        let files = files_dir_of(&out);
        if files.is_dir() {
            copy_tree(&files, &files_dir_of(&second.join(&name)), false)?;
        }
        prune(second, keep)?;
    }
    let deleted = prune(&folder, keep)?;
    tracing::info!(backup = %out.display(), deleted = deleted.len(), "scheduled backup written");
    Ok(out)
}

/// The scheduled backup job (schedule `core.backup`, daily at 03:30 in the
/// instance's time zone unless an administrator changes it).
pub const RUN: crate::jobs::JobSpec = crate::jobs::JobSpec {
    name: "core.backup.run",
    max_attempts: 3,
    backoff_secs: 600,
    timeout_secs: 3600,
    run: run_job,
};

fn run_job(st: crate::web::AppState, _ctx: crate::jobs::JobCtx) -> crate::jobs::JobFuture {
    Box::pin(async move {
        scheduled(&st.cfg, &st.db).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn retention_keeps_days_weeks_and_months() {
        // One backup a day at 03:00 for 400 days, newest first in names.
        let start = time::macros::datetime!(2025-10-17 03:00:00);
        let all: Vec<String> = (0..400)
            .map(|d| {
                let t = start + time::Duration::days(d);
                format!("shrooms-{:04}{:02}{:02}-030000.db", t.year(), t.month() as u8, t.day())
            })
            .collect();
        let kept = select_kept(&all, Retention { daily: 7, weekly: 4, monthly: 12 });
        // The last 7 days...
        for d in 393..400 {
            assert!(kept.contains(&all[d]), "day {d}");
        }
        // ...the newest of each of the last 4 weeks and 12 months (some overlap).
        assert!(kept.len() >= 12 && kept.len() <= 7 + 4 + 12, "{} kept: {kept:?}", kept.len());
        let months: std::collections::BTreeSet<&str> = kept.iter().map(|n| &n[8..14]).collect();
        assert_eq!(months.len(), 12, "{months:?}");
        assert!(!kept.contains(&all[0]), "the oldest goes");
    }

    #[test]
    fn retention_leaves_other_files_alone() {
        let v = names(&["pre-migration-20260101-000000-abc.db", "notes.txt", "shrooms-20261121-030000.db"]);
        let kept = select_kept(&v, Retention { daily: 1, weekly: 0, monthly: 0 });
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), ["shrooms-20261121-030000.db"]);
    }
}
