-- Self-service: the public join form's settings, join requests a secretary
-- approves (or that are approved at once), profile change requests waiting
-- for approval, and revoked membership cards (so that an old QR code says
-- "revoked" rather than "unknown").
CREATE TABLE mem_selfservice (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    join_enabled BIGINT NOT NULL,
    join_mode TEXT NOT NULL,
    join_type_ids TEXT NOT NULL,
    terms_text TEXT NOT NULL,
    payment_instructions TEXT NOT NULL,
    checked_fields TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE mem_join_requests (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    type_id TEXT NOT NULL REFERENCES mem_types (id),
    tier TEXT,
    amount_cents BIGINT,
    fee_cents BIGINT NOT NULL,
    submitted TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    open_key TEXT,
    status TEXT NOT NULL,
    period_id TEXT,
    decided_at BIGINT,
    decided_by TEXT,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, submission_id),
    UNIQUE (org_id, open_key)
);
CREATE INDEX mem_join_requests_status ON mem_join_requests (org_id, status, created_at);
CREATE INDEX mem_join_requests_person ON mem_join_requests (org_id, person_id, type_id);
CREATE TABLE mem_change_requests (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    changes TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mem_change_requests_status ON mem_change_requests (org_id, status, created_at);
CREATE INDEX mem_change_requests_person ON mem_change_requests (org_id, person_id, created_at);
CREATE TABLE mem_revoked_cards (
    token TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX mem_revoked_cards_org ON mem_revoked_cards (org_id, person_id);
