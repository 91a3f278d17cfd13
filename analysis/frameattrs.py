"""What a loaded frame carries besides its rows: the column a Dask frame is partitioned by, and the
reader's report of what it read and skipped (merged, summarised, warned about)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from probe.results import ReadReport

# ---------------------------------------------------------------------------------------------- dask
# Which column a Dask frame is known to be partitioned by (every value of it in exactly one partition),
# and the read report of Dask frames, keyed by the collection's name (deterministic, hashable).
_PARTITIONED: dict[str, str] = {}
_DASK_ATTRS: dict[str, dict[str, Any]] = {}


def is_dask(df: Any) -> bool:
    mod = type(df).__module__
    return mod.startswith("dask") and hasattr(df, "map_partitions")


def partitioned_by(ddf: Any) -> str | None:
    name = getattr(ddf, "_name", None)
    return _PARTITIONED.get(name) if name is not None else None


def mark_partitioned(ddf: Any, column: str | None, attrs: dict[str, Any] | None = None) -> Any:
    name = getattr(ddf, "_name", None)
    if name is not None:
        if column:
            _PARTITIONED[name] = column
        if attrs is not None:
            _DASK_ATTRS[name] = attrs
    return ddf


def persist(ddf: Any) -> Any:
    """``ddf.persist()`` keeping what is known about it (partitioning, read report)."""
    if not is_dask(ddf):
        return ddf
    out = ddf.persist()
    return mark_partitioned(out, partitioned_by(ddf), _DASK_ATTRS.get(ddf._name))


class SkippedLinesWarning(UserWarning):
    """Results lines were skipped (or read under a newer schema) while loading; see ``read_report``."""


# ---------------------------------------------------------------------------------------- read report
def report_dict(rep: ReadReport) -> dict[str, Any]:
    return {
        "files": rep.files,
        "lines": rep.lines,
        "torn_final": list(rep.torn_final),
        "bad_lines": list(rep.bad_lines),
        "bad_count": rep.bad_count,
        "future": list(rep.future),
        "skipped": rep.skipped,
        "summary": rep.summary(),
        "messages": rep.messages(),
    }


def as_report(r: dict[str, Any]) -> ReadReport:
    """A report dict (also one of an older manifest, without bad_count/future) as a ReadReport."""
    bad = list(r.get("bad_lines", []))
    return ReadReport(
        files=int(r.get("files", 0) or 0),
        lines=int(r.get("lines", 0) or 0),
        torn_final=list(r.get("torn_final", [])),
        bad_lines=bad,
        bad_count=int(r.get("bad_count", len(bad)) or 0),
        future=list(r.get("future", [])),
    )


def merge_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rep = ReadReport()
    for r in reports:
        if r:
            rep.merge(as_report(r))
    return report_dict(rep)


def warn_skipped(rep: dict[str, Any]) -> None:
    if rep.get("skipped") or rep.get("future"):
        warnings.warn(rep.get("summary") or summarize_report(rep), SkippedLinesWarning, stacklevel=3)


def summarize_report(rep: dict[str, Any]) -> str:
    return as_report(rep).summary() if rep else ""


def report_messages(rep: dict[str, Any], limit: int = 20) -> list[str]:
    """The lines every command prints on stderr for what its reader skipped (see ReadReport.messages)."""
    return as_report(rep).messages(limit) if rep else []
