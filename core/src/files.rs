//! Files and photos attached to records of any module (a receipt on an
//! accounting entry, photos of a repair, a member's portrait).
//!
//! The bytes live in a [`FileStore`] (by default [`DiskStore`], under
//! `<data>/files/`); the `files` table holds the metadata: owner record,
//! name, sniffed content type, size, SHA-256, public flag. A module attaches
//! a file in one call:
//!
//! ```ignore
//! let info = files::store(&st, &ctx.who(), &cap, &Owner::new("repair", &repair_id), upload).await?;
//! ```
//!
//! Uploads are checked before anything is written: size limit
//! (`[files] max_upload_bytes`), type by magic bytes against an allow-list
//! (the name's extension is never trusted), the optional virus scanner
//! (`[files] scan_command`), and, for photos, a complete decode
//! ([`crate::images`]: metadata stripped, thumbnails and display renditions).
//!
//! Deleting a record: its module calls [`delete_for`] in the transaction that
//! deletes the record. The rows go at once; the blobs are removed by the job
//! `core.files.cleanup`, which deletes every stored blob without a row once
//! it is older than `[files] orphan_grace_minutes`.

use crate::audit::{self, Change, Who};
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{OrgId, Timestamp};
use crate::images::{self, RenditionFormat};
use crate::jobs::{self, JobCtx, JobFuture, JobSpec};
use crate::permissions::{CanRead, CanWrite};
use crate::web::AppState;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

// ---------- storage ----------

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A stored blob, as listed by [`FileStore::list`].
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub key: String,
    /// Last modification, UTC milliseconds.
    pub modified_ms: i64,
}

/// Where the bytes live. Keys are relative paths of `[A-Za-z0-9._-]`
/// segments separated by `/`. The disk store is the only implementation
/// today; an S3-compatible one needs these four operations and nothing else.
pub trait FileStore: Send + Sync {
    /// Writes a blob; a reader sees either nothing or all of it.
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()>;
    /// Reads a blob; `None` when it does not exist.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Removes a blob; removing a missing blob is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
    /// Every blob, for the orphan sweep.
    fn list(&self) -> StoreFuture<'_, Vec<BlobInfo>>;
}

/// Blobs as files under a folder (`<data>/files/`). Written to `tmp/` first
/// and renamed into place, so a crash never leaves half a file under a key.
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    pub fn new(root: impl Into<PathBuf>) -> DiskStore {
        DiskStore { root: root.into() }
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            });
        if !ok {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid blob key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

impl FileStore for DiskStore {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let path = self.path(key)?;
            let tmp_dir = self.root.join("tmp");
            tokio::fs::create_dir_all(&tmp_dir).await?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let tmp = tmp_dir.join(format!("{}.part", crate::crypto::random_token()));
            let written = async {
                let mut f = tokio::fs::File::create(&tmp).await?;
                f.write_all(bytes).await?;
                f.sync_all().await?;
                drop(f);
                tokio::fs::rename(&tmp, &path).await
            }
            .await;
            if written.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            written
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)?).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            // Remove the folders left empty, up to the root (errors mean "not empty").
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == self.root || tokio::fs::remove_dir(d).await.is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<BlobInfo>> {
        let root = self.root.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                if root.exists() {
                    walk(&root, &root, &mut out)?;
                }
                Ok(out)
            })
            .await
            .map_err(io::Error::other)?
        })
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<BlobInfo>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(root, &entry.path(), out)?;
        } else if ft.is_file() {
            let modified = entry.metadata()?.modified()?;
            let ms = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            let rel = entry.path().strip_prefix(root).map_err(io::Error::other)?.to_path_buf();
            let key =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
            out.push(BlobInfo { key, modified_ms: ms });
        }
    }
    Ok(())
}

/// The configured store: the data folder's `files/`.
pub fn file_store(cfg: &Config) -> Arc<dyn FileStore> {
    Arc::new(DiskStore::new(cfg.data.join("files")))
}

/// Where a file's blobs live: sharded by the random end of its id
/// (`ab/cd/<id>/original`), so no folder grows past a few thousand entries.
pub fn blob_key(id: &str, name: &str) -> String {
    let n = id.len();
    if n < 4 {
        return format!("short/{id}/{name}");
    }
    format!("{}/{}/{id}/{name}", &id[n - 2..], &id[n - 4..n - 2])
}

