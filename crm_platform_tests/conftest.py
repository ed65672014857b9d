"""Fixtures shared by every layer's tests."""
from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CRM_DATA_DIR with the warehouse inside it, as the CLI and assets see it."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("CRM_DATA_DIR", str(d))
    monkeypatch.setenv("CRM_DUCKDB_PATH", str(d / "warehouse.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return d
