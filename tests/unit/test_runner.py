"""The runner end to end against loopback servers: steps, retries, controls, and contract lines."""

from __future__ import annotations

import ipaddress
import json

import pytest

from probe.pipeline import run_once
from probe.records import Vantage
from probe.runner import RunConfig
from probe.targets import Endpoint, Target
from tests.unit.servers import ZoneEntry

CONTRACT_KEYS = {"schema", "id", "run_id", "measured_at", "vantage", "software", "target", "steps", "verdict"}


@pytest.fixture
def world(dns_server, https_server, http_server, raw_listener, pki):
    dns = dns_server({
        "ok.test": ZoneEntry(a=["127.0.0.1"]),
        "www.ok.test": ZoneEntry(a=["127.0.0.1"]),
        "blocked.test": ZoneEntry(a=["127.0.0.1"]),
        "other.test": ZoneEntry(a=["127.0.0.1"], fail_first=1),
    })
    reset = raw_listener("reset")
    hs, h = https_server.port, http_server.port
    targets = [
        Target("facebook", "fb-ok", "web", urls=(f"https://ok.test:{hs}/",), dns_names=("ok.test",)),
        Target("twitter", "tw-blockpage", "web", urls=(f"http://blocked.test:{h}/blockpage",),
               dns_names=("blocked.test",)),
        Target("telegram", "tg-gone", "web", urls=(f"https://gone.test:{hs}/",), dns_names=("gone.test",)),
        Target("instagram", "ig-reset", "web", urls=(f"https://www.ok.test:{reset.port}/",),
               dns_names=("www.ok.test",)),
        Target("telegram", "tg-dc", "endpoint", endpoints=(Endpoint("127.0.0.1", hs),)),
        Target("youtube", "yt-flaky-dns", "web", urls=(f"https://other.test:{hs}/",), dns_names=("other.test",)),
        Target("canary", "canary-int", "canary", urls=(f"https://ok.test:{hs}/",), dns_names=("ok.test",),
               scope="international"),
    ]
    cfg = RunConfig(vantage=Vantage(id="unit", asn=64500, cc="IR"), results_dir=None, system_resolver=False,
                    resolvers=(dns.address,), ca_bundle=str(pki.ca_pem), timeout=1.0, retries=1, backoff=0.01,
                    concurrency=4, inject_window=0.3,
                    # every answer here is loopback, which on the internet would be a bogon
                    bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    return cfg, targets


def by_name(summary):
    return {r.target.name: r for r in summary.results}


def test_run_steps_and_verdicts(world, tmp_path):
    cfg, targets = world
    cfg.results_dir = tmp_path / "results"
    summary = run_once(cfg, targets)
    res = by_name(summary)

    ok = res["fb-ok"]
    assert ok.verdict.status == "ok"
    assert any(a.cert_valid for a in ok.steps.tls) and ok.steps.http[0].status == 200

    bp = res["tw-blockpage"]
    assert bp.steps.http[0].fingerprints and bp.verdict.status == "blocked" and bp.verdict.method == "blockpage"

    gone = res["tg-gone"]
    assert {a.failure for a in gone.steps.dns} == {"dns_nxdomain_error"}
    assert len(gone.steps.dns) == 4  # A and AAAA, each retried once: every attempt kept
    assert not gone.steps.tcp and not gone.steps.http  # nothing to connect to

    rst = res["ig-reset"]
    target_sni = [a for a in rst.steps.tls if not a.control]
    control = [a for a in rst.steps.tls if a.control]
    assert [a.failure for a in target_sni] == ["connection_reset", "connection_reset"]
    assert len(control) == 1 and control[0].sni == "example.com"

    dc = res["tg-dc"]
    assert dc.steps.tcp[0].failure is None and not dc.steps.dns

    flaky = res["yt-flaky-dns"]
    a_attempts = [a for a in flaky.steps.dns if a.qtype == "A"]
    assert [a.failure for a in a_attempts] == ["dns_servfail_error", None]

    lines = [json.loads(x) for x in summary.written_to.read_text().splitlines()]
    assert len(lines) == len(targets)
    for line in lines:
        assert CONTRACT_KEYS <= set(line)
        assert line["schema"] == "reachprobe/1" and line["software"]["name"] == "reachprobe"
        assert line["vantage"] == {"id": "unit", "asn": 64500, "cc": "IR", "network": None}
        assert set(line["steps"]) >= {"dns", "tcp", "tls", "http"}
        assert set(line["verdict"]) >= {"status", "layer", "method", "rule", "confidence", "confirmed"}
        assert line["verdict"]["status"] in {"ok", "blocked", "down", "outage", "flaky", "inconclusive"}
        assert line["run_id"] == summary.run_id
    canary = next(x for x in lines if x["target"]["kind"] == "canary")
    assert canary["target"]["scope"] == "international"


def test_target_deadline_keeps_partial_steps(world, raw_listener):
    cfg, _ = world
    hang = raw_listener("hang")
    cfg.target_deadline = 1.0
    cfg.timeout = 5.0
    t = Target("facebook", "fb-hang", "web", urls=(f"https://ok.test:{hang.port}/",), dns_names=("ok.test",))
    summary = run_once(cfg, [t])
    r = summary.results[0]
    assert r.deadline_exceeded and r.steps.dns and summary.records[0]["deadline_exceeded"] is True
    assert summary.elapsed_s < 4


def test_no_public_ip_in_results(world, tmp_path):
    cfg, targets = world
    cfg.results_dir = tmp_path
    summary = run_once(cfg, targets[:1])
    text = summary.written_to.read_text()
    assert "public_ip" not in text and "probe_ip" not in text


def test_harmless_host_control_tells_a_host_filter(dns_server, http_server, pki):
    dns = dns_server({"host-filtered.test": ZoneEntry(a=["127.0.0.1"]), "ok.test": ZoneEntry(a=["127.0.0.1"])})
    h = http_server.port
    targets = [
        Target("twitter", "tw-host", "web", urls=(f"http://host-filtered.test:{h}/",), dns_names=("host-filtered.test",)),
        Target("canary", "canary-int", "canary", urls=(f"http://ok.test:{h}/",), dns_names=("ok.test",),
               scope="international"),
    ]
    cfg = RunConfig(vantage=Vantage(id="unit"), results_dir=None, system_resolver=False, resolvers=(dns.address,),
                    timeout=1.0, retries=1, backoff=0.01, inject_check=False,
                    bogon_exempt=(ipaddress.ip_network("127.0.0.0/8"),))
    res = by_name(run_once(cfg, targets))
    tw = res["tw-host"]
    real = [a for a in tw.steps.http if not a.control]
    control = [a for a in tw.steps.http if a.control]
    assert [a.failure for a in real] == ["connection_reset", "connection_reset"]
    assert len(control) == 1 and control[0].host_header == "example.com" and control[0].status == 200
    assert (tw.verdict.status, tw.verdict.layer, tw.verdict.method, tw.verdict.rule, tw.verdict.confirmed) == \
        ("blocked", "http", "http_rst", "http.host_rst", True)
    canary = res["canary-int"]
    assert canary.verdict.status == "ok" and not any(a.control for a in canary.steps.http)
