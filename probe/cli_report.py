"""`reachprobe report` and `reachprobe compact` (stub: being written)."""

import click


@click.command("report")
def report_cmd() -> None:
    """Write a report (HTML, Markdown or CSV) from results."""
    raise click.ClickException("not implemented yet")


@click.command("compact")
def compact_cmd() -> None:
    """Compact JSONL results into Parquet for analysis."""
    raise click.ClickException("not implemented yet")
