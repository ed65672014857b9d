"""Hand-built lead timelines for the feature tests: the attribution tests' event log, with
activities, stage changes, opportunities, attribute updates and vault entries."""
from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.tables import PII_VAULT
from crm_platform_tests.test_attribution.world import EventLog


class Timeline(EventLog):
    def __init__(self):
        super().__init__()
        self.vault: list[dict] = []

    def created(self, lead: str, at: datetime, user: str | None = None, **attributes) -> str:
        return self._add("lead_created", at, lead, attributes, "webform", user=user)

    def updated(self, lead: str, at: datetime, **attributes) -> str:
        return self._add("lead_updated", at, lead, attributes, "crm")

    def activity(self, lead: str, at: datetime, activity_type: str = "call", direction: str = "outbound") -> str:
        return self._add("activity_logged", at, lead, {"activity_type": activity_type, "direction": direction,
                                                      "outcome": "completed"}, "dialer")

    def stage(self, lead: str, at: datetime, from_stage: str, to_stage: str) -> str:
        return self._add("lead_stage_changed", at, lead, {"from_stage": from_stage, "to_stage": to_stage}, "crm")

    def opportunity(self, lead: str, at: datetime, opportunity: str, amount: float, source: str = "crm") -> str:
        return self._add("opportunity_created", at, lead, {"opportunity_id": opportunity, "amount": amount}, source)

    def email(self, value: str) -> str:
        digest = f"pii:{abs(hash(value)) % 10**12:012d}"
        self.vault.append({"pii_hash": digest, "field": "attributes.email", "value": value,
                           "first_seen_at": datetime(2026, 1, 1)})
        return digest

    def write(self, wh: Warehouse) -> None:
        super().write(wh)
        wh.ensure_table(PII_VAULT)
        if self.vault:
            wh.insert_arrow("pii", "vault", pa.Table.from_pylist(self.vault, schema=pa.schema([
                ("pii_hash", pa.string()), ("field", pa.string()), ("value", pa.string()),
                ("first_seen_at", pa.timestamp("us"))])))
