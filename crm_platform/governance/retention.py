"""Retention: each event type's `retention_days` (tracking plan) enforced on the warehouse.

One run at time `now` (naive UTC):

- an event expires when `occurred_at < now - retention_days(event_type)`: an event exactly
  `retention_days` old is kept, one a microsecond older goes. Events of a type the plan no longer
  has are kept and reported (never a guessed retention);
- a quarantined record (core.quarantine, with its clear bytes in pii.quarantine_payloads) expires
  when `quarantined_at < now - quarantine_retention_days` (default: the plan's longest retention);
- a vault entry (pii.vault) goes when the rows that expire reference its hash and no row that stays
  does. References are every `pii:<32 hex>` in the texts that hold hashes: core.events `attributes`
  and `context`, core.quarantine `raw_record` and `reasons` (redacted with the same hashes). Every
  reader of the vault (identity inputs, the features' e-mail domains) looks hashes up from
  core.events, so an event that stays keeps its clear values. pii.source_records holds CRM state in
  clear, not hashes, and is not event data: retention leaves it alone.

Order makes a crash harmless: the vault first (its candidates are read from the expiring rows), then
payloads, quarantine and events; a run cut short is finished by the next one. DuckDB does it all in
one transaction, or, with the vault in a file of its own (CRM_PII_DUCKDB_PATH: a transaction writes
one file), in two: vault and payloads, then quarantine, events and the log; ClickHouse, which has
none, under the ingest writer lock (no file is published meanwhile, so no new reference to a hash
about to go appears), with synchronous mutations.

Every run writes governance.deletion_log: one row per (table, event type or vault field) with the
rows deleted, the cutoff and the plan version: counts only, never an id, a hash or a value. A
second run at the same `now` deletes nothing and logs its rows with zero counts.
"""
from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from crm_platform.governance.residency import SIGNALS
from crm_platform.ingest.sql_validation import HASH_HEX_CHARS, HASH_PREFIX
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.tables import (
    EVENTS,
    PII_QUARANTINE_PAYLOADS,
    PII_VAULT,
    QUARANTINE,
    TableDef,
)

log = logging.getLogger(__name__)

DELETION_LOG = TableDef("governance", "deletion_log", (
    ("run_id", "string"), ("run_at", "timestamp"), ("plan_version", "string"), ("table_name", "string"),
    ("event_type", "string"), ("field", "string"), ("retention_days", "integer"), ("cutoff", "timestamp"),
    ("rows_deleted", "bigint"),
), order_by=("run_at", "table_name", "event_type", "field"),
    low_cardinality=("plan_version", "table_name", "event_type", "field"),
    description="What each retention run deleted: one row per table and event type (or vault field), with the "
                "cutoff and the plan version. Counts only: no ids, hashes or values.")

HASH_PATTERN = f"{HASH_PREFIX}[0-9a-f]{{{HASH_HEX_CHARS}}}"
# The ingest's writer lock: while retention holds it no file is published on ClickHouse.
LOCK = "ingest"


@dataclass(frozen=True)
class RetentionResult:
    run_at: datetime
    plan_version: str
    log: pa.Table  # this run's rows of governance.deletion_log
    unplanned: dict[str, int]  # event types the plan does not have -> events kept

    def deleted(self, table: str) -> int:
        return sum(n for t, n in zip(self.log.column("table_name").to_pylist(), self.log.column("rows_deleted").to_pylist())
                   if t == table)

    @property
    def events_deleted(self) -> int:
        return self.deleted("core.events")


