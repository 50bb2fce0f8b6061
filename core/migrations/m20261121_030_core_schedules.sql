-- Recurring schedules: a job enqueued at each occurrence of a cron
-- expression, read in a time zone (the schedule's own, else its
-- organisation's orgs.timezone, else the instance's). The instance gets a
-- default time zone, for instance-wide schedules and new organisations.
ALTER TABLE instance ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Paris';

-- scope is 'instance' or the organisation id, so that (name, scope) is unique
-- for both (NULL org_id would not be); a module's schedule exists once per
-- scope even when several servers create it at the same moment.
-- cron is what runs; default_cron is what the module declares (they differ
-- once an administrator changes the expression). declared = 0: no module
-- declares it any more, it never runs. next_run_at NULL: never due.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    module TEXT NOT NULL,
    scope TEXT NOT NULL,
    org_id TEXT REFERENCES orgs (id) ON DELETE CASCADE,
    job TEXT NOT NULL,
    payload TEXT NOT NULL,
    cron TEXT NOT NULL,
    default_cron TEXT NOT NULL,
    time_zone TEXT,
    enabled BIGINT NOT NULL,
    declared BIGINT NOT NULL DEFAULT 1,
    next_run_at BIGINT,
    last_run_at BIGINT,
    last_job_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (name, scope)
);
CREATE INDEX schedules_due ON schedules (next_run_at);
CREATE INDEX schedules_org ON schedules (org_id, name);
