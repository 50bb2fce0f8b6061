-- The search words of people lose their foreign key to people: one check
-- per word (about fifteen per person) was most of the time of a large
-- import. The people service deletes a person's words itself, in the same
-- transaction as the person. Rebuilt by copy, which both engines support.
CREATE TABLE people_terms_new (
    org_id TEXT NOT NULL,
    term TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (org_id, term, person_id)
);
INSERT INTO people_terms_new (org_id, term, person_id) SELECT org_id, term, person_id FROM people_terms;
DROP TABLE people_terms;
ALTER TABLE people_terms_new RENAME TO people_terms;
CREATE INDEX people_terms_person_term ON people_terms (person_id, term);
