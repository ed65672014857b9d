"""The strict YAML reader and the JSONL reader."""
from __future__ import annotations

import gzip

import pytest

from crm_platform.plan.jsonl import TruncatedFile, iter_lines
from crm_platform.plan.strict_yaml import DuplicateKeyError, load_yaml, load_yaml_strict
from crm_platform.plan.validate import iter_validate


def test_strict_yaml_refuses_duplicate_keys_at_any_depth():
    with pytest.raises(DuplicateKeyError, match="found duplicate key 'b' \\(first at line 2\\)"):
        load_yaml_strict("a:\n  b: 1\n  b: 2\n")
    with pytest.raises(DuplicateKeyError):
        load_yaml_strict("items:\n  - {x: 1, x: 1}\n")
    assert load_yaml_strict("a: {b: 1}\nc: [1, 2]\n") == {"a": {"b": 1}, "c": [1, 2]}


def test_load_yaml_reports_every_duplicate_with_its_path():
    doc = load_yaml("a: 1\nv:\n  - {p: 1, p: 2}\n  - q: {r: 1, r: 2}\na: 3\n")
    assert [(d.path, d.key, d.first_line, d.line) for d in doc.duplicates] == [
        (("v", 0), "p", 3, 3), (("v", 1, "q"), "r", 4, 4), ((), "a", 1, 5)]


def test_yaml_scalars_follow_the_1_2_core_schema():
    assert load_yaml_strict("[yes, no, on, off, y, n, NO, true, False, 010, 0x1f, 1_000, 12, -3, 1.5, 1e3, "
                            "2026-01-10, 2026-01-1, 12:30:00, ~, null]") == [
        "yes", "no", "on", "off", "y", "n", "NO", True, False, "010", "0x1f", "1_000", 12, -3, 1.5, 1000.0,
        "2026-01-10", "2026-01-1", "12:30:00", None, None]


def test_jsonl_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf{}\r\n\r\n  \n{\"a\": 1}\n\xff\r\n{\"last\": true}")
    assert list(iter_lines(path)) == [(1, b"{}"), (4, b'{"a": 1}'), (5, b"\xff"), (6, b'{"last": true}')]


def test_jsonl_gzip_with_several_members(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(b"{}\n" * 3) + gzip.compress(b'{"b": 2}\n'))
    assert list(iter_lines(path)) == [(1, b"{}"), (2, b"{}"), (3, b"{}"), (4, b'{"b": 2}')]
    (tmp_path / "empty.jsonl.gz").write_bytes(b"")
    assert list(iter_lines(tmp_path / "empty.jsonl.gz")) == []


def test_truncated_gzip_delivers_complete_lines_then_raises(tmp_path):
    data = b"".join(b'{"i": %d}\n' % i for i in range(50_000))
    blob = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[:-20])  # the trailer and some data are missing
    got = []
    with pytest.raises(TruncatedFile) as info:
        for item in iter_lines(path):
            got.append(item)
    assert got == [(i + 1, b'{"i": %d}' % i) for i in range(len(got))]  # only whole lines, in order
    assert info.value.last_line == len(got) and len(got) > 40_000
    assert str(info.value) == f"{path}: truncated gzip stream after line {len(got)}"


def test_iter_validate_yields_what_was_read_before_a_failing_input():
    def records():
        yield 1, b"{}"
        yield 2, b"[]"
        raise TruncatedFile("x.jsonl.gz", 2, "truncated gzip stream")

    seen = []
    with pytest.raises(TruncatedFile):
        for result in iter_validate(records(), chunk_size=100):
            seen.append(result.line)
    assert seen == [1, 2]
