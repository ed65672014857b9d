"""Attribution and scoring have real signal: what a consumer of the events sees follows the truth."""
from __future__ import annotations

import collections
import datetime as dt

import pytest


def _utc(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).astimezone(dt.UTC)


def _observed(sample):
    """Per person, from the events only: channels touched (before the win) and whether they won."""
    person_of = {r["source_id"]: r["person_id"] for r in sample.identity if r["source_system"] == "events"}
    lead_of_user = {}
    for _, _, ev in sample.valid:
        if ev["event_type"] == "lead_created" and ev.get("user_id"):
            lead_of_user[ev["user_id"]] = ev["lead_id"]
    won_at = {}
    for _, _, ev in sample.valid:
        if ev["event_type"] == "opportunity_closed" and ev["attributes"]["outcome"] == "won":
            won_at[person_of[ev["lead_id"]]] = _utc(ev["occurred_at"])
    touched = collections.defaultdict(set)
    for _, _, ev in sample.valid:
        if ev["event_type"] != "campaign_touch":
            continue
        lead = ev.get("lead_id") or lead_of_user.get(ev.get("user_id"))
        if lead is None:
            continue
        person = person_of[lead]
        if person in won_at and _utc(ev["occurred_at"]) > won_at[person]:
            continue
        props = ev.get("attributes") or ev.get("touch") or ev
        touched[person].add(props["channel"])
    return touched, won_at


def _spearman(a: list[float], b: list[float]) -> float:
    rank = lambda xs: {i: r for r, i in enumerate(sorted(range(len(xs)), key=xs.__getitem__))}
    ra, rb, n = rank(a), rank(b), len(a)
    return 1 - 6 * sum((ra[i] - rb[i]) ** 2 for i in range(n)) / (n * (n * n - 1))


def test_conversion_rates_by_channel_follow_the_planted_effects(sample):
    """Lift = win rate of people touched by the channel / win rate of people not touched by it."""
    touched, won = _observed(sample)
    persons = [r["person_id"] for r in sample.leads]
    effects = {c: float(r["log_odds_effect"]) for c, r in sample.effects.items()}
    order = sorted(effects, key=effects.get)

    def lift(channel):
        yes = [p for p in persons if channel in touched.get(p, ())]
        no = [p for p in persons if channel not in touched.get(p, ())]
        return (sum(p in won for p in yes) / len(yes)) / (sum(p in won for p in no) / len(no))

    lifts = {c: lift(c) for c in order}
    strong, weak = order[-3:], order[:3]
    assert set(strong) == {"events", "referral", "email"}
    assert set(weak) == {"display", "paid_social", "organic_social"}
    mean = lambda cs: sum(lifts[c] for c in cs) / len(cs)
    assert mean(strong) > 1.3 * mean(weak), lifts
    assert lifts["events"] > 1.8 and all(lifts[c] < 1.5 for c in weak), lifts
    assert _spearman([effects[c] for c in order], [lifts[c] for c in order]) > 0.4, lifts


def test_truth_channel_effects_match_the_exposures(sample):
    rows = sample.effects
    assert len(rows) >= 6
    for c, r in rows.items():
        if int(r["persons_exposed"]):
            assert float(r["conversion_rate_exposed"]) == pytest.approx(
                int(r["persons_exposed_converted"]) / int(r["persons_exposed"]), abs=1e-4)
    incremental = {c: float(r["expected_incremental_conversions"]) for c, r in rows.items()}
    assert incremental["events"] > 10 * abs(incremental["paid_social"]) and incremental["display"] <= 0
    exposed = collections.Counter()
    for r in sample.leads:
        for c in filter(None, r["channels_exposed"].split(";")):
            exposed[c] += 1
    assert {c: int(r["persons_exposed"]) for c, r in rows.items()} == {c: exposed[c] for c in rows}


def test_engagement_before_conversion_predicts_it(sample):
    """Meetings held and replies are visible in the events and separate winners from the rest."""
    person_of = {r["source_id"]: r["person_id"] for r in sample.identity if r["source_system"] == "events"}
    held = collections.Counter()
    for _, _, ev in sample.valid:
        if ev["event_type"] == "activity_logged":
            a = ev["attributes"]
            if a["activity_type"] == "meeting" and a.get("outcome") == "held":
                held[person_of[ev["lead_id"]]] += 1
    conv = {r["person_id"]: r["converted"] == "1" for r in sample.leads}
    with_meeting = [p for p in conv if held[p]]
    without = [p for p in conv if not held[p]]
    rate = lambda ps: sum(conv[p] for p in ps) / len(ps)
    assert rate(with_meeting) > 2 * rate(without)
    seniority = collections.defaultdict(list)
    for r in sample.leads:
        seniority[int(r["seniority"])].append(float(r["true_conversion_probability"]))
    mean = lambda xs: sum(xs) / len(xs)
    assert mean(seniority[4]) > mean(seniority[0])


def test_sample_size_fits_the_repository(sample):
    assert sample.summary["bytes"] <= 4.2 * 1024 * 1024
    assert sample.summary["persons"] == 1000
    assert set(sample.summary["files"]) == {"events", "cdc_leads", "cdc_opportunities", "hubspot_contacts",
                                            "salesforce_leads", "salesforce_opportunities", "campaign_spend"}
