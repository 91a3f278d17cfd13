"""How values read in reports: times, durations, shares and table cells, alike in HTML and Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MAX_ROWS = 1000


def fmt_time(v: Any) -> str:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    ts = pd.Timestamp(v)
    if ts is pd.NaT:
        return ""
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(v: Any) -> str:
    if v is None or v is pd.NaT:
        return ""
    td = pd.Timedelta(v)
    if td is pd.NaT:
        return ""
    secs = int(round(td.total_seconds()))
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d {h}h {m:02d}m"
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def fmt_cell(v: Any) -> str:
    """How a frame value appears in HTML and Markdown tables (tests rely on this)."""
    if v is None or v is pd.NaT or v is pd.NA:
        return ""
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return fmt_time(v)
    if isinstance(v, (pd.Timedelta, np.timedelta64)):
        return fmt_duration(v)
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        return f"{v:.2f}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def table_rows(
    df: pd.DataFrame, columns: Sequence[str] | None = None, max_rows: int | None = MAX_ROWS
) -> list[list[str]]:
    cols = [c for c in (columns or df.columns) if c in df.columns]
    sub = df[cols] if max_rows is None else df[cols].head(max_rows)
    return [[fmt_cell(v) for v in row] for row in sub.astype(object).itertuples(index=False, name=None)]


def _span_text(a: Any, b: Any) -> str:
    return f"{fmt_time(a)[:16]} → {fmt_time(b)[:16]} UTC"


def _pct(x: float) -> str:
    """0.999 -> '99.9%' (never rounds a share that is not exactly 1 up to 100%)."""
    if x >= 1:
        return "100%"
    if x <= 0:
        return "0%"
    v = math.floor(x * 1000) / 10
    return f"{v:.1f}%" if v != int(v) else f"{int(v)}%"
