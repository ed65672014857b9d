"""Fixtures for the generator's tests: one committed-size sample (1000 leads, 120 days) per session,
parsed once; small datasets for the determinism tests."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from crm_platform.plan import load_plan, validate_records
from crm_platform.synth import generate_dataset

from .readers import event_lines


class Sample:
    def __init__(self, root: Path, summary: dict, args: dict):
        self.root, self.summary, self.args = root, summary, args
        self.landing, self.truth = root / "landing", root / "truth"
        self.manifest = json.loads((self.truth / "manifest.json").read_text(encoding="utf-8"))
        self.invalid = {(r["file"], int(r["line"])): r for r in self._csv("invalid_records.csv")}
        self.identity = self._csv("identity.csv")
        self.leads = self._csv("leads.csv")
        self.effects = {r["channel"]: r for r in self._csv("channel_effects.csv")}
        # Every event line, keyed by (file, line): raw bytes, and the parsed event when it is a valid one.
        self.lines: dict[tuple[str, int], bytes] = {}
        self.valid: list[tuple[str, int, dict]] = []
        for path in sorted(self.landing.glob("events/**/*.jsonl*")):
            rel = path.relative_to(self.landing).as_posix()
            lines, _ = event_lines(path)
            for n, raw in enumerate(lines, 1):
                self.lines[(rel, n)] = raw
                if (rel, n) not in self.invalid:
                    self.valid.append((rel, n, json.loads(raw)))
        # The plan's own validator decides what is valid: (file, line) -> reason codes.
        keys = list(self.lines)
        results = validate_records(((i, self.lines[k]) for i, k in enumerate(keys)), load_plan())
        self.reasons = {keys[r.line]: [reason.split(":")[0] for reason in r.reasons] for r in results}

    def _csv(self, name: str) -> list[dict]:
        with open(self.truth / name, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Sample:
    """The committed sample's arguments: one chunk of people."""
    args = {"leads": 1000, "days": 120, "seed": 42}
    root = tmp_path_factory.mktemp("synth_sample")
    return Sample(root, generate_dataset(root, **args), args)


@pytest.fixture(scope="session")
def chunked(tmp_path_factory) -> Sample:
    """Several chunks of people (state carried across chunks) over a longer period that crosses a
    year and both DST changes."""
    import crm_platform.synth.generate as gen

    args = {"leads": 700, "days": 400, "seed": 9}
    root = tmp_path_factory.mktemp("synth_chunked")
    mp = pytest.MonkeyPatch()
    mp.setattr(gen, "CHUNK_SIZE", 160)
    try:
        return Sample(root, generate_dataset(root, **args), args)
    finally:
        mp.undo()
