//! Imports of records from CSV and ODS files, a platform service any module
//! uses by implementing [`Importer`] (its fields, a row check, a batch
//! writer) and returning it from `Module::importers()`.
//!
//! The flow is the same for every kind of record:
//!
//! 1. **stage**: the uploaded file is read ([`crate::tabular`]), its columns
//!    are matched to the importer's fields by name and synonyms, every row is
//!    checked, and the whole is stored in `imports` (file included, so any
//!    replica can run it);
//! 2. **preview / mapping**: the first rows as they would be imported and
//!    every bad row with its line, column and reason; changing the mapping
//!    checks every row again;
//! 3. **commit**: a background job (`core.import.run`) checks every row once
//!    more and writes them all in ONE transaction with one audit entry: a
//!    single bad row and nothing is imported, the report is kept. Progress is
//!    published while it runs (the `imports` row on PostgreSQL, memory of
//!    this process on SQLite, whose one writer is busy with the import).
//!
//! Duplicates of the importer's unique field (email for people), within the
//! file or with existing records, are bad rows, or skipped when the import
//! says `skip_duplicates`.

use crate::audit::{self, Change, Who};
use crate::db::{Backend, Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{AccountId, OrgId, Timestamp};
use crate::jobs::{JobCtx, JobFuture, JobSpec};
use crate::module::Modules;
use crate::permissions::{CanRead, CanWrite};
use crate::tabular::{self, Table};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type ImportFuture<'a, T> = Pin<Box<dyn Future<Output = CoreResult<T>> + Send + 'a>>;

/// How a field's text is read before the importer's own check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Trimmed text.
    Text,
    /// An email address, lowercased (empty stays empty).
    Email,
    /// A date written `31/12/2024`, `31-12-2024`, `31.12.2024` or
    /// `2024-12-31` (what ODS cells hold), stored as `2024-12-31`.
    Date,
}

/// A field of the records an importer writes.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The key in mappings and in [`Record::get`]: `family_name`.
    pub key: &'static str,
    /// Translation key of its label.
    pub label_key: &'static str,
    pub kind: FieldKind,
    /// A row without a value for it is a bad row.
    pub required: bool,
    /// Column names that mean this field, in any case, with or without
    /// accents (`Nom`, `last name`, `nom de famille`).
    pub synonyms: &'static [&'static str],
}

/// One row of the file mapped to an importer's fields.
#[derive(Clone, Debug)]
pub struct Record {
    /// The line (CSV) or sheet row (ODS) it comes from.
    pub line: usize,
    fields: &'static [Field],
    values: Vec<String>,
}

impl Record {
    /// The value of a field (trimmed; empty when absent or unmapped).
    pub fn get(&self, key: &str) -> &str {
        self.fields.iter().position(|f| f.key == key).map(|i| self.values[i].as_str()).unwrap_or("")
    }
    /// Replaces a value by its normalised form (what will be stored).
    pub fn set(&mut self, key: &str, value: String) {
        if let Some(i) = self.fields.iter().position(|f| f.key == key) {
            self.values[i] = value;
        }
    }
    /// A value, `None` when empty.
    pub fn opt(&self, key: &str) -> Option<String> {
        Some(self.get(key)).filter(|v| !v.is_empty()).map(str::to_string)
    }
}

/// What a module implements to make its records importable.
pub trait Importer: Send + Sync + 'static {
    /// Unique among all modules; the module id as prefix except for the
    /// core: `people`, `members.memberships`.
    fn kind(&self) -> &'static str;
    /// The module whose write permission an import needs.
    fn module(&self) -> &'static str;
    /// Translation key of what is imported ("People").
    fn label_key(&self) -> &'static str;
    fn fields(&self) -> &'static [Field];
    /// The field whose value must not repeat, in the file or among existing records.
    fn unique_field(&self) -> Option<&'static str> {
        None
    }
    /// The values of the unique field already used in the organisation.
    fn existing<'a>(&'a self, _db: &'a Db, _cap: &'a CanRead) -> ImportFuture<'a, HashSet<String>> {
        Box::pin(async { Ok(HashSet::new()) })
    }
    /// Checks one row (required fields and field kinds are already checked)
    /// and normalises its values with [`Record::set`]; errors name fields.
    fn check(&self, record: &mut Record) -> Vec<FieldError>;
    /// [`Importer::check`] with the values [`Importer::existing`] returned:
    /// an importer without a unique field may put there what its checks
    /// look up (the names of the organisation's membership types).
    fn check_with(&self, record: &mut Record, _existing: &HashSet<String>) -> Vec<FieldError> {
        self.check(record)
    }
    /// Writes good rows, called in batches inside the import's one
    /// transaction; the import records the audit entry.
    fn write<'a>(&'a self, tx: &'a mut Tx, cap: &'a CanWrite, rows: &'a [Record]) -> ImportFuture<'a, ()>;
}

// ---------- the people importer ----------