// ---------- type sniffing ----------

/// The kinds of file accepted, recognised by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Pdf,
    Ods,
    Odt,
    Docx,
    Xlsx,
    Text,
    Csv,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
            Kind::Pdf => "application/pdf",
            Kind::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Kind::Odt => "application/vnd.oasis.opendocument.text",
            Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Kind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Kind::Text => "text/plain; charset=utf-8",
            Kind::Csv => "text/csv; charset=utf-8",
        }
    }
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Jpeg => &["jpg", "jpeg"],
            Kind::Png => &["png"],
            Kind::Webp => &["webp"],
            Kind::Gif => &["gif"],
            Kind::Pdf => &["pdf"],
            Kind::Ods => &["ods"],
            Kind::Odt => &["odt"],
            Kind::Docx => &["docx"],
            Kind::Xlsx => &["xlsx"],
            Kind::Text => &["txt", "text", "md", "log"],
            Kind::Csv => &["csv"],
        }
    }
    pub fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Kind::Jpeg => Some(image::ImageFormat::Jpeg),
            Kind::Png => Some(image::ImageFormat::Png),
            Kind::Webp => Some(image::ImageFormat::WebP),
            Kind::Gif => Some(image::ImageFormat::Gif),
            _ => None,
        }
    }
}

const ACCEPTED: &str =
    "accepted are photos (JPEG, PNG, WebP, GIF), PDF, OpenDocument and Word/Excel documents, plain text and CSV";

/// Recognises a file by its first bytes. The name only chooses between
/// plain text and CSV, which are the same kind of content.
pub fn sniff(b: &[u8], name: &str) -> Result<Kind, String> {
    let refuse = |what: &str| Err(format!("This file is {what}, which is not accepted; {ACCEPTED}."));
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Kind::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Kind::Png);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Ok(Kind::Webp);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Ok(Kind::Gif);
    }
    if b.starts_with(b"%PDF-") {
        return Ok(Kind::Pdf);
    }
    if b.starts_with(b"PK\x03\x04") {
        return match zip_kind(b) {
            Some(k) => Ok(k),
            None => refuse("a ZIP archive"),
        };
    }
    if b.starts_with(b"MZ")
        || b.starts_with(b"\x7fELF")
        || b.starts_with(b"#!")
        || b.starts_with(&[0xCF, 0xFA, 0xED, 0xFE])
        || b.starts_with(&[0xCE, 0xFA, 0xED, 0xFE])
        || b.starts_with(&[0xCA, 0xFE, 0xBA, 0xBE])
    {
        return refuse("a program");
    }
    let text = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    if let Ok(s) = std::str::from_utf8(text) {
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0C')) {
            return refuse("binary data");
        }
        let start = s.trim_start();
        if start.starts_with('<') && start[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '!' || c == '?') {
            return refuse("a web page or XML document");
        }
        let csv = name.rsplit_once('.').is_some_and(|(_, e)| e.eq_ignore_ascii_case("csv"));
        return Ok(if csv { Kind::Csv } else { Kind::Text });
    }
    refuse("of an unknown type")
}

/// OpenDocument (first entry `mimetype`, stored) or Office Open XML (named parts).
fn zip_kind(b: &[u8]) -> Option<Kind> {
    if b.len() > 38 && &b[30..38] == b"mimetype" {
        let size = u32::from_le_bytes(b[18..22].try_into().ok()?) as usize;
        let extra = u16::from_le_bytes(b[28..30].try_into().ok()?) as usize;
        let start = 38 + extra;
        let mime = b.get(start..start + size)?;
        return match mime {
            b"application/vnd.oasis.opendocument.spreadsheet" => Some(Kind::Ods),
            b"application/vnd.oasis.opendocument.text" => Some(Kind::Odt),
            _ => None,
        };
    }
    let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    if has(b"[Content_Types].xml") {
        if has(b"word/document.xml") {
            return Some(Kind::Docx);
        }
        if has(b"xl/workbook.xml") {
            return Some(Kind::Xlsx);
        }
    }
    None
}

