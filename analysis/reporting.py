"""Reports: a self-contained HTML page (plots embedded as PNG data URIs), Markdown, or CSV.

The HTML page has: a plain-language summary per platform (when it was reachable, on which networks,
how it was blocked otherwise), reachability over time per platform and ASN (stacked ok / blocked /
down / outage / other counts per bin, as OONI's MAT shows them, with windows shaded), a heat map of
the blocked share per platform x ASN, a timeline of windows and blips, methods per ASN, and the tables
of window events, unblocking windows, blocking episodes, blips and coverage per vantage. No external
resource is referenced. Markdown carries the summary and the tables; CSV one row per finding
(``record`` = event / unblocking_window / blocking_episode / blip) for scripts.

Files are written to a temporary file next to the target and renamed into place: a report is either
complete or absent.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import io as aio
from analysis import timelines as eps

FORMATS = ("html", "md", "csv")
STATUS_COLORS = {"ok": "#2ca02c", "blocked": "#d62728", "down": "#ff7f0e", "outage": "#7f7f7f", "other": "#d9d9d9"}
PLOT_STATUSES = ("ok", "blocked", "down", "outage", "other")
MAX_ROWS = 1000
MAX_PLATFORM_PLOTS = 12
MAX_ASN_ROWS = 10


class NoData(Exception):
    """Nothing to report (no measurement in the selection)."""


# ---------------------------------------------------------------------------------------- formatting
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


# ------------------------------------------------------------------------------------------ columns
EVENT_COLS = [
    "event",
    "cc",
    "start",
    "end",
    "duration",
    "scope",
    "platforms",
    "asns_open",
    "networks_open",
    "asns_blocked",
    "n_windows",
    "n_vantages",
]
WINDOW_COLS = [
    "event",
    "platform",
    "target",
    "vantage",
    "asn",
    "network",
    "start_after",
    "start",
    "end",
    "end_before",
    "duration",
    "n_ok",
    "corroborated",
    "gap_before",
    "gap_after",
]
BLOCKING_COLS = [
    "platform",
    "target",
    "vantage",
    "asn",
    "network",
    "start_after",
    "start",
    "end",
    "end_before",
    "duration",
    "n_blocked",
    "method",
    "methods",
    "confidence",
    "confirmed_share",
]
BLIP_COLS = ["platform", "target", "vantage", "asn", "network", "start_after", "start", "end_before"]
METHOD_COLS = ["asn", "network", "platform", "layer", "method", "n", "share", "confirmed_share"]
COVERAGE_COLS = ["vantage", "asn", "network", "cc", "first", "last", "n", "ok", "blocked", "down", "outage", "other"]


# -------------------------------------------------------------------------------------------- data
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


# ---------------------------------------------------------------------------------------- summary
def _asn_name(data: ReportData, asn: Any) -> str:
    if asn is None or pd.isna(asn):
        return "unknown network"
    name = data.networks.get(int(asn))
    return f"{name} (AS{int(asn)})" if name else f"AS{int(asn)}"


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


def _platform_order(data: ReportData) -> list[str]:
    plats = sorted({str(p) for p in data.heat["platform"].dropna().astype(str)})
    plats = [p for p in plats if p != "canary"]
    return sorted(plats, key=lambda p: (p != "facebook", p))


def outage_periods(ep: pd.DataFrame) -> pd.DataFrame:
    """Outage episodes merged per vantage across targets (overlapping intervals joined): vantage, start, end."""
    if not len(ep) or "vantage" not in ep.columns:
        return pd.DataFrame(columns=["vantage", "start", "end"])
    o = ep[ep["state"] == "outage"][["vantage", "start", "end"]].sort_values(["vantage", "start"])
    if not len(o):
        return pd.DataFrame(columns=["vantage", "start", "end"])
    v = o["vantage"].astype(str).to_numpy()
    s_, e_ = o["start"].array.asi8, o["end"].array.asi8
    run = pd.Series(e_).groupby(v).cummax().to_numpy()
    new = np.ones(len(o), dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (s_[1:] > run[:-1])
    o = o.assign(k=np.cumsum(new))
    return (
        o.groupby("k")
        .agg(vantage=("vantage", "first"), start=("start", "min"), end=("end", "max"))
        .sort_values("start")
        .reset_index(drop=True)
    )


def summary(data: ReportData) -> list[str]:
    """Plain-language findings, one paragraph per line (platforms in order, facebook first)."""
    a = data.analysis
    lines: list[str] = []
    asns = sorted({int(x) for x in data.counts["asn"].dropna()})
    lines.append(
        f"{data.n:,} measurements from {len(data.coverage)} vantage(s) on {len(asns)} network(s) "
        f"({', '.join(_asn_name(data, x) for x in asns) or 'unknown'}), {_span_text(data.first, data.last)}."
        + (f" Sources: {', '.join(data.sources)}." if data.sources else "")
    )
    if data.read_report.get("skipped"):
        lines.append(
            "Input warning: " + (data.read_report.get("summary") or aio.summarize_report(data.read_report)) + "."
        )
    heat = data.heat
    for p in _platform_order(data):
        h = heat[heat["platform"].astype(str) == p]
        blocked_on = [(r.asn, r.share) for r in h.itertuples() if pd.notna(r.share) and r.share > 0.5]
        open_on = [(r.asn, r.share) for r in h.itertuples() if pd.notna(r.share) and r.share <= 0.5]
        measured = len(blocked_on) + len(open_on)
        if not measured:
            lines.append(f"{p}: no ok/blocked evidence (only outages, down or inconclusive results).")
            continue
        w = a.windows[a.windows["platform"].astype(str) == p] if len(a.windows) else a.windows
        b = a.blocking[a.blocking["platform"].astype(str) == p] if len(a.blocking) else a.blocking
        bl = a.blips[a.blips["platform"].astype(str) == p] if len(a.blips) else a.blips
        parts: list[str] = []
        if blocked_on:
            parts.append(
                f"{p} was blocked on {len(blocked_on)} of {measured} network(s) for most of the period "
                f"({', '.join(f'{_asn_name(data, x)} {_pct(s)} of ok/blocked results' for x, s in blocked_on)})"
                + (f"; normally reachable on {', '.join(_asn_name(data, x) for x, _ in open_on)}" if open_on else "")
                + "."
            )
        else:
            parts.append(f"{p} was normally reachable on all {measured} network(s) measured.")
        if len(w):
            evs = a.events.set_index("event")
            texts = []
            for ev_id, ww in w.groupby("event", sort=True):
                ev = evs.loc[ev_id] if ev_id in evs.index else None
                asn_list = sorted({int(x) for x in ww["asn"].dropna()})
                others = []
                if ev is not None and isinstance(ev["platforms"], str):
                    others = [x for x in ev["platforms"].split(", ") if x and x != p]
                scope = ev["scope"] if ev is not None else "undetermined"
                texts.append(
                    f"{_span_text(ww['start'].min(), ww['end'].max())} "
                    f"(at least {fmt_duration(ww['end'].max() - ww['start'].min()) or '1 measurement'}) on "
                    f"{', '.join(_asn_name(data, x) for x in asn_list)} — {scope}"
                    + (f", together with {', '.join(others)}" if others else "")
                )
            parts.append(f"It was reachable during {len(texts)} window(s): " + "; ".join(texts) + ".")
        elif blocked_on:
            parts.append("No unblocking window was observed.")
        if len(bl):
            parts.append(f"{len(bl)} single-measurement blip(s) were not counted as windows (uncorroborated).")
        m = data.methods[data.methods["platform"].astype(str) == p]
        if len(m) and blocked_on:
            per = []
            for asn, mm in m.groupby("asn", sort=True):
                mm = mm.sort_values("n", ascending=False)
                desc = ", ".join(
                    f"{(r.layer + ' ') if isinstance(r.layer, str) else ''}{r.method if isinstance(r.method, str) else 'unknown method'}"
                    f" {_pct(r.share)}{' (confirmed)' if r.confirmed_share >= 0.5 else ''}"
                    for r in mm.head(3).itertuples()
                )
                per.append(f"{_asn_name(data, asn)}: {desc}")
            parts.append("Otherwise it was blocked by — " + "; ".join(per) + ".")
        if len(b):
            texts = []
            for _, r in b.sort_values("start").head(8).iterrows():
                texts.append(
                    f"{_span_text(r['start'], r['end'])} on {_asn_name(data, r.get('asn'))}"
                    f" ({r.get('vantage')}, {r.get('methods') or r.get('method') or 'unknown method'})"
                )
            more = f" and {len(b) - 8} more" if len(b) > 8 else ""
            parts.append(f"Blocking episode(s) of a normally reachable target: {'; '.join(texts)}{more}.")
        lines.append(" ".join(parts))
    out = outage_periods(a.episodes)
    if len(out):
        spans = "; ".join(f"{r.vantage}: {_span_text(r.start, r.end)}" for r in out.head(10).itertuples())
        more = f" and {len(out) - 10} more" if len(out) > 10 else ""
        lines.append(
            f"Vantage outages (canaries failed): {len(out)} period(s) — {spans}{more}. They count neither "
            f"as blocking nor as unblocking."
        )
    return lines


# ------------------------------------------------------------------------------------------- plots
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _date_axis(ax: Any) -> None:
    """Ticks that name the hour when the period is hours and the day when it is months."""
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis_date()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _naive(s: Any) -> Any:
    t = pd.Series(s)
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return t


def plots(data: ReportData) -> list[tuple[str, str, str]]:
    """(id, caption, data URI) of every figure."""
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    out: list[tuple[str, str, str]] = []
    width_days = pd.Timedelta(data.freq) / pd.Timedelta(days=1)
    c = data.counts
    wins = data.analysis.windows
    for p in _platform_order(data)[:MAX_PLATFORM_PLOTS]:
        cp = c[c["platform"].astype(str) == p]
        if not len(cp):
            continue
        asn_tot = cp.groupby("asn", dropna=False)["n"].sum().sort_values(ascending=False)
        asns = list(asn_tot.index[:MAX_ASN_ROWS])
        asns.sort(key=lambda x: (pd.isna(x), x if pd.notna(x) else 0))
        fig = Figure(figsize=(11, 1.6 * len(asns) + 0.8))
        axes = fig.subplots(len(asns), 1, sharex=True, squeeze=False)[:, 0]
        for ax, asn in zip(axes, asns, strict=False):
            ca = cp[cp["asn"].isna()] if pd.isna(asn) else cp[cp["asn"] == asn]
            wide = ca.pivot_table(index="bin", columns="status", values="n", aggfunc="sum", fill_value=0)
            full = pd.date_range(data.first.floor(data.freq), data.last.floor(data.freq), freq=data.freq)
            wide = wide.reindex(full, fill_value=0)
            x = mdates.date2num(_naive(wide.index).to_numpy())
            xs = np.r_[x, x[-1] + width_days]
            bottom = np.zeros(len(wide))
            for s in PLOT_STATUSES:
                if s in wide.columns:
                    top = bottom + wide[s].to_numpy(dtype=float)
                    ax.fill_between(
                        xs,
                        np.r_[bottom, bottom[-1]],
                        np.r_[top, top[-1]],
                        step="post",
                        color=STATUS_COLORS[s],
                        label=s,
                        linewidth=0,
                    )
                    bottom = top
            if len(wins):
                ww = (
                    wins[(wins["platform"].astype(str) == p) & (wins["asn"] == asn)]
                    if pd.notna(asn)
                    else wins.iloc[0:0]
                )
                for r in ww.itertuples():
                    ax.axvspan(
                        mdates.date2num(_naive([r.start]).iloc[0]),
                        mdates.date2num(_naive([r.end]).iloc[0]),
                        color="#2ca02c",
                        alpha=0.25,
                        linewidth=2,
                    )
            ax.set_ylabel(_asn_name(data, asn).replace(" (", "\n("), fontsize=8)
            ax.tick_params(labelsize=8)
        axes[0].set_title(
            f"{p}: measurements per {data.freq} by status, per network (windows shaded green)", fontsize=10
        )
        from matplotlib.patches import Patch

        fig.legend(
            [Patch(color=STATUS_COLORS[s]) for s in PLOT_STATUSES],
            [s if s != "other" else "flaky/inconclusive" for s in PLOT_STATUSES],
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            fontsize=8,
            ncol=5,
            frameon=False,
        )
        _date_axis(axes[-1])
        out.append((f"timeline-{p}", f"Reachability of {p} over time, per network (UTC)", _png(fig)))

    h = data.heat
    plats = _platform_order(data)
    asns = sorted({int(x) for x in h["asn"].dropna()})
    if plats and asns:
        grid = np.full((len(plats), len(asns)), np.nan)
        for r in h.itertuples():
            if pd.notna(r.asn) and str(r.platform) in plats and pd.notna(r.share):
                grid[plats.index(str(r.platform)), asns.index(int(r.asn))] = r.share
        fig = Figure(figsize=(1.3 * len(asns) + 2.5, 0.5 * len(plats) + 1.5))
        ax = fig.subplots()
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(asns)), [_asn_name(data, a).replace(" (", "\n(") for a in asns], fontsize=8)
        ax.set_yticks(range(len(plats)), plats, fontsize=8)
        for i in range(len(plats)):
            for j in range(len(asns)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, _pct(grid[i, j]), ha="center", va="center", fontsize=8)
        fig.colorbar(im, ax=ax, label="blocked share of ok+blocked")
        ax.set_title("Blocked share per platform and network", fontsize=10)
        out.append(
            ("heatmap", "Heat map: share of ok/blocked results that were blocked, platform × network", _png(fig))
        )

    wins, bl = data.analysis.windows, data.analysis.blips
    if len(wins) or len(bl):
        rows = sorted(
            {
                (str(r.platform), int(r.asn) if pd.notna(r.asn) else -1)
                for r in pd.concat([wins[["platform", "asn"]], bl[["platform", "asn"]]]).itertuples()
            }
        )
        fig = Figure(figsize=(11, 0.35 * len(rows) + 1.5))
        ax = fig.subplots()
        for i, (p, asn) in enumerate(rows):
            for frame_, color in ((wins, "#2ca02c"),):
                sub = frame_[(frame_["platform"].astype(str) == p) & (frame_["asn"].fillna(-1) == asn)]
                if len(sub):
                    s = mdates.date2num(_naive(sub["start"]).to_numpy())
                    e = mdates.date2num(_naive(sub["end"]).to_numpy())
                    min_w = max((data.last - data.first) / pd.Timedelta(days=1) / 300, 1 / 144)
                    ax.barh(i, np.maximum(e - s, min_w), left=s, color=color, height=0.6)
            sub = bl[(bl["platform"].astype(str) == p) & (bl["asn"].fillna(-1) == asn)]
            if len(sub):
                ax.plot(mdates.date2num(_naive(sub["start"]).to_numpy()), [i] * len(sub), "kx", markersize=5)
        ax.set_yticks(range(len(rows)), [f"{p} · {_asn_name(data, a) if a >= 0 else '?'}" for p, a in rows], fontsize=8)
        ax.set_xlim(mdates.date2num(_naive([data.first]).iloc[0]), mdates.date2num(_naive([data.last]).iloc[0]))
        _date_axis(ax)
        ax.set_title("Unblocking windows (green) and uncorroborated blips (x)", fontsize=10)
        out.append(("windows", "When each platform opened, per network", _png(fig)))

    m = data.methods
    if len(m):
        lab = (
            m["layer"].astype(object).fillna("?").astype(str) + "/" + m["method"].astype(object).fillna("?").astype(str)
        )
        piv = m.assign(lab=lab).pivot_table(index="asn", columns="lab", values="n", aggfunc="sum", fill_value=0)
        fig = Figure(figsize=(10, 0.5 * len(piv) + 1.8))
        ax = fig.subplots()
        left = np.zeros(len(piv))
        cmap = __import__("matplotlib").colormaps["tab20"]
        for k, col in enumerate(piv.columns):
            v = piv[col].to_numpy(dtype=float)
            ax.barh(range(len(piv)), v, left=left, color=cmap(k % 20), label=col)
            left += v
        ax.set_yticks(range(len(piv)), [_asn_name(data, a) for a in piv.index], fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_xlabel("blocked measurements")
        ax.set_title("Blocking methods per network (layer/method)", fontsize=10)
        out.append(("methods", "Blocking methods per network", _png(fig)))
    return out


# ------------------------------------------------------------------------------------------ render
def _sections(data: ReportData) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    a = data.analysis
    win = a.windows.sort_values(["start", "platform", "vantage"]) if len(a.windows) else a.windows
    blk = a.blocking.sort_values(["start", "platform", "vantage"]) if len(a.blocking) else a.blocking
    blp = a.blips.sort_values(["start", "platform", "vantage"]) if len(a.blips) else a.blips
    for f in (win, blk, blp):
        if len(f) and "asn" in f.columns:
            f["network"] = f["asn"].map(lambda x: data.networks.get(int(x), "") if pd.notna(x) else "")
    return [
        ("events", "Window events (windows grouped across vantages, networks and platforms)", a.events, EVENT_COLS),
        ("windows", "Unblocking windows", win, WINDOW_COLS),
        ("blocking", "Blocking episodes of normally reachable targets", blk, BLOCKING_COLS),
        ("blips", "Blips (single uncorroborated ok; not windows)", blp, BLIP_COLS),
        ("methods", "Blocking methods per network", data.methods, METHOD_COLS),
        ("coverage", "Coverage per vantage", data.coverage, COVERAGE_COLS),
    ]


def section_frames(data: ReportData) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """The frame and columns behind each table (id -> (frame, columns)), for tests and scripts."""
    return {sid: (frame, [c for c in cols if c in frame.columns]) for sid, _, frame, cols in _sections(data)}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px}
th{background:#f2f2f2;position:sticky;top:0}tr:nth-child(even){background:#fafafa}img{max-width:100%}
.summary li{margin:.4em 0}.note{color:#666;font-size:12px}
"""


