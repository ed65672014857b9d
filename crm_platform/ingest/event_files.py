"""Landed event files into core.events, core.quarantine, core.ingest_ledger and pii.*, atomically: a
group of files commits its events, quarantine rows, vault entries and ledger rows in one
transaction, or nothing.

Flow, per group (many small files, or one large one):

1. The files are read as one stream of raw lines (`LineReader`, zero-copy; a line's key is its
   file's index in the group << 40 | its line number), and one INSERT takes the fast path's events
   (`fast_validation`: the canonical, certainly valid lines, normalized, PII hashed on the way)
   straight into core.events. The lines it does not vouch for are diverted.
2. The diverted lines (invalid ones, and valid ones in unusual shapes) get the exact validation
   (`sql_validation`): the accepted join the events; the rejected go to core.quarantine (redacted)
   and their exact bytes to pii.quarantine_payloads.
3. A file whose content was ingested before (sha256, computed in a thread meanwhile) adds nothing:
   its rows are taken out again.
4. Duplicates: of the group's events, those whose event_id the warehouse already held, or that
   came earlier in the group (file order, then line order), are deleted.
5. New PII values go to pii.vault; each file gets its ledger row and its landed_files row.

A group's rows carry its own `ingested_at` (its ledger rows the same `started_at`), which is how
steps 3 and 4 find them. On a warehouse other than DuckDB, the same steps run in a scratch DuckDB
and the group is then published (`targets.Published`).
"""
from __future__ import annotations

from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterator

import numpy as np
import pyarrow as pa

from crm_platform.ingest import residency
from crm_platform.ingest.fast_validation import FastPath
from crm_platform.ingest.landing import LandedFile, sha256_file
from crm_platform.ingest.targets import InPlace
from crm_platform.ingest.sql_validation import compile_ingest_sql
from crm_platform.plan.jsonl import LINE_SCHEMA, STRIP_LINE_END_SQL, LineReader
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import DuckDBWarehouse, Warehouse
from crm_platform.warehouse.tables import (
    EVENTS, INGEST_LEDGER, INGEST_TABLES, LANDED_FILES, PII_QUARANTINE_PAYLOADS, PII_VAULT, QUARANTINE,
    RESIDENCY_SIGNALS,
)

# A line's key carries its file's place in the group: file_idx << 40 | line_no. Lines made from a
# source's records (source_files) carry the record number, and below it `sub_bits` for the event kind.
LINE_BITS = 40
_FILE_IDX = f"(line_no >> {LINE_BITS})"
_FILE = f"$files[{_FILE_IDX} + 1]"
_EVENT_PARAMS = ("ingested_at", "files", "plan_version")


def _line(sub_bits: int = 0) -> str:
    """The source_line of a line key: the file's line, or its record's number."""
    return f"((line_no & {(1 << LINE_BITS) - 1}) >> {sub_bits})"


def _event_select(sub_bits: int = 0) -> str:
    """The columns of core.events that both validation paths fill from their SELECTs (the rest are the group's)."""
    return ("event_id, event_type, schema_version, original_schema_version, occurred_at, occurred_at_offset_minutes, "
            "$ingested_at, source, producer_id, lead_id, lead_id, user_id, attributes, context, event_date, "
            f"{_FILE}, {_line(sub_bits)}, $plan_version, data_residency")


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
    # Accepted events whose explicit `context.data_residency` names no zone (ignored, not quarantined).
    residency_unknown_tags: int = 0

    @classmethod
    def of_known_content(cls, source_file: str, sha256: str) -> "FileOutcome":
        """A file whose content was ingested before: it adds nothing."""
        return cls(source_file, sha256, 0, 0, 0, 0, "duplicate_content")


@dataclass
class _Read:
    file: LandedFile
    lines: int = 0
    records: int = 0
    skipped: int = 0
    error: str | None = None
    sha: str = ""
    same_content: bool = False


@lru_cache(maxsize=4)
def _exact_sql(plan: TrackingPlan, pii_key: bytes) -> tuple[str, dict]:
    return compile_ingest_sql(plan, f"(select line_no, {STRIP_LINE_END_SQL} as raw from ingest_diverted)", pii_key)


def ensure_ingest_tables(wh: Warehouse) -> None:
    signals_missing = not wh.table_exists(RESIDENCY_SIGNALS.schema, RESIDENCY_SIGNALS.name)
    for table in INGEST_TABLES:
        wh.ensure_table(table)
    residency.ensure_column(wh)  # an event log created before core.events had data_residency
    if signals_missing:  # or before core.residency_signals
        residency.fill_signals(wh)


