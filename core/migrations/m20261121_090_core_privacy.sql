-- The register of erasures: who was pseudonymised in an organisation, when,
-- why (an administrator on request, or the retention period) and under
-- which pseudonym. It keeps no erased value; it stops a second erasure and
-- lets the retention job skip people already erased.
CREATE TABLE privacy_erasures (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    reason TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, person_id)
);
