"""`reachprobe run` and `reachprobe show` (being written)."""

import click


@click.command("run")
def run_cmd() -> None:
    """Measure every target once."""
    raise click.ClickException("not implemented yet")


@click.command("show")
def show_cmd() -> None:
    """Summarise recent results."""
    raise click.ClickException("not implemented yet")
