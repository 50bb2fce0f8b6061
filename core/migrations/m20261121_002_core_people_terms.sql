-- Word-prefix search over the people directory, portable to both databases:
-- each person's names, email and phone split into folded ASCII words; a
-- search for "mar dub" finds people having a word starting with "mar" and
-- one starting with "dub" by index range scans instead of scanning rows.
CREATE TABLE people_terms (
    org_id TEXT NOT NULL,
    term TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, term, person_id)
);
CREATE INDEX people_terms_person ON people_terms (person_id);
