"""State timelines -> episodes -> unblocking windows, blips, blocking episodes, window events.

Definitions (see docs/analysis.md for the long form):

* **Evidence.** ``ok`` -> state ``reachable``, ``blocked`` -> ``blocked``, ``down`` -> ``down`` (the
  target itself is down), ``outage`` -> ``outage`` (the vantage's own network failed). ``flaky`` and
  ``inconclusive`` carry no state: they never start, end or split an episode (they are counted in
  ``n_neutral`` when they fall inside one).
* **Episode.** A maximal run of consecutive evidence of one state in one group (default: one vantage
  and one target), in time order, with no gap between consecutive evidence longer than ``max_gap``.
  ``start``/``end`` are the first/last evidence of the state; ``start_after`` is the last evidence of
  the group before ``start`` (whatever its state) and ``end_before`` the first evidence after ``end``;
  ``NaT`` when there is none. So the state really began in ``(start_after, start]`` and ended in
  ``[end, end_before)``. A gap longer than ``max_gap`` ends the episode even when the same state
  resumes after it: no state is invented across a gap, the bounds just become wide
  (``gap_before``/``gap_after`` say so).
* **Baseline** of a group: ``blocked`` when most of its ``ok``+``blocked`` measurements (in the frame
  analysed) are ``blocked``, ``reachable`` when most are ``ok``, ``mixed`` on a tie, missing without such
  evidence. ``baseline="neighbours"`` instead takes, for each episode, the nearest blocked/reachable
  episode before *and* after it (outage and down episodes skipped): both blocked (or both reachable).
* **Unblocking window.** A ``reachable`` episode of a group whose baseline is blocked, with at least
  ``min_n`` (2) consecutive ``ok`` measurements, or with one that is *corroborated*: another group (another
  vantage, or another target of the same platform) of the same platform and country has a candidate
  reachable episode whose evidence ``[start, end]`` overlaps this one's possible extent
  ``(start_after, end_before)`` (clipped to ``max_gap`` either side). An uncorroborated single ``ok`` is a
  **blip**, never a window. Outage and down episodes are neither blocking nor unblocking.
* **Blocking episode.** The mirror image: a ``blocked`` episode of a group whose baseline is reachable.
* **Window event.** Windows of one country whose possible extents overlap (transitively) are one event;
  it lists the platforms, targets, vantages and ASNs that opened, the ASNs that had blocked evidence
  for those platforms during the event and did not open, and its ``scope``: ``nationwide`` (>= 2 ASNs
  opened and none stayed blocked), ``isp-specific`` (some ASN stayed blocked), ``undetermined`` (only one
  ASN had evidence).

Everything is vectorised (sort, shift, cumsum, bincount, searchsorted); the per-partition function
:func:`episodes_frame` is what Dask maps over partitions (one vantage's rows are in one partition).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from analysis import frame as fr
from analysis import io as aio

STATES: tuple[str, ...] = ("reachable", "blocked", "down", "outage")
STATE_DTYPE = pd.CategoricalDtype(list(STATES))
REACHABLE, BLOCKED, DOWN, OUTAGE = 0, 1, 2, 3

#: columns that are a function of a grouping column, carried into episode rows (value at episode start)
DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "vantage": ("asn", "cc", "network"),
    "target": ("platform", "kind", "scope"),
    "asn": ("cc",),
}
DEFAULT_BY: tuple[str, ...] = ("vantage", "target")
DEFAULT_MAX_GAP = "1h"
NAT = np.iinfo(np.int64).min
_EPISODES_MARK = "reachprobe_episodes"


def parse_duration(value: Any) -> pd.Timedelta:
    """``pd.Timedelta`` that also takes ``"1d"``/``"2 days"`` without pandas' deprecation of ``d``."""
    if isinstance(value, str):
        import re

        value = re.sub(r"(?<=\d)\s*d(?=\s|$)", "D", value.strip())
    return pd.Timedelta(value)


def gap_us(max_gap: Any) -> int:
    td = parse_duration(max_gap)
    if td <= pd.Timedelta(0):
        raise ValueError("max_gap must be positive")
    return int(td / pd.Timedelta(microseconds=1))


