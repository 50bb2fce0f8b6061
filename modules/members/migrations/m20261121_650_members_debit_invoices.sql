-- Direct debits of dues billed by invoice: such a debit pays an invoice
-- (through a payment of the invoicing module) instead of recording a
-- receipt, so `due_id` becomes optional and the invoice and payment are
-- kept. SQLite cannot drop a NOT NULL: the table is rebuilt, the same way on
-- both databases.
CREATE TABLE mem_debits_next (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    batch_id TEXT NOT NULL REFERENCES mem_debit_batches (id),
    mandate_id TEXT NOT NULL REFERENCES mem_mandates (id),
    due_id TEXT REFERENCES mem_dues (id),
    invoice_id TEXT,
    payment_id TEXT,
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
INSERT INTO mem_debits_next (id, org_id, batch_id, mandate_id, due_id, person_id, amount_cents, end_to_end_id, sequence, status, reason, returned_on, reversal_entry_id, created_at)
SELECT id, org_id, batch_id, mandate_id, due_id, person_id, amount_cents, end_to_end_id, sequence, status, reason, returned_on, reversal_entry_id, created_at FROM mem_debits;
DROP TABLE mem_debits;
ALTER TABLE mem_debits_next RENAME TO mem_debits;
CREATE INDEX mem_debits_mandate ON mem_debits (org_id, mandate_id, status);
CREATE INDEX mem_debits_batch ON mem_debits (org_id, batch_id);
CREATE INDEX mem_debits_invoice ON mem_debits (org_id, invoice_id);
