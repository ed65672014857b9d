"""The logistic-regression data-driven model: which channels' touches raise the odds of converting.

One row per channel set with its converted and unconverted lead counts as sample weights (leads
touched by the same channels are the same row to a regression on exposure indicators), so the fit
is as cheap at ten million touches as at ten thousand. L2-regularized (scikit-learn's lbfgs),
deterministic. A conversion's credit goes to the channels of its window in proportion to their
positive coefficients (their added log-odds); evenly when none is positive.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from crm_platform.attribution.coalitions import (
    Coalitions,
    members,
    positive_shares,
    share_dicts,
)


def fit(c: Coalitions, regularization: float) -> tuple[dict[str, float], float]:
    """Per channel coefficient (log-odds of converting when touched), and the intercept."""
    n = len(c.channels)
    sets = np.flatnonzero(c.leads > 0)
    x = ((sets[:, None] >> np.arange(n)) & 1).astype(float)
    converted = c.converted[sets]
    unconverted = c.leads[sets] - converted
    features = np.vstack([x, x])
    labels = np.concatenate([np.ones(len(sets)), np.zeros(len(sets))])
    weights = np.concatenate([converted, unconverted])
    keep = weights > 0
    if len(set(labels[keep])) < 2:
        return {ch: 0.0 for ch in c.channels}, 0.0
    model = LogisticRegression(C=regularization, max_iter=2000)
    model.fit(features[keep], labels[keep], sample_weight=weights[keep])
    return dict(zip(c.channels, map(float, model.coef_[0]))), float(model.intercept_[0])


def share_matrix(coefficients: dict[str, float], channels: tuple[str, ...], channel_sets) -> np.ndarray:
    """(sets x channels): shares in proportion to the positive coefficients of the set's channels."""
    beta = np.array([coefficients[c] for c in channels])
    held = members(channel_sets, len(channels))
    return positive_shares(np.broadcast_to(beta, held.shape), held)


def shares(coefficients: dict[str, float], channels: tuple[str, ...], channel_sets) -> dict[int, dict[str, float]]:
    return share_dicts(share_matrix(coefficients, channels, channel_sets), channel_sets, channels)
