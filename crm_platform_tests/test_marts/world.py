"""Hand-made event logs for the marts tests: attribution's EventLog with the lead lifecycle added
(lead records with properties from any source, updates, stage changes, opportunities, spend,
platform-written events) and an identity map written straight into the warehouse."""
from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from crm_platform.identity import store
from crm_platform.warehouse import Warehouse
from crm_platform_tests.test_attribution.world import EventLog

# Keyed PII hashes as ingest writes them (pii: + 32 hex digits).
EMAIL_HASH = "pii:" + "a1" * 16
NAME_HASH = "pii:" + "b2" * 16
HASHED_TITLE = "pii:" + "c3" * 16  # a job title that held an e-mail address, hashed by ingest
PII_HASHES = (EMAIL_HASH, NAME_HASH, HASHED_TITLE)


class LifecycleLog(EventLog):
    def created(self, lead: str, at: datetime, source: str = "webform", canonical: str | None = None,
                user: str | None = None, **attributes) -> str:
        return self._add("lead_created", at, lead, attributes, source, canonical, user)

    def updated(self, lead: str, at: datetime, source: str, canonical: str | None = None, **attributes) -> str:
        return self._add("lead_updated", at, lead, attributes, source, canonical)

    def stage(self, lead: str, at: datetime, from_stage: str, to_stage: str, source: str = "crm",
              canonical: str | None = None) -> str:
        return self._add("lead_stage_changed", at, lead, {"from_stage": from_stage, "to_stage": to_stage}, source,
                         canonical)

    def opportunity(self, lead: str, at: datetime, opportunity: str, amount: float | None, source: str = "crm",
                    canonical: str | None = None) -> str:
        attributes = {"opportunity_id": opportunity}
        if amount is not None:
            attributes["amount"] = amount
        return self._add("opportunity_created", at, lead, attributes, source, canonical)

    def activity(self, lead: str, at: datetime) -> str:
        return self._add("activity_logged", at, lead, {"activity_type": "call", "direction": "outbound"}, "dialer")

    def spend(self, campaign: str, channel: str, day: str, amount: float, reported_at: datetime,
              name: str | None = None) -> str:
        return self._add("campaign_spend_reported", reported_at, None, {
            "spend_date": f"{day}T00:00:00Z", "channel": channel, "campaign_id": campaign,
            "campaign_name": name or campaign, "spend": amount, "currency": "EUR"}, "marketing")

    def merged(self, lead: str, into: str, at: datetime) -> str:
        """An identity decision: written by the platform, stamped with the time of its run."""
        return self._add("lead_merged", at, lead, {"merged_lead_id": lead, "match_rule": "email"}, "identity", into)


def write_identity_map(wh: Warehouse, rows: list[tuple[str, str, str]]) -> None:
    """identity.lead_identity_map from (source_system, source_id, canonical lead_id) rows."""
    n = len(rows)
    wh.replace_table("identity", "lead_identity_map", store.table("lead_identity_map", {
        "source_system": [r[0] for r in rows], "source_id": [r[1] for r in rows], "lead_id": [r[2] for r in rows],
        "match_rule": ["test"] * n, "match_score": [1.0] * n, "record_lead_id": [r[1] for r in rows],
        "resolved_at": [datetime(2026, 6, 1)] * n}))


def write_lead_scores(wh: Warehouse, rows: list[tuple[str, str, datetime, float, str, datetime]]) -> None:
    """ml.lead_scores from (lead_id, model_version, as_of, score, tier, scored_at) rows."""
    names = ("lead_id", "model_version", "as_of", "score", "tier", "scored_at")
    schema = pa.schema([("lead_id", pa.string()), ("model_version", pa.string()), ("as_of", pa.timestamp("us")),
                        ("score", pa.float64()), ("tier", pa.string()), ("scored_at", pa.timestamp("us"))])
    wh.replace_table("ml", "lead_scores", pa.Table.from_pylist([dict(zip(names, r)) for r in rows], schema=schema))


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
