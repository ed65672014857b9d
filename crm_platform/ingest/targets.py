"""Where a group's rows end up: the DuckDB warehouse the ingest runs in, or another warehouse.

The ingest always parses and validates in DuckDB (`event_files.GroupIngest`). On the DuckDB warehouse
it works in place, inside one transaction (`InPlace`: nothing to do here). For ClickHouse, which has
no multi-statement transactions, `Published` runs the same steps in a scratch DuckDB that mirrors the
slice of the warehouse each step needs (the ledger rows of the group's contents, the warehouse's
copies of the group's event ids, the vault's copies of its hashes), then publishes the group's own
rows, the ledger rows last: a file is ingested once its ledger row is there.

Exactly once: ingest runs on a remote warehouse hold its `exclusive("ingest")` lock, so no two
interleave (the anti-joins then see everything committed before); every insert carries a
deduplication token, so a retried insert adds nothing; and `recover` removes what a run that died
between its first insert and its ledger rows left behind, before anything else is ingested.
"""
from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from crm_platform.warehouse import DuckDBWarehouse, Warehouse
from crm_platform.warehouse.tables import PII_QUARANTINE_PAYLOADS, PII_SCHEMA, PII_VAULT, SOURCE_RECORDS

# Rows copied from the warehouse into the scratch mirror carry this ingested_at / started_at: older
# than any group, so the dedup and content checks read them as known, and they are never published.
MIRRORED = datetime(1970, 1, 1)
_CHUNK_ROWS = 500_000


class InPlace:
    """The ingest runs in the warehouse itself: its transaction is the commit."""

    def written(self, wh: DuckDBWarehouse, schema: str, table: str) -> str:
        """The name the group writes `schema.table` under, in `wh`: the table itself."""
        return wh.table_name(schema, table)

    def committed(self) -> None:
        """Called once the group's transaction has committed."""

    def mirror_contents(self, shas: list[str]) -> None: ...

    def mirror_event_ids(self, group_at: datetime) -> None: ...

    def mirror_vault(self, hashes: pa.Array) -> None: ...

    def mirror_source_records(self, system: str, obj: str, keys: pa.Array) -> None: ...

    def publish(self, group_at: datetime) -> None: ...


