"""`crm-platform plan check` and `crm-platform plan export`, as plain functions (cli.py wires them)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from crm_platform.plan.jsonl import TruncatedFile, iter_lines
from crm_platform.plan.loader import PlanError, load_plan
from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.validate import iter_validate

Echo = Callable[[str], None]
EXPORT_FORMATS = ("jsonschema",)


def _load(plan_dir: Path | None, echo: Echo) -> TrackingPlan | None:
    try:
        return load_plan(plan_dir)
    except PlanError as exc:
        for problem in exc.problems:
            echo(problem)
        echo(f"plan invalid: {len(exc.problems)} problem(s)")
        return None


def _check_file(path: Path, plan: TrackingPlan, echo: Echo) -> tuple[int, int, bool]:
    """(records, invalid records, file readable to its end) for one JSONL file."""
    records = invalid = 0
    try:
        for result in iter_validate(iter_lines(path), plan):
            records += 1
            if not result.ok:
                invalid += 1
                echo(f"{path}:{result.line}: {'; '.join(result.reasons)}")
    except TruncatedFile as exc:
        if exc.detail.startswith("corrupt") and exc.last_line == 0:
            echo(f"{path}: not a readable gzip file ({exc.detail})")
        else:
            echo(f"{path}: {exc.detail} after line {exc.last_line}; "
                 "the records before it were checked, anything after it is lost")
        return records, invalid, False
    except OSError as exc:
        echo(f"{path}: cannot read: {exc.strerror or exc}")
        return records, invalid, False
    return records, invalid, True


def run_plan_check(files: list[Path], plan_dir: Path | None = None, echo: Echo = print) -> int:
    """Lint the plan (default: the package's), then validate each JSONL file (`.jsonl` or
    `.jsonl.gz`) against it. Prints every plan problem, one line per invalid record
    (`FILE:LINE: reason; reason`), one line per unreadable or truncated file, and a closing summary
    `N records, V valid, I invalid (plan VERSION)`. Returns 1 if the plan, any record or any file
    is invalid, else 0."""
    plan = _load(plan_dir, echo)
    if plan is None:
        return 1
    records = invalid = 0
    files_ok = True
    for path in files:
        n, bad, readable = _check_file(Path(path), plan, echo)
        records, invalid = records + n, invalid + bad
        files_ok = files_ok and readable
    if files:
        echo(f"{records} records, {records - invalid} valid, {invalid} invalid (plan {plan.version})")
    else:
        n_versions = sum(len(et.versions) for et in plan.event_types.values())
        echo(f"plan {plan.version} is valid: {len(plan.event_types)} event types, {n_versions} versions")
    return 0 if invalid == 0 and files_ok else 1


def export_command(out_dir: Path, fmt: str = "jsonschema", plan_dir: Path | None = None, echo: Echo = print) -> int:
    """Write the plan in `fmt` (only `jsonschema`: one schema per event type and version) under
    `out_dir`. Returns 0, 1 if the plan is invalid, 2 for an unknown format."""
    if fmt not in EXPORT_FORMATS:
        echo(f"unknown export format {fmt!r} (expected one of: {', '.join(EXPORT_FORMATS)})")
        return 2
    plan = _load(plan_dir, echo)
    if plan is None:
        return 1
    from crm_platform.plan.jsonschema_export import export_jsonschema

    paths = export_jsonschema(plan, out_dir)
    echo(f"wrote {len(paths)} JSON Schemas for plan {plan.version} under {out_dir}")
    return 0

