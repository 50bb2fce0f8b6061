-- Invoicing: what is billed. Portable SQL (SQLite and PostgreSQL).
-- Amounts are BIGINT cents; quantities BIGINT thousandths (1.5 => 1500);
-- VAT rates BIGINT hundredths of a percent (20 % => 2000, 5.5 % => 550);
-- calendar dates TEXT 'YYYY-MM-DD'; times BIGINT UTC milliseconds.

-- The seller's identity and the organisation's invoicing settings. The
-- identity is copied into each document when it is validated, so a later
-- change (a new address) never alters an issued invoice.
CREATE TABLE inv_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    legal_name TEXT NOT NULL,
    legal_form TEXT NOT NULL DEFAULT '',
    share_capital TEXT NOT NULL DEFAULT '',
    siren TEXT NOT NULL DEFAULT '',
    siret TEXT NOT NULL DEFAULT '',
    vat_number TEXT NOT NULL DEFAULT '',
    rcs TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    postcode TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT 'FR',
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    iban TEXT NOT NULL DEFAULT '',
    bic TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL DEFAULT 'EUR',
    -- 'normal' or 'franchise' (franchise en base: no VAT, art. 293 B mention).
    vat_regime TEXT NOT NULL DEFAULT 'normal',
    payment_terms_days BIGINT NOT NULL DEFAULT 30,
    -- The late-payment penalty mention (rate), printed on business invoices.
    late_penalty TEXT NOT NULL DEFAULT '',
    -- Cooperative host rules: no invoice below this total (pending items
    -- carry over), and days of grace before overage items are billed.
    min_invoice_cents BIGINT NOT NULL DEFAULT 0,
    overage_grace_days BIGINT NOT NULL DEFAULT 0,
    -- Ledger accounts and journals used when posting.
    receivable_account TEXT NOT NULL DEFAULT '411',
    revenue_account TEXT NOT NULL DEFAULT '706',
    vat_account TEXT NOT NULL DEFAULT '44571',
    sales_journal TEXT NOT NULL DEFAULT 'VE',
    -- Put the issue year in document numbers (F2026-00001) or not (F00001).
    number_with_year BIGINT NOT NULL DEFAULT 1,
    -- The last customer number given (aux accounts C00001, C00002…).
    last_customer_no BIGINT NOT NULL DEFAULT 0,
    -- Days a quote stays valid by default.
    quote_validity_days BIGINT NOT NULL DEFAULT 30,
    updated_at BIGINT NOT NULL
);