/// People of the directory: names, email (unique), phone.
pub struct PeopleImporter;

const PEOPLE_FIELDS: &[Field] = &[
    Field {
        key: "given_name",
        label_key: "field.given_name",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["prénom", "prenom", "prénoms", "first name", "firstname", "given name", "forename", "first"],
    },
    Field {
        key: "family_name",
        label_key: "field.family_name",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["nom", "nom de famille", "last name", "lastname", "surname", "family name", "name", "last"],
    },
    Field {
        key: "email",
        label_key: "field.email",
        kind: FieldKind::Email,
        required: false,
        synonyms: &["e-mail", "courriel", "mail", "adresse e-mail", "adresse email", "adresse mail", "email address"],
    },
    Field {
        key: "phone",
        label_key: "field.phone",
        kind: FieldKind::Text,
        required: false,
        synonyms: &[
            "téléphone",
            "telephone",
            "tél",
            "tel",
            "portable",
            "mobile",
            "gsm",
            "phone number",
            "numéro de téléphone",
            "telephone mobile",
        ],
    },
];

impl Importer for PeopleImporter {
    fn kind(&self) -> &'static str {
        "people"
    }
    fn module(&self) -> &'static str {
        "core"
    }
    fn label_key(&self) -> &'static str {
        "people.title"
    }
    fn fields(&self) -> &'static [Field] {
        PEOPLE_FIELDS
    }
    fn unique_field(&self) -> Option<&'static str> {
        Some("email")
    }
    fn existing<'a>(&'a self, db: &'a Db, cap: &'a CanRead) -> ImportFuture<'a, HashSet<String>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT email FROM people WHERE org_id = $1 AND email IS NOT NULL")
                .bind(cap.org().to_string())
                .fetch_all(db.pool())
                .await?;
            rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?.to_lowercase())).collect()
        })
    }
    fn check(&self, r: &mut Record) -> Vec<FieldError> {
        let input = crate::people::PersonInput {
            given_name: r.opt("given_name"),
            family_name: r.opt("family_name"),
            email: r.opt("email"),
            phone: r.opt("phone"),
            notes: None,
            custom: None,
        };
        match crate::people::check_import(&input) {
            Ok((given, family, email, phone)) => {
                r.set("given_name", given);
                r.set("family_name", family);
                r.set("email", email.unwrap_or_default());
                r.set("phone", phone.unwrap_or_default());
                Vec::new()
            }
            Err(errors) => errors,
        }
    }
    fn write<'a>(&'a self, tx: &'a mut Tx, cap: &'a CanWrite, rows: &'a [Record]) -> ImportFuture<'a, ()> {
        Box::pin(async move {
            let people: Vec<_> = rows
                .iter()
                .map(|r| {
                    (r.get("given_name").to_string(), r.get("family_name").to_string(), r.opt("email"), r.opt("phone"))
                })
                .collect();
            crate::people::insert_bulk(tx, cap, &people).await?;
            Ok(())
        })
    }
}

// ---------- mapping and checking ----------

/// Folds a column name or synonym for comparison: `Adresse E-mail` → `adresse e mail`.
fn name_key(s: &str) -> String {
    crate::people::fold(&s.replace('_', " ")).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Matches columns to fields: by the field's key, then its synonyms; each
/// column serves one field at most.
pub fn auto_mapping(fields: &[Field], columns: &[String]) -> Vec<Option<usize>> {
    let cols: Vec<String> = columns.iter().map(|c| name_key(c)).collect();
    let mut used = vec![false; cols.len()];
    let mut out = vec![None; fields.len()];
    for (fi, f) in fields.iter().enumerate() {
        let mut names = vec![name_key(f.key)];
        names.extend(f.synonyms.iter().map(|s| name_key(s)));
        if let Some(ci) = names.iter().find_map(|n| (0..cols.len()).find(|&ci| !used[ci] && cols[ci] == *n)) {
            used[ci] = true;
            out[fi] = Some(ci);
        }
    }
    out
}

/// Reads a date as people type it; `None` when it is not a real date.
pub fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    let parts: Vec<&str> = s.split(['/', '-', '.']).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (y, m, d) = if parts[0].len() == 4 { (parts[0], parts[1], parts[2]) } else { (parts[2], parts[1], parts[0]) };
    if y.len() != 4 {
        return None;
    }
    let (y, m, d): (i32, u8, u8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    Some(format!("{:04}-{:02}-{:02}", date.year(), date.month() as u8, date.day()))
}

/// A bad row: where it is and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowError {
    /// Line of the CSV file or row of the sheet (1 is the header).
    pub line: usize,
    /// The file's column, when the error is about one.
    pub column: Option<String>,
    /// The importer's field.
    pub field: String,
    pub message: String,
}

/// One row as it would be imported, for the preview.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreviewRow {
    pub line: usize,
    /// Values in the order of the importer's fields.
    pub values: Vec<String>,
    pub ok: bool,
}

