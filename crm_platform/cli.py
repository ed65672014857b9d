"""`crm-platform`: the command line (CONTRACT §3)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from crm_platform.settings import Settings

DEMO_LEADS, DEMO_DAYS, DEMO_SEED = 1000, 120, 42


@click.group()
def main() -> None:
    """crm_platform: CRM changes, exports and touches become one validated event log, and identity,
    attribution, features and lead scores are built on it. Configuration comes from the environment
    (CRM_DATA_DIR, CRM_WAREHOUSE, ...; see the README)."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), required=True, help="Writes DIR/landing and DIR/truth.")
@click.option("--leads", type=click.IntRange(min=1), default=2000, show_default=True, help="People to simulate.")
@click.option("--days", type=click.IntRange(min=7), default=120, show_default=True, help="Days of history, ending 2026-06-30.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same bytes.")
def generate(data_dir: Path, leads: int, days: int, seed: int) -> None:
    """Generate realistic synthetic CRM extracts under DIR/landing and their ground truth under DIR/truth."""
    from crm_platform.synth import generate_dataset

    summary = generate_dataset(data_dir, leads=leads, days=days, seed=seed)
    click.echo(f"generated {data_dir}/landing and {data_dir}/truth (seed {seed}):")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:,}" for k, v in value.items())
        elif isinstance(value, int):
            value = f"{value:,}"
        click.echo(f"  {key}: {value}")


@main.command()
@click.option("--select", "selection", default=None, help="Dagster asset selection, e.g. 'group:ingest' (default: all).")
@click.option("--partition", default=None,
              help="A partition key (2026-05-01) or a range run as one backfill (2026-05-01...2026-05-07); "
                   "without it, partitioned assets are materialized for all their partitions.")
def materialize(selection: str | None, partition: str | None) -> None:
    """Materialize assets in-process against the configured warehouse."""
    from crm_platform.runner import materialize_assets

    ok = materialize_assets(selection=selection, partition=partition, echo=click.echo)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--email", default=None, help="The address of the person to forget.")
@click.option("--lead-id", default=None, help="Or one of their lead ids (any record's, or the canonical one).")
@click.option("--reference", default=None, help="The request's id in the privacy team's tool, kept in the report.")
@click.option("--no-refresh", is_flag=True, help="Erase only; leave the layers' refresh to the eager sensor and the night.")
def erase(email: str | None, lead_id: str | None, reference: str | None, no_refresh: bool) -> None:
    """Forget a person: their vault entries, events, identity records, features and scores, everywhere;
    then rebuild what depended on them. The report (governance.erasure_report) never names them."""
    from crm_platform.defs.governance.erasure import DEPENDENTS
    from crm_platform.governance.erasure import request_erasure
    from crm_platform.runner import materialize_assets
    from crm_platform.warehouse import open_warehouse

    if not (email or lead_id):
        raise click.UsageError("give --email or --lead-id")
    with open_warehouse(Settings.from_env()) as wh:
        request_id = request_erasure(wh, email=email, lead_id=lead_id, reference=reference)
    click.echo(f"erasure request {request_id} queued")  # never the identifier itself
    if not materialize_assets(selection="key:governance/erasure_report", partition=None, echo=click.echo):
        sys.exit(1)
    if not no_refresh and not materialize_assets(selection=DEPENDENTS, partition=None, echo=click.echo):
        sys.exit(1)
    click.echo(f"erasure request {request_id} done: see governance.erasure_report")


@main.command()
def demo() -> None:
    """Fill data/landing with a sample when it is empty, materialize every asset, print a summary."""
    from crm_platform.marts.demo_summary import demo_summary
    from crm_platform.runner import materialize_assets
    from crm_platform.warehouse import DuckDBWarehouse, open_warehouse

    settings = Settings.from_env()
    landing = settings.landing_dir
    if not landing.exists() or not any(p.is_file() for p in landing.rglob("*")):
        from crm_platform.synth import generate_dataset

        click.echo(f"{landing} is empty: generating a sample ({DEMO_LEADS} leads, {DEMO_DAYS} days, seed {DEMO_SEED})")
        generate_dataset(settings.data_dir, leads=DEMO_LEADS, days=DEMO_DAYS, seed=DEMO_SEED)
    if not materialize_assets(selection=None, partition=None, echo=click.echo):
        sys.exit(1)
    with (DuckDBWarehouse(settings.duckdb_path, read_only=True) if settings.warehouse == "duckdb"
          else open_warehouse(settings)) as wh:
        click.echo(demo_summary(wh))


@main.group()
def plan() -> None:
    """The tracking plan: lint it, check event files against it, export it."""


@plan.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", "plan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A tracking plan directory (default: the platform's own).")
def plan_check(files: tuple[Path, ...], plan_dir: Path | None) -> None:
    """Lint the tracking plan and validate JSONL event FILES against it (exit 1 on any problem)."""
    from crm_platform.plan.check import run_plan_check

    sys.exit(run_plan_check(list(files), plan_dir=plan_dir, echo=click.echo))


@plan.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonschema"]), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--plan", "plan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
def plan_export(fmt: str, out_dir: Path, plan_dir: Path | None) -> None:
    """Export one JSON Schema per event type and version into OUT."""
    from crm_platform.plan.check import export_command

    sys.exit(export_command(out_dir, fmt=fmt, plan_dir=plan_dir, echo=click.echo))


if __name__ == "__main__":
    main()
