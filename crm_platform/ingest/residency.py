"""The residency zone of every event the ingest writes (`core.events.data_residency`), and the
column added to an event log created before it (crm_platform/governance/residency.py has the rules).

Both validation paths give each accepted event its own zone (an explicit known tag, else its
country) or the default zone, inside their SELECTs: no per-row Python. The default zone is never
an own zone, so once a group's events are in, those with a zone are its signals: `fill_group`
records them in `core.residency_signals` (an index of the events, written with them), then gives the
events with the default zone and a lead the zone of their lead, as already known: its newest signal
(occurred_at, then event_id) among the group's and those recorded before. Only those rows are
updated; a group without any signal touches none. The index spares reading every stored event's
JSON text for the leads of a group (0.2 s against 1.8 s for the 65k leads of a night's scores at
100k leads).
"""
from __future__ import annotations

from crm_platform.governance.residency import (
    COLUMN,
    SIGNALS,
    SOURCE_LEAD,
    ResidencyConfig,
    lead_zones_sql,
    load_config,
    own_signals_sql,
)
from crm_platform.ingest.targets import InPlace, Published
from crm_platform.warehouse import DuckDBWarehouse, Warehouse
from crm_platform.warehouse.dialect import to_clickhouse
from crm_platform.warehouse.tables import RESIDENCY_SIGNALS

_LEADS = "ingest_residency_leads"
_ZONES = "ingest_residency_zones"
_STORED = "ingest_residency_stored"


def fill_group(compute: DuckDBWarehouse, target: InPlace, group_at, config: ResidencyConfig | None = None) -> int:
    """Rule 3 for the group `group_at` (its ingested_at) in `compute`: the group's signals are
    recorded, then events without an own signal take their lead's zone where one is known. Returns
    how many events took one."""
    config = config or load_config()
    ev, signals = compute.table_name("core", "events"), compute.table_name(*SIGNALS)
    p = {"group_at": group_at, "default_zone": config.default_zone}
    # The group's own signals are its zones other than the default (computed on the way in).
    compute.execute(f"insert into {signals} ({', '.join(RESIDENCY_SIGNALS.column_names)}) "
                    f"select lead_id, {COLUMN}, occurred_at, event_id, ingested_at from {ev} "
                    "where ingested_at = $group_at and data_residency <> $default_zone and lead_id is not null", p)
    compute.execute(f"create or replace temp table {_LEADS} as select distinct lead_id from {ev} "
                    "where ingested_at = $group_at and data_residency = $default_zone and lead_id is not null", p)
    try:
        if not compute.fetchall(f"select count(*) from {_LEADS}")[0][0]:
            return 0
        known = (f"select lead_id, zone, occurred_at, event_id from {signals} "
                 f"where lead_id in (select lead_id from {_LEADS})")
        if isinstance(target, Published):  # the group's here, the signals stored before there
            known += f" union all select lead_id, zone, occurred_at, event_id from {_stored_signals(compute, target)}"
        compute.execute(f"""
            create or replace temp table {_ZONES} as
            select lead_id, zone from (
                select *, row_number() over (partition by lead_id order by occurred_at desc, event_id desc) as rn
                from ({known}) as known) as newest
            where rn = 1""")
        filled = compute.fetchall(f"""
            select count(*) from {ev} e join {_ZONES} z on z.lead_id = e.lead_id
            where e.ingested_at = $group_at and e.data_residency = $default_zone""", p)[0][0]
        if filled:
            compute.execute(f"""
                update {ev} as e set data_residency = z.zone from {_ZONES} z
                where z.lead_id = e.lead_id and e.ingested_at = $group_at and e.data_residency = $default_zone""", p)
        return int(filled)
    finally:
        for table in (_LEADS, _ZONES, _STORED):
            compute.execute(f"drop table if exists {table}")


def _stored_signals(compute: DuckDBWarehouse, target: Published) -> str:
    """A temp table in `compute`: the newest signal the published-to warehouse holds of each of the
    group's leads."""
    leads = compute.fetch_arrow(f"select lead_id from {_LEADS}")
    zones = target.target.fetch_arrow(
        f"select lead_id, zone, occurred_at, event_id from {target.target.table_name(*SIGNALS)} "
        "where lead_id in (select lead_id from group_leads) "
        "qualify row_number() over (partition by lead_id order by occurred_at desc, event_id desc) = 1",
        tables={"group_leads": leads})
    compute.con.register("ingest_residency_arrow", zones)
    try:
        compute.execute(f"create or replace temp table {_STORED} as select lead_id, zone, "
                        "cast(occurred_at as timestamp) as occurred_at, event_id from ingest_residency_arrow")
    finally:
        compute.con.unregister("ingest_residency_arrow")
    return _STORED


