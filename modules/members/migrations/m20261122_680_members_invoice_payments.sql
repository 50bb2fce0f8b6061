-- Payments of dues invoices typed on the members pages (dues path
-- `invoice`), by the request key their form or API call carried: sent
-- twice, a payment is recorded once. The payment itself is invoicing's
-- (`inv_payments`); this table only remembers which key made it.
CREATE TABLE mem_invoice_payments (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    request_key TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    period_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, request_key)
);