def naive_utc(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


def event_cutoffs(plan: TrackingPlan, now: datetime) -> dict[str, tuple[int, datetime]]:
    """Event type -> (retention_days, cutoff): events that occurred before the cutoff expire."""
    now = naive_utc(now)
    return {t: (spec.retention_days, now - timedelta(days=spec.retention_days)) for t, spec in sorted(plan.event_types.items())}


def expired_events_predicate(cutoffs: dict[str, tuple[int, datetime]]) -> tuple[str, dict[str, object]]:
    """A predicate on core.events (DuckDB dialect, $parameters): true for the expired events only
    (NULL, so kept, for an event without occurred_at)."""
    terms, params = [], {}
    for i, (event_type, (_, cutoff)) in enumerate(cutoffs.items()):
        terms.append(f"(event_type = $type_{i} AND occurred_at < $cutoff_{i})")
        params[f"type_{i}"], params[f"cutoff_{i}"] = event_type, cutoff
    return "(" + (" OR ".join(terms) or "false") + ")", params


def hash_references(wh: Warehouse, expired_event: str, expired_quarantine: str) -> str:
    """(h, stays): every hash the events and quarantined records reference, with 1 where a row
    that stays references it."""
    events, quarantine = wh.table_name("core", "events"), wh.table_name("core", "quarantine")
    return (
        f"SELECT h, max(stays) AS stays FROM ("
        f"SELECT unnest(regexp_extract_all(coalesce(CAST(attributes AS VARCHAR), '') || ' ' || coalesce(CAST(context AS VARCHAR), ''), '{HASH_PATTERN}')) AS h, "
        f"CASE WHEN coalesce({expired_event}, false) THEN 0 ELSE 1 END AS stays FROM {events} "
        f"UNION ALL "
        f"SELECT unnest(regexp_extract_all(coalesce(raw_record, '') || ' ' || coalesce(array_to_string(reasons, ' '), ''), "
        f"'{HASH_PATTERN}')) AS h, "
        f"CASE WHEN coalesce({expired_quarantine}, false) THEN 0 ELSE 1 END AS stays FROM {quarantine}"
        f") AS refs GROUP BY h")


def enforce_retention(wh: Warehouse, plan: TrackingPlan, now: datetime, run_id: str,
                      quarantine_retention_days: int | None = None) -> RetentionResult:
    """Delete what expired at `now` (see the module's docstring) and log it; returns this run's log."""
    now = naive_utc(now)
    for table in (EVENTS, QUARANTINE, PII_VAULT, PII_QUARANTINE_PAYLOADS, DELETION_LOG):
        wh.ensure_table(table)
    cutoffs = event_cutoffs(plan, now)
    q_days = quarantine_retention_days if quarantine_retention_days is not None else max(
        d for d, _ in cutoffs.values())
    q_cutoff = now - timedelta(days=q_days)
    expired_event, params = expired_events_predicate(cutoffs)
    expired_quarantine = "(quarantined_at < $quarantine_cutoff)"
    params["quarantine_cutoff"] = q_cutoff
    t = wh.table_name
    rows: list[dict] = []

    def logged(table: str, n: int, *, event_type=None, field=None, days=None, cutoff=None) -> None:
        rows.append({"run_id": run_id, "run_at": now, "plan_version": plan.version, "table_name": table,
                     "event_type": event_type, "field": field, "retention_days": days, "cutoff": cutoff,
                     "rows_deleted": int(n)})

    one = wh.engine == "duckdb" and not wh.pii_separate  # one transaction for everything
    each = wh.engine == "duckdb" and wh.pii_separate  # one for the pii side, then one for the rest

    with wh.exclusive(LOCK), (wh.transaction() if one else nullcontext()):
        planned = list(cutoffs)
        in_plan = ", ".join(f"$planned_{i}" for i in range(len(planned))) or "NULL"
        unplanned = dict(wh.fetchall(
            f"SELECT event_type, count(*) FROM {t('core', 'events')} WHERE event_type NOT IN ({in_plan}) "
            "OR event_type IS NULL GROUP BY event_type ORDER BY event_type",
            {f"planned_{i}": p for i, p in enumerate(planned)}))
        expiring = dict(wh.fetchall(
            f"SELECT event_type, count(*) FROM {t('core', 'events')} WHERE {expired_event} GROUP BY event_type",
            used_params(expired_event, params)))
        quarantine_expiring = wh.fetchall(
            f"SELECT count(*) FROM {t('core', 'quarantine')} WHERE {expired_quarantine}",
            used_params(expired_quarantine, params))[0][0]

        # 1. Vault entries referenced only by rows that expire (read before those rows go), and
        # 2a. the clear payloads of the quarantined records that expire: the pii side, first.
        vault_fields: dict[str, int] = {}
        payloads = 0
        q_params = used_params(expired_quarantine, params)
        with wh.transaction() if each else nullcontext():
            if sum(expiring.values()) or quarantine_expiring:
                going = (f"pii_hash IN (SELECT h FROM ({hash_references(wh, expired_event, expired_quarantine)}) AS r "
                         "WHERE stays = 0)")
                vault_fields = dict(wh.fetchall(
                    f"SELECT field, count(*) FROM {t('pii', 'vault')} WHERE {going} GROUP BY field", used_params(going, params)))
                if vault_fields:
                    deleted = wh.delete_rows("pii", "vault", going, used_params(going, params))
                    _same("pii.vault", deleted, sum(vault_fields.values()))
            if quarantine_expiring:
                payloads = wh.delete_rows(
                    "pii", "quarantine_payloads",
                    f"(source_file, source_line, sha256) IN (SELECT source_file, source_line, sha256 "
                    f"FROM {t('core', 'quarantine')} WHERE {expired_quarantine})", q_params)
        for field in sorted(vault_fields, key=str) or [None]:
            logged("pii.vault", vault_fields.get(field, 0), field=field)

        with wh.transaction() if each else nullcontext():
            # 2b. Quarantined records.
            if quarantine_expiring:
                _same("core.quarantine", wh.delete_rows("core", "quarantine", expired_quarantine, q_params),
                      quarantine_expiring)
            logged("pii.quarantine_payloads", payloads, days=q_days, cutoff=q_cutoff)
            logged("core.quarantine", quarantine_expiring, days=q_days, cutoff=q_cutoff)

            # 3. Events, last.
            if sum(expiring.values()):
                _same("core.events", wh.delete_rows("core", "events", expired_event, used_params(expired_event, params)),
                      sum(expiring.values()))
                if wh.table_exists(*SIGNALS):  # the ingest's index of the events: theirs go with them
                    wh.delete_rows(*SIGNALS, f"event_id NOT IN (SELECT event_id FROM {t('core', 'events')})")
            for event_type, (days, cutoff) in cutoffs.items():
                logged("core.events", expiring.get(event_type, 0), event_type=event_type, days=days, cutoff=cutoff)

            table = pa.Table.from_pylist(rows, schema=_log_schema())
            wh.insert_arrow("governance", "deletion_log", table, dedup_token=f"retention-{run_id}-{now.isoformat()}")
    for event_type, n in unplanned.items():
        log.warning("retention: %d events of type %r, which the tracking plan does not have, are kept (no retention "
                    "is known for them)", n, event_type)
    return RetentionResult(run_at=now, plan_version=plan.version, log=table, unplanned=unplanned)


def used_params(sql: str, params: dict[str, object]) -> dict[str, object]:
    """The parameters `sql` names (DuckDB refuses values for parameters a statement does not have)."""
    names = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in params.items() if k in names}


def _same(table: str, deleted: int, counted: int) -> None:
    if deleted != counted:
        raise RuntimeError(f"retention counted {counted} rows of {table} to delete but deleted {deleted}: another "
                           "writer changed the table meanwhile; the next run finishes the work")


def _log_schema() -> pa.Schema:
    types = {"string": pa.string(), "timestamp": pa.timestamp("us"), "integer": pa.int32(), "bigint": pa.int64()}
    return pa.schema([(c, types[k]) for c, k in DELETION_LOG.columns])
