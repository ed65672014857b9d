"""Channel sets as bit sets, and the lead counts by set the coalition models are fitted on."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Coalitions:
    """Leads and converted leads per channel set (bit i = channels[i]); every set of the 2^n exists
    (most with zero leads)."""

    channels: tuple[str, ...]
    leads: np.ndarray  # float, indexed by bit set
    converted: np.ndarray

    @classmethod
    def from_counts(cls, channels: tuple[str, ...], sets, leads, converted) -> Coalitions:
        size = 1 << len(channels)
        lead_counts, converted_counts = np.zeros(size), np.zeros(size)
        np.add.at(lead_counts, np.asarray(sets, dtype=np.int64), np.asarray(leads, dtype=float))
        np.add.at(converted_counts, np.asarray(sets, dtype=np.int64), np.asarray(converted, dtype=float))
        return cls(channels, lead_counts, converted_counts)

    def resampled(self, rng: np.random.Generator) -> Coalitions:
        """A Poisson bootstrap replicate: each lead drawn Poisson(1) times, so each set's converted and
        unconverted leads are Poisson of their counts (a sum of Poisson(1) is Poisson)."""
        converted = rng.poisson(self.converted).astype(float)
        unconverted = rng.poisson(self.leads - self.converted).astype(float)
        return Coalitions(self.channels, converted + unconverted, converted)

    def members(self, channel_set: int) -> list[int]:
        return [i for i in range(len(self.channels)) if channel_set >> i & 1]


def subset_sums(values: np.ndarray, n: int) -> np.ndarray:
    """For every set S, the sum of values over the subsets of S (the zeta transform, O(n 2^n)),
    along the last axis (leading axes: replicates)."""
    out = np.array(values, dtype=float)
    idx = np.arange(out.shape[-1])
    for i in range(n):
        bit = 1 << i
        has = (idx & bit) != 0
        out[..., has] += out[..., idx[has] ^ bit]
    return out


def members(channel_sets, n: int) -> np.ndarray:
    """(sets x n) booleans: which channels each set holds."""
    return ((np.asarray(channel_sets, dtype=np.int64)[:, None] >> np.arange(n)) & 1).astype(bool)


def positive_shares(values: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Row-wise shares of a conversion over the channels a set holds, in proportion to their positive
    values (summing to 1); even over the set's channels when none is positive. The last axis is
    the channels (leading axes: replicates)."""
    positive = np.where(held, np.clip(values, 0.0, None), 0.0)
    total = positive.sum(axis=-1, keepdims=True)
    even = held / np.maximum(held.sum(axis=-1, keepdims=True), 1)
    return np.where(total > 0, positive / np.where(total > 0, total, 1.0), even)


def share_dicts(shares: np.ndarray, channel_sets, channels: tuple[str, ...]) -> dict[int, dict[str, float]]:
    """{set: {channel: share}} for the non-empty sets, channels the set holds only."""
    held = members(channel_sets, len(channels))
    return {int(s): {channels[i]: float(shares[r, i]) for i in np.flatnonzero(held[r])}
            for r, s in enumerate(channel_sets) if int(s)}


@lru_cache(maxsize=4)
def popcounts(n: int) -> np.ndarray:
    """The number of members of every set of n channels."""
    return np.array([i.bit_count() for i in range(1 << n)], dtype=np.int64)
