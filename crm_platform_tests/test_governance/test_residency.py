"""Data residency: every event of core.events gets a zone (an explicit tag, else its country, else its
lead's, else the default), from canonical event files and from CDC and exports alike; an event log of
the previous release gets the column and its rows their zones; each table's metadata shows the zones
its rows hold. Each test runs on DuckDB and on a real ClickHouse server."""
from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from crm_platform.defs.conventions import table_metadata
from crm_platform.governance.residency import SIGNALS, ResidencyConfig, load_config, own_signals_sql, table_zones
from crm_platform.ingest import residency
from crm_platform.warehouse import DuckDBWarehouse
from crm_platform.warehouse.tables import EVENTS
from crm_platform_tests.test_ingest.helpers import event, ingest, land, query, touch, warehouse
from crm_platform_tests.test_ingest.test_sources import contact, land_cdc, land_export, lead_row, message

US = 1_000_000
T0 = 1_773_000_000  # 2026-03-08


def activity(event_id: str, lead_id: str | None, occurred_at: str = "2026-03-10T15:12:30Z", **context) -> dict:
    e = event(event_id, "activity_logged", occurred_at, lead_id, "crm", activity_type="call", direction="outbound",
              outcome="connected")
    if context:
        e["context"] = context
    return e


def lead(event_id: str, lead_id: str, country, event_type: str = "lead_created",
         occurred_at: str = "2026-03-10T15:12:30Z", context: dict | None = None) -> dict:
    e = event(event_id, event_type, occurred_at, lead_id, "crm", company="Acme", country=country)
    if context:
        e["context"] = context
    return e


def zones(data_dir: Path, where: str = "true") -> dict[str, str]:
    return dict(query(data_dir, f"select event_id, data_residency from core.events where {where} order by event_id"))


def test_an_events_zone_is_its_tag_else_its_country_else_its_leads_else_the_default(engine, data_dir):
    landing = data_dir / "landing"
    anonymous = touch("t_anon", lead_id=None) | {"user_id": "user_1"}
    land(landing, "a.jsonl", [
        activity("tag", "lead_t", country="US", data_residency=" EU "),  # an explicit tag wins, any case, trimmed
        activity("tag_mars", "lead_m", country="US", data_residency="mars"),  # unknown: counted, falls through
        activity("tag_default", "lead_none", data_residency="unknown"),  # the default means no signal
        lead("code", "lead_de", "de"),
        lead("name", "lead_uk", " united KINGDOM "),
        lead("canada", "lead_ca", "Canada"),
        lead("alpha3", "lead_au", "AUS"),
        lead("other", "lead_br", "Brazil"),
        lead("atlantis", "lead_x", "Atlantis"),  # no entry names it: no signal
        lead("attr_first", "lead_af", "France", context={"country": "US"}),  # attributes.country before context.country
        touch("ctx_country", lead_id="lead_ctx") | {"context": {"country": "CA"}},  # the fast path's context
        activity("before_created", "lead_later"),  # its lead's country comes later in the same file
        lead("later_created", "lead_later", "Japan"),
        activity("no_signal", "lead_nothing"),
        anonymous,
    ])
    (outcome,) = ingest(data_dir)
    assert (outcome.events_accepted, outcome.records_quarantined, outcome.residency_unknown_tags) == (15, 0, 1)
    assert zones(data_dir) == {
        "tag": "eu", "tag_mars": "us", "tag_default": "unknown", "code": "eu", "name": "uk", "canada": "ca",
        "alpha3": "apac", "other": "other", "atlantis": "unknown", "attr_first": "eu", "ctx_country": "ca",
        "before_created": "apac", "later_created": "apac", "no_signal": "unknown", "t_anon": "unknown",
    }


