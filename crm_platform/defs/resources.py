"""The warehouse resource every asset runs its SQL through (resources, not I/O managers: DESIGN.md)."""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg

from crm_platform.settings import Settings
from crm_platform.warehouse import Warehouse, open_warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The configured warehouse. Unset fields come from the environment (CONTRACT §2) when a run
    starts; a connection is opened only inside a run, never when definitions load or a sensor ticks."""

    data_dir: Optional[str] = None
    duckdb_path: Optional[str] = None

    def settings(self) -> Settings:
        s = Settings.from_env()
        if self.data_dir:
            s = dataclasses.replace(s, data_dir=Path(self.data_dir),
                                    duckdb_path=Path(self.duckdb_path or Path(self.data_dir) / "warehouse.duckdb"))
        elif self.duckdb_path:
            s = dataclasses.replace(s, duckdb_path=Path(self.duckdb_path))
        return s

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        with open_warehouse(self.settings()) as wh:
            yield wh


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource()})
