"""The nightly schedule's run request, declarative automation and freshness on the assets, and
retries of transient failures only."""
from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from crm_platform.definitions import defs
from crm_platform.defs import conventions
from crm_platform.defs.operations.schedules import nightly_refresh
from crm_platform.warehouse.errors import WarehouseUnavailable, is_transient

FUNNEL = dg.AssetKey(["marts", "funnel_daily"])


def test_the_nightly_run_refreshes_everything_and_the_three_trailing_days():
    schedule = defs().get_schedule_def("nightly_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    graph = defs().resolve_asset_graph()
    assert schedule.job.selection.resolve(graph) == set(graph.materializable_asset_keys)

    request = nightly_refresh(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 6, 10, 2, tzinfo=UTC)))
    assert isinstance(request, dg.RunRequest) and request.run_key == "nightly-2026-06-10"
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2026-06-07", "2026-06-09")  # the three complete days before 02:00 on the 10th
    # Each night has its own run key: a tick never repeats the night before, a rerun of it is dropped.
    later = nightly_refresh(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 6, 11, 2, tzinfo=UTC)))
    assert later.run_key == "nightly-2026-06-11" and later.tags[ASSET_PARTITION_RANGE_END_TAG] == "2026-06-10"


def test_the_trailing_window_is_configurable_and_checked(monkeypatch):
    monkeypatch.setenv("CRM_NIGHTLY_TRAILING_DAYS", "7")
    request = nightly_refresh(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 6, 10, 2, tzinfo=UTC)))
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2026-06-03"
    monkeypatch.setenv("CRM_NIGHTLY_TRAILING_DAYS", "zero")
    with pytest.raises(ValueError, match="CRM_NIGHTLY_TRAILING_DAYS"):
        nightly_refresh(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 6, 10, 2, tzinfo=UTC)))
    monkeypatch.delenv("CRM_NIGHTLY_TRAILING_DAYS")
    before = nightly_refresh(dg.build_schedule_context(
        scheduled_execution_time=datetime.fromisoformat(conventions.PARTITIONS_START).replace(hour=2, tzinfo=UTC)))
    assert isinstance(before, dg.SkipReason)


def test_every_asset_has_a_freshness_policy_and_the_cheap_layers_refresh_eagerly():
    graph = defs().resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.freshness_policy is not None, key
        eager = node.automation_condition is not None
        assert eager == (node.group_name in conventions.EAGER_LAYERS), key
    assert graph.get(FUNNEL).partitions_def == conventions.DAILY
    assert graph.get(FUNNEL).backfill_policy == dg.BackfillPolicy.single_run()


def test_new_events_start_identity_then_the_layers_below_but_not_the_nightly_ones():
    """What the automation sensor would request after a sensor-triggered ingest, evaluated on a real
    instance: identity (its input changed) but neither features nor scoring (nightly)."""
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(defs(), instance)
        for key in (["core", "events"], ["core", "quarantine"], ["core", "ingest_ledger"], ["pii", "vault"]):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        second = dg.evaluate_automation_conditions(defs(), instance, cursor=first.cursor)
        requested = {r.key for r in second.results if r.true_subset.size}
    assert not {r.key for r in first.results if r.true_subset.size}  # nothing ingested yet: nothing to do
    assert dg.AssetKey(["identity", "lead_identity_map"]) in requested
    assert not any(key.path[0] in ("features", "ml") for key in requested)


def _flaky_job(failures: list[Exception]):
    attempts = []

    @dg.asset
    @conventions.retry_transient
    def flaky() -> dg.MaterializeResult:
        attempts.append(1)
        if failures:
            raise failures.pop(0)
        return dg.MaterializeResult(metadata={"attempts": len(attempts)})

    return dg.Definitions(assets=[flaky]).resolve_implicit_global_asset_job_def(), attempts


def test_a_transient_failure_is_retried_with_backoff_and_a_bug_is_not(monkeypatch):
    monkeypatch.setattr(conventions, "RETRY_BASE_S", 0.0)
    job, attempts = _flaky_job([WarehouseUnavailable("cannot open the DuckDB warehouse: held by another process"),
                                ConnectionResetError("reset by peer")])
    result = job.execute_in_process(raise_on_error=False)
    assert result.success and len(attempts) == 3
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2

    job, attempts = _flaky_job([ValueError("a wrong query")])
    result = job.execute_in_process(raise_on_error=False)
    assert not result.success and len(attempts) == 1

    job, attempts = _flaky_job([WarehouseUnavailable("down")] * (conventions.RETRIES + 1))
    assert not job.execute_in_process(raise_on_error=False).success
    assert len(attempts) == conventions.RETRIES + 1  # the first try and RETRIES retries, then it fails


def test_which_errors_are_transient():
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    busy = DatabaseError("Received ClickHouse exception, code: 202, server response: Code: 202. "
                         "DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)")
    wrong = DatabaseError("Received ClickHouse exception, code: 46, server response: Code: 46. "
                          "DB::Exception: Unknown function foo. (UNKNOWN_FUNCTION)")
    assert is_transient(busy) and not is_transient(wrong)
    assert is_transient(OperationalError("Error HTTPConnectionPool: connection refused"))
    assert is_transient(TimeoutError()) and not is_transient(ValueError("bad data"))
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as e:
            raise RuntimeError("the ingest failed") from e
    except RuntimeError as wrapped:
        assert is_transient(wrapped)  # the cause decides
