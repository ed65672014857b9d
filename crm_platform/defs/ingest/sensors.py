"""Start an ingest run when new event content lands."""
import dagster as dg

from crm_platform.defs.ingest.events import KEYS
from crm_platform.ingest.sensing import scan_event_landing
from crm_platform.settings import Settings


@dg.sensor(target=dg.AssetSelection.assets(*KEYS), minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests an ingest run for event files under landing/events/ whose content was not seen before.")
def landing_events_sensor(context: dg.SensorEvaluationContext):
    scan = scan_event_landing(Settings.from_env().landing_dir, context.cursor)
    context.update_cursor(scan.cursor)
    if not scan.new_content:
        return dg.SkipReason("no new event file content under landing/events/")
    return dg.RunRequest(run_key=scan.run_key, tags={"crm/trigger": "landing_events_sensor",
                                                      "crm/new_files": str(len(scan.new_files))})
