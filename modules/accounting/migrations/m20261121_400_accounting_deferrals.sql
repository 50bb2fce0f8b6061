-- Deferred revenue: a payment or invoice for a service spanning fiscal
-- years, and how its amount was split between them (the split is kept, so
-- it can be shown and audited, and the shares of years created later are
-- posted when they are).
CREATE TABLE acct_deferrals (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    entry_id TEXT NOT NULL REFERENCES acct_entries (id),
    label TEXT NOT NULL,
    amount BIGINT NOT NULL,
    revenue_account TEXT NOT NULL,
    service_start TEXT NOT NULL,
    service_end TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX acct_deferrals_entry ON acct_deferrals (org_id, entry_id);
-- kind: previous, current or next; booked_as: 418, revenue or 487;
-- entry_id: the entry bringing the share into revenue in its year (NULL
-- while a later year does not exist yet).
CREATE TABLE acct_deferral_shares (
    deferral_id TEXT NOT NULL REFERENCES acct_deferrals (id) ON DELETE CASCADE,
    share_no BIGINT NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    share_from TEXT NOT NULL,
    share_to TEXT NOT NULL,
    days BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    booked_as TEXT NOT NULL,
    entry_id TEXT,
    PRIMARY KEY (deferral_id, share_no)
);
CREATE INDEX acct_deferral_shares_entry ON acct_deferral_shares (org_id, entry_id);
