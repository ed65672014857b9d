"""Evaluation on the test slice: ROC AUC, PR AUC (average precision), Brier score, log loss,
expected calibration error, lift and gains by decile and a calibration curve, each with a seeded
bootstrap interval.

The bootstrap resamples leads, not rows: a lead's snapshots are correlated (the same person a week
apart), so resampling rows would make the intervals too narrow. A replicate that draws one class
only is skipped for the ranking metrics (AUC is undefined there); the count used is reported.

A replicate is held as weights, how many times each row was drawn, over rows sorted by score once:
every metric is then a weighted sum in NumPy, the same value scikit-learn gives on the expanded rows,
without a sort and an input validation per replicate (at 100k leads, 600 replicates a night took
minutes that way).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

EPS = 1e-6
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Ranking:
    """Rows by score, highest first (ties in row order), and each sorted row's distinct-score
    group: what the ranking metrics and the deciles need, computed once per score vector."""
    order: np.ndarray
    group: np.ndarray
    groups: int

    @classmethod
    def of(cls, p: np.ndarray) -> "Ranking":
        order = np.argsort(-p, kind="stable")
        ps = p[order]
        group = np.concatenate([[0], np.cumsum(ps[1:] != ps[:-1])]) if len(ps) else np.zeros(0, dtype=int)
        return cls(order, group, int(group[-1]) + 1 if len(ps) else 0)


def _score_bins(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(int), bins - 1)


def weighted_ranking_metrics(y: np.ndarray, w: np.ndarray, ranking: Ranking) -> tuple[float, float]:
    """ROC AUC and average precision of the rows repeated `w` times; NaN without both classes."""
    pos = w * y
    positives = pos.sum()
    negatives = w.sum() - positives
    if not (positives > 0 and negatives > 0):
        return float("nan"), float("nan")
    pos_g = np.bincount(ranking.group, weights=pos[ranking.order], minlength=ranking.groups)
    neg_g = np.bincount(ranking.group, weights=(w - pos)[ranking.order], minlength=ranking.groups)
    # Mann-Whitney: each positive beats the negatives scored lower and half of those tied with it.
    below = negatives - np.cumsum(neg_g)
    auc = (pos_g * (below + 0.5 * neg_g)).sum() / (positives * negatives)
    # Average precision: precision at each threshold, weighted by the recall it adds.
    tps, seen = np.cumsum(pos_g), np.cumsum(pos_g + neg_g)
    precision = np.divide(tps, seen, out=np.zeros_like(tps), where=seen > 0)
    return float(auc), float((pos_g * precision).sum() / positives)


def weighted_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray, ranking: Ranking,
                     bins: int = 10) -> dict[str, float]:
    """The point metrics of the rows repeated `w` times (w = 1: the rows as they are)."""
    total = w.sum()
    pos = w * y
    positives = pos.sum()
    metrics = dict(zip(("roc_auc", "pr_auc"), weighted_ranking_metrics(y, w, ranking)))
    clipped = np.clip(p, EPS, 1 - EPS)
    b = _score_bins(p, bins)
    n = max(total, 1)
    metrics.update({
        "brier": float((w * (p - y) ** 2).sum() / n),
        "log_loss": float(-(w * (y * np.log(clipped) + (1 - y) * np.log(1 - clipped))).sum() / n),
        # Expected calibration error: per equal-width score bin |sum of scores - positives|, over rows.
        "ece": float(np.abs(np.bincount(b, weights=w * p, minlength=bins)
                            - np.bincount(b, weights=pos, minlength=bins)).sum() / n),
        "base_rate": float(positives / total) if total else float("nan"),
    })
    return metrics


def point_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return weighted_metrics(y, p, np.ones(len(y)), Ranking.of(p), bins)


def weighted_deciles(y: np.ndarray, w: np.ndarray, ranking: Ranking) -> tuple[np.ndarray, np.ndarray]:
    """Lift and cumulative gains per decile of the score (highest first): the rows repeated `w`
    times, ordered by score (ties in row order), cut into ten near-equal groups as np.array_split
    cuts them."""
    ws, ys = w[ranking.order], y[ranking.order]
    rows_total = int(round(ws.sum()))
    sizes = np.full(10, rows_total // 10) + (np.arange(10) < rows_total % 10)
    ends = np.cumsum(sizes)
    reached, positives_reached = np.cumsum(ws), np.cumsum(ws * ys)
    # Positives among the first `end` rows: whole rows before it, plus the copies of the row it cuts.
    k = np.searchsorted(reached, ends, side="right")
    before = np.where(k > 0, positives_reached[np.maximum(k - 1, 0)], 0.0)
    done = np.where(k > 0, reached[np.maximum(k - 1, 0)], 0.0)
    cut = np.where(k < len(ys), ys[np.minimum(k, len(ys) - 1)], 0.0) if len(ys) else np.zeros(10)
    cumulative = before + cut * (ends - done)
    positives = np.diff(np.concatenate([[0.0], cumulative]))
    total_pos = positives.sum()
    rate = total_pos / rows_total if rows_total else 0.0
    lift = np.where(sizes > 0, positives / np.maximum(sizes, 1) / rate if rate > 0 else np.nan, np.nan)
    gains = np.cumsum(positives) / total_pos if total_pos else np.full(10, np.nan)
    return lift, gains


def deciles(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return weighted_deciles(y, np.ones(len(y)), Ranking.of(p))


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int,
                      w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width score bin: rows, mean score, observed rate (NaN where empty)."""
    w = np.ones(len(y)) if w is None else w
    b = _score_bins(p, bins)
    n = np.bincount(b, weights=w, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=w * p, minlength=bins) / n
        rate = np.bincount(b, weights=w * y, minlength=bins) / n
    return n, mean_p, rate


