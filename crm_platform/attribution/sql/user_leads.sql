-- Each browser's user_id with the one canonical lead its events name; a user_id naming several
-- leads (a shared browser) has no row: its anonymous events stay unlinked rather than guessed.
SELECT user_id, min(canonical_lead_id) AS lead_id
FROM {core.events}
WHERE user_id IS NOT NULL AND canonical_lead_id IS NOT NULL
GROUP BY user_id
HAVING count(DISTINCT canonical_lead_id) = 1
