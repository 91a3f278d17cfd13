"""The shipped targets.yaml is complete: every required platform, canaries of both scopes, the Telegram DCs,
prefixes and endpoints transcribed from the reference data. Validated only: nothing here resolves or connects."""

from __future__ import annotations

import csv
import ipaddress

import pytest

from probe.citizenlab import DEFAULT_PLATFORM_MAP, platform_for
from probe.targets import (
    CANARY_PLATFORM,
    KNOWN_PLATFORMS,
    Endpoint,
    load_targets,
)
from tests.unit.test_targets import SHIPPED, shared_dir

# ---------------------------------------------------------------------------------------------
# The shipped targets.yaml
# ---------------------------------------------------------------------------------------------

REQUIRED = {  # platform -> (AS numbers it must expect, host names it must test)
    "facebook": ({32934}, {"www.facebook.com", "m.facebook.com", "facebook.com"}),
    "twitter": ({13414}, {"twitter.com", "x.com", "abs.twimg.com"}),
    "telegram": ({62041, 59930, 44907}, {"web.telegram.org", "telegram.org"}),
    "instagram": ({32934}, {"www.instagram.com"}),
    "youtube": ({15169, 36040}, {"www.youtube.com"}),
    "whatsapp": ({32934}, {"web.whatsapp.com"}),
}
TELEGRAM_DCS = ["149.154.175.50", "149.154.167.51", "149.154.175.100", "149.154.167.91", "149.154.171.5"]


@pytest.fixture(scope="module")
def shipped():
    return load_targets(SHIPPED)


def test_shipped_file_loads_with_every_required_platform(shipped):
    for platform, (asns, hosts) in REQUIRED.items():
        targets = [t for t in shipped.targets if t.platform == platform]
        assert targets, platform
        assert asns <= {a for t in targets for a in t.expected_asns}, platform
        assert hosts <= {h for t in targets for h in t.url_hosts()}, platform
    assert set(shipped.platforms()) <= set(KNOWN_PLATFORMS) | {CANARY_PLATFORM}


def test_shipped_file_has_canaries_of_both_scopes(shipped):
    scopes = [c.scope for c in shipped.canaries]
    assert scopes.count("international") >= 3 and scopes.count("domestic") >= 3
    assert all(c.platform == CANARY_PLATFORM and c.urls for c in shipped.canaries)
    # A canary must not be a site that is itself measured for blocking.
    for c in shipped.canaries:
        for host in c.url_hosts():
            assert platform_for(host, DEFAULT_PLATFORM_MAP) == "other", (c.name, host)


def test_shipped_file_has_the_telegram_dcs_on_443_and_80(shipped):
    endpoints = {e for t in shipped.targets if t.platform == "telegram" and t.kind == "endpoint" for e in t.endpoints}
    for ip in TELEGRAM_DCS:
        assert {Endpoint(ip, 443), Endpoint(ip, 80)} <= endpoints, ip


def test_shipped_telegram_dcs_match_the_reference_data(shipped):
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared/data is not available")
    with open(shared / "data/endpoints/telegram_endpoints.csv", newline="") as handle:
        dcs = [row["value"] for row in csv.DictReader(handle) if row["kind"] == "dc_ip"]
    assert sorted(dcs) == sorted(TELEGRAM_DCS)


def test_shipped_prefixes_are_transcribed_from_the_reference_data(shipped):
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared/data is not available")
    known: set[str] = set()
    for path in (shared / "data/endpoints").glob("*IP-Prefix-List*"):
        known |= {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
    with open(shared / "data/endpoints/telegram_endpoints.csv", newline="") as handle:
        known |= {row["value"] for row in csv.DictReader(handle) if row["kind"] == "cidr"}
    known_nets = {ipaddress.ip_network(p) for p in known}
    for t in shipped.targets:
        for prefix in t.expected_prefixes:
            assert prefix in known_nets, (t.name, str(prefix))


def test_shipped_whatsapp_endpoints_follow_ooni(shipped):
    (chat,) = [t for t in shipped.targets if t.name == "whatsapp-chat"]
    expected = {Endpoint(f"e{i}.whatsapp.net", port) for i in range(1, 17) for port in (443, 5222)}
    assert set(chat.endpoints) == expected
    # hosting of the chat servers is not established: no expectation rather than a wrong one
    assert chat.expected_asns == () and chat.expected_prefixes == ()
