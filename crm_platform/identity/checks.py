"""What the identity graph checks and shows about itself, as plain queries (defs/ wires them)."""
from __future__ import annotations

import json

import pyarrow as pa

from crm_platform.identity import inputs
from crm_platform.identity.decisions import MANUAL_SOURCE, read_log
from crm_platform.ingest.checks import CheckResult
from crm_platform.warehouse import Warehouse

MAP = ("identity", "lead_identity_map")


def stale_canonical_ids(wh: Warehouse) -> int:
    """Events whose canonical_lead_id is not their record's canonical id in the identity map."""
    ev, im = wh.table_name("core", "events"), wh.table_name(*MAP)
    return wh.fetchall(
        f"SELECT count(*) FROM {ev} AS e JOIN (SELECT DISTINCT record_lead_id, lead_id FROM {im}) AS m "
        f"ON m.record_lead_id = e.lead_id WHERE e.canonical_lead_id IS DISTINCT FROM m.lead_id")[0][0]


def declared_different_together(wh: Warehouse) -> int:
    """Pairs a person declared different (manual lead_unmerged) that share a canonical id."""
    # Manual decisions alone settle what is declared different; the pairs are few, the map is not.
    different = read_log(inputs.decision_events(wh, source=MANUAL_SOURCE).to_pandas()).declared_different
    if different.empty:
        return 0
    im = wh.table_name(*MAP)
    pairs = pa.table({"a": different["left"].astype(str).tolist(), "b": different["right"].astype(str).tolist()})
    return wh.fetch_arrow(
        f"SELECT count(*) AS n FROM p LEFT JOIN (SELECT DISTINCT record_lead_id, lead_id FROM {im}) AS ma "
        f"ON ma.record_lead_id = p.a LEFT JOIN (SELECT DISTINCT record_lead_id, lead_id FROM {im}) AS mb "
        f"ON mb.record_lead_id = p.b WHERE coalesce(ma.lead_id, p.a) = coalesce(mb.lead_id, p.b)",
        tables={"p": pairs}).column("n")[0].as_py()


def evaluate(wh: Warehouse, summary: dict) -> list[CheckResult]:
    stale = stale_canonical_ids(wh)
    together = declared_different_together(wh)
    oversized = summary.get("oversized_clusters", [])
    too_common = summary.get("guard_too_common_values", [])
    return [
        CheckResult(MAP, "canonical_ids_current", stale == 0, "ERROR",
                    f"{stale} events carry a canonical_lead_id other than their record's" if stale
                    else "every event's canonical_lead_id is its record's canonical id", {"stale_events": stale}),
        CheckResult(MAP, "declared_different_apart", together == 0, "ERROR",
                    f"{together} manually unmerged pairs share a canonical id" if together
                    else "no manually unmerged pair shares a canonical id", {"pairs_together": together}),
        CheckResult(MAP, "cluster_size_guard", not oversized and not too_common, "WARN",
                    (f"{len(oversized)} clusters were cut at the size limit; {len(too_common)} values were too common "
                     "to count as evidence") if oversized or too_common else "no cluster or value hit a guard",
                    {"oversized_clusters": json.dumps(oversized), "too_common_values": json.dumps(too_common)}),
    ]


def cluster_sizes_table(summary: dict) -> pa.Table:
    sizes = summary["clusters_by_size"]
    return pa.table({"records_in_cluster": list(sizes), "clusters": list(sizes.values())})


def edges_by_rule_table(summary: dict) -> pa.Table:
    rules = summary["edges_by_rule"]
    return pa.table({"rule": list(rules), "edges": list(rules.values())})
