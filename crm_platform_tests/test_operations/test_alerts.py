"""The run failure sensor: a real failed run becomes one alert, in the log file or POSTed to a webhook; a
webhook that fails leaves the alert in the log; no credentials in either."""
from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import dagster as dg
import pytest

from crm_platform.defs.operations.alerts import run_failure_alert_sensor
from crm_platform.operations.alerts import (
    MAX_ERROR_CHARS,
    Destination,
    ErrorPart,
    build_alert,
    redact,
    send_alert,
)

JOB = "alert_test_job"
STEP = "ops_test__load_batch"
ROOT_CAUSE = "FileNotFoundError: landing/batch-42.jsonl"
TOKEN_PATH = "/services/T000/B000/hook-token-123"


@pytest.fixture(autouse=True)
def alert_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CRM_ALERT_WEBHOOK_URL", "CRM_ALERT_LOG", "CRM_DAGSTER_URL"):
        monkeypatch.delenv(name, raising=False)
    return data_dir


def failed_run(message: str = "landing/batch-42.jsonl"):
    """A two-asset job whose first asset raises (a RuntimeError caused by a FileNotFoundError): the first
    step fails, the second is skipped. Returns the sensor context for the run's failure event."""

    @dg.asset(key=["ops_test", "load_batch"])
    def load_batch():
        try:
            raise FileNotFoundError(message)
        except FileNotFoundError as exc:
            raise RuntimeError("could not load batch 42") from exc

    @dg.asset(key=["ops_test", "downstream"], deps=[load_batch])
    def downstream():
        return None

    defs = dg.Definitions(assets=[load_batch, downstream], jobs=[dg.define_asset_job(JOB, selection=[load_batch, downstream])])
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = instance.get_records_for_run(run_id=result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    (record,) = failure
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id), dagster_event=record.event_log_entry.dagster_event)
    return result.run_id, context


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Webhook:
    """A local HTTP server answering POSTs with `status`; it records what it was sent."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append({"method": "POST", "path": self.path, "body": body,
                                      "content_type": self.headers["Content-Type"]})
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self):  # where a followed redirect would land: it must not count as delivered
                hook.requests.append({"method": "GET", "path": self.path})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{TOKEN_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_webhook_the_alert_is_one_json_line_in_the_data_dir_log(alert_env):
    run_id, context = failed_run()
    run_failure_alert_sensor(context)
    (alert,) = log_lines(alert_env / "alerts.log")
    assert alert["run_id"] == run_id
    assert alert["job_name"] == JOB
    assert alert["failed_steps"] == [STEP]  # not the skipped downstream step
    assert alert["failed_asset_keys"] == ["ops_test/load_batch"]
    assert alert["error"] == ROOT_CAUSE  # the root cause, not Dagster's wrapper, no stack trace
    assert alert["error_type"] == "FileNotFoundError"
    assert alert["failure_reason"] == "STEP_FAILURE"
    assert alert["run_url"] is None
    assert "delivery_error" not in alert
    occurred = datetime.fromisoformat(alert["occurred_at"])
    assert occurred.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - occurred).total_seconds()) < 300
    assert JOB in alert["text"] and run_id in alert["text"] and ROOT_CAUSE in alert["text"]


def test_crm_alert_log_names_the_file_and_its_directories_are_made(alert_env, tmp_path, monkeypatch):
    target = tmp_path / "elsewhere" / "nested" / "crm-alerts.jsonl"
    monkeypatch.setenv("CRM_ALERT_LOG", str(target))
    run_id, context = failed_run()
    run_failure_alert_sensor(context)
    run_failure_alert_sensor(context)
    assert [a["run_id"] for a in log_lines(target)] == [run_id, run_id]  # appended, one line each
    assert not (alert_env / "alerts.log").exists()


def test_with_a_webhook_the_alert_is_posted_as_slack_compatible_json(alert_env, monkeypatch):
    monkeypatch.setenv("CRM_DAGSTER_URL", "http://dagster.internal:3000/")
    with Webhook(200) as hook:
        monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", hook.url)
        run_id, context = failed_run()
        run_failure_alert_sensor(context)
    (request,) = hook.requests
    assert request["method"] == "POST" and request["path"] == TOKEN_PATH
    assert request["content_type"].startswith("application/json")
    body = json.loads(request["body"])
    assert isinstance(body["text"], str) and JOB in body["text"] and ROOT_CAUSE in body["text"]
    assert f"http://dagster.internal:3000/runs/{run_id}" in body["text"]
    assert body["run_id"] == run_id and body["job_name"] == JOB
    assert body["failed_steps"] == [STEP] and body["failed_asset_keys"] == ["ops_test/load_batch"]
    assert body["error"] == ROOT_CAUSE
    assert body["run_url"] == f"http://dagster.internal:3000/runs/{run_id}"
    assert "hook-token-123" not in request["body"].decode()
    assert not (alert_env / "alerts.log").exists()  # delivered: nothing in the fallback log


def test_a_closed_webhook_port_leaves_the_alert_in_the_log_with_the_delivery_error(alert_env, monkeypatch):
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}{TOKEN_PATH}")
    run_id, context = failed_run()
    run_failure_alert_sensor(context)  # does not raise
    (alert,) = log_lines(alert_env / "alerts.log")
    assert alert["run_id"] == run_id and alert["error"] == ROOT_CAUSE and alert["failed_steps"] == [STEP]
    assert "refused" in alert["delivery_error"].lower()
    assert alert["delivery_error"].startswith("webhook http://127.0.0.1:")
    assert "hook-token-123" not in (alert_env / "alerts.log").read_text()


@pytest.mark.parametrize("status", [500, 404, 302])
def test_a_webhook_answering_other_than_2xx_leaves_the_alert_in_the_log(alert_env, monkeypatch, status):
    with Webhook(status) as hook:
        monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", hook.url)
        run_id, context = failed_run()
        run_failure_alert_sensor(context)
    assert [r["method"] for r in hook.requests] == ["POST"]  # a redirect is not followed as a GET
    (alert,) = log_lines(alert_env / "alerts.log")
    assert alert["run_id"] == run_id
    assert f"HTTP {status}" in alert["delivery_error"]


def test_send_alert_reports_a_failed_webhook_to_its_caller(tmp_path):
    alert = build_alert(run_id="r1", job_name="j", errors=[ErrorPart("ValueError: x", "ValueError")], env={})
    url = f"http://127.0.0.1:{closed_port()}/hook-token-123"
    delivery = send_alert(alert, Destination(log_path=tmp_path / "a.log", webhook_url=url))
    assert not delivery.ok and delivery.destination == "log" and delivery.target == str(tmp_path / "a.log")
    assert "refused" in delivery.error.lower() and "hook-token-123" not in delivery.describe()
    assert "hook-token-123" not in repr(Destination(log_path=tmp_path, webhook_url=url))
    ok = send_alert(alert, Destination(log_path=tmp_path / "b.log"))
    assert ok.ok and ok.destination == "log" and log_lines(tmp_path / "b.log")[0]["run_id"] == "r1"


def test_credentials_in_the_error_message_are_redacted(alert_env, monkeypatch):
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "hunter2-pass")
    message = ("HTTPConnectionPool: http://default:s3cret@host:8123/?database=crm&password=qwerty99 "
               "unreachable (auth hunter2-pass)")
    _, context = failed_run(message)
    run_failure_alert_sensor(context)
    text = (alert_env / "alerts.log").read_text()
    for secret in ("s3cret", "qwerty99", "hunter2-pass"):
        assert secret not in text
    (alert,) = log_lines(alert_env / "alerts.log")
    assert "http://***@host:8123/" in alert["error"]  # the rest of the URL still says where it went


@pytest.mark.parametrize("text, expected", [
    ("http://default:s3cret@host:8123/", "http://***@host:8123/"),
    ("see https://u:p@ss@w0rd@ch.example.com:8443/x and ok", "see https://***@ch.example.com:8443/x and ok"),
    ("clickhouse://token@host", "clickhouse://***@host"),
    ("mail a@b.com at http://host/a@b", "mail a@b.com at http://host/a@b"),
    ("dsn password=abc123;user=x", "dsn password=***;user=x"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_a_long_error_keeps_its_first_and_last_lines_and_is_bounded():
    lines = [f"line {i} " + "x" * 50 for i in range(1000)]
    alert = build_alert(run_id="r", job_name="j", env={},
                        errors=[ErrorPart("Wrapper: y"), ErrorPart("\n".join(lines), "DuckDBError")])
    assert len(alert.error) <= MAX_ERROR_CHARS
    assert alert.error.startswith("line 0 ") and alert.error.endswith(lines[-1])
    assert "lines omitted" in alert.error and "line 500 " not in alert.error
    one_line = build_alert(run_id="r", job_name="j", env={}, errors=[ErrorPart("E: " + "z" * 10_000)])
    assert len(one_line.error) <= MAX_ERROR_CHARS and one_line.error.startswith("E: zzz")


def test_the_code_location_runs_the_sensor_by_default_on_its_own_runs():
    from crm_platform.definitions import defs

    sensor = defs().resolve_sensor_def("run_failure_alert_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.description


def test_a_run_that_failed_outside_any_step_is_alerted_with_the_run_failure_message():
    alert = build_alert(run_id="r2", job_name="j", fallback_message="Run was killed by the run monitor.",
                        occurred_at=datetime(2026, 1, 2, 3, 4, 5), env={"CRM_DAGSTER_URL": "https://dagster.example"})
    assert alert.error == "Run was killed by the run monitor." and alert.failed_steps == ()
    assert alert.occurred_at == "2026-01-02T03:04:05+00:00"
    assert alert.run_url == "https://dagster.example/runs/r2"
