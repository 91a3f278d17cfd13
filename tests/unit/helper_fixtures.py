"""Fixtures for the helper tests, loaded with ``pytest_plugins = ("tests.unit.helper_fixtures",)``:
``helper`` (start a helper on 127.0.0.1), ``zone`` (its loopback DNS server), ``guard_trips``."""

from __future__ import annotations

import socket

import pytest

from probe.control.measure import MeasureSettings
from probe.control.server import HelperConfig
from tests.unit.conftest import NonLoopbackConnection
from tests.unit.helper_harness import LOOP, HelperServer
from tests.unit.servers import ZoneEntry


@pytest.fixture
def guard_trips(monkeypatch):
    """The helper turns a refused connect into a failure string, which would hide a trip of the
    conftest guard inside the helper's thread: record every trip and fail the test on any."""
    trips: list[BaseException] = []
    for name in ("connect", "connect_ex", "sendto"):
        inner = getattr(socket.socket, name)

        def wrapped(self, *args, _inner=inner):
            try:
                return _inner(self, *args)
            except NonLoopbackConnection as exc:
                trips.append(exc)
                raise

        monkeypatch.setattr(socket.socket, name, wrapped)
    yield trips
    assert not trips, f"the helper tried to leave loopback: {trips}"


@pytest.fixture
def zone(dns_server):
    return dns_server({"ok.test": ZoneEntry(a=["127.0.0.1"]), "nocert.test": ZoneEntry(a=["127.0.0.1"])})


@pytest.fixture
def helper(guard_trips, zone, pki):
    started = []

    def start(policy=LOOP, *, certfile=None, keyfile=None, **kw) -> HelperServer:
        server_kw = {k: kw.pop(k) for k in ("max_concurrent", "rate", "burst", "max_request_bytes") if k in kw}
        settings = MeasureSettings(policy=policy, resolvers=(("127.0.0.1", zone.port),), ca_bundle=str(pki.ca_pem),
                                   **{"timeout": 10.0, **kw})
        srv = HelperServer(HelperConfig(measure=settings, **server_kw), certfile=certfile, keyfile=keyfile).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__(None, None, None)
