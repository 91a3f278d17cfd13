"""Reports (HTML/Markdown/CSV) and the `reachprobe report` / `reachprobe compact` commands."""

from __future__ import annotations

import base64
import functools
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from click.testing import CliRunner

import analysis
from analysis import frame as fr
from analysis import reporting
from probe.cli import main
from tests import synth


@functools.lru_cache(maxsize=None)
def _data():
    df, truth = synth.timeline(days=28)
    return df, truth


@functools.lru_cache(maxsize=None)
def _built():
    return reporting.build(_data()[0])


class Page(HTMLParser):
    """Tables (id -> rows of cell text), images, and every URL-bearing attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self.images: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self._table = None
        self._row = None
        self._cell = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href", "action", "data", "poster"):
            if k in a:
                self.urls.append(a[k])
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
            self.headers[self._table] = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            (self.headers if self._in_head else self.tables)[self._table].extend([self._row] if not self._in_head else self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    return p


def test_html_report_self_contained_plots_and_tables_match_frames(tmp_path):
    df, truth = _data()
    out = tmp_path / "report.html"
    data = analysis.report(df, out)
    text = out.read_text()
    page = _parse(text)
    # plots are embedded PNGs; nothing is fetched from anywhere
    assert len(page.images) >= 4
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(u.startswith("data:") or u.startswith("#") for u in page.urls)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    # every table shows exactly its frame
    frames = reporting.section_frames(data)
    assert set(frames) <= set(page.tables)
    for sid, (frame, cols) in frames.items():
        assert page.headers[sid] == cols, sid
        assert page.tables[sid] == reporting.table_rows(frame, cols), sid
    a = data.analysis
    assert len(page.tables["windows"]) == len(a.windows) == len(truth.windows)
    assert len(page.tables["events"]) == len(truth.events)
    # timestamps in the table are the frame's, to the second
    starts = sorted(pd.Timestamp(r[page.headers["windows"].index("start")], tz="UTC") for r in page.tables["windows"])
    assert starts == sorted(a.windows["start"].dt.floor("s"))
    # the plain-language summary answers the analyst's question
    body = " ".join(page.text)
    assert "facebook was blocked on 4 of 4 network(s)" in body
    assert "nationwide, together with twitter" in body and "isp-specific" in body
    assert "dns blockpage_ip" in body and "tls sni_rst" in body
    assert "instagram was normally reachable" in body and "Blocking episode" in body
    assert "blip" in body


def test_markdown_and_csv_variants(tmp_path):
    df, truth = _data()
    md = tmp_path / "r.md"
    data = analysis.report(df, md)
    text = md.read_text()
    assert text.startswith("# reachprobe report") and "## Unblocking windows" in text
    assert "data:image" not in text
    win_rows = [line for line in text.split("## Unblocking windows")[1].split("##")[0].splitlines() if line.startswith("| ")]
    assert len(win_rows) == 1 + len(data.analysis.windows)  # header + rows
    csv = tmp_path / "r.csv"
    analysis.report(df, csv, fmt="csv")
    got = pd.read_csv(csv)
    assert list(got.columns) == reporting.CSV_COLS
    counts = got["record"].value_counts().to_dict()
    assert counts == {"unblocking_window": len(truth.windows), "blocking_episode": len(truth.blocking),
                      "event": len(truth.events), "blip": len(truth.blips)}
    w = got[got["record"] == "unblocking_window"].sort_values(["vantage", "target", "start"])
    exp = truth.windows.sort_values(["vantage", "target", "start"])
    assert (pd.to_datetime(w["start"], utc=True).tolist() == exp["start"].tolist())
    assert (pd.to_datetime(w["end_before"], utc=True).tolist() == exp["end_before"].tolist())


def test_report_filters_and_no_data(tmp_path):
    df, _ = _data()
    out = tmp_path / "fb.md"
    data = analysis.report(df, out, platforms=["twitter"], since="2026-09-06", until="2026-09-08")
    assert set(data.heat["platform"].astype(str)) == {"twitter"}
    assert len(data.analysis.windows) == 5
    with pytest.raises(reporting.NoData):
        analysis.report(df, tmp_path / "none.html", since="2030-01-01")
    assert not (tmp_path / "none.html").exists()


def test_report_is_atomic(tmp_path, monkeypatch):
    df, _ = _data()
    out = tmp_path / "r.md"
    out.write_text("previous report")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        analysis.report(df.head(2000), out)
    assert out.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


# ------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    df, _ = _data()
    week = fr.normalize(df[df["measured_at"] < pd.Timestamp("2026-09-08", tz="UTC")].reset_index(drop=True))
    synth.write_jsonl(week, root / "results", torn_tail=True)
    return root / "results"


def test_cli_report_exit_codes(tmp_path, results_dir):
    r = CliRunner()
    out = tmp_path / "report.html"
    res = r.invoke(main, ["report", str(results_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "torn final line" in res.output and "1 event(s)" in res.output
    res = r.invoke(main, ["report", str(results_dir), "-o", str(tmp_path / "r.csv"), "--platform", "facebook",
                          "--since", "2026-09-05T00:00:00Z", "--until", "2026-09-08"])
    assert res.exit_code == 0 and (tmp_path / "r.csv").read_text().startswith("record,")
    res = r.invoke(main, ["report", str(results_dir), "-o", str(tmp_path / "r.txt"), "--format", "md"])
    assert res.exit_code == 0 and (tmp_path / "r.txt").read_text().startswith("# ")
    # no data -> 1, nothing written
    res = r.invoke(main, ["report", str(results_dir), "-o", str(tmp_path / "none.html"), "--since", "2031-01-01"])
    assert res.exit_code == 1 and not (tmp_path / "none.html").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert r.invoke(main, ["report", str(empty), "-o", str(tmp_path / "e.html")]).exit_code == 1
    # bad arguments -> 2
    bad = [
        ["report", str(results_dir)],  # no -o
        ["report", "-o", str(out)],  # no input
        ["report", str(tmp_path / "missing"), "-o", str(out)],
        ["report", str(results_dir), "-o", str(out), "--since", "yesterday-ish"],
        ["report", str(results_dir), "-o", str(out), "--since", "2026-09-05", "--until", "2026-09-01"],
        ["report", str(results_dir), "-o", str(out), "--format", "pdf"],
        ["report", str(results_dir), "-o", str(out), "--max-gap", "-5m"],
        ["report", str(results_dir), "-o", str(tmp_path / "no" / "dir" / "r.html")],
        ["report", str(results_dir), "-o", str(out), "--scheduler", "tcp://127.0.0.1:1"],
    ]
    for args in bad:
        res = r.invoke(main, args)
        assert res.exit_code == 2, (args, res.output)


def test_cli_report_with_ooni(tmp_path, results_dir):
    ooni = synth.write_ooni(tmp_path / "ooni.jsonl")  # real OONI documents through the real read_ooni
    out = tmp_path / "with-ooni.csv"
    res = CliRunner().invoke(main, ["report", str(results_dir), "--ooni", str(ooni), "-o", str(out)])
    assert res.exit_code == 0, res.output
    # OONI alone works too
    res = CliRunner().invoke(main, ["report", "--ooni", str(ooni), "-o", str(tmp_path / "o.md")])
    assert res.exit_code == 0, res.output
    assert "ooni" in (tmp_path / "o.md").read_text()


def test_cli_compact_exit_codes(tmp_path, results_dir):
    r = CliRunner()
    out = tmp_path / "pq"
    res = r.invoke(main, ["compact", str(results_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 month(s) written" in res.output and (out / "_reachprobe_compact.json").exists()
    res = r.invoke(main, ["compact", str(results_dir), "-o", str(out)])
    assert res.exit_code == 0 and "0 month(s) written" in res.output and "1 unchanged" in res.output
    res = r.invoke(main, ["report", str(out), "-o", str(tmp_path / "from-parquet.md")])
    assert res.exit_code == 0, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert r.invoke(main, ["compact", str(empty), "-o", str(tmp_path / "pq2")]).exit_code == 1
    assert not (tmp_path / "pq2").exists()
    assert r.invoke(main, ["compact"]).exit_code == 2
    assert r.invoke(main, ["compact", str(tmp_path / "missing")]).exit_code == 2
    afile = next(results_dir.glob("*.jsonl"))
    assert r.invoke(main, ["compact", str(afile)]).exit_code == 2  # a file needs -o


# ------------------------------------------------------------------------------------ screenshot
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed")
def test_html_report_renders_in_headless_chromium(tmp_path):
    df, _ = _data()
    out = tmp_path / "report.html"
    analysis.report(df, out)
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           # Outside the unit guard's reach: no name resolves and every fetch goes to a dead loopback
           # proxy, so the browser cannot reach anything even if the page or Chromium itself tried.
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           f"--user-data-dir={profile}", "--window-size=1280,2400", f"--screenshot={shot}", out.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, timeout=90)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    from matplotlib.image import imread

    img = imread(io.BytesIO(png), format="png")
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    assert float(img[..., :3].std()) > 0.05  # not a blank page: text, tables and plots were drawn
