"""The registry's guarantees and the clear results on bad input, on both engines, with small feature
tables written directly: reuse without retraining, refused promotion, tampered artifacts, no labels,
a single class, tiers."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crm_platform.plan.loader import load_plan
from crm_platform.scoring import checks
from crm_platform.scoring import registry as reg
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.run import score_leads, tiers, train_model
from crm_platform.settings import Settings
from crm_platform.warehouse import open_warehouse
from crm_platform_tests.test_ingest.helpers import KEY
from crm_platform_tests.test_scoring import synthetic

CONFIG = ScoringConfig.load().with_replicates(20)


def _wh():
    return open_warehouse(Settings.from_env())


def test_rerun_reuses_the_registered_model_and_rescoring_changes_nothing(engine, data_dir: Path):
    with _wh() as wh:
        synthetic.write(wh, *synthetic.feature_rows())
        first = train_model(wh, data_dir, CONFIG)
        assert first.status == "trained" and first.promoted, first.reason
        assert first.entry.metrics["test"]["metrics"]["roc_auc"]["value"] > 0.7
        assert first.entry.metrics["roc_auc"] == first.entry.metrics["test"]["metrics"]["roc_auc"]["value"]
        again = train_model(wh, data_dir, CONFIG)
        assert again.status == "reused" and again.entry.model_version == first.entry.model_version
        assert wh.row_count("ml", "model_registry") == 1
        assert checks.promotion(again).passed

        scored = score_leads(wh, data_dir, load_plan(), KEY, CONFIG)
        assert scored.status == "scored" and len(scored.scores) == 150
        before = wh.fetch_arrow("SELECT * FROM " + wh.table_name("ml", "lead_scores") + " ORDER BY lead_id")
        rescored = score_leads(wh, data_dir, load_plan(), KEY, CONFIG)
        after = wh.fetch_arrow("SELECT * FROM " + wh.table_name("ml", "lead_scores") + " ORDER BY lead_id")
        assert after.equals(before)  # same rows, scored_at included
        assert rescored.events_file == scored.events_file
        events = wh.fetchall(f"SELECT count(*), count(DISTINCT event_id), min(source) FROM {wh.table_name('core', 'events')} "
                             "WHERE event_type = 'model_score_computed'")
        assert events == [(150, 150, "ml")]
        ledger = wh.fetchall(f"SELECT sum(records_quarantined) FROM {wh.table_name('core', 'ingest_ledger')}")
        assert ledger[0][0] == 0


def test_a_model_worse_than_the_current_one_is_refused_and_scoring_keeps_the_current(engine, data_dir: Path):
    with _wh() as wh:
        synthetic.write(wh, *synthetic.feature_rows())
        first = train_model(wh, data_dir, CONFIG)
        # Other parameters make another version; a margin below zero demands a large improvement.
        strict = replace(CONFIG, model=replace(CONFIG.model, max_iter=50),
                         promotion=replace(CONFIG.promotion, margin=-0.5))
        second = train_model(wh, data_dir, strict)
        assert second.status == "trained" and second.entry.model_version != first.entry.model_version
        assert second.entry.status == reg.REFUSED and not second.promoted
        assert "refused" in second.reason
        result = checks.promotion(second)
        assert not result.passed and result.severity == "ERROR"
        assert second.entry.metrics["promotion"]["current_model"] == first.entry.model_version
        assert reg.current(wh).model_version == first.entry.model_version
        assert score_leads(wh, data_dir, load_plan(), KEY, CONFIG).model_version == first.entry.model_version


def test_a_tampered_artifact_is_refused(engine, data_dir: Path):
    with _wh() as wh:
        synthetic.write(wh, *synthetic.feature_rows())
        run = train_model(wh, data_dir, CONFIG)
        path = data_dir / run.entry.artifact_path
        assert reg.sha256_of(path) == run.entry.artifact_sha256
        assert (path.parent / "model.sha256").read_text().startswith(run.entry.artifact_sha256)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(reg.ArtifactError, match="refusing to load an altered artifact"):
            score_leads(wh, data_dir, load_plan(), KEY, CONFIG)
        with pytest.raises(reg.ArtifactError, match="sha256"):
            train_model(wh, data_dir, CONFIG)  # the reuse path verifies too
        path.unlink()
        with pytest.raises(reg.ArtifactError, match="missing"):
            reg.load_artifact(data_dir, run.entry)


def test_no_labels_yet_and_a_single_class_give_a_clear_result(engine, data_dir: Path):
    with _wh() as wh:
        assert train_model(wh, data_dir, CONFIG).status == "insufficient_data"  # no feature tables at all
        nothing = score_leads(wh, data_dir, load_plan(), KEY, CONFIG)
        assert nothing.status == "no_model" and "materialize ml/model_registry" in nothing.reason
        features, labels = synthetic.feature_rows()
        synthetic.write(wh, features, labels.slice(0, 0))
        run = train_model(wh, data_dir, CONFIG)
        assert run.status == "insufficient_data" and "no labelled rows yet" in run.reason
        result = checks.promotion(run)
        assert not result.passed and result.severity == "WARN"  # visible, and blocks nothing
        synthetic.write(wh, *synthetic.feature_rows(positive_share=0.0))
        run = train_model(wh, data_dir, CONFIG)
        assert run.status == "insufficient_data" and "a single class" in run.reason and "negative" in run.reason
        synthetic.write(wh, *synthetic.feature_rows(weeks=2))
        run = train_model(wh, data_dir, CONFIG)
        assert run.status == "insufficient_data" and "three at least" in run.reason
        assert not wh.table_exists("ml", "model_registry") or wh.row_count("ml", "model_registry") == 0


def test_tiers_split_scores_by_quantile_and_ties_share_a_tier():
    t = tiers(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), (0.25, 0.5, 0.75))
    assert list(t) == ["A", "A", "B", "B", "C", "C", "D", "D"]
    assert list(tiers(np.array([0.5, 0.5, 0.5, 0.1]), (0.25, 0.5, 0.75))) == ["A", "A", "A", "D"]


def test_the_config_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        ScoringConfig.from_dict({"modle": {}})
    with pytest.raises(ValueError, match="calibration"):
        ScoringConfig.from_dict({"calibration": "beta"})