def fill_signals(wh: Warehouse, config: ResidencyConfig | None = None) -> None:
    """Records every stored event's own signal in core.residency_signals, from the events' text (an
    event log from before the index; ClickHouse: call it holding the ingest lock)."""
    sql, params = own_signals_sql(wh, config or load_config())
    wh.execute(f"insert into {wh.table_name(*SIGNALS)} ({', '.join(RESIDENCY_SIGNALS.column_names)}) {sql}", params)


def unknown_tags(compute: DuckDBWarehouse, line_bits: int, config: ResidencyConfig | None = None) -> dict[int, int]:
    """Per file index, the accepted events of the exact path (`ingest_exact`) whose explicit tag names
    no zone: counted, not quarantined (the fast path leaves every such line to the exact path)."""
    config = config or load_config()
    tag = f"(context ->> '{COLUMN}')"
    return {int(i): int(n) for i, n in compute.fetchall(
        f"select line_no >> {line_bits}, count(*) from ingest_exact where ok and {config.unknown_tag_sql(tag)} group by all")}


def ensure_column(wh: Warehouse, config: ResidencyConfig | None = None) -> bool:
    """Adds `data_residency` to a core.events created before it (ALTER TABLE ... ADD COLUMN, last,
    where the definition has it) and fills it for the rows there by the same rules (rule 3 from all
    stored events). DuckDB: one transaction; ClickHouse: synchronous mutations (`mutations_sync = 2`),
    call it holding the ingest lock. Returns whether the column was added."""
    config = config or load_config()
    ev = wh.table_name("core", "events")
    if COLUMN in wh.fetch_arrow(f"select * from {ev} limit 0").column_names:
        return False
    own = (f"CASE WHEN {config.signal_filter_sql()} THEN coalesce({config.own_zone_sql()}, $default_zone) "
           "ELSE $default_zone END")
    zones, zone_params = lead_zones_sql(wh, config, SOURCE_LEAD)
    p = {"default_zone": config.default_zone}
    if isinstance(wh, DuckDBWarehouse):
        with wh.transaction():
            wh.execute(f'alter table {ev} add column "{COLUMN}" VARCHAR')
            wh.execute(f'update {ev} set "{COLUMN}" = {own}', p)
            wh.execute(f"""
                update {ev} as e set "{COLUMN}" = z.zone from ({zones}) as z
                where z.lead_id = e.lead_id and e."{COLUMN}" = $default_zone""", {**zone_params, **p})
        return True
    client = wh.client  # ClickHouse: DDL and mutations are its own statements
    client.command(f'alter table {ev} add column if not exists "{COLUMN}" LowCardinality(Nullable(String))')
    client.command(f'alter table {ev} update "{COLUMN}" = {_clickhouse_expression(own, p)} where 1',
                   settings={"mutations_sync": 2})
    join = wh.table_name("core", "events__residency_leads")
    client.command(f"drop table if exists {join}")
    client.command(f"create table {join} (lead_id String, zone String) engine = Join(ANY, LEFT, lead_id)")
    try:
        wh.execute(f"insert into {join} select coalesce(lead_id, ''), coalesce(zone, '') from ({zones}) as z", zone_params)
        name = join.replace('"', "")
        lookup = f"joinGet('{name}', 'zone', assumeNotNull(lead_id))"
        client.command(f"alter table {ev} update \"{COLUMN}\" = {lookup} where \"{COLUMN}\" = "
                       f"{_clickhouse_expression('$default_zone', p)} and lead_id in (select lead_id from {join})",
                       settings={"mutations_sync": 2})
    finally:
        client.command(f"drop table if exists {join}")
    return True


def _clickhouse_expression(expression: str, params: dict) -> str:
    """A DuckDB-dialect expression as ClickHouse SQL (for a mutation, which SQLGlot cannot write)."""
    sql = to_clickhouse(f"select {expression} as residency_value", params)
    assert sql.startswith("SELECT ") and sql.endswith(" AS residency_value"), sql
    return sql[len("SELECT "):-len(" AS residency_value")]


__all__ = ["ensure_column", "fill_group", "fill_signals", "unknown_tags"]
