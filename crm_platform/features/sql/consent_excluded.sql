-- The canonical leads the features leave out for want of a consent that gates them
-- (crm_platform/governance/consent.yaml), by their current consent: computed from the whole of
-- core.events, whatever events a run or the leakage check reads, so that a snapshot recomputed on
-- events cut at its as_of leaves out the same leads.
SELECT lead_id FROM ({consent_excluded_leads}) AS excluded
