"""The Dagster UI on a small materialized world, as the data team sees it (CONTRACT §1, §2, §8).

`dagster-webserver -w workspace.yaml` serves the code location on an instance whose runs come from
`crm-platform materialize`. Its GraphQL API shows every asset in the contract's groups with a description,
owners from the tracking plan, its engine as a kind, and, from its latest materialization, a row count,
a column schema, a preview and the platform's plots; the checks on their assets; the sensors and the
nightly schedule; never the PII key. Headless Chromium (Debian's `chromium`, driven by Playwright; `.ci/run`
installs it) renders the global asset lineage with every asset on it, and the screenshot is kept.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from crm_platform.defs.conventions import team
from crm_platform.plan.loader import load_plan
from crm_platform.synth import generate_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"ingest", "identity", "attribution", "features", "scoring", "marts", "governance"}
# A secret of this test's own: it must not show anywhere in the UI (CONTRACT §2).
PII_KEY = "ui-test-pii-key-7c1e5a90d2b34f68"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# The charts the platform draws, by asset and metadata label: PNGs inlined in markdown.
PLOTS = {"attribution/summary": {"conversions_by_channel"},
         "ml/model_registry": {"roc", "gains", "calibration"}}
# Blocking checks that must be shown on their assets (and passed on this clean world).
BLOCKING = {("core/ingest_ledger", "ledger_balanced"), ("features/lead_features", "no_leakage")}
PREVIEW_TYPES = {"MarkdownMetadataEntry", "TableMetadataEntry", "PathMetadataEntry", "UrlMetadataEntry"}

REPOSITORIES = """
query {
  repositoriesOrError {
    __typename
    ... on PythonError { message }
    ... on RepositoryConnection { nodes {
      name
      location { name }
      assetGroups { groupName }
      sensors { name sensorType }
      schedules { name cronSchedule executionTimezone }
      assetNodes {
        assetKey { path }
        groupName
        description
        kinds
        owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
        assetChecksOrError {
          __typename
          ... on AssetChecks { checks { name blocking description executionForLatestMaterialization { status } } }
        }
        assetMaterializations(limit: 1) {
          runId
          partition
          metadataEntries {
            __typename
            label
            ... on IntMetadataEntry { intValue }
            ... on TableSchemaMetadataEntry { schema { columns { name type } } }
            ... on MarkdownMetadataEntry { mdStr }
            ... on PathMetadataEntry { path }
            ... on UrlMetadataEntry { url }
          }
        }
      }
    } }
  }
}
"""


@dataclass
class World:
    port: int
    data_dir: Path
    dagster_home: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, query: str, timeout: float = 60) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode()


def _repositories(raw: str) -> list[dict]:
    doc = json.loads(raw)
    assert not doc.get("errors"), doc["errors"]
    repos = doc["data"]["repositoriesOrError"]
    assert repos["__typename"] == "RepositoryConnection", repos
    return repos["nodes"]


def _wait_for_location(world: World, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode}:\n{world.log_tail()}")
        try:
            doc = json.loads(_post(world.port, "{ repositoriesOrError { ... on RepositoryConnection "
                                               "{ nodes { name assetNodes { id } } } } }", timeout=10))
            if any(n["assetNodes"] for n in (doc.get("data") or {}).get("repositoriesOrError", {}).get("nodes") or []):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver loaded no code location with assets in {timeout:.0f} s:\n{world.log_tail()}")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """300 leads over 120 days (enough for labels, so a model is trained and the scoring assets have their
    tables and plots), every asset materialized by `crm-platform materialize` into a fresh DAGSTER_HOME, and
    the webserver serving that instance. The webserver loads the code location while the run goes on."""
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    generate_dataset(data, leads=300, days=120, seed=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CLICKHOUSE_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), CRM_DATA_DIR=str(data), CRM_DUCKDB_PATH=str(data / "warehouse.duckdb"),
               CRM_WAREHOUSE="duckdb", CRM_PII_KEY=PII_KEY)
    w = World(port=_free_port(), data_dir=data, dagster_home=home, log=root / "webserver.log")
    with open(w.log, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
                                 "-h", "127.0.0.1", "-p", str(w.port)],
                                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        run = subprocess.run([sys.executable, "-m", "crm_platform.cli", "materialize"], cwd=root, env=env, check=False,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        _wait_for_location(w, proc)
        yield w
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def raw(world: World) -> str:
    return _post(world.port, REPOSITORIES, timeout=120)


@pytest.fixture(scope="module")
def repo(raw: str) -> dict:
    nodes = _repositories(raw)
    assert len(nodes) == 1, [n["name"] for n in nodes]
    return nodes[0]


@pytest.fixture(scope="module")
def assets(repo: dict) -> dict[str, dict]:
    return {"/".join(a["assetKey"]["path"]): a for a in repo["assetNodes"]}


def _definitions():
    from crm_platform.definitions import defs

    return defs()


def test_the_code_location_serves_every_defined_asset_in_the_contract_groups(repo, assets):
    assert repo["location"]["name"] == "crm_platform"
    groups = {g["groupName"] for g in repo["assetGroups"]}
    assert groups >= GROUPS, f"groups missing: {sorted(GROUPS - groups)}"
    assert {a["groupName"] for a in assets.values()} >= GROUPS
    graph = _definitions().resolve_asset_graph()
    assert set(assets) == {k.to_user_string() for k in graph.get_all_asset_keys()}


def test_every_asset_has_a_description_owners_from_the_tracking_plan_and_its_engine_as_kind(assets):
    plan_owners = {team(et.owner) for et in load_plan().event_types.values()}
    problems = {}
    for key, a in sorted(assets.items()):
        owners = [o.get("team") and f"team:{o['team']}" or o.get("email") for o in a["owners"]]
        missing = []
        if not (a["description"] or "").strip():
            missing.append("description")
        if not owners:
            missing.append("owners")
        elif set(owners) - plan_owners:
            missing.append(f"owners {sorted(set(owners) - plan_owners)} not in the tracking plan's {sorted(plan_owners)}")
        if "duckdb" not in a["kinds"]:
            missing.append(f"kind duckdb (kinds {a['kinds']})")
        if missing:
            problems[key] = missing
    assert not problems, problems


def test_every_asset_was_materialized_and_shows_row_count_column_schema_and_a_preview(assets):
    never = sorted(k for k, a in assets.items() if not a["assetMaterializations"])
    assert not never, f"never materialized: {never}"
    gaps = {}
    for key, a in sorted(assets.items()):
        entries = {e["label"]: e for e in a["assetMaterializations"][0]["metadataEntries"]}
        missing = []
        count = entries.get("dagster/row_count")
        if count is None or count["__typename"] != "IntMetadataEntry" or count["intValue"] is None:
            missing.append("dagster/row_count")
        schema = entries.get("dagster/column_schema")
        if schema is None or schema["__typename"] != "TableSchemaMetadataEntry" or not schema["schema"]["columns"]:
            missing.append("dagster/column_schema")
        if not any(e["__typename"] in PREVIEW_TYPES for e in entries.values()):
            missing.append("a preview or plot (markdown, table, path or url entry)")
        if missing:
            gaps[key] = missing
    assert not gaps, f"latest materializations without metadata the UI shows: {gaps}"


def _inline_pngs(md: str) -> list[np.ndarray]:
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(b64)), format="png")
            for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", md)]


def test_the_platform_plots_show_as_images_on_their_assets(assets):
    for key, labels in PLOTS.items():
        entries = {e["label"]: e for e in assets[key]["assetMaterializations"][0]["metadataEntries"]}
        for label in labels:
            assert label in entries, f"{key}: no plot {label!r} among {sorted(entries)}"
            images = _inline_pngs(entries[label].get("mdStr") or "")
            assert images, f"{key}:{label} holds no inline PNG"
            assert all(img.shape[0] > 50 and img.shape[1] > 50 and img[..., :3].std() > 0.01 for img in images), \
                f"{key}:{label}: a blank or tiny image"


def test_checks_show_on_their_assets(assets):
    shown = {}
    for key, a in assets.items():
        result = a["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", (key, result)
        for c in result["checks"]:
            shown[(key, c["name"])] = c
    defined = {(k.asset_key.to_user_string(), k.name) for k in _definitions().resolve_asset_graph().asset_check_keys}
    assert set(shown) == defined
    for key, name in BLOCKING:
        check = shown.get((key, name))
        assert check is not None, f"{key}:{name} is not shown on its asset"
        assert check["blocking"], f"{key}:{name} is not blocking"
        assert (check["description"] or "").strip()
        assert (check["executionForLatestMaterialization"] or {}).get("status") == "SUCCEEDED", check
    not_run = sorted(f"{k}:{n}" for (k, n), c in shown.items() if not c["executionForLatestMaterialization"])
    assert not not_run, f"checks that did not run with their asset's latest materialization: {not_run}"


def test_the_landing_sensor_and_the_nightly_schedule_are_served(repo):
    sensors = {s["name"] for s in repo["sensors"]}
    assert "landing_events_sensor" in sensors, sensors
    crons = {s["name"]: s["cronSchedule"] for s in repo["schedules"]}
    assert "0 2 * * *" in crons.values(), f"no schedule at 02:00 every day: {crons}"


RESOURCES = """
query {
  allTopLevelResourceDetailsOrError(repositorySelector: {repositoryName: "__repository__",
                                                         repositoryLocationName: "crm_platform"}) {
    __typename
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
  }
}
"""


def test_the_pii_key_never_shows_in_the_api(raw, world):
    """The warehouse resource shows the variable's name for the PII key, not its value (CONTRACT §2)."""
    assert PII_KEY not in raw
    resources_raw = _post(world.port, RESOURCES)
    assert PII_KEY not in resources_raw
    resources = json.loads(resources_raw)["data"]["allTopLevelResourceDetailsOrError"]
    assert resources["__typename"] == "ResourceDetailsList", resources
    values = {(r["name"], v["key"]): v for r in resources["results"] for v in r["configuredValues"]}
    assert values[("warehouse", "pii_key")] == {"key": "pii_key", "value": "CRM_PII_KEY", "type": "ENV_VAR"}


