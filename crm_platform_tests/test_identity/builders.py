"""Small builders for identity unit tests: normalized records and contact values as the identity step
holds them."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from crm_platform.identity.records import normalized_contacts, normalized_records


def records(*rows: dict) -> pd.DataFrame:
    """Raw lead records (lead_id, first_seen and any of the identity fields) in normal form."""
    fields = ("email", "phone", "first_name", "last_name", "street", "company", "city", "postal_code", "state",
              "country")
    data = {"lead_id": [r["lead_id"] for r in rows],
            "first_seen": pd.to_datetime([r.get("first_seen", "2026-01-01") for r in rows])}
    table = pa.table({"lead_id": pa.array(data["lead_id"], pa.string()), "first_seen": data["first_seen"],
                      **{f: pa.array([r.get(f) for r in rows], pa.string()) for f in fields}})
    return normalized_records(table)


def contacts(recs: pd.DataFrame, *rows: dict) -> pd.DataFrame:
    """Every e-mail and phone of the raw rows, normalized, with first_seen from `recs`."""
    values = [(r["lead_id"], f, r[f]) for r in rows for f in ("email", "phone") if r.get(f)]
    table = pa.table({"lead_id": pa.array([v[0] for v in values], pa.string()),
                      "field": pa.array([v[1] for v in values], pa.string()),
                      "value": pa.array([v[2] for v in values], pa.string())})
    regions = pd.Series(recs["country"].to_numpy(dtype=object, na_value=None), index=recs["lead_id"])
    out = normalized_contacts(table, regions)
    return out.merge(recs[["lead_id", "first_seen"]], on="lead_id", how="left")
