"""Ingest every landed file version not seen before, oldest path first: canonical event files, then
each source mapping's CDC or export files (`crm_platform/sources/mappings/`)."""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crm_platform.ingest.event_files import FileOutcome, ensure_ingest_tables
from crm_platform.ingest.landing import LandedFile, list_event_files
from crm_platform.ingest.source_files import SourceIngest, list_source_files
from crm_platform.ingest.targets import InPlace, Published, SeparateVault, recover
from crm_platform.plan.model import TrackingPlan
from crm_platform.sources.mapping import SourceMapping, load_mappings
from crm_platform.warehouse import DuckDBWarehouse, Warehouse

# A group of files shares one transaction and one streaming INSERT (DuckDB appends far faster in one
# large statement than in many small ones); these bound what a crash makes the next run redo.
GROUP_MAX_BYTES = 1 << 30
GROUP_MAX_FILES = 2000
# Compressed files are counted at about their decompressed size.
GZIP_RATIO = 8


def new_files(wh: Warehouse, files: list[LandedFile]) -> list[LandedFile]:
    """The files whose (path, size, mtime) the warehouse has not recorded."""
    known = set(wh.fetchall(f"select source_file, file_size, file_mtime_ns from {wh.table_name('core', 'landed_files')}"))
    return [f for f in files if (f.relative, f.size, f.mtime_ns) not in known]


def file_groups(files: list[LandedFile]) -> Iterator[list[LandedFile]]:
    """Consecutive files (path order is kept: the first occurrence of an event_id wins) in groups."""
    group: list[LandedFile] = []
    size = 0
    for f in files:
        weight = f.size * (GZIP_RATIO if f.relative.endswith(".gz") else 1)
        if group and (size + weight > GROUP_MAX_BYTES or len(group) >= GROUP_MAX_FILES):
            yield group
            group, size = [], 0
        group.append(f)
        size += weight
    if group:
        yield group


def ingest_landing(wh: Warehouse, landing_dir: Path, plan: TrackingPlan, pii_key: bytes,
                   on_file: Callable[[FileOutcome], None] | None = None,
                   mappings: Sequence[SourceMapping] | None = None,
                   only: Sequence[str] | None = None) -> list[FileOutcome]:
    """Each group of new files commits on its own, so a crash loses at most the group in progress
    (and leaves no trace of it: a transaction on DuckDB, `targets.recover` elsewhere); the next run
    picks it up again. On DuckDB the work happens in the warehouse; on another engine, in a scratch
    DuckDB in a temporary directory, published group by group. With `only` (paths under landing/),
    just those event files: what the platform itself has landed (identity decisions, scores)."""
    mappings = (load_mappings(plan) if mappings is None else mappings) if only is None else ()
    with wh.exclusive("ingest"):
        ensure_ingest_tables(wh)
        if isinstance(wh, DuckDBWarehouse):
            if wh.pii_separate:  # the vault in its own file: its side commits first (targets.SeparateVault)
                recover(wh)
                return _ingest(wh, SeparateVault(wh), wh, landing_dir, plan, pii_key, on_file, mappings, only)
            return _ingest(wh, InPlace(), wh, landing_dir, plan, pii_key, on_file, mappings, only)
        recover(wh)
        with tempfile.TemporaryDirectory(prefix="crm-ingest-") as tmp, DuckDBWarehouse(Path(tmp) / "scratch.duckdb") as scratch:
            ensure_ingest_tables(scratch)
            return _ingest(scratch, Published(wh, scratch), wh, landing_dir, plan, pii_key, on_file, mappings, only)


def _ingest(compute: DuckDBWarehouse, target: InPlace, wh: Warehouse, landing_dir: Path, plan: TrackingPlan,
            pii_key: bytes, on_file: Callable[[FileOutcome], None] | None,
            mappings: Sequence[SourceMapping], only: Sequence[str] | None = None) -> list[FileOutcome]:
    outcomes: list[FileOutcome] = []
    event_files = list_event_files(landing_dir)
    if only is not None:
        event_files = [f for f in event_files if f.relative in set(only)]
    work = [(None, new_files(wh, event_files))]
    work += [(m, new_files(wh, list_source_files(landing_dir, m))) for m in mappings]
    if not any(files for _, files in work):
        return outcomes
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as hasher:
        ingest = SourceIngest(compute, plan, pii_key, hasher, target)
        for mapping, files in work:
            for group in file_groups(files):
                for outcome in (ingest(group) if mapping is None else ingest.ingest_source(group, mapping)):
                    outcomes.append(outcome)
                    if on_file:
                        on_file(outcome)
    return outcomes
