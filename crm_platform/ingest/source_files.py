"""CDC change streams and CRM exports into the event log, through the ingest's one path.

A group of one source's files (one mapping, path order) is read into change records
(`source_changes`), diffed against the records' last known state (`pii.source_records`), and the
events that makes take exactly the path landed event files take (`event_files.GroupIngest`): fast
and exact validation, quarantine, PII split, duplicate check, ledger, publication. What differs is
the accounting: a record (a Debezium message, an export row) may make several events or none, so
the ledger counts records: accepted if one of its events was, quarantined if it could not be read or
an event of it was rejected, a duplicate otherwise (already seen, or nothing changed). Debezium
tombstones are no records: `records_skipped`.

Exports are read by DuckDB (`read_csv`, all columns as text, RFC 4180 quoting, quoted newlines;
`read_parquet`) in their encoding: declared in the mapping, or detected (a BOM; else UTF-8 if the
bytes are; else Latin-1). A row DuckDB cannot split into the header's columns is quarantined with
its row number. A header that lacks a mapped column rejects the file: every row is quarantined with
a reason that names the missing columns.
"""
from __future__ import annotations

import codecs
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from crm_platform.ingest.event_files import (
    _FILE_IDX, LINE_BITS, FileOutcome, GroupIngest, _line, _only, _Read, _with_unknown_tags,
)
from crm_platform.ingest.landing import LandedFile, sha256_file
from crm_platform.ingest.source_changes import SUB_BITS, ChangeCompiler
from crm_platform.ingest.sql_validation import _lit as _quote
from crm_platform.ingest.sql_validation import compile_redaction_sql, pii_field_names
from crm_platform.plan.jsonl import LINE_SCHEMA, LineReader
from crm_platform.sources.mapping import SourceMapping
from crm_platform.warehouse.tables import PII_QUARANTINE_PAYLOADS, QUARANTINE, SOURCE_RECORDS

SUFFIXES = {"debezium": (".jsonl", ".jsonl.gz"), "csv": (".csv",), "parquet": (".parquet",)}
_RECORD = _line(SUB_BITS)


