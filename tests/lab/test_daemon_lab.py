"""The daemon in the censorship lab: burst re-measurement tightens an unblocking window's bounds.

Telegram (web and both DCs) is blackholed by the censor; about 14 s after the daemon starts, the
censor opens it for 15 s (an nft set element with a timeout: the kernel closes the window, not the
test). The daemon measures the telegram group every 20 s (no jitter) with bursts 3 s, 6 s and 9 s
after a status flip. Ground truth: open in [W0, W0 + 15]. Timeline (seconds after the first run):
blocked run at 0, window 14-29, interval run at 20 sees it open, bursts at ~24 and ~27 (inside) and
~30 (closed: a new flip, whose own bursts confirm the block), interval run at 40.

What the test proves:
* every measurement agrees with the ground truth (ok inside the window, blocked outside it);
* the interval run inside the window sees the flip and burst measurements follow inside the window;
* the window's *end* is bounded by the burst measurements far more tightly than the interval runs
  alone could: (first blocked after) - (last ok) is a few seconds instead of about one interval;
* the daemon exits 0 on SIGTERM and every results line parses.

The daemon runs in the vantage namespace (routes only into the lab), on the lab targets file, with the
lab's outside control (the helper on the internet side): without it a blackhole accuses nobody.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from probe.results import ReadReport, iter_results
from tests.lab import topology as T
from tests.lab.runner import control_args, probe_cli, probe_env

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(300)]

TG = {"sites": ["telegram", "telegram-dc"]}
TELEGRAM = ("telegram-web", "telegram-dc1", "telegram-dc2")
INTERVAL = 20.0
BURSTS = (3.0, 6.0, 9.0)
OPEN_AT = 14.0  # seconds after the daemon's first run started: window [14, 29], interval run at 20
OPEN_FOR = 15.0
SLACK = 1.5  # measured_at is when a target's measurement starts; its connects follow within ~1 s
EDGE = 0.3  # the kernel closes the window on its own clock; a connect this close to an edge is not judged


def _ts(rec) -> float:
    return datetime.fromisoformat(rec["measured_at"].replace("Z", "+00:00")).timestamp()


def _connect_span(rec) -> tuple[float, float] | None:
    """When this measurement's TCP connects really happened (wall clock): the ground truth applies to
    the packets, not to when the measurement was scheduled, so a busy machine that starts a connect late
    cannot turn a correct verdict into a false failure."""
    start = _ts(rec)
    spans = [(start + a["t0"], start + a["t0"] + a["duration_ms"] / 1000) for a in rec["steps"].get("tcp", [])]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def test_daemon_bursts_tighten_an_unblocking_window(lab, tmp_path):
    results = tmp_path / "results"
    censor = lab.censor_ctl
    censor.apply("ip_blackhole", **TG)
    cmd = ["ip", "netns", "exec", lab.vantage, *probe_cli(), "daemon",
           "--targets", str(T.TARGETS_FILE), "--ca-bundle", str(lab.ca_pem), "--results", str(results),
           "--vantage", "lab", "--resolver", T.PUBLIC_RESOLVER_IP, "--platform", "telegram",
           "--timeout", "1", "--retries", "0", "--interval", f"{INTERVAL:g}s", "--jitter", "0",
           "--burst", ",".join(f"{b:g}s" for b in BURSTS), "--stop-grace", "3s", "--run-for", "75s",
           # the outside control: a blackholed address is "blocked" only when the helper reaches it
           *control_args(lab)]
    log: list[str] = []
    p = subprocess.Popen(cmd, cwd=T.REPO, env=probe_env(lab), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: log.extend(line.rstrip() for line in p.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("measuring telegram" in x for x in log):
            assert p.poll() is None and time.monotonic() < deadline, "\n".join(log)
            time.sleep(0.1)
        first_run = time.time()
        time.sleep(max(0.0, OPEN_AT - (time.time() - first_run)))
        w0 = time.time()
        censor.apply("open_window", seconds=OPEN_FOR, **TG)
        w1 = w0 + OPEN_FOR
        # The closing flip (seen by a burst) schedules its own bursts; wait for the last of them.
        deadline = time.monotonic() + 60
        flips = lambda: sum("status change:" in x and "telegram-web" in x for x in log)  # noqa: E731
        while flips() < 2 or time.time() < w1 + max(BURSTS) + 2 * SLACK:
            assert p.poll() is None and time.monotonic() < deadline, "\n".join(log)
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0, "\n".join(log)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        reader.join(5)
    text = "\n".join(log)
    assert "Traceback" not in text, text

    report = ReadReport()
    recs = [r for r in iter_results(results, report) if r["target"]["name"] in TELEGRAM]
    assert report.skipped == 0, report.summary()
    web = sorted((r for r in recs if r["target"]["name"] == "telegram-web"), key=_ts)
    timeline = [(round(_ts(r) - w0, 1), r["verdict"]["status"], r["schedule"]["trigger"]) for r in web]
    summary = f"window [0, {OPEN_FOR:g}] s; telegram-web (t - W0, status, trigger): {timeline}\n{text}"

    # 1. Every measurement agrees with the ground truth at the time its connects were made.
    for r in recs:
        span, status = _connect_span(r), r["verdict"]["status"]
        assert span is not None, f"{r['target']['name']}: no TCP attempt recorded\n{summary}"
        first, last = span
        where = f"{r['target']['name']} connects at {first - w0:.1f}..{last - w0:.1f}s"
        if w0 + EDGE <= first and last <= w1 - EDGE:
            assert status == "ok", f"{where}: {status}\n{summary}"
        elif last < w0 - EDGE or first > w1 + EDGE:
            assert status == "blocked", f"{where}: {status}\n{summary}"

    # 2. The flip was seen and bursts measured inside the window.
    oks = [r for r in web if r["verdict"]["status"] == "ok"]
    assert oks, summary
    assert oks[0]["schedule"]["trigger"] == "interval", summary
    burst_oks = [r for r in oks if r["schedule"]["trigger"] == "burst"]
    assert len(burst_oks) >= 2, summary
    assert all(r["schedule"]["changes"].get("telegram-web") == "blocked->ok" for r in burst_oks), summary

    # 3. Bounds of the window's end: last ok .. first blocked after it, at the times the connects were made.
    def end_bound(rs):
        last_ok = max(_connect_span(r)[0] for r in rs if r["verdict"]["status"] == "ok")
        after = [_connect_span(r)[1] for r in rs if r["verdict"]["status"] == "blocked" and _connect_span(r)[1] > last_ok]
        return last_ok, min(after) if after else None

    lo, hi = end_bound(web)
    assert hi is not None, summary
    assert lo - EDGE <= w1 <= hi + EDGE, summary  # the bounds contain the truth
    interval_only = [r for r in web if r["schedule"]["trigger"] == "interval"]
    ilo, ihi = end_bound(interval_only)
    assert hi - lo <= max(BURSTS) - min(BURSTS) + 2 * SLACK, summary  # a few seconds...
    assert ihi is None or (hi - lo) < (ihi - ilo) / 2, summary  # ...against about one interval

    # 4. The closing was itself seen as a flip and re-measured (ok->blocked bursts).
    assert any(r["schedule"]["trigger"] == "burst" and r["schedule"]["changes"].get("telegram-web") == "ok->blocked"
               for r in web), summary
    state = json.loads((Path(results) / ".reachprobe-state.json").read_text())
    assert state["status"] == "stopped" and state["burst_runs"] >= 4, state
