"""Deterministic edges: pairs of lead records the evidence says are one person, by rule.

- `email`: equal normalized e-mail, names not contradicting each other.
- `phone_name`: equal E.164 phone and compatible names (an office number alone proves nothing).
- `external_id`: a record names another system's record as itself (`external_ids` of lead_created).
- `source_merge:<system>` / `crm_merge`: a merge made in the source CRM.

A value shared by more records than the guard allows is a placeholder (`info@`, a switchboard) and
links nothing; `GuardHits` says which, by keyed hash. Edges are frames (left, right, rule, score,
evidence JSON) with left < right; evidence names hashes and rules, never values.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from crm_platform.identity import normalize as norm
from crm_platform.identity.config import Guards
from crm_platform.identity.inputs import SourceMerge, render_lead_id, sql_literal
from crm_platform.identity.records import arrow_sql, arrow_strings
from crm_platform.sources.mapping import SourceMapping

EDGE_COLUMNS = ["left", "right", "rule", "score", "evidence"]
# When two rules give the same pair, the first of these names it.
RULE_ORDER = ("manual", "source_merge", "crm_merge", "external_id", "email", "phone_name", "probabilistic")


def rule_rank(rule: str) -> int:
    base = rule.split(":", 1)[0]
    return RULE_ORDER.index(base) if base in RULE_ORDER else len(RULE_ORDER)


def rule_rank_sql(column: str) -> str:
    """rule_rank in SQL."""
    cases = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(RULE_ORDER))
    return f"CASE split_part({column}, ':', 1) {cases} ELSE {len(RULE_ORDER)} END"


@dataclass
class GuardHits:
    """Values that did not count as evidence, by keyed hash (never the value)."""
    blocked: dict[str, int] = field(default_factory=dict)  # field -> records that carried a blocked value
    too_common: list[dict] = field(default_factory=list)  # {field, value_hash, records}


def edges(left, right, rule, score=1.0, evidence="{}") -> pd.DataFrame:
    """An edge frame from columns (or scalars broadcast over them), by position. Text columns are
    Arrow-backed strings: a few bytes per id instead of a Python object (millions of edges)."""
    def column(x, dtype="str"):
        return pd.array(pd.Series(x).array, dtype=dtype) if not np.isscalar(x) else x
    df = pd.DataFrame({"left": column(left), "right": column(right)})
    return df.assign(rule=column(rule), score=column(score, float), evidence=column(evidence))[EDGE_COLUMNS]


def edges_from_rows(rows) -> pd.DataFrame:
    """Edges from (a, b, rule, score, evidence dict) tuples (small sets, hand-built cases)."""
    rows = list(rows)
    return edges([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                 [float(r[3]) for r in rows], [json.dumps(r[4], sort_keys=True) for r in rows])


def edges_frame(parts: Sequence[pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """All edges in one frame: ordered pairs, self-pairs and empty ids dropped, the strongest rule
    per pair kept (rule_rank, then the higher score, then the rule's name, then the first given),
    sorted by pair. In an embedded DuckDB: at a million leads five million edges, whose sort and
    dedup as pandas frames took 1.7 GiB."""
    parts = list(parts) if isinstance(parts, (list, tuple)) else [parts]
    string = pa.string()
    tables = [pa.table({c: pa.array(p[c], pa.float64() if c == "score" else string, from_pandas=True)
                        for c in EDGE_COLUMNS}) for p in parts if len(p)]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else "str") for c in EDGE_COLUMNS})
    edges = pa.concat_tables(tables)
    edges = edges.append_column("position", pa.array(np.arange(edges.num_rows)))
    table = arrow_sql(f"""
        SELECT least("left", "right") AS "left", greatest("left", "right") AS "right", rule, score, evidence
        FROM e WHERE "left" IS NOT NULL AND "right" IS NOT NULL AND "left" <> "right"
        QUALIFY row_number() OVER (PARTITION BY least("left", "right"), greatest("left", "right")
                                   ORDER BY {rule_rank_sql("rule")},
                                            score DESC, rule, position) = 1
        ORDER BY "left", "right"
    """, {"e": edges})
    return pd.DataFrame({c: table.column(c).to_pandas() if c == "score" else arrow_strings(table.column(c).combine_chunks())
                         for c in EDGE_COLUMNS})


def _hashed(keys: pd.Series, hash_value: Callable[[str], str]) -> pd.Series:
    """Keyed hash per value, each distinct value hashed once."""
    memo = {k: hash_value(k) for k in keys.unique()}
    return keys.map(memo).astype(str)


def shared_values(contacts: pd.DataFrame, field_name: str, guards: Guards, hash_value: Callable[[str], str],
                  hits: GuardHits) -> pd.DataFrame:
    """(key, lead_id, first_seen) for the values of `field_name` that 2 to `max_records_per_value`
    records share (`contacts` has lead_id, field, key, first_seen); blocked and too common values
    are left out and counted in `hits`."""
    extra = {v for v in (norm.email(b) if field_name == "email" else norm.phone(b) for b in guards.blocked_values) if v}
    extra |= {norm.fold(b) for b in guards.blocked_values}
    rows = contacts.loc[contacts["field"] == field_name, ["key", "lead_id", "first_seen"]].drop_duplicates(["key", "lead_id"])
    blocked = rows["key"].isin(extra)
    if blocked.any():
        hits.blocked[field_name] = hits.blocked.get(field_name, 0) + int(rows.loc[blocked, "lead_id"].nunique())
    rows = rows[~blocked]
    size = rows.groupby("key")["lead_id"].transform("size")
    for key, n in rows.loc[size > guards.max_records_per_value].groupby("key").size().items():
        hits.too_common.append({"field": field_name, "value_hash": hash_value(key), "records": int(n)})
    # Earliest record first (a star's centre stays put as later records join), then by id.
    return rows[(size >= 2) & (size <= guards.max_records_per_value)].sort_values(
        ["key", "first_seen", "lead_id"], na_position="last", kind="stable")


class Names:
    """Each record's (first_name, given_name, last_name), compared pair by pair: equal names are
    settled column-wise in Arrow, and only the pairs that differ (a few percent) are compared in
    Python, nicknames, initials and slips included (no Python string per record: a million records)."""

    COLUMNS = ("first_name", "given_name", "last_name")

    def __init__(self, records: pd.DataFrame):
        self.index = pd.Index(records["lead_id"])
        self.columns = [pa.array(records[c], pa.string(), from_pandas=True) for c in self.COLUMNS]

    def _sides(self, a, b):
        ia = pa.array(self.index.get_indexer(pd.Series(a, dtype=object)))
        ib = pa.array(self.index.get_indexer(pd.Series(b, dtype=object)))
        # -1 (not a record) reads as null: no name
        ia, ib = pc.if_else(pc.less(ia, 0), pa.scalar(None, pa.int64()), ia), pc.if_else(pc.less(ib, 0), pa.scalar(None, pa.int64()), ib)
        return [col.take(ia) for col in self.columns], [col.take(ib) for col in self.columns]

    def conflicts(self, a, b) -> np.ndarray:
        (fa, ga, la), (fb, gb, lb) = self._sides(a, b)

        def settled(x, y):  # equal, or one side missing: no conflict from this part
            return pc.fill_null(pc.or_(pc.equal(x, y), pc.or_(pc.is_null(x), pc.is_null(y))), True)
        easy = pc.and_(settled(la, lb), settled(ga, gb)).to_numpy(zero_copy_only=False)
        out = np.zeros(len(easy), dtype=bool)
        hard = np.flatnonzero(~easy)
        if len(hard):
            take = pa.array(hard)
            sides = [col.take(take).to_pylist() for col in (fa, ga, la, fb, gb, lb)]
            out[hard] = [names_conflict((x1, x2, x3), (y1, y2, y3)) for x1, x2, x3, y1, y2, y3 in zip(*sides)]
        return out

    def compatible(self, a, b) -> np.ndarray:
        """Both records give a family name, and the names do not contradict each other."""
        (_, _, la), (_, _, lb) = self._sides(a, b)
        both = pc.and_(pc.is_valid(la), pc.is_valid(lb)).to_numpy(zero_copy_only=False)
        return both & ~self.conflicts(a, b)


def _one_slip(a: str, b: str) -> bool:
    """At most one typing slip apart (an insertion, deletion, substitution or swap), for names of
    three letters or more."""
    return min(len(a), len(b)) >= 3 and DamerauLevenshtein.distance(a, b) <= 1


def _same_given(fa: str, ga: str, fb: str, gb: str) -> bool:
    if ga == gb or (fa[0] == fb[0] and min(len(fa), len(fb)) == 1):
        return True
    forms_a, forms_b = norm.name_forms(fa), norm.name_forms(fb)
    return bool(forms_a & forms_b) or any(_one_slip(x, y) for x in forms_a for y in forms_b)


def _same_family(la: str, lb: str) -> bool:
    return la == lb or _one_slip(la, lb) or JaroWinkler.similarity(la, lb) >= 0.94


def names_conflict(a: tuple, b: tuple) -> bool:
    """(first_name, given_name, last_name) of two records: both give a part of the name and the
    parts disagree (beyond nicknames, initials and one-letter slips)."""
    fa, ga, la = a
    fb, gb, lb = b
    return bool((la and lb and not _same_family(la, lb)) or (fa and fb and not _same_given(fa, ga, fb, gb)))


def email_edges(contacts: pd.DataFrame, records: pd.DataFrame, guards: Guards, hash_value: Callable[[str], str],
                hits: GuardHits) -> pd.DataFrame:
    """Records sharing a normalized e-mail whose names do not contradict each other (colleagues
    share `j.smith@` and families share a mailbox): each record is linked to the earliest record
    of its group it agrees with, n-1 edges at most per group."""
    rows = shared_values(contacts, "email", guards, hash_value, hits)
    names = Names(records)
    first = rows.groupby("key", sort=False)["lead_id"].transform("first")
    later = rows[rows["lead_id"] != first].assign(first=first)
    agrees = ~names.conflicts(later["lead_id"], later["first"])
    found = [later.loc[agrees, ["first", "lead_id", "key"]].set_axis(["left", "right", "key"], axis=1)]
    # The few records that disagree with their group's first: the earliest record they agree with
    # (every earlier record of their group checked at once).
    groups = rows[rows["key"].isin(set(later["key"][~agrees]))].assign(pos=lambda d: d.groupby("key").cumcount())
    late = later.loc[~agrees, ["key", "lead_id"]].merge(groups[["key", "lead_id", "pos"]], on=["key", "lead_id"])
    cand = late.merge(groups[["key", "lead_id", "pos"]], on="key", suffixes=("", "_y"))
    cand = cand[(cand["pos_y"] > 0) & (cand["pos_y"] < cand["pos"])]
    cand = cand[~names.conflicts(cand["lead_id"], cand["lead_id_y"])].sort_values(["key", "pos", "pos_y"])
    cand = cand.drop_duplicates(["key", "lead_id"])
    found.append(cand[["lead_id_y", "lead_id", "key"]].set_axis(["left", "right", "key"], axis=1))
    out = pd.concat(found, ignore_index=True)
    return edges(out["left"], out["right"], "email", 1.0, '{"email": "' + _hashed(out["key"], hash_value) + '"}')


def phone_edges(contacts: pd.DataFrame, records: pd.DataFrame, guards: Guards, hash_value: Callable[[str], str],
                hits: GuardHits) -> pd.DataFrame:
    rows = shared_values(contacts, "phone", guards, hash_value, hits)
    pairs = rows.merge(rows, on="key", suffixes=("_a", "_b"))
    pairs = pairs[pairs["lead_id_a"] < pairs["lead_id_b"]]
    pairs = pairs[Names(records).compatible(pairs["lead_id_a"], pairs["lead_id_b"])]
    return edges(pairs["lead_id_a"], pairs["lead_id_b"], "phone_name", 1.0,
                 '{"names": "compatible", "phone": "' + _hashed(pairs["key"], hash_value) + '"}')


def conflicting_pairs(pairs: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """For scored pairs (left, right): do their names contradict each other? Colleagues agree on
    company, address, domain and often surname, which a Fellegi-Sunter score adds up as if
    independent; a contradicting name vetoes the merge."""
    return pd.Series(Names(records).conflicts(pairs["left"], pairs["right"]), index=pairs.index, dtype=bool)


def external_id_edges(external: pd.DataFrame, mappings: Sequence[SourceMapping]) -> pd.DataFrame:
    """A record's `external_ids` naming a record of another lead mapping, by that mapping's lead id.
    An id is a non-empty string or an integer; anything else names no record. Read in an embedded
    DuckDB, one pass per mapping: a Python loop over 300k texts took 8 s."""
    if external.empty:
        return edges_from_rows([])
    table = pa.table({"lead_id": pa.array(external["lead_id"], pa.string(), from_pandas=True),
                      "ids": pa.array(external["ids"], pa.string(), from_pandas=True)})
    parts = []
    con = duckdb.connect()
    try:
        con.register("ext", table)
        by_system = {m.source_system: m for m in mappings}  # one lead mapping per system
        for m in by_system.values():
            if not m.lead_id:
                continue
            path = f"'$.' || {sql_literal(json.dumps(m.source_system))}"
            found = con.sql(f"SELECT lead_id, json_extract_string(ids, {path}) AS id FROM ext WHERE json_valid(ids) "
                            f"AND json_type(json_extract(ids, {path})) IN ('VARCHAR', 'BIGINT', 'UBIGINT') "
                            f"AND json_extract_string(ids, {path}) <> ''").to_df()
            found["other"] = [render_lead_id(m, x) for x in found["id"]]
            parts.append(edges(found["lead_id"], found["other"], "external_id", 1.0,
                               json.dumps({"system": m.source_system}, sort_keys=True)))
    finally:
        con.close()
    return pd.concat(parts, ignore_index=True) if parts else edges_from_rows([])


def source_merge_edges(merges: Sequence[SourceMerge]) -> pd.DataFrame:
    return edges([m.survivor for m in merges], [m.merged for m in merges], [m.rule for m in merges], 1.0,
                 ['{"decided_by": "' + m.decided_by + '"}' for m in merges])


def logged_edges(decisions: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Edges for decisions already in the log (CRM merges, manual merges): (left, right, event_id)."""
    return edges(decisions["left"], decisions["right"], rule, 1.0,
                 '{"event_id": "' + decisions["event_id"].astype(str) + '"}')