class GroupIngest:
    """Ingests groups of new file versions for one run: one fast path (its PII memo lasts the run)
    and one `ingested_at` per group, strictly increasing."""

    def __init__(self, wh: DuckDBWarehouse, plan: TrackingPlan, pii_key: bytes, hasher: Executor,
                 target: InPlace | None = None):
        """`wh` is the DuckDB the work happens in: the warehouse itself, or a scratch that `target`
        (`targets.Published`) mirrors from and publishes to another warehouse."""
        self.wh, self.plan, self.pii_key, self.hasher = wh, plan, pii_key, hasher
        self.target = target or InPlace()
        self.fast = FastPath(plan, pii_key)
        self.fast.attach(wh.con)
        self._fast_sql: dict[str, str] = {}
        self._last_group_at = datetime.min
        self.sub_bits = 0  # of the group in progress: 0 for event files

    def _group_at(self) -> datetime:
        t = max(utc_now(), self._last_group_at + timedelta(microseconds=1))
        self._last_group_at = t
        return t

    def __call__(self, files: list[LandedFile]) -> list[FileOutcome]:
        """Ingest one group in one transaction; returns what happened to each file."""
        shas = [self.hasher.submit(sha256_file, f.path) for f in files]
        reads = [_Read(f) for f in files]
        params = {"ingested_at": self._group_at(), "plan_version": self.plan.version,
                  "files": [r.file.relative for r in reads]}
        with self._attempt():
            self._insert_fast(reads, params)
            exact = self._validate_diverted()
            for read, sha in zip(reads, shas):
                read.sha = sha.result()
            params["shas"] = [r.sha for r in reads]
            self._drop_known_content(reads, params)
            counts = self._insert_exact(exact, params)
            duplicates = self._delete_duplicates(params)
            unknown_tags = self._fill_residency(params)
            self._insert_vault(params)
            outcomes = _with_unknown_tags(_outcomes(reads, exact, counts, duplicates), unknown_tags)
            self._write_ledger(reads, outcomes, params["ingested_at"])
            self.wh.execute("drop table if exists ingest_exact")
            self.target.publish(params["ingested_at"])
        return outcomes

    @contextmanager
    def _attempt(self, sub_bits: int = 0) -> Iterator[None]:
        """One group's transaction, its line keys laid out with `sub_bits`. On failure the fast
        path forgets what the group recorded: its new values were not vaulted."""
        self.sub_bits = sub_bits
        try:
            with self.wh.transaction():
                yield
            self.target.committed()
        except BaseException:
            self.fast.hasher.forget()
            self.fast.diverted.take()
            raise
        finally:
            self.sub_bits = 0

    def _insert_fast(self, reads: list[_Read], params: dict) -> None:
        con = self.wh.con
        con.register("ingest_lines", pa.RecordBatchReader.from_batches(LINE_SCHEMA, _stream(reads)))
        try:
            self._insert_fast_from("ingest_lines", params)
        finally:
            con.unregister("ingest_lines")

    def _insert_fast_from(self, relation: str, params: dict) -> None:
        """One INSERT of the fast path's events of the lines of `relation` (line_no, raw)."""
        if relation not in self._fast_sql:
            self._fast_sql[relation] = self.fast.sql(relation)
        self.wh.con.execute(f"insert into {self.wh.table_name('core', 'events')} ({', '.join(EVENTS.column_names)}) "
                            f"select {_event_select(self.sub_bits)} from ({self._fast_sql[relation]})",
                            _only(params, _EVENT_PARAMS))

    def _validate_diverted(self) -> pa.Table:
        """The exact validation of the lines the fast path did not take (temp table ingest_exact);
        returns those lines."""
        diverted = self.fast.diverted.take()
        con = self.wh.con
        con.register("ingest_diverted", diverted)
        try:
            sql, params = _exact_sql(self.plan, self.pii_key)
            con.execute(f"create or replace temp table ingest_exact as select * from ({sql})", params)
        finally:
            con.unregister("ingest_diverted")
        return diverted

    def _mark_known_content(self, reads: list[_Read]) -> list[int]:
        """Marks the files whose content was ingested before (in the ledger, or earlier in this group):
        they add nothing. Returns their indexes."""
        t = self.wh.table_name
        self.target.mirror_contents([r.sha for r in reads])
        known = {r[0] for r in self.wh.fetchall(f"select sha256 from {t('core', 'ingest_ledger')} "
                                                "where sha256 in (select unnest(?))", [[r.sha for r in reads]])}
        dropped = []
        for idx, read in enumerate(reads):
            if read.sha in known:
                read.same_content = True
                dropped.append(idx)
            known.add(read.sha)
        return dropped

    def _drop_known_content(self, reads: list[_Read], params: dict) -> None:
        """Files of known content add nothing: their fast-path events are taken out again, and their
        diverted lines forgotten."""
        t = self.wh.table_name
        dropped = self._mark_known_content(reads)
        if dropped:
            self.wh.execute(f"delete from {t('core', 'events')} where ingested_at = $ingested_at "
                            "and source_file in (select unnest($dropped))",
                            {"ingested_at": params["ingested_at"], "dropped": [reads[i].file.relative for i in dropped]})
            self.wh.execute(f"delete from ingest_exact where {_FILE_IDX} in (select unnest(?))", [dropped])

    def _insert_exact(self, diverted: pa.Table, params: dict) -> dict[int, tuple[int, int]]:
        """The exact path's accepted events and rejected lines; (accepted, quarantined) per file."""
        t = self.wh.table_name
        wh = self.wh
        wh.execute(f"insert into {t('core', 'events')} ({', '.join(EVENTS.column_names)}) "
                   f"select {_event_select(self.sub_bits)} from ingest_exact where ok order by line_no",
                   _only(params, _EVENT_PARAMS))
        wh.execute(f"""
            insert into {t('core', 'quarantine')} ({', '.join(QUARANTINE.column_names)})
            select {_FILE}, {_line(self.sub_bits)}, redacted_raw, reasons, list_transform(reasons, lambda r: split_part(r, ':', 1)),
                   $ingested_at, $plan_version, $shas[{_FILE_IDX} + 1]
            from ingest_exact where not ok order by line_no""", params)
        wh.con.register("ingest_diverted", diverted)
        try:
            wh.execute(f"""
                insert into {self.target.written(wh, 'pii', 'quarantine_payloads')} ({', '.join(PII_QUARANTINE_PAYLOADS.column_names)})
                select {_FILE}, {_line(self.sub_bits)}, $shas[{_FILE_IDX} + 1], {STRIP_LINE_END_SQL}
                from ingest_diverted semi join (select line_no from ingest_exact where not ok) using (line_no)
                order by line_no""", _only(params, ("files", "shas")))
        finally:
            wh.con.unregister("ingest_diverted")
        rows = wh.fetchall(f"select {_FILE_IDX}, count(*) filter (where ok), count(*) filter (where not ok) "
                           "from ingest_exact group by all")
        return {int(idx): (ok, bad) for idx, ok, bad in rows}

    def _delete_duplicates(self, params: dict) -> dict[str, int]:
        """Deletes the group's events whose event_id was accepted before, or earlier in the group
        (file order, then line order); returns how many per file."""
        t = self.wh.table_name
        events = t("core", "events")
        p = _only(params, ("ingested_at", "files"))
        self.target.mirror_event_ids(params["ingested_at"])
        self.wh.execute(f"""
            create or replace temp table ingest_duplicates as
            with new as (select rowid rid, event_id, source_file, list_position($files, source_file) file_idx, source_line
                         from {events} where ingested_at = $ingested_at),
                 repeated as (select event_id from new group by event_id having count(*) > 1),
                 known as (select distinct o.event_id from {events} o
                           where o.ingested_at <> $ingested_at and o.event_id in (select event_id from new))
            select rid, source_file from new where event_id in (select event_id from known)
            union all
            select rid, source_file from (
                select rid, source_file, event_id,
                       row_number() over (partition by event_id order by file_idx, source_line) rn
                from new where event_id in (select event_id from repeated)
                           and event_id not in (select event_id from known))
            where rn > 1""", p)
        self.wh.execute(f"delete from {events} where rowid in (select rid from ingest_duplicates)")
        counts = dict(self.wh.fetchall("select source_file, count(*) from ingest_duplicates group by all"))
        self.wh.execute("drop table ingest_duplicates")
        return counts

    def _fill_residency(self, params: dict) -> dict[int, int]:
        """The group's events without a residency signal of their own take their lead's zone
        (`residency.fill_group`); returns, per file index, the explicit tags that named no zone."""
        residency.fill_group(self.wh, self.target, params["ingested_at"])
        return residency.unknown_tags(self.wh, LINE_BITS)

    def _insert_vault(self, params: dict, extra: str | None = None) -> None:
        """Every PII value the group's events and quarantined lines hold, once per hash (and those of
        relation `extra`'s pii_values)."""
        t = self.wh.table_name
        con = self.wh.con
        con.register("ingest_vault_pairs", self.fast.hasher.drain())
        try:
            con.execute("""
                create or replace temp table ingest_pairs as
                select field, value, hash from ingest_vault_pairs
                union all
                select p.field, p.value, p.hash from (select unnest(pii_values) p from ingest_exact)"""
                        + (f" union all select p.field, p.value, p.hash from (select unnest(pii_values) p from {extra})"
                           if extra else ""))
        finally:
            con.unregister("ingest_vault_pairs")
        self.target.mirror_vault(self.wh.fetch_arrow("select distinct hash from ingest_pairs").column(0))
        con.execute(f"""
            insert into {self.target.written(self.wh, 'pii', 'vault')} ({', '.join(PII_VAULT.column_names)})
            select hash, min(field), min(value), $ingested_at from ingest_pairs v
            where not exists (select 1 from {t('pii', 'vault')} x where x.pii_hash = v.hash)
            group by hash""", {"ingested_at": params["ingested_at"]})
        con.execute("drop table ingest_pairs")

    def _write_ledger(self, reads: list[_Read], outcomes: list[FileOutcome], started: datetime) -> None:
        t = self.wh.table_name
        finished = utc_now()
        ledger = [[o.source_file, o.sha256, o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined,
                   o.status, o.error, r.lines, r.file.size, self.plan.version, started, finished, r.skipped]
                  for r, o in zip(reads, outcomes) if not r.same_content]
        if ledger:
            self.wh.con.executemany(f"insert into {t('core', 'ingest_ledger')} ({', '.join(INGEST_LEDGER.column_names)}) "
                                    f"values ({', '.join('?' * len(INGEST_LEDGER.columns))})", ledger)
        self.wh.con.executemany(f"insert into {t('core', 'landed_files')} ({', '.join(LANDED_FILES.column_names)}) "
                                "values (?, ?, ?, ?, ?, ?)",
                                [[r.file.relative, r.file.size, r.file.mtime_ns, r.sha,
                                  "duplicate_content" if r.same_content else "ingested", started] for r in reads])


