"""Data residency: the zone each event belongs to, and the zones each table's rows hold.

`residency.yaml` (next to this file) lists the zones, the countries of each (ISO 3166-1 alpha-2
codes and the names CRMs write, matched trimmed and case-insensitively) and the default zone. An
event's zone, stored in `core.events.data_residency` by the ingest, is the first that applies:

1. an explicit producer tag, `context.data_residency`, naming a zone (the default zone aside: it
   means "no signal"); an unknown tag is no reason to quarantine, it is counted and ignored;
2. the event's own country, `attributes.country` (lead_created, lead_updated), else `context.country`;
3. the zone of the event's lead (`lead_id`) as already known: its newest event (occurred_at, then
   event_id) with a tag or a mapped country, in the same group of files or already stored;
4. the default zone.

Neither rule 1 nor rule 2 can give the default zone (the loader refuses a country mapped to it), so
an event stored with the default zone is exactly one without a signal of its own: the ingest fills
rule 3 in afterwards for those rows only.

Everything here is SQL text in DuckDB's dialect that runs on both engines (the lookup is a `map`
literal, which SQLGlot carries over to ClickHouse): `own_zone_sql` (rules 1-2 over an event's
attributes and context), `sql/lead_residency.sql` (each lead's zone, one query over core.events' text),
`sql/canonical_residency.sql` (the same by canonical lead from the ingest's index of signals,
core.residency_signals) and `table_zones` (the zones of a table's rows, one grouped query), which every
asset's metadata shows.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from crm_platform.ingest.landing import PLATFORM_WRITTEN
from crm_platform.plan.strict_yaml import StrictLoader
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render
from crm_platform.warehouse.tables import RESIDENCY_SIGNALS

PACKAGE = "crm_platform.governance"
DEFAULT_PATH = Path(__file__).with_name("residency.yaml")
COLUMN = "data_residency"
# Lead id columns a table's rows are attributed to leads by, in order of preference.
LEAD_COLUMNS = ("canonical_lead_id", "lead_id")
# The key a lead's zone is grouped by in core.events: the canonical lead (downstream tables hold
# canonical ids), or the lead id as sent (the ingest's rule 3).
CANONICAL_LEAD = "coalesce(canonical_lead_id, lead_id)"
SOURCE_LEAD = "lead_id"
# core.residency_signals: each event's own signal, recorded by the ingest (ingest/residency.py).
SIGNALS = (RESIDENCY_SIGNALS.schema, RESIDENCY_SIGNALS.name)
# Each canonical lead's zone, kept while its inputs are unchanged (`lead_zones`).
LEAD_ZONES = ("governance", "lead_zones")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def normalize(value: str) -> str:
    """How a country or a tag is matched: trimmed (spaces, as SQL's trim) and lower case."""
    return value.strip(" ").lower()


@dataclass(frozen=True)
class ResidencyConfig:
    zones: tuple[str, ...]
    default_zone: str
    countries: tuple[tuple[str, str], ...]  # (normalized code or name, zone), sorted
    descriptions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> ResidencyConfig:
        text = Path(path or DEFAULT_PATH).read_text(encoding="utf-8")
        # StrictLoader: YAML 1.2 scalars (NO is Norway, not false) and no duplicate keys.
        return cls.from_dict(yaml.load(text, Loader=StrictLoader) or {})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ResidencyConfig:
        """Validated: zones are lower-case names, the default is one of them, every country's zone
        is known and not the default, no code or name in two zones; every problem in one error."""
        raw = raw if isinstance(raw, dict) else {"": raw}
        problems = [f"unknown setting {k!r}" for k in raw if k not in ("zones", "default_zone", "countries")]
        zones_raw = raw.get("zones") or {}
        if not isinstance(zones_raw, dict) or not zones_raw:
            problems.append("zones must map zone names to descriptions")
            zones_raw = {}
        zones = tuple(str(z) for z in zones_raw)
        problems += [f"zone {z!r} must be lower case without spaces" for z in zones if z != normalize(z) or " " in z]
        default = raw.get("default_zone")
        if default not in zones:
            problems.append(f"default_zone {default!r} is not a zone (zones: {', '.join(zones)})")
        countries_raw = raw.get("countries") or {}
        if not isinstance(countries_raw, dict):
            problems.append("countries must map zones to {code: [names]}")
            countries_raw = {}
        mapped: dict[str, str] = {}
        for zone, entries in countries_raw.items():
            if zone not in zones:
                problems.append(f"countries.{zone}: unknown zone")
                continue
            if zone == default:
                problems.append(f"countries.{zone}: the default zone means no signal, no country maps to it")
                continue
            if not isinstance(entries, dict):
                problems.append(f"countries.{zone} must map ISO codes to lists of names")
                continue
            for code, names in entries.items():
                if not (isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper()):
                    problems.append(f"countries.{zone}: {code!r} is not an ISO 3166-1 alpha-2 code (quote NO, ON, YES)")
                    continue
                if names is not None and not (isinstance(names, list) and all(isinstance(n, str) and n.strip()
                                                                              for n in names)):
                    problems.append(f"countries.{zone}.{code} must be a list of names")
                    continue
                for key in (code, *(names or ())):
                    k = normalize(key)
                    if mapped.setdefault(k, zone) != zone:
                        problems.append(f"{key!r} is in two zones: {mapped[k]} and {zone}")
        if problems:
            raise ValueError("residency config: " + "; ".join(problems))
        return cls(zones, default, tuple(sorted(mapped.items())),
                   tuple((str(z), str(d)) for z, d in zones_raw.items()))

    @property
    def tags(self) -> tuple[str, ...]:
        """The explicit tags that decide an event's zone: every zone but the default."""
        return tuple(z for z in self.zones if z != self.default_zone)

    def zone_of_country(self, value: str | None) -> str | None:
        return dict(self.countries).get(normalize(value)) if value is not None else None

    def zone_of(self, attributes: dict | None = None, context: dict | None = None) -> str | None:
        """Rules 1-2 in Python (tests, one-off checks): the event's own zone, or None."""
        tag, attributes, context = None, attributes or {}, context or {}
        if isinstance(context.get(COLUMN), str) and normalize(context[COLUMN]) in self.tags:
            tag = normalize(context[COLUMN])
        return tag or next((z for v in (attributes.get("country"), context.get("country"))
                            if isinstance(v, str) and (z := self.zone_of_country(v))), None)

    # -- SQL ------------------------------------------------------------------------------------------

    def country_zone_sql(self, text: str) -> str:
        """The zone of country text `text` (SQL, a string or NULL), NULL when no entry names it.
        A map literal: a hash lookup in DuckDB, `map(...)[k]` in ClickHouse (which gives '' for a
        missing key: hence the nullif)."""
        keys = ", ".join(_lit(k) for k, _ in self.countries)
        values = ", ".join(_lit(z) for _, z in self.countries)
        return f"nullif(map([{keys}], [{values}])[lower(trim({text}))], '')"

    def tag_zone_sql(self, text: str) -> str:
        """Tag text `text` as a zone when it names one (not the default), else NULL."""
        return f"CASE WHEN lower(trim({text})) IN ({', '.join(_lit(z) for z in self.tags)}) THEN lower(trim({text})) END"

    def unknown_tag_sql(self, text: str) -> str:
        """Whether tag text `text` is given and names no zone (counted, then ignored)."""
        return f"({text} IS NOT NULL AND lower(trim({text})) NOT IN ({', '.join(_lit(z) for z in self.zones)}))"

    def own_zone_sql(self, attributes: str = "attributes", context: str = "context") -> str:
        """Rules 1-2 over an event's attributes and context JSON (SQL): its own zone, or NULL."""
        tag = self.tag_zone_sql(f"({context} ->> '{COLUMN}')")
        from_attributes = self.country_zone_sql(f"({attributes} ->> 'country')")
        from_context = self.country_zone_sql(f"({context} ->> 'country')")
        return f"coalesce({tag}, {from_attributes}, {from_context})"

    @staticmethod
    def signal_filter_sql(attributes: str = "attributes", context: str = "context") -> str:
        """A cheap prefilter (text search, no JSON parse) that keeps every event that may carry a signal."""
        return (f"(contains(CAST({attributes} AS VARCHAR), '\"country\"') "
                f"OR contains(CAST({context} AS VARCHAR), '\"country\"') "
                f"OR contains(CAST({context} AS VARCHAR), '\"{COLUMN}\"'))")


@lru_cache(maxsize=4)
def load_config(path: str | None = None) -> ResidencyConfig:
    return ResidencyConfig.load(Path(path) if path else None)


def lead_zones_sql(wh: Warehouse, config: ResidencyConfig | None = None, lead_key: str = CANONICAL_LEAD,
                   where: str = "true", params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(sql, params): each lead's zone, `lead_id, zone, occurred_at, event_id` of its newest event
    with an own signal (rules 1-2), from core.events rows that satisfy `where`. Leads without
    one are absent (their zone is the default)."""
    config = config or load_config()
    return render(wh, load(PACKAGE, "lead_residency"), params, {
        "lead_key": lead_key, "own_zone": config.own_zone_sql(), "signal": config.signal_filter_sql(),
        "where": where})


def own_signals_sql(wh: Warehouse, config: ResidencyConfig) -> tuple[str, dict[str, Any]]:
    """(sql, params): `lead_id, zone, occurred_at, event_id, ingested_at` of every event of
    core.events with a lead id and a signal of its own (rules 1-2), read from its text."""
    return render(wh, f"SELECT lead_id, zone, occurred_at, event_id, ingested_at FROM ("
                      f"SELECT lead_id, {config.own_zone_sql()} AS zone, occurred_at, event_id, ingested_at "
                      f"FROM {{core.events}} WHERE lead_id IS NOT NULL AND {config.signal_filter_sql()}) AS own "
                      "WHERE zone IS NOT NULL")


def canonical_zones_sql(wh: Warehouse) -> tuple[str, dict[str, Any]]:
    """(sql, params): what `lead_zones_sql` gives by canonical lead, from core.residency_signals and
    the events' canonical ids (a function of their lead id) instead of the events' text."""
    return render(wh, load(PACKAGE, "canonical_residency"), {}, {"canonical_lead": CANONICAL_LEAD})


def lead_zones(wh: Warehouse, config: ResidencyConfig) -> tuple[str, dict[str, Any]]:
    """(relation, params): each canonical lead's zone (`lead_id, zone`), `governance.lead_zones`, built again
    only when core.events or the identity graph changed since (`_zones_version`). Built from the
    ingest's signal index where there is one (1.0 s at 3.9M events), else from every event's text
    (4.3 s); every lead table's metadata needs it, about ten per run. A read-only warehouse gets the
    query itself."""
    if getattr(wh, "read_only", False):
        zones, params = _zones_sql(wh, config)
        return f"({zones})", params
    name, version = wh.table_name(*LEAD_ZONES), _zones_version(wh, config)
    if wh.table_exists(*LEAD_ZONES) and wh.fetchall(f"select version from {name} limit 1") == [(version,)]:
        return name, {}
    zones, params = _zones_sql(wh, config)
    wh.replace_table(*LEAD_ZONES, wh.fetch_arrow(f"select lead_id, zone, $zones_version AS version from ({zones}) z",
                                                 {**params, "zones_version": version}))
    return name, {}


def _zones_sql(wh: Warehouse, config: ResidencyConfig) -> tuple[str, dict[str, Any]]:
    return canonical_zones_sql(wh) if wh.table_exists(*SIGNALS) else lead_zones_sql(wh, config)


def _zones_version(wh: Warehouse, config: ResidencyConfig) -> str:
    """What the leads' zones are built from: the events (rows and newest ingest: events are only
    added and deleted), their canonical ids (set by the identity graph's runs; counted too, for a
    writer of its own), and the configuration. The events the platform writes itself (identity
    decisions, scores: landing/events/identity/ and events/ml/) carry no country and no tag, so they
    leave the zones as they are: a night's scores, ingested after the other layers ran, do not
    build them again."""
    own = " and ".join(f"source_file not like {_lit(prefix + '%')}" for prefix in PLATFORM_WRITTEN)
    counts = wh.fetchall(f"select count(*), max(ingested_at), count(canonical_lead_id), count(distinct canonical_lead_id) "
                         f"from {wh.table_name('core', 'events')} where {own}")[0]
    runs = (wh.fetchall(f"select count(*), max(resolved_at) from {wh.table_name('identity', 'runs')}")[0]
            if wh.table_exists("identity", "runs") else ())
    return hashlib.sha256(repr((counts, runs, config)).encode()).hexdigest()[:32]


def _columns(wh: Warehouse, schema: str, table: str) -> Sequence[str]:
    return wh.fetch_arrow(f"select * from {wh.table_name(schema, table)} limit 0").column_names


def table_zones(wh: Warehouse, schema: str, table: str, columns: Sequence[str] | None = None,
                config: ResidencyConfig | None = None) -> dict[str, Any]:
    """Which residency zones a table's rows hold, with one grouped query:

    - a table with a `data_residency` column (core.events): rows per zone;
    - a table with a lead id column (`canonical_lead_id`, else `lead_id`): rows and distinct leads per
      zone of their lead (`sql/lead_residency.sql`, by canonical lead; a row without a lead, or a lead
      without a signal, has the default zone);
    - any other table (an aggregate): the zones of core.events as a whole, which it derives from.

    Returns `{"basis": ..., "zones": {zone: {"rows": n[, "leads": m]}}}` (zones by rows, descending),
    or `{"basis": "none"}` before core.events has the column."""
    config = config or load_config()
    columns = list(columns if columns is not None else _columns(wh, schema, table))
    name = wh.table_name(schema, table)
    lead = next((c for c in LEAD_COLUMNS if c in columns), None)
    if COLUMN in columns:
        basis, rows = "rows", wh.fetchall(
            f"select coalesce({COLUMN}, 'unset') zone, count(*) n from {name} group by all order by n desc, zone")
    elif lead is not None:
        if not (wh.table_exists("core", "events") and COLUMN in _columns(wh, "core", "events")):
            return {"basis": "none"}
        zones, params = lead_zones(wh, config)
        basis, rows = f"leads ({lead})", wh.fetchall(f"""
            select coalesce(z.zone, $default_zone) zone, count(*) n, count(distinct t."{lead}") leads
            from {name} t left join {zones} z on z.lead_id = CAST(t."{lead}" AS VARCHAR)
            group by all order by n desc, zone""", {**params, "default_zone": config.default_zone})
    else:
        if not (wh.table_exists("core", "events") and COLUMN in _columns(wh, "core", "events")):
            return {"basis": "none"}
        basis, rows = "core.events", wh.fetchall(
            f"select coalesce({COLUMN}, 'unset') zone, count(*) n from {wh.table_name('core', 'events')} "
            "group by all order by n desc, zone")
    zones = {str(r[0]): ({"rows": int(r[1]), "leads": int(r[2])} if len(r) > 2 else {"rows": int(r[1])}) for r in rows}
    return {"basis": basis, "zones": zones}


def describe(zones: dict[str, Any]) -> str:
    """One line for a log: `eu 12, us 3 (leads (lead_id))`."""
    if zones.get("basis") == "none":
        return "no residency yet"
    return ", ".join(f"{z} {v['rows']}" for z, v in zones["zones"].items()) + f" ({zones['basis']})"


__all__ = ["COLUMN", "SIGNALS", "ResidencyConfig", "canonical_zones_sql", "describe", "lead_zones", "lead_zones_sql",
           "load_config", "own_signals_sql", "table_zones"]