/// A file name safe to store and to send back: no folders, no control
/// characters, at most 120 characters, and an extension that matches the
/// content (`photo.png` that is a JPEG becomes `photo.png.jpg`).
pub fn safe_name(name: &str, kind: Kind) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut clean: String =
        base.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')).collect();
    clean = clean.trim().trim_start_matches('.').to_string();
    let ext_ok = clean
        .rsplit_once('.')
        .is_some_and(|(stem, e)| !stem.is_empty() && kind.extensions().iter().any(|k| k.eq_ignore_ascii_case(e)));
    let ext = kind.extensions()[0];
    let mut out = if clean.is_empty() {
        format!("file.{ext}")
    } else if ext_ok {
        clean
    } else {
        format!("{clean}.{ext}")
    };
    if out.chars().count() > 120 {
        let (stem, e) =
            out.rsplit_once('.').map(|(s, e)| (s.to_string(), e.to_string())).unwrap_or((out.clone(), String::new()));
        let keep = 119usize.saturating_sub(e.chars().count());
        out = format!("{}.{e}", stem.chars().take(keep).collect::<String>());
    }
    out
}

// ---------- metadata ----------

/// The record a file belongs to, in the module of the capability used.
#[derive(Debug, Clone)]
pub struct Owner {
    pub entity_type: String,
    pub entity_id: String,
}

impl Owner {
    pub fn new(entity_type: &str, entity_id: &str) -> Owner {
        Owner { entity_type: entity_type.to_string(), entity_id: entity_id.to_string() }
    }
}

/// What is uploaded.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Served to anyone who has the link, without signing in, with caching headers.
    pub public: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FileInfo {
    pub id: String,
    pub org_id: String,
    /// The module the record belongs to; reading the file needs read access to it.
    pub module: String,
    pub entity_type: String,
    pub entity_id: String,
    pub name: String,
    /// Recognised from the content, never from the name.
    pub content_type: String,
    /// Bytes of the stored original.
    pub size: i64,
    /// SHA-256 of the stored original (after metadata stripping), hex.
    pub sha256: String,
    pub public: bool,
    /// Pixels of an upright photo.
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// `original`, plus `thumb` and `display` for photos.
    pub variants: Vec<String>,
    pub created_at: String,
}

impl FileInfo {
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

const COLS: &str =
    "id, org_id, module, entity_type, entity_id, name, content_type, size, sha256, is_public, width, height, renditions, created_at";

fn from_row(r: &AnyRow) -> CoreResult<FileInfo> {
    let renditions: Vec<String> = serde_json::from_str(&r.try_get::<String, _>(12)?).unwrap_or_default();
    let mut variants = vec!["original".to_string()];
    variants.extend(renditions);
    Ok(FileInfo {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        module: r.try_get(2)?,
        entity_type: r.try_get(3)?,
        entity_id: r.try_get(4)?,
        name: r.try_get(5)?,
        content_type: r.try_get(6)?,
        size: r.try_get(7)?,
        sha256: r.try_get(8)?,
        public: r.try_get::<i64, _>(9)? != 0,
        width: r.try_get(10)?,
        height: r.try_get(11)?,
        variants,
        created_at: Timestamp(r.try_get(13)?).rfc3339(),
    })
}

fn file_error(message: impl Into<String>) -> CoreError {
    CoreError::Validation(vec![FieldError::new("file", message)])
}

pub fn too_large(max: usize) -> CoreError {
    CoreError::PayloadTooLarge(format!("The file is too large: at most {} are accepted.", human_size(max)))
}

fn human_size(n: usize) -> String {
    if n >= 1024 * 1024 && n % (1024 * 1024) == 0 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn valid_owner(owner: &Owner) -> CoreResult<()> {
    let mut errors = Vec::new();
    let t = &owner.entity_type;
    if t.is_empty()
        || t.len() > 64
        || !t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        errors.push(FieldError::new("entity_type", "Use 1 to 64 lowercase letters, digits, . _ or -."));
    }
    let id = &owner.entity_id;
    if id.is_empty() || id.len() > 100 || id.chars().any(|c| c.is_control() || c == '/') {
        errors.push(FieldError::new("entity_id", "Give the id of the record (1 to 100 characters, no /)."));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Validation(errors))
    }
}

