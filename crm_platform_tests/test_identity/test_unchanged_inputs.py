"""A run whose inputs did not change keeps the last graph (input_marks.py), on both engines: touches
and activities of known leads only fill canonical ids; a new lead id, a lead update, a manual
decision, a source export, a deletion, another configuration or `full` resolve again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_platform.identity.config import IdentityConfig
from crm_platform_tests.test_ingest.helpers import event, land, query, warehouse
from crm_platform_tests.test_ingest.test_sources import contact, land_export

from .world import EXPECTED, T1, clusters, land_world, lead, resolve_now

pytestmark = pytest.mark.usefixtures("engine")
MAP = "select source_system, source_id, lead_id, match_rule, match_score, resolved_at from identity.lead_identity_map order by 1, 2"


def touch(event_id: str, lead_id: str, day: int = 20, **extra) -> dict:
    return event(event_id, "campaign_touch", occurred_at=f"2026-03-{day:02d}T10:00:00Z", lead_id=lead_id,
                 source="web", channel="email", campaign_id="c1", **extra)


def test_new_touches_of_known_leads_keep_the_graph_and_get_their_canonical_ids(data_dir):
    landing = data_dir / "landing"
    land_world(landing)
    resolve_now(data_dir)
    before = query(data_dir, MAP)
    land(landing, "web-1/2026-W12.jsonl", [touch("t1", "lead_2"), touch("t2", "lead_4")])
    night = resolve_now(data_dir, T1 + timedelta(days=1))
    assert night.resolution.mode == "unchanged" and night.resolution.decisions.empty and night.decisions_file is None
    assert query(data_dir, MAP) == before  # resolved_at included: nothing was resolved again
    assert query(data_dir, "select event_id, canonical_lead_id from core.events where event_id in ('t1', 't2') "
                           "order by 1") == [("t1", "lead_1"), ("t2", "lead_3")]
    runs = query(data_dir, "select mode, decisions from identity.runs order by resolved_at")
    assert runs[-1] == ("unchanged", 0) and len(runs) == 2
    assert night.resolution.summary["canonical_leads"] == len(EXPECTED)


@pytest.mark.parametrize("change", ["new_lead_id", "lead_update", "manual_unmerge", "export", "erasure", "config", "full"])
def test_a_change_to_what_identity_reads_resolves_again(data_dir, change):
    landing = data_dir / "landing"
    land_world(landing)
    resolve_now(data_dir)
    config, full = None, change == "full"
    if change == "new_lead_id":  # a touch is the first word of a new lead
        land(landing, "web-1/2026-W12.jsonl", [touch("t1", "lead_9")])
    elif change == "lead_update":
        land(landing, "web-1/2026-W12.jsonl", [event("u1", "lead_updated", occurred_at="2026-03-20T10:00:00Z",
                                                     lead_id="lead_6", phone="+1 617 432 4954", last_name="Smith",
                                                     first_name="Tom", changed_fields=["phone"])])
    elif change == "manual_unmerge":
        land(landing, "manual/2026-04-02.jsonl", [event(
            "m1", "lead_unmerged", occurred_at="2026-04-02T09:00:00Z", lead_id="lead_1", source="manual",
            merged_lead_id="lead_2", reason="different people", decided_by="ops@example.com")])
    elif change == "export":
        land_export(landing, "contacts-2026-03-11.csv", [
            contact(103, **{"First Name": "Ada", "Last Name": "Byron", "Email": "ada@example.org",
                            "Create Date": "2026-03-11 08:00"})])
    elif change == "erasure":
        with warehouse() as wh:
            wh.delete_rows("core", "events", "lead_id = 'lead_5'")
    elif change == "config":
        config = IdentityConfig.from_dict({"probabilistic": {"enabled": False}, "guards": {"max_cluster_size": 3}})
    run = resolve_now(data_dir, T1 + timedelta(days=1), **({"config": config} if config else {}), full=full)
    assert run.resolution.mode != "unchanged"
    found = clusters(data_dir)
    if change == "new_lead_id":
        assert found["lead_9"] == {("events", "lead_9")}
    elif change == "manual_unmerge":
        assert ("events", "lead_2") not in found["lead_1"]
    elif change == "export":
        assert found["hubspot:103"] == {("hubspot", "103")}
    elif change == "erasure":
        assert "lead_5" not in found
    again = resolve_now(data_dir, T1 + timedelta(days=2), **({"config": config} if config else {}))
    assert again.resolution.mode == "unchanged"  # and then nothing changed any more


def test_an_old_lead_created_again_under_a_known_id_is_a_change(data_dir):
    """A lead event of a known record (a re-sent lead_created) changes its normal form's inputs."""
    landing = data_dir / "landing"
    land_world(landing)
    resolve_now(data_dir)
    land(landing, "web-1/2026-W12.jsonl", [lead("e1b", "lead_5", 20, email="ann.lee@example.org", first_name="Ann",
                                                last_name="Lee", country="US")])
    assert resolve_now(data_dir, T1 + timedelta(days=1)).resolution.mode != "unchanged"
