"""Every model on a small event log whose credits are worked out by hand: one touch, two touches,
repeats, the lookback boundary, no touch, merged leads, an anonymous touch, one deal reported by two
systems. The same numbers on DuckDB and ClickHouse."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pyarrow as pa
import pytest

from crm_platform.attribution import checks
from crm_platform.attribution.charts import conversions_by_channel_png
from crm_platform.attribution.config import MODELS, RULE_MODELS, AttributionConfig
from crm_platform.attribution.markov import PathChain, Paths
from crm_platform.attribution.run import (
    _fetch,
    _parameters,
    channels_of,
    run_attribution,
)
from crm_platform.plan.loader import load_plan
from crm_platform_tests.test_attribution.world import D, EventLog
from crm_platform_tests.test_ingest.helpers import warehouse

DAY = timedelta(days=1)
NO_BOOTSTRAP = replace(AttributionConfig.load(), bootstrap=replace(AttributionConfig.load().bootstrap, replicates=0))


def build_world() -> tuple[EventLog, dict[str, str]]:
    log, t = EventLog(), {}
    for lead in ("A", "B", "C", "L", "E", "F1", "I", "H"):
        log.lead(lead)
    log.lead("F2", canonical="F1")  # merged into F1 by the identity graph
    log.lead("G", user="u_g")
    log.lead("S1", user="u_shared")
    log.lead("S2", user="u_shared")
    t["A"] = log.touch("A", "paid_search", D - 10 * DAY, campaign="cmp_ps")
    t["B1"] = log.touch("B", "email", D - 20 * DAY)
    t["B2"] = log.touch("B", "events", D - 5 * DAY)
    t["C1"] = log.touch("C", "email", D - 30 * DAY)
    t["C2"] = log.touch("C", "email", D - 20 * DAY)
    t["C3"] = log.touch("C", "referral", D - 10 * DAY)
    t["C4"] = log.touch("C", "email", D - 1 * DAY)
    t["L_in"] = log.touch("L", "organic_search", D - 90 * DAY)  # exactly at the boundary: in
    t["L_out"] = log.touch("L", "display", D - 90 * DAY - timedelta(seconds=1))  # one second older: out
    t["E_after"] = log.touch("E", "paid_social", D + timedelta(hours=1))  # after the conversion
    t["F"] = log.touch("F1", "display", D - 3 * DAY)
    t["G"] = log.touch(None, "organic_social", D - 2 * DAY, user="u_g")  # anonymous: joins G by its user_id
    t["S"] = log.touch(None, "referral", D - 2 * DAY, user="u_shared")  # a shared browser: nobody's
    t["I"] = log.touch("I", "events", D - 4 * DAY)
    t["H"] = log.touch("H", "paid_search", D - 8 * DAY)  # never converts: a null path
    c = {}
    c["A"] = log.won("A", amount=1000)
    c["B"] = log.won("B", amount=500)
    c["C"] = log.won("C", amount=800)
    c["L"] = log.won("L", amount=300)
    c["E"] = log.won("E", amount=200)
    c["F"] = log.won("F2", amount=700, canonical="F1")
    c["G"] = log.won("G", amount=400)
    c["S1"] = log.won("S1", amount=100)
    c["I"] = log.won("I", amount=900, source="cdc", opportunity="5001")
    log.won("I", D + DAY, amount=950, source="salesforce", opportunity="0065x")  # the same deal, a day later
    log.won("H", amount=50, outcome="lost")  # a lost deal is no conversion
    return log, {**{f"t_{k}": v for k, v in t.items()}, **{f"c_{k}": v for k, v in c.items()}}


@pytest.fixture
def attributed(engine):
    log, ids = build_world()
    with warehouse() as wh:
        log.write(wh)
        run = run_attribution(wh, load_plan(), NO_BOOTSTRAP)
        credits = wh.fetch_arrow(f"select * from {wh.table_name('attribution', 'credits')}").to_pandas()
        conversions = wh.fetch_arrow(f"select * from {wh.table_name('attribution', 'conversions')}").to_pandas()
        balance = checks.evaluate(wh)
    return run, credits, conversions, balance, ids


def credit(credits, model: str, conversion: str, touch: str | None) -> float:
    rows = credits[(credits.model == model) & (credits.conversion_event_id == conversion)]
    rows = rows[rows.touch_event_id.isna()] if touch is None else rows[rows.touch_event_id == touch]
    return float(rows.credit.sum())


def test_conversions_are_deduplicated_across_systems_and_lost_deals_left_out(attributed):
    run, _, conversions, _, ids = attributed
    assert len(conversions) == 9
    deal = conversions[conversions.lead_id == "I"].iloc[0]
    assert deal.conversion_event_id == ids["c_I"] and deal.revenue == 900 and deal.reports == 2
    assert conversions.revenue.sum() == pytest.approx(4900)
    assert run.counts["conversions_without_touch"] == 2  # E (its touch came after) and S1 (shared browser)
    assert run.counts["touches_linked_by_user"] == 1


@pytest.mark.parametrize("model", MODELS)
def test_single_touch_lookback_boundary_merge_and_anonymous_touch_get_all_credit(attributed, model):
    _, credits, _, _, ids = attributed
    for conv, touch in (("A", "A"), ("L", "L_in"), ("F", "F"), ("G", "G"), ("I", "I")):
        assert credit(credits, model, ids[f"c_{conv}"], ids[f"t_{touch}"]) == pytest.approx(1.0), (conv, touch)
    assert credit(credits, model, ids["c_L"], ids["t_L_out"]) == 0
    for conv in ("E", "S1"):  # no touch in the window: all to direct, without a touch
        rows = credits[(credits.model == model) & (credits.conversion_event_id == ids[f"c_{conv}"])]
        assert rows.channel.tolist() == ["direct"] and rows.touch_event_id.isna().all() and rows.credit.sum() == 1


def test_rule_based_models_on_two_touches_and_on_repeats(attributed):
    _, credits, _, _, ids = attributed
    b, c = ids["c_B"], ids["c_C"]
    expected = {
        ("first_touch", b): {"B1": 1, "B2": 0},
        ("last_touch", b): {"B1": 0, "B2": 1},
        ("linear", b): {"B1": 0.5, "B2": 0.5},
        ("position_based", b): {"B1": 0.5, "B2": 0.5},
        ("time_decay", b): {"B1": 2 ** (-20 / 7) / (2 ** (-20 / 7) + 2 ** (-5 / 7)),
                            "B2": 2 ** (-5 / 7) / (2 ** (-20 / 7) + 2 ** (-5 / 7))},
        ("first_touch", c): {"C1": 1, "C2": 0, "C3": 0, "C4": 0},
        ("last_touch", c): {"C1": 0, "C2": 0, "C3": 0, "C4": 1},
        ("linear", c): {"C1": 0.25, "C2": 0.25, "C3": 0.25, "C4": 0.25},  # repeats count
        ("position_based", c): {"C1": 0.4, "C2": 0.1, "C3": 0.1, "C4": 0.4},
    }
    decay = {k: 2 ** (-d / 7) for k, d in (("C1", 30), ("C2", 20), ("C3", 10), ("C4", 1))}
    expected[("time_decay", c)] = {k: w / sum(decay.values()) for k, w in decay.items()}
    for (model, conv), by_touch in expected.items():
        for touch, value in by_touch.items():
            assert credit(credits, model, conv, ids[f"t_{touch}"]) == pytest.approx(value, abs=1e-12), (model, touch)


def test_markov_removal_effects_and_summary_by_hand(attributed):
    """Paths: paid_search (A), email>events (B), email>referral>email (C), organic_search (L),
    direct (E, S1), display (F), organic_social (G), events (I) convert; paid_search (H) does not.
    P(conversion) = 9/10; removing a channel gives 8/10 (paid_search, organic_search, display,
    organic_social), 7/10 (email, events, direct) or 25/30 (referral: email then converts 2/3)."""
    run, credits, _, _, ids = attributed
    effects = {"paid_search": 1 / 9, "organic_search": 1 / 9, "display": 1 / 9, "organic_social": 1 / 9,
               "email": 2 / 9, "events": 2 / 9, "direct": 2 / 9, "referral": 2 / 27}
    assert {k: v for k, v in run.removal_effects.items() if v} == pytest.approx(effects, abs=1e-12)
    summary = run.summary[run.summary.model == "markov"].set_index("channel")
    total = sum(effects.values())
    for channel, effect in effects.items():
        assert summary.loc[channel, "conversions"] == pytest.approx(9 * effect / total, abs=1e-12)
        assert summary.loc[channel, "revenue"] == pytest.approx(4900 * effect / total, abs=1e-9)
    # Per conversion, credit follows the removal effects of its path's channels, evenly over repeats.
    assert credit(credits, "markov", ids["c_B"], ids["t_B1"]) == pytest.approx(0.5)
    assert credit(credits, "markov", ids["c_C"], ids["t_C3"]) == pytest.approx(0.25)
    for touch in ("C1", "C2", "C4"):
        assert credit(credits, "markov", ids["c_C"], ids[f"t_{touch}"]) == pytest.approx(0.25)


def test_every_model_balances_credits_and_revenue(attributed):
    run, credits, _, balance, _ = attributed
    assert [r.passed for r in balance] == [True]
    sums = credits.groupby("model")[["credit", "revenue_credit"]].sum()
    assert set(sums.index) == set(MODELS)
    assert sums.credit.tolist() == pytest.approx([9] * len(MODELS))
    assert sums.revenue_credit.tolist() == pytest.approx([4900] * len(MODELS))
    by_model = run.summary.groupby("model")[["conversions", "revenue"]].sum()
    assert by_model.conversions.tolist() == pytest.approx([9] * len(MODELS))
    assert by_model.revenue.tolist() == pytest.approx([4900] * len(MODELS))
    last = run.summary[run.summary.model == "last_touch"].set_index("channel").conversions.to_dict()
    assert last == pytest.approx({"paid_search": 1, "events": 2, "email": 1, "organic_search": 1, "direct": 2,
                                  "display": 1, "organic_social": 1})


def test_lookback_steps_and_channel_filters_change_the_window(engine):
    log, ids = build_world()
    config = replace(NO_BOOTSTRAP, lookback=replace(NO_BOOTSTRAP.lookback, steps=2),
                     channels=replace(NO_BOOTSTRAP.channels, exclude=("events",)))
    with warehouse() as wh:
        log.write(wh)
        run_attribution(wh, load_plan(), config)
        credits = wh.fetch_arrow(f"select * from {wh.table_name('attribution', 'credits')}").to_pandas()
    # C keeps its last two touches (referral, email); B loses its events touch; I has none left.
    assert credit(credits, "linear", ids["c_C"], ids["t_C3"]) == pytest.approx(0.5)
    assert credit(credits, "linear", ids["c_C"], ids["t_C4"]) == pytest.approx(0.5)
    assert credit(credits, "linear", ids["c_C"], ids["t_C1"]) == 0
    assert credit(credits, "first_touch", ids["c_B"], ids["t_B1"]) == 1
    assert credit(credits, "last_touch", ids["c_I"], None) == 1


def test_a_merge_re_attributes_the_conversion(engine):
    """Before the identity graph merges F2 into F1, F2's conversion has no touch (direct); after the
    merge, the next run credits F1's display touch."""
    log, ids = build_world()
    for row in log.rows:
        if row["lead_id"] == "F2":
            row["canonical_lead_id"] = "F2"
    with warehouse() as wh:
        log.write(wh)
        run_attribution(wh, load_plan(), NO_BOOTSTRAP)
        before = wh.fetch_arrow(f"select * from {wh.table_name('attribution', 'credits')}").to_pandas()
        wh.update_column("core", "events", "canonical_lead_id", "lead_id", pa.table({"key": ["F2"], "value": ["F1"]}))
        run_attribution(wh, load_plan(), NO_BOOTSTRAP)
        after = wh.fetch_arrow(f"select * from {wh.table_name('attribution', 'credits')}").to_pandas()
    for model in RULE_MODELS:
        assert credit(before, model, ids["c_F"], None) == 1
        assert credit(after, model, ids["c_F"], ids["t_F"]) == 1