def _html_table(sid: str, frame: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in frame.columns]
    rows = table_rows(frame, cols)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    note = ""
    if len(frame) > len(rows):
        note = f'<p class="note">First {len(rows)} of {len(frame)} rows; the CSV report has all.</p>'
    if not len(frame):
        return f'<p class="note" id="{sid}-empty">None.</p><table id="{sid}"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
    return f'<table id="{sid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'


def render_html(data: ReportData) -> str:
    figs = plots(data)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f'<p class="note">Period {html.escape(_span_text(data.first, data.last))}; bins of {data.freq}; '
        f"episodes end at data gaps longer than {fmt_duration(pd.Timedelta(microseconds=data.analysis.max_gap_us))}."
        + (f" Platforms: {html.escape(', '.join(data.platforms))}." if data.platforms else "")
        + "</p>",
        '<h2 id="summary">Summary</h2><ul class="summary">',
    ]
    parts += [f"<li>{html.escape(line)}</li>" for line in summary(data)]
    parts.append("</ul>")
    if figs:
        parts.append("<h2>Plots</h2>")
        for fid, caption, uri in figs:
            parts.append(
                f'<figure id="fig-{html.escape(fid)}"><img alt="{html.escape(caption)}" src="{uri}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    for sid, heading, frame, cols in _sections(data):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(_html_table(sid, frame, cols))
    parts.append(
        '<p class="note">Definitions: an episode runs from its first to its last evidence (start, end); '
        "start_after/end_before are the neighbouring evidence, so the change happened between them. "
        "A window needs two consecutive ok results, or one corroborated by another vantage or target of the "
        "same platform. Outages are neither blocking nor unblocking. Generated by reachprobe.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_escape(v: str) -> str:
    return v.replace("|", "\\|").replace("\n", " ")


def render_md(data: ReportData) -> str:
    lines = [f"# {data.title}", "", f"Period {_span_text(data.first, data.last)}.", "", "## Summary", ""]
    lines += [f"- {line}" for line in summary(data)]
    for _sid, heading, frame, cols in _sections(data):
        cols = [c for c in cols if c in frame.columns]
        lines += ["", f"## {heading}", ""]
        if not len(frame):
            lines.append("None.")
            continue
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for r in table_rows(frame, cols):
            lines.append("| " + " | ".join(_md_escape(v) for v in r) + " |")
        if len(frame) > MAX_ROWS:
            lines.append(f"\nFirst {MAX_ROWS} of {len(frame)} rows; the CSV report has all.")
    return "\n".join(lines) + "\n"


CSV_COLS = [
    "record",
    "event",
    "cc",
    "asn",
    "network",
    "vantage",
    "platform",
    "target",
    "start_after",
    "start",
    "end",
    "end_before",
    "duration_s",
    "n",
    "corroborated",
    "scope",
    "platforms",
    "asns_open",
    "asns_blocked",
    "method",
    "layer",
    "methods",
    "confidence",
    "confirmed_share",
]


def findings(data: ReportData) -> pd.DataFrame:
    """One row per finding (event, unblocking_window, blocking_episode, blip), CSV_COLS."""
    a = data.analysis
    frames = []
    for rec, f, ncol in (
        ("event", a.events, "n_windows"),
        ("unblocking_window", a.windows, "n_ok"),
        ("blocking_episode", a.blocking, "n_blocked"),
        ("blip", a.blips, "n_ok"),
    ):
        if not len(f):
            continue
        g = f.copy()
        g["record"] = rec
        g["n"] = g[ncol]
        g["duration_s"] = (g["end"] - g["start"]).dt.total_seconds()
        if "asn" in g.columns:
            g["network"] = g["asn"].map(lambda x: data.networks.get(int(x), "") if pd.notna(x) else "")
        frames.append(g.reindex(columns=CSV_COLS).astype(object))
    if not frames:
        return pd.DataFrame(columns=CSV_COLS)
    out = pd.concat(frames, ignore_index=True)
    for c in ("start_after", "start", "end", "end_before"):
        out[c] = out[c].map(
            lambda v: "" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
    return out


def render_csv(data: ReportData) -> str:
    return findings(data).to_csv(index=False, lineterminator="\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Reports are meant to be shared: 0644, unlike results. Never half-written (temp + rename)."""
    from analysis.compaction import atomic_write_bytes

    atomic_write_bytes(Path(path), text.encode("utf-8"), mode=0o644)


def infer_format(path: Any, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"htm": "html", "html": "html", "md": "md", "markdown": "md", "csv": "csv"}.get(suffix, "html")


def write_report(
    df: Any,
    path: Any,
    fmt: str | None = None,
    since: Any = None,
    until: Any = None,
    platforms: Sequence[str] | None = None,
    *,
    max_gap: Any = eps.DEFAULT_MAX_GAP,
    title: str | None = None,
) -> ReportData:
    """Render ``df`` (pandas or Dask measurement frame) to ``path`` as html/md/csv; atomic.

    Raises :class:`NoData` when nothing is selected (no file is written then)."""
    fmt = infer_format(path, fmt)
    data = build(df, max_gap=max_gap, title=title, since=since, until=until, platforms=platforms)
    text = {"html": render_html, "md": render_md, "csv": render_csv}[fmt](data)
    atomic_write_text(Path(path), text)
    return data
