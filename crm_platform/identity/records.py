"""Lead records in normal form: the comparable view of each record, built from its clear values.

Normalization runs once per distinct raw value (dictionary-encoded columns): a million records
share far fewer spellings. The frames built here stay inside the identity step; what leaves it
is ids, rule names, scores and keyed hashes.
"""
from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.identity import normalize as norm

# Normalized columns of a record and the raw field each comes from.
COLUMNS = {
    "first_name": ("first_name", norm.name),
    "given_name": ("first_name", norm.given_name),
    "last_name": ("last_name", norm.name),
    "email": ("email", norm.email),
    "company": ("company", norm.company),
    "street": ("street", norm.street),
    "city": ("city", norm.city),
    "postal_code": ("postal_code", norm.postal_code),
    "country": ("country", norm.country_code),
}


def map_distinct(values: pa.ChunkedArray | pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    """fn over each distinct value, spread back over the column (an Arrow string array)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values.dictionary_encode()
    mapped = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, encoded.indices)


def arrow_strings(values: pa.Array | np.ndarray) -> pd.Series:
    """An Arrow-backed string column (pandas' `str`): a few bytes per value instead of a Python
    object each, which decides whether a million records fit. Missing values read as NaN; code that
    needs None converts (`.to_numpy(dtype=object, na_value=None)`)."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, pa.string(), from_pandas=True)
    return pd.Series(values.to_pandas(), dtype="str")


def is_in(values: pd.Series, among: pa.Array) -> np.ndarray:
    """`values.isin(among)`, in Arrow: pandas' Arrow strings make a Python scalar of every member of
    `among` (seconds for the ids of 300k records)."""
    return pc.is_in(pa.array(values, pa.string(), from_pandas=True), value_set=among).to_numpy(zero_copy_only=False)


def normalized_records(raw: pa.Table, phones: PhoneParses | None = None) -> pd.DataFrame:
    """One row per lead record (`inputs.lead_records`), in normal form, sorted by lead_id."""
    raw = raw.sort_by("lead_id")
    out = pd.DataFrame({"lead_id": arrow_strings(raw.column("lead_id").combine_chunks()),
                        "first_seen": raw.column("first_seen").to_pandas()})
    for col, (field, fn) in COLUMNS.items():
        out[col] = arrow_strings(map_distinct(raw.column(field), fn))
    out["email_domain"] = arrow_strings(pc.list_element(pc.split_pattern(pa.array(out["email"], pa.string(), from_pandas=True),
                                                                    "@", max_splits=1), 1))
    out["phone"] = arrow_strings((phones or PhoneParses())(raw.column("phone"), out["country"].to_numpy(dtype=object, na_value=None)))
    return out


class PhoneParses:
    """E.164 per value, parsed in the record's country (a national number needs one), once per
    distinct (number, country) across the calls of one normalization: a record's contacts carry its
    own number again, and parsing is the costly part (at a million leads, 2.7M distinct numbers
    outgrow `normalize.phone`'s cache, which parsed them all twice). It keeps the last call's
    numbers only: records, then their contacts."""

    def __init__(self):
        self._seen: pd.MultiIndex | None = None
        self._e164: np.ndarray | None = None

    def __call__(self, values: pa.ChunkedArray | pa.Array, regions) -> np.ndarray:
        pairs = pd.DataFrame({"v": pd.Series(values.to_pandas(), dtype=object).to_numpy(),
                              "r": pd.Series(regions, dtype=object).to_numpy()})
        codes, uniques = pd.MultiIndex.from_frame(pairs.fillna({"r": ""})).factorize()
        mapped = np.full(len(uniques) + 1, None, dtype=object)  # the last slot: no number
        todo = np.arange(len(uniques))
        if self._seen is not None and len(uniques):
            at = self._seen.get_indexer(uniques)
            known = at >= 0
            mapped[:-1][known] = self._e164[at[known]]
            todo = todo[~known]
        mapped[todo] = [norm.phone(v, r or None) if isinstance(v, str) else None for v, r in uniques[todo]]
        self._seen, self._e164 = uniques, mapped[:-1]
        return mapped[np.where(codes < 0, len(mapped) - 1, codes)]


def normalized_contacts(values: pa.Table, regions: pd.Series, phones: PhoneParses | None = None) -> pd.DataFrame:
    """(lead_id, field, key): every e-mail and phone a record carried, normalized; unusable ones
    dropped. `regions`: lead_id -> country code."""
    lead = values.column("lead_id").combine_chunks()
    is_email = pc.equal(values.column("field"), "email").combine_chunks()
    email_keys = map_distinct(values.column("value").filter(is_email), norm.email)
    phone_leads = lead.filter(pc.invert(is_email))
    phone_regions = regions.reindex(phone_leads.to_pandas()).to_numpy(dtype=object, na_value=None)
    phone_keys = (phones or PhoneParses())(values.column("value").filter(pc.invert(is_email)), phone_regions)
    out = pd.DataFrame({
        "lead_id": arrow_strings(pa.concat_arrays([lead.filter(is_email), phone_leads])),
        "field": arrow_strings(np.array(["email"] * len(email_keys) + ["phone"] * len(phone_keys), dtype=object)),
        "key": arrow_strings(pa.concat_arrays([email_keys, pa.array(phone_keys, pa.string(), from_pandas=True)]))})
    return out.dropna(subset=["key"]).drop_duplicates().reset_index(drop=True)


def arrow_sql(query: str, tables: dict[str, pa.Table], params: list | None = None) -> pa.Table:
    """`query` over Arrow tables in an embedded DuckDB (columnar joins and sorts over millions of
    rows, no Python object per value)."""
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(query, params=params).to_arrow_table()
    finally:
        con.close()


def fingerprints(records: pd.DataFrame) -> pd.Series:
    """A digest of each record's normal form (md5 in DuckDB, over the Arrow columns): a record whose
    digest changed is compared again."""
    cols = ["lead_id", *COLUMNS, "email_domain", "phone"]
    table = pa.table({c: pa.array(records[c], pa.string(), from_pandas=True) for c in cols})
    text = ", ".join(f"coalesce({c}, chr(0))" for c in cols)  # a missing value differs from any text
    digest = arrow_sql(f"SELECT left(md5(concat_ws(chr(31), {text})), 16) AS d FROM r", {"r": table})
    return arrow_strings(digest.column("d").combine_chunks()).set_axis(records.index)
