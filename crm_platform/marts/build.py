"""The marts: whole tables rebuilt from the warehouse inside the engine (build, then swap).

Each mart is one SQL file (`sql/<mart>.sql`) with shared pieces filled in as fragments: a lead's stage
visits (`stage_visits.sql`), its deals (`opportunities.sql`), the data watermark (`watermark.sql`),
and campaign touches linked to canonical leads by the attribution layer's own text
(`attribution/sql/touches.sql`, every channel and campaign), so a touch belongs to the same lead in
the marts as in attribution. Inputs of later layers are read when they exist
(`attribution.conversions`, `attribution.campaign_summary`, `ml.lead_scores`, the identity map); a
missing one gives NULL columns, never an error, and `MartBuild.missing` names it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from crm_platform.attribution.config import MODELS, AttributionConfig
from crm_platform.attribution.spend import current_spend_sql
from crm_platform.governance.consent import NO_LEADS
from crm_platform.marts import tables
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render
from crm_platform.warehouse.tables import DUCKDB_TYPES

PACKAGE = "crm_platform.marts"
DAY_S = 86400
WEEK_US = 7 * DAY_S * 1_000_000
RECENT_DAYS = 30  # touches_last_30d: touches at most this long before the watermark (boundary included)
# The sources of events the platform writes itself, stamped with the time of the run (identity
# decisions, model scores): they are no data, so they do not move the watermark.
PLATFORM_SOURCES = ("identity", "ml")
_SLOT = re.compile(r"\{(\w+)\}")  # a fragment slot; table names are {schema.table}

# Optional inputs: the columns the marts read, and their types for the empty stand-in.
CONVERSIONS = ("attribution", "conversions", (("conversion_event_id", "string"), ("lead_id", "string"),
                                              ("conversion_at", "timestamp"), ("revenue", "double")))
CAMPAIGN_SUMMARY = ("attribution", "campaign_summary", (
    ("model", "string"), ("channel", "string"), ("campaign_id", "string"), ("conversions", "double"),
    ("revenue", "double"), ("spend", "double"), ("cost_per_conversion", "double"), ("roas", "double")))
IDENTITY_MAP = ("identity", "lead_identity_map", (("source_system", "string"), ("source_id", "string"),
                                                  ("lead_id", "string")))
LEAD_SCORES = ("ml", "lead_scores", (("lead_id", "string"), ("model_version", "string"), ("as_of", "timestamp"),
                                     ("score", "double"), ("tier", "string"), ("scored_at", "timestamp")))


@dataclass(frozen=True)
class MartsSettings:
    """`source_priority` orders sources by trust (first is most trusted): it breaks ties between
    reports of the same instant and picks a deal's amount. `dedupe_window_days`: a lead's
    opportunities created this close together are one deal. Both default to the attribution
    settings' conversion definition, so a deal is one deal in every layer."""

    source_priority: tuple[str, ...]
    dedupe_window_days: float

    @classmethod
    def default(cls, attribution: AttributionConfig | None = None) -> MartsSettings:
        c = (attribution or AttributionConfig.load()).conversion
        return cls(tuple(c.source_priority), float(c.dedupe_window_days))


@dataclass
class MartBuild:
    name: str
    rows: int
    missing: list[str] = field(default_factory=list)  # optional inputs that did not exist (NULL columns)


def build_mart(wh: Warehouse, name: str, plan: TrackingPlan, settings: MartsSettings | None = None,
               days: tuple[date, date] | None = None) -> MartBuild:
    """Rebuild `marts.<name>` from the current warehouse; returns its row count and missing inputs.
    With `days` [start, end), a mart partitioned by day (funnel_daily) has only those days replaced
    (computed from the whole history, as a full rebuild would) and `rows` counts the rows written."""
    if name not in tables.MARTS:
        raise KeyError(f"no mart {name!r} (marts: {', '.join(tables.MARTS)})")
    return _Builder(wh, plan, settings or MartsSettings.default()).build(name, days)


