"""Parallel `crm-platform materialize` runs on one DuckDB warehouse: sensor-like ingest runs, an identity
run and an attribution run with a funnel_daily partition, started together while files land, all succeed
without a lock error or a duplicate, and ingest exactly what one serial pass over the same files does.
On a shared Dagster instance the `warehouse_duckdb` pool (one slot, dagster.yaml) serializes their
warehouse steps: their [STEP_START, STEP_SUCCESS] intervals never overlap. Without a shared instance the
pool cannot see the other processes, and DuckDB's lock wait (warehouse/duckdb_engine.py) serializes them."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from crm_platform.defs.conventions import RETRY_BASE_S
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan
from crm_platform.synth import generate_dataset
from crm_platform.warehouse import DuckDBWarehouse
from crm_platform_tests.test_ingest.helpers import KEY, event, land

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POOL = "warehouse_duckdb"
# A lock error in any wording (DuckDB: "Could not set lock on file", "Conflicting lock is held";
# SQLite: "database is locked"), and a lock wait that gave up (WarehouseUnavailable, a retry).
LOCK_ERROR = re.compile(r"\block(s|ed)?\b|could not set lock|conflicting lock|WarehouseUnavailable|RetryRequested",
                        re.IGNORECASE)
TIMEOUT_S = 300
STEP_END = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small generated world (events, CDC, exports, spend): 86 landed files."""
    root = tmp_path_factory.mktemp("concurrency_world")
    generate_dataset(root, leads=200, days=30, seed=5)
    return root


def held_back(relative: str) -> bool:
    """The world's last two weeks of events and change streams: what lands after the warehouse was first
    built, so the concurrent runs have new files to compete for."""
    name = relative.rsplit("/", 1)[-1]
    return (relative.startswith("events/") and name.startswith(("2026-W26", "2026-W27"))
            or relative.startswith("cdc/") and name >= "2026-06-22")


def copy_landing(world: Path, data_dir: Path, keep=lambda relative: True) -> None:
    for path in sorted((world / "landing").rglob("*")):
        relative = path.relative_to(world / "landing").as_posix()
        if path.is_file() and keep(relative):
            target = data_dir / "landing" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def land_atomically(data_dir: Path, name: str, lines: list) -> Path:
    """Land a file as a producer does: written aside, then renamed into landing/events/ whole."""
    staged = land(data_dir / "staging", name, lines)
    target = data_dir / "landing" / "events" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
    return target


def new_events_file(tag: str) -> list:
    """25 new events, one repeated in the file (a duplicate) and one malformed line (quarantined)."""
    events = [event(f"stress-{tag}-{i:02d}", lead_id=f"lead_stress_{tag}_{i % 5}") for i in range(25)]
    return [*events, events[3], "{not json"]


def ingest_serially(data_dir: Path) -> None:
    with DuckDBWarehouse(data_dir / "warehouse.duckdb") as wh:
        ingest_landing(wh, data_dir / "landing", load_plan(), KEY)


def fetch(data_dir: Path, sql: str) -> list[tuple]:
    with DuckDBWarehouse(data_dir / "warehouse.duckdb", read_only=True) as wh:
        return wh.fetchall(sql)


