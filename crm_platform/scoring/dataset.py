"""The rows a model learns from and scores, read from the engine as Arrow, and what is derived from
them in Python: the feature columns, a time split by as_of, and a fingerprint of the training rows.

The join of features to labels and the choice of the latest snapshot run in the engine
(`sql/training_rows.sql`, `sql/current_rows.sql`); Python gets only the reduced rows.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from crm_platform.governance.consent import ConsentConfig, excluded_leads_sql
from crm_platform.scoring.config import Split
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render

PACKAGE = "crm_platform.scoring"
KEYS = ("lead_id", "as_of")
NOT_FEATURES = ("lead_id", "as_of", "feature_version", "label", "label_version", "label_window_days")


class InsufficientData(Exception):
    """No model can be trained (or scored) honestly on these rows; the message says why."""


@dataclass(frozen=True)
class Columns:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @classmethod
    def of(cls, schema: pa.Schema) -> Columns:
        """Strings are categories; numbers and booleans are numeric (a boolean as 0/1)."""
        numeric, categorical = [], []
        for f in schema:
            if f.name in NOT_FEATURES:
                continue
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type):
                categorical.append(f.name)
            elif pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type) \
                    or pa.types.is_decimal(f.type):
                numeric.append(f.name)
        return cls(tuple(numeric), tuple(categorical))

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}


def consent_excluded(wh: Warehouse, consent: ConsentConfig | None = None) -> tuple[dict, dict]:
    """The `{consent_excluded}` fragment (leads without a consent that gates scoring, by their
    current consent: governance/consent.yaml) and its parameters."""
    sql, params = excluded_leads_sql("scoring", consent, events_exist=wh.table_exists("core", "events"))
    return {"consent_excluded": sql}, params


def read_training_rows(wh: Warehouse, consent: ConsentConfig | None = None) -> pa.Table | None:
    if not (wh.table_exists("features", "lead_features") and wh.table_exists("features", "lead_labels")):
        return None
    fragments, params = consent_excluded(wh, consent)
    return wh.fetch_arrow(*render(wh, load(PACKAGE, "training_rows"), params, fragments))


def read_current_rows(wh: Warehouse, consent: ConsentConfig | None = None) -> pa.Table | None:
    if not wh.table_exists("features", "lead_features"):
        return None
    fragments, params = consent_excluded(wh, consent)
    return wh.fetch_arrow(*render(wh, load(PACKAGE, "current_rows"), params, fragments))


def to_frame(table: pa.Table, columns: Columns) -> pd.DataFrame:
    """One engine-neutral frame: numeric features as float64 (NULL as NaN), categories as Python
    strings (NULL as None), as_of as naive UTC, in (as_of, lead_id) order. DuckDB and ClickHouse give
    the same frame for the same rows, so the same fingerprint, model and scores."""
    out = {"lead_id": pd.Series(table.column("lead_id").to_pylist(), dtype=object)}
    as_of = pd.to_datetime(pd.Series(table.column("as_of").to_pandas()))
    if as_of.dt.tz is not None:
        as_of = as_of.dt.tz_convert("UTC").dt.tz_localize(None)
    out["as_of"] = as_of.astype("datetime64[us]")
    for name in ("feature_version", "label_version"):
        if name in table.column_names:
            out[name] = pd.Series(table.column(name).to_pylist(), dtype=object)
    if "label" in table.column_names:
        out["label"] = pd.Series(table.column("label").to_pylist(), dtype="float64")
    for name in columns.numeric:
        col = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
        values = col.cast(pa.float64()) if not pa.types.is_null(col.type) else pa.nulls(table.num_rows, pa.float64())
        out[name] = values.to_numpy(zero_copy_only=False).astype("float64")
    for name in columns.categorical:
        values = table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
        out[name] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(out)
    return frame.sort_values(["as_of", "lead_id"], kind="stable").reset_index(drop=True)


def fingerprint(frame: pd.DataFrame, columns: Columns) -> str:
    """sha256 of the training rows (keys, features and labels, in their stable order)."""
    cols = ["lead_id", "as_of", *columns.all, "label"]
    digest = hashlib.sha256(",".join(cols).encode())
    digest.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray  # boolean masks over the frame's rows
    validation: np.ndarray
    test: np.ndarray
    boundaries: dict[str, str]  # first as_of of validation and of test

    def summary(self, frame: pd.DataFrame) -> dict[str, dict]:
        out = {}
        for name in ("train", "validation", "test"):
            part = frame[getattr(self, name)]
            out[name] = {"rows": len(part), "positives": int(part.label.sum()), "leads": int(part.lead_id.nunique()),
                         "as_of_first": str(part.as_of.min()), "as_of_last": str(part.as_of.max()),
                         "as_ofs": int(part.as_of.nunique())}
        return out


def split_by_as_of(frame: pd.DataFrame, split: Split) -> TimeSplit:
    """Train, validation and test as consecutive runs of as_of: the earliest as_ofs holding the
    `train` share of the labelled positives, the next `validation` share, then the rest. An as_of is
    in one slice only (its whole snapshot goes together). Cutting by positives rather than rows keeps
    each slice able to rank and calibrate: later snapshots hold the leads still open long after they
    were created, who rarely convert. Raises InsufficientData when a slice would have too few
    positives or negatives to learn from, calibrate on or evaluate."""
    if frame.empty:
        raise InsufficientData("no labelled rows yet: features.lead_labels has no row whose label window has ended")
    classes = set(frame.label.unique())
    if classes != {0.0, 1.0}:
        only = "positive" if classes == {1.0} else "negative"
        raise InsufficientData(f"a single class: all {len(frame)} labelled rows are {only}")
    by = frame.groupby("as_of", sort=True).label.agg(["sum", "size"])
    if len(by) < 3:
        raise InsufficientData(f"{len(by)} labelled as_of snapshot(s): a time split needs three at least")
    total = by["sum"].sum()
    mid = (by["sum"].cumsum() - by["sum"] / 2) / total  # each as_of's position in the positives' order
    slice_of = np.where(mid < split.train, 0, np.where(mid < split.train + split.validation, 1, 2))
    # Every slice gets one as_of at least (the first to train, the last to test).
    slice_of[0], slice_of[-1] = 0, 2
    if not (slice_of == 1).any():
        raise InsufficientData("no as_of falls in the validation slice: one snapshot holds too many of the positives")
    assignment = pd.Series(slice_of, index=by.index)
    s = frame.as_of.map(assignment).to_numpy()
    masks = [s == k for k in range(3)]
    for name, mask in zip(("train", "validation", "test"), masks):
        pos = int(frame.label[mask].sum())
        neg = int(mask.sum()) - pos
        if pos < split.min_positives or neg < split.min_positives:
            raise InsufficientData(f"the {name} slice has {pos} positive and {neg} negative rows "
                                   f"(at least {split.min_positives} of each are needed)")
    firsts = {name: str(frame.as_of[m].min()) for name, m in zip(("validation", "test"), masks[1:])}
    return TimeSplit(*masks, boundaries=firsts)
