"""The tracking plan as immutable values. Built by `loader.load_plan` from checked YAML only, so code
that receives a `TrackingPlan` never re-checks its shape."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

from crm_platform.plan.formats import DEFAULT_MAX_LENGTH, STRING_TYPES

# Which person an event is about: `lead` (lead_id required), `lead_or_user` (lead_id or user_id),
# `none` (about no person, e.g. campaign spend: neither required; one given is kept as sent).
Identity = Literal["lead", "lead_or_user", "none"]
MigrationOp = Literal["rename", "default", "drop"]


@dataclass(frozen=True)
class PropertySpec:
    """One planned property (or `context` field) of an event."""

    name: str
    type: str
    required: bool = False
    pii: bool = False
    values: tuple[str, ...] | None = None
    max_length: int | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    description: str | None = None

    @property
    def effective_max_length(self) -> int | None:
        """The length bound enforced on a string value (every string is bounded)."""
        if self.type not in STRING_TYPES:
            return None
        return self.max_length if self.max_length is not None else DEFAULT_MAX_LENGTH

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "required": self.required, "pii": self.pii}
        for key in ("values", "max_length", "minimum", "maximum", "description"):
            value = getattr(self, key)
            if value is not None:
                d[key] = list(value) if key == "values" else value
        return d


@dataclass(frozen=True)
class Migration:
    """One step from the previous version: `rename` (property -> to), `default` (fill `value` when
    the property is absent or null), `drop` (remove the property)."""

    op: MigrationOp
    property: str
    to: str | None = None
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        if self.op == "rename":
            return {"rename": {"from": self.property, "to": self.to}}
        if self.op == "default":
            return {"default": {"property": self.property, "value": self.value}}
        return {"drop": self.property}


@dataclass(frozen=True)
class EventVersion:
    """A schema version of one event type: its full property set and how to get there from the
    previous version."""

    version: str
    properties: Mapping[str, PropertySpec]
    migrations: tuple[Migration, ...] = ()
    description: str | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.properties.items() if spec.required)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": self.version,
            "properties": {name: spec.to_dict() for name, spec in self.properties.items()},
            "migrations": [m.to_dict() for m in self.migrations],
        }
        if self.description is not None:
            d["description"] = self.description
        return d


@dataclass(frozen=True)
class EventType:
    """An event type with its governance metadata and its versions, oldest first."""

    event_type: str
    description: str
    owner: str
    identity: Identity
    sources: tuple[str, ...]
    consent_purpose: str
    retention_days: int
    versions: tuple[EventVersion, ...]

    @property
    def allowed_sources(self) -> tuple[str, ...]:
        """The declared sources plus `crm`, which CONTRACT §5 allows for every type."""
        return tuple(sorted(set(self.sources) | {"crm"}))

    @property
    def current(self) -> EventVersion:
        return self.versions[-1]

    @property
    def version_names(self) -> tuple[str, ...]:
        return tuple(v.version for v in self.versions)

    def version(self, version: str) -> EventVersion | None:
        """The version named `version`, or None if this type has no such version."""
        for v in self.versions:
            if v.version == version:
                return v
        return None

    def versions_after(self, version: str) -> tuple[EventVersion, ...]:
        """The versions newer than `version`, oldest first: the migration path to the current one."""
        names = self.version_names
        if version not in names:
            raise KeyError(f"{self.event_type} has no version {version!r}")
        return self.versions[names.index(version) + 1:]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "description": self.description,
            "owner": self.owner,
            "identity": self.identity,
            "sources": list(self.sources),
            "consent_purpose": self.consent_purpose,
            "retention_days": self.retention_days,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass(frozen=True)
class TrackingPlan:
    """The whole plan. `version` is a content hash: two plans with the same meaning have the same
    version whatever their YAML layout, comments or key order."""

    name: str
    sources: Mapping[str, str]
    consent_purposes: Mapping[str, str]
    context: Mapping[str, PropertySpec]
    event_types: Mapping[str, EventType]
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("sources", "consent_purposes", "context", "event_types"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "version", content_hash(self.to_dict()))

    # The mappings are read-only views, so identity by content hash is safe and lets plans key caches.
    def __hash__(self) -> int:
        return hash(self.version)

    def event_type(self, name: str) -> EventType | None:
        return self.event_types.get(name)

    def current_version(self, event_type: str) -> str:
        return self.event_types[event_type].current.version

    def get_version(self, event_type: str, version: str) -> EventVersion | None:
        """The spec of (`event_type`, `version`), or None if either is unknown."""
        et = self.event_types.get(event_type)
        return et.version(version) if et is not None else None

    def iter_versions(self):
        """(EventType, EventVersion) for every type (sorted by name) and version (oldest first)."""
        for name in sorted(self.event_types):
            et = self.event_types[name]
            for v in et.versions:
                yield et, v

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sources": dict(self.sources),
            "consent_purposes": dict(self.consent_purposes),
            "context": {name: spec.to_dict() for name, spec in self.context.items()},
            "event_types": {name: self.event_types[name].to_dict() for name in sorted(self.event_types)},
        }


def content_hash(data: Any) -> str:
    """First 12 hex chars of the sha256 of a canonical JSON dump (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

