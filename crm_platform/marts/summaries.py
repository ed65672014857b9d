"""Small aggregates of each mart for the UI (what a person would query first), as Arrow tables."""
from __future__ import annotations

import pyarrow as pa

from crm_platform.marts.tables import SCHEMA
from crm_platform.warehouse import Warehouse

_QUERIES = {
    "lead_latest_state": (
        "leads_by_stage",
        ("select coalesce(current_stage, '(none)') as stage, count(*) as leads, sum(touches) as total_touches, "
         "round(sum(open_opportunity_amount), 2) as open_amount, round(sum(won_revenue), 2) as won_total "
         "from {t} group by coalesce(current_stage, '(none)') order by count(*) desc, coalesce(current_stage, '(none)')")),
    "funnel_daily": (
        "totals_by_channel",
        ("select channel, sum(leads_created) as leads, sum(opportunities_created) as opportunities, "
         "sum(conversions) as total_conversions, round(sum(revenue), 2) as total_revenue "
         "from {t} group by channel order by sum(leads_created) desc, channel")),
    "stage_durations": (
        "hours_by_stage",
        ("select stage, count(*) as visits, count(*) filter (where is_current) as current_visits, "
         "round(median(hours_in_stage), 1) as median_hours, round(avg(hours_in_stage), 1) as mean_hours "
         "from {t} group by stage order by count(*) desc, stage")),
    "cohort_conversion": (
        "latest_week_by_cohort",
        ("select c.cohort_month, c.weeks_since_created, c.leads, c.converted_leads, round(c.conversion_rate, 4) as rate_so_far "
         "from {t} as c join (select cohort_month as m, max(weeks_since_created) as w from {t} group by cohort_month) as l "
         "on l.m = c.cohort_month and l.w = c.weeks_since_created order by c.cohort_month")),
    "campaign_performance": (
        "by_model",
        ("select model, round(sum(conversions), 2) as total_conversions, round(sum(revenue), 2) as total_revenue, "
         "round(sum(spend), 2) as total_spend from {t} group by model order by model")),
}
# The preview's order: the rows a person looks at first.
PREVIEW_ORDER = {
    "lead_latest_state": "won_revenue desc nulls last, lead_id",
    "funnel_daily": "day desc, channel",
    "stage_durations": "lead_id, visit",
    "cohort_conversion": "cohort_month, weeks_since_created",
    "campaign_performance": "spend desc nulls last, channel, campaign_id, model",
}


def summary(wh: Warehouse, name: str) -> tuple[str, pa.Table]:
    """(label, table) of the mart's headline aggregate."""
    label, sql = _QUERIES[name]
    return label, wh.fetch_arrow(sql.format(t=wh.table_name(SCHEMA, name)))
