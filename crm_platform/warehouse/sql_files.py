"""SQL kept in `.sql` files: one text per transform, in DuckDB's dialect (DESIGN "One text per
transform"). A file names tables as `{schema.table}` (each engine names them its own way), takes
parameters as `$name`, and may have `{fragment}` slots that its caller fills with SQL built from
configuration (whose values are parameters too)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from crm_platform.warehouse.base import Warehouse

_TABLE = re.compile(r"\{(\w+)\.(\w+)\}")
_FRAGMENT = re.compile(r"\{(\w+)\}")
_PARAM = re.compile(r"\$(\w+)")


@lru_cache(maxsize=64)
def load(package: str, name: str) -> str:
    """The text of `sql/<name>.sql` in `package`."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def render(wh: Warehouse, text: str, params: Mapping[str, Any] | None = None,
           fragments: Mapping[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL for `wh` with the parameters it uses (a missing one is an error, unused ones are left out)."""
    fragments = fragments or {}
    sql = text
    for _ in range(4):  # fragments first, as they may hold fragments and tables themselves
        wanted = _FRAGMENT.findall(sql)
        missing = [f for f in wanted if f not in fragments]
        if missing:
            raise ValueError(f"SQL fragment(s) not given: {', '.join(sorted(set(missing)))}")
        if not wanted:
            break
        sql = _FRAGMENT.sub(lambda m: fragments[m[1]], sql)
    sql = _TABLE.sub(lambda m: wh.table_name(m[1], m[2]), sql)
    params = dict(params or {})
    used = set(_PARAM.findall(sql))
    absent = used - set(params)
    if absent:
        raise ValueError(f"SQL parameter(s) not given: {', '.join(sorted(absent))}")
    return sql, {k: params[k] for k in sorted(used)}
