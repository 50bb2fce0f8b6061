-- The search words of people carry the person's names, in the key: a search
-- picks its page of people in name order from this index alone (the names
-- follow the word, then the person), and reads just that page's people,
-- instead of reading every matching person to sort them. The names change
-- only with the person, whose words are then written again. Rebuilt by
-- copy, which both engines support.
CREATE TABLE people_terms_new (
    org_id TEXT NOT NULL,
    term TEXT NOT NULL,
    family_name TEXT NOT NULL DEFAULT '',
    given_name TEXT NOT NULL DEFAULT '',
    person_id TEXT NOT NULL,
    PRIMARY KEY (org_id, term, family_name, given_name, person_id)
);
INSERT INTO people_terms_new (org_id, term, family_name, given_name, person_id)
    SELECT t.org_id, t.term, p.family_name, p.given_name, t.person_id
    FROM people_terms t JOIN people p ON p.id = t.person_id;
DROP TABLE people_terms;
ALTER TABLE people_terms_new RENAME TO people_terms;
CREATE INDEX people_terms_person_term ON people_terms (person_id, term);
