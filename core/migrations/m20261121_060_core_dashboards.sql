-- Personal dashboards: each person's order of the widgets and the ones they
-- hide, per organisation. Widgets themselves come from the modules.
CREATE TABLE dashboard_layouts (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    layout TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, org_id)
);
