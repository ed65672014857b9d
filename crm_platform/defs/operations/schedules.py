"""The nightly refresh and the declarative automation sensor."""
import os
from datetime import datetime

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from crm_platform.defs.conventions import DAILY

# Late data (a CRM export of yesterday's changes, a CDC backlog) still lands days after the fact:
# the nightly run rewrites this many trailing day partitions, not only yesterday's.
TRAILING_DAYS = 3


def trailing_days() -> int:
    value = os.environ.get("CRM_NIGHTLY_TRAILING_DAYS") or str(TRAILING_DAYS)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"CRM_NIGHTLY_TRAILING_DAYS={value!r}: expected a whole number of days, 1 or more")
    return int(value)


def nightly_request(scheduled_at: datetime, days: int) -> dg.RunRequest | dg.SkipReason:
    """One run of the whole graph: unpartitioned assets once, daily partitions of the `days` complete
    days before `scheduled_at` as one range (the single-run backfill policy of warehouse assets)."""
    keys = DAILY.get_partition_keys(current_time=scheduled_at)[-days:]
    if not keys:
        return dg.SkipReason(f"no complete day partition before {scheduled_at:%Y-%m-%d %H:%M} UTC yet")
    return dg.RunRequest(
        run_key=f"nightly-{scheduled_at:%Y-%m-%d}",
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1],
              "crm/trigger": "nightly_refresh", "crm/trailing_days": str(days)},
    )


@dg.schedule(
    name="nightly_refresh", cron_schedule="0 2 * * *", execution_timezone="UTC", target=dg.AssetSelection.all(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC: refresh every asset (ingest of new landed files, identity, attribution, features, "
                "scoring, marts); daily partitions of the trailing CRM_NIGHTLY_TRAILING_DAYS days (3 by default) "
                "are rewritten for late data.",
)
def nightly_refresh(context: dg.ScheduleEvaluationContext):
    return nightly_request(context.scheduled_execution_time, trailing_days())


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions: identity, attribution and the marts refresh "
                "once what they read was refreshed (after a sensor-triggered ingest, say).",
)
