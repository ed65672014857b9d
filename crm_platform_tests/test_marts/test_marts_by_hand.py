"""Every mart on a small event log whose rows are worked out by hand, on DuckDB and ClickHouse: merged
lead records from several sources, ties at one instant, cleared and hashed values, repeated and
simultaneous stage reports, one deal reported by two systems, anonymous and unlinked touches,
restated spend, and a platform-written event that must not move the watermark."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from crm_platform.attribution.config import MODELS, AttributionConfig
from crm_platform.attribution.run import run_attribution
from crm_platform.defs.conventions import table_metadata
from crm_platform.marts import checks, tables
from crm_platform.marts.build import build_all, build_mart, data_watermark
from crm_platform.marts.summaries import PREVIEW_ORDER, summary
from crm_platform.plan.loader import load_plan
from crm_platform.warehouse import ClickHouseWarehouse
from crm_platform_tests.test_attribution.world import D
from crm_platform_tests.test_ingest.helpers import warehouse
from crm_platform_tests.test_marts.world import (
    DAY,
    EMAIL_HASH,
    HASHED_TITLE,
    HOUR,
    NAME_HASH,
    PII_HASHES,
    LifecycleLog,
    write_identity_map,
    write_lead_scores,
)

NO_BOOTSTRAP = replace(AttributionConfig.load(), bootstrap=replace(AttributionConfig.load().bootstrap, replicates=0))
W = D  # the data watermark: the latest event that is data (2026-06-01 12:00)


def build_world() -> LifecycleLog:
    log = LifecycleLog()
    # A: a web-form lead, its HubSpot record merged into it, updated by several systems.
    log.created("A", D - 60 * DAY, "webform", email=EMAIL_HASH, first_name=NAME_HASH, company="Acme", city="Berlin",
                country="DE", job_title="CTO", employee_count=50, estimated_value=1000.5, owner_id="rep_1",
                stage="new", lead_source="paid_search")
    log.created("hubspot:1", D - 59 * DAY, "hubspot", canonical="A", email=EMAIL_HASH, company="Acme GmbH",
                city="Munich")
    log.updated("A", D - 30 * DAY, "salesforce", city="Cologne")  # the same instant as cdc's report:
    log.updated("A", D - 30 * DAY, "cdc", city="Hamburg", changed_fields=["city"])  # cdc is more trusted
    log.updated("A", D - 20 * DAY, "api", employee_count=60, changed_fields=["employee_count", "country"])  # country cleared
    log.updated("A", D - 10 * DAY, "webform", job_title=HASHED_TITLE)  # a value ingest hashed: never shown
    log.stage("A", D - 58 * DAY + 1.5 * HOUR, "new", "contacted", "hubspot")
    log.stage("A", D - 58 * DAY + 3.5 * HOUR, "new", "contacted", "cdc")  # the same move, reported again
    log.stage("A", D - 50 * DAY, "contacted", "qualified")
    log.stage("A", D - 40 * DAY, "qualified", "opportunity")
    log.opportunity("A", D - 40 * DAY, "opp_A1", 5000.0, "crm")
    log.opportunity("A", D - 40 * DAY + HOUR, "sf_A1", 5100.0, "salesforce")  # the same deal from Salesforce
    log.won("A", D - 5 * DAY, 5000.0, "crm", opportunity="opp_A1")
    log.won("A", D - 4 * DAY, 5100.0, "salesforce", opportunity="sf_A1")
    log.opportunity("A", D - 10 * DAY, "opp_A2", 2000.0, "api")  # still open
    log.touch("A", "paid_search", D - 61 * DAY, campaign="cmp_ps")
    log.touch("A", "email", D - 20 * DAY, campaign="cmp_em")
    log.touch("A", "email", D - 1 * DAY, campaign="cmp_em")
    # B: created with a stage it never left; its only touch was anonymous, before it was known.
    log.created("B", D - 45 * DAY, "api", user="u_b", city="Paris", stage="new", owner_id="rep_2")
    log.touch(None, "organic_social", D - 46 * DAY, user="u_b")
    log.touch("B", "organic_social", W - 30 * DAY)  # exactly 30 days before the watermark: recent
    log.touch("B", "organic_social", W - 30 * DAY - timedelta(seconds=1))  # a second earlier: not
    # C: no touch (direct); two systems disagree at one instant, the CRM (most trusted) wins.
    log.created("C", D - 35 * DAY, "webform", company="Cyan")
    log.stage("C", D - 34 * DAY, "new", "contacted", "api")
    log.stage("C", D - 30 * DAY, "contacted", "disqualified", "crm")
    log.stage("C", D - 30 * DAY, "contacted", "qualified", "salesforce")
    log.activity("C", W)  # the latest event that is data: the watermark
    # E: a display touch, an opportunity won.
    log.created("E", D - 20 * DAY, "webform", company="Echo", city="Rome")
    log.touch("E", "display", D - 21 * DAY, campaign="cmp_di")
    log.stage("E", D - 15 * DAY, "new", "opportunity")
    log.opportunity("E", D - 15 * DAY, "opp_E", 300.0)
    log.stage("E", D - 2 * DAY, "opportunity", "customer")
    log.won("E", D - 2 * DAY, 300.0, opportunity="opp_E")
    # A touch of nobody known, spend (one day restated), and an identity decision stamped later.
    log.touch(None, "referral", D - 3 * DAY, campaign="cmp_rf", user="u_nobody")
    log.spend("cmp_ps", "paid_search", "2026-05-01", 100.0, D - 30 * DAY, name="Search brand")
    log.spend("cmp_ps", "paid_search", "2026-05-01", 120.0, D - 20 * DAY, name="Search brand")  # restated
    log.spend("cmp_ps", "paid_search", "2026-05-02", 50.0, D - 30 * DAY, name="Search brand")
    log.spend("cmp_so", "paid_social", "2026-05-02", 80.0, D - 30 * DAY, name="Social")
    log.merged("hubspot:1", "A", D + 100 * DAY)
    return log


IDENTITY = [("events", "A", "A"), ("hubspot", "1", "A"), ("salesforce", "00Q1", "A"), ("events", "B", "B"),
            ("events", "C", "C"), ("events", "E", "E"), ("cdc", "7", "E")]


def marts_of_world(with_scores: bool = False) -> dict[str, pd.DataFrame]:
    with warehouse() as wh:
        build_world().write(wh)
        write_identity_map(wh, IDENTITY)
        run_attribution(wh, load_plan(), NO_BOOTSTRAP)
        if with_scores:
            write_lead_scores(wh, [("A", "m1", D - 7 * DAY, 0.40, "B", D - 6 * DAY),
                                   ("A", "m2", D - 1 * DAY, 0.81, "A", D),
                                   ("A", "m1", D - 1 * DAY, 0.35, "C", D - 0.5 * DAY),
                                   ("B", "m1", D - 7 * DAY, 0.10, "C", D - 6 * DAY)])
        build_all(wh, load_plan())
        return {name: read(wh, name) for name in tables.MARTS}


def read(wh, name: str) -> pd.DataFrame:
    """The mart in key order, timestamps as naive UTC (ClickHouse's come marked UTC)."""
    keys = list(tables.table_def(name, load_plan()).order_by)
    frame = wh.fetch_arrow(f"select * from {wh.table_name('marts', name)}").to_pandas()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.fixture
def marts(engine) -> dict[str, pd.DataFrame]:
    return marts_of_world()


def ts(days: float, hours: float = 0) -> pd.Timestamp:
    return pd.Timestamp(D - days * DAY + hours * HOUR)


def test_lead_latest_state_by_hand(marts):
    state = marts["lead_latest_state"].set_index("lead_id")
    assert list(state.index) == ["A", "B", "C", "E"]  # hubspot:1 is A's record, not a lead
    a, b, c, e = (state.loc[x] for x in "ABCE")
    # Properties: the latest report wins; at one instant the more trusted source (cdc over salesforce).
    assert (a.company, a.city, a.owner_id, a.lead_source) == ("Acme GmbH", "Hamburg", "rep_1", "paid_search")
    assert a.employee_count == 60 and a.estimated_value == 1000.5
    assert pd.isna(a.country)  # cleared by an update that names it in changed_fields
    assert pd.isna(a.job_title)  # its latest value was a PII hash
    assert (b.city, b.owner_id, c.company, e.company, e.city) == ("Paris", "rep_2", "Cyan", "Echo", "Rome")
    assert pd.isna(c.city) and pd.isna(b.company)
    # Stage: the latest visit; B never changed stage, so it is in the stage it was created in.
    assert [state.loc[x].current_stage for x in "ABCE"] == ["opportunity", "new", "disqualified", "customer"]
    assert [state.loc[x].stage_entered_at for x in "ABCE"] == [ts(40), ts(45), ts(30), ts(2)]
    assert [state.loc[x].created_at for x in "ABCE"] == [ts(60), ts(45), ts(35), ts(20)]
    assert [state.loc[x].source_records for x in "ABCE"] == [3, 1, 1, 2]
    # Touches: A's three (two in the 30 days before the watermark); B's anonymous one, linked by
    # user_id, and two at the 30-day boundary, one on each side.
    assert [state.loc[x].touches for x in "ABCE"] == [3, 3, 0, 1]
    assert [state.loc[x].touches_last_30d for x in "ABCE"] == [2, 1, 0, 1]
    assert (a.first_touch_channel, a.last_touch_channel, a.last_touch_at) == ("paid_search", "email", ts(1))
    assert (b.first_touch_channel, b.last_touch_at, e.last_touch_channel) == ("organic_social", ts(30), "display")
    assert pd.isna(c.first_touch_channel) and pd.isna(c.last_touch_at)
    # Opportunities: A's first deal (reported twice) is won, its second open; E's is won.
    assert [state.loc[x].open_opportunities for x in "ABCE"] == [1, 0, 0, 0]
    assert [state.loc[x].open_opportunity_amount for x in "ABCE"] == [2000.0, 0.0, 0.0, 0.0]
    assert [state.loc[x].won_deals for x in "ABCE"] == [1, 0, 0, 1]
    assert [state.loc[x].won_revenue for x in "ABCE"] == [5000.0, 0.0, 0.0, 300.0]  # the CRM's amount, once
    assert state.lead_score.isna().all() and state.lead_score_tier.isna().all()  # no ml.lead_scores yet
    assert (state.data_watermark == pd.Timestamp(W)).all()  # the identity decision 100 days later is no data


def test_no_pii_property_or_hash_in_lead_latest_state(marts, engine):
    plan = load_plan()
    state = marts["lead_latest_state"]
    assert not set(state.columns) & tables.pii_properties(plan)
    assert {"email", "first_name", "last_name", "phone", "street"} <= tables.pii_properties(plan)
    values = {str(v) for col in state.columns for v in state[col].dropna()}
    assert not values & set(PII_HASHES)
    assert not any(v.startswith("pii:") for v in values)
    assert "stage" not in state.columns and "changed_fields" not in state.columns
    with warehouse() as wh:
        assert checks.no_pii(wh, plan).passed and checks.one_row_per_lead(wh).passed


def test_stage_durations_by_hand(marts):
    visits = marts["stage_durations"]
    got = [(r.lead_id, r.visit, r.stage, r.entered_at, None if pd.isna(r.left_at) else r.left_at,
            None if pd.isna(r.hours_in_stage) else round(r.hours_in_stage, 6),
            None if pd.isna(r.next_stage) else r.next_stage, bool(r.is_current), r.entered_via, r.reports)
           for r in visits.itertuples()]
    assert got == [
        ("A", 1, "new", ts(60), ts(58, 1.5), 49.5, "contacted", False, "lead_created", 1),
        ("A", 2, "contacted", ts(58, 1.5), ts(50), 190.5, "qualified", False, "stage_changed", 2),
        ("A", 3, "qualified", ts(50), ts(40), 240.0, "opportunity", False, "stage_changed", 1),
        ("A", 4, "opportunity", ts(40), None, None, None, True, "stage_changed", 1),
        ("C", 1, "new", ts(35), ts(34), 24.0, "contacted", False, "lead_created", 1),
        ("C", 2, "contacted", ts(34), ts(30), 96.0, "qualified", False, "stage_changed", 1),
        # Salesforce and the CRM report different moves at one instant: the less trusted one first.
        ("C", 3, "qualified", ts(30), ts(30), 0.0, "disqualified", False, "stage_changed", 1),
        ("C", 4, "disqualified", ts(30), None, None, None, True, "stage_changed", 1),
        ("E", 1, "new", ts(20), ts(15), 120.0, "opportunity", False, "lead_created", 1),
        ("E", 2, "opportunity", ts(15), ts(2), 312.0, "customer", False, "stage_changed", 1),
        ("E", 3, "customer", ts(2), None, None, None, True, "stage_changed", 1),
    ]


def d(days: float) -> date:
    return (D - days * DAY).date()


def test_funnel_daily_by_hand(marts):
    funnel = marts["funnel_daily"]
    stage_cols = [f"entered_{s}" for s in tables.stages(load_plan())]
    assert stage_cols == ["entered_new", "entered_contacted", "entered_engaged", "entered_qualified",
                          "entered_opportunity", "entered_customer", "entered_disqualified"]
    rows = {}
    for r in funnel.to_dict("records"):
        counts = {k: r[k] for k in ["leads_created", *stage_cols, "opportunities_created", "conversions"] if r[k]}
        rows[(r["day"], r["channel"])] = (counts, r["revenue"])
    assert rows == {
        (d(60), "paid_search"): ({"leads_created": 1, "entered_new": 1}, 0.0),
        (d(58), "paid_search"): ({"entered_contacted": 1}, 0.0),
        (d(50), "paid_search"): ({"entered_qualified": 1}, 0.0),
        (d(45), "organic_social"): ({"leads_created": 1}, 0.0),
        (d(40), "paid_search"): ({"entered_opportunity": 1, "opportunities_created": 1}, 0.0),  # two reports, one deal
        (d(35), "direct"): ({"leads_created": 1, "entered_new": 1}, 0.0),
        (d(34), "direct"): ({"entered_contacted": 1}, 0.0),
        (d(30), "direct"): ({"entered_qualified": 1, "entered_disqualified": 1}, 0.0),
        (d(20), "display"): ({"leads_created": 1, "entered_new": 1}, 0.0),
        (d(15), "display"): ({"entered_opportunity": 1, "opportunities_created": 1}, 0.0),
        (d(10), "paid_search"): ({"opportunities_created": 1}, 0.0),
        (d(5), "paid_search"): ({"conversions": 1}, 5000.0),  # one conversion for two systems' reports
        (d(2), "display"): ({"entered_customer": 1, "conversions": 1}, 300.0),
    }
    assert d(60) == date(2026, 4, 2)
    with warehouse() as wh:
        assert checks.funnel_matches_conversions(wh).passed


def test_cohort_conversion_by_hand(marts):
    cohorts = marts["cohort_conversion"]
    april, may = cohorts[cohorts.cohort_month == date(2026, 4, 1)], cohorts[cohorts.cohort_month == date(2026, 5, 1)]
    assert set(cohorts.cohort_month) == {date(2026, 4, 1), date(2026, 5, 1)}
    # April: A (60 days before the watermark: 8 whole weeks), B (45: 6), C (35: 5). A converted 55 days
    # after its creation: week 7.
    assert april.weeks_since_created.tolist() == list(range(9))
    assert (april.leads == 3).all()
    assert april.leads_observed.tolist() == [3, 3, 3, 3, 3, 3, 2, 1, 1]
    assert april.converted_leads.tolist() == [0] * 7 + [1, 1]
    assert april.conversion_rate.tolist() == pytest.approx([0.0] * 7 + [1 / 3, 1 / 3])
    assert april.conversions.tolist() == [0] * 7 + [1, 1] and april.revenue.tolist() == [0.0] * 7 + [5000.0] * 2
    # May: E (20 days: 2 weeks), converted 18 days after its creation: week 2.
    assert may.weeks_since_created.tolist() == [0, 1, 2]
    assert may.converted_leads.tolist() == [0, 0, 1] and may.conversion_rate.tolist() == [0.0, 0.0, 1.0]
    assert may.leads_observed.tolist() == [1, 1, 1] and may.revenue.tolist() == [0.0, 0.0, 300.0]


def test_campaign_performance_by_hand(marts):
    perf = marts["campaign_performance"]
    assert len(perf) == 6 * len(MODELS)  # six campaigns (or channels without one), every model
    assert set(perf.model) == set(MODELS)
    keyed = {(r.channel, campaign(r)): r for r in perf[perf.model == "first_touch"].itertuples()}
    assert set(keyed) == {("paid_search", "cmp_ps"), ("email", "cmp_em"), ("organic_social", None),
                          ("display", "cmp_di"), ("referral", "cmp_rf"), ("paid_social", "cmp_so")}
    touches = {k: (r.touches, r.linked_touches, r.leads_touched) for k, r in keyed.items()}
    assert touches == {("paid_search", "cmp_ps"): (1, 1, 1), ("email", "cmp_em"): (2, 2, 1),
                       ("organic_social", None): (3, 3, 1), ("display", "cmp_di"): (1, 1, 1),
                       ("referral", "cmp_rf"): (1, 0, 0),  # a touch of nobody known
                       ("paid_social", "cmp_so"): (0, 0, 0)}  # spend only
    spend = {k: (None if pd.isna(r.spend) else r.spend) for k, r in keyed.items()}
    assert spend[("paid_search", "cmp_ps")] == 170.0  # 120 (restated from 100) + 50
    assert spend[("paid_social", "cmp_so")] == 80.0 and spend[("email", "cmp_em")] is None
    assert keyed[("paid_search", "cmp_ps")].campaign_name == "Search brand"

    def economics(model: str) -> dict:
        rows = perf[perf.model == model]
        return {(r.channel, campaign(r)): (round(r.conversions, 9), round(r.revenue, 6),
                                             None if pd.isna(r.cost_per_conversion) else round(r.cost_per_conversion, 6),
                                             None if pd.isna(r.roas) else round(r.roas, 6))
                for r in rows.itertuples() if r.conversions or not pd.isna(r.roas)}

    # A's conversion (5000) had touches ps, em in its window (the last email came after it); E's (300) display.
    assert economics("first_touch") == {
        ("paid_search", "cmp_ps"): (1.0, 5000.0, 170.0, round(5000 / 170, 6)),
        ("display", "cmp_di"): (1.0, 300.0, None, None),
        ("paid_social", "cmp_so"): (0.0, 0.0, None, 0.0)}  # spend and nothing credited: ROAS 0
    assert economics("last_touch") == {
        ("email", "cmp_em"): (1.0, 5000.0, None, None), ("display", "cmp_di"): (1.0, 300.0, None, None),
        ("paid_search", "cmp_ps"): (0.0, 0.0, None, 0.0), ("paid_social", "cmp_so"): (0.0, 0.0, None, 0.0)}
    assert economics("linear") == {
        ("paid_search", "cmp_ps"): (0.5, 2500.0, 340.0, round(2500 / 170, 6)),
        ("email", "cmp_em"): (0.5, 2500.0, None, None), ("display", "cmp_di"): (1.0, 300.0, None, None),
        ("paid_social", "cmp_so"): (0.0, 0.0, None, 0.0)}
    for model in MODELS:
        rows = perf[perf.model == model]
        assert rows.conversions.sum() == pytest.approx(2.0) and rows.revenue.sum() == pytest.approx(5300.0), model


def campaign(row) -> str | None:
    return None if pd.isna(row.campaign_id) else row.campaign_id


def test_the_latest_score_of_each_lead(engine):
    state = marts_of_world(with_scores=True)["lead_latest_state"].set_index("lead_id")
    # A: two scores as of D-1 day; m2's was computed later.
    assert (state.loc["A"].lead_score, state.loc["A"].lead_score_tier, state.loc["A"].lead_score_model_version,
            state.loc["A"].lead_score_as_of) == (0.81, "A", "m2", ts(1))
    assert state.loc["B"].lead_score == 0.10 and pd.isna(state.loc["C"].lead_score)


def test_an_empty_event_log_gives_empty_marts(engine):
    plan = load_plan()
    with warehouse() as wh:
        missing = build_all(wh, plan)  # not even core.events
        assert all(b.rows == 0 for b in missing.values())
        assert all("core.events" in b.missing for b in missing.values())
        LifecycleLog().write(wh)  # an empty core.events, nothing else
        for name in tables.MARTS:
            built = build_mart(wh, name, plan)
            assert built.rows == 0 == wh.row_count("marts", name), name
            assert list(wh.fetch_arrow(f"select * from {wh.table_name('marts', name)}").column_names) == list(
                tables.table_def(name, plan).column_names)
        assert data_watermark(wh) is None
        assert set(build_mart(wh, "lead_latest_state", plan).missing) == {
            "attribution.conversions", "identity.lead_identity_map", "ml.lead_scores"}
        assert checks.no_pii(wh, plan).passed and checks.funnel_matches_conversions(wh).passed


def test_without_attribution_or_identity_the_columns_they_give_are_null(engine):
    with warehouse() as wh:
        build_world().write(wh)
        built = build_all(wh, load_plan())
        state, perf, funnel = read(wh, "lead_latest_state"), read(wh, "campaign_performance"), read(wh, "funnel_daily")
    assert built["lead_latest_state"].missing == ["attribution.conversions", "identity.lead_identity_map",
                                                  "ml.lead_scores"]
    assert state.won_revenue.isna().all() and state.source_records.isna().all()
    assert state.open_opportunities.tolist() == [1, 0, 0, 0]  # from the event log itself
    assert perf.conversions.isna().all() and perf.roas.isna().all()
    assert perf.spend.notna().sum() == 2 * len(MODELS) and funnel.conversions.sum() == 0


def test_rebuilding_gives_the_same_tables(engine):
    first = marts_of_world()
    with warehouse() as wh:
        build_all(wh, load_plan())
        again = {name: read(wh, name) for name in tables.MARTS}
    for name in tables.MARTS:
        pd.testing.assert_frame_equal(first[name], again[name])


def test_both_engines_give_the_same_marts(data_dir, clickhouse, monkeypatch):
    on_duckdb = marts_of_world(with_scores=True)
    database = "t_marts_parity"
    for name, value in clickhouse.env(database).items():
        monkeypatch.setenv(name, value)
    try:
        on_clickhouse = marts_of_world(with_scores=True)
    finally:
        with ClickHouseWarehouse(port=clickhouse.port, database=database) as wh:
            wh.client.command(f'drop database if exists "{database}"')
    for name in tables.MARTS:
        assert list(on_clickhouse[name].columns) == list(on_duckdb[name].columns), name
        assert len(on_duckdb[name]) > 0, name
        pd.testing.assert_frame_equal(on_duckdb[name], on_clickhouse[name], check_dtype=False, obj=name)


def test_the_watermark_leaves_out_platform_events(engine):
    with warehouse() as wh:
        build_world().write(wh)
        assert data_watermark(wh) == W
        assert wh.fetchall(f"select max(occurred_at) from {wh.table_name('core', 'events')}")[0][0].replace(
            tzinfo=None) == datetime(2026, 9, 9, 12, 0)


def test_what_the_ui_shows_runs_on_both_engines(marts, engine):
    """Each asset's metadata: row count, schema, preview in its order, and its headline aggregate."""
    with warehouse() as wh:
        for name in tables.MARTS:
            metadata = table_metadata(wh, "marts", name, order_by=PREVIEW_ORDER[name])
            assert metadata["dagster/row_count"].value == len(marts[name]) > 0
            assert "|" in metadata["preview"].value
            label, table = summary(wh, name)
            assert table.num_rows > 0, label
        _, stages = summary(wh, "lead_latest_state")
        assert dict(zip(stages.column("stage").to_pylist(), stages.column("leads").to_pylist())) == {
            "opportunity": 1, "new": 1, "disqualified": 1, "customer": 1}
