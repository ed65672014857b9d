"""The PII vault is separable (governance issue 11): on ClickHouse the `pii` tables live in a
database of their own (CLICKHOUSE_PII_DATABASE) that the documented grants keep analysts out of; on
DuckDB they are a schema of the one file, or, with CRM_PII_DUCKDB_PATH, a file of their own, and
the ingest then commits the vault side first, so a crash between the two commits leaves no event
without its vault entry and the rerun converges. Real engines throughout."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import clickhouse_connect
import duckdb
import pytest

from crm_platform.ingest.run import ingest_landing
from crm_platform.ingest.targets import SeparateVault
from crm_platform.plan.loader import load_plan
from crm_platform.settings import Settings
from crm_platform.synth import generate_dataset
from crm_platform.warehouse import ClickHouseWarehouse, open_warehouse
from crm_platform.warehouse.local_clickhouse import LocalClickHouse

from ..test_ingest.helpers import KEY, event, land

PII_TABLES = {"vault", "quarantine_payloads", "source_records"}
HASHES = r"pii:[0-9a-f]{32}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A small generated landing zone: event files, CDC streams and CRM exports."""
    root = tmp_path_factory.mktemp("vault_world")
    generate_dataset(root, leads=150, days=40, seed=5)
    return root


def _ingest():
    with open_warehouse(Settings.from_env()) as wh:
        return ingest_landing(wh, Settings.from_env().landing_dir, load_plan(), KEY)


# Values distinctive enough to look for inside longer texts (JSON, redacted records): a surname is
# also part of company names ("Hoffmann Technik AG"), which are no PII, so names are compared whole.
DISTINCTIVE = ("attributes.email", "attributes.phone", "attributes.street", "context.ip", "raw_record")
# What the redaction of a rejected line promises (sql_validation: e-mail- and phone-looking
# substrings, and the context IP): a quarantined record's names and street stay in its
# raw_record (see test_rejected_lines_keep_names_and_streets_in_clear).
REDACTED_IN_REJECTED_LINES = ("attributes.email", "attributes.phone", "context.ip", "raw_record")


def _vault_values(rows: list[tuple[str, str]], substring_fields=DISTINCTIVE) -> tuple[list[str], list[str]]:
    """From the vault's (field, value): every value, compared whole; and the distinctive ones of
    `substring_fields` (8 characters or more), also looked for inside longer texts."""
    # A rejected line's phone-looking digit runs are vaulted too (field raw_record), and some are
    # record ids (a HubSpot Record ID), which are no PII and rightly stay as ids elsewhere.
    rows = [(f, v) for f, v in rows if v and not (f == "raw_record" and "@" not in v)]
    exact = sorted({v for _, v in rows})
    inside = sorted({v for f, v in rows if len(v) >= 8 and f in substring_fields})
    return exact, inside


def _vault_rows(wh) -> list[tuple[str, str]]:
    return wh.fetchall(f"select field, value from {wh.table_name('pii', 'vault')}")


def _is_rejected_text(table: str, column: str) -> bool:
    return table.endswith("quarantine") and column in ("raw_record", "reasons")


# -- ClickHouse ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["clickhouse"], indirect=True)
def test_clickhouse_keeps_the_pii_tables_in_their_own_database_and_no_clear_value_elsewhere(engine, data_dir, generated):
    shutil.copytree(generated / "landing", data_dir / "landing")
    assert _ingest()
    settings = Settings.from_env()
    assert settings.clickhouse_pii_database == settings.clickhouse_database + "_pii"
    with open_warehouse(settings) as wh:
        main, pii = wh.database, wh.pii_database
        assert wh.table_name("pii", "vault") == f'"{pii}"."vault"'
        in_pii = {t for (t,) in wh.fetchall(f"select name from system.tables where database = '{pii}'")}
        in_main = {t for (t,) in wh.fetchall(f"select name from system.tables where database = '{main}'")}
        assert PII_TABLES <= in_pii
        assert not {t for t in in_main if t.startswith("pii__") or t in PII_TABLES}, in_main
        assert {t for s, t in wh.list_tables() if s == "pii"} >= PII_TABLES
        assert wh.table_exists("pii", "vault") and not wh.table_exists("pii", "events")
        assert wh.row_count("pii", "vault") > 100 and wh.row_count("pii", "source_records") > 100

        rows = _vault_rows(wh)
        exact, inside = _vault_values(rows)
        _, promised = _vault_values(rows, REDACTED_IN_REJECTED_LINES)
        assert len(exact) > 100 and any("@" in v for v in exact) and len(inside) > 100
        columns = wh.fetchall(f"select table, name from system.columns where database = '{main}' and type like '%String%'")
        assert len(columns) > 20
        found = []
        for table, column in columns:
            text = f'toString("{column}")'
            needles = promised if _is_rejected_text(table, column) else inside
            (hits,) = wh.client.query(f'select countIf(has({{exact:Array(String)}}, {text})) from "{main}"."{table}"',
                                      parameters={"exact": exact}).result_rows[0]
            for start in range(0, len(needles), 255):  # multiSearchAny takes at most 255 needles
                hits += wh.client.query(f'select countIf(multiSearchAny({text}, {{inside:Array(String)}})) '
                                        f'from "{main}"."{table}"',
                                        parameters={"inside": needles[start:start + 255]}).result_rows[0][0]
            if hits:
                found.append((table, column, hits))
        assert not found, found


