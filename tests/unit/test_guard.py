"""The unit suite's network guard: a stray connection, datagram or lookup fails the test before any
packet leaves. Uses documentation addresses (RFC 5737), never a real host."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.unit.conftest import NonLoopbackConnection


def test_tcp_connect_outside_loopback_is_refused():
    with socket.socket() as s, pytest.raises(NonLoopbackConnection):
        s.connect(("192.0.2.1", 443))


def test_udp_sendto_outside_loopback_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(NonLoopbackConnection):
        s.sendto(b"x", ("198.51.100.7", 53))


def test_name_lookup_is_refused():
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("www.facebook.com", 443)


def test_asyncio_and_httpx_are_caught_too():
    async def connect():
        await asyncio.open_connection("203.0.113.9", 80)

    with pytest.raises(NonLoopbackConnection):
        asyncio.run(connect())
    with pytest.raises(Exception) as info:
        httpx.get("http://203.0.113.9/", timeout=1)
    assert "only loopback" in repr(info.value) or isinstance(info.value.__context__, NonLoopbackConnection)


def test_loopback_is_allowed(http_server):
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=1):
        pass
