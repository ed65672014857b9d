"""Whether anything the identity graph reads has changed since its last run.

A run reads (inputs.py) the lead events (lead_created, lead_updated: the normal form and external
ids), the decision events (lead_merged, lead_unmerged), the lead ids the event files carry (each
one a record), pii.source_records (CDC rows and export records, which arrive in files of their own)
and its configuration. Events are only appended, each later than every event before it (ingested_at),
or deleted (retention, erasure): the count and newest ingested_at of a kind of event mark its set.

The marks are kept with each run's summary. A night that brings only touches and activities of
known leads (and the platform's own scores) leaves every mark as it was: the graph is the last
run's, and the run only fills the canonical ids of the new events (run.py).
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from crm_platform.identity.inputs import DECISION_EVENTS, LEAD_EVENTS, event_lead_ids_where
from crm_platform.warehouse import Warehouse


def configuration_key(*parts: object) -> str:
    """One key for what shapes a run besides the data: configuration, mappings, plan version, the
    PII key (through a hash it gives) and the platform's version."""
    try:
        release = version("crm-platform")
    except PackageNotFoundError:
        release = "unknown"
    return hashlib.sha256(repr((release, *parts)).encode()).hexdigest()[:16]


def marks(wh: Warehouse, configuration: str) -> dict:
    """The current marks of the identity inputs (JSON-ready)."""
    ev = wh.table_name("core", "events")
    read = f"event_type IN {LEAD_EVENTS} OR event_type IN {DECISION_EVENTS}"
    n, last, total, newest = wh.fetchall(
        f"SELECT count(*) FILTER (WHERE {read}), max(ingested_at) FILTER (WHERE {read}), count(*), max(ingested_at) "
        f"FROM {ev}")[0]
    out = {"configuration": configuration, "identity_events": int(n), "identity_events_last": str(last),
           "events": int(total), "events_last": str(newest)}
    if wh.table_exists("pii", "source_records"):
        rows, updated = wh.fetchall(f"SELECT count(*), max(updated_at) FROM {wh.table_name('pii', 'source_records')}")[0]
        out.update(source_records=int(rows), source_records_last=str(updated))
    if wh.table_exists("core", "ingest_ledger"):
        (files,) = wh.fetchall(f"SELECT max(finished_at) FROM {wh.table_name('core', 'ingest_ledger')} "
                               "WHERE source_file NOT LIKE 'events/%'")[0]
        out["source_files_last"] = str(files)
    return out


def unchanged(wh: Warehouse, before: dict | None, now: dict, no_person_types: list[str]) -> bool:
    """True when the inputs are those of the run that left `before`: the same marks but for events
    ingested since (no earlier event deleted), none of which carries a lead id that is not a record
    yet."""
    if not before or not wh.table_exists("identity", "lead_identity_map"):
        return False
    kept = [k for k in now if k not in ("events", "events_last")]
    if any(before.get(k) != now[k] for k in kept) or set(before) != set(now):
        return False
    ev = wh.table_name("core", "events")
    if before["events_last"] == "None":
        return now["events"] == 0 == before["events"]
    since = _naive_utc(datetime.fromisoformat(before["events_last"]))
    (earlier,) = wh.fetchall(f"SELECT count(*) FROM {ev} WHERE ingested_at <= $since", {"since": since})[0]
    if earlier != before["events"]:
        return False
    records = f"SELECT source_id FROM {wh.table_name('identity', 'lead_identity_map')} WHERE source_system = 'events'"
    (new_ids,) = wh.fetchall(
        f"SELECT count(*) FROM (SELECT DISTINCT lead_id FROM {ev} WHERE {event_lead_ids_where(no_person_types)} "
        f"AND ingested_at > $since) AS n WHERE lead_id NOT IN ({records})", {"since": since})[0]
    return new_ids == 0


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
