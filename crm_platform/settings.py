"""Runtime settings from the environment (CONTRACT §2). Every variable is optional.

Read at run time, never at import time, so that a code server, a sensor and a run can each see the
environment they were started with.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)

# Only for development: real deployments set CRM_PII_KEY (keyed hashes must not be guessable).
DEVELOPMENT_PII_KEY = "crm-platform-development-key-do-not-use-in-production"
ENGINES = ("duckdb", "clickhouse")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse: str
    duckdb_path: Path
    # The PII vault's own DuckDB file (CRM_PII_DUCKDB_PATH), attached as catalog `pii`; None: the
    # `pii` schema of the main file.
    duckdb_pii_path: Path | None
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_user: str
    clickhouse_password: str
    clickhouse_database: str
    # The ClickHouse database of the `pii` tables (CLICKHOUSE_PII_DATABASE, default
    # `<CLICKHOUSE_DATABASE>_pii`): grants keep analysts out of it.
    clickhouse_pii_database: str
    clickhouse_secure: bool
    pii_key_is_default: bool
    _pii_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("CRM_DATA_DIR") or "./data")
        warehouse = (env.get("CRM_WAREHOUSE") or "duckdb").strip().lower()
        if warehouse not in ENGINES:
            raise ValueError(f"CRM_WAREHOUSE={warehouse!r}: expected one of {', '.join(ENGINES)}")
        port = env.get("CLICKHOUSE_PORT") or "8123"
        if not port.isdigit():
            raise ValueError(f"CLICKHOUSE_PORT={port!r}: expected a port number")
        key = env.get("CRM_PII_KEY") or ""
        database = env.get("CLICKHOUSE_DATABASE") or "crm"
        pii_database = env.get("CLICKHOUSE_PII_DATABASE") or f"{database}_pii"
        if pii_database == database:
            raise ValueError(f"CLICKHOUSE_PII_DATABASE={pii_database!r} is CLICKHOUSE_DATABASE: the vault needs a "
                             "database of its own")
        duckdb_path = Path(env.get("CRM_DUCKDB_PATH") or data_dir / "warehouse.duckdb")
        pii_path = Path(env["CRM_PII_DUCKDB_PATH"]) if env.get("CRM_PII_DUCKDB_PATH") else None
        return cls(
            data_dir=data_dir,
            warehouse=warehouse,
            duckdb_path=duckdb_path,
            duckdb_pii_path=pii_path,
            clickhouse_host=env.get("CLICKHOUSE_HOST") or "localhost",
            clickhouse_port=int(port),
            clickhouse_user=env.get("CLICKHOUSE_USER") or "default",
            clickhouse_password=env.get("CLICKHOUSE_PASSWORD") or "",
            clickhouse_database=database,
            clickhouse_pii_database=pii_database,
            clickhouse_secure=(env.get("CLICKHOUSE_SECURE") or "false").strip().lower() in ("1", "true", "yes"),
            pii_key_is_default=not key,
            _pii_key=key or DEVELOPMENT_PII_KEY,
        )

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def pii_key(self) -> bytes:
        """The PII hashing secret; a method, not a field, so it never shows in a repr or a log."""
        if self.pii_key_is_default:
            log.warning("CRM_PII_KEY is not set: PII is hashed with the development key. Set CRM_PII_KEY in production.")
        return self._pii_key.encode()

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return (f"Settings(data_dir={str(self.data_dir)!r}, warehouse={self.warehouse!r}, "
                f"duckdb_path={str(self.duckdb_path)!r}, duckdb_pii_path="
                f"{str(self.duckdb_pii_path) if self.duckdb_pii_path else None!r}, "
                f"clickhouse={self.clickhouse_host}:{self.clickhouse_port}/{self.clickhouse_database}"
                f"+{self.clickhouse_pii_database})")
