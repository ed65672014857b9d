"""What the feature layer checks about itself (defs/ wires them).

Leakage: for sampled snapshots (and about SAMPLE_LEADS leads of each), every feature is
recomputed from the events that occurred strictly before that as_of alone (core.events cut at
as_of, the sampled leads' events and those of their browsers) and compared with the stored rows.
A feature that reads anything at or after as_of, however it does it, gives a difference. The
snapshots are drawn from those the run computed: rows carried over from an earlier run were checked
by the run that computed them (a feature definition change recomputes every snapshot).
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
from crm_platform.warehouse.tables import TableDef

FEATURES = ("features", "lead_features")
SAMPLE_LEADS = 20_000
# The recomputation reads the events before as_of of the sampled leads only: theirs, and every event
# of the browsers (user_id) they were seen on, so that an anonymous touch and a browser shared with
# another lead are linked as on the whole log.
CUT_EVENTS = ("(SELECT * FROM {core.events} WHERE occurred_at < $leak_cutoff "
              "AND (canonical_lead_id IN (SELECT lead_id FROM {features.check_sample}) "
              "OR user_id IN (SELECT user_id FROM {features.check_sample_users})))")
SAMPLE = TableDef("features", "check_sample", (("lead_id", "string"),), order_by=("lead_id",),
                  description="The leads whose rows the leakage check recomputes.")
SAMPLE_USERS = TableDef("features", "check_sample_users", (("user_id", "string"),), order_by=("user_id",),
                        description="The browsers the sampled leads were seen on.")


def sample_snapshots(wh: Warehouse, computed: list[datetime] | None = None) -> list[datetime]:
    """The first, the middle and the last weekly snapshot among those computed (all, when None; the
    latest weekly one when the run computed none); the watermark row is left out: cut at itself, it
    would agree by construction."""
    rows = [run._naive(r[0]) for r in wh.fetchall(f"SELECT DISTINCT as_of FROM {wh.table_name(*FEATURES)} ORDER BY as_of")]
    weekly = rows[:-1] if len(rows) > 1 else rows
    if computed is not None:
        chosen = set(computed)
        weekly = [t for t in weekly if t in chosen] or weekly[-1:]
    return sorted({weekly[0], weekly[len(weekly) // 2], weekly[-1]}) if weekly else []


def leaked_rows(wh: Warehouse, plan: TrackingPlan, config: FeatureConfig, as_of: datetime,
                features: run.FeatureSet | None = None) -> int:
    """Rows of `as_of` that differ from a recomputation on events before as_of (either side), for
    every k-th lead in lead order, k such that about SAMPLE_LEADS of the snapshot's leads are in."""
    fs = features or run.FeatureSet.build(plan, config)
    params = {**run._parameters(plan, config, fs.version, ""), **fs.parameters, "leak_cutoff": as_of, "batch": [as_of],
              "lead_from": 0, "lead_to": 2**62}
    fragments = {**fs.fragments, **run.work_tables("check_"), "events": CUT_EVENTS}
    _sample(wh, as_of)
    run.build_inputs(wh, params, fragments, prefix="check_")
    wh.replace_table("features", "check_snapshots", pa.table({"as_of": [as_of], "current": [False]}, schema=run.SNAPSHOTS))
    spine_sql, spine_params = render(wh, load(run.PACKAGE, "spine"), params, fragments)
    sample = f"SELECT lead_id FROM {wh.table_name(SAMPLE.schema, SAMPLE.name)}"
    sampled = f"SELECT lead_id, as_of, created_at, closed_at, lead_no FROM ({spine_sql}) AS spine WHERE lead_id IN ({sample})"
    wh.rebuild_table(replace(run.SPINE, name="check_spine"), [(sampled, spine_params)])
    wh.rebuild_table(replace(fs.table, name="check_features"), [render(wh, load(run.PACKAGE, "lead_features"), params, fragments)])
    cols = ", ".join(f'"{c}"' for c in fs.table.column_names if c != "feature_version")
    stored = f"SELECT {cols} FROM {wh.table_name(*FEATURES)} WHERE as_of = $as_of AND lead_id IN ({sample})"
    again = f"SELECT {cols} FROM {wh.table_name('features', 'check_features')}"
    n = 0
    for a, b in ((stored, again), (again, stored)):
        n += wh.fetchall(f"SELECT count(*) FROM ({a} EXCEPT {b}) AS differing", {"as_of": as_of})[0][0]
    return n


def _sample(wh: Warehouse, as_of: datetime) -> None:
    """features.check_sample: every k-th canonical lead of the log in lead order, k from the
    snapshot's stored rows; features.check_sample_users: the browsers they were seen on."""
    events, stored = wh.table_name("core", "events"), wh.table_name(*FEATURES)
    open_leads = wh.fetchall(f"SELECT count(*) FROM {stored} WHERE as_of = $as_of", {"as_of": as_of})[0][0]
    every = max(1, -(-int(open_leads) // SAMPLE_LEADS))
    leads = f"SELECT DISTINCT canonical_lead_id AS lead_id FROM {events} WHERE canonical_lead_id IS NOT NULL"
    wh.rebuild_table(SAMPLE, [(f"SELECT lead_id FROM (SELECT lead_id, row_number() OVER (ORDER BY lead_id) AS nth "
                               f"FROM ({leads}) AS l) AS numbered WHERE nth % $every = 0", {"every": every})])
    wh.rebuild_table(SAMPLE_USERS, [(f"SELECT DISTINCT user_id FROM {events} WHERE user_id IS NOT NULL AND "
                                     f"canonical_lead_id IN (SELECT lead_id FROM {wh.table_name(SAMPLE.schema, SAMPLE.name)})", {})])


def evaluate(wh: Warehouse, plan: TrackingPlan, config: FeatureConfig, features: run.FeatureSet | None = None,
             computed: list[datetime] | None = None) -> list[CheckResult]:
    """`computed`: the snapshots the run computed, which the sample is drawn from (None: all)."""
    if not wh.table_exists(*FEATURES):
        return [CheckResult(FEATURES, "no_leakage", True, "ERROR", "No features yet.")]
    results = {str(t): leaked_rows(wh, plan, config, t, features) for t in sample_snapshots(wh, computed)}
    leaked = {k: v for k, v in results.items() if v}
    return [CheckResult(
        FEATURES, "no_leakage", not leaked, "ERROR",
        "Recomputed from the events before as_of alone, the sampled snapshots are identical."
        if not leaked else f"{sum(leaked.values())} feature rows differ when recomputed from the events before as_of: "
        + ", ".join(f"as_of {k}: {v}" for k, v in leaked.items()) + " (a feature reads an event at or after as_of)",
        {"snapshots_checked": list(results), "rows_differing": results})]