def test_the_lead_fallback_across_files_and_runs(engine, data_dir):
    landing = data_dir / "landing"
    land(landing, "1-a.jsonl", [lead("fr_created", "lead_fr", "France"),
                                lead("de_updated", "lead_late", "DE", "lead_updated", "2026-03-20T00:00:00Z"),
                                activity("jp_too_early", "lead_jp")])
    land(landing, "1-b.jsonl", [activity("fr_other_file", "lead_fr")])  # another file of the same group
    ingest(data_dir)
    land(landing, "2-a.jsonl", [
        activity("fr_next_run", "lead_fr", "2026-03-11T00:00:00Z"),
        lead("fr_moved", "lead_fr", "USA", "lead_updated", "2026-03-12T00:00:00Z"),
        activity("fr_after_move", "lead_fr", "2026-03-13T00:00:00Z"),
        lead("jp_created", "lead_jp", "JP"),
        activity("jp_now", "lead_jp"),
        # A late update (dated before the stored one) does not move the lead: the newest event decides.
        lead("gb_late", "lead_late", "GB", "lead_updated", "2026-03-01T00:00:00Z"),
        activity("late_lead", "lead_late"),
    ])
    ingest(data_dir)
    assert zones(data_dir) == {
        "fr_created": "eu", "fr_other_file": "eu", "de_updated": "eu", "jp_too_early": "unknown",  # stored: kept
        # The group's newest signal of lead_fr is its move (dated after the stored creation).
        "fr_next_run": "us", "fr_moved": "us", "fr_after_move": "us",
        "jp_created": "apac", "jp_now": "apac", "gb_late": "uk", "late_lead": "eu",
    }
    with warehouse() as wh:  # the stored signals are read from the ingest's index, which matches the text
        assert signals(wh) == recomputed_signals(wh) and len(signals(wh)) == 5
        wh.execute(f"drop table {wh.table_name(*SIGNALS)}")  # an event log from before the index
    land(landing, "3-a.jsonl", [activity("fr_later", "lead_fr", "2026-03-14T00:00:00Z")])
    ingest(data_dir)  # builds the index from the events' text first
    assert zones(data_dir, "event_id = 'fr_later'") == {"fr_later": "us"}
    with warehouse() as wh:
        assert signals(wh) == recomputed_signals(wh) and len(signals(wh)) == 5


def signals(wh) -> list[tuple]:
    return sorted(wh.fetchall(f"select lead_id, zone, cast(occurred_at as timestamp), event_id "
                              f"from {wh.table_name(*SIGNALS)}"))


def recomputed_signals(wh) -> list[tuple]:
    """Every event's own signal, from the events' text as the index is first built."""
    sql, params = own_signals_sql(wh, load_config())
    return sorted(wh.fetchall(f"select lead_id, zone, cast(occurred_at as timestamp), event_id from ({sql}) as s",
                              params))


def test_cdc_and_exports_fill_it(engine, data_dir):
    landing = data_dir / "landing"
    created = lead_row(1)  # country PT
    moved = lead_row(1, stage="contacted", updated_at=(T0 + 60) * US)
    land_cdc(landing, "leads", "2026-03-08.jsonl.gz", [message("c", 1, created), message("u", 2, moved, created)])
    land_export(landing, "contacts-2026-03-31.csv", [contact(1), contact(2, **{"Country/Region": ""}),
                                                     contact(3, **{"Country/Region": "us"})])
    ingest(data_dir)
    emigrated = lead_row(1, stage="engaged", country="United States", updated_at=(T0 + 120) * US)
    land_cdc(landing, "leads", "2026-03-09.jsonl.gz", [message("u", 3, emigrated, moved)])
    land_export(landing, "contacts-2026-04-30.csv", [contact(1, **{"Lifecycle Stage": "Opportunity",
                                                                   "Last Modified Date": "2026-04-02 10:00"})])
    land(landing, "crm.jsonl", [activity("crm_activity", "lead_1", "2026-03-08T23:00:00Z")])  # lead_1 is the CDC row's
    ingest(data_dir)
    got = query(data_dir, "select source, lead_id, event_type, data_residency from core.events "
                          "order by source, lead_id, occurred_at, event_type")
    assert got == [
        ("cdc", "lead_1", "lead_created", "eu"),
        ("cdc", "lead_1", "lead_stage_changed", "eu"),  # the lead's country, from the same file
        ("cdc", "lead_1", "lead_stage_changed", "us"),  # its newest country, from the same message
        ("cdc", "lead_1", "lead_updated", "us"),
        # An event file's event, by the CDC lead's country as known: a run takes event files before
        # the sources, so the stored creation (the emigration comes later in the run).
        ("crm", "lead_1", "activity_logged", "eu"),
        ("hubspot", "hubspot:1", "lead_created", "eu"),  # Country/Region Germany
        ("hubspot", "hubspot:1", "lead_stage_changed", "eu"),  # a later export, from the stored creation
        ("hubspot", "hubspot:2", "lead_created", "unknown"),
        ("hubspot", "hubspot:3", "lead_created", "us"),
    ]


def _drop_the_column(wh) -> None:
    """The event log as the previous release left it: no data_residency."""
    if isinstance(wh, DuckDBWarehouse):
        wh.execute(f"alter table {wh.table_name('core', 'events')} drop column data_residency")
    else:
        wh.client.command(f"alter table {wh.table_name('core', 'events')} drop column data_residency")


