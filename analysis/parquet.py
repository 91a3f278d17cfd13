"""Parquet files (the compacted layout, or any file with the frame columns) -> the frame, with the row
filters pushed down into the read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from analysis import frame as fr


def read_parquet_files(
    files: Sequence[str | Path], columns: list[str] | None = None, filters: Any = None
) -> pd.DataFrame:
    """Parquet files (compacted layout or any file with the frame columns) -> normalized frame."""
    if not files:
        return fr.empty_frame(columns)
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    names = set(dataset.schema.names)
    want = list(columns) if columns is not None else list(fr.COLUMNS)
    tbl = dataset.to_table(columns=[c for c in want if c in names], filter=filters, use_threads=True)
    # Parquet dictionaries hold only the values of their file (the compactor writes normalized frames),
    # so unless rows were filtered out there is no unused category to scan for
    return fr.from_arrow(tbl, columns=want, drop_unused=filters is not None)


def _parquet_filter(since: pd.Timestamp | None, until: pd.Timestamp | None, platforms: Sequence[str] | None):
    expr = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        expr = conj(expr, pads.field("measured_at") >= pa.scalar(since.to_pydatetime(), pa.timestamp("us", "UTC")))
    if until is not None:
        expr = conj(expr, pads.field("measured_at") < pa.scalar(until.to_pydatetime(), pa.timestamp("us", "UTC")))
    if platforms:
        expr = conj(expr, pads.field("platform").isin(list(platforms)))
    return expr