class Published(InPlace):
    """The ingest runs in `scratch` (a local DuckDB with the ingest tables) and publishes to `target`."""

    def __init__(self, target: Warehouse, scratch: DuckDBWarehouse):
        self.target, self.scratch = target, scratch

    def mirror_contents(self, shas: list[str]) -> None:
        t = self.target.table_name
        known = self.target.fetch_arrow(f"select distinct sha256 from {t('core', 'ingest_ledger')} "
                                        "where sha256 in (select sha256 from group_shas)",
                                        tables={"group_shas": pa.table({"sha256": pa.array(shas, pa.string())})})
        self._insert_marked("core", "ingest_ledger", known, "started_at")

    def mirror_event_ids(self, group_at: datetime) -> None:
        ids = self.scratch.fetch_arrow(f"select distinct event_id from {self.scratch.table_name('core', 'events')} "
                                       "where ingested_at = ?", [group_at])
        if not ids.num_rows:
            return
        known = self.target.fetch_arrow(f"select distinct event_id from {self.target.table_name('core', 'events')} "
                                        "where event_id in (select event_id from group_ids)", tables={"group_ids": ids})
        self._insert_marked("core", "events", known, "ingested_at")

    def mirror_vault(self, hashes: pa.Array) -> None:
        if not len(hashes):
            return
        known = self.target.fetch_arrow(f"select distinct pii_hash from {self.target.table_name('pii', 'vault')} "
                                        "where pii_hash in (select pii_hash from group_hashes)",
                                        tables={"group_hashes": pa.table({"pii_hash": hashes})})
        self._insert_marked("pii", "vault", known, "first_seen_at")

    def mirror_source_records(self, system: str, obj: str, keys: pa.Array) -> None:
        """The newest state the warehouse holds of each of the group's source records."""
        if not len(keys):
            return
        known = self.target.fetch_arrow(f"""
            select * from {self.target.table_name('pii', 'source_records')}
            where source_system = ? and source_object = ? and source_id in (select source_id from group_keys)
            qualify row_number() over (partition by source_id order by updated_at desc) = 1""", [system, obj],
            tables={"group_keys": pa.table({"source_id": keys.cast(pa.string())})})
        if known.num_rows:
            self.scratch.insert_arrow("pii", "source_records", known)

    def _insert_marked(self, schema: str, table: str, rows: pa.Table, marker: str) -> None:
        if rows.num_rows:
            self.scratch.insert_arrow(schema, table, rows.append_column(marker, pa.array([MIRRORED] * rows.num_rows,
                                                                                          pa.timestamp("us"))))

    def publish(self, group_at: datetime) -> None:
        """The group's rows into the target, the ledger after everything it vouches for; then the
        scratch is emptied for the next group."""
        s = self.scratch.table_name
        token = group_at.isoformat()
        for schema, table, where in (("core", "events", "ingested_at = $at"), ("core", "residency_signals", "true"),
                                     ("core", "quarantine", "true"),
                                     ("pii", "quarantine_payloads", "true"), ("pii", "vault", "first_seen_at = $at"),
                                     ("pii", "source_records", "updated_at = $at"),
                                     ("core", "ingest_ledger", "started_at = $at"), ("core", "landed_files", "true")):
            sql = f"select * from {s(schema, table)} where {where}"
            reader = self.scratch.con.sql(sql, params={"at": group_at} if "$at" in where else None).to_arrow_reader(_CHUNK_ROWS)
            for i, batch in enumerate(reader):
                self.target.insert_arrow(schema, table, pa.Table.from_batches([batch]),
                                         dedup_token=f"{schema}.{table}:{token}:{i}")
            self.scratch.execute(f"delete from {s(schema, table)}")


class SeparateVault(InPlace):
    """The DuckDB warehouse keeps the `pii` schema in a file of its own (CRM_PII_DUCKDB_PATH), and a
    DuckDB transaction writes one file only. The group's pii rows are staged in temp tables during
    its transaction; `publish`, the transaction's last step, commits them first, in a transaction of
    their own on a second connection; then the group's transaction commits the rest. So an event
    never references a hash the vault lacks, and a crash between the two commits leaves only pii
    rows no committed row needs: vault entries (inserted only where the hash is new: a rerun finds
    them), payloads of contents the ledger lacks, and record states newer than the ledger, each
    removed by `recover` at the next run's start. A record's new state is inserted beside its old
    one, which goes (`committed`) only once the events made from the difference are in: until then
    `recover` can fall back to it, and no change is lost.
    """

    TABLES = (PII_VAULT, PII_QUARANTINE_PAYLOADS, SOURCE_RECORDS)

    def __init__(self, wh: DuckDBWarehouse):
        self.wh = wh
        self._replaced: tuple[datetime, pa.Table] | None = None
        for table in self.TABLES:
            wh.execute(f"create temp table if not exists {self._stage(table.name)} as "
                       f"select * from {wh.table_name('pii', table.name)} limit 0")

    @staticmethod
    def _stage(table: str) -> str:
        return f"ingest_pii_{table}"

    def written(self, wh: DuckDBWarehouse, schema: str, table: str) -> str:
        return self._stage(table) if schema == PII_SCHEMA else wh.table_name(schema, table)

    def publish(self, group_at: datetime) -> None:
        con, t = self.wh.con, self.wh.table_name
        staged = {table.name: con.sql(f"select * from {self._stage(table.name)}").to_arrow_table()
                  for table in self.TABLES}
        pii = con.cursor()  # a connection of its own: the group's transaction stays open meanwhile
        try:
            pii.execute("begin transaction")
            for name, rows in staged.items():
                pii.register(f"staged_{name}", rows)
            pii.execute(f"insert into {t('pii', 'vault')} select * from staged_vault v "
                        f"where not exists (select 1 from {t('pii', 'vault')} x where x.pii_hash = v.pii_hash)")
            pii.execute(f"insert into {t('pii', 'quarantine_payloads')} select * from staged_quarantine_payloads")
            pii.execute(f"insert into {t('pii', 'source_records')} select * from staged_source_records")
            pii.execute("commit")
        except BaseException:
            pii.execute("rollback")
            raise
        finally:
            pii.close()
        for table in self.TABLES:
            con.execute(f"delete from {self._stage(table.name)}")  # part of the group's transaction
        states = staged["source_records"]
        self._replaced = (group_at, states.select(["source_system", "source_object", "source_id"])) \
            if states.num_rows else None

    def committed(self) -> None:
        """The group's events are in: the states its records replaced go."""
        if self._replaced is None:
            return
        group_at, keys = self._replaced
        self._replaced = None
        t = self.wh.table_name
        self.wh.con.register("ingest_replaced_keys", keys)
        try:
            self.wh.execute(f"delete from {t('pii', 'source_records')} s where s.updated_at < ? and exists ("
                            "select 1 from ingest_replaced_keys k where k.source_system = s.source_system "
                            "and k.source_object = s.source_object and k.source_id = s.source_id)", [group_at])
        finally:
            self.wh.con.unregister("ingest_replaced_keys")


