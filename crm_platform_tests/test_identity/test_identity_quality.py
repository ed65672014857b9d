"""The identity graph on the generator's data with all its noise: pairwise F1 against the truth,
the same result on DuckDB and ClickHouse, and an incremental night equal to a full rebuild."""
from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crm_platform.identity.evaluation import pairwise_scores
from crm_platform.identity.run import run_identity
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan
from crm_platform.synth.generate import generate_dataset
from crm_platform.warehouse import ClickHouseWarehouse, DuckDBWarehouse
from crm_platform_tests.test_ingest.helpers import KEY

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
MAP_SQL = "select source_system, source_id, lead_id, match_rule from {} order by source_system, source_id"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("generated")
    generate_dataset(d, leads=2000, days=120, seed=7)
    return d


def _identity_map(wh) -> pd.DataFrame:
    return wh.fetch_arrow(MAP_SQL.format(wh.table_name("identity", "lead_identity_map"))).to_pandas()


def _resolve(wh, landing: Path, when: datetime, full: bool = False):
    plan = load_plan()
    ingest_landing(wh, landing, plan, KEY)
    return run_identity(wh, landing, plan, KEY, now=when, full=full)


def test_pairwise_f1_against_the_truth_and_parity_of_engines(generated, tmp_path, clickhouse):
    truth = pd.read_csv(generated / "truth" / "identity.csv", dtype=str)
    maps, versions = {}, {}
    for engine in ("duckdb", "clickhouse"):
        landing = tmp_path / engine / "landing"
        shutil.copytree(generated / "landing", landing)
        if engine == "duckdb":
            wh = DuckDBWarehouse(tmp_path / engine / "warehouse.duckdb")
        else:
            wh = ClickHouseWarehouse(port=clickhouse.port, database="t_identity_quality")
        with wh:
            run = _resolve(wh, landing, NOW)
            maps[engine] = _identity_map(wh)
            versions[engine] = run.resolution.model.version
            if engine == "clickhouse":
                wh.client.command('drop database if exists "t_identity_quality"')
        scores = pairwise_scores(maps[engine], truth)
        print(f"{engine}: {scores.as_dict()} mode={run.resolution.mode} model={run.resolution.model.version}")
        # Every source record the truth knows is in the map, and pairs are right at 99%.
        assert scores.records == len(truth)
        assert scores.f1 >= 0.99 and scores.precision >= 0.98 and scores.recall >= 0.99, scores.as_dict()
        # Each rule contributes, and none alone would do: the probabilistic edges add recall.
        assert {"email", "phone_name", "external_id", "probabilistic", "source_merge:cdc", "source_merge:hubspot",
                "source_merge:salesforce"} <= set(run.resolution.summary["edges_by_rule"])
    pd.testing.assert_frame_equal(maps["duckdb"], maps["clickhouse"])
    assert versions["duckdb"] == versions["clickhouse"]  # the same records train the same model


def _before(path: Path, cutoff: str) -> bool:
    """Landed files dated (or in a week) before the cutoff: the data of an earlier night."""
    name = path.name
    day = re.search(r"(\d{4}-\d{2}-\d{2})", name)
    if day:
        return day.group(1) < cutoff
    week = re.search(r"(\d{4})-W(\d{2})", name)
    if week:
        monday = datetime.strptime(f"{week.group(1)}-W{week.group(2)}-1", "%G-W%V-%u")
        return monday.strftime("%Y-%m-%d") < cutoff
    return True


def test_an_incremental_night_compares_only_new_records_and_equals_a_full_rebuild(generated, tmp_path):
    landing = tmp_path / "landing"
    for f in (generated / "landing").rglob("*"):
        if f.is_file() and _before(f, "2026-06-01"):
            (landing / f.relative_to(generated / "landing")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, landing / f.relative_to(generated / "landing"))
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as wh:
        first = _resolve(wh, landing, NOW - timedelta(days=30))
        assert first.resolution.trained and first.resolution.mode == "full"
        shutil.copytree(generated / "landing", landing, dirs_exist_ok=True)  # the rest arrives
        night = _resolve(wh, landing, NOW)
        res = night.resolution
        assert res.mode == "incremental" and not res.trained
        assert 0 < res.compared < 0.5 * res.summary["lead_records"], (res.compared, res.summary["lead_records"])
        incremental = _identity_map(wh)
        edges = wh.fetch_arrow("select left_lead_id, right_lead_id, rule, score, accepted from identity.edges "
                               "order by all").to_pandas()
        full = _resolve(wh, landing, NOW + timedelta(hours=1), full=True)
        assert full.resolution.mode == "full" and full.resolution.decisions.empty
        pd.testing.assert_frame_equal(_identity_map(wh), incremental)
        pd.testing.assert_frame_equal(wh.fetch_arrow("select left_lead_id, right_lead_id, rule, score, accepted "
                                                     "from identity.edges order by all").to_pandas(), edges)
