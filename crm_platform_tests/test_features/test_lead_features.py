"""Features and labels on hand-built timelines, worked out by hand: window edges ([as_of - N days,
as_of): the lower edge in, as_of out), recency, stage, opportunities mirrored by two systems, the
latest attributes, an anonymous touch that stops counting once its browser is shared, labels and
the leads closed before as_of; then point-in-time under late events, the leakage check, and both
engines alike."""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from crm_platform.features import checks
from crm_platform.features.config import FeatureConfig
from crm_platform.features.definitions import Feature
from crm_platform.features.run import FeatureSet, build_features
from crm_platform.plan.loader import load_plan
from crm_platform_tests.test_features.timeline import Timeline
from crm_platform_tests.test_ingest.helpers import warehouse

CREATED = datetime(2026, 3, 4, 12, 0)  # a Wednesday
M1, M2, M3 = datetime(2026, 3, 9), datetime(2026, 3, 16), datetime(2026, 3, 23)  # the Mondays after
END = datetime(2026, 7, 1)  # the watermark
DAY = timedelta(days=1)
CONFIG = FeatureConfig.load()


def build() -> Timeline:
    t = Timeline()
    t.created("P", CREATED, lead_source="Web", estimated_value=1000, stage="new", email=t.email("jane@gmail.com"))
    t.activity("P", datetime(2026, 3, 5, 9, 0))
    t.activity("P", M1, "meeting", "inbound")  # exactly at M1: not in M1's rows, in M2's 7-day window
    t.touch("P", "email", datetime(2026, 3, 6), campaign="c1")
    t.touch("P", "email", datetime(2026, 3, 7), campaign="c1")
    t.touch("P", "referral", datetime(2026, 3, 10), campaign="c2")
    t.stage("P", datetime(2026, 3, 6, 12, 0), "new", "contacted")
    t.updated("P", datetime(2026, 3, 12), estimated_value=2000)
    t.opportunity("P", datetime(2026, 3, 13), "opp_1", 5000)  # one deal, as two systems report it
    t.opportunity("P", datetime(2026, 3, 13, 1, 0), "0065X", 5200, source="salesforce")
    t.won("P", datetime(2026, 3, 20), amount=5000, opportunity="opp_1")  # closes P before M3
    t.created("Q", CREATED, user="u1", lead_source="Event", email=t.email("bob@acme-corp.com"))
    t.touch(None, "paid_search", datetime(2026, 3, 8), user="u1")  # anonymous: Q's, through u1
    t.created("R", datetime(2026, 3, 20), user="u1")  # from then on u1 is a shared browser
    t.activity("Q", M3 - 7 * DAY)  # the lower edge of M3's 7-day window: in
    t.activity("Q", M3)  # M3 itself: out
    t.created("Z", END)
    # The identity graph's decisions carry the time of its run: they do not move the watermark.
    t._add("lead_merged", datetime(2026, 12, 2, 2, 0), "Z", {"merged_lead_id": "Z2"}, "identity")
    return t


@pytest.fixture
def features(engine):
    with warehouse() as wh:
        build().write(wh)
        run = build_features(wh, load_plan(), CONFIG)
        rows = wh.fetch_arrow(f"select * from {wh.table_name('features', 'lead_features')} order by lead_id, as_of").to_pandas()
        labels = wh.fetch_arrow(f"select * from {wh.table_name('features', 'lead_labels')} order by lead_id, as_of").to_pandas()
        leakage = checks.evaluate(wh, load_plan(), CONFIG)
    return run, _by_lead(rows), _by_lead(labels), leakage


def _by_lead(frame):
    """Indexed by (lead_id, as_of), as_of naive UTC (ClickHouse gives it a time zone)."""
    if getattr(frame["as_of"].dt, "tz", None) is not None:
        frame["as_of"] = frame["as_of"].dt.tz_convert(None)
    return frame.set_index(["lead_id", "as_of"])


def test_snapshots_are_mondays_while_open_plus_the_watermark(features):
    run, rows, _, _ = features
    assert run.snapshots[0] == M1 and run.snapshots[-1] == END and all(s.weekday() == 0 for s in run.snapshots[:-1])
    assert sorted(rows.loc["P"].index) == [M1, M2]  # closed (won) on 2026-03-20, before M3
    assert rows.loc["Q"].index[-1] == END and ("R", M3) in rows.index and ("Z", END) not in rows.index


