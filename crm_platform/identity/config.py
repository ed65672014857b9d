"""The identity graph's settings (`identity.yaml` next to this file, or a file of the same shape)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("identity.yaml")


@dataclass(frozen=True)
class Probabilistic:
    enabled: bool = True
    threshold: float = 0.99
    keep_scores_from: float = 0.5
    min_training_records: int = 1000
    retrain_growth: float = 2.0
    seed: int = 42


@dataclass(frozen=True)
class Guards:
    max_records_per_value: int = 20
    max_cluster_size: int = 50
    blocked_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdentityConfig:
    probabilistic: Probabilistic = field(default_factory=Probabilistic)
    guards: Guards = field(default_factory=Guards)

    @classmethod
    def load(cls, path: Path | None = None) -> IdentityConfig:
        raw = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IdentityConfig:
        unknown = set(raw) - {"probabilistic", "guards"}
        if unknown:
            raise ValueError(f"identity config: unknown section(s) {sorted(unknown)}")
        return cls(probabilistic=_section(Probabilistic, raw.get("probabilistic")),
                   guards=_section(Guards, raw.get("guards")))

    def with_threshold(self, threshold: float) -> IdentityConfig:
        return replace(self, probabilistic=replace(self.probabilistic, threshold=threshold))


def _section(kind, raw: dict[str, Any] | None):
    raw = dict(raw or {})
    names = {f.name for f in fields(kind)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"identity config: unknown {kind.__name__.lower()} setting(s) {sorted(unknown)}")
    if "blocked_values" in raw:
        raw["blocked_values"] = tuple(str(v) for v in raw["blocked_values"] or ())
    return kind(**raw)
