"""Retention on both engines: exactly the expired events, quarantined records and vault entries
go (an event exactly retention_days old stays), shared vault entries stay, the deletion log holds
counts and no PII, and a second run deletes nothing."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from crm_platform.governance.retention import DELETION_LOG, enforce_retention
from crm_platform.ingest.sql_validation import pii_hash
from crm_platform.plan.loader import load_plan
from crm_platform_tests.test_ingest.helpers import (
    KEY,
    event,
    ingest,
    land,
    touch,
    warehouse,
)

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_ip(e: dict, ip: str) -> dict:
    return {**e, "context": {"ip": ip}}


def bad(n: int, email: str) -> str:
    """A record the ingest quarantines (no event_id) holding an e-mail address (hashed, to the vault)."""
    return json.dumps({"event_type": "lead_created", "schema_version": "2026-01-1", "n": n, "attributes": {"email": email}})


def h(value: str) -> str:
    return pii_hash(KEY, value)


@pytest.fixture
def world(engine, data_dir):
    """Quarantined records of an earlier file, then the cut-off time `now`, then events around each
    type's retention from `now`: lead_created keeps 1095 days, campaign_touch 730."""
    landing = data_dir / "landing"
    land(landing, "old_rejects.jsonl", [bad(1, "gone-q@example.com"), bad(2, "shared-q@example.com")])
    ingest(data_dir)
    time.sleep(0.05)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + SECOND
    time.sleep(1.1)
    lc, ct = now - 1095 * DAY, now - 730 * DAY
    land(landing, "events.jsonl", [
        event("lc_expired", occurred_at=iso(lc - SECOND), email="gone@example.com", lead_id="lead_1", country="France"),
        event("lc_older", occurred_at=iso(now - 2000 * DAY), email="shared@example.com", lead_id="lead_2"),
        event("lc_edge", occurred_at=iso(lc), email="edge@example.com", lead_id="lead_3"),
        event("lc_kept", occurred_at=iso(lc + SECOND), email="shared@example.com", lead_id="lead_2", country="Canada"),
        # Shares its address with a quarantined record that expires: the vault entry stays.
        event("lc_recent", occurred_at=iso(now - 10 * DAY), email="shared-q@example.com", lead_id="lead_4"),
        with_ip(touch("ct_expired", occurred_at=iso(ct - SECOND)), "10.0.0.1"),
        with_ip(touch("ct_older", occurred_at=iso(ct - 70 * DAY)), "10.0.0.2"),
        with_ip(touch("ct_edge", occurred_at=iso(ct)), "10.0.0.2"),
        with_ip(touch("ct_kept", occurred_at=iso(ct + DAY)), "10.0.0.3"),
        # Older than campaign_touch's retention, younger than lead_created's: stays.
        event("lc_mid", occurred_at=iso(ct - 10 * DAY), lead_id="lead_5"),
        bad(3, "kept-q@example.com"),  # quarantined after `now`: stays
    ])
    ingest(data_dir)
    with warehouse() as wh:
        # An event of a type the plan no longer has, older than every retention: kept, reported.
        wh.insert_arrow("core", "events", pa.table({
            "event_id": ["retired_1"], "event_type": ["retired_type"], "occurred_at": [now - 5000 * DAY],
            "attributes": ['{"email": "' + h("retired@example.com") + '"}']}))
        wh.insert_arrow("pii", "vault", pa.table({"pii_hash": [h("retired@example.com")], "field": ["email"],
                                                  "value": ["retired@example.com"], "first_seen_at": [now]}))
    return now


def events(wh) -> list[str]:
    return [r[0] for r in wh.fetchall(f"select event_id from {wh.table_name('core', 'events')} order by event_id")]


def vault(wh) -> dict[str, str]:
    return dict(wh.fetchall(f"select value, field from {wh.table_name('pii', 'vault')}"))


def signals(wh) -> list[str]:
    return sorted(r[0] for r in wh.fetchall(f"select event_id from {wh.table_name('core', 'residency_signals')}"))


def quarantined(wh) -> list[str]:
    return sorted(r[0] for r in wh.fetchall(f"select source_file from {wh.table_name('core', 'quarantine')}"))