def _descriptors(by: Sequence[str], columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for b in by:
        for d in DESCRIPTORS.get(b, ()):
            if d not in by and d not in out and d in columns:
                out.append(d)
    return out


def _times_us(s: pd.Series) -> np.ndarray:
    if str(s.dtype) != fr.TIME_DTYPE:
        s = fr.normalize(pd.DataFrame({"measured_at": s}), columns=["measured_at"])["measured_at"]
    return s.array.asi8 if hasattr(s.array, "asi8") else s.to_numpy().view("i8")


def _codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes (-1 = missing) and their count; for categoricals, codes in *sorted* category order
    (so ties and group order never depend on how a partition's categories happen to be ordered)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        cats = s.cat.categories
        k = len(cats)
        if k > 1:
            order = np.argsort(np.asarray(cats.astype(str), dtype=object), kind="stable")
            if not (order == np.arange(k)).all():
                rank = np.empty(k + 1, dtype=np.int32)
                rank[order] = np.arange(k, dtype=np.int32)
                rank[k] = -1
                codes = rank[codes]
        return codes, k
    codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
    return codes, len(uniques)


def _group_codes(pdf: pd.DataFrame, by: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """One integer code per row for the ``by`` combination (ordered like the sorted values), and the
    mask of rows with every ``by`` value present (``None``: all present)."""
    parts = [_codes(pdf[col]) for col in by]
    total = 1
    for _, k in parts:
        total *= max(k, 1)
    dtype = np.int32 if total < 2**31 else np.int64
    valid = None
    code = None
    if total >= 2**62:  # too many combinations for one integer: factorize the combination
        arrays = []
        for c, _ in parts:
            if c.min(initial=0) < 0:
                valid = (c >= 0) if valid is None else valid & (c >= 0)
            arrays.append(c)
        code, _ = pd.factorize(pd.MultiIndex.from_arrays(arrays), sort=True)
        return code.astype(np.int64), valid
    for c, k in parts:
        if len(c) and c.min() < 0:
            valid = (c >= 0) if valid is None else valid & (c >= 0)
            c = np.where(c >= 0, c, 0)
        c = c.astype(dtype, copy=False)
        code = c.copy() if code is None else code * dtype(max(k, 1)) + c
    assert code is not None  # ``by`` names at least one column
    return code, valid


def _dominant(codes: np.ndarray, ep: np.ndarray, nep: int, ncat: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Most frequent code per episode (ties: the smaller code, i.e. alphabetical), and the
    (episode, code, count) triples of episodes with more than one code."""
    valid = codes >= 0
    k = ncat
    if k == 0 or not valid.any():
        return np.full(nep, -1, dtype=np.int64), pd.DataFrame({"ep": [], "code": [], "count": []})
    if nep * k <= 2**25:
        counts = np.bincount(ep[valid].astype(np.intp) * k + codes[valid], minlength=nep * k).reshape(nep, k)
        top = counts.argmax(axis=1)
        has = counts[np.arange(nep), top] > 0
        dom = np.where(has, top, -1)
        multi = np.flatnonzero((counts > 0).sum(axis=1) > 1)
        if len(multi):
            sub = counts[multi]
            r, c = np.nonzero(sub)
            trip = pd.DataFrame({"ep": multi[r], "code": c, "count": sub[r, c]})
        else:
            trip = pd.DataFrame(
                {"ep": np.array([], np.int64), "code": np.array([], np.int64), "count": np.array([], np.int64)}
            )
        return dom, trip
    key = ep[valid].astype(np.int64) * k + codes[valid]
    uniq, cnt = np.unique(key, return_counts=True)
    e, c = uniq // k, uniq % k
    trip = pd.DataFrame({"ep": e, "code": c, "count": cnt}).sort_values(
        ["ep", "count", "code"], ascending=[True, False, True]
    )
    first = trip.drop_duplicates("ep", keep="first")
    dom = np.full(nep, -1, dtype=np.int64)
    dom[first["ep"].to_numpy()] = first["code"].to_numpy()
    nper = trip.groupby("ep").size()
    trip = trip[trip["ep"].isin(nper.index[nper.to_numpy() > 1])]
    return dom, trip


def _decode(codes: np.ndarray, s: pd.Series) -> pd.Series:
    """Codes from :func:`_codes` (sorted order) back to a categorical of ``s``'s values."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = pd.Index(sorted(s.cat.categories.astype(str)), dtype="str")
    else:
        cats = pd.Index(sorted({str(v) for v in s.dropna().unique()}), dtype="str")
    return pd.Series(pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats)))


def _sorted_names(s: pd.Series) -> list[str]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return sorted(s.cat.categories.astype(str))
    return sorted({str(v) for v in s.dropna().unique()})


def _pair_label(code: int, mnames: list[str], lnames: list[str], kl: int) -> str:
    m, l_ = (code + 1) // (kl + 1) - 1, (code + 1) % (kl + 1) - 1
    method = mnames[m] if m >= 0 else None
    layer = lnames[l_] if l_ >= 0 else None
    if method and layer:
        return f"{layer}/{method}"
    return method or layer or ""


def _to_time(a: np.ndarray) -> pd.Series:
    return pd.Series(a.view("datetime64[us]")).dt.tz_localize("UTC")


def empty_episodes(by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    src = fr.empty_frame()
    for c in [*by, *_descriptors(by, columns)]:
        cols[c] = src[c] if c in src.columns else pd.Series([], dtype="str")
    t = pd.Series([], dtype=fr.TIME_DTYPE)
    cols.update(
        {
            "state": pd.Series(pd.Categorical([], dtype=STATE_DTYPE)),
            "start_after": t,
            "start": t,
            "end": t,
            "end_before": t,
            "duration": pd.Series([], dtype="timedelta64[us]"),
            "n": pd.Series([], dtype="int64"),
            "n_neutral": pd.Series([], dtype="int64"),
            "method": src["method"],
            "layer": src["layer"],
            "methods": pd.Series([], dtype="str"),
            "confidence": pd.Series([], dtype="float64"),
            "confirmed_share": pd.Series([], dtype="float64"),
            "gap_before": pd.Series([], dtype=bool),
            "gap_after": pd.Series([], dtype=bool),
        }
    )
    return pd.DataFrame(cols)


def episodes_frame(pdf: pd.DataFrame, by: Sequence[str] = DEFAULT_BY, max_gap_us: int | None = None) -> pd.DataFrame:
    """Episodes of one pandas frame (or one Dask partition holding whole groups); not yet finalized
    (no baseline, not sorted across partitions). See :func:`episodes`."""
    by = list(by)
    max_gap_us = gap_us(DEFAULT_MAX_GAP) if max_gap_us is None else int(max_gap_us)
    missing = [c for c in (*by, "measured_at", "status") if c not in pdf.columns]
    if missing:
        raise KeyError(f"frame lacks column(s) {', '.join(missing)}")
    if not len(pdf):
        return empty_episodes(by, pdf.columns)
    t_all = _times_us(pdf["measured_at"])
    status = pdf["status"]
    if not (isinstance(status.dtype, pd.CategoricalDtype) and list(status.cat.categories) == list(fr.STATUSES)):
        status = fr.status_column(status)
    scodes = status.cat.codes.to_numpy()
    # status codes follow fr.STATUSES: ok blocked down outage (states 0-3) flaky inconclusive (no state)
    state_all = np.where(scodes < 4, scodes, -1).astype(np.int8, copy=False)
    g_all, valid = _group_codes(pdf, by)
    if len(t_all) and t_all.min() == NAT:
        valid = (t_all != NAT) if valid is None else valid & (t_all != NAT)
    ev_mask = state_all >= 0 if valid is None else valid & (state_all >= 0)
    erows = np.flatnonzero(ev_mask)  # evidence rows (original positions)
    m = len(erows)
    if m == 0:
        return empty_episodes(by, pdf.columns)
    # sort the evidence by (group, time) through one int64 key (lexsort when it would overflow or tie)
    t_ok = t_all if valid is None else t_all[valid]  # neutral rows must fit the key space too
    tmin = int(t_ok.min())
    tspan = int(t_ok.max()) - tmin + 1
    gmax = int(g_all.max()) + 1
    key = None
    if gmax < (2**62) // max(tspan, 1):
        key = g_all[erows].astype(np.int64) * tspan + (t_all[erows] - tmin)
        if not (key[1:] > key[:-1]).all():
            order = np.argsort(key, kind="stable")
            key = key[order]
            erows = erows[order]
            if (key[1:] == key[:-1]).any():
                key = None
    if key is None:  # ties (or a huge key space): order ties by state, deterministically
        order = np.lexsort((state_all[erows], t_all[erows], g_all[erows]))
        erows = erows[order]
    ge, te, se = g_all[erows], t_all[erows], state_all[erows]
    new = np.empty(m, dtype=bool)
    new[0] = True
    np.not_equal(ge[1:], ge[:-1], out=new[1:])
    new[1:] |= se[1:] != se[:-1]
    new[1:] |= (te[1:] - te[:-1]) > max_gap_us
    starts = np.flatnonzero(new)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = m - 1
    nep = len(starts)
    ep = np.cumsum(new, dtype=np.int32 if m < 2**31 else np.int64) - 1

    # flaky/inconclusive strictly inside an episode (evidence of the same episode on both sides)
    neutral = np.flatnonzero(state_all < 0 if valid is None else valid & (state_all < 0))
    n_neutral = np.zeros(nep, dtype=np.int64)
    if len(neutral):
        if key is not None:
            nkey = g_all[neutral].astype(np.int64) * tspan + (t_all[neutral] - tmin)
            pos = np.searchsorted(key, nkey, "right")
        else:
            nn = np.lexsort((t_all[neutral], g_all[neutral]))
            neutral = neutral[nn]
            # merge-position of each neutral row among the sorted evidence, by (group, time)
            both_g = np.concatenate([ge, g_all[neutral]])
            both_t = np.concatenate([te, t_all[neutral]])
            is_n = np.concatenate([np.zeros(m, bool), np.ones(len(neutral), bool)])
            o = np.lexsort((is_n, both_t, both_g))
            ranks = np.cumsum(~is_n[o])
            pos = ranks[is_n[o]]
        prev = pos - 1
        inside = (prev >= 0) & (pos < m)
        prev_i, next_i = prev[inside], pos[inside]
        same = ep[prev_i] == ep[next_i]
        n_neutral = np.bincount(ep[prev_i[same]], minlength=nep).astype(np.int64)

    start, end = te[starts], te[ends]
    n = (ends - starts + 1).astype(np.int64)
    same_prev = np.zeros(nep, dtype=bool)
    same_prev[1:] = ge[starts[1:]] == ge[starts[:-1]]
    same_next = np.zeros(nep, dtype=bool)
    same_next[:-1] = same_prev[1:]
    start_after = np.full(nep, NAT, dtype=np.int64)
    start_after[1:] = end[:-1]
    start_after[~same_prev] = NAT
    end_before = np.full(nep, NAT, dtype=np.int64)
    end_before[:-1] = start[1:]
    end_before[~same_next] = NAT
    gap_before = same_prev & ((start - np.where(same_prev, start_after, start)) > max_gap_us)
    gap_after = same_next & ((np.where(same_next, end_before, end) - end) > max_gap_us)

    first_rows = erows[starts]
    out: dict[str, Any] = {}
    for c in [*by, *_descriptors(by, pdf.columns)]:
        out[c] = pdf[c].take(first_rows).reset_index(drop=True)
    out["state"] = pd.Series(pd.Categorical.from_codes(se[starts].astype(np.int64), dtype=STATE_DTYPE))
    out["start_after"] = _to_time(start_after)
    out["start"] = _to_time(start)
    out["end"] = _to_time(end)
    out["end_before"] = _to_time(end_before)
    out["duration"] = pd.Series((end - start).view("timedelta64[us]"))
    out["n"] = n
    out["n_neutral"] = n_neutral
    # dominant (method, layer) pair: one bincount over pair codes
    mc, km = _codes(pdf["method"]) if "method" in pdf.columns else (np.full(len(pdf), -1, np.int8), 0)
    lc, kl = _codes(pdf["layer"]) if "layer" in pdf.columns else (np.full(len(pdf), -1, np.int8), 0)
    pdt = np.int16 if (km + 1) * (kl + 1) < 32_000 else np.int32
    pair = (mc[erows].astype(pdt) + 1) * pdt(kl + 1)  # type: ignore[operator]
    pair += lc[erows]  # -1 only when both are missing
    dom, trip = _dominant(pair, ep, nep, (km + 1) * (kl + 1) - 1)
    dm = np.where(dom >= 0, (dom + 1) // (kl + 1) - 1, -1)
    dl = np.where(dom >= 0, (dom + 1) % (kl + 1) - 1, -1)
    out["method"] = _decode(dm, pdf["method"]) if "method" in pdf.columns else pd.Series(pd.Categorical([None] * nep))
    out["layer"] = _decode(dl, pdf["layer"]) if "layer" in pdf.columns else pd.Series(pd.Categorical([None] * nep))
    mnames = _sorted_names(pdf["method"]) if "method" in pdf.columns else []
    lnames = _sorted_names(pdf["layer"]) if "layer" in pdf.columns else []
    labels = np.array(
        [_pair_label(i, mnames, lnames, kl) for i in range((km + 1) * (kl + 1) - 1)] or [""], dtype=object
    )
    text = cast(np.ndarray, np.where(dom >= 0, labels[np.maximum(dom, 0)], None)).astype(object)
    if len(trip):
        t = trip.sort_values(["ep", "count", "code"], ascending=[True, False, True])
        lab = pd.Series(labels[t["code"].to_numpy()] + " (" + t["count"].astype(str).to_numpy().astype(object) + ")")
        joined = lab.groupby(t["ep"].to_numpy(), sort=True).agg(", ".join)
        text[joined.index.to_numpy()] = joined.to_numpy()
    out["methods"] = pd.Series(text, dtype="str")
    if "confidence" in pdf.columns:
        conf = pdf["confidence"].to_numpy(dtype="float64", na_value=np.nan)[erows]
        nan = np.isnan(conf)
        if nan.any():
            ok = ~nan
            tot = np.add.reduceat(np.where(ok, conf, 0.0), starts)
            cnt = np.add.reduceat(ok, starts, dtype=np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["confidence"] = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
        else:
            out["confidence"] = np.add.reduceat(conf, starts) / n
    else:
        out["confidence"] = np.full(nep, np.nan)
    if "confirmed" in pdf.columns:
        conf_b = pdf["confirmed"].to_numpy(dtype=bool, na_value=False)[erows]
        out["confirmed_share"] = np.add.reduceat(conf_b, starts, dtype=np.int64) / n
    else:
        out["confirmed_share"] = np.full(nep, np.nan)
    out["gap_before"] = gap_before
    out["gap_after"] = gap_after
    return pd.DataFrame(out)


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


# ------------------------------------------------------------------------------------- transitions
def _ep_table(df: Any, by: Sequence[str], max_gap: Any) -> pd.DataFrame:
    return df if is_episode_table(df) else episodes(df, by, max_gap=max_gap)


def _meta(ep: pd.DataFrame) -> tuple[list[str], int]:
    info = ep.attrs.get(_EPISODES_MARK, {})
    return list(info.get("by", DEFAULT_BY)), int(info.get("max_gap_us", gap_us(DEFAULT_MAX_GAP)))


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


def _join(values: pd.Series, group: np.ndarray, fmt=str) -> pd.Series:
    """Sorted unique values per group, joined with ', ' (vectorised drop_duplicates + one join per group)."""
    d = pd.DataFrame({"g": group, "v": values.astype(object).to_numpy()}).dropna()
    d = d.drop_duplicates()
    d = d.sort_values(["g", "v"])
    d["s"] = d["v"].map(fmt)
    return d.groupby("g", sort=True)["s"].agg(", ".join)


def _asn_label(a: Any) -> str:
    return f"AS{int(a)}"


def window_events(
    df: Any,
    *,
    by: Sequence[str] = DEFAULT_BY,
    max_gap: Any = DEFAULT_MAX_GAP,
    baseline: str = "majority",
    min_ok: int = 2,
) -> pd.DataFrame:
    """Unblocking windows of one country grouped into events (possible extents overlapping).

    Columns: ``event`` (1..), ``cc``, ``start``, ``end`` (first/last ok of the event), ``duration``,
    ``scope`` (``nationwide``/``isp-specific``/``undetermined``), ``platforms``, ``targets``, ``asns_open``,
    ``networks_open``, ``asns_blocked`` (blocked evidence for these platforms during the event, did not
    open), ``vantages``, ``n_windows``, ``n_vantages``, ``n_asns``.
    """
    ep = _ep_table(df, by, max_gap)
    _, g = _meta(ep)
    win = unblocking_windows(ep, baseline=baseline, min_ok=min_ok)
    return events_from(win, ep, g)


def cluster_windows(win: pd.DataFrame, max_gap_us: int) -> np.ndarray:
    """Event id (1..) of each window, aligned with ``win``'s rows: windows of one country whose possible
    extents overlap, transitively (gaps-and-islands over the running maximum of the extents' ends)."""
    if not len(win):
        return np.array([], dtype=np.int64)
    cc_key = (
        (
            win["cc"].astype(object).where(win["cc"].notna(), "")
            if "cc" in win.columns
            else pd.Series("", index=win.index)
        )
        .astype(str)
        .to_numpy()
    )
    lo, hi = spans(win, max_gap_us)
    order = np.lexsort((lo, cc_key))
    lo_s, hi_s, cc_s = lo[order], hi[order], cc_key[order]
    run_hi = pd.Series(hi_s).groupby(cc_s).cummax().to_numpy()
    new = np.ones(len(win), dtype=bool)
    new[1:] = (cc_s[1:] != cc_s[:-1]) | (lo_s[1:] > run_hi[:-1])
    eid = np.empty(len(win), dtype=np.int64)
    eid[order] = np.cumsum(new)
    return eid


def events_from(win: pd.DataFrame, ep: pd.DataFrame, max_gap_us: int) -> pd.DataFrame:
    cols = [
        "event",
        "cc",
        "start",
        "end",
        "duration",
        "scope",
        "platforms",
        "targets",
        "asns_open",
        "networks_open",
        "asns_blocked",
        "vantages",
        "n_windows",
        "n_vantages",
        "n_asns",
    ]
    if not len(win):
        out = pd.DataFrame({c: [] for c in cols})
        out["start"] = out["start"].astype(fr.TIME_DTYPE)
        out["end"] = out["end"].astype(fr.TIME_DTYPE)
        out["duration"] = out["duration"].astype("timedelta64[us]")
        for c in ("event", "n_windows", "n_vantages", "n_asns"):
            out[c] = out[c].astype("int64")
        return out
    w = win.copy()
    if "cc" not in w.columns:
        w["cc"] = None
    w["event"] = cluster_windows(w, max_gap_us)
    w = w.sort_values(["event", "start"], kind="stable").reset_index(drop=True)
    grp = w.groupby("event", sort=True)
    out = pd.DataFrame(
        {
            "event": grp.size().index.to_numpy().astype(np.int64),
            "cc": grp["cc"].first().astype(object).to_numpy(),
            "start": grp["start"].min().to_numpy(),
            "end": grp["end"].max().to_numpy(),
        }
    )
    out["start"] = pd.Series(out["start"]).astype(fr.TIME_DTYPE)
    out["end"] = pd.Series(out["end"]).astype(fr.TIME_DTYPE)
    out["duration"] = (out["end"] - out["start"]).astype("timedelta64[us]")
    e = w["event"].to_numpy()
    out["platforms"] = _join(w["platform"], e).reindex(out["event"]).to_numpy() if "platform" in w else None
    out["targets"] = _join(w["target"], e).reindex(out["event"]).to_numpy() if "target" in w else None
    has_asn = "asn" in w.columns
    open_pairs = pd.DataFrame({"event": e, "asn": w["asn"].astype("Int64") if has_asn else pd.NA}).dropna()
    out["asns_open"] = (
        _join(open_pairs["asn"], open_pairs["event"].to_numpy(), _asn_label).reindex(out["event"]).to_numpy()
        if len(open_pairs)
        else None
    )
    out["networks_open"] = _join(w["network"], e).reindex(out["event"]).to_numpy() if "network" in w else None
    out["vantages"] = _join(w["vantage"], e).reindex(out["event"]).to_numpy() if "vantage" in w else None
    out["n_windows"] = grp.size().to_numpy().astype(np.int64)
    out["n_vantages"] = (grp["vantage"].nunique().to_numpy() if "vantage" in w else np.zeros(len(out))).astype(np.int64)
    n_open = open_pairs.drop_duplicates().groupby("event").size().reindex(out["event"], fill_value=0).to_numpy()
    out["n_asns"] = n_open.astype(np.int64)

    # ASNs with blocked evidence for the event's platforms during the event that did not open
    blocked_pairs = _blocked_asns(out, w, ep)
    closed = blocked_pairs.merge(open_pairs.drop_duplicates(), on=["event", "asn"], how="left", indicator=True)
    closed = closed[closed["_merge"] == "left_only"][["event", "asn"]].drop_duplicates()
    out["asns_blocked"] = (
        _join(closed["asn"], closed["event"].to_numpy(), _asn_label).reindex(out["event"]).to_numpy()
        if len(closed)
        else None
    )
    n_closed = closed.groupby("event").size().reindex(out["event"], fill_value=0).to_numpy()
    out["scope"] = np.where(n_closed > 0, "isp-specific", np.where(n_open >= 2, "nationwide", "undetermined"))
    for c in ("cc", "platforms", "targets", "asns_open", "networks_open", "asns_blocked", "vantages", "scope"):
        out[c] = pd.Series(out[c], dtype="str")
    return out[cols]


def _blocked_asns(events: pd.DataFrame, win: pd.DataFrame, ep: pd.DataFrame) -> pd.DataFrame:
    """(event, asn) pairs: blocked episodes of an event's platform and country overlapping the event."""
    empty = pd.DataFrame({"event": pd.Series([], dtype="int64"), "asn": pd.Series([], dtype="Int64")})
    if not {"asn", "platform", "state"} <= set(ep.columns) or not len(events):
        return empty
    blocked = ep[(ep["state"] == "blocked").to_numpy() & ep["asn"].notna().to_numpy()]
    if not len(blocked):
        return empty
    ev_pl = pd.DataFrame({"event": win["event"].to_numpy(), "platform": win["platform"].astype(object).to_numpy()})
    ev_pl = ev_pl.drop_duplicates()
    ev_cc = events.set_index("event")["cc"]
    ev_pl["cc"] = ev_cc.reindex(ev_pl["event"]).astype(object).where(lambda s: s.notna(), "").to_numpy()
    ev_start = events.set_index("event")["start"].astype(fr.TIME_DTYPE)
    ev_end = events.set_index("event")["end"].astype(fr.TIME_DTYPE)
    b_cc = (
        blocked["cc"].astype(object).where(blocked["cc"].notna(), "")
        if "cc" in blocked.columns
        else pd.Series("", index=blocked.index)
    ).to_numpy()
    b_pl = blocked["platform"].astype(object).to_numpy()
    b_start, b_end = _i8(blocked["start"]), _i8(blocked["end"])
    b_asn = blocked["asn"].astype("Int64").to_numpy()
    pairs: list[pd.DataFrame] = []
    for (cc, pl), sub in ev_pl.groupby(["cc", "platform"], sort=False):  # one iteration per (country, platform)
        evs = np.sort(sub["event"].to_numpy())
        es, ee = _i8(ev_start.reindex(evs)), _i8(ev_end.reindex(evs))
        sel = np.flatnonzero((b_cc == cc) & (b_pl == pl))
        if not len(sel):
            continue
        # events of one country are disjoint and sorted: each episode overlaps a contiguous run of them
        first = np.searchsorted(ee, b_start[sel], "left")
        last = np.searchsorted(es, b_end[sel], "right")
        cnt = np.maximum(last - first, 0)
        if not cnt.sum():
            continue
        rep = np.repeat(np.arange(len(sel)), cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pairs.append(pd.DataFrame({"event": evs[first[rep] + offs], "asn": b_asn[sel[rep]]}))
    if not pairs:
        return empty
    out = pd.concat(pairs, ignore_index=True).drop_duplicates()
    out["asn"] = out["asn"].astype("Int64")
    return out


# ---------------------------------------------------------------------------------------- analyse
@dataclass
class Analysis:
    """Everything a report needs, computed once from one episode table."""

    episodes: pd.DataFrame
    windows: pd.DataFrame
    blips: pd.DataFrame
    blocking: pd.DataFrame
    events: pd.DataFrame
    max_gap_us: int


def analyse(
    df: Any, *, by: Sequence[str] = DEFAULT_BY, max_gap: Any = DEFAULT_MAX_GAP, baseline: str = "majority"
) -> Analysis:
    """Episodes, windows (with their ``event`` id), blips, blocking episodes and events, in one pass."""
    ep = _ep_table(df, by, max_gap)
    _, g = _meta(ep)
    win = unblocking_windows(ep, baseline=baseline)
    events = events_from(win, ep, g)
    win = win.assign(event=cluster_windows(win, g))
    return Analysis(
        episodes=ep,
        windows=win,
        blips=blips(ep, baseline=baseline),
        blocking=blocking_episodes(ep, baseline=baseline),
        events=events,
        max_gap_us=g,
    )
