"""The landing zone as the ingest layer sees it: which event files exist, and their content hashes.

The platform never modifies or deletes landed files (CONTRACT §4); it identifies a file version by
its path, size and mtime (cheap, to skip what was seen) and its content by sha256 (to process each
content once, whatever its name).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

EVENT_PATTERNS = ("*.jsonl", "*.jsonl.gz")
# Event files the platform lands and ingests itself, in the same run (identity decisions): a file
# sensor has nothing to start for them.
PLATFORM_WRITTEN = ("events/identity/", "events/ml/")
_HASH_BLOCK = 1 << 22


@dataclass(frozen=True)
class LandedFile:
    path: Path
    relative: str  # the path under landing/, as recorded in the warehouse (source_file)
    size: int
    mtime_ns: int


def list_event_files(landing_dir: Path) -> list[LandedFile]:
    """Every canonical event file under landing/events/, in path order (chronological for
    producers that name files by date)."""
    root = landing_dir / "events"
    if not root.is_dir():
        return []
    paths = sorted({p for pattern in EVENT_PATTERNS for p in root.rglob(pattern) if p.is_file()})
    out = []
    for p in paths:
        st = p.stat()
        out.append(LandedFile(p, p.relative_to(landing_dir).as_posix(), st.st_size, st.st_mtime_ns))
    return out


def sha256_file(path: Path) -> str:
    """Content hash, read in large blocks (hashlib releases the GIL, so this can run in a thread
    while the engine parses the same file)."""
    h = hashlib.sha256()
    buf = bytearray(_HASH_BLOCK)
    view = memoryview(buf)
    with path.open("rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
