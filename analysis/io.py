"""Reading results into the flat measurement frame: JSONL (tolerant), compacted Parquet, OONI; pandas or Dask.

Paths may be files or directories, mixed:

* ``*.jsonl`` files: results lines (``reachprobe/1``), streamed in blocks of whole lines. Every line is
  held to :func:`probe.resultline.parse_line`, the check every reader applies: a line that fails it
  (not UTF-8, not JSON, nested too deep, a contract field missing or mistyped) is skipped and
  reported as ``path:line: reason``, a torn final line (a writer killed mid-line) as torn, and a line
  of a newer ``reachprobe/`` schema is read with a warning. Fast path: ``pyarrow.json`` with an
  explicit schema of the contract fields (``steps`` and unknown fields ignored) for a block whose
  lines all pass; any other block goes line by line through the validator.
* a directory made by ``reachprobe compact`` (it holds ``_reachprobe_compact.json``): its Parquet files.
* ``*.parquet`` files.
* any other directory: every ``*.jsonl`` below it (recursively; a directory of many volunteers'
  results directories works), or, when there is none, every ``*.parquet`` below it.

What was skipped is in ``df.attrs["read_report"]`` (pandas) or :func:`read_report` (both engines), and
``load`` warns (:class:`SkippedLinesWarning`) when anything was.

This module holds what a caller asks for (discovery of the paths, ``load`` on either engine,
``read_report``, ``add_frames``) and re-exports the parts it combines, so ``analysis.io.<name>`` keeps
working: the readers :mod:`analysis.jsonl` and :mod:`analysis.parquet`, Dask partitioning and read
reports :mod:`analysis.frameattrs`, row selection :mod:`analysis.selection`, OONI rows
:mod:`analysis.ooni_frame`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import frame as fr
from analysis.frameattrs import (
    _DASK_ATTRS,
    SkippedLinesWarning,
    as_report,
    is_dask,
    mark_partitioned,
    merge_reports,
    partitioned_by,
    persist,
    report_dict,
    report_messages,
    summarize_report,
    warn_skipped,
)
from analysis.jsonl import _PARSE as _PARSE
from analysis.jsonl import BLOCK_BYTES, MIN_SPLIT, SPLIT, _read_jsonl_files, _read_jsonl_part, read_jsonl_file
from analysis.jsonl import _line_blocks as _line_blocks
from analysis.ooni_frame import load_ooni, ooni_frame, platform_of
from analysis.parquet import _parquet_filter, read_parquet_files
from analysis.selection import _dedupe, concat, select, to_utc
from probe.results import ReadReport

# The public names of the reader, wherever they are defined; the private ones imported above (_PARSE,
# _line_blocks, _dedupe, _parquet_filter, _read_jsonl_files) stay importable from here for compaction,
# remote, the benchmarks and the tests.
__all__ = [
    "BLOCK_BYTES",
    "JSONL_SUFFIX",
    "MANIFEST",
    "MIN_SPLIT",
    "PARQUET_SUFFIX",
    "SPLIT",
    "SkippedLinesWarning",
    "Sources",
    "add_frames",
    "as_report",
    "check_load_args",
    "concat",
    "discover",
    "is_dask",
    "load",
    "load_ooni",
    "mark_partitioned",
    "merge_reports",
    "ooni_frame",
    "partitioned_by",
    "persist",
    "platform_of",
    "read_jsonl_file",
    "read_parquet_files",
    "read_report",
    "report_dict",
    "report_messages",
    "select",
    "summarize_report",
    "to_utc",
    "warn_skipped",
]

MANIFEST = "_reachprobe_compact.json"
JSONL_SUFFIX = ".jsonl"
PARQUET_SUFFIX = ".parquet"


def read_report(df: Any) -> dict[str, Any]:
    """The reader's report of a loaded frame: files, lines, torn_final, bad_lines (``path:line:
    reason``), bad_count, future (newer schema versions read), skipped, summary, messages.

    On Dask the JSONL lines are only read when the frame is computed, so the first call for a Dask
    frame reads the JSONL files once more (in parallel, the same blocks and checks) to make the report,
    warns like the pandas ``load`` does, and keeps the result."""
    if is_dask(df):
        attrs = _DASK_ATTRS.get(df._name, {})
        if attrs.get("pending_jsonl"):
            import dask

            parts = dask.compute(*[dask.delayed(_file_report)(f) for f in attrs["pending_jsonl"]])
            attrs["read_report"] = merge_reports([attrs.get("read_report", {}), *parts])
            attrs["pending_jsonl"] = None
            warn_skipped(attrs["read_report"])
        return dict(attrs.get("read_report", {}))
    return dict(getattr(df, "attrs", {}).get("read_report", {}))


def _file_report(path: str) -> dict[str, Any]:
    rep = ReadReport()
    read_jsonl_file(Path(path), rep)
    return report_dict(rep)


# ------------------------------------------------------------------------------------------ discovery
class Sources:
    """What a list of paths expands to."""

    def __init__(self) -> None:
        self.jsonl: list[Path] = []
        self.parquet_groups: dict[str, list[Path]] = {}  # one group per vantage directory
        self.compact_reports: list[dict[str, Any]] = []

    def add_parquet(self, files: Iterable[Path]) -> None:
        for f in files:
            self.parquet_groups.setdefault(str(f.parent), []).append(f)

    @property
    def empty(self) -> bool:
        return not self.jsonl and not self.parquet_groups


def discover(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Sources:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    src = Sources()
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            manifest = p / MANIFEST
            if manifest.exists():
                src.add_parquet(sorted(p.glob("*/*" + PARQUET_SUFFIX)))
                try:
                    src.compact_reports.append(json.loads(manifest.read_text()).get("read_report", {}))
                except (OSError, ValueError):
                    pass
                continue
            found = sorted(f for f in p.rglob("*" + JSONL_SUFFIX) if f.is_file())
            if found:
                for f in found:
                    if f.resolve() not in seen:
                        seen.add(f.resolve())
                        src.jsonl.append(f)
            else:
                src.add_parquet(sorted(f for f in p.rglob("*" + PARQUET_SUFFIX) if f.is_file()))
        elif p.suffix == PARQUET_SUFFIX:
            src.add_parquet([p])
        else:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                src.jsonl.append(p)
    for files in src.parquet_groups.values():
        files.sort()
    return src


# ---------------------------------------------------------------------------------------------- load
def check_load_args(engine: str, columns: Sequence[str] | None) -> list[str] | None:
    """The engine and column names every loader accepts (local files or a collector's store)."""
    if engine not in ("pandas", "dask"):
        raise ValueError(f"engine must be 'pandas' or 'dask', not {engine!r}")
    cols = list(columns) if columns is not None else None
    unknown = [c for c in cols or () if c not in fr.COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(unknown)}")
    return cols


def load(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    engine: str = "pandas",
    *,
    npartitions: int | None = None,
    columns: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    platforms: Sequence[str] | None = None,
) -> Any:
    """Read local results (JSONL files/directories, compacted Parquet) into one flat frame.

    ``engine="pandas"`` returns a :class:`pandas.DataFrame`; ``engine="dask"`` a lazy Dask DataFrame
    partitioned by vantage (each vantage's rows in exactly one partition; ``npartitions`` caps the
    count). ``columns`` restricts the columns read (``measured_at``, ``status`` and the grouping columns
    are what the episode code needs). ``since``/``until``/``platforms`` filter rows (pushed down into
    Parquet reads).
    """
    cols = check_load_args(engine, columns)
    src = discover(paths)
    missing = [str(p) for p in src.jsonl if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such results file: {missing[0]}")
    since_ts, until_ts = to_utc(since), to_utc(until)
    pfilter = _parquet_filter(since_ts, until_ts, platforms)
    added: list[str] = []
    if cols is not None:  # the row filters need their columns; they are dropped again below
        for c in (["measured_at"] if since_ts is not None or until_ts is not None else []) + (
            ["platform"] if platforms else []
        ):
            if c not in cols:
                cols.append(c)
                added.append(c)
    if engine == "dask":
        out = _load_dask(src, npartitions, cols, pfilter, since_ts, until_ts, platforms)
        if added:
            assert cols is not None  # columns are only added to an explicit column list
            kept = out[[c for c in cols if c not in added]]
            return mark_partitioned(kept, partitioned_by(out), _DASK_ATTRS.get(out._name))
        return out
    parts: list[pd.DataFrame] = []
    reports: list[dict[str, Any]] = list(src.compact_reports)
    if src.parquet_groups:
        files = [f for group in src.parquet_groups.values() for f in group]
        parts.append(read_parquet_files(files, cols, pfilter))
    if src.jsonl:
        df, rep = _read_jsonl_files(src.jsonl, cols)
        df = select(df, since_ts, until_ts, platforms)
        if cols is None or "id" in cols:
            df = _dedupe(df)
        parts.append(df)
        reports.append(rep)
    df = concat(parts) if parts else fr.empty_frame(cols)
    df = df.reset_index(drop=True)
    if added:
        df = df.drop(columns=added)
    df.attrs["read_report"] = merge_reports(reports)
    warn_skipped(df.attrs["read_report"])
    return df


def _chunks(items: list[Any], n: int | None) -> list[list[Any]]:
    if not items:
        return []
    if not n or n >= len(items):
        return [[x] for x in items]
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _read_parquet_part(files: Sequence[str], columns: list[str] | None = None, filters: Any = None) -> pd.DataFrame:
    return read_parquet_files(list(files), columns, filters)


def _load_dask(
    src: Sources,
    npartitions: int | None,
    cols: list[str] | None,
    pfilter: Any,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    platforms: Sequence[str] | None,
) -> Any:
    import dask.dataframe as dd
    from dask.dataframe.utils import clear_known_categories

    meta = clear_known_categories(fr.empty_frame(cols))
    reports = list(src.compact_reports)
    pending: list[str] | None = None
    pieces: list[tuple[str | None, Any]] = []
    if src.parquet_groups:
        groups = [[str(f) for f in g] for g in src.parquet_groups.values()]
        chunks = _chunks(groups, npartitions)
        flat = [[f for g in chunk for f in g] for chunk in chunks]
        pieces.append(
            (
                "vantage",
                dd.from_map(_read_parquet_part, flat, columns=cols, filters=pfilter, meta=meta, enforce_metadata=False),
            )
        )
    if src.jsonl:
        files = [str(f) for f in src.jsonl]
        jd = dd.from_map(_read_jsonl_part, [[f] for f in files], columns=cols, meta=meta, enforce_metadata=False)
        jd = select(jd, since, until, platforms)
        pieces.append((None, jd))
        pending = files
    if not pieces:
        out = dd.from_pandas(fr.empty_frame(cols), npartitions=1)
        return mark_partitioned(out, "vantage", {"read_report": merge_reports(reports)})
    if len(pieces) == 1 and pieces[0][0] == "vantage":
        out = pieces[0][1]
    else:
        both = dd.concat([p for _, p in pieces]) if len(pieces) > 1 else pieces[0][1]
        nparts = npartitions or max(1, min(both.npartitions, 64))
        out = both.shuffle(on="vantage", npartitions=nparts) if "vantage" in both.columns else both
    # the JSONL part of the report is made when read_report() first asks for it (see there)
    return mark_partitioned(
        out,
        "vantage" if "vantage" in out.columns else None,
        {"read_report": merge_reports(reports), "pending_jsonl": pending},
    )


def add_frames(a: Any, b: pd.DataFrame) -> Any:
    """``a`` (pandas or Dask) plus the rows of pandas frame ``b``."""
    if b is None or not len(b):
        return a
    if is_dask(a):
        import dask.dataframe as dd

        rep = merge_reports([read_report(a), b.attrs.get("read_report", {})])
        both = dd.concat([a, dd.from_pandas(b, npartitions=1)])
        out = both.shuffle(on="vantage", npartitions=max(1, a.npartitions))
        return mark_partitioned(out, "vantage", {"read_report": rep})
    out = concat([a, b]).reset_index(drop=True)
    out.attrs["read_report"] = merge_reports([a.attrs.get("read_report", {}), b.attrs.get("read_report", {})])
    return out
