"""Small, hand-made event logs for attribution tests, written straight into core.events (the
layers before attribution have their own tests): each lead's touches and conversions at known
times, so every model's credits can be computed by hand."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa

from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.tables import EVENTS

D = datetime(2026, 6, 1, 12, 0, 0)  # the conversions' day, unless a case says otherwise


class EventLog:
    def __init__(self):
        self.rows: list[dict] = []

    def _add(self, event_type: str, at: datetime, lead: str | None, attributes: dict, source: str,
             canonical: str | None = None, user: str | None = None, event_id: str | None = None) -> str:
        event_id = event_id or f"evt_{len(self.rows):04d}"
        self.rows.append({
            "event_id": event_id, "event_type": event_type, "schema_version": "2026-04-1",
            "original_schema_version": "2026-04-1", "occurred_at": at, "occurred_at_offset_minutes": 0,
            "ingested_at": D + timedelta(days=30), "source": source, "producer_id": "test", "lead_id": lead,
            "canonical_lead_id": canonical or lead, "user_id": user, "attributes": json.dumps(attributes),
            "context": "{}", "event_date": at.date(), "source_file": "events/test.jsonl",
            "source_line": len(self.rows) + 1, "plan_version": "test"})
        return event_id

    def lead(self, lead: str, at: datetime = D - timedelta(days=120), canonical: str | None = None,
             user: str | None = None) -> str:
        return self._add("lead_created", at, lead, {"email": "hash"}, "webform", canonical, user)

    def touch(self, lead: str | None, channel: str, at: datetime, campaign: str | None = None,
              canonical: str | None = None, user: str | None = None) -> str:
        attributes = {"channel": channel, "touch_type": "click"}
        if campaign:
            attributes["campaign_id"] = campaign
        return self._add("campaign_touch", at, lead, attributes, "web", canonical, user)

    def won(self, lead: str, at: datetime = D, amount: float | None = 1000.0, source: str = "crm",
            opportunity: str | None = None, canonical: str | None = None, outcome: str = "won") -> str:
        attributes = {"opportunity_id": opportunity or f"opp_{lead}_{len(self.rows)}", "outcome": outcome}
        if amount is not None:
            attributes["closed_amount"] = amount
        return self._add("opportunity_closed", at, lead, attributes, source, canonical)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=pa.schema([
            (name, {"string": pa.string(), "timestamp": pa.timestamp("us"), "integer": pa.int32(),
                    "bigint": pa.int64(), "json": pa.string(), "date": pa.date32()}[kind])
            for name, kind in EVENTS.columns]))

    def write(self, wh: Warehouse) -> None:
        wh.ensure_table(EVENTS)
        wh.insert_arrow("core", "events", self.table())
