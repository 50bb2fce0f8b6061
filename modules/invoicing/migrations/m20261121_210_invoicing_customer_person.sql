-- The customer of a person of the directory (members' dues invoices look it
-- up by person for each member invoiced: without this index each lookup
-- read every customer of the organisation, which made the yearly renewal
-- run of 50,000 members slow down as it created their customers).
CREATE INDEX inv_customers_person ON inv_customers (org_id, person_id);
