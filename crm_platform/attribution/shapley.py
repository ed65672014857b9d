"""Shapley attribution over channel coalitions.

Convention: the players of a conversion are the channels of its lookback window. A coalition's
value is the conversion rate of the leads touched by exactly that set of channels, where at least
`min_support` leads were; for rarer sets, the rate of all leads touched by no channel outside the
set (a pooled estimate that always exists, since it includes the untouched leads). A channel's
Shapley value in set S is its average marginal gain in conversion rate over all orders in which
the channels of S could have joined; the conversion's credit goes to the channels of S in
proportion to their positive values (evenly when no value is positive). Channels that add nothing
get nothing; a channel that lowers the rate gets nothing rather than negative credit.
"""
from __future__ import annotations

from math import factorial

import numpy as np

from crm_platform.attribution.coalitions import (
    Coalitions,
    members,
    popcounts,
    positive_shares,
    share_dicts,
    subset_sums,
)


def coalition_values(c: Coalitions, min_support: float) -> np.ndarray:
    n = len(c.channels)
    pooled_leads = subset_sums(c.leads, n)
    pooled_converted = subset_sums(c.converted, n)
    pooled = np.divide(pooled_converted, pooled_leads, out=np.zeros_like(pooled_leads), where=pooled_leads > 0)
    exact = np.divide(c.converted, c.leads, out=np.zeros_like(c.leads), where=c.leads > 0)
    return np.where(c.leads >= min_support, exact, pooled)


def all_shapley_values(values: np.ndarray, n: int) -> np.ndarray:
    """(2^n x n): channel i's Shapley value in the game on every set S with coalition `values`,
    phi_i(S) = sum over T within S holding i of (|T|-1)! (|S|-|T|)! / |S|! (v(T) - v(T - i)),
    for all S at once: per channel and per size |T|, a subset-sum transform of the marginal gains.
    `values` may have leading axes (replicates): (..., 2^n) gives (..., 2^n, n)."""
    sizes = popcounts(n)
    everything = np.arange(1 << n)
    weight = np.zeros((n + 1, n + 1))  # [|T|, |S|]
    for t in range(1, n + 1):
        for k in range(t, n + 1):
            weight[t, k] = factorial(t - 1) * factorial(k - t) / factorial(k)
    out = np.zeros((*np.shape(values)[:-1], 1 << n, n))
    for i in range(n):
        bit = 1 << i
        holds = (everything & bit) != 0
        gain = np.where(holds, values - values[..., everything & ~bit], 0.0)
        for t in range(1, n + 1):
            out[..., i] += weight[t, sizes] * subset_sums(np.where(sizes == t, gain, 0.0), n)
        out[..., ~holds, i] = 0.0
    return out


def share_matrix(c: Coalitions, channel_sets, min_support: float) -> np.ndarray:
    """(sets x channels): each channel's share of a conversion whose window holds that set. With
    replicates (Coalitions whose counts have a leading axis), (replicates x sets x channels)."""
    sets = np.asarray(channel_sets, dtype=np.int64)
    phi = all_shapley_values(coalition_values(c, min_support), len(c.channels))[..., sets, :]
    return positive_shares(phi, members(sets, len(c.channels)))


def shares(c: Coalitions, channel_sets, min_support: float) -> dict[int, dict[str, float]]:
    """For each non-empty channel set, each member channel's share of a conversion's credit."""
    return share_dicts(share_matrix(c, channel_sets, min_support), channel_sets, c.channels)
