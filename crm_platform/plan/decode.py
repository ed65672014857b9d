"""From one raw record (bytes, str or an already parsed dict) to a JSON object, or a reason.

Strict JSON: NaN and Infinity are not JSON, a lone UTF-16 surrogate cannot be stored as UTF-8, and a
line that is not UTF-8 is reported as such rather than as bad JSON. orjson is used when installed
(about 2.5x faster here); anything it refuses is re-parsed with the standard library, which decides
and words the reason, so results never depend on which parser is installed.
"""
from __future__ import annotations

import json
import re
from typing import Any

try:  # optional accelerator
    import orjson

    _fast_loads = orjson.loads
    _FastError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None
    _FastError = ValueError

BOM = "\ufeff"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for all records: `json.loads(..., parse_constant=...)` would build one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# A \uD800-\uDFFF escape: the only way a lone surrogate gets into parsed JSON.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _std_loads(text: str) -> tuple[Any, str | None]:
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        if not text or text.isspace():
            return None, "invalid_json: empty record"
        return None, f"invalid_json: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, f"invalid_json: {exc}"
    # Escapes of UTF-16 surrogates decode to lone surrogates unless paired, and no UTF-8 store
    # accepts those.
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(
            json.dumps(value, ensure_ascii=False)):
        return None, "invalid_json: lone UTF-16 surrogate in a \\u escape"
    return value, None


def parse_json(raw: bytes | bytearray | memoryview | str) -> tuple[Any, str | None]:
    """(value, None) or (None, reason). Leading BOM ignored (as RFC 8259 allows parsers to)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(raw), None
        except _FastError:
            pass  # decide below, with the standard library's rules and wording
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = (raw if isinstance(raw, bytes) else bytes(raw)).decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"invalid_utf8: byte 0x{exc.object[exc.start]:02x} at position {exc.start} is not UTF-8"
    if text[:1] == BOM:
        text = text[1:]
    return _std_loads(text)


def parse_record(raw: Any) -> tuple[dict | None, str | None]:
    """A JSON object from `raw`, or the reason it is not one."""
    if isinstance(raw, dict):
        return raw, None
    if _fast_loads is not None and type(raw) is bytes:  # the hot path: one line of a file
        try:
            value = _fast_loads(raw)
            if type(value) is dict:
                return value, None
        except _FastError:
            pass
    if not isinstance(raw, (bytes, bytearray, memoryview, str)):
        return None, f"not_an_object: record is a Python {type(raw).__name__}"
    value, reason = parse_json(raw)
    if reason is not None:
        return None, reason
    if not isinstance(value, dict):
        return None, f"not_an_object: record is a JSON {_json_name(value)}, expected an object"
    return value, None


def _json_name(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null"
