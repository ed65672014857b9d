"""Run-failure alerts: what failed and why, said without secrets, sent to a webhook or to an alert log.

Plain Python (DESIGN.md, "The shape"): the sensor in `crm_platform/defs/operations/alerts.py` turns a
failed Dagster run into the pieces `build_alert` takes; everything here is tested without Dagster.

Where an alert goes is read from the environment when it is sent, never at import time:

- `CRM_ALERT_WEBHOOK_URL` set: an HTTP POST of JSON, Slack-compatible (a top-level `"text"` summary next to
  the structured fields). A webhook that cannot be reached or answers other than 2xx does not lose the
  alert: it is written to the alert log with `delivery_error`, and `send_alert` says so in its `Delivery`.
- otherwise: one JSON line appended to `CRM_ALERT_LOG` (default `$CRM_DATA_DIR/alerts.log`).
- `CRM_DAGSTER_URL` (the UI's base URL), if set, gives each alert a link `<base>/runs/<run_id>`.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_platform.settings import Settings

WEBHOOK_TIMEOUT_SECONDS = 10
MAX_ERROR_CHARS = 2000
HEAD_LINES = 12
TAIL_LINES = 6
MAX_LISTED = 50  # failed steps or asset keys named in one alert

# `scheme://user:password@host` (and `scheme://token@host`): the userinfo goes, the rest of the URL stays.
# Greedy up to the last "@" before the path, so a password holding an "@" goes whole.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")
# `password=...`, `token: ...` and the like, in query strings, DSNs and messages.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|pii[_-]?key)\b\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,'\")]+)", re.IGNORECASE)
# Environment variables whose values are secrets wherever they show up in a message.
_SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PII_KEY|WEBHOOK|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words
REDACTED = "***"


@dataclass(frozen=True)
class ErrorPart:
    """One exception of a chain, outermost first: its message as Python prints it ("ValueError: ...")."""
    message: str
    type_name: str | None = None


@dataclass(frozen=True)
class Alert:
    run_id: str
    job_name: str
    error: str  # the root cause: its first and last lines, at most MAX_ERROR_CHARS, secrets redacted
    occurred_at: str  # UTC, ISO 8601
    error_type: str | None = None
    failed_steps: tuple[str, ...] = ()
    failed_asset_keys: tuple[str, ...] = ()
    failure_reason: str | None = None
    partition_key: str | None = None
    run_url: str | None = None

    def summary(self) -> str:
        """The one message a person reads (Slack's `text`)."""
        lines = [f"Dagster run failed: job {self.job_name}, run {self.run_id}"]
        if self.partition_key:
            lines.append(f"Partition: {self.partition_key}")
        if self.failed_asset_keys:
            lines.append("Failed assets: " + ", ".join(self.failed_asset_keys))
        elif self.failed_steps:
            lines.append("Failed steps: " + ", ".join(self.failed_steps))
        first_line = self.error.splitlines()[0] if self.error else ""
        if first_line:
            lines.append(f"Error: {first_line[:300]}")
        if self.run_url:
            lines.append(self.run_url)
        return "\n".join(lines)

    def to_payload(self) -> dict[str, Any]:
        """Slack-compatible JSON: a top-level `text`, next to the structured fields."""
        fields = asdict(self)
        fields["failed_steps"] = list(self.failed_steps)
        fields["failed_asset_keys"] = list(self.failed_asset_keys)
        return {"text": self.summary(), **fields}


@dataclass(frozen=True)
class Destination:
    """Where alerts go. The webhook URL is a secret (Slack's carries its token): never in a repr or a log."""
    log_path: Path
    webhook_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Destination:
        env = os.environ if env is None else env
        webhook = (env.get("CRM_ALERT_WEBHOOK_URL") or "").strip() or None
        log = (env.get("CRM_ALERT_LOG") or "").strip()
        return cls(log_path=Path(log) if log else _data_dir(env) / "alerts.log", webhook_url=webhook)

    def describe(self) -> str:
        return f"webhook {display_url(self.webhook_url)}" if self.webhook_url else f"alert log {self.log_path}"


@dataclass(frozen=True)
class Delivery:
    """Where one alert went. `error` set: the webhook failed and the alert is in the log file instead."""
    destination: str  # "webhook" or "log"
    target: str  # the webhook as scheme://host only, or the log file's path
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        where = f"webhook {self.target}" if self.destination == "webhook" else f"alert log {self.target}"
        return where if self.ok else f"{where} (webhook delivery failed: {self.error})"


def build_alert(*, run_id: str, job_name: str, errors: Sequence[ErrorPart] = (), fallback_message: str = "",
                failed_steps: Iterable[str] = (), failed_asset_keys: Iterable[str] = (),
                failure_reason: str | None = None, partition_key: str | None = None,
                occurred_at: datetime | None = None, env: Mapping[str, str] | None = None) -> Alert:
    """An alert from what is known of a failed run. `errors` is the exception chain of the first failed step
    (or of the run), outermost first; its last part is the root cause. Without one, `fallback_message`
    (the run failure event's own message) says what happened."""
    env = os.environ if env is None else env
    secrets = secret_values(env)

    def clean(text: str) -> str:
        return redact(text, secrets)

    root = errors[-1] if errors else None
    message = root.message if root else fallback_message
    error = bound_text(clean(message.strip())) or "(no error message recorded)"
    moment = occurred_at or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    base = (env.get("CRM_DAGSTER_URL") or "").strip().rstrip("/")
    return Alert(
        run_id=run_id,
        job_name=clean(job_name),
        error=error,
        occurred_at=moment.astimezone(UTC).isoformat(timespec="seconds"),
        error_type=root.type_name if root else None,
        failed_steps=_listed(clean(s) for s in failed_steps),
        failed_asset_keys=_listed(clean(k) for k in failed_asset_keys),
        failure_reason=failure_reason,
        partition_key=clean(partition_key) if partition_key else None,
        run_url=f"{clean(base)}/runs/{urllib.parse.quote(run_id)}" if base else None,
    )


def send_alert(alert: Alert, destination: Destination | None = None) -> Delivery:
    """Sends the alert to the webhook if one is configured, else appends it to the alert log. A failed
    webhook puts the alert in the log with `delivery_error`; the returned Delivery carries that error.
    Raises only if the alert log itself cannot be written."""
    destination = Destination.from_env() if destination is None else destination
    payload = alert.to_payload()
    if destination.webhook_url:
        target = display_url(destination.webhook_url)
        try:
            _post_json(destination.webhook_url, payload)
        except Exception as exc:  # noqa: BLE001 (whatever failed, the alert must still be written somewhere)
            error = redact(f"{type(exc).__name__}: {exc}", secret_values(os.environ) | {destination.webhook_url})
            _append_line(destination.log_path, {**payload, "delivery_error": f"webhook {target}: {error}"})
            return Delivery("log", str(destination.log_path), error=f"webhook {target}: {error}")
        return Delivery("webhook", target)
    _append_line(destination.log_path, payload)
    return Delivery("log", str(destination.log_path))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Text without the given secret values, URL credentials (`user:password@`) or `password=...` values."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['name']}{REDACTED}", text)


