"""The Markov-chain model, exactly: removal effects from the absorbing chain of journeys.

A journey is a conversion's (or an unconverted lead's) channels in time order with consecutive
repeats collapsed, ending in conversion or in null. For order k the chain's states are the last k
channels seen (a journey's first states hold fewer), plus start, conversion and null. Transition
probabilities are the observed transition counts normalized per state. The probability of reaching
conversion from start solves (I - Q) x = r over the transient states (Q transient-to-transient,
r transient-to-conversion). Removing a channel sends every transition into a state that holds it to
null; its removal effect is the relative drop of that probability. No simulation: one sparse solve
per channel.

The point estimate is fitted on transition counts the engine aggregated (transitions.sql), so its
cost depends on the states, not on the touches. The bootstrap resamples journeys, so it works on
distinct paths (`PathChain`), whose transitions come out of one sparse product per replicate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
SEPARATOR = ">"


@dataclass(frozen=True)
class Chain:
    """Transition counts between transient states (state 0 is start), and into conversion and null."""

    states: tuple[tuple[str, ...], ...]
    source: np.ndarray  # transient -> transient moves: from-state index
    target: np.ndarray  # to-state index
    moves: np.ndarray  # counts
    to_conversion: np.ndarray  # per state
    to_null: np.ndarray

    @classmethod
    def from_transitions(cls, table: pa.Table) -> Chain:
        """The chain of the engine's transition counts (from_state, to_state, transitions)."""
        index: dict[str, int] = {START: 0}
        src, dst, counts = [], [], []
        froms, tos = table["from_state"].to_pylist(), table["to_state"].to_pylist()
        weights = np.asarray(table["transitions"], dtype=float)
        ends = []
        for f, t, w in zip(froms, tos, weights):
            a = index.setdefault(f, len(index))
            if t in (CONVERSION, NULL):
                ends.append((a, t, w))
                continue
            src.append(a)
            dst.append(index.setdefault(t, len(index)))
            counts.append(w)
        size = len(index)
        to_conversion, to_null = np.zeros(size), np.zeros(size)
        for a, t, w in ends:
            (to_conversion if t == CONVERSION else to_null)[a] += w
        states = tuple(() if s == START else tuple(s.split(SEPARATOR)) for s in sorted(index, key=index.get))
        return cls(states, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(counts, dtype=float),
                   to_conversion, to_null)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted({c for s in self.states for c in s}))

    def conversion_probabilities(self) -> dict[str | None, float]:
        """P(conversion from start) for the whole chain (key None) and with each channel removed."""
        n = len(self.states)
        out_total = np.bincount(self.source, weights=self.moves, minlength=n) + self.to_conversion + self.to_null
        safe = np.where(out_total > 0, out_total, 1.0)
        q = sp.csr_matrix((self.moves / safe[self.source], (self.source, self.target)), shape=(n, n))
        r = self.to_conversion / safe
        result: dict[str | None, float] = {None: _absorb(q, r, np.ones(n, dtype=bool))}
        for channel in self.channels:
            result[channel] = _absorb(q, r, np.array([channel not in s for s in self.states]))
        return result

    def removal_effects(self) -> dict[str, float]:
        """Each channel's removal effect: 1 - P(conversion without it) / P(conversion)."""
        p = self.conversion_probabilities()
        base = p[None]
        if base <= 0:
            return {c: 0.0 for c in self.channels}
        return {c: max(0.0, 1.0 - p[c] / base) for c in self.channels}


@dataclass(frozen=True)
class Paths:
    """Distinct journeys with their conversion, null and revenue counts (paths.sql)."""
    paths: list[str]
    conversions: np.ndarray
    nulls: np.ndarray
    revenue: np.ndarray

    @classmethod
    def from_arrow(cls, t: pa.Table) -> Paths:
        return cls(t["path"].to_pylist(), np.asarray(t["conversions"], dtype=float),
                   np.asarray(t["nulls"], dtype=float), np.asarray(t["revenue"], dtype=float))


@dataclass(frozen=True)
class PathChain:
    """The chain's structure for a set of distinct paths: each path's transitions between transient
    states and its last state, so that any path counts give the chain by sparse products."""

    states: tuple[tuple[str, ...], ...]
    incidence: sp.csr_matrix  # paths x transitions: how often a path makes each transition
    transitions: np.ndarray  # (transition, 2): from-state and to-state indexes
    last_state: np.ndarray  # per path: the state it ends in (then conversion or null)

    @classmethod
    def build(cls, paths: list[str], order: int = 1) -> PathChain:
        if not 1 <= order <= 3:
            raise ValueError(f"Markov order must be 1, 2 or 3, not {order}")
        index: dict[tuple[str, ...], int] = {(): 0}
        pairs: dict[tuple[int, int], int] = {}
        rows, cols, last = [], [], []
        for p, path in enumerate(paths):
            prev, history = 0, ()
            for channel in (c for c in path.split(SEPARATOR) if c):
                history = (history + (channel,))[-order:]
                state = index.setdefault(history, len(index))
                rows.append(p)
                cols.append(pairs.setdefault((prev, state), len(pairs)))
                prev = state
            last.append(prev)
        incidence = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(paths), len(pairs)))
        incidence.sum_duplicates()
        return cls(tuple(sorted(index, key=index.get)), incidence,
                   np.array(list(pairs), dtype=np.int64).reshape(-1, 2), np.array(last, dtype=np.int64))

    def chain(self, conversions: np.ndarray, nulls: np.ndarray) -> Chain:
        """The chain of these counts per path."""
        conversions, nulls = np.asarray(conversions, dtype=float), np.asarray(nulls, dtype=float)
        n = len(self.states)
        return Chain(self.states, self.transitions[:, 0], self.transitions[:, 1],
                     self.incidence.T @ (conversions + nulls),
                     np.bincount(self.last_state, weights=conversions, minlength=n),
                     np.bincount(self.last_state, weights=nulls, minlength=n))

    def removal_effects(self, conversions: np.ndarray, nulls: np.ndarray) -> dict[str, float]:
        return self.chain(conversions, nulls).removal_effects()


def _absorb(q: sp.csr_matrix, r: np.ndarray, keep: np.ndarray) -> float:
    """P(conversion from start) when only the `keep` states remain (the others lead to null)."""
    if not keep[0]:
        return 0.0
    idx = np.flatnonzero(keep)
    system = sp.identity(len(idx), format="csc") - q[idx][:, idx].tocsc()
    return float(np.atleast_1d(spsolve(system, r[idx]))[0])


def state_expression(order: int, column: str = "channel", window: str = "") -> str:
    """SQL of a state: the last `order` channels up to this one, joined by '>' (fewer at the start)."""
    parts = [f"coalesce(lag({column}, {k}) OVER ({window}) || '{SEPARATOR}', '')" for k in range(order - 1, 0, -1)]
    return " || ".join([*parts, column])


def summary_conversions(effects: dict[str, float], total: float) -> dict[str, float]:
    """CONTRACT §7: a channel's conversions are total x its removal effect / the sum of removal effects."""
    s = sum(effects.values())
    if s <= 0:
        return {c: 0.0 for c in effects}
    return {c: total * e / s for c, e in effects.items()}
