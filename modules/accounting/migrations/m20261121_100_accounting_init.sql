-- The ledger of each organisation. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Amounts are BIGINT minor units (cents); calendar dates are TEXT 'YYYY-MM-DD'
-- (they sort and compare as dates); times are BIGINT UTC milliseconds.
CREATE TABLE acct_books (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    chart TEXT NOT NULL,
    currency TEXT NOT NULL,
    siren TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE acct_accounts (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    label TEXT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, number)
);
CREATE TABLE acct_journals (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (org_id, code)
);
CREATE TABLE acct_years (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    status TEXT NOT NULL,
    closed_at BIGINT,
    closed_hash TEXT,
    closed_entries BIGINT
);
CREATE UNIQUE INDEX acct_years_org_start ON acct_years (org_id, start_date);
-- The next number of each journal in each fiscal year: updated in the
-- validating transaction, so a number is used once and never skipped.
CREATE TABLE acct_sequences (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    year_id TEXT NOT NULL REFERENCES acct_years (id) ON DELETE CASCADE,
    journal TEXT NOT NULL,
    last_number BIGINT NOT NULL,
    PRIMARY KEY (org_id, year_id, journal)
);
CREATE TABLE acct_entries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    year_id TEXT NOT NULL REFERENCES acct_years (id),
    journal TEXT NOT NULL,
    number BIGINT,
    entry_date TEXT NOT NULL,
    label TEXT NOT NULL,
    piece_ref TEXT NOT NULL,
    piece_date TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reverses TEXT,
    reversed_by TEXT,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    validated_at BIGINT,
    hash TEXT
);
CREATE INDEX acct_entries_org_date ON acct_entries (org_id, entry_date, id);
CREATE UNIQUE INDEX acct_entries_number ON acct_entries (org_id, year_id, journal, number);
CREATE TABLE acct_lines (
    entry_id TEXT NOT NULL REFERENCES acct_entries (id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entry_date TEXT NOT NULL,
    closing BIGINT NOT NULL,
    account TEXT NOT NULL,
    aux TEXT NOT NULL,
    aux_label TEXT NOT NULL,
    label TEXT NOT NULL,
    debit BIGINT NOT NULL,
    credit BIGINT NOT NULL,
    currency_amount BIGINT,
    currency TEXT,
    letter TEXT,
    letter_date TEXT,
    PRIMARY KEY (entry_id, line_no)
);
-- Reports aggregate by account over a date range: this index covers them.
CREATE INDEX acct_lines_report ON acct_lines (org_id, entry_date, account, closing, debit, credit);
CREATE INDEX acct_lines_account ON acct_lines (org_id, account, entry_date);
CREATE TABLE acct_line_tags (
    entry_id TEXT NOT NULL REFERENCES acct_entries (id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (entry_id, line_no, tag)
);
CREATE INDEX acct_line_tags_org ON acct_line_tags (org_id, tag);
