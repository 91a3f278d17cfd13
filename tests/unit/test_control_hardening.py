"""The helper as an internet-facing service: SSRF refusals, caps, rate and concurrency limits,
and no client address in any log line."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest

from probe.control.model import FLAG_IS_BOGON, FLAG_RESOLVED_BY_PROBE, ControlResponse
from probe.control.policy import AddressPolicy
from tests.unit.helper_harness import LOOP, CountingListener, StaticServer
from tests.unit.servers import ZoneEntry
from tests.unit.test_control_server import control, post

pytest_plugins = ("tests.unit.helper_fixtures",)  # the helper, zone and guard_trips fixtures
pytestmark = pytest.mark.timeout(120)

NO_ALLOW = AddressPolicy()  # the default: no --allow-net


# ------------------------------------------------------------------------------------------ SSRF
def test_loopback_target_refused_without_allow_net(helper):
    listener = CountingListener()
    try:
        url = f"http://127.0.0.1:{listener.port}/"
        resp = control(helper(NO_ALLOW), url, [f"127.0.0.1:{listener.port}"])
        assert resp.http_request.failure == "dns_bogon_error"
        assert resp.http_request.status_code == -1
        assert resp.tcp_connect == {} and resp.tls_handshake == {}  # not measured, as oohelperd skips bogons
        assert resp.ip_info["127.0.0.1"].flags == FLAG_RESOLVED_BY_PROBE | FLAG_IS_BOGON
        assert listener.connections() == 0
    finally:
        listener.close()


def test_name_resolving_to_loopback_refused(helper, zone):
    listener = CountingListener()
    try:
        resp = control(helper(NO_ALLOW), f"http://ok.test:{listener.port}/")
        assert resp.dns.addrs == ["127.0.0.1"]  # reported as resolved ...
        assert resp.ip_info["127.0.0.1"].flags & FLAG_IS_BOGON  # ... flagged ...
        assert resp.http_request.failure == "dns_bogon_error"  # ... and never connected to
        assert listener.connections() == 0
    finally:
        listener.close()


@pytest.mark.parametrize("target", ["http://[::ffff:127.0.0.1]:{port}/", "http://[::1]:{port}/",
                                    "http://169.254.169.254:{port}/", "http://0.0.0.0:{port}/",
                                    "http://10.0.0.1:{port}/"])
def test_special_purpose_literals_refused(helper, target):
    # Refused before any connect: the conftest guard would trip on 169.254/10.x (guard_trips fails it).
    resp = control(helper(NO_ALLOW), target.format(port=8080))
    assert resp.http_request.failure == "dns_bogon_error"


def test_redirect_into_refused_address(helper, http_server):
    # 127.0.0.1 is allowed (the "public" site), 127.0.0.2 is not: the redirect hop must be refused.
    policy = AddressPolicy.from_cidrs(["127.0.0.1/32"])
    listener = CountingListener("127.0.0.2")
    try:
        with StaticServer(location=f"http://127.0.0.2:{listener.port}/internal") as redirector:
            resp = control(helper(policy), f"http://127.0.0.1:{redirector.port}/")
        assert resp.tcp_connect == {} or all(k.startswith("127.0.0.1") for k in resp.tcp_connect)
        assert resp.http_request.failure == "dns_bogon_error"
        assert listener.connections() == 0
    finally:
        listener.close()


def test_redirect_to_name_with_refused_answer(helper, dns_server, zone):
    policy = AddressPolicy.from_cidrs(["127.0.0.1/32"])
    zone.zone["inside.test"] = ZoneEntry(a=["127.0.0.3"])
    listener = CountingListener("127.0.0.3")
    try:
        with StaticServer(location=f"http://inside.test:{listener.port}/") as redirector:
            resp = control(helper(policy), f"http://ok.test:{redirector.port}/")
        assert resp.http_request.failure == "dns_bogon_error"
        assert listener.connections() == 0
    finally:
        listener.close()


def test_one_refused_answer_refuses_the_name(helper, zone, http_server):
    # 10.0.0.1 among the answers (a rebinding attempt): refused outright, never connected to
    # (the conftest guard would trip on a connect to 10.0.0.1).
    zone.zone["mixed.test"] = ZoneEntry(a=["127.0.0.1", "10.0.0.1"])
    resp = control(helper(LOOP), f"http://mixed.test:{http_server.port}/")
    assert resp.http_request.failure == "dns_bogon_error"
    assert resp.ip_info["10.0.0.1"].flags & FLAG_IS_BOGON and not resp.ip_info["127.0.0.1"].flags & FLAG_IS_BOGON
    assert set(resp.tcp_connect) == {f"127.0.0.1:{http_server.port}"}


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "http://", "not a url",
                                 "http://ok.test:99999/"])
def test_non_http_urls_are_bad_requests(helper, url):
    r = post(helper(), {"http_request": url, "http_request_headers": {}, "tcp_connect": []})
    assert r.status_code == 400 and "http_request" in r.json()["error"]


# ------------------------------------------------------------------------------------------ caps
def test_huge_body_truncated_at_cap(helper, http_server):
    resp = control(helper(max_body=100_000), f"http://ok.test:{http_server.port}/big")
    assert resp.http_request.status_code == 200 and resp.http_request.failure is None
    assert resp.http_request.body_length == 100_000


def test_too_many_redirects(helper, http_server):
    resp = control(helper(max_redirects=3), f"http://ok.test:{http_server.port}/loop")
    assert resp.http_request.failure == "http_too_many_redirects"


def test_total_time_capped(helper, raw_listener):
    hang = raw_listener("hang")
    started = time.monotonic()
    resp = control(helper(timeout=2.0), f"http://127.0.0.1:{hang.port}/")
    assert resp.http_request.failure == "generic_timeout_error"
    assert time.monotonic() - started < 60  # bounded by the cap, not by the server (generous: a loaded machine)


def test_too_many_endpoints_is_a_bad_request(helper):
    r = post(helper(max_endpoints=4), {"http_request": "http://ok.test/", "http_request_headers": {},
                                       "tcp_connect": [f"127.0.0.{i}:80" for i in range(1, 6)]})
    assert r.status_code == 400 and "tcp_connect" in r.json()["error"]


def test_oversized_request_413(helper):
    h = helper(max_request_bytes=1024)
    big = {"http_request": "http://ok.test/", "http_request_headers": {"X": ["a" * 2000]}, "tcp_connect": []}
    assert post(h, big).status_code == 413

    def chunks():  # no Content-Length: the limit holds on the bytes read
        yield b'{"http_request": "http://ok.test/", "x": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'"}'

    with httpx.Client(trust_env=False) as c:
        assert c.post(h.url, content=chunks()).status_code == 413


def test_malformed_json_400(helper):
    with httpx.Client(trust_env=False) as c:
        r = c.post(helper().url, content=b"{not json")
    assert r.status_code == 400


def test_rate_limit_429(helper):
    h = helper(rate=1 / 3600, burst=2)
    codes = [post(h, {}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]  # a bad request still costs a token
    with httpx.Client(trust_env=False) as c:
        assert c.get(h.url).status_code == 200  # liveness is not limited


def test_concurrency_limit_503(helper, raw_listener):
    hang = raw_listener("hang")
    h = helper(max_concurrent=1, timeout=60.0)
    first: dict = {}

    def slow():
        first["r"] = post(h, {"http_request": f"http://127.0.0.1:{hang.port}/", "tcp_connect": []})

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 30
    while not hang.held and time.monotonic() < deadline:  # the fetch is in flight, hanging
        time.sleep(0.02)
    assert len(hang.held) == 1
    r = post(h, {"http_request": f"http://127.0.0.1:{hang.port}/", "tcp_connect": []})
    assert r.status_code == 503
    for conn in hang.held:  # let the first one finish
        conn.close()
    t.join(60)
    assert first["r"].status_code == 200


# ------------------------------------------------------------------------------------------ logs
def test_no_client_address_in_logs(helper, http_server, caplog):
    caplog.set_level(logging.DEBUG)
    h = helper(rate=1 / 3600, burst=3, max_request_bytes=512)
    client = "127.0.0.2"  # the helper's targets are on 127.0.0.1: the client is told apart by address
    transport = httpx.HTTPTransport(local_address=client)
    with httpx.Client(transport=transport, trust_env=False, timeout=30) as c:
        ok = c.post(h.url, json={"http_request": f"http://ok.test:{http_server.port}/", "tcp_connect": []})
        bad = c.post(h.url, content=b"{")
        big = c.post(h.url, content=b"x" * 2048)
        limited = c.post(h.url, json={})
        c.get(h.url)
    raw = socket.create_connection(("127.0.0.1", h.port), timeout=30, source_address=(client, 0))
    raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs a warning for this one
    raw.recv(1024)
    raw.close()
    assert (ok.status_code, bad.status_code, big.status_code, limited.status_code) == (200, 400, 413, 429)
    ControlResponse.model_validate_json(ok.content)
    # The test's own httpx client logs its local address; the helper runs in its server thread.
    records = [r for r in caplog.records if r.thread == h.thread.ident]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in records)
    assert any(r.name == "probe.control" for r in records)  # our own debug line was captured
    assert any(r.name.startswith("httpcore") for r in records)  # and the helper's fetches, at debug
    assert any(r.name == "uvicorn.error" and "Invalid HTTP" in r.getMessage() for r in records)
    assert client not in text
    assert not [r for r in caplog.records if r.name == "uvicorn.access"]


# ------------------------------------------------------------------------------- the real command
def test_reachprobe_helper_command_serves_and_logs_no_client(http_server, zone, tmp_path):
    """`reachprobe helper` as an operator runs it (its own logging setup, uvicorn.run), with
    --allow-net for the loopback targets; its stderr must not name the client."""
    import subprocess
    import sys

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = (tmp_path / "helper.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "probe", "helper", "--listen", f"127.0.0.1:{port}",
                             "--allow-net", "127.0.0.0/8", "--resolver", f"127.0.0.1:{zone.port}",
                             "--log-level", "debug"], stdout=log, stderr=subprocess.STDOUT)
    try:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, trust_env=False, timeout=30) as c:
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert c.get(f"http://127.0.0.1:{port}/").status_code == 200
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "the helper did not start"
                    time.sleep(0.1)
            r = c.post(f"http://127.0.0.1:{port}/",
                       json={"http_request": f"http://ok.test:{http_server.port}/", "tcp_connect": []})
        assert r.status_code == 200 and r.json()["http_request"]["title"] == "OK page"
    finally:
        proc.terminate()
        proc.wait(30)
    log.seek(0)
    text = log.read()
    assert "control 1: ok.test" in text  # the debug line is there ...
    assert "127.0.0.2" not in text  # ... and the client's address nowhere


def test_endpoint_cap_keeps_the_probes_addresses(helper, zone, http_server):
    # The helper resolves 3 addresses, the probe sent 1 other; with a cap of 2 the probe's is kept.
    zone.zone["many.test"] = ZoneEntry(a=["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    port = http_server.port
    resp = control(helper(LOOP, max_endpoints=2), f"http://many.test:{port}/", [f"127.0.0.9:{port}"])
    assert len(resp.tcp_connect) == 2 and f"127.0.0.9:{port}" in resp.tcp_connect
    assert len(resp.ip_info) == 4  # every address is still described
