"""Identity as events: every merge is a `lead_merged`, every reversal a `lead_unmerged`.

The log holds three kinds of decisions: merges made in a CRM (`lead_merged` from a source such as
`crm` or `cdc`), manual decisions (source `manual`, which override everything automated and so
survive every rerun), and the identity graph's own (source `identity`). Replaying the log up to a
time gives identity as it was then (`history.identity_as_of`).

Each run compares the merges the evidence supports now with the identity graph's merges still in
force, and logs the difference: new merges, and reversals of merges no longer supported. All of it
is columnar (a night can decide millions of merges on a first run).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.identity.records import arrow_strings

IDENTITY_SOURCE = "identity"
MANUAL_SOURCE = "manual"
PRODUCER = "crm_platform.identity"
SCHEMA_VERSION = "2026-01-1"
PAIR = ["left", "right"]
DECISION_COLUMNS = ["event_type", "event_id", "lead_id", "merged_lead_id", "match_rule", "match_score", "evidence",
                    "reverses_event_id", "reason"]


def ordered_pairs(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """(left, right) with left < right, row by row, in Arrow (millions of pairs: no Python string
    per id)."""
    a, b = (pa.array(x, pa.string(), from_pandas=True) for x in (a, b))
    return pd.DataFrame({"left": arrow_strings(pc.min_element_wise(a, b)),
                         "right": arrow_strings(pc.max_element_wise(a, b))})


@dataclass
class DecisionLog:
    """The decisions in force, each a frame of (left, right, event_id)."""
    crm_merges: pd.DataFrame
    manual_merges: pd.DataFrame
    declared_different: pd.DataFrame  # manual unmerges in force
    active: pd.DataFrame  # the identity graph's merges in force
    last_event: pd.DataFrame  # the newest identity event per pair (merge or reversal)

    def declared_different_pairs(self) -> set[tuple[str, str]]:
        return set(zip(self.declared_different["left"], self.declared_different["right"]))


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"left": pd.Series(dtype=object), "right": pd.Series(dtype=object),
                         "event_id": pd.Series(dtype=object)})


def read_log(events: pd.DataFrame, until: datetime | None = None) -> DecisionLog:
    """The decisions in force after replaying lead_merged / lead_unmerged events (oldest first,
    `inputs.decision_events`), optionally up to `until`: per pair and kind of decider, the latest
    event counts."""
    if until is not None:
        moment = pd.Timestamp(until)
        events = events[events["occurred_at"] <= (moment.tz_convert(None) if moment.tzinfo else moment)]
    events = events[events["lead_id"].notna() & events["merged_lead_id"].notna()
                    & (events["lead_id"] != events["merged_lead_id"])]
    if events.empty:
        return DecisionLog(_empty(), _empty(), _empty(), _empty(), _empty())
    ev = pd.concat([ordered_pairs(events["lead_id"], events["merged_lead_id"]),
                    events[["event_id", "event_type", "source"]].reset_index(drop=True)], axis=1)
    ev["merge"] = ev["event_type"] == "lead_merged"
    ev["decider"] = np.where(ev["source"] == MANUAL_SOURCE, "manual",
                             np.where(ev["source"] == IDENTITY_SOURCE, "identity", "crm"))
    latest = ev.drop_duplicates(["decider", *PAIR], keep="last")  # events come oldest first

    def pick(decider: str, merge: bool) -> pd.DataFrame:
        rows = latest[(latest["decider"] == decider) & (latest["merge"] == merge)]
        return rows[[*PAIR, "event_id"]].sort_values(PAIR).reset_index(drop=True)

    identity = latest[latest["decider"] == "identity"][[*PAIR, "event_id"]].sort_values(PAIR).reset_index(drop=True)
    return DecisionLog(pick("crm", True), pick("manual", True), pick("manual", False), pick("identity", True), identity)


def _event_ids(kind: str, *parts: pd.Series) -> list[str]:
    return ["idn_" + hashlib.sha256("|".join((kind, *p)).encode("utf-8")).hexdigest()[:28]
            for p in zip(*(x.astype(str) for x in parts))]


def decide(accepted: pd.DataFrame, log: DecisionLog, rank: pd.Series) -> pd.DataFrame:
    """The decisions (DECISION_COLUMNS) for the difference between `accepted` (the automated edges
    the evidence supports now: left, right, rule, score, evidence) and the identity merges in force.
    `rank` (record -> creation time) makes the earlier record of a pair the survivor, the event's
    lead_id (ties and unknown times: the smaller id)."""
    merges = accepted.merge(log.active[PAIR], on=PAIR, how="left", indicator=True)
    merges = merges[merges["_merge"] == "left_only"].drop(columns="_merge")
    merges = merges.merge(log.last_event.rename(columns={"event_id": "previous"}), on=PAIR, how="left")
    created_l = rank.reindex(merges["left"].to_numpy()).to_numpy(dtype="datetime64[us]")
    created_r = rank.reindex(merges["right"].to_numpy()).to_numpy(dtype="datetime64[us]")
    right_first = (created_r < created_l) | (np.isnat(created_l) & ~np.isnat(created_r))
    new = pd.DataFrame({
        "event_type": "lead_merged",
        "event_id": _event_ids("merge", merges["left"], merges["right"], merges["rule"], merges["previous"].fillna("")),
        "lead_id": np.where(right_first, merges["right"], merges["left"]),
        "merged_lead_id": np.where(right_first, merges["left"], merges["right"]),
        "match_rule": merges["rule"].to_numpy(), "match_score": merges["score"].astype(float).round(6).to_numpy(),
        "evidence": merges["evidence"].to_numpy(), "reverses_event_id": None, "reason": None})
    gone = log.active.merge(accepted[PAIR], on=PAIR, how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"].drop(columns="_merge")
    declared = gone.merge(log.declared_different[PAIR].assign(declared=True), on=PAIR, how="left")["declared"]
    reversals = pd.DataFrame({
        "event_type": "lead_unmerged", "event_id": _event_ids("unmerge", gone["event_id"]),
        "lead_id": gone["left"].to_numpy(), "merged_lead_id": gone["right"].to_numpy(), "match_rule": None,
        "match_score": np.nan, "evidence": None, "reverses_event_id": gone["event_id"].to_numpy(),
        "reason": np.where(declared.fillna(False).astype(bool), "a person declared these records different",
                           "the evidence for this merge is gone or no longer accepted")})
    out = pd.concat([new, reversals], ignore_index=True) if len(reversals) else new
    return out[DECISION_COLUMNS].sort_values(["event_type", "lead_id", "merged_lead_id"]).reset_index(drop=True)
