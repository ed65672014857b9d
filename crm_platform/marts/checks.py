"""What the marts check about themselves, as plain queries (defs/ wires them)."""
from __future__ import annotations

from datetime import date

from crm_platform.ingest.checks import CheckResult
from crm_platform.ingest.sql_validation import HASH_PREFIX
from crm_platform.marts import tables
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse

LEAD_STATE = (tables.SCHEMA, "lead_latest_state")
FUNNEL = (tables.SCHEMA, "funnel_daily")


def no_pii(wh: Warehouse, plan: TrackingPlan) -> CheckResult:
    """No column of lead_latest_state is a PII property, and no text value in it is a keyed PII hash."""
    table = tables.lead_latest_state(plan)
    pii = tables.pii_properties(plan)
    named = sorted(c for c in table.column_names if c in pii)
    text = [c for c, t in table.columns if t == "string"]
    counts = wh.fetchall("select " + ", ".join(
        f"count(*) filter (where starts_with(\"{c}\", '{HASH_PREFIX}'))" for c in text)
        + f" from {wh.table_name(*LEAD_STATE)}")[0] if text else ()
    hashed = {c: int(n) for c, n in zip(text, counts) if n}
    ok = not named and not hashed
    return CheckResult(LEAD_STATE, "no_pii", ok, "ERROR",
                       "No column is a PII property and no value is a PII hash." if ok else
                       f"PII in marts.lead_latest_state: columns {named or 'none'}, hashed values in {hashed or 'none'}",
                       {"pii_properties": len(pii), "text_columns_scanned": len(text)})


def one_row_per_lead(wh: Warehouse) -> CheckResult:
    rows, leads = wh.fetchall(f"select count(*), count(distinct lead_id) from {wh.table_name(*LEAD_STATE)}")[0]
    return CheckResult(LEAD_STATE, "one_row_per_lead", rows == leads, "ERROR",
                       f"{rows} rows for {leads} canonical leads.", {"rows": int(rows), "leads": int(leads)})


def funnel_matches_conversions(wh: Warehouse, days: tuple[date, date] | None = None) -> CheckResult:
    """funnel_daily counts every conversion of attribution.conversions once, with its revenue (of the
    days [start, end) only, when given: the partitions a run wrote)."""
    between = ("" if days is None else
               f" where {{day}} >= DATE '{days[0].isoformat()}' and {{day}} < DATE '{days[1].isoformat()}'")
    funnel = wh.fetchall(f"select coalesce(sum(conversions), 0), coalesce(sum(revenue), 0) "
                         f"from {wh.table_name(*FUNNEL)}" + between.format(day="day"))[0]
    if not wh.table_exists("attribution", "conversions"):
        return CheckResult(FUNNEL, "conversions_reconcile", int(funnel[0]) == 0, "WARN",
                           "attribution.conversions does not exist yet: no conversions in the funnel.")
    source = wh.fetchall(f"select count(*), coalesce(sum(coalesce(revenue, 0)), 0) "
                         f"from {wh.table_name('attribution', 'conversions')}"
                         + between.format(day="CAST(conversion_at AS DATE)"))[0]
    ok = int(funnel[0]) == int(source[0]) and abs(float(funnel[1]) - float(source[1])) <= 1e-6 * max(1.0, abs(float(source[1])))
    scope = "" if days is None else f" ({days[0]} to {days[1]}, exclusive)"
    return CheckResult(FUNNEL, "conversions_reconcile", ok, "WARN",
                       f"funnel{scope}: {int(funnel[0])} conversions, {float(funnel[1]):,.2f} revenue; "
                       f"attribution.conversions: {int(source[0])}, {float(source[1]):,.2f}.",
                       {"funnel_conversions": int(funnel[0]), "attribution_conversions": int(source[0])})
