"""Start an ingest run when new content lands."""
import dagster as dg

from crm_platform.defs.ingest.events import KEYS
from crm_platform.ingest.sensing import scan_landing
from crm_platform.plan.loader import load_plan
from crm_platform.settings import Settings
from crm_platform.sources.mapping import load_mappings


@dg.sensor(target=dg.AssetSelection.assets(*KEYS), minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests an ingest run for landed files (events, CDC, exports) whose content was not seen before.")
def landing_events_sensor(context: dg.SensorEvaluationContext):
    scan = scan_landing(Settings.from_env().landing_dir, context.cursor, load_mappings(load_plan()))
    context.update_cursor(scan.cursor)
    if not scan.new_content:
        return dg.SkipReason("no new file content under landing/")
    return dg.RunRequest(run_key=scan.run_key, tags={"crm/trigger": "landing_events_sensor",
                                                      "crm/new_files": str(len(scan.new_files))})
