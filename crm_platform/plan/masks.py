"""Vectorized facts about one column of JSON values (an object-dtype pandas Series).

Checks ask the same questions of a column many times (is it a string? how long? does it match?), so
a `ColumnView` answers each once, lazily, with whole-array operations: pandas' C type inference for
homogeneous columns (the common case), numpy comparisons of type objects otherwise, pyarrow (RE2)
for lengths and regexes. No per-cell Python functions.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cached_property
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import infer_dtype

from crm_platform.plan.formats import re2_pattern

# JSON kinds of a cell. Integers and floats are told apart because `integer` accepts only integral
# floats; bool is its own kind because Python's bool is an int and JSON's is not.
NULL, STR, BOOL, INT, FLOAT, OBJECT, ARRAY, OTHER = range(8)
KIND_NAMES = ("null", "string", "boolean", "integer", "number", "object", "array", "other")

_TYPE_KIND = ((str, STR), (bool, BOOL), (int, INT), (float, FLOAT), (dict, OBJECT), (list, ARRAY))
# When pandas infers one kind for every non-null cell, the whole column gets it at once.
_INFERRED_KIND = {"string": STR, "integer": INT, "floating": FLOAT, "boolean": BOOL}
_type_of = np.frompyfunc(type, 1, 1)
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int16)


def json_kind(value: object) -> str:
    """JSON type name of one Python value, for messages."""
    for t, kind in _TYPE_KIND:
        if type(value) is t:
            return KIND_NAMES[kind]
    return "null" if value is None else type(value).__name__


def classify(values: np.ndarray) -> np.ndarray:
    """int8 kind code of every cell of an object array."""
    n = len(values)
    null = pd.isna(values)
    inferred = infer_dtype(values, skipna=True) if n else "empty"
    if inferred == "empty":
        return np.full(n, NULL, dtype=np.int8)
    if inferred in _INFERRED_KIND:
        return np.where(null, NULL, _INFERRED_KIND[inferred]).astype(np.int8)
    # Mixed column: compare each cell's exact type (one C loop per kind; bool is not int here).
    types = _type_of(values)
    kinds = np.full(n, OTHER, dtype=np.int8)
    for t, kind in _TYPE_KIND:
        kinds[types == t] = kind
    kinds[null] = NULL
    return kinds


def _arrow_strings(values: np.ndarray) -> pa.Array | None:
    """`values` as an Arrow string array if every cell is a string or null, else None."""
    try:
        arr = pa.array(values, from_pandas=True)  # NaN (a key absent from a dict) becomes null
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # mixed types: the caller classifies cell by cell
    if arr.type == pa.string():
        return arr
    return arr.cast(pa.string()) if arr.type == pa.null() else None


class ColumnView:
    """Lazily computed facts about one column; every array is aligned with the column."""

    def __init__(self, values: np.ndarray, expect_strings: bool = False):
        self.values = values
        self._expect_strings = expect_strings

    @classmethod
    def of(cls, series: pd.Series, expect_strings: bool = False) -> "ColumnView":
        """The view of `series`, shared by all checks of the column inside `shared_views()`.
        `expect_strings`: the rule wants strings, so try the one-pass Arrow route first."""
        cache = getattr(_active, "cache", None)
        values = series.to_numpy(dtype=object, copy=False)
        if cache is None:
            return cls(values, expect_strings)
        # Checks of one column receive views of the same memory: key on the data pointer.
        key = (series.name, values.__array_interface__["data"][0], len(values), values.strides)
        view = cache.get(key)
        if view is None:
            view = cache[key] = cls(values, expect_strings)
        return view

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def kinds(self) -> np.ndarray:
        if self._expect_strings:
            # One pass over the cells both types them and builds the Arrow strings the length and
            # regex checks need (each pass over object cells costs ~60 ns a cell here).
            strings = _arrow_strings(self.values)
            if strings is not None:
                self.__dict__["_strings"] = strings
                return np.where(pc.is_valid(strings).to_numpy(zero_copy_only=False), STR, NULL).astype(np.int8)
        return classify(self.values)

    @cached_property
    def is_null(self) -> np.ndarray:
        return self.kinds == NULL

    @cached_property
    def is_str(self) -> np.ndarray:
        return self.kinds == STR

    @cached_property
    def _strings(self) -> pa.Array:
        """The column as an Arrow string array, null where the cell is not a string (for RE2 and
        UTF-8 lengths). A column of strings and nulls converts as is, without a filtered copy."""
        cells = self.values if not (self.kinds > STR).any() else np.where(self.is_str, self.values, None)
        # Letting Arrow infer the type is ~4x faster here than passing pa.string(); an all-null
        # column infers as null and is cast.
        arr = pa.array(cells, from_pandas=True)
        return arr if arr.type == pa.string() else arr.cast(pa.string())

    @cached_property
    def lengths(self) -> np.ndarray:
        """Length in code points (as JSON Schema counts) of each string cell; -1 elsewhere."""
        if not self.is_str.any():
            return np.full(len(self.values), -1, dtype=np.int64)
        return pc.fill_null(pc.utf8_length(self._strings), -1).to_numpy(zero_copy_only=False)

    def full_match(self, body: str) -> np.ndarray:
        """True where the cell is a string matching `body` in full (RE2)."""
        if not self.is_str.any():
            return np.zeros(len(self.values), dtype=bool)
        matched = pc.match_substring_regex(self._strings, re2_pattern(body))
        return pc.fill_null(matched, False).to_numpy(zero_copy_only=False)

    def string_in(self, allowed: tuple[str, ...]) -> np.ndarray:
        """True where the cell is a string among `allowed`."""
        if not self.is_str.any():
            return np.zeros(len(self.values), dtype=bool)
        found = pc.is_in(self._strings, value_set=pa.array(list(allowed), type=pa.string()))
        return pc.fill_null(found, False).to_numpy(zero_copy_only=False) & self.is_str

    def valid_calendar_dates(self) -> np.ndarray:
        """For strings starting `YYYY-MM-DD` (already checked by the timestamp regex): is that a
        real date? Year 0 is not (RFC 3339); 29 February only in leap years."""
        if not self.is_str.any():
            return np.zeros(len(self.values), dtype=bool)
        s = self._strings

        def part(start: int, stop: int) -> np.ndarray:
            digits = pc.utf8_slice_codeunits(s, start, stop)
            # Only cells that passed the regex are used; others may not be digits, so parse leniently.
            digits = pc.fill_null(pc.if_else(pc.match_substring_regex(digits, "^[0-9]+$"), digits, "0"), "0")
            return pc.cast(digits, pa.int32()).to_numpy(zero_copy_only=False)

        year, month, day = part(0, 4), part(5, 7), part(8, 10)
        month_ok = (month >= 1) & (month <= 12)
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        days = _DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
        return self.is_str & (year >= 1) & month_ok & (day >= 1) & (day <= days)

    @cached_property
    def is_number(self) -> np.ndarray:
        return (self.kinds == INT) | (self.kinds == FLOAT)

    @cached_property
    def numbers(self) -> np.ndarray:
        """float64 of every int/float cell, NaN elsewhere (integers beyond float range become ±inf)."""
        out = np.full(len(self.values), np.nan)
        mask = self.is_number
        if mask.any():
            subset = self.values[mask]
            try:
                out[mask] = subset.astype(np.float64)
            except OverflowError:  # an integer with hundreds of digits: keep its sign
                out[mask] = [float(v) if abs(v) < 1e308 else (np.inf if v > 0 else -np.inf) for v in subset]
        return out

    @cached_property
    def is_integral(self) -> np.ndarray:
        """JSON Schema's `integer`: an int, or a float with no fractional part (3.0)."""
        floats = self.kinds == FLOAT
        integral_float = floats & np.isfinite(self.numbers) & (np.floor(self.numbers) == self.numbers)
        return (self.kinds == INT) | integral_float


_active = threading.local()


@contextmanager
def shared_views() -> Iterator[None]:
    """Within this block, checks of the same column share one `ColumnView` (one classification,
    one Arrow conversion) instead of recomputing it per check."""
    previous = getattr(_active, "cache", None)
    _active.cache = {}
    try:
        yield
    finally:
        _active.cache = previous
