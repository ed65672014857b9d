"""Features and labels, computed in the engine: which snapshots to (re)compute, then set-based SQL.

Snapshots (as_of) are each week's first day at 00:00 UTC from the first lead's creation up to the
data watermark (the latest occurred_at in core.events, future-dated events aside), plus the
watermark itself. A run computes only what can have changed:

- every snapshot, when the feature definitions (feature_version) changed, or identity decisions
  were made since the last run (canonical leads moved);
- otherwise the snapshots after the earliest occurred_at among events ingested since the last run
  (a late event changes only what comes after it), the new weeks, and the watermark.

The rest of the table is carried over as it is. When what changed is the latest days only (a night:
the latest week and the watermark), those days' partitions are replaced in one step (replace_range)
and the rest stays in place; otherwise the table is built aside and swapped in whole
(rebuild_table). Either way a reader never sees half a run. Labels are rebuilt every run: they look
ahead by design.

Consent (crm_platform/governance/consent.py): a lead without a consent that gates the features has
no feature and no label rows, history included, by its consent at the time of the run. Carried
rows of such a lead are dropped; a lead whose consent is given again (any lead open at a kept
snapshot without a stored row there) has its rows of the kept snapshots computed again.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from crm_platform.features import definitions as d
from crm_platform.features.config import WEEKDAYS, FeatureConfig
from crm_platform.governance.consent import ConsentConfig, excluded_leads_sql
from crm_platform.identity.reference import MAIL_PROVIDERS
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render
from crm_platform.warehouse.tables import TableDef

PACKAGE = "crm_platform.features"
SCHEMA = "features"
CLOSED_STAGES = ("customer", "disqualified")
# Spine rows per feature batch: what bounds the engine's memory (a whole snapshot of 1M leads, 1.2M
# rows, ran DuckDB out of 4 GiB).
BATCH_ROWS = 100_000
# Sources of the events the platform writes itself (identity decisions, model scores).
PLATFORM_SOURCES = ("identity", "ml")
# Event types that are not the lead's own doing: they do not date a lead's start.
NOT_LEAD_LIFE = ("lead_merged", "lead_unmerged", "model_score_computed", "consent_changed", "record_deleted")
EVENTS = "{core.events}"
S_, T_ = "string", "timestamp"
# Built once per run from the events (`{events}`), then read by every batch of snapshots.
INPUTS = (
    TableDef(SCHEMA, "lifecycle", (("lead_id", S_), ("created_at", T_), ("closed_at", T_), ("lead_no", "bigint")),
             order_by=("lead_id",),
             description="Each canonical lead's creation and close."),
    TableDef(SCHEMA, "event_stream", (("lead_id", S_), ("occurred_at", T_), ("kind", S_), ("activity_type", S_),
                                      ("direction", S_), ("channel", S_), ("campaign_id", S_), ("linked_at", T_),
                                      ("shared_at", T_)), order_by=("lead_id", "occurred_at"),
             description="Activities, stage changes and touches by canonical lead, anonymous touches linked."),
    TableDef(SCHEMA, "stage_reports", (("lead_id", S_), ("stage", S_), ("entered_at", T_), ("left_at", T_)),
             order_by=("lead_id", "entered_at"), description="Each stage a lead entered, and until when."),
    TableDef(SCHEMA, "attribute_reports", (("lead_id", S_), ("name", S_), ("value", S_), ("reported_at", T_),
                                           ("replaced_at", T_)), order_by=("lead_id", "name", "reported_at"),
             description="Each reported value of the latest-value attributes, and until when."),
    TableDef(SCHEMA, "opportunity_reports", (("lead_id", S_), ("source", S_), ("opportunity_id", S_),
                                             ("reported_at", T_), ("replaced_at", T_), ("opportunity_amount", "double"),
                                             ("closed_at", T_)), order_by=("lead_id", "reported_at"),
             description="Each report of an opportunity per source system, until the next, with its close."),
    TableDef(SCHEMA, "consent_excluded", (("lead_id", S_),), order_by=("lead_id",),
             description="Canonical leads without a consent the features need: no feature or label rows."),
)
REFRESH = TableDef(SCHEMA, "consent_refresh", (("lead_id", S_),), order_by=("lead_id",),
                   description="Leads open at a carried-over snapshot without a stored row there (consent "
                               "given again): their rows of the carried-over snapshots are computed again.")


def work_tables(prefix: str = "") -> dict[str, str]:
    """The fragments naming the run's work tables (the leakage check builds its own, `check_`)."""
    names = [t.name for t in INPUTS] + ["spine", "snapshots"]
    return {n: "{features." + prefix + n + "}" for n in names}


