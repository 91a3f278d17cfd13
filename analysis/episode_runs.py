"""Cut one frame's evidence into episodes: the per-partition kernel :func:`episodes_frame` (what Dask
maps over partitions) with its vectorised helpers, and the states, grouping defaults and ``max_gap``
parsing everything downstream shares. The definitions are in :mod:`analysis.timelines`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from analysis import frame as fr

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
