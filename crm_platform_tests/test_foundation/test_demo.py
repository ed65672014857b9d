"""`crm-platform demo` on an empty data directory: generates a sample, materializes, summarizes."""
import json
import subprocess
import sys

import duckdb


def test_demo_fills_an_empty_landing_zone_and_materializes_every_asset(data_dir):
    p = subprocess.run([sys.executable, "-m", "crm_platform.cli", "demo"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "is empty: generating a sample" in p.stdout
    manifest = json.loads((data_dir / "truth" / "manifest.json").read_text())
    assert manifest["arguments"] == {"leads": 1000, "days": 120, "seed": 42}
    assert len(list((data_dir / "landing").rglob("*.jsonl*"))) > 100
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct event_type) from governance.tracking_plan").fetchone() == (15,)
    assert "crm_platform demo summary" in p.stdout and "15 event types" in p.stdout
    # A second demo keeps the landed files (it generates only into an empty folder).
    before = sorted(f.stat().st_mtime_ns for f in (data_dir / "landing").rglob("*") if f.is_file())
    p = subprocess.run([sys.executable, "-m", "crm_platform.cli", "demo"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and "generating a sample" not in p.stdout
    assert sorted(f.stat().st_mtime_ns for f in (data_dir / "landing").rglob("*") if f.is_file()) == before
