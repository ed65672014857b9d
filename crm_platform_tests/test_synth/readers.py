"""Reading landed files the way a careful consumer would: gzip or not, a cut-off gzip, a BOM, CRLF."""
from __future__ import annotations

import csv
import io
import zlib
from pathlib import Path

BOM = b"\xef\xbb\xbf"


def raw_content(path: Path) -> tuple[bytes, bool]:
    """Decompressed bytes and whether the gzip stream ended properly."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        d = zlib.decompressobj(31)
        out = d.decompress(data)
        return out, d.eof
    return data, True


def event_lines(path: Path) -> tuple[list[bytes], bytes]:
    """Complete lines without their line ends (BOM removed from the first), and any partial tail."""
    data, _ = raw_content(path)
    data = data.removeprefix(BOM)
    parts = data.split(b"\n")
    tail = parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts], tail


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]