def test_window_counts_recency_and_stage_at_m1(features):
    _, rows, _, _ = features
    p = rows.loc[("P", M1)]
    assert p.days_since_created == pytest.approx(4.5)
    assert (p.activities_7d, p.activities_call_7d, p.activities_outbound_7d, p.activities_meeting_7d) == (1, 1, 1, 0)
    assert (p.touches_7d, p.touches_email_7d, p.distinct_campaigns_7d, p.stage_changes_7d) == (2, 2, 1, 1)
    assert p.days_since_last_touch == pytest.approx(2.0)
    assert p.days_since_last_activity == pytest.approx(3 + 15 / 24)
    assert (p.current_stage, p.days_in_stage) == ("contacted", pytest.approx(2.5))
    assert (p.open_opportunity_amount, p.lead_source, p.estimated_value, bool(p.email_free_mail)) == (0, "Web", 1000, True)


def test_window_edges_and_the_latest_values_at_m2(features):
    _, rows, _, _ = features
    p = rows.loc[("P", M2)]
    assert (p.activities_7d, p.activities_meeting_7d, p.activities_inbound_7d, p.activities_30d) == (1, 1, 1, 2)
    assert (p.touches_7d, p.touches_referral_7d, p.touches_30d, p.distinct_campaigns_30d) == (1, 1, 3, 2)
    assert p.days_since_last_touch == pytest.approx(6.0)
    assert p.estimated_value == 2000
    assert p.open_opportunity_amount == 5200  # the larger of the two systems' reports, not their sum
    q = rows.loc[("Q", M3)]
    assert q.activities_7d == 1  # 2026-03-16 00:00 in, 2026-03-23 00:00 out
    assert bool(q.email_free_mail) is False and q.lead_source == "Event" and q.current_stage == "new"


def test_an_anonymous_touch_counts_until_its_browser_is_shared(features):
    _, rows, _, _ = features
    assert rows.loc[("Q", M1)].touches_paid_search_7d == 1
    assert rows.loc[("Q", M2)].touches_paid_search_30d == 1
    assert rows.loc[("Q", M3)].touches_paid_search_30d == 0  # R linked to u1 on 2026-03-20
    assert rows.loc[("R", M3)].touches_30d == 0


def test_labels_look_ahead_from_as_of_to_the_window_end(features):
    _, _, labels, _ = features
    assert labels.loc[("P", M1)].label == 1 and labels.loc[("P", M2)].label == 1
    assert labels.loc[("Q", M1)].label == 0 and ("P", M3) not in labels.index  # closed before M3
    window_end = CREATED + timedelta(days=90)
    assert labels.loc["Q"].index.max() < window_end  # only while the window is ahead of as_of
    r = labels.loc["R"]  # created 2026-03-20: its window ends 2026-06-18, before the watermark
    assert (r.index.min(), r.index.max(), r.label.sum()) == (M3, datetime(2026, 6, 15), 0)
    assert set(labels.label_window_days) == {90} and labels.label_version.nunique() == 1


def test_the_leakage_check_holds(features):
    assert [r.passed for r in features[3]] == [True]


def _table(wh, name: str):
    frame = wh.fetch_arrow(f"select * from {wh.table_name('features', name)} order by lead_id, as_of").to_pandas()
    return _by_lead(frame)


