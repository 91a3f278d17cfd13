"""reachprobe analysis: results -> episodes, unblocking windows, reports.

    import analysis
    df = analysis.load("results/")                      # or engine="dask"
    ep = analysis.episodes(df)                          # blocked / reachable / down / outage episodes
    win = analysis.unblocking_windows(df)               # brief openings of blocked targets, with bounds
    analysis.window_events(df)                          # windows grouped: ISP-specific or nationwide
    analysis.report(df, "report.html")                  # or .md / .csv

See docs/analysis.md for the definitions (episode, bounds, baseline, window, blip, event).
"""

from __future__ import annotations

from typing import Any

from analysis.compaction import compact
from analysis.frame import COLUMNS, STATUSES
from analysis.io import load_ooni, read_report, select
from analysis.timelines import (
    Analysis,
    analyse,
    blips,
    blocking_episodes,
    episodes,
    unblocking_windows,
    window_events,
)


def load(paths: Any, engine: str = "pandas", *, storage_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Results into one flat frame: local JSONL/Parquet (:func:`analysis.io.load`: ``npartitions``,
    ``columns``, ``since``, ``until``, ``platforms``), or a collector's store by URL (``s3://bucket/
    reachprobe/``, any fsspec protocol; :mod:`analysis.remote`), ``storage_options`` going to fsspec."""
    from analysis import io, remote

    if remote.is_url(paths):
        return remote.load(paths, engine, storage_options=storage_options, **kwargs)
    return io.load(paths, engine, **kwargs)


def report(
    df: Any,
    path: Any,
    fmt: str | None = None,
    since: Any = None,
    until: Any = None,
    platforms: Any = None,
    **kwargs: Any,
) -> Any:
    """Write an HTML/Markdown/CSV report of ``df`` to ``path`` (see :func:`analysis.reporting.write_report`)."""
    from analysis.reporting import write_report

    return write_report(df, path, fmt=fmt, since=since, until=until, platforms=platforms, **kwargs)


def read_ooni(*args: Any, **kwargs: Any) -> Any:
    """``analysis.importers.ooni.read_ooni`` (OONI measurements in the reachprobe schema), imported lazily."""
    from analysis.importers.ooni import read_ooni as _read_ooni

    return _read_ooni(*args, **kwargs)


__all__ = [
    "Analysis",
    "COLUMNS",
    "STATUSES",
    "analyse",
    "blips",
    "blocking_episodes",
    "compact",
    "episodes",
    "load",
    "load_ooni",
    "read_ooni",
    "read_report",
    "report",
    "select",
    "unblocking_windows",
    "window_events",
]