/// Photos are decoded and scaled two at a time per process at most: each
/// 12-megapixel photo holds 36 MB of pixels while it is processed.
static IMAGE_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Stores a file for a record of the capability's module: checks it, strips
/// photo metadata, makes renditions, writes the blobs, then the row and its
/// audit entry in one transaction.
pub async fn store(st: &AppState, who: &Who, cap: &CanWrite, owner: &Owner, upload: Upload) -> CoreResult<FileInfo> {
    store_with(st, who, cap, owner, upload, false).await
}

/// Like [`store`], for a request that must answer fast (a lecture hall of
/// people sending a photo each): the photo is checked (decoded whole) and
/// stripped of its metadata now, and its renditions are made by the job
/// `core.files.renditions` right after. Until then its variants are served
/// as the original.
pub async fn store_deferred(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    owner: &Owner,
    upload: Upload,
) -> CoreResult<FileInfo> {
    store_with(st, who, cap, owner, upload, true).await
}

async fn store_with(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    owner: &Owner,
    upload: Upload,
    defer: bool,
) -> CoreResult<FileInfo> {
    let fc = &st.cfg.files;
    valid_owner(owner)?;
    if upload.bytes.len() > fc.max_upload_bytes {
        return Err(too_large(fc.max_upload_bytes));
    }
    if upload.bytes.is_empty() {
        return Err(file_error("The file is empty."));
    }
    if cap.module() == "core" {
        // The core knows its own records: files attach to people.
        match owner.entity_type.as_str() {
            "person" => {
                crate::people::get(&st.db, &cap.as_read(), &owner.entity_id).await?;
            }
            _ => return Err(CoreError::validation("entity_type", "The core attaches files to `person` records only.")),
        }
    }
    let kind = sniff(&upload.bytes, &upload.name).map_err(file_error)?;
    let name = safe_name(&upload.name, kind);
    if let Some(cmd) = &fc.scan_command {
        scan(&st.cfg, cmd, &upload.bytes).await?;
    }
    let (original, width, height, renditions) = match kind.image_format() {
        Some(format) => {
            let _slot = IMAGE_SLOTS.acquire().await.map_err(|e| CoreError::Internal(e.to_string()))?;
            let bytes = upload.bytes;
            let p = tokio::task::spawn_blocking(move || {
                if defer {
                    images::check(format, &bytes)
                } else {
                    images::process(format, &bytes)
                }
            })
            .await
            .map_err(|e| CoreError::Internal(format!("image task: {e}")))?
            .map_err(|e| match e {
                images::ImageError::Encode(m) => CoreError::Internal(format!("encoding a rendition: {m}")),
                other => file_error(other.to_string()),
            })?;
            (p.original, Some(p.width as i64), Some(p.height as i64), p.renditions)
        }
        None => (upload.bytes, None, None, Vec::new()),
    };
    let id = uuid::Uuid::now_v7().to_string();
    let sha = crate::crypto::sha256_hex(&original);
    let size = original.len() as i64;
    let store = file_store(&st.cfg);
    let mut keys = vec![blob_key(&id, "original")];
    let mut written = Vec::new();
    let mut put = store.put(&keys[0], &original).await;
    if put.is_ok() {
        written.push(keys[0].clone());
        for r in &renditions {
            let key = blob_key(&id, &format!("{}.{}", r.variant, r.format.ext()));
            put = store.put(&key, &r.bytes).await;
            if put.is_err() {
                break;
            }
            written.push(key.clone());
            keys.push(key);
        }
    }
    if let Err(e) = put {
        remove_blobs(&*store, &written).await;
        return Err(CoreError::Internal(format!("writing file {id}: {e}")));
    }
    let mut variant_names: Vec<String> = Vec::new();
    for r in &renditions {
        if !variant_names.iter().any(|v| v == r.variant) {
            variant_names.push(r.variant.to_string());
        }
    }
    let saved = async {
        let mut tx = st.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO files ({COLS}, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&id)
        .bind(cap.org().to_string())
        .bind(cap.module())
        .bind(&owner.entity_type)
        .bind(&owner.entity_id)
        .bind(&name)
        .bind(kind.content_type())
        .bind(size)
        .bind(&sha)
        .bind(upload.public as i64)
        .bind(width)
        .bind(height)
        .bind(serde_json::to_string(&variant_names).unwrap_or_else(|_| "[]".into()))
        .bind(Timestamp::now().0)
        .bind(who.account.map(|a| a.to_string()))
        .execute(tx.conn())
        .await?;
        let info = from_row(
            &sqlx::query(&format!("SELECT {COLS} FROM files WHERE id = $1")).bind(&id).fetch_one(tx.conn()).await?,
        )?;
        audit::record(
            &mut tx,
            who,
            Change {
                org: Some(cap.org()),
                action: "file.upload",
                entity_type: "file",
                entity_id: id.clone(),
                before: None,
                after: serde_json::to_value(&info).ok(),
            },
        )
        .await?;
        // The record's timeline shows the attachment.
        let record = crate::module::RecordRef {
            entity_type: owner.entity_type.clone(),
            entity_id: owner.entity_id.clone(),
            title: String::new(),
            path: String::new(),
        };
        crate::timeline::event(
            &mut tx,
            who,
            cap.org(),
            &record,
            &format!("📎 {}", crate::markdown::escape_text(&info.name)),
            serde_json::json!({"file": info.id, "name": info.name}),
        )
        .await?;
        if defer && kind.image_format().is_some() {
            crate::jobs::enqueue(&mut tx, &RENDITIONS, Some(cap.org()), serde_json::json!({"file": info.id}), None, 0).await?;
        }
        tx.commit().await?;
        Ok::<_, CoreError>(info)
    }
    .await;
    if saved.is_err() {
        remove_blobs(&*store, &written).await;
    }
    saved
}

