"""Landed event files into core.events, core.quarantine, core.ingest_ledger and pii.*, atomically: a
file's events, quarantine rows, vault entries and ledger row commit in one transaction, or nothing.

Files are taken in groups (many small files, or one large one) so that the validation query, which
DuckDB takes ~0.15 s to plan whatever the row count, runs once per ~32 MB of lines rather than once
per file; a group commits together, so every file in it is still all or nothing.

Flow: each file is read in batches of raw lines (`LineReader`, zero-copy); lines are validated,
normalized and PII-split inside the engine by SQL compiled from the tracking plan, and staged. Once
the group is staged and its files' sha256 (computed in a thread meanwhile) are known, files whose
content was already ingested are dropped from the staging, one anti-join against core.events drops
ids already accepted (duplicates across files and runs), a window keeps the first of ids repeated
within the group (file order, then line order), and the rows are inserted.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.ingest.landing import LandedFile, sha256_file
from crm_platform.ingest.sql_validation import compile_ingest_sql
from crm_platform.plan.jsonl import BATCH_BYTES, LINE_SCHEMA, STRIP_LINE_END_SQL, LineReader
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import DuckDBWarehouse
from crm_platform.warehouse.tables import (
    EVENTS, INGEST_LEDGER, INGEST_TABLES, LANDED_FILES, PII_QUARANTINE_PAYLOADS, PII_VAULT, QUARANTINE,
)

STAGED = "ingest_staged"
REJECTED_BYTES = "ingest_rejected_bytes"
# A staged line's key carries its file's place in the group: file_idx << 40 | line_no.
LINE_BITS = 40


def utc_now() -> datetime:
    """Timestamps in the warehouse are naive UTC (CONTRACT §6)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class FileOutcome:
    source_file: str
    sha256: str
    records_read: int
    events_accepted: int
    events_duplicate: int
    records_quarantined: int
    status: str  # complete | partial | duplicate_content
    error: str | None = None


@dataclass
class _Read:
    file: LandedFile
    lines: int = 0
    error: str | None = None
    sha: str = ""
    same_content: bool = False


@lru_cache(maxsize=4)
def _validation_sql(plan: TrackingPlan, pii_key: bytes) -> tuple[str, dict]:
    return compile_ingest_sql(plan, f"(select line_no, {STRIP_LINE_END_SQL} as raw from ingest_batch)", pii_key)


def ensure_ingest_tables(wh: DuckDBWarehouse) -> None:
    for table in INGEST_TABLES:
        wh.ensure_table(table)


def ingest_event_files(wh: DuckDBWarehouse, plan: TrackingPlan, files: list[LandedFile], pii_key: bytes,
                       now: datetime, hasher: Executor) -> list[FileOutcome]:
    """Ingest a group of new file versions in one transaction; returns what happened to each."""
    shas = [hasher.submit(sha256_file, f.path) for f in files]
    reads = [_Read(f) for f in files]
    sql, params = _validation_sql(plan, pii_key)
    with wh.transaction():
        wh.con.register("ingest_batch", LINE_SCHEMA.empty_table())  # the staging takes the query's columns
        wh.execute(f"create or replace temp table {STAGED} as select * from ({sql}) limit 0", params)
        wh.execute(f"create or replace temp table {REJECTED_BYTES} (line_no bigint, raw blob)")
        pending: list[pa.RecordBatch] = []
        size = 0
        for idx, read in enumerate(reads):
            reader = LineReader(read.file.path)
            for batch in reader:
                key = pc.add(batch.column(0), pa.scalar(idx << LINE_BITS, pa.int64()))
                pending.append(pa.RecordBatch.from_arrays([key, batch.column(1)], schema=batch.schema))
                size += batch.column(1).nbytes
                if size >= BATCH_BYTES:
                    _stage(wh, sql, params, pending)
                    pending, size = [], 0
            read.lines, read.error = reader.lines, reader.error
        _stage(wh, sql, params, pending)
        _mark_same_content(wh, reads, [s.result() for s in shas])
        counts = _commit_staged(wh, plan, reads, now)
        outcomes = []
        for idx, read in enumerate(reads):
            if read.same_content:
                outcomes.append(FileOutcome(read.file.relative, read.sha, 0, 0, 0, 0, "duplicate_content"))
                continue
            accepted, duplicate, quarantined = counts.get(idx, (0, 0, 0))
            outcomes.append(FileOutcome(read.file.relative, read.sha, accepted + duplicate + quarantined, accepted,
                                        duplicate, quarantined, "partial" if read.error else "complete", read.error))
        _write_ledger(wh, plan, reads, outcomes, now)
        wh.execute(f"drop table {STAGED}")
        wh.execute(f"drop table {REJECTED_BYTES}")
    return outcomes


def _stage(wh: DuckDBWarehouse, sql: str, params: dict, batches: list[pa.RecordBatch]) -> None:
    if not batches:
        return
    wh.con.register("ingest_batch", pa.Table.from_batches(batches))
    try:
        # Clear text is kept only for rejected lines (their replay payload, with their exact bytes);
        # accepted rows carry their normalized columns, which keeps the staging small.
        wh.con.execute(f"create or replace temp table ingest_validated as {sql}", params)
        wh.con.execute(f"insert into {STAGED} select * replace (case when ok then null else raw_text end as raw_text) "
                       "from ingest_validated")
        wh.con.execute(f"insert into {REJECTED_BYTES} select b.line_no, {STRIP_LINE_END_SQL} from ingest_batch b "
                       "semi join (select line_no from ingest_validated where not ok) v on v.line_no = b.line_no")
    finally:
        wh.con.unregister("ingest_batch")