/// The outcome of checking every row.
pub struct Checked {
    pub good: Vec<Record>,
    pub errors: Vec<RowError>,
    pub skipped: usize,
    pub preview: Vec<PreviewRow>,
}

pub const PREVIEW_ROWS: usize = 20;

/// Checks every row of a table under a mapping (one entry per field).
pub fn check_all(
    importer: &dyn Importer,
    table: &Table,
    mapping: &[Option<usize>],
    existing: &HashSet<String>,
    skip_duplicates: bool,
) -> Checked {
    let fields = importer.fields();
    let column_of = |key: &str| -> Option<String> {
        let fi = fields.iter().position(|f| f.key == key)?;
        mapping.get(fi).copied().flatten().and_then(|ci| table.columns.get(ci).cloned())
    };
    let mut errors = Vec::new();
    for (fi, f) in fields.iter().enumerate() {
        if f.required && mapping.get(fi).copied().flatten().is_none() {
            errors.push(RowError {
                line: 0,
                column: None,
                field: f.key.into(),
                message: "No column is mapped to this required field.".into(),
            });
        }
    }
    let unique = importer.unique_field();
    let mut seen: HashSet<String> = HashSet::new();
    let mut good = Vec::with_capacity(table.rows.len());
    let mut preview = Vec::new();
    let mut skipped = 0;
    for row in &table.rows {
        let values = (0..fields.len())
            .map(|fi| match mapping.get(fi).copied().flatten() {
                Some(ci) => Table::cell(row, ci).trim().to_string(),
                None => String::new(),
            })
            .collect();
        let mut rec = Record { line: row.line, fields, values };
        let mut errs: Vec<FieldError> = Vec::new();
        for (fi, f) in fields.iter().enumerate() {
            let v = &rec.values[fi];
            if v.is_empty() {
                if f.required {
                    errs.push(FieldError::new(f.key, "This value is required."));
                }
                continue;
            }
            match f.kind {
                FieldKind::Text => {}
                FieldKind::Email => match crate::identity::normalize_email(v) {
                    Ok(e) => rec.values[fi] = e,
                    Err(e) => errs.push(FieldError::new(f.key, &e.message)),
                },
                FieldKind::Date => match parse_date(v) {
                    Some(d) => rec.values[fi] = d,
                    None => errs.push(FieldError::new(f.key, "Write the date like 31/12/2024 or 2024-12-31.")),
                },
            }
        }
        if errs.is_empty() {
            errs = importer.check_with(&mut rec, existing);
        }
        let mut skip = false;
        if errs.is_empty() {
            if let Some(u) = unique {
                let v = rec.get(u).to_lowercase();
                if !v.is_empty() {
                    if seen.contains(&v) {
                        if skip_duplicates {
                            skip = true;
                        } else {
                            errs.push(FieldError::new(u, "This value is already on an earlier line of the file."));
                        }
                    } else if existing.contains(&v) {
                        if skip_duplicates {
                            skip = true;
                        } else {
                            errs.push(FieldError::new(u, "A record with this value already exists."));
                        }
                    }
                    seen.insert(v);
                }
            }
        }
        if preview.len() < PREVIEW_ROWS {
            preview.push(PreviewRow { line: rec.line, values: rec.values.clone(), ok: errs.is_empty() && !skip });
        }
        if skip {
            skipped += 1;
        } else if errs.is_empty() {
            good.push(rec);
        } else {
            for e in errs {
                errors.push(RowError {
                    line: row.line,
                    column: column_of(&e.field),
                    field: e.field,
                    message: e.message,
                });
            }
        }
    }
    Checked { good, errors, skipped, preview }
}

// ---------- stored imports ----------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FieldInfo {
    pub key: String,
    /// Translation key of the label.
    pub label_key: String,
    pub required: bool,
}

/// An import as the API and the pages show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    pub id: String,
    pub kind: String,
    /// `staged` (checked, waiting for a commit), `queued`, `running`, `done`
    /// or `failed` (nothing was imported; see `errors` and `message`).
    pub status: String,
    pub file_name: String,
    /// What the file was read as: `csv (;, utf-8)`, `ods`.
    pub file_format: String,
    /// The file's column names (its header row).
    pub columns: Vec<String>,
    pub fields: Vec<FieldInfo>,
    /// Field key → the column it is read from (absent: not imported).
    pub mapping: BTreeMap<String, String>,
    pub skip_duplicates: bool,
    /// Rows of data in the file.
    pub rows_total: i64,
    /// Rows written so far (while running) or imported (when done).
    pub rows_done: i64,
    /// Duplicates left out (with `skip_duplicates`).
    pub rows_skipped: i64,
    /// Number of problems; the import can be committed only when it is 0.
    pub error_count: i64,
    /// Every bad row with its reason (line 0: a problem of the mapping).
    pub errors: Vec<RowError>,
    /// The first rows as they would be imported.
    pub preview: Vec<PreviewRow>,
    /// Why a run failed, when it was not because of bad rows.
    pub message: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Rows written by the imports this process is running now. The SQLite
