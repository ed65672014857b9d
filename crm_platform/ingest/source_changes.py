"""Change records of a source (Debezium messages, rows of a full export) into canonical event lines.

Both kinds become one table of changes (`ingest_changes`): a record's key, its position (the log
position of a change, or the export's as-of instant), the operation (c, u, d, or r for a snapshot
row or an export row) and the record's values as JSON texts, typed as the mapping says. Against the
last known state of each record (`pii.source_records`, holding clear values: the pii schema), in
position order:

- a record seen for the first time gives the mapping's `created` event (every mapped property,
  unmapped columns kept as attributes, the source ids in `external_ids`);
- a record whose compared columns changed gives `updated` (changed fields only, or with `updates:
  full` the whole record as `created` has it; with `changed_fields` either way), `stage_changed`
  (from, to) when its stage column changed, `closed` (won or lost) when it moved into a closing
  value; nothing changed, nothing emitted;
- a deletion gives `deleted`;
- a Debezium change at or before the record's known log position (a redelivery, a replay, a snapshot
  of what was already seen), or an export row older than the record's known as-of, gives nothing. An
  export with the same as-of as the one the state has, read later, is a later position: a content is
  read once, so it was landed later (in one run, path order); its changes apply as any others.

The key is the key column's text, or the mapping's key template filled with the row's cells (an
export without a single key column: `{campaign_id}:{date}`); a row with an empty key cell has no key
(`missing_key`, naming the empty columns). Events of a mapping without `lead_id` (types about no
person) carry no lead_id. A record's events carry the lead_id of its newest change that has one (a
known record keeps its lead when the cells are emptied); a new record whose lead_id template has an
empty cell has none, and its row is quarantined (`missing_lead_id`, `cdc_missing_lead_id`, naming the
empty columns) before it makes any state, so a later row with the cells filled creates it.

Event ids are `<system>:<object>:<key>:<position>:<kind>`: the same change, delivered or landed
again, always has the same id, and the ingest's duplicate check drops it. The position is a
Debezium change's log position, or an export's as-of day; a later export of the same day that holds
the record adds `~n` (the n-th such export: `2026-05-01~1`), kept in the state as position_b = -n,
so the same files landed in the same order give the same ids. The event lines then take the one
validation path every event takes (`fast_validation`, `sql_validation`).

A record's line key is `file_idx << 40 | record_no << 3 | kind` (kind 0-3), so each event still
names the file and record it came from.
"""
from __future__ import annotations

import json
import re

from crm_platform.ingest.event_files import LINE_BITS
from crm_platform.ingest.sql_validation import _lit
from crm_platform.plan.model import TrackingPlan
from crm_platform.sources.mapping import Column, SourceMapping

SUB_BITS = 3
DAY_US = 86_400_000_000  # an export's position is epoch microseconds of its as-of: // DAY_US is its day
KIND_CREATED, KIND_UPDATED, KIND_STAGE, KIND_CLOSED = 0, 1, 2, 3


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attribute_key(column: str) -> str:
    """An unmapped column's attribute name: `Number of Seats` -> `number_of_seats`."""
    return re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_") or "column"


