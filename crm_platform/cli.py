"""`crm-platform`: the command line (CONTRACT §3)."""
import click


@click.group()
def main() -> None:
    """crm_platform: turn CRM noise into actionable events."""
