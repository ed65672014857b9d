"""Reading the tracking plan from its directory: `plan.yaml` plus `events/<event_type>.yaml`.

`load_plan` either returns a complete `TrackingPlan` or raises `PlanError` listing every problem
found in every file (lint.py), so an author fixes a broken plan in one round.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from crm_platform.plan.lint import Problems, Registries, lint_event_doc, lint_plan_doc
from crm_platform.plan.model import EventType, EventVersion, Migration, PropertySpec, TrackingPlan
from crm_platform.plan.strict_yaml import DuplicateKey, load_yaml

PLAN_DIR = Path(__file__).resolve().parent
PLAN_FILE = "plan.yaml"
EVENTS_DIR = "events"


class PlanError(ValueError):
    """The plan is invalid; `problems` lists each problem as `FILE: PATH: what is wrong`."""

    def __init__(self, problems: list[str], plan_dir: Path | None = None):
        self.problems = list(problems)
        self.plan_dir = plan_dir
        where = f" in {plan_dir}" if plan_dir is not None else ""
        super().__init__(f"the tracking plan{where} has {len(self.problems)} problem(s):\n"
                         + "\n".join(f"  {problem}" for problem in self.problems))


def load_plan(path: Path | str | None = None) -> TrackingPlan:
    """The plan in directory `path` (or the directory of a given `plan.yaml`); by default the
    package's own plan, read once per process."""
    if path is None:
        return _load_default()
    return _load(_plan_dir(Path(path)))


def lint_plan(path: Path | str | None = None) -> list[str]:
    """Every problem of the plan at `path` (default: the package's), [] when it is sound."""
    try:
        load_plan(path)
    except PlanError as exc:
        return exc.problems
    return []


@lru_cache(maxsize=1)
def _load_default() -> TrackingPlan:
    return _load(PLAN_DIR)


def _plan_dir(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _format_duplicate(dup: DuplicateKey, data: Any) -> tuple[str, str]:
    """(path, message) for a duplicate key, with version labels like lint's paths."""
    parts: list[str] = []
    node = data
    for segment in dup.path:
        if isinstance(segment, int):
            label = ""
            item = node[segment] if isinstance(node, list) and segment < len(node) else None
            versioned = isinstance(item, dict) and isinstance(item.get("version"), str)
            if parts and parts[-1].endswith("versions") and versioned:
                label = f" ({item['version']})"  # type: ignore[index]
            if parts:
                parts[-1] = f"{parts[-1]}[{segment}]{label}"
            else:
                parts.append(f"[{segment}]{label}")
            node = item
        else:
            parts.append(segment)
            node = node.get(segment) if isinstance(node, dict) else None
    what = "property" if dup.path and dup.path[-1] == "properties" else "key"
    path = ".".join(parts + [dup.key])
    return path, (f"duplicate {what}: defined at lines {dup.first_line} and {dup.line} "
                  "(YAML would silently keep the last)")


def _read(p: Problems, path: Path, rel: str) -> tuple[bool, Any]:
    """(parsed, data) of one YAML file; problems (unreadable, syntax, duplicate keys) are added."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        p.add(rel, "", f"cannot read: {exc}")
        return False, None
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        p.add(rel, "", f"invalid YAML: {problem}{where}")
        return False, None
    for dup in doc.duplicates:
        p.add(rel, *_format_duplicate(dup, doc.data))
    return True, doc.data


def _load(plan_dir: Path) -> TrackingPlan:
    p = Problems()
    plan_path = plan_dir / PLAN_FILE
    if not plan_path.is_file():
        raise PlanError([f"{PLAN_FILE}: not found in {plan_dir}"], plan_dir)
    parsed, plan_doc = _read(p, plan_path, PLAN_FILE)
    # An unparsable plan.yaml is one problem, not one per source named in the event files.
    registries = lint_plan_doc(p, plan_doc, PLAN_FILE) if parsed else Registries(set(), set(), known=False)

    events_dir = plan_dir / EVENTS_DIR
    event_docs: dict[str, Any] = {}
    if not events_dir.is_dir():
        p.add(f"{EVENTS_DIR}/", "", "directory not found (one <event_type>.yaml per event type)")
    else:
        for path in sorted(events_dir.iterdir()):
            rel = f"{EVENTS_DIR}/{path.name}"
            if path.suffix in {".yml", ".json"} and path.is_file():
                p.add(rel, "", "event files must end in .yaml; this one would be ignored "
                               f"(rename it to {path.stem}.yaml)")
            if path.suffix != ".yaml" or not path.is_file():
                continue
            parsed, doc = _read(p, path, rel)
            if parsed:
                lint_event_doc(p, doc, rel, path.stem, registries)
                event_docs[path.stem] = doc
        if not any(events_dir.glob("*.yaml")):
            p.add(f"{EVENTS_DIR}/", "", "no event type files (<event_type>.yaml)")
    if p.items:
        raise PlanError(p.items, plan_dir)
    return _build(plan_doc, event_docs)


# --- building the model from checked documents ------------------------------------------------------

def _property(name: str, spec: dict[str, Any]) -> PropertySpec:
    return PropertySpec(
        name=name, type=spec["type"], required=spec.get("required", False), pii=spec.get("pii", False),
        values=tuple(spec["values"]) if "values" in spec else None, max_length=spec.get("max_length"),
        minimum=spec.get("minimum"), maximum=spec.get("maximum"), description=spec.get("description"),
    )


def _migration(step: dict[str, Any]) -> Migration:
    (op, arg), = step.items()
    if op == "rename":
        return Migration("rename", arg["from"], to=arg["to"])
    if op == "default":
        return Migration("default", arg["property"], value=arg["value"])
    return Migration("drop", arg)


def _build(plan_doc: dict[str, Any], event_docs: dict[str, Any]) -> TrackingPlan:
    event_types = {}
    for name, doc in sorted(event_docs.items()):
        versions = tuple(
            EventVersion(
                version=item["version"],
                properties=MappingProxyType({n: _property(n, s) for n, s in (item.get("properties") or {}).items()}),
                migrations=tuple(_migration(step) for step in item.get("migrations") or ()),
                description=item.get("description"),
            )
            for item in doc["versions"]
        )
        event_types[name] = EventType(
            event_type=doc["event_type"], description=doc["description"].strip(), owner=doc["owner"],
            identity=doc["identity"], sources=tuple(sorted(doc["sources"])),
            consent_purpose=doc["consent_purpose"], retention_days=doc["retention_days"], versions=versions,
        )
    return TrackingPlan(
        name=plan_doc["name"],
        sources=dict(plan_doc["sources"]),
        consent_purposes=dict(plan_doc["consent_purposes"]),
        context={n: _property(n, s) for n, s in (plan_doc.get("context") or {}).items()},
        event_types=event_types,
    )