def _mark_same_content(wh: DuckDBWarehouse, reads: list[_Read], shas: list[str]) -> None:
    """A file whose content was ingested before (in the ledger, or earlier in this group) adds nothing."""
    known = {r[0] for r in wh.fetchall(f"select sha256 from {wh.table_name('core', 'ingest_ledger')} "
                                       f"where sha256 in (select unnest(?))", [shas])}
    dropped = []
    for idx, (read, sha) in enumerate(zip(reads, shas)):
        read.sha = sha
        if sha in known:
            read.same_content = True
            dropped.append(idx)
        known.add(sha)
    if dropped:
        for table in (STAGED, REJECTED_BYTES):
            wh.execute(f"delete from {table} where (line_no >> {LINE_BITS}) in (select unnest(?))", [dropped])


def _commit_staged(wh: DuckDBWarehouse, plan: TrackingPlan, reads: list[_Read],
                   now: datetime) -> dict[int, tuple[int, int, int]]:
    """Insert the staged rows; returns (accepted, duplicate, quarantined) per file index."""
    t = wh.table_name
    files = pa.table({"file_idx": pa.array(range(len(reads)), pa.int64()),
                      "source_file": [r.file.relative for r in reads], "sha256": [r.sha for r in reads]})
    wh.con.register("ingest_files", files)
    try:
        wh.execute(f"""
            create or replace temp table ingest_accept as
            select s.line_no >> {LINE_BITS} file_idx, s.line_no & {(1 << LINE_BITS) - 1} line, s.*
            from {STAGED} s
            where s.ok and not exists (select 1 from {t('core', 'events')} e where e.event_id = s.event_id)
            qualify row_number() over (partition by s.event_id order by s.line_no) = 1""")
        wh.execute(f"""
            insert into {t('core', 'events')} ({', '.join(EVENTS.column_names)})
            select a.event_id, a.event_type, a.schema_version, a.original_schema_version, a.occurred_at,
                   a.occurred_at_offset_minutes, $now, a.source, a.producer_id, a.lead_id, a.lead_id, a.user_id,
                   a.attributes, a.context, a.event_date, f.source_file, a.line, $plan_version
            from ingest_accept a join ingest_files f using (file_idx)
            order by a.event_date, a.line_no""", {"now": now, "plan_version": plan.version})
        where_bad = f"from {STAGED} s join ingest_files f on f.file_idx = s.line_no >> {LINE_BITS} where not s.ok"
        line = f"s.line_no & {(1 << LINE_BITS) - 1}"
        wh.execute(f"""
            insert into {t('core', 'quarantine')} ({', '.join(QUARANTINE.column_names)})
            select f.source_file, {line}, s.redacted_raw, s.reasons,
                   list_transform(s.reasons, lambda r: split_part(r, ':', 1)), $now, $plan_version, f.sha256
            {where_bad} order by s.line_no""", {"now": now, "plan_version": plan.version})
        wh.execute(f"""
            insert into {t('pii', 'quarantine_payloads')} ({', '.join(PII_QUARANTINE_PAYLOADS.column_names)})
            select f.source_file, r.line_no & {(1 << LINE_BITS) - 1}, f.sha256, r.raw
            from {REJECTED_BYTES} r join ingest_files f on f.file_idx = r.line_no >> {LINE_BITS}
            order by r.line_no""")
        wh.execute(f"""
            insert into {t('pii', 'vault')} ({', '.join(PII_VAULT.column_names)})
            select p.hash, min(p.field), min(p.value), $now
            from (select unnest(pii_values) p from {STAGED}) v
            where not exists (select 1 from {t('pii', 'vault')} x where x.pii_hash = v.p.hash)
            group by p.hash""", {"now": now})
        rows = wh.fetchall(f"""
            with staged as (select line_no >> {LINE_BITS} file_idx, count(*) filter (where ok) ok_rows,
                                   count(*) filter (where not ok) bad_rows from {STAGED} group by all),
                 accepted as (select file_idx, count(*) accepted from ingest_accept group by all)
            select file_idx, ok_rows, bad_rows, coalesce(accepted, 0) from staged left join accepted using (file_idx)""")
    finally:
        wh.con.unregister("ingest_files")
    wh.execute("drop table ingest_accept")
    return {idx: (accepted, ok_rows - accepted, bad) for idx, ok_rows, bad, accepted in rows}


def _write_ledger(wh: DuckDBWarehouse, plan: TrackingPlan, reads: list[_Read], outcomes: list[FileOutcome],
                  now: datetime) -> None:
    t = wh.table_name
    finished = utc_now()
    ledger = [[o.source_file, o.sha256, o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined,
               o.status, o.error, r.lines, r.file.size, plan.version, now, finished]
              for r, o in zip(reads, outcomes) if not r.same_content]
    if ledger:
        wh.con.executemany(f"insert into {t('core', 'ingest_ledger')} ({', '.join(INGEST_LEDGER.column_names)}) "
                           "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ledger)
    wh.con.executemany(f"insert into {t('core', 'landed_files')} ({', '.join(LANDED_FILES.column_names)}) "
                       "values (?, ?, ?, ?, ?, ?)",
                       [[r.file.relative, r.file.size, r.file.mtime_ns, r.sha,
                         "duplicate_content" if r.same_content else "ingested", now] for r in reads])
