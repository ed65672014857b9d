"""`current_spend_sql`: the latest reported spend per campaign and day, from the event log, with the
same rows and types on DuckDB and ClickHouse."""
from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from crm_platform.attribution.spend import CURRENT_SPEND_COLUMNS, current_spend_sql
from crm_platform.synth import generate_dataset
from crm_platform_tests.test_identity.world import (
    EXPECTED,
    clusters,
    land_world,
    resolve_now,
)
from crm_platform_tests.test_ingest.helpers import event, ingest, land, query, warehouse
from crm_platform_tests.test_ingest.test_campaign_spend import (
    SPEND_DIR,
    land_spend,
    row,
)

SCHEMA = pa.schema([("spend_date", pa.date32()), ("channel", pa.string()), ("campaign_id", pa.string()),
                    ("campaign_name", pa.string()), ("spend", pa.float64()), ("currency", pa.string()),
                    ("impressions", pa.int64()), ("clicks", pa.int64())])


def current_spend() -> pa.Table:
    """The SQL's result as plain Arrow types (ClickHouse's strings may come dictionary-encoded or large)."""
    with warehouse(read_only=True) as wh:
        table = wh.fetch_arrow(current_spend_sql(wh))
    assert tuple(table.column_names) == CURRENT_SPEND_COLUMNS
    return table.cast(SCHEMA)


def native_types(engine: str) -> list[str]:
    """Each column's type as the engine itself names it, on the first row."""
    with warehouse(read_only=True) as wh:
        fn = "toTypeName" if engine == "clickhouse" else "typeof"
        cols = ", ".join(f"{fn}({c})" for c in CURRENT_SPEND_COLUMNS)
        return list(wh.fetchall(f"select {cols} from ({current_spend_sql(wh)}) as s limit 1")[0])


def spend_event(event_id: str, occurred_at: str, day: str, spend: float, **kw) -> dict:
    return event(event_id, "campaign_spend_reported", occurred_at=occurred_at, lead_id=kw.pop("lead_id", None),
                 source="marketing", spend_date=f"{day}T00:00:00Z", channel="email", campaign_id="cmp_em",
                 campaign_name="Newsletter", spend=spend, currency="EUR", **kw)


@pytest.mark.usefixtures("engine")
def test_the_latest_report_of_each_campaign_and_day_wins(data_dir, engine):
    landing = data_dir / "landing"
    land_spend(landing, "2026-03", [row("2026-03-30"), row("2026-03-31", spend="10.00"),
                                    row("2026-03-30", "cmp_b", "50.00", channel="display", impressions="", clicks="")])
    land_spend(landing, "2026-04", [row("2026-03-30", spend="120.50", clicks="44"),   # restated
                                    row("2026-04-01", spend="7.25")])
    # A producer posting spend as events, restating a day twice (the later report wins whatever the
    # order it arrives in), with a lead_id on one (it changes nothing here) and an integral float.
    land(landing, "marketing/esp.jsonl", [
        spend_event("esp-2", "2026-04-03T08:00:00Z", "2026-04-01", 2.5, impressions=2000.0, clicks=1E1),
        spend_event("esp-1", "2026-04-02T08:00:00Z", "2026-04-01", 2.0, lead_id="lead_7"),
    ])
    assert sum(o.records_quarantined for o in ingest(data_dir)) == 0
    table = current_spend()
    assert table.to_pylist() == [
        {"spend_date": date(2026, 3, 30), "channel": "paid_search", "campaign_id": "cmp_a", "campaign_name": "Campaign cmp_a",
         "spend": 120.5, "currency": "USD", "impressions": 1000, "clicks": 44},
        {"spend_date": date(2026, 3, 30), "channel": "display", "campaign_id": "cmp_b", "campaign_name": "Campaign cmp_b",
         "spend": 50.0, "currency": "USD", "impressions": None, "clicks": None},
        {"spend_date": date(2026, 3, 31), "channel": "paid_search", "campaign_id": "cmp_a", "campaign_name": "Campaign cmp_a",
         "spend": 10.0, "currency": "USD", "impressions": 1000, "clicks": 40},
        {"spend_date": date(2026, 4, 1), "channel": "paid_search", "campaign_id": "cmp_a", "campaign_name": "Campaign cmp_a",
         "spend": 7.25, "currency": "USD", "impressions": 1000, "clicks": 40},
        {"spend_date": date(2026, 4, 1), "channel": "email", "campaign_id": "cmp_em", "campaign_name": "Newsletter",
         "spend": 2.5, "currency": "EUR", "impressions": 2000, "clicks": 10},
    ]
    expected = {"duckdb": ["DATE", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "VARCHAR", "BIGINT", "BIGINT"],
                "clickhouse": ["Nullable(Date)", "Nullable(String)", "Nullable(String)", "Nullable(String)",
                               "Nullable(Float64)", "Nullable(String)", "Nullable(Int64)", "Nullable(Int64)"]}
    assert native_types(engine) == expected[engine]


@pytest.mark.usefixtures("engine")
def test_spend_events_make_no_lead_records(data_dir):
    """Identity reads lead records by event type and lead mapping: spend, from an export or an event
    file, even one with a lead_id, adds no record and no cluster."""
    landing = data_dir / "landing"
    land_world(landing)
    land_spend(landing, "2026-03", [row("2026-03-02"), row("2026-03-03", "cmp_b")])
    land(landing, "marketing/esp.jsonl", [spend_event("esp-1", "2026-03-04T08:00:00Z", "2026-03-03", 2.0,
                                                      lead_id="lead_spend")])
    resolve_now(data_dir)
    assert query(data_dir, "select count(*) from core.events where event_type = 'campaign_spend_reported'") == [(3,)]
    assert clusters(data_dir) == EXPECTED
    assert query(data_dir, "select count(*) from identity.lead_identity_map where source_system not in "
                           "('events', 'hubspot', 'salesforce', 'cdc') or source_id like 'cmp_%' "
                           "or source_id = 'lead_spend'") == [(0,)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spend_parity")
    generate_dataset(root, leads=150, days=75, seed=21)
    return root


def test_both_engines_give_the_same_current_spend_and_it_sums_to_the_truth(generated, data_dir, clickhouse, monkeypatch):
    shutil.copytree(generated.joinpath("landing", *SPEND_DIR), data_dir.joinpath("landing", *SPEND_DIR))
    ingest(data_dir)
    on_duckdb = current_spend()
    database = "t_parity_spend"
    for name, value in clickhouse.env(database).items():
        monkeypatch.setenv(name, value)
    try:
        ingest(data_dir)
        on_clickhouse = current_spend()
    finally:
        from crm_platform.warehouse import ClickHouseWarehouse

        with ClickHouseWarehouse(port=clickhouse.port, database=database) as wh:
            wh.client.command(f'drop database if exists "{database}"')
    with open(generated / "truth" / "manifest.json") as f:
        rows = sum(x["records"] for x in json.load(f)["files"] if x["kind"] == "campaign_spend")
    assert on_duckdb.num_rows == rows > 1000
    assert on_clickhouse.equals(on_duckdb)
    totals: dict[str, float] = {}
    for r in on_duckdb.to_pylist():
        totals[r["channel"]] = totals.get(r["channel"], 0.0) + r["spend"]
    with open(generated / "truth" / "channel_effects.csv", newline="") as f:
        truth = {r["channel"]: r["spend"] for r in csv.DictReader(f) if float(r["spend"])}
    assert {ch: f"{s:.2f}" for ch, s in totals.items()} == truth
