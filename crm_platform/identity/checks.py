"""What the identity graph checks and shows about itself, as plain queries (defs/ wires them)."""
from __future__ import annotations

import json

import pyarrow as pa

from crm_platform.identity import inputs
from crm_platform.identity.decisions import read_log
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
    pairs = read_log(inputs.decision_events(wh).to_pandas()).declared_different_pairs()
    if not pairs:
        return 0
    im = wh.table_name(*MAP)
    canonical = dict(wh.fetchall(f"SELECT DISTINCT record_lead_id, lead_id FROM {im}"))
    return sum(1 for a, b in pairs if canonical.get(a, a) == canonical.get(b, b))


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
