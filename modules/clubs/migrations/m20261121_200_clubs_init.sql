-- Clubs and activities: clubs (or sections, workshops) of an organisation,
-- their activities with one-time-code attendance, participants, executives,
-- the action programme, and the cash book (sealed: encrypted at rest).
CREATE TABLE clubs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    summary TEXT NOT NULL,
    description TEXT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE clubs_activities (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    theme TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT,
    place TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    difficulties TEXT NOT NULL,
    is_competition BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clubs_activities_club ON clubs_activities (org_id, club_id, starts_at);

CREATE TABLE clubs_codes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    activity_id TEXT NOT NULL REFERENCES clubs_activities (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    opened_by TEXT,
    opened_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX clubs_codes_lookup ON clubs_codes (org_id, code, expires_at);
CREATE INDEX clubs_codes_activity ON clubs_codes (activity_id);

CREATE TABLE clubs_participants (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    identity_key TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    field_of_study TEXT NOT NULL,
    level TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, identity_key)
);

CREATE TABLE clubs_attendances (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    activity_id TEXT NOT NULL REFERENCES clubs_activities (id) ON DELETE CASCADE,
    participant_id TEXT NOT NULL REFERENCES clubs_participants (id) ON DELETE CASCADE,
    submission_key TEXT NOT NULL,
    field_of_study TEXT NOT NULL,
    level TEXT NOT NULL,
    rating BIGINT,
    suggestion TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    UNIQUE (activity_id, participant_id),
    UNIQUE (org_id, submission_key)
);
CREATE INDEX clubs_attendances_club ON clubs_attendances (org_id, club_id, activity_id);
CREATE INDEX clubs_attendances_participant ON clubs_attendances (org_id, participant_id);

CREATE TABLE clubs_results (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    activity_id TEXT NOT NULL REFERENCES clubs_activities (id) ON DELETE CASCADE,
    participant_id TEXT REFERENCES clubs_participants (id) ON DELETE SET NULL,
    winner_name TEXT NOT NULL,
    rank_no BIGINT NOT NULL,
    prize TEXT NOT NULL
);
CREATE INDEX clubs_results_activity ON clubs_results (org_id, activity_id);

CREATE TABLE clubs_executives (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    field_of_study TEXT NOT NULL,
    level TEXT NOT NULL,
    position TEXT NOT NULL,
    is_head BIGINT NOT NULL DEFAULT 0,
    photo_file_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX clubs_executives_club ON clubs_executives (org_id, club_id);
CREATE INDEX clubs_executives_email ON clubs_executives (org_id, email);

CREATE TABLE clubs_meetings (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    held_at BIGINT NOT NULL,
    activity_id TEXT REFERENCES clubs_activities (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX clubs_meetings_club ON clubs_meetings (org_id, club_id, held_at);

CREATE TABLE clubs_meeting_presence (
    meeting_id TEXT NOT NULL REFERENCES clubs_meetings (id) ON DELETE CASCADE,
    executive_id TEXT NOT NULL REFERENCES clubs_executives (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    present BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, executive_id)
);

CREATE TABLE clubs_tasks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    year BIGINT NOT NULL,
    title TEXT NOT NULL,
    assignee_id TEXT REFERENCES clubs_executives (id) ON DELETE SET NULL,
    activity_id TEXT REFERENCES clubs_activities (id) ON DELETE SET NULL,
    due_on TEXT,
    done_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX clubs_tasks_club ON clubs_tasks (org_id, club_id, year);

-- The cash book. Amount, reason and comment are sealed (core/src/sealed.rs):
-- they are encrypted with the data key, which is not in the database.
CREATE TABLE clubs_money (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    club_id TEXT NOT NULL REFERENCES clubs (id) ON DELETE CASCADE,
    activity_id TEXT REFERENCES clubs_activities (id) ON DELETE SET NULL,
    direction TEXT NOT NULL,
    occurred_on TEXT NOT NULL,
    amount_sealed TEXT NOT NULL,
    reason_sealed TEXT NOT NULL,
    comment_sealed TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX clubs_money_club ON clubs_money (org_id, club_id, occurred_on);

-- How the top-participants ranking is scored, per organisation.
CREATE TABLE clubs_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    points_attendance BIGINT NOT NULL,
    points_first BIGINT NOT NULL,
    points_second BIGINT NOT NULL,
    points_third BIGINT NOT NULL,
    points_other_rank BIGINT NOT NULL,
    code_valid_minutes BIGINT NOT NULL
);

-- Bumped by every change of an organisation's clubs data, in the same
-- transaction: cached syntheses are keyed by it, so every replica sees a
-- change at once.
CREATE TABLE clubs_stamp (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    version BIGINT NOT NULL
);

-- Reports already mailed, by job: a job that runs again does not mail twice.
CREATE TABLE clubs_reports_mailed (
    job_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL,
    mailed_at BIGINT NOT NULL
);
