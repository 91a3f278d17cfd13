"""One run, start to finish: the runner measures, judges and builds the lines; the results spool
writes them. What `reachprobe run` does; the daemon does the same per scheduled run, with its own
long-lived spool (probe.daemon)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from probe.results import ResultsSpool
from probe.runner import RunConfig, RunSummary, TargetResult, run_async
from probe.targets import Target


def run_once(
    cfg: RunConfig, targets: list[Target], on_target_done: Callable[[TargetResult], None] | None = None
) -> RunSummary:
    """Measure every target once and, when ``cfg.results_dir`` is set, append the lines there.
    Raises probe.results.ResultsWriteError when a line cannot be written (a line cut short by a
    full disk is cut off again; lines before it stay)."""
    summary = asyncio.run(run_async(cfg, targets, on_target_done))
    if cfg.results_dir is not None:
        spool = ResultsSpool(cfg.results_dir)
        spool.add(summary.records)
        spool.flush()
        summary.written_to = spool.last_path
    return summary
