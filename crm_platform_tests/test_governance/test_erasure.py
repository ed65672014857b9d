"""Erasure on both engines, end to end: a generated world is materialized, a person is erased by
e-mail with `crm-platform erase` (and another by an erasure_requested event), and then no table,
no Dagster run record and no metadata holds their address, ids, events or hashes; everyone else's
rows are untouched; the report names no one; models trained on them are flagged; a repeated request
finds nothing."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_platform.cli import main
from crm_platform.runner import materialize_assets
from crm_platform.settings import Settings
from crm_platform.synth import generate_dataset
from crm_platform.warehouse import open_warehouse

HASH = re.compile(r"pii:[0-9a-f]{32}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("erasure_world")
    generate_dataset(root, leads=250, days=120, seed=11)
    return root


@pytest.fixture
def world(engine, generated, data_dir, monkeypatch, tmp_path):
    shutil.copytree(generated / "landing", data_dir / "landing")
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert materialize_assets(selection=None, partition=None, echo=lambda _: None)
    return home


def _wh():
    return open_warehouse(Settings.from_env())


def _person(wh, skip: set[str] = frozenset()) -> dict:
    """A canonical lead with several records, an e-mail address and labels: its ids, events,
    exclusive hashes and address, read independently of the erasure code."""
    t = wh.table_name
    rows = wh.fetchall(
        f"select m.lead_id from {t('identity', 'lead_identity_map')} m "
        f"where m.lead_id in (select lead_id from {t('features', 'lead_labels')}) "
        "group by m.lead_id having count(*) >= 2 order by m.lead_id")
    canonical = next(c for (c,) in rows if c not in skip)
    records = {r for (r,) in wh.fetchall(
        f"select record_lead_id from {t('identity', 'lead_identity_map')} where lead_id = $c", {"c": canonical})} | {canonical}
    sources = wh.fetchall(f"select source_system, source_id from {t('identity', 'lead_identity_map')} where lead_id = $c",
                          {"c": canonical})
    # Their events: on their records, on their browsers (no lead), or naming a record in their text.
    everything = wh.fetchall(f"select event_id, lead_id, canonical_lead_id, user_id, attributes, context "
                             f"from {t('core', 'events')}")
    users = {u for _, lead, _, u, _, _ in everything if u and lead in records}
    users -= {u for _, lead, _, u, _, _ in everything if u and lead and lead not in records}
    named = re.compile("|".join(re.escape(f'"{r}"') for r in sorted(records)))
    def theirs(lead, canonical_id, user, text):
        return (lead in records or canonical_id == canonical or (lead is None and user in users)
                or bool(named.search(text)))
    events = [(e, a, c) for e, lead, cl, u, a, c in everything if theirs(lead, cl, u, f"{a} {c}")]
    hashes = {h for _, a, c in events for h in HASH.findall(f"{a} {c}")}
    ids = {e for e, _, _ in events}
    others = {h for e, _, _, _, a, c in everything if e not in ids for h in HASH.findall(f"{a} {c}")}
    emails = {v for (v,) in wh.fetchall(
        f"select value from {t('pii', 'vault')} where field = 'attributes.email' and list_contains($h, pii_hash)",
        {"h": sorted(hashes)})}
    return {"canonical": canonical, "records": records, "sources": sources, "events": ids,
            "hashes": hashes - others, "emails": emails}


def _needles(p: dict) -> list[re.Pattern]:
    ids = p["records"] | p["events"]
    return ([re.compile(re.escape(i) + r"(?![0-9A-Za-z])") for i in ids]
            + [re.compile(re.escape(h)) for h in p["hashes"]]
            + [re.compile(re.escape(e), re.I) for e in p["emails"]])


def _residues_in_tables(wh, p: dict) -> dict[str, int]:
    """(schema.table) -> rows whose text (any column) holds one of the person's ids, hashes or addresses."""
    found = {}
    needles = _needles(p)
    for (schema, table), columns in wh.list_tables().items():
        text = [f'coalesce(CAST("{c}" AS VARCHAR), \'\')' if not (k.endswith("[]") or k.startswith("Array("))
                else f'coalesce(array_to_string("{c}", \' \'), \'\')' for c, k in columns]
        rows = wh.fetchall(f"select {' || chr(31) || '.join(text)} from {wh.table_name(schema, table)}")
        hits = sum(1 for (r,) in rows if any(n.search(r) for n in needles))
        if hits:
            found[f"{schema}.{table}"] = hits
    return found


