-- Bank accounts, the statements imported for them, and reconciliation.
-- A bank account is a 512… account of the chart with the bank's details.
CREATE TABLE acct_bank_accounts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    account TEXT NOT NULL,
    label TEXT NOT NULL,
    iban TEXT NOT NULL,
    -- The closing balance stated by the latest statement that gave one.
    statement_balance BIGINT,
    statement_date TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX acct_bank_accounts_account ON acct_bank_accounts (org_id, account);
CREATE TABLE acct_statement_imports (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    bank_id TEXT NOT NULL REFERENCES acct_bank_accounts (id) ON DELETE CASCADE,
    format TEXT NOT NULL,
    added BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- One movement of a statement. amount is signed: positive when money came in.
-- dedup_key makes a re-imported movement a duplicate: the bank's reference
-- and the amount, or (without reference) date, amount, label and rank.
-- entry_id/line_no: the ledger line it is reconciled with.
CREATE TABLE acct_statement_lines (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    bank_id TEXT NOT NULL REFERENCES acct_bank_accounts (id) ON DELETE CASCADE,
    import_id TEXT NOT NULL REFERENCES acct_statement_imports (id) ON DELETE CASCADE,
    op_date TEXT NOT NULL,
    label TEXT NOT NULL,
    amount BIGINT NOT NULL,
    reference TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    entry_id TEXT REFERENCES acct_entries (id),
    line_no BIGINT,
    matched_at BIGINT
);
CREATE UNIQUE INDEX acct_statement_lines_dedup ON acct_statement_lines (org_id, bank_id, dedup_key);
CREATE UNIQUE INDEX acct_statement_lines_match ON acct_statement_lines (org_id, entry_id, line_no);
CREATE INDEX acct_statement_lines_bank ON acct_statement_lines (org_id, bank_id, op_date);
-- Suggestions the treasurer turned down: not offered again.
CREATE TABLE acct_match_rejections (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    statement_line_id TEXT NOT NULL REFERENCES acct_statement_lines (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    PRIMARY KEY (statement_line_id, entry_id, line_no)
);
