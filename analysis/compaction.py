"""``reachprobe compact``: JSONL results -> Parquet for analysis.

Layout of the output directory::

    OUT/_reachprobe_compact.json          manifest (written last): inputs seen per month, read report
    OUT/v_<vantage>/<YYYY-MM>.parquet     one file per vantage and UTC month, rows sorted by
                                          (target, measured_at, id), duplicates (same id) dropped

Only the flat frame columns are kept (``steps`` stay in the JSONL, which remains the source of truth).
A vantage's files are one Dask partition. The vantage directory name escapes every character outside
``[A-Za-z0-9_-]`` as ``%XX``, so no label can climb out of OUT.

Idempotent and incremental: inputs are grouped by month (from the ``YYYY-MM-DD.jsonl`` file name, else
from the rows); a month whose input files (path, size, mtime) are unchanged since the last run is skipped;
a changed month is re-read from *all* its input files and each of its Parquet files is rewritten through
a temporary file and an atomic rename (a file for a vantage no longer present that month is removed).
Running compact twice on the same inputs changes nothing; a killed run leaves either the old or the new
version of each file, and the manifest is only updated after the data files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import frame as fr
from analysis import io as aio
from probe.fileio import atomic_write_bytes  # the one atomic-write helper (never replaces a FIFO or device)

FORMAT = "reachprobe-compact/1"
_DAY = re.compile(r"^(\d{4}-\d{2})-\d{2}$")
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def vantage_dirname(vantage: Any) -> str:
    if vantage is None or (isinstance(vantage, float) and vantage != vantage):
        return "v__none"
    return "v_" + _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode("utf-8")), str(vantage))


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    df = fr.normalize(df)
    tbl = pa.Table.from_pandas(df, preserve_index=False)
    return tbl.cast(fr.ARROW_SCHEMA) if tbl.schema != fr.ARROW_SCHEMA else tbl


def _month_of(df: pd.DataFrame) -> pd.Series:
    return df["measured_at"].dt.strftime("%Y-%m").fillna("unknown")


def write_partitioned(df: pd.DataFrame, out: Path, name: str) -> list[Path]:
    """Write ``df`` as ``OUT/v_<vantage>/<name>.parquet`` (one file per vantage); returns files written.

    Files named ``<name>.parquet`` of vantages absent from ``df`` are removed (they are stale).
    """
    out.mkdir(parents=True, exist_ok=True)
    df = fr.normalize(df)
    written: list[Path] = []
    if len(df):
        vkey = df["vantage"].astype(object).where(df["vantage"].notna(), None).map(vantage_dirname)
        df = df.assign(_v=vkey.to_numpy())
        for vdir, part in df.groupby("_v", sort=True, observed=True):
            part = part.drop(columns=["_v"])
            part = part.sort_values(["target", "measured_at", "id"], kind="stable", na_position="last")
            path = out / str(vdir) / f"{name}.parquet"
            write_parquet_atomic(frame_to_table(part.reset_index(drop=True)), path)
            written.append(path)
    keep = {p.resolve() for p in written}
    for stale in out.glob(f"v_*/{name}.parquet"):
        if stale.resolve() not in keep:
            stale.unlink()
    return written


def write_by_month(df: pd.DataFrame, out: str | os.PathLike) -> list[Path]:
    """Write a whole frame in the compact layout, one file per vantage and month of ``measured_at``
    (used by the benchmark and tests; ``compact`` names months after the input files)."""
    out = Path(out)
    month = _month_of(df)
    written: list[Path] = []
    for m in sorted(month.unique()):
        written += write_partitioned(df[(month == m).to_numpy()], out, m)
    manifest = out / aio.MANIFEST
    if not manifest.exists():
        atomic_write_bytes(
            manifest, json.dumps({"format": FORMAT, "sources": {}, "reports": {}, "read_report": {}}).encode()
        )
    return written


@dataclass
class CompactResult:
    out: Path
    input_files: int = 0
    months_written: list[str] = field(default_factory=list)
    months_skipped: list[str] = field(default_factory=list)
    rows: int = 0
    files_written: int = 0
    read_report: dict[str, Any] = field(default_factory=dict)


def _fingerprint(files: list[Path]) -> list[list[Any]]:
    out = []
    for f in sorted(files):
        st = f.stat()
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out


def compact(
    inputs: str | os.PathLike | Iterable[str | os.PathLike], out: str | os.PathLike, *, force: bool = False
) -> CompactResult:
    """Compact the JSONL results under ``inputs`` into Parquet under ``out`` (see module doc)."""
    out = Path(out)
    src = aio.discover(inputs)
    jsonl = [f for f in src.jsonl if out.resolve() not in f.resolve().parents]
    res = CompactResult(out=out, input_files=len(jsonl))
    manifest_path = out / aio.MANIFEST
    old: dict[str, Any] = {}
    if manifest_path.is_file() and not force:  # a FIFO there would block the read (and is refused below)
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
    old_sources = old.get("sources", {}) if old.get("format") == FORMAT else {}
    old_reports = old.get("reports", {}) if old.get("format") == FORMAT else {}

    by_month: dict[str, list[Path]] = {}
    undated: list[Path] = []
    for f in jsonl:
        m = _DAY.match(f.stem)
        if m:
            by_month.setdefault(m.group(1), []).append(f)
        else:
            undated.append(f)
    if undated:  # files not named by day: compacted together into v_<vantage>/undated.parquet
        by_month.setdefault("_undated", []).extend(undated)

    sources: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    for month in sorted(by_month):
        files = by_month[month]
        fp = _fingerprint(files)
        sources[month] = fp
        if not force and old_sources.get(month) == fp:
            res.months_skipped.append(month)
            reports[month] = old_reports.get(month, {})
            continue
        df, rep = aio._read_jsonl_files(files)
        df = aio._dedupe(df)
        reports[month] = rep
        written = write_partitioned(df, out, "undated" if month == "_undated" else month)
        res.months_written.append(month)
        res.rows += len(df)
        res.files_written += len(written)
    # months whose inputs disappeared entirely: leave their Parquet (results are append-only; a
    # compacted month may be all that is left of pruned JSONL)
    for month, fp in old_sources.items():
        if month not in sources:
            sources[month] = fp
            reports[month] = old_reports.get(month, {})
    res.read_report = aio.merge_reports(reports.values())
    manifest = {"format": FORMAT, "sources": sources, "reports": reports, "read_report": res.read_report}
    atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return res
