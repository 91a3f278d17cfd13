"""The lab's address plan and names: namespaces' addresses, the sites and their names, where the shared
reference data is (README.md documents the same table)."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGETS_FILE = HERE / "targets.lab.yaml"
STATE_ROOT = Path(os.environ.get("REACHPROBE_LAB_STATE", "/run/reachprobe-lab"))
NS_PREFIX = "rl"  # every lab namespace is named rl<hex>-<role>

REQUIRED_BINARIES = ("ip", "nft", "iptables", "tc", "ss", "sysctl", "dnsmasq", "nginx", "openssl")


def shared_dir() -> Path:
    env = os.environ.get("REACHPROBE_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def blockpage_file(name: str = "nat_ir.html") -> Path:
    return shared_dir() / "data" / "fingerprints" / "citizenlab" / "blockpage_html" / name


def fingerprints_dir() -> Path:
    """OONI's blocking-fingerprint CSVs (what the probe's --fingerprints takes)."""
    return shared_dir() / "data" / "fingerprints"


def probe_cli() -> list[str]:
    """The probe's command line (``REACHPROBE_LAB_CLI`` overrides ``python -m probe``)."""
    env = os.environ.get("REACHPROBE_LAB_CLI")
    return shlex.split(env) if env else [sys.executable, "-m", "probe"]


# ---------------------------------------------------------------------------------------------
# Addresses and names (the lab's whole address plan; README.md documents the same table)

VANTAGE_IP = "10.200.0.2"
CENSOR_V_IP = "10.200.0.1"
CENSOR_I_IP = "10.201.0.1"
INTERNET_IP = "10.201.0.2"
RESOLVER_IP = "198.18.0.53"  # the vantage's resolver (resolv.conf): dnsmasq, static records
PUBLIC_RESOLVER_IP = "198.18.8.8"  # a "public" resolver abroad: the same dnsmasq, another address
SLOW_RESOLVER_IP = "198.18.0.54"  # a forwarder that answers 300 ms late (for the injection race)
BLOCKPAGE_IP = "10.10.34.34"  # Iran's national blockpage address, served on the censor
BLOCKPAGE_IPS = ("10.10.34.34", "10.10.34.35", "10.10.34.36")  # all three serve it, as in Iran
INJECTED_IP = "10.10.34.36"  # what the on-path injector forges (also an Iranian blockpage IP)
BOGON_IP = "127.0.0.2"
LIAR_IP = "10.10.53.53"  # the censor's lying resolver (udp/tcp 53 is DNATed to it)
DOMESTIC_IP = "10.10.35.10"  # domestic canary, inside the country (on the censor side)
MITM_IP = "10.10.36.36"  # the censor's TLS interception server (forged certificates), on the censor
FOREIGN_BLOCKPAGE_IP = "10.10.37.37"  # another country's ISP blockpage server, on the censor
# A real non-Iranian ISP blockpage from Citizen Lab's collection (Russia, Akado: the RKN text),
# read from ../shared when the scenario runs; OONI's fingerprints cl.isp_ru_akado_block_1 and
# cp.b_nat_ru_rkn_body match it.
FOREIGN_BLOCKPAGE = "isp_ru_akado_block.html"
SILENT_NAMESERVER = ("127.0.0.1", 5399)  # in the internet namespace: takes queries, never answers
HELPER_IP = "198.18.7.7"  # the outside control (`reachprobe helper`), on the internet side
HELPER_PORT = 8780
# Servers sit several routers away on the real internet; the lab's internet namespace is one hop
# behind the censor, so its outgoing packets leave with this TTL (nft `ip ttl set`): they reach
# the vantage with WAN_TTL - 1 (55), while what the censor forges arrives with 64. That TTL gap is
# the signature of an injected RST (DESIGN.md) and must exist for the lab to be realistic.
WAN_TTL = 56
LAB_NETS_VIA_CENSOR = ("198.18.0.0/15", "10.10.0.0/16")
LAB_SERVER_NETS = ("198.18.0.0/15", "10.10.35.0/24")  # where the lab's real servers are (not the blockpage)


@dataclass(frozen=True)
class Site:
    key: str  # nginx instance name
    platform: str
    names: tuple[str, ...]  # DNS names (first is the canonical www name)
    ips: tuple[str, ...]  # first one is what the names resolve to
    ns_role: str = "internet"  # or "censor" (domestic)
    dns: bool = True


SITES: tuple[Site, ...] = (
    Site("facebook", "facebook", ("www.facebook.lab", "facebook.lab"), ("198.18.1.1",)),
    Site("twitter", "twitter", ("twitter.lab", "www.twitter.lab"), ("198.18.2.1",)),
    Site("telegram", "telegram", ("web.telegram.lab", "telegram.lab"), ("198.18.3.1",)),
    Site("telegram-dc", "telegram", (), ("198.18.3.50", "198.18.3.51"), dns=False),
    Site("instagram", "instagram", ("www.instagram.lab", "instagram.lab"), ("198.18.4.1",)),
    Site("youtube", "youtube", ("www.youtube.lab", "youtube.lab"), ("198.18.5.1",)),
    Site("whatsapp", "whatsapp", ("web.whatsapp.lab", "whatsapp.lab"), ("198.18.6.1",)),
    Site("canary-int", "canary", ("canary-int.lab",), ("198.18.9.1",)),
    Site("canary-dom", "canary", ("canary-dom.lab",), (DOMESTIC_IP,), ns_role="censor"),
)
SITE_BY_KEY = {s.key: s for s in SITES}
TELEGRAM_DC_IPS = SITE_BY_KEY["telegram-dc"].ips
ALL_NAMES = tuple(n for s in SITES for n in s.names)
PAGE_MARKER = "reachprobe-lab site:"  # every site's page carries "<marker> <key>" in its title
PAGE_BYTES = 16 * 1024  # page size: big enough to measure throughput, small enough for 30 % loss
# A platform's home page as a browser fetches it (tens to hundreds of KiB of HTML): what bandwidth
# scenarios serve, so a rate is measured over bytes that take time, not over one round trip.
BIG_PAGE_BYTES = 192 * 1024


def site_ip(key: str) -> str:
    return SITE_BY_KEY[key].ips[0]


def site_names(key: str) -> tuple[str, ...]:
    return SITE_BY_KEY[key].names
