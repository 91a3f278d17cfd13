"""The report's figures (matplotlib, drawn off-screen) as PNG data URIs: reachability over time per
platform and network, the blocked-share heat map, windows and blips, and blocking methods."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

from analysis.report_data import PLOT_STATUSES, ReportData, _asn_name, _platform_order
from analysis.report_format import _pct

STATUS_COLORS = {"ok": "#2ca02c", "blocked": "#d62728", "down": "#ff7f0e", "outage": "#7f7f7f", "other": "#d9d9d9"}
MAX_PLATFORM_PLOTS = 12
MAX_ASN_ROWS = 10


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
