"""Clusters of lead records and their canonical ids.

Connected components over the accepted edges (scipy.sparse.csgraph). A component that breaks a
constraint (two records a person declared different, or more records than the size guard allows)
is rebuilt greedily from its strongest edges: manual merges first, then by rule and score, an edge
skipped when it would join a declared-different pair or (automated edges) outgrow the guard.

The canonical id of a cluster is its earliest-created record's id (ties: the smallest id), so it
moves only when an earlier record joins the cluster, never when unrelated records arrive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from crm_platform.identity.rules import rule_rank


@dataclass
class Clustering:
    canonical: pd.Series  # lead record (index) -> canonical lead id
    accepted: pd.DataFrame  # edges kept
    rejected: pd.DataFrame  # edges refused, with `reason`
    oversized: list[dict]  # clusters the size guard cut: {canonical, records_linked, limit}


class _UnionFind:
    def __init__(self, members: list[int]):
        self.parent = {m: m for m in members}
        self.size = dict.fromkeys(members, 1)

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]


def cluster(nodes: pd.DataFrame, edges: pd.DataFrame, cannot_link: set[tuple[str, str]],
            max_size: int) -> Clustering:
    """`nodes`: lead_id, created (NaT when unknown); `edges`: left, right, rule, score, evidence
    (manual merges have rule `manual`); `cannot_link`: (left, right) pairs declared different."""
    ids = pd.Index(pd.concat([nodes["lead_id"], edges["left"], edges["right"]]).astype(object).unique()).sort_values()
    n = len(ids)
    edges = edges.reset_index(drop=True)
    a = ids.get_indexer(edges["left"]).astype(np.int64)
    b = ids.get_indexer(edges["right"]).astype(np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)

    keep = np.ones(len(edges), dtype=bool)
    reasons: dict[int, str] = {}
    oversized = []
    sizes = np.bincount(labels, minlength=n)
    pairs = sorted(cannot_link)
    where_x = ids.get_indexer([x for x, _ in pairs]) if pairs else np.array([], dtype=np.int64)
    where_y = ids.get_indexer([y for _, y in pairs]) if pairs else np.array([], dtype=np.int64)
    forbidden = [(int(x), int(y)) for x, y in zip(where_x, where_y) if x >= 0 and y >= 0]
    broken = {labels[x] for x, y in forbidden if labels[x] == labels[y]} | set(np.flatnonzero(sizes > max_size))
    if broken:
        edge_label = labels[a] if len(a) else np.array([], dtype=np.int64)
        for comp in sorted(broken):
            members = np.flatnonzero(labels == comp).tolist()
            rows = np.flatnonzero(edge_label == comp)
            rebuilt, cut_by_size = _rebuild(members, rows, edges, a, b, forbidden, max_size, reasons)
            for r in rows:
                keep[r] = r not in reasons
            labels[members] = [n + rebuilt[m] for m in members]  # apart from scipy's labels (< n)
            if cut_by_size:
                oversized.append({"first_record": ids[members[0]], "records_linked": len(members), "limit": max_size})
    known = nodes.drop_duplicates("lead_id").set_index("lead_id")["created"]
    created = known.reindex(ids).to_numpy(dtype="datetime64[us]")
    order = pd.DataFrame({"lead_id": ids.to_numpy(), "label": labels, "created": created})
    order = order.sort_values(["label", "created", "lead_id"], na_position="last", kind="stable")
    first = order.drop_duplicates("label").set_index("label")["lead_id"]
    canonical = pd.Series(first.reindex(labels).to_numpy(), index=ids, name="canonical")
    for o in oversized:
        o["canonical"] = canonical.loc[o.pop("first_record")]
    rejected = edges[~keep].assign(reason=[reasons[i] for i in np.flatnonzero(~keep)])
    return Clustering(canonical, edges[keep].reset_index(drop=True), rejected.reset_index(drop=True), oversized)


def _rebuild(members: list[int], rows: np.ndarray, edges: pd.DataFrame, a: np.ndarray, b: np.ndarray,
             forbidden: list[tuple[int, int]], max_size: int, reasons: dict[int, str]) -> tuple[dict[int, int], bool]:
    """Greedy union of a component's edges, strongest first, under the constraints."""
    uf = _UnionFind(members)
    member_set = set(members)
    apart = [(x, y) for x, y in forbidden if x in member_set]
    sub = edges.iloc[rows]
    manual = (sub["rule"] == "manual").to_numpy()
    order = sorted(range(len(rows)), key=lambda k: (not manual[k], rule_rank(sub["rule"].iat[k]), -sub["score"].iat[k],
                                                    sub["left"].iat[k], sub["right"].iat[k]))
    cut_by_size = False
    for k in order:
        r = int(rows[k])
        ra, rb = uf.find(int(a[r])), uf.find(int(b[r]))
        if ra == rb:
            continue
        if any({uf.find(x), uf.find(y)} == {ra, rb} for x, y in apart):
            reasons[r] = "declared_different"
            continue
        if not manual[k] and uf.size[ra] + uf.size[rb] > max_size:
            reasons[r] = "cluster_size_limit"
            cut_by_size = True
            continue
        uf.union(ra, rb)
    return {m: uf.find(m) for m in members}, cut_by_size
