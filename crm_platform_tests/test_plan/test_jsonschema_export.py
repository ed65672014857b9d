"""The JSON Schema export: files, metadata, and agreement with the pandera validation."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from crm_platform.plan.examples import example_event
from crm_platform.plan.jsonschema_export import event_schema, export_jsonschema
from crm_platform.plan.loader import load_plan
from crm_platform.plan.validate import validate_records

PLAN = load_plan()
VERSIONS = [(et.event_type, v.version) for et, v in PLAN.iter_versions()]
WRONG = {"string": 12345, "email": ["a@b.co"], "url": {"href": "x"}, "timestamp": 1767225600, "enum": 3,
         "integer": "12", "number": True, "boolean": "true", "json": "{}"}


def validator(event_type: str, version: str) -> Draft202012Validator:
    et = PLAN.event_types[event_type]
    schema = event_schema(PLAN, et, et.version(version))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def variants(event_type: str, version: str) -> list[tuple[str, dict]]:
    """The example, and one broken (or still valid) copy per rule of the plan."""
    base = example_event(PLAN, event_type, version)
    out: list[tuple[str, dict]] = [("example", base)]

    def variant(name, change):
        event = copy.deepcopy(base)
        change(event)
        out.append((name, event))

    for prop, spec in PLAN.get_version(event_type, version).properties.items():
        variant(f"{prop}: wrong type", lambda e, p=prop, t=spec.type: e["attributes"].__setitem__(p, WRONG[t]))
        variant(f"{prop}: null", lambda e, p=prop: e["attributes"].__setitem__(p, None))
        variant(f"{prop}: absent", lambda e, p=prop: e["attributes"].pop(p))
        if spec.type == "enum":
            variant(f"{prop}: not in enum", lambda e, p=prop: e["attributes"].__setitem__(p, "not_a_value"))
        if spec.effective_max_length is not None and spec.type != "enum":
            limit = spec.effective_max_length
            variant(f"{prop}: too long", lambda e, p=prop, n=limit: e["attributes"].__setitem__(p, "x" * (n + 1)))
        if spec.minimum is not None:
            variant(f"{prop}: below min", lambda e, p=prop, m=spec.minimum: e["attributes"].__setitem__(p, m - 0.5))
        if spec.maximum is not None:
            variant(f"{prop}: above max", lambda e, p=prop, m=spec.maximum: e["attributes"].__setitem__(p, m + 0.5))
        if spec.type == "integer":
            variant(f"{prop}: integral float", lambda e, p=prop: e["attributes"].__setitem__(p, 7.0))
            variant(f"{prop}: fractional", lambda e, p=prop: e["attributes"].__setitem__(p, 7.5))
        if spec.type == "timestamp":
            variant(f"{prop}: naive", lambda e, p=prop: e["attributes"].__setitem__(p, "2026-01-01T00:00:00"))
            variant(f"{prop}: 30 Feb", lambda e, p=prop: e["attributes"].__setitem__(p, "2026-02-30T00:00:00Z"))
    for field, spec in PLAN.context.items():
        variant(f"context.{field}: wrong type", lambda e, f=field, t=spec.type: e["context"].__setitem__(f, WRONG[t]))
    variant("context.referrer: not a url", lambda e: e["context"].__setitem__("referrer", "www.example.com"))
    variant("naive occurred_at", lambda e: e.__setitem__("occurred_at", "2026-01-10T15:12:30"))
    variant("30 Feb occurred_at", lambda e: e.__setitem__("occurred_at", "2026-02-30T15:12:30Z"))
    variant("29 Feb of a leap year", lambda e: e.__setitem__("occurred_at", "2028-02-29T15:12:30-03:00"))
    variant("year 0", lambda e: e.__setitem__("occurred_at", "0000-01-01T00:00:00Z"))
    variant("offset +05:45", lambda e: e.__setitem__("occurred_at", "2026-01-10T15:12:30.25+05:45"))
    variant("trailing newline", lambda e: e.__setitem__("occurred_at", "2026-01-10T15:12:30Z\n"))
    variant("source not allowed", lambda e: e.__setitem__("source", "consent_platform_x"))
    variant("source crm", lambda e: e.__setitem__("source", "crm"))
    variant("no event_id", lambda e: e.pop("event_id"))
    variant("empty event_id", lambda e: e.__setitem__("event_id", ""))
    variant("long event_id", lambda e: e.__setitem__("event_id", "e" * 201))
    variant("no lead_id", lambda e: e.pop("lead_id"))
    variant("null lead_id", lambda e: e.__setitem__("lead_id", None))
    variant("no lead_id nor user_id", lambda e: (e.pop("lead_id"), e.pop("user_id")))
    variant("null lead_id and user_id", lambda e: e.update(lead_id=None, user_id=None))
    variant("empty user_id", lambda e: e.__setitem__("user_id", ""))
    variant("null producer_id", lambda e: e.__setitem__("producer_id", None))
    variant("attributes array", lambda e: e.__setitem__("attributes", []))
    variant("context null", lambda e: e.__setitem__("context", None))
    variant("unplanned property", lambda e: e["attributes"].__setitem__("extra", {"x": [1]}))
    variant("wrong schema_version type", lambda e: e.__setitem__("schema_version", 2026))
    return out


def test_export_writes_one_schema_per_type_and_version(tmp_path: Path):
    paths = export_jsonschema(PLAN, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == [
        f"{t}/{v}.schema.json" for t, v in VERSIONS]
    for path, (event_type, version) in zip(paths, VERSIONS):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        et = PLAN.event_types[event_type]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"urn:crm-platform:event:{event_type}:{version}"
        assert schema["title"] == f"{event_type} {version}"
        assert schema["description"] == et.description
        assert (schema["x-owner"], schema["x-plan-version"], schema["x-retention-days"], schema["x-consent-purpose"]) \
            == (et.owner, PLAN.version, et.retention_days, et.consent_purpose)
        props = schema["properties"]["attributes"]["properties"]
        assert list(props) == list(et.version(version).properties)
        pii = {name for name, spec in et.version(version).properties.items() if spec.pii}
        assert {name for name, s in props.items() if s.get("x-pii")} == pii
        assert schema["properties"]["context"]["properties"]["ip"]["x-pii"] is True


def test_lead_created_schema_details():
    s = validator("lead_created", "2026-01-1").schema
    email = s["properties"]["attributes"]["properties"]["email"]
    assert email["type"] == ["string", "null"] and email["x-pii"] is True and email["pattern"].startswith("^(?:")
    occurred = s["properties"]["occurred_at"]
    assert occurred["format"] == "date-time" and "Z|[+-]" in occurred["pattern"]
    assert "lead_id" in s["required"]
    touch = validator("campaign_touch", "2026-04-1").schema
    assert touch["properties"]["attributes"]["required"] == ["channel", "touch_type"]
    assert "lead_id" not in touch["required"] and len(touch["anyOf"]) == 2


def test_an_event_about_no_person_needs_no_id_but_types_one_given():
    v = validator("campaign_spend_reported", "2026-01-1")
    s = v.schema
    assert s["x-identity"] == "none" and "anyOf" not in s
    assert not {"lead_id", "user_id"} & set(s["required"])
    assert "names no record" in s["properties"]["lead_id"]["description"]
    event = example_event(PLAN, "campaign_spend_reported")
    for ids in ({}, {"lead_id": "lead_1"}, {"user_id": "u_1"}, {"lead_id": None, "user_id": None}):
        e = {k: v for k, v in event.items() if k not in ("lead_id", "user_id")} | ids
        assert v.is_valid(e), ids
    assert not v.is_valid({**event, "lead_id": ""}) and not v.is_valid({**event, "lead_id": 7})


@pytest.mark.parametrize("event_type, version", VERSIONS, ids=["@".join(v) for v in VERSIONS])
def test_jsonschema_agrees_with_the_pandera_validation(event_type, version):
    cases = variants(event_type, version)
    results = validate_records([(i, event) for i, (_, event) in enumerate(cases)], PLAN)
    check = validator(event_type, version)
    disagreements = [
        (name, result.reasons, [e.message[:80] for e in check.iter_errors(event)])
        for (name, event), result in zip(cases, results)
        if result.ok != check.is_valid(event)
    ]
    assert disagreements == []
    # Both sides see real variety: the example passes and most variants fail.
    assert results[0].ok and sum(not r.ok for r in results) > len(results) // 2


FORMAT_CASES = {
    "timestamp": {
        True: ["2026-01-10T15:12:30Z", "2026-01-10T15:12:30.123456789+14:00", "2024-02-29T23:59:59-00:00",
               "1999-12-31T00:00:00.5+05:30"],
        False: ["2026-01-10T15:12:30", "2026-01-10 15:12:30Z", "2026-01-10T15:12:30z", "2026-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z", "2026-01-10T15:12:60Z", "2026-01-10T15:12:30+24:00", "2026-1-10T15:12:30Z",
                "2026-01-10T15:12:30.Z", "2026-01-10T15:12:30.1234567890Z", "２０２６-01-10T15:12:30Z",
                "0000-01-01T00:00:00Z"],
    },
    "email": {
        True: ["jane@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x_y-z@a-b.io"],
        False: ["jane@", "@example.com", "jane@localhost", "jane example@example.com", "jane@exa_mple.com",
                "jané@example.com", "jane@-example.com", "jane@example.com\n", "jane@@example.com"],
    },
    "url": {
        True: ["https://example.com", "http://example.com:8080/a/b?c=d&e=f#g", "https://ad.example.com/x%20y",
               "http://[::1]/", "https://user:pw@host.example/path"],
        False: ["www.example.com", "ftp://example.com", "https://", "https:// example.com", "javascript:alert(1)",
                "https://exämple.com", "https://example.com/a b", "mailto:jane@example.com"],
    },
}
FORMAT_FIELDS = {"timestamp": ("model_score_computed", "as_of"), "email": ("lead_created", "email"),
                 "url": ("campaign_touch", "landing_page")}


@pytest.mark.parametrize("fmt", list(FORMAT_CASES))
def test_shared_format_regexes_give_the_same_verdicts(fmt):
    event_type, prop = FORMAT_FIELDS[fmt]
    check = validator(event_type, PLAN.current_version(event_type))
    for expected, values in FORMAT_CASES[fmt].items():
        for value in values:
            event = example_event(PLAN, event_type)
            event["attributes"][prop] = value
            ours = validate_records([(1, event)], PLAN)[0]
            assert ours.ok is expected, (value, ours.reasons)
            assert check.is_valid(event) is expected, value
