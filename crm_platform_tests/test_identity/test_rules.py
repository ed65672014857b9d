"""Deterministic rules and guards, each on hand-built records."""
import json

from crm_platform.identity import rules
from crm_platform.identity.config import Guards
from crm_platform.identity.inputs import SourceMerge
from crm_platform.plan.loader import load_plan
from crm_platform.sources.mapping import load_mappings

from .builders import contacts, records


def h(value: str) -> str:
    return "hash:" + value


def _email(*rows, guards=None):
    guards = guards or Guards()
    recs = records(*rows)
    hits = rules.GuardHits()
    return rules.email_edges(contacts(recs, *rows), recs, guards, h, hits), hits


def test_equal_normalized_email_links_records_to_the_earliest():
    edges, _ = _email(
        {"lead_id": "b", "email": "Jane.Doe+x@gmail.com", "first_name": "Jane", "first_seen": "2026-01-02"},
        {"lead_id": "a", "email": "janedoe@googlemail.com", "first_name": "Jane", "first_seen": "2026-01-03"},
        {"lead_id": "c", "email": "JANEDOE@GMAIL.COM", "first_seen": "2026-01-04"},
        {"lead_id": "d", "email": "jane.roe@gmail.com", "first_seen": "2026-01-01"},
    )
    assert edges[["left", "right", "rule"]].values.tolist() == [["b", "a", "email"], ["b", "c", "email"]]
    assert json.loads(edges["evidence"][0]) == {"email": "hash:janedoe@gmail.com"}  # a keyed hash, never the address


def test_shared_mailbox_with_contradicting_names_does_not_link():
    edges, _ = _email(
        {"lead_id": "a", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schröder"},
        {"lead_id": "b", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schneider"},
        {"lead_id": "c", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schroeder"},
    )
    assert edges[["left", "right"]].values.tolist() == [["a", "c"]]  # one slip away (oe for ö) links, Schneider not
    edges, _ = _email(  # a later Schneider links to the earliest Schneider, not to the first record
        {"lead_id": "a", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schröder", "first_seen": "2026-01-01"},
        {"lead_id": "b", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schneider", "first_seen": "2026-01-02"},
        {"lead_id": "c", "email": "julia@redbridge.de", "first_name": "Julia", "last_name": "Schröder", "first_seen": "2026-01-03"},
        {"lead_id": "d", "email": "julia@redbridge.de", "first_name": "J", "last_name": "Schneider", "first_seen": "2026-01-04"},
    )
    assert sorted(edges[["left", "right"]].values.tolist()) == [["a", "c"], ["b", "d"]]


def test_names_conflict_allows_nicknames_initials_and_typos():
    def n(first, last):
        from crm_platform.identity import normalize as norm
        return (norm.name(first), norm.given_name(first), norm.name(last))
    assert not rules.names_conflict(n("Bill", "Smith"), n("William", "smith"))
    assert not rules.names_conflict(n("riick", "Obrien"), n("Richard", "O'Brien"))  # typo of a nickname
    assert not rules.names_conflict(n("J", "Smith"), n("John", "Smith"))
    assert not rules.names_conflict(n("Sneha", "Patwl"), n("Sneha", "Patel"))
    assert not rules.names_conflict(n(None, "Smith"), n("John", "Smith"))
    assert rules.names_conflict(n("Sarah", "Kim"), n("Sian", "Kim"))
    assert rules.names_conflict(n("Rahul", "Singh"), n("Lakshmi", "Singh"))


def test_blocked_and_too_common_values_link_nothing():
    rows = [{"lead_id": f"l{i}", "email": "info@acme.com", "phone": "+1 617 555 0100", "last_name": "Smith"}
            for i in range(6)]
    rows += [{"lead_id": "x1", "email": "test@test.com"}, {"lead_id": "x2", "email": "test@test.com"},
             {"lead_id": "y1", "email": "sales@acme.com"}, {"lead_id": "y2", "email": "sales@acme.com"}]
    guards = Guards(max_records_per_value=5, blocked_values=("sales@acme.com",))
    edges, hits = _email(*rows, guards=guards)
    assert edges.empty
    assert hits.too_common == [{"field": "email", "value_hash": "hash:info@acme.com", "records": 6}]
    assert hits.blocked == {"email": 2}  # the configured value; test@test.com is dropped by normalization


def test_phone_links_only_with_a_compatible_name():
    rows = [
        {"lead_id": "a", "phone": "(617) 432-4954", "country": "US", "first_name": "Bob", "last_name": "Miller"},
        {"lead_id": "b", "phone": "+1 617 432 4954", "first_name": "Robert", "last_name": "Miller"},
        {"lead_id": "c", "phone": "617.432.4954", "country": "United States", "first_name": "Ann", "last_name": "Miller"},
        {"lead_id": "d", "phone": "+16174324954", "last_name": None},
    ]
    recs = records(*rows)
    edges = rules.phone_edges(contacts(recs, *rows), recs, Guards(), h, rules.GuardHits())
    assert edges[["left", "right", "rule"]].values.tolist() == [["a", "b", "phone_name"]]


def test_external_ids_and_source_merges():
    maps = load_mappings(load_plan())
    import pandas as pd
    ext = pd.DataFrame({"lead_id": ["lead_1", "lead_7", "lead_2", "lead_3", "lead_4", "lead_5", "lead_6"],
                        "ids": ['{"hubspot": "42"}', '{"hubspot": 7}', "",  # ClickHouse's text for no key
                                '{"hubspot": ""}', '{"hubspot": {"id": 9}}', '"42"', '{"crm_x": "42"}']})
    edges = rules.edges_frame([rules.external_id_edges(ext, maps),
                               rules.source_merge_edges([SourceMerge("salesforce:A", "salesforce:B",
                                                                     "source_merge:salesforce", "salesforce")])])
    assert edges[["left", "right", "rule"]].values.tolist() == [
        ["hubspot:42", "lead_1", "external_id"], ["hubspot:7", "lead_7", "external_id"], ["salesforce:A", "salesforce:B", "source_merge:salesforce"]]


def test_strongest_rule_names_a_pair_found_twice():
    edges = rules.edges_frame(rules.edges_from_rows([("b", "a", "probabilistic", 0.995, {}), ("a", "b", "email", 1.0, {}),
                                                     ("a", "a", "email", 1.0, {})]))
    assert edges[["left", "right", "rule"]].values.tolist() == [["a", "b", "email"]]
