"""`reachprobe run` (one measurement of every target) and `reachprobe show` (recent results)."""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict

import click
from rich.console import Console
from rich.table import Table

from probe.cli import common  # common.build_config is looked up at call time (the test harness wraps it)
from probe.cli.common import ExitCode, acquire_lock_or_exit, common_run_options, consent_option, fail, require_consent
from probe.records import STATUSES
from probe.results import ReadReport, ResultsWriteError, iter_results, result_files

STATUS_STYLE = {
    "ok": "green",
    "blocked": "red",
    "down": "yellow",
    "outage": "magenta",
    "flaky": "cyan",
    "inconclusive": "dim",
}


def summary_table(counts: dict[str, dict[str, int]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("platform")
    for s in STATUSES:
        table.add_column(s, justify="right", style=STATUS_STYLE[s])
    for platform in sorted(counts):
        table.add_row(platform, *[str(counts[platform].get(s, 0) or "") for s in STATUSES])
    return table


@click.command("run")
@common_run_options
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success (for cron).")
@consent_option
def run_cmd(quiet: bool, consent_yes: bool, **o) -> None:
    """Measure every target once and append the results.

    Exit codes: 0 measurements written, 1 failure (nothing written), 2 bad configuration or no
    consent, 3 another reachprobe (run or daemon) is already measuring into this results directory.
    """
    from probe.pipeline import run_once  # heavy (httpx, dnspython): not for `reachprobe --help`

    cfg, targets = common.build_config(o)
    require_consent(consent_yes)
    try:  # an unwritable results directory is found now, not after every target was measured
        common.check_results_dir(cfg.results_dir)
    except ResultsWriteError as exc:
        fail(f"{exc}; nothing measured", ExitCode.FAILED)
    lock = acquire_lock_or_exit(cfg.results_dir)  # exits 3 when a run or the daemon holds it
    console = Console(stderr=True)
    show_progress = not quiet and console.is_terminal
    progress = None
    on_done = None
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("measuring"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        task = progress.add_task("targets", total=len(targets))
        on_done = lambda _res: progress.advance(task)  # noqa: E731
        progress.start()
    try:
        summary = run_once(cfg, targets, on_done)
    except ResultsWriteError as exc:
        total = exc.written + (exc.unwritten or 0)
        fail(f"{exc.written} of {total} results lines written to {cfg.results_dir}, then: {exc}", ExitCode.FAILED)
    finally:
        if progress is not None:
            progress.stop()
        lock.release()
    if not quiet:
        out = Console()
        out.print(summary_table(summary.counts(), f"{len(summary.records)} measurements in {summary.elapsed_s:.1f}s"))
        out.print(f"written to {summary.written_to}")
        without, eligible = summary.without_control()
        if without:
            why = "no --control configured" if not cfg.controls else "no helper answered"
            out.print(f"{without} of {eligible} web verdicts made without an outside control ({why})")
    sys.exit(ExitCode.OK)


@click.command("show")
@click.argument(
    "results_dir",
    required=False,
    type=click.Path(exists=True),
    default=lambda: os.environ.get("REACHPROBE_RESULTS", "results"),
)
@click.option(
    "--runs",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="How many of the most recent runs to summarise.",
)
def show_cmd(results_dir: str, runs: int) -> None:
    """Summarise the most recent runs in a results directory."""
    report = ReadReport()
    files = result_files(results_dir)
    if not files:
        fail(f"{results_dir}: no results files", ExitCode.FAILED)
    by_run: dict[str, list[dict]] = defaultdict(list)
    run_time: dict[str, str] = {}
    for rec in iter_results(files[-7:], report):  # the last week of daily files is plenty
        rid = rec.get("run_id", "?")
        by_run[rid].append(rec)
        run_time[rid] = max(run_time.get(rid, ""), rec.get("measured_at", ""))
    recent = sorted(by_run, key=lambda r: run_time[r])[-runs:]
    counts: dict[str, dict[str, int]] = defaultdict(Counter)
    latest: dict[str, dict] = {}
    for rid in recent:
        for rec in by_run[rid]:
            t = rec.get("target", {})
            counts[t.get("platform", "?")][rec.get("verdict", {}).get("status", "?")] += 1
            latest[t.get("name", "?")] = rec
    console = Console()
    last = run_time[recent[-1]] if recent else "-"
    console.print(summary_table(counts, f"{len(recent)} run(s), last at {last}"))
    blocked = [r for r in latest.values() if r.get("verdict", {}).get("status") == "blocked"]
    for rec in sorted(blocked, key=lambda r: r["target"]["name"]):
        v = rec["verdict"]
        console.print(
            f"  [red]blocked[/red] {rec['target']['name']}: {v.get('layer')}/{v.get('method')}"
            f" ({v.get('rule')}{', confirmed' if v.get('confirmed') else ''})"
        )
    for msg in report.messages():
        click.echo(f"reachprobe: warning: {msg}", err=True)
