-- The member directory: one summary row per member, kept in the same
-- transaction by every write that changes a member's standing (periods,
-- dues, closings, returned debits), so that a filtered search of tens of
-- thousands of members reads one table through indexes instead of every
-- period. Only dates are stored: whether a member is up to date, late or
-- lapsed today is computed in SQL from them at query time.
-- "a" is the period that starts last, "b" the one before it; the end is the
-- effective last day (the earlier of the term and the closing, none for a
-- lifetime membership).
CREATE TABLE mem_directory (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    first_start TEXT NOT NULL,
    a_period TEXT NOT NULL,
    a_type TEXT NOT NULL,
    a_start TEXT NOT NULL,
    a_end TEXT,
    a_paid BIGINT NOT NULL,
    a_reason TEXT,
    b_period TEXT,
    b_type TEXT,
    b_start TEXT,
    b_end TEXT,
    b_paid BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, person_id)
);
CREATE INDEX mem_directory_type ON mem_directory (org_id, a_type);
CREATE INDEX mem_directory_end ON mem_directory (org_id, a_end);
CREATE INDEX mem_directory_joined ON mem_directory (org_id, first_start, person_id);
-- Organisations whose summary rows were built from their periods (data
-- recorded before this migration is summarised at the first search).
CREATE TABLE mem_directory_built (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    built_at BIGINT NOT NULL
);
CREATE TABLE mem_saved_searches (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    filter TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
-- People who asked not to receive a kind of list (newsletter) any more.
CREATE TABLE mem_mail_optouts (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    list_kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, person_id, list_kind)
);
-- Permanent delivery failures (SMTP 5xx, delivery status notifications).
CREATE TABLE mem_bounces (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    message_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX mem_bounces_person ON mem_bounces (org_id, person_id);
CREATE UNIQUE INDEX mem_bounces_message ON mem_bounces (org_id, message_id);
CREATE TABLE mem_mailings (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    filter TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX mem_mailings_org ON mem_mailings (org_id, created_at);
CREATE TABLE mem_mailing_recipients (
    mailing_id TEXT NOT NULL REFERENCES mem_mailings (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    PRIMARY KEY (mailing_id, person_id)
);
CREATE INDEX mem_mailing_recipients_org ON mem_mailing_recipients (org_id, mailing_id);
