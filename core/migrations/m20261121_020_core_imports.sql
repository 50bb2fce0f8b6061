-- Staged imports of CSV and ODS files (core/src/import.rs): the file itself
-- (base64, cleared once imported), the column mapping, the validation report
-- and the progress of the background job that commits it.
CREATE TABLE imports (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_format TEXT NOT NULL,
    content TEXT NOT NULL,
    columns TEXT NOT NULL,
    mapping TEXT NOT NULL,
    skip_duplicates BIGINT NOT NULL DEFAULT 0,
    rows_total BIGINT NOT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0,
    rows_skipped BIGINT NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0,
    errors TEXT NOT NULL,
    preview TEXT NOT NULL,
    message TEXT,
    job_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX imports_org ON imports (org_id, id);
