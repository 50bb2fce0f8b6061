-- Files and photos attached to records of any module. The bytes live in the
-- file store (by default `<data>/files/`); this table is their metadata.
-- A blob whose row is gone is an orphan, removed by the job `core.files.cleanup`.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    is_public BIGINT NOT NULL DEFAULT 0,
    width BIGINT,
    height BIGINT,
    renditions TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX files_entity ON files (org_id, module, entity_type, entity_id);
