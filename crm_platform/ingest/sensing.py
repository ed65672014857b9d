"""What a file sensor needs to decide whether to start an ingest run, without opening the warehouse
(DuckDB allows one writing process; sensors run in the daemon).

The cursor maps each landed path to the (size, mtime_ns, sha256) last seen: a file is hashed only
when its size or mtime changed, and a run is requested only for content not seen under any path. The
run key is derived from the new content hashes, so a retried tick never starts a second run for the
same files, and new content always gets a new key (a reused run key is silently dropped forever).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from crm_platform.ingest.landing import PLATFORM_WRITTEN, LandedFile, list_event_files, sha256_file


@dataclass(frozen=True)
class Scan:
    new_content: tuple[str, ...]  # sha256 of content not seen before, in path order
    new_files: tuple[str, ...]  # their paths under landing/
    cursor: str

    @property
    def run_key(self) -> str:
        return "ingest-events-" + hashlib.sha256(",".join(sorted(self.new_content)).encode()).hexdigest()[:24]


def landed_files(landing_dir: Path, mappings=()) -> list[LandedFile]:
    """Every file the ingest reads: canonical event files and each source mapping's files."""
    from crm_platform.ingest.source_files import list_source_files

    return list_event_files(landing_dir) + [f for m in mappings for f in list_source_files(landing_dir, m)]


def scan_landing(landing_dir: Path, cursor: str | None, mappings=()) -> Scan:
    seen: dict[str, list] = json.loads(cursor) if cursor else {}
    known_content = {entry[2] for entry in seen.values()}
    new_content, new_files = [], []
    for f in landed_files(landing_dir, mappings):
        if f.relative.startswith(PLATFORM_WRITTEN):
            continue
        entry = seen.get(f.relative)
        if entry and entry[0] == f.size and entry[1] == f.mtime_ns:
            continue
        sha = sha256_file(f.path)
        seen[f.relative] = [f.size, f.mtime_ns, sha]
        if sha not in known_content:
            known_content.add(sha)
            new_content.append(sha)
            new_files.append(f.relative)
    return Scan(tuple(new_content), tuple(new_files), json.dumps(seen, sort_keys=True, separators=(",", ":")))
