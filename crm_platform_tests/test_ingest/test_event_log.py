"""The event log on the generator's data: exact counts against its truth, idempotent reruns, crash
safety, concurrent runs, PII kept out of core tables; and the Dagster asset, checks and sensor."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from crm_platform.synth import generate_dataset

from .helpers import KEY, event, ingest, ingest_concurrently, land, ledger, query, snapshot, warehouse

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ingest_generated")
    generate_dataset(root, leads=300, days=60, seed=3)
    return root


@pytest.fixture
def landed(generated, data_dir) -> Path:
    """A fresh data dir whose landing zone is a copy of the generated one (events only)."""
    import shutil

    shutil.copytree(generated / "landing" / "events", data_dir / "landing" / "events")
    return data_dir


@pytest.mark.usefixtures("engine")
def test_counts_equal_the_generators_truth_file_by_file(landed, generated):
    manifest = json.loads((generated / "truth" / "manifest.json").read_text())
    ingest(landed)
    got = ledger(landed)
    expected = {f"{f['file']}": f for f in manifest["files"] if f["kind"] == "events"}
    assert set(got) == set(expected)
    for name, f in expected.items():
        read, accepted, duplicate, quarantined, status = got[name]
        exp = f["expected"]
        assert (accepted, duplicate, quarantined) == (exp["accepted"], exp["duplicate"], exp["quarantined"]), name
        assert read == accepted + duplicate + quarantined
    truncated = manifest["quirks"]["truncated_gzip"]
    assert got[truncated["file"]][0] == truncated["readable_records"] and got[truncated["file"]][4] == "partial"
    totals = manifest["totals"]
    assert query(landed, "select count(*) from core.events") == [(totals["events_accepted"],)]
    assert query(landed, "select count(*) from core.quarantine") == [(totals["events_quarantined"],)]


@pytest.mark.usefixtures("engine")
def test_quarantined_lines_are_exactly_the_planted_invalid_records(landed, generated):
    import csv

    with open(generated / "truth" / "invalid_records.csv", newline="") as f:
        planted = {(r["file"], int(r["line"])) for r in csv.DictReader(f) if r["expected"] == "quarantine"}
    ingest(landed)
    assert set(query(landed, "select source_file, source_line from core.quarantine")) == planted


@pytest.mark.usefixtures("engine")
def test_an_identical_rerun_changes_nothing(landed):
    ingest(landed)
    before = snapshot(landed)
    assert ingest(landed) == []
    assert snapshot(landed) == before


@pytest.mark.usefixtures("engine")
def test_no_clear_pii_outside_the_pii_schema(landed):
    ingest(landed)
    texts = query(landed, "select attributes::varchar || ' ' || coalesce(context::varchar, '') from core.events "
                          "union all select raw_record from core.quarantine")
    leaks = [t for (t,) in texts if t and EMAIL.search(t)]
    assert not leaks, leaks[:3]
    assert query(landed, "select count(*) from pii.vault where field = 'attributes.email'")[0][0] > 100
    # The hash in the event resolves to the clear value in the vault.
    (h, value) = query(landed, "select e.attributes->>'email', v.value from core.events e join pii.vault v "
                               "on v.pii_hash = e.attributes->>'email' limit 1")[0]
    assert h.startswith("pii:") and EMAIL.fullmatch(value)


@pytest.mark.usefixtures("engine")
def test_canonical_lead_id_starts_as_the_lead_id_and_versions_are_current(landed):
    ingest(landed)
    assert query(landed, "select count(*) from core.events where canonical_lead_id is distinct from lead_id") == [(0,)]
    assert query(landed, "select distinct schema_version from core.events where event_type = 'campaign_touch'") == [("2026-04-1",)]
    assert query(landed, "select count(*) > 0 from core.events where event_type = 'campaign_touch' "
                         "and original_schema_version = '2026-01-1' and attributes->>'touch_type' = 'click'") == [(True,)]


_KILLED_INGEST = """
import os, signal, sys, threading
from crm_platform.ingest import event_files
from crm_platform_tests.test_ingest.helpers import ingest
real = event_files.GroupIngest._insert_vault
def crash(*a, **k):
    real(*a, **k)            # the file's rows are written inside the transaction...
    os.kill(os.getpid(), signal.SIGKILL)   # ...and the process dies before it commits
