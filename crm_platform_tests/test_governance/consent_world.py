"""Hand-made event logs with consent: the attribution tests' event log plus `consent_changed`
events on a lead or on a browser's user_id only."""
from __future__ import annotations

from datetime import datetime

from crm_platform.warehouse import Warehouse
from crm_platform_tests.test_features.timeline import Timeline


class ConsentLog(Timeline):
    def consent(self, purpose: str, granted: bool, at: datetime, lead: str | None = None,
                user: str | None = None, event_id: str | None = None) -> str:
        return self._add("consent_changed", at, lead, {"purpose": purpose, "granted": granted, "method": "banner"},
                         "consent_platform", user=user, event_id=event_id)


def consent_rows(wh: Warehouse, sql_and_params: tuple[str, dict]) -> list[tuple]:
    from crm_platform.warehouse.sql_files import render
    sql, params = render(wh, sql_and_params[0], sql_and_params[1])
    return sorted(wh.fetchall(sql, params), key=repr)
