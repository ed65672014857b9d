"""Loading the plan, and every kind of broken plan rejected with exact, located messages."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_platform.plan.loader import PlanError, lint_plan, load_plan
from crm_platform_tests.test_plan.conftest import edit, line_of

TYPES = "string, integer, number, boolean, timestamp, enum, email, url, json"
SOURCES = ("ads, api, cdc, consent_platform, crm, dialer, email_platform, hubspot, identity, import, manual, "
           "marketing, ml, salesforce, web, webform")
ACT = "events/activity_logged.yaml: versions[1] (2026-06-1)"
TOUCH = "events/campaign_touch.yaml: versions[1] (2026-04-1)"


def test_the_real_plan_loads(plan):
    assert sorted(plan.event_types) == [
        "activity_logged", "campaign_spend_reported", "campaign_touch", "consent_changed", "erasure_requested", "lead_created", "lead_merged", "lead_stage_changed",
        "lead_unmerged", "lead_updated", "manual_label", "model_score_computed", "opportunity_closed",
        "opportunity_created", "record_deleted",
    ]
    assert re.fullmatch(r"[0-9a-f]{12}", plan.version)
    assert lint_plan() == []
    # Every version list starts at 2026-01-1 and helpers agree on the current version.
    for et in plan.event_types.values():
        assert et.versions[0].version == "2026-01-1"
        assert plan.current_version(et.event_type) == et.versions[-1].version == et.current.version
    assert plan.event_types["activity_logged"].version_names == ("2026-01-1", "2026-06-1")
    assert plan.get_version("campaign_touch", "2026-04-1").required == ("channel", "touch_type")
    assert plan.get_version("campaign_touch", "2099-01-1") is None
    assert plan.get_version("nope", "2026-01-1") is None
    assert "crm" in plan.event_types["lead_created"].allowed_sources


def test_plan_values_are_parsed_faithfully(plan):
    # The descriptions with commas in flow mappings (fixed with quotes) are whole.
    assert plan.context["country"].description == "ISO 3166-1 alpha-2, used for data residency."
    evidence = plan.get_version("lead_merged", "2026-01-1").properties["evidence"]
    assert evidence.description == "Which normalized fields agreed (hashes and rule names only, no PII)."
    email = plan.get_version("lead_created", "2026-01-1").properties["email"]
    assert (email.type, email.pii, email.required, email.effective_max_length) == ("email", True, False, 4096)
    steps = plan.get_version("activity_logged", "2026-06-1").migrations
    assert [m.to_dict() for m in steps] == [
        {"rename": {"from": "duration_sec", "to": "duration_seconds"}},
        {"rename": {"from": "rep_id", "to": "owner_id"}},
        {"default": {"property": "outcome", "value": "completed"}},
    ]


def test_default_plan_is_cached_and_explicit_paths_are_not(plan, plan_copy):
    assert load_plan() is load_plan()
    assert load_plan(plan_copy) is not load_plan(plan_copy)
    assert load_plan(plan_copy) == plan
    assert load_plan(plan_copy / "plan.yaml").version == plan.version  # a plan.yaml path works too


# (file, old, new) edits -> the exact problems, in order.
CASES = {
    "unknown type": (
        [("events/activity_logged.yaml", "duration_seconds: {type: integer,", "duration_seconds: {type: integr,")],
        [f"{ACT}.properties.duration_seconds: unknown type 'integr' (expected one of: {TYPES})"],
    ),
    "envelope field as property (any case)": (
        [("events/lead_created.yaml", "      email: {type: email, pii: true}\n",
          "      email: {type: email, pii: true}\n      lead_id: {type: string}\n      Touch: {type: json}\n")],
        ["events/lead_created.yaml: versions[0] (2026-01-1).properties.lead_id: property 'lead_id' conflicts with the "
         "envelope field 'lead_id' (choose another name)",
         "events/lead_created.yaml: versions[0] (2026-01-1).properties.Touch: property 'Touch' conflicts with the "
         "envelope field 'touch' (choose another name)"],
    ),
    "names equal ignoring case": (
        [("events/lead_updated.yaml", "      email: {type: email, pii: true}\n",
          "      email: {type: email, pii: true}\n      Email: {type: email, pii: true}\n")],
        ["events/lead_updated.yaml: versions[0] (2026-01-1).properties.Email: property 'Email' conflicts with "
         "'email': names must differ other than by case"],
    ),
    "rename onto an existing property": (
        [("events/activity_logged.yaml", "      rep_id: {type: string, max_length: 100}\n  - version: 2026-06-1",
          "      rep_id: {type: string, max_length: 100}\n      duration_seconds: {type: integer, minimum: 0}\n"
          "  - version: 2026-06-1")],
        [f"{ACT}.migrations[0].rename.to: 'duration_seconds' already exists in 2026-01-1: a rename cannot target it"],
    ),
    "enum without values": (
        [("events/consent_changed.yaml", "method: {type: enum, values: [banner, form, email_link, support_request, import]}",
          "method: {type: enum}")],
        ["events/consent_changed.yaml: versions[0] (2026-01-1).properties.method: enum without values (add values: [...])"],
    ),
    "enum values that are not strings": (
        [("events/model_score_computed.yaml", "values: [A, B, C, D]", "values: [A, 2]")],
        ["events/model_score_computed.yaml: versions[0] (2026-01-1).properties.tier: enum values[1] must be a "
         "non-empty string, got a number (2) (quote it: YAML reads 1, 2.5, true as non-strings)"],
    ),
    "minimum above maximum": (
        [("events/model_score_computed.yaml", "minimum: 0, maximum: 1}", "minimum: 2, maximum: 1}")],
        ["events/model_score_computed.yaml: versions[0] (2026-01-1).properties.score: minimum 2 is greater than maximum 1"],
    ),
    "max_length on a number": (
        [("events/opportunity_created.yaml", "amount: {type: number, required: true, minimum: 0}",
          "amount: {type: number, required: true, minimum: 0, max_length: 10}")],
        ["events/opportunity_created.yaml: versions[0] (2026-01-1).properties.amount: max_length applies only to "
         "types email, string, url, not number"],
    ),
    "misspelt setting": (
        [("events/manual_label.yaml", "label_name: {type: string, required: true", "label_name: {type: string, requried: true")],
        ["events/manual_label.yaml: versions[0] (2026-01-1).properties.label_name: unknown key 'requried' (did you "
         "mean 'required'?) (allowed: type, required, pii, values, max_length, minimum, maximum, description)"],
    ),
    "versions out of order": (
        [("events/campaign_touch.yaml", "version: 2026-04-1", "version: 2025-12-1")],
        ["events/campaign_touch.yaml: versions[1] (2025-12-1): versions out of order: 2025-12-1 comes after 2026-01-1 "
         "(list versions oldest first)"],
    ),
    "duplicated version": (
        [("events/campaign_touch.yaml", "version: 2026-04-1", "version: 2026-01-1")],
        ["events/campaign_touch.yaml: versions[1] (2026-01-1): duplicate version 2026-01-1 (also versions[0])"],
    ),
    "bad version format": (
        [("events/campaign_touch.yaml", "version: 2026-04-1", "version: 2026-4-1")],
        ["events/campaign_touch.yaml: versions[1] (2026-4-1): bad version format '2026-4-1' (expected YYYY-MM-N, "
         "e.g. 2026-01-1)"],
    ),
    "first version is not 2026-01-1": (
        [("events/manual_label.yaml", "version: 2026-01-1", "version: 2026-02-1")],
        ["events/manual_label.yaml: versions[0] (2026-02-1): the first version must be 2026-01-1, got '2026-02-1'"],
    ),
    "later version without migrations": (
        [("events/campaign_touch.yaml",
          "    migrations:\n      - default: {property: touch_type, value: click}\n      - drop: position\n", "")],
        [f"{TOUCH}: missing migrations from 2026-01-1 (write migrations: [] if none are needed)"],
    ),
    "new required property without a default": (
        [("events/campaign_touch.yaml", "      - default: {property: touch_type, value: click}\n", "")],
        [f"{TOUCH}.properties.touch_type: required property absent from 2026-01-1, with neither a rename nor a "
         "default (add a migration: default: {property: touch_type, value: ...})"],
    ),
    "optional property made required without a default": (
        [("events/activity_logged.yaml", "      - default: {property: outcome, value: completed}\n", "")],
        [f"{ACT}.properties.outcome: becomes required but is optional in 2026-01-1; events without it cannot be "
         "upgraded (add a migration: default: {property: outcome, value: ...})"],
    ),
    "property gone without drop or rename": (
        [("events/campaign_touch.yaml", "      - drop: position\n", "")],
        [f"{TOUCH}: property 'position' of 2026-01-1 is gone and neither dropped nor renamed (add a migration: "
         "drop: position, or rename: {from: position, to: ...})"],
    ),
    "rename from a property that does not exist": (
        [("events/activity_logged.yaml", "from: duration_sec,", "from: duration_secs,")],
        [f"{ACT}.migrations[0].rename.from: no property 'duration_secs' in 2026-01-1",
         f"{ACT}: property 'duration_sec' of 2026-01-1 is gone and neither dropped nor renamed (add a migration: "
         "drop: duration_sec, or rename: {from: duration_sec, to: ...})"],
    ),
    "default for a property that does not exist": (
        [("events/activity_logged.yaml", "property: outcome, value", "property: outcom, value")],
        [f"{ACT}.migrations[2].default.property: no property 'outcom' in 2026-06-1",
         f"{ACT}.properties.outcome: becomes required but is optional in 2026-01-1; events without it cannot be "
         "upgraded (add a migration: default: {property: outcome, value: ...})"],
    ),
    "default that is not a valid value": (
        [("events/activity_logged.yaml", "value: completed}", "value: done}")],
        [f"{ACT}.migrations[2].default.value: 'done' is not a valid value of 'outcome' (outcome 'done' is not one of: "
         "connected, no_answer, voicemail, held, no_show, sent, replied, bounced, completed)"],
    ),
    "drop of a property that stays": (
        [("events/campaign_touch.yaml", "      - drop: position\n", "      - drop: position\n      - drop: channel\n")],
        [f"{TOUCH}.migrations[2].drop: 'channel' is dropped but still a property of 2026-04-1"],
    ),
    "type changed across versions": (
        [("events/activity_logged.yaml", "      owner_id: {type: string, max_length: 100}\n", "      owner_id: {type: integer}\n")],
        [f"{ACT}.properties.owner_id: type changes from string ('rep_id' in 2026-01-1) to integer: migrations do not "
         "convert values, add a property with a new name instead"],
    ),
    "enum value removed across versions": (
        [("events/activity_logged.yaml",
          "      direction: {type: enum, required: true, values: [inbound, outbound]}\n      outcome: {type: enum, required: true",
          "      direction: {type: enum, required: true, values: [inbound]}\n      outcome: {type: enum, required: true")],
        [f"{ACT}.properties.direction: enum values removed since 2026-01-1: outbound (events of the older version "
         "could not be upgraded)"],
    ),
    "unknown source": (
        [("events/lead_created.yaml", "sources: [webform,", "sources: [webfrom,")],
        [f"events/lead_created.yaml: sources[0]: unknown source 'webfrom' (did you mean 'webform'?) (declared in "
         f"plan.yaml: {SOURCES})"],
    ),
    "unknown consent purpose": (
        [("events/lead_created.yaml", "consent_purpose: contract", "consent_purpose: marketting")],
        ["events/lead_created.yaml: consent_purpose: unknown consent purpose 'marketting' (declared in plan.yaml: "
         "analytics, contract, marketing, profiling)"],
    ),
    "missing required keys": (
        [("events/manual_label.yaml", "owner: data-science\n", ""), ("events/manual_label.yaml", "retention_days: 1095\n", ""),
         ("events/manual_label.yaml", "identity: lead\n", "")],
        ["events/manual_label.yaml: missing required key 'owner'",
         "events/manual_label.yaml: missing required key 'identity'",
         "events/manual_label.yaml: missing required key 'retention_days'"],
    ),
    "event_type not matching the file name": (
        [("events/manual_label.yaml", "event_type: manual_label\n", "event_type: manual_labels\n")],
        ["events/manual_label.yaml: event_type: 'manual_labels' does not match the file name 'manual_label.yaml'"],
    ),
    "retention_days zero": (
        [("events/manual_label.yaml", "retention_days: 1095", "retention_days: 0")],
        ["events/manual_label.yaml: retention_days: must be a positive integer (days), got a number (0)"],
    ),
    "retention_days as prose": (
        [("events/manual_label.yaml", "retention_days: 1095", "retention_days: 3 years")],
        ["events/manual_label.yaml: retention_days: must be a positive integer (days), got a string ('3 years')"],
    ),
    "identity unknown": (
        [("events/manual_label.yaml", "identity: lead\n", "identity: person\n")],
        ["events/manual_label.yaml: identity: must be one of: lead, lead_or_user, none, got a string ('person')"],
    ),
    "invalid YAML": (
        [("events/lead_unmerged.yaml", "owner: data-platform", "owner: [data-platform")],
        ["events/lead_unmerged.yaml: invalid YAML: expected ',' or ']', but got ':' (line 4, column 9)"],
    ),
    "crm not declared": (
        [("plan.yaml", "  crm: The CRM itself, through its API or UI (allowed for every event type).\n", "")],
        ["plan.yaml: sources: 'crm' must be declared: every event type allows it (CONTRACT §5)"],
    ),
    "bad context field": (
        [("plan.yaml", "  locale: {type: string, max_length: 35}", "  locale: {type: text, max_length: 35}")],
        [f"plan.yaml: context.locale: unknown type 'text' (expected one of: {TYPES})"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_plan_is_rejected_with_exact_messages(plan_copy: Path, case: str):
    edits, expected = CASES[case]
    for file, old, new, *count in edits:
        edit(plan_copy / file, old, new, *count)
    with pytest.raises(PlanError) as info:
        load_plan(plan_copy)
    assert info.value.problems == expected
    assert lint_plan(plan_copy) == expected
    assert f"has {len(expected)} problem(s):" in str(info.value)


def test_narrowed_max_length_is_rejected(plan_copy: Path):
    path = plan_copy / "events/campaign_touch.yaml"
    text = path.read_text()
    head, tail = text.split("  - version: 2026-04-1")
    path.write_text(head + "  - version: 2026-04-1" + tail.replace("click_id: {type: string, max_length: 500}",
                                                                     "click_id: {type: string, max_length: 400}"))
    assert lint_plan(plan_copy) == [
        f"{TOUCH}.properties.click_id: max_length shrinks from 500 ('click_id' in 2026-01-1) to 400"]


def test_duplicate_property_is_detected_with_lines(plan_copy: Path):
    path = plan_copy / "events/lead_stage_changed.yaml"
    edit(path, "      reason: {type: string, max_length: 500}\n",
         "      reason: {type: string, max_length: 500}\n      reason: {type: string, max_length: 80}\n")
    first = line_of(path, "reason:")
    assert lint_plan(plan_copy) == [
        f"events/lead_stage_changed.yaml: versions[0] (2026-01-1).properties.reason: duplicate property: defined at "
        f"lines {first} and {first + 1} (YAML would silently keep the last)"]


@pytest.mark.parametrize("file, old, new, where", [
    ("events/manual_label.yaml", "owner: data-science\n", "owner: data-science\nowner: sales-ops\n",
     "events/manual_label.yaml: owner"),
    ("plan.yaml", "  ml: The platform's lead-scoring models.\n",
     "  ml: The platform's lead-scoring models.\n  ml: Another model.\n", "plan.yaml: sources.ml"),
    ("events/activity_logged.yaml", "rename: {from: rep_id, to: owner_id}", "rename: {from: rep_id, to: owner_id, to: x}",
     f"{ACT}.migrations[1].rename.to"),
])
def test_duplicate_keys_are_detected_anywhere(plan_copy: Path, file, old, new, where):
    edit(plan_copy / file, old, new)
    problems = lint_plan(plan_copy)
    assert len(problems) >= 1
    assert problems[0].startswith(f"{where}: duplicate key: defined at lines ")
    assert problems[0].endswith(" (YAML would silently keep the last)")


def test_all_problems_of_all_files_are_listed_together(plan_copy: Path):
    edit(plan_copy / "events/lead_created.yaml", "consent_purpose: contract", "consent_purpose: marketting")
    edit(plan_copy / "events/manual_label.yaml", "retention_days: 1095", "retention_days: -5")
    edit(plan_copy / "events/activity_logged.yaml", "duration_seconds: {type: integer,", "duration_seconds: {type: integr,")
    problems = lint_plan(plan_copy)
    assert [p.split(":")[0] for p in problems] == [
        "events/activity_logged.yaml", "events/lead_created.yaml", "events/manual_label.yaml"]


def test_yaml_1_1_booleans_and_dates_stay_strings(plan_copy: Path):
    # `no`, `off`, `NO` would be booleans in YAML 1.1 (and 2026-02-10 a date): here they are strings.
    edit(plan_copy / "events/consent_changed.yaml", "values: [banner, form, email_link, support_request, import]",
         "values: [banner, form, no, 'off', NO, 2026-02-10]")
    method = load_plan(plan_copy).get_version("consent_changed", "2026-01-1").properties["method"]
    assert method.values == ("banner", "form", "no", "off", "NO", "2026-02-10")


def test_misnamed_event_file_and_missing_events_dir(plan_copy: Path):
    (plan_copy / "events/page_viewed.yml").write_text("event_type: page_viewed\n")
    assert lint_plan(plan_copy) == [
        "events/page_viewed.yml: event files must end in .yaml; this one would be ignored "
        "(rename it to page_viewed.yaml)"]
    for path in (plan_copy / "events").iterdir():
        path.unlink()
    (plan_copy / "events").rmdir()
    assert lint_plan(plan_copy) == ["events/: directory not found (one <event_type>.yaml per event type)"]


def test_plan_version_is_a_content_hash(plan, plan_copy: Path):
    assert load_plan(plan_copy).version == plan.version
    # Layout and comments do not change the meaning, so not the version either.
    path = plan_copy / "events/lead_merged.yaml"
    path.write_text("# reviewed by data-platform\n" + path.read_text().replace("owner: data-platform", "owner:   data-platform"))
    assert load_plan(plan_copy).version == plan.version
    # Any change of meaning does.
    edit(path, "match_score: {type: number, minimum: 0, maximum: 1}", "match_score: {type: number, minimum: 0, maximum: 100}")
    changed = load_plan(plan_copy).version
    assert changed != plan.version
    assert load_plan(plan_copy).version == changed  # and it is stable
    edit(path, "retention_days: 2555", "retention_days: 2556")
    assert load_plan(plan_copy).version not in (plan.version, changed)