def list_source_files(landing_dir: Path, mapping: SourceMapping) -> list[LandedFile]:
    root = landing_dir / mapping.landing
    if not root.is_dir():
        return []
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES[mapping.format]))
    return [LandedFile(p, p.relative_to(landing_dir).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


def detect_encoding(path: Path) -> str:
    """DuckDB's name for a CSV file's encoding: a BOM says it; else UTF-8 if every byte decodes; else Latin-1."""
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := f.read(1 << 22):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8"


class SourceIngest(GroupIngest):
    """One group of one source's files in one transaction (on DuckDB; published elsewhere)."""

    def ingest_source(self, files: list[LandedFile], mapping: SourceMapping) -> list[FileOutcome]:
        reads = [_Read(f) for f in files]
        for read in reads:
            read.sha = sha256_file(read.file.path)
        params = {"ingested_at": self._group_at(), "plan_version": self.plan.version,
                  "files": [r.file.relative for r in reads], "shas": [r.sha for r in reads]}
        compiler = ChangeCompiler(mapping, self.plan)
        with self._attempt(SUB_BITS):
            self._mark_known_content(reads)
            self._read_changes(reads, mapping, compiler)
            self.target.mirror_source_records(mapping.source_system, mapping.object,
                                              self.wh.fetch_arrow("select distinct key from ingest_changes "
                                                                  "where bad is null").column(0))
            s = self.wh.table_name
            self._mark_leadless(compiler, s("pii", "source_records"))
            self._quarantine_unreadable(params, mapping)
            # The order is materialized (narrow); the rows and event lines are views, computed as
            # the INSERT and the state update read them: a large export never sits in memory twice.
            self.wh.execute(f"create or replace temp table ingest_change_order as "
                            f"{compiler.change_order('ingest_changes', s('pii', 'source_records'))}")
            if (ties := compiler.number_ties("ingest_change_order")) is not None:
                self.wh.execute(ties)
            self.wh.execute(f"create or replace temp view ingest_change_rows as "
                            f"{compiler.change_rows('ingest_change_order', 'ingest_changes')}")
            self.wh.execute(f"create or replace temp view ingest_converted as select line_no, encode(raw) AS raw "
                            f"from ({compiler.events('select * from ingest_change_rows')})")
            self._insert_fast_from("ingest_converted", params)
            exact = self._validate_diverted()
            self._insert_exact(exact, params)
            self._delete_duplicates(params)
            unknown_tags = self._fill_residency(params)
            self._insert_vault(params, extra="ingest_unreadable")
            self._update_state(compiler, mapping, params)
            outcomes = _with_unknown_tags(self._record_outcomes(reads, params), unknown_tags)
            self._write_ledger(reads, outcomes, params["ingested_at"])
            self.wh.execute("drop view ingest_converted")
            self.wh.execute("drop view ingest_change_rows")
            for table in ("ingest_exact", "ingest_changes", "ingest_change_order", "ingest_unreadable"):
                self.wh.execute(f"drop table if exists {table}")
            self.target.publish(params["ingested_at"])
        return outcomes

    # -- reading -----------------------------------------------------------------------------------

    def _read_changes(self, reads: list[_Read], mapping: SourceMapping, compiler: ChangeCompiler) -> None:
        """temp table ingest_changes: every record of the group's new files (none of the known ones)."""
        con = self.wh.con
        live = [(idx, r) for idx, r in enumerate(reads) if not r.same_content]
        empty = "(select 0::bigint line_no, NULL::blob raw) _none"
        con.execute(f"create or replace temp table ingest_changes as {compiler.debezium(empty)} limit 0")
        if mapping.format != "debezium":
            for idx, read in live:
                self._load_export(read, idx, mapping, compiler)
            return
        batches, readers = [], []
        for idx, read in live:
            reader = LineReader(read.file.path, key_base=idx << LINE_BITS)
            batches.extend(reader)
            readers.append((read, reader))
        con.register("ingest_source_lines", pa.Table.from_batches(batches, schema=LINE_SCHEMA))
        try:
            con.execute(f"insert into ingest_changes {compiler.debezium('ingest_source_lines')}")
        finally:
            con.unregister("ingest_source_lines")
        for read, reader in readers:
            read.lines, read.error = reader.lines, reader.error
        counts = {int(i): (int(n), int(t)) for i, n, t in self.wh.fetchall(
            f"select rec >> {LINE_BITS}, count(*) filter (where bad is distinct from 'tombstone'), "
            "count(*) filter (where bad = 'tombstone') from ingest_changes group by all")}
        for idx, read in live:
            read.records, read.skipped = counts.get(idx, (0, 0))
        self.wh.execute("delete from ingest_changes where bad = 'tombstone'")

    def _load_export(self, read: _Read, idx: int, mapping: SourceMapping, compiler: ChangeCompiler) -> None:
        """One export file's records into ingest_changes; rows DuckDB cannot split, as unreadable records."""
        con = self.wh.con
        path = str(read.file.path).replace("'", "''")
        base = idx << LINE_BITS
        as_of_sql = f"TIMESTAMP '{self._as_of(read, mapping).isoformat(sep=' ')}'"
        if mapping.format == "parquet":
            source = f"read_parquet('{path}')"
            header = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]
            rows = f"(select * rename (ordinality AS rec_no) from {source} with ordinality)"
            read.records = read.lines = con.execute(f"select count(*) from {source}").fetchall()[0][0]
            con.execute(f"insert into ingest_changes {self._with_header_check(compiler.csv(rows, header, base, as_of_sql), header, mapping)}")
            return
        encoding = mapping.encoding if mapping.encoding != "auto" else detect_encoding(read.file.path)
        options = (f"header = true, all_varchar = true, encoding = '{encoding}', delim = '{mapping.delimiter}', "
                   "quote = '\"', escape = '\"', ignore_errors = true, store_rejects = true, "
                   "rejects_table = 'ingest_csv_rejects', rejects_scan = 'ingest_csv_scans'")
        source = f"read_csv('{path}', {options})"
        header = [r[0] for r in con.execute(f"describe select * from read_csv('{path}', "
                                            f"{options.split(', store_rejects')[0]})").fetchall()]
        con.execute(f"create or replace temp table ingest_csv_rows as select * rename (ordinality AS ordinal) "
                    f"from {source} with ordinality")
        # One row per rejected row (DuckDB reports each error: a row with two extra columns twice).
        rejected = con.execute("select line - 1, min(csv_line), string_agg(distinct error_message, '; ') "
                               "from ingest_csv_rejects group by line order by line").fetchall()
        good = con.execute("select count(*) from ingest_csv_rows").fetchall()[0][0]
        read.records = read.lines = good + len(rejected)
        self._renumber([n for n, _, _ in rejected], good)
        con.execute(f"insert into ingest_changes {self._with_header_check(compiler.csv('ingest_csv_numbered', header, base, as_of_sql), header, mapping)}")
        if rejected:
            con.register("ingest_csv_bad", pa.table({
                "rec": pa.array([base + (n << SUB_BITS) for n, _, _ in rejected], pa.int64()),
                "raw": pa.array([(t or "").encode() for _, t, _ in rejected], pa.large_binary()),
                "bad": [f"malformed_row: {m}" for _, _, m in rejected]}))
            con.execute("insert into ingest_changes by name select rec, raw, bad from ingest_csv_bad")
            con.unregister("ingest_csv_bad")
        for table in ("ingest_csv_rows", "ingest_csv_numbered", "ingest_csv_rejects", "ingest_csv_scans"):
            con.execute(f"drop table if exists {table}")

    def _renumber(self, bad_numbers: list[int], good: int) -> None:
        """ingest_csv_numbered: the kept rows with their row numbers. DuckDB numbers only the rows it
        kept; the k-th kept row is the k-th number of 1..good+rejected that was not rejected."""
        if not bad_numbers:
            self.wh.execute("create or replace temp table ingest_csv_numbered as select *, ordinal AS rec_no from ingest_csv_rows")
            return
        keep = np.ones(good + len(bad_numbers), dtype=bool)
        keep[np.array(bad_numbers, dtype=np.int64) - 1] = False
        numbers = pa.table({"ordinal": pa.array(np.arange(1, good + 1), pa.int64()),
                            "rec_no": pa.array(np.flatnonzero(keep) + 1, pa.int64())})
        self.wh.con.register("ingest_csv_renumber", numbers)
        self.wh.con.execute("create or replace temp table ingest_csv_numbered as select r.*, n.rec_no "
                            "from ingest_csv_rows r join ingest_csv_renumber n using (ordinal)")
        self.wh.con.unregister("ingest_csv_renumber")

    @staticmethod
    def _with_header_check(sql: str, header: list[str], mapping: SourceMapping) -> str:
        missing = [c.name for c in mapping.columns if c.name not in header]
        if not missing:
            return sql
        reason = (f"header_mismatch: the header lacks {', '.join(missing)} (mapping {mapping.path.name}); "
                  f"it has {', '.join(header)}")
        return f"SELECT * REPLACE ({_quote(reason)} AS bad) FROM ({sql})"

    @staticmethod
    def _as_of(read: _Read, mapping: SourceMapping) -> datetime:
        """When the export was taken: from its name as the mapping says, else its modification time.
        A date names the end of that day, a month (a format without a day, `%Y-%m`) the end of that
        month: the export holds everything up to it."""
        spec = mapping.as_of or {}
        m = re.search(spec["file_name"], read.file.path.name) if spec.get("file_name") else None
        if m:
            fmt = spec.get("format", "%Y-%m-%d")
            at = datetime.strptime(m.group(1), fmt)
            if "%H" in fmt:
                return at
            if "%d" not in fmt and "%j" not in fmt:
                return datetime(at.year + at.month // 12, at.month % 12 + 1, 1)
            return at + timedelta(days=1)
        return datetime.utcfromtimestamp(read.file.mtime_ns / 1e9)

    # -- the rest of the path ------------------------------------------------------------------------

    def _mark_leadless(self, compiler: ChangeCompiler, state: str) -> None:
        """Records that would make events about a person without a lead_id (a new record whose
        lead_id cells are empty) become unreadable, with the reason naming the empty cells: they are
        quarantined and make no state, so a later row with the cells filled creates the record."""
        sql = compiler.leadless("ingest_changes", state)
        if sql is None:
            return
        self.wh.execute(f"create or replace temp table ingest_leadless as {sql}")
        self.wh.execute("update ingest_changes set bad = l.bad from ingest_leadless l where ingest_changes.rec = l.rec")
        self.wh.execute("drop table ingest_leadless")

    def _quarantine_unreadable(self, params: dict, mapping: SourceMapping) -> None:
        """Records that never become events (broken JSON, an unknown op, a row that does not split):
        quarantined, redacted (the plan's PII members and the source columns that become them, by
        name), with their exact bytes in the pii schema."""
        t = self.wh.table_name
        names = pii_field_names(self.plan)
        names += tuple(c.name for c in mapping.columns if c.property in names and c.name not in names)
        sql, redaction = compile_redaction_sql(
            "(select rec AS line_no, coalesce(raw, '') AS raw, bad AS reason from ingest_changes where bad is not null)",
            self.pii_key, names)
        self.wh.execute(f"create or replace temp table ingest_unreadable as {sql}", redaction)
        group = _only(params, ("files", "ingested_at", "plan_version", "shas"))
        self.wh.execute(f"""
            insert into {t('core', 'quarantine')} ({', '.join(QUARANTINE.column_names)})
            select $files[{_FILE_IDX} + 1], {_RECORD}, redacted_raw, [reason], [split_part(reason, ':', 1)],
                   $ingested_at, $plan_version, $shas[{_FILE_IDX} + 1]
            from ingest_unreadable order by line_no""", group)
        self.wh.execute(f"""
            insert into {self.target.written(self.wh, 'pii', 'quarantine_payloads')} ({', '.join(PII_QUARANTINE_PAYLOADS.column_names)})
            select $files[{_FILE_IDX} + 1], {_RECORD}, $shas[{_FILE_IDX} + 1], coalesce(c.raw, '')
            from ingest_changes c join ingest_unreadable u on u.line_no = c.rec order by c.rec""",
                        _only(params, ("files", "shas")))

    def _update_state(self, compiler: ChangeCompiler, mapping: SourceMapping, params: dict) -> None:
        states = self.target.written(self.wh, "pii", "source_records")
        self.wh.execute(f"create or replace temp table ingest_new_state as "
                        f"{compiler.new_state('select * from ingest_change_rows')}")
        where = (f"source_system = {_quote(mapping.source_system)} and source_object = {_quote(mapping.object)}")
        # (In a staging table, targets.SeparateVault, there is nothing to delete: it replaces them once the group is in.)
        self.wh.execute(f"delete from {states} where {where} "
                        "and source_id in (select source_id from ingest_new_state)")
        self.wh.execute(f"""
            insert into {states} ({', '.join(SOURCE_RECORDS.column_names)})
            select {_quote(mapping.source_system)}, {_quote(mapping.object)}, source_id, lead_id, position_a, position_b,
                   state, deleted, $files[file_idx + 1], $ingested_at
            from ingest_new_state""", _only(params, ("files", "ingested_at")))
        self.wh.execute("drop table ingest_new_state")

    def _record_outcomes(self, reads: list[_Read], params: dict) -> list[FileOutcome]:
        """Per file: each record accepted (an event of it was), quarantined (unreadable, or an event
        of it rejected) or a duplicate (seen before, nothing new, or its events all duplicates)."""
        rows = self.wh.fetchall(f"""
            with records as (select rec, bad is not null as unreadable from ingest_changes),
                 accepted as (select distinct list_position($files, source_file) - 1 AS f, source_line AS r
                              from {self.wh.table_name('core', 'events')} where ingested_at = $ingested_at),
                 rejected as (select distinct {_FILE_IDX} AS f, {_RECORD} AS r from ingest_exact where not ok)
            select rec >> {LINE_BITS} AS f,
                   count(*) filter (where not unreadable and a.r is not null),
                   count(*) filter (where unreadable or (a.r is null and x.r is not null))
            from records
            left join accepted a on a.f = rec >> {LINE_BITS} and a.r = (rec & {(1 << LINE_BITS) - 1}) >> {SUB_BITS}
            left join rejected x on x.f = rec >> {LINE_BITS} and x.r = (rec & {(1 << LINE_BITS) - 1}) >> {SUB_BITS}
            group by all""", _only(params, ("files", "ingested_at")))
        per_file = {int(f): (int(a), int(q)) for f, a, q in rows}
        out = []
        for idx, read in enumerate(reads):
            if read.same_content:
                out.append(FileOutcome.of_known_content(read.file.relative, read.sha))
                continue
            accepted, quarantined = per_file.get(idx, (0, 0))
            out.append(FileOutcome(read.file.relative, read.sha, read.records, accepted,
                                   read.records - accepted - quarantined, quarantined,
                                   "partial" if read.error else "complete", read.error))
        return out

