"""Same arguments, same bytes; another seed, other bytes; reruns replace their own output only."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crm_platform.synth import generate_dataset

SMALL = {"leads": 120, "days": 42}


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(tmp_path):
    a = generate_dataset(tmp_path / "a", seed=7, **SMALL)
    b = generate_dataset(tmp_path / "b", seed=7, **SMALL)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(ha) > 50
    assert ha == hb
    assert {k: v for k, v in a.items() if k != "data_dir"} == {k: v for k, v in b.items() if k != "data_dir"}


def test_other_seed_gives_other_files(tmp_path):
    generate_dataset(tmp_path / "a", seed=7, **SMALL)
    generate_dataset(tmp_path / "b", seed=8, **SMALL)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    events = [k for k in ha if k.startswith("landing/events/") and k in hb and "partner-api" not in k]
    assert events
    differing = [k for k in events if ha[k] != hb[k]]
    assert len(differing) == len(events)
    assert ha["truth/identity.csv"] != hb["truth/identity.csv"]


def test_rerun_in_same_directory_replaces_previous_output(tmp_path):
    generate_dataset(tmp_path / "x", seed=3, leads=200, days=70)  # more weeks and files than the rerun
    generate_dataset(tmp_path / "x", seed=3, **SMALL)
    generate_dataset(tmp_path / "fresh", seed=3, **SMALL)
    assert _hashes(tmp_path / "x") == _hashes(tmp_path / "fresh")


def test_refuses_to_mix_with_files_it_did_not_write(tmp_path):
    foreign = tmp_path / "landing" / "batch" / "other" / "thing.csv"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("a,b\n")
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path, seed=1, **SMALL)
    assert foreign.read_text() == "a,b\n"


@pytest.mark.parametrize("kwargs", [{"leads": 10, "days": 120}, {"leads": 100, "days": 7}])
def test_rejects_too_small_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, **kwargs)


def test_same_bytes_across_processes_with_other_hash_seeds(tmp_path):
    """Set and dict order must not leak into the files: PYTHONHASHSEED differs between processes."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    for name, hash_seed in (("p1", "1"), ("p2", "2")):
        code = ("from crm_platform.synth import generate_dataset; "
                f"generate_dataset({str(tmp_path / name)!r}, seed=11, leads=80, days=35)")
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(repo))
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=repo)
    assert _hashes(tmp_path / "p1") == _hashes(tmp_path / "p2")


def test_gzip_headers_carry_no_time_name_or_platform(tmp_path):
    generate_dataset(tmp_path, seed=5, **SMALL)
    gz = sorted(tmp_path.rglob("*.gz"))
    assert len(gz) > 20
    for p in gz:
        head = p.read_bytes()[:10]
        assert head[:4] == b"\x1f\x8b\x08\x00"  # deflate, no flags: no file name, no comment
        assert head[4:8] == b"\x00\x00\x00\x00"  # mtime 0
        assert head[9] == 255  # OS unknown