async fn remove_blobs(store: &dyn FileStore, keys: &[String]) {
    for k in keys {
        if let Err(e) = store.delete(k).await {
            tracing::warn!(key = %k, error = %e, "could not remove a blob; the cleanup job will");
        }
    }
}

/// Runs the configured virus scanner on a copy of the upload; a non-zero
/// exit refuses the file. A scanner that cannot run refuses it too.
async fn scan(cfg: &Config, command: &str, bytes: &[u8]) -> CoreResult<()> {
    let dir = cfg.data.join("files").join("tmp");
    tokio::fs::create_dir_all(&dir).await.map_err(|e| CoreError::Internal(format!("scan folder: {e}")))?;
    let path = dir.join(format!("scan-{}", crate::crypto::random_token()));
    tokio::fs::write(&path, bytes).await.map_err(|e| CoreError::Internal(format!("scan copy: {e}")))?;
    let mut parts = command.split_whitespace().map(str::to_string);
    let program = parts.next().unwrap_or_default();
    let args: Vec<String> = parts.collect();
    let p = path.clone();
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(program).args(args).arg(&p).output())
        .await
        .map_err(|e| CoreError::Internal(format!("scan task: {e}")));
    let _ = tokio::fs::remove_file(&path).await;
    match out? {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            tracing::warn!(status = %o.status, output = %String::from_utf8_lossy(&o.stdout).trim(), "virus scanner refused an upload");
            Err(file_error("The virus scanner refused this file."))
        }
        Err(e) => Err(CoreError::Internal(format!("running the virus scanner `{command}`: {e}"))),
    }
}

/// The files of one record, oldest first.
pub async fn list_for(db: &Db, cap: &CanRead, entity_type: &str, entity_id: &str) -> CoreResult<Vec<FileInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM files WHERE org_id = $1 AND module = $2 AND entity_type = $3 AND entity_id = $4 ORDER BY id"
    ))
    .bind(cap.org().to_string())
    .bind(cap.module())
    .bind(entity_type)
    .bind(entity_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The public files of one kind of record of a module in an organisation
/// (a club's gallery), newest first. Only files uploaded as public are
/// returned, so no capability is needed: they are served to anyone anyway.
pub async fn public_of(db: &Db, org: OrgId, module: &str, entity_type: &str, limit: i64) -> CoreResult<Vec<FileInfo>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM files WHERE org_id = $1 AND module = $2 AND entity_type = $3 AND is_public = 1 \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(org.to_string())
    .bind(module)
    .bind(entity_type)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The module that owns a file of an organisation: which capability reading it needs.
pub async fn owner_module(db: &Db, org: OrgId, id: &str) -> CoreResult<Option<String>> {
    Ok(sqlx::query("SELECT module FROM files WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<FileInfo> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM files WHERE org_id = $1 AND module = $2 AND id = $3"))
        .bind(cap.org().to_string())
        .bind(cap.module())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    from_row(&row)
}

/// A public file, for anyone: no capability.
pub async fn get_public(db: &Db, id: &str) -> CoreResult<FileInfo> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM files WHERE id = $1 AND is_public = 1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    from_row(&row)
}

