"""Evaluation on the test slice: ROC AUC, PR AUC (average precision), Brier score, log loss,
expected calibration error, lift and gains by decile and a calibration curve, each with a seeded
bootstrap interval.

The bootstrap resamples leads, not rows: a lead's snapshots are correlated (the same person a week
apart), so resampling rows would make the intervals too narrow. A replicate that draws one class
only is skipped for the ranking metrics (AUC is undefined there); the count used is reported.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

EPS = 1e-6
CONFIDENCE = 0.95


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: equal-width bins of the score, |mean score - observed rate|,
    weighted by the bin's share of rows."""
    edges = np.minimum((p * bins).astype(int), bins - 1)
    mean_p = np.bincount(edges, weights=p, minlength=bins)
    rate = np.bincount(edges, weights=y, minlength=bins)
    return float(np.abs(mean_p - rate).sum() / max(len(y), 1))


def point_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "ece": calibration_error(y, p, bins),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
    }


def deciles(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lift and cumulative gains per decile of the score (highest first). Rows are ordered by score,
    ties in their given order (stable), and cut into ten near-equal groups."""
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    groups = np.array_split(ys, 10)
    rate = y.mean() if len(y) else 0.0
    positives = np.array([g.sum() for g in groups], dtype=float)
    rows = np.array([len(g) for g in groups], dtype=float)
    lift = np.where(rows > 0, positives / np.maximum(rows, 1) / rate if rate > 0 else np.nan, np.nan)
    gains = np.cumsum(positives) / positives.sum() if positives.sum() else np.full(10, np.nan)
    return lift, gains


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width score bin: rows, mean score, observed rate (NaN where empty)."""
    b = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=p, minlength=bins) / n
        rate = np.bincount(b, weights=y, minlength=bins) / n
    return n, mean_p, rate


def _lead_resamples(leads: np.ndarray, replicates: int, seed: int):
    """Row indices of `replicates` bootstrap samples that draw leads with replacement."""
    codes, uniques = pd.factorize(leads, sort=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(uniques))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        chosen = rng.integers(0, len(uniques), len(uniques))
        lengths = counts[chosen]
        base = np.repeat(starts[chosen], lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        yield order[base + offsets]


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
    point = point_metrics(y, p, bins)
    lift, gains = deciles(y, p)
    n, mean_p, rate = calibration_curve(y, p, bins)
    samples = {k: [] for k in point}
    lifts, gainss, rates = [], [], []
    used = 0
    for idx in _lead_resamples(np.asarray(leads), replicates, seed):
        yb, pb = y[idx], p[idx]
        m = point_metrics(yb, pb, bins)
        used += not np.isnan(m["roc_auc"])
        for k, v in m.items():
            samples[k].append(v)
        lb, gb = deciles(yb, pb)
        lifts.append(lb)
        gainss.append(gb)
        rates.append(calibration_curve(yb, pb, bins)[2])
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
            "bootstrap": {"replicates": int(replicates), "with_both_classes": int(used), "resampled": "leads",
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
    diff = float(roc_auc_score(y, p_a) - roc_auc_score(y, p_b))
    samples = []
    for idx in _lead_resamples(np.asarray(leads), replicates, seed):
        yb = y[idx]
        if 0 < yb.sum() < len(yb):
            samples.append(roc_auc_score(yb, p_a[idx]) - roc_auc_score(yb, p_b[idx]))
    low, high = _interval(samples)
    return {"value": diff, "low": low, "high": high}
