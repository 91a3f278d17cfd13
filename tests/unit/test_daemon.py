"""`reachprobe daemon` for real, in a subprocess, against loopback servers, with intervals of
about a second. Every test is bounded by --run-for/--max-runs and pytest-timeout."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from probe.results import ReadReport, iter_results
from tests.unit.daemon_harness import Proc, SwitchServer, clean_env, run_cli, write_targets
from tests.unit.servers import ZoneEntry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FAST = ["--timeout", "1", "--retries", "0", "--jitter", "0.2s"]


def read_all(results):
    report = ReadReport()
    recs = list(iter_results(results, report))
    return recs, report


@pytest.fixture
def switch():
    with SwitchServer("ok") as srv:
        yield srv


@pytest.fixture
def canary():
    with SwitchServer("ok") as srv:
        yield srv


def simple_targets(tmp_path, site, canary_srv):
    return write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [site.url]}],
        "twitter": [{"name": "tw", "kind": "web", "urls": [site.url + "x"]}],
    }, [{"name": "canary", "scope": "international", "urls": [canary_srv.url]}])


def test_daemon_runs_groups_writes_results_and_status(tmp_path, switch, canary):
    targets = simple_targets(tmp_path, switch, canary)
    results = tmp_path / "results"
    env = clean_env(tmp_path)
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s", *FAST,
            "--run-for", "30s"]
    with Proc(args, env) as d:
        assert d.wait_for(r"measured twitter", count=2, timeout=30), d.log()
        # While it runs: healthy, the lock is held, a cron run is refused with the lock code.
        st = run_cli(["status", "--results", str(results), "--check"], env)
        assert st.returncode == 0, st.stdout + st.stderr
        st = run_cli(["status", "--results", str(results)], env)
        assert st.returncode == 0
        out = st.stdout
        assert "daemon:     running" in out and "last run:" in out and "next run:" in out
        assert "results:" in out and "since start:" in out and "ok " in out
        cron = run_cli(["run", "--quiet", "--targets", str(targets), "--results", str(results)], env)
        assert cron.returncode == 3 and len(cron.stderr.strip().splitlines()) == 1, cron.stderr
        assert d.stop() == 0, d.log()
    recs, report = read_all(results)
    assert report.skipped == 0
    by_group = Counter(r["schedule"]["group"] for r in recs)
    assert by_group["facebook"] >= 4 and by_group["twitter"] >= 4  # 2 runs x (target + canary) each
    assert all(r["schedule"]["trigger"] == "interval" for r in recs)
    assert {r["verdict"]["status"] for r in recs} == {"ok"}
    state = json.loads((results / ".reachprobe-state.json").read_text())
    assert state["status"] == "stopped" and state["runs"] >= 4 and state["totals"]["ok"] == len(recs)
    st = run_cli(["status", "--results", str(results), "--check"], env)
    assert st.returncode == 1 and "stopped" in st.stdout + st.stderr
    js = json.loads(run_cli(["status", "--results", str(results), "--json"], env).stdout)
    assert js["healthy"] is False and js["results"]["files"] == 1 and js["results"]["bytes"] > 0


def test_max_runs_stops_with_exit_0(tmp_path, switch, canary):
    targets = simple_targets(tmp_path, switch, canary)
    results = tmp_path / "results"
    res = run_cli(["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s", *FAST,
                   "--max-runs", "3"], clean_env(tmp_path), timeout=60)
    assert res.returncode == 0, res.stderr
    assert "stopping (--max-runs 3 reached)" in res.stderr
    recs, report = read_all(results)
    assert len({r["run_id"] for r in recs}) == 3 and report.skipped == 0


@pytest.mark.parametrize("grace,outcome", [("0.5s", "abandoned"), ("10s", "finished")])
def test_sigterm_mid_run_exits_0_and_leaves_every_file_parseable(tmp_path, raw_listener, canary, grace, outcome):
    """A run that takes ~2 s (a target that never answers) is in flight when SIGTERM comes: with a
    short grace it is abandoned (nothing of it written), with a long one it finishes (written whole)."""
    hang = raw_listener("hang")
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb-slow", "kind": "web", "urls": [f"http://127.0.0.1:{hang.port}/"]}],
    }, [{"name": "canary", "scope": "international", "urls": [canary.url]}])
    results = tmp_path / "results"
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s",
            "--timeout", "2", "--retries", "0", "--jitter", "0", "--stop-grace", grace, "--run-for", "60s"]
    with Proc(args, clean_env(tmp_path)) as d:
        assert d.wait_for(r"measured facebook", timeout=30), d.log()
        assert d.wait_for(r"measuring facebook", count=2, timeout=30), d.log()
        time.sleep(0.5)  # well inside the second run
        t0 = time.monotonic()
        assert d.stop(signal.SIGTERM, timeout=30) == 0, d.log()
        took = time.monotonic() - t0
        log = d.log()
    recs, report = read_all(results)
    assert report.skipped == 0 and not report.torn_final and not report.bad_lines
    runs = len({r["run_id"] for r in recs})
    assert "stopping (SIGTERM)" in log
    if outcome == "abandoned":
        assert "abandoned the in-flight run" in log and runs == 1 and took < 8
    else:
        assert "abandoned the in-flight run" not in log and "0 abandoned" in log and runs == 2
    assert len(recs) == 2 * runs
    assert json.loads((results / ".reachprobe-state.json").read_text())["status"] == "stopped"


def test_sigint_when_idle_exits_0(tmp_path, switch, canary):
    targets = simple_targets(tmp_path, switch, canary)
    results = tmp_path / "results"
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "5s", *FAST,
            "--run-for", "60s"]
    with Proc(args, clean_env(tmp_path)) as d:
        assert d.wait_for(r"measured twitter", timeout=30), d.log()
        assert d.stop(signal.SIGINT, timeout=20) == 0, d.log()
        assert "Traceback" not in d.log()


def test_status_flip_triggers_burst_remeasurements(tmp_path, switch, canary):
    """A blocked target opens: the run that sees it schedules re-measurements after 0.5, 1 and 1.5 s
    (the group interval is 6 s), which bound the window's start tightly."""
    switch.mode = "blockpage"
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [switch.url]}],
    }, [{"name": "canary", "scope": "international", "urls": [canary.url]}])
    results = tmp_path / "results"
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "6s", "--jitter", "0",
            "--timeout", "1", "--retries", "0", "--burst", "0.5s,1s,1.5s", "--run-for", "60s"]
    with Proc(args, clean_env(tmp_path)) as d:
        assert d.wait_for(r"measured facebook.*blocked 1", timeout=30), d.log()
        switch.mode = "ok"  # the window opens
        assert d.wait_for(r"status change: fb blocked->ok; re-measuring", timeout=20), d.log()
        assert d.wait_for(r"measured burst 3/3", timeout=20), d.log()
        assert d.stop() == 0, d.log()
    recs, report = read_all(results)
    assert report.skipped == 0
    fb = [r for r in recs if r["target"]["name"] == "fb"]
    bursts = [r for r in fb if r["schedule"]["trigger"] == "burst"]
    assert [r["schedule"]["burst"]["index"] for r in bursts] == [1, 2, 3]
    assert all(r["schedule"]["changes"] == {"fb": "blocked->ok"} and r["verdict"]["status"] == "ok" for r in bursts)
    # Canaries are re-measured with the target, so the verdicts keep their controls.
    assert sum(1 for r in recs if r["target"]["name"] == "canary" and r["schedule"]["trigger"] == "burst") == 3
    # The bursts come within ~2 s of the interval run that saw the change, well before the next one.
    from datetime import datetime

    def ts(r):
        return datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00"))

    seen = next(r for r in fb if r["verdict"]["status"] == "ok")
    assert seen["schedule"]["trigger"] == "interval"
    gaps = [(ts(b) - ts(seen)).total_seconds() for b in bursts]
    assert gaps == sorted(gaps) and 0.3 < gaps[0] < 2.5 and gaps[-1] < 4.5