/// Which bytes of a file to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Thumb,
    Display,
}

impl Variant {
    pub fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "original" => Variant::Original,
            "thumb" => Variant::Thumb,
            "display" => Variant::Display,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Thumb => "thumb",
            Variant::Display => "display",
        }
    }
}

/// The bytes and content type of one variant of a file the caller may read.
pub async fn content(
    cfg: &Config,
    info: &FileInfo,
    variant: Variant,
    format: RenditionFormat,
) -> CoreResult<(Vec<u8>, String)> {
    let (key, ct) = match variant {
        Variant::Original => (blob_key(&info.id, "original"), info.content_type.clone()),
        v => {
            if !info.variants.iter().any(|x| x == v.as_str()) {
                return Err(CoreError::NotFound);
            }
            (blob_key(&info.id, &format!("{}.{}", v.as_str(), format.ext())), format.content_type().to_string())
        }
    };
    match file_store(cfg).get(&key).await {
        Ok(Some(b)) => Ok((b, ct)),
        Ok(None) => {
            tracing::warn!(file = %info.id, key = %key, "file row without its blob");
            Err(CoreError::NotFound)
        }
        Err(e) => Err(CoreError::Internal(format!("reading {key}: {e}"))),
    }
}

/// Deletes one file: the row and its audit entry now, the blobs right after
/// (or by the cleanup job if that fails).
pub async fn delete(st: &AppState, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<()> {
    let mut tx = st.db.begin().await?;
    let row = sqlx::query(&format!("SELECT {COLS} FROM files WHERE org_id = $1 AND module = $2 AND id = $3"))
        .bind(cap.org().to_string())
        .bind(cap.module())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    let before = from_row(&row)?;
    remove_rows(&mut tx, who, cap, std::slice::from_ref(&before)).await?;
    tx.commit().await?;
    let store = file_store(&st.cfg);
    let mut keys = vec![blob_key(id, "original")];
    for v in before.variants.iter().filter(|v| *v != "original") {
        for f in [RenditionFormat::Webp, RenditionFormat::Jpeg] {
            keys.push(blob_key(id, &format!("{v}.{}", f.ext())));
        }
    }
    remove_blobs(&*store, &keys).await;
    Ok(())
}

/// Deletes the files of a record, in the caller's transaction: what a module
/// calls when it deletes the record. The blobs are removed by the cleanup job.
pub async fn delete_for(tx: &mut Tx, who: &Who, cap: &CanWrite, entity_type: &str, entity_id: &str) -> CoreResult<u64> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM files WHERE org_id = $1 AND module = $2 AND entity_type = $3 AND entity_id = $4"
    ))
    .bind(cap.org().to_string())
    .bind(cap.module())
    .bind(entity_type)
    .bind(entity_id)
    .fetch_all(tx.conn())
    .await?;
    let files = rows.iter().map(from_row).collect::<CoreResult<Vec<_>>>()?;
    remove_rows(tx, who, cap, &files).await?;
    Ok(files.len() as u64)
}

async fn remove_rows(tx: &mut Tx, who: &Who, cap: &CanWrite, files: &[FileInfo]) -> CoreResult<()> {
    for f in files {
        sqlx::query("DELETE FROM files WHERE org_id = $1 AND id = $2")
            .bind(cap.org().to_string())
            .bind(&f.id)
            .execute(tx.conn())
            .await?;
        audit::record(
            tx,
            who,
            Change {
                org: Some(cap.org()),
                action: "file.delete",
                entity_type: "file",
                entity_id: f.id.clone(),
                before: serde_json::to_value(f).ok(),
                after: None,
            },
        )
        .await?;
        let record = crate::module::RecordRef {
            entity_type: f.entity_type.clone(),
            entity_id: f.entity_id.clone(),
            title: String::new(),
            path: String::new(),
        };
        crate::timeline::event(
            tx,
            who,
            cap.org(),
            &record,
            &format!("🗑 ~~{}~~", crate::markdown::escape_text(&f.name)),
            serde_json::json!({"file_deleted": f.id, "name": f.name}),
        )
        .await?;
    }
    if !files.is_empty() {
        schedule_cleanup(tx, 5 * 60).await?;
    }
    Ok(())
}

