"""Episode tables: the partitions' episodes finalized (dtypes, order, group baseline, neighbouring
states) by :func:`episodes`, which runs the kernel per Dask partition or in threads over a large
frame, and the mark that lets every later step take either a measurement frame or such a table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import frame as fr
from analysis import io as aio
from analysis.episode_runs import (
    BLOCKED,
    DEFAULT_BY,
    DEFAULT_MAX_GAP,
    REACHABLE,
    STATE_DTYPE,
    empty_episodes,
    episodes_frame,
    gap_us,
)

_EPISODES_MARK = "reachprobe_episodes"


def _finalize(raw: pd.DataFrame, by: Sequence[str], max_gap_us: int) -> pd.DataFrame:
    """Deterministic dtypes and order, plus group baseline and neighbouring states."""
    by = list(by)
    ep = raw.reset_index(drop=True)
    for c in ep.columns:
        if c == "state":
            ep[c] = pd.Series(pd.Categorical(ep[c].astype(object), dtype=STATE_DTYPE))
        elif c in fr.CATEGORY_COLUMNS:
            ep[c] = fr.categorical(ep[c])
        elif c == "asn":
            ep[c] = ep[c].astype("Int64")
        elif c in ("start_after", "start", "end", "end_before"):
            ep[c] = ep[c].astype(fr.TIME_DTYPE)
        elif c == "duration":
            ep[c] = ep[c].astype("timedelta64[us]")
        elif c in ("n", "n_neutral"):
            ep[c] = ep[c].astype("int64")
        elif c in ("gap_before", "gap_after"):
            ep[c] = ep[c].astype(bool)
        elif c == "methods":
            ep[c] = ep[c].astype("str")
    ep = ep.sort_values([*by, "start"], kind="stable").reset_index(drop=True)
    gkey = ep.groupby(by, observed=True, sort=False).ngroup().to_numpy() if len(ep) else np.array([], np.int64)
    state = ep["state"].cat.codes.to_numpy()
    n = ep["n"].to_numpy()
    if len(ep):
        n_ok = np.bincount(gkey, weights=np.where(state == REACHABLE, n, 0))
        n_bl = np.bincount(gkey, weights=np.where(state == BLOCKED, n, 0))
    else:
        n_ok = n_bl = np.array([])
    ok_g, bl_g = n_ok[gkey] if len(ep) else n_ok, n_bl[gkey] if len(ep) else n_bl
    base = np.where(bl_g > ok_g, "blocked", np.where(ok_g > bl_g, "reachable", np.where(ok_g > 0, "mixed", None)))  # type: ignore[call-overload]
    ep["baseline"] = pd.Series(pd.Categorical(base, categories=["blocked", "reachable", "mixed"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ep["blocked_share"] = np.where(ok_g + bl_g > 0, bl_g / np.maximum(ok_g + bl_g, 1), np.nan)
    rb = pd.Series(np.where((state == REACHABLE) | (state == BLOCKED), state, np.nan))
    grp = pd.Series(gkey)
    prev = rb.groupby(grp).shift(1)
    prev = prev.groupby(grp).ffill()
    nxt = rb.groupby(grp).shift(-1)
    nxt = nxt.groupby(grp).bfill()
    names = np.array(["reachable", "blocked"], dtype=object)

    def label(x: pd.Series) -> pd.Series:
        v = x.to_numpy()
        lab = np.full(len(v), None, dtype=object)
        ok = ~np.isnan(v)
        lab[ok] = names[v[ok].astype(int)]
        return pd.Series(pd.Categorical(lab, categories=["reachable", "blocked"]))

    ep["prev_state"] = label(prev)
    ep["next_state"] = label(nxt)
    ep.attrs = {_EPISODES_MARK: {"by": by, "max_gap_us": int(max_gap_us)}}
    return ep


def is_episode_table(df: Any) -> bool:
    return isinstance(df, pd.DataFrame) and _EPISODES_MARK in df.attrs


def episodes(df: Any, by: Sequence[str] = DEFAULT_BY, *, max_gap: Any = DEFAULT_MAX_GAP) -> pd.DataFrame:
    """The state timeline of each ``by`` group cut into episodes (``reachable``/``blocked``/``down``/``outage``).

    ``df``: a measurement frame, pandas or Dask (Dask: computed partition-wise, one ``by[0]`` value per
    partition; the frame is shuffled first unless :func:`analysis.load` made it partitioned that way).
    Returns a pandas DataFrame, one row per episode, sorted by ``by`` then ``start``: the ``by`` columns,
    their descriptors (``asn``, ``cc``, ``network`` for a vantage; ``platform``, ``kind``, ``scope`` for a
    target), ``state``, ``start_after``, ``start``, ``end``, ``end_before``, ``duration`` (end - start),
    ``n`` (evidence measurements), ``n_neutral`` (flaky/inconclusive inside), dominant ``method`` and
    ``layer``, ``methods`` (all methods with counts), mean ``confidence``, ``confirmed_share``,
    ``gap_before``/``gap_after``, the group's ``baseline`` and ``blocked_share``, and the nearest
    blocked/reachable state before and after (``prev_state``/``next_state``).
    """
    by = tuple(by)
    g = gap_us(max_gap)
    if is_episode_table(df):
        return df
    if aio.is_dask(df):
        col = by[0]
        ddf = df if aio.partitioned_by(df) == col else df.shuffle(on=col)
        meta = episodes_frame(ddf._meta, by, g)
        raw = ddf.map_partitions(episodes_frame, by, g, meta=meta, enforce_metadata=False).compute()
        if not len(raw):
            raw = empty_episodes(by, df.columns)
    else:
        slices = _parallel_slices(df, by)
        if slices:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(slices)) as pool:
                parts = list(pool.map(lambda sl: episodes_frame(df.iloc[sl], by, g), slices))
            raw = pd.concat(parts, ignore_index=True)
        else:
            raw = episodes_frame(df, by, g)
    return _finalize(raw, by, g)


PARALLEL_MIN_ROWS = 2_000_000


def _parallel_slices(pdf: pd.DataFrame, by: Sequence[str]) -> list[slice] | None:
    """Row ranges that hold whole ``by[0]`` groups, one per core, when the frame is large and its rows
    come grouped by ``by[0]`` (as Parquet compacted per vantage loads): numpy releases the GIL, so
    the ranges are processed in threads, on views of the frame (no copy)."""
    n = len(pdf)
    cores = min(os.cpu_count() or 1, 4)
    if n < PARALLEL_MIN_ROWS or cores < 2 or not isinstance(pdf[by[0]].dtype, pd.CategoricalDtype):
        return None
    codes = pdf[by[0]].cat.codes.to_numpy()
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    heads = codes[np.r_[0, change]]
    if len(np.unique(heads)) != len(heads) or len(change) < 1:  # some value in several runs: not grouped
        return None
    cuts = sorted({int(change[np.argmin(np.abs(change - n * i / cores))]) for i in range(1, cores)})
    bounds = [0, *cuts, n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]


def _ep_table(df: Any, by: Sequence[str], max_gap: Any) -> pd.DataFrame:
    return df if is_episode_table(df) else episodes(df, by, max_gap=max_gap)


def _meta(ep: pd.DataFrame) -> tuple[list[str], int]:
    info = ep.attrs.get(_EPISODES_MARK, {})
    return list(info.get("by", DEFAULT_BY)), int(info.get("max_gap_us", gap_us(DEFAULT_MAX_GAP)))
