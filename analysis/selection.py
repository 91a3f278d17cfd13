"""Rows of loaded frames, pandas or Dask: the time and platform window, one row per measurement id,
and concatenation that keeps categoricals categorical."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis import frame as fr
from analysis.frameattrs import _DASK_ATTRS, is_dask, mark_partitioned, merge_reports, partitioned_by


def to_utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def select(df: Any, since: Any = None, until: Any = None, platforms: Sequence[str] | None = None) -> Any:
    """Rows with ``since <= measured_at < until`` and ``platform in platforms`` (pandas or Dask)."""
    since, until = to_utc(since), to_utc(until)
    if since is None and until is None and not platforms:
        return df
    mask = None

    def conj(a, b):
        return b if a is None else a & b

    if since is not None:
        mask = conj(mask, df["measured_at"] >= since)
    if until is not None:
        mask = conj(mask, df["measured_at"] < until)
    if platforms:
        mask = conj(mask, df["platform"].isin(list(platforms)))
    out = df[mask]
    if is_dask(df):
        mark_partitioned(out, partitioned_by(df), _DASK_ATTRS.get(df._name))
    return out


def _dedupe(df: pd.DataFrame) -> pd.DataFrame:
    ids = df["id"]
    has = ids.notna()
    if not has.any():
        return df
    dup = ids.duplicated(keep="first") & has
    if dup.any():
        df = df[~dup.to_numpy()]
    return df


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate normalized frames, unioning categoricals (no detour through object)."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return fr.empty_frame()
    if len(frames) == 1:
        return frames[0]
    cols = list(frames[0].columns)
    out: dict[str, Any] = {}
    for c in cols:
        series = [f[c] for f in frames]
        if isinstance(series[0].dtype, pd.CategoricalDtype) and c != "status":
            out[c] = pd.Series(pd.api.types.union_categoricals(series, sort_categories=True, ignore_order=True))
        else:
            out[c] = pd.concat([s.reset_index(drop=True) for s in series], ignore_index=True)
    df = fr.normalize(pd.DataFrame(out), columns=cols)
    reports = [f.attrs.get("read_report") for f in frames if f.attrs.get("read_report")]
    if reports:
        df.attrs["read_report"] = merge_reports(reports)
    return df
