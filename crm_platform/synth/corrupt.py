"""Invalid event records, each of one known kind, made from a real event of the same file.

The copy gets a fresh event_id, so the original stays valid and the truth stays exact. Which rule a
kind breaks is read from the tracking plan YAML itself, so a kind can never be accidentally valid.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml

from .rand import Draws
from .sinks import json_encoder

PLAN_DIR = Path(__file__).resolve().parent.parent / "plan"

KINDS = (
    "truncated_json", "non_object_json", "invalid_utf8", "missing_required", "null_required", "wrong_type",
    "enum_violation", "unknown_event_type", "unknown_schema_version", "naive_timestamp",
    "impossible_timestamp", "source_not_allowed", "very_long_value",
)
KIND_WEIGHTS = (1, 0.6, 0.6, 1, 1, 1, 1, 0.6, 0.6, 1, 0.6, 1, 0.08)

# Mutations that need a particular event type: (type, property, bad value).
_WRONG_TYPE = {
    "opportunity_created": ("amount", "12k"), "opportunity_closed": ("closed_amount", "12k"),
    "consent_changed": ("granted", "yes"), "lead_created": ("employee_count", "50-200"),
    "lead_updated": ("estimated_value", "12k"), "campaign_touch": ("campaign_id", ["cmp_ps_brand"]),
    "lead_stage_changed": ("reason", ["No response"]), "lead_merged": ("match_score", "high"),
    "manual_label": ("label_value", ["good"]),
}
_ENUM = {
    "campaign_touch": ("channel", "tv"), "activity_logged": ("activity_type", "fax"),
    "lead_stage_changed": ("to_stage", "won"), "opportunity_closed": ("outcome", "pending"),
    "consent_changed": ("purpose", "newsletter"), "lead_created": ("stage", "hot"),
}


@lru_cache(maxsize=1)
def plan() -> dict:
    """{event_type: {"sources": [...], "identity": ..., "versions": {version: {prop: spec}}}} and all sources."""
    registry = yaml.safe_load((PLAN_DIR / "plan.yaml").read_text(encoding="utf-8"))
    types = {}
    for f in sorted((PLAN_DIR / "events").glob("*.yaml")):
        spec = yaml.safe_load(f.read_text(encoding="utf-8"))
        types[spec["event_type"]] = {
            "sources": list(spec["sources"]), "identity": spec.get("identity"),
            "versions": {str(v["version"]): v.get("properties") or {} for v in spec["versions"]},
        }
    return {"types": types, "sources": list(registry["sources"])}


def props(ev: dict) -> dict:
    """The dict that holds an event's properties: attributes, a touch object, or the top level."""
    if isinstance(ev.get("attributes"), dict):
        return ev["attributes"]
    if isinstance(ev.get("touch"), dict):
        return ev["touch"]
    return ev


_COMPACT = json_encoder(",", ":")
_SPACED = json_encoder(", ", ": ")


def _suitable(kind: str, ev: dict) -> bool:
    t = ev.get("event_type")
    if kind == "wrong_type":
        if t == "activity_logged":
            return True
        return t in _WRONG_TYPE
    if kind == "enum_violation":
        return t in _ENUM
    return True


def make_invalid(kind: str, base: bytes, d: Draws, pool: list[bytes]) -> bytes:
    """An invalid record of `kind`, built from `base` (or another line of `pool` the kind fits)."""
    ev = json.loads(base)
    if not _suitable(kind, ev):
        for _ in range(30):
            cand = json.loads(d.pick(pool))
            if _suitable(kind, cand):
                ev = cand
                break
        else:
            kind = "unknown_event_type"
    ev["event_id"] = d.event_id()
    encode = _SPACED if base[:40].find(b'": "') >= 0 else _COMPACT  # the producer's own style

    def _dump(obj) -> bytes:
        return encode(obj).encode("utf-8")

    info = plan()["types"][ev["event_type"]]
    p = props(ev)
    if kind == "truncated_json":
        text = _dump(ev).decode("utf-8")
        return text[: max(10, int(len(text) * d.between(0.2, 0.9)))].encode("utf-8")
    if kind == "non_object_json":
        return d.pick((b"[1,2]", b'"lead_created"', b"42", b'[{"event_type":"lead_created"}]', b"true"))
    if kind == "invalid_utf8":
        # A producer that writes Latin-1: the e-acute is a lone 0xE9 byte inside a JSON string.
        if ev["event_type"] in ("lead_created", "lead_updated"):
            p["first_name"] = "Ren\u00e9e"
        else:
            ev.setdefault("context", {})["user_agent"] = "Mozilla/5.0 (Windows NT 10.0) Caf\u00e9Browser/2.1"
        raw = _dump(ev)
        return raw.replace("\u00e9".encode("utf-8"), b"\xe9", 1)
    if kind in ("missing_required", "null_required"):
        version = ev["schema_version"]
        required = [k for k, spec in info["versions"][version].items() if spec.get("required") and k in p]
        envelope = ["event_id", "occurred_at", "source", "schema_version"]
        if info["identity"] == "lead":
            envelope.append("lead_id")
        target = d.pick(envelope + required * 2)
        holder = p if target in required and target not in envelope else ev
        if kind == "missing_required":
            holder.pop(target, None)
        else:
            holder[target] = None
        return _dump(ev)
    if kind == "wrong_type":
        if ev["event_type"] == "activity_logged":
            key = "duration_sec" if ev["schema_version"] == "2026-01-1" else "duration_seconds"
            p[key] = "90s"
        else:
            key, value = _WRONG_TYPE[ev["event_type"]]
            p[key] = value
        return _dump(ev)
    if kind == "enum_violation":
        key, value = _ENUM[ev["event_type"]]
        p[key] = value
        return _dump(ev)
    if kind == "unknown_event_type":
        ev["event_type"] = d.pick(("page_viewed", "lead_scored", "LeadCreated", "lead_exploded"))
        return _dump(ev)
    if kind == "unknown_schema_version":
        ev["schema_version"] = d.pick(("2027-01-1", "2026-02-1", "2025-12-1", "3"))
        return _dump(ev)
    if kind == "naive_timestamp":
        ev["occurred_at"] = ev["occurred_at"][:19]
        return _dump(ev)
    if kind == "impossible_timestamp":
        day = d.pick(("2026-02-30", "2026-02-29", "2026-04-31", "2026-06-31", "2026-13-02"))
        ev["occurred_at"] = day + ev["occurred_at"][10:]
        return _dump(ev)
    if kind == "source_not_allowed":
        allowed = set(info["sources"]) | {"crm"}
        ev["source"] = d.pick([s for s in plan()["sources"] if s not in allowed])
        return _dump(ev)
    if kind == "very_long_value":
        ev.setdefault("context", {})["user_agent"] = "Mozilla/5.0 " + "(compatible; LongBot/1.0) " * 4200
        return _dump(ev)
    raise ValueError(kind)
