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


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    for name in _real:
        monkeypatch.setattr(socket.socket, name, _guard(name))
    yield
