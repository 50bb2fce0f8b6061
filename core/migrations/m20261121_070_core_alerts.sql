-- Alerts: something critical that instance administrators must hear of
-- (disk almost full, jobs failing, mail failing, backups failing). One row
-- per kind of problem; administrators are told again only after a quiet
-- period, not at every check.
CREATE TABLE alerts (
    key TEXT PRIMARY KEY,
    message TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    notified_at BIGINT,
    occurrences BIGINT NOT NULL DEFAULT 1,
    resolved_at BIGINT
);
