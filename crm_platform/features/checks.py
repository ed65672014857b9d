"""What the feature layer checks about itself (defs/ wires them).

Leakage: for sampled snapshots (and at most SAMPLE_LEADS leads of each), every feature is
recomputed from the events that occurred strictly before that as_of alone (core.events cut at
as_of) and compared with the stored rows. A feature that reads anything at or after as_of, however
it does it, gives a difference.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from crm_platform.features import run
from crm_platform.features.config import FeatureConfig
from crm_platform.ingest.checks import CheckResult
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render

FEATURES = ("features", "lead_features")
CUT_EVENTS = "(SELECT * FROM {core.events} WHERE occurred_at < $leak_cutoff)"
SAMPLE_LEADS = 20_000


def sample_snapshots(wh: Warehouse) -> list[datetime]:
    """The first, the middle and the last weekly snapshot (the watermark row is left out: cut at
    itself, it would agree by construction)."""
    rows = [r[0] for r in wh.fetchall(f"SELECT DISTINCT as_of FROM {wh.table_name(*FEATURES)} ORDER BY as_of")]
    weekly = rows[:-1] if len(rows) > 1 else rows
    return sorted({weekly[0], weekly[len(weekly) // 2], weekly[-1]}) if weekly else []


def leaked_rows(wh: Warehouse, plan: TrackingPlan, config: FeatureConfig, as_of: datetime,
                features: run.FeatureSet | None = None) -> int:
    """Rows of `as_of` that differ from a recomputation on events before as_of (either side)."""
    fs = features or run.FeatureSet.build(plan, config)
    params = {**run._parameters(plan, config, fs.version, ""), **fs.parameters, "leak_cutoff": as_of, "batch": [as_of],
              "lead_from": 0, "lead_to": 2**62}
    fragments = {**fs.fragments, **run.work_tables("check_"), "events": CUT_EVENTS}
    run.build_inputs(wh, params, fragments, prefix="check_")
    wh.replace_table("features", "check_snapshots", pa.table({"as_of": [as_of], "current": [False]}, schema=run.SNAPSHOTS))
    # At most SAMPLE_LEADS leads of the snapshot, every k-th in lead order, so that one batch holds them.
    spine_sql, spine_params = render(wh, load(run.PACKAGE, "spine"), params, fragments)
    sampled = (f"SELECT lead_id, as_of, created_at, closed_at, lead_no FROM (SELECT *, row_number() OVER (ORDER BY lead_id) AS nth, "
               f"count(*) OVER () AS total FROM ({spine_sql}) AS spine) AS numbered "
               f"WHERE nth % greatest(1, CAST(ceil(total / {SAMPLE_LEADS}.0) AS BIGINT)) = 0")
    wh.rebuild_table(replace(run.SPINE, name="check_spine"), [(sampled, spine_params)])
    wh.rebuild_table(replace(fs.table, name="check_features"), [render(wh, load(run.PACKAGE, "lead_features"), params, fragments)])
    cols = ", ".join(f'"{c}"' for c in fs.table.column_names if c != "feature_version")
    sample = f"SELECT lead_id FROM {wh.table_name('features', 'check_spine')}"
    stored = f"SELECT {cols} FROM {wh.table_name(*FEATURES)} WHERE as_of = $as_of AND lead_id IN ({sample})"
    again = f"SELECT {cols} FROM {wh.table_name('features', 'check_features')}"
    n = 0
    for a, b in ((stored, again), (again, stored)):
        n += wh.fetchall(f"SELECT count(*) FROM ({a} EXCEPT {b}) AS differing", {"as_of": as_of})[0][0]
    return n


def evaluate(wh: Warehouse, plan: TrackingPlan, config: FeatureConfig, features: run.FeatureSet | None = None) -> list[CheckResult]:
    if not wh.table_exists(*FEATURES):
        return [CheckResult(FEATURES, "no_leakage", True, "ERROR", "No features yet.")]
    results = {str(t): leaked_rows(wh, plan, config, t, features) for t in sample_snapshots(wh)}
    leaked = {k: v for k, v in results.items() if v}
    return [CheckResult(
        FEATURES, "no_leakage", not leaked, "ERROR",
        "Recomputed from the events before as_of alone, the sampled snapshots are identical."
        if not leaked else f"{sum(leaked.values())} feature rows differ when recomputed from the events before as_of: "
        + ", ".join(f"as_of {k}: {v}" for k, v in leaked.items()) + " (a feature reads an event at or after as_of)",
        {"snapshots_checked": list(results), "rows_differing": results})]
