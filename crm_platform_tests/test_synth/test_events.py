"""The event stream looks like real producers: valid against the plan, several versions and shapes,
offsets, late and unsorted files, anonymous touches that become known."""
from __future__ import annotations

import collections
import datetime as dt
import re

from crm_platform.plan import load_plan


def _utc(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).astimezone(dt.UTC)


def test_every_line_not_listed_as_invalid_is_a_valid_event(sample):
    plan = load_plan()
    assert len(sample.valid) > 20000
    for rel, n, ev in sample.valid:
        assert isinstance(ev, dict)
        assert ev["schema_version"] in plan.event_types[ev["event_type"]].version_names
        assert sample.reasons[(rel, n)] == [], (rel, n)
        assert ev["producer_id"] == rel.split("/")[1]


def test_volume_per_lead(sample):
    per_lead = len(sample.lines) / sample.summary["leads"]
    assert 25 <= per_lead <= 35
    assert sample.summary["events"] == len(sample.lines)


def test_producers_send_several_versions_and_shapes(sample):
    seen = collections.Counter()
    for _, _, ev in sample.valid:
        t, v = ev["event_type"], ev["schema_version"]
        props = ev.get("attributes") or ev.get("touch") or ev
        if t == "campaign_touch":
            seen[(t, v)] += 1
            seen["touch_object" if "touch" in ev else "attributes" if "attributes" in ev else "top_level"] += 1
            if v == "2026-01-1" and "position" in props:
                seen["old_touch_with_position"] += 1
        if t == "activity_logged":
            seen[(t, v)] += 1
            if v == "2026-01-1" and "duration_sec" in props and "rep_id" in props:
                seen["old_activity_fields"] += 1
            if v == "2026-06-1" and "duration_seconds" in props and "owner_id" in props:
                seen["new_activity_fields"] += 1
    for key in [("campaign_touch", "2026-01-1"), ("campaign_touch", "2026-04-1"), ("activity_logged", "2026-01-1"),
                ("activity_logged", "2026-06-1"), "touch_object", "attributes", "top_level",
                "old_touch_with_position", "old_activity_fields", "new_activity_fields"]:
        assert seen[key] > 10, key
    assert seen["attributes"] > seen["top_level"] and seen["attributes"] > seen["touch_object"]


def test_sources_and_types_cover_the_funnel(sample):
    by_type = collections.Counter(ev["event_type"] for _, _, ev in sample.valid)
    for t in ("lead_created", "lead_updated", "lead_stage_changed", "activity_logged", "opportunity_created",
              "opportunity_closed", "campaign_touch", "consent_changed", "lead_merged", "manual_label"):
        assert by_type[t] > 0, t
    created = collections.Counter(ev["source"] for _, _, ev in sample.valid if ev["event_type"] == "lead_created")
    assert {"webform", "import", "api"} <= set(created)
    stages = {(ev["attributes"]["from_stage"], ev["attributes"]["to_stage"]) for _, _, ev in sample.valid
              if ev["event_type"] == "lead_stage_changed"}
    assert {("new", "contacted"), ("contacted", "engaged"), ("engaged", "qualified"), ("qualified", "opportunity"),
            ("opportunity", "customer")} <= stages
    assert any(to == "disqualified" for _, to in stages)
    outcomes = collections.Counter(ev["attributes"]["outcome"] for _, _, ev in sample.valid
                                   if ev["event_type"] == "opportunity_closed")
    assert outcomes["won"] > 50 and outcomes["lost"] > 20


def test_timestamps_carry_several_offsets(sample):
    offsets = collections.Counter()
    for _, _, ev in sample.valid:
        m = re.search(r"(Z|[+-]\d\d:\d\d)$", ev["occurred_at"])
        offsets[m.group(1)] += 1
    for off in ("Z", "-05:00", "-04:00", "-08:00", "-07:00", "+01:00", "+02:00", "+05:30"):
        assert offsets[off] > 0, off


def test_some_events_land_late_and_lines_are_not_sorted(sample):
    late = 0
    unsorted_files = set()
    last: dict[str, dt.datetime] = {}
    for rel, _, ev in sample.valid:
        when = _utc(ev["occurred_at"])
        year, week, _ = when.isocalendar()
        if f"{year:04d}-W{week:02d}" < rel.split("/")[2][:8]:
            late += 1
        if rel in last and when < last[rel]:
            unsorted_files.add(rel)
        last[rel] = when
    assert 0.01 <= late / len(sample.valid) <= 0.04
    assert len(unsorted_files) > 50
    start, end = _utc(sample.manifest["period"]["start"]), _utc(sample.manifest["period"]["end"])
    assert all(start <= _utc(ev["occurred_at"]) < end for _, _, ev in sample.valid)


def test_anonymous_touches_become_known_through_lead_created(sample):
    link = {}
    for _, _, ev in sample.valid:
        if ev["event_type"] == "lead_created" and ev.get("user_id"):
            link[ev["user_id"]] = (ev["lead_id"], _utc(ev["occurred_at"]))
    assert len(link) > 300
    before = anonymous_forever = 0
    for _, _, ev in sample.valid:
        if ev["event_type"] == "campaign_touch" and ev.get("user_id") and not ev.get("lead_id"):
            if ev["user_id"] in link:
                before += _utc(ev["occurred_at"]) <= link[ev["user_id"]][1]
            else:
                anonymous_forever += 1
    assert before > 500 and anonymous_forever > 300
    later = [ev for _, _, ev in sample.valid if ev["event_type"] == "campaign_touch" and ev.get("lead_id")]
    assert len(later) > 5000


def test_at_least_six_channels_are_touched(sample):
    channels = collections.Counter()
    for _, _, ev in sample.valid:
        if ev["event_type"] == "campaign_touch":
            props = ev.get("attributes") or ev.get("touch") or ev
            channels[props["channel"]] += 1
    assert len(channels) >= 6
    assert {"paid_search", "organic_search", "paid_social", "email", "display", "referral", "events"} <= set(channels)
    # channel_effects.csv counts exactly the touches a consumer can read
    assert {c: int(r["touch_events"]) for c, r in sample.effects.items() if int(r["touch_events"])} == dict(channels)