def test_no_clear_pii_shows_in_run_metadata_or_logs(raw, world, monkeypatch):
    """Every identifying clear value of the vault (e-mails, phones, addresses) is absent from what the UI
    serves (asset metadata) and from every event of every run in the instance (logs included)."""
    import dagster as dg
    import duckdb

    with duckdb.connect(str(world.data_dir / "warehouse.duckdb"), read_only=True) as con:
        # Identifying values: e-mails, phones, street addresses (a last name alone is also a company's word).
        values = {v for (v,) in con.execute(
            "select distinct value from pii.vault where field in "
            "('attributes.email', 'attributes.phone', 'attributes.street', 'context.ip')").fetchall() if v and len(v) >= 6}
    assert len(values) > 100  # the world has real PII to leak
    monkeypatch.setenv("DAGSTER_HOME", str(world.dagster_home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert runs
        logs = "\n".join(str(entry) for run in runs for entry in instance.all_logs(run.run_id))
    for name, text in (("the GraphQL API", raw), ("the run logs", logs)):
        leaked = sorted(v for v in values if v in text)
        assert not leaked, f"{len(leaked)} clear PII values in {name}, e.g. {leaked[:1]}"


def _chromium() -> str:
    """Debian's chromium, installed here when missing (as .ci/run does): `pip install -e '.[test]' &&
    pytest` alone must run this test on a machine that has only Python and Debian's packages."""
    def found() -> str | None:
        return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

    if not found() and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900, check=False)
            subprocess.run(install, env=env, capture_output=True, timeout=900, check=False)
    path = found()
    if path is None:
        pytest.fail("Debian's chromium is not installed and could not be: `apt-get install -y chromium` as root")
    return path


def _matches(label: str, name: str) -> bool:
    """The graph's label for an asset: its name, or the name cut in the middle ("campa…_performance")."""
    if label == name:
        return True
    head, sep, tail = label.partition("…")
    return bool(sep) and name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


def _unmatched(labels: list[str], names: list[str]) -> list[str]:
    left = list(labels)
    missing = []
    for name in names:
        hit = next((i for i, label in enumerate(left) if _matches(label, name)), None)
        if hit is None:
            missing.append(name)
        else:
            left.pop(hit)
    return missing


NODES_JS = """() => Array.from(document.querySelectorAll('[class*="AssetNode_assetName"]'))
    .map(e => [e.innerText.trim(), (e.parentElement && e.parentElement.getAttribute('style')) || ''])"""


def test_the_asset_graph_renders_every_asset_in_headless_chromium(world, assets, tmp_path):
    """The global asset lineage with every group expanded, zoomed out until every asset's node is drawn,
    and every node drawn as materialized (green) once the page has loaded the assets' status."""
    names = sorted(a["assetKey"]["path"][-1] for a in assets.values())
    groups = sorted({a["groupName"] for a in assets.values()})
    expanded = ",".join(f"global@global:{g}" for g in groups)
    url = f"{world.url}/asset-groups?expanded={urllib.parse.quote(expanded)}"
    shot, dom = tmp_path / "asset_graph.png", tmp_path / "asset_graph.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 2400, "height": 1800})
            # The "join the community" dialog that the UI shows on localhost once per browser.
            context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
            page = context.new_page()
            page.goto(url, wait_until="load", timeout=60_000)
            page.locator('[class*="AssetNode_assetName"]').first.wait_for(timeout=90_000)
            page.mouse.move(1400, 900)
            for _ in range(8):  # each step zooms out by 20 %
                time.sleep(0.5)
                if not _unmatched([label for label, _ in page.evaluate(NODES_JS)], names):
                    break
                page.keyboard.down("Control")
                page.mouse.wheel(0, 100)
                page.keyboard.up("Control")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                nodes = page.evaluate(NODES_JS)
                if nodes and all("accent-green" in style for _, style in nodes):
                    break
                time.sleep(0.5)
            time.sleep(1)
            page.screenshot(path=str(shot))
            html = page.content()
            dom.write_text(html)
            nodes = page.evaluate(NODES_JS)
        finally:
            browser.close()
    print(f"\nasset graph screenshot: {shot}\nits DOM: {dom}")
    labels = [label for label, _ in nodes]
    assert not _unmatched(labels, names), f"assets not drawn on the graph: {_unmatched(labels, names)}; labels {labels}"
    not_green = sorted(label for label, style in nodes if "accent-green" not in style)
    assert not not_green, f"nodes not drawn as materialized: {not_green}"
    for g in groups:
        assert f">{g}<" in html, f"group {g} not drawn"
    assert PII_KEY not in html
    assert shot.stat().st_size > 20_000, shot.stat().st_size
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1800, 2400)
    assert pixels.std() > 0.02, "the screenshot is blank"
