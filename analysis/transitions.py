"""Transitions against a group's baseline: unblocking windows (reachable episodes of normally blocked
groups), blips (uncorroborated single measurements) and blocking episodes (the mirror image), with
the corroboration across groups of one platform and country that turns a single ``ok`` into a window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import frame as fr
from analysis.episode_runs import DEFAULT_BY, DEFAULT_MAX_GAP, NAT
from analysis.episode_table import _ep_table, _meta


def _i8(s: pd.Series) -> np.ndarray:
    return s.astype(fr.TIME_DTYPE).array.asi8


def spans(ep: pd.DataFrame, max_gap_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Possible extent ``(lo, hi)`` of each episode: its bounds, clipped to ``max_gap`` around the evidence."""
    start, end = _i8(ep["start"]), _i8(ep["end"])
    sa, eb = _i8(ep["start_after"]), _i8(ep["end_before"])
    lo = np.where(sa == NAT, start - max_gap_us, np.maximum(sa, start - max_gap_us))
    hi = np.where(eb == NAT, end + max_gap_us, np.minimum(eb, end + max_gap_us))
    return lo, hi


def _same_keys(ep: pd.DataFrame) -> list[str]:
    return [c for c in ("platform", "cc") if c in ep.columns]


def corroborated(cand: pd.DataFrame, max_gap_us: int) -> np.ndarray:
    """For each candidate, whether another candidate of the same platform and country (another group)
    has evidence overlapping its possible extent. Vectorised interval counting per (platform, cc)."""
    out = np.zeros(len(cand), dtype=bool)
    if len(cand) < 2:
        return out
    lo, hi = spans(cand, max_gap_us)
    start, end = _i8(cand["start"]), _i8(cand["end"])
    keys = _same_keys(cand)
    if keys:
        gid = cand.groupby(keys, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    else:
        gid = np.zeros(len(cand), dtype=np.int64)
    order = np.argsort(gid, kind="stable")
    bounds = np.flatnonzero(np.r_[True, gid[order][1:] != gid[order][:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):  # one iteration per (platform, country)
        idx = order[a:b]
        if len(idx) < 2:
            continue
        s_sorted = np.sort(start[idx])
        e_sorted = np.sort(end[idx])
        cnt = np.searchsorted(s_sorted, hi[idx], "left") - np.searchsorted(e_sorted, lo[idx], "right")
        out[idx] = cnt >= 2
    return out


def _candidates(ep: pd.DataFrame, state: str, baseline_state: str, baseline: str) -> pd.DataFrame:
    is_state = (ep["state"] == state).to_numpy()
    if baseline == "majority":
        base = (ep["baseline"] == baseline_state).to_numpy()
    elif baseline == "neighbours":
        base = ((ep["prev_state"] == baseline_state) & (ep["next_state"] == baseline_state)).to_numpy()
    else:
        raise ValueError("baseline must be 'majority' or 'neighbours'")
    return ep[is_state & base]


def _transitions(
    df: Any, state: str, baseline_state: str, *, by: Sequence[str], max_gap: Any, baseline: str, min_n: int
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    ep = _ep_table(df, by, max_gap)
    by_, g = _meta(ep)
    cand = _candidates(ep, state, baseline_state, baseline)
    corr = corroborated(cand, g)
    cand = cand.assign(corroborated=corr)
    lo, hi = spans(cand, g)
    cand = cand.assign(
        duration_max=pd.Series((hi - lo).view("timedelta64[us]"), index=cand.index)
        if len(cand)
        else pd.Series([], dtype="timedelta64[us]")
    )
    n = cand["n"].to_numpy()
    keep = (n >= min_n) | corr
    return cand[keep], cand[~keep], by_


_WINDOW_TAIL = ["start_after", "start", "end", "end_before", "duration", "duration_max"]


def _out_columns(by: Sequence[str], frame: pd.DataFrame, count_name: str, extra: Sequence[str]) -> list[str]:
    head = [c for c in ("vantage", "asn", "cc", "network", "platform", "target", "kind") if c in frame.columns]
    head += [c for c in by if c not in head]
    return [*head, *_WINDOW_TAIL, count_name, "n_neutral", "corroborated", *extra, "gap_before", "gap_after"]


def _shape(frame: pd.DataFrame, by: Sequence[str], count_name: str, extra: Sequence[str]) -> pd.DataFrame:
    frame = frame.rename(columns={"n": count_name})
    cols = _out_columns(by, frame, count_name, extra)
    out = frame[[c for c in cols if c in frame.columns]].reset_index(drop=True)
    out.attrs = {}
    return out


def unblocking_windows(
    df: Any,
    *,
    by: Sequence[str] = DEFAULT_BY,
    max_gap: Any = DEFAULT_MAX_GAP,
    baseline: str = "majority",
    min_ok: int = 2,
) -> pd.DataFrame:
    """Reachable episodes of groups whose baseline is blocked: ``min_ok`` consecutive ``ok`` or corroborated.

    One row per window: ``vantage``, ``asn``, ``cc``, ``network``, ``platform``, ``target``, ``kind``,
    ``start_after``, ``start``, ``end``, ``end_before``, ``duration`` (end - start, the evidence),
    ``duration_max`` (the possible extent, bounds clipped to max_gap), ``n_ok``, ``n_neutral``,
    ``corroborated``, ``gap_before``, ``gap_after``. ``df`` may be a measurement frame (pandas/Dask) or
    the result of :func:`episodes`.
    """
    win, _, by_ = _transitions(df, "reachable", "blocked", by=by, max_gap=max_gap, baseline=baseline, min_n=min_ok)
    return _shape(win, by_, "n_ok", [])


def blips(
    df: Any,
    *,
    by: Sequence[str] = DEFAULT_BY,
    max_gap: Any = DEFAULT_MAX_GAP,
    baseline: str = "majority",
    of: str = "reachable",
) -> pd.DataFrame:
    """Uncorroborated single measurements against the baseline: by default single ``ok`` in a blocked
    baseline (never windows); ``of="blocked"`` lists single ``blocked`` in a reachable baseline."""
    if of not in ("reachable", "blocked"):
        raise ValueError("of must be 'reachable' or 'blocked'")
    other = "blocked" if of == "reachable" else "reachable"
    _, blip, by_ = _transitions(df, of, other, by=by, max_gap=max_gap, baseline=baseline, min_n=2)
    return _shape(blip, by_, "n_ok" if of == "reachable" else "n_blocked", [])


def blocking_episodes(
    df: Any,
    *,
    by: Sequence[str] = DEFAULT_BY,
    max_gap: Any = DEFAULT_MAX_GAP,
    baseline: str = "majority",
    min_blocked: int = 2,
) -> pd.DataFrame:
    """Blocked episodes of normally reachable groups (the mirror of :func:`unblocking_windows`), with the
    dominant ``method``/``layer``, all ``methods``, mean ``confidence`` and ``confirmed_share``."""
    blk, _, by_ = _transitions(df, "blocked", "reachable", by=by, max_gap=max_gap, baseline=baseline, min_n=min_blocked)
    return _shape(blk, by_, "n_blocked", ["method", "layer", "methods", "confidence", "confirmed_share"])
