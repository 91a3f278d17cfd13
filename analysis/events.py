"""Window events: unblocking windows of one country clustered by overlapping possible extents, with
the networks that opened, those that stayed blocked, and the event's scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis import frame as fr
from analysis.episode_runs import DEFAULT_BY, DEFAULT_MAX_GAP
from analysis.episode_table import _ep_table, _meta
from analysis.transitions import _i8, spans, unblocking_windows


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