ANALYST, OFFICER, PIPELINE = ("crm_analyst_user", "an-pw"), ("crm_privacy_officer_user", "po-pw"), ("crm_pipeline", "pl-pw")
GRANTS_DB = "grants_crm"


def documented_grants(main: str, pii: str) -> dict[str, list[str]]:
    """The README's GRANT statements, per role (without `TO <role>`)."""
    return {
        "pipeline": [f"GRANT ALL ON {main}.*", f"GRANT ALL ON {pii}.*", "GRANT CREATE TEMPORARY TABLE ON *.*",
                     "GRANT TABLE ENGINE ON *"],
        "analyst": [f"GRANT SELECT ON {main}.*"],
        "privacy_officer": [f"GRANT SELECT ON {pii}.*"],
    }


@pytest.fixture(scope="module")
def server_with_roles(tmp_path_factory):
    """A ClickHouse of its own whose users hold the documented grants. (clickhouse-local keeps no
    SQL-created users or roles: the grants are users.xml's, the same statements.)"""
    grants = documented_grants(GRANTS_DB, GRANTS_DB + "_pii")
    users = {PIPELINE[0]: (PIPELINE[1], grants["pipeline"]), ANALYST[0]: (ANALYST[1], grants["analyst"]),
             OFFICER[0]: (OFFICER[1], grants["privacy_officer"])}
    with LocalClickHouse(tmp_path_factory.mktemp("clickhouse_roles"), users=users) as server:
        yield server


def test_the_documented_grants_let_analysts_read_the_warehouse_but_not_the_vault(server_with_roles, data_dir, monkeypatch):
    server = server_with_roles
    for name, value in server.env(GRANTS_DB).items():
        monkeypatch.setenv(name, value)
    # The pipeline runs as its own user, with ALL on both databases (it creates them, too).
    monkeypatch.setenv("CLICKHOUSE_USER", PIPELINE[0])
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", PIPELINE[1])
    land(data_dir / "landing", "a.jsonl", [event("g1", email="jane.grant@example.com"), "{bad"])
    (outcome,) = _ingest()
    assert (outcome.events_accepted, outcome.records_quarantined) == (1, 1)

    def client(user):
        return clickhouse_connect.get_client(host="127.0.0.1", port=server.port, username=user[0], password=user[1])

    analyst, officer = client(ANALYST), client(OFFICER)
    assert analyst.query(f"select count() from {GRANTS_DB}.core__events").result_rows == [(1,)]
    for table in ("vault", "quarantine_payloads", "source_records"):
        with pytest.raises(Exception, match="ACCESS_DENIED") as denied:
            analyst.query(f"select * from {GRANTS_DB}_pii.{table}")
        assert "jane.grant" not in str(denied.value)
    assert officer.query(f"select value from {GRANTS_DB}_pii.vault where field = 'attributes.email'").result_rows == [
        ("jane.grant@example.com",)]
    with pytest.raises(Exception, match="ACCESS_DENIED"):
        officer.query(f"select count() from {GRANTS_DB}.core__events")
    with pytest.raises(Exception, match="ACCESS_DENIED"):
        analyst.command(f"insert into {GRANTS_DB}.core__events (event_id) values ('x')")
    with ClickHouseWarehouse(port=server.port, database=GRANTS_DB) as wh:
        for db in (wh.database, wh.pii_database):
            wh.client.command(f'drop database if exists "{db}"')