/// writer is held by the running import, so its progress cannot be written
/// to the database before the end; readers of this process see it here.
static LIVE: std::sync::Mutex<BTreeMap<String, i64>> = std::sync::Mutex::new(BTreeMap::new());

fn live_set(id: &str, done: Option<i64>) {
    if let Ok(mut m) = LIVE.lock() {
        match done {
            Some(n) => m.insert(id.to_string(), n),
            None => m.remove(id),
        };
    }
}

fn live_get(id: &str) -> Option<i64> {
    LIVE.lock().ok().and_then(|m| m.get(id).copied())
}

fn importer_for(modules: &Modules, kind: &str) -> CoreResult<Arc<dyn Importer>> {
    modules
        .importer(kind)
        .map(|(_, i)| i)
        .ok_or_else(|| CoreError::validation("kind", &format!("Nothing can be imported as `{kind}`.")))
}

/// The module whose write permission importing `kind` needs.
pub fn module_of(modules: &Modules, kind: &str) -> CoreResult<&'static str> {
    Ok(importer_for(modules, kind)?.module())
}

fn read_table(bytes: &[u8]) -> CoreResult<Table> {
    tabular::read(bytes).map_err(|e| CoreError::validation("file", &e.0))
}

fn mapping_view(importer: &dyn Importer, columns: &[String], mapping: &[Option<usize>]) -> BTreeMap<String, String> {
    importer
        .fields()
        .iter()
        .zip(mapping)
        .filter_map(|(f, m)| m.and_then(|ci| columns.get(ci)).map(|c| (f.key.to_string(), c.clone())))
        .collect()
}

/// Largest staged file accepted by the pages and the API (the body limit of
/// the upload route); the command line reads files of any size.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Reads, maps and checks an uploaded file and stores it as a staged import.
pub async fn stage(
    db: &Db,
    modules: &Modules,
    who: &Who,
    cap: &CanWrite,
    kind: &str,
    file_name: &str,
    bytes: &[u8],
) -> CoreResult<ImportView> {
    let importer = importer_for(modules, kind)?;
    if importer.module() != cap.module() {
        return Err(CoreError::Forbidden("This capability does not cover this kind of import.".into()));
    }
    let file_name: String = file_name.trim().chars().filter(|c| !c.is_control()).take(200).collect();
    let file_name = if file_name.is_empty() { "import".to_string() } else { file_name };
    let table = read_table(bytes)?;
    if table.rows.is_empty() {
        return Err(CoreError::validation("file", "The file has a header row but no data under it."));
    }
    let mapping = auto_mapping(importer.fields(), &table.columns);
    let existing = importer.existing(db, &cap.as_read()).await?;
    let checked = check_all(importer.as_ref(), &table, &mapping, &existing, false);
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO imports (id, org_id, kind, status, file_name, file_format, content, columns, mapping, skip_duplicates, \
         rows_total, rows_done, rows_skipped, error_count, errors, preview, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'staged', $4, $5, $6, $7, $8, 0, $9, 0, $10, $11, $12, $13, $14, $15, $15)",
    )
    .bind(&id)
    .bind(cap.org().to_string())
    .bind(kind)
    .bind(&file_name)
    .bind(&table.format)
    .bind(B64.encode(bytes))
    .bind(serde_json::to_string(&table.columns).unwrap_or_default())
    .bind(serde_json::to_string(&mapping).unwrap_or_default())
    .bind(table.rows.len() as i64)
    .bind(checked.skipped as i64)
    .bind(checked.errors.len() as i64)
    .bind(serde_json::to_string(&checked.errors).unwrap_or_default())
    .bind(serde_json::to_string(&checked.preview).unwrap_or_default())
    .bind(who.account.map(|a| a.to_string()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "import.stage",
            entity_type: "import",
            entity_id: id.clone(),
            before: None,
            after: Some(serde_json::json!({"kind": kind, "file_name": file_name, "rows": table.rows.len(), "bad": checked.errors.len()})),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, modules, &cap.as_read(), &id).await
}

const VIEW_COLS: &str =
    "id, kind, status, file_name, file_format, columns, mapping, skip_duplicates, rows_total, rows_done, \
    rows_skipped, error_count, errors, preview, message, created_at, finished_at";

fn json_col<T: serde::de::DeserializeOwned + Default>(r: &sqlx::any::AnyRow, i: usize) -> CoreResult<T> {
    Ok(serde_json::from_str(&r.try_get::<String, _>(i)?).unwrap_or_default())
}