def test_an_event_log_of_the_previous_release_gets_the_column_and_its_rows_their_zones(engine, data_dir):
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [
        activity("tag", "lead_t", country="US", data_residency="uk"), activity("mars", "lead_m", country="US",
                                                                              data_residency="mars"),
        lead("created", "lead_1", "Netherlands"), activity("follow_up", "lead_1"), activity("nothing", "lead_2"),
        touch("anon", lead_id=None) | {"user_id": "u1"},
    ])
    ingest(data_dir)
    with warehouse() as wh:
        _drop_the_column(wh)
        assert "data_residency" not in wh.fetch_arrow(f"select * from {wh.table_name('core', 'events')} limit 0").column_names
        wh.replace_table("marts", "lead_rows", pa.table({"lead_id": ["lead_1"]}))
        # Before the ingest has migrated the table, the metadata says so rather than failing.
        assert table_zones(wh, "marts", "lead_rows") == {"basis": "none"}
        assert table_zones(wh, "core", "events") == {"basis": "none"}
    land(landing, "b.jsonl", [activity("new_follow_up", "lead_1")])
    ingest(data_dir)  # ensures its tables: adds the column and fills it
    assert zones(data_dir) == {"tag": "uk", "mars": "us", "created": "eu", "follow_up": "eu", "nothing": "unknown",
                               "anon": "unknown", "new_follow_up": "eu"}
    with warehouse() as wh:
        names = wh.fetch_arrow(f"select * from {wh.table_name('core', 'events')} limit 0").column_names
        assert list(names) == list(EVENTS.column_names)  # added last, where the definition has it
        if engine == "clickhouse":
            assert wh.fetchall("select type from system.columns where database = $db and table = 'core__events' "
                               "and name = 'data_residency'", {"db": wh.database}) == [("LowCardinality(Nullable(String))",)]
        assert residency.ensure_column(wh) is False  # a second time: nothing to do
    assert zones(data_dir)["follow_up"] == "eu"


def test_each_tables_metadata_shows_the_zones_of_its_rows(engine, data_dir):
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [
        lead("uk_created", "lead_uk", "GB", occurred_at="2026-03-01T00:00:00Z"), activity("uk_call", "lead_uk"),
        lead("ca_created", "lead_ca", "Canada", occurred_at="2026-03-05T00:00:00Z"), activity("ca_call", "lead_ca"),
        activity("nobody", "lead_none"), touch("anon", lead_id=None) | {"user_id": "u1"},
    ])
    ingest(data_dir)
    with warehouse() as wh:
        meta = table_metadata(wh, "core", "events")["data_residency"]
        assert isinstance(meta, dg.JsonMetadataValue)
        assert meta.data == {"basis": "rows", "zones": {"ca": {"rows": 2}, "uk": {"rows": 2}, "unknown": {"rows": 2}}}
        # A lead table (canonical ids, as downstream tables hold them), with a row for a lead without
        # events and one without a lead.
        wh.replace_table("marts", "lead_rows", pa.table({"lead_id": ["lead_uk", "lead_uk", "lead_ca", "lead_none",
                                                                    "lead_ghost", None], "n": [1, 2, 3, 4, 5, 6]}))
        assert table_metadata(wh, "marts", "lead_rows", preview_rows=0)["data_residency"].data == {
            "basis": "leads (lead_id)", "zones": {"unknown": {"rows": 3, "leads": 2}, "uk": {"rows": 2, "leads": 1},
                                                  "ca": {"rows": 1, "leads": 1}}}
        # The identity graph merges lead_ca into lead_uk: the canonical lead's zone is its newest
        # signal among all its records' events (lead_ca's creation is the newer); lead_ca is no
        # canonical lead any more (a table rebuilt after the merge would not name it).
        wh.update_column("core", "events", "canonical_lead_id", "lead_id",
                         pa.table({"key": ["lead_ca"], "value": ["lead_uk"]}))
        assert table_metadata(wh, "marts", "lead_rows")["data_residency"].data["zones"] == {
            "unknown": {"rows": 4, "leads": 3}, "ca": {"rows": 2, "leads": 1}}
        # A table with canonical_lead_id prefers it (core.events aside: it has its own column).
        wh.replace_table("marts", "both_ids", pa.table({"lead_id": ["lead_ca"], "canonical_lead_id": ["lead_uk"]}))
        assert table_zones(wh, "marts", "both_ids") == {"basis": "leads (canonical_lead_id)",
                                                        "zones": {"ca": {"rows": 1, "leads": 1}}}
        # An aggregate with neither: the zones of core.events as a whole.
        wh.replace_table("marts", "by_channel", pa.table({"channel": ["email"], "conversions": [3]}))
        assert table_metadata(wh, "marts", "by_channel")["data_residency"].data == {
            "basis": "core.events", "zones": {"ca": {"rows": 2}, "uk": {"rows": 2}, "unknown": {"rows": 2}}}