@pytest.mark.parametrize("order", [1, 2, 3])
def test_engine_transitions_of_every_order_equal_the_chain_of_the_paths(engine, order):
    """The point estimate comes from transitions.sql (states built by window functions in the
    engine), the bootstrap from distinct paths: both must be the same chain."""
    log, _ = build_world()
    log.touch("B", "email", D - 2 * DAY)  # B: email > events > email, so higher orders see more
    log.touch("H", "events", D - 7 * DAY)
    config = replace(NO_BOOTSTRAP, models=replace(NO_BOOTSTRAP.models, markov_order=order))
    with warehouse() as wh:
        log.write(wh)
        run = run_attribution(wh, load_plan(), config)
        paths = Paths.from_arrow(_fetch(wh, "paths", _parameters(config, channels_of(load_plan(), config))))
    assert "email>events>email" in paths.paths and "paid_search>events" in paths.paths
    expected = PathChain.build(paths.paths, order).removal_effects(paths.conversions, paths.nulls)
    assert run.removal_effects == pytest.approx(expected, abs=1e-12)
    assert run.counts["markov_states"] == len(PathChain.build(paths.paths, order).states)


def test_an_empty_log_and_conversions_without_any_touch_or_amount(engine):
    with warehouse() as wh:
        EventLog().write(wh)
        run = run_attribution(wh, load_plan(), AttributionConfig.load())
        assert run.summary.empty and run.counts["credits"] == 0
        assert [r.passed for r in checks.evaluate(wh)] == [True]
        assert conversions_by_channel_png(run.summary, MODELS).startswith(b"\x89PNG")
        log = EventLog()
        log.lead("X")
        log.won("X", amount=None)  # a won deal without an amount: a conversion worth 0
        log.won("Y", D - 30 * DAY, amount=250)
        log.write(wh)
        run = run_attribution(wh, load_plan(), AttributionConfig.load())
        assert [r.passed for r in checks.evaluate(wh)] == [True]
    assert set(run.summary.channel) == {"direct"}
    assert run.summary.groupby("model").conversions.sum().tolist() == pytest.approx([2] * len(MODELS))
    assert run.summary.groupby("model").revenue.sum().tolist() == pytest.approx([250] * len(MODELS))
