"""The censorship lab: three network namespaces, real servers, and a censor in the middle.

    <prefix>-vantage ──veth── <prefix>-censor (router) ──veth── <prefix>-internet
      10.200.0.2/24      10.200.0.1/24 │ 10.201.0.1/30      10.201.0.2/30
                                       │                    198.18.x.y/32 servers on lo
                          10.10.34.34 blockpage, 10.10.35.10 domestic canary,
                          10.10.53.53 lying resolver (all on the censor's lo)

Safety: the vantage has routes only to 198.18.0.0/15 and 10.10.0.0/16, both via the censor; the
censor routes 198.18.0.0/15 to the internet namespace and has no other route; the internet
namespace routes only back to the censor. No namespace has a default route, none has a link to
the host, nothing is NATed towards the host. Every command runs inside ``ip netns exec <ns>``; the
host's own rules, routes and resolv.conf are never touched.

Everything a lab owns (namespaces, ``/etc/netns/<vantage>``, its work directory, the PIDs of the
servers it started) is recorded in ``<workdir>/state.json`` so a lab can be torn down from another
process (``python -m tests.lab down``) and stale labs of dead owners are swept.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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


# ---------------------------------------------------------------------------------------------


class LabError(RuntimeError):
    pass


def missing_binaries() -> list[str]:
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


@functools.cache
def helper_available() -> bool:
    """The probe under test has the test helper (module probe.control, command ``helper``).
    Feature-detected, so the lab works before and after the helper lands. Asked of the CLI itself:
    a bare ``find_spec('probe.control')`` can be answered by another checkout's editable install
    (setuptools' editable finder maps ``probe.*`` submodules to its own tree)."""
    return bool(probe_help("helper"))


def has_option(help_text: str, option: str) -> bool:
    """``option`` is one of the options a ``--help`` text lists (``--control`` is not
    ``--control-sni``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


@functools.cache
def probe_help(*command: str) -> str:
    """``<probe> COMMAND --help`` (empty if the command does not exist)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACHPROBE_")}
    env["PYTHONPATH"] = str(REPO)
    p = subprocess.run([*probe_cli(), *command, "--help"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    return p.stdout if p.returncode == 0 else ""


def _run(cmd: list[str], *, check: bool = True, timeout: float = 15, input: str | None = None
         ) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def _ns_inode(ns: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return None


def _pid_in_ns(pid: int, ns_inode: int | None) -> bool:
    """True when pid is alive and lives in the network namespace with that inode."""
    try:
        return ns_inode is not None and os.stat(f"/proc/{pid}/ns/net").st_ino == ns_inode
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    ns: str
    pid: int
    cmd: list[str]
    log: str
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"name": self.name, "ns": self.ns, "pid": self.pid, "cmd": self.cmd, "log": self.log}


class Lab:
    """One lab instance. ``up()`` builds it, ``down()`` removes every trace of it (idempotent)."""

    def __init__(self, prefix: str | None = None, workdir: Path | None = None, ca_dir: Path | None = None):
        self.prefix = prefix or f"{NS_PREFIX}{secrets.token_hex(2)}"
        if len(self.prefix) > 8:
            raise LabError("prefix must be at most 8 characters (interface names are at most 15)")
        self.vantage = f"{self.prefix}-vantage"
        self.censor = f"{self.prefix}-censor"
        self.internet = f"{self.prefix}-internet"
        self.if_v = f"{self.prefix}-v0"  # vantage side of the vantage link
        self.if_cv = f"{self.prefix}-cv"  # censor side of the vantage link
        self.if_ci = f"{self.prefix}-ci"  # censor side of the internet link
        self.if_i = f"{self.prefix}-i0"  # internet side of the internet link
        self.own_workdir = workdir is None  # a work directory we made is removed by down()
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"reachprobe-{self.prefix}-"))
        self.ca_dir = Path(ca_dir) if ca_dir else self.workdir / "pki"
        self.procs: dict[str, Proc] = {}
        self.owner_pid = os.getpid()
        self.manual = False  # brought up by hand (python -m tests.lab up): never swept as stale
        self.is_up = False
        self.removed_names: set[str] = set()  # names taken out of the real resolver (name_gone)
        self.silent_names: set[str] = set()  # names whose authoritative server never answers (dead_nameserver)
        self.altered_sites: set[str] = set()  # sites serving something else than their page (restore())
        self.dead_hosts: set[str] = set()  # IPs in the internet side's @dead set
        self.created: list[str] = []  # namespaces this lab created (down() deletes only these)
        self._censor = None

    # -- naming ---------------------------------------------------------------------------------
    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.vantage, self.censor, self.internet)

    def ns_of(self, role: str) -> str:
        return {"vantage": self.vantage, "censor": self.censor, "internet": self.internet}[role]

    @property
    def ca_pem(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def state_file(self) -> Path:
        return STATE_ROOT / f"{self.prefix}.json"

    @property
    def censor_ctl(self):
        from tests.lab.censor import Censor

        if self._censor is None:
            self._censor = Censor(self)
        return self._censor

    # -- command helpers ------------------------------------------------------------------------
    def sh(self, role_or_ns: str, *cmd: str, check: bool = True, timeout: float = 15,
           input: str | None = None) -> subprocess.CompletedProcess:
        ns = self.ns_of(role_or_ns) if role_or_ns in ("vantage", "censor", "internet") else role_or_ns
        return _run(["ip", "netns", "exec", ns, *cmd], check=check, timeout=timeout, input=input)

    def spawn(self, name: str, role: str, cmd: list[str], *, wait_listen: list[str] | None = None,
              wait_line: str | None = None, timeout: float = 10, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        """Start a long-running server inside a namespace and wait until it is ready: listening on
        every ``proto:addr:port`` of ``wait_listen``, or having printed ``wait_line``."""
        if name in self.procs and _pid_alive(self.procs[name].pid):
            raise LabError(f"{name} already running")
        ns = self.ns_of(role)
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as logf:
            # `ip netns exec` execs the command: the Popen pid is the server's own pid.
            popen = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, cwd=cwd)
        proc = Proc(name, ns, popen.pid, cmd, str(log), popen)
        self.procs[name] = proc
        self._save_state()
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise LabError(f"{name} exited with {popen.returncode}: {Path(log).read_text()[-2000:]}")
            if wait_line is not None and wait_line in Path(log).read_text(errors="replace"):
                break
            if wait_listen is not None and self._listening(role, wait_listen):
                break
            if wait_line is None and wait_listen is None:
                break
            if time.monotonic() > deadline:
                self.stop(name)
                raise LabError(f"{name} not ready after {timeout}s: {Path(log).read_text()[-2000:]}")
            time.sleep(0.02)
        return proc

    def _listening(self, role: str, wanted: list[str]) -> bool:
        out = self.sh(role, "ss", "-Hlntu", check=False).stdout
        have = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 5:
                have.add(f"{parts[0]}:{parts[4]}")
        return all(w in have for w in wanted)

    def stop(self, name: str, timeout: float = 3) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        _kill_proc(proc, timeout)
        self._save_state()

    def running(self, name: str) -> bool:
        p = self.procs.get(name)
        return p is not None and _pid_alive(p.pid)

    # -- set-up -----------------------------------------------------------------------------------
    def up(self) -> Lab:
        missing = missing_binaries()
        if missing:
            raise LabError(f"missing binaries: {', '.join(missing)}")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces)")
        sweep_stale()
        taken = [ns for ns in self.namespaces if Path("/run/netns", ns).exists()] + (
            [str(self.state_file)] if self.state_file.exists() else [])
        if taken:  # never adopt (nor later delete) what another lab owns
            raise LabError(f"lab prefix {self.prefix} is in use: {', '.join(taken)}")
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._save_state()  # before the first namespace exists, so a crash can still be cleaned up
        atexit.register(self._down_at_exit)
        try:
            self._topology()
            self.is_up = True
            self._save_state()
            make_pki(self.ca_dir)
            self._content()
            self.start_resolver()
            for site in SITES:
                self.start_site(site.key)
            self.start_blockpage()
            self.censor_ctl.install_base()
            if helper_available():
                self.start_helper()
        except BaseException:
            self.down()
            raise
        return self

    def _topology(self) -> None:
        for ns in self.namespaces:
            _run(["ip", "netns", "add", ns])
            self.created.append(ns)
            self._save_state()
            # No IPv6 in the lab at all (no link-local chatter, no v6 route out of anything).
            self.sh(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1")
            self.sh(ns, "ip", "link", "set", "lo", "up")
        # veth pairs created directly inside their namespaces (never in the host's)
        _run(["ip", "link", "add", self.if_v, "netns", self.vantage, "type", "veth",
              "peer", "name", self.if_cv, "netns", self.censor])
        _run(["ip", "link", "add", self.if_ci, "netns", self.censor, "type", "veth",
              "peer", "name", self.if_i, "netns", self.internet])
        batch = {
            self.vantage: [f"addr add {VANTAGE_IP}/24 dev {self.if_v}", f"link set {self.if_v} up"]
            + [f"route add {net} via {CENSOR_V_IP} dev {self.if_v}" for net in LAB_NETS_VIA_CENSOR],
            self.censor: [
                f"addr add {CENSOR_V_IP}/24 dev {self.if_cv}", f"link set {self.if_cv} up",
                f"addr add {CENSOR_I_IP}/30 dev {self.if_ci}", f"link set {self.if_ci} up",
                *[f"addr add {ip}/32 dev lo" for ip in BLOCKPAGE_IPS], f"addr add {LIAR_IP}/32 dev lo",
                f"addr add {DOMESTIC_IP}/32 dev lo", f"addr add {MITM_IP}/32 dev lo",
                f"addr add {FOREIGN_BLOCKPAGE_IP}/32 dev lo",
                f"route add 198.18.0.0/15 via {INTERNET_IP} dev {self.if_ci}",
            ],
            self.internet: [f"addr add {INTERNET_IP}/30 dev {self.if_i}", f"link set {self.if_i} up",
                            f"route add 10.200.0.0/16 via {CENSOR_I_IP} dev {self.if_i}",
                            f"route add 10.10.0.0/16 via {CENSOR_I_IP} dev {self.if_i}"]
            + [f"addr add {ip}/32 dev lo" for ip in self._internet_ips()],
        }
        for ns, cmds in batch.items():
            _run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n")
        self.sh(self.censor, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self._install_wan()
        self.assert_no_route_out()
        netns_etc = Path("/etc/netns") / self.vantage
        for attempt in range(3):  # another lab's down() may rmdir an empty /etc/netns meanwhile
            try:
                netns_etc.mkdir(parents=True, exist_ok=True)
                (netns_etc / "resolv.conf").write_text(f"# reachprobe lab {self.prefix}\nnameserver {RESOLVER_IP}\n"
                                                       "options timeout:1 attempts:3\n")
                (netns_etc / "hosts").write_text("127.0.0.1 localhost\n")
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def _install_wan(self) -> None:
        """The internet namespace's own table (no censorship here): the TTL distance of the far
        internet, and the ``@dead`` set (hosts that vanished: every packet to them is dropped on
        the internet side, for the vantage and the outside control alike)."""
        self.sh("internet", "nft", "-f", "-", input=f"""table ip wan {{
    set dead {{ type ipv4_addr; }}
    chain input {{
        type filter hook input priority -10; policy accept;
        ip daddr @dead drop
    }}
    chain output {{
        type filter hook output priority -150; policy accept;
        ip saddr @dead drop
        oifname "{self.if_i}" ip ttl set {WAN_TTL}
    }}
}}
""")

    def host_dead(self, ips: list[str]) -> None:
        self.sh("internet", "nft", f"add element ip wan dead {{ {', '.join(ips)} }}")
        self.dead_hosts.update(ips)
        self._save_state()

    @staticmethod
    def _internet_ips() -> list[str]:
        ips = [RESOLVER_IP, PUBLIC_RESOLVER_IP, SLOW_RESOLVER_IP, HELPER_IP]
        for s in SITES:
            if s.ns_role == "internet":
                ips.extend(s.ips)
        return ips

    def assert_no_route_out(self) -> None:
        """The lab's safety invariant: no default route anywhere, the vantage reaches only lab nets."""
        for ns in self.namespaces:
            routes = self.sh(ns, "ip", "-4", "route", "show", "table", "all").stdout
            for line in routes.splitlines():
                first = line.split()[0] if line.split() else ""
                if first in ("default", "0.0.0.0/0") or line.startswith("unreachable default"):
                    raise LabError(f"{ns} has a default route: {line}")
            links = self.sh(ns, "ip", "-o", "link", "show").stdout
            for line in links.splitlines():
                if "link-netns" not in line and ": lo:" not in line:
                    raise LabError(f"{ns} has an interface not paired inside the lab: {line}")
        vroutes = self.sh(self.vantage, "ip", "-4", "route", "show").stdout.splitlines()
        allowed = set(LAB_NETS_VIA_CENSOR) | {"10.200.0.0/24"}
        for line in vroutes:
            if line.split()[0] not in allowed:
                raise LabError(f"vantage route outside the lab: {line}")

    def _content(self) -> None:
        www = self.workdir / "www"
        self.write_pages(PAGE_BYTES)
        bp = www / "blockpage"
        bp.mkdir(parents=True, exist_ok=True)
        src = blockpage_file()
        if not src.is_file():
            raise LabError(f"blockpage not found: {src} (set REACHPROBE_SHARED)")
        shutil.copyfile(src, bp / "nat_ir.html")
        (self.workdir / "nginx").mkdir(exist_ok=True)

    def write_pages(self, size: int) -> None:
        """Every site's page, padded to ``size`` bytes (nginx reads the file on each request, so a
        scenario may change it on a running lab)."""
        for site in SITES:
            d = self.workdir / "www" / site.key
            d.mkdir(parents=True, exist_ok=True)
            head = (f"<!doctype html><html><head><title>{PAGE_MARKER} {site.key}</title></head>"
                    f"<body><h1>{site.key} ({site.platform}) in the reachprobe lab</h1>\n<!--")
            tail = "-->\n</body></html>\n"
            pad = "x" * max(0, size - len(head) - len(tail))
            tmp = d / "index.html.tmp"
            tmp.write_text(head + pad + tail)
            tmp.replace(d / "index.html")

    # -- servers ------------------------------------------------------------------------------------
    def _nginx_conf(self, key: str, servers: str) -> Path:
        d = self.workdir / "nginx"
        tmp = d / f"{key}-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        conf = d / f"{key}.conf"
        conf.write_text(f"""# generated by tests/lab for lab {self.prefix}
daemon off;
master_process off;
worker_processes 1;
pid {d}/{key}.pid;
error_log {self.workdir}/logs/nginx-{key}.err warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    default_type text/html;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_certificate {self.ca_dir}/server.pem;
    ssl_certificate_key {self.ca_dir}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_timeout 5;
    server_tokens off;
{servers}
}}
""")
        return conf

    def start_site(self, key: str, *, locations: str | None = None, cert: str | None = None,
                   extra: str = "") -> Proc:
        """The site's nginx. ``locations`` replaces its ``location`` blocks (e.g. a redirect) and
        ``cert`` names another certificate of the PKI directory (``selfsigned``): the site itself
        misbehaving, which ``restore()`` undoes; ``extra`` adds server directives."""
        site = SITE_BY_KEY[key]
        listen = "".join(f"        listen {ip}:80 default_server;\n        listen {ip}:443 ssl default_server;\n"
                         for ip in site.ips)
        tls = (f"        ssl_certificate {self.ca_dir}/{cert}.pem;\n        ssl_certificate_key {self.ca_dir}/{cert}.key;\n"
               if cert else "")
        servers = f"""    server {{
{listen}        server_name _;
{tls}{extra}        root {self.workdir}/www/{key};
        {locations or 'location / { try_files /index.html =404; }'}
    }}"""
        if locations or cert or extra:
            self.altered_sites.add(key)
        conf = self._nginx_conf(key, servers)
        wanted = [f"tcp:{ip}:{port}" for ip in site.ips for port in (80, 443)]
        return self.spawn(f"nginx-{key}", site.ns_role, ["nginx", "-e", str(self.workdir / "logs" / f"nginx-{key}.err"),
                                                       "-c", str(conf)], wait_listen=wanted)

    def stop_site(self, key: str) -> None:
        self.stop(f"nginx-{key}")

    def replace_site(self, key: str, cmd: list[str]) -> Proc:
        """Stop the site's nginx and serve its addresses with another server (``cmd``, run in the
        site's namespace, listening on :80 and :443 of every site IP); ``restore()`` undoes it."""
        site = SITE_BY_KEY[key]
        self.stop_site(key)
        self.altered_sites.add(key)
        return self.spawn(f"alt-{key}", site.ns_role, cmd,
                          wait_listen=[f"tcp:{ip}:{port}" for ip in site.ips for port in (80, 443)])

    def start_nginx(self, name: str, role: str, servers: str, wanted: list[str]) -> Proc:
        """An extra nginx (the censor's MITM server, a foreign blockpage) under ``name``."""
        conf = self._nginx_conf(name, servers)
        return self.spawn(f"nginx-{name}", role, ["nginx", "-e", str(self.workdir / "logs" / f"nginx-{name}.err"),
                                                 "-c", str(conf)], wait_listen=wanted)

    def start_helper(self) -> Proc:
        """The outside control: `reachprobe helper` on the internet side, beside the servers. It
        resolves with the lab's real resolver (its queries never cross the censor) and may fetch
        only the lab's networks."""
        cmd = [*probe_cli(), "helper", "--listen", f"{HELPER_IP}:{HELPER_PORT}",
               *(a for net in LAB_NETS_VIA_CENSOR for a in ("--allow-net", net)), "--resolver", RESOLVER_IP]
        helper_help = probe_help("helper")
        if has_option(helper_help, "--ca-bundle"):
            cmd += ["--ca-bundle", str(self.ca_pem)]
        if has_option(helper_help, "--rate") and has_option(helper_help, "--burst"):
            # one lab probe, every target every run (timed scenarios: 5 runs in 35 s); the public
            # default (1/s) is for strangers on the internet
            cmd += ["--rate", "50/s", "--burst", "500"]
        if has_option(helper_help, "--timeout"):
            # The lab's probe waits 3 x its 2 s step timeout for the control: the helper answers within 4 s,
            # with what it saw by then (a dead host's connect timed out), instead of the public 15 s.
            cmd += ["--timeout", "4"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REACHPROBE_")}
        env["PYTHONPATH"] = str(REPO)
        return self.spawn("helper", "internet", cmd, wait_listen=[f"tcp:{HELPER_IP}:{HELPER_PORT}"], timeout=30,
                          env=env, cwd=REPO)

    @property
    def control_url(self) -> str | None:
        """The helper's URL while it runs (what the probe gets with --control)."""
        return f"http://{HELPER_IP}:{HELPER_PORT}/" if self.running("helper") else None

    def start_blockpage(self) -> Proc:
        listen = "".join(f"        listen {ip}:80 default_server;\n" for ip in BLOCKPAGE_IPS)
        servers = f"""    server {{
{listen}
        server_name _;
        root {self.workdir}/www/blockpage;
        charset_types text/html;
        error_page 403 /nat_ir.html;
        location = /nat_ir.html {{ internal; }}
        location / {{ return 403; }}
    }}"""
        conf = self._nginx_conf("blockpage", servers)
        return self.spawn("nginx-blockpage", "censor", ["nginx", "-e", str(self.workdir / "logs" / "nginx-blockpage.err"),
                                                         "-c", str(conf)], wait_listen=[f"tcp:{ip}:80" for ip in BLOCKPAGE_IPS])

    def dnsmasq_cmd(self, name: str, listen: str, extra: list[str]) -> list[str]:
        return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--bind-interfaces", f"--listen-address={listen}", "--port=53",
                f"--pid-file={self.workdir}/{name}.pid", "--user=root", "--group=root",
                "--log-facility=-", "--cache-size=0", "--no-negcache", *extra]

    def start_resolver(self) -> Proc:
        """The real resolvers of the lab's internet (the vantage's, 198.18.0.53, and a "public" one,
        198.18.8.8: one dnsmasq on both addresses): static records for every lab name, NXDOMAIN for
        any other .lab name, nothing forwarded anywhere."""
        records = [f"--host-record={n},{s.ips[0]}" for s in SITES if s.dns for n in s.names
                   if n not in self.removed_names | self.silent_names]
        # A silent name is delegated to a server that takes every query and never answers (the more
        # specific --server wins over --local=/lab/): the resolver waits, and so does its client.
        delegated = [f"--server=/{n}/{SILENT_NAMESERVER[0]}#{SILENT_NAMESERVER[1]}" for n in sorted(self.silent_names)]
        extra = ["--local=/lab/", "--domain-needed", "--bogus-priv", *records, *delegated]
        return self.spawn("resolver", "internet",
                          self.dnsmasq_cmd("resolver", f"{RESOLVER_IP},{PUBLIC_RESOLVER_IP}", extra),
                          wait_listen=[f"{p}:{ip}:53" for p in ("udp", "tcp") for ip in (RESOLVER_IP, PUBLIC_RESOLVER_IP)])

    def stop_resolver(self) -> None:
        self.stop("resolver")

    def remove_names(self, names: list[str]) -> None:
        """Take names out of the real resolver (the names stop existing on the internet)."""
        self.removed_names.update(names)
        if self.running("resolver"):
            self.stop_resolver()
            self.start_resolver()

    def silence_names(self, names: list[str]) -> None:
        """Make the names' authoritative server fall silent: the real resolver forwards them to a socket
        on the internet side that reads nothing and answers nothing (no ICMP either: it is bound)."""
        if not self.running("silent-nameserver"):
            host, port = SILENT_NAMESERVER
            self.spawn("silent-nameserver", "internet",
                       [sys.executable, "-c", "import socket, time\n"
                        f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(({host!r}, {port}))\n"
                        "time.sleep(86400)"], wait_listen=[f"udp:{host}:{port}"])
        self.silent_names.update(names)
        if self.running("resolver"):
            self.stop_resolver()
            self.start_resolver()

    def python_helper(self, script: str) -> list[str]:
        return [sys.executable, "-u", str(HERE / "helpers" / script)]

    # -- teardown -------------------------------------------------------------------------------------
    def down(self) -> None:
        """Remove everything this lab created. Safe to call twice, and after a partial set-up."""
        errors = []
        try:
            for name in list(self.procs):
                try:
                    self.stop(name)
                except (LabError, OSError, subprocess.SubprocessError) as e:  # namespaces must go anyway
                    errors.append(f"stop {name}: {e}")
            for ns in self.created:
                _kill_ns_pids(ns)
            for ns in self.created:
                if Path("/run/netns", ns).exists():
                    p = _run(["ip", "netns", "del", ns], check=False)
                    if p.returncode != 0:
                        errors.append(f"netns del {ns}: {p.stderr.strip()}")
            if self.vantage in self.created:
                shutil.rmtree(Path("/etc/netns") / self.vantage, ignore_errors=True)
                _rmdir_if_empty(Path("/etc/netns"))
            self.created = [ns for ns in self.created if Path("/run/netns", ns).exists()]
            self.is_up = False
        finally:
            try:
                self.state_file.unlink()
            except OSError:
                pass
        if self.own_workdir and os.environ.get("REACHPROBE_LAB_KEEP_WORKDIR") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise LabError("; ".join(errors))

    def _down_at_exit(self) -> None:
        if self.owner_pid == os.getpid() and not self.manual and (self.is_up or self.procs):
            try:
                self.down()
            except (LabError, OSError, subprocess.SubprocessError) as e:  # no one left to raise to
                print(f"reachprobe lab {self.prefix}: teardown at exit: {e}", file=sys.stderr)

    # -- state ------------------------------------------------------------------------------------------
    def _save_state(self) -> None:
        if not STATE_ROOT.exists():
            if not self.is_up and not self.procs:
                return
            STATE_ROOT.mkdir(parents=True, exist_ok=True)
        state = {
            "prefix": self.prefix, "owner_pid": self.owner_pid, "workdir": str(self.workdir),
            "ca_dir": str(self.ca_dir), "own_workdir": self.own_workdir,
            "namespaces": list(self.namespaces), "created": self.created, "is_up": self.is_up,
            "manual": self.manual,
            "removed_names": sorted(self.removed_names), "silent_names": sorted(self.silent_names),
            "altered_sites": sorted(self.altered_sites), "dead_hosts": sorted(self.dead_hosts),
            "procs": [p.to_json() for p in self.procs.values()],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    @classmethod
    def from_state(cls, path: Path) -> Lab:
        st = json.loads(Path(path).read_text())
        lab = cls(prefix=st["prefix"], workdir=Path(st["workdir"]), ca_dir=Path(st["ca_dir"]))
        lab.owner_pid = st["owner_pid"]
        lab.own_workdir = bool(st.get("own_workdir"))
        lab.manual = bool(st.get("manual"))
        lab.created = list(st["created"] if "created" in st else st.get("namespaces", ()))
        lab.is_up = st["is_up"]
        lab.removed_names = set(st.get("removed_names", ()))
        lab.silent_names = set(st.get("silent_names", ()))
        lab.altered_sites = set(st.get("altered_sites", ()))
        lab.dead_hosts = set(st.get("dead_hosts", ()))
        for p in st["procs"]:
            lab.procs[p["name"]] = Proc(p["name"], p["ns"], p["pid"], p["cmd"], p["log"])
        return lab

    def detach(self) -> None:
        """Leave the lab up after this process exits (the hand tool's `up`); `down` removes it."""
        self.manual = True
        self._save_state()

    def restore(self) -> None:
        """Undo every scenario action: no censorship, link up, resolver and every site running,
        every name back in the resolver."""
        self.censor_ctl.clear()
        self.censor_ctl.vantage_link_up()
        if self.silent_names:
            self.stop("silent-nameserver")
        if self.removed_names or self.silent_names or not self.running("resolver"):
            self.removed_names.clear()
            self.silent_names.clear()
            self.stop_resolver()
            self.start_resolver()
        if self.dead_hosts:
            self.sh("internet", "nft", "flush set ip wan dead")
            self.dead_hosts.clear()
        for key in sorted(self.altered_sites):
            self.stop(f"alt-{key}")
            self.stop_site(key)
        self.altered_sites.clear()
        for site in SITES:
            if not self.running(f"nginx-{site.key}"):
                self.start_site(site.key)
        self._save_state()


def _rmdir_if_empty(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


def _kill_proc(proc: Proc, timeout: float) -> None:
    ns_inode = _ns_inode(proc.ns)
    if proc.popen is not None:
        if proc.popen.poll() is None:
            proc.popen.terminate()
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
        return
    # Not our child (state from another process): kill only if the pid still is that process,
    # living in the lab's namespace (a recycled pid elsewhere is never touched).
    if not _pid_in_ns(proc.pid, ns_inode):
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pid_in_ns(proc.pid, ns_inode) and _pid_alive(proc.pid):
            os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_ns_pids(ns: str) -> None:
    """Kill whatever still runs inside a lab namespace (a hung probe, an orphaned helper): those
    are processes the lab started, in a namespace that only the lab uses."""
    if not Path("/run/netns", ns).exists():
        return
    ns_inode = _ns_inode(ns)
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
        p = _run(["ip", "netns", "pids", ns], check=False)
        pids = [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]
        pids = [pid for pid in pids if _pid_in_ns(pid, ns_inode)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)


def sweep_stale() -> list[str]:
    """Tear down labs whose owner process is gone (a killed pytest, a crashed hand session)."""
    swept = []
    if not STATE_ROOT.is_dir():
        return swept
    for f in STATE_ROOT.glob("*.json"):
        try:
            st = json.loads(f.read_text())
            if st.get("manual") or _pid_alive(int(st["owner_pid"])):
                continue
            Lab.from_state(f).down()
            swept.append(st["prefix"])
        except (LabError, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
            print(f"reachprobe lab: could not sweep {f}: {e}", file=sys.stderr)
    return swept


# ---------------------------------------------------------------------------------------------
# PKI: one lab CA and one server certificate carrying every lab name and the DC IPs.


def make_pki(d: Path) -> None:
    d = Path(d)
    if not ((d / "server.pem").is_file() and (d / "ca.pem").is_file()):
        _make_lab_ca(d)
    _make_bad_certs(d)


def _ossl(*a: str) -> None:
    _run(["openssl", *a], timeout=30)


def _make_bad_certs(d: Path) -> None:
    """Certificates the vantage must NOT accept, for facebook's names:

    - ``mitm``: issued by the censor's own CA (``mitm-ca``, "ISP Security Gateway CA"), which the
      vantage does not trust: what a TLS-intercepting censor presents;
    - ``selfsigned``: the site's own self-signed certificate (a misconfigured server)."""
    sans = ",".join(f"DNS:{n}" for n in SITE_BY_KEY["facebook"].names)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    if not (d / "mitm.pem").is_file():
        _ossl("req", "-x509", *ec, "-keyout", str(d / "mitm-ca.key"), "-out", str(d / "mitm-ca.pem"),
              "-days", "30", "-subj", "/O=ISP Security Gateway/CN=ISP Security Gateway CA",
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ext = d / "mitm.ext"
        ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _ossl("req", *ec, "-keyout", str(d / "mitm.key"), "-out", str(d / "mitm.csr"), "-subj", "/CN=www.facebook.lab")
        _ossl("x509", "-req", "-in", str(d / "mitm.csr"), "-CA", str(d / "mitm-ca.pem"), "-CAkey",
              str(d / "mitm-ca.key"), "-CAcreateserial", "-out", str(d / "mitm.pem"), "-days", "30",
              "-extfile", str(ext))
    if not (d / "selfsigned.pem").is_file():
        _ossl("req", "-x509", *ec, "-keyout", str(d / "selfsigned.key"), "-out", str(d / "selfsigned.pem"),
              "-days", "30", "-subj", "/CN=www.facebook.lab", "-addext", f"subjectAltName={sans}")


def _make_lab_ca(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    ossl = _ossl
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "30",
         "-subj", "/CN=reachprobe lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sans = ",".join([f"DNS:{n}" for n in ALL_NAMES] + ["DNS:*.lab"]
                    + [f"IP:{ip}" for s in SITES for ip in s.ips])
    ext = d / "server.ext"
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"), "-subj", "/CN=www.facebook.lab")
    ossl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "30", "-extfile", str(ext))