def payloads(wh) -> list[str]:
    return sorted(r[0] for r in wh.fetchall(f"select source_file from {wh.table_name('pii', 'quarantine_payloads')}"))


def logged(wh, run_id: str) -> dict[tuple, int]:
    return {(t, e, f): n for t, e, f, n in wh.fetchall(
        f"select table_name, event_type, field, rows_deleted from {wh.table_name('governance', 'deletion_log')} "
        "where run_id = $run", {"run": run_id})}


def test_retention_deletes_exactly_what_expired_and_a_second_run_nothing(world):
    now, plan = world, load_plan()
    with warehouse() as wh:
        before_events, before_vault = events(wh), vault(wh)
        assert signals(wh) == ["lc_expired", "lc_kept"]
        assert {"gone@example.com", "shared@example.com", "edge@example.com", "10.0.0.1", "10.0.0.2", "10.0.0.3",
                "gone-q@example.com", "shared-q@example.com", "kept-q@example.com"} <= set(before_vault)
        assert quarantined(wh) == ["events/events.jsonl", "events/old_rejects.jsonl", "events/old_rejects.jsonl"]
        first = f"run-{uuid.uuid4()}"
        result = enforce_retention(wh, plan, now, first, quarantine_retention_days=0)

        gone = {"lc_expired", "lc_older", "ct_expired", "ct_older"}
        assert events(wh) == sorted(set(before_events) - gone)
        assert signals(wh) == ["lc_kept"]  # the ingest's residency index loses the expired event's signal
        assert {"lc_edge", "lc_kept", "lc_recent", "ct_edge", "ct_kept", "lc_mid", "retired_1"} <= set(events(wh))
        # Referenced only by what expired: gone. Referenced by something that stays too: kept.
        assert set(before_vault) - set(vault(wh)) == {"gone@example.com", "10.0.0.1", "gone-q@example.com"}
        assert vault(wh) == {k: v for k, v in before_vault.items()
                             if k not in {"gone@example.com", "10.0.0.1", "gone-q@example.com"}}
        assert quarantined(wh) == payloads(wh) == ["events/events.jsonl"]
        # Every row left that holds a hash still finds its clear value.
        hashes = {r[0] for r in wh.fetchall(
            "select distinct h from (select unnest(regexp_extract_all(coalesce(cast(attributes as varchar), '') || ' ' || "
            f"coalesce(cast(context as varchar), ''), 'pii:[0-9a-f]{{32}}')) as h from {wh.table_name('core', 'events')}) as x")}
        assert hashes and hashes <= {r[0] for r in wh.fetchall(f"select pii_hash from {wh.table_name('pii', 'vault')}")}

        log = logged(wh, first)
        assert log[("core.events", "lead_created", None)] == 2
        assert log[("core.events", "campaign_touch", None)] == 2
        assert all(n == 0 for (t, e, _), n in log.items() if t == "core.events" and e not in ("lead_created", "campaign_touch"))
        assert {e for t, e, _ in log if t == "core.events"} == set(plan.event_types)
        assert sum(n for (t, _, _), n in log.items() if t == "pii.vault") == 3
        assert log[("core.quarantine", None, None)] == 2 and log[("pii.quarantine_payloads", None, None)] == 2
        assert result.events_deleted == 4 and result.unplanned == {"retired_type": 1}
        cutoffs = dict(wh.fetchall(f"select event_type, cutoff from {wh.table_name('governance', 'deletion_log')} "
                                   "where run_id = $run and table_name = 'core.events'", {"run": first}))
        assert cutoffs["lead_created"] == now - 1095 * DAY and cutoffs["campaign_touch"] == now - 730 * DAY

        # No id, hash or clear value in the log.
        text = " ".join(str(v) for row in wh.fetchall(
            f"select * from {wh.table_name('governance', 'deletion_log')}") for v in row)
        assert "pii:" not in text and "@" not in text and "10.0.0" not in text
        assert not any(e in text for e in before_events)
        assert [c for c, _ in DELETION_LOG.columns] == [
            "run_id", "run_at", "plan_version", "table_name", "event_type", "field", "retention_days", "cutoff",
            "rows_deleted"]

        # Idempotent: the same `now` again deletes nothing and logs zeros.
        after = (events(wh), vault(wh), quarantined(wh), payloads(wh))
        second = f"run-{uuid.uuid4()}"
        again = enforce_retention(wh, plan, now, second, quarantine_retention_days=0)
        assert (events(wh), vault(wh), quarantined(wh), payloads(wh)) == after
        assert again.events_deleted == 0 and set(logged(wh, second).values()) == {0}
        assert {k for k in logged(wh, second) if k[0] != "pii.vault"} == {k for k in log if k[0] != "pii.vault"}