def test_late_events_change_only_the_snapshots_after_them_and_incremental_equals_full(engine):
    with warehouse() as wh:
        timeline = build()
        timeline.write(wh)
        build_features(wh, load_plan(), CONFIG)
        before = _table(wh, "lead_features")
        late = Timeline()
        late.activity("Q", M3 + timedelta(hours=1))
        late.touch("Q", "events", M3 + timedelta(hours=2), campaign="c9")
        for row in late.rows:
            row["event_id"] = "late_" + row["event_id"]
            row["ingested_at"] = END + timedelta(days=1)
        late.write(wh)
        run = build_features(wh, load_plan(), CONFIG)
        after = _table(wh, "lead_features")
        assert run.mode == "incremental" and min(run.computed) > M3 and len(run.computed) < len(run.snapshots)
        assert run.replaced_days == ((M3 + timedelta(days=7)).date(), END.date() + timedelta(days=1))  # M4 on
        early = before.index.get_level_values("as_of") <= M3
        assert after[after.index.get_level_values("as_of") <= M3].equals(before[early])
        m4 = M3 + timedelta(days=7)
        assert after.loc[("Q", m4)].activities_7d == before.loc[("Q", m4)].activities_7d + 1
        assert after.loc[("Q", m4)].touches_events_7d == 1
        # The leakage check samples what this run computed, not the carried rows checked before.
        weekly = [t for t in run.computed if t != run.watermark]
        assert checks.sample_snapshots(wh, run.computed) == sorted({weekly[0], weekly[len(weekly) // 2], weekly[-1]})
        assert min(checks.sample_snapshots(wh, run.computed)) > M3 and M1 in checks.sample_snapshots(wh)
        assert checks.sample_snapshots(wh, [run.watermark]) == [max(weekly)]  # none weekly: the latest
        full = build_features(wh, load_plan(), CONFIG, full=True)
        assert full.mode == "full" and full.replaced_days is None and _table(wh, "lead_features").equals(after)


def test_a_leaky_feature_fails_the_check(data_dir):
    leaky = Feature("activities_ever", "(SELECT count(*) FROM {events} AS x WHERE x.canonical_lead_id = s.lead_id "
                    "AND x.event_type = 'activity_logged')", ("activity_logged",), None, "Reads the future.")
    features = FeatureSet.build(load_plan(), CONFIG, extra=(leaky,))
    with warehouse() as wh:
        build().write(wh)
        build_features(wh, load_plan(), CONFIG, features=features)
        result = checks.evaluate(wh, load_plan(), CONFIG, features)[0]
        build_features(wh, load_plan(), CONFIG)  # the honest definitions (a new version: a full rebuild)
        honest = checks.evaluate(wh, load_plan(), CONFIG)[0]
    assert not result.passed and "differ" in result.description
    assert result.metadata["rows_differing"][str(M1)] > 0  # at M1, P's and Q's later activities leak in
    assert honest.passed


def test_both_engines_compute_the_same_features(tmp_path, clickhouse):
    from crm_platform.warehouse import ClickHouseWarehouse, DuckDBWarehouse

    tables = {}
    for engine in ("duckdb", "clickhouse"):
        wh = (DuckDBWarehouse(tmp_path / "w.duckdb") if engine == "duckdb"
              else ClickHouseWarehouse(port=clickhouse.port, database="t_features_parity"))
        with wh:
            build().write(wh)
            build_features(wh, load_plan(), CONFIG)
            tables[engine] = (_table(wh, "lead_features"), _table(wh, "lead_labels"))
            if engine == "clickhouse":
                wh.client.command('drop database if exists "t_features_parity"')
    for a, b in zip(tables["duckdb"], tables["clickhouse"]):
        assert len(a) > 10
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_batches_that_cut_snapshots_into_lead_ranges_give_the_same_rows(engine, monkeypatch):
    from crm_platform.features import run as feature_run

    with warehouse() as wh:
        build().write(wh)
        build_features(wh, load_plan(), CONFIG)
        whole = _table(wh, "lead_features")
        monkeypatch.setattr(feature_run, "BATCH_ROWS", 1)  # every snapshot cut into single-lead ranges
        assert len(feature_run._batches(wh, build_features(wh, load_plan(), CONFIG, full=True).computed)) > 20
        assert _table(wh, "lead_features").equals(whole)


def test_the_leakage_check_recomputes_a_sample_of_leads_with_their_browsers(engine, monkeypatch):
    leaky = Feature("activities_ever", "(SELECT count(*) FROM {events} AS x WHERE x.canonical_lead_id = s.lead_id "
                    "AND x.event_type = 'activity_logged')", ("activity_logged",), None, "Reads the future.")
    monkeypatch.setattr(checks, "SAMPLE_LEADS", 1)  # one in as many leads as the snapshot has
    with warehouse() as wh:
        build().write(wh)
        run = build_features(wh, load_plan(), CONFIG)
        honest = checks.evaluate(wh, load_plan(), CONFIG, computed=run.computed)[0]
        sample = {r[0] for r in wh.fetchall(f"select lead_id from {wh.table_name('features', 'check_sample')}")}
        users = {r[0] for r in wh.fetchall(f"select user_id from {wh.table_name('features', 'check_sample_users')}")}
        leads = {r[0] for r in wh.fetchall(f"select distinct canonical_lead_id from {wh.table_name('core', 'events')} "
                                           "where canonical_lead_id is not null")}
        features = FeatureSet.build(load_plan(), CONFIG, extra=(leaky,))
        build_features(wh, load_plan(), CONFIG, features=features)
        leaked = checks.evaluate(wh, load_plan(), CONFIG, features)[0]
    assert honest.passed, honest.description
    assert 0 < len(sample) < len(leads) and sample <= leads
    assert users == ({"u1"} if sample & {"Q", "R"} else set())  # Q's anonymous touch, the browser R shares
    assert not leaked.passed
