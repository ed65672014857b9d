"""Fixtures shared by every layer's tests: a data directory, a real ClickHouse server for the session,
and `engine`, which runs a test once on each warehouse engine."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crm_platform.warehouse import ClickHouseWarehouse
from crm_platform.warehouse.local_clickhouse import LocalClickHouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("duckdb", "clickhouse")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CRM_DATA_DIR with the warehouse inside it, as the CLI and assets see it."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("CRM_DATA_DIR", str(d))
    monkeypatch.setenv("CRM_DUCKDB_PATH", str(d / "warehouse.duckdb"))
    monkeypatch.setenv("CRM_WAREHOUSE", "duckdb")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return d


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory) -> LocalClickHouse:
    """A real ClickHouse server (chdb-core) on a free port, stopped by its PID when the session ends."""
    with LocalClickHouse(tmp_path_factory.mktemp("clickhouse")) as server:
        yield server


@pytest.fixture(params=ENGINES)
def engine(request, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs once per engine; the environment (CONTRACT §2) points everything, CLI and child
    processes included, at that engine's warehouse: a fresh database per test on ClickHouse."""
    if request.param == "clickhouse":
        server = request.getfixturevalue("clickhouse")
        database = "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
        for name, value in server.env(database).items():
            monkeypatch.setenv(name, value)
        yield request.param
        with ClickHouseWarehouse(port=server.port, database=database) as wh:
            wh.client.command(f'drop database if exists "{database}"')
            wh.client.command(f'drop database if exists "{wh.pii_database}"')
    else:
        yield request.param
