"""The vocabulary every part of the plan code shares: property types, envelope fields and the three
string formats (timestamp, email, url).

The regexes live here once. The pandera path runs them with pyarrow (RE2) as full matches, the JSON
Schema export anchors them for `pattern`, and both must agree; so they use only syntax the three
engines (Python `re`, RE2, ECMA-262) read the same way: explicit ASCII classes (`\\d` is Unicode in
Python), no backreferences, no lookbehind.
"""
from __future__ import annotations

import re

PROPERTY_TYPES: tuple[str, ...] = (
    "string", "integer", "number", "boolean", "timestamp", "enum", "email", "url", "json",
)
# Types whose values are JSON strings, so max_length applies (default below).
STRING_TYPES: frozenset[str] = frozenset({"string", "timestamp", "enum", "email", "url"})
# Types on which a plan author may set max_length (enum and timestamp are bounded by their values).
MAX_LENGTH_TYPES: frozenset[str] = frozenset({"string", "email", "url"})
NUMERIC_TYPES: frozenset[str] = frozenset({"integer", "number"})
# A 100k-character "name" is a producer bug, not a name: every string is bounded.
DEFAULT_MAX_LENGTH = 4096
# Ids (event_id, lead_id, user_id, producer_id) are keys, not prose.
ID_MAX_LENGTH = 200

# The envelope of a canonical event (CONTRACT §5). A property may not be named like one of these.
ENVELOPE_FIELDS: tuple[str, ...] = (
    "event_type", "schema_version", "event_id", "occurred_at", "source",
    "lead_id", "user_id", "producer_id", "attributes", "context",
)
# `touch` is not part of the canonical envelope, but producers nest campaign properties in it, so it
# is reserved as well.
RESERVED_NAMES: tuple[str, ...] = ENVELOPE_FIELDS + ("touch",)

FIRST_VERSION = "2026-01-1"
VERSION_RE = re.compile(r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])-(?P<n>[1-9][0-9]*)$")
# Property, context-field and event-type names become column names (`attributes.<name>`) and SQL
# identifiers downstream: no dots, spaces or dashes.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# RFC 3339 profile of ISO 8601: date, `T`, time, optional fraction (at most nanoseconds), offset.
# Seconds stop at 59: leap seconds are not representable downstream.
_DATE = "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIMESTAMP_BODY = f"{_DATE}T{_TIME}{_OFFSET}"
# The same without an offset: recognised only to say "naive" instead of "invalid".
NAIVE_TIMESTAMP_BODY = f"{_DATE}T{_TIME}"

# The WHATWG "valid e-mail address" grammar, plus a dot in the domain: CRM addresses are
# routable addresses, `jane@localhost` is a typo.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_BODY = f"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\\.{_LABEL})+"

# An absolute http(s) URL made of RFC 3986 characters (ASCII only; percent-encode the rest).
_URL_CHARS = "A-Za-z0-9._~%!$&'()*+,;=:@"
URL_BODY = f"https?://[A-Za-z0-9\\[][{_URL_CHARS}\\[\\]-]*(?:[/?#][{_URL_CHARS}/?#\\[\\]-]*)?"

FORMAT_BODIES: dict[str, str] = {
    "timestamp": TIMESTAMP_BODY,
    "email": EMAIL_BODY,
    "url": URL_BODY,
}


def full_match_pattern(body: str) -> str:
    """`body` anchored for an engine that searches (JSON Schema `pattern`, RE2 via pyarrow).

    `(?!\\n)` before `$` makes Python's `$` (which also matches before a final newline) behave
    like ECMA-262's and RE2's: the whole string, nothing after it.
    """
    return f"^(?:{body})(?!\\n)$"


def re2_pattern(body: str) -> str:
    """`body` anchored for RE2 (no lookahead there; its `$` is already the end of the text)."""
    return f"^(?:{body})$"


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key of a `YYYY-MM-N` schema version (raises ValueError when malformed)."""
    m = VERSION_RE.match(version)
    if not m:
        raise ValueError(f"bad schema version {version!r}")
    return int(m["year"]), int(m["month"]), int(m["n"])
