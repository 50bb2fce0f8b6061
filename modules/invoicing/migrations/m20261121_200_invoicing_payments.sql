-- Invoicing: what is received. Portable SQL (SQLite and PostgreSQL).
-- Amounts are BIGINT cents; calendar dates TEXT 'YYYY-MM-DD'; times BIGINT
-- UTC milliseconds; flags BIGINT 0/1.

-- Where payments are posted: accounts and journals of the ledger.
CREATE TABLE inv_pay_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    bank_account TEXT NOT NULL DEFAULT '512',
    cash_account TEXT NOT NULL DEFAULT '531',
    -- Cheques received wait here until a deposit slip takes them to the bank.
    cheque_account TEXT NOT NULL DEFAULT '5112',
    -- Card payments at a terminal, settled by the bank.
    card_account TEXT NOT NULL DEFAULT '512',
    -- Online payments wait at the provider (Stripe balance) until its payout.
    online_account TEXT NOT NULL DEFAULT '517',
    bank_journal TEXT NOT NULL DEFAULT 'BQ',
    cash_journal TEXT NOT NULL DEFAULT 'CA',
    updated_at BIGINT NOT NULL
);

-- Cheque remittances: the cheques taken to the bank together.
CREATE TABLE inv_deposit_slips (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    number TEXT NOT NULL,
    bank_account TEXT NOT NULL,
    deposit_date TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    cheque_count BIGINT NOT NULL,
    ledger_entry_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inv_deposit_slips_seq ON inv_deposit_slips (org_id, seq);

-- Money received from a customer. What is not allocated to invoices is the
-- customer's credit (only when the payment was recorded with keep_credit).
CREATE TABLE inv_payments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES inv_customers (id),
    -- cash, cheque, transfer, card, online.
    method TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    received_date TEXT NOT NULL,
    payer TEXT NOT NULL DEFAULT '',
    cheque_bank TEXT NOT NULL DEFAULT '',
    cheque_number TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',
    provider TEXT,
    provider_ref TEXT,
    deposit_slip_id TEXT REFERENCES inv_deposit_slips (id),
    ledger_entry_id TEXT,
    -- 'recorded' or 'cancelled' (its entry reversed by reversal_entry_id).
    status TEXT NOT NULL,
    reversal_entry_id TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created_by TEXT,
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX inv_payments_org_date ON inv_payments (org_id, received_date);
CREATE INDEX inv_payments_customer ON inv_payments (org_id, customer_id);
CREATE UNIQUE INDEX inv_payments_provider_ref ON inv_payments (org_id, provider, provider_ref);

-- Which invoices a payment settles, and by how much. Using a customer's
-- credit later is one more allocation of the same payment.
CREATE TABLE inv_allocations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    payment_id TEXT NOT NULL REFERENCES inv_payments (id),
    document_id TEXT NOT NULL REFERENCES inv_documents (id),
    amount_cents BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX inv_allocations_payment ON inv_allocations (org_id, payment_id);
CREATE INDEX inv_allocations_document ON inv_allocations (org_id, document_id);

-- Reminder levels: sent delay_days after the due date; the level with
-- suspend = 1 tells modules to suspend the service.
CREATE TABLE inv_reminder_levels (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    level BIGINT NOT NULL,
    delay_days BIGINT NOT NULL,
    subject_fr TEXT NOT NULL,
    body_fr TEXT NOT NULL,
    subject_en TEXT NOT NULL,
    body_en TEXT NOT NULL,
    suspend BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, level)
);

-- Each reminder sent for an invoice.
CREATE TABLE inv_reminders (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES inv_documents (id),
    level BIGINT NOT NULL,
    to_email TEXT NOT NULL,
    due_cents BIGINT NOT NULL,
    outbox_id TEXT,
    manual BIGINT NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX inv_reminders_document ON inv_reminders (org_id, document_id);

-- Online payment providers of an organisation. Secrets are sealed with the
-- instance's data key (core `sealed`), bound to the organisation and field.
CREATE TABLE inv_provider_configs (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    secret_key_sealed TEXT,
    webhook_secret_sealed TEXT,
    api_base TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);

-- Checkout sessions opened at a provider for an invoice's amount due.
CREATE TABLE inv_checkout_sessions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES inv_documents (id),
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    provider_session_id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- open, completed.
    status TEXT NOT NULL,
    payment_id TEXT,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE UNIQUE INDEX inv_checkout_provider_id ON inv_checkout_sessions (provider, provider_session_id);

-- Webhook events received: the primary key makes a replayed event a no-op.
CREATE TABLE inv_provider_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    payment_id TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- Public "pay online" links of invoices: an unguessable token per invoice.
CREATE TABLE inv_pay_links (
    token TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES inv_documents (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inv_pay_links_document ON inv_pay_links (org_id, document_id);

-- Services suspended by a module because of an unpaid invoice. When the
-- invoice is paid the suspension is lifted and job_kind is enqueued, once.
CREATE TABLE inv_suspensions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    target_ref TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES inv_documents (id),
    job_kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at BIGINT NOT NULL,
    lifted_at BIGINT,
    job_id TEXT
);
CREATE UNIQUE INDEX inv_suspensions_target ON inv_suspensions (org_id, module, target_ref, document_id);
CREATE INDEX inv_suspensions_document ON inv_suspensions (org_id, document_id);
