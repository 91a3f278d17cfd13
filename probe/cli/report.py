"""`reachprobe report` and `reachprobe compact`: the analyst's commands (thin wrappers over `analysis`).

Exit codes (probe.cli.common.ExitCode): 0 success, 1 no data (nothing to report / nothing to
compact), 2 bad arguments (click's usage errors) or an output path that cannot be written (a FIFO,
a socket or a directory is refused, never replaced; a character device such as /dev/null is written
through).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from probe.cli.common import ExitCode, fail


def _iso(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"not an ISO 8601 date/time: {value!r}") from exc
    if ts is pd.NaT:
        raise click.BadParameter(f"not an ISO 8601 date/time: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _gap(ctx: click.Context, param: click.Parameter, value: str):
    import pandas as pd

    from analysis.timelines import parse_duration

    try:
        td = parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"not a duration (e.g. 30min, 1h, 1d): {value!r}") from exc
    if td <= pd.Timedelta(0):
        raise click.BadParameter("must be positive")
    return td


@click.command("report")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file to write (written atomically).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "csv"]),
    default=None,
    help="Default: from the output suffix, else html.",
)
@click.option("--since", callback=_iso, help="Only measurements at or after this UTC time (ISO 8601).")
@click.option("--until", callback=_iso, help="Only measurements before this UTC time (ISO 8601).")
@click.option("--platform", "platforms", multiple=True, help="Only this platform (repeatable).")
@click.option(
    "--ooni",
    "ooni",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="OONI measurement file to analyse with the results (repeatable).",
)
@click.option(
    "--max-gap",
    default="1h",
    show_default=True,
    callback=_gap,
    help="A longer gap between measurements ends evidence (episodes do not span it).",
)
@click.option("--engine", type=click.Choice(["pandas", "dask"]), default="pandas", show_default=True)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="dask.distributed scheduler to use with --engine dask (e.g. tcp://scheduler:8786).",
)
@click.option("--title", default=None, help="Report title.")
def report_cmd(inputs, output, fmt, since, until, platforms, ooni, max_gap, engine, scheduler, title) -> None:
    """Write a report (HTML, Markdown or CSV) from results directories/files (JSONL or compacted Parquet)."""
    if not inputs and not ooni:
        raise click.UsageError("give at least one results directory or file, or --ooni FILE")
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since/--until")
    if not output.parent.is_dir():
        raise click.BadParameter(f"directory {output.parent} does not exist", param_hint="-o/--output")
    if scheduler and engine != "dask":
        raise click.BadParameter("--scheduler needs --engine dask", param_hint="--scheduler")

    import analysis
    from analysis import io as aio
    from analysis.reporting import NoData, write_report

    client = None
    if scheduler:
        from dask.distributed import Client

        client = Client(scheduler)
    try:
        df = None
        if inputs:
            try:
                with warnings.catch_warnings():  # the skipped lines are printed below, one per line
                    warnings.simplefilter("ignore", aio.SkippedLinesWarning)
                    df = analysis.load(
                        list(inputs), engine=engine, since=since, until=until, platforms=list(platforms) or None
                    )
            except FileNotFoundError as exc:
                raise click.BadParameter(str(exc), param_hint="INPUTS") from exc
        if ooni:
            try:
                odf = aio.load_ooni(list(ooni))
            except ImportError as exc:
                raise click.UsageError(f"OONI input needs analysis.ooni.read_ooni: {exc}") from exc
            except (OSError, ValueError) as exc:
                raise click.BadParameter(f"cannot read OONI file: {exc}", param_hint="--ooni") from exc
            df = odf if df is None else aio.add_frames(df, odf)
            if engine == "dask" and not aio.is_dask(df):
                import dask.dataframe as dd

                df = aio.mark_partitioned(
                    dd.from_pandas(df, npartitions=1), "vantage", {"read_report": df.attrs.get("read_report", {})}
                )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", aio.SkippedLinesWarning)
            rep = aio.read_report(df)
        for msg in aio.report_messages(rep):
            click.echo(f"reachprobe: warning: {msg}", err=True)
        try:
            data = write_report(
                df,
                output,
                fmt=fmt,
                since=since,
                until=until,
                platforms=list(platforms) or None,
                max_gap=max_gap,
                title=title,
            )
        except NoData as exc:
            click.echo(f"reachprobe report: {exc}; no report written", err=True)
            sys.exit(ExitCode.FAILED)
        except OSError as exc:  # the output path the user gave cannot be written (or is a FIFO...)
            fail(f"-o/--output {output}: {exc.strerror or exc}; no report written", ExitCode.CONFIG)
    finally:
        if client is not None:
            client.close()
    a = data.analysis
    click.echo(
        f"wrote {output} ({data.n} measurements; {len(a.windows)} unblocking window(s) in "
        f"{len(a.events)} event(s), {len(a.blocking)} blocking episode(s), {len(a.blips)} blip(s))"
    )


@click.command("compact")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: <first input dir>/parquet).",
)
@click.option("--force", is_flag=True, help="Rewrite every month even if its inputs did not change.")
def compact_cmd(inputs, output, force) -> None:
    """Compact JSONL results into Parquet for analysis (one file per vantage and month; idempotent)."""
    from analysis.compaction import compact

    if output is None:
        first = inputs[0]
        if not first.is_dir():
            raise click.BadParameter("give -o/--output when the input is a file", param_hint="-o/--output")
        output = first / "parquet"
    if output.exists() and not output.is_dir():
        raise click.BadParameter(f"{output} is not a directory", param_hint="-o/--output")
    from analysis.io import discover, report_messages

    if not discover(list(inputs)).jsonl:
        click.echo("reachprobe compact: no results files (*.jsonl) found", err=True)
        sys.exit(ExitCode.FAILED)
    try:
        res = compact(list(inputs), output, force=force)
    except OSError as exc:  # the output directory cannot be written; compact is idempotent: rerun later
        where = f" {exc.filename}:" if exc.filename and str(exc.filename) != str(output) else ""
        fail(f"-o/--output {output}:{where} {exc.strerror or exc}; compaction not finished", ExitCode.CONFIG)
    for msg in report_messages(res.read_report):
        click.echo(f"reachprobe: warning: {msg}", err=True)
    click.echo(
        f"compacted {res.input_files} file(s) into {output}: {len(res.months_written)} month(s) written "
        f"({res.rows} rows, {res.files_written} Parquet files), {len(res.months_skipped)} unchanged"
    )
