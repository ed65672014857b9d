"""Feature and label settings (`features.yaml` next to this file, or a file of the same shape)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("features.yaml")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Labels:
    window_days: int = 90
    event_type: str = "opportunity_closed"
    outcome: str = "won"


@dataclass(frozen=True)
class FeatureConfig:
    weekday: str = "monday"
    current: bool = True
    windows_days: tuple[int, ...] = (7, 30, 90)
    labels: Labels = field(default_factory=Labels)

    @classmethod
    def load(cls, path: Path | None = None) -> FeatureConfig:
        return cls.from_dict(yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureConfig:
        problems = [f"unknown setting {k!r}" for k in raw if k not in ("snapshots", "windows_days", "labels")]
        snapshots = dict(raw.get("snapshots") or {})
        problems += [f"unknown setting snapshots.{k}" for k in snapshots if k not in ("weekday", "current")]
        labels = dict(raw.get("labels") or {})
        problems += [f"unknown setting labels.{k}" for k in labels if k not in ("window_days", "event_type", "outcome")]
        windows = tuple(int(w) for w in raw.get("windows_days") or (7, 30, 90))
        if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
            problems.append("windows_days must be distinct positive day counts")
        weekday = str(snapshots.get("weekday", "monday")).lower()
        if weekday not in WEEKDAYS:
            problems.append(f"snapshots.weekday {weekday!r} is not a weekday")
        config = cls(weekday=weekday, current=bool(snapshots.get("current", True)), windows_days=tuple(sorted(windows)),
                     labels=Labels(**labels) if not problems else Labels())
        if config.labels.window_days <= 0:
            problems.append("labels.window_days must be positive")
        if problems:
            raise ValueError("features config: " + "; ".join(problems))
        return config

    @property
    def longest_window(self) -> int:
        return max(self.windows_days)
