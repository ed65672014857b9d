"""Validation of event records against the plan: every type and version, from the plan itself."""
from __future__ import annotations

import copy
import json

import pytest

from crm_platform.plan import decode
from crm_platform.plan.examples import example_event
from crm_platform.plan.loader import load_plan
from crm_platform.plan.validate import REASON_CODES, validate_event, validate_records

PLAN = load_plan()
VERSIONS = [(et.event_type, v.version) for et, v in PLAN.iter_versions()]
PROPS = [(t, v, name) for t, v in VERSIONS for name in PLAN.get_version(t, v).properties]
REQUIRED = [(t, v, n) for t, v, n in PROPS if PLAN.get_version(t, v).properties[n].required]
ENUMS = [(t, v, n) for t, v, n in PROPS if PLAN.get_version(t, v).properties[n].type == "enum"]
STRINGS = [(t, v, n) for t, v, n in PROPS
           if PLAN.get_version(t, v).properties[n].type in ("string", "email", "url")]
BOUNDED = [(t, v, n) for t, v, n in PROPS
           if PLAN.get_version(t, v).properties[n].minimum is not None
           or PLAN.get_version(t, v).properties[n].maximum is not None]
CONTEXT = list(PLAN.context)

# A value of another JSON type for each property type, and how the reason names the expectation.
WRONG = {"string": (12345, "a string", "integer"), "email": (["a@b.co"], "a string", "array"),
         "url": ({"href": "x"}, "a string", "object"), "timestamp": (1767225600, "a timestamp string", "integer"),
         "enum": (3, "a string", "integer"), "integer": ("12", "an integer", "string"),
         "number": (True, "a number", "boolean"), "boolean": ("true", "true or false", "string"),
         "json": ("{}", "an object or an array", "string")}

CONTRACT_EXAMPLE = """{"event_type": "lead_created", "schema_version": "2026-01-1", "event_id": "evt_01GXYZ",
 "occurred_at": "2026-01-10T15:12:30Z", "source": "webform", "lead_id": "lead_9876",
 "user_id": "user_1234", "producer_id": "web-1",
 "attributes": {"email": "jane@example.com", "lead_source": "paid_search"},
 "context": {"ip": "203.0.113.12", "user_agent": "Mozilla/5.0", "referrer": "https://ad.example.com"}}"""


def ids(cases):
    return ["@".join(c) for c in cases]


def reasons(event) -> tuple[str, ...]:
    return validate_event(event, PLAN).reasons


def test_reason_codes_are_the_documented_set():
    assert REASON_CODES == (
        "invalid_utf8", "invalid_json", "not_an_object", "unknown_event_type", "unknown_schema_version",
        "missing_required", "null_required", "empty_value", "wrong_type", "enum_violation", "source_not_allowed",
        "too_long", "out_of_range", "invalid_timestamp", "naive_timestamp", "invalid_email", "invalid_url",
    )


def test_the_contract_example_validates_unchanged():
    result = validate_event(CONTRACT_EXAMPLE, PLAN)
    assert result.ok and result.reasons == ()
    assert result.event == json.loads(CONTRACT_EXAMPLE)
    assert (result.line, result.event_type, result.original_schema_version) == (1, "lead_created", "2026-01-1")


@pytest.mark.parametrize("event_type, version", VERSIONS, ids=ids(VERSIONS))
def test_example_event_is_valid(event_type, version):
    example = example_event(PLAN, event_type, version)
    result = validate_event(example, PLAN)
    assert result.ok, result.reasons
    current = PLAN.current_version(event_type)
    assert result.event["schema_version"] == current
    if version == current:
        assert result.event == example


@pytest.mark.parametrize("event_type, version, prop", REQUIRED, ids=ids(REQUIRED))
def test_required_property_missing_or_null(event_type, version, prop):
    event = example_event(PLAN, event_type, version)
    del event["attributes"][prop]
    assert reasons(event) == (f"missing_required: attributes.{prop} is required",)
    event["attributes"][prop] = None
    assert reasons(event) == (f"null_required: attributes.{prop} is null",)


