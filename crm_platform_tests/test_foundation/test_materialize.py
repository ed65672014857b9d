"""`crm-platform materialize` runs the code location in-process against the configured warehouse."""
import subprocess
import sys

import duckdb

from crm_platform.plan.loader import load_plan
from crm_platform.runner import materialize_assets


def _catalog(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select * from governance.tracking_plan order by all").fetchall()


def test_materialize_publishes_the_tracking_plan_and_reruns_identically(data_dir):
    lines = []
    assert materialize_assets(selection=None, partition=None, echo=lines.append)
    assert any(line.split()[:2] == ["ok", "governance__tracking_plan"] and "122 rows" in line for line in lines), lines
    plan = load_plan()
    first = _catalog(data_dir / "warehouse.duckdb")
    assert len(first) == sum(len(v.properties) for _, v in plan.iter_versions())
    assert {row[0] for row in first} == {plan.version}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select pii, property_type, required from governance.tracking_plan "
                           "where event_type = 'lead_created' and property = 'email'").fetchall() == [(True, "email", False)]
        assert con.execute("select count(distinct schema_version) from governance.tracking_plan "
                           "where event_type = 'activity_logged'").fetchone() == (2,)
    assert materialize_assets(selection="group:governance", partition=None, echo=lines.append)
    assert _catalog(data_dir / "warehouse.duckdb") == first


def test_the_command_exits_non_zero_when_the_selection_matches_nothing(data_dir):
    cmd = [sys.executable, "-m", "crm_platform.cli", "materialize", "--select", "group:no_such_group"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    assert "matches no asset" in p.stdout


def test_the_command_line_prints_progress_and_exits_zero(data_dir):
    p = subprocess.run([sys.executable, "-m", "crm_platform.cli", "materialize", "--select", "governance/tracking_plan"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok      governance__tracking_plan" in p.stdout and "succeeded" in p.stdout
    assert (data_dir / "warehouse.duckdb").exists()


def test_a_steps_line_names_each_asset_once_with_its_partitions():
    from crm_platform.runner import _materialized

    assert _materialized({"core/events": (3489379, 1), "marts/funnel_daily": (1090, 730), "ml/model": (None, 1)}) == (
        "core/events 3,489,379 rows; marts/funnel_daily 1,090 rows (730 partitions); ml/model")
