"""Consent gates which leads attribution, features and scoring see (crm_platform/governance/consent.py),
on both engines: the current state per lead and purpose (lead-level or through the browser's
user_id, latest by occurred_at then event_id, defaults without an event); a withdrawal of analytics
consent takes the lead out of attribution and of its feature and label rows, history included, and
a later grant brings back exactly the rows it had; without profiling consent a lead is neither
learnt from nor scored, and gets no score event; the configuration refuses unknown purposes and
layers."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crm_platform.attribution.config import AttributionConfig
from crm_platform.attribution.run import run_attribution
from crm_platform.features import checks as feature_checks
from crm_platform.features.config import FeatureConfig
from crm_platform.features.run import build_features
from crm_platform.governance.consent import (
    ConsentConfig,
    build_consent_state,
    excluded_leads_sql,
)
from crm_platform.plan.loader import load_plan
from crm_platform.scoring import dataset as ds
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.run import score_leads, train_model
from crm_platform_tests.test_governance.consent_world import ConsentLog, consent_rows
from crm_platform_tests.test_ingest.helpers import KEY, warehouse
from crm_platform_tests.test_scoring import synthetic

CREATED = datetime(2026, 3, 4, 12, 0)  # a Wednesday
DAY = timedelta(days=1)
ATTRIBUTION = replace(AttributionConfig.load(), bootstrap=replace(AttributionConfig.load().bootstrap, replicates=0))
FEATURES = FeatureConfig.load()
SCORING = ScoringConfig.load().with_replicates(20)
INGESTED = datetime(2026, 7, 1)


# --- configuration ---------------------------------------------------------------------------------

def test_the_packaged_configuration_gates_attribution_and_features_by_analytics_and_scoring_by_profiling():
    config = ConsentConfig.load()
    assert [p.name for p in config.gating("attribution")] == ["analytics"]
    assert [p.name for p in config.gating("features")] == ["analytics"]
    assert [p.name for p in config.gating("scoring")] == ["profiling"]
    assert config.to_dict()["marketing"] == {"default": "denied", "gates": []}
    assert all(p.granted_by_default for p in config.purposes if p.gates)  # the generated data keeps flowing


@pytest.mark.parametrize("raw, message", [
    ({"purposes": {"newsletter": {"gates": ["scoring"]}}}, "unknown purpose 'newsletter'"),
    ({"purposes": {"analytics": {"gates": ["dashboards"]}}}, "unknown layer or asset 'dashboards'"),
    ({"purposes": {"analytics": {"gates": "attribution"}}}, "gates must be a list"),
    ({"purposes": {"profiling": {"default": "maybe"}}}, "default must be granted or denied"),
    ({"purposes": {"profiling": {"scope": "all"}}}, "unknown setting purposes.profiling.scope"),
    ({"purpose": {}}, "unknown setting 'purpose'"),
])
def test_the_configuration_refuses_unknown_purposes_layers_and_settings(raw, message):
    with pytest.raises(ValueError, match=message):
        ConsentConfig.from_dict(raw)


def test_an_unknown_layer_is_refused_when_asked_for():
    with pytest.raises(ValueError, match="unknown layer"):
        ConsentConfig.load().gating("marts")


# --- the current state ----------------------------------------------------------------------------

def test_the_current_state_per_lead_and_purpose(engine):
    t = ConsentLog()
    t.created("A", CREATED, user="u1")
    t.consent("analytics", False, CREATED - DAY, user="u1")  # the cookie banner, before the lead existed
    t.created("B", CREATED)
    t.consent("profiling", False, CREATED + DAY, lead="B")
    t.consent("profiling", True, CREATED + 2 * DAY, lead="B")  # given again: the latest counts
    t.consent("analytics", True, CREATED + DAY, lead="B", event_id="evt_b1")
    t.consent("analytics", False, CREATED + DAY, lead="B", event_id="evt_b2")  # same instant: the later id
    t.created("C", CREATED)  # no consent event at all: the defaults
    t.created("D", CREATED, user="u2")
    t.created("E", CREATED, user="u2")  # u2 is a shared browser: its consent binds neither lead
    t.consent("analytics", False, CREATED + DAY, user="u2")
    with warehouse() as wh:
        t.write(wh)
        counts = build_consent_state(wh)
        state = {(r[0], r[1]): r[2:] for r in wh.fetchall(
            f"SELECT lead_id, purpose, granted, decided_by, consent_event_id FROM {wh.table_name('governance', 'consent_state')}")}
        excluded = {p: [r[0] for r in consent_rows(wh, excluded_leads_sql(p))] for p in ("attribution", "features", "scoring")}
        strict = ConsentConfig.from_dict({"purposes": {"analytics": {"default": "denied", "gates": ["attribution"]}}})
        strict_excluded = [r[0] for r in consent_rows(wh, excluded_leads_sql("attribution", strict))]
    assert len(state) == 5 * 4  # every canonical lead, every configured purpose
    assert state["A", "analytics"][:2] == (False, "user_id")
    assert state["B", "profiling"][:2] == (True, "lead_id")
    assert state["B", "analytics"] == (False, "lead_id", "evt_b2")
    assert state["C", "analytics"] == (True, "default", None)
    assert state["C", "profiling"] == (True, "default", None)
    assert state["C", "marketing"] == (False, "default", None)
    assert state["D", "analytics"][:2] == state["E", "analytics"][:2] == (True, "default")
    assert excluded == {"attribution": ["A", "B"], "features": ["A", "B"], "scoring": []}
    assert strict_excluded == ["A", "B", "C", "D", "E"]  # a default of denied excludes the leads without a decision
    assert counts["analytics"] == {"granted": 3, "denied": 2, "by_default": 3}


# --- attribution and features: withdrawal, then consent given again ------------------------------

def _world() -> ConsentLog:
    t = ConsentLog()
    t.consent("analytics", True, CREATED - 2 * DAY, user="u1", event_id="c_u1_banner")
    t.touch(None, "paid_search", CREATED - DAY, user="u1")  # anonymous: Q's, through u1
    for lead, user in (("P", None), ("Q", "u1"), ("R", None)):
        t.created(lead, CREATED, user=user, lead_source="Web", estimated_value=1000, stage="new")
    for week in range(12):
        at = CREATED + (7 * week + 1) * DAY
        t.activity("P", at)
        t.activity("Q", at + DAY, "meeting", "inbound")
        t.activity("R", at + 2 * DAY)
        t.touch("P", ["email", "referral"][week % 2], at, campaign="c1")
        t.touch("R", "email", at + DAY, campaign="c2")
    t.touch(None, "display", datetime(2026, 4, 20), user="u1")
    t.won("P", datetime(2026, 5, 20), amount=5000)
    t.won("Q", datetime(2026, 6, 10), amount=3000)
    t.activity("R", datetime(2026, 6, 20))  # the watermark
    return t


def _later(events: list[tuple], ingested: datetime) -> ConsentLog:
    """Consent events that arrive after the first runs (ingested later), none moving the watermark."""
    t = ConsentLog()
    for i, (purpose, granted, at, lead, user) in enumerate(events):
        t.consent(purpose, granted, at, lead=lead, user=user, event_id=f"c_{ingested:%m%d}_{i}")
    for row in t.rows:
        row["ingested_at"] = ingested
    return t


def _run(wh) -> dict:
    plan = load_plan()
    run_attribution(wh, plan, ATTRIBUTION)
    features = build_features(wh, plan, FEATURES)
    leakage = feature_checks.evaluate(wh, plan, FEATURES)
    read = lambda schema, table, order: wh.fetch_arrow(f"SELECT * FROM {wh.table_name(schema, table)} ORDER BY {order}").to_pandas()
    return {"run": features, "leakage": leakage,
            "credits": read("attribution", "credits", "model, conversion_event_id, touch_event_id"),
            "conversions": read("attribution", "conversions", "conversion_event_id"),
            "touches": read("attribution", "touches", "touch_event_id"),
            "features": read("features", "lead_features", "lead_id, as_of"),
            "labels": read("features", "lead_labels", "lead_id, as_of")}


def _without(frame: pd.DataFrame, leads: set[str]) -> pd.DataFrame:
    return frame[~frame.lead_id.isin(leads)].reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


def test_without_analytics_consent_a_lead_leaves_attribution_and_features_and_returns_when_given_again(engine):
    with warehouse() as wh:
        _world().write(wh)
        before = _run(wh)
        # P withdraws on its lead; Q's browser (u1, naming only Q) withdraws at the cookie banner.
        _later([("analytics", False, datetime(2026, 4, 1), "P", None),
                ("analytics", False, datetime(2026, 4, 2), None, "u1")], INGESTED + DAY).write(wh)
        withdrawn = _run(wh)
        # Both give it again.
        _later([("analytics", True, datetime(2026, 4, 5), "P", None),
                ("analytics", True, datetime(2026, 4, 6), None, "u1")], INGESTED + 2 * DAY).write(wh)
        again = _run(wh)

    out = {"P", "Q"}
    assert set(before["conversions"].lead_id) == out and set(before["features"].lead_id) == {"P", "Q", "R"}
    assert (before["labels"].lead_id == "P").any() and (before["touches"].lead_id == "Q").any()
    assert before["run"].leads_excluded_by_consent == 0

    # Withdrawn: no conversion, touch, credit, feature or label row of P or Q, history included.
    assert withdrawn["run"].mode == "incremental" and withdrawn["run"].leads_excluded_by_consent == 2
    assert withdrawn["conversions"].empty and withdrawn["credits"].empty
    assert set(withdrawn["touches"].lead_id) == {"R"}
    _same(withdrawn["touches"], _without(before["touches"], out))
    _same(withdrawn["features"], _without(before["features"], out))
    _same(withdrawn["labels"], _without(before["labels"], out))

    # Given again: exactly the rows they had, the snapshots before the grant computed again.
    assert again["run"].mode == "incremental" and again["run"].leads_refreshed == 2
    assert again["run"].leads_excluded_by_consent == 0
    for table in ("credits", "conversions", "touches", "features", "labels"):
        _same(again[table], before[table])
    for phase in (before, withdrawn, again):
        assert all(r.passed for r in phase["leakage"]), [r.description for r in phase["leakage"]]


# --- scoring -------------------------------------------------------------------------------------

def test_without_profiling_consent_a_lead_is_not_learnt_from_or_scored_and_returns_when_given_again(engine, data_dir: Path):
    plan, now = load_plan(), datetime(2026, 3, 20, 6, 0)
    lead = "lead_0003"
    scores = lambda wh: wh.fetch_arrow(f"SELECT * FROM {wh.table_name('ml', 'lead_scores')} ORDER BY lead_id").to_pandas()
    events_of = lambda wh: wh.fetchall(f"SELECT count(*) FROM {wh.table_name('core', 'events')} "
                                       f"WHERE event_type = 'model_score_computed' AND lead_id = '{lead}'")[0][0]
    with warehouse() as wh:
        synthetic.write(wh, *synthetic.feature_rows())
        assert train_model(wh, data_dir, SCORING).promoted
        first = score_leads(wh, data_dir, plan, KEY, SCORING, now=now)
        assert first.status == "scored" and lead in set(first.scores.lead_id)
        before = scores(wh)
        assert events_of(wh) == 1

        _later([("profiling", False, datetime(2026, 3, 1), lead, None)], INGESTED).write(wh)
        withdrawn = score_leads(wh, data_dir, plan, KEY, SCORING, now=now)
        assert withdrawn.status == "scored" and lead not in set(withdrawn.scores.lead_id)
        assert len(withdrawn.scores) == len(first.scores) - 1
        assert lead not in set(scores(wh).lead_id)  # its earlier score row left too
        assert events_of(wh) == 1  # no new score event for it (the earlier one stays: the event log is history)
        training = ds.read_training_rows(wh)
        assert lead not in set(training.column("lead_id").to_pylist()) and training.num_rows > 0

        _later([("profiling", True, datetime(2026, 3, 2), lead, None)], INGESTED + DAY).write(wh)
        assert lead in set(ds.read_training_rows(wh).column("lead_id").to_pylist())
        again = train_model(wh, data_dir, SCORING)
        assert again.status == "reused" and again.entry.model_version == first.model_version  # the same rows again
        rescored = score_leads(wh, data_dir, plan, KEY, SCORING, now=now)
        assert lead in set(rescored.scores.lead_id)
        _same(scores(wh), before)  # exactly the rows before the withdrawal
        assert events_of(wh) == 1  # the same batch again: the same event, not a second one
