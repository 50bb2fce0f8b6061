-- Timeline: comments, status changes and events on any record of any module,
-- and the people who follow a record.
CREATE TABLE timeline_entries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    author_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    author_label TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    body_html TEXT NOT NULL DEFAULT '',
    status_from TEXT,
    status_to TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX timeline_entries_record ON timeline_entries (org_id, entity_type, entity_id, id);
CREATE TABLE timeline_followers (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, entity_type, entity_id, account_id)
);
-- Notifications: one row per recipient, shown under the bell; mailed at once
-- or in a daily digest according to the recipient's preferences.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    org_id TEXT REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    actor_label TEXT NOT NULL DEFAULT '',
    in_app BIGINT NOT NULL,
    mail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    mailed_at BIGINT
);
CREATE INDEX notifications_account ON notifications (account_id, id);
CREATE INDEX notifications_digest ON notifications (mail, mailed_at, account_id);
CREATE TABLE notification_prefs (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    in_app BIGINT NOT NULL,
    mail TEXT NOT NULL,
    PRIMARY KEY (account_id, kind)
);
