"""TCP packet evidence (IP TTL / IP ID of SYN-ACKs and RSTs) on loopback only.

With CAP_NET_RAW: a server that resets with SO_LINGER 0 (the kernel's RST, the server's own TTL)
against a RST forged with scapy from "the server" with another TTL (what an on-path censor sends).
Without it: recorded as skipped with the reason.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from probe.measure import packets, tcp, tls
from probe.measure.packets import PacketCapture, hops_from_ttl

needs_raw = pytest.mark.skipif(packets.capture_unavailable() is not None,
                               reason=f"packet capture unavailable: {packets.capture_unavailable()}")


class _Rec:
    packets = None
    rst_ttl_mismatch = None


# ------------------------------------------------------------------------- the rule, no privilege
def _cap_with(by_key, synacks=None) -> PacketCapture:
    cap = PacketCapture()
    cap._by_key = by_key
    cap._synack_ttls = synacks or {}
    return cap


SA, RA, R, FA = 0x12, 0x14, 0x04, 0x11


def test_rst_ttl_rule():
    key = ("203.0.113.5", 443, 40000)
    # server 12 hops away (TTL 52), RST from 1 hop (TTL 63) 517 bytes into the server's stream
    cap = _cap_with({key: [(52, 0, SA, 1000, 1), (63, 4242, RA, 1001, 518)]})
    ev, mismatch = cap.evidence([key])
    assert mismatch is True
    assert ev["synack_ttl"] == 52 and ev["server_ttls"] == [52] and ev["reference"] == "connection"
    assert ev["rst"] == [{"ttl": 63, "ip_id": 4242, "flags": "RA", "after_bytes": 0, "hops": 1, "ttl_delta": 11}]
    assert ev["server_hops"] == 12
    # the server's own RST: same TTL, or one hop off after a route change
    for ttl in (52, 51, 53):
        cap = _cap_with({key: [(52, 0, SA, 1000, 1), (ttl, 0, R, 1518, 0)]})
        ev, mismatch = cap.evidence([key])
        assert mismatch is False and ev["rst"][0]["after_bytes"] == 517 and ev["rst"][0]["ttl_delta"] == ttl - 52
    # no RST: nothing to judge
    assert _cap_with({key: [(52, 0, SA, 1000, 1), (52, 0, FA, 2000, 1)]}).evidence([key])[1] is None
    # a RST to the SYN: no SYN-ACK on this connection; the same address's SYN-ACKs elsewhere decide
    other = ("203.0.113.5", 443, 40001)
    syn_rst = {key: [(63, 0, RA, 0, 1)], other: [(52, 0, SA, 7, 1)]}
    ev, mismatch = _cap_with(syn_rst, {"203.0.113.5": {52}}).evidence([key])
    assert mismatch is True and ev["reference"] == "address" and ev["rst"][0]["after_bytes"] is None
    # ...and without any packet of the server's anywhere, only the hop count is recorded
    ev, mismatch = _cap_with({key: [(63, 0, RA, 0, 1)]}).evidence([key])
    assert mismatch is None and ev["reference"] is None and ev["rst"][0]["hops"] == 1


def test_hops():
    assert [hops_from_ttl(t) for t in (64, 63, 52, 128, 117, 255, 250, 30)] == [0, 1, 12, 0, 11, 0, 5, 2]


def test_skipped_with_reason(monkeypatch):
    monkeypatch.setattr(packets, "has_cap_net_raw", lambda: False)
    cap = PacketCapture()
    assert "CAP_NET_RAW" in (cap.start() or "")
    rec = _Rec()

    async def go():
        with packets.activate(cap):
            return await tcp.connect("127.0.0.1", 9, timeout=2, attempt=1, t_origin=time.monotonic())

    rec = asyncio.run(go())
    cap.stop_and_fill()
    assert rec.packets == {"skipped": cap.skipped} and rec.rst_ttl_mismatch is None


def test_no_capture_leaves_fields_empty():
    rec = asyncio.run(tcp.connect("127.0.0.1", 9, timeout=2, attempt=1, t_origin=time.monotonic()))
    assert rec.packets is None and rec.rst_ttl_mismatch is None


# --------------------------------------------------------------------------- loopback, as root
def _listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


@needs_raw
def test_server_reset_is_not_a_mismatch(raw_listener, capfd):
    """The server's own RST (SO_LINGER 0 after the ClientHello) carries the server's TTL."""
    srv = raw_listener("reset")
    cap = PacketCapture(["lo"])
    assert cap.start() is None

    async def go():
        with packets.activate(cap):
            return await tls.handshake("127.0.0.1", srv.port, "ok.test", timeout=5, attempt=1,
                                       t_origin=time.monotonic())

    rec = asyncio.run(go())
    cap.stop_and_fill()
    assert rec.failure == "connection_reset"
    assert rec.packets["synack_ttl"] == 64 and rec.packets["rst"], rec.packets
    assert rec.packets["rst"][0]["ttl"] == 64 and rec.packets["rst"][0]["after_bytes"] == 0
    assert rec.rst_ttl_mismatch is False
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # scapy stays silent


@needs_raw
def test_forged_reset_with_another_ttl_is_a_mismatch(capfd):
    """A RST forged from the server's address and port with TTL 50 while the server is silent."""
    from scapy.all import IP, TCP, conf  # type: ignore[attr-defined]
    from scapy.supersocket import L3RawSocket

    lsock = _listener()
    port = lsock.getsockname()[1]
    cap = PacketCapture(["lo"])
    assert cap.start() is None
    held = []

    def forge() -> bool:
        """Wait (bounded) for the connection's SYN-ACK in the capture, then reset it from 'the server'."""
        conn, peer = lsock.accept()
        held.append(conn)
        conn.recv(4096)  # the ClientHello arrived: a middlebox would strike now
        key = ("127.0.0.1", port, peer[1])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with cap._lock:
                synack = next((e for e in cap._by_key.get(key, []) if e[2] & 0x12 == 0x12), None)
            if synack:
                break
            time.sleep(0.01)
        else:
            return False
        s = L3RawSocket(iface=conf.loopback_name)
        try:
            s.send(IP(src="127.0.0.1", dst="127.0.0.1", ttl=50, id=31337)
                   / TCP(sport=port, dport=peer[1], flags="R", seq=synack[3] + 1))
        finally:
            s.close()
        return True

    async def go():
        with packets.activate(cap):
            forger = asyncio.create_task(asyncio.to_thread(forge))
            rec = await tls.handshake("127.0.0.1", port, "ok.test", timeout=8, attempt=1, t_origin=time.monotonic())
            return rec, await forger

    try:
        lsock.settimeout(10)
        rec, forged = asyncio.run(go())
    finally:
        for c in held:
            c.close()
        lsock.close()
    cap.stop_and_fill()
    assert forged, "no SYN-ACK seen in the capture"
    assert rec.failure == "connection_reset", (rec.failure, rec.error_detail)
    rst = [r for r in rec.packets["rst"] if r["ttl"] == 50]
    assert rst and rst[0]["ip_id"] == 31337 and rst[0]["after_bytes"] == 0 and rst[0]["hops"] == 14
    assert rec.packets["synack_ttl"] == 64 and rec.packets["reference"] == "connection"
    assert rec.rst_ttl_mismatch is True
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@needs_raw
def test_rst_to_syn_judged_against_the_address_syn_acks():
    """Nothing listening: the kernel's RST to the SYN. Another connection to the same address in the
    run gave a SYN-ACK with the same TTL: not a mismatch."""
    lsock = _listener()
    closed = _listener()
    dead_port = closed.getsockname()[1]
    closed.close()
    cap = PacketCapture(["lo"])
    assert cap.start() is None

    async def go():
        with packets.activate(cap):
            ok = await tcp.connect("127.0.0.1", lsock.getsockname()[1], timeout=5, attempt=1, t_origin=time.monotonic())
            refused = await tcp.connect("127.0.0.1", dead_port, timeout=5, attempt=1, t_origin=time.monotonic())
            return ok, refused

    try:
        ok, refused = asyncio.run(go())
    finally:
        lsock.close()
    cap.stop_and_fill()
    # (closing the listener with the connection still queued resets it: the kernel's RST, same TTL)
    assert ok.failure is None and ok.packets["synack_ttl"] == 64 and ok.rst_ttl_mismatch is not True
    assert refused.failure == "connection_refused"
    assert refused.packets["rst"] and refused.packets["reference"] == "address", refused.packets
    assert refused.rst_ttl_mismatch is False


