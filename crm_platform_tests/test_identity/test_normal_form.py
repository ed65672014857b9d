"""The normal form kept between identity runs: only records whose lead events changed are normalized
again, and what a run holds always equals normalizing everything anew (DuckDB and ClickHouse)."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from crm_platform.identity import inputs
from crm_platform.identity import normal_form as nf
from crm_platform_tests.test_ingest.helpers import event, land, query, warehouse

from .world import EXPECTED, T1, clusters, land_world, resolve_now

pytestmark = pytest.mark.usefixtures("engine")


def _assert_equals_a_fresh_normalization() -> None:
    with warehouse() as wh:
        kept = nf.normal_form(wh)
        fresh = nf.normal_form(wh, full=True)
    assert kept.normalized == 0
    pd.testing.assert_frame_equal(kept.records, fresh.records)
    pd.testing.assert_frame_equal(kept.contacts, fresh.contacts)


def test_a_run_normalizes_only_changed_records_and_holds_what_a_fresh_run_would(data_dir, monkeypatch):
    monkeypatch.setattr(nf, "MAX_CHANGED_SHARE", 1.0)  # the small world: any share reads only changed records
    monkeypatch.setattr(inputs, "EVENTS_PER_CHUNK", 3)  # and in chunks
    land_world(data_dir / "landing")
    first = resolve_now(data_dir).resolution
    records = first.summary["lead_records"]
    assert first.summary["records_normalized"] == records > 5
    again = resolve_now(data_dir, T1 + timedelta(hours=1)).resolution
    assert again.summary["records_normalized"] == 0 and clusters(data_dir) == EXPECTED

    land(data_dir / "landing", "web-1/2026-W14.jsonl", [  # one record changes its e-mail, one is new
        event("u1", "lead_updated", occurred_at="2026-03-20T10:00:00Z", lead_id="lead_5", email="ann.lee@initech.com"),
        event("n1", "lead_created", occurred_at="2026-03-21T10:00:00Z", lead_id="lead_9", email="ann.lee@initech.com",
              first_name="Ann", last_name="Lee", country="US")])
    night = resolve_now(data_dir, T1 + timedelta(days=1)).resolution
    assert night.summary["records_normalized"] == 2 and night.summary["lead_records"] == records + 1
    assert dict(query(data_dir, "select record_lead_id, lead_id from identity.lead_identity_map "
                                "where record_lead_id = 'lead_9'")) == {"lead_9": "lead_5"}
    _assert_equals_a_fresh_normalization()

    with warehouse() as wh:  # lead_6's events go (as retention or an erasure would delete them)
        wh.delete_rows("core", "events", "lead_id = ?", ["lead_6"])
    gone = resolve_now(data_dir, T1 + timedelta(days=2)).resolution
    assert gone.summary["records_normalized"] == 0 and gone.summary["lead_records"] == records
    assert query(data_dir, "select count(*) from pii.identity_normal_records where lead_id = 'lead_6'") == [(0,)]
    assert query(data_dir, "select count(*) from pii.identity_normal_contacts where lead_id = 'lead_6'") == [(0,)]
    _assert_equals_a_fresh_normalization()


def test_most_records_changed_or_a_full_run_normalizes_everything(data_dir):
    land_world(data_dir / "landing")
    records = resolve_now(data_dir).resolution.summary["lead_records"]
    land(data_dir / "landing", "web-1/2026-W14.jsonl", [
        event(f"u{i}", "lead_updated", occurred_at="2026-03-20T10:00:00Z", lead_id=f"lead_{i}", company="Initech")
        for i in range(1, 7)])
    assert resolve_now(data_dir, T1 + timedelta(days=1)).resolution.summary["records_normalized"] == records
    full = resolve_now(data_dir, T1 + timedelta(days=2), full=True).resolution
    assert full.summary["records_normalized"] == records and clusters(data_dir) == EXPECTED
    _assert_equals_a_fresh_normalization()
