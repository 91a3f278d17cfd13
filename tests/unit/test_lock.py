"""The run lock: one measuring process per results directory; stale locks never block."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from probe.lock import LOCK_NAME, LockBusy, RunLock, fallback_lock_path, is_locked, read_holder
from probe.results import ReadReport, iter_results
from tests.unit.daemon_harness import REPO, Proc, clean_env, cli_argv, write_targets


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REACHPROBE_CONFIG_DIR", str(tmp_path / "config"))


def test_second_lock_is_refused_then_free_after_release(tmp_path):
    results = tmp_path / "results"
    with RunLock(results) as first:
        assert first.path == results / LOCK_NAME and read_holder(first.path) == os.getpid()
        assert is_locked(results) == (True, os.getpid())
        with pytest.raises(LockBusy) as busy:
            RunLock(results).acquire()
        assert busy.value.holder_pid == os.getpid()
    assert is_locked(results) == (False, None)
    with RunLock(results):
        pass
    assert (results / LOCK_NAME).exists()  # never deleted: deleting a flock'ed file races


def test_stale_lock_file_with_a_dead_pid_does_not_block(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / LOCK_NAME).write_text("999999\n")  # left by a run that died
    with RunLock(results) as lock:
        assert read_holder(lock.path) == os.getpid()


def test_lock_of_a_killed_process_is_free(tmp_path):
    results = tmp_path / "results"
    code = ("import sys, time; from probe.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(results)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env=clean_env(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusy):
            RunLock(results).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with RunLock(results):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_falls_back_to_the_config_dir_when_results_cannot_hold_it(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    results = blocker / "results"  # cannot be created
    with RunLock(results) as lock:
        assert lock.path == fallback_lock_path(results)
        assert lock.path.is_relative_to(tmp_path / "config")
        with pytest.raises(LockBusy):
            RunLock(results).acquire()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_two_concurrent_runs_one_measures_one_exits_with_the_lock_code(tmp_path, raw_listener, http_server):
    """Two `reachprobe run` at once: the first measures (slowly: a target that never answers), the
    second exits 3 with one line and measures nothing."""
    hang = raw_listener("hang")
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb-slow", "kind": "endpoint", "endpoints": [f"127.0.0.1:{http_server.port}"],
                      "urls": [f"http://127.0.0.1:{hang.port}/"]}],
    }, [{"name": "canary", "scope": "international", "urls": [f"http://127.0.0.1:{http_server.port}/"]}])
    results = tmp_path / "results"
    env = clean_env(tmp_path)
    args = ["run", "--quiet", "--targets", str(targets), "--results", str(results), "--timeout", "3",
            "--retries", "0"]
    with Proc(args, env) as first:
        deadline = time.monotonic() + 20
        while not is_locked(results)[0] and time.monotonic() < deadline and first.p.poll() is None:
            time.sleep(0.05)
        assert is_locked(results)[0], first.log()
        second = subprocess.run(cli_argv(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        assert second.returncode == 3, second.stderr
        assert second.stdout == ""
        msg = second.stderr.strip().splitlines()
        assert len(msg) == 1 and "already measuring" in msg[0] and str(results) in msg[0]
        assert first.p.wait(30) == 0, first.log()
        assert first.p.stdout.read() == ""  # --quiet: nothing on success
    report = ReadReport()
    recs = list(iter_results(results, report))
    assert len(recs) == 2 and report.skipped == 0  # one run's worth: the second measured nothing
    assert len({r["run_id"] for r in recs}) == 1