# -- DuckDB --------------------------------------------------------------------------------------


def test_duckdb_keeps_pii_a_schema_of_the_one_file_by_default(data_dir, generated):
    shutil.copytree(generated / "landing" / "events", data_dir / "landing" / "events")
    _ingest()
    settings = Settings.from_env()
    assert settings.duckdb_pii_path is None
    with open_warehouse(settings) as wh:
        assert not wh.pii_separate
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert [d for (d,) in con.execute("select database_name from duckdb_databases() where not internal").fetchall()] \
            == ["warehouse"]
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'pii'").fetchall()}
        assert PII_TABLES <= tables
        assert con.execute("select count(*) from pii.vault").fetchone()[0] > 100
    assert not list(data_dir.glob("*pii*"))


def _pipeline(root: Path, generated: Path, monkeypatch, pii_file: Path | None) -> dict[tuple[str, str], int]:
    """The whole asset graph on a copy of the generated landing zone; every table's row count."""
    from crm_platform.runner import materialize_assets

    data = root / "data"
    shutil.copytree(generated / "landing", data / "landing")
    monkeypatch.setenv("CRM_DATA_DIR", str(data))
    monkeypatch.setenv("CRM_DUCKDB_PATH", str(data / "warehouse.duckdb"))
    if pii_file is None:
        monkeypatch.delenv("CRM_PII_DUCKDB_PATH", raising=False)
    else:
        monkeypatch.setenv("CRM_PII_DUCKDB_PATH", str(pii_file))
    lines: list[str] = []
    assert materialize_assets(selection=None, partition=None, echo=lines.append), "\n".join(lines)
    with open_warehouse(Settings.from_env()) as wh:
        return {key: wh.row_count(*key) for key in wh.list_tables()}


