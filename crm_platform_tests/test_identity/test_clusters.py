"""Clusters, canonical ids and the constraints on them."""
import pandas as pd

from crm_platform.identity.clusters import cluster
from crm_platform.identity.rules import edges_from_rows as edges_frame


def nodes(**created):
    return pd.DataFrame({"lead_id": list(created), "created": pd.to_datetime(list(created.values()))})


def test_canonical_is_the_earliest_created_member_then_the_smallest_id():
    n = nodes(a="2026-01-03", b="2026-01-01", c="2026-01-01", d="2026-01-05")
    e = edges_frame([("a", "b", "email", 1, {}), ("a", "c", "email", 1, {})])
    c = cluster(n, e, set(), 50).canonical.to_dict()
    assert c == {"a": "b", "b": "b", "c": "b", "d": "d"}


def test_canonical_ids_do_not_move_when_unrelated_records_arrive():
    n = nodes(a="2026-01-03", b="2026-01-01")
    e = edges_frame([("a", "b", "email", 1, {})])
    before = cluster(n, e, set(), 50).canonical.to_dict()
    n2 = pd.concat([n, nodes(aa="2025-12-01", z="2025-01-01", y="2025-01-02")])
    e2 = edges_frame([("a", "b", "email", 1, {}), ("y", "z", "email", 1, {})])
    after = cluster(n2, e2, set(), 50).canonical.to_dict()
    assert {k: after[k] for k in before} == before
    assert after["y"] == "z" and after["aa"] == "aa"


def test_records_without_a_creation_time_never_win():
    n = nodes(b="2026-01-02")
    e = edges_frame([("a", "b", "source_merge:hubspot", 1, {})])
    assert cluster(n, e, set(), 50).canonical["a"] == "b"


def test_declared_different_pair_is_kept_apart_by_dropping_the_weakest_link():
    n = nodes(a="2026-01-01", b="2026-01-02", c="2026-01-03")
    e = edges_frame([("a", "b", "email", 1, {}), ("b", "c", "probabilistic", 0.995, {})])
    res = cluster(n, e, {("a", "c")}, 50)
    assert res.canonical.to_dict() == {"a": "a", "b": "a", "c": "c"}
    assert res.rejected[["left", "right", "reason"]].values.tolist() == [["b", "c", "declared_different"]]


def test_size_guard_cuts_automated_chains_but_not_manual_merges():
    ids = [f"l{i:02d}" for i in range(10)]
    n = nodes(**{x: f"2026-01-{i + 1:02d}" for i, x in enumerate(ids)})
    chain = [(ids[i], ids[i + 1], "probabilistic", 0.99, {}) for i in range(9)]
    res = cluster(n, edges_frame(chain), set(), 4)
    sizes = res.canonical.value_counts()
    assert sizes.max() <= 4 and sizes.sum() == 10
    assert set(res.rejected["reason"]) == {"cluster_size_limit"}
    assert res.oversized == [{"records_linked": 10, "limit": 4, "canonical": "l00"}]
    manual = [(ids[i], ids[i + 1], "manual", 1.0, {}) for i in range(9)]
    assert set(cluster(n, edges_frame(manual), set(), 4).canonical) == {"l00"}
