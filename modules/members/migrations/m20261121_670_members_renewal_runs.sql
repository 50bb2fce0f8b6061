-- Renewal runs: one row per run of the notices and reminders (started from
-- the pages, the API, the command line or the daily schedule), with its
-- progress while it runs (`done` of `total` members) and its counts.
-- status: queued, running, cancelling, cancelled, done, failed.
CREATE TABLE mem_renewal_runs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    on_date TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    notices BIGINT NOT NULL DEFAULT 0,
    reminders BIGINT NOT NULL DEFAULT 0,
    invoiced BIGINT NOT NULL DEFAULT 0,
    without_email BIGINT NOT NULL DEFAULT 0,
    -- `api`, `page`, `cli` or `schedule`.
    started_by TEXT NOT NULL,
    created_by TEXT,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX mem_renewal_runs_org ON mem_renewal_runs (org_id, started_at);
-- One run under way per organisation, also between replicas starting one
-- at the same moment (the service checks first, for a clear message).
CREATE UNIQUE INDEX mem_renewal_runs_one_active ON mem_renewal_runs (org_id)
    WHERE status IN ('queued', 'running', 'cancelling');
