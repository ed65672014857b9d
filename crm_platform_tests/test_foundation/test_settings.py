from pathlib import Path

import pytest

from crm_platform.settings import DEVELOPMENT_PII_KEY, Settings


def test_defaults_follow_the_contract():
    s = Settings.from_env({})
    assert s.data_dir == Path("./data")
    assert s.warehouse == "duckdb"
    assert s.duckdb_path == Path("./data/warehouse.duckdb")
    assert (s.clickhouse_host, s.clickhouse_port, s.clickhouse_user, s.clickhouse_password,
            s.clickhouse_database, s.clickhouse_secure) == ("localhost", 8123, "default", "", "crm", False)
    assert s.landing_dir == Path("./data/landing")
    assert s.pii_key_is_default and s.pii_key() == DEVELOPMENT_PII_KEY.encode()


def test_duckdb_path_follows_the_data_dir_unless_set():
    assert Settings.from_env({"CRM_DATA_DIR": "/x"}).duckdb_path == Path("/x/warehouse.duckdb")
    assert Settings.from_env({"CRM_DATA_DIR": "/x", "CRM_DUCKDB_PATH": "/y/w.duckdb"}).duckdb_path == Path("/y/w.duckdb")


def test_bad_values_say_what_is_wrong():
    with pytest.raises(ValueError, match="CRM_WAREHOUSE='postgres': expected one of duckdb, clickhouse"):
        Settings.from_env({"CRM_WAREHOUSE": "postgres"})
    with pytest.raises(ValueError, match="CLICKHOUSE_PORT='http'"):
        Settings.from_env({"CLICKHOUSE_PORT": "http"})
    assert Settings.from_env({"CLICKHOUSE_SECURE": "TRUE"}).clickhouse_secure


def test_the_pii_key_never_shows_in_a_repr(caplog):
    s = Settings.from_env({"CRM_PII_KEY": "s3cret-value", "CLICKHOUSE_PASSWORD": "pw-value"})
    assert not s.pii_key_is_default and s.pii_key() == b"s3cret-value"
    assert "s3cret" not in repr(s) and "pw-value" not in repr(s)
    assert not caplog.records  # a configured key logs no warning