@pytest.fixture(scope="module")
def both_layouts(generated, tmp_path_factory):
    """The pipeline in the one-file layout and with the vault in a file of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRM_WAREHOUSE", "duckdb")
        mp.delenv("DAGSTER_HOME", raising=False)
        single = _pipeline(tmp_path_factory.mktemp("one_file"), generated, mp, None)
        root = tmp_path_factory.mktemp("two_files")
        pii_file = root / "vault" / "pii.duckdb"
        split = _pipeline(root, generated, mp, pii_file)
    return single, split, root / "data" / "warehouse.duckdb", pii_file


def test_duckdb_with_a_vault_file_runs_the_whole_pipeline_with_the_same_counts(both_layouts):
    single, split, _, _ = both_layouts
    assert ("pii", "vault") in split and ("features", "lead_features") in split and ("identity", "lead_identity_map") in split
    assert split[("pii", "vault")] > 100 and split[("identity", "lead_identity_map")] > 100
    assert split[("features", "lead_features")] > 100
    assert split == single


def test_duckdb_with_a_vault_file_keeps_every_clear_value_in_that_file(both_layouts):
    _, split, main_file, pii_file = both_layouts
    assert stat.S_IMODE(os.stat(pii_file).st_mode) == 0o600
    with duckdb.connect(str(pii_file), read_only=True) as con:
        assert {t for (t,) in con.execute("select table_name from information_schema.tables "
                                          "where table_schema = 'main'").fetchall()} >= PII_TABLES
        assert con.execute("select count(*) from vault").fetchone()[0] == split[("pii", "vault")]
        rows = con.execute("select field, value from vault").fetchall()
    exact, inside = _vault_values(rows)
    _, promised = _vault_values(rows, REDACTED_IN_REJECTED_LINES)
    assert any("@" in v for v in exact) and len(inside) > 100
    with duckdb.connect(str(main_file), read_only=True) as con:  # the main file alone
        assert not con.execute("select * from information_schema.schemata where schema_name = 'pii'").fetchall()
        con.execute("create temp table exact as select unnest(?) v", [exact])
        con.execute("create temp table inside as select unnest(?) v", [inside])
        con.execute("create temp table promised as select unnest(?) v", [promised])
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "where table_catalog = current_database() and (data_type in ('VARCHAR', 'JSON') "
                              "or data_type like 'VARCHAR[]%' or data_type = 'BLOB')").fetchall()
        assert len(columns) > 50
        found = []
        for schema, table, column in columns:
            text = f'CAST("{column}" AS VARCHAR)'
            needles = "promised" if _is_rejected_text(table, column) else "inside"
            (hits,) = con.execute(
                f'select count(*) from "{schema}"."{table}" t where {text} in (select v from exact) '
                f'or exists (select 1 from {needles} n where contains({text}, n.v))').fetchone()
            if hits:
                found.append((schema, table, column, hits))
        assert not found, found


# -- DuckDB: a crash between the two commits -----------------------------------------------------


def _split_env(data_dir: Path, monkeypatch) -> Path:
    pii_file = data_dir.parent / "vault.duckdb"
    monkeypatch.setenv("CRM_PII_DUCKDB_PATH", str(pii_file))
    return pii_file


def _state(data_dir: Path) -> dict[str, list]:
    """Every ingest table, run-time columns aside, and the integrity facts the crash must keep."""
    settings = Settings.from_env()
    with open_warehouse(settings) as wh:
        t = wh.table_name
        return {
            "events": wh.fetchall(f"select * exclude (ingested_at) from {t('core', 'events')} order by event_id"),
            "quarantine": wh.fetchall(f"select * exclude (quarantined_at) from {t('core', 'quarantine')} "
                                      "order by source_file, source_line"),
            "ledger": wh.fetchall(f"select source_file, sha256, records_read, events_accepted, events_duplicate, "
                                  f"records_quarantined, status from {t('core', 'ingest_ledger')} order by sha256"),
            "vault": wh.fetchall(f"select pii_hash, field, value from {t('pii', 'vault')} order by pii_hash"),
            "payloads": wh.fetchall(f"select * from {t('pii', 'quarantine_payloads')} order by source_file, source_line"),
            "states": wh.fetchall(f"select * exclude (updated_at) from {t('pii', 'source_records')} "
                                  "order by source_system, source_object, source_id"),
        }


def _unvaulted(data_dir: Path) -> list:
    """Hashes a row of core.events or core.quarantine references that the vault does not hold."""
    with open_warehouse(Settings.from_env()) as wh:
        t = wh.table_name
        return wh.fetchall(f"""
            with refs as (
                select unnest(regexp_extract_all(coalesce(CAST(attributes AS VARCHAR), '') || ' ' ||
                                                 coalesce(CAST(context AS VARCHAR), ''), '{HASHES}')) h from {t('core', 'events')}
                union all
                select unnest(regexp_extract_all(coalesce(raw_record, ''), '{HASHES}')) from {t('core', 'quarantine')})
            select distinct h from refs where h not in (select pii_hash from {t('pii', 'vault')})""")


def _later_files(landing: Path) -> list[Path]:
    """The CDC and export files a second pass lands: the newer half of each source's folder, so
    that its groups change records the first pass made (and replace their stored states)."""
    later = []
    for folder in sorted({p.parent for p in landing.glob("*/*/**/*") if p.is_file()} - {landing / "events"}):
        if folder.is_relative_to(landing / "events"):
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file())
        later += files[len(files) // 2:]
    return later


def _two_passes(data: Path, generated: Path, second) -> None:
    """Land the zone but its later files, ingest, land those, then `second()`."""
    shutil.copytree(generated / "landing", data / "landing")
    held = data.parent / "held"
    later = _later_files(data / "landing")
    assert len(later) > 10
    for path in later:
        target = held / path.relative_to(data / "landing")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    assert _ingest()
    for path in later:
        shutil.move(str(held / path.relative_to(data / "landing")), str(path))
    second()


@pytest.fixture(scope="module")
def clean_split_run(generated, tmp_path_factory) -> dict[str, list]:
    """The ingest tables after two uninterrupted passes with a separate vault file."""
    with pytest.MonkeyPatch.context() as mp:
        data = tmp_path_factory.mktemp("clean") / "data"
        mp.setenv("CRM_DATA_DIR", str(data))
        mp.setenv("CRM_DUCKDB_PATH", str(data / "warehouse.duckdb"))
        mp.setenv("CRM_WAREHOUSE", "duckdb")
        _split_env(data, mp)
        _two_passes(data, generated, _ingest)
        return _state(data)


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["between_the_commits", "before_the_old_states_go"])
def test_a_crash_between_the_vault_and_the_rest_loses_nothing_and_the_rerun_converges(
        where, data_dir, generated, monkeypatch, clean_split_run):
    _split_env(data_dir, monkeypatch)
    real_publish, real_committed = SeparateVault.publish, SeparateVault.committed

    def publish_then_die(self, group_at):
        real_publish(self, group_at)  # the vault side of the group is committed
        if where == "between_the_commits":
            raise Crash("the process dies before the group's own transaction commits")

    def committed_then_die(self):
        if where == "before_the_old_states_go" and self._replaced is not None:
            raise Crash("the process dies before the replaced states are removed")
        real_committed(self)

    def crashing_second_pass():
        monkeypatch.setattr(SeparateVault, "publish", publish_then_die)
        monkeypatch.setattr(SeparateVault, "committed", committed_then_die)
        with pytest.raises(Crash):
            _ingest()
        monkeypatch.setattr(SeparateVault, "publish", real_publish)
        monkeypatch.setattr(SeparateVault, "committed", real_committed)

    _two_passes(data_dir, generated, crashing_second_pass)
    assert _unvaulted(data_dir) == []  # no event or quarantined record without its vault entries
    crashed = _state(data_dir)
    with open_warehouse(Settings.from_env()) as wh:
        t = wh.table_name
        last = f"(select max(started_at) from {t('core', 'ingest_ledger')})"
        if where == "between_the_commits":
            # The dead group's vault side is in (orphans, and states newer than the ledger), its events are not.
            (newer,) = wh.fetchall(f"select count(*) from {t('pii', 'source_records')} where updated_at > {last}")[0]
            assert newer > 0
            assert len(crashed["ledger"]) < len(clean_split_run["ledger"])
        else:
            # The group is in, and some records have their old state beside the new one.
            (doubled,) = wh.fetchall(f"select count(*) from (select source_system, source_object, source_id "
                                     f"from {t('pii', 'source_records')} group by all having count(*) > 1)")[0]
            assert doubled > 0
    assert crashed != clean_split_run

    _ingest()  # the rerun
    assert _unvaulted(data_dir) == []
    assert _state(data_dir) == clean_split_run
    assert _ingest() == []  # nothing is left to do
    assert _state(data_dir) == clean_split_run


def test_a_main_file_that_still_holds_the_pii_schema_is_refused_with_the_vault_file_set(data_dir, monkeypatch):
    land(data_dir / "landing", "a.jsonl", [event("s1", email="solo@example.com")])
    _ingest()  # the one-file layout: pii is a schema of the warehouse
    _split_env(data_dir, monkeypatch)
    with pytest.raises(ValueError, match="still holds .* 'pii' schema"):
        _ingest()


def test_rejected_lines_keep_no_name_street_or_address_in_clear(data_dir):
    """The redaction of a rejected line hashes the string value of every member named like a PII
    field, also in a line cut off mid-value, and the vault gets the clear values (field raw_record)."""
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [event("r1", stage="hot", first_name="Zebediah", last_name="Quellwater",
                                    street="41 Lake Shore Drive", email="zq@example.com")])
    with (landing / "events" / "a.jsonl").open("a") as fh:  # a second line, truncated inside the name
        fh.write('{"event_type": "lead_created", "event_id": "r2", "attributes": {"last_name": "Ortolan-Vey')
    (outcome,) = _ingest()
    assert outcome.records_quarantined == 2
    clear = ("zq@example.com", "Zebediah", "Quellwater", "41 Lake Shore Drive", "Ortolan-Vey")
    with open_warehouse(Settings.from_env()) as wh:
        rows = wh.fetchall(f"select source_line, raw_record, reasons from {wh.table_name('core', 'quarantine')} "
                           "order by source_line")
        vault = {v: h for h, v in wh.fetchall(f"select pii_hash, value from {wh.table_name('pii', 'vault')}")}
    (_, whole, reasons), (_, cut, _) = rows
    assert not any(v in text for v in clear for text in (whole, cut, str(reasons))), rows
    assert set(clear) <= set(vault)
    # Hashed in place: the line keeps its shape, the hash is the vault's (erasure finds it by it).
    assert f'"first_name": "{vault["Zebediah"]}"' in whole and f'"street": "{vault["41 Lake Shore Drive"]}"' in whole
    assert cut.endswith(f'"last_name": "{vault["Ortolan-Vey"]}')
