-- The daily retention job also pseudonymises tax receipts whose six years
-- of keeping have passed (LPF art. L102 E), which concerns every
-- organisation, retention period set or not: its schedule, created off
-- until now, is switched on where it exists (it erases former members only
-- when a period is set).
UPDATE schedules SET enabled = 1 WHERE name = 'members.retention';
