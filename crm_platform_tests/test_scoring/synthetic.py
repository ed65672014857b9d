"""Small feature and label tables written straight into a warehouse: a few weekly snapshots of
leads whose conversion follows one feature, for the scoring tests that need no event log."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from crm_platform.warehouse import Warehouse

START = datetime(2026, 1, 5)


def feature_rows(leads: int = 150, weeks: int = 10, seed: int = 3, positive_share: float | None = None) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    intent = rng.normal(size=leads)
    rows, labels = [], []
    for w in range(weeks):
        as_of = START + timedelta(days=7 * w)
        for i in range(leads):
            meetings = int(rng.poisson(np.exp(0.8 * intent[i])))
            p = 1 / (1 + np.exp(-(-2.0 + 1.5 * intent[i])))
            label = int(rng.random() < p) if positive_share is None else int(positive_share >= 1)
            rows.append({"lead_id": f"lead_{i:04d}", "as_of": as_of, "feature_version": "fsynthetic",
                         "days_since_created": float(7 * w + i % 5),
                         "estimated_value": float(intent[i] + rng.normal(0, 0.3)), "activities_30d": meetings,
                         "touches_email_30d": int(rng.poisson(2)), "days_since_last_touch": None if i % 7 == 0 else float(i % 11),
                         "current_stage": ["new", "engaged", "qualified"][i % 3], "lead_source": ["paid_search", "referral"][i % 2],
                         "email_free_mail": bool(i % 4 == 0)})
            labels.append({"lead_id": f"lead_{i:04d}", "as_of": as_of, "label": label, "label_window_days": 90,
                           "label_version": "lsynthetic"})
    fschema = pa.schema([("lead_id", pa.string()), ("as_of", pa.timestamp("us")), ("feature_version", pa.string()),
                         ("days_since_created", pa.float64()), ("estimated_value", pa.float64()), ("activities_30d", pa.int64()),
                         ("touches_email_30d", pa.int64()), ("days_since_last_touch", pa.float64()),
                         ("current_stage", pa.string()), ("lead_source", pa.string()), ("email_free_mail", pa.bool_())])
    lschema = pa.schema([("lead_id", pa.string()), ("as_of", pa.timestamp("us")), ("label", pa.int32()),
                         ("label_window_days", pa.int32()), ("label_version", pa.string())])
    return pa.Table.from_pylist(rows, schema=fschema), pa.Table.from_pylist(labels, schema=lschema)


def write(wh: Warehouse, features: pa.Table, labels: pa.Table | None) -> None:
    wh.replace_table("features", "lead_features", features)
    if labels is not None:
        wh.replace_table("features", "lead_labels", labels)
