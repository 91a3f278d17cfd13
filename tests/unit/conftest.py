"""Unit-suite network guard: any connection or datagram to an address outside loopback fails the test.

Unit tests talk only to servers they start on 127.0.0.1 / ::1. The guard patches the socket methods
that asyncio, httpx, dnspython and scapy all end up calling, so a stray lookup or connect to a real
host (facebook.com...) raises instead of leaving this machine.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest


class NonLoopbackConnection(AssertionError):
    pass


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths, netlink pids: not internet traffic
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it is itself a lookup outside the test


_real = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto")}


def _guard(name):
    real = _real[name]

    def guarded(self, *args):
        address = args[-1] if name == "sendto" else args[0]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NonLoopbackConnection(f"unit test tried to reach {address!r} (only loopback is allowed)")
        return real(self, *args)

    return guarded


_real_getaddrinfo = socket.getaddrinfo


def _is_literal(host: str) -> bool:
    """An address literal: getaddrinfo only parses it (scapy does this on import); connects to it
    are still guarded above."""
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        return False


def _guarded_getaddrinfo(host, *args, **kwargs):
    # A name lookup goes to the host's real resolver: only literals and localhost are allowed.
    text = host.decode() if isinstance(host, bytes) else host
    if text is not None and not _is_loopback((text,)) and not _is_literal(text):
        raise NonLoopbackConnection(f"unit test tried to resolve or reach {text!r} (only loopback is allowed)")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    for name in _real:
        monkeypatch.setattr(socket.socket, name, _guard(name))
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield


# ------------------------------------------------------------------ loopback servers for the suite
from tests.unit.servers import DNSServer, HTTPServer, RawListener, ZoneEntry, make_pki  # noqa: E402

TEST_NAMES = ["ok.test", "www.ok.test", "blocked.test", "other.test"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), TEST_NAMES)


@pytest.fixture
def https_server(pki):
    with HTTPServer(pki) as srv:
        yield srv


@pytest.fixture
def http_server():
    with HTTPServer() as srv:
        yield srv


@pytest.fixture
def raw_listener():
    started = []

    def start(mode: str) -> RawListener:
        lst = RawListener(mode).__enter__()
        started.append(lst)
        return lst

    yield start
    for lst in started:
        lst.__exit__(None, None, None)


@pytest.fixture
def dns_server():
    started = []

    def start(zone: dict[str, ZoneEntry]) -> DNSServer:
        srv = DNSServer(zone).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__(None, None, None)