def secret_values(env: Mapping[str, str]) -> set[str]:
    """The values of the environment's secret-looking variables (CLICKHOUSE_PASSWORD, CRM_PII_KEY, ...)."""
    return {value for name, value in env.items() if _SECRET_ENV_NAME.search(name) and len(value) >= _MIN_SECRET_LEN}


def bound_text(text: str, max_chars: int = MAX_ERROR_CHARS, head: int = HEAD_LINES, tail: int = TAIL_LINES) -> str:
    """The first `head` and last `tail` lines, and at most `max_chars` characters (start and end kept)."""
    lines = text.splitlines()
    if len(lines) > head + tail:
        lines = [*lines[:head], f"... ({len(lines) - head - tail} lines omitted) ...", *lines[-tail:]]
    text = "\n".join(lines)
    if len(text) > max_chars:
        marker = f" ... ({len(text) - max_chars} characters omitted) ... "
        keep = max(max_chars - len(marker), 0)
        text = text[: keep * 2 // 3] + marker + text[len(text) - (keep - keep * 2 // 3):]
    return text


def display_url(url: str | None) -> str:
    """A URL as it may be shown: scheme and host only (a webhook's path and query are its credentials)."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if _port(parts) else "")


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _listed(values: Iterable[str]) -> tuple[str, ...]:
    seen = tuple(dict.fromkeys(values))
    return seen if len(seen) <= MAX_LISTED else (*seen[:MAX_LISTED], f"... and {len(seen) - MAX_LISTED} more")


def _data_dir(env: Mapping[str, str]) -> Path:
    try:
        return Settings.from_env(env).data_dir
    except ValueError:  # an invalid CRM_WAREHOUSE or CLICKHOUSE_PORT must not cost the alert about it
        return Path(env.get("CRM_DATA_DIR") or "./data")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a GET without the alert: treat it as the failure it is."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookError(RuntimeError):
    pass


def _post_json(url: str, payload: Mapping[str, Any]) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("CRM_ALERT_WEBHOOK_URL is not an http(s) URL")
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "crm-platform-alerts"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:  # 3xx (redirects refused), 4xx, 5xx
        body = exc.read(200).decode("utf-8", "replace").strip() if exc.fp else ""
        exc.close()
        raise WebhookError(f"HTTP {exc.code} {exc.reason}" + (f": {body}" if body else "")) from None
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status}")


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:  # one write of one line: appends from two sensors do not mix
        f.write(line)
