"""An identity run against a warehouse: resolve, log the decisions as events through the ingest
path, write the identity tables and fill `core.events.canonical_lead_id`.

The decisions land as a canonical event file (`landing/events/identity/`), so they are validated,
ledgered and replayable like every other event. Order makes a crash harmless: decisions first (a
rerun finds them in the log and decides nothing twice), then the tables, then canonical ids.

When nothing the graph reads changed since the last run (input_marks.py: a night of touches and
activities of known leads), the last graph stands: the run only gives the new events their canonical
ids and records itself (mode `unchanged`). `full` always resolves.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from crm_platform.identity import input_marks, inputs, store
from crm_platform.identity.config import IdentityConfig
from crm_platform.identity.decisions import (
    DECISION_COLUMNS,
    IDENTITY_SOURCE,
    PRODUCER,
    SCHEMA_VERSION,
)
from crm_platform.identity.resolve import Resolution, resolve
from crm_platform.ingest.event_files import FileOutcome
from crm_platform.ingest.landing import PLATFORM_WRITTEN
from crm_platform.ingest.pii_hashing import PiiHasher
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.model import TrackingPlan
from crm_platform.sources.mapping import SourceMapping, load_mappings
from crm_platform.warehouse import Warehouse

DECISIONS_DIR = PLATFORM_WRITTEN[0].rstrip("/")


@dataclass
class IdentityRun:
    resolution: Resolution
    decisions_file: str | None
    decisions_ingest: list[FileOutcome]
    canonical_changed: int  # lead records whose canonical id changed in this run


def run_identity(wh: Warehouse, landing_dir: Path, plan: TrackingPlan, pii_key: bytes,
                 config: IdentityConfig | None = None, now: datetime | None = None, full: bool = False,
                 mappings: Sequence[SourceMapping] | None = None) -> IdentityRun:
    config = config or IdentityConfig.load()
    now = now or datetime.now(UTC)
    mappings = load_mappings(plan) if mappings is None else mappings
    hasher = PiiHasher(pii_key, ())
    key = input_marks.configuration_key(config, mappings, plan.version, hasher.hash("identity configuration"))
    no_person = inputs.no_person_types(plan)
    with wh.exclusive("identity"):
        started = time.perf_counter()
        last = store.last_summary(wh)
        if not full and input_marks.unchanged(wh, last.get("input_marks"), input_marks.marks(wh, key), no_person):
            return _unchanged(wh, last, now, time.perf_counter() - started)
        res = resolve(wh, mappings, config, hasher.hash, now, full=full, plan=plan)
        path, outcomes = None, []
        if len(res.decisions):
            path = write_decisions(landing_dir, res.decisions, now)
            outcomes = ingest_landing(wh, landing_dir, plan, pii_key, only=[path])
            failed = [o for o in outcomes if o.records_quarantined or o.status != "complete"]
            if failed:  # our own events must validate: anything else is a bug, not bad data
                raise RuntimeError(f"identity decisions in {path} did not all validate: {failed[0]}")
        res.summary["input_marks"] = input_marks.marks(wh, key)  # its own decisions included
        previous = store.read(wh, "lead_identity_map", ["record_lead_id", "lead_id"])
        write_tables(wh, res, now)
        changed = update_canonical_ids(wh, res.identity_map, previous)
    return IdentityRun(res, path, outcomes, changed)


def _unchanged(wh: Warehouse, last: dict, now: datetime, seconds: float) -> IdentityRun:
    """Nothing the graph reads changed (input_marks): the last run's graph stands. Only the events
    ingested since get their canonical ids; the run is recorded, deciding nothing."""
    identity_map = store.read(wh, "lead_identity_map")
    model = store.latest_model(wh)
    summary = {**last, "records_normalized": 0, "decisions": {}, "seconds": {"input_marks": round(seconds, 3)}}
    res = Resolution(identity_map, store.empty("edges"), pd.DataFrame(columns=DECISION_COLUMNS), store.empty("records"),
                     store.empty("match_pairs"), model, False, "unchanged", 0, summary)
    store.append(wh, "identity", "runs", _run_row(res, now))
    changed = update_canonical_ids(wh, identity_map, identity_map)
    return IdentityRun(res, None, [], changed)


def write_decisions(landing_dir: Path, decisions: pd.DataFrame, now: datetime) -> str:
    """The decisions as one canonical event file per run (JSON lines written by DuckDB: a first run
    can decide millions), named by time and content; it appears whole or not at all."""
    occurred = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    target_dir = landing_dir / DECISIONS_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / f".decisions-{now.strftime('%Y%m%dT%H%M%S%f')}.part"
    con = duckdb.connect()
    try:
        con.register("d", pa.Table.from_pandas(decisions[DECISION_COLUMNS], preserve_index=False))
        con.execute(f"""COPY (SELECT event_type, '{SCHEMA_VERSION}' AS schema_version, event_id, ? AS occurred_at,
                                 '{IDENTITY_SOURCE}' AS source, '{PRODUCER}' AS producer_id, lead_id,
                                 CASE WHEN event_type = 'lead_merged'
                                      THEN json_object('merged_lead_id', merged_lead_id, 'match_rule', match_rule,
                                                       'match_score', match_score, 'evidence', evidence::JSON,
                                                       'decided_by', '{PRODUCER}')
                                      ELSE json_object('merged_lead_id', merged_lead_id,
                                                       'reverses_event_id', reverses_event_id, 'reason', reason,
                                                       'decided_by', '{PRODUCER}') END AS attributes
                          FROM d) TO '{tmp}' (FORMAT JSON)""", [occurred])
    finally:
        con.close()
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]
    relative = f"{DECISIONS_DIR}/decisions-{now.strftime('%Y%m%dT%H%M%S%f')}-{digest}.jsonl"
    tmp.replace(landing_dir / relative)
    return relative


def write_tables(wh: Warehouse, res: Resolution, now: datetime) -> None:
    naive = pd.Timestamp(now).tz_convert(None) if pd.Timestamp(now).tzinfo else pd.Timestamp(now)
    if res.trained and res.model is not None:
        store.save_model(wh, res.model, naive.to_pydatetime())
    store.write(wh, "edges", store.table("edges", res.edges.rename(
        columns={"left": "left_lead_id", "right": "right_lead_id"})))
    store.write(wh, "records", store.table("records", res.records))
    store.write(wh, "match_pairs", store.table("match_pairs", res.pairs.rename(
        columns={"left": "left_lead_id", "right": "right_lead_id"})))
    store.append(wh, "identity", "runs", _run_row(res, now))
    store.write(wh, "lead_identity_map", store.table("lead_identity_map", res.identity_map))


def _run_row(res: Resolution, now: datetime) -> pa.Table:
    naive = pd.Timestamp(now).tz_convert(None) if pd.Timestamp(now).tzinfo else pd.Timestamp(now)
    return store.table("runs", {
        "resolved_at": [naive.to_pydatetime()], "mode": [res.mode],
        "model_version": [res.model.version if res.model else None], "records": [res.summary["lead_records"]],
        "records_compared": [res.compared], "clusters": [res.summary["canonical_leads"]],
        "decisions": [len(res.decisions)], "summary": [json.dumps(res.summary, sort_keys=True, default=str)]})


def update_canonical_ids(wh: Warehouse, identity_map: pd.DataFrame, previous: pd.DataFrame) -> int:
    """Set core.events.canonical_lead_id where it is not the record's canonical id: the events of
    merged records (including those ingested since the last run, which arrive with their own lead_id)
    and of records whose canonical id changed (split back to themselves, say). Returns how many
    records' canonical id changed in this run."""
    nodes = identity_map[["record_lead_id", "lead_id"]].drop_duplicates("record_lead_id")
    record, canonical = nodes["record_lead_id"].astype(object), nodes["lead_id"].astype(object)
    before = previous.drop_duplicates("record_lead_id").set_index("record_lead_id")["lead_id"].astype(object)
    moved = record.map(before).astype(object).fillna(record) != canonical  # a new record was its own canonical id
    changed = nodes[moved | (record != canonical)]
    mapping = pa.table({"key": pa.array(changed["record_lead_id"].astype(str).to_numpy(dtype=object), pa.string()),
                        "value": pa.array(changed["lead_id"].astype(str).to_numpy(dtype=object), pa.string())})
    if mapping.num_rows:
        wh.update_column("core", "events", "canonical_lead_id", "lead_id", mapping)
    return int(moved.sum())
