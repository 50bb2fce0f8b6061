-- Reconciliation in groups: statement lines and ledger lines reconciled
-- together, their amounts adding up exactly. One statement line with
-- several ledger lines (a deposit of cheques booked one by one), one ledger
-- line with several statement lines (a deposit slip the bank credited in
-- parts), or several with several. Replaces acct_statement_matches: each
-- statement line's matches become one group, named by the statement line.
CREATE TABLE acct_matches (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    bank_id TEXT NOT NULL REFERENCES acct_bank_accounts (id) ON DELETE CASCADE,
    matched_at BIGINT NOT NULL
);
CREATE INDEX acct_matches_bank ON acct_matches (org_id, bank_id);
CREATE TABLE acct_match_statement_lines (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    match_id TEXT NOT NULL REFERENCES acct_matches (id) ON DELETE CASCADE,
    statement_line_id TEXT NOT NULL REFERENCES acct_statement_lines (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, statement_line_id)
);
CREATE INDEX acct_match_statement_lines_match ON acct_match_statement_lines (org_id, match_id);
CREATE TABLE acct_match_ledger_lines (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    match_id TEXT NOT NULL REFERENCES acct_matches (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL REFERENCES acct_entries (id),
    line_no BIGINT NOT NULL,
    PRIMARY KEY (org_id, entry_id, line_no)
);
CREATE INDEX acct_match_ledger_lines_match ON acct_match_ledger_lines (org_id, match_id);
INSERT INTO acct_matches (id, org_id, bank_id, matched_at)
    SELECT m.statement_line_id, m.org_id, s.bank_id, MAX(m.matched_at) FROM acct_statement_matches m
    JOIN acct_statement_lines s ON s.id = m.statement_line_id
    GROUP BY m.statement_line_id, m.org_id, s.bank_id;
INSERT INTO acct_match_statement_lines (org_id, match_id, statement_line_id)
    SELECT DISTINCT org_id, statement_line_id, statement_line_id FROM acct_statement_matches;
INSERT INTO acct_match_ledger_lines (org_id, match_id, entry_id, line_no)
    SELECT org_id, statement_line_id, entry_id, line_no FROM acct_statement_matches;
DROP TABLE acct_statement_matches;
-- The reconciliation page reads a bank account's statement lines a page at a time, in date order.
CREATE INDEX acct_statement_lines_page ON acct_statement_lines (org_id, bank_id, op_date, id);
