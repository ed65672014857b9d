"""One identity run: records -> edges (rules, CRM merges, Splink, manual) -> clusters -> identity map
and the decisions to log.

Incremental by default: records are read and normalized again only where their lead events changed
(`normal_form`); deterministic rules are hash groupings over all records (linear), while the
pairwise work, Splink's scoring, covers only pairs with a new or changed record; pairs of unchanged
records keep their earlier scores, which are exactly what a rescoring would give (the model and its
term frequencies are frozen). `full=True` rescores everything and gives the same result.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa

from crm_platform.identity import inputs, probabilistic, rules, store
from crm_platform.identity.clusters import cluster
from crm_platform.identity.config import IdentityConfig
from crm_platform.identity.decisions import DecisionLog, decide, read_log
from crm_platform.identity.identity_map import identity_map as build_identity_map
from crm_platform.identity.normal_form import normal_form
from crm_platform.identity.probabilistic import MatchModel
from crm_platform.identity.records import arrow_strings, fingerprints, is_in
from crm_platform.plan import TrackingPlan, load_plan
from crm_platform.sources.mapping import SourceMapping
from crm_platform.warehouse import Warehouse

# Rules whose edges are already events in the log (CRM merge events, manual decisions).
LOGGED_RULES = ("manual", "crm_merge")


@dataclass
class Resolution:
    identity_map: pd.DataFrame
    edges: pd.DataFrame  # accepted and refused
    decisions: list[dict]
    records: pd.DataFrame  # lead_id, fingerprint, first_seen
    pairs: pd.DataFrame  # scored candidate pairs kept for the next run
    model: MatchModel | None
    trained: bool
    mode: str  # full | incremental | rules_only; unchanged (run.py: the last graph kept, edges, records and pairs not read)
    compared: int  # records whose pairs were scored this run
    summary: dict


def resolve(wh: Warehouse, mappings: Sequence[SourceMapping], config: IdentityConfig,
            hash_value: Callable[[str], str], now: datetime, full: bool = False,
            plan: TrackingPlan | None = None) -> Resolution:
    clock = _Stopwatch()
    plan = plan or load_plan()
    no_person = inputs.no_person_types(plan)
    form = normal_form(wh, full)
    recs = form.records.copy()
    contacts = form.contacts.merge(recs[["lead_id", "first_seen"]], on="lead_id", how="left")
    lead_maps = inputs.lead_mappings(mappings)
    sources, merges = inputs.source_records(wh, lead_maps)
    event_ids = inputs.event_lead_ids(wh, no_person).column("lead_id").combine_chunks()
    log = read_log(inputs.decision_events(wh).to_pandas())
    clock.lap("read_and_normalize")

    hits = rules.GuardHits()
    g = config.guards
    found = [rules.email_edges(contacts, recs, g, hash_value, hits),
             rules.phone_edges(contacts, recs, g, hash_value, hits),
             rules.external_id_edges(inputs.external_ids(wh).to_pandas(), lead_maps),
             rules.source_merge_edges(merges),
             rules.logged_edges(log.crm_merges, "crm_merge"),
             rules.logged_edges(log.manual_merges, "manual")]
    recs["fingerprint"] = fingerprints(recs)
    clock.lap("deterministic_rules")

    model, trained, mode, pairs, compared = _probabilistic(wh, recs, config, full)
    above = pairs[pairs["match_probability"] >= config.probabilistic.threshold]
    vetoed = rules.conflicting_pairs(above, recs)
    found.append(_probabilistic_edges(above[~vetoed]))
    edges = rules.edges_frame(found)
    del found  # the parts, copied into `edges`: a GiB at a million leads
    clock.lap("probabilistic")

    node_ids = pd.Index(pd.concat([recs["lead_id"], sources.column("lead_id").to_pandas(),
                                   arrow_strings(event_ids)]).astype("str").unique())
    first_seen = recs.set_index("lead_id")["first_seen"]
    nodes = pd.DataFrame({"lead_id": node_ids.array, "created": first_seen.reindex(node_ids).to_numpy()})
    clustering = cluster(nodes, edges, log.declared_different_pairs(), g.max_cluster_size)
    clock.lap("clusters")

    automated = clustering.accepted[~clustering.accepted["rule"].isin(LOGGED_RULES)]
    decisions = decide(automated, log, first_seen)
    identity_map = build_identity_map(event_ids, sources, clustering.canonical, clustering.accepted, now)
    refused = _probabilistic_edges(above[vetoed])  # Splink's pairs are ordered already
    all_edges = pd.concat([clustering.accepted.assign(accepted=True, reason=None),
                           clustering.rejected.assign(accepted=False),
                           refused.assign(accepted=False, reason="names_conflict")], ignore_index=True)
    clock.lap("decisions_and_map")
    summary = {**_summary(recs, identity_map, all_edges, clustering, hits, log, decisions),
               "records_normalized": form.normalized, "seconds": clock.laps}
    state = recs[["lead_id", "fingerprint", "first_seen"]].assign(model_version=model.version if model else None)
    return Resolution(identity_map, all_edges, decisions, state, pairs, model, trained, mode, compared, summary)


def _probabilistic_edges(pairs: pd.DataFrame) -> pd.DataFrame:
    """Scored pairs as edges; the evidence is each comparison's match weight."""
    weight = pairs["match_weight"].astype(float).round(4).astype(str)
    return rules.edges(pairs["left"], pairs["right"], "probabilistic", pairs["match_probability"].astype(float),
                       '{"levels": ' + pairs["levels"].astype(str) + ', "match_weight": ' + weight + "}")


