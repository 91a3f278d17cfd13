"""Records serialise exactly as ``dataclasses.asdict`` would: the results line is a contract."""

from __future__ import annotations

from dataclasses import asdict

from probe.records import (
    DNSAttempt,
    HTTPAttempt,
    HTTPRedirect,
    InjectAttempt,
    Steps,
    TCPAttempt,
    TLSAttempt,
    Vantage,
    Verdict,
)
from probe.vocab import Layer, Status


def full_steps() -> Steps:
    return Steps(
        dns=[DNSAttempt(1, "a.test", "A", "system", "127.0.0.53", "udp", 0.0, 1.5, None, "NOERROR", ["192.0.2.1"],
                        ["b.test"], 300)],
        tcp=[TCPAttempt(1, "192.0.2.1", 443, 0.1, 2.0, "connection_reset")],
        tls=[TLSAttempt(1, "192.0.2.1", 443, "a.test", 0.2, 3.0, None)],
        http=[HTTPAttempt(1, "https://a.test/", 0.3, 4.0, None, status=200,
                          redirects=[HTTPRedirect("http://a.test/", 301, "https://a.test/")],
                          headers={"server": "nginx"}, fingerprints=[{"name": "x", "location": "body"}],
                          packets={"rst": [{"ttl": 64, "ip_id": (1, 2)}], "synack_ttl": [55]})],
        inject=[InjectAttempt(1, "a.test", "192.0.2.53", 0.0, 2000.0, None,
                              responses=[{"src": "192.0.2.53", "answers": ["192.0.2.1"], "ttl": 60}])],
    )


def test_to_dict_is_asdict() -> None:
    for rec in (full_steps(), Verdict(Status.BLOCKED, Layer.DNS, "nxdomain", "dns.nxdomain", 0.9, True, "why"),
                Vantage("v1", 58224, "IR", "home"), Steps()):
        out = rec.to_dict()
        assert out == asdict(rec)
        assert [type(v) for v in out.values()] == [type(v) for v in asdict(rec).values()]


def test_to_dict_copies() -> None:
    steps = full_steps()
    out = steps.to_dict()
    out["http"][0]["headers"]["server"] = "changed"
    out["http"][0]["packets"]["rst"][0]["ttl"] = 1
    assert steps.http[0].headers["server"] == "nginx"
    assert steps.http[0].packets is not None and steps.http[0].packets["rst"][0]["ttl"] == 64