def recover(target: Warehouse) -> int:
    """Removes the rows of a group whose ledger rows never arrived (its run died while publishing):
    events, their residency signals and quarantine rows newer than the newest ledger row, payloads of
    contents the ledger does not hold, record states newer than the newest ledger row (the state before stays beside
    them until the group is in: a ReplacingMergeTree; `SeparateVault`). With a separate DuckDB vault
    file (`SeparateVault`) also vault entries newer than the newest ledger row (no committed row can
    reference them) and states a committed group replaced but did not remove. Call it holding the
    ingest lock. Returns the events removed."""
    t = target.table_name
    last = target.fetchall(f"select max(started_at) from {t('core', 'ingest_ledger')}")[0][0] or MIRRORED
    orphans = target.fetchall(f"select count(*) from {t('core', 'events')} where ingested_at > ?", [last])[0][0]
    stray = target.fetchall(f"select count(*) from {t('core', 'quarantine')} where quarantined_at > ?", [last])[0][0]
    if orphans:
        target.execute(f"delete from {t('core', 'events')} where ingested_at > ?", [last])
    signals = t("core", "residency_signals")
    if target.table_exists("core", "residency_signals") and \
            target.fetchall(f"select count(*) from {signals} where ingested_at > ?", [last])[0][0]:
        target.execute(f"delete from {signals} where ingested_at > ?", [last])
    if stray:
        target.execute(f"delete from {t('core', 'quarantine')} where quarantined_at > ?", [last])
    unowned = f"where sha256 not in (select sha256 from {t('core', 'ingest_ledger')})"
    if target.fetchall(f"select count(*) from {t('pii', 'quarantine_payloads')} {unowned}")[0][0]:
        target.execute(f"delete from {t('pii', 'quarantine_payloads')} {unowned}")
    states = t("pii", "source_records")
    if target.fetchall(f"select count(*) from {states} where updated_at > ?", [last])[0][0]:
        target.execute(f"delete from {states} where updated_at > ?", [last])
    if target.pii_separate:
        vault = t("pii", "vault")
        target.execute(f"delete from {vault} where first_seen_at > ?", [last])
        target.execute(f"delete from {states} s where exists (select 1 from {states} n where n.source_system = "
                       "s.source_system and n.source_object = s.source_object and n.source_id = s.source_id "
                       "and n.updated_at > s.updated_at)")
    return orphans
