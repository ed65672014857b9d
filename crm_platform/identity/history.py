"""Identity as it was at any past time, rebuilt from the decision log alone (CRM merges, manual
decisions and the identity graph's own `lead_merged` / `lead_unmerged` events)."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from crm_platform.identity import inputs
from crm_platform.identity.clusters import cluster
from crm_platform.identity.decisions import read_log
from crm_platform.identity.rules import edges_frame, logged_edges
from crm_platform.warehouse import Warehouse

UNBOUNDED = 1 << 62  # the size guard was applied when the decisions were made


def identity_as_of(wh: Warehouse, when: datetime) -> dict[str, str]:
    """lead record -> canonical lead id, for the records merged with another as of `when` (a record
    absent from the result was its own lead then)."""
    log = read_log(inputs.decision_events(wh).to_pandas(), until=when)
    edges = edges_frame([logged_edges(log.manual_merges, "manual"), logged_edges(log.crm_merges, "crm_merge"),
                         logged_edges(log.active, "logged")])
    ev = wh.table_name("core", "events")
    moment = pd.Timestamp(when).tz_convert(None) if pd.Timestamp(when).tzinfo else pd.Timestamp(when)
    created = wh.fetch_arrow(f"SELECT lead_id, min(occurred_at) AS created FROM {ev} WHERE event_type IN {inputs.LEAD_EVENTS} "
                             f"AND lead_id IS NOT NULL AND occurred_at <= ? GROUP BY lead_id", [moment.to_pydatetime()])
    nodes = inputs.naive_utc(created).to_pandas()
    nodes = nodes[nodes["lead_id"].isin(set(edges["left"]) | set(edges["right"]))] if len(edges) else nodes.iloc[:0]
    result = cluster(nodes, edges, log.declared_different_pairs(), UNBOUNDED)
    return result.canonical.to_dict()
