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

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import timelines as eps
from analysis.report_data import (
    COVERAGE_COLS,
    METHOD_COLS,
    PLOT_STATUSES,
    NoData,
    ReportData,
    build,
)
from analysis.report_format import MAX_ROWS, _span_text, fmt_cell, fmt_duration, fmt_time, table_rows
from analysis.report_plots import MAX_ASN_ROWS, MAX_PLATFORM_PLOTS, STATUS_COLORS, plots
from analysis.report_summary import outage_periods, summary

__all__ = [
    "BLIP_COLS",
    "BLOCKING_COLS",
    "COVERAGE_COLS",
    "CSV_COLS",
    "EVENT_COLS",
    "FORMATS",
    "MAX_ASN_ROWS",
    "MAX_PLATFORM_PLOTS",
    "MAX_ROWS",
    "METHOD_COLS",
    "PLOT_STATUSES",
    "STATUS_COLORS",
    "WINDOW_COLS",
    "NoData",
    "ReportData",
    "atomic_write_text",
    "build",
    "findings",
    "fmt_cell",
    "fmt_duration",
    "fmt_time",
    "infer_format",
    "outage_periods",
    "plots",
    "render_csv",
    "render_html",
    "render_md",
    "section_frames",
    "summary",
    "table_rows",
    "write_report",
]

FORMATS = ("html", "md", "csv")


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
