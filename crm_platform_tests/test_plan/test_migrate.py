"""Upgrading older events to the current version with the plan's migrations."""
from __future__ import annotations

import copy

import pytest

from crm_platform.plan.examples import example_event
from crm_platform.plan.migrate import upgrade
from crm_platform.plan.validate import validate_event

ENVELOPE = {"event_id": "evt_1", "occurred_at": "2026-02-03T10:00:00+01:00", "lead_id": "lead_1"}


def test_activity_logged_2026_01_1_to_2026_06_1(plan):
    old = {"event_type": "activity_logged", "schema_version": "2026-01-1", "source": "dialer", **ENVELOPE,
           "attributes": {"activity_type": "call", "direction": "outbound", "duration_sec": 95, "rep_id": "rep_7",
                          "dialer_session": "s-1"}}
    expected = {"event_type": "activity_logged", "schema_version": "2026-06-1", "source": "dialer", **ENVELOPE,
                "attributes": {"activity_type": "call", "direction": "outbound", "dialer_session": "s-1",
                               "duration_seconds": 95, "owner_id": "rep_7", "outcome": "completed"}}
    before = copy.deepcopy(old)
    assert upgrade(old, plan) == expected
    assert old == before  # the input is left alone
    result = validate_event(old, plan)
    assert result.ok and result.event == expected and result.original_schema_version == "2026-01-1"
    # The upgraded event is valid in the current version.
    assert validate_event(expected, plan).ok


def test_activity_logged_default_fills_only_absent_or_null(plan):
    base = {"event_type": "activity_logged", "schema_version": "2026-01-1", "source": "crm", **ENVELOPE}
    kept = upgrade({**base, "attributes": {"activity_type": "demo", "direction": "inbound", "outcome": "held"}}, plan)
    assert kept["attributes"] == {"activity_type": "demo", "direction": "inbound", "outcome": "held"}
    filled = upgrade({**base, "attributes": {"activity_type": "demo", "direction": "inbound", "outcome": None}}, plan)
    assert filled["attributes"]["outcome"] == "completed"


def test_campaign_touch_2026_01_1_to_2026_04_1(plan):
    old = {"event_type": "campaign_touch", "schema_version": "2026-01-1", "source": "ads", "user_id": "anon_1",
           "event_id": "evt_2", "occurred_at": "2026-01-20T08:30:00Z",
           "touch": {"channel": "paid_social", "position": "first", "utm_source": "linkedin"},
           "attributes": {"campaign_id": "cmp_9"}}
    expected = {"event_type": "campaign_touch", "schema_version": "2026-04-1", "source": "ads", "user_id": "anon_1",
                "event_id": "evt_2", "occurred_at": "2026-01-20T08:30:00Z",
                "attributes": {"channel": "paid_social", "utm_source": "linkedin", "campaign_id": "cmp_9",
                               "touch_type": "click"}}
    result = validate_event(old, plan)
    assert result.ok, result.reasons
    assert result.event == expected
    assert (result.event_type, result.original_schema_version) == ("campaign_touch", "2026-01-1")


@pytest.mark.parametrize("event_type", ["activity_logged", "campaign_touch"])
def test_every_example_of_an_old_version_upgrades_to_a_valid_current_event(plan, event_type):
    old = example_event(plan, event_type, "2026-01-1")
    upgraded = upgrade(old, plan)
    assert upgraded["schema_version"] == plan.current_version(event_type)
    assert validate_event(upgraded, plan).ok


def test_current_version_is_unchanged_and_unknown_ones_raise(plan):
    event = example_event(plan, "lead_created")
    assert upgrade(event, plan) == event
    with pytest.raises(KeyError):
        upgrade({**event, "schema_version": "2031-01-1"}, plan)
    with pytest.raises(KeyError):
        upgrade({**event, "event_type": "page_view"}, plan)


def test_mutable_defaults_are_not_shared(plan_copy):
    from crm_platform.plan.loader import load_plan
    from crm_platform_tests.test_plan.conftest import edit

    path = plan_copy / "events/campaign_touch.yaml"
    edit(path, "      landing_page: {type: url}\n", "      landing_page: {type: url}\n      tags: {type: json}\n", 2)
    edit(path, "      - drop: position\n", "      - drop: position\n      - default: {property: tags, value: [a]}\n")
    local = load_plan(plan_copy)
    old = example_event(local, "campaign_touch", "2026-01-1")
    del old["attributes"]["tags"]
    first, second = upgrade(old, local), upgrade(old, local)
    first["attributes"]["tags"].append("b")
    assert second["attributes"]["tags"] == ["a"]
