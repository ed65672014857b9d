"""Lead scoring on the generator's data, through ingest, identity and features, on both engines: the
model ranks test rows nearly as well as the truth's own conversion probabilities (or better: it
sees what happened to the lead after creation), is calibrated, scores the same on DuckDB and
ClickHouse, and a rerun on unchanged data trains nothing."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crm_platform.features.config import FeatureConfig
from crm_platform.features.run import build_features
from crm_platform.identity.run import run_identity
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan
from crm_platform.scoring import dataset as ds
from crm_platform.scoring import registry as reg
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.run import score_leads, train_model
from crm_platform.synth.generate import generate_dataset
from crm_platform.warehouse import ClickHouseWarehouse, DuckDBWarehouse
from crm_platform_tests.test_ingest.helpers import KEY

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
DATABASE = "t_scoring_quality"
CONFIG = ScoringConfig.load()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("generated")
    generate_dataset(d, leads=2000, days=120, seed=7)
    return d


@pytest.fixture(scope="module")
def runs(generated, tmp_path_factory, clickhouse):
    plan, out = load_plan(), {}
    for engine in ("duckdb", "clickhouse"):
        root = tmp_path_factory.mktemp(engine)
        shutil.copytree(generated / "landing", root / "landing")
        wh = (DuckDBWarehouse(root / "warehouse.duckdb") if engine == "duckdb"
              else ClickHouseWarehouse(port=clickhouse.port, database=DATABASE))
        with wh:
            ingest_landing(wh, root / "landing", plan, KEY)
            run_identity(wh, root / "landing", plan, KEY, now=NOW)
            build_features(wh, plan, FeatureConfig.load(), now=NOW)
            trained = train_model(wh, root, CONFIG, now=NOW)
            scored = score_leads(wh, root, plan, KEY, CONFIG, now=NOW)
            rows = ds.read_training_rows(wh)
            frame = ds.to_frame(rows, ds.Columns.of(rows.schema))
            identity = wh.fetch_arrow("SELECT source_system, source_id, lead_id FROM "
                                      + wh.table_name("identity", "lead_identity_map")).to_pandas()
            rerun = train_model(wh, root, CONFIG, now=NOW)
            rescored = score_leads(wh, root, plan, KEY, CONFIG, now=NOW)
            out[engine] = {"root": root, "trained": trained, "scored": scored, "frame": frame, "identity": identity,
                           "rerun": rerun, "rescored": rescored, "registry_rows": wh.row_count("ml", "model_registry"),
                           "score_events": wh.fetchall(
                               f"SELECT count(*) FROM {wh.table_name('core', 'events')} "
                               "WHERE event_type = 'model_score_computed' AND source = 'ml'")[0][0]}
            if engine == "clickhouse":
                wh.client.command(f'drop database if exists "{DATABASE}"')
    return out


def _truth_probability(generated: Path, identity: pd.DataFrame) -> pd.Series:
    """Each canonical lead's true conversion probability: its source records' person (the most common
    one, should identity have joined two people)."""
    truth = pd.read_csv(generated / "truth" / "leads.csv")
    records = pd.read_csv(generated / "truth" / "identity.csv", dtype=str)
    joined = identity.merge(records, on=["source_system", "source_id"]).merge(
        truth[["person_id", "true_conversion_probability"]], on="person_id")
    return joined.groupby("lead_id").true_conversion_probability.agg(lambda s: s.mode().sort_values().iloc[0])


def test_test_auc_reaches_the_truths_ceiling(runs, generated):
    run = runs["duckdb"]
    entry = run["trained"].entry
    assert run["trained"].status == "trained" and entry.status == reg.PROMOTED
    frame = run["frame"]
    split = ds.split_by_as_of(frame, CONFIG.split)
    test = frame[split.test]
    truth = test.lead_id.map(_truth_probability(generated, run["identity"]))
    assert truth.notna().mean() > 0.99
    ceiling = roc_auc_score(test.label[truth.notna()], truth[truth.notna()])
    m = entry.metrics["test"]["metrics"]
    auc = m["roc_auc"]["value"]
    # The model's AUC, recomputed from the artifact on the same rows, is the registered one.
    model = reg.load_artifact(run["root"], entry)
    assert roc_auc_score(test.label, model.predict(test)) == pytest.approx(auc, abs=1e-12)
    print(f"\ntest rows {len(test)} ({int(test.label.sum())} positive, {test.lead_id.nunique()} leads): "
          f"model ROC AUC {auc:.4f} [{m['roc_auc']['low']:.4f}, {m['roc_auc']['high']:.4f}], "
          f"truth's probabilities (ceiling) {ceiling:.4f}, ratio {auc / ceiling:.3f}; "
          f"baseline {entry.metrics['baseline']['metrics']['roc_auc']['value']:.4f}")
    print("PR AUC {pr_auc[value]:.4f} [{pr_auc[low]:.4f}, {pr_auc[high]:.4f}], Brier {brier[value]:.4f} "
          "[{brier[low]:.4f}, {brier[high]:.4f}], log loss {log_loss[value]:.4f}, ECE {ece[value]:.4f} "
          "[{ece[low]:.4f}, {ece[high]:.4f}], base rate {base_rate[value]:.4f}".format(**m))
    assert auc >= 0.95 * ceiling
    # Calibrated on a later slice: the expected calibration error is reported, and small.
    assert 0 <= m["ece"]["value"] < 0.06
    assert m["ece"]["low"] <= m["ece"]["value"] <= m["ece"]["high"]
    # Lift where it matters: the top decile holds several times its share of conversions.
    assert entry.metrics["test"]["deciles"][0]["lift"] > 3


def test_both_engines_train_the_same_model_and_give_the_same_scores(runs):
    duck, click = runs["duckdb"], runs["clickhouse"]
    assert duck["trained"].entry.model_version == click["trained"].entry.model_version
    # (The artifact files differ in bytes: a skops file is a zip, whose entries carry the time written.)
    assert duck["trained"].entry.metrics == click["trained"].entry.metrics
    a = duck["scored"].scores.sort_values("lead_id").reset_index(drop=True)
    b = click["scored"].scores.sort_values("lead_id").reset_index(drop=True)
    assert len(a) == len(b) > 500
    assert list(a.lead_id) == list(b.lead_id)
    np.testing.assert_allclose(a.score.to_numpy(), b.score.to_numpy(), rtol=0, atol=1e-12)
    assert list(a.tier) == list(b.tier) and list(a.top_features) == list(b.top_features)
    assert duck["scored"].drift == click["scored"].drift


def test_a_rerun_on_unchanged_data_creates_no_new_model_version(runs):
    for engine, run in runs.items():
        assert run["rerun"].status == "reused", engine
        assert run["rerun"].entry.model_version == run["trained"].entry.model_version
        assert run["registry_rows"] == 1
        assert run["score_events"] == len(run["scored"].scores)  # scored twice, landed once


def test_scores_are_tiered_by_quantile_and_explained(runs):
    scores = runs["duckdb"]["scored"].scores
    counts = scores.tier.value_counts()
    assert set(counts.index) == {"A", "B", "C", "D"}
    assert counts.max() - counts.min() <= 1 + scores.score.duplicated().sum()
    by_tier = scores.groupby("tier").score.agg(["min", "max"])
    assert by_tier.loc["A", "min"] >= by_tier.loc["B", "max"] >= by_tier.loc["C", "min"] >= by_tier.loc["D", "max"]
    assert all(len(json.loads(t)) == CONFIG.top_features for t in scores.top_features.head(20))
