"""Reading JSONL event files (`.jsonl` or `.jsonl.gz`) as numbered raw lines.

Line numbers are physical (1-based, blank lines counted) so they match an editor. Lines come out as
bytes without their line end (LF or CRLF) and undecoded: an invalid UTF-8 line is the validator's
business (reason invalid_utf8), not a reason to stop reading. A UTF-8 BOM at the start of the file
is dropped. Blank lines are not records.

`LineReader` yields Arrow batches (`line_no`, `raw`) of many lines at once, split with numpy and
built zero-copy, for the engine to parse (ingestion); `iter_lines` yields one line at a time (plan
check). Both read the same way.

A plain file is memory-mapped a window at a time: a batch's values are slices of the file's pages
(no copy, nothing zeroed), and a window is unmapped once the batches that use it are released.
Gzip is decompressed with zlib directly rather than `gzip.open`, so that when a file is truncated
every complete line before the break is still delivered; the break is then reported (`LineReader.error`,
or `TruncatedFile` from `iter_lines`). The partial line at the break is not a record: nothing after
the break is invented. Concatenated gzip members (what `cat a.gz b.gz` makes) are read as one stream.
"""
from __future__ import annotations

import mmap
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa

BOM = b"\xef\xbb\xbf"
_READ = 1 << 20
# Lines are split and handed on in batches of about this many bytes: large enough that per-batch
# costs vanish, small enough to bound memory whatever the file size.
BATCH_BYTES = 32 << 20
LINE_SCHEMA = pa.schema([("line_no", pa.int64()), ("raw", pa.large_binary())])


class TruncatedFile(Exception):
    """The gzip stream ends early (or turns corrupt); `last_line` is the last complete line
    delivered before the break."""

    def __init__(self, path: Path, last_line: int, detail: str):
        self.path, self.last_line, self.detail = path, last_line, detail
        super().__init__(f"{path}: {detail} after line {last_line}")


class _Break(Exception):
    def __init__(self, detail: str):
        self.detail = detail


def _gzip_chunks(f: BinaryIO) -> Iterator[bytes]:
    decomp = zlib.decompressobj(wbits=31)
    fed = False  # has the current member's decompressor been given input?
    while raw := f.read(_READ):
        while raw:
            try:
                out = decomp.decompress(raw)
            except zlib.error as exc:
                raise _Break(f"corrupt gzip data ({exc})") from None
            fed = True
            if out:
                yield out
            if decomp.eof:  # end of one member; what follows is the next one
                raw = decomp.unused_data
                decomp, fed = zlib.decompressobj(wbits=31), False
            else:
                raw = b""
    if fed:  # input ended inside a member
        raise _Break("truncated gzip stream")