// ---------- orphan cleanup ----------

/// The job that removes blobs without metadata. Its time limit stays at the
/// mail job's 90 s: the longest limit of all jobs sets every job's lease.
/// Makes the renditions of a photo stored with [`store_deferred`]; idempotent.
pub const RENDITIONS: JobSpec =
    JobSpec { name: "core.files.renditions", max_attempts: 3, backoff_secs: 10, timeout_secs: 60, run: run_renditions };

fn run_renditions(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let id = ctx.payload["file"].as_str().unwrap_or("").to_string();
        let Some(r) = sqlx::query(&format!("SELECT {COLS} FROM files WHERE id = $1"))
            .bind(&id)
            .fetch_optional(st.db.pool())
            .await?
        else {
            return Ok(()); // deleted meanwhile
        };
        let info = from_row(&r)?;
        let store = file_store(&st.cfg);
        let Some(original) =
            store.get(&blob_key(&id, "original")).await.map_err(|e| anyhow::anyhow!("reading {id}: {e}"))?
        else {
            return Ok(());
        };
        // The format as the upload recognised it: from the bytes.
        let Some(format) = sniff(&original, &info.name).ok().and_then(|k| k.image_format()) else {
            return Ok(());
        };
        let _slot = IMAGE_SLOTS.acquire().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let p = tokio::task::spawn_blocking(move || images::process(format, &original))
            .await
            .map_err(|e| anyhow::anyhow!("image task: {e}"))?
            .map_err(|e| anyhow::anyhow!("renditions of {id}: {e}"))?;
        let mut names: Vec<String> = Vec::new();
        for r in &p.renditions {
            store
                .put(&blob_key(&id, &format!("{}.{}", r.variant, r.format.ext())), &r.bytes)
                .await
                .map_err(|e| anyhow::anyhow!("writing a rendition of {id}: {e}"))?;
            if !names.iter().any(|v| v == r.variant) {
                names.push(r.variant.to_string());
            }
        }
        sqlx::query("UPDATE files SET renditions = $1 WHERE id = $2")
            .bind(serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()))
            .bind(&id)
            .execute(st.db.pool())
            .await?;
        st.db.wrote();
        Ok(())
    })
}

pub const CLEANUP: JobSpec =
    JobSpec { name: "core.files.cleanup", max_attempts: 5, backoff_secs: 60, timeout_secs: 90, run: run_cleanup };

/// Enqueues a sweep at the end of the current `bucket_secs` slot: every
/// deletion in the same slot shares one run.
pub async fn schedule_cleanup(tx: &mut Tx, bucket_secs: i64) -> CoreResult<String> {
    let now = Timestamp::now().0;
    let bucket = bucket_secs.max(1) * 1000;
    let run_at = (now / bucket + 1) * bucket;
    let delay = (run_at - now + 999) / 1000;
    jobs::enqueue(tx, &CLEANUP, None, serde_json::json!({}), Some(&format!("core.files.cleanup:{run_at}")), delay).await
}

fn run_cleanup(st: AppState, _ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let grace = std::time::Duration::from_secs(st.cfg.files.orphan_grace_minutes.max(0) as u64 * 60);
        let report = sweep(&st, grace).await?;
        if report.removed > 0 {
            tracing::info!(removed = report.removed, kept = report.kept, "orphaned file blobs removed");
        }
        if report.kept > 0 {
            // Files exist: look again tomorrow (orphans left by a crash mid-upload).
            let mut tx = st.db.begin().await?;
            schedule_cleanup(&mut tx, 24 * 3600).await?;
            tx.commit().await?;
        }
        Ok(())
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Blobs removed.
    pub removed: usize,
    /// Blobs kept (their file exists, or they are younger than the grace period).
    pub kept: usize,
}