def build_inputs(wh: Warehouse, params: dict, fragments: dict, prefix: str = "") -> None:
    for table in INPUTS:
        wh.rebuild_table(replace(table, name=prefix + table.name), [render(wh, load(PACKAGE, table.name), params, fragments)])

SPINE = TableDef(SCHEMA, "spine", (("lead_id", "string"), ("as_of", "timestamp"), ("created_at", "timestamp"),
                                   ("closed_at", "timestamp"), ("lead_no", "bigint")), order_by=("lead_id", "as_of"),
                 description="(lead, as_of) for every snapshot at which the lead was open.")
SNAPSHOTS = pa.schema([("as_of", pa.timestamp("us")), ("current", pa.bool_())])
RUNS = pa.schema([("computed_at", pa.timestamp("us")), ("feature_version", pa.string()),
                  ("label_version", pa.string()), ("max_ingested_at", pa.timestamp("us")),
                  ("identity_decisions", pa.int64()), ("watermark", pa.timestamp("us")), ("mode", pa.string()),
                  ("snapshots_computed", pa.int64()), ("feature_rows", pa.int64()), ("label_rows", pa.int64())])


@dataclass
class FeatureRun:
    feature_version: str
    label_version: str
    mode: str  # full | incremental
    watermark: datetime | None
    snapshots: list[datetime]
    computed: list[datetime]
    feature_rows: int
    label_rows: int
    lineage: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)
    leads_excluded_by_consent: int = 0
    leads_refreshed: int = 0  # rows of carried-over snapshots computed again (consent given again)
    replaced_days: tuple[date, date] | None = None  # the partitions replaced; None: the table rebuilt whole


@dataclass(frozen=True)
class FeatureSet:
    """The rendered feature SQL for one plan and configuration (and its version)."""
    window: list[d.Feature]
    table: TableDef
    fragments: dict[str, str]
    version: str
    parameters: dict = field(default_factory=dict)  # the fragments' own (consent purposes and defaults)

    @classmethod
    def build(cls, plan: TrackingPlan, config: FeatureConfig, extra: tuple[d.Feature, ...] = (),
              consent: ConsentConfig | None = None) -> FeatureSet:
        window = [*d.window_features(plan, config), *extra]
        excluded, consent_params = excluded_leads_sql("features", consent)
        fragments = {
            "window_features": ",\n           ".join(f"{f.sql} AS {f.name}" for f in window),
            "selected_window_features": ", ".join(f"w.{f.name}" for f in window),
            "attribute_values": d.attribute_reports_sql(),
            "attribute_features": d.attribute_features_sql(),
            "longest_days": str(int(config.longest_window)),
            "consent_excluded_leads": excluded,
        }
        version = d.version(load(PACKAGE, "lead_features"), window, config)
        columns = [("lead_id", "string"), ("as_of", "timestamp"), ("feature_version", "string"),
                   ("days_since_created", "double")]
        columns += [(f.name, "double" if f.name.startswith("days_since") else "bigint") for f in window]
        columns += [("current_stage", "string"), ("days_in_stage", "double"), ("open_opportunity_amount", "double"),
                    ("lead_source", "string"), ("estimated_value", "double"), ("employee_count", "bigint"),
                    ("email_free_mail", "boolean")]
        # Partitioned by day: a night replaces the partitions of its latest week and watermark only.
        table = TableDef(SCHEMA, "lead_features", tuple(columns), order_by=("lead_id", "as_of"), partition_by="as_of",
                         partition_granularity="day", low_cardinality=("feature_version", "current_stage", "lead_source"),
                         description="One row per canonical lead and as_of: what was knowable at as_of.")
        return cls(window, table, fragments, version, consent_params)


LABELS = TableDef(SCHEMA, "lead_labels", (
    ("lead_id", "string"), ("as_of", "timestamp"), ("label", "integer"), ("label_window_days", "integer"),
    ("label_version", "string"),
), order_by=("lead_id", "as_of"), partition_by="as_of",
    description="Converted within the label window of lead_created, per (lead, as_of) whose window has ended.")


