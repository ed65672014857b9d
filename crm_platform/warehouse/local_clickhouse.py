"""A real ClickHouse server on this machine, for the test suite and benchmarks (DESIGN.md).

The `chdb-core` wheel (in the `test` extra) embeds ClickHouse's whole `clickhouse-local`, which since
26.x can serve HTTP (`SYSTEM START LISTEN HTTP`). `LocalClickHouse` runs it in a process of its own,
in its own session, with its data, config and TMPDIR in one directory, on a free port; it waits for
`/ping` and stops the process by its PID. Production deployments point CLICKHOUSE_* at a server or
a cluster instead (README, "Scaling out").
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


class LocalClickHouse:
    def __init__(self, home: Path, startup_timeout_s: float = 60.0):
        self.home = Path(home)
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "LocalClickHouse":
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self.port = free_port()
        (self.home / "config.xml").write_text(
            f"<clickhouse><listen_host>127.0.0.1</listen_host><http_port>{self.port}</http_port>"
            f"<tcp_port>{free_port()}</tcp_port></clickhouse>")
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
