"""One attribution run: every model over the current event log, written as whole tables.

The engine builds the working tables (touches by canonical lead, conversions, each conversion's
window) and the rule-based credits; Python fits the data-driven models on aggregates the engine
reduced (distinct paths, leads by channel set) and hands back per-channel-set shares, which the
engine turns into credits. Every run rebuilds from `core.events`, so a merge or unmerge in the
identity graph re-attributes the conversions it touches on the next run, and a lead's withdrawn
or re-granted analytics consent (governance/consent.py) takes it out or brings it back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm_platform.attribution import tables
from crm_platform.attribution.bootstrap import (
    Replicates,
    coalition_replicates,
    markov_replicates,
    rule_replicates,
)
from crm_platform.attribution.coalitions import Coalitions
from crm_platform.attribution.config import MODELS, RULE_MODELS, AttributionConfig
from crm_platform.attribution.markov import (
    Chain,
    PathChain,
    Paths,
    state_expression,
    summary_conversions,
)
from crm_platform.attribution.models import fit_all
from crm_platform.attribution.spend import current_spend_sql
from crm_platform.governance.consent import ConsentConfig, excluded_leads_sql
from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.sql_files import load, render

PACKAGE = "crm_platform.attribution"
DIRECT = "direct"
DAY_S = 86400


@dataclass
class AttributionRun:
    summary: pd.DataFrame
    campaign_summary: pd.DataFrame
    counts: dict[str, int]
    removal_effects: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def channels_of(plan: TrackingPlan, config: AttributionConfig) -> tuple[str, ...]:
    """The channels attributed to: campaign_touch's channel values in the plan, `direct` always
    (conversions without a touch), narrowed by the include and exclude lists."""
    values = tuple(plan.event_types["campaign_touch"].current.properties["channel"].values or ())
    channels = [c for c in values if not config.channels.include or c in config.channels.include]
    channels = [c for c in channels if c not in config.channels.exclude]
    if DIRECT not in channels:
        channels.append(DIRECT)
    return tuple(channels)


def run_attribution(wh: Warehouse, plan: TrackingPlan, config: AttributionConfig,
                    consent: ConsentConfig | None = None) -> AttributionRun:
    clock = _Clock()
    channels = channels_of(plan, config)
    params = _parameters(config, channels)
    # The leads whose current consent keeps them out (governance/consent.yaml): no touch, conversion
    # or coalition of theirs is counted.
    excluded, excluded_params = excluded_leads_sql("attribution", consent, events_exist=wh.table_exists("core", "events"))
    wh.rebuild_table(tables.CONSENT_EXCLUDED, [render(wh, excluded, excluded_params)])
    wh.replace_table(tables.SCHEMA, "channels",
                     pa.table({"channel": list(channels), "bit": [1 << i for i in range(len(channels))]},
                              schema=tables.CHANNELS))
    fragments = {"source_rank": _source_rank(config, params), "where": _where(config, params),
                 "consent_excluded": f"SELECT lead_id FROM {{{tables.SCHEMA}.consent_excluded}}",
                 "user_leads": load(PACKAGE, "user_leads")}
    for table in (tables.TOUCHES, tables.CONVERSIONS, tables.CONVERSION_TOUCHES, tables.NULL_TOUCHES):
        wh.rebuild_table(table, [render(wh, load(PACKAGE, table.name), params, fragments)])
    clock.lap("windows")

    chain = Chain.from_transitions(_fetch(wh, "transitions", params, transition_fragments(config.models.markov_order)))
    coalition_rows = _fetch(wh, "coalitions", params)
    coalitions = Coalitions.from_counts(channels, coalition_rows["channel_set"].to_numpy(),
                                        coalition_rows["leads"].to_numpy(), coalition_rows["converted_leads"].to_numpy())
    sets_table = _fetch(wh, "conversion_sets", params)
    sets = sets_table["channel_set"].to_numpy()
    fitted = fit_all(chain, coalitions, sets, config.models)
    clock.lap("fit")

    wh.replace_table(tables.SCHEMA, "channel_shares", _shares_table(fitted.shares))
    wh.rebuild_table(tables.CREDITS, [render(wh, load(PACKAGE, "credits_rules"), params),
                                      render(wh, load(PACKAGE, "credits_shares"), params)])
    clock.lap("credits")

    totals = _fetch(wh, "channel_totals", params).to_pandas()
    conversions_total = float(sets_table["conversions"].to_numpy().sum())
    revenue_total = float(sets_table["revenue"].to_numpy().sum())
    markov_conv = summary_conversions(fitted.removal_effects, conversions_total)
    markov_rev = summary_conversions(fitted.removal_effects, revenue_total)
    intervals = _intervals(wh, params, config, channels, coalitions, sets_table)
    clock.lap("bootstrap")

    spend = wh.fetch_arrow(current_spend_sql(wh)).to_pandas()
    summary = _summary(totals, markov_conv, markov_rev, intervals, spend, channels)
    campaigns = _campaign_summary(_fetch(wh, "campaign_totals", params).to_pandas(), summary, spend)
    wh.replace_table(tables.SCHEMA, "summary", pa.Table.from_pandas(summary, schema=tables.SUMMARY, preserve_index=False))
    wh.replace_table(tables.SCHEMA, "campaign_summary",
                     pa.Table.from_pandas(campaigns, schema=tables.CAMPAIGN_SUMMARY, preserve_index=False))
    wh.replace_table(tables.SCHEMA, "model_parameters",
                     pa.Table.from_pylist([dict(zip(tables.MODEL_PARAMETERS.names, p)) for p in fitted.parameters],
                                          schema=tables.MODEL_PARAMETERS))
    clock.lap("summary")
    counts = dict(zip(("touches", "touches_linked_by_user", "conversions", "conversions_without_touch",
                       "conversion_touches", "credits", "markov_states"), _counts(wh) + [len(chain.states)]))
    counts["leads_excluded_by_consent"] = _counts_excluded(wh)
    return AttributionRun(summary, campaigns, counts, fitted.removal_effects, clock.seconds)


def transition_fragments(order: int) -> dict[str, str]:
    """transitions.sql's state: the last `order` channels of the journey up to each step."""
    return {"state": state_expression(order, window="PARTITION BY converted, unit ORDER BY touch_occurred_at, touch_event_id")}


