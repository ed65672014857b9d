"""The summary `crm-platform demo` prints: one paragraph per layer, from the warehouse itself."""
from __future__ import annotations

import json

from crm_platform.warehouse import Warehouse

NOT_BUILT = "not built yet"


def _scalar(wh: Warehouse, sql: str):
    return wh.fetchall(sql)[0][0]


def _section(wh: Warehouse, title: str, needs: list[tuple[str, str]], render) -> list[str]:
    missing = [f"{s}.{t}" for s, t in needs if not wh.table_exists(s, t)]
    if missing:
        return [f"{title}: {NOT_BUILT} ({', '.join(missing)} missing)"]
    return [f"{title}:"] + ["  " + line for line in render()]


def demo_summary(wh: Warehouse) -> str:
    t = wh.table_name
    out: list[str] = ["", "crm_platform demo summary", "========================="]

    out += _section(wh, "tracking plan", [("governance", "tracking_plan")], lambda: [
        "{} event types, {} versions, {} properties ({} PII), plan version {}".format(*wh.fetchall(
            f"select count(distinct event_type), count(distinct event_type || schema_version), count(*), "
            f"count(*) filter (where pii), any_value(plan_version) from {t('governance', 'tracking_plan')}")[0])])

    out += _section(wh, "events", [("core", "events"), ("core", "quarantine"), ("core", "ingest_ledger")], lambda: [
        "{:,} accepted, {:,} duplicates, {:,} quarantined, from {:,} files".format(*wh.fetchall(
            f"select coalesce(sum(events_accepted), 0), coalesce(sum(events_duplicate), 0), "
            f"coalesce(sum(records_quarantined), 0), count(*) from {t('core', 'ingest_ledger')}")[0]),
        f"{_scalar(wh, 'select count(*) from ' + t('core', 'events')):,} rows in core.events"])

    out += _section(wh, "identity", [("identity", "lead_identity_map")], lambda: [
        "{:,} source records resolve to {:,} canonical leads".format(*wh.fetchall(
            f"select count(*), count(distinct lead_id) from {t('identity', 'lead_identity_map')}")[0])]
        + ([(f"{_scalar(wh, f'''select count(*) from {t('core', 'events')} where event_type = 'lead_merged' '''):,}"
             " lead_merged events")] if wh.table_exists("core", "events") else []))

    def attribution() -> list[str]:
        rows = wh.fetchall(f"select model, channel, conversions, revenue from {t('attribution', 'summary')} "
                           "order by model, conversions desc")
        lines, current = [], None
        for model, channel, conversions, revenue in rows:
            if model != current:
                lines.append(f"{model}:")
                current = model
            lines.append(f"  {channel:<16} {conversions:8.1f} conversions  {revenue:14,.0f} revenue")
        return lines

    out += _section(wh, "attribution by channel", [("attribution", "summary")], attribution)

    def scoring() -> list[str]:
        row = wh.fetchall(f"select model_version, metrics from {t('ml', 'model_registry')} "
                        "where status = 'promoted' order by trained_at desc limit 1")
        if not row:
            return ["no model registered"]
        metrics = json.loads(row[0][1]) if isinstance(row[0][1], str) else row[0][1]
        auc = metrics.get("roc_auc", metrics.get("auc"))
        return [f"model {row[0][0]}: test ROC AUC {auc}"]

    out += _section(wh, "lead scoring", [("ml", "model_registry")], scoring)

    def marts() -> list[str]:
        leads, open_leads, won = wh.fetchall(
            f"select count(*), count(*) filter (where open_opportunities > 0), coalesce(sum(won_revenue), 0) "
            f"from {t('marts', 'lead_latest_state')}")[0]
        visits, cohorts = (_scalar(wh, f"select count(*) from {t('marts', 'stage_durations')}"),
                           _scalar(wh, f"select count(distinct cohort_month) from {t('marts', 'cohort_conversion')}"))
        return [(f"{leads:,} leads in lead_latest_state ({open_leads:,} with an open opportunity, "
                 f"{won:,.0f} won revenue), {visits:,} stage visits, {cohorts:,} monthly cohorts")]

    out += _section(wh, "marts", [("marts", "lead_latest_state"), ("marts", "stage_durations"),
                                  ("marts", "cohort_conversion")], marts)
    return "\n".join(out)