/// One import of the capability's organisation; any other answers NotFound.
pub async fn get(db: &Db, modules: &Modules, cap: &CanRead, id: &str) -> CoreResult<ImportView> {
    let r = sqlx::query(&format!("SELECT {VIEW_COLS} FROM imports WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    let kind: String = r.try_get(1)?;
    let importer = importer_for(modules, &kind)?;
    let columns: Vec<String> = json_col(&r, 5)?;
    let mapping: Vec<Option<usize>> = json_col(&r, 6)?;
    let status: String = r.try_get(2)?;
    let mut rows_done: i64 = r.try_get(9)?;
    if status == "running" {
        rows_done = live_get(id).unwrap_or(rows_done).max(rows_done);
    }
    Ok(ImportView {
        id: r.try_get(0)?,
        kind,
        status,
        file_name: r.try_get(3)?,
        file_format: r.try_get(4)?,
        mapping: mapping_view(importer.as_ref(), &columns, &mapping),
        fields: importer
            .fields()
            .iter()
            .map(|f| FieldInfo { key: f.key.into(), label_key: f.label_key.into(), required: f.required })
            .collect(),
        columns,
        skip_duplicates: r.try_get::<i64, _>(7)? != 0,
        rows_total: r.try_get(8)?,
        rows_done,
        rows_skipped: r.try_get(10)?,
        error_count: r.try_get(11)?,
        errors: json_col(&r, 12)?,
        preview: json_col(&r, 13)?,
        message: r.try_get(14)?,
        created_at: Timestamp(r.try_get(15)?).rfc3339(),
        finished_at: r.try_get::<Option<i64>, _>(16)?.map(|t| Timestamp(t).rfc3339()),
    })
}

/// A new mapping for a staged (or failed) import.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    /// Field key → column name of the file; a field left out (or empty) is not imported.
    #[serde(default)]
    pub mapping: BTreeMap<String, Option<String>>,
    /// Leave out rows whose unique value (email) is already in the file or
    /// the organisation, instead of reporting them as bad rows.
    #[serde(default)]
    pub skip_duplicates: Option<bool>,
}

struct Stored {
    org: OrgId,
    kind: String,
    status: String,
    file_name: String,
    content: String,
    mapping: Vec<Option<usize>>,
    skip_duplicates: bool,
    created_by: Option<String>,
}

async fn load_stored(conn: &mut sqlx::AnyConnection, org: Option<OrgId>, id: &str) -> CoreResult<Stored> {
    let r = sqlx::query(
        "SELECT org_id, kind, status, file_name, content, mapping, skip_duplicates, created_by FROM imports \
         WHERE id = $1 AND ($2 = '' OR org_id = $2)",
    )
    .bind(id)
    .bind(org.map(|o| o.to_string()).unwrap_or_default())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound)?;
    Ok(Stored {
        org: crate::ids::parse_id(&r.try_get::<String, _>(0)?)?,
        kind: r.try_get(1)?,
        status: r.try_get(2)?,
        file_name: r.try_get(3)?,
        content: r.try_get(4)?,
        mapping: json_col(&r, 5)?,
        skip_duplicates: r.try_get::<i64, _>(6)? != 0,
        created_by: r.try_get(7)?,
    })
}

fn decode(content: &str) -> CoreResult<Vec<u8>> {
    B64.decode(content).map_err(|_| CoreError::Internal("staged import file is not base64".into()))
}