event_files.GroupIngest._insert_vault = crash
ingest(__import__("pathlib").Path(sys.argv[1]))
"""


@pytest.mark.usefixtures("engine")
def test_a_process_killed_mid_file_leaves_no_trace_and_the_rerun_converges(data_dir):
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [event("k1"), event("k2")])
    ingest(data_dir)
    before = snapshot(data_dir)
    land(landing, "b.jsonl", [event("k3"), "{bad", event("k1")])
    p = subprocess.run([sys.executable, "-c", _KILLED_INGEST, str(data_dir)], capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    assert snapshot(data_dir) == before
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 1, 1, 1)


@pytest.mark.usefixtures("engine")
def test_concurrent_runs_neither_fail_on_the_lock_nor_double_anything(landed):
    files = len(list((landed / "landing" / "events").rglob("*.jsonl*")))
    assert sum(ingest_concurrently(landed)) == files  # each file ingested by exactly one run
    assert query(landed, "select count(*) = count(distinct event_id) from core.events") == [(True,)]
    assert query(landed, "select count(*) from core.ingest_ledger") == [(files,)]


@pytest.mark.usefixtures("engine")
def test_the_asset_materializes_with_its_checks(landed, monkeypatch):
    import dagster as dg

    from crm_platform.definitions import defs

    monkeypatch.setenv("CRM_PII_KEY", KEY.decode())
    job = defs().resolve_implicit_global_asset_job_def()
    keys = [dg.AssetKey(["core", "events"]), dg.AssetKey(["core", "quarantine"]),
            dg.AssetKey(["core", "ingest_ledger"]), dg.AssetKey(["pii", "vault"])]
    result = job.execute_in_process(asset_selection=keys, raise_on_error=False)
    assert result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("ingest_ledger", "ledger_balanced")].passed
    assert checks[("events", "unique_event_id")].passed
    assert checks[("events", "no_future_events")].passed
    rate = checks[("quarantine", "quarantine_rate")]
    assert rate.severity == dg.AssetCheckSeverity.WARN
    mats = {m.asset_key.path[-1]: m for m in result.asset_materializations_for_node("event_log")}
    assert mats["events"].metadata["dagster/row_count"].value == query(landed, "select count(*) from core.events")[0][0]
    assert "invalid_json" in mats["quarantine"].metadata["reasons"].value


@pytest.mark.usefixtures("engine")
def test_the_quarantine_rate_check_warns_with_the_top_reasons(data_dir):
    from crm_platform.ingest.checks import evaluate

    land(data_dir / "landing", "noisy.jsonl", [event("n1"), "{x", "[1]", "{y"])
    land(data_dir / "landing", "future.jsonl", [event("f1", occurred_at="2099-01-01T00:00:00Z")])
    ingest(data_dir)
    with warehouse(read_only=True) as wh:
        results = {r.name: r for r in evaluate(wh)}
    assert not results["quarantine_rate"].passed and results["quarantine_rate"].severity == "WARN"
    assert "events/noisy.jsonl 75% (invalid_json 2, not_an_object 1)" in results["quarantine_rate"].description
    assert not results["no_future_events"].passed and "f1" in results["no_future_events"].description
    assert results["ledger_balanced"].passed and results["unique_event_id"].passed


def test_the_sensor_requests_one_run_per_new_content_and_never_twice(data_dir, monkeypatch):
    import dagster as dg

    from crm_platform.defs.ingest.sensors import landing_events_sensor

    landing = data_dir / "landing"
    land(landing, "one.jsonl", [event("x1")])
    ctx = dg.build_sensor_context()
    first = landing_events_sensor(ctx)
    assert isinstance(first, dg.RunRequest) and first.run_key.startswith("ingest-events-")
    cursor = ctx.cursor
    assert isinstance(landing_events_sensor(dg.build_sensor_context(cursor=cursor)), dg.SkipReason)
    # A copy under another name is no new content; a new file is, even with an older mtime.
    (landing / "events" / "copy.jsonl").write_bytes((landing / "events" / "one.jsonl").read_bytes())
    old = land(landing, "zero.jsonl", [event("x0")])
    os.utime(old, ns=(1, 1))
    ctx2 = dg.build_sensor_context(cursor=cursor)
    second = landing_events_sensor(ctx2)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key
    assert second.tags["crm/new_files"] == "1"
    assert isinstance(landing_events_sensor(dg.build_sensor_context(cursor=ctx2.cursor)), dg.SkipReason)
    # A change stream or an export is landed content too.
    cdc = landing / "cdc" / "leads" / "2026-03-01.jsonl"
    cdc.parent.mkdir(parents=True)
    cdc.write_text("null\n")
    ctx3 = dg.build_sensor_context(cursor=ctx2.cursor)
    third = landing_events_sensor(ctx3)
    assert isinstance(third, dg.RunRequest) and third.tags["crm/new_files"] == "1"
    # Events the platform lands and ingests itself (identity decisions) start nothing.
    land(landing, "identity/decisions-1.jsonl", [event("x9", "lead_merged", source="identity", merged_lead_id="lead_2",
                                                       match_rule="email")])
    assert isinstance(landing_events_sensor(dg.build_sensor_context(cursor=ctx3.cursor)), dg.SkipReason)
