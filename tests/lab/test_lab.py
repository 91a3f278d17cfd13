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


def test_censor_rst_and_server_packets_differ_in_ttl(lab):
    """The lab's TTL geometry (what makes a censor's RST tell-tale, DESIGN.md): what the censor
    forges arrives with TTL 64 (one hop), the server's own packets, RSTs included, with WAN_TTL - 1
    (several hops). Raw SYNs from the vantage with scapy, answers read off the wire."""
    lab.censor_ctl.syn_rst(sites=["facebook"])
    censor_rst = _syn(lab, T.site_ip("facebook"))
    server_synack = _syn(lab, T.site_ip("twitter"))
    lab.restore()
    lab.censor_ctl.site_down(sites=["facebook"])
    server_rst = _syn(lab, T.site_ip("facebook"))
    assert censor_rst == ("RA", 64), censor_rst
    assert server_synack == ("SA", T.WAN_TTL - 1), server_synack
    assert server_rst == ("RA", T.WAN_TTL - 1), server_rst


def _syn(lab: T.Lab, ip: str) -> tuple[str, int]:
    """(TCP flags, IP TTL) of the answer to one SYN to ip:443 sent from the vantage."""
    code = (
        "from scapy.all import IP, TCP, conf, sr1\n"
        "conf.verb = 0\n"
        f"a = sr1(IP(dst={ip!r}) / TCP(sport=40001, dport=443, flags='S'), timeout=10, retry=2)\n"
        "print(a[TCP].flags, a[IP].ttl)\n"
    )
    flags, ttl = lab.sh("vantage", sys.executable, "-c", code, timeout=60).stdout.split()
    return flags, int(ttl)


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
