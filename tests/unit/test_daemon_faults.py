"""Results-directory faults under a running daemon: a full disk (a tiny tmpfs) and a directory that
becomes unwritable (the tmpfs remounted read-only, as the kernel does after disk errors; or, when
not root, permissions taken away). Each gives one clear log line, the daemon keeps measuring, no
line is lost or torn, and the buffered lines are written once the fault clears."""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager

import pytest

from probe.results import ReadReport, iter_results
from tests.unit.daemon_harness import Proc, SwitchServer, clean_env, run_cli, write_targets

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

IS_ROOT = os.geteuid() == 0


def _permissions_bind_us() -> bool:
    """False for root with CAP_DAC_OVERRIDE, which writes into a 0500 directory anyway."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o500)
        try:
            open(os.path.join(d, "probe"), "w").close()
            return False
        except PermissionError:
            return True
        finally:
            os.chmod(d, 0o700)


PERMISSIONS_BIND = _permissions_bind_us()


@contextmanager
def tmpfs(path, size="256k"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def world(tmp_path):
    with SwitchServer("ok") as site, SwitchServer("ok") as canary:
        targets = write_targets(tmp_path / "targets.yaml", {
            "facebook": [{"name": "fb", "kind": "web", "urls": [site.url]}],
        }, [{"name": "canary", "scope": "international", "urls": [canary.url]}])
        yield targets


def daemon_args(targets, results):
    return ["daemon", "--targets", str(targets), "--results", str(results), "--interval", "1s", "--jitter", "0",
            "--timeout", "1", "--retries", "0", "--run-for", "90s"]


def check_no_loss(results, d):
    """Every completed run's lines are in the files, whole."""
    report = ReadReport()
    recs = list(iter_results(results, report))
    assert report.skipped == 0, report.summary()
    state = json.loads((results / ".reachprobe-state.json").read_text())
    assert state["status"] == "stopped" and state["buffered"] == 0 and state["dropped"] == 0
    assert len(recs) == 2 * state["runs"], d.log()  # target + canary per run, none lost
    assert len({r["id"] for r in recs}) == len(recs)  # none written twice
    assert "Traceback" not in d.log()


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_disk_full_one_line_keeps_running_and_flushes_when_space_returns(tmp_path, world):
    with tmpfs(tmp_path / "results") as results:
        with Proc(daemon_args(world, results), clean_env(tmp_path)) as d:
            assert d.wait_for(r"measured facebook", count=2, timeout=30), d.log()
            filler = results / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:  # fill the disk to the last byte
                for size in (65536, 4096, 512, 64, 1):
                    try:
                        while os.write(fd, b"\0" * size) == size:
                            pass
                    except OSError:
                        pass
            finally:
                os.close(fd)
            assert d.wait_for(r"results: .*No space left on device", timeout=20), d.log()
            n = len(d.matching(r"measured facebook"))
            assert d.wait_for(r"measured facebook", count=n + 3, timeout=20), d.log()  # keeps measuring
            st = run_cli(["status", "--results", str(results), "--check"], clean_env(tmp_path))
            assert st.returncode == 1 and "No space left" in st.stdout + st.stderr
            filler.unlink()
            assert d.wait_for(r"takes writes again; wrote \d+ buffered", timeout=20), d.log()
            assert d.wait_for(r"measured facebook", count=n + 5, timeout=20), d.log()
            assert d.stop() == 0, d.log()
            assert len(d.matching(r"No space left on device")) == 1  # one line for the whole episode
            check_no_loss(results, d)


@pytest.mark.skipif(not IS_ROOT, reason="remounting needs root")
def test_results_dir_turning_read_only_one_line_and_recovery(tmp_path, world):
    with tmpfs(tmp_path / "results", size="4m") as results:
        with Proc(daemon_args(world, results), clean_env(tmp_path)) as d:
            assert d.wait_for(r"measured facebook", count=2, timeout=30), d.log()
            subprocess.run(["mount", "-o", "remount,ro", str(results)], check=True, capture_output=True)
            assert d.wait_for(r"results: .*Read-only file system", timeout=20), d.log()
            n = len(d.matching(r"measured facebook"))
            assert d.wait_for(r"measured facebook", count=n + 3, timeout=20), d.log()
            subprocess.run(["mount", "-o", "remount,rw", str(results)], check=True, capture_output=True)
            assert d.wait_for(r"takes writes again", timeout=20), d.log()
            assert d.stop() == 0, d.log()
            assert len(d.matching(r"Read-only file system")) == 1
            check_no_loss(results, d)


@pytest.mark.skipif(not PERMISSIONS_BIND, reason="root ignores permissions (the read-only remount test covers root)")
def test_results_dir_without_permissions_one_line_and_recovery(tmp_path, world):
    results = tmp_path / "results"
    with Proc(daemon_args(world, results), clean_env(tmp_path)) as d:
        assert d.wait_for(r"measured facebook", count=2, timeout=30), d.log()
        files = [p for p in results.iterdir() if p.suffix == ".jsonl"]
        for p in files:
            p.chmod(0o400)
        results.chmod(0o500)
        try:
            assert d.wait_for(r"results: .*Permission denied", timeout=20), d.log()
            n = len(d.matching(r"measured facebook"))
            assert d.wait_for(r"measured facebook", count=n + 3, timeout=20), d.log()
        finally:
            results.chmod(0o700)
            for p in files:
                p.chmod(0o600)
        assert d.wait_for(r"takes writes again", timeout=20), d.log()
        assert d.stop() == 0, d.log()
        assert len(d.matching(r"Permission denied")) == 1
        check_no_loss(results, d)
