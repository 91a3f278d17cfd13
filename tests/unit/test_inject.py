"""DNS injection check against loopback UDP servers this test starts (never anything else)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import dns.message
import dns.rrset
import pytest

from probe.measure import inject
from probe.measure.inject import dns_injection_check, has_cap_net_raw
from probe.verdict import injection_evidence

NAME = "www.facebook.com"


class LoopbackDNS:
    """A one-shot UDP 'resolver' on 127.0.0.1 that sends scripted responses: (delay_s, ip, from_addr)."""

    def __init__(self, script: list[tuple[float, str, str]]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(5)
        try:
            data, client = self.sock.recvfrom(4096)
        except OSError:
            return
        q = dns.message.from_wire(data)
        t0 = time.monotonic()
        for delay, ip, src in self.script:
            time.sleep(max(0.0, t0 + delay - time.monotonic()))
            r = dns.message.make_response(q)
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", ip))
            if src == "127.0.0.1":
                self.sock.sendto(r.to_wire(), client)
            else:  # a response from another loopback address: the "wrong source" case
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                    other.bind((src, self.port))
                    other.sendto(r.to_wire(), client)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=2)

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"


def run(coro):
    return asyncio.run(coro)


def test_udp_collects_forged_and_real_answer():
    srv = LoopbackDNS([(0.0, "10.10.34.34", "127.0.0.1"), (0.25, "157.240.1.35", "127.0.0.1")])
    try:
        t = time.monotonic()
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.8, t_origin=t, mode="udp", attempt=2))
    finally:
        srv.close()
    assert rec.skipped is None and rec.failure is None and rec.attempt == 2
    assert [r["answers"] for r in rec.responses] == [["10.10.34.34"], ["157.240.1.35"]]
    assert all(r["via"] == "udp" and r["src"] == "127.0.0.1" and r["rcode"] == "NOERROR" for r in rec.responses)
    assert rec.responses[0]["delay_ms"] < rec.responses[1]["delay_ms"]
    assert isinstance(rec.responses[0]["ttl"], int)  # from IP_RECVTTL ancillary data
    assert 700 <= rec.duration_ms < 2000  # kept listening for the whole window, and no longer
    assert "2 different responses" in injection_evidence(rec)


def test_udp_single_honest_answer_is_not_injection():
    srv = LoopbackDNS([(0.0, "157.240.1.35", "127.0.0.1")])
    try:
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.3, t_origin=time.monotonic(), mode="udp"))
    finally:
        srv.close()
    assert len(rec.responses) == 1
    assert injection_evidence(rec) is None


def test_udp_answer_from_wrong_source():
    srv = LoopbackDNS([(0.0, "157.240.1.35", "127.0.0.2")])
    try:
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.3, t_origin=time.monotonic(), mode="udp"))
    finally:
        srv.close()
    assert [r["src"] for r in rec.responses] == ["127.0.0.2"]
    assert "instead of 127.0.0.1" in injection_evidence(rec)


def test_silent_resolver_times_out_within_window():
    srv = LoopbackDNS([])
    try:
        t = time.monotonic()
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.2, t_origin=t, mode="udp"))
        assert time.monotonic() - t < 1.5
    finally:
        srv.close()
    assert rec.responses == [] and rec.failure == "generic_timeout_error" and rec.skipped is None


def test_skipped_with_reason(monkeypatch):
    rec = run(dns_injection_check(NAME, "not-an-address", t_origin=time.monotonic()))
    assert rec.skipped and "not an address" in rec.skipped
    monkeypatch.setattr(inject, "has_cap_net_raw", lambda: False)
    rec = run(dns_injection_check(NAME, "127.0.0.1:9", window_s=0.1, t_origin=time.monotonic(), mode="raw"))
    assert rec.skipped and "CAP_NET_RAW" in rec.skipped and rec.responses == []


def test_auto_falls_back_to_udp_without_privilege(monkeypatch):
    monkeypatch.setattr(inject, "has_cap_net_raw", lambda: False)
    srv = LoopbackDNS([(0.0, "157.240.1.35", "127.0.0.1")])
    try:
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.3, t_origin=time.monotonic()))
    finally:
        srv.close()
    assert rec.responses and rec.responses[0]["via"] == "udp"
    assert "CAP_NET_RAW" in (rec.error_detail or "")


def test_parse_resolver():
    assert inject.parse_resolver("10.0.0.1") == ("10.0.0.1", 53)
    assert inject.parse_resolver("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert inject.parse_resolver("[::1]:53") == ("::1", 53)
    assert inject.parse_resolver("::1") == ("::1", 53)


@pytest.mark.skipif(not has_cap_net_raw(), reason="raw capture needs CAP_NET_RAW")
def test_raw_capture_on_loopback():
    srv = LoopbackDNS([(0.0, "10.10.34.34", "127.0.0.1"), (0.2, "157.240.1.35", "127.0.0.1")])
    try:
        rec = run(dns_injection_check(NAME, srv.resolver, window_s=0.6, t_origin=time.monotonic(), mode="raw"))
    finally:
        srv.close()
    if rec.skipped:
        pytest.skip(f"raw capture unavailable here: {rec.skipped}")
    assert [r["answers"] for r in rec.responses] == [["10.10.34.34"], ["157.240.1.35"]]
    assert all(r["via"] == "raw" and isinstance(r["ip_id"], int) and r["ttl"] for r in rec.responses)
    assert injection_evidence(rec)


@pytest.mark.skipif(not has_cap_net_raw(), reason="raw capture needs CAP_NET_RAW")
def test_raw_port_filter_keeps_only_the_resolvers_datagrams_to_our_port():
    """The kernel-side filter passes what the reader would keep and drops the rest before any wake-up."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    ours, theirs, other = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
    try:
        for s in (ours, theirs, other):
            s.bind(("127.0.0.1", 0))
        dport, sport = ours.getsockname()[1], theirs.getsockname()[1]
        if not inject._attach_port_filter(raw, sport, dport):
            pytest.skip("SO_ATTACH_FILTER unavailable here")
        raw.settimeout(2)
        other.sendto(b"not from the resolver", ("127.0.0.1", dport))
        theirs.sendto(b"to another port", ("127.0.0.1", other.getsockname()[1]))
        theirs.sendto(b"the answer", ("127.0.0.1", dport))
        got = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                packet = raw.recv(65535)
            except (TimeoutError, socket.timeout):
                break
            d = inject._ipv4_datagram(packet)
            got.append(d[5])
            if d[5] == b"the answer":
                raw.settimeout(0.2)  # anything let through would be queued behind it by now
        assert set(got) == {b"the answer"}
    finally:
        for s in (raw, ours, theirs, other):
            s.close()
