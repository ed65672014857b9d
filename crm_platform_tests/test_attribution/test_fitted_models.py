"""The fitted models on aggregates worked out by hand: Markov removal effects of first and second
order, Shapley values with their pooled fallback, the regression recovering planted log-odds, and
seeded, deterministic bootstrap intervals."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from crm_platform.attribution import regression, shapley
from crm_platform.attribution.bootstrap import markov_replicates, rule_replicates
from crm_platform.attribution.coalitions import Coalitions, subset_sums
from crm_platform.attribution.config import Bootstrap
from crm_platform.attribution.markov import PathChain, Paths, summary_conversions


def test_first_order_removal_effects_of_a_chain_with_a_loop():
    # a>b>a converts, b>a and a do not: from a, 1/4 to b, 1/4 converts, 1/2 null; b always goes to a.
    # x_a = 1/4 + x_b / 4 and x_b = x_a, so x_a = 1/3 and P = 1/3; without b, x_a = 1/4, P = 1/6.
    chain = PathChain.build(["a>b>a", "b>a", "a"], order=1)
    p = chain.chain(np.array([1, 0, 0]), np.array([0, 1, 1])).conversion_probabilities()
    assert p[None] == pytest.approx(1 / 3) and p["a"] == 0 and p["b"] == pytest.approx(1 / 6)
    effects = chain.removal_effects(np.array([1, 0, 0]), np.array([0, 1, 1]))
    assert effects == pytest.approx({"a": 1.0, "b": 0.5})
    assert summary_conversions(effects, 1) == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_the_engine_transition_counts_make_the_same_chain_as_the_paths():
    import pyarrow as pa

    from crm_platform.attribution.markov import Chain

    # a>b>a converts, b>a and a do not, as transitions.sql counts them.
    table = pa.table({"from_state": ["(start)", "(start)", "a", "a", "a", "b"],
                      "to_state": ["a", "b", "b", "(conversion)", "(null)", "a"],
                      "transitions": [2, 1, 1, 1, 2, 2]})
    assert Chain.from_transitions(table).removal_effects() == pytest.approx({"a": 1.0, "b": 0.5})


def test_second_order_tells_apart_what_first_order_cannot():
    # a>b converts, c>b does not, b converts. First order: b converts 2/3 whoever came before, so
    # removing a or c costs the same. Second order: (a,b) always converts, (c,b) never.
    conversions, nulls = np.array([1, 0, 1]), np.array([0, 1, 0])
    first = PathChain.build(["a>b", "c>b", "b"], order=1).removal_effects(conversions, nulls)
    second = PathChain.build(["a>b", "c>b", "b"], order=2).removal_effects(conversions, nulls)
    assert first == pytest.approx({"a": 1 / 3, "b": 1.0, "c": 1 / 3})
    assert second == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.0})
    third = PathChain.build(["a>b", "c>b", "b"], order=3).removal_effects(conversions, nulls)
    assert third == pytest.approx(second)  # no path is longer than two
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        PathChain.build(["a"], order=4)


def two_channel_game(ab_leads: float = 100) -> Coalitions:
    # Conversion rates: none 0.1, a 0.2, b 0.3, both 0.5.
    return Coalitions.from_counts(("a", "b"), [0, 1, 2, 3], [100, 100, 100, ab_leads], [10, 20, 30, 0.5 * ab_leads])


def test_shapley_values_and_shares_by_hand():
    values = shapley.coalition_values(two_channel_game(), min_support=30)
    assert values.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.5])
    # a: (0.2 - 0.1 + 0.5 - 0.3) / 2 = 0.15; b: (0.3 - 0.1 + 0.5 - 0.2) / 2 = 0.25.
    assert shapley.all_shapley_values(values, 2)[3].tolist() == pytest.approx([0.15, 0.25])
    shares = shapley.shares(two_channel_game(), [1, 3], 30)
    assert shares[1] == {"a": 1.0} and shares[3] == pytest.approx({"a": 0.375, "b": 0.625})


def test_shapley_values_of_every_set_equal_the_average_over_join_orders():
    n = 5
    values = np.random.default_rng(2).random(1 << n)
    values[0] = 0.05
    phi = shapley.all_shapley_values(values, n)
    for s in (0b10110, 0b11111, 0b00100):
        players = [i for i in range(n) if s >> i & 1]
        brute = dict.fromkeys(players, 0.0)
        orders = list(itertools.permutations(players))
        for order in orders:
            coalition = 0
            for p in order:
                brute[p] += (values[coalition | 1 << p] - values[coalition]) / len(orders)
                coalition |= 1 << p
        assert phi[s].tolist() == pytest.approx([brute.get(i, 0.0) for i in range(n)], abs=1e-12)
        assert phi[s].sum() == pytest.approx(values[s] - values[0])  # efficiency


def test_a_rare_coalition_takes_the_pooled_rate_of_its_subsets():
    game = two_channel_game(ab_leads=10)  # 10 leads, 5 converted: below the support of 30
    values = shapley.coalition_values(game, min_support=30)
    assert values[3] == pytest.approx((10 + 20 + 30 + 5) / (100 + 100 + 100 + 10))
    assert subset_sums(np.array([1.0, 2, 4, 8]), 2).tolist() == [1, 3, 5, 15]


def test_a_channel_that_lowers_conversion_gets_no_credit():
    game = Coalitions.from_counts(("a", "b"), [0, 1, 2, 3], [100] * 4, [20, 30, 10, 15])  # b hurts
    assert shapley.shares(game, [3], 30)[3] == pytest.approx({"a": 1.0, "b": 0.0})


def test_the_regression_recovers_planted_log_odds():
    rng = np.random.default_rng(1)
    effects = {"a": 1.2, "b": 0.4, "c": -0.3}
    sets = np.arange(8)
    x = (sets[:, None] >> np.arange(3)) & 1
    p = 1 / (1 + np.exp(-(-2.0 + x @ np.array(list(effects.values())))))
    leads = np.full(8, 200_000.0)
    converted = rng.binomial(200_000, p).astype(float)
    coefficients, intercept = regression.fit(Coalitions.from_counts(("a", "b", "c"), sets, leads, converted), 1.0)
    assert coefficients == pytest.approx(effects, abs=0.03) and intercept == pytest.approx(-2.0, abs=0.03)
    shares = regression.shares(coefficients, ("a", "b", "c"), [7])[7]
    assert shares["c"] == 0 and shares["a"] == pytest.approx(1.2 / 1.6, abs=0.02)


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(3)
    lead = rng.integers(0, 500, 2000)
    key = rng.integers(0, 4, 2000)
    credit = rng.random(2000)
    settings = Bootstrap(replicates=200, confidence=0.9, seed=11)
    first = rule_replicates(lead, key, credit, credit * 10, 4, settings)
    again = rule_replicates(lead, key, credit, credit * 10, 4, settings)
    assert np.array_equal(first.conversions, again.conversions)
    low, high, _, rhigh = first.interval(0.9)
    estimate = np.bincount(key, weights=credit, minlength=4)
    assert np.all(low < estimate) and np.all(estimate < high)
    assert np.all(high - low < 0.25 * estimate)  # 500 leads: a few percent wide, not degenerate
    assert rhigh == pytest.approx(high * 10, rel=1e-9)
    other = rule_replicates(lead, key, credit, credit, 4, Bootstrap(replicates=200, confidence=0.9, seed=12))
    assert not np.array_equal(first.conversions, other.conversions)


def test_markov_bootstrap_refits_on_resampled_paths():
    paths = Paths(["a>b", "b", "a"], np.array([300.0, 200.0, 100.0]), np.array([100.0, 400.0, 300.0]),
                  np.array([3000.0, 2000.0, 1000.0]))
    chain = PathChain.build(paths.paths)
    reps = markov_replicates(chain, paths, ("a", "b", "direct"), Bootstrap(replicates=100, confidence=0.95, seed=5))
    low, high, _, _ = reps.interval(0.95)
    point = summary_conversions(chain.removal_effects(paths.conversions, paths.nulls), 600)
    assert low[0] < point["a"] < high[0] and low[1] < point["b"] < high[1]
    assert reps.conversions[:, 2].max() == 0  # a channel on no path gets nothing in any replicate
    assert reps.conversions.sum(axis=1).std() > 0  # the total itself is resampled


def test_coalition_replicates_at_once_equal_one_replicate_after_the_other():
    """Every Shapley replicate's game solved at once gives what a loop over the same draws gives."""
    from crm_platform.attribution.bootstrap import coalition_replicates
    from crm_platform.attribution.config import Models

    channels = ("email", "paid_search", "social", "direct")
    rs = np.random.RandomState(3)
    sets = np.arange(16)
    coalitions = Coalitions.from_counts(channels, sets, rs.randint(20, 400, 16), rs.randint(0, 20, 16))
    conversions, revenue = rs.randint(0, 50, 16).astype(float), rs.uniform(0, 1e4, 16)
    settings, models = Bootstrap(replicates=25, seed=7), Models()
    got = coalition_replicates("shapley", coalitions, sets, conversions, revenue, models, settings)
    rng = np.random.default_rng(settings.seed + 2)
    for b in range(settings.replicates):
        sample = coalitions.resampled(rng)
        drawn = rng.poisson(conversions).astype(float)
        shares = shapley.share_matrix(sample, sets, models.shapley_min_support)
        shares[sets == 0] = [0, 0, 0, 1]
        assert got.conversions[b] == pytest.approx(drawn @ shares)
        scaled = revenue * np.divide(drawn, conversions, out=np.zeros_like(revenue), where=conversions > 0)
        assert got.revenue[b] == pytest.approx(scaled @ shares)
    assert got.conversions.sum(axis=1) == pytest.approx(got.conversions.sum(axis=1).round())  # whole conversions
