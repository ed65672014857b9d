"""Writing landed files: appended in pieces (one per chunk), gzip without time or name, and hashed.

Gzip is a raw zlib stream with a gzip header (wbits=31): zlib writes mtime 0 and no file name, so the
bytes depend only on the content. A file is never held in memory whole.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import zlib
from pathlib import Path

GZIP_LEVEL = 6


def json_encoder(item_sep: str, key_sep: str):
    """json.dumps(ensure_ascii=False) with the C encoder built once instead of per call (about 25% faster)."""
    slow = json.JSONEncoder(ensure_ascii=False, separators=(item_sep, key_sep)).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return slow
    try:
        enc = make(None, None, basestring, None, key_sep, item_sep, False, False, True)
        probe = {"a": [1, 2.5, None, True, "\u00e9\n"]}
        if "".join(enc(probe, 0)) != slow(probe):
            return slow
    except TypeError:  # another interpreter's private signature
        return slow
    return lambda o: "".join(enc(o, 0))


class _Worker:
    """One background thread that compresses and appends, in submission order. zlib and file writes
    release the GIL, so this runs beside the simulation on a second core; one thread keeps each
    file's pieces in order, so the bytes are the same as writing inline."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue(maxsize=16)  # bounds the memory of pieces in flight
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="synth-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                fn, args = item
                if self.error is None:
                    fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller by drain()
                self.error = e
            finally:
                self.q.task_done()

    def submit(self, fn, *args) -> None:
        self.q.put((fn, args))

    def drain(self) -> None:
        self.q.join()
        error, self.error = self.error, None
        if error is not None:
            raise error


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def worker() -> _Worker:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.thread.is_alive():
            _worker = _Worker()
        return _worker


def drain() -> None:
    """Wait until every queued piece is on disk (raises what the writer thread raised)."""
    if _worker is not None:
        _worker.drain()


class Appender:
    """One landed file written in pieces; gzip state lives between pieces."""

    __slots__ = ("_z", "gz", "path", "started", "started_gz")

    def __init__(self, path: Path, gz: bool):
        self.path, self.gz = path, gz
        self._z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gz else None
        self.started = self.started_gz = False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")

    def write(self, data: bytes) -> None:
        if data:
            self.started = True
            worker().submit(self._write, data)

    def _write(self, data: bytes) -> None:
        if self._z is not None:
            data = self._z.compress(data)
            if not data:
                return
            if not self.started_gz:
                # zlib writes the build platform into the header's OS byte (Unix 3, macOS 19):
                # set it to 255, "unknown", so the bytes do not depend on where they were made.
                data = data[:9] + b"\xff" + data[10:]
                self.started_gz = True
        with open(self.path, "ab") as f:
            f.write(data)

    def close(self) -> None:
        worker().submit(self._close)

    def _close(self) -> None:
        if self._z is not None:
            tail = self._z.flush()
            if not self.started_gz:  # everything fitted in the final block
                tail = tail[:9] + b"\xff" + tail[10:]
            self._z = None
            with open(self.path, "ab") as f:
                f.write(tail)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_whole(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def truncate_gzip(path: Path, keep_fraction: float) -> tuple[int, int]:
    """Cut a gzip file mid-stream (a broken upload). Returns (complete lines still readable, bytes kept)."""
    size = os.path.getsize(path)
    keep = max(64, int(size * keep_fraction))
    with open(path, "r+b") as f:
        f.truncate(keep)
    with open(path, "rb") as f:
        data = f.read()
    out = zlib.decompressobj(31).decompress(data)
    return out.count(b"\n"), keep
