"""The identity tables: outputs, and the state an incremental run starts from.

- `identity.lead_identity_map`: every source record -> canonical lead id, with the rule and score.
- `identity.edges`: the edges of the last run, accepted or refused (with the reason), no PII.
- `identity.records`: each lead record's fingerprint of its normal form (what changed since).
- `identity.match_pairs`: Splink's scored candidate pairs, reused while their records do not change.
- `identity.match_models`: each trained model's parameters; `pii.match_term_frequencies` its frozen
  term frequencies (names and cities: PII, so in the pii schema).
- `identity.runs`: what each run did.
"""
from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pyarrow as pa

from crm_platform.identity.probabilistic import MatchModel
from crm_platform.warehouse import Warehouse

S, F, TS, B, I = pa.string(), pa.float64(), pa.timestamp("us"), pa.bool_(), pa.int64()
SCHEMAS = {
    "lead_identity_map": pa.schema([("source_system", S), ("source_id", S), ("lead_id", S), ("match_rule", S),
                                    ("match_score", F), ("record_lead_id", S), ("resolved_at", TS)]),
    "edges": pa.schema([("left_lead_id", S), ("right_lead_id", S), ("rule", S), ("score", F), ("evidence", S),
                        ("accepted", B), ("reason", S)]),
    "records": pa.schema([("lead_id", S), ("fingerprint", S), ("first_seen", TS), ("model_version", S)]),
    "match_pairs": pa.schema([("left_lead_id", S), ("right_lead_id", S), ("match_probability", F),
                              ("match_weight", F), ("levels", S), ("model_version", S)]),
    "match_models": pa.schema([("model_version", S), ("trained_at", TS), ("trained_records", I),
                               ("parameters", S), ("settings", S)]),
    "runs": pa.schema([("resolved_at", TS), ("mode", S), ("model_version", S), ("records", I),
                       ("records_compared", I), ("clusters", I), ("decisions", I), ("summary", S)]),
}
TF_SCHEMA = pa.schema([("model_version", S), ("column_name", S), ("value", S), ("tf", F)])


def table(name: str, df: pd.DataFrame | dict) -> pa.Table:
    schema = SCHEMAS[name]
    if isinstance(df, pd.DataFrame):
        return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    return pa.table(df, schema=schema)


def write(wh: Warehouse, name: str, data: pa.Table) -> int:
    return wh.replace_table("identity", name, data)


def append(wh: Warehouse, schema: str, name: str, data: pa.Table) -> None:
    if not wh.table_exists(schema, name):
        wh.replace_table(schema, name, data)
    else:
        wh.insert_arrow(schema, name, data)


def read(wh: Warehouse, name: str, columns: list[str] | None = None, order_by: tuple[str, ...] = ()) -> pd.DataFrame:
    schema = SCHEMAS[name]
    columns = columns or schema.names
    if not wh.table_exists("identity", name):
        return schema.empty_table().select(columns).to_pandas()
    order = f" order by {', '.join(order_by)}" if order_by else ""
    return wh.fetch_arrow(f"select {', '.join(columns)} from {wh.table_name('identity', name)}{order}").to_pandas()


def empty(name: str) -> pd.DataFrame:
    """No row of table `name`, with its columns."""
    return SCHEMAS[name].empty_table().to_pandas()


def last_summary(wh: Warehouse) -> dict:
    """The summary of the latest run ({} before the first)."""
    if not wh.table_exists("identity", "runs"):
        return {}
    rows = wh.fetchall(f"select summary from {wh.table_name('identity', 'runs')} order by resolved_at desc limit 1")
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def latest_model(wh: Warehouse) -> MatchModel | None:
    if not wh.table_exists("identity", "match_models"):
        return None
    rows = wh.fetchall(f"select model_version, trained_records, settings from {wh.table_name('identity', 'match_models')} "
                       "order by trained_at desc, model_version limit 1")
    if not rows:
        return None
    version, trained, settings = rows[0]
    tf = wh.fetch_arrow(f"select column_name, value, tf from {wh.table_name('pii', 'match_term_frequencies')} "
                        "where model_version = ? order by column_name, value", [version]).to_pandas()
    tfs = {c: g[["value", "tf"]].rename(columns={"value": c, "tf": f"tf_{c}"}).reset_index(drop=True)
           for c, g in tf.groupby("column_name")}
    return MatchModel(json.loads(settings), tfs, int(trained), version)


def save_model(wh: Warehouse, model: MatchModel, trained_at: datetime) -> None:
    append(wh, "identity", "match_models", table("match_models", {
        "model_version": [model.version], "trained_at": [trained_at], "trained_records": [model.trained_records],
        "parameters": [json.dumps(model.parameters(), sort_keys=True)],
        "settings": [json.dumps(model.settings, sort_keys=True, default=str)]}))
    parts = [pd.DataFrame({"model_version": model.version, "column_name": c, "value": tf[c].astype(str),
                           "tf": tf[f"tf_{c}"].astype(float)}) for c, tf in model.term_frequencies.items()]
    tfs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TF_SCHEMA.names)
    append(wh, "pii", "match_term_frequencies", pa.Table.from_pandas(tfs, schema=TF_SCHEMA, preserve_index=False))