def test_dead_resolver_and_lost_network_log_one_line_each_and_recover(tmp_path, dns_server, switch, canary):
    dns = dns_server({"site.test": ZoneEntry(a=["127.0.0.1"])})
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "web", "urls": [f"http://site.test:{switch.port}/"]}],
    }, [{"name": "canary", "scope": "international", "urls": [canary.url]}])
    results = tmp_path / "results"
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s",
            "--timeout", "0.3", "--retries", "0", "--jitter", "0", "--resolver", dns.address, "--run-for", "60s"]
    with Proc(args, clean_env(tmp_path)) as d:
        assert d.wait_for(r"measured facebook", timeout=30), d.log()
        dns.zone["site.test"].drop = True  # the resolver stops answering
        assert d.wait_for(r"resolver .* not answering", timeout=20), d.log()
        n = len(d.matching(r"measured facebook"))
        assert d.wait_for(r"measured facebook", count=n + 3, timeout=20), d.log()  # still running
        dns.zone["site.test"].drop = False
        assert d.wait_for(r"resolver answers again", timeout=20), d.log()
        canary.mode = "dead"  # the vantage's own connectivity breaks: every canary fails
        assert d.wait_for(r"all 1 canaries failed", timeout=20), d.log()
        n = len(d.matching(r"measured facebook"))
        assert d.wait_for(r"measured facebook", count=n + 3, timeout=20), d.log()
        canary.mode = "ok"
        assert d.wait_for(r"network is back", timeout=20), d.log()
        assert d.stop() == 0, d.log()
        assert len(d.matching(r"not answering")) == 1 and len(d.matching(r"canaries failed")) == 1
        assert "Traceback" not in d.log()
    recs, report = read_all(results)
    assert report.skipped == 0
    assert "outage" in {r["verdict"]["status"] for r in recs if r["target"]["name"] == "fb"}
