"""Identity as events: every merge is a `lead_merged`, every reversal a `lead_unmerged`.

The log holds three kinds of decisions: merges made in a CRM (`lead_merged` from a source such as
`crm` or `cdc`), manual decisions (source `manual`, which override everything automated and so
survive every rerun), and the identity graph's own (source `identity`). Replaying the log up to a
time gives identity as it was then (`replay`).

Each run compares the merges the evidence supports now with the identity graph's merges still in
force, and writes the difference: new merges, and reversals of merges no longer supported.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

IDENTITY_SOURCE = "identity"
MANUAL_SOURCE = "manual"
PRODUCER = "crm_platform.identity"
SCHEMA_VERSION = "2026-01-1"

Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


@dataclass
class DecisionLog:
    crm_merges: dict[Pair, str] = field(default_factory=dict)  # pair -> the CRM's event id
    manual_merges: dict[Pair, str] = field(default_factory=dict)
    declared_different: dict[Pair, str] = field(default_factory=dict)  # manual unmerges in force
    active: dict[Pair, str] = field(default_factory=dict)  # identity merges in force -> their event id
    last_event: dict[Pair, str] = field(default_factory=dict)  # newest identity event per pair


def read_log(events: pd.DataFrame, until: datetime | None = None) -> DecisionLog:
    """Replay lead_merged / lead_unmerged events (oldest first), optionally up to `until`."""
    log = DecisionLog()
    if until is not None:
        events = events[events["occurred_at"] <= pd.Timestamp(until).tz_localize(None)]
    for ev in events.itertuples(index=False):
        if not (ev.lead_id and ev.merged_lead_id) or ev.lead_id == ev.merged_lead_id:
            continue
        p = pair(ev.lead_id, ev.merged_lead_id)
        merge = ev.event_type == "lead_merged"
        if ev.source == MANUAL_SOURCE:  # the latest manual word on a pair is the one that counts
            (log.manual_merges if merge else log.declared_different)[p] = ev.event_id
            (log.declared_different if merge else log.manual_merges).pop(p, None)
        elif ev.source == IDENTITY_SOURCE:
            log.last_event[p] = ev.event_id
            if merge:
                log.active[p] = ev.event_id
            elif log.active.get(p) == ev.reverses_event_id or ev.reverses_event_id is None:
                log.active.pop(p, None)
        elif merge:
            log.crm_merges[p] = ev.event_id
        else:  # a CRM reversing its own merge
            log.crm_merges.pop(p, None)
    return log


def _event_id(*parts: str) -> str:
    return "idn_" + hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:28]


def decide(accepted: pd.DataFrame, log: DecisionLog, now: datetime, rank: dict[str, tuple]) -> list[dict]:
    """Events for the difference between `accepted` (the automated edges the evidence supports now:
    left, right, rule, score, evidence) and the identity merges in force. `rank` orders records
    (earliest created first): the earlier record of a pair is the survivor, the event's lead_id."""
    occurred = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    wanted = {(a, b): (rule, score, evidence) for a, b, rule, score, evidence
              in accepted[["left", "right", "rule", "score", "evidence"]].itertuples(index=False, name=None)}
    out = []
    for p in sorted(set(wanted) - set(log.active)):
        rule, score, evidence = wanted[p]
        survivor, merged = sorted(p, key=lambda x: (rank.get(x, (pd.Timestamp.max, x)), x))
        out.append(_event("lead_merged", _event_id("merge", *p, rule, log.last_event.get(p, "")), occurred,
                          survivor, {"merged_lead_id": merged, "match_rule": rule, "match_score": round(float(score), 6),
                                     "evidence": json.loads(evidence), "decided_by": PRODUCER}))
    for p in sorted(set(log.active) - set(wanted)):
        reverses = log.active[p]
        reason = ("a person declared these records different" if p in log.declared_different
                  else "the evidence for this merge is gone or no longer accepted")
        survivor, merged = p
        out.append(_event("lead_unmerged", _event_id("unmerge", reverses), occurred, survivor,
                          {"merged_lead_id": merged, "reverses_event_id": reverses, "reason": reason,
                           "decided_by": PRODUCER}))
    return out


def _event(kind: str, event_id: str, occurred: str, lead_id: str, attributes: dict) -> dict:
    return {"event_type": kind, "schema_version": SCHEMA_VERSION, "event_id": event_id, "occurred_at": occurred,
            "source": IDENTITY_SOURCE, "producer_id": PRODUCER, "lead_id": lead_id, "attributes": attributes}
