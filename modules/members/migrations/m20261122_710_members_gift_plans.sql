-- Recurring gifts as plans: a standing order set up by the donor at their
-- bank (or cheques, cash, a card every month…), with the day the next gift
-- is expected. Each gift received is recorded as a donation (recurring = 1)
-- and moves `next_on` by the frequency, from the day of `first_on` (a plan
-- on the 31st falls on the last day of shorter months).
CREATE TABLE mem_gift_plans (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    frequency TEXT NOT NULL,
    method TEXT NOT NULL,
    form TEXT NOT NULL,
    nature TEXT NOT NULL,
    first_on TEXT NOT NULL,
    ends_on TEXT,
    next_on TEXT NOT NULL,
    status TEXT NOT NULL,
    last_donation_id TEXT,
    received_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    stopped_at BIGINT
);
CREATE INDEX mem_gift_plans_next ON mem_gift_plans (org_id, status, next_on);
CREATE INDEX mem_gift_plans_person ON mem_gift_plans (org_id, person_id);