def _parameters(config: AttributionConfig, channels: tuple[str, ...]) -> dict:
    c = config.conversion
    return {
        "channels": list(channels),
        "all_campaigns": not config.campaigns.include,
        "campaigns": list(config.campaigns.include),
        "excluded_campaigns": list(config.campaigns.exclude),
        "event_type": c.event_type,
        "value_property": c.value,
        "dedupe_seconds": int(c.dedupe_window_days * DAY_S),
        "lookback_seconds": int(config.lookback.days * DAY_S),
        "max_steps": int(config.lookback.steps),
        "half_life_days": float(config.models.half_life_days),
        "first_weight": float(config.models.first_weight),
        "last_weight": float(config.models.last_weight),
        "rule_models": list(RULE_MODELS),
    }


def _source_rank(config: AttributionConfig, params: dict) -> str:
    """CASE over the configured source priority; the sources are parameters."""
    whens = []
    for i, source in enumerate(config.conversion.source_priority):
        params[f"source_{i}"] = source
        whens.append(f"WHEN source = $source_{i} THEN {i}")
    return f"(CASE {' '.join(whens)} ELSE {len(whens)} END)" if whens else "0"


def _where(config: AttributionConfig, params: dict) -> str:
    """The conversion filter: attribute equalities, the values parameters (names are checked
    identifiers, config.py)."""
    terms = []
    for i, (name, values) in enumerate(sorted(config.conversion.where.items())):
        params[f"where_{i}"] = list(values)
        terms.append(f"list_contains($where_{i}, attributes ->> '{name}')")
    return " AND ".join(terms) or "TRUE"


def _fetch(wh: Warehouse, name: str, params: dict, fragments: dict | None = None) -> pa.Table:
    sql, bound = render(wh, load(PACKAGE, name), params, fragments)
    return wh.fetch_arrow(sql, bound)


def _shares_table(shares: dict[str, dict[int, dict[str, float]]]) -> pa.Table:
    rows = [(model, 0, DIRECT, 1.0) for model in shares]  # a conversion without a touch: all to direct
    for model, by_set in shares.items():
        for channel_set, by_channel in sorted(by_set.items()):
            rows += [(model, channel_set, ch, share) for ch, share in sorted(by_channel.items())]
    return pa.table(list(zip(*rows)) if rows else [[], [], [], []], schema=tables.CHANNEL_SHARES)


def _intervals(wh, params, config, channels, coalitions, sets_table) -> dict[tuple[str, str], tuple]:
    b = config.bootstrap
    out: dict[tuple[str, str], tuple] = {}
    if b.replicates == 0:
        return out
    lead_credits = _fetch(wh, "lead_credits", params)
    keys = _codes(lead_credits["model"], RULE_MODELS) * len(channels) + _codes(lead_credits["channel"], channels)
    rules = rule_replicates(lead_credits["lead"].to_numpy().astype(np.int64), keys,
                            lead_credits["credit"].to_numpy(), lead_credits["revenue_credit"].to_numpy(),
                            len(RULE_MODELS) * len(channels), b)
    _collect(out, rules, [(m, c) for m in RULE_MODELS for c in channels], b.confidence)
    paths = Paths.from_arrow(_fetch(wh, "paths", params))
    chain = PathChain.build(paths.paths, config.models.markov_order)
    _collect(out, markov_replicates(chain, paths, channels, b), [("markov", c) for c in channels], b.confidence)
    sets = sets_table["channel_set"].to_numpy()
    for model in ("shapley", "logistic_regression"):
        reps = coalition_replicates(model, coalitions, sets, sets_table["conversions"].to_numpy().astype(float),
                                    sets_table["revenue"].to_numpy().astype(float), config.models, b)
        _collect(out, reps, [(model, c) for c in channels], b.confidence)
    return out


