"""Stopping `reachprobe daemon` twice: the second SIGTERM or SIGINT abandons the run in flight at once
(docs/operation.md), logs a last line, and leaves the state file saying "stopped". A subprocess
against loopback servers; the run in flight would last two minutes, the grace is longer still, so
only the second signal can end it."""

from __future__ import annotations

import json
import signal
import time

import pytest

from probe.results import ReadReport, iter_results
from tests.unit.daemon_harness import Proc, SwitchServer, clean_env, write_targets

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def canary():
    with SwitchServer("ok") as srv:
        yield srv


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_signal_abandons_the_run_in_flight(tmp_path, raw_listener, canary, sig):
    hang = raw_listener("hang")  # accepts and never answers: the run lasts --timeout
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb-slow", "kind": "web", "urls": [f"http://127.0.0.1:{hang.port}/"]}],
    }, [{"name": "canary", "scope": "international", "urls": [canary.url]}])
    results = tmp_path / "results"
    args = ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1h",
            "--timeout", "120", "--target-deadline", "600", "--retries", "0", "--jitter", "0",
            "--stop-grace", "600s", "--run-for", "900s"]
    name = signal.Signals(sig).name
    with Proc(args, clean_env(tmp_path)) as d:
        assert d.wait_for(r"measuring facebook", timeout=60), d.log()
        d.p.send_signal(sig)
        assert d.wait_for(rf"stopping \({name}\): letting the in-flight run finish", timeout=60), d.log()
        time.sleep(0.5)  # the scheduler has stopped by now, as it has when a person presses Ctrl-C again
        assert d.p.poll() is None, d.log()  # still waiting for the run, as the first signal asks
        rc = d.stop(sig, timeout=90)  # far less than the two minutes the run would take
        log = d.log()
    assert rc == 0, log
    assert f"{name} again: abandoning the in-flight run now" in log
    assert "abandoned the in-flight run facebook" in log
    assert "Aborted!" not in log
    assert log.splitlines()[-1].endswith("stopped: 0 run(s) (0 burst), 1 abandoned"), log
    state = json.loads((results / ".reachprobe-state.json").read_text())
    assert state["status"] == "stopped" and state["abandoned_runs"] == 1 and state["measuring"] is None
    report = ReadReport()
    assert list(iter_results(results, report)) == [] and report.skipped == 0  # nothing of the run written
