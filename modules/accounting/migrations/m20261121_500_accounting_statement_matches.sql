-- A statement line may settle several ledger lines (a deposit of cheques
-- booked one by one): matches move to their own table. The columns
-- entry_id, line_no and matched_at of acct_statement_lines are no longer
-- used (SQLite cannot drop a column that has a foreign key).
CREATE TABLE acct_statement_matches (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    statement_line_id TEXT NOT NULL REFERENCES acct_statement_lines (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL REFERENCES acct_entries (id),
    line_no BIGINT NOT NULL,
    matched_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, entry_id, line_no)
);
CREATE INDEX acct_statement_matches_line ON acct_statement_matches (org_id, statement_line_id);
INSERT INTO acct_statement_matches (org_id, statement_line_id, entry_id, line_no, matched_at)
    SELECT org_id, id, entry_id, line_no, COALESCE(matched_at, 0) FROM acct_statement_lines WHERE entry_id IS NOT NULL;
UPDATE acct_statement_lines SET entry_id = NULL, line_no = NULL, matched_at = NULL WHERE entry_id IS NOT NULL;
