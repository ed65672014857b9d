"""Consent: which leads the attribution, feature and scoring layers may see.

`consent.yaml` (next to this file, or a file of the same shape) names, per processing purpose of
the tracking plan's `consent_changed` events, what a lead without any event for it counts as
(`default`) and the layers it gates (`gates`). A lead's consent for a purpose is its latest
`consent_changed` event for that purpose (by occurred_at, ties by event_id), given on the lead or on
a browser's `user_id` that names exactly one lead (the link attribution uses for anonymous touches).

Exclusion follows the current state: a lead without a gating purpose's consent is left out of the
layer entirely, its history included; once it grants consent again, the next run brings it back.

The SQL (`sql/consent_state.sql`) is one text in DuckDB's dialect that the layers render inline
(`excluded_leads_sql`), so a layer always reads the consent as of its own run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render
from crm_platform.warehouse.tables import TableDef

PACKAGE = "crm_platform.governance"
DEFAULT_PATH = Path(__file__).with_name("consent.yaml")
LAYERS = ("attribution", "features", "scoring")
DEFAULTS = {"granted": True, "denied": False}
# An empty lead set, for a warehouse without core.events yet (tables written straight in tests).
NO_LEADS = "SELECT CAST(NULL AS VARCHAR) AS lead_id WHERE 1 = 0"
CONSENT_STATE = TableDef("governance", "consent_state", (
    ("lead_id", "string"), ("purpose", "string"), ("granted", "boolean"), ("decided_by", "string"),
    ("decided_at", "timestamp"), ("consent_event_id", "string"),
), order_by=("lead_id", "purpose"), low_cardinality=("purpose", "decided_by"),
    description="Each canonical lead's current consent per purpose: its latest consent_changed (on the lead, "
                "or on the user_id that names only it), else the purpose's default (decided_by = default).")


@dataclass(frozen=True)
class Purpose:
    name: str
    granted_by_default: bool
    gates: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsentConfig:
    purposes: tuple[Purpose, ...]

    @classmethod
    def load(cls, path: Path | None = None, known_purposes: tuple[str, ...] | None = None) -> ConsentConfig:
        raw = yaml.safe_load(Path(path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
        return cls.from_dict(raw, known_purposes)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], known_purposes: tuple[str, ...] | None = None) -> ConsentConfig:
        """Validated: purposes of the plan's consent_changed only, layers of LAYERS only, a default
        of granted or denied; every problem in one error."""
        known = tuple(known_purposes) if known_purposes is not None else plan_purposes()
        raw = raw if isinstance(raw, dict) else {"": raw}
        problems = [f"unknown setting {k!r}" for k in raw if k != "purposes"]
        entries = raw.get("purposes") or {}
        if not isinstance(entries, dict):
            entries, problems = {}, [*problems, "purposes must map purpose names to settings"]
        purposes = []
        for name, settings in entries.items():
            if name not in known:
                problems.append(f"unknown purpose {name!r} (the plan's consent_changed purposes: {', '.join(known)})")
                continue
            settings = settings or {}
            if not isinstance(settings, dict):
                problems.append(f"purposes.{name} must be a mapping")
                continue
            problems += [f"unknown setting purposes.{name}.{k}" for k in settings if k not in ("default", "gates")]
            default = str(settings.get("default", "granted")).lower()
            if default not in DEFAULTS:
                problems.append(f"purposes.{name}.default must be granted or denied, not {settings.get('default')!r}")
            gates = settings.get("gates") or []
            if isinstance(gates, str) or not isinstance(gates, list):
                problems.append(f"purposes.{name}.gates must be a list of layers")
                gates = []
            problems += [f"purposes.{name}.gates: unknown layer or asset {g!r} (known: {', '.join(LAYERS)})"
                         for g in gates if g not in LAYERS]
            purposes.append(Purpose(name, DEFAULTS.get(default, True), tuple(dict.fromkeys(gates))))
        if problems:
            raise ValueError("consent config: " + "; ".join(problems))
        return cls(tuple(purposes))

    def gating(self, layer: str) -> tuple[Purpose, ...]:
        """The purposes a lead needs for `layer`."""
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r} (known: {', '.join(LAYERS)})")
        return tuple(p for p in self.purposes if layer in p.gates)

    def to_dict(self) -> dict[str, dict]:
        return {p.name: {"default": "granted" if p.granted_by_default else "denied", "gates": list(p.gates)}
                for p in self.purposes}


def plan_purposes() -> tuple[str, ...]:
    from crm_platform.plan.loader import load_plan
    prop = load_plan().event_types["consent_changed"].current.properties["purpose"]
    return tuple(prop.values or ())


def consent_state_sql(config: ConsentConfig, purposes: tuple[Purpose, ...] | None = None) -> tuple[str, dict]:
    """consent_state.sql for `purposes` (all configured ones by default): the SQL text (tables as
    `{core.events}`, parameters `$consent_*`) and its parameters, ready to be a fragment."""
    chosen = config.purposes if purposes is None else purposes
    params: dict[str, Any] = {}
    rows = []
    for i, p in enumerate(chosen):
        params[f"consent_purpose_{i}"] = p.name
        params[f"consent_default_{i}"] = p.granted_by_default
        rows.append(f"SELECT $consent_purpose_{i} AS purpose, $consent_default_{i} AS granted_by_default")
    table = " UNION ALL ".join(rows) or "SELECT CAST(NULL AS VARCHAR) AS purpose, TRUE AS granted_by_default WHERE 1 = 0"
    # The user_id -> lead link is attribution's own text: a consent binds the lead a touch would.
    text = load(PACKAGE, "consent_state").replace("{user_leads}", load("crm_platform.attribution", "user_leads"))
    return text.replace("{purposes}", table).rstrip().rstrip(";"), params


def excluded_leads_sql(layer: str, config: ConsentConfig | None = None, *,
                       events_exist: bool = True) -> tuple[str, dict]:
    """SELECT lead_id of the canonical leads `layer` must leave out (one row per lead), and its
    parameters. `events_exist=False` (no core.events yet) gives the empty set."""
    config = config or ConsentConfig.load()
    gating = config.gating(layer)
    if not gating or not events_exist:
        return NO_LEADS, {}
    state, params = consent_state_sql(config, gating)
    return f"SELECT DISTINCT lead_id FROM ({state}) AS consent WHERE NOT granted", params


def build_consent_state(wh: Warehouse, config: ConsentConfig | None = None) -> dict[str, dict[str, int]]:
    """governance.consent_state rebuilt from core.events; per purpose, how many leads are granted and
    denied, and how many of them by default."""
    config = config or ConsentConfig.load()
    if not wh.table_exists("core", "events"):
        empty = ("SELECT CAST(NULL AS VARCHAR) AS lead_id, CAST(NULL AS VARCHAR) AS purpose, TRUE AS granted, "
                 "CAST(NULL AS VARCHAR) AS decided_by, CAST(NULL AS TIMESTAMP) AS decided_at, "
                 "CAST(NULL AS VARCHAR) AS consent_event_id WHERE 1 = 0")
        wh.rebuild_table(CONSENT_STATE, [(empty, {})])
    else:
        wh.rebuild_table(CONSENT_STATE, [render(wh, *consent_state_sql(config))])
    rows = wh.fetchall(f"SELECT purpose, granted, decided_by = 'default', count(*) FROM {wh.table_name('governance', 'consent_state')} "
                       "GROUP BY 1, 2, 3")
    out = {p.name: {"granted": 0, "denied": 0, "by_default": 0} for p in config.purposes}
    for purpose, granted, by_default, n in rows:
        entry = out.setdefault(purpose, {"granted": 0, "denied": 0, "by_default": 0})
        entry["granted" if granted else "denied"] += int(n)
        entry["by_default"] += int(n) if by_default else 0
    return out