class ChangeCompiler:
    """The SQL of one mapping. Column values are named `c<i>` inside, whatever the source calls them."""

    def __init__(self, mapping: SourceMapping, plan: TrackingPlan):
        self.m, self.plan = mapping, plan
        self.cols = mapping.columns
        self.index = {c.name: i for i, c in enumerate(self.cols)}

    def c(self, name: str) -> str:
        return f"c{self.index[name]}"

    # -- extraction ------------------------------------------------------------------------------

    def debezium(self, lines: str) -> str:
        """`lines` (line_no, raw BLOB with its line end) of Debezium JSON: one change per message,
        with or without the schema/payload wrapper; `bad` says why a line is no change (tombstones
        are `tombstone`; a message without its commit time, which its events are dated by, is
        `cdc_missing_timestamp`)."""
        values = ", ".join(f"{self._json_value(c, 'row_json -> ' + _lit('$.' + json.dumps(c.name)))} AS c{i}"
                           for i, c in enumerate(self.cols))
        key_path = _lit("$." + json.dumps(self.m.key))
        # Records keep their place in the line key, below the event kind: file | line << SUB_BITS.
        rec = f"((line_no >> 40) << 40) + ((line_no & {(1 << 40) - 1}) << {SUB_BITS})"
        return f"""
WITH src AS (SELECT {rec} AS rec, raw, trim(try(decode(raw)), chr(32) || chr(9) || chr(13) || chr(10)) AS txt
             FROM {lines}),
     parsed AS (
  SELECT rec, raw, txt,
         CASE WHEN txt IS NULL THEN 'invalid_utf8: the line is not UTF-8'
              WHEN txt = 'null' THEN 'tombstone'
              WHEN NOT json_valid(txt) THEN 'invalid_json: the line is not valid JSON'
              WHEN NOT starts_with(txt, '{{') THEN 'not_an_object: a Debezium message is a JSON object' END AS bad0,
         CASE WHEN json_valid(txt) AND starts_with(txt, '{{') THEN
              CASE WHEN json_exists(txt, '$.payload') AND json_exists(txt, '$.schema') THEN json_extract(txt, '$.payload')
                   ELSE json(txt) END END AS p
  FROM src),
     msg AS (
  SELECT *, p ->> '$.op' AS op,
         try_cast(p ->> '$.source.lsn' AS BIGINT) AS lsn,
         try_cast(coalesce(p ->> '$.source.ts_ms', p ->> '$.ts_ms') AS BIGINT) AS ts_ms,
         CASE WHEN p ->> '$.op' = 'd' THEN p -> '$.before' ELSE p -> '$.after' END AS row_json
  FROM parsed)
SELECT rec, raw, op, lsn AS pos_a, rec AS pos_b, row_json ->> {key_path} AS key,
       make_timestamp(ts_ms * 1000) AS commit_ts, NULL::VARCHAR AS extra, {values},
       CASE WHEN bad0 IS NOT NULL THEN bad0
            WHEN op IS NULL OR op NOT IN ('c', 'u', 'd', 'r') THEN 'cdc_unknown_op: op ' || coalesce(op, 'null')
                 || ' is not one of c, u, d, r'
            WHEN row_json IS NULL OR json_type(row_json) <> 'OBJECT' THEN 'cdc_missing_row: no ' ||
                 CASE WHEN op = 'd' THEN 'before' ELSE 'after' END || ' row'
            WHEN (row_json ->> {key_path}) IS NULL THEN 'cdc_missing_key: the row has no ' || {_lit(self.m.key)}
            WHEN lsn IS NULL THEN 'cdc_missing_position: no source.lsn'
            WHEN ts_ms IS NULL THEN 'cdc_missing_timestamp: no source.ts_ms or ts_ms (when the change was made)' END AS bad
FROM msg"""

    def csv(self, file_sql: str, header: list[str], rec_base: int, as_of_sql: str) -> str:
        """One export file's rows (`file_sql` a read_csv/read_parquet with ordinality); `header` the
        file's columns. Unmapped columns become the `extra` attributes."""
        present = set(header)
        values = ", ".join(f"{self._text_value(c, _ident(c.name)) if c.name in present else 'NULL'} AS c{i}"
                           for i, c in enumerate(self.cols))
        mapped = {c.name for c in self.cols}
        extras = [h for h in header if h not in mapped]
        if extras:
            members = ", ".join(f"CASE WHEN nullif({_ident(h)}, '') IS NOT NULL THEN {_lit(json.dumps(attribute_key(h)) + ':')}"
                                f" || to_json({_ident(h)}) END" for h in extras)
            extra = f"nullif(concat_ws(',', {members}), '')"
        else:
            extra = "NULL"
        return f"""
SELECT {rec_base} + (rec_no << {SUB_BITS}) AS rec, NULL::BLOB AS raw, 'r' AS op,
       epoch_us({as_of_sql}) AS pos_a, {rec_base} + rec_no AS pos_b, {self._export_key()} AS key,
       {as_of_sql} AS commit_ts, {extra} AS extra, {values},
       CASE WHEN {self._export_key()} IS NULL THEN 'missing_key: the row has no ' || {self._missing_key_columns()} END AS bad
FROM {file_sql}"""

    def _export_key(self) -> str:
        """The record key of an export row: the key cell, or the key template filled with the cells
        (NULL when any of them is empty)."""
        if not self.m.key_is_template:
            return f"nullif({_ident(self.m.key)}, '')"
        parts = [f"nullif({_ident(p[1:-1])}, '')" if p.startswith("{") and p.endswith("}") else _lit(p)
                 for p in re.split(r"(\{[^{}]+\})", self.m.key) if p]
        return "(" + " || ".join(parts) + ")"

    def _missing_key_columns(self) -> str:
        """The names of the key's empty cells, comma-separated (one name for a key column)."""
        if not self.m.key_is_template:
            return _lit(self.m.key)
        return "concat_ws(', ', " + ", ".join(f"CASE WHEN nullif({_ident(c)}, '') IS NULL THEN {_lit(c)} END"
                                              for c in self.m.key_columns) + ")"

    def _json_value(self, c: Column, j: str) -> str:
        """JSON text of a Debezium row field, typed as `c` says (NULL when absent or null)."""
        v = f"CASE WHEN json_type({j}) = 'NULL' THEN NULL ELSE CAST({j} AS VARCHAR) END"
        if c.type == "timestamp_micros":
            return (f"CASE WHEN try_cast({j} AS BIGINT) IS NOT NULL THEN '\"' || "
                    f"strftime(make_timestamp(CAST({j} AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ') || '\"' ELSE {v} END")
        if c.type == "string":
            v = f"CASE WHEN json_type({j}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN to_json(CAST({j} AS VARCHAR)) ELSE {v} END"
        return self._mapped(c, v, json_text=True)

    def _text_value(self, c: Column, x: str) -> str:
        """JSON text of an export's text cell `x`, typed as `c` says; empty is absent; a value that does
        not convert stays a string, for the validation to name."""
        x = f"nullif({x}, '')"
        if c.type == "integer":  # 1.5 is no integer (a cast to BIGINT would round it to 2)
            v = (f"CASE WHEN try_cast({x} AS BIGINT) = try_cast({x} AS DOUBLE) THEN CAST(try_cast({x} AS BIGINT) AS VARCHAR) "
                 f"ELSE to_json({x}) END")
        elif c.type == "number":
            v = f"coalesce(CASE WHEN isfinite(try_cast({x} AS DOUBLE)) THEN CAST(try_cast({x} AS DOUBLE) AS VARCHAR) END, to_json({x}))"
        elif c.type == "boolean":
            v = (f"CASE lower({x}) WHEN 'true' THEN 'true' WHEN 'yes' THEN 'true' WHEN '1' THEN 'true' WHEN 'false' THEN 'false' "
                 f"WHEN 'no' THEN 'false' WHEN '0' THEN 'false' ELSE to_json({x}) END")
        elif c.type == "timestamp":
            parsed = f"try_strptime({x}, {_lit(c.format or '%Y-%m-%dT%H:%M:%S')})"
            zone = _lit(c.timezone or "UTC")
            v = (f"CASE WHEN {parsed} IS NOT NULL THEN '\"' || strftime(({parsed} AT TIME ZONE {zone}) AT TIME ZONE 'UTC', "
                 f"'%Y-%m-%dT%H:%M:%SZ') || '\"' ELSE to_json({x}) END")
        elif c.type == "list":
            v = f"to_json(list_filter(string_split({x}, {_lit(c.separator)}), lambda _s: _s <> ''))"
        elif c.type == "json":
            v = f"CASE WHEN json_valid({x}) THEN CAST(json({x}) AS VARCHAR) ELSE to_json({x}) END"
        else:
            v = f"to_json({x})"
        return self._mapped(c, v, json_text=False, raw=x)

    @staticmethod
    def _mapped(c: Column, v: str, json_text: bool, raw: str | None = None) -> str:
        """`values`: a source value (its text) becomes the listed one; null drops it."""
        if not c.values:
            return v
        key = f"json_extract_string({v}, '$')" if json_text or raw is None else raw
        whens = " ".join(f"WHEN {_lit(str(k))} THEN {'NULL' if out is None else _lit(json.dumps(out, ensure_ascii=False))}"
                         for k, out in c.values.items())
        return f"(CASE {key} {whens} ELSE {v} END)"

    # -- state and events ------------------------------------------------------------------------

    def state_spec(self) -> str:
        return _lit(json.dumps({c.name: "JSON" for c in self.cols}))

    def state_json(self, values: str) -> str:
        """The record's state as a JSON object {column: value}, from struct `values` of c<i> texts."""
        members = ", ".join(f"CASE WHEN {values}.c{i} IS NOT NULL THEN {_lit(json.dumps(c.name) + ':')} || {values}.c{i} END"
                            for i, c in enumerate(self.cols))
        return f"'{{' || concat_ws(',', {members}) || '}}'"

    @property
    def export(self) -> bool:
        return self.m.format != "debezium"

    @property
    def needs_lead(self) -> bool:
        """Whether the mapping's events are about a person (their lead_id is required)."""
        return self.m.lead_id is not None and any(
            self.plan.event_types[t].identity != "none" for t in self.m.events.values())

    def _fresh(self, changes: str, state: str, only_without_lead: bool = False) -> str:
        """The CTE `fresh`: the readable changes of `changes` that are new to the record's stored
        state, one per position, with `v_lead` (the lead_id of the change's own cells).

        A Debezium change is new past the stored log position (a redelivery has the same one). An
        export row is new at or past the stored as-of: a file is read once per content, so an
        export of the same as-of read now was landed after the one the state has; of one file's
        rows with the same key, the first counts. Order: position, then file and row in the group
        (path order, the order of landing within a run). `only_without_lead` (for `leadless`): just the
        records with a change whose lead_id cells are empty, and every row of a file, not only the
        first of a key, so that a second row of a new record, no lead either, is caught as well."""
        m = self.m
        newer, once = ("pos_a >= s_pos", f"key, pos_a, pos_b >> {LINE_BITS}") if self.export else ("pos_a > s_pos", "key, pos_a")
        v_lead = self._lead_id("c") if m.lead_id is not None else "CAST(NULL AS VARCHAR)"
        return f"""
j AS (
  SELECT c.rec, c.key, c.pos_a, c.pos_b, c.op, s.state AS s_state, s.position_a AS s_pos, s.position_b AS s_pos_b,
         s.lead_id AS s_lead, s.deleted AS s_deleted, {v_lead} AS v_lead
  FROM {changes} c LEFT JOIN {state} s
    ON s.source_system = {_lit(m.source_system)} AND s.source_object = {_lit(m.object)} AND s.source_id = c.key
  WHERE c.bad IS NULL{f" AND c.key IN (SELECT c.key FROM {changes} c WHERE c.bad IS NULL AND {v_lead} IS NULL)"
                       if only_without_lead else ""}),
fresh AS (
  SELECT * FROM j WHERE s_pos IS NULL OR {newer}
  {"" if only_without_lead else f"QUALIFY row_number() OVER (PARTITION BY {once} ORDER BY pos_b) = 1"})"""

    # The record's lead (over window w, the record's fresh changes in order): the lead_id of the
    # newest of its changes so far that has one, else the stored one. (pos_a, pos_b) is unique, so
    # the default frame ends at the current row.
    _RECORD_LEAD = "coalesce(last_value(v_lead IGNORE NULLS) OVER w, s_lead)"
    _W = "WINDOW w AS (PARTITION BY key ORDER BY pos_a, pos_b)"

    def leadless(self, changes: str, state: str) -> str | None:
        """(rec, bad) of the fresh changes whose events would have no lead_id although they are about
        a person: a record not known before whose lead_id template has an empty cell (none of its
        earlier changes had it either). The reason names the empty cells. None when the mapping's
        events need no lead."""
        if not self.needs_lead:
            return None
        columns = list(dict.fromkeys(self.m.template_columns()))
        empty = "concat_ws(', ', " + ", ".join(f"CASE WHEN c.{self.c(col)} IS NULL THEN {_lit(col)} END"
                                               for col in columns) + ")"
        code = "missing_lead_id" if self.export else "cdc_missing_lead_id"
        return f"""
WITH {self._fresh(changes, state, only_without_lead=True)},
led AS (SELECT rec, {self._RECORD_LEAD} AS record_lead FROM fresh {self._W})
SELECT l.rec, {_lit(code + ': the row has no ')} || {empty} || {_lit(' (lead_id ' + json.dumps(self.m.lead_id) + ')')} AS bad
FROM led l JOIN {changes} c ON c.rec = l.rec
WHERE l.record_lead IS NULL"""

    def change_order(self, changes: str, state: str) -> str:
        """The fresh changes of `changes` (replays dropped) in position order, on the narrow
        columns: each one's previous change in the group (`prev_rec`), or the stored state `st` for
        the first of a record already known; `last` marks the record's newest change; `record_lead`
        the lead its events carry.

        `seq` (exports) numbers the exports of one as-of day that hold the record: 0 for the first,
        n for the n-th later one (the stored state keeps it as `position_b` = -n, `s_seq` here; a
        state written before the numbering has a positive position_b, and counts as 0). It tells
        the event ids of a day apart (`events`). Here it is 0 for a change on another day than the
        record's previous one, and NULL for the rare others, which `number_ties` then numbers."""
        if self.export:
            seq = f"CASE WHEN pos_a // {DAY_US} = coalesce(lag(pos_a) OVER w, s_pos) // {DAY_US} THEN NULL ELSE 0 END"
        else:
            seq = "0"
        return f"""
WITH {self._fresh(changes, state)}
SELECT * EXCLUDE (s_state, s_pos_b, v_lead), {self._RECORD_LEAD} AS record_lead,
       lag(rec) OVER w AS prev_rec, lag(op) OVER w AS prev_op, lead(rec) OVER w IS NULL AS last,
       CASE WHEN s_state IS NOT NULL AND lag(rec) OVER w IS NULL THEN from_json(s_state, {self.state_spec()}) END AS st,
       CASE WHEN s_pos_b <= 0 THEN -s_pos_b ELSE 0 END AS s_seq, {seq} AS seq
FROM fresh {self._W}"""

    def number_ties(self, order: str) -> str | None:
        """The UPDATE that numbers the changes of `order` (`change_order`, materialized) on the same
        as-of day as their record's previous one: its place among the group's changes of the record
        on that day, after the stored one's. None for Debezium (positions never tie)."""
        if not self.export:
            return None
        day = f"pos_a // {DAY_US}"
        return f"""
UPDATE {order} SET seq = t.seq FROM (
  SELECT rec, row_number() OVER (PARTITION BY key, {day} ORDER BY pos_a, pos_b) - 1
         + CASE WHEN {day} = s_pos // {DAY_US} THEN 1 + s_seq ELSE 0 END AS seq
  FROM {order} WHERE key IN (SELECT key FROM {order} WHERE seq IS NULL)) t
WHERE {order}.rec = t.rec AND {order}.seq IS NULL"""

    def change_rows(self, order: str, changes: str) -> str:
        """The rows events are made of: `order`'s changes with their values `v` and the previous
        values `pv` (NULL for a record never seen)."""
        stored = self._values(lambda i, c: f"CAST(o.st.{_ident(c.name)} AS VARCHAR)")
        return f"""
SELECT o.* EXCLUDE (st), {self._values(lambda i, c: f"c.c{i}")} AS v,
       CASE WHEN o.prev_rec IS NOT NULL THEN {self._values(lambda i, c: f"p.c{i}")}
            WHEN o.st IS NOT NULL THEN {stored} END AS pv,
       CASE WHEN o.prev_rec IS NOT NULL THEN o.prev_op = 'd' ELSE coalesce(o.s_deleted, false) END AS was_deleted,
       c.commit_ts, c.extra
FROM {order} o JOIN {changes} c ON c.rec = o.rec LEFT JOIN {changes} p ON p.rec = o.prev_rec"""

    def _values(self, text_of) -> str:
        """The struct {c0, c1, ...} of every column's JSON text, `text_of(i, column)` giving each."""
        return "{" + ", ".join(f"'c{i}': {text_of(i, c)}" for i, c in enumerate(self.cols)) + "}"

    def _lead_id(self, values: str) -> str:
        """The events' lead_id from the mapping's template, over struct `values` (NULL without one)."""
        if self.m.lead_id is None:
            return "CAST(NULL AS VARCHAR)"
        parts = re.split(r"(\{[^{}]+\})", self.m.lead_id)
        sql = []
        for part in parts:
            if part.startswith("{") and part.endswith("}"):
                sql.append(f"json_extract_string({values}.{self.c(part[1:-1])}, '$')")
            elif part:
                sql.append(_lit(part))
        return "(" + " || ".join(sql) + ")"

    def events(self, rows: str) -> str:
        """(line_no, raw) canonical event lines of the change rows `rows` (see `changes`)."""
        m, plan = self.m, self.plan
        # An export's position: its as-of day, and ~n for the n-th later export of that day (`seq`).
        pos_text = ("CAST(pos_a AS VARCHAR)" if m.format == "debezium" else
                    "strftime(commit_ts, '%Y-%m-%d') || CASE WHEN seq > 0 THEN '~' || CAST(seq AS VARCHAR) ELSE '' END")
        commit = "'\"' || strftime(commit_ts, '%Y-%m-%dT%H:%M:%S.%fZ') || '\"'"
        created_at = self._role("created_at", "v") or commit
        modified_at = self._role("modified_at", "v") or commit
        if m.format == "debezium":  # the commit instant is the change's own time
            modified_at = commit

        def event(kind: str, event_type: str, occurred: str, attrs: str) -> str:
            version = plan.event_types[event_type].current.version
            head = _lit('{"event_type":' + json.dumps(event_type) + ',"schema_version":' + json.dumps(version)
                        + ',"event_id":')
            event_id = "to_json(" + _lit(f"{m.source_system}:{m.object}:") + " || key || ':' || " + pos_text + " || " \
                + _lit(":" + kind) + ")"
            source = _lit(',"source":' + json.dumps(m.source_system))
            # No lead_id: a type about no person (for one about a person `leadless` has quarantined
            # such rows; should one get here, the plan rejects its event); the line is never NULL.
            lead_id = """coalesce('"lead_id":' || to_json(record_lead) || ',', '') || """ if m.lead_id is not None else ""
            return (f"{head} || {event_id} || {_lit(',' + json.dumps('occurred_at') + ':')} || {occurred} || {source} || "
                    f"',' || {lead_id}{_lit(json.dumps('attributes') + ':')} || {attrs} || '}}'")

        def obj(members: list[str]) -> str:
            return "'{' || concat_ws(',', " + ", ".join(members) + ") || '}'" if members else "'{}'"

        def member(key: str, text: str) -> str:
            return f"{_lit(json.dumps(key) + ':')} || {text}"

        selects = []
        # created: every mapped property, unmapped columns, and the record's ids in the sources
        props = [member(c.property, f"v.{self.c(c.name)}") for c in self.cols if c.property]
        ids = [member(m.source_system, "to_json(key)")]
        ids += [member(f"{m.source_system}_{attribute_key(c.name)}", f"v.{self.c(c.name)}")
                for c in self.cols if c.role in ("merged_ids", "master_id")]
        created_attrs = obj(props + ["extra"] + ([member("external_ids", obj(ids))]
                                                 if "external_ids" in plan.event_types[m.events["created"]].current.properties else []))
        if "created" in m.events:
            selects.append(f"SELECT rec + {KIND_CREATED} AS line_no, "
                           f"{event('created', m.events['created'], f'coalesce({created_at}, {commit})', created_attrs)} AS raw "
                           "FROM rows WHERE op <> 'd' AND (pv IS NULL OR was_deleted)")
        stage = m.stage_column
        closing = m.closed.column if m.closed else None
        compared = [c for c in self.cols if c.compare and c.name not in (stage, *m.key_columns)]
        if "updated" in m.events:
            changed = [c for c in compared if c.property]
            if changed:
                cleared = _lit("null")  # a value removed at the source is a change to null
                members = [f"CASE WHEN v.{self.c(c.name)} IS DISTINCT FROM pv.{self.c(c.name)} THEN "
                           f"{member(c.property, f'coalesce(v.{self.c(c.name)}, {cleared})')} END"
                           for c in changed]
                names = ", ".join(f"CASE WHEN v.{self.c(c.name)} IS DISTINCT FROM pv.{self.c(c.name)} THEN {_lit(c.property)} END"
                                  for c in changed)
                fields = f"to_json(list_filter([{names}], lambda _n: _n IS NOT NULL))"
                has_fields = "changed_fields" in plan.event_types[m.events["updated"]].current.properties
                if m.updates == "full":  # the whole record, as `created` has it (ids aside)
                    members = props + ["extra"]
                attrs = obj(members + ([member("changed_fields", fields)] if has_fields else []))
                any_changed = " OR ".join(f"v.{self.c(c.name)} IS DISTINCT FROM pv.{self.c(c.name)}" for c in changed)
                selects.append(f"SELECT rec + {KIND_UPDATED}, {event('updated', m.events['updated'], f'coalesce({modified_at}, {commit})', attrs)} "
                               f"FROM rows WHERE op <> 'd' AND pv IS NOT NULL AND NOT was_deleted AND ({any_changed})")
        if stage and "stage_changed" in m.events:
            s = self.c(stage)
            attrs = obj([member("from_stage", f"pv.{s}"), member("to_stage", f"v.{s}")])
            # A move between two stages: to or from a value the mapping does not know as one is no transition.
            selects.append(f"SELECT rec + {KIND_STAGE}, {event('stage', m.events['stage_changed'], f'coalesce({modified_at}, {commit})', attrs)} "
                           f"FROM rows WHERE op <> 'd' AND pv IS NOT NULL AND NOT was_deleted AND v.{s} <> pv.{s}")
        if m.closed:
            cc = self.c(closing)
            value = f"json_extract_string(v.{cc}, '$')"
            before = f"coalesce(json_extract_string(pv.{cc}, '$'), '')"
            final = list(m.closed.won) + list(m.closed.lost)
            outcome = f"CASE WHEN {value} IN ({', '.join(map(_lit, m.closed.won))}) THEN '\"won\"' ELSE '\"lost\"' END"
            members = [member("opportunity_id", "to_json(key)"), member("outcome", outcome)]
            if m.closed.amount:
                members.append(f"CASE WHEN v.{self.c(m.closed.amount)} IS NOT NULL THEN "
                               f"{member('closed_amount', f'v.{self.c(m.closed.amount)}')} END")
            currency = next((c for c in self.cols if c.property == "currency"), None)
            if currency is not None:
                cur = f"v.{self.c(currency.name)}"
                members.append(f"CASE WHEN {cur} IS NOT NULL THEN {member('currency', cur)} END")
            selects.append(f"SELECT rec + {KIND_CLOSED}, {event('closed', m.closed.event, f'coalesce({modified_at}, {commit})', obj(members))} "
                           f"FROM rows WHERE op <> 'd' AND {value} IN ({', '.join(map(_lit, final))}) "
                           f"AND {before} NOT IN ({', '.join(map(_lit, final))})")
        if "deleted" in m.events:
            attrs = obj([member("source_system", _lit(json.dumps(m.source_system))),
                         member("source_object", _lit(json.dumps(m.object))), member("source_id", "to_json(key)")])
            selects.append(f"SELECT rec + {KIND_CREATED}, {event('deleted', m.events['deleted'], commit, attrs)} "
                           "FROM rows WHERE op = 'd'")
        return f"WITH rows AS ({rows})\n" + "\nUNION ALL\n".join(selects)

    def _role(self, role: str, values: str) -> str | None:
        c = self.m.column(role)
        return f"{values}.{self.c(c.name)}" if c is not None else None

    def new_state(self, rows: str) -> str:
        """Each touched record's last state: (source_id, lead_id, position_a, position_b, state, deleted,
        file_idx), position_b of an export -seq (`change_order`), file_idx the file's place in the group."""
        position_b = "-seq" if self.export else "pos_b"
        return f"""
SELECT key AS source_id, record_lead AS lead_id, pos_a AS position_a, {position_b} AS position_b,
       CASE WHEN op = 'd' AND pv IS NOT NULL THEN {self.state_json('pv')} ELSE {self.state_json('v')} END AS state,
       op = 'd' AS deleted, pos_b >> {LINE_BITS} AS file_idx
FROM ({rows}) WHERE last"""
