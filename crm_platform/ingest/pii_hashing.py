"""Keyed hashes of PII values inside a DuckDB statement, each distinct value hashed once.

HMAC-SHA256 in SQL (`sql_validation`) costs four SHA-256 blocks per value and row, and PII recurs
(the IP of a visitor is on every event of the visit), so the fast path calls `PiiHasher` instead:
a DuckDB function over Arrow vectors that hashes each distinct value once per run (a memo), with the
same hash as `sql_validation.pii_hash`, and records the (field, value, hash) of every value it has
not seen before in this run, for `pii.vault` (`drain`). The key stays in this object: it never
reaches SQL text, logs or tables.

A statement has one sink (the events it inserts), so the clear values leave through this function.
Its memo is only a cache; the vault insert skips hashes the vault already holds.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.ingest.sql_validation import HASH_HEX_CHARS, HASH_PREFIX, hmac_pads

VAULT_PAIRS_SCHEMA = pa.schema([("field", pa.string()), ("value", pa.string()), ("hash", pa.string())])


class PiiHasher:
    """`crm_pii_hashes(values VARCHAR[]) -> VARCHAR[]`: the hash of each value of a fixed-length list
    whose i-th element is a value of field `fields[i]` (NULL stays NULL)."""

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

    def __call__(self, lists: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(lists, pa.ChunkedArray):
            lists = lists.combine_chunks()
        n_slots = len(self.fields)
        start, stop = lists.offsets[0].as_py(), lists.offsets[-1].as_py()
        offsets = pc.subtract(lists.offsets, pa.scalar(start, lists.offsets.type))
        values = lists.values.slice(start, stop - start)
        if len(values) != n_slots * (len(lists) - lists.null_count):
            raise ValueError(f"expected lists of {n_slots} values")
        encoded = values.dictionary_encode()
        memo, hashes, first = self._memo, [], None
        for k, value in enumerate(encoded.dictionary.to_pylist()):
            h = memo.get(value)
            if h is None:
                if first is None:  # where each distinct value first occurs: its position tells its field
                    codes, positions = np.unique(encoded.indices.fill_null(-1).to_numpy(), return_index=True)
                    first = dict(zip(codes.tolist(), positions.tolist()))
                h = memo[value] = self.hash(value)
                self._new.append((self.fields[first[k] % n_slots], value, h))
            hashes.append(h)
        if len(memo) > self.memo_limit:  # a cache, not a record: start again rather than grow
            memo.clear()
        hashed = pc.take(pa.array(hashes, pa.string()), encoded.indices)
        return pa.ListArray.from_arrays(offsets, hashed, mask=lists.is_null())

    def drain(self) -> pa.Table:
        """The values first seen since the last drain, one row each."""
        new, self._new = self._new, []
        return pa.Table.from_pylist([dict(zip(VAULT_PAIRS_SCHEMA.names, row)) for row in new], schema=VAULT_PAIRS_SCHEMA)

    def forget(self) -> None:
        """Drop what was recorded since the last drain and the memo (their transaction rolled back)."""
        self._new.clear()
        self._memo.clear()
