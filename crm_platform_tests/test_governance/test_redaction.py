"""Run metadata masks what would link a person to it: ids keep their system prefix, hashes their
`pii:` prefix, ids inside JSON texts too; counts, channels and dates stay."""
import pyarrow as pa

from crm_platform.defs.conventions import markdown_table
from crm_platform.governance.redaction import is_id_column, redact


def test_id_columns_keep_only_their_prefix():
    assert redact("lead_id", "hubspot:3000136") == "hubspot:…"
    assert redact("record_lead_id", "lead_10052") == "lead_…"
    assert redact("conversion_event_id", "evt_M3ZDF66WY46HNM7NP135") == "evt_…"
    assert redact("source_id", "3000136") == "…"
    assert redact("user_id", "") == ""
    assert not is_id_column("campaign_id") and not is_id_column("channel") and not is_id_column("model_version")


def test_hashes_and_ids_inside_texts_are_masked():
    assert redact("evidence", '{"email": "pii:4e71b1418f96a563bceb4edc0ade9677"}') == '{"email": "pii:…"}'
    assert redact("attributes", '{"merged_lead_id":"lead_1","amount":3,"user_id": "u_9"}') == \
        '{"merged_lead_id":"lead_…","amount":3,"user_id": "u_…"}'
    assert redact("channel", "paid_search") == "paid_search"
    assert redact("reason", "pii:short") == "pii:short"  # not a hash


def test_markdown_previews_are_redacted():
    table = pa.table({"lead_id": ["salesforce:00Q5g00008xMvMNEA0"], "touches": [3],
                      "context": ['{"ip": "pii:8953b2c2d2e76b3844e5c6ef9de5e1e5"}']})
    md = markdown_table(table)
    assert "00Q5g" not in md and "8953b2" not in md
    assert "| salesforce:… | 3 | {\"ip\": \"pii:…\"} |" in md