@pytest.mark.parametrize("event_type, version, prop", PROPS, ids=ids(PROPS))
def test_property_of_the_wrong_type(event_type, version, prop):
    spec = PLAN.get_version(event_type, version).properties[prop]
    value, expected, got = WRONG[spec.type]
    event = example_event(PLAN, event_type, version)
    event["attributes"][prop] = value
    assert reasons(event) == (f"wrong_type: attributes.{prop} must be {expected}, got {got}",)
    if not spec.required:  # a null optional property counts as absent
        event["attributes"][prop] = None
        assert reasons(event) == ()


@pytest.mark.parametrize("event_type, version, prop", ENUMS, ids=ids(ENUMS))
def test_enum_violation(event_type, version, prop):
    spec = PLAN.get_version(event_type, version).properties[prop]
    event = example_event(PLAN, event_type, version)
    event["attributes"][prop] = "not_a_value"
    assert reasons(event) == (
        f"enum_violation: attributes.{prop} 'not_a_value' is not one of: {', '.join(spec.values)}",)
    event["attributes"][prop] = spec.values[-1].upper() + "?"  # case matters
    assert reasons(event)[0].startswith("enum_violation: ")


@pytest.mark.parametrize("event_type, version, prop", STRINGS, ids=ids(STRINGS))
def test_string_longer_than_max_length(event_type, version, prop):
    limit = PLAN.get_version(event_type, version).properties[prop].effective_max_length
    event = example_event(PLAN, event_type, version)
    event["attributes"][prop] = "x" * (limit + 1)
    assert reasons(event) == (f"too_long: attributes.{prop} has {limit + 1} characters (max {limit})",)


@pytest.mark.parametrize("event_type, version, prop", BOUNDED, ids=ids(BOUNDED))
def test_number_out_of_range(event_type, version, prop):
    spec = PLAN.get_version(event_type, version).properties[prop]
    event = example_event(PLAN, event_type, version)
    if spec.minimum is not None:
        event["attributes"][prop] = spec.minimum - 1
        assert reasons(event) == (
            f"out_of_range: attributes.{prop} {spec.minimum - 1} is below the minimum {spec.minimum}",)
        event["attributes"][prop] = spec.minimum  # bounds are inclusive
        assert reasons(event) == ()
    if spec.maximum is not None:
        event["attributes"][prop] = spec.maximum + 1
        assert reasons(event) == (
            f"out_of_range: attributes.{prop} {spec.maximum + 1} is above the maximum {spec.maximum}",)


@pytest.mark.parametrize("field", CONTEXT)
def test_context_fields_are_typed(field):
    spec = PLAN.context[field]
    value, expected, got = WRONG[spec.type]
    event = example_event(PLAN, "lead_created")
    event["context"][field] = value
    assert reasons(event) == (f"wrong_type: context.{field} must be {expected}, got {got}",)


def test_integer_and_number_follow_json_not_python():
    event = example_event(PLAN, "lead_created")
    attrs = event["attributes"]
    attrs["employee_count"] = 3.0  # integral float: an integer, as in JSON Schema
    attrs["estimated_value"] = 10  # an int is a number
    assert reasons(event) == ()
    attrs["employee_count"] = 3.5
    attrs["estimated_value"] = False  # bool is not a number
    assert reasons(event) == ("wrong_type: attributes.estimated_value must be a number, got boolean",
                              "wrong_type: attributes.employee_count must be an integer, got number")
    attrs["employee_count"] = True
    attrs["estimated_value"] = 10**30  # big, but a number
    assert reasons(event) == ("wrong_type: attributes.employee_count must be an integer, got boolean",)
    consent = example_event(PLAN, "consent_changed")
    consent["attributes"]["granted"] = 1
    assert reasons(consent) == ("wrong_type: attributes.granted must be true or false, got integer",)