def label_version(config: FeatureConfig) -> str:
    doc = json.dumps({"sql": load(PACKAGE, "lead_labels"), "labels": config.labels.__dict__}, sort_keys=True)
    return "l" + hashlib.sha256(doc.encode()).hexdigest()[:12]


def build_features(wh: Warehouse, plan: TrackingPlan, config: FeatureConfig, *, full: bool = False,
                   features: FeatureSet | None = None, events: str = EVENTS,
                   now: datetime | None = None) -> FeatureRun:
    """Compute what changed since the last run (or everything, `full`). `events` may name a
    restricted view of core.events (the leakage check recomputes on events before a cutoff)."""
    started = time.perf_counter()
    fs = features or FeatureSet.build(plan, config)
    lversion = label_version(config)
    params = {**_parameters(plan, config, fs.version, lversion), **fs.parameters}
    fragments = {**fs.fragments, **work_tables(), "events": events}
    watermark, max_ingested = _watermarks(wh, events)
    decisions = _identity_decisions(wh)
    previous = _previous_run(wh)
    build_inputs(wh, params, fragments)
    snapshots = _snapshots(wh, config, watermark)
    mode, compute = _to_compute(wh, fs, previous, snapshots, watermark, decisions, events, full)
    seconds = {"plan": round(time.perf_counter() - started, 3)}

    kept = [s for s in snapshots if s not in set(compute)]
    carry = bool(kept) and wh.table_exists(SCHEMA, "lead_features")
    refreshed = _consent_refresh(wh, params, fragments, kept if carry else [])
    refresh_snapshots = kept if refreshed else []
    wh.replace_table(SCHEMA, "snapshots", pa.table({"as_of": compute, "current": [s == watermark for s in compute]},
                                                   schema=SNAPSHOTS))
    spine = load(PACKAGE, "spine")
    refresh_fragments = {**fragments, "snapshots": "{features.refresh_snapshots}",
                         "lifecycle": "(SELECT * FROM {features.lifecycle} WHERE lead_id IN "
                                      "(SELECT lead_id FROM {features.consent_refresh}))"}
    wh.rebuild_table(SPINE, [render(wh, spine, params, fragments)]
                     + ([render(wh, spine, params, refresh_fragments)] if refreshed else []))
    text = load(PACKAGE, "lead_features")
    selects = [render(wh, text, {**params, "batch": batch, "lead_from": lo, "lead_to": hi}, fragments)
               for batch, lo, hi in _batches(wh, compute + refresh_snapshots)]
    days = _tail_days(wh, snapshots, compute) if carry and not refreshed else None
    if days:  # only the latest days change: their partitions are swapped, the rest stays in place
        wh.replace_range(fs.table, *days, selects)
        rows = wh.row_count(SCHEMA, "lead_features")
    else:
        if carry:
            cols = ", ".join(f'"{c}"' for c in fs.table.column_names)
            carried = (f"SELECT {cols} FROM {wh.table_name(SCHEMA, 'lead_features')} WHERE list_contains($kept, as_of) "
                       f"AND lead_id NOT IN (SELECT lead_id FROM {wh.table_name(SCHEMA, 'consent_excluded')}) "
                       f"AND lead_id NOT IN (SELECT lead_id FROM {wh.table_name(SCHEMA, 'consent_refresh')})")
            selects.insert(0, (carried, {"kept": kept}))
        rows = wh.rebuild_table(fs.table, selects)
    seconds["features"] = round(time.perf_counter() - started - sum(seconds.values()), 3)

    # Labels over every snapshot: the spine again, whole.
    wh.replace_table(SCHEMA, "snapshots", pa.table({"as_of": snapshots, "current": [s == watermark for s in snapshots]},
                                                   schema=SNAPSHOTS))
    wh.rebuild_table(SPINE, [render(wh, load(PACKAGE, "spine"), params, fragments)])
    label_params = {**params, "watermark": watermark or datetime(1970, 1, 1)}
    label_rows = wh.rebuild_table(LABELS, [render(wh, load(PACKAGE, "lead_labels"), label_params,
                                                  {**fragments, "window_days": str(int(config.labels.window_days))})])
    seconds["labels"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
    _record_run(wh, now or datetime.now(UTC).replace(tzinfo=None), fs.version, lversion, max_ingested, decisions, watermark, mode,
                len(compute), rows, label_rows)
    excluded = int(wh.fetchall(f"SELECT count(*) FROM {wh.table_name(SCHEMA, 'consent_excluded')}")[0][0])
    return FeatureRun(fs.version, lversion, mode, watermark, snapshots, compute, rows, label_rows,
                      d.lineage(fs.window), seconds, excluded, refreshed, days)


def _consent_refresh(wh: Warehouse, params: dict, fragments: dict, kept: list[datetime]) -> int:
    """features.consent_refresh: the leads open at a kept snapshot (consent allowing) without a
    stored row there, typically those whose consent was given again since the last run; how many."""
    wh.replace_table(SCHEMA, "refresh_snapshots", pa.table({"as_of": kept, "current": [False] * len(kept)},
                                                           schema=SNAPSHOTS))
    if not kept:
        wh.rebuild_table(REFRESH, [("SELECT lead_id FROM (SELECT CAST(NULL AS VARCHAR) AS lead_id) AS n WHERE 1 = 0", {})])
        return 0
    spine_sql, spine_params = render(wh, load(PACKAGE, "spine"), params,
                                     {**fragments, "snapshots": "{features.refresh_snapshots}"})
    stored = wh.table_name(SCHEMA, "lead_features")
    sql = (f"SELECT DISTINCT s.lead_id AS lead_id FROM ({spine_sql}) AS s "
           f"LEFT JOIN (SELECT lead_id AS f_lead, as_of AS f_as_of FROM {stored} WHERE list_contains($kept, as_of)) AS f "
           f"ON f.f_lead = s.lead_id AND f.f_as_of = s.as_of WHERE f.f_lead IS NULL")
    return wh.rebuild_table(REFRESH, [(sql, {**spine_params, "kept": kept})])


def _tail_days(wh: Warehouse, snapshots: list[datetime], compute: list[datetime]) -> tuple[date, date] | None:
    """The days [start, end) to replace when a run's changes are all in them (a night: the latest
    week and the watermark): every snapshot from `start` on is computed, every stored row before it
    is kept as it is (a snapshot still due, of a lead that keeps its consent). None otherwise, and
    the table is rebuilt whole."""
    if not compute:
        return None
    start = datetime.combine(min(compute).date(), datetime.min.time())
    computed, due = set(compute), set(snapshots)
    if any(s >= start and s not in computed for s in snapshots):
        return None
    table = wh.table_name(SCHEMA, "lead_features")
    stored = [_naive(r[0]) for r in wh.fetchall(f"SELECT DISTINCT as_of FROM {table}")]
    if any(a < start and a not in due for a in stored):  # a row no longer due, before start
        return None
    excluded = wh.fetchall(f"SELECT count(*) FROM {table} WHERE as_of < $start AND lead_id IN "
                           f"(SELECT lead_id FROM {wh.table_name(SCHEMA, 'consent_excluded')})", {"start": start})[0][0]
    if excluded:
        return None
    return start.date(), max([*compute, *stored]).date() + timedelta(days=1)


def _batches(wh: Warehouse, compute: list[datetime]) -> list[tuple[list[datetime], int, int]]:
    """The snapshots to compute as (snapshots, first lead_no, last lead_no + 1) of about BATCH_ROWS
    spine rows each: small snapshots together, a large one cut into ranges of leads."""
    spine = wh.table_name(SCHEMA, "spine")
    counts = {_naive(a): n for a, n in wh.fetchall(f"SELECT as_of, count(*) FROM {spine} GROUP BY as_of")}
    leads = int(wh.fetchall(f"SELECT coalesce(max(lead_no), 0) FROM {wh.table_name(SCHEMA, 'lifecycle')}")[0][0]) + 1
    batches, current, rows = [], [], 0
    for as_of in compute:
        n = counts.get(as_of, 0)
        if n > BATCH_ROWS:
            parts = -(-n // BATCH_ROWS)
            step = -(-leads // parts)
            batches += [([as_of], lo, min(lo + step, leads)) for lo in range(0, leads, step)]
            continue
        if current and rows + n > BATCH_ROWS:
            batches.append((current, 0, leads))
            current, rows = [], 0
        current.append(as_of)
        rows += n
    if current:
        batches.append((current, 0, leads))
    return batches or [([], 0, leads)]


def _parameters(plan: TrackingPlan, config: FeatureConfig, fversion: str, lversion: str) -> dict:
    lead_types = [name for name, et in plan.event_types.items()
                  if et.identity in ("lead", "lead_or_user") and name not in NOT_LEAD_LIFE]
    return {"lead_event_types": lead_types, "label_event_type": config.labels.event_type,
            "label_outcome": config.labels.outcome, "closed_stages": list(CLOSED_STAGES),
            "free_mail_domains": list(MAIL_PROVIDERS), "feature_version": fversion, "label_version": lversion}


def _watermarks(wh: Warehouse, events: str) -> tuple[datetime | None, datetime | None]:
    """The data watermark (latest occurred_at, leaving out events dated more than a day after their
    ingestion and the platform's own events, identity decisions and scores, which carry the time of
    the run) and the latest ingested_at."""
    if not wh.table_exists("core", "events"):
        return None, None
    sql, params = render(wh, "SELECT max(CASE WHEN date_diff('second', ingested_at, occurred_at) <= 86400 "
                             "AND NOT list_contains($platform_sources, source) THEN occurred_at END), "
                             "max(ingested_at) FROM {events}", {"platform_sources": list(PLATFORM_SOURCES)},
                         {"events": events})
    return tuple(_naive(v) for v in wh.fetchall(sql, params)[0])


def _snapshots(wh: Warehouse, config: FeatureConfig, watermark: datetime | None) -> list[datetime]:
    first = wh.fetchall(f"SELECT min(created_at) FROM {wh.table_name(SCHEMA, 'lifecycle')}")[0][0]
    if first is None or watermark is None:
        return []
    first = _naive(first)
    weekday = WEEKDAYS.index(config.weekday)
    day = datetime(first.year, first.month, first.day) + timedelta(days=1)
    day += timedelta(days=(weekday - day.weekday()) % 7)
    out = []
    while day <= watermark:
        out.append(day)
        day += timedelta(days=7)
    if config.current and (not out or out[-1] != watermark):
        out.append(watermark)
    return out


def _to_compute(wh, fs, previous, snapshots, watermark, decisions, events, full) -> tuple[str, list[datetime]]:
    if full or previous is None or previous["feature_version"] != fs.version \
            or previous["identity_decisions"] != decisions or not wh.table_exists(SCHEMA, "lead_features"):
        return "full", list(snapshots)
    done = {_naive(r[0]) for r in wh.fetchall(f"SELECT DISTINCT as_of FROM {wh.table_name(SCHEMA, 'lead_features')}")}
    sql, params = render(wh, "SELECT min(occurred_at) FROM {events} WHERE ingested_at > $since",
                         {"since": previous["max_ingested_at"] or datetime(1970, 1, 1)}, {"events": events})
    late = _naive(wh.fetchall(sql, params)[0][0])
    return "incremental", [s for s in snapshots
                           if s not in done or s == watermark or (late is not None and s > late)]


def _identity_decisions(wh: Warehouse) -> int:
    if not wh.table_exists("identity", "runs"):
        return 0
    return int(wh.fetchall(f"SELECT coalesce(sum(decisions), 0) FROM {wh.table_name('identity', 'runs')}")[0][0])


def _previous_run(wh: Warehouse) -> dict | None:
    if not wh.table_exists(SCHEMA, "runs"):
        return None
    rows = wh.fetch_arrow(f"SELECT * FROM {wh.table_name(SCHEMA, 'runs')} ORDER BY computed_at DESC LIMIT 1").to_pylist()
    return rows[0] if rows else None


def _record_run(wh, computed_at, fversion, lversion, max_ingested, decisions, watermark, mode, computed, rows,
                label_rows) -> None:
    row = pa.Table.from_pylist([{"computed_at": computed_at, "feature_version": fversion, "label_version": lversion,
                                 "max_ingested_at": max_ingested, "identity_decisions": decisions,
                                 "watermark": watermark, "mode": mode, "snapshots_computed": computed,
                                 "feature_rows": rows, "label_rows": label_rows}], schema=RUNS)
    if wh.table_exists(SCHEMA, "runs"):
        wh.insert_arrow(SCHEMA, "runs", row)
    else:
        wh.replace_table(SCHEMA, "runs", row)


def _naive(value):
    if value is None:
        return None
    if getattr(value, "tzinfo", None) is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