def _split(data: memoryview, first_line_no: int, strip_bom: bool) -> tuple[pa.RecordBatch, int]:
    """The complete lines of `data` (which ends with b"\\n") as a batch without blank lines, and the
    number of physical lines.

    Zero-copy: each value is a slice of `data` that still ends with its line end (LF or CRLF); the
    engine strips it (`STRIP_LINE_END_SQL`), and `iter_lines` strips it in Python. A BOM at the start
    of the file is skipped by the first offset."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = len(BOM) if strip_bom and data[:len(BOM)] == BOM else 0
    offsets[1:] = ends + 1
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    line_no = pa.array(np.arange(first_line_no, first_line_no + len(ends), dtype=np.int64))
    # Blank lines (only white space before the line end) are not records; only short lines can be.
    lengths = np.diff(offsets)
    short = np.flatnonzero(lengths <= 8)
    blank = [i for i in short if not bytes(data[offsets[i]:offsets[i + 1]]).strip()]
    batch = pa.RecordBatch.from_arrays([line_no, raw], schema=LINE_SCHEMA)
    if blank:
        keep = np.ones(len(ends), dtype=bool)
        keep[blank] = False
        batch = batch.filter(pa.array(keep))
    return batch, len(ends)


def strip_line_end(line: bytes) -> bytes:
    return line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line


# The same in the engine, for a `raw` BLOB column from a `LineReader` batch.
STRIP_LINE_END_SQL = ("raw[1 : octet_length(raw) - (case when raw[octet_length(raw) - 1 : octet_length(raw)] = "
                      "'\\x0D\\x0A'::blob then 2 when raw[octet_length(raw) : octet_length(raw)] = '\\x0A'::blob "
                      "then 1 else 0 end)]")


class LineReader:
    """Iterate a JSONL file as Arrow batches of (line_no, raw), raw still ending with its line end
    (see `_split`). After iteration, `lines` is the number of physical lines read, `records` the
    non-blank ones delivered, and `error` says why the file ended early (a broken gzip stream) or
    is None. `key_base` is added to every line number (a caller reading several files into one
    stream keeps them apart with it).

    Batches stay valid after the next one is read: each owns its bytes (a mapped window of the file,
    or for gzip a fresh buffer holding each decompressed byte once)."""

    def __init__(self, path: Path | str, batch_bytes: int = BATCH_BYTES, key_base: int = 0):
        self.path = Path(path)
        self.batch_bytes = batch_bytes
        self.key_base = key_base
        self.lines = 0
        self.records = 0
        self.last_record_line = 0
        self.error: str | None = None

    def _emit(self, data: memoryview) -> pa.RecordBatch:
        batch, lines = _split(data, self.key_base + self.lines + 1, strip_bom=self.lines == 0)
        self.lines += lines
        self.records += batch.num_rows
        if batch.num_rows:
            self.last_record_line = batch.column(0)[-1].as_py() - self.key_base
        return batch

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self.path.suffix == ".gz":
            yield from self._gzip_batches()
        else:
            yield from self._mapped_batches()

    def _mapped_batches(self) -> Iterator[pa.RecordBatch]:
        with self.path.open("rb") as f:
            size = f.seek(0, 2)
            pos = 0
            while pos < size:
                base = pos - pos % mmap.ALLOCATIONGRANULARITY
                length = min(size - base, pos - base + self.batch_bytes)
                while True:
                    window = mmap.mmap(f.fileno(), length, offset=base, access=mmap.ACCESS_READ)
                    cut = window.rfind(b"\n", pos - base) + 1
                    if cut or base + length == size:
                        break
                    length = min(size - base, length * 2)  # a line longer than the window
                if cut:
                    yield self._emit(memoryview(window)[pos - base:cut])
                    pos = base + cut
                else:  # a last line without a final newline is complete
                    yield self._emit(memoryview(window[pos - base:] + b"\n"))
                    pos = size

    def _gzip_batches(self) -> Iterator[pa.RecordBatch]:
        with self.path.open("rb") as f:
            blocks = _gzip_chunks(f)
            carry = b""  # the incomplete last line of the previous block
            while True:
                buf = bytearray(carry)
                try:
                    for piece in blocks:
                        buf += piece
                        if len(buf) >= self.batch_bytes:
                            break
                except _Break as brk:
                    # The partial line at the break is not a record: only complete lines are delivered.
                    self.error = brk.detail
                    cut = buf.rfind(b"\n") + 1
                    if cut:
                        yield self._emit(memoryview(buf)[:cut])
                    return
                if len(buf) == len(carry):  # end of file
                    if carry:  # a last line without a final newline is complete
                        yield self._emit(memoryview(bytearray(carry) + b"\n"))
                    return
                cut = buf.rfind(b"\n") + 1
                carry = bytes(buf[cut:])
                if cut:
                    yield self._emit(memoryview(buf)[:cut])


def iter_lines(path: Path | str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for every non-blank line of a .jsonl or .jsonl.gz file.
    Raises `TruncatedFile` after the last complete line of a broken gzip file."""
    reader = LineReader(path)
    for batch in reader:
        yield from zip(batch.column(0).to_pylist(), map(strip_line_end, batch.column(1).to_pylist()))
    if reader.error:
        raise TruncatedFile(reader.path, reader.last_record_line, reader.error)
