"""The size-independent checks again, on a dataset generated in several chunks over 400 days: the
state carried from chunk to chunk (ids, re-send rings, appended gzip streams, the CDC spool) and a
period across a year boundary must keep the truth exact."""
from __future__ import annotations

import pytest

from . import test_events as ev
from . import test_sources as src
from . import test_truth_consistency as tc

CHECKS = [
    tc.test_manifest_lists_every_landed_file_with_its_hash_and_records,
    tc.test_expected_outcomes_per_event_file_add_up,
    tc.test_each_invalid_record_is_there_and_of_its_kind,
    tc.test_invalid_rate_is_between_one_and_two_percent,
    tc.test_event_ids_of_accepted_lines_are_unique,
    tc.test_identity_covers_exactly_the_source_records,
    tc.test_every_person_has_identity_rows_and_some_have_several_lead_ids,
    tc.test_converted_persons_have_their_won_opportunity_in_the_events,
    tc.test_file_quirks,
    ev.test_every_line_not_listed_as_invalid_is_a_valid_event,
    ev.test_timestamps_carry_several_offsets,
    src.test_debezium_change_events,
    src.test_spend_export_and_channels,
    src.test_salesforce_exports,
]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("test_") for c in CHECKS])
def test_check_holds_across_chunks(chunked, check):
    check(chunked)


def test_chunked_run_used_several_chunks_and_many_weeks(chunked):
    assert chunked.summary["persons"] == 700
    weeks = {rel.split("/")[2][:8] for rel, _ in chunked.lines}
    assert len(weeks) > 50 and any(w.startswith("2025") for w in weeks)
