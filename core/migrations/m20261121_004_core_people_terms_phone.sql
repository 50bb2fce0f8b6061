-- Search, second version: the longest word of a search picks candidates by
-- index range scan; every other word is checked among the candidate's own
-- terms, read from this covering index. A phone number's terms are its
-- digits from each group to the end, so that "6 12 34" or "34 56" finds
-- "+33 6 12 34 56 78": the terms are rebuilt after this migration.
CREATE INDEX people_terms_person_term ON people_terms (person_id, term);
DROP INDEX people_terms_person;
