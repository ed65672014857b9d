"""Shared fixtures: the real plan, and writable copies of it for breaking."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crm_platform.plan.loader import PLAN_DIR, load_plan
from crm_platform.plan.model import TrackingPlan


@pytest.fixture(scope="session")
def plan() -> TrackingPlan:
    return load_plan()


@pytest.fixture
def plan_copy(tmp_path: Path) -> Path:
    """A copy of the package's plan directory (YAML only) to edit."""
    dest = tmp_path / "plan"
    (dest / "events").mkdir(parents=True)
    shutil.copy(PLAN_DIR / "plan.yaml", dest / "plan.yaml")
    for path in (PLAN_DIR / "events").glob("*.yaml"):
        shutil.copy(path, dest / "events" / path.name)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace `old` (which must occur exactly `count` times) by `new` in a plan file."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """1-based line number of the nth line containing `needle`."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[nth - 1]
