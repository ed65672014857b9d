"""Scoring settings (`scoring.yaml` next to this file, or a file of the same shape)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("scoring.yaml")
CALIBRATIONS = ("sigmoid", "isotonic")


@dataclass(frozen=True)
class Split:
    train: float = 0.6
    validation: float = 0.2
    min_positives: int = 5


@dataclass(frozen=True)
class Model:
    learning_rate: float = 0.05
    max_iter: int = 300
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0


@dataclass(frozen=True)
class Baseline:
    C: float = 0.5


@dataclass(frozen=True)
class Evaluation:
    bootstrap_replicates: int = 200
    calibration_bins: int = 10


@dataclass(frozen=True)
class Promotion:
    metric: str = "roc_auc"
    margin: float = 0.01


@dataclass(frozen=True)
class Drift:
    features: int = 8
    bins: int = 10
    warn_psi: float = 0.25


@dataclass(frozen=True)
class ScoringConfig:
    seed: int = 20260101
    split: Split = field(default_factory=Split)
    model: Model = field(default_factory=Model)
    calibration: str = "sigmoid"
    baseline: Baseline = field(default_factory=Baseline)
    evaluation: Evaluation = field(default_factory=Evaluation)
    promotion: Promotion = field(default_factory=Promotion)
    tiers: tuple[float, ...] = (0.25, 0.5, 0.75)
    top_features: int = 3
    drift: Drift = field(default_factory=Drift)

    @classmethod
    def load(cls, path: Path | None = None) -> ScoringConfig:
        doc = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ScoringConfig:
        nested = {"split": Split, "model": Model, "baseline": Baseline, "evaluation": Evaluation,
                  "promotion": Promotion, "drift": Drift}
        known = {f.name for f in fields(cls)}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"scoring config: unknown key(s) {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in doc.items():
            if key in nested:
                sub = nested[key]
                bad = set(value or {}) - {f.name for f in fields(sub)}
                if bad:
                    raise ValueError(f"scoring config: unknown key(s) under {key}: {', '.join(sorted(bad))}")
                kwargs[key] = sub(**(value or {}))
            elif key == "tiers":
                kwargs[key] = tuple(float(v) for v in value)
            else:
                kwargs[key] = value
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"scoring config: calibration {self.calibration!r} is not one of {CALIBRATIONS}")
        if not 0 < self.split.train < self.split.train + self.split.validation < 1:
            raise ValueError("scoring config: split shares must satisfy 0 < train < train + validation < 1")
        if list(self.tiers) != sorted(self.tiers) or len(self.tiers) != 3 or not all(0 < q < 1 for q in self.tiers):
            raise ValueError("scoring config: tiers are three increasing quantiles in (0, 1)")

    def with_replicates(self, replicates: int) -> ScoringConfig:
        return replace(self, evaluation=replace(self.evaluation, bootstrap_replicates=int(replicates)))

    def training_parameters(self) -> dict[str, Any]:
        """What decides the fitted model (and so enters model_version): not the evaluation, promotion,
        tiers or drift settings, which change nothing in the artifact."""
        return {"seed": self.seed, "split": asdict(self.split), "model": asdict(self.model),
                "calibration": self.calibration, "baseline": asdict(self.baseline)}

    def training_parameters_json(self) -> str:
        return json.dumps(self.training_parameters(), sort_keys=True)
