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
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab.addresses import (
    BIG_PAGE_BYTES,
    BLOCKPAGE_IP,
    BLOCKPAGE_IPS,
    BOGON_IP,
    CENSOR_I_IP,
    CENSOR_V_IP,
    DOMESTIC_IP,
    FOREIGN_BLOCKPAGE,
    FOREIGN_BLOCKPAGE_IP,
    HELPER_IP,
    INJECTED_IP,
    INTERNET_IP,
    LAB_NETS_VIA_CENSOR,
    LAB_SERVER_NETS,
    LIAR_IP,
    MITM_IP,
    NS_PREFIX,
    PAGE_BYTES,
    PAGE_MARKER,
    PUBLIC_RESOLVER_IP,
    REPO,
    RESOLVER_IP,
    SITE_BY_KEY,
    SITES,
    SLOW_RESOLVER_IP,
    STATE_ROOT,
    TARGETS_FILE,
    VANTAGE_IP,
    WAN_TTL,
    blockpage_file,
    fingerprints_dir,
    probe_cli,
    site_ip,
)
from tests.lab.pki import make_pki
from tests.lab.procs import (
    LabError,
    Proc,
    _kill_ns_pids,
    _kill_proc,
    _pid_alive,
    _rmdir_if_empty,
    _run,
    has_option,
    helper_available,
    missing_binaries,
    probe_help,
)
from tests.lab.servers import LabServers

# What the rest of the lab reaches as ``T.<name>``: the lab, its address plan and its process helpers.
__all__ = ["BIG_PAGE_BYTES", "BLOCKPAGE_IP", "BOGON_IP", "FOREIGN_BLOCKPAGE", "FOREIGN_BLOCKPAGE_IP", "INJECTED_IP", "LAB_SERVER_NETS", "LIAR_IP", "Lab", "LabError", "MITM_IP", "PAGE_BYTES", "PAGE_MARKER", "PUBLIC_RESOLVER_IP", "REPO", "RESOLVER_IP", "SITE_BY_KEY", "SLOW_RESOLVER_IP", "STATE_ROOT", "TARGETS_FILE", "WAN_TTL", "_pid_alive", "blockpage_file", "fingerprints_dir", "has_option", "helper_available", "make_pki", "missing_binaries", "probe_cli", "probe_help", "site_ip", "sweep_stale"]


class Lab(LabServers):
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
