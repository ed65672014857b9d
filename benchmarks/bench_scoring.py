"""Lead scoring at scale: training on 1M labelled feature rows and scoring throughput.

Synthetic rows shaped like features.lead_features (72 numeric columns: window counts, recency with
NULLs, amounts; two categories; a boolean) and labels from a known logistic model, written into a
scratch DuckDB warehouse as the tables the features layer writes. Measured:

- `train_model` end to end (the engine's join and read, fingerprint, time split, fit, calibration,
  baseline, evaluation with bootstrap intervals, artifact and registry), with its stages;
- scoring throughput: the model's calibrated probabilities plus top features per row, in process;
  and `score_leads` end to end on the latest snapshot (scores table, event file, ingest of it);
- reference, in the same run on the same matrix: a bare HistGradientBoostingClassifier with the same
  parameters fitted on the NumPy array (no pipeline, calibration or baseline), with one and with
  two OpenMP threads, and its bare predict_proba.

    python benchmarks/bench_scoring.py [--rows 1000000] [--replicates 200]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from crm_platform.plan.loader import load_plan
from crm_platform.scoring import dataset as ds
from crm_platform.scoring import registry as reg
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.run import score_leads, train_model
from crm_platform.warehouse import DuckDBWarehouse

KEY = b"bench-key"
WEEKS = 20


def synthetic(rows: int, seed: int = 5) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    leads = rows // WEEKS
    intent = rng.normal(size=leads)
    lead = np.tile(np.arange(leads), WEEKS)
    week = np.repeat(np.arange(WEEKS), leads)
    z = intent[lead]
    cols: dict[str, np.ndarray] = {}
    for w in (7, 30, 90):
        for kind in ("call", "meeting", "email", "demo", "note", "inbound", "outbound", "all"):
            cols[f"activities_{kind}_{w}d"] = rng.poisson(np.exp(-1 + 0.5 * z + np.log(w) / 3))
        for ch in ("paid_search", "organic_search", "paid_social", "email", "display", "referral", "events",
                   "direct", "social", "organic_social", "all"):
            cols[f"touches_{ch}_{w}d"] = rng.poisson(0.3 * np.log(w), rows)
        cols[f"distinct_campaigns_{w}d"] = rng.poisson(0.5, rows)
        cols[f"stage_changes_{w}d"] = rng.poisson(0.2, rows)
    cols["days_since_created"] = (7.0 * week + rng.integers(0, 7, rows)).astype(float)
    cols["days_since_last_touch"] = np.where(rng.random(rows) < 0.3, np.nan, rng.exponential(10, rows))
    cols["days_since_last_activity"] = np.where(rng.random(rows) < 0.2, np.nan, rng.exponential(8, rows))
    cols["days_in_stage"] = rng.exponential(15, rows)
    cols["open_opportunity_amount"] = np.where(rng.random(rows) < 0.8, 0.0, rng.lognormal(9, 1, rows))
    cols["estimated_value"] = rng.lognormal(10, 1, rows)
    employees = rng.lognormal(4, 1.5, leads).astype(np.int64) + 1
    eta = -3 + 0.9 * z + 0.3 * (np.log10(employees[lead]) - 2) - 0.05 * week
    label = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(np.int32)
    start = datetime(2026, 1, 5)
    as_of = pa.array([start + timedelta(days=7 * int(w)) for w in range(WEEKS)], pa.timestamp("us")).take(pa.array(week))
    lead_ids = pa.array([f"lead_{i:07d}" for i in range(leads)]).take(pa.array(lead))
    stages = np.array(["new", "contacted", "engaged", "qualified", "opportunity"], dtype=object)
    sources = np.array(["paid_search", "organic_search", "referral", "events", "email", "direct"], dtype=object)
    features = {"lead_id": lead_ids, "as_of": as_of, "feature_version": pa.array(["fbench"] * rows)}
    for name, values in cols.items():
        features[name] = pa.array(values)
    features["current_stage"] = pa.array(stages[rng.integers(0, len(stages), rows)].tolist())
    features["lead_source"] = pa.array(sources[lead % len(sources)].tolist())
    features["employee_count"] = pa.array(employees[lead])
    features["email_free_mail"] = pa.array(rng.random(rows) < 0.3)
    labels = {"lead_id": lead_ids, "as_of": as_of, "label": pa.array(label),
              "label_window_days": pa.array(np.full(rows, 90, dtype=np.int32)),
              "label_version": pa.array(["lbench"] * rows)}
    return pa.table(features), pa.table(labels)


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--replicates", type=int, default=200)
    args = ap.parse_args()
    config = ScoringConfig.load().with_replicates(args.replicates)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        features, labels = synthetic(args.rows)
        print(f"synthetic rows: {features.num_rows:,} x {features.num_columns} columns ({time.perf_counter() - t:.1f} s)")
        with DuckDBWarehouse(data / "warehouse.duckdb") as wh:
            wh.replace_table("features", "lead_features", features)
            wh.replace_table("features", "lead_labels", labels)
            t = time.perf_counter()
            run = train_model(wh, data, config)
            train_s = time.perf_counter() - t
            assert run.status == "trained", run.reason
            m = run.entry.metrics
            print(f"train_model: {train_s:.1f} s for {features.num_rows:,} labelled rows "
                  f"({run.entry.train_rows:,} in the training slice), stages {run.seconds}, "
                  f"test AUC {m['test']['metrics']['roc_auc']['value']:.4f}, peak RSS {rss_gib():.2f} GiB")

            t = time.perf_counter()
            rerun = train_model(wh, data, config)
            print(f"rerun on unchanged rows: {rerun.status} in {time.perf_counter() - t:.1f} s")

            model = reg.load_artifact(data, run.entry)
            table = ds.read_training_rows(wh)
            frame = ds.to_frame(table, model.columns)
            with threadpool_limits(1):
                t = time.perf_counter()
                model.predict(frame)
                predict_s = time.perf_counter() - t
                t = time.perf_counter()
                model.top_features(frame, config.top_features)
                explain_s = time.perf_counter() - t
            n = len(frame)
            print(f"scoring in process: {n / predict_s:,.0f} rows/s calibrated probabilities ({predict_s:.1f} s), "
                  f"{n / (predict_s + explain_s):,.0f} rows/s with top features ({predict_s + explain_s:.1f} s)")

            t = time.perf_counter()
            scored = score_leads(wh, data, load_plan(), KEY, config)
            score_s = time.perf_counter() - t
            print(f"score_leads end to end: {len(scored.scores):,} open leads in {score_s:.1f} s "
                  f"({len(scored.scores) / score_s:,.0f} leads/s), stages {scored.seconds}")

            # Reference: the bare library on the same matrix.
            split = ds.split_by_as_of(frame, config.split)
            x = frame[list(model.columns.numeric)].to_numpy()[split.train]
            y = frame.label.to_numpy()[split.train].astype(int)
            p = config.model
            for threads in (1, 2):
                bare = HistGradientBoostingClassifier(learning_rate=p.learning_rate, max_iter=p.max_iter,
                                                      max_leaf_nodes=p.max_leaf_nodes, min_samples_leaf=p.min_samples_leaf,
                                                      l2_regularization=p.l2_regularization, early_stopping=False,
                                                      random_state=config.seed)
                with threadpool_limits(threads):
                    t = time.perf_counter()
                    bare.fit(x, y)
                    fit_s = time.perf_counter() - t
                    t = time.perf_counter()
                    bare.predict_proba(frame[list(model.columns.numeric)].to_numpy())
                    bare_predict_s = time.perf_counter() - t
                print(f"reference, bare HistGradientBoosting on {len(x):,} x {x.shape[1]} ({threads} thread(s)): "
                      f"fit {fit_s:.1f} s; predict_proba {n / bare_predict_s:,.0f} rows/s")
        print(f"peak RSS {rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
