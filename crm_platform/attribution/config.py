"""Attribution settings (`attribution.yaml` next to this file, or a file of the same shape)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("attribution.yaml")
MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay", "markov", "shapley",
          "logistic_regression")
RULE_MODELS = MODELS[:5]
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Lookback:
    days: float = 90
    steps: int = 0


@dataclass(frozen=True)
class Conversion:
    event_type: str = "opportunity_closed"
    where: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"outcome": ("won",)})
    value: str = "closed_amount"
    dedupe_window_days: float = 3
    source_priority: tuple[str, ...] = ("crm", "api", "cdc", "hubspot", "salesforce")


@dataclass(frozen=True)
class Filter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Models:
    half_life_days: float = 7
    first_weight: float = 0.4
    last_weight: float = 0.4
    markov_order: int = 1
    shapley_min_support: float = 30
    regularization: float = 1.0


@dataclass(frozen=True)
class Bootstrap:
    replicates: int = 200
    confidence: float = 0.95
    seed: int = 20260101


@dataclass(frozen=True)
class AttributionConfig:
    lookback: Lookback = field(default_factory=Lookback)
    conversion: Conversion = field(default_factory=Conversion)
    channels: Filter = field(default_factory=Filter)
    campaigns: Filter = field(default_factory=Filter)
    models: Models = field(default_factory=Models)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)

    @classmethod
    def load(cls, path: Path | None = None) -> AttributionConfig:
        raw = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AttributionConfig:
        _known(raw, {"lookback", "conversion", "channels", "campaigns", "models", "bootstrap"}, "")
        conversion = dict(raw.get("conversion") or {})
        if "where" in conversion:
            where = conversion["where"] or {}
            if not isinstance(where, dict):
                raise ValueError("attribution config: conversion.where must map attributes to values")
            conversion["where"] = {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                                   for k, v in where.items()}
        if "source_priority" in conversion:
            conversion["source_priority"] = tuple(conversion["source_priority"] or ())
        models = raw.get("models") or {}
        _known(models, {"time_decay", "position_based", "markov", "shapley", "logistic_regression"}, "models.")
        flat = {}
        for section, keys in (("time_decay", {"half_life_days": "half_life_days"}),
                              ("position_based", {"first": "first_weight", "last": "last_weight"}),
                              ("markov", {"order": "markov_order"}),
                              ("shapley", {"min_support": "shapley_min_support"}),
                              ("logistic_regression", {"regularization": "regularization"})):
            values = models.get(section) or {}
            _known(values, set(keys), f"models.{section}.")
            flat.update({keys[k]: v for k, v in values.items()})
        config = cls(lookback=_section(Lookback, raw.get("lookback"), "lookback"),
                     conversion=_section(Conversion, conversion, "conversion"),
                     channels=_filter(raw.get("channels"), "channels"),
                     campaigns=_filter(raw.get("campaigns"), "campaigns"),
                     models=_section(Models, flat, "models"),
                     bootstrap=_section(Bootstrap, raw.get("bootstrap"), "bootstrap"))
        config.validate()
        return config

    def validate(self) -> None:
        problems = []
        if self.lookback.days <= 0:
            problems.append("lookback.days must be positive")
        if self.lookback.steps < 0:
            problems.append("lookback.steps must be 0 (no limit) or positive")
        m = self.models
        if m.half_life_days <= 0:
            problems.append("models.time_decay.half_life_days must be positive")
        if not (0 <= m.first_weight and 0 <= m.last_weight and m.first_weight + m.last_weight <= 1):
            problems.append("models.position_based: first and last must be >= 0 and sum to at most 1")
        if m.markov_order not in (1, 2, 3):
            problems.append("models.markov.order must be 1, 2 or 3")
        if m.regularization <= 0:
            problems.append("models.logistic_regression.regularization must be positive")
        if not 0 < self.bootstrap.confidence < 1:
            problems.append("bootstrap.confidence must be between 0 and 1")
        if self.bootstrap.replicates < 0:
            problems.append("bootstrap.replicates must be >= 0")
        for name in (*self.conversion.where, self.conversion.value):
            if not _PROPERTY.match(name):
                problems.append(f"conversion: {name!r} is not an attribute name")
        if problems:
            raise ValueError("attribution config: " + "; ".join(problems))


def _known(raw: dict, names: set[str], prefix: str) -> None:
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"attribution config: unknown setting(s) {sorted(prefix + u for u in unknown)}")


def _section(kind, raw: dict[str, Any] | None, name: str):
    raw = dict(raw or {})
    _known(raw, {f.name for f in fields(kind)}, name + ".")
    return kind(**raw)


def _filter(raw: dict[str, Any] | None, name: str) -> Filter:
    raw = dict(raw or {})
    _known(raw, {"include", "exclude"}, name + ".")
    return Filter(include=tuple(str(x) for x in raw.get("include") or ()),
                  exclude=tuple(str(x) for x in raw.get("exclude") or ()))
