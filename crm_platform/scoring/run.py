"""Lead scoring against a warehouse: train (or reuse) and register a model, then score the open leads
at the latest as_of into `ml.lead_scores` and as `model_score_computed` events.

- `train_model`: reads features joined to labels (SQL in the engine), derives `model_version` from
  the feature and label versions, a fingerprint of the training rows and the training parameters.
  A version already registered is reused, after its artifact's sha256 verifies: nothing is
  retrained. Otherwise it splits by as_of, fits, calibrates, evaluates on the test slice against the
  logistic baseline and the current model (on the same rows), and registers the candidate as
  `promoted` or `refused` (worse than the current model by more than the promotion margin).
- `score_leads`: the current (latest promoted) model scores the open leads at the latest as_of;
  tiers A-D by score quantile; the batch replaces that (model, as_of) in `ml.lead_scores`; the
  scores land as an event file under `landing/events/ml/` and are ingested at once, as identity
  decisions are. Event ids derive from (model, as_of, lead, score), and `occurred_at` is the as_of,
  so a rerun lands the same bytes, which add nothing.
- Consent (governance/consent.yaml): leads without a consent that gates scoring (profiling, by
  default) are neither learnt from nor scored, and their earlier rows leave `ml.lead_scores` when a
  batch is written; no `model_score_computed` event is written for them.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from crm_platform.governance.consent import ConsentConfig
from crm_platform.ingest.event_files import FileOutcome
from crm_platform.ingest.landing import PLATFORM_WRITTEN
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.model import TrackingPlan
from crm_platform.scoring import dataset as ds
from crm_platform.scoring import evaluate as ev
from crm_platform.scoring import registry as reg
from crm_platform.scoring.config import ScoringConfig
from crm_platform.scoring.model import ScoringModel, fit
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render
from crm_platform.warehouse.tables import TableDef

SCORES_DIR = next(p for p in PLATFORM_WRITTEN if p.startswith("events/ml")).rstrip("/")
SOURCE, PRODUCER, SCHEMA_VERSION, EVENT_TYPE = "ml", "crm_platform.scoring", "2026-01-1", "model_score_computed"
TIERS = ("A", "B", "C", "D")
# OpenMP threads for fitting and predicting. One by default: on this 2-core machine, shared with the
# engine, a second thread made fitting 5-7x slower under load (spin-waiting); see the benchmark.
THREADS = 1

LEAD_SCORES = TableDef(reg.SCHEMA, "lead_scores", (
    ("lead_id", "string"), ("model_version", "string"), ("as_of", "timestamp"), ("score", "double"),
    ("tier", "string"), ("scored_at", "timestamp"), ("top_features", "json"),
), order_by=("as_of", "lead_id"), partition_by="as_of", low_cardinality=("model_version", "tier"),
    description="A score per (lead, model_version, as_of): calibrated probability, tier A-D, top features.")
BATCH = pa.schema([("lead_id", pa.string()), ("model_version", pa.string()), ("as_of", pa.timestamp("us")),
                   ("score", pa.float64()), ("tier", pa.string()), ("scored_at", pa.timestamp("us")),
                   ("top_features", pa.string())])


@dataclass
class TrainingRun:
    status: str  # trained | reused | insufficient_data
    reason: str = ""
    entry: reg.RegisteredModel | None = None
    current: reg.RegisteredModel | None = None  # the model in use before this run
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.entry is not None and self.entry.status == reg.PROMOTED


@dataclass
class ScoringRun:
    status: str  # scored | no_model | nothing_to_score
    reason: str = ""
    model_version: str | None = None
    as_of: datetime | None = None
    scores: pd.DataFrame | None = None
    events_file: str | None = None
    events_ingest: list[FileOutcome] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _single(frame: pd.DataFrame, column: str) -> str:
    values = sorted(set(frame[column].dropna()))
    if len(values) != 1:
        raise ds.InsufficientData(f"{column}: expected one version in the training rows, found {values}")
    return values[0]


def train_model(wh: Warehouse, data_dir: Path, config: ScoringConfig | None = None,
                now: datetime | None = None, consent: ConsentConfig | None = None) -> TrainingRun:
    config = config or ScoringConfig.load()
    started = time.perf_counter()
    with wh.exclusive("scoring"):
        current = reg.current(wh)
        table = ds.read_training_rows(wh, consent)
        if table is None or table.num_rows == 0:
            return TrainingRun("insufficient_data", "no labelled rows yet: features.lead_labels is missing or empty "
                               "(a label exists once its window has ended)", current=current)
        columns = ds.Columns.of(table.schema)
        frame = ds.to_frame(table, columns)
        fversion, lversion = _single(frame, "feature_version"), _single(frame, "label_version")
        fingerprint = ds.fingerprint(frame, columns)
        params = config.training_parameters_json()
        version = reg.model_version(fversion, lversion, fingerprint, params)
        seconds = {"read": round(time.perf_counter() - started, 3)}
        known = reg.find(wh, version)
        if known is not None:
            reg.load_artifact(data_dir, known)  # verifies: a reused model must still be the one registered
            return TrainingRun("reused", f"model {version} is registered for these rows and parameters",
                               known, current, seconds)
        try:
            split = ds.split_by_as_of(frame, config.split)
        except ds.InsufficientData as e:
            return TrainingRun("insufficient_data", str(e), current=current, seconds=seconds)
        train, validation = frame[split.train], frame[split.validation]
        with threadpool_limits(THREADS):
            model = fit(train, validation, columns, config)
            seconds["fit"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
            metrics = _evaluate(wh, data_dir, model, frame, split, current, config)
            model.drift_reference = drift_reference(model, train, config)
        seconds["evaluate"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
        path, sha = reg.save_artifact(data_dir / "models", version, model)
        promotion = metrics["promotion"]
        entry = reg.RegisteredModel(
            model_version=version, trained_at=_naive(now or datetime.now(UTC)), feature_version=fversion,
            label_version=lversion, train_rows=int(split.train.sum()), metrics=reg.json_safe(metrics),
            artifact_path=path, artifact_sha256=sha, status=reg.PROMOTED if promotion["promote"] else reg.REFUSED,
            parameters=json.loads(params), data_fingerprint=fingerprint)
        reg.register(wh, entry)
        seconds["register"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
        return TrainingRun("trained", promotion["reason"], entry, current, seconds)


def _evaluate(wh: Warehouse, data_dir: Path, model: ScoringModel, frame: pd.DataFrame, split: ds.TimeSplit,
              current: reg.RegisteredModel | None, config: ScoringConfig) -> dict:
    test = frame[split.test]
    y, leads = test.label.to_numpy(), test.lead_id.to_numpy()
    e = config.evaluation
    kw = {"replicates": e.bootstrap_replicates, "seed": config.seed, "bins": e.calibration_bins}
    p = model.predict(test)
    out = {"split": split.summary(frame), "boundaries": split.boundaries,
           "validation": ev.point_metrics(frame.label[split.validation].to_numpy(), model.predict(frame[split.validation]),
                                          e.calibration_bins),
           "test": _thin(ev.evaluate(y, p, leads, **kw)),
           "baseline": _thin(ev.evaluate(y, model.predict_baseline(test), leads, **kw))}
    metric, margin = config.promotion.metric, config.promotion.margin
    cand = out["test"]["metrics"][metric]["value"]
    promotion = {"metric": metric, "margin": margin, "candidate": cand, "current_model": None, "current": None,
                 "promote": True, "reason": "no model registered yet: the first is promoted"}
    if current is not None:
        promotion["current_model"] = current.model_version
        old = reg.load_artifact(data_dir, current)
        missing = [c for c in old.columns.all if c not in frame.columns]
        if missing:
            promotion["reason"] = (f"the current model {current.model_version} reads columns the features no longer "
                                   f"have ({', '.join(missing[:5])}): not comparable, the candidate is promoted")
        else:
            p_old = old.predict(test)
            out["current"] = _thin(ev.evaluate(y, p_old, leads, **kw))
            old_value = out["current"]["metrics"][metric]["value"]
            promotion["current"] = old_value
            if metric == "roc_auc":
                promotion["difference"] = ev.paired_auc_difference(y, p, p_old, leads, replicates=e.bootstrap_replicates,
                                                                   seed=config.seed)
            lower_is_better = metric in ("brier", "log_loss", "ece")
            worse_by = (cand - old_value) if lower_is_better else (old_value - cand)
            promotion["promote"] = bool(worse_by <= margin)
            promotion["reason"] = (f"{metric} {cand:.4f} against the current model's {old_value:.4f} on the same "
                                   f"{len(test)} test rows: " + (f"within the margin of {margin}, promoted"
                                                                  if promotion["promote"] else
                                                                  f"worse by {worse_by:.4f} > {margin}, refused"))
    out["promotion"] = promotion
    # The headline figures at the top level too (what a summary reads): the test slice's values.
    out.update({name: m["value"] for name, m in out["test"]["metrics"].items()})
    return out


def _thin(result: dict, points: int = 200) -> dict:
    """The ROC curve thinned to about `points` points (it is stored in the registry's metrics)."""
    fpr, tpr = result["roc"]["fpr"], result["roc"]["tpr"]
    if len(fpr) > points:
        keep = sorted(set(np.linspace(0, len(fpr) - 1, points).round().astype(int)))
        result["roc"] = {"fpr": [fpr[i] for i in keep], "tpr": [tpr[i] for i in keep]}
    return result


def drift_reference(model: ScoringModel, train: pd.DataFrame, config: ScoringConfig) -> dict:
    """Quantile bins and shares of the score and of the main numeric features on the training slice
    (main: the largest mean absolute contribution in the baseline)."""
    names, contrib = model.contributions(train)
    weight = dict(zip(names, np.abs(contrib).mean(axis=0)))
    main = sorted((n for n in model.columns.numeric), key=lambda n: -weight.get(n, 0.0))[:config.drift.features]
    out = {}
    for name, values in [("score", model.predict(train)), *((n, train[n].to_numpy()) for n in main)]:
        edges = ev.quantile_edges(values, config.drift.bins)
        out[name] = {"edges": [float(v) for v in edges], "shares": [float(v) for v in ev.binned_shares(values, edges)]}
    return out


def drift(model: ScoringModel, frame: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    out = {}
    for name, ref in model.drift_reference.items():
        values = scores if name == "score" else frame[name].to_numpy()
        out[name] = round(ev.psi(np.array(ref["shares"]), values, np.array(ref["edges"])), 6)
    return out


def tiers(scores: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """A for the top quarter of scores (by default), then B, C, D; equal scores share a tier."""
    if not len(scores):
        return np.array([], dtype=object)
    rank = pd.Series(-scores).rank(method="min").to_numpy() - 1  # 0 for the best
    share = rank / len(scores)
    return np.array(TIERS, dtype=object)[np.searchsorted(np.asarray(cuts), share, side="right")]


def score_leads(wh: Warehouse, data_dir: Path, plan: TrackingPlan, pii_key: bytes,
                config: ScoringConfig | None = None, now: datetime | None = None,
                consent: ConsentConfig | None = None) -> ScoringRun:
    config = config or ScoringConfig.load()
    started = time.perf_counter()
    landing_dir = data_dir / "landing"
    with wh.exclusive("scoring"):
        entry = reg.current(wh)
        if entry is None:
            return ScoringRun("no_model", "no promoted model in ml.model_registry: materialize ml/model_registry first")
        model = reg.load_artifact(data_dir, entry)
        table = ds.read_current_rows(wh, consent)
        if table is None or table.num_rows == 0:
            return ScoringRun("nothing_to_score", "features.lead_features has no open lead at its latest as_of",
                              entry.model_version)
        frame = ds.to_frame(table, model.columns)
        fversion = _single(frame, "feature_version")
        if fversion != entry.feature_version:
            return ScoringRun("no_model", f"the current model {entry.model_version} was trained on features "
                              f"{entry.feature_version}, the features are now {fversion}: retrain "
                              "(materialize ml/model_registry) before scoring", entry.model_version)
        as_of = frame.as_of.iloc[0].to_pydatetime()
        with threadpool_limits(THREADS):
            scores = model.predict(frame)
            top = model.top_features(frame, config.top_features)
        seconds = {"score": round(time.perf_counter() - started, 3)}
        scored_at = _naive(now or datetime.now(UTC))
        out = pd.DataFrame({"lead_id": frame.lead_id, "model_version": entry.model_version, "as_of": frame.as_of,
                            "score": scores, "tier": tiers(scores, config.tiers), "scored_at": scored_at,
                            "top_features": top})
        write_scores(wh, out, entry.model_version, as_of, consent)
        seconds["write"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
        path = write_score_events(landing_dir, out)
        outcomes = ingest_landing(wh, landing_dir, plan, pii_key, only=[path])
        failed = [o for o in outcomes if o.records_quarantined or o.status not in ("complete", "duplicate_content")]
        if failed:  # our own events must validate: anything else is a bug, not bad data
            raise RuntimeError(f"score events in {path} did not all validate: {failed[0]}")
        seconds["events"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
        return ScoringRun("scored", "", entry.model_version, as_of, out, path, outcomes, drift(model, frame, scores),
                          seconds)


def write_scores(wh: Warehouse, scores: pd.DataFrame, version: str, as_of: datetime,
                 consent: ConsentConfig | None = None) -> int:
    """Replace the (model_version, as_of) batch in ml.lead_scores, built in the engine and swapped in;
    earlier rows of leads whose consent no longer allows scoring are dropped."""
    batch = pa.Table.from_pandas(scores[list(BATCH.names)], schema=BATCH, preserve_index=False)
    wh.replace_table(reg.SCHEMA, "lead_scores_batch", batch)
    fragments, params = ds.consent_excluded(wh, consent)
    params = {**params, "model_version": version, "as_of": as_of}
    name = "merge_scores" if wh.table_exists(reg.SCHEMA, LEAD_SCORES.name) else "first_scores"
    return wh.rebuild_table(LEAD_SCORES, [render(wh, load(ds.PACKAGE, name), params, fragments)])


def event_ids(scores: pd.DataFrame) -> list[str]:
    return ["mls_" + hashlib.sha256(f"{m}|{a.isoformat()}|{lead}|{s!r}".encode()).hexdigest()[:24]
            for m, a, lead, s in zip(scores.model_version, scores.as_of, scores.lead_id, scores.score.astype(float))]


def write_score_events(landing_dir: Path, scores: pd.DataFrame) -> str:
    """The batch as one canonical event file (JSON lines written by DuckDB), named by as_of, model and
    content; it appears whole or not at all, and the same batch gives the same file."""
    target = landing_dir / SCORES_DIR
    target.mkdir(parents=True, exist_ok=True)
    as_of = pd.Timestamp(scores.as_of.iloc[0])
    version = scores.model_version.iloc[0]
    events = pa.table({"event_id": event_ids(scores), "lead_id": scores.lead_id.astype(str).tolist(),
                       "score": scores.score.astype(float).to_numpy(), "tier": scores.tier.tolist(),
                       "top_features": scores.top_features.tolist()})
    occurred = as_of.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tmp = target / f".scores-{version}-{as_of.strftime('%Y%m%dT%H%M%S')}.part"
    con = duckdb.connect()
    try:
        con.register("s", events)
        con.execute(f"""COPY (SELECT '{EVENT_TYPE}' AS event_type, '{SCHEMA_VERSION}' AS schema_version, event_id,
                                     $occurred AS occurred_at, '{SOURCE}' AS source, '{PRODUCER}' AS producer_id,
                                     lead_id,
                                     json_object('model_version', $version, 'score', score, 'tier', tier,
                                                 'as_of', $occurred, 'top_features', top_features::JSON) AS attributes
                              FROM s ORDER BY lead_id) TO '{tmp}' (FORMAT JSON)""",
                    {"occurred": occurred, "version": version})
    finally:
        con.close()
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]
    relative = f"{SCORES_DIR}/scores-{as_of.strftime('%Y%m%dT%H%M%S')}-{version}-{digest}.jsonl"
    if (landing_dir / relative).exists():
        tmp.unlink()  # the same batch landed before: landed files are never rewritten
    else:
        tmp.replace(landing_dir / relative)
    return relative


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
