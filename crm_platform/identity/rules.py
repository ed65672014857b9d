"""Deterministic edges: pairs of lead records the evidence says are one person, by rule.

- `email`: equal normalized e-mail, names not contradicting each other.
- `phone_name`: equal E.164 phone and compatible names (an office number alone proves nothing).
- `external_id`: a record names another system's record as itself (`external_ids` of lead_created).
- `source_merge:<system>` / `crm_merge`: a merge made in the source CRM.

A value shared by more records than the guard allows is a placeholder (`info@`, a switchboard) and
links nothing; `guard_hits` says which, by keyed hash. Edges are (left, right) with left < right.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from crm_platform.identity import normalize as norm
from crm_platform.identity.config import Guards
from crm_platform.identity.inputs import SourceMerge, render_lead_id
from crm_platform.sources.mapping import SourceMapping

EDGE_COLUMNS = ["left", "right", "rule", "score", "evidence"]
# When two rules give the same pair, the first of these names it.
RULE_ORDER = ("manual", "source_merge", "crm_merge", "external_id", "email", "phone_name", "probabilistic")


def rule_rank(rule: str) -> int:
    base = rule.split(":", 1)[0]
    return RULE_ORDER.index(base) if base in RULE_ORDER else len(RULE_ORDER)


@dataclass
class GuardHits:
    """Values that did not count as evidence, by keyed hash (never the value)."""
    blocked: dict[str, int] = field(default_factory=dict)  # field -> records that carried a blocked value
    too_common: list[dict] = field(default_factory=list)  # {field, value_hash, records}


def edges_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """Edges from (a, b, rule, score, evidence dict) rows: ordered pairs, self-pairs dropped, the
    strongest rule per pair kept."""
    df = pd.DataFrame([(min(a, b), max(a, b), r, float(s), json.dumps(e, sort_keys=True))
                       for a, b, r, s, e in rows if a and b and a != b], columns=EDGE_COLUMNS)
    return strongest_per_pair(df)


def strongest_per_pair(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    ranked = df.assign(_rank=df["rule"].map(rule_rank))
    ranked = ranked.sort_values(["left", "right", "_rank", "score", "rule"], ascending=[True, True, True, False, True],
                                kind="stable")
    return ranked.drop_duplicates(["left", "right"]).drop(columns="_rank").reset_index(drop=True)


def shared_values(contacts: pd.DataFrame, field_name: str, guards: Guards, hash_value: Callable[[str], str],
                  hits: GuardHits) -> pd.DataFrame:
    """(key, lead_id, first_seen) for the values of `field_name` that 2 to `max_records_per_value`
    records share (`contacts` has lead_id, field, key, first_seen); blocked and too common values are left out and counted in `hits`."""
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


def email_edges(contacts: pd.DataFrame, records: pd.DataFrame, guards: Guards, hash_value: Callable[[str], str],
                hits: GuardHits) -> list[tuple]:
    """Records sharing a normalized e-mail whose names do not contradict each other (colleagues
    share `j.smith@` and families share a mailbox): each record is linked to the earliest record
    of its group it agrees with, n-1 edges at most per group."""
    rows = shared_values(contacts, "email", guards, hash_value, hits)
    names = _names(records)
    first = rows.groupby("key", sort=False)["lead_id"].transform("first")
    later = rows[rows["lead_id"] != first].assign(first=first)
    agrees = [not names_conflict(names.get(x, _NO_NAME), names.get(f, _NO_NAME))
              for x, f in zip(later["lead_id"], later["first"])]
    out = [(f, x, "email", 1.0, {"email": hash_value(k)})
           for f, x, k, ok in zip(later["first"], later["lead_id"], later["key"], agrees) if ok]
    # The few records that disagree with their group's first: the earliest record they agree with.
    disagreeing = set(later["key"][~np.array(agrees, dtype=bool)])
    for key, leads in rows[rows["key"].isin(disagreeing)].groupby("key")["lead_id"]:
        group = list(leads)
        for i, x in enumerate(group[1:], start=1):
            if not names_conflict(names.get(x, _NO_NAME), names.get(group[0], _NO_NAME)):
                continue
            match = next((y for y in group[1:i] if not names_conflict(names.get(x, _NO_NAME), names.get(y, _NO_NAME))), None)
            if match is not None:
                out.append((match, x, "email", 1.0, {"email": hash_value(key)}))
    return out


_NO_NAME = (None, None, None)


def _names(records: pd.DataFrame) -> dict[str, tuple]:
    return dict(zip(records["lead_id"], zip(records["first_name"], records["given_name"], records["last_name"])))


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


def names_compatible(a: tuple, b: tuple) -> bool:
    """Both records give a family name, it agrees, and the given names do not disagree."""
    return bool(a[2] and b[2]) and not names_conflict(a, b)


def conflicting_pairs(pairs: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """For scored pairs (left, right): do their names contradict each other? Colleagues agree on
    company, address, domain and often surname, which a Fellegi-Sunter score adds up as if
    independent; a contradicting name vetoes the merge."""
    names = _names(records)
    return pd.Series([names_conflict(names.get(a, _NO_NAME), names.get(b, _NO_NAME))
                      for a, b in zip(pairs["left"], pairs["right"])], index=pairs.index, dtype=bool)


def phone_edges(contacts: pd.DataFrame, records: pd.DataFrame, guards: Guards, hash_value: Callable[[str], str],
                hits: GuardHits) -> list[tuple]:
    rows = shared_values(contacts, "phone", guards, hash_value, hits)
    pairs = rows.merge(rows, on="key", suffixes=("_a", "_b"))
    pairs = pairs[pairs["lead_id_a"] < pairs["lead_id_b"]]
    names = _names(records)
    return [(a, b, "phone_name", 1.0, {"phone": hash_value(k), "names": "compatible"})
            for a, b, k in zip(pairs["lead_id_a"], pairs["lead_id_b"], pairs["key"])
            if names_compatible(names.get(a, _NO_NAME), names.get(b, _NO_NAME))]


def external_id_edges(external: pd.DataFrame, mappings: Sequence[SourceMapping]) -> list[tuple]:
    """A record's `external_ids` naming a record of another lead mapping, by that mapping's lead id."""
    by_system = {m.source_system: m for m in mappings}
    out = []
    for lead_id, text in zip(external["lead_id"], external["ids"]):
        for system, value in (json.loads(text) if text else {}).items():
            m = by_system.get(system)
            if m is None or not isinstance(value, (str, int)) or value == "":
                continue
            other = render_lead_id(m, str(value))
            out.append((lead_id, other, "external_id", 1.0, {"system": system}))
    return out


def source_merge_edges(merges: Sequence[SourceMerge]) -> list[tuple]:
    return [(m.survivor, m.merged, m.rule, 1.0, {"decided_by": m.decided_by}) for m in merges]
