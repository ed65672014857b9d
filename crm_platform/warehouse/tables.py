"""The contract's tables (CONTRACT §6) as engine-neutral definitions, rendered to each engine's DDL.

Column types are logical (`string`, `timestamp`, `json`, ...). Physical layout (partitioning and sort
order) is declared here once and rendered per engine: DuckDB has no table partitions (rows keep their
landing order, and row-group zone maps prune by date), ClickHouse gets a MergeTree with
`PARTITION BY` month of `partition_by` and `ORDER BY` the sort key. ClickHouse names a table
`<schema>__<table>` inside its database (CONTRACT §6), but for the `pii` schema: the clear values
live apart (their own database in ClickHouse, their own schema or file in DuckDB; README, "the PII
vault"), so that grants and file permissions can keep everyone else out.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The schema of the clear PII (the vault and everything else that holds clear values).
PII_SCHEMA = "pii"

DUCKDB_TYPES = {
    "string": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE", "bigint": "BIGINT", "integer": "INTEGER",
    "double": "DOUBLE", "boolean": "BOOLEAN", "json": "JSON", "string[]": "VARCHAR[]", "bytes": "BLOB",
}
# JSON is kept as its text (String): the same text as in DuckDB, read with JSONExtract*. Dates and
# times use the wide types (Date32, DateTime64: years 1900-2299).
CLICKHOUSE_TYPES = {
    "string": "String", "timestamp": "DateTime64(6)", "date": "Date32", "bigint": "Int64", "integer": "Int32",
    "double": "Float64", "boolean": "Bool", "json": "String", "string[]": "Array(String)", "bytes": "String",
}


@dataclass(frozen=True)
class TableDef:
    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...] = ()
    partition_by: str | None = None
    # ClickHouse partitions by month of `partition_by`, or by day for a table written a day at a time
    # (replace_range swaps whole day partitions).
    partition_granularity: str = "month"
    description: str = ""
    # Columns to compress with zstd: long, high-cardinality text (JSON, ids), where it both writes
    # faster and stores smaller than DuckDB's default dictionary/FSST (measured on core.events:
    # 2M rows append in 0.9 s instead of 1.3 s, 166 MB instead of 181 MB).
    zstd: tuple[str, ...] = ()
    # Columns with few distinct values (types, sources, versions, files): LowCardinality in ClickHouse.
    low_cardinality: tuple[str, ...] = ()
    # A table updated in place (one row per key, the newest wins): ClickHouse keeps it as a
    # ReplacingMergeTree on this version column, and readers take the newest row per key.
    replacing: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def require_columns(self, present: Sequence[str]) -> None:
        """Raise when a stored table's columns are not this definition's (a table written in place,
        a range at a time, cannot take a changed definition)."""
        if list(present) != list(self.column_names):
            raise ValueError(f"{self.schema}.{self.name} has the columns {list(present)}, its definition "
                             f"{list(self.column_names)}: drop the table and materialize all its partitions again")

    def clickhouse_name(self, database: str, pii_database: str | None = None) -> str:
        """`"database"."schema__table"`; a table of the `pii` schema, given `pii_database` (the
        vault's own database), is `"pii_database"."table"`."""
        if self.schema == PII_SCHEMA and pii_database:
            return f'"{pii_database}"."{self.name}"'
        return f'"{database}"."{self.schema}__{self.name}"'

    def clickhouse_ddl(self, database: str, pii_database: str | None = None) -> str:
        """A MergeTree: every column Nullable but arrays (ClickHouse has no NULL array), sorted by
        `order_by` (NULLs allowed in the key), partitioned by month of `partition_by`."""
        def column(c: str, t: str) -> str:
            ch = CLICKHOUSE_TYPES[t]
            ch = ch if t.endswith("[]") or c == self.replacing else f"Nullable({ch})"  # a version is never NULL
            if c in self.low_cardinality:
                ch = f"LowCardinality({ch})"
            return f'"{c}" {ch}' + (" CODEC(ZSTD(1))" if c in self.zstd else "")
        order = ", ".join(f'"{c}"' for c in self.order_by)
        return (f"create table if not exists {self.clickhouse_name(database, pii_database)} "
                f"({', '.join(column(c, t) for c, t in self.columns)}) engine = "
                + (f'ReplacingMergeTree("{self.replacing}")' if self.replacing else "MergeTree")
                + (f' partition by {self.clickhouse_partition_key}' if self.partition_by else "")
                # The window makes a repeated insert with the same insert_deduplication_token a no-op, as
                # a ReplicatedMergeTree does by itself.
                + f" order by ({order}) settings allow_nullable_key = 1, non_replicated_deduplication_window = 1000")

    @property
    def clickhouse_partition_key(self) -> str:
        by = "toYYYYMMDD" if self.partition_granularity == "day" else "toYYYYMM"
        return f'{by}("{self.partition_by}")'

    def duckdb_ddl(self) -> str:
        cols = ", ".join(f'"{c}" {DUCKDB_TYPES[t]}' + (" USING COMPRESSION zstd" if c in self.zstd else "")
                         for c, t in self.columns)
        return f'create table if not exists "{self.schema}"."{self.name}" ({cols})'


EVENTS = TableDef("core", "events", (
    ("event_id", "string"), ("event_type", "string"), ("schema_version", "string"),
    ("original_schema_version", "string"), ("occurred_at", "timestamp"), ("occurred_at_offset_minutes", "integer"),
    ("ingested_at", "timestamp"), ("source", "string"), ("producer_id", "string"), ("lead_id", "string"),
    ("canonical_lead_id", "string"), ("user_id", "string"), ("attributes", "json"), ("context", "json"),
    ("event_date", "date"), ("source_file", "string"), ("source_line", "bigint"), ("plan_version", "string"),
    # The residency zone (crm_platform/governance/residency.py); last, as ALTER TABLE ADD COLUMN puts it.
    ("data_residency", "string"),
    # ClickHouse sort key, by measurement (benchmarks/bench_clickhouse_layout.py): inside a month's
    # partition, type then lead reads the fewest rows for touches of a date range and a lead's events.
), order_by=("event_type", "lead_id", "occurred_at"), partition_by="event_date",
    zstd=("event_id", "attributes", "context"),
    low_cardinality=("event_type", "schema_version", "original_schema_version", "source", "producer_id", "source_file",
                     "plan_version", "data_residency"),
    description="One row per accepted event (unique event_id); PII replaced by keyed hashes.")

QUARANTINE = TableDef("core", "quarantine", (
    ("source_file", "string"), ("source_line", "bigint"), ("raw_record", "string"), ("reasons", "string[]"),
    ("reason_codes", "string[]"), ("quarantined_at", "timestamp"), ("plan_version", "string"), ("sha256", "string"),
), order_by=("source_file", "source_line"), low_cardinality=("source_file", "plan_version"),
    description="One row per rejected record with its reasons; raw_record is redacted (clear payload in pii.quarantine_payloads).")

INGEST_LEDGER = TableDef("core", "ingest_ledger", (
    ("source_file", "string"), ("sha256", "string"), ("records_read", "bigint"), ("events_accepted", "bigint"),
    ("events_duplicate", "bigint"), ("records_quarantined", "bigint"), ("status", "string"), ("error", "string"),
    ("lines_read", "bigint"), ("file_bytes", "bigint"), ("plan_version", "string"), ("started_at", "timestamp"),
    ("finished_at", "timestamp"), ("records_skipped", "bigint"),
), order_by=("sha256",),
    description="One row per landed file content: records_read = events_accepted + events_duplicate + "
                "records_quarantined; records_skipped counts what is no record (Debezium tombstones).")

LANDED_FILES = TableDef("core", "landed_files", (
    ("source_file", "string"), ("file_size", "bigint"), ("file_mtime_ns", "bigint"), ("sha256", "string"),
    ("outcome", "string"), ("seen_at", "timestamp"),
), order_by=("source_file",),
    description="Every landed path with its content hash: a known (path, size, mtime) is never read again, "
                "and a copy of processed content under another name adds nothing.")

PII_VAULT = TableDef("pii", "vault", (
    ("pii_hash", "string"), ("field", "string"), ("value", "string"), ("first_seen_at", "timestamp"),
), order_by=("pii_hash",), description="Clear PII values by their keyed hash; the only place they are stored.")

PII_QUARANTINE_PAYLOADS = TableDef("pii", "quarantine_payloads", (
    ("source_file", "string"), ("source_line", "bigint"), ("sha256", "string"), ("raw_record", "bytes"),
), order_by=("source_file", "source_line"),
    description="The exact bytes of each quarantined record (line end removed), clear, for replay.")

SOURCE_RECORDS = TableDef("pii", "source_records", (
    ("source_system", "string"), ("source_object", "string"), ("source_id", "string"), ("lead_id", "string"),
    ("position_a", "bigint"), ("position_b", "bigint"), ("state", "json"), ("deleted", "boolean"),
    ("source_file", "string"), ("updated_at", "timestamp"),
), order_by=("source_system", "source_object", "source_id"), low_cardinality=("source_system", "source_object"),
    replacing="updated_at", zstd=("state",),
    description="The last known state of every CDC row and export record, clear (so in the pii schema): what "
                "the next change or export is diffed against, and the identity graph's source records.")

# An index of core.events, written with them: a lead's zone (governance/residency.py rule 3) is its
# newest signal, read here instead of from the events' JSON text.
RESIDENCY_SIGNALS = TableDef("core", "residency_signals", (
    ("lead_id", "string"), ("zone", "string"), ("occurred_at", "timestamp"), ("event_id", "string"),
    ("ingested_at", "timestamp"),
), order_by=("lead_id", "occurred_at"), low_cardinality=("zone",),
    description="One row per event with a residency signal of its own (a known tag or a mapped country) and a "
                "lead id: the zone rules 1-2 gave it at ingestion.")

INGEST_TABLES = (EVENTS, QUARANTINE, INGEST_LEDGER, LANDED_FILES, PII_VAULT, PII_QUARANTINE_PAYLOADS, SOURCE_RECORDS,
                 RESIDENCY_SIGNALS)
