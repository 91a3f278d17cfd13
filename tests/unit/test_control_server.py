"""The test helper end to end: a real uvicorn server on 127.0.0.1 measuring loopback DNS, HTTP and
HTTPS servers, queried with httpx and with ``probe.control.client.query_control``."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from probe.control.client import query_control
from probe.control.model import (
    FLAG_RESOLVED_BY_PROBE,
    FLAG_RESOLVED_BY_TH,
    FLAG_VALID_FOR_DOMAIN,
    ControlResponse,
)
from tests.unit.helper_harness import StaticServer

pytest_plugins = ("tests.unit.helper_fixtures",)  # the helper, zone and guard_trips fixtures
pytestmark = pytest.mark.timeout(120)


def post(helper, body, **kw) -> httpx.Response:
    with httpx.Client(timeout=30, trust_env=False) as c:
        return c.post(helper.url, json=body, **kw)


def control(helper, url, tcp_connect=()) -> ControlResponse:
    r = post(helper, {"http_request": url, "http_request_headers": {"User-Agent": ["test"]},
                      "tcp_connect": list(tcp_connect)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    resp = ControlResponse.model_validate_json(r.content)
    assert ControlResponse.model_validate(resp.to_wire()) == resp  # round trip
    return resp


def test_get_says_hello(helper):
    with httpx.Client(trust_env=False) as c:
        r = c.get(helper().url)
    assert r.status_code == 200 and "message" in r.json()


def test_http_url_by_name(helper, http_server, zone):
    port = http_server.port
    resp = control(helper(), f"http://ok.test:{port}/", [f"127.0.0.1:{port}"])
    assert resp.dns.failure is None and resp.dns.addrs == ["127.0.0.1"]
    assert resp.tcp_connect[f"127.0.0.1:{port}"].status is True
    assert resp.tls_handshake == {}  # http with an explicit port: that port only, no TLS
    h = resp.http_request
    assert h.failure is None and h.status_code == 200 and h.title == "OK page"
    assert h.body_length == len(b"<html><head><title>OK page</title></head><body>hello</body></html>")
    assert h.headers["Content-Type"].startswith("text/html")  # Go's canonical header names
    assert resp.ip_info["127.0.0.1"].flags == FLAG_RESOLVED_BY_PROBE | FLAG_RESOLVED_BY_TH
    assert resp.ip_info["127.0.0.1"].asn == 0
    # the HTTP fetch connected to the address the DNS step checked: the name was asked once
    assert zone.queries.count(("ok.test", "A")) == 1


def test_https_url_handshakes_with_sni(helper, https_server):
    port = https_server.port
    resp = control(helper(), f"https://ok.test:{port}/")
    tls = resp.tls_handshake[f"127.0.0.1:{port}"]
    assert tls.status is True and tls.server_name == "ok.test" and tls.failure is None
    assert resp.http_request.status_code == 200 and resp.http_request.title == "OK page"
    assert resp.ip_info["127.0.0.1"].flags == FLAG_RESOLVED_BY_TH | FLAG_VALID_FOR_DOMAIN


def test_https_wrong_name_fails_handshake_and_fetch(helper, https_server):
    port = https_server.port
    resp = control(helper(), f"https://nocert.test:{port}/")
    assert resp.tls_handshake[f"127.0.0.1:{port}"].failure == "ssl_invalid_hostname"
    assert resp.http_request.failure == "ssl_invalid_hostname"
    assert resp.http_request.status_code == -1 and resp.http_request.body_length == -1
    assert not resp.ip_info["127.0.0.1"].flags & FLAG_VALID_FOR_DOMAIN


def test_nxdomain_in_oohelperd_words(helper):
    resp = control(helper(), "http://gone.test/")
    assert resp.dns.failure == "dns_name_error" and resp.dns.addrs == []
    assert resp.http_request.failure == "dns_lookup_error"
    assert resp.tcp_connect == {}


def test_refused_port_in_oohelperd_words(helper):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    resp = control(helper(), f"http://127.0.0.1:{port}/", [f"127.0.0.1:{port}"])
    assert resp.dns.addrs == [] and resp.dns.failure is None  # an address literal is not looked up
    assert resp.tcp_connect[f"127.0.0.1:{port}"].failure == "connection_refused_error"
    assert resp.http_request.failure == "connection_refused_error"


def test_redirect_is_followed(helper, http_server):
    resp = control(helper(), f"http://ok.test:{http_server.port}/redirect")
    assert resp.http_request.status_code == 200 and resp.http_request.title == "OK page"


def test_only_browser_headers_are_forwarded(helper, http_server):
    # A Cookie or Host from the client must never reach the site: the Host filter of the test
    # server resets "host-filtered.test", so a forwarded Host would show as a failure.
    r = post(helper(), {"http_request": f"http://ok.test:{http_server.port}/",
                        "http_request_headers": {"Host": ["host-filtered.test"], "Cookie": ["a=b"]},
                        "tcp_connect": []})
    assert r.json()["http_request"]["status_code"] == 200


# ------------------------------------------------------------------------------------ the client
def test_client_tries_helpers_in_order(helper, http_server):
    h = helper()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
    dead.close()
    with StaticServer(status=404) as not_a_helper, StaticServer(body=b"<html>hi</html>") as garbled:
        urls = [dead_url, f"http://127.0.0.1:{not_a_helper.port}/", f"http://127.0.0.1:{garbled.port}/", h.url]
        result = asyncio.run(query_control(urls, f"http://ok.test:{http_server.port}/",
                                           {"User-Agent": "x"}, [f"127.0.0.1:{http_server.port}"], timeout=20))
    assert result.ok and result.helper == h.url
    assert [f.failure for f in result.failures] == ["connection_refused", "http_status_404", "json_parse_error"]
    assert result.response.http_request.title == "OK page"
    line = result.to_dict()
    assert line["failure"] is None and line["helper"] == h.url
    assert line["request"]["tcp_connect"] == [f"127.0.0.1:{http_server.port}"]
    assert ControlResponse.model_validate(line["response"]) == result.response


def test_client_never_raises_when_every_helper_fails():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
    dead.close()
    result = asyncio.run(query_control([url, "not a url"], "http://ok.test/", None, [], timeout=5))
    assert result.response is None and len(result.failures) == 2
    assert result.to_dict()["failure"] == "all_helpers_failed" and result.to_dict()["response"] is None
    empty = asyncio.run(query_control([], "http://ok.test/", None, [], timeout=5))
    assert empty.to_dict()["failure"] == "no_helper_configured"


def test_client_over_https_helper(helper, pki, http_server):
    h = helper(certfile=str(pki.cert_pem), keyfile=str(pki.key_pem))
    target = f"http://ok.test:{http_server.port}/"
    trusted = asyncio.run(query_control([h.url], target, None, [], timeout=20, ca_bundle=str(pki.ca_pem)))
    assert trusted.ok and trusted.response.http_request.status_code == 200
    untrusted = asyncio.run(query_control([h.url], target, None, [], timeout=20))  # system store
    assert not untrusted.ok and untrusted.failures[0].failure == "ssl_unknown_authority"
