"""The code location loads the same way for `dagster dev` ([tool.dg]) and for workspace.yaml, and its
assets follow the house conventions."""
import os
import subprocess
import sys
import tomllib

import dagster as dg
import yaml
from dagster._core.workspace.load_target import get_target_from_toml_data

from crm_platform.definitions import defs
from crm_platform_tests.conftest import PROJECT_ROOT

GROUPS = {"ingest", "identity", "attribution", "features", "scoring", "marts", "governance"}


def test_pyproject_and_workspace_name_the_same_code_location():
    dg_target = get_target_from_toml_data(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text()))
    (entry,) = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]
    assert (dg_target.module_name, dg_target.location_name) == (
        entry["python_module"]["module_name"], entry["python_module"]["location_name"]) == (
        "crm_platform.definitions", "crm_platform")


def test_every_asset_follows_the_conventions():
    graph = defs().resolve_asset_graph()
    keys = graph.materializable_asset_keys
    assert keys, "no asset defined"
    for key in keys:
        node = graph.get(key)
        assert len(key.path) == 2, f"{key}: asset key must be [schema, table]"
        assert node.group_name in GROUPS, f"{key}: group {node.group_name!r} is not a layer"
        assert node.kinds & {"duckdb", "clickhouse"}, f"{key}: kinds must name the engine"
        assert node.description, f"{key}: no description"
        assert node.owners, f"{key}: no owner"


def test_the_instance_settings_keep_duckdb_to_one_writer():
    settings = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert settings["concurrency"]["pools"]["default_limit"] == 1
    for asset in defs().assets:
        assert asset.op.pool == "warehouse_duckdb", asset.keys


def test_dagster_loads_both_targets(tmp_path):
    """What `dagster dev` and `dagster-webserver -w workspace.yaml` load, checked by Dagster's own CLI."""
    dagster = [sys.executable, "-m", "dagster", "definitions", "validate"]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    for args in ([], ["-w", "workspace.yaml"]):
        p = subprocess.run(dagster + args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        assert "crm_platform" in p.stdout + p.stderr


def test_owners_come_from_the_tracking_plan():
    from crm_platform.plan.loader import load_plan

    graph = defs().resolve_asset_graph()
    plan = load_plan()
    owner = {t: "team:" + et.owner.replace("-", "_") for t, et in plan.event_types.items()}
    assert graph.get(dg.AssetKey(["ml", "lead_scores"])).owners == [owner["model_score_computed"]]
    assert graph.get(dg.AssetKey(["marts", "campaign_performance"])).owners == [owner["campaign_touch"]]
    assert graph.get(dg.AssetKey(["identity", "lead_identity_map"])).owners == [owner["lead_merged"]]
    events = graph.get(dg.AssetKey(["core", "events"])).owners
    assert set(events) == {"team:data_platform", *owner.values()} and len(events) == len(set(events))


def test_on_clickhouse_only_runs_of_the_same_step_wait_for_each_other():
    """ClickHouse takes concurrent writers: one pool per step (two runs of one step would build the
    same tables), not one pool for the whole warehouse."""
    script = ("from crm_platform.definitions import defs\n"
              "for a in defs().assets: print(a.op.name, a.op.pool)")
    p = subprocess.run([sys.executable, "-c", script], env={**os.environ, "CRM_WAREHOUSE": "clickhouse"},
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    pools = dict(line.split() for line in p.stdout.splitlines() if line.strip())
    assert len(pools) > 5 and len(set(pools.values())) == len(pools)
    assert pools["event_log"] == "warehouse_clickhouse_event_log"
    assert pools["marts__funnel_daily"] == "warehouse_clickhouse_marts__funnel_daily"
