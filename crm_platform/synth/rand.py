"""Seeded randomness: independent numpy streams per purpose and chunk, and cheap scalar draws.

A scalar call on a numpy Generator costs about a microsecond; the simulation makes hundreds of
draws per person, so `Draws` takes them in blocks and hands them out from a Python list.
Everything is consumed in a fixed order, so the same seed gives the same values.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LOWER32 = "0123456789abcdefghjkmnpqrstvwxyz"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Purposes of the independent streams (SeedSequence spawn keys).
WORLD, CHUNK, WRITE, FINAL = 1, 2, 3, 4


def generator(seed: int, *key: int) -> np.random.Generator:
    """A Generator for one purpose; streams for different keys are independent."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class Draws:
    """Buffered scalar draws in a fixed order from one Generator."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16):
        self.rng = rng
        self.block = block
        self._u: list[float] = []
        self._i = 0
        self._n: list[float] = []
        self._j = 0
        self._tok: list[str] = []
        self._k = 0

    def u(self) -> float:
        """Uniform in [0, 1)."""
        i = self._i
        if i >= len(self._u):
            self._u = self.rng.random(self.block).tolist()
            i = 0
        self._i = i + 1
        return self._u[i]

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> float:
        j = self._j
        if j >= len(self._n):
            self._n = self.rng.standard_normal(self.block // 4).tolist()
            j = 0
        self._j = j + 1
        return mean + sd * self._n[j]

    def chance(self, p: float) -> bool:
        return self.u() < p

    def below(self, n: int) -> int:
        return int(self.u() * n)

    def between(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.u()

    def int_between(self, lo: int, hi: int) -> int:
        """Integer in [lo, hi] inclusive."""
        return lo + int(self.u() * (hi - lo + 1))

    def pick(self, seq):
        return seq[int(self.u() * len(seq))]

    def weighted(self, items, cum):
        """Pick from `items` with cumulative weights `cum` (see `cumulative`)."""
        return items[bisect.bisect_right(cum, self.u() * cum[-1])]

    def exp(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.u())

    def poisson(self, lam: float) -> int:
        """Knuth's method: fine for the small rates used here, and exactly reproducible."""
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.normal(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, self.u()
        while p > limit:
            k += 1
            p *= self.u()
        return k

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(self.normal(mu, sigma))

    def token(self) -> str:
        """20 Crockford base32 characters (100 random bits), drawn in blocks."""
        k = self._k
        if k >= len(self._tok):
            codes = self.rng.integers(0, 32, size=(self.block // 8, 20), dtype=np.uint8)
            table = np.frombuffer(CROCKFORD.encode(), dtype=np.uint8)
            self._tok = table[codes].view("S20").ravel().astype(str).tolist()
            k = 0
        self._k = k + 1
        return self._tok[k]

    def event_id(self) -> str:
        return "evt_" + self.token()

    def short_token(self, n: int = 12) -> str:
        return self.token()[:n].translate(_LOWER_TABLE)

    def shuffle(self, seq: list) -> None:
        """In-place Fisher-Yates on our own draws."""
        for i in range(len(seq) - 1, 0, -1):
            j = int(self.u() * (i + 1))
            seq[i], seq[j] = seq[j], seq[i]


_LOWER_TABLE = str.maketrans(CROCKFORD, _LOWER32)


def cumulative(weights) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    return "".join(reversed(chars))


def salesforce_id(prefix: str, n: int, salt: int) -> str:
    """An 18-character Salesforce id: 15 case-sensitive characters plus the real 3-character
    case-encoding checksum. `n` must be unique per prefix; `salt` scatters the sequence."""
    salt += sum(ord(c) * 977 ** i for i, c in enumerate(prefix))  # each object type its own sequence
    body = prefix + "5g" + "0" + base62((n * 7_919_130_263 + salt) % 62**9, 9)
    suffix = ""
    for chunk in (body[0:5], body[5:10], body[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return body + suffix
