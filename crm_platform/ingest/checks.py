"""What the ingest layer checks and shows about itself, as plain queries (defs/ wires them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from crm_platform.ingest.event_files import FileOutcome
from crm_platform.warehouse import Warehouse

QUARANTINE_RATE_THRESHOLD = 0.05
FUTURE_TOLERANCE_HOURS = 24


@dataclass(frozen=True)
class CheckResult:
    asset: tuple[str, str]
    name: str
    passed: bool
    severity: str  # ERROR | WARN
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def outcomes_table(outcomes: list[FileOutcome]) -> pa.Table:
    return pa.Table.from_pylist([{
        "file": o.source_file, "status": o.status, "read": o.records_read, "accepted": o.events_accepted,
        "duplicate": o.events_duplicate, "quarantined": o.records_quarantined, "error": o.error or "",
        "unknown_residency_tags": o.residency_unknown_tags,
    } for o in outcomes])


def events_by_type(wh: Warehouse) -> pa.Table:
    return wh.fetch_arrow(f"select event_type, count(*) events, count(distinct lead_id) leads, min(occurred_at) first, "
                          f"max(occurred_at) last from {wh.table_name('core', 'events')} group by all order by events desc")


def quarantine_reasons(wh: Warehouse) -> pa.Table:
    return wh.fetch_arrow(f"select code reason, count(*) records, count(distinct source_file) files "
                          f"from (select unnest(reason_codes) code, source_file from {wh.table_name('core', 'quarantine')}) "
                          "group by all order by records desc, reason")


def ledger_per_file(wh: Warehouse, limit: int = 50) -> pa.Table:
    return wh.fetch_arrow(f"select source_file, status, records_read, events_accepted, events_duplicate, "
                          f"records_quarantined, error from {wh.table_name('core', 'ingest_ledger')} "
                          f"order by finished_at desc, source_file limit {int(limit)}")


def vault_by_field(wh: Warehouse) -> pa.Table:
    # Counts only: the values themselves never leave the pii schema.
    return wh.fetch_arrow(f'select field, count(*) "values" from {wh.table_name("pii", "vault")} group by all order by field')


def _top_reasons(wh: Warehouse, shas: list[str], n: int = 3) -> dict[str, str]:
    """sha256 -> its n most frequent reason codes with their counts, `code count, ...`."""
    if not shas:
        return {}
    rows = wh.fetchall(f"""
        select sha256, code, count(*) k
        from (select sha256, unnest(reason_codes) code from {wh.table_name('core', 'quarantine')}
              where sha256 in (select unnest(?)))
        group by sha256, code""", [shas])
    by_sha: dict[str, list[tuple[int, str]]] = {}
    for sha, code, k in rows:
        by_sha.setdefault(sha, []).append((-k, code))
    return {sha: ", ".join(f"{code} {-k}" for k, code in sorted(items)[:n]) for sha, items in by_sha.items()}


def evaluate(wh: Warehouse) -> list[CheckResult]:
    t = wh.table_name
    out = []
    unbalanced = wh.fetchall(f"select source_file, sha256, records_read, events_accepted, events_duplicate, records_quarantined "
                             f"from {t('core', 'ingest_ledger')} "
                             "where records_read <> events_accepted + events_duplicate + records_quarantined")
    out.append(CheckResult(("core", "ingest_ledger"), "ledger_balanced", not unbalanced, "ERROR",
                           f"{len(unbalanced)} file(s) whose counts do not add up" if unbalanced else "every file balances",
                           {"unbalanced_files": [r[0] for r in unbalanced[:20]]}))
    dup = wh.fetchall(f"select event_id, count(*) n from {t('core', 'events')} group by event_id having count(*) > 1 limit 20")
    out.append(CheckResult(("core", "events"), "unique_event_id", not dup, "ERROR",
                           f"{len(dup)}+ event_id(s) stored twice" if dup else "every event_id is unique",
                           {"examples": [r[0] for r in dup]}))
    rates = wh.fetchall(f"""
        select source_file, sha256, records_read, records_quarantined, records_quarantined / records_read rate
        from {t('core', 'ingest_ledger')}
        where records_read > 0 and records_quarantined / records_read > ?
        order by rate desc, source_file""", [QUARANTINE_RATE_THRESHOLD])
    top = _top_reasons(wh, [r[1] for r in rates[:5]])
    rates = [(r[0], r[2], r[3], r[4], top.get(r[1], "")) for r in rates]
    out.append(CheckResult(
        ("core", "quarantine"), "quarantine_rate", not rates, "WARN",
        (f"{len(rates)} file(s) quarantine more than {QUARANTINE_RATE_THRESHOLD:.0%}: "
         + "; ".join(f"{r[0]} {r[3]:.0%} ({r[4]})" for r in rates[:5])) if rates
        else f"no file quarantines more than {QUARANTINE_RATE_THRESHOLD:.0%}",
        {"files": [r[0] for r in rates[:20]]}))
    future = wh.fetchall(f"select count(*), min(occurred_at), any_value(event_id) from {t('core', 'events')} "
                         f"where occurred_at > ingested_at + interval {FUTURE_TOLERANCE_HOURS} hour")[0]
    out.append(CheckResult(("core", "events"), "no_future_events", not future[0], "WARN",
                           f"{future[0]} event(s) dated more than a day after ingestion (e.g. {future[2]})"
                           if future[0] else "no event is dated after its ingestion",
                           {"future_events": future[0]}))
    return out