def build_all(wh: Warehouse, plan: TrackingPlan, settings: MartsSettings | None = None) -> dict[str, MartBuild]:
    builder = _Builder(wh, plan, settings or MartsSettings.default())
    return {name: builder.build(name) for name in tables.MARTS}


def data_watermark(wh: Warehouse) -> datetime | None:
    """The latest occurred_at of the data (watermark.sql), naive UTC; None without events."""
    if not wh.table_exists("core", "events"):
        return None
    sql, params = render(wh, load(PACKAGE, "watermark"), {"platform_sources": list(PLATFORM_SOURCES)})
    return _naive_utc(wh.fetchall(sql, params)[0][0])


class _Builder:
    def __init__(self, wh: Warehouse, plan: TrackingPlan, settings: MartsSettings):
        self.wh, self.plan, self.settings = wh, plan, settings
        self.params: dict = {
            "platform_sources": list(PLATFORM_SOURCES),
            "person_types": sorted(t for t, et in plan.event_types.items() if et.identity != "none"),
            "dedupe_seconds": int(settings.dedupe_window_days * DAY_S),
            "recent_us": RECENT_DAYS * DAY_S * 1_000_000,
            "week_us": WEEK_US,
            "models": list(MODELS),
            # Touches as attribution links them, of every channel and campaign.
            "channels": list(plan.event_types["campaign_touch"].current.properties["channel"].values or ()),
            "all_campaigns": True, "campaigns": [], "excluded_campaigns": [],
        }
        self.missing: list[str] = []
        # attribution/sql/touches.sql's lead exclusion: the marts are not gated by consent (governance/consent.yaml).
        self.fragments: dict[str, str] = {"source_rank": self._source_rank(), "consent_excluded": NO_LEADS,
                                          "user_leads": load("crm_platform.attribution", "user_leads")}

    # -- pieces -------------------------------------------------------------------------------
    def _source_rank(self) -> str:
        whens = []
        for i, source in enumerate(self.settings.source_priority):
            self.params[f"source_{i}"] = source
            whens.append(f"WHEN source = $source_{i} THEN {i}")
        return f"(CASE {' '.join(whens)} ELSE {len(whens)} END)" if whens else "0"

    def _piece(self, package: str, name: str) -> str:
        return render(self.wh, load(package, name), self.params, self.fragments)[0]

    def _relation(self, schema: str, table: str, columns: tuple[tuple[str, str], ...]) -> str:
        """SELECT of `columns` from the table, or of no row with those columns when it does not exist
        (then `$<table>_present` is false and the mart's columns from it are NULL)."""
        present = self.wh.table_exists(schema, table)
        self.params[f"{table}_present"] = present
        if present:
            names = ", ".join(f'"{c}"' for c, _ in columns)
            return f"SELECT {names} FROM {self.wh.table_name(schema, table)}"
        self.missing.append(f"{schema}.{table}")
        return _no_rows(columns)

    def _fragment(self, name: str) -> str:
        """The SQL that fills `{name}` in a mart's text."""
        if name in self.fragments:
            return self.fragments[name]
        pieces = {"stage_visits": PACKAGE, "opportunities": PACKAGE, "watermark": PACKAGE,
                  "touches": "crm_platform.attribution"}
        if name in pieces:
            return self._piece(pieces[name], name)
        relations = {"conversions": CONVERSIONS, "campaign_summary": CAMPAIGN_SUMMARY,
                     "identity_map": IDENTITY_MAP, "lead_scores": LEAD_SCORES}
        if name in relations:
            return self._relation(*relations[name])
        if name == "spend":
            return current_spend_sql(self.wh)
        if name == "stage_entries":
            return self._stage_entries()
        return self._lead_state_fragments()[name]

    # -- marts --------------------------------------------------------------------------------
    def build(self, name: str, days: tuple[date, date] | None = None) -> MartBuild:
        self.missing = []
        table = tables.table_def(name, self.plan)
        if days is not None and table.partition_granularity != "day":
            raise ValueError(f"marts.{name} is not partitioned by day")

        def write(select: tuple[str, dict]) -> int:
            return self.wh.replace_range(table, *days, [select]) if days else self.wh.rebuild_table(table, [select])

        if not self.wh.table_exists("core", "events"):  # nothing ingested yet: the mart is empty
            self.missing.append("core.events")
            return MartBuild(name, write((_no_rows(table.columns), {})), self.missing)
        text = load(PACKAGE, name)
        fragments = {f: self._fragment(f) for f in sorted(set(_SLOT.findall(text)))}
        if name == "cohort_conversion":
            self.params["weeks"] = list(range(self._weeks_span() + 1))
        return MartBuild(name, write(render(self.wh, text, self.params, fragments)), self.missing)

    def _lead_state_fragments(self) -> dict[str, str]:
        """lead_latest_state's columns from the plan: each property's text, read once per event
        (`v_<name>`), its latest value, and the stage a lead was created in as current_stage's
        fallback (a lead whose stage never changed)."""
        props = [(p.name, p.type, p.column) for p in tables.lead_properties(self.plan)]
        stage = tables.has_stage_property(self.plan)
        read = props + ([("stage", "string", "created_stage")] if stage else [])
        return {
            "property_values": "".join(f",\n           attributes ->> '{name}' AS \"v_{name}\"" for name, _, _ in read),
            "properties": "".join(",\n           " + _latest(*p) for p in read),
            "property_columns": "".join(f',\n       p."{column}"' for _, _, column in props),
            "current_stage": "coalesce(cv.visit_stage, p.created_stage)" if stage else "cv.visit_stage",
            "stage_entered_at": ("CASE WHEN cv.visit_stage IS NOT NULL THEN cv.visit_entered_at "
                                 "WHEN p.created_stage IS NOT NULL THEN c.created_at END") if stage
                                else "cv.visit_entered_at",
        }

    def _stage_entries(self) -> str:
        """funnel_daily's entries per stage, one column each (the stages are parameters)."""
        entries = []
        for i, stage in enumerate(tables.stages(self.plan)):
            self.params[f"stage_{i}"] = stage
            entries.append(f"count(*) FILTER (WHERE f.metric = 'stage_entered' AND f.fact_stage = $stage_{i}) "
                           f'AS "entered_{stage}"')
        return "".join("\n       " + e + "," for e in entries)

    def _weeks_span(self) -> int:
        """Whole weeks from the first lead's creation to the watermark (0 without leads)."""
        events = self.wh.table_name("core", "events")
        first = _naive_utc(self.wh.fetchall(
            f"select min(occurred_at) from {events} where event_type = 'lead_created' and canonical_lead_id is not null")[0][0])
        mark = data_watermark(self.wh)
        if first is None or mark is None or mark < first:
            return 0
        return int((mark - first).total_seconds() // (7 * DAY_S))


def _latest(name: str, kind: str, alias: str) -> str:
    """The property's latest value (by `seq`) among the events that mention it: a value, or its name
    in changed_fields (a cleared value, NULL). A keyed PII hash counts as a mention without a value."""
    v = f'"v_{name}"'
    mentioned = f"{v} IS NOT NULL OR strpos(changed, '\"{name}\"') > 0"
    valued = f"{v} IS NOT NULL AND NOT starts_with({v}, 'pii:')"
    typed = {"double": f"CAST({v} AS DOUBLE)", "bigint": f"CAST(CAST({v} AS DOUBLE) AS BIGINT)",
             "boolean": f"CAST({v} AS BOOLEAN)"}.get(kind, v)
    return (f"CASE WHEN max(seq) FILTER (WHERE {mentioned}) = max(seq) FILTER (WHERE {valued}) "
            f"THEN arg_max({typed}, seq) FILTER (WHERE {valued}) END AS \"{alias}\"")


def _no_rows(columns: tuple[tuple[str, str], ...]) -> str:
    """A SELECT of no row with these columns (logical types), standing in for a missing table."""
    return "SELECT " + ", ".join(f'CAST(NULL AS {DUCKDB_TYPES[t]}) AS "{c}"' for c, t in columns) + " WHERE FALSE"


def _naive_utc(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