def test_the_leads_zones_are_built_once_and_again_only_when_events_or_canonical_ids_change(engine, data_dir,
                                                                                          monkeypatch):
    from crm_platform.governance import residency as gov

    builds = []
    real = gov.canonical_zones_sql
    monkeypatch.setattr(gov, "canonical_zones_sql", lambda *a, **k: builds.append(1) or real(*a, **k))
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [lead("uk_created", "lead_uk", "GB"), lead("ca_created", "lead_ca", "Canada"),
                              activity("ca_call", "lead_ca")])
    ingest(data_dir)
    with warehouse() as wh:
        wh.replace_table("marts", "lead_rows", pa.table({"lead_id": ["lead_uk", "lead_ca", "lead_ca"]}))
        wh.replace_table("marts", "other_rows", pa.table({"lead_id": ["lead_ca"]}))
        assert table_zones(wh, "marts", "lead_rows")["zones"] == {"ca": {"rows": 2, "leads": 1},
                                                                  "uk": {"rows": 1, "leads": 1}}
        assert table_zones(wh, "marts", "other_rows")["zones"] == {"ca": {"rows": 1, "leads": 1}}
        assert len(builds) == 1  # the second table reads the kept zones
        # A merge: lead_uk's records are lead_ca's now; the newest signal of the two (same time, the
        # greater event id) is the UK's, and lead_uk is no canonical lead any more.
        wh.update_column("core", "events", "canonical_lead_id", "lead_id",
                         pa.table({"key": ["lead_uk"], "value": ["lead_ca"]}))
        assert table_zones(wh, "marts", "lead_rows")["zones"] == {"uk": {"rows": 2, "leads": 1},
                                                                  "unknown": {"rows": 1, "leads": 1}}
        assert len(builds) == 2
    land(landing, "b.jsonl", [lead("ca_moved", "lead_ca", "Canada", event_type="lead_updated",
                                   occurred_at="2026-03-11T09:00:00Z")])
    ingest(data_dir)  # a newer signal: lead_ca is in Canada again
    with warehouse() as wh:
        assert table_zones(wh, "marts", "other_rows")["zones"] == {"ca": {"rows": 1, "leads": 1}}
        assert table_zones(wh, "marts", "lead_rows")["zones"]["ca"] == {"rows": 2, "leads": 1}
    assert len(builds) == 3
    # The platform's own events (here as the scoring writes them, under landing/events/ml/) carry no
    # signal: the kept zones stand.
    land(landing, "ml/2026-03-12.jsonl", [activity("scored_ca", "lead_ca", occurred_at="2026-03-12T02:00:00Z")])
    ingest(data_dir)
    with warehouse() as wh:
        assert query(data_dir, "select source_file from core.events where event_id = 'scored_ca'") == [("events/ml/2026-03-12.jsonl",)]
        assert table_zones(wh, "marts", "lead_rows")["zones"]["ca"] == {"rows": 2, "leads": 1}
    assert len(builds) == 3


def test_the_config_is_checked_when_it_loads():
    config = load_config()
    assert config.default_zone == "unknown" and "unknown" not in config.tags
    assert set(config.zones) == {"eu", "uk", "us", "ca", "apac", "other", "unknown"}
    # Every country the generator writes, as a code or as its name, has a zone.
    from crm_platform.synth import reference as ref

    assert {c: config.zone_of_country(c) for c in ref.COUNTRIES} == {
        "US": "us", "GB": "uk", "DE": "eu", "FR": "eu", "NL": "eu", "CA": "ca", "AU": "apac", "IN": "apac"}
    assert {config.zone_of_country(n.upper()) for n in ref.COUNTRY_NAMES.values()} <= set(config.tags)
    assert config.zone_of_country("NO") == "eu"  # Norway, not YAML's false
    with pytest.raises(ValueError) as e:
        ResidencyConfig.from_dict({"zones": {"eu": "", "unknown": ""}, "default_zone": "nowhere", "colours": 1,
                                   "countries": {"eu": {"DE": ["Germany"], "Fr": []}, "mars": {"XX": []},
                                                 "unknown": {"ZZ": []}}})
    message = str(e.value)
    for problem in ("unknown setting 'colours'", "default_zone 'nowhere' is not a zone", "'Fr' is not an ISO",
                    "countries.mars: unknown zone"):
        assert problem in message, message
    with pytest.raises(ValueError, match="'germany' is in two zones|'Germany' is in two zones"):
        ResidencyConfig.from_dict({"zones": {"eu": "", "us": "", "unknown": ""}, "default_zone": "unknown",
                                   "countries": {"eu": {"DE": ["Germany"]}, "us": {"US": ["germany"]}}})
    with pytest.raises(ValueError, match="the default zone means no signal"):
        ResidencyConfig.from_dict({"zones": {"eu": "", "unknown": ""}, "default_zone": "unknown",
                                   "countries": {"unknown": {"ZZ": []}}})
    assert json.dumps(config.zone_of({"country": "Germany"}, {"data_residency": "UK"})) == '"uk"'