def test_the_default_quarantine_retention_is_the_longest_and_nothing_recent_goes(world):
    with warehouse() as wh:
        before = (events(wh), vault(wh), quarantined(wh))
        run = f"run-{uuid.uuid4()}"
        enforce_retention(wh, load_plan(), world - 3000 * DAY, run)  # a `now` before every event but one
        assert (events(wh), vault(wh), quarantined(wh)) == before
        log = logged(wh, run)
        assert set(log.values()) == {0}
        days = wh.fetchall(f"select retention_days from {wh.table_name('governance', 'deletion_log')} "
                           "where run_id = $run and table_name = 'core.quarantine'", {"run": run})
        assert days == [(max(t.retention_days for t in load_plan().event_types.values()),)]


def test_the_asset_runs_in_dagster_and_its_deletions_refresh_the_eager_readers_of_the_events(engine, data_dir,
                                                                                             monkeypatch):
    import dagster as dg

    from crm_platform.definitions import defs

    monkeypatch.setenv("CRM_PII_KEY", KEY.decode())
    now = datetime.now(UTC).replace(tzinfo=None)
    land(data_dir / "landing", "e.jsonl", [event("old", occurred_at=iso(now - 1200 * DAY), email="a@example.com"),
                                           event("new", occurred_at=iso(now - DAY), email="b@example.com")])
    ingest(data_dir)
    definitions = defs()
    job = definitions.resolve_implicit_global_asset_job_def()
    retention = [dg.AssetKey(["governance", "deletion_log"])]
    identity = dg.AssetKey(["identity", "lead_identity_map"])

    def requested(instance, cursor):
        evaluation = dg.evaluate_automation_conditions(definitions, instance, cursor=cursor)
        return {r.key for r in evaluation.results if r.true_subset.size}, evaluation.cursor

    with dg.DagsterInstance.ephemeral() as instance:
        for key in (["core", "events"], ["core", "quarantine"], ["core", "ingest_ledger"], ["pii", "vault"]):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))  # the ingest ran
        _, cursor = requested(instance, None)
        quiet, cursor = requested(instance, cursor)
        assert identity not in quiet
        result = job.execute_in_process(asset_selection=retention, instance=instance, raise_on_error=False)
        assert result.success
        mats = {tuple(m.asset_key.path): m for m in (e.event_specific_data.materialization
                                                     for e in result.get_asset_materialization_events())}
        assert mats[("governance", "deletion_log")].metadata["events_deleted"].value == 1
        assert mats[("governance", "deletion_log")].metadata["vault_deleted"].value == 1
        assert mats[("core", "events")].metadata["retention_deleted"].value == 1
        after, cursor = requested(instance, cursor)
        assert identity in after  # the eager layers refresh on the events the retention changed
        assert not any(key.path[0] in ("features", "ml") for key in after)
        with warehouse() as wh:
            assert events(wh) == ["new"] and set(vault(wh)) == {"b@example.com"}

        # Nothing expired: no event log update, so nothing downstream is asked to refresh.
        again = job.execute_in_process(asset_selection=retention, instance=instance)
        assert [tuple(e.asset_key.path) for e in again.get_asset_materialization_events()] == [("governance", "deletion_log")]
        with warehouse() as wh:
            assert events(wh) == ["new"]
    schedule = next(s for s in definitions.schedules if s.name == "retention_daily")
    assert schedule.cron_schedule == "30 1 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
