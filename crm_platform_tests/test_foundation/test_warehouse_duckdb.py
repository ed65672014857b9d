import pyarrow as pa
import pytest

from crm_platform.warehouse import DuckDBWarehouse


def test_replace_table_swaps_whole_content(tmp_path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        assert not wh.table_exists("core", "t")
        assert wh.replace_table("core", "t", pa.table({"a": [1, 2, 3]})) == 3
        assert wh.replace_table("core", "t", pa.table({"a": [7], "b": ["x"]})) == 1
        assert wh.fetchall('select a, b from "core"."t"') == [(7, "x")]
        assert wh.row_count("core", "t") == 1


def test_a_failed_transaction_leaves_nothing(tmp_path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as wh:
        wh.replace_table("core", "t", pa.table({"a": [1]}))
        with pytest.raises(RuntimeError):
            with wh.transaction():
                wh.execute('insert into "core"."t" values (2)')
                raise RuntimeError("crash mid-write")
        assert wh.fetchall('select a from "core"."t"') == [(1,)]


def test_a_second_process_waits_for_the_lock_then_proceeds(tmp_path):
    import subprocess, sys, time
    path = tmp_path / "w.duckdb"
    holder = DuckDBWarehouse(path)
    holder.execute("create table t (a int)")
    waiter = subprocess.Popen([sys.executable, "-c", (
        "from crm_platform.warehouse import DuckDBWarehouse\n"
        f"w = DuckDBWarehouse({str(path)!r}, lock_timeout_s=60)\n"
        "w.execute('insert into t values (1)'); w.close(); print('inserted')")],
        stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert waiter.poll() is None  # still waiting for the lock, not failed
    holder.close()
    out, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0 and "inserted" in out
    with DuckDBWarehouse(path) as wh:
        assert wh.fetchall("select a from t") == [(1,)]


def test_the_connection_opens_lazily_and_says_what_to_do_when_locked(tmp_path):
    import subprocess, sys, textwrap
    path = tmp_path / "w.duckdb"
    wh = DuckDBWarehouse(path)
    assert not path.exists()  # nothing touched before first use
    wh.execute("create table t (a int)")
    # Another process cannot open the file while this one holds it: the error names the cause.
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from crm_platform.warehouse import DuckDBWarehouse
        try:
            DuckDBWarehouse({str(path)!r}, lock_timeout_s=0.5).fetchall('select 1')
        except RuntimeError as e:
            print(e)
        """)], capture_output=True, text=True)
    assert "Another process held it for 0 s" in p.stdout, p.stdout + p.stderr
    wh.close()  # releases the lock
    with DuckDBWarehouse(path) as again:
        assert again.table_exists("main", "t")


def test_the_memory_budget_is_1gb_unless_the_environment_raises_it(tmp_path, monkeypatch):
    from crm_platform.warehouse import DuckDBWarehouse

    monkeypatch.delenv("CRM_DUCKDB_MEMORY_LIMIT", raising=False)
    with DuckDBWarehouse(tmp_path / "a.duckdb") as wh:
        assert wh.fetchall("select current_setting('memory_limit')")[0][0] == "953.6 MiB"
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "2GB")
    with DuckDBWarehouse(tmp_path / "b.duckdb") as wh:
        assert wh.fetchall("select current_setting('memory_limit')")[0][0] == "1.8 GiB"