def lead_resample_weights(leads: np.ndarray, replicates: int, seed: int):
    """Per bootstrap replicate, how many times each row is drawn when leads are drawn with
    replacement (a row comes with its lead)."""
    codes, uniques = pd.factorize(leads, sort=True)
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        chosen = rng.integers(0, len(uniques), len(uniques))
        yield np.bincount(chosen, minlength=len(uniques))[codes].astype(float)


def _interval(values: list[float] | np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan"), float("nan")
    a = (1 - CONFIDENCE) / 2
    return float(np.quantile(v, a)), float(np.quantile(v, 1 - a))


def evaluate(y: np.ndarray, p: np.ndarray, leads: np.ndarray, *, replicates: int, seed: int,
             bins: int = 10) -> dict:
    """Every metric with its bootstrap interval, lift/gains by decile and the calibration curve."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    ranking = Ranking.of(p)
    point = weighted_metrics(y, p, np.ones(len(y)), ranking, bins)
    lift, gains = weighted_deciles(y, np.ones(len(y)), ranking)
    n, mean_p, rate = calibration_curve(y, p, bins)
    samples = {k: [] for k in point}
    lifts, gainss, rates = [], [], []
    for w in lead_resample_weights(np.asarray(leads), replicates, seed):
        for k, v in weighted_metrics(y, p, w, ranking, bins).items():
            samples[k].append(v)
        lb, gb = weighted_deciles(y, w, ranking)
        lifts.append(lb)
        gainss.append(gb)
        rates.append(calibration_curve(y, p, bins, w)[2])
    used = int((~np.isnan(samples["roc_auc"])).sum()) if replicates else 0
    metrics = {}
    for k, v in point.items():
        low, high = _interval(samples[k]) if replicates else (float("nan"), float("nan"))
        metrics[k] = {"value": v, "low": low, "high": high}
    def band(stack: list[np.ndarray], j: int) -> tuple[float, float]:
        return _interval([s[j] for s in stack]) if stack else (float("nan"), float("nan"))
    decile_rows = []
    for j in range(10):
        ll, lh = band(lifts, j)
        gl, gh = band(gainss, j)
        decile_rows.append({"decile": j + 1, "lift": float(lift[j]), "lift_low": ll, "lift_high": lh,
                            "gain": float(gains[j]), "gain_low": gl, "gain_high": gh})
    curve = []
    for j in range(bins):
        ol, oh = band(rates, j)
        curve.append({"bin": j, "rows": int(n[j]), "mean_score": float(mean_p[j]), "observed": float(rate[j]),
                      "observed_low": ol, "observed_high": oh})
    fpr, tpr, _ = roc_curve(y, p) if 0 < y.sum() < len(y) else (np.array([0, 1]), np.array([0, 1]), None)
    return {"metrics": metrics, "deciles": decile_rows, "calibration": curve,
            "roc": {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]},
            "bootstrap": {"replicates": int(replicates), "with_both_classes": used, "resampled": "leads",
                          "seed": int(seed), "confidence": CONFIDENCE},
            "rows": len(y), "positives": int(y.sum()), "leads": len(set(leads))}


def binned_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of `values` in the bins cut at `edges`, NaN a bin of its own (the last)."""
    v = np.asarray(values, dtype=float)
    missing = np.isnan(v)
    counts = np.bincount(np.searchsorted(edges, v[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(float) / max(len(v), 1)


def psi(expected_shares: np.ndarray, actual: np.ndarray, edges: np.ndarray) -> float:
    """Population stability index of `actual` against the reference shares over the same bins:
    sum (a - e) ln(a / e), shares floored at 1e-4 (an empty bin would be infinite)."""
    e = np.maximum(np.asarray(expected_shares, dtype=float), 1e-4)
    a = np.maximum(binned_shares(actual, np.asarray(edges, dtype=float)), 1e-4)
    return float(((a - e) * np.log(a / e)).sum())


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the quantiles of `values` (repeated values merge bins)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return np.array([])
    return np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))


def paired_auc_difference(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, leads: np.ndarray, *,
                          replicates: int, seed: int) -> dict[str, float]:
    """AUC(a) - AUC(b) on the same rows, with an interval from the same lead resamples for both."""
    y = np.asarray(y, dtype=float)
    rank_a, rank_b = Ranking.of(np.asarray(p_a, dtype=float)), Ranking.of(np.asarray(p_b, dtype=float))
    def auc(w, ranking):
        return weighted_ranking_metrics(y, w, ranking)[0]
    ones = np.ones(len(y))
    diff = auc(ones, rank_a) - auc(ones, rank_b)
    samples = [auc(w, rank_a) - auc(w, rank_b)
               for w in lead_resample_weights(np.asarray(leads), replicates, seed)]
    low, high = _interval(samples)
    return {"value": float(diff), "low": low, "high": high}
