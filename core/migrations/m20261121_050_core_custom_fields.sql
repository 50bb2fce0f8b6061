-- Custom fields: an organisation administrator adds fields to a kind of
-- record (people, or a module's records) without code. Values live in one
-- row per field and record (one per chosen option for a multiple choice),
-- indexed by field and value so that filtering stays an index range scan.
CREATE TABLE custom_fields (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '[]',
    required BIGINT NOT NULL DEFAULT 0,
    in_list BIGINT NOT NULL DEFAULT 0,
    position BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    archived_at BIGINT
);
CREATE UNIQUE INDEX custom_fields_key ON custom_fields (org_id, entity_type, key);
CREATE TABLE custom_values (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    field_id TEXT NOT NULL REFERENCES custom_fields (id) ON DELETE CASCADE,
    value_text TEXT NOT NULL,
    value_num BIGINT,
    value_fold TEXT NOT NULL
);
CREATE INDEX custom_values_record ON custom_values (org_id, entity_type, entity_id);
CREATE INDEX custom_values_fold ON custom_values (org_id, field_id, value_fold);
CREATE INDEX custom_values_num ON custom_values (org_id, field_id, value_num);
