"""Reading JSONL event files (`.jsonl` or `.jsonl.gz`) as numbered raw lines.

Line numbers are physical (1-based, blank lines counted) so they match an editor. Lines come out as
bytes without their line end (LF or CRLF) and undecoded: an invalid UTF-8 line is the validator's
business (reason invalid_utf8), not a reason to stop reading. A UTF-8 BOM at the start of the file
is dropped. Blank lines are not records.

Gzip is decompressed with zlib directly rather than `gzip.open`, so that when a file is truncated
every complete line before the break is still delivered; the break is then raised as
`TruncatedFile`. Concatenated gzip members (what `cat a.gz b.gz` makes) are read as one stream.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20


class TruncatedFile(Exception):
    """The gzip stream ends early (or turns corrupt); `last_line` is the last complete line
    delivered before the break."""

    def __init__(self, path: Path, last_line: int, detail: str):
        self.path, self.last_line, self.detail = path, last_line, detail
        super().__init__(f"{path}: {detail} after line {last_line}")


def _plain_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


def _gzip_chunks(f: BinaryIO, path: Path, progress: list[int]) -> Iterator[bytes]:
    decomp = zlib.decompressobj(wbits=31)
    fed = False  # has the current member's decompressor been given input?
    while raw := f.read(_CHUNK):
        while raw:
            try:
                out = decomp.decompress(raw)
            except zlib.error as exc:
                raise TruncatedFile(path, progress[0], f"corrupt gzip data ({exc})") from None
            fed = True
            if out:
                yield out
            if decomp.eof:  # end of one member; what follows is the next one
                raw = decomp.unused_data
                decomp, fed = zlib.decompressobj(wbits=31), False
            else:
                raw = b""
    if fed:  # input ended inside a member
        raise TruncatedFile(path, progress[0], "truncated gzip stream")


def iter_lines(path: Path | str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for every non-blank line of a .jsonl or .jsonl.gz file.
    Raises `TruncatedFile` after the last complete line of a broken gzip file."""
    path = Path(path)
    progress = [0]  # last line number delivered, for the truncation message
    with path.open("rb") as f:
        chunks = _gzip_chunks(f, path, progress) if path.suffix == ".gz" else _plain_chunks(f)
        pending = b""
        line_no = 0
        for chunk in chunks:
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()  # incomplete last line (or b"" after a final newline)
            for line in lines:
                line_no += 1
                if line_no == 1 and line.startswith(BOM):
                    line = line[len(BOM):]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line.strip():
                    progress[0] = line_no
                    yield line_no, line
        if pending:
            line_no += 1
            if line_no == 1 and pending.startswith(BOM):
                pending = pending[len(BOM):]
            if pending.endswith(b"\r"):
                pending = pending[:-1]
            if pending.strip():
                yield line_no, pending
