-- The directory's standing filters through an index. `live_end` is the last
-- day on which a member's standing can still be current: the latest of the
-- effective ends of the last two periods and the start of the last one
-- ('9999-12-31' when one of them has no end). Only dates are stored, so it
-- never goes stale: up to date, late and not started imply
-- `live_end >= today`, lapsed, resigned and excluded imply
-- `live_end <= today`, and the search still computes the exact standing
-- from the dates (directory.rs, `status_sql`).
ALTER TABLE mem_directory ADD COLUMN live_end TEXT;
UPDATE mem_directory SET live_end = CASE
    WHEN a_end IS NULL OR (b_period IS NOT NULL AND b_end IS NULL) THEN '9999-12-31'
    WHEN b_end IS NOT NULL AND b_end >= a_end AND b_end >= a_start THEN b_end
    WHEN a_end >= a_start THEN a_end
    ELSE a_start END;
CREATE INDEX mem_directory_live ON mem_directory (org_id, live_end);
