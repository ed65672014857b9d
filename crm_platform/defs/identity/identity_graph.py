"""identity.lead_identity_map and identity.edges: who is who, and why."""

import dagster as dg
import pandas as pd

from crm_platform.defs.conventions import (
    ENGINE,
    check_result,
    layer_policies,
    markdown_table,
    plan_owners,
    retry_transient,
    table_metadata,
    warehouse_pool,
)
from crm_platform.defs.ingest.events import EVENTS
from crm_platform.defs.resources import WarehouseResource
from crm_platform.identity import checks
from crm_platform.identity.config import IdentityConfig
from crm_platform.identity.evaluation import pairwise_scores
from crm_platform.identity.run import run_identity
from crm_platform.plan.loader import load_plan

IDENTITY_MAP = dg.AssetKey(["identity", "lead_identity_map"])
EDGES = dg.AssetKey(["identity", "edges"])


class IdentityRunConfig(dg.Config):
    full_rebuild: bool = False  # rescore every candidate pair (the result is the same as incremental)
    match_threshold: float | None = None  # overrides probabilistic.threshold of identity.yaml
    # A known-clusters CSV (source_system, source_id, person_id) to report precision/recall/F1 against;
    # for evaluation runs (the generator's truth/identity.csv), never read by the pipeline otherwise.
    evaluate_against: str | None = None


def _specs() -> list[dg.AssetSpec]:
    common = {**layer_policies("identity"), "group_name": "identity", "owners": plan_owners("lead_merged", "lead_unmerged"), "kinds": {ENGINE}, "deps": [EVENTS]}
    return [
        dg.AssetSpec(IDENTITY_MAP, description=(
            "Every source record (events lead ids, HubSpot contacts, Salesforce leads, CDC rows) -> its canonical "
            "lead id, the earliest-created record of its cluster, with the rule and score that placed it. Fills "
            "core.events.canonical_lead_id. Every decision is a lead_merged / lead_unmerged event."), **common),
        dg.AssetSpec(EDGES, description=(
            "The edges of the identity graph: deterministic rules (e-mail, phone with name, external ids, CRM "
            "merges), Splink scores above the threshold, manual merges; refused edges with the reason."), **common),
    ]


def _checks() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("canonical_ids_current", asset=IDENTITY_MAP, blocking=True,
                          description="Every event's canonical_lead_id is its record's canonical id."),
        dg.AssetCheckSpec("declared_different_apart", asset=IDENTITY_MAP, blocking=True,
                          description="No pair a person unmerged (manual lead_unmerged) shares a canonical id."),
        dg.AssetCheckSpec("cluster_size_guard", asset=IDENTITY_MAP,
                          description="WARN when a cluster was cut at the size limit or a value was too common to link."),
    ]


@dg.multi_asset(specs=_specs(), check_specs=_checks(), pool=warehouse_pool("identity_graph"), can_subset=False,
                description="Resolve lead identity: normalize, link by rules and Splink, cluster, log decisions.")
@retry_transient
def identity_graph(context: dg.AssetExecutionContext, config: IdentityRunConfig, warehouse: WarehouseResource):
    settings = warehouse.settings()
    identity_config = IdentityConfig.load()
    if config.match_threshold is not None:
        identity_config = identity_config.with_threshold(config.match_threshold)
    with warehouse.open() as wh:
        run = run_identity(wh, settings.landing_dir, load_plan(), settings.pii_key(), identity_config,
                           full=config.full_rebuild)
        res, summary = run.resolution, run.resolution.summary
        context.log.info(f"identity: {summary['lead_records']} records -> {summary['canonical_leads']} leads "
                         f"({res.mode}, {res.compared} records compared), {len(res.decisions)} decisions")
        quality = {}
        if config.evaluate_against:
            scores = pairwise_scores(res.identity_map, pd.read_csv(config.evaluate_against, dtype=str)).as_dict()
            quality = {"pairwise_precision": scores["precision"], "pairwise_recall": scores["recall"],
                       "pairwise_f1": scores["f1"], "evaluated_records": scores["records"]}
        yield dg.MaterializeResult(asset_key=IDENTITY_MAP, metadata={
            **table_metadata(wh, "identity", "lead_identity_map", order_by="source_system, source_id"),
            **quality,
            "mode": res.mode,
            "records_compared": res.compared,
            "records_normalized": summary["records_normalized"],
            "canonical_leads": summary["canonical_leads"],
            "largest_cluster": summary["largest_cluster"],
            "cluster_sizes": dg.MetadataValue.md(markdown_table(checks.cluster_sizes_table(summary))),
            "decisions_logged": dg.MetadataValue.json(summary["decisions"]),
            "decisions_file": run.decisions_file or "none (nothing changed)",
            "canonical_ids_changed": run.canonical_changed,
            "model_version": res.model.version if res.model else "none (rules only)",
            "model_parameters": dg.MetadataValue.json(res.model.parameters() if res.model else {}),
        })
        yield dg.MaterializeResult(asset_key=EDGES, metadata={
            **table_metadata(wh, "identity", "edges", order_by="left_lead_id, right_lead_id"),
            "edges_by_rule": dg.MetadataValue.md(markdown_table(checks.edges_by_rule_table(summary))),
            "edges_refused": dg.MetadataValue.json(summary["edges_refused"]),
        })
        for result in checks.evaluate(wh, summary):
            yield check_result(result)
