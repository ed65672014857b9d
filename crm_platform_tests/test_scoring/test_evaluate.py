"""The bootstrap's weighted metrics against scikit-learn on the rows a replicate expands to."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from crm_platform.scoring import evaluate as ev


def _sample(n: int, ties: bool, seed: int = 5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(float)
    p = 1 / (1 + np.exp(-(1.5 * y + rng.normal(0, 1, n))))
    return y, (np.round(p, 1) if ties else p), rng.integers(0, max(n // 4, 1), n).astype(str)


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_metrics_equal_scikit_learn_on_the_expanded_rows(ties):
    y, p, leads = _sample(400, ties)
    ranking = ev.Ranking.of(p)
    for w in ev.lead_resample_weights(leads, 20, seed=3):
        rows = np.repeat(np.arange(len(y)), w.astype(int))
        yb, pb = y[rows], p[rows]
        got = ev.weighted_metrics(y, p, w, ranking, bins=10)
        assert got["roc_auc"] == pytest.approx(roc_auc_score(yb, pb), abs=1e-12)
        assert got["pr_auc"] == pytest.approx(average_precision_score(yb, pb), abs=1e-12)
        assert got["brier"] == pytest.approx(brier_score_loss(yb, pb), abs=1e-12)
        assert got["log_loss"] == pytest.approx(log_loss(yb, np.clip(pb, ev.EPS, 1 - ev.EPS), labels=[0, 1]),
                                                abs=1e-12)
        assert got["base_rate"] == pytest.approx(yb.mean())
        bins = np.minimum((pb * 10).astype(int), 9)
        ece = sum(abs(pb[bins == b].sum() - yb[bins == b].sum()) for b in range(10)) / len(yb)
        assert got["ece"] == pytest.approx(ece, abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_deciles_cut_the_expanded_rows_as_array_split_does(ties):
    y, p, leads = _sample(203, ties)
    ranking = ev.Ranking.of(p)
    for w in ev.lead_resample_weights(leads, 20, seed=4):
        rows = np.repeat(np.arange(len(y)), w.astype(int))  # row order kept: ties stay in row order
        yb, pb = y[rows], p[rows]
        groups = np.array_split(yb[np.argsort(-pb, kind="stable")], 10)
        positives = np.array([g.sum() for g in groups])
        lift, gains = ev.weighted_deciles(y, w, ranking)
        np.testing.assert_allclose(lift, positives / [len(g) for g in groups] / yb.mean(), atol=1e-12)
        np.testing.assert_allclose(gains, np.cumsum(positives) / positives.sum(), atol=1e-12)


def test_a_replicate_with_one_class_is_left_out_of_the_ranking_intervals_and_counted():
    y = np.array([1.0, 0.0, 0.0, 0.0])
    p = np.array([0.9, 0.2, 0.4, 0.1])
    leads = np.array(["a", "b", "c", "d"])
    out = ev.evaluate(y, p, leads, replicates=50, seed=1)
    draws = list(ev.lead_resample_weights(leads, 50, seed=1))
    with_lead_a = sum(0 < w[0] < w.sum() for w in draws)  # lead a is the only positive
    assert out["bootstrap"]["with_both_classes"] == with_lead_a < 50
    assert out["metrics"]["roc_auc"]["value"] == 1.0
    assert out["metrics"]["brier"]["low"] <= out["metrics"]["brier"]["value"] <= out["metrics"]["brier"]["high"]


def test_paired_difference_uses_the_same_resamples_for_both_models():
    y, p, leads = _sample(300, ties=False)
    same = ev.paired_auc_difference(y, p, p, leads, replicates=30, seed=2)
    assert same == {"value": 0.0, "low": 0.0, "high": 0.0}
    worse = ev.paired_auc_difference(y, p, np.sqrt(p) + np.random.default_rng(0).normal(0, 0.3, len(p)), leads,
                                     replicates=30, seed=2)
    assert 0 < worse["low"] <= worse["value"] <= worse["high"]