def cli_env(data_dir: Path, dagster_home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DAGSTER_"))}
    env.update(CRM_DATA_DIR=str(data_dir), CRM_DUCKDB_PATH=str(data_dir / "warehouse.duckdb"), CRM_WAREHOUSE="duckdb",
               CRM_PII_KEY=KEY.decode(), PYTHONUNBUFFERED="1")
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    return env


def cli() -> list[str]:
    script = Path(sys.executable).parent / "crm-platform"
    return [str(script)] if script.exists() else [sys.executable, "-m", "crm_platform.cli"]


class Run:
    """One `crm-platform materialize` process, its stdout and stderr in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*cli(), "materialize", *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def run_id_prefix(self) -> str:
        found = re.search(r"^run ([0-9a-f]{8}) (succeeded|FAILED)", self.output, re.MULTILINE)
        assert found, f"{self.name}: no run line\n{self.output[-2000:]}"
        return found.group(1)


def wait_all(runs: list[Run], while_waiting=lambda runs: None) -> None:
    """Wait for every run (calling while_waiting between polls); kill the ones still running at the
    deadline. Then every run must have exited 0 without a word about a lock."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(r.proc.poll() is None for r in runs):
            assert time.monotonic() < deadline, f"runs still going after {TIMEOUT_S} s"
            while_waiting(runs)
            time.sleep(0.2)
    finally:
        for r in runs:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
    report = "\n".join(f"--- {r.name} (exit {r.proc.returncode})\n{r.output[-3000:]}" for r in runs)
    assert all(r.proc.returncode == 0 for r in runs), report
    assert not [r.name for r in runs if LOCK_ERROR.search(r.output)], report


def assert_ingested_exactly_once(data_dir: Path, reference_dir: Path) -> None:
    """No event, vault entry or file content twice, a balanced ledger, and the same events, quarantine and
    ledger contents as one serial ingest of the same landing files in a fresh data dir."""
    assert fetch(data_dir, "select event_id, count(*) from core.events group by 1 having count(*) > 1") == []
    assert fetch(data_dir, "select pii_hash from pii.vault group by 1 having count(*) > 1") == []
    assert fetch(data_dir, "select source_file, sha256 from core.landed_files group by all having count(*) > 1") == []
    unbalanced = fetch(data_dir, "select source_file, records_read, events_accepted, events_duplicate, "
                                 "records_quarantined from core.ingest_ledger where records_read "
                                 "<> events_accepted + events_duplicate + records_quarantined")
    assert unbalanced == []
    ledger = [sha for (sha,) in fetch(data_dir, "select sha256 from core.ingest_ledger")]
    landed = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (data_dir / "landing").rglob("*") if p.is_file()}
    assert len(ledger) == len(set(ledger)), "a file content was ingested twice"
    assert set(ledger) == landed, "a landed file content was not ingested"

    shutil.copytree(data_dir / "landing", reference_dir / "landing")
    ingest_serially(reference_dir)
    totals = ("select (select count(*) from core.events), (select sum(events_accepted) from core.ingest_ledger), "
              "(select count(*) from core.quarantine), (select sum(records_read) from core.ingest_ledger)")
    (got,), (want,) = fetch(data_dir, totals), fetch(reference_dir, totals)
    assert got == want, "events, accepted, quarantined, read: concurrent runs vs one serial run"
    ids = "select event_id from core.events order by 1"
    assert fetch(data_dir, ids) == fetch(reference_dir, ids)
    per_file = "select sha256, records_read, records_quarantined, status from core.ingest_ledger order by 1"
    assert fetch(data_dir, per_file) == fetch(reference_dir, per_file)