/// Changes the mapping (and the duplicate rule) and checks every row again.
pub async fn set_mapping(
    db: &Db,
    modules: &Modules,
    who: &Who,
    cap: &CanWrite,
    id: &str,
    input: MappingInput,
) -> CoreResult<ImportView> {
    let mut conn = db.pool().acquire().await?;
    let s = load_stored(&mut conn, Some(cap.org()), id).await?;
    drop(conn);
    let importer = importer_for(modules, &s.kind)?;
    if importer.module() != cap.module() {
        return Err(CoreError::NotFound);
    }
    if !matches!(s.status.as_str(), "staged" | "failed") {
        return Err(CoreError::Conflict { field: None, message: "This import is already committed.".into() });
    }
    let table = read_table(&decode(&s.content)?)?;
    let mut errors = Vec::new();
    for k in input.mapping.keys() {
        if !importer.fields().iter().any(|f| f.key == k) {
            errors.push(FieldError::new(format!("mapping.{k}"), "There is no such field."));
        }
    }
    let mut mapping = vec![None; importer.fields().len()];
    for (fi, f) in importer.fields().iter().enumerate() {
        match input.mapping.get(f.key) {
            Some(Some(col)) if !col.trim().is_empty() => match table.columns.iter().position(|c| c == col.trim()) {
                Some(ci) if mapping.contains(&Some(ci)) => errors.push(FieldError::new(
                    format!("mapping.{}", f.key),
                    "This column is already mapped to another field.",
                )),
                Some(ci) => mapping[fi] = Some(ci),
                None => errors.push(FieldError::new(format!("mapping.{}", f.key), "The file has no such column.")),
            },
            Some(_) => {}
            None => mapping[fi] = s.mapping.get(fi).copied().flatten(),
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let skip = input.skip_duplicates.unwrap_or(s.skip_duplicates);
    let existing = importer.existing(db, &cap.as_read()).await?;
    let checked = check_all(importer.as_ref(), &table, &mapping, &existing, skip);
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE imports SET status = 'staged', mapping = $1, skip_duplicates = $2, rows_skipped = $3, error_count = $4, \
         errors = $5, preview = $6, message = NULL, rows_done = 0, updated_at = $7 WHERE org_id = $8 AND id = $9",
    )
    .bind(serde_json::to_string(&mapping).unwrap_or_default())
    .bind(skip as i64)
    .bind(checked.skipped as i64)
    .bind(checked.errors.len() as i64)
    .bind(serde_json::to_string(&checked.errors).unwrap_or_default())
    .bind(serde_json::to_string(&checked.preview).unwrap_or_default())
    .bind(Timestamp::now().0)
    .bind(cap.org().to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "import.mapping",
            entity_type: "import",
            entity_id: id.to_string(),
            before: None,
            after: Some(serde_json::json!({"mapping": mapping_view(importer.as_ref(), &table.columns, &mapping), "skip_duplicates": skip, "bad": checked.errors.len()})),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, modules, &cap.as_read(), id).await
}

/// The job that runs a committed import.
pub const IMPORT_RUN: JobSpec =
    JobSpec { name: "core.import.run", max_attempts: 3, backoff_secs: 10, timeout_secs: 300, run: run_job };

fn run_job(st: crate::web::AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let id = ctx.payload["import"].as_str().unwrap_or_default().to_string();
        match run(&st.db, &st.modules, &id, |_, _| {}).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if ctx.attempt >= IMPORT_RUN.max_attempts {
                    finish_failed(&st.db, &id, None, &e.public_detail()).await?;
                }
                Err(anyhow::anyhow!("import {id}: {e}"))
            }
        }
    })
}

/// Queues a staged import without bad rows for its background job.
pub async fn commit(db: &Db, modules: &Modules, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<ImportView> {
    let mut tx = db.begin().await?;
    let r = sqlx::query("SELECT kind, status, error_count FROM imports WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    let (kind, status, bad): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    if importer_for(modules, &kind)?.module() != cap.module() {
        return Err(CoreError::NotFound);
    }
    if status != "staged" {
        return Err(CoreError::Conflict {
            field: None,
            message: "Only a checked import that is not committed yet can be committed.".into(),
        });
    }
    if bad > 0 {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("The file has {bad} problem(s): nothing can be imported until they are fixed."),
        });
    }
    let job =
        crate::jobs::enqueue(&mut tx, &IMPORT_RUN, Some(cap.org()), serde_json::json!({"import": id}), None, 0).await?;
    sqlx::query("UPDATE imports SET status = 'queued', job_id = $1, rows_done = 0, updated_at = $2 WHERE id = $3")
        .bind(&job)
        .bind(Timestamp::now().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "import.commit",
            entity_type: "import",
            entity_id: id.to_string(),
            before: None,
            after: Some(serde_json::json!({"job": job})),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, modules, &cap.as_read(), id).await
}

async fn finish_failed(db: &Db, id: &str, checked: Option<&Checked>, message: &str) -> CoreResult<()> {
    let mut q = String::from(
        "UPDATE imports SET status = 'failed', message = $1, rows_done = 0, updated_at = $2, finished_at = $2",
    );
    if checked.is_some() {
        q.push_str(", error_count = $4, errors = $5, rows_skipped = $6");
    }
    q.push_str(" WHERE id = $3");
    let now = Timestamp::now().0;
    let mut query = sqlx::query(&q).bind(message).bind(now).bind(id);
    if let Some(c) = checked {
        query = query
            .bind(c.errors.len() as i64)
            .bind(serde_json::to_string(&c.errors).unwrap_or_default())
            .bind(c.skipped as i64);
    }
    let mut tx = db.begin().await?;
    query.execute(tx.conn()).await?;
    tx.commit().await
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Imported {
        rows: usize,
        skipped: usize,
    },
    /// Nothing was imported: these rows are bad.
    Rejected {
        errors: Vec<RowError>,
    },
    /// Already done, or not committed: nothing to do.
    Nothing,
}

/// Rows per batch: the progress step.
const BATCH: usize = 2000;

