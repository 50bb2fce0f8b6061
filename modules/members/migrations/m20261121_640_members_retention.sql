-- The retention period of former members' personal data, per organisation:
-- once `months` have passed since a person's last membership ended, the
-- daily job `members.retention` erases (pseudonymises) them. NULL: kept.
CREATE TABLE mem_retention (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    months BIGINT,
    updated_at BIGINT NOT NULL
);
