"""The data-driven models fitted on engine aggregates, as shares of a conversion's credit per
channel set: Markov (removal effects), Shapley (coalition values) and logistic regression."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_platform.attribution import regression, shapley
from crm_platform.attribution.coalitions import (
    Coalitions,
    members,
    positive_shares,
    share_dicts,
)
from crm_platform.attribution.config import Models
from crm_platform.attribution.markov import Chain

Shares = dict[int, dict[str, float]]  # channel set -> channel -> share of the conversion


@dataclass(frozen=True)
class Fitted:
    shares: dict[str, Shares]  # per model
    parameters: list[tuple[str, str, str, float]]  # (model, channel, parameter, value)
    removal_effects: dict[str, float]


def markov_share_matrix(effects: dict[str, float], channels: tuple[str, ...], channel_sets) -> np.ndarray:
    """A conversion's credit over its window's channels in proportion to their removal effects."""
    held = members(channel_sets, len(channels))
    return positive_shares(np.broadcast_to(np.array([effects.get(c, 0.0) for c in channels]), held.shape), held)


def fit_all(chain: Chain, coalitions: Coalitions, channel_sets, settings: Models) -> Fitted:
    channels = coalitions.channels
    effects = chain.removal_effects()
    coefficients, intercept = regression.fit(coalitions, settings.regularization)
    values = shapley.coalition_values(coalitions, settings.shapley_min_support)
    shares = {
        "markov": share_dicts(markov_share_matrix(effects, channels, channel_sets), channel_sets, channels),
        "shapley": shapley.shares(coalitions, channel_sets, settings.shapley_min_support),
        "logistic_regression": regression.shares(coefficients, channels, channel_sets),
    }
    phi = dict(enumerate(shapley.all_shapley_values(values, len(channels))[(1 << len(channels)) - 1]))
    parameters = [("markov", c, "removal_effect", e) for c, e in sorted(effects.items())]
    parameters += [("logistic_regression", c, "coefficient", b) for c, b in coefficients.items()]
    parameters += [("logistic_regression", None, "intercept", intercept)]
    parameters += [("shapley", channels[i], "value_in_full_set", v) for i, v in phi.items()]
    return Fitted(shares, parameters, effects)
