"""The identity graph end to end on a hand-built world, on DuckDB and on ClickHouse: clusters and
canonical ids, canonical_lead_id in core.events, decisions as events, reruns, manual overrides and
identity as of a past time."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_platform.identity.history import identity_as_of
from crm_platform_tests.test_ingest.helpers import event, land, query, warehouse

from .world import EXPECTED, T1, clusters, land_world, resolve_now

pytestmark = pytest.mark.usefixtures("engine")


def test_records_from_every_source_resolve_to_the_expected_people(data_dir):
    land_world(data_dir / "landing")
    run = resolve_now(data_dir)
    assert clusters(data_dir) == EXPECTED
    rules = {(s, i): (r, sc) for s, i, r, sc in query(
        data_dir, "select source_system, source_id, match_rule, match_score from identity.lead_identity_map")}
    assert rules[("events", "lead_1")] == ("self", 1.0)
    assert rules[("events", "lead_2")][0] == "email"
    assert rules[("events", "lead_4")][0] == "phone_name"
    assert rules[("hubspot", "100")][0] == "external_id"
    assert rules[("hubspot", "102")][0] == "source_merge:hubspot"
    assert rules[("salesforce", "00QC")][0] == "source_merge:salesforce"
    assert rules[("cdc", "7")][0] == "source_merge:cdc"
    # every event of a merged record carries its cluster's canonical id
    assert query(data_dir, "select canonical_lead_id from core.events where event_id = 'a2'") == [("lead_1",)]
    assert query(data_dir, "select count(*) from core.events where lead_id = 'lead_5' and canonical_lead_id <> 'lead_5'") == [(0,)]
    assert run.canonical_changed == 7  # records that moved to another record's id
    # each automated merge is a lead_merged event from the identity source, ingested like any other
    logged = query(data_dir, "select lead_id, attributes ->> 'merged_lead_id', attributes ->> 'match_rule' "
                             "from core.events where event_type = 'lead_merged' and source = 'identity' order by 2")
    assert ("lead_1", "lead_2", "email") in logged and ("lead_3", "lead_7", "source_merge:cdc") in logged
    assert len(logged) == len(run.resolution.decisions) == 7  # one per edge: 3 + 2 + 1 + 1
    assert not any("@" in str(row) for row in query(data_dir, "select attributes from core.events "
                                                               "where source = 'identity'"))


def test_a_rerun_decides_nothing_and_changes_nothing(data_dir):
    land_world(data_dir / "landing")
    resolve_now(data_dir)
    before = query(data_dir, "select source_system, source_id, lead_id, match_rule from identity.lead_identity_map order by 1, 2")
    again = resolve_now(data_dir, T1 + timedelta(days=1))
    assert again.resolution.decisions.empty and again.decisions_file is None and again.canonical_changed == 0
    assert query(data_dir, "select source_system, source_id, lead_id, match_rule from identity.lead_identity_map "
                           "order by 1, 2") == before


def test_manual_unmerge_and_merge_override_automation_and_survive_reruns(data_dir):
    landing = data_dir / "landing"
    land_world(landing)
    resolve_now(data_dir)
    land(landing, "manual/2026-04-02.jsonl", [
        event("m1", "lead_unmerged", occurred_at="2026-04-02T09:00:00Z", lead_id="lead_1", source="manual",
              merged_lead_id="lead_2", reason="different people", decided_by="ops@example.com"),
        event("m2", "lead_merged", occurred_at="2026-04-02T09:05:00Z", lead_id="lead_5", source="manual",
              merged_lead_id="lead_6", match_rule="manual", decided_by="ops@example.com"),
    ])
    run = resolve_now(data_dir, T1 + timedelta(days=2))
    got = clusters(data_dir)
    assert got["lead_2"] == {("events", "lead_2")}
    assert ("events", "lead_2") not in got["lead_1"]
    assert got["lead_5"] == {("events", "lead_5"), ("events", "lead_6")}
    # the identity graph reverses its own merge and says why
    d = run.resolution.decisions
    reversal = d[d["event_type"] == "lead_unmerged"]
    assert reversal[["lead_id", "merged_lead_id"]].values.tolist() == [["lead_1", "lead_2"]]
    assert "declared" in reversal["reason"].iloc[0]
    assert query(data_dir, "select attributes ->> 'reverses_event_id' from core.events where event_type = 'lead_unmerged' "
                           "and source = 'identity'") == [(reversal["reverses_event_id"].iloc[0],)]
    assert query(data_dir, "select canonical_lead_id from core.events where event_id = 'a2'") == [("lead_2",)]
    for day in (3, 4):  # and nothing automated undoes the person's decision
        again = resolve_now(data_dir, T1 + timedelta(days=day), full=True)
        assert again.resolution.decisions.empty
        assert clusters(data_dir) == got


def test_identity_as_of_any_past_time_comes_from_the_decision_log(data_dir):
    landing = data_dir / "landing"
    land_world(landing)
    resolve_now(data_dir)
    land(landing, "manual/2026-04-02.jsonl", [
        event("m1", "lead_unmerged", occurred_at="2026-04-02T09:00:00Z", lead_id="lead_1", source="manual",
              merged_lead_id="lead_2", reason="different people")])
    resolve_now(data_dir, T1 + timedelta(days=2))
    with warehouse(read_only=True) as wh:
        before_any = identity_as_of(wh, T1 - timedelta(days=1))
        after_first = identity_as_of(wh, T1 + timedelta(hours=1))
        now = identity_as_of(wh, T1 + timedelta(days=3))
    assert before_any == {}
    assert after_first["lead_2"] == "lead_1" and after_first["hubspot:102"] == "hubspot:101"
    assert now.get("lead_2", "lead_2") == "lead_2" and now["salesforce:00QA"] == "lead_1"
    current = {r: c for r, c in query(data_dir, "select distinct record_lead_id, lead_id from identity.lead_identity_map")}
    assert {r: c for r, c in current.items() if c != r or r in now} == {r: now.get(r, r) for r in current
                                                                         if now.get(r, r) != r or r in now}


def test_a_placeholder_shared_by_many_records_links_none_of_them_and_warns(data_dir):
    from crm_platform.identity.checks import evaluate

    land(data_dir / "landing", "web-1/2026-W11.jsonl", [
        event(f"p{i}", "lead_created", occurred_at="2026-03-09T10:00:00Z", lead_id=f"lead_p{i}", email=f"p{i}@corp.com",
              first_name="John", last_name="Smith", phone="+1 617 555 0100", country="US") for i in range(25)])
    run = resolve_now(data_dir)
    assert run.resolution.decisions.empty
    assert run.resolution.summary["guard_too_common_values"][0]["records"] == 25
    with warehouse(read_only=True) as wh:
        results = {r.name: r for r in evaluate(wh, run.resolution.summary)}
    assert not results["cluster_size_guard"].passed and results["cluster_size_guard"].severity == "WARN"
    assert results["canonical_ids_current"].passed and results["declared_different_apart"].passed


def test_nothing_landed_resolves_to_nothing(data_dir):
    run = resolve_now(data_dir)
    assert run.resolution.identity_map.empty and run.resolution.decisions.empty and run.canonical_changed == 0
    assert query(data_dir, "select count(*) from identity.lead_identity_map") == [(0,)]


def test_canonical_ids_stay_when_unrelated_records_arrive(data_dir):
    land_world(data_dir / "landing")
    resolve_now(data_dir)
    before = dict(query(data_dir, "select record_lead_id, lead_id from identity.lead_identity_map"))
    land(data_dir / "landing", "web-1/2026-W12.jsonl", [  # earlier-created strangers, and a pair of their own
        event("n1", "lead_created", occurred_at="2026-02-01T10:00:00Z", lead_id="lead_0", email="zed@example.org",
              first_name="Zed", last_name="Zulu"),
        event("n2", "lead_created", occurred_at="2026-02-02T10:00:00Z", lead_id="lead_00", email="ZED@example.org",
              first_name="Zed", last_name="Zulu")])
    run = resolve_now(data_dir, T1 + timedelta(days=1))
    after = dict(query(data_dir, "select record_lead_id, lead_id from identity.lead_identity_map"))
    assert {r: after[r] for r in before} == before
    assert after["lead_00"] == "lead_0"
    assert run.resolution.decisions[["lead_id", "merged_lead_id"]].values.tolist() == [["lead_0", "lead_00"]]


def test_records_read_in_chunks_resolve_the_same(data_dir, monkeypatch):
    from crm_platform.identity import inputs

    monkeypatch.setattr(inputs, "EVENTS_PER_CHUNK", 3)
    land_world(data_dir / "landing")
    resolve_now(data_dir)
    assert clusters(data_dir) == EXPECTED
    with warehouse(read_only=True) as wh:
        assert len(inputs._chunks(wh)) >= 5
