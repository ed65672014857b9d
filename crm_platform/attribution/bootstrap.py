"""Bootstrap confidence intervals: seeded Poisson resampling of leads (each lead drawn Poisson(1)
times, the streaming form of resampling with replacement).

Rule-based models keep their rules, so a replicate re-weights each lead's credits. Data-driven
models are refitted on every replicate, on resampled aggregates: a set of n identical units drawn
Poisson(1) each is drawn Poisson(n) in all, so resampling path and channel-set counts is the same
draw as resampling the leads behind them. A replicate's revenue scales each aggregate's revenue by
its resampled share of conversions. Intervals are percentiles of the replicates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from crm_platform.attribution import regression, shapley
from crm_platform.attribution.coalitions import Coalitions
from crm_platform.attribution.config import Bootstrap, Models
from crm_platform.attribution.markov import PathChain, Paths, summary_conversions


@dataclass(frozen=True)
class Replicates:
    """Per replicate (rows) and column (a (model, channel) key): conversions and revenue."""
    conversions: np.ndarray
    revenue: np.ndarray

    def interval(self, confidence: float) -> tuple[np.ndarray, ...]:
        if not len(self.conversions):
            nan = np.full(self.conversions.shape[1], np.nan)
            return nan, nan, nan, nan
        q = [(1 - confidence) / 2, 1 - (1 - confidence) / 2]
        c = np.quantile(self.conversions, q, axis=0)
        r = np.quantile(self.revenue, q, axis=0)
        return c[0], c[1], r[0], r[1]


def rule_replicates(lead: np.ndarray, key: np.ndarray, credit: np.ndarray, revenue: np.ndarray, keys: int,
                    settings: Bootstrap) -> Replicates:
    """`lead`, `key`, `credit`, `revenue`: one row per (lead, model, channel) credit sum. A replicate is
    one sparse product of the (key x lead) credit matrix with the leads' Poisson weights."""
    rng = np.random.default_rng(settings.seed)
    leads = int(lead.max()) + 1 if len(lead) else 0
    stacked = sp.csr_matrix((np.concatenate([credit, revenue]), (np.concatenate([key, key + keys]),
                                                                 np.concatenate([lead, lead]))),
                            shape=(2 * keys, leads))
    totals = np.zeros((settings.replicates, 2 * keys))
    for b in range(settings.replicates):
        totals[b] = stacked @ rng.poisson(1.0, leads).astype(np.float64)
    return Replicates(totals[:, :keys], totals[:, keys:])


def _scaled_revenue(revenue: np.ndarray, counts: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    return revenue * np.divide(drawn, counts, out=np.zeros_like(revenue), where=counts > 0)


def markov_replicates(chain: PathChain, paths: Paths, channels: tuple[str, ...], settings: Bootstrap) -> Replicates:
    rng = np.random.default_rng(settings.seed + 1)
    conv = np.zeros((settings.replicates, len(channels)))
    rev = np.zeros((settings.replicates, len(channels)))
    for b in range(settings.replicates):
        c = rng.poisson(paths.conversions).astype(float)
        n = rng.poisson(paths.nulls).astype(float)
        effects = chain.removal_effects(c, n)
        totals = summary_conversions(effects, c.sum())
        revenue = summary_conversions(effects, _scaled_revenue(paths.revenue, paths.conversions, c).sum())
        conv[b] = [totals.get(ch, 0.0) for ch in channels]
        rev[b] = [revenue.get(ch, 0.0) for ch in channels]
    return Replicates(conv, rev)


def coalition_replicates(model: str, coalitions: Coalitions, sets: np.ndarray, set_conversions: np.ndarray,
                         set_revenue: np.ndarray, models: Models, settings: Bootstrap) -> Replicates:
    """Shapley or logistic regression refitted on resampled leads, applied to resampled conversions
    by channel set (a conversion without touches, the empty set, goes to `direct`)."""
    rng = np.random.default_rng(settings.seed + (2 if model == "shapley" else 3))
    channels = coalitions.channels
    empty = np.asarray(sets) == 0
    direct = np.zeros(len(channels))
    direct[channels.index("direct")] = 1.0
    samples, drawn = [], []
    for _ in range(settings.replicates):  # the draws in the order of one replicate after the other
        samples.append(coalitions.resampled(rng))
        drawn.append(rng.poisson(set_conversions).astype(float))
    if not samples:
        return Replicates(np.zeros((0, len(channels))), np.zeros((0, len(channels))))
    if model == "shapley":  # every replicate's game at once (replicates x sets x channels)
        stacked = Coalitions(channels, np.stack([c.leads for c in samples]), np.stack([c.converted for c in samples]))
        shares = shapley.share_matrix(stacked, sets, models.shapley_min_support)
    else:
        shares = np.stack([regression.share_matrix(regression.fit(c, models.regularization)[0], channels, sets)
                           for c in samples])
    shares[:, empty] = direct
    drawn = np.stack(drawn)
    revenue = np.stack([_scaled_revenue(set_revenue, set_conversions, d) for d in drawn])
    return Replicates(np.einsum("bs,bsc->bc", drawn, shares), np.einsum("bs,bsc->bc", revenue, shares))