def _residues_in_dagster(home: Path, p: dict) -> list[str]:
    needles = [re.compile(n.pattern.encode(), n.flags & re.I) for n in _needles(p)]
    hits = []
    for f in home.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            hits += [f"{f.relative_to(home)}: {n.pattern!r}" for n in needles if n.search(data)]
    return hits


def test_an_erased_person_is_gone_everywhere_and_everyone_else_stays(engine, world):
    with _wh() as wh:
        person = _person(wh)
        assert person["emails"] and len(person["records"]) >= 3 and person["hashes"]
        events_before = wh.row_count("core", "events")
        leads_before = wh.row_count("marts", "lead_latest_state")
        models = [m for (m,) in wh.fetchall(f"select model_version from {wh.table_name('ml', 'model_registry')}")]
        assert _residues_in_tables(wh, person)  # the scan finds them before
    email = sorted(person["emails"])[0]

    result = CliRunner().invoke(main, ["erase", "--email", email.upper(), "--reference", "DSR-0042"])
    assert result.exit_code == 0, result.output
    assert email.lower() not in result.output.lower() and person["canonical"] not in result.output

    with _wh() as wh:
        assert _residues_in_tables(wh, person) == {}
        (erased_at,) = wh.fetchall(f"select erased_at from {wh.table_name('governance', 'erasure_report')}")[0]
        # The refresh adds events of its own (identity decisions, scores); those from before lost exactly theirs.
        assert wh.fetchall(f"select count(*) from {wh.table_name('core', 'events')} where ingested_at < $t",
                           {"t": erased_at})[0][0] == events_before - len(person["events"])
        assert wh.row_count("marts", "lead_latest_state") == leads_before - 1
        (report,) = wh.fetchall(
            f"select request_id, reference, origin, status, rows_deleted, tables, models_flagged, landing_files, verified "
            f"from {wh.table_name('governance', 'erasure_report')}")
        flagged = [m for (m,) in wh.fetchall(f"select model_version from {wh.table_name('ml', 'retraining_required')}")]
    request_id, reference, origin, status, rows, tables, models_flagged, files, verified = report
    tables = json.loads(tables)
    assert (reference, origin, status, verified) == ("DSR-0042", "cli", "erased", True)
    assert tables["core.events"] == len(person["events"])
    assert tables["identity.lead_identity_map"] == len(person["sources"])
    assert {"pii.vault", "features.lead_features", "features.lead_labels", "pii.source_records"} <= set(tables)
    assert rows == sum(tables.values())
    assert list(models_flagged) == flagged == models  # every model was trained after their labels
    assert files and all(not f.startswith("/") for f in files)
    assert not any(n.search(json.dumps(report, default=str)) for n in _needles(person))
    assert _residues_in_dagster(world, person) == []

    # The same request again finds no one and deletes nothing.
    again = CliRunner().invoke(main, ["erase", "--email", email, "--no-refresh"])
    assert again.exit_code == 0, again.output
    with _wh() as wh:
        statuses = wh.fetchall(f"select status, rows_deleted from {wh.table_name('governance', 'erasure_report')} "
                               "order by erased_at")
    assert statuses[-1] == ("not_found", 0)


def test_an_erasure_requested_event_erases_its_lead_and_itself(engine, world, data_dir):
    with _wh() as wh:
        person = _person(wh)
        events_before = wh.row_count("core", "events")
    record = sorted(person["records"] - {person["canonical"]})[0]
    request = {"event_type": "erasure_requested", "schema_version": "2026-01-1", "event_id": "evt_erasure_1",
               "occurred_at": "2026-07-01T09:00:00Z", "source": "consent_platform", "lead_id": record,
               "attributes": {"reference": "DSR-7", "requested_via": "form"}}
    target = data_dir / "landing" / "events" / "privacy"
    target.mkdir(parents=True)
    (target / "requests-1.jsonl").write_text(json.dumps(request) + "\n")
    assert materialize_assets(selection="group:ingest", partition=None, echo=lambda _: None)
    assert materialize_assets(selection="key:governance/erasure_report", partition=None, echo=lambda _: None)
    with _wh() as wh:
        ((reference, origin, status, tables),) = wh.fetchall(
            f"select reference, origin, status, tables from {wh.table_name('governance', 'erasure_report')}")
        assert (reference, origin, status) == ("DSR-7", "event", "erased")
        assert json.loads(tables)["core.events"] == len(person["events"]) + 1  # the request too
        assert wh.row_count("core", "events") == events_before - len(person["events"])
        person["events"].add("evt_erasure_1")
        assert _residues_in_tables(wh, person) == {}
