"""Keyed hashes of PII values inside a DuckDB statement, each distinct value hashed once.

HMAC-SHA256 in SQL (`sql_validation`) costs four SHA-256 blocks per value and row, and PII recurs
(the IP of a visitor is on every event of the visit), so the fast path calls `PiiHasher` instead:
DuckDB functions over Arrow vectors that hash each distinct value once per run (a memo), with the
same hash as `sql_validation.pii_hash`, and records the (field, value, hash) of every value it has
not seen before in this run, for `pii.vault` (`drain`). The key stays in this object: it never
reaches SQL text, logs or tables.

A statement has one sink (the events it inserts), so the clear values leave through these functions.
Its memo is only a cache; the vault insert skips hashes the vault already holds.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.ingest.sql_validation import HASH_HEX_CHARS, HASH_PREFIX, hmac_pads

VAULT_PAIRS_SCHEMA = pa.schema([("field", pa.string()), ("value", pa.string()), ("hash", pa.string())])


class PiiHasher:
    """One DuckDB function per PII field, `crm_pii_hash_<i>(value VARCHAR) -> VARCHAR` for
    `fields[i]`: the keyed hash of each value (NULL stays NULL)."""

    def __init__(self, key: bytes, fields: Sequence[str], memo_limit: int = 1_000_000):
        ipad, opad = hmac_pads(key)
        self._inner, self._outer = hashlib.sha256(ipad), hashlib.sha256(opad)
        self.fields = tuple(fields)
        self.memo_limit = memo_limit
        self._memo: dict[str, str] = {}
        self._new: list[tuple[str, str, str]] = []

    def hash(self, value: str) -> str:
        inner = self._inner.copy()
        inner.update(value.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return HASH_PREFIX + outer.hexdigest()[:HASH_HEX_CHARS]

    def for_field(self, field: str) -> Callable[[pa.Array | pa.ChunkedArray], pa.Array]:
        """The function hashing one vector of values of `field`."""
        def hash_values(values: pa.Array | pa.ChunkedArray) -> pa.Array:
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            encoded = values.dictionary_encode()
            memo, hashes = self._memo, []
            for value in encoded.dictionary.to_pylist():
                h = memo.get(value)
                if h is None:
                    h = memo[value] = self.hash(value)
                    self._new.append((field, value, h))
                hashes.append(h)
            if len(memo) > self.memo_limit:  # a cache, not a record: start again rather than grow
                memo.clear()
            return pc.take(pa.array(hashes, pa.string()), encoded.indices)
        return hash_values

    def drain(self) -> pa.Table:
        """The values first seen since the last drain, one row each."""
        new, self._new = self._new, []
        return pa.Table.from_pylist([dict(zip(VAULT_PAIRS_SCHEMA.names, row)) for row in new], schema=VAULT_PAIRS_SCHEMA)

    def forget(self) -> None:
        """Drop what was recorded since the last drain and the memo (their transaction rolled back)."""
        self._new.clear()
        self._memo.clear()