/// Removes every blob older than `grace` whose file has no metadata row
/// (deleted files, uploads that failed or crashed before their row was written).
pub async fn sweep(st: &AppState, grace: std::time::Duration) -> CoreResult<SweepReport> {
    let store = file_store(&st.cfg);
    let blobs = store.list().await.map_err(|e| CoreError::Internal(format!("listing stored files: {e}")))?;
    let cutoff = Timestamp::now().0 - grace.as_millis() as i64;
    // The file id is the third segment of a key (ab/cd/<id>/<variant>).
    let id_of = |k: &str| -> Option<String> {
        let parts: Vec<&str> = k.split('/').collect();
        (parts.len() == 4 && uuid::Uuid::parse_str(parts[2]).is_ok()).then(|| parts[2].to_string())
    };
    let mut ids: Vec<String> = blobs.iter().filter_map(|b| id_of(&b.key)).collect();
    ids.sort();
    ids.dedup();
    let mut existing = std::collections::HashSet::new();
    for chunk in ids.chunks(200) {
        let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM files WHERE id IN ({})", list.join(", "));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(st.db.pool()).await? {
            existing.insert(r.try_get::<String, _>(0)?);
        }
    }
    let mut report = SweepReport::default();
    for b in &blobs {
        let orphan = match id_of(&b.key) {
            Some(id) => !existing.contains(&id),
            None => true, // leftovers of interrupted writes and scans in tmp/
        };
        if orphan && b.modified_ms <= cutoff {
            store.delete(&b.key).await.map_err(|e| CoreError::Internal(format!("removing {}: {e}", b.key)))?;
            report.removed += 1;
        } else {
            report.kept += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_trusts_content_not_names() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest", "x.pdf"), Ok(Kind::Jpeg));
        assert_eq!(sniff(b"%PDF-1.7\n", "scan.jpg"), Ok(Kind::Pdf));
        assert!(sniff(b"MZ\x90\x00", "photo.jpg").unwrap_err().contains("a program"));
        assert!(sniff(b"\x7fELF\x02", "photo.jpg").is_err());
        assert!(sniff(b"#!/bin/sh\nrm -rf /\n", "notes.txt").is_err());
        assert!(sniff(b"  <!DOCTYPE html><script>x</script>", "photo.jpg").unwrap_err().contains("web page"));
        assert!(sniff(b"<svg onload=alert(1)>", "logo.txt").is_err());
        assert_eq!(sniff("name;amount\nCafé;3\n".as_bytes(), "receipts.CSV"), Ok(Kind::Csv));
        assert_eq!(sniff(b"a < b\n", "notes"), Ok(Kind::Text));
        assert!(sniff(b"\x00\x01\x02", "x.txt").is_err());
        assert!(sniff(b"PK\x03\x04garbage", "x.docx").unwrap_err().contains("ZIP"));
    }

    #[test]
    fn opendocument_is_recognised_by_its_mimetype_entry() {
        let ods = crate::ods::spreadsheet("s", &["a"], &[vec!["1".to_string()]]);
        assert_eq!(sniff(&ods, "x.zip"), Ok(Kind::Ods));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name("../../etc/passwd", Kind::Text), "passwd.txt");
        assert_eq!(safe_name("C:\\Users\\a\\Reçu 12.JPG", Kind::Jpeg), "Reçu 12.JPG");
        assert_eq!(safe_name("photo.png", Kind::Jpeg), "photo.png.jpg");
        assert_eq!(safe_name("", Kind::Pdf), "file.pdf");
        assert_eq!(safe_name(".htaccess", Kind::Text), "htaccess.txt");
        assert_eq!(safe_name("a\"b\r\n.pdf", Kind::Pdf), "ab.pdf");
        assert!(safe_name(&"x".repeat(500), Kind::Pdf).chars().count() <= 120);
    }

    #[test]
    fn keys_are_sharded_and_checked() {
        let id = "0193a1b2-0000-7000-8000-00000000abcd";
        assert_eq!(blob_key(id, "original"), format!("cd/ab/{id}/original"));
        let s = DiskStore::new("/tmp/x");
        assert!(s.path("../etc/passwd").is_err());
        assert!(s.path("a//b").is_err());
        assert!(s.path("cd/ab/x/thumb.webp").is_ok());
    }
}