/// Runs a queued import: checks every row again (the organisation may have
/// changed since the preview), then writes them all in one transaction with
/// one audit entry, or nothing when a row is bad. `progress(done, total)` is
/// called after each batch. Running twice is harmless: a done import is not
/// run again.
pub async fn run(db: &Db, modules: &Modules, id: &str, mut progress: impl FnMut(usize, usize)) -> CoreResult<Outcome> {
    let claimed = {
        let mut tx = db.begin().await?;
        let n = sqlx::query(
            "UPDATE imports SET status = 'running', updated_at = $1 WHERE id = $2 AND status IN ('queued', 'running')",
        )
        .bind(Timestamp::now().0)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        n > 0
    };
    if !claimed {
        return Ok(Outcome::Nothing);
    }
    let mut conn = db.pool().acquire().await?;
    let s = load_stored(&mut conn, None, id).await?;
    drop(conn);
    let importer = importer_for(modules, &s.kind)?;
    let actor: AccountId = s.created_by.as_deref().and_then(|a| a.parse().ok()).unwrap_or(AccountId(uuid::Uuid::nil()));
    let cap = CanWrite::grant(s.org, actor, importer.module());
    let who = Who {
        account: s.created_by.as_deref().and_then(|a| a.parse().ok()),
        label: "import".into(),
        address: String::new(),
    };
    let table = match read_table(&decode(&s.content)?) {
        Ok(t) => t,
        Err(e) => {
            finish_failed(db, id, None, &e.field_errors().first().map(|f| f.message.clone()).unwrap_or_default())
                .await?;
            return Ok(Outcome::Rejected { errors: vec![] });
        }
    };
    let existing = importer.existing(db, &cap.as_read()).await?;
    let checked = check_all(importer.as_ref(), &table, &s.mapping, &existing, s.skip_duplicates);
    if !checked.errors.is_empty() {
        finish_failed(db, id, Some(&checked), "Some rows are bad: nothing was imported.").await?;
        return Ok(Outcome::Rejected { errors: checked.errors });
    }
    let total = checked.good.len();
    live_set(id, Some(0));
    let result = write_all(db, importer.as_ref(), &cap, &who, id, &s, &checked, &mut progress).await;
    live_set(id, None);
    match result {
        Ok(true) => Ok(Outcome::Imported { rows: total, skipped: checked.skipped }),
        Ok(false) => Ok(Outcome::Nothing),
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_all(
    db: &Db,
    importer: &dyn Importer,
    cap: &CanWrite,
    who: &Who,
    id: &str,
    s: &Stored,
    checked: &Checked,
    progress: &mut impl FnMut(usize, usize),
) -> CoreResult<bool> {
    let total = checked.good.len();
    // Durable: an import may post ledger entries (the members import's paid
    // dues), which must survive a power cut once acknowledged.
    let mut tx = db.begin_durable().await?;
    // SQLite keeps a transaction's changed pages in the page cache (2 MiB by
    // default) and spills the rest to the WAL, reading it back again and
    // again: a bigger cache for this one transaction (docs/PERFORMANCE.md).
    match db.backend() {
        Backend::Sqlite => {
            sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")).execute(tx.conn()).await?;
        }
        // Each row of a child table (people_terms → people) is checked by a
        // foreign-key query whose plan PostgreSQL keeps per connection. Made
        // while the parent table was nearly empty (a new instance: the very
        // first import), it scans the table, which then grows by the
        // thousands inside this transaction: hours for 100,000 people. Plans
        // made from here on use the indexes.
        Backend::Postgres => {
            sqlx::query("SET LOCAL enable_seqscan = off").execute(tx.conn()).await?;
            sqlx::query("DISCARD PLANS").execute(tx.conn()).await?;
        }
    }
    let mut done = 0;
    for batch in checked.good.chunks(BATCH) {
        importer.write(&mut tx, cap, batch).await?;
        done += batch.len();
        live_set(id, Some(done as i64));
        // Other replicas read progress from the row; on SQLite the one
        // writer is this transaction, so only this process's memory has it.
        if db.backend() == Backend::Postgres {
            sqlx::query("UPDATE imports SET rows_done = $1, updated_at = $2 WHERE id = $3")
                .bind(done as i64)
                .bind(Timestamp::now().0)
                .bind(id)
                .execute(db.pool())
                .await?;
        }
        progress(done, total);
    }
    let now = Timestamp::now().0;
    // The file is personal data kept only until it is imported.
    let n = sqlx::query(
        "UPDATE imports SET status = 'done', rows_done = $1, rows_skipped = $2, error_count = 0, errors = '[]', \
         content = '', message = NULL, updated_at = $3, finished_at = $3 WHERE id = $4 AND status = 'running'",
    )
    .bind(total as i64)
    .bind(checked.skipped as i64)
    .bind(now)
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false); // another run finished it meanwhile; this one rolls back
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "import.done",
            entity_type: "import",
            entity_id: id.to_string(),
            before: None,
            after: Some(serde_json::json!({"count": total, "skipped": checked.skipped, "file_name": s.file_name, "kind": s.kind})),
        },
    )
    .await?;
    if db.backend() == Backend::Sqlite {
        // Back to the default: the changed pages stay until the commit
        // writes them, then the memory is freed.
        sqlx::query("PRAGMA cache_size = -2000").execute(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The SQLite page cache of an import's transaction, in KiB.
const SQLITE_IMPORT_CACHE_KIB: i64 = 131_072;

/// The command line acts as the operator: whoever can run `shrooms` with
/// the database's credentials can write every organisation's data anyway.
pub async fn operator_stage(
    db: &Db,
    modules: &Modules,
    org_key: &str,
    kind: &str,
    file_name: &str,
    bytes: &[u8],
) -> CoreResult<ImportView> {
    let org = crate::orgs::find_org(db, org_key).await?.ok_or(CoreError::NotFound)?;
    let module = module_of(modules, kind)?;
    let cap = CanWrite::operator(org.id, module);
    stage(db, modules, &Who::system("cli"), &cap, kind, file_name, bytes).await
}

/// The command line's mapping change (see [`operator_stage`]).
pub async fn operator_set_mapping(
    db: &Db,
    modules: &Modules,
    org_key: &str,
    id: &str,
    input: MappingInput,
) -> CoreResult<ImportView> {
    let org = crate::orgs::find_org(db, org_key).await?.ok_or(CoreError::NotFound)?;
    let mut conn = db.pool().acquire().await?;
    let s = load_stored(&mut conn, Some(org.id), id).await?;
    drop(conn);
    let cap = CanWrite::operator(org.id, module_of(modules, &s.kind)?);
    set_mapping(db, modules, &Who::system("cli"), &cap, id, input).await
}

/// The command line's commit: queued, then run in this process at once.
pub async fn operator_run(
    db: &Db,
    modules: &Modules,
    org_key: &str,
    id: &str,
    progress: impl FnMut(usize, usize),
) -> CoreResult<Outcome> {
    let org = crate::orgs::find_org(db, org_key).await?.ok_or(CoreError::NotFound)?;
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE imports SET status = 'queued', updated_at = $1 WHERE org_id = $2 AND id = $3 AND status = 'staged' AND error_count = 0",
    )
    .bind(Timestamp::now().0)
    .bind(org.id.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    if n == 0 {
        return Err(CoreError::Conflict {
            field: None,
            message: "The import has bad rows or is already committed.".into(),
        });
    }
    run(db, modules, id, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Table {
        tabular::read(csv.as_bytes()).unwrap()
    }

    #[test]
    fn columns_map_by_synonyms() {
        let t = table("Prénom;NOM;Adresse E-mail;Tél.;Ville\nA;B;a@x.org;1;P\n");
        let m = auto_mapping(PEOPLE_FIELDS, &t.columns);
        assert_eq!(m, vec![Some(0), Some(1), Some(2), Some(3)]);
        let t = table("first_name,last name,email,notes\n");
        assert_eq!(auto_mapping(PEOPLE_FIELDS, &t.columns), vec![Some(0), Some(1), Some(2), None]);
        let t = table("given_name,family_name,Mail,Mobile\n");
        assert_eq!(auto_mapping(PEOPLE_FIELDS, &t.columns), vec![Some(0), Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_column() {
        let t = table("Nom;Prénom;Courriel;Téléphone\nDupont;Jean;jean@x.org;06 12\n;;;\nMartin;Léa;pas-un-mail;\n;;a@x.org;\nDurand;Paul;JEAN@x.org;abc\n");
        let m = auto_mapping(PEOPLE_FIELDS, &t.columns);
        let c = check_all(&PeopleImporter, &t, &m, &HashSet::new(), false);
        assert_eq!(c.good.len(), 1);
        let got: Vec<(usize, Option<&str>, &str)> =
            c.errors.iter().map(|e| (e.line, e.column.as_deref(), e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![(4, Some("Courriel"), "email"), (5, Some("Nom"), "family_name"), (6, Some("Téléphone"), "phone")]
        );
        // The duplicate is found once the phone is fixed.
        let t = table("Nom;Courriel\nDupont;jean@x.org\nDurand;JEAN@x.org\nMartin;old@x.org\n");
        let m = auto_mapping(PEOPLE_FIELDS, &t.columns);
        let existing: HashSet<String> = ["old@x.org".to_string()].into();
        let c = check_all(&PeopleImporter, &t, &m, &existing, false);
        assert_eq!(c.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(c.errors[0].message.contains("earlier line"), "{:?}", c.errors);
        let c = check_all(&PeopleImporter, &t, &m, &existing, true);
        assert_eq!((c.good.len(), c.skipped, c.errors.len()), (1, 2, 0));
    }

    #[test]
    fn dates_as_people_write_them() {
        assert_eq!(parse_date("17/05/1990").as_deref(), Some("1990-05-17"));
        assert_eq!(parse_date("7.5.1990").as_deref(), Some("1990-05-07"));
        assert_eq!(parse_date("1990-05-17T00:00:00").as_deref(), Some("1990-05-17"));
        assert_eq!(parse_date("31/02/2024"), None);
        assert_eq!(parse_date("17/05/90"), None);
        assert_eq!(parse_date("hier"), None);
    }
}
