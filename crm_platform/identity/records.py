"""Lead records in normal form: the comparable view of each record, built from its clear values.

Normalization runs once per distinct raw value (dictionary-encoded columns): a million records
share far fewer spellings. The frames built here stay inside the identity step; what leaves it
is ids, rule names, scores and keyed hashes.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

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


def map_distinct(values: pa.ChunkedArray | pa.Array, fn: Callable[[str], str | None]) -> np.ndarray:
    """fn over each distinct value, spread back over the column (object array, None for null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values.dictionary_encode()
    mapped = np.array([fn(v) for v in encoded.dictionary.to_pylist()] + [None], dtype=object)
    idx = encoded.indices.fill_null(len(mapped) - 1).to_numpy(zero_copy_only=False)
    return mapped[idx]


def normalized_records(raw: pa.Table) -> pd.DataFrame:
    """One row per lead record (`inputs.lead_records`), in normal form, sorted by lead_id."""
    out = pd.DataFrame({"lead_id": pd.Series(raw.column("lead_id").to_pylist(), dtype=object),
                        "first_seen": raw.column("first_seen").to_pandas()})
    for col, (field, fn) in COLUMNS.items():
        out[col] = pd.Series(map_distinct(raw.column(field), fn), dtype=object)  # None, not NaN
    out["email_domain"] = pd.Series([e.split("@", 1)[1] if e else None for e in out["email"]], dtype=object)
    out["phone"] = pd.Series(normalized_phones(raw.column("phone"), out["country"].to_numpy()), dtype=object)
    return out.sort_values("lead_id", kind="stable").reset_index(drop=True)


def normalized_phones(values: pa.ChunkedArray | pa.Array, regions) -> np.ndarray:
    """E.164 per value, parsed in the record's country (a national number needs one), once per
    distinct (number, country)."""
    pairs = pd.DataFrame({"v": pd.Series(values.to_pandas(), dtype=object).to_numpy(),
                          "r": pd.Series(regions, dtype=object).to_numpy()})
    codes, uniques = pd.MultiIndex.from_frame(pairs.fillna({"r": ""})).factorize()
    mapped = np.array([norm.phone(v, r or None) if isinstance(v, str) else None for v, r in uniques] + [None],
                      dtype=object)
    return mapped[np.where(codes < 0, len(mapped) - 1, codes)]


def normalized_contacts(values: pa.Table, regions: dict[str, str | None]) -> pd.DataFrame:
    """(lead_id, field, key): every e-mail and phone a record carried, normalized; unusable ones dropped."""
    lead = pd.Series(values.column("lead_id").to_pandas(), dtype=object)
    field = values.column("field").to_pandas()
    is_email = (field == "email").to_numpy()
    keys = np.empty(len(lead), dtype=object)
    keys[is_email] = map_distinct(values.column("value").filter(pa.array(is_email)), norm.email)
    phones = values.column("value").filter(pa.array(~is_email))
    keys[~is_email] = normalized_phones(phones, lead[~is_email].map(regions).to_numpy())
    out = pd.DataFrame({"lead_id": lead.to_numpy(), "field": field.astype(object).to_numpy(), "key": keys})
    return out.dropna(subset=["key"]).drop_duplicates().reset_index(drop=True)


def fingerprints(records: pd.DataFrame) -> pd.Series:
    """A digest of each record's normal form: a record whose digest changed is compared again."""
    cols = ["lead_id", *COLUMNS, "email_domain", "phone"]
    digest = pd.util.hash_pandas_object(records[cols].astype("string"), index=False)  # fixed key: stable
    return pd.Series([f"{d:016x}" for d in digest], index=records.index, dtype=object)
