"""What run metadata may show of a row: no id or keyed hash that points at a person.

Previews in the UI are kept in Dagster's event log for good, where no erasure reaches them, so
they never hold what would link a person to them: the values of id columns (`lead_id`,
`user_id`, `event_id`, `source_id` and their `*_` forms) keep only their system prefix
(`hubspot:…`, `lead_…`), keyed hashes become `pii:…`, and so do such ids inside JSON texts.
Counts, channels, dates and amounts stay as they are.
"""
from __future__ import annotations

import re

from crm_platform.ingest.sql_validation import HASH_HEX_CHARS, HASH_PREFIX

MASK = "…"
_ID_SUFFIXES = ("lead_id", "user_id", "event_id", "source_id")
_HASH = re.compile(re.escape(HASH_PREFIX) + f"[0-9a-f]{{{HASH_HEX_CHARS}}}")
_JSON_ID = re.compile(r'("(?:\w*_)?(?:' + "|".join(_ID_SUFFIXES) + r')"\s*:\s*")([^"]*)(")')
_PREFIX = re.compile(r"^[A-Za-z]+[:_]")


def is_id_column(column: str) -> bool:
    return any(column == s or column.endswith("_" + s) for s in _ID_SUFFIXES)


def mask_id(value: str) -> str:
    """`hubspot:3000136` -> `hubspot:…`, `lead_10052` -> `lead_…`, anything else -> `…`."""
    prefix = _PREFIX.match(value)
    return (prefix.group(0) if prefix else "") + MASK


def redact(column: str, value: str) -> str:
    """A cell's text as metadata may show it."""
    if is_id_column(column):
        return mask_id(value) if value else value
    value = _HASH.sub(HASH_PREFIX + MASK, value)
    return _JSON_ID.sub(lambda m: m.group(1) + (mask_id(m.group(2)) if m.group(2) else "") + m.group(3), value)
