"""The marketing spend export becomes `campaign_spend_reported` events through the mapping path: a
key made of two columns, no lead_id (the type is about no person), restatements as full updates,
bad rows quarantined with their reasons while the rest lands, and a ledger that balances; on DuckDB
and on ClickHouse. Also the mapping format's new fields, refused when misused."""
from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from crm_platform.plan.loader import load_plan
from crm_platform.sources.mapping import MappingError, load_mappings
from crm_platform.synth import generate_dataset

from .helpers import event, ingest, land, ledger, query

COLUMNS = ["date", "channel", "campaign_id", "campaign_name", "spend", "currency", "impressions", "clicks"]
SPEND_DIR = ("batch", "marketing", "campaign_spend")


def row(day: str, campaign: str = "cmp_a", spend: str = "100.00", **kw) -> dict:
    r = {"date": day, "channel": "paid_search", "campaign_id": campaign, "campaign_name": f"Campaign {campaign}",
         "spend": spend, "currency": "USD", "impressions": "1000", "clicks": "40"}
    r.update(kw)
    return r


def land_spend(landing: Path, month: str, rows: list[dict], raw_lines: dict[int, str] | None = None) -> Path:
    """spend-<month>.csv; `raw_lines` puts a hand-written line at a row position (1-based)."""
    path = landing.joinpath(*SPEND_DIR, f"spend-{month}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r.get(c, "") for c in COLUMNS])
    lines = buf.getvalue().splitlines()
    for n, text in (raw_lines or {}).items():
        lines.insert(n, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spend_events(data_dir: Path, where: str = "true") -> list[tuple]:
    return [(eid, occurred.isoformat(), lead, json.loads(attrs)) for eid, occurred, lead, attrs in query(
        data_dir, "select event_id, occurred_at, lead_id, attributes from core.events "
                  f"where event_type = 'campaign_spend_reported' and {where} order by event_id")]


def balanced(data_dir: Path) -> bool:
    return all(r == a + d + q for r, a, d, q, _ in ledger(data_dir).values())


# --- the generator's export --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spend")
    generate_dataset(root, leads=150, days=75, seed=8)
    return root


def truth_spend(root: Path) -> dict[str, Decimal]:
    with open(root / "truth" / "channel_effects.csv", newline="") as f:
        return {r["channel"]: Decimal(r["spend"]) for r in csv.DictReader(f) if Decimal(r["spend"])}


@pytest.mark.usefixtures("engine")
def test_the_generated_spend_export_lands_whole_and_sums_to_the_truth(generated, data_dir):
    shutil.copytree(generated.joinpath("landing", *SPEND_DIR), data_dir.joinpath("landing", *SPEND_DIR))
    outcomes = ingest(data_dir)
    manifest = json.loads((generated / "truth" / "manifest.json").read_text())
    files = {f["file"]: f["records"] for f in manifest["files"] if f["kind"] == "campaign_spend"}
    assert len(files) == 3 and len(outcomes) == 3
    # Every row is one accepted event: nothing quarantined, nothing counted as a duplicate.
    assert ledger(data_dir) == {name: (n, n, 0, 0, "complete") for name, n in files.items()}
    rows = sum(files.values())
    assert query(data_dir, "select count(*), count(distinct event_id), count(lead_id), count(user_id), "
                           "count(distinct attributes->>'campaign_id'), min(source), max(source) from core.events") == [
        (rows, rows, 0, 0, 25, "marketing", "marketing")]
    # Spend per channel to the cent: what the generator says it spent.
    got = {ch: Decimal(str(s)) for ch, s in query(
        data_dir, "select attributes->>'channel', cast(sum(cast(attributes->>'spend' as decimal(18, 2))) as varchar) "
                  "from core.events group by 1")}
    assert got == truth_spend(generated)
    # A month's file is as of the end of that month; every event a first report.
    assert query(data_dir, "select distinct source_file, occurred_at from core.events order by 1") == [
        (f"batch/marketing/campaign_spend/spend-2026-0{m}.csv", datetime(2026, m + 1, 1))
        for m in (4, 5, 6)]
    assert query(data_dir, "select count(*) from core.events where event_id not like '%:created'") == [(0,)]
    assert ingest(data_dir) == []  # landed once, read once


# --- restatements -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("engine")
def test_a_restated_day_gives_a_full_update_and_an_unchanged_reexport_nothing(data_dir):
    landing = data_dir / "landing"
    land_spend(landing, "2026-03", [row("2026-03-30"), row("2026-03-30", "cmp_b", "50.00", channel="display"),
                                    row("2026-03-31", spend="10.00")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 3, 0, 0)
    # April's file restates 30 March of cmp_a (spend and clicks), repeats cmp_b's day unchanged, adds a day.
    land_spend(landing, "2026-04", [row("2026-03-30", spend="120.50", clicks="44"),
                                    row("2026-03-30", "cmp_b", "50.00", channel="display"),
                                    row("2026-04-01", spend="7.25")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 2, 1, 0)
    (restated,) = spend_events(data_dir, "event_id like '%:updated'")
    assert restated == (
        "marketing:campaign_spend:cmp_a:2026-03-30:2026-05-01:updated", "2026-05-01T00:00:00", None,
        {"spend_date": "2026-03-30T00:00:00Z", "channel": "paid_search", "campaign_id": "cmp_a",
         "campaign_name": "Campaign cmp_a", "spend": 120.5, "currency": "USD", "impressions": 1000, "clicks": 44,
         "changed_fields": ["spend", "clicks"]})
    first = spend_events(data_dir, "event_id = 'marketing:campaign_spend:cmp_a:2026-03-30:2026-04-01:created'")
    assert first[0][3]["spend"] == 100.0 and "changed_fields" not in first[0][3]  # the first report stays
    # May's file repeats two known days as they were: read, nothing new.
    land_spend(landing, "2026-05", [row("2026-03-31", spend="10.00"), row("2026-04-01", spend="7.25")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (2, 0, 2, 0)
    assert len(spend_events(data_dir)) == 5 and balanced(data_dir)
    # The record's state is the latest report (ClickHouse may still hold older versions of a row:
    # the newest wins); a key names campaign and day, and no record has a lead.
    assert query(data_dir, "select source_id, count(lead_id), arg_max(cast(state->>'spend' as double), updated_at), "
                           "arg_max(cast(state->>'clicks' as bigint), updated_at) from pii.source_records "
                           "where source_system = 'marketing' group by source_id order by 1") == [
        ("cmp_a:2026-03-30", 0, 120.5, 44), ("cmp_a:2026-03-31", 0, 10.0, 40),
        ("cmp_a:2026-04-01", 0, 7.25, 40), ("cmp_b:2026-03-30", 0, 50.0, 40)]


# --- bad rows -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("engine")
def test_bad_rows_are_quarantined_with_reasons_and_their_neighbours_land(data_dir):
    landing = data_dir / "landing"
    land_spend(landing, "2026-03", [
        row("2026-03-01"),                                    # 1 good
        row("2026-03-01", campaign=""),                       # 2 no campaign
        row("", "cmp_b"),                                     # 3 no date
        row("", campaign=""),                                 # 4 neither
        row("2026-03-02", spend="12,50"),                     # 5 not a number
        row("2026-03-03", spend="-5"),                        # 6 negative
        row("2026-03-04", impressions="1.5"),                 # 7 no integer (not rounded to 2)
        row("2026-03-05", channel="tv"),                      # 8 not a channel
        row("2026-02-30", "cmp_c"),                           # 9 no such day
        row("2026-03-06", currency=""),                       # 10 no currency
        row("2026-03-07", "cmp_b", "3.10", impressions="", clicks=""),  # 11 good: counts are optional
    ], raw_lines={12: "2026-03-08,paid_search,cmp_d,Name,1.00,USD,10,1,surplus"})  # 12 does not split
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (12, 2, 0, 10)
    got = query(data_dir, "select source_line, reason_codes, reasons from core.quarantine order by 1")
    assert [(n, codes) for n, codes, _ in got] == [
        (2, ["missing_key"]), (3, ["missing_key"]), (4, ["missing_key"]), (5, ["wrong_type"]), (6, ["out_of_range"]),
        (7, ["wrong_type"]), (8, ["enum_violation"]), (9, ["invalid_timestamp"]), (10, ["missing_required"]),
        (12, ["malformed_row"])]
    reasons = {n: r[0] for n, _, r in got}
    assert reasons[2] == "missing_key: the row has no campaign_id"
    assert reasons[3] == "missing_key: the row has no date"
    assert reasons[4] == "missing_key: the row has no campaign_id, date"
    assert reasons[5] == "wrong_type: attributes.spend must be a number, got string"
    assert reasons[6] == "out_of_range: attributes.spend -5.0 is below the minimum 0"
    assert reasons[7] == "wrong_type: attributes.impressions must be an integer, got string"
    assert reasons[10] == "missing_required: attributes.currency is required"
    assert [(line, attrs["campaign_id"], attrs["spend"], "impressions" in attrs) for line, attrs in (
        (n, json.loads(a)) for n, a in query(data_dir, "select source_line, attributes from core.events order by 1"))] == [
        (1, "cmp_a", 100.0, True), (11, "cmp_b", 3.1, False)]
    assert balanced(data_dir)
    # The export corrected next month: the rows that failed the plan arrive whole (the record is known,
    # so as a full update); a row that had no key is simply new.
    land_spend(landing, "2026-04", [row("2026-03-02", spend="12.50"), row("2026-03-01", "cmp_z")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (2, 2, 0, 0)
    fixed = spend_events(data_dir, "source_file like '%2026-04%'")
    assert [(eid.rsplit(":", 1)[1], a["campaign_id"], a["spend"], a["currency"]) for eid, _, _, a in fixed] == [
        ("updated", "cmp_a", 12.5, "USD"), ("created", "cmp_z", 100.0, "USD")]


# --- identity none through the one validation path ------------------------------------------------------


@pytest.mark.usefixtures("engine")
def test_a_spend_event_file_needs_no_lead_and_keeps_one_given(data_dir):
    def spend(event_id: str, **kw) -> dict:
        e = event(event_id, "campaign_spend_reported", occurred_at="2026-04-01T00:00:00Z", lead_id=None,
                  source="marketing", spend_date="2026-03-31T00:00:00Z", channel="email", campaign_id="cmp_em",
                  spend=12.0, currency="EUR")
        e.update(kw)
        return e

    land(data_dir / "landing", "marketing/spend.jsonl", [
        spend("s1"), spend("s2", lead_id="lead_9", user_id="u_9"), spend("s3", lead_id=None, user_id=None),
        spend("s4", lead_id=""), spend("s5", source="webform"), spend("s6", attributes={"channel": "email"})])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (6, 3, 3)
    assert query(data_dir, "select event_id, lead_id, user_id from core.events order by 1") == [
        ("s1", None, None), ("s2", "lead_9", "u_9"), ("s3", None, None)]
    assert query(data_dir, "select source_line, reason_codes from core.quarantine order by 1") == [
        (4, ["empty_value"]), (5, ["source_not_allowed"]),
        (6, ["missing_required", "missing_required", "missing_required", "missing_required"])]


# --- the mapping format ---------------------------------------------------------------------------------


def test_the_spend_mapping_loads_with_a_key_template_and_no_lead_id():
    (m,) = [m for m in load_mappings(load_plan()) if m.name == "marketing.campaign_spend"]
    assert (m.key, m.key_is_template, m.key_columns, m.lead_id, m.updates) == (
        "{campaign_id}:{date}", True, ("campaign_id", "date"), None, "full")
    assert m.template_columns() == ()


SPEND_MAPPING = """source_system: marketing
object: campaign_spend
format: csv
landing: batch/marketing/campaign_spend
key: "{campaign_id}:{date}"
events: {created: campaign_spend_reported}
columns:
  date: {property: spend_date, type: timestamp, format: '%Y-%m-%d'}
  campaign_id: {property: campaign_id}
"""


@pytest.mark.parametrize("old, new, problem", [
    ('key: "{campaign_id}:{date}"', 'key: "{campaign_id}:{day}"',
     "x.yaml: column 'day' is used but not listed under columns"),
    ('key: "{campaign_id}:{date}"', "key: ''", 'x.yaml: key must be a non-empty text (a column, or a template like "{column}")'),
    ("events: {created: campaign_spend_reported}", "events: {created: lead_created}",
     "x.yaml: lead_id is required: events.created (lead_created) is about a person (identity lead in the tracking plan)"),
    ("events: {created: campaign_spend_reported}", "events: {created: lead_created}\nlead_id: 'x:{campaign_id}'",
     ("x.yaml: key: a template is for records that are not leads (the identity graph knows a lead record by its one "
      "key column)")),
    ("format: csv", "format: debezium",
     "x.yaml: key: a template is for exports (csv, parquet); a Debezium row has its key column"),
    ("format: csv", "format: csv\nlead_id: null", 'x.yaml: lead_id must be a non-empty text (a column, or a template like "{column}")'),
    ("format: csv", "format: csv\nupdates: all", "x.yaml: updates 'all' is not one of changed, full"),
])
def test_the_new_mapping_fields_are_checked_strictly(tmp_path, old, new, problem):
    load_mappings(load_plan(), _mapping_dir(tmp_path / "ok", SPEND_MAPPING))  # the base is sound
    assert SPEND_MAPPING.count(old) == 1
    with pytest.raises(MappingError) as e:
        load_mappings(load_plan(), _mapping_dir(tmp_path / "bad", SPEND_MAPPING.replace(old, new)))
    assert problem in str(e.value).splitlines()


def _mapping_dir(d: Path, text: str) -> Path:
    d.mkdir(parents=True)
    (d / "x.yaml").write_text(text, encoding="utf-8")
    return d