def _codes(column: pa.ChunkedArray, values: tuple[str, ...]) -> np.ndarray:
    """Each value's position in `values`, through the column's dictionary (no Python loop per row)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    lookup = np.array([values.index(v) for v in encoded.dictionary.to_pylist()], dtype=np.int64)
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)]


def _collect(out: dict, replicates: Replicates, keys: list[tuple[str, str]], confidence: float) -> None:
    for key, *bounds in zip(keys, *replicates.interval(confidence)):
        out[key] = tuple(float(x) for x in bounds)


def _summary(totals: pd.DataFrame, markov_conv: dict, markov_rev: dict, intervals: dict, spend: pd.DataFrame,
             channels: tuple[str, ...]) -> pd.DataFrame:
    by_key = {(r.model, r.channel): (float(r.conversions), float(r.revenue)) for r in totals.itertuples()}
    spend_by_channel = spend.groupby("channel")["spend"].sum().to_dict() if len(spend) else {}
    rows = []
    for model in MODELS:
        model_total = sum(v[0] for k, v in by_key.items() if k[0] == model) or 1.0
        for channel in channels:
            if model == "markov":
                conv, rev = markov_conv.get(channel, 0.0), markov_rev.get(channel, 0.0)
            else:
                conv, rev = by_key.get((model, channel), (0.0, 0.0))
            cost = spend_by_channel.get(channel)
            if conv == 0 and not cost:
                continue
            low, high, rlow, rhigh = intervals.get((model, channel), (np.nan,) * 4)
            rows.append({"model": model, "channel": channel, "conversions": conv, "revenue": rev,
                         "conversions_low": low, "conversions_high": high, "revenue_low": rlow, "revenue_high": rhigh,
                         "share_of_conversions": conv / model_total, **_economics(cost, conv, rev)})
    return pd.DataFrame(rows, columns=tables.SUMMARY.names)


def _economics(spend, conversions: float, revenue: float) -> dict:
    if spend is None or pd.isna(spend):
        return {"spend": None, "cost_per_conversion": None, "roas": None}
    return {"spend": float(spend), "cost_per_conversion": spend / conversions if conversions else None,
            "roas": revenue / spend if spend else None}


def _campaign_summary(totals: pd.DataFrame, summary: pd.DataFrame, spend: pd.DataFrame) -> pd.DataFrame:
    """Per model and campaign. Markov's per-conversion credits are rescaled so its campaigns add up
    to its channel totals (which CONTRACT §7 defines from the removal effects)."""
    totals = totals.copy()
    markov = totals["model"] == "markov"
    if markov.any():
        channel_credit = totals[markov].groupby("channel")[["conversions", "revenue"]].transform("sum")
        target = summary[summary["model"] == "markov"].set_index("channel")
        for col in ("conversions", "revenue"):
            goal = totals.loc[markov, "channel"].map(target[col]).fillna(0.0)
            totals.loc[markov, col] = np.where(channel_credit[col] > 0, totals.loc[markov, col] / channel_credit[col] * goal, 0.0)
    cost = (spend.groupby(["channel", "campaign_id"])["spend"].sum() if len(spend)
            else pd.Series(dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["channel", "campaign_id"])))
    rows = []
    for r in totals.itertuples():
        c = cost.get((r.channel, r.campaign_id)) if r.campaign_id is not None else None
        rows.append({"model": r.model, "channel": r.channel, "campaign_id": r.campaign_id,
                     "conversions": float(r.conversions), "revenue": float(r.revenue),
                     **_economics(c, float(r.conversions), float(r.revenue))})
    return pd.DataFrame(rows, columns=tables.CAMPAIGN_SUMMARY.names)


def _counts(wh: Warehouse) -> list[int]:
    n = lambda t, where="": wh.fetchall(f"select count(*) from {wh.table_name(tables.SCHEMA, t)} {where}")[0][0]
    return [n("touches"), n("touches", "where linked_by = 'user_id'"), n("conversions"),
            n("conversion_touches", "where touches = 0"), n("conversion_touches"), n("credits")]


def _counts_excluded(wh: Warehouse) -> int:
    return int(wh.fetchall(f"select count(*) from {wh.table_name(tables.SCHEMA, 'consent_excluded')}")[0][0])


class _Clock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._t, 3)
        self._t = now
