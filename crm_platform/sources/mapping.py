"""Source mappings: how a CRM change stream or export becomes canonical events, declared in YAML.

One file per source object under `crm_platform/sources/mappings/` (or a directory of the user's, with
CRM_SOURCES_DIR): which landing folder it reads, its format and encoding, the record key, the lead
id, and per source column the property it becomes, its type, date format and the timezone of naive
timestamps, and a value map. A user adds a source by adding a file. Loading is strict: every problem
names the file and field, and a mapping that names an event type or property the tracking plan lacks
is refused.

    source_system: hubspot           # cdc | hubspot | salesforce | any name the identity graph knows
    object: contacts                 # the source table or object
    format: csv                      # debezium | csv | parquet
    landing: batch/hubspot/contacts  # folder under landing/
    encoding: auto                   # csv: auto (BOM, else UTF-8, else Latin-1) | utf-8 | utf-16 | latin-1
    key: Record ID                   # the column identifying a record, or a template of columns (below)
    lead_id: "hubspot:{Record ID}"   # the events' lead_id, from columns
    as_of: {file_name: '(\\d{4}-\\d{2}-\\d{2})', format: '%Y-%m-%d'}  # batch: when the export was taken
    events: {created: lead_created, updated: lead_updated, stage_changed: lead_stage_changed, deleted: record_deleted}
    columns:
      Email: {property: email}
      Create Date: {type: timestamp, format: '%Y-%m-%d %H:%M', timezone: America/New_York, role: created_at}
      Lifecycle Stage: {property: stage, values: {Lead: new, Customer: customer}}

`key` is one column, or for an export whose records have no single key column a template of columns
like `lead_id`'s: `key: "{campaign_id}:{date}"` (the cells' text; a row with any of them empty has no
key and is quarantined, `missing_key`, naming them). A template key is for exports (csv, parquet) of
records that are not leads: the identity graph knows a lead record by its one key column.

`lead_id` may be left out when every event type of `events` is about no person (`identity: none` in
the tracking plan): the events then carry no lead_id. Given for such a type, it is carried as sent.

`updates: full` makes the `updated` event carry the whole record (every mapped property, as
`created` does, plus `changed_fields`) instead of the changed fields only (`updates: changed`, the
default): for a report restated later (campaign spend), the latest event alone is the current value.

`as_of` reads when an export was taken from its file name: a date is the end of that day, a month
(`format: '%Y-%m'`, spend-2026-03.csv) the end of that month; without it, the file's modification time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.strict_yaml import DuplicateKeyError, load_yaml_strict

MAPPINGS_DIR = Path(__file__).with_name("mappings")
FORMATS = ("debezium", "csv", "parquet")
ENCODINGS = ("auto", "utf-8", "utf-16", "latin-1")
COLUMN_TYPES = ("string", "integer", "number", "boolean", "timestamp", "timestamp_micros", "json", "list")
ROLES = ("created_at", "modified_at", "merged_ids", "master_id")
EVENT_KINDS = ("created", "updated", "stage_changed", "closed", "deleted")
UPDATES = ("changed", "full")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


class MappingError(ValueError):
    """A mapping file that cannot be used, with every problem found."""


@dataclass(frozen=True)
class Column:
    name: str  # the source column (or Debezium row field)
    property: str | None = None  # the event property it becomes (None: not an attribute)
    type: str = "string"
    format: str | None = None  # strptime format of text timestamps
    timezone: str | None = None  # of naive timestamps (default UTC)
    values: Mapping[str, Any] | None = None  # source value -> property value (a value not listed stays as it is)
    role: str | None = None
    compare: bool = True  # a change of this column alone is no change (bookkeeping columns)
    separator: str = ";"  # list: how the text splits


@dataclass(frozen=True)
class Closed:
    """`closed`: the record moved into a won or lost value of `column`."""
    event: str
    column: str
    won: tuple[str, ...]
    lost: tuple[str, ...]
    amount: str | None = None  # the column of closed_amount


@dataclass(frozen=True)
class SourceMapping:
    path: Path
    source_system: str
    object: str
    format: str
    landing: str
    key: str  # a column, or a template of columns ("{campaign_id}:{date}")
    lead_id: str | None  # a template of columns; None: the events carry no lead_id (identity none)
    events: Mapping[str, str]
    columns: tuple[Column, ...]
    encoding: str = "auto"
    delimiter: str = ","
    as_of: Mapping[str, str] | None = None
    closed: Closed | None = None
    stage_column: str | None = None
    id_property: str | None = None  # the property that carries the record key (opportunity_id)
    external_ids: tuple[str, ...] = field(default=())  # columns copied into external_ids
    updates: str = "changed"  # what an `updated` event carries: the changed fields, or the full record

    @property
    def name(self) -> str:
        return f"{self.source_system}.{self.object}"

    def column(self, role: str) -> Column | None:
        return next((c for c in self.columns if c.role == role), None)

    def template_columns(self) -> tuple[str, ...]:
        """The columns of the lead_id template."""
        return tuple(_TEMPLATE_FIELD.findall(self.lead_id or ""))

    @property
    def key_is_template(self) -> bool:
        return bool(_TEMPLATE_FIELD.search(self.key))

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns the record key is made of (one, unless `key` is a template)."""
        return tuple(dict.fromkeys(_TEMPLATE_FIELD.findall(self.key))) if self.key_is_template else (self.key,)


