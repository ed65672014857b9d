"""Daily partitions through `crm-platform materialize`: a backfill of three partitions (one run) equals
three single-partition runs, both equal a full rebuild on those days, and a run leaves other days be."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from crm_platform.attribution.run import run_attribution
from crm_platform.marts.build import build_mart
from crm_platform.plan.loader import load_plan
from crm_platform.runner import materialize_assets
from crm_platform_tests.test_ingest.helpers import warehouse
from crm_platform_tests.test_marts.test_marts_by_hand import (
    IDENTITY,
    NO_BOOTSTRAP,
    build_world,
    read,
)
from crm_platform_tests.test_marts.world import write_identity_map

DAYS = ("2026-04-27", "2026-04-28", "2026-04-29")  # C is created, then contacted; nothing on the 29th


def _funnel() -> pd.DataFrame:
    with warehouse(read_only=True) as wh:
        return read(wh, "funnel_daily")


def _drop_funnel() -> None:
    with warehouse() as wh:
        wh.execute(f"drop table if exists {wh.table_name('marts', 'funnel_daily')}")


def _materialize(partition: str | None) -> None:
    lines = []
    assert materialize_assets("marts/funnel_daily", partition, echo=lines.append), "\n".join(lines)


@pytest.fixture
def world(engine):
    with warehouse() as wh:
        build_world().write(wh)
        write_identity_map(wh, IDENTITY)
        run_attribution(wh, load_plan(), NO_BOOTSTRAP)
        build_mart(wh, "funnel_daily", load_plan())  # the whole table, as before partitions
    full = _funnel()
    _drop_funnel()
    return full


def test_a_backfill_of_three_partitions_equals_three_single_runs_and_the_full_rebuild(world):
    expected = world[world.day.astype(str).isin(DAYS)].reset_index(drop=True)
    assert list(expected.day.astype(str)) == ["2026-04-27", "2026-04-28"]

    _materialize(f"{DAYS[0]}...{DAYS[-1]}")
    backfilled = _funnel()
    _drop_funnel()
    for day in DAYS:
        _materialize(day)
    singles = _funnel()
    pd.testing.assert_frame_equal(backfilled, singles)
    pd.testing.assert_frame_equal(backfilled, expected)


def test_a_partition_run_replaces_its_day_and_keeps_the_others(world):
    _materialize(None)  # no partition: every partition, the whole history
    pd.testing.assert_frame_equal(_funnel(), world)
    with warehouse() as wh:  # two days get a stale row (say, a channel since renamed)...
        stale = pa.Table.from_pandas(world[world.day.astype(str).isin(["2026-05-12", "2026-05-30"])].assign(
            channel="stale"), preserve_index=False)
        wh.insert_arrow("marts", "funnel_daily", stale)
    _materialize("2026-05-30")  # ...one day's run rewrites that day; the other stale day stays as it is
    after = _funnel()
    assert list(after[after.channel == "stale"].day.astype(str)) == ["2026-05-12"]
    pd.testing.assert_frame_equal(after[after.channel != "stale"].reset_index(drop=True), world)


def test_a_partition_outside_the_range_or_of_an_unpartitioned_selection_is_refused(data_dir):
    lines = []
    assert not materialize_assets("marts/funnel_daily", "1999-01-01", echo=lines.append)
    assert "no such partition" in lines[-1]
    assert not materialize_assets("marts/funnel_daily", "2026-05-31...2026-05-01", echo=lines.append)
    assert "ends before it starts" in lines[-1]
    assert not materialize_assets("group:ingest", "2026-05-01", echo=lines.append)
    assert "no selected asset is partitioned" in lines[-1]
