"""A real ClickHouse server on this machine, for the test suite and benchmarks (DESIGN.md).

The `chdb-core` wheel (in the `test` extra) embeds ClickHouse's whole `clickhouse-local`, which since
26.x can serve HTTP (`SYSTEM START LISTEN HTTP`). `LocalClickHouse` runs it in a process of its own,
in its own session, with its data, config and TMPDIR in one directory, on a free port; it waits for
`/ping` and stops the process by its PID. Production deployments point CLICKHOUSE_* at a server or
a cluster instead (README, "Scaling out").

Users: `clickhouse-local` keeps only the users of its users.xml (no writable access storage, so
`CREATE USER` / `CREATE ROLE` are refused whatever the config says). The `default` user has every
right, access management included; `users` adds more, each with its password and its GRANT
statements (users.xml's `<grants>`, the same statements as `GRANT ... TO role` without the `TO`),
which is how the tests check the documented grants (README, "the PII vault").
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

# Run by the server process: listen, then block in a sleeping query while the listener serves.
# One row per block keeps sleepEachRow under its per-block limit (3 s).
_SERVE = """
import sys
from chdb import _chdb
res = _chdb.query("SYSTEM START LISTEN HTTP; SELECT count() FROM numbers(1000000000) WHERE sleepEachRow(1) = 0 "
                  "SETTINGS max_block_size = 1, max_execution_time = 0", "TabSeparated", path=sys.argv[1])
print("clickhouse-local exited:", getattr(res, "error_message", lambda: res)(), file=sys.stderr, flush=True)
sys.exit(1)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _users_xml(users: Mapping[str, tuple[str, Sequence[str]]]) -> str:
    """users.xml: `default` with every right, and each (password, grants) of `users`."""
    def user(name: str, password: str, grants: str) -> str:
        return (f"<{name}><password>{escape(password)}</password><networks><ip>::/0</ip></networks>"
                f"<profile>default</profile><quota>default</quota>{grants}</{name}>")
    default = user("default", "", "<access_management>1</access_management>"
                                  "<named_collection_control>1</named_collection_control>")
    others = "".join(user(name, password, "<grants>" + "".join(f"<query>{escape(g)}</query>" for g in grants)
                          + "</grants>") for name, (password, grants) in users.items())
    return (f"<clickhouse><profiles><default></default></profiles><quotas><default></default></quotas>"
            f"<users>{default}{others}</users></clickhouse>")


class LocalClickHouse:
    def __init__(self, home: Path, startup_timeout_s: float = 60.0,
                 users: Mapping[str, tuple[str, Sequence[str]]] | None = None):
        """`users`: name -> (password, GRANT statements without `TO`), beside `default`."""
        self.home = Path(home)
        self.startup_timeout_s = startup_timeout_s
        self.users = dict(users or {})
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "LocalClickHouse":
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self.port = free_port()
        (self.home / "users.xml").write_text(_users_xml(self.users))
        (self.home / "config.xml").write_text(
            f"<clickhouse><listen_host>127.0.0.1</listen_host><http_port>{self.port}</http_port>"
            f"<tcp_port>{free_port()}</tcp_port>"
            f"<user_directories><users_xml><path>{escape(str(self.home / 'users.xml'))}</path></users_xml></user_directories>"
            "</clickhouse>")
        log = (self.home / "server.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(self.home / "data")], cwd=self.home,
                                     env=dict(os.environ, TMPDIR=str(self.home / "tmp")), stdout=log, stderr=log,
                                     start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the local ClickHouse server exited: "
                                       + (self.home / "server.log").read_text()[-500:]) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the local ClickHouse server did not answer within {self.startup_timeout_s:.0f} s")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None

    def env(self, database: str) -> dict[str, str]:
        """The environment that points the platform at this server (CONTRACT §2)."""
        return {"CRM_WAREHOUSE": "clickhouse", "CLICKHOUSE_HOST": "127.0.0.1", "CLICKHOUSE_PORT": str(self.port),
                "CLICKHOUSE_DATABASE": database}

    def __enter__(self) -> "LocalClickHouse":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
