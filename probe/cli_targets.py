"""`reachprobe targets check|list|import-citizenlab` (stub: being written)."""

import click


@click.group("targets")
def targets_group() -> None:
    """Validate, list and import targets files."""
