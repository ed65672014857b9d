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
    for f in fields:
        data[f] = [r.get(f) for r in rows]
    return normalized_records(pa.table(data))


def contacts(recs: pd.DataFrame, *rows: dict) -> pd.DataFrame:
    """Every e-mail and phone of the raw rows, normalized, with first_seen from `recs`."""
    values = [(r["lead_id"], f, r[f]) for r in rows for f in ("email", "phone") if r.get(f)]
    table = pa.table({"lead_id": [v[0] for v in values], "field": [v[1] for v in values],
                      "value": [v[2] for v in values]})
    out = normalized_contacts(table, dict(zip(recs["lead_id"], recs["country"])))
    return out.merge(recs[["lead_id", "first_seen"]], on="lead_id", how="left")