def test_parallel_runs_on_a_shared_instance_queue_in_the_pool(world, data_dir, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # No run has opened this fresh DAGSTER_HOME yet: the parallel runs below create its storage together
    # (the runner serializes that first opening, dagster-io/dagster#27390).
    # The warehouse as it was before the last two weeks landed: funnel_daily's day has data.
    copy_landing(world, data_dir, keep=lambda relative: not held_back(relative))
    ingest_serially(data_dir)
    ((day,),) = fetch(data_dir, "select event_date from core.events where event_type = 'lead_created' "
                                "group by 1 order by count(*) desc, 1 limit 1")
    copy_landing(world, data_dir, keep=held_back)
    bootstrap_files = fetch(data_dir, "select count(*) from core.ingest_ledger")[0][0]

    env, logs = cli_env(data_dir, home), tmp_path / "logs"
    logs.mkdir()
    runs = [Run(f"ingest-{i}", ["--select", "group:ingest"], env, logs) for i in (1, 2, 3)]
    runs.append(Run("ingest-identity", ["--select", "group:ingest or group:identity"], env, logs))
    # Attribution, then the day's funnel (which reads attribution's tables), as an automation run does.
    runs.append(Run("attribution-funnel", ["--select", 'group:attribution or key:"marts/funnel_daily"',
                                           "--partition", day.isoformat()], env, logs))
    landed: list[Path] = []

    def land_meanwhile(runs: list[Run]) -> None:
        # One file once a step has finished (the others queue or run), one when the first run exits.
        if not landed and any(re.search(r"^  ok ", r.output, re.MULTILINE) for r in runs):
            landed.append(land_atomically(data_dir, "stress/first.jsonl", new_events_file("a")))
        if len(landed) == 1 and any(r.proc.poll() is not None for r in runs):
            landed.append(land_atomically(data_dir, "stress/second.jsonl", new_events_file("b")))

    wait_all(runs, land_meanwhile)
    assert len(landed) == 2
    final = Run("ingest-final", ["--select", "group:ingest"], env, logs)
    wait_all([final])
    runs.append(final)

    assert_ingested_exactly_once(data_dir, tmp_path / "reference")
    assert fetch(data_dir, "select count(*) from core.ingest_ledger")[0][0] > bootstrap_files + 2
    for tag, path in zip("ab", landed):
        source = path.relative_to(data_dir / "landing").as_posix()
        assert fetch(data_dir, f"select records_read, events_accepted, events_duplicate, records_quarantined "
                               f"from core.ingest_ledger where source_file = '{source}'") == [(27, 25, 1, 1)]
        assert fetch(data_dir, f"select count(*) from core.events where event_id like 'stress-{tag}-%'") == [(25,)]
    assert fetch(data_dir, f"select sum(leads_created) > 0 from marts.funnel_daily where day = '{day}'") == [(True,)]

    # The shared instance: every run is there, succeeded, and its warehouse steps held the pool's one slot.
    with dg.DagsterInstance.get() as instance:
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}.get(POOL) == 1
        by_prefix = {run.run_id[:8]: run for run in instance.get_runs()}
        assert len(by_prefix) == len(runs)
        intervals, blocked = [], 0
        for r in runs:
            run = by_prefix[r.run_id_prefix]
            assert run.status == dg.DagsterRunStatus.SUCCESS, r.name
            started: dict[str, float] = {}
            for entry in instance.all_logs(run.run_id):
                ev = entry.dagster_event
                if ev is None:
                    continue
                assert ev.event_type != dg.DagsterEventType.STEP_UP_FOR_RETRY, (r.name, ev.step_key)
                if ev.event_type == dg.DagsterEventType.STEP_START:
                    started[ev.step_key] = entry.timestamp
                elif ev.event_type in STEP_END:
                    intervals.append((started.pop(ev.step_key), entry.timestamp, r.name, ev.step_key))
                elif ev.event_type == dg.DagsterEventType.ENGINE_EVENT and f"blocked by limit for pool {POOL}" in (
                        ev.message or ""):
                    blocked += 1
            assert not started, f"{r.name}: steps started and never ended: {started}"
    assert {name for *_, name, _ in intervals} == {r.name for r in runs}
    # No two steps of different runs ever ran at the same time...
    intervals.sort()
    overlaps, latest = [], intervals[0]  # latest: the interval ending last among those started so far
    for b in intervals[1:]:
        if b[0] < latest[1]:
            overlaps.append((latest, b))
        latest = max(latest, b, key=lambda i: i[1])
    assert overlaps == [], "\n".join(f"{a[2]}:{a[3]} [{a[0]:.3f}, {a[1]:.3f}] overlaps {b[2]}:{b[3]} "
                                     f"[{b[0]:.3f}, {b[1]:.3f}]" for a, b in overlaps)
    # ...and not because they happened not to meet: steps did wait for the slot.
    assert blocked > 0, "no step waited for the pool: the runs did not compete, the test proves nothing"


def test_parallel_runs_without_a_shared_instance_wait_for_the_duckdb_lock(world, data_dir, tmp_path):
    copy_landing(world, data_dir)
    env, logs = cli_env(data_dir, None), tmp_path / "logs"
    logs.mkdir()
    # Each process has a temporary instance of its own, whose pool knows nothing of the other. Hold the
    # warehouse's lock until both are about to run, so that both must wait for it and then race.
    holder = DuckDBWarehouse(data_dir / "warehouse.duckdb")
    holder.execute("select 1")
    runs = [Run(f"ingest-{i}", ["--select", "group:ingest"], env, logs) for i in (1, 2)]
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not all("materializing" in r.output for r in runs) and time.monotonic() < deadline:
            assert all(r.proc.poll() is None for r in runs), [r.output for r in runs]
            time.sleep(0.2)
        time.sleep(2.0)
    finally:
        holder.close()
    wait_all(runs)
    # The lock wait, not a retry, got them through: a step that failed on the lock would have been retried
    # (retry_transient) after at least RETRY_BASE_S, and the runner times a step from its first start.
    steps = [(r.name, float(secs)) for r in runs for secs in re.findall(r"^  ok +\S+ +([\d.]+) s", r.output, re.MULTILINE)]
    assert len(steps) == len(runs) and all(secs < RETRY_BASE_S for _, secs in steps), steps

    assert_ingested_exactly_once(data_dir, tmp_path / "reference")
    assert fetch(data_dir, "select count(*) from core.ingest_ledger") == [
        (sum(1 for p in (world / "landing").rglob("*") if p.is_file()),)]