def _with_unknown_tags(outcomes: list[FileOutcome], unknown_tags: dict[int, int]) -> list[FileOutcome]:
    return [replace(o, residency_unknown_tags=unknown_tags[i]) if unknown_tags.get(i) else o
            for i, o in enumerate(outcomes)]


def _only(params: dict, names: tuple[str, ...]) -> dict:
    """DuckDB wants exactly the parameters a statement names."""
    return {k: params[k] for k in names}


def _stream(reads: list[_Read]) -> Iterator[pa.RecordBatch]:
    """Every line of the group's files, file after file; each read records its counts as it ends."""
    for idx, read in enumerate(reads):
        reader = LineReader(read.file.path, key_base=idx << LINE_BITS)
        yield from reader
        read.lines, read.records, read.error = reader.lines, reader.records, reader.error


def _outcomes(reads: list[_Read], diverted: pa.Table, exact: dict[int, tuple[int, int]],
              duplicates: dict[str, int]) -> list[FileOutcome]:
    """What happened to each file: the fast path accepted every record it did not divert."""
    diverted_per_file = np.bincount(diverted.column("line_no").to_numpy() >> LINE_BITS, minlength=len(reads)) \
        if diverted.num_rows else np.zeros(len(reads), dtype=np.int64)
    out = []
    for idx, read in enumerate(reads):
        if read.same_content:
            out.append(FileOutcome.of_known_content(read.file.relative, read.sha))
            continue
        exact_ok, quarantined = exact.get(idx, (0, 0))
        ok = read.records - int(diverted_per_file[idx]) + exact_ok
        dup = duplicates.get(read.file.relative, 0)
        out.append(FileOutcome(read.file.relative, read.sha, ok + quarantined, ok - dup, dup, quarantined,
                               "partial" if read.error else "complete", read.error))
    return out
