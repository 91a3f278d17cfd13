"""What a report shows, computed once from the selected measurements: :class:`ReportData` (the
analysis, counts per time bin, the blocked-share heat map, methods, coverage) built by :func:`build`,
and how its networks are named and its platforms ordered wherever it is shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis import io as aio
from analysis import timelines as eps

PLOT_STATUSES = ("ok", "blocked", "down", "outage", "other")
METHOD_COLS = ["asn", "network", "platform", "layer", "method", "n", "share", "confirmed_share"]
COVERAGE_COLS = ["vantage", "asn", "network", "cc", "first", "last", "n", "ok", "blocked", "down", "outage", "other"]


class NoData(Exception):
    """Nothing to report (no measurement in the selection)."""


@dataclass
class ReportData:
    title: str
    n: int
    first: pd.Timestamp
    last: pd.Timestamp
    freq: str
    analysis: eps.Analysis
    counts: pd.DataFrame  # platform, asn, bin, status, n
    heat: pd.DataFrame  # platform x asn: ok, blocked, share
    methods: pd.DataFrame  # METHOD_COLS
    coverage: pd.DataFrame  # COVERAGE_COLS
    networks: dict[int, str]
    read_report: dict[str, Any]
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    platforms: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _compute(obj: Any) -> Any:
    return obj.compute() if hasattr(obj, "compute") and aio.is_dask(obj) else obj


def _freq(first: pd.Timestamp, last: pd.Timestamp) -> str:
    span = last - first
    if span <= pd.Timedelta(days=10):
        return "1h"
    if span <= pd.Timedelta(days=45):
        return "6h"
    return "1D"


def _status_group(status: pd.Series) -> pd.Series:
    s = status.astype(object)
    return s.where(s.isin(["ok", "blocked", "down", "outage"]), "other")


def build(
    df: Any,
    *,
    max_gap: Any = eps.DEFAULT_MAX_GAP,
    title: str | None = None,
    since: Any = None,
    until: Any = None,
    platforms: Sequence[str] | None = None,
) -> ReportData:
    """Everything a report shows, from a measurement frame (pandas or Dask; filtered here)."""
    sel = aio.select(df, since, until, platforms)
    rep = aio.read_report(df)
    if aio.is_dask(sel):
        import dask

        sel = aio.persist(sel)  # every aggregate below reuses the loaded (and shuffled) partitions

        n, first, last = dask.compute(sel["measured_at"].count(), sel["measured_at"].min(), sel["measured_at"].max())
    else:
        n, first, last = int(sel["measured_at"].count()), sel["measured_at"].min(), sel["measured_at"].max()
    n = int(n)
    if n == 0:
        raise NoData(
            "no measurements to report" + (" in the selected period/platforms" if (since or until or platforms) else "")
        )
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    freq = _freq(first, last)
    analysis = eps.analyse(sel, max_gap=max_gap)

    d = sel.assign(bin=sel["measured_at"].dt.floor(freq))
    counts = _compute(d.groupby(["platform", "asn", "bin", "status"], observed=True, dropna=False).size())
    counts = counts.rename("n").reset_index()
    counts = counts[counts["n"] > 0]
    counts["status"] = _status_group(counts["status"])
    counts = counts.groupby(["platform", "asn", "bin", "status"], observed=True, dropna=False)["n"].sum().reset_index()

    per = (
        counts.groupby(["platform", "asn", "status"], observed=True, dropna=False)["n"]
        .sum()
        .unstack("status", fill_value=0)
    )
    for s in PLOT_STATUSES:
        if s not in per.columns:
            per[s] = 0
    heat = per.reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        heat["share"] = heat["blocked"] / (heat["ok"] + heat["blocked"]).where(lambda x: x > 0)

    blocked = sel[sel["status"] == "blocked"]
    mc = _compute(
        blocked.groupby(["asn", "platform", "layer", "method"], observed=True, dropna=False).agg(
            n=("confirmed", "size"), confirmed=("confirmed", "sum")
        )
    )
    mc = mc.reset_index()
    mc = mc[mc["n"] > 0]
    tot = mc.groupby(["asn", "platform"], observed=True, dropna=False)["n"].transform("sum")
    mc["share"] = mc["n"] / tot
    mc["confirmed_share"] = mc["confirmed"] / mc["n"]

    cov = (
        _compute(sel.assign(sg=_status_group_dask(sel["status"])).groupby(["vantage", "sg"], observed=True).size())
        .rename("n")
        .reset_index()
    )
    cov = cov.pivot_table(index="vantage", columns="sg", values="n", aggfunc="sum", fill_value=0, observed=True)
    for s in PLOT_STATUSES:
        if s not in cov.columns:
            cov[s] = 0
    cov["n"] = cov[list(PLOT_STATUSES)].sum(axis=1)
    span = _compute(sel.groupby("vantage", observed=True)["measured_at"].agg(["min", "max"]))
    info = _compute(sel[["vantage", "asn", "network", "cc"]].drop_duplicates())
    info = info.sort_values(["vantage", "asn"]).drop_duplicates("vantage").set_index("vantage")
    cov = cov.join(span.rename(columns={"min": "first", "max": "last"})).join(info)
    cov = cov.reset_index().sort_values("vantage")

    nets = _compute(sel[["asn", "network"]].dropna().drop_duplicates())
    networks: dict[int, str] = {}
    for a, nname in sorted(nets.astype(object).itertuples(index=False, name=None), key=lambda x: (x[0], str(x[1]))):
        networks.setdefault(int(a), str(nname))
    srcs = sorted(str(s) for s in _compute(sel["source"].dropna().unique())) if "source" in sel.columns else []
    mc["network"] = mc["asn"].map(lambda a: networks.get(int(a), "") if pd.notna(a) else "")
    mc = mc.sort_values(["asn", "platform", "n"], ascending=[True, True, False])[METHOD_COLS].reset_index(drop=True)
    return ReportData(
        title=title or "reachprobe report",
        n=n,
        first=first,
        last=last,
        freq=freq,
        analysis=analysis,
        counts=counts,
        heat=heat,
        methods=mc,
        coverage=cov[COVERAGE_COLS].reset_index(drop=True),
        networks=networks,
        read_report=rep,
        since=aio.to_utc(since),
        until=aio.to_utc(until),
        platforms=list(platforms or []),
        sources=srcs,
    )


def _status_group_dask(status: Any) -> Any:
    """ok/blocked/down/outage kept, flaky/inconclusive -> other (works on pandas and Dask series)."""
    if aio.is_dask(status):
        return status.map_partitions(lambda s: _status_group(s).astype("str"), meta=("status", "str"))
    return _status_group(status).astype("str")


def _asn_name(data: ReportData, asn: Any) -> str:
    if asn is None or pd.isna(asn):
        return "unknown network"
    name = data.networks.get(int(asn))
    return f"{name} (AS{int(asn)})" if name else f"AS{int(asn)}"


def _platform_order(data: ReportData) -> list[str]:
    plats = sorted({str(p) for p in data.heat["platform"].dropna().astype(str)})
    plats = [p for p in plats if p != "canary"]
    return sorted(plats, key=lambda p: (p != "facebook", p))
