-- Members and dues: settings, membership types, periods (history), events,
-- member profiles (postal address), households, dues with continuous receipt
-- numbers. People themselves are the core's `people`.
CREATE TABLE mem_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    dues_path TEXT NOT NULL,
    dues_account TEXT NOT NULL,
    bank_account TEXT NOT NULL,
    cash_account TEXT NOT NULL,
    donations_account TEXT NOT NULL,
    legal_name TEXT NOT NULL,
    street TEXT NOT NULL,
    postcode TEXT NOT NULL,
    city TEXT NOT NULL,
    object TEXT NOT NULL,
    organism_kind TEXT NOT NULL,
    signatory TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE mem_types (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    fee_rule TEXT NOT NULL,
    fee_cents BIGINT NOT NULL,
    tiers TEXT NOT NULL,
    period_rule TEXT NOT NULL,
    school_start_month BIGINT NOT NULL,
    voting BIGINT NOT NULL,
    archived BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE mem_households (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    street TEXT NOT NULL,
    postcode TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE mem_profiles (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    street TEXT NOT NULL,
    postcode TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    household_id TEXT REFERENCES mem_households (id) ON DELETE SET NULL,
    household_role TEXT,
    card_token TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, person_id)
);
CREATE UNIQUE INDEX mem_profiles_card ON mem_profiles (card_token);
CREATE INDEX mem_profiles_household ON mem_profiles (org_id, household_id);
CREATE TABLE mem_periods (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    type_id TEXT NOT NULL REFERENCES mem_types (id),
    origin TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT,
    fee_cents BIGINT NOT NULL,
    tier TEXT,
    closed_on TEXT,
    closed_reason TEXT,
    request_key TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, request_key)
);
CREATE INDEX mem_periods_person ON mem_periods (org_id, person_id, type_id, starts_on);
CREATE INDEX mem_periods_ends ON mem_periods (org_id, ends_on);
CREATE TABLE mem_events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    period_id TEXT NOT NULL REFERENCES mem_periods (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    happened_on TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mem_events_person ON mem_events (org_id, person_id, happened_on);
CREATE TABLE mem_counters (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    last_number BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);
CREATE TABLE mem_dues (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    receipt_number BIGINT NOT NULL,
    person_id TEXT NOT NULL,
    payer_name TEXT NOT NULL,
    period_id TEXT,
    amount_cents BIGINT NOT NULL,
    method TEXT NOT NULL,
    paid_on TEXT NOT NULL,
    status TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    request_key TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, receipt_number),
    UNIQUE (org_id, request_key)
);
CREATE INDEX mem_dues_person ON mem_dues (org_id, person_id, paid_on);
CREATE INDEX mem_dues_period ON mem_dues (org_id, period_id);
CREATE TABLE mem_tax_receipts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    year BIGINT NOT NULL,
    person_id TEXT NOT NULL,
    donor_kind TEXT NOT NULL,
    donor TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    issued_on TEXT NOT NULL,
    batch BIGINT NOT NULL,
    token TEXT NOT NULL,
    emailed_to TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, number),
    UNIQUE (token)
);
CREATE INDEX mem_tax_receipts_year ON mem_tax_receipts (org_id, year);
CREATE TABLE mem_donations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    donor_kind TEXT NOT NULL,
    donor_name TEXT NOT NULL,
    siren TEXT,
    legal_form TEXT,
    amount_cents BIGINT NOT NULL,
    received_on TEXT NOT NULL,
    form TEXT NOT NULL,
    nature TEXT NOT NULL,
    method TEXT NOT NULL,
    recurring BIGINT NOT NULL,
    entry_id TEXT,
    receipt_id TEXT REFERENCES mem_tax_receipts (id),
    request_key TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, request_key)
);
CREATE INDEX mem_donations_person ON mem_donations (org_id, person_id, received_on);
CREATE INDEX mem_donations_receipt ON mem_donations (org_id, receipt_id);
CREATE TABLE mem_sepa_creditor (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    iban TEXT NOT NULL,
    bic TEXT NOT NULL,
    ics TEXT NOT NULL,
    street TEXT NOT NULL,
    postcode TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE mem_mandates (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    iban TEXT NOT NULL,
    bic TEXT,
    debtor_name TEXT NOT NULL,
    signed_on TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, reference)
);
CREATE INDEX mem_mandates_person ON mem_mandates (org_id, person_id, status);
CREATE TABLE mem_debit_batches (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    msg_id TEXT NOT NULL,
    collection_date TEXT NOT NULL,
    debit_count BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    xml TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE mem_debits (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    batch_id TEXT NOT NULL REFERENCES mem_debit_batches (id),
    mandate_id TEXT NOT NULL REFERENCES mem_mandates (id),
    due_id TEXT NOT NULL REFERENCES mem_dues (id),
    person_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    sequence TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    returned_on TEXT,
    reversal_entry_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, end_to_end_id)
);
CREATE INDEX mem_debits_mandate ON mem_debits (org_id, mandate_id, status);
CREATE INDEX mem_debits_batch ON mem_debits (org_id, batch_id);
