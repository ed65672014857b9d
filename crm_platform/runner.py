"""In-process materialization for `crm-platform materialize` and `demo`: the code location's own
definitions, executed in this process, with one progress line per asset and check.

This is the command line's use of Dagster (like cli.py), not domain logic: it knows assets only by key.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.utils import make_new_run_id

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The console logger would print every engine event; progress lines replace it.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """$DAGSTER_HOME's instance when set (runs then show in the UI); otherwise a temporary one
    configured by the project's dagster.yaml, as `dagster dev` does."""
    if os.environ.get("DAGSTER_HOME"):
        _initialize_storage_once(Path(os.environ["DAGSTER_HOME"]))
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    config_dir = PROJECT_ROOT if (PROJECT_ROOT / "dagster.yaml").exists() else None
    with tempfile.TemporaryDirectory(prefix="crm-platform-dagster-") as home:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(home, config_dir=str(config_dir or home))) as instance:
            yield instance


def _initialize_storage_once(home: Path) -> None:
    """Open the instance under a file lock first: processes creating a fresh $DAGSTER_HOME's SQLite
    storage together race on its schema migrations and can leave it unusable
    (dagster-io/dagster#27390). Once the storage exists, opening it is cheap and safe."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".crm-platform-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with dg.DagsterInstance.get() as instance:
                instance.get_runs(limit=1)  # creates the run, event log and schedule storages
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_definitions() -> dg.Definitions:
    from crm_platform.definitions import defs

    return defs()


def _root_cause(err) -> str:
    """The innermost error's message: Dagster wraps the asset's exception in its own."""
    if err is None:
        return "failed"
    while err.cause is not None:
        err = err.cause
    # The first line says what went wrong; engines append the query and a caret line under it.
    lines = [line.strip() for line in err.message.strip().splitlines()]
    return next((line for line in lines if line.strip("^~ ")), "failed")


def _materialized(assets: dict[str, tuple[int | None, int]]) -> str:
    """`core/events 3,489,379 rows; marts/funnel_daily 1,090 rows (730 partitions)`."""
    return "; ".join(key + (f" {count:,} rows" if count is not None else "") + (f" ({n} partitions)" if n > 1 else "")
                     for key, (count, n) in assets.items())


def _progress(echo: Callable[[str], None]) -> Callable[[dg.EventLogEntry], None]:
    started: dict[str, float] = {}
    # step -> asset -> (its row count, partitions materialized): one entry per asset, however many
    # partitions a step wrote (a partitioned mart writes one materialization per day).
    rows: dict[str, dict[str, tuple[int | None, int]]] = {}

    def on_event(entry: dg.EventLogEntry) -> None:
        ev = entry.dagster_event
        if ev is None:
            return
        step = ev.step_key or ""
        kind = ev.event_type_value
        if kind == "STEP_START":
            started[step] = time.monotonic()
        elif kind == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            count = mat.metadata.get("dagster/row_count")
            seen = rows.setdefault(step, {})
            key = mat.asset_key.to_user_string()
            seen[key] = (count.value if count is not None else None, seen.get(key, (None, 0))[1] + 1)
        elif kind == "ASSET_CHECK_EVALUATION":
            check = ev.event_specific_data
            status = "passed" if check.passed else f"FAILED ({check.severity.value})"
            echo(f"    check {check.asset_key.to_user_string()}:{check.check_name} {status}")
        elif kind == "STEP_SUCCESS":
            secs = time.monotonic() - started.get(step, time.monotonic())
            echo(f"  ok      {step:<32} {secs:6.1f} s  {_materialized(rows.get(step, {}))}")
        elif kind == "STEP_FAILURE":
            echo(f"  FAILED  {step:<40} {_root_cause(ev.event_specific_data.error)}")

    return on_event


def materialize_assets(selection: str | None, partition: str | None, echo: Callable[[str], None] = print) -> bool:
    """Materialize the selected assets (all by default); True when every step and blocking check passed."""
    defs = load_definitions()
    graph = defs.resolve_asset_graph()
    with warnings.catch_warnings():  # the selection parser flags its own use of a beta parameter
        warnings.simplefilter("ignore", dg.BetaWarning)
        keys = sorted(dg.AssetSelection.from_string(selection).resolve(graph) if selection
                      else graph.materializable_asset_keys)
    if not keys:
        echo(f"selection {selection!r} matches no asset" if selection else "no asset is defined yet")
        return bool(not selection)
    job = defs.resolve_implicit_global_asset_job_def()
    try:
        partition_key, tags, scope = _partitions(graph, keys, partition)
    except ValueError as e:
        echo(str(e))
        return False
    echo(f"materializing {len(keys)} asset(s)" + scope)
    t0 = time.monotonic()
    with dagster_instance() as instance:
        run_id = make_new_run_id()
        instance.add_event_listener(run_id, _progress(echo))
        result = job.execute_in_process(instance=instance, run_id=run_id, asset_selection=keys, tags=tags,
                                        partition_key=partition_key, run_config=QUIET, raise_on_error=False)
    status = "succeeded" if result.success else "FAILED"
    echo(f"run {run_id[:8]} {status} in {time.monotonic() - t0:.1f} s")
    return result.success


def _partitions(graph, keys, partition: str | None) -> tuple[str | None, dict[str, str], str]:
    """What a run of `keys` covers: `partition` is a key (2026-05-01), a range (2026-05-01...2026-05-07,
    Dagster's notation) run at once as a single-run backfill, or None: every partition, when the
    selection has partitioned assets (materializing "everything" includes all of history)."""
    defs = {graph.get(k).partitions_def for k in keys} - {None}
    if len(defs) > 1:
        raise ValueError("the selection mixes partitioned assets of different partitions: select fewer")
    if not defs:
        if partition:
            raise ValueError(f"--partition {partition}: no selected asset is partitioned")
        return None, {}, ""
    (partitions_def,) = defs
    existing = partitions_def.get_partition_keys()
    start, _, end = (partition or "").partition("...")
    if not partition:
        start, end = existing[0], existing[-1]
    elif not end:
        if not partitions_def.has_partition_key(start):
            raise ValueError(f"--partition {start}: no such partition (from {existing[0]} to {existing[-1]})")
        return start, {}, f" for partition {start}"
    for key in (start, end):
        if not partitions_def.has_partition_key(key):
            raise ValueError(f"--partition {partition}: no partition {key} (from {existing[0]} to {existing[-1]})")
    if existing.index(start) > existing.index(end):
        raise ValueError(f"--partition {partition}: the range ends before it starts")
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}
    return None, tags, f" for partitions {start}...{end}"
