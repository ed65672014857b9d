"""What the attribution layer checks about itself, as plain queries (defs/ wires them)."""
from __future__ import annotations

from crm_platform.attribution.config import RULE_MODELS
from crm_platform.ingest.checks import CheckResult
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render

CREDITS = ("attribution", "credits")


def credit_balance(wh: Warehouse) -> list[dict]:
    sql, params = render(wh, load("crm_platform.attribution", "credit_balance"), {"rule_models": list(RULE_MODELS)})
    return wh.fetch_arrow(sql, params).to_pylist()


def evaluate(wh: Warehouse) -> list[CheckResult]:
    rows = credit_balance(wh)
    broken = [r for r in rows if r["uncredited"] or r["credit_off"] or r["revenue_off"]]
    return [CheckResult(
        CREDITS, "credits_sum_to_conversions", not broken, "ERROR",
        "Every model credits every conversion exactly once in total (credits sum to 1, revenue credits to its revenue)."
        if not broken else f"{len(broken)} model(s) with unbalanced credits: "
        + ", ".join(f"{r['model']} ({r['uncredited']} uncredited, {r['credit_off']} off in credit, "
                    f"{r['revenue_off']} off in revenue)" for r in broken),
        {"models_checked": len(rows)})]
