"""ml.model_registry and ml.lead_scores: a lead-scoring model trained, evaluated and registered, and
the open leads scored with the model in use."""

import base64
from pathlib import Path

import dagster as dg
import pyarrow as pa

from crm_platform.defs.conventions import (
    ENGINE,
    layer_policies,
    markdown_table,
    plan_owners,
    retry_transient,
    table_metadata,
    warehouse_pool,
)
from crm_platform.defs.features.features import FEATURES, LABELS
from crm_platform.defs.resources import WarehouseResource
from crm_platform.plan.loader import load_plan
from crm_platform.scoring import charts, checks
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.run import score_leads, train_model

REGISTRY = dg.AssetKey(["ml", "model_registry"])
SCORES = dg.AssetKey(["ml", "lead_scores"])
OWNERS = plan_owners("model_score_computed")


class ScoringRunConfig(dg.Config):
    config_file: str | None = None  # a scoring.yaml of the user's (default: the platform's)
    bootstrap_replicates: int | None = None  # overrides evaluation.bootstrap_replicates (0: no intervals)


def _settings(config: ScoringRunConfig) -> ScoringConfig:
    settings = ScoringConfig.load(Path(config.config_file) if config.config_file else None)
    return settings if config.bootstrap_replicates is None else settings.with_replicates(config.bootstrap_replicates)


def _check(result) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=dg.AssetKey(list(result.asset)), check_name=result.name,
                               passed=result.passed, severity=dg.AssetCheckSeverity(result.severity),
                               description=result.description, metadata=result.metadata)


def _png(name: str, png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _metrics_table(metrics: dict) -> str:
    rows = []
    for who in ("test", "baseline", "current"):
        if not metrics.get(who):
            continue
        for name, m in metrics[who]["metrics"].items():
            fmt = (lambda v: "" if v is None else f"{v:.4f}")
            rows.append({"model": {"test": "candidate", "baseline": "logistic baseline", "current": "current"}[who],
                         "metric": name, "value": fmt(m["value"]), "low": fmt(m["low"]), "high": fmt(m["high"])})
    return markdown_table(pa.Table.from_pylist(rows))


def _deciles_table(metrics: dict) -> str:
    fmt = (lambda v: "" if v is None else f"{v:.3f}")
    return markdown_table(pa.Table.from_pylist([
        {"decile": r["decile"], "lift": fmt(r["lift"]), "lift interval": f"[{fmt(r['lift_low'])}, {fmt(r['lift_high'])}]",
         "gain": fmt(r["gain"]), "gain interval": f"[{fmt(r['gain_low'])}, {fmt(r['gain_high'])}]"}
        for r in metrics["test"]["deciles"]]))


@dg.asset(key=REGISTRY, group_name="scoring", owners=OWNERS, kinds={ENGINE}, pool=warehouse_pool("ml__model_registry"),
          **layer_policies("scoring"),
          deps=[FEATURES, LABELS],
          check_specs=[dg.AssetCheckSpec(
              "not_worse_than_current", asset=REGISTRY, blocking=True,
              description="The trained model is promoted only if its test ROC AUC is not below the current model's "
                          "on the same test rows by more than the promotion margin (scoring.yaml, 0.01); a refused "
                          "model stays in the registry, and scoring keeps the current one.")],
          description=(
              "Every trained lead-scoring model (CONTRACT §6): HistGradientBoosting in a scikit-learn Pipeline, "
              "split by as_of into train / validation / test, calibrated on the validation slice; test metrics with "
              "bootstrap intervals against a logistic baseline and the current model; a skops artifact under "
              "$CRM_DATA_DIR/models/<model_version>/ verified by sha256. The same rows and parameters give the same "
              "model_version, which is reused, not retrained."))
@retry_transient
def model_registry(context: dg.AssetExecutionContext, config: ScoringRunConfig, warehouse: WarehouseResource):
    settings = _settings(config)
    with warehouse.open() as wh:
        run = train_model(wh, warehouse.settings().data_dir, settings)
        context.log.info(f"scoring model: {run.status}: {run.reason}")
        metadata = {"status": run.status, "reason": run.reason, "seconds": dg.MetadataValue.json(run.seconds)}
        if run.entry is not None:
            m = run.entry.metrics
            metadata.update({
                "model_version": run.entry.model_version, "promotion": run.entry.status,
                "feature_version": run.entry.feature_version, "label_version": run.entry.label_version,
                "train_rows": run.entry.train_rows, "artifact_path": run.entry.artifact_path,
                "artifact_sha256": run.entry.artifact_sha256,
                "test_roc_auc": m["test"]["metrics"]["roc_auc"]["value"],
                "metrics": dg.MetadataValue.md(_metrics_table(m)),
                "lift_and_gains": dg.MetadataValue.md(_deciles_table(m)),
                "split": dg.MetadataValue.json(m["split"]),
                "roc": _png("ROC", charts.roc_png(m)),
                "gains": _png("gains", charts.gains_png(m)),
                "calibration": _png("calibration", charts.calibration_png(m)),
            })
        if wh.table_exists("ml", "model_registry"):
            metadata.update(table_metadata(wh, "ml", "model_registry", preview_rows=5, order_by="trained_at desc"))
        yield dg.MaterializeResult(asset_key=REGISTRY, metadata=metadata)
        yield _check(checks.promotion(run))


@dg.asset(key=SCORES, group_name="scoring", owners=OWNERS, kinds={ENGINE}, pool=warehouse_pool("ml__lead_scores"),
          **layer_policies("scoring"),
          deps=[REGISTRY, FEATURES],
          check_specs=[dg.AssetCheckSpec(
              "score_and_feature_drift", asset=SCORES,
              description="WARN when the population stability index of the scores or of a main feature, current "
                          "open leads against the training slice, is above drift.warn_psi (0.25).")],
          description=(
              "The open leads at the latest as_of scored by the current (latest promoted) model: calibrated "
              "probability of converting within the label window, tier A-D by score quantile, the top contributing "
              "features (the logistic baseline's log-odds contributions). The same scores land as model_score_computed "
              "events (source ml) in landing/events/ml/ and are ingested into core.events."))
@retry_transient
def lead_scores(context: dg.AssetExecutionContext, config: ScoringRunConfig, warehouse: WarehouseResource):
    settings, env = _settings(config), warehouse.settings()
    with warehouse.open() as wh:
        run = score_leads(wh, env.data_dir, load_plan(), env.pii_key(), settings)
        context.log.info(f"lead scores: {run.status} {run.reason}")
        metadata = {"status": run.status, "reason": run.reason, "seconds": dg.MetadataValue.json(run.seconds)}
        if run.status == "scored":
            tiers = run.scores.groupby("tier").score.agg(["count", "min", "max"]).reset_index()
            metadata.update({
                "model_version": run.model_version, "as_of": str(run.as_of), "scored_leads": len(run.scores),
                "tiers": dg.MetadataValue.md(markdown_table(pa.Table.from_pandas(tiers.round(4), preserve_index=False))),
                "events_file": run.events_file or "",
                "events_accepted": sum(o.events_accepted for o in run.events_ingest),
                "psi": dg.MetadataValue.json(run.drift),
            })
        if wh.table_exists("ml", "lead_scores"):
            metadata.update(table_metadata(wh, "ml", "lead_scores", order_by="as_of desc, score desc"))
        yield dg.MaterializeResult(asset_key=SCORES, metadata=metadata)
        yield _check(checks.drift(run, settings))