def load_mappings(plan: TrackingPlan, directory: Path | None = None) -> tuple[SourceMapping, ...]:
    """Every mapping of `directory` (default: the platform's), checked against `plan`."""
    return _load_all(plan, Path(directory or MAPPINGS_DIR))


@lru_cache(maxsize=8)
def _load_all(plan: TrackingPlan, directory: Path) -> tuple[SourceMapping, ...]:
    mappings, problems = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            mappings.append(_load(plan, path))
        except MappingError as e:
            problems.append(str(e))
    seen: dict[str, Path] = {}
    for m in mappings:
        if m.landing in seen:
            problems.append(f"{m.path.name}: landing {m.landing!r} is already read by {seen[m.landing].name}")
        seen[m.landing] = m.path
    if problems:
        raise MappingError("\n".join(problems))
    return tuple(mappings)


def _load(plan: TrackingPlan, path: Path) -> SourceMapping:
    where = path.name
    try:
        doc = load_yaml_strict(path.read_text(encoding="utf-8"))
    except (DuplicateKeyError, ValueError) as e:
        raise MappingError(f"{where}: {e}") from None
    p: list[str] = []
    if not isinstance(doc, dict):
        raise MappingError(f"{where}: expected a mapping at the top level")
    known = {"source_system", "object", "format", "landing", "key", "lead_id", "events", "columns", "encoding",
             "delimiter", "as_of", "closed", "stage_column", "id_property", "external_ids", "description", "updates"}
    p += [f"{where}: unknown field {k!r}" for k in doc if k not in known]
    for k in ("source_system", "object", "format", "landing", "key", "events", "columns"):
        if k not in doc:
            p.append(f"{where}: {k} is required")
    if p:
        raise MappingError("\n".join(p))
    for k in ("key", "lead_id"):
        if k in doc and (not isinstance(doc[k], str) or not doc[k].strip()):
            p.append(f"{where}: {k} must be a non-empty text (a column, or a template like \"{{column}}\")")
    if doc.get("updates", "changed") not in UPDATES:
        p.append(f"{where}: updates {doc['updates']!r} is not one of {', '.join(UPDATES)}")
    if p:
        raise MappingError("\n".join(p))
    if doc["format"] not in FORMATS:
        p.append(f"{where}: format {doc['format']!r} is not one of {', '.join(FORMATS)}")
    if doc.get("encoding", "auto") not in ENCODINGS:
        p.append(f"{where}: encoding {doc['encoding']!r} is not one of {', '.join(ENCODINGS)}")
    columns = []
    for name, spec in (doc["columns"] or {}).items():
        spec = spec or {}
        if not isinstance(spec, dict):
            p.append(f"{where}: columns.{name}: expected a mapping")
            continue
        bad = set(spec) - {"property", "type", "format", "timezone", "values", "role", "compare", "separator"}
        p += [f"{where}: columns.{name}: unknown field {k!r}" for k in sorted(bad)]
        if spec.get("type", "string") not in COLUMN_TYPES:
            p.append(f"{where}: columns.{name}.type {spec['type']!r} is not one of {', '.join(COLUMN_TYPES)}")
        if spec.get("role") is not None and spec["role"] not in ROLES:
            p.append(f"{where}: columns.{name}.role {spec['role']!r} is not one of {', '.join(ROLES)}")
        if spec.get("timezone"):
            try:
                ZoneInfo(spec["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                p.append(f"{where}: columns.{name}.timezone {spec['timezone']!r} is not a known time zone")
        columns.append(Column(name=str(name), property=spec.get("property"), type=spec.get("type", "string"),
                              format=spec.get("format"), timezone=spec.get("timezone"), values=spec.get("values"),
                              role=spec.get("role"), compare=spec.get("compare", True),
                              separator=spec.get("separator", ";")))
    events = dict(doc["events"] or {})
    p += [f"{where}: events.{k}: unknown kind (expected {', '.join(EVENT_KINDS)})" for k in events if k not in EVENT_KINDS]
    closed = None
    if isinstance(events.get("closed"), dict):
        c = events.pop("closed")
        closed = Closed(event=c.get("event", ""), column=c.get("column", ""), won=tuple(c.get("won", ())),
                        lost=tuple(c.get("lost", ())), amount=c.get("amount"))
        events["closed"] = closed.event
    if isinstance(events.get("stage_changed"), dict):
        s = events.pop("stage_changed")
        events["stage_changed"] = s.get("event", "")
        doc.setdefault("stage_column", s.get("column"))
    for kind, event_type in events.items():
        if event_type not in plan.event_types:
            p.append(f"{where}: events.{kind}: {event_type!r} is not an event type of the tracking plan")
        elif "lead_id" not in doc and plan.event_types[event_type].identity != "none":
            p.append(f"{where}: lead_id is required: events.{kind} ({event_type}) is about a person "
                     f"(identity {plan.event_types[event_type].identity} in the tracking plan)")
    key_fields = _TEMPLATE_FIELD.findall(doc["key"])
    if key_fields and doc["format"] == "debezium":
        p.append(f"{where}: key: a template is for exports (csv, parquet); a Debezium row has its key column")
    if key_fields and events.get("created") == "lead_created":
        p.append(f"{where}: key: a template is for records that are not leads (the identity graph knows a lead "
                 "record by its one key column)")
    names = {c.name for c in columns}
    for col in (*(key_fields or [doc["key"]]), *_TEMPLATE_FIELD.findall(doc.get("lead_id") or ""), doc.get("stage_column"),
                *(doc.get("external_ids") or ()), closed.column if closed else None, closed.amount if closed else None):
        if col is not None and col not in names:
            p.append(f"{where}: column {col!r} is used but not listed under columns")
    if p:
        raise MappingError("\n".join(p))
    return SourceMapping(
        path=path, source_system=str(doc["source_system"]), object=str(doc["object"]), format=doc["format"],
        landing=str(doc["landing"]).strip("/"), key=doc["key"], lead_id=doc.get("lead_id"), events=events,
        columns=tuple(columns), encoding=doc.get("encoding", "auto"), delimiter=doc.get("delimiter", ","),
        as_of=doc.get("as_of"), closed=closed, stage_column=doc.get("stage_column"),
        id_property=doc.get("id_property"), external_ids=tuple(doc.get("external_ids") or ()),
        updates=doc.get("updates", "changed"))