class _Stopwatch:
    """Seconds per stage, for the run's metadata and the benchmarks."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now


def _probabilistic(wh: Warehouse, recs: pd.DataFrame, config: IdentityConfig, full: bool):
    """The model (trained when there is none and enough records, or the records have outgrown it)
    and the scored pairs: earlier scores of unchanged pairs plus new scores for changed records."""
    p = config.probabilistic
    empty = pd.DataFrame(columns=["left", "right", "match_probability", "match_weight", "levels", "model_version"])
    if not p.enabled:
        return None, False, "rules_only", empty, 0
    model = store.latest_model(wh)
    trained = False
    if (model is None and len(recs) >= p.min_training_records) or (
            model is not None and len(recs) >= model.trained_records * p.retrain_growth):
        model, trained = probabilistic.train(recs, p.seed), True
    if model is None:
        return None, False, "rules_only", empty, 0
    before = store.read(wh, "records")
    if full or trained or before.empty or (before["model_version"] != model.version).any():
        pairs = probabilistic.score(model, recs, p.keep_scores_from)
        return model, trained, "full", pairs.assign(model_version=model.version), len(recs)
    old_pairs = store.read(wh, "match_pairs", order_by=("left_lead_id", "right_lead_id")).rename(
        columns={"left_lead_id": "left", "right_lead_id": "right"})
    ids, prints = recs["lead_id"].to_numpy(dtype=object), recs["fingerprint"].to_numpy(dtype=object)
    was = before.set_index("lead_id")["fingerprint"].reindex(ids).to_numpy(dtype=object)
    changed = set(ids[was != prints])  # new records too (no earlier fingerprint)
    unchanged = pa.array(ids[was == prints], pa.string())
    keep = old_pairs[is_in(old_pairs["left"], unchanged) & is_in(old_pairs["right"], unchanged)]
    pairs = keep.drop(columns="model_version").reset_index(drop=True)  # sorted as read, each pair once
    if changed:
        new = probabilistic.score(model, recs, p.keep_scores_from, changed=changed)
        pairs = pd.concat([pairs, new], ignore_index=True)
        pairs = pairs.sort_values(["left", "right"]).drop_duplicates(["left", "right"]).reset_index(drop=True)
    return model, trained, "incremental", pairs.assign(model_version=model.version), len(changed)


def _summary(recs, identity_map, edges, clustering, hits, log: DecisionLog, decisions) -> dict:
    sizes = Counter(clustering.canonical.value_counts().to_numpy().tolist())
    buckets = {"1": 0, "2": 0, "3-4": 0, "5-9": 0, "10+": 0}
    for size, n in sizes.items():
        key = "1" if size == 1 else "2" if size == 2 else "3-4" if size < 5 else "5-9" if size < 10 else "10+"
        buckets[key] += n
    acc = edges[edges["accepted"]]
    return {
        "lead_records": len(recs),
        "source_records": len(identity_map),
        "canonical_leads": int(identity_map["lead_id"].nunique()),
        "clusters_by_size": buckets,
        "largest_cluster": max(sizes) if sizes else 0,
        "edges_by_rule": dict(sorted(Counter(acc["rule"]).items())),
        "edges_refused": dict(sorted(Counter(edges.loc[~edges["accepted"], "reason"]).items())),
        "guard_blocked_values": hits.blocked,
        "guard_too_common_values": hits.too_common[:20],
        "oversized_clusters": clustering.oversized[:20],
        "manual_merges": len(log.manual_merges),
        "manual_unmerges": len(log.declared_different),
        "decisions": {k: int(v) for k, v in decisions["event_type"].value_counts().sort_index().items()},
    }
