"""What the scoring layer checks about itself (defs/ wires them): promotion against the model in
use (blocking), and drift of the scores and main features against training (a warning)."""
from __future__ import annotations

from crm_platform.ingest.checks import CheckResult
from crm_platform.scoring.config import ScoringConfig

REGISTRY = ("ml", "model_registry")
SCORES = ("ml", "lead_scores")


def promotion(run) -> CheckResult:
    """Passes when this run's model is the one in use: promoted (first, or not worse than the current
    model beyond the margin), or reused as registered and promoted. Fails (ERROR, blocking) for a refused
    model; warns when no model could be trained on the data (the model in use, if any, stays)."""
    if run.entry is None:  # nothing new to promote; a warning, so that a young warehouse still materializes
        return CheckResult(REGISTRY, "not_worse_than_current", False, "WARN",
                           f"no model trained: {run.reason}", {"status": run.status})
    p = run.entry.metrics.get("promotion", {})
    meta = {"model_version": run.entry.model_version, "status": run.entry.status, "metric": p.get("metric"),
            "margin": p.get("margin"), "candidate": p.get("candidate"), "current": p.get("current"),
            "current_model": p.get("current_model")}
    if p.get("difference"):
        meta["auc_difference"] = p["difference"]
    return CheckResult(REGISTRY, "not_worse_than_current", run.promoted, "ERROR",
                       p.get("reason", run.reason) + (" (reused)" if run.status == "reused" else ""),
                       {k: v for k, v in meta.items() if v is not None})


def drift(run, config: ScoringConfig) -> CheckResult:
    if run.status != "scored":
        return CheckResult(SCORES, "score_and_feature_drift", True, "WARN", f"nothing scored: {run.reason}", {})
    limit = config.drift.warn_psi
    high = {k: v for k, v in run.drift.items() if v > limit}
    text = (f"population stability index against the training slice at most {limit} for the score and the "
            f"{len(run.drift) - 1} main features" if not high else
            f"{len(high)} of {len(run.drift)} above {limit}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                                           sorted(high.items(), key=lambda kv: -kv[1])))
    return CheckResult(SCORES, "score_and_feature_drift", not high, "WARN", text,
                       {"psi": run.drift, "warn_psi": limit})
