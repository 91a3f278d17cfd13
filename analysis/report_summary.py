"""The report's plain-language findings: per platform where and when it was reachable or blocked and
how, then the vantages' own outages."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import io as aio
from analysis.report_data import ReportData, _asn_name, _platform_order
from analysis.report_format import _pct, _span_text, fmt_duration


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
