-- Mandates' IBANs are sealed at rest (core/src/sealed.rs) by the server:
-- new mandates are written sealed, and the job members.seal_ibans seals
-- the IBANs still in clear (SQL cannot: the key is not in the database).
-- What masked IBANs show (the first four characters, country and check
-- digits, and the last four) stays beside them in clear, so that lists,
-- exports and erasure need no key.
ALTER TABLE mem_mandates ADD COLUMN iban_hint TEXT;
UPDATE mem_mandates SET iban_hint = substr(iban, 1, 4) || substr(iban, length(iban) - 3)
    WHERE length(iban) >= 8 AND substr(iban, 1, 3) <> 's1.';
