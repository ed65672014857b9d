"""What the identity graph reads, in the engine: lead records with their clear values, source
records, merges made in the CRMs, and earlier identity decisions.

A lead record is a `lead_id` of the event log (the canonical events' `lead_X`, and the ids the
source mappings give: `lead_{id}` for CDC rows, `hubspot:{Record ID}`, ...). Its values are the
properties of its `lead_created` / `lead_updated` events, from any source (events of types about no
person, `identity: none` such as campaign spend, never make a record), with PII read back from
`pii.vault` here and nowhere else. The results leave the engine already reduced (one row per
record, or per record and value).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from crm_platform.sources.mapping import SourceMapping
from crm_platform.warehouse import Warehouse

# Identity fields of a lead record, as the plan names its properties.
PII_FIELDS = ("email", "phone", "first_name", "last_name", "street")
PLAIN_FIELDS = ("company", "city", "postal_code", "state", "country")
FIELDS = PII_FIELDS + PLAIN_FIELDS
# Values a record may have had over time, all evidence (an e-mail corrected later still links).
MULTI_VALUED = ("email", "phone")
LEAD_EVENTS = "('lead_created', 'lead_updated')"
DECISION_EVENTS = "('lead_merged', 'lead_unmerged')"
PLATFORM_SOURCES = "('identity', 'ml')"


def naive_utc(table: pa.Table) -> pa.Table:
    """Timestamps as naive UTC, as DuckDB returns them (ClickHouse's carry their time zone)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us")))
    return table


@dataclass(frozen=True)
class SourceMerge:
    """A merge made in a source CRM: `merged` (a record id) now lives in `survivor`."""
    survivor: str
    merged: str
    rule: str
    decided_by: str


# Lead events per chunk of the record queries: bounds the engine's memory (a DuckDB warehouse runs
# with a 1 GB limit) whatever the number of records.
EVENTS_PER_CHUNK = 1_000_000


def _chunks(wh: Warehouse) -> list[str]:
    """Predicates on lead_id that split the lead records into chunks of about EVENTS_PER_CHUNK lead
    events (portable: characters of the id, not an engine's hash function)."""
    ev = wh.table_name("core", "events")
    n = wh.fetchall(f"SELECT count(*) FROM {ev} WHERE event_type IN {LEAD_EVENTS} AND lead_id IS NOT NULL")[0][0]
    k = max(1, -(-n // EVENTS_PER_CHUNK))
    if k == 1:
        return ["true"]
    return [f"(ascii(right(lead_id, 1)) * 7 + ascii(right(lead_id, 2))) % {k} = {i}" for i in range(k)]


def _chunked(wh: Warehouse, sql: str, leads: Sequence[str] | None = None) -> pa.Table:
    """`sql` (with a `{chunk}` predicate on lead_id) run chunk by chunk, results concatenated; with
    `leads`, only for those lead ids (sent along with each statement, as a table)."""
    chunks, tables = (["false"] if leads is not None and not leads else _chunks(wh)), None
    if leads:
        tables = {"identity_leads": pa.table({"lead_id": pa.array(sorted(leads), pa.string())})}
        chunks = [f"{c} AND lead_id IN (SELECT lead_id FROM identity_leads)" for c in chunks]
    parts = [naive_utc(wh.fetch_arrow(sql.format(chunk=c), tables=tables)) for c in chunks]
    wh.release_memory()  # the identity step's Python work needs the memory the engine cached
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def lead_versions(wh: Warehouse) -> pa.Table:
    """(lead_id, lead_events, last_ingested_at) per lead record: what its values are built from.
    Events are immutable, so the values change only when a lead event arrives (a newer ingested_at)
    or goes (retention, erasure: fewer events); vault entries go only with the events holding them.
    One grouping over ids and times, no attribute is read."""
    ev = wh.table_name("core", "events")
    return naive_utc(wh.fetch_arrow(
        f"SELECT lead_id, count(*) AS lead_events, max(ingested_at) AS last_ingested_at FROM {ev} "
        f"WHERE event_type IN {LEAD_EVENTS} AND lead_id IS NOT NULL GROUP BY lead_id"))


def lead_records(wh: Warehouse, leads: Sequence[str] | None = None) -> pa.Table:
    """One row per lead record (or per record of `leads`): first_seen (its first lead event), the
    latest value of each field, clear (PII from the vault: one join for all fields, so one hash
    table), sorted by lead_id."""
    ev, vault = wh.table_name("core", "events"), wh.table_name("pii", "vault")
    latest = ", ".join(f"arg_max(attributes ->> '{f}', occurred_at) AS {f}" for f in FIELDS)
    hashes = " UNION ALL ".join(f"SELECT lead_id, '{f}' AS f, {f} AS h FROM r WHERE {f} IS NOT NULL" for f in PII_FIELDS)
    clear = ", ".join(f"max(CASE WHEN v.f = '{f}' THEN v.value END) AS {f}" for f in PII_FIELDS)
    plain = ", ".join(f"r.{f}" for f in PLAIN_FIELDS)
    table = _chunked(wh,
        f"WITH r AS (SELECT lead_id, min(occurred_at) AS first_seen, {latest} FROM {ev} "
        f"WHERE event_type IN {LEAD_EVENTS} AND lead_id IS NOT NULL AND {{chunk}} GROUP BY lead_id), "
        f"v AS (SELECT h.lead_id AS lead_id, h.f AS f, vault.value AS value FROM ({hashes}) AS h "
        f"JOIN {vault} AS vault ON vault.pii_hash = h.h) "
        f"SELECT r.lead_id AS lead_id, r.first_seen AS first_seen, {clear}, {plain} "
        f"FROM r LEFT JOIN v ON v.lead_id = r.lead_id GROUP BY r.lead_id, r.first_seen, {plain}", leads)
    return table.sort_by("lead_id")


def contact_values(wh: Warehouse, leads: Sequence[str] | None = None) -> pa.Table:
    """(lead_id, field, value): every e-mail and phone a record (of `leads`) has carried, clear."""
    ev, vault = wh.table_name("core", "events"), wh.table_name("pii", "vault")
    parts = [f"SELECT DISTINCT lead_id, '{f}' AS field, attributes ->> '{f}' AS h FROM {ev} "
             f"WHERE event_type IN {LEAD_EVENTS} AND lead_id IS NOT NULL AND (attributes ->> '{f}') IS NOT NULL "
             f"AND {{chunk}}" for f in MULTI_VALUED]
    table = _chunked(wh,
        f"SELECT c.lead_id AS lead_id, c.field AS field, v.value AS value FROM ({' UNION ALL '.join(parts)}) AS c "
        f"JOIN {vault} AS v ON v.pii_hash = c.h", leads)
    return table.sort_by([("lead_id", "ascending"), ("field", "ascending"), ("value", "ascending")])


def external_ids(wh: Warehouse) -> pa.Table:
    """(lead_id, external_ids JSON text) of lead_created events that name records in other systems."""
    ev = wh.table_name("core", "events")
    return wh.fetch_arrow(
        f"SELECT DISTINCT lead_id, CAST(attributes -> 'external_ids' AS VARCHAR) AS ids FROM {ev} "
        f"WHERE event_type = 'lead_created' AND lead_id IS NOT NULL AND (attributes ->> 'external_ids') IS NOT NULL "
        f"ORDER BY lead_id, ids")


def event_lead_ids(wh: Warehouse, no_person_types: Sequence[str] = ()) -> pa.Table:
    """The lead ids the canonical event files carry (source_system `events` of the identity map),
    but for the platform's own events (identity decisions, scores): they name records, never add one;
    and but for the event types about no person (`no_person_types`, `identity: none` in the plan,
    such as campaign spend), whose lead_id, if one is given, is kept as sent and names no record."""
    ev = wh.table_name("core", "events")
    return wh.fetch_arrow(f"SELECT DISTINCT lead_id FROM {ev} WHERE {event_lead_ids_where(no_person_types)} ORDER BY lead_id")


def event_lead_ids_where(no_person_types: Sequence[str] = ()) -> str:
    """The predicate on core.events of the events whose lead id is a record (event_lead_ids)."""
    skip = f" AND event_type NOT IN ({', '.join(sql_literal(t) for t in no_person_types)})" if no_person_types else ""
    return f"lead_id IS NOT NULL AND source_file LIKE 'events/%' AND source NOT IN {PLATFORM_SOURCES}{skip}"


def no_person_types(plan) -> list[str]:
    """The plan's event types about no person (`identity: none`): their lead_id names no record."""
    return sorted(name for name, et in plan.event_types.items() if et.identity == "none")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lead_mappings(mappings: Sequence[SourceMapping]) -> list[SourceMapping]:
    """The source mappings whose records are leads (they create `lead_created` events)."""
    return [m for m in mappings if m.events.get("created") == "lead_created"]


def render_lead_id(mapping: SourceMapping, key: str) -> str:
    """The lead id the mapping gives the record with this key (`hubspot:{Record ID}` -> hubspot:42)."""
    out = mapping.lead_id
    for col in mapping.template_columns():
        out = out.replace("{" + col + "}", key)
    return out


def source_records(wh: Warehouse, mappings: Sequence[SourceMapping]) -> tuple[pa.Table, list[SourceMerge]]:
    """The lead records of every source system (source_system, source_id, lead_id, deleted), and the
    merges their CRMs made: a master id on the merged record (Salesforce `Master Record ID`, CDC
    `merged_into_id`) or the merged ids on the survivor (HubSpot `Merged Record IDs`). A merged-away
    id that no export lists any more is still a source record."""
    sr = wh.table_name("pii", "source_records")
    parts: list[pd.DataFrame] = []
    merges: list[SourceMerge] = []
    for m in lead_mappings(mappings):
        master, merged = m.column("master_id"), m.column("merged_ids")
        cols = [f"arg_max(state ->> '{c.name}', updated_at) AS \"{c.role}\"" for c in (master,) if c] + [
            f"arg_max(CAST(state -> '{c.name}' AS VARCHAR), updated_at) AS \"{c.role}\"" for c in (merged,) if c]
        rec = wh.fetch_arrow(
            "SELECT source_id, arg_max(lead_id, updated_at) AS lead_id, arg_max(deleted, updated_at) AS deleted"
            + "".join(", " + c for c in cols) + f" FROM {sr} WHERE source_system = ? AND source_object = ? "
            "GROUP BY source_id ORDER BY source_id", [m.source_system, m.object]).to_pandas()
        rec = rec.assign(source_system=m.source_system, deleted=rec["deleted"].fillna(False).astype(bool))
        parts.append(rec[["source_system", "source_id", "lead_id", "deleted"]])
        rule = f"source_merge:{m.source_system}"
        if master:
            has = rec[rec["master_id"].fillna("") != ""]
            merges += [SourceMerge(render_lead_id(m, x), y, rule, m.source_system)
                       for x, y in zip(has["master_id"], has["lead_id"])]
        if merged:
            has = rec[rec["merged_ids"].fillna("") != ""]
            gone = []
            for survivor, text in zip(has["lead_id"], has["merged_ids"]):
                for other in _id_list(text):
                    merges.append(SourceMerge(survivor, render_lead_id(m, other), rule, m.source_system))
                    gone.append(other)
            known = set(rec["source_id"])
            gone = sorted({x for x in gone if x not in known})
            parts.append(pd.DataFrame({"source_system": m.source_system, "source_id": gone,
                                       "lead_id": [render_lead_id(m, x) for x in gone], "deleted": True}))
    schema = pa.schema([("source_system", pa.string()), ("source_id", pa.string()), ("lead_id", pa.string()),
                        ("deleted", pa.bool_())])
    if not parts:
        return schema.empty_table(), merges
    frame = pd.concat(parts, ignore_index=True).astype({"source_system": object, "source_id": object,
                                                        "lead_id": object})
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False), merges


def _id_list(text: str | None) -> list[str]:
    if not text:  # ClickHouse gives '' for a missing key
        return []
    value = json.loads(text)
    items = value if isinstance(value, list) else [value]
    return [str(x) for x in items if x not in (None, "")]


def decision_events(wh: Warehouse, source: str | None = None) -> pa.Table:
    """Every lead_merged / lead_unmerged event (or those of one source), oldest first: CRM merges,
    manual decisions and the identity graph's own earlier decisions."""
    ev = wh.table_name("core", "events")
    only = " AND source = ?" if source else ""
    return naive_utc(wh.fetch_arrow(
        f"SELECT event_id, event_type, occurred_at, source, lead_id, attributes ->> 'merged_lead_id' AS merged_lead_id, "
        f"attributes ->> 'match_rule' AS match_rule, attributes ->> 'reverses_event_id' AS reverses_event_id "
        f"FROM {ev} WHERE event_type IN {DECISION_EVENTS}{only} ORDER BY occurred_at, event_id",
        [source] if source else None))
