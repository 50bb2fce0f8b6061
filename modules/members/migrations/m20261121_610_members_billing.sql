-- Dues through invoices, renewal notices and reminders.
-- The invoice (inv_documents, invoicing module) that bills a period's dues.
ALTER TABLE mem_periods ADD COLUMN invoice_id TEXT;
CREATE INDEX mem_periods_invoice ON mem_periods (org_id, invoice_id);
-- When to send renewal notices and reminders (one row per organisation; defaults when absent).
CREATE TABLE mem_renewal_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    notice_days BIGINT NOT NULL,
    -- JSON array of days after a period's end, e.g. [15,45].
    reminder_days TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Each notice or reminder, once per person, period and kind (notice, reminder_15…).
CREATE TABLE mem_notices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    period_id TEXT NOT NULL REFERENCES mem_periods (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- The address written to; empty when the person has none (recorded, not mailed).
    sent_to TEXT NOT NULL,
    -- The renewal period recorded and invoiced with the notice (invoice path).
    renewal_period_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, person_id, period_id, kind)
);
CREATE INDEX mem_notices_person ON mem_notices (org_id, person_id, created_at);
