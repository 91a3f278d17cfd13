"""The lab itself: isolation (no route out of the lab), fast set-up, complete teardown (marker lab)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.lab import topology as T

pytestmark = pytest.mark.lab


def test_lab_is_isolated_and_torn_down(lab_pki, tmp_path):
    t0 = time.monotonic()
    lab = T.Lab(workdir=tmp_path / "lab", ca_dir=lab_pki)
    pids: list[int] = []
    try:
        lab.up()
        setup_s = time.monotonic() - t0
        lab.assert_no_route_out()
        for role in ("vantage", "censor", "internet"):
            # The kernel has no route to a non-lab address anywhere in the lab (no packet is sent).
            p = lab.sh(role, "ip", "route", "get", "1.1.1.1", check=False)
            assert p.returncode != 0 and "unreachable" in p.stderr.lower(), (role, p.stdout, p.stderr)
            assert lab.sh(role, "ip", "-6", "route", "show").stdout.strip() == "", role
        resolv = lab.sh("vantage", "cat", "/etc/resolv.conf").stdout
        assert f"nameserver {T.RESOLVER_IP}" in resolv and resolv.count("nameserver") == 1
        # the vantage reaches the lab: real resolver, a site, the blockpage
        assert f"{T.PAGE_MARKER} facebook" in _get(lab, "https://www.facebook.lab/")
        assert "10.10.34.34" in _get(lab, "http://10.10.34.34/")
        pids = [p.pid for p in lab.procs.values()]
        assert setup_s < 5, f"set-up took {setup_s:.1f}s"
    finally:
        lab.down()
    assert not any(Path("/run/netns", ns).exists() for ns in lab.namespaces)
    assert not (Path("/etc/netns") / lab.vantage).exists()
    assert not lab.state_file.exists()
    for pid in pids:
        assert not T._pid_alive(pid), f"pid {pid} survived teardown"


def test_stale_lab_of_dead_owner_is_swept(lab_pki, tmp_path):
    """A lab whose owner died without teardown (kill -9) is removed by the next set-up's sweep."""
    lab = T.Lab(workdir=tmp_path / "lab", ca_dir=lab_pki)
    try:
        lab.up()
        pids = [p.pid for p in lab.procs.values()]
        for p in lab.procs.values():
            p.popen = None  # as if another process had started them
        lab.owner_pid = _dead_pid()
        lab._save_state()
        assert lab.prefix in T.sweep_stale()
        assert not any(Path("/run/netns", ns).exists() for ns in lab.namespaces)
        time.sleep(0.2)
        assert not any(T._pid_alive(pid) for pid in pids)
    finally:
        lab.owner_pid = os.getpid()
        lab.down()


def _get(lab: T.Lab, url: str) -> str:
    """GET from inside the vantage (stdlib only: no curl needed), body even for an HTTP error."""
    code = (
        "import ssl, sys, urllib.error, urllib.request\n"
        f"ctx = ssl.create_default_context(cafile={str(lab.ca_pem)!r})\n"
        "try:\n"
        f"    print(urllib.request.urlopen({url!r}, timeout=3, context=ctx).read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.read().decode())\n"
    )
    return lab.sh("vantage", sys.executable, "-c", code).stdout


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