@needs_raw
def test_runner_records_packets_on_every_step(dns_server, https_server, pki):
    from probe.records import Vantage
    from probe.pipeline import run_once
    from probe.runner import RunConfig
    from probe.targets import Target
    from tests.unit.servers import ZoneEntry

    import ipaddress

    dns = dns_server({"ok.test": ZoneEntry(a=["127.0.0.1"])})
    cfg = RunConfig(vantage=Vantage(id="u"), results_dir=None, system_resolver=False, resolvers=(dns.address,),
                    ca_bundle=str(pki.ca_pem), timeout=5, retries=0, inject_check=False,
                    bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    t = Target("facebook", "fb", "web", urls=(f"https://ok.test:{https_server.port}/",), dns_names=("ok.test",))
    line = run_once(cfg, [t]).records[0]
    for step in ("tcp", "tls", "http"):
        a = line["steps"][step][0]
        assert a["packets"]["synack_ttl"] == 64, (step, a["packets"])
        assert a["rst_ttl_mismatch"] is None  # no RST at all


@needs_raw
def test_quiet_run_with_capture_prints_nothing(tmp_path, http_server):
    """`reachprobe run --quiet` as root (capture on, scapy imported): not a byte on stdout or stderr."""
    import subprocess

    from probe.results import ReadReport, iter_results
    from tests.unit.daemon_harness import clean_env, run_cli, write_targets

    url = f"http://127.0.0.1:{http_server.port}/"
    targets = write_targets(tmp_path / "targets.yaml", {
        "facebook": [{"name": "fb", "kind": "endpoint", "endpoints": [f"127.0.0.1:{http_server.port}"], "urls": [url]}],
    }, [{"name": "canary", "scope": "international", "urls": [url]}])
    results = tmp_path / "results"
    try:
        p = run_cli(["run", "--quiet", "--targets", str(targets), "--results", str(results), "--timeout", "5",
                     "--retries", "0", "--no-inject-check"], clean_env(tmp_path), timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("reachprobe run did not finish in 120 s")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    recs = list(iter_results(results, ReadReport()))
    tcp_attempts = [a for r in recs for a in r["steps"]["tcp"]]
    assert tcp_attempts and all(a["packets"]["synack_ttl"] == 64 for a in tcp_attempts), tcp_attempts