@pytest.mark.parametrize("value, expected", [
    ("2026-01-10T15:12:30Z", ()),
    ("2026-01-10T15:12:30.123456+05:30", ()),
    ("2024-02-29T00:00:00-08:00", ()),  # leap year
    ("2026-01-10T15:12:30", ("naive_timestamp: occurred_at has no UTC offset (end it with Z or +HH:MM)",)),
    ("2026-01-10T15:12:30.5", ("naive_timestamp: occurred_at has no UTC offset (end it with Z or +HH:MM)",)),
    ("2026-02-30T10:00:00Z", ("invalid_timestamp: occurred_at '2026-02-30T10:00:00Z' is not a real date",)),
    ("2025-02-29T10:00:00Z", ("invalid_timestamp: occurred_at '2025-02-29T10:00:00Z' is not a real date",)),
    ("2026-13-01T10:00:00Z", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("2026-01-10T24:00:00Z", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("2026-01-10 15:12:30Z", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("2026-01-10T15:12:30+0100", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("2026-01-10", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("2026-01-10T15:12:30Z\n", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    ("", ("invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",)),
    (1767225600, ("wrong_type: occurred_at must be a timestamp string, got integer",)),
])
def test_occurred_at(value, expected):
    event = example_event(PLAN, "lead_created")
    event["occurred_at"] = value
    assert reasons(event) == expected


def test_timestamp_properties_follow_the_same_rule():
    event = example_event(PLAN, "model_score_computed")
    event["attributes"]["as_of"] = "2026-06-31T00:00:00Z"
    assert reasons(event) == ("invalid_timestamp: attributes.as_of '2026-06-31T00:00:00Z' is not a real date",)


def test_source_must_be_allowed_for_the_type():
    event = example_event(PLAN, "model_score_computed")
    event["source"] = "webform"  # a declared source, but not one of this type's
    assert reasons(event) == ("source_not_allowed: source 'webform' is not allowed for model_score_computed "
                              "(allowed: crm, ml)",)
    for et in PLAN.event_types:  # `crm` is allowed for every type
        event = example_event(PLAN, et)
        event["source"] = "crm"
        assert reasons(event) == ()
    del event["source"]
    assert reasons(event) == ("missing_required: source is required",)


def test_lead_scoped_events_need_a_lead_id():
    event = example_event(PLAN, "opportunity_closed")
    del event["lead_id"]
    assert reasons(event) == ("missing_required: lead_id is required",)
    event["lead_id"] = None
    assert reasons(event) == ("null_required: lead_id is null",)
    event["lead_id"] = ""
    assert reasons(event) == ("empty_value: lead_id is empty",)


def test_lead_or_user_events_need_one_of_them():
    event = example_event(PLAN, "campaign_touch")
    del event["lead_id"]
    assert reasons(event) == ()  # the user_id stands in
    del event["user_id"]
    assert reasons(event) == ("missing_required: lead_id or user_id is required for campaign_touch",)
    event["user_id"] = None
    assert reasons(event) == ("null_required: lead_id or user_id is required for campaign_touch",)
    event["lead_id"] = "lead_1"
    assert reasons(event) == ()


def test_events_about_no_person_need_no_id_but_type_one_given():
    event = example_event(PLAN, "campaign_spend_reported")
    assert PLAN.event_types["campaign_spend_reported"].identity == "none"
    assert reasons(event) == ()  # both given: kept
    del event["lead_id"], event["user_id"]
    assert reasons(event) == ()
    assert reasons({**event, "lead_id": None, "user_id": None}) == ()  # null is absent
    assert reasons({**event, "lead_id": ""}) == ("empty_value: lead_id is empty",)
    assert reasons({**event, "user_id": 7}) == ("wrong_type: user_id must be a string, got integer",)
    assert reasons({**event, "source": "ads"}) == (
        "source_not_allowed: source 'ads' is not allowed for campaign_spend_reported (allowed: crm, marketing)",)


def test_event_id_rules():
    event = example_event(PLAN, "lead_updated")
    del event["event_id"]
    assert reasons(event) == ("missing_required: event_id is required",)
    event["event_id"] = ""
    assert reasons(event) == ("empty_value: event_id is empty",)
    event["event_id"] = "e" * 201
    assert reasons(event) == ("too_long: event_id has 201 characters (max 200)",)
    event["event_id"] = 42
    assert reasons(event) == ("wrong_type: event_id must be a string, got integer",)


def test_very_long_values_are_rejected_without_echoing_them():
    event = example_event(PLAN, "campaign_touch")
    long = "https://example.com/" + "a" * 100_000
    event["attributes"]["landing_page"] = long
    event["context"]["user_agent"] = "b" * 100_000
    got = reasons(event)
    assert got == ("too_long: attributes.landing_page has 100020 characters (max 4096)",
                   "too_long: context.user_agent has 100000 characters (max 1024)")
    assert all(len(reason) < 200 for reason in got)


def test_pii_values_are_not_echoed():
    event = example_event(PLAN, "lead_created")
    event["attributes"]["email"] = "jane.doe.secret@"
    event["context"]["ip"] = "9" * 65
    got = reasons(event)
    assert got == ("invalid_email: attributes.email is not a valid email address",
                   "too_long: context.ip has 65 characters (max 64)")
    assert "secret" not in "".join(got) and "999" not in "".join(got)


@pytest.mark.parametrize("field", ["attributes", "context", "touch"])
def test_containers_must_be_objects(field):
    event = example_event(PLAN, "lead_updated")
    event[field] = ["not", "an", "object"]
    assert reasons(event) == (f"wrong_type: {field} must be an object, got array",)
    event[field] = None  # null counts as absent
    assert reasons(event) == ()


def test_envelope_headers():
    base = example_event(PLAN, "activity_logged")
    assert reasons({**base, "event_type": "page_view"}) == (
        "unknown_event_type: 'page_view' is not an event type of the plan",)
    assert reasons({**base, "schema_version": "2026-03-1"}) == (
        "unknown_schema_version: '2026-03-1' is not a version of activity_logged (known: 2026-01-1, 2026-06-1)",)
    assert reasons({k: v for k, v in base.items() if k != "event_type"}) == ("missing_required: event_type is required",)
    assert reasons({**base, "schema_version": None}) == ("null_required: schema_version is required",)
    assert reasons({"event_type": "page_view"}) == ("unknown_event_type: 'page_view' is not an event type of the plan",)
    assert reasons({**base, "event_type": ["lead_created"]}) == ("wrong_type: event_type must be a string, got array",)


@pytest.mark.parametrize("raw, expected", [
    (b"{not json", "invalid_json: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b'{"a": NaN}', "invalid_json: NaN is not valid JSON"),
    (b'{"a": "\\ud800"}', "invalid_json: lone UTF-16 surrogate in a \\u escape"),
    (b"\xff\xfe{}", "invalid_utf8: byte 0xff at position 0 is not UTF-8"),
    (b'{"a": "caf\xe9"}', "invalid_utf8: byte 0xe9 at position 10 is not UTF-8"),
    (b"[1, 2]", "not_an_object: record is a JSON array, expected an object"),
    (b'"lead_created"', "not_an_object: record is a JSON string, expected an object"),
    (b"   ", "invalid_json: empty record"),
    ("{}", "missing_required: event_type is required"),
])
@pytest.mark.parametrize("parser", ["orjson if installed", "standard library"])
def test_raw_records_that_are_not_events(raw, expected, parser, monkeypatch):
    if parser == "standard library":
        monkeypatch.setattr(decode, "_fast_loads", None)
    assert reasons(raw) == (expected,)
    assert reasons(b'{"big": ' + b"9" * 30 + b"}") == ("missing_required: event_type is required",)


def test_bytes_str_and_dict_inputs_agree_and_dicts_are_not_modified():
    event = example_event(PLAN, "activity_logged", "2026-01-1")
    original = copy.deepcopy(event)
    text = json.dumps(event)
    results = validate_records([(1, text.encode()), (2, text), (3, event), (4, "\ufeff" + text)], PLAN)
    assert [r.ok for r in results] == [True] * 4
    assert results[0].event == results[1].event == results[2].event == results[3].event
    assert event == original


def test_top_level_and_touch_properties_are_read_as_attributes():
    event = {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t1",
        "occurred_at": "2026-03-01T09:00:00+01:00", "source": "ads", "user_id": "anon_7",
        "touch": {"channel": "paid_search", "campaign_id": "cmp_1", "touch_type": "click"},
        "utm_source": "google", "gclid_raw": "abc",  # top level: a planned and an unplanned property
    }
    result = validate_event(event, PLAN)
    assert result.ok, result.reasons
    assert result.event == {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t1",
        "occurred_at": "2026-03-01T09:00:00+01:00", "source": "ads", "user_id": "anon_7",
        "attributes": {"utm_source": "google", "gclid_raw": "abc", "channel": "paid_search", "campaign_id": "cmp_1",
                       "touch_type": "click"},
    }


def test_attributes_win_over_touch_and_top_level_and_null_never_overrides():
    event = {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t2",
        "occurred_at": "2026-03-01T09:00:00Z", "source": "web", "lead_id": "lead_1",
        "channel": "display", "touch": {"channel": "email", "campaign_id": "from_touch"},
        "attributes": {"channel": "referral", "touch_type": "visit", "campaign_id": None},
    }
    result = validate_event(event, PLAN)
    assert result.ok, result.reasons
    assert result.event["attributes"] == {"channel": "referral", "campaign_id": "from_touch", "touch_type": "visit"}


def test_properties_outside_attributes_are_checked_too():
    event = {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t3",
        "occurred_at": "2026-03-01T09:00:00Z", "source": "web", "lead_id": "lead_1",
        "touch": {"channel": "tv", "touch_type": "click"}, "landing_page": "not a url",
    }
    assert reasons(event) == (
        "enum_violation: attributes.channel 'tv' is not one of: paid_search, organic_search, paid_social, "
        "organic_social, social, email, display, referral, events, direct",
        "invalid_url: attributes.landing_page is not an absolute http(s) URL")


def test_unplanned_properties_are_kept():
    event = example_event(PLAN, "lead_created")
    event["attributes"]["favourite_colour"] = {"any": ["json", 1]}
    result = validate_event(event, PLAN)
    assert result.ok and result.event["attributes"]["favourite_colour"] == {"any": ["json", 1]}


def test_several_reasons_are_reported_in_field_order():
    event = example_event(PLAN, "opportunity_created")
    event.update(occurred_at="yesterday", source="ml", lead_id=None)
    event["attributes"].update(amount=-5, currency="EURO", opportunity_id=None)
    assert reasons(event) == (
        "invalid_timestamp: occurred_at is not an ISO 8601 date-time like 2026-01-10T15:12:30Z",
        "source_not_allowed: source 'ml' is not allowed for opportunity_created "
        "(allowed: api, cdc, crm, hubspot, salesforce)",
        "null_required: lead_id is null",
        "null_required: attributes.opportunity_id is null",
        "out_of_range: attributes.amount -5 is below the minimum 0",
        "too_long: attributes.currency has 4 characters (max 3)",
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_results_keep_input_order_and_lines_whatever_the_chunking(chunk_size):
    records = []
    for i, (et, v) in enumerate(VERSIONS):
        event = example_event(PLAN, et, v)
        if i % 3 == 0:
            event["source"] = "nowhere"
        records.append((10 + i, json.dumps(event).encode()))
    records.insert(4, (99, b"oops"))
    results = validate_records(records, PLAN, chunk_size=chunk_size)
    assert [r.line for r in results] == [line for line, _ in records]
    assert [r.ok for r in results] == [not (raw == b"oops" or b'"nowhere"' in raw) for _, raw in records]
    assert validate_records(records, PLAN, chunk_size=chunk_size) == results


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        validate_records([(1, CONTRACT_EXAMPLE)], PLAN, chunk_size=0)


def test_default_plan_is_used_when_none_is_given():
    assert validate_records([(1, CONTRACT_EXAMPLE)])[0].ok
