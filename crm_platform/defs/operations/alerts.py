"""Alert on every failed run of this code location. What an alert says and where it goes:
`crm_platform.operations.alerts`; this module only reads the failed run out of Dagster."""
from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from crm_platform.operations.alerts import ErrorPart, build_alert, send_alert


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert for each failed run of this code location (job, failed steps and assets, root "
                "cause, link to the run): to CRM_ALERT_WEBHOOK_URL if set, else as a JSON line to CRM_ALERT_LOG "
                "(default $CRM_DATA_DIR/alerts.log); a webhook that fails leaves the alert in the log.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    step_failures = _step_failures(context)
    first = step_failures[0] if step_failures else _first_step_failure(context.failure_event)
    error = getattr(first.event_specific_data, "error", None) if first else None
    if error is None:  # the run failed outside a step (run worker, launcher, a cancelled or crashed run)
        error = getattr(context.failure_event.event_specific_data, "error", None)
    failed_steps = [e.step_key for e in step_failures if e.step_key] or ([first.step_key] if first and first.step_key else [])
    reason = getattr(context.failure_event.event_specific_data, "failure_reason", None)
    alert = build_alert(
        run_id=run.run_id,
        job_name=run.job_name,
        errors=_chain(error),
        fallback_message=context.failure_event.message or "",
        failed_steps=failed_steps,
        failed_asset_keys=_asset_keys(context, failed_steps),
        failure_reason=reason.value if reason is not None else None,
        partition_key=run.tags.get("dagster/partition"),
        occurred_at=_ended_at(context),
    )
    delivery = send_alert(alert)
    if delivery.ok:
        context.log.info(f"Alert for failed run {run.run_id} ({run.job_name}) sent to {delivery.describe()}")
    else:
        context.log.warning(f"Alert for failed run {run.run_id} ({run.job_name}) written to {delivery.describe()}")


def _step_failures(context: dg.RunFailureSensorContext) -> list[dg.DagsterEvent]:
    try:
        return list(context.get_step_failure_events())
    except Exception as exc:  # noqa: BLE001 (an alert without the step list beats no alert)
        context.log.warning(f"Could not read the step failures of run {context.dagster_run.run_id}: {exc}")
        return []


def _first_step_failure(event: dg.DagsterEvent) -> dg.DagsterEvent | None:
    return getattr(event.event_specific_data, "first_step_failure_event", None)


def _chain(error) -> list[ErrorPart]:
    """A SerializableErrorInfo as its exceptions, outermost first: each `raise ... from` cause, else the
    exception being handled when it was raised. Stack traces stay out of alerts."""
    parts: list[ErrorPart] = []
    while error is not None and len(parts) < 20:
        parts.append(ErrorPart(message=error.message, type_name=error.cls_name))
        error = error.cause or error.context
    return parts


def _asset_keys(context: dg.RunFailureSensorContext, step_keys: list[str]) -> list[str]:
    """The assets the failed steps materialize, from the run's execution plan snapshot (one read)."""
    snapshot_id = context.dagster_run.execution_plan_snapshot_id
    if not step_keys or not snapshot_id:
        return []
    try:
        plan = context.instance.get_execution_plan_snapshot(snapshot_id)
    except Exception as exc:  # noqa: BLE001 (an alert without asset keys beats no alert)
        context.log.warning(f"Could not read the execution plan of run {context.dagster_run.run_id}: {exc}")
        return []
    failed = set(step_keys)
    return [output.properties.asset_key.to_user_string()
            for step in plan.steps if step.key in failed
            for output in step.outputs if output.properties and output.properties.asset_key]


def _ended_at(context: dg.RunFailureSensorContext) -> datetime | None:
    try:
        record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    except Exception:  # noqa: BLE001 (then the alert says when it was built)
        return None
    end = record.end_time if record else None
    return datetime.fromtimestamp(end, tz=UTC) if end else None
