"""`reachprobe targets check|list|import-citizenlab`.

Exit codes (probe.cli.common.ExitCode): 0 success, 1 failure (an I/O error or a bug), 2 bad input
(an invalid targets file, a missing CSV, an output file that already exists).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from probe.citizenlab import CitizenLabError, dump_targets_yaml, load_platform_map, parse_map_entry, read_citizenlab
from probe.cli.common import ExitCode
from probe.fileio import NotRegularFile, atomic_write_text
from probe.targets import TargetsError, TargetSet, load_targets, loads

_MAX_SKIPPED_SHOWN = 20


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def summary(ts: TargetSet, shown_path: str) -> str:
    """``targets.yaml: 23 targets on 7 platforms, 6 canaries``."""
    measured = [t for t in ts.targets if not t.is_canary]
    platforms = {t.platform for t in measured}
    return (
        f"{shown_path}: {_plural(len(measured), 'target')} on {_plural(len(platforms), 'platform')}, "
        f"{_plural(len(ts.canaries), 'canary', 'canaries')}"
    )


def _load_or_exit(ctx: click.Context, path: Path) -> TargetSet:
    try:
        return load_targets(path)
    except TargetsError as exc:
        for message in exc.all_messages():
            click.echo(message, err=True)
        ctx.exit(ExitCode.CONFIG)
        raise AssertionError("unreachable") from None  # ctx.exit raises; this keeps type checkers content


@click.group("targets")
def targets_group() -> None:
    """Validate, list and import targets files."""


@targets_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_context
def check_cmd(ctx: click.Context, file: Path) -> None:
    """Validate FILE. Exit 0 if it is usable, 2 (problems on stderr, with line and field) if not."""
    ts = _load_or_exit(ctx, file)
    click.echo(summary(ts, str(file)))


@targets_group.command("list")
@click.option(
    "--targets",
    "targets_file",
    default="targets.yaml",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Targets file to read.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_cmd(ctx: click.Context, targets_file: Path, fmt: str) -> None:
    """List the targets of a targets file."""
    ts = _load_or_exit(ctx, targets_file)
    if fmt == "json":
        rows = [{**t.to_dict(), "line": t.line} for t in ts.targets]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=summary(ts, str(targets_file)), title_justify="left")
    for column in ("platform", "name", "kind", "tests", "dns", "scope"):
        table.add_column(column, overflow="fold")
    for t in ts.targets:
        tests = [*t.urls, *(str(e) for e in t.endpoints)]
        # Text(), not str: a "[" in a URL or name must not be read as rich markup
        table.add_row(
            Text(t.platform),
            Text(t.name),
            Text(t.kind),
            Text("\n".join(tests)),
            Text("\n".join(t.dns_names)),
            Text(t.scope or ""),
        )
    Console().print(table)


def _platform_map(map_file: Path | None, entries: Iterable[str]) -> dict[str, str]:
    mapping = load_platform_map(map_file) if map_file else {}
    for entry in entries:  # --map entries win over the file
        domain, sep, platform = entry.partition("=")
        if not sep:
            raise CitizenLabError(f"--map {entry!r}: expected DOMAIN=PLATFORM, e.g. t.me=telegram")
        try:
            key, value = parse_map_entry(domain, platform)
        except ValueError as exc:
            raise CitizenLabError(f"--map {entry!r}: {exc}") from None
        mapping[key] = value
    return mapping


@targets_group.command("import-citizenlab")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--platform-map",
    "map_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of 'domain,platform' lines ('#' comments) overriding the built-in map.",
)
@click.option(
    "--map",
    "map_entries",
    multiple=True,
    metavar="DOMAIN=PLATFORM",
    help="One mapping, e.g. --map t.me=telegram (repeatable; wins over --platform-map).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CODE",
    help="Keep only rows of this category code, e.g. GRP (repeatable).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the targets file here instead of to stdout.",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.pass_context
def import_citizenlab_cmd(
    ctx: click.Context,
    csv_path: Path,
    map_file: Path | None,
    map_entries: tuple[str, ...],
    categories: tuple[str, ...],
    output: Path | None,
    force: bool,
) -> None:
    """Convert a Citizen Lab test list (CSV) into a targets file.

    Each URL becomes a web target, grouped by platform (facebook.com -> facebook, ...; anything
    else -> other). Malformed rows are skipped and listed on stderr.
    """
    if output is not None and output.exists() and not force:
        click.echo(f"{output}: already exists; use --force to overwrite it", err=True)
        ctx.exit(ExitCode.CONFIG)
    try:
        result = read_citizenlab(csv_path, _platform_map(map_file, map_entries), categories=categories)
    except CitizenLabError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(ExitCode.CONFIG)

    for line, reason in result.skipped[:_MAX_SKIPPED_SHOWN]:
        click.echo(f"{csv_path}:{line}: skipped: {reason}", err=True)
    if len(result.skipped) > _MAX_SKIPPED_SHOWN:
        click.echo(f"{csv_path}: ... and {len(result.skipped) - _MAX_SKIPPED_SHOWN} more skipped rows", err=True)
    click.echo(
        f"{csv_path}: imported {result.imported} of {_plural(result.rows, 'row')} into "
        f"{_plural(len(result.platforms), 'platform')} ({_plural(len(result.duplicates), 'duplicate')}, "
        f"{len(result.skipped)} skipped" + (f", {result.filtered} not in --category" if categories else "") + ")",
        err=True,
    )
    if result.imported == 0:
        why = f"no row has category {', '.join(categories)}" if categories and result.filtered else "no usable rows"
        click.echo(f"{csv_path}: nothing to import ({why})", err=True)
        ctx.exit(ExitCode.CONFIG)

    header = [
        f"Imported from {csv_path.name} by `reachprobe targets import-citizenlab`"
        + (f" (categories: {', '.join(categories)})" if categories else "")
        + ".",
        "Source: Citizen Lab test lists, https://github.com/citizenlab/test-lists (CC BY-NC-SA 4.0).",
        "Review the platforms (unrecognised sites are under 'other') and add canaries before measuring:",
        "see docs/targets.md.",
    ]
    text = dump_targets_yaml(result.data, header)
    try:  # the importer must only ever produce files the loader accepts
        loads(text, output or "<stdout>")
    except TargetsError as exc:
        click.echo(f"internal error: the generated targets file does not validate: {exc}", err=True)
        ctx.exit(ExitCode.FAILED)

    if output is None:
        click.echo(text, nl=False)
        return
    try:
        # mode None: a targets file is ordinary config (umask default, not 0600)
        atomic_write_text(output, text, None, overwrite=force, fsync_dir=True)
    except FileExistsError:
        click.echo(f"{output}: already exists; use --force to overwrite it", err=True)
        ctx.exit(ExitCode.CONFIG)
    except NotRegularFile as exc:
        click.echo(f"{output}: {exc.strerror}", err=True)
        ctx.exit(ExitCode.CONFIG)
    except OSError as exc:
        click.echo(f"{output}: cannot write: {exc.strerror or exc}", err=True)
        ctx.exit(ExitCode.FAILED)
    click.echo(f"wrote {output}", err=True)
