-- Monthly creation cohorts (month of a canonical lead's first lead_created) by whole weeks since
-- creation, 0 up to the last week the cohort's earliest lead has reached at the data watermark.
-- converted_leads: leads whose first conversion (attribution.conversions) came within that many
-- weeks of their creation (a conversion dated before creation counts in week 0); conversions and
-- revenue: all their deals so far; leads_observed: leads created at least that many weeks before
-- the watermark (the later weeks of a young cohort are still filling).
WITH watermark AS ({watermark}
), created AS (
    SELECT canonical_lead_id AS lead_key, min(occurred_at) AS created_at
    FROM {core.events}
    WHERE event_type = 'lead_created' AND canonical_lead_id IS NOT NULL
    GROUP BY canonical_lead_id
), cohorts AS (
    SELECT c.lead_key, c.created_at, CAST(date_trunc('month', c.created_at) AS DATE) AS cohort_month,
           CAST(floor(date_diff('microsecond', c.created_at, w.data_watermark) / $week_us) AS BIGINT) AS weeks_observed
    FROM created AS c
    CROSS JOIN watermark AS w
), conversions AS ({conversions}
), deal_weeks AS (
    SELECT c.cohort_month, c.lead_key, coalesce(k.revenue, 0.0) AS deal_revenue,
           greatest(0, CAST(floor(date_diff('microsecond', c.created_at, k.conversion_at) / $week_us) AS BIGINT))
               AS week_no
    FROM cohorts AS c
    JOIN conversions AS k ON k.lead_id = c.lead_key
), sizes AS (
    SELECT cohort_month AS size_month, count(*) AS cohort_leads, max(weeks_observed) AS last_week
    FROM cohorts
    GROUP BY cohort_month
), weeks AS (
    SELECT unnest($weeks) AS week_index
), cells AS (
    SELECT s.size_month, s.cohort_leads, wk.week_index
    FROM sizes AS s
    CROSS JOIN weeks AS wk
    WHERE wk.week_index <= s.last_week
), first_conversions AS (
    SELECT cohort_month AS cell_month, first_week AS cell_week, count(*) AS cell_count
    FROM (SELECT cohort_month, lead_key, min(week_no) AS first_week FROM deal_weeks GROUP BY cohort_month, lead_key) AS f
    GROUP BY cohort_month, first_week
), deals AS (
    SELECT cohort_month AS cell_month, week_no AS cell_week, count(*) AS cell_count, sum(deal_revenue) AS cell_revenue
    FROM deal_weeks
    GROUP BY cohort_month, week_no
), observed AS (
    SELECT cohort_month AS cell_month, weeks_observed AS cell_week, count(*) AS cell_count
    FROM cohorts
    GROUP BY cohort_month, weeks_observed
), cumulative AS (
    SELECT x.size_month, x.week_index, x.cohort_leads,
           sum(coalesce(o.cell_count, 0)) OVER (PARTITION BY x.size_month ORDER BY x.week_index DESC
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS observed_leads,
           sum(coalesce(f.cell_count, 0)) OVER (PARTITION BY x.size_month ORDER BY x.week_index
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS converted_count,
           sum(coalesce(d.cell_count, 0)) OVER (PARTITION BY x.size_month ORDER BY x.week_index
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS deal_count,
           sum(coalesce(d.cell_revenue, 0.0)) OVER (PARTITION BY x.size_month ORDER BY x.week_index
                                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS deal_revenue_sum
    FROM cells AS x
    LEFT JOIN first_conversions AS f ON f.cell_month = x.size_month AND f.cell_week = x.week_index
    LEFT JOIN deals AS d ON d.cell_month = x.size_month AND d.cell_week = x.week_index
    LEFT JOIN observed AS o ON o.cell_month = x.size_month AND o.cell_week = x.week_index
)
SELECT size_month AS cohort_month, week_index AS weeks_since_created, cohort_leads AS leads,
       observed_leads AS leads_observed, converted_count AS converted_leads,
       CAST(converted_count AS DOUBLE) / cohort_leads AS conversion_rate,
       deal_count AS conversions, deal_revenue_sum AS revenue
FROM cumulative
