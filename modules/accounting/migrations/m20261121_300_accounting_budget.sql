-- The budget of a fiscal year: an amount per account or per prefix of
-- accounts ("60" for all purchases). Amounts in cents, positive: the
-- expense expected on a 6… line, the income expected on a 7… line.
CREATE TABLE acct_budget_lines (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    year_id TEXT NOT NULL REFERENCES acct_years (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    label TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (org_id, year_id, target)
);