-- VAT rates with validity periods: a new rate for a code starts on a date;
-- documents keep the rate they were computed with.
CREATE TABLE inv_vat_rates (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    label TEXT NOT NULL,
    -- EN 16931 VAT category: S, Z, E, AE, K, G, O.
    category TEXT NOT NULL,
    rate_bp BIGINT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    exemption_reason TEXT,
    account TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inv_vat_rates_code_from ON inv_vat_rates (org_id, code, valid_from);

CREATE TABLE inv_products (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- For the revenue-by-type report: service, goods, subscription, hosting, time, due…
    product_type TEXT NOT NULL,
    unit_code TEXT NOT NULL DEFAULT 'C62',
    unit_price_cents BIGINT NOT NULL,
    vat_code TEXT NOT NULL,
    revenue_account TEXT,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inv_products_sku ON inv_products (org_id, sku);

-- Customers: a person or an organisation, optionally linked to a person of
-- the core directory.
CREATE TABLE inv_customers (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT,
    -- 'individual' or 'business' (businesses get the 40 € indemnity mention).
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    siren TEXT NOT NULL DEFAULT '',
    siret TEXT NOT NULL DEFAULT '',
    vat_number TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    postcode TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT 'FR',
    delivery_address TEXT NOT NULL DEFAULT '',
    delivery_postcode TEXT NOT NULL DEFAULT '',
    delivery_city TEXT NOT NULL DEFAULT '',
    delivery_country TEXT NOT NULL DEFAULT '',
    payment_terms_days BIGINT,
    lang TEXT NOT NULL DEFAULT 'fr',
    -- Auxiliary account in the ledger (FEC CompAuxNum), e.g. C000123.
    aux_account TEXT NOT NULL,
    archived BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX inv_customers_org_name ON inv_customers (org_id, name);
CREATE UNIQUE INDEX inv_customers_aux ON inv_customers (org_id, aux_account);

-- Numbering series: the last number given, updated in the validating
-- transaction (row lock on PostgreSQL, the write lock on SQLite), so numbers
-- are continuous, never skipped nor reused, across replicas.
CREATE TABLE inv_series (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    -- 'quote', 'invoice' or 'credit_note'.
    kind TEXT NOT NULL,
    -- A pattern such as 'F{YYYY}-' ; the number is the prefix and the sequence on 5 digits.
    prefix TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    -- The default series of its kind (exactly one per kind).
    is_default BIGINT NOT NULL DEFAULT 0,
    last_number BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, code)
);

-- Quotes, invoices and credit notes.
CREATE TABLE inv_documents (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    series TEXT NOT NULL,
    -- Given at validation; NULL for drafts.
    number TEXT,
    seq BIGINT,
    -- Invoices and credit notes: draft, validated, sent, partially_paid, paid, cancelled (fully credited).
    -- Quotes: draft, sent, accepted, refused, invoiced, expired.
    status TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES inv_customers (id),
    -- Frozen copies (JSON) of the seller and buyer at validation.
    seller_snapshot TEXT,
    buyer_snapshot TEXT,
    issue_date TEXT,
    due_date TEXT,
    valid_until TEXT,
    delivery_date TEXT,
    period_start TEXT,
    period_end TEXT,
    currency TEXT NOT NULL,
    lang TEXT NOT NULL,
    -- 'goods', 'services' or 'mixed' (the operation category mention).
    operation_category TEXT NOT NULL,
    buyer_reference TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    net_cents BIGINT NOT NULL DEFAULT 0,
    vat_cents BIGINT NOT NULL DEFAULT 0,
    gross_cents BIGINT NOT NULL DEFAULT 0,
    -- Settled by payments and by credit notes allocated to it.
    paid_cents BIGINT NOT NULL DEFAULT 0,
    credited_cents BIGINT NOT NULL DEFAULT 0,
    -- quote -> invoice, invoice -> credit note.
    origin_id TEXT,
    subscription_id TEXT,
    source_module TEXT,
    source_ref TEXT,
    reminder_level BIGINT NOT NULL DEFAULT 0,
    ledger_entry_id TEXT,
    pdf_file_id TEXT,
    -- Days to pay, copied from the customer or the settings.
    payment_terms_days BIGINT,
    -- Billing run that made it (subscriptions, pending items).
    run_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    validated_at BIGINT,
    sent_at BIGINT,
    paid_at BIGINT
);
CREATE UNIQUE INDEX inv_documents_number ON inv_documents (org_id, series, seq);
CREATE INDEX inv_documents_org_kind ON inv_documents (org_id, kind, status, issue_date);
CREATE INDEX inv_documents_customer ON inv_documents (org_id, customer_id);

CREATE TABLE inv_lines (
    document_id TEXT NOT NULL REFERENCES inv_documents (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    product_id TEXT,
    product_type TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    quantity_milli BIGINT NOT NULL,
    unit_code TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    -- Discount in hundredths of a percent.
    discount_bp BIGINT NOT NULL DEFAULT 0,
    net_cents BIGINT NOT NULL,
    vat_code TEXT NOT NULL,
    vat_category TEXT NOT NULL,
    vat_rate_bp BIGINT NOT NULL,
    exemption_reason TEXT,
    revenue_account TEXT NOT NULL,
    period_start TEXT,
    period_end TEXT,
    PRIMARY KEY (document_id, position)
);

-- Each sending of a document by email, with the outbox's delivery status.
CREATE TABLE inv_sends (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES inv_documents (id) ON DELETE CASCADE,
    to_email TEXT NOT NULL,
    outbox_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);

-- What other modules (dues, hosting resources, validated time, hour-bank
-- sales) and subscriptions ask to bill: collected per customer by a billing
-- run into one invoice. Items of a customer whose total is below the
-- minimum stay pending (carry over); overage items wait until not_before.
CREATE TABLE inv_pending_items (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES inv_customers (id),
    source_module TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    product_id TEXT,
    name TEXT NOT NULL,
    quantity_milli BIGINT NOT NULL,
    unit_code TEXT NOT NULL DEFAULT 'C62',
    unit_price_cents BIGINT NOT NULL,
    vat_code TEXT NOT NULL,
    revenue_account TEXT,
    period_start TEXT,
    period_end TEXT,
    not_before TEXT,
    document_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inv_pending_source ON inv_pending_items (org_id, source_module, source_ref);
CREATE INDEX inv_pending_open ON inv_pending_items (org_id, document_id, customer_id);

CREATE TABLE inv_subscriptions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES inv_customers (id),
    label TEXT NOT NULL,
    -- monthly, quarterly, yearly; the anniversary is anchor_date's day.
    frequency TEXT NOT NULL,
    anchor_date TEXT NOT NULL,
    next_date TEXT NOT NULL,
    end_date TEXT,
    -- Periods billed so far: the next one starts anchor + n periods (no drift at month ends).
    periods_billed BIGINT NOT NULL DEFAULT 0,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX inv_subscriptions_due ON inv_subscriptions (org_id, active, next_date);
CREATE TABLE inv_subscription_lines (
    subscription_id TEXT NOT NULL REFERENCES inv_subscriptions (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    product_id TEXT,
    name TEXT NOT NULL,
    quantity_milli BIGINT NOT NULL,
    unit_code TEXT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    vat_code TEXT NOT NULL,
    revenue_account TEXT,
    PRIMARY KEY (subscription_id, position)
);

-- Billing runs: resumable (each subscription period / customer is billed
-- once: the run records its cursor and the invoices it made).
CREATE TABLE inv_runs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    run_date TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    invoices BIGINT NOT NULL DEFAULT 0,
    carried_over BIGINT NOT NULL DEFAULT 0,
    cursor TEXT,
    -- Customers held back (a legal field missing): their items stay pending.
    failed BIGINT NOT NULL DEFAULT 0,
    -- Stop (status paused) after this many customers; a resume continues.
    stop_after BIGINT,
    job_id TEXT,
    created_by TEXT,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX inv_runs_org ON inv_runs (org_id, started_at);
