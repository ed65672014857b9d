"""Upgrading events to their type's current version with the migrations the plan declares."""
from __future__ import annotations

import copy
from typing import Any, Mapping

from crm_platform.plan.model import EventType, TrackingPlan


def upgrade_attributes(et: EventType, from_version: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes` of an event of `from_version`, migrated step by step to the current version.

    rename: the value moves to the new name (a value already under the new name, unplanned in the
    old version, is replaced); default: fills a property absent or null (null counts as absent);
    drop: removes the property. Unplanned properties are kept. The input is not modified.
    """
    attrs = dict(attributes)
    for version in et.versions_after(from_version):
        for m in version.migrations:
            if m.op == "rename":
                if m.property in attrs:
                    attrs[m.to] = attrs.pop(m.property)
            elif m.op == "default":
                if attrs.get(m.property) is None:
                    # A fresh copy each time: events must not share a mutable default.
                    attrs[m.property] = copy.deepcopy(m.value)
            elif m.op == "drop":
                attrs.pop(m.property, None)
    return attrs


def upgrade(event: Mapping[str, Any], plan: TrackingPlan) -> dict[str, Any]:
    """A canonical event (properties in `attributes`) upgraded from its `schema_version` to its
    type's current version. Other fields are kept as they are; the input is not modified.
    Raises KeyError for an unknown event type or version."""
    et = plan.event_types.get(event.get("event_type"))  # type: ignore[arg-type]
    if et is None:
        raise KeyError(f"unknown event type {event.get('event_type')!r}")
    version = event.get("schema_version")
    out = dict(event)
    out["attributes"] = upgrade_attributes(et, version, event.get("attributes") or {})  # type: ignore[arg-type]
    out["schema_version"] = et.current.version
    return out
