"""The censor: real blocking methods switched on and off inside the censor namespace.

Each public method is one censor *action*; scenarios name them in their timelines
(``(t, "dns_hijack", {"sites": ["facebook"]})``). ``Censor.apply(name, **args)`` dispatches.

Mechanisms (all inside ``ip netns exec <prefix>-censor``, never on the host):

- nftables table ``ip censor`` (forward hook, priority -10) with timeout-capable sets:
  ``@blackhole`` (drop), ``@rst`` (every data segment answered with a TCP RST), ``@once`` (the first
  data segment is reset, then the element deletes itself: a one-off glitch) and ``@open``
  (exceptions: an element with ``timeout 20s`` opens a blocked IP for 20 s, then the kernel closes it
  again by itself: unblocking windows and glitches are timed rules, not sleeps in the test).
- iptables (nft backend, its own tables) for what nftables cannot express: ``-m string --algo bm``
  on the TLS SNI and the HTTP Host header, ``-m statistic`` random loss, DNAT of tcp/80 to the
  blockpage and of udp+tcp/53 to a lying dnsmasq or to the slow resolver.
- tc htb + u32 on the censor's vantage-facing interface for throttling (the kernel has no netem).
- a scapy injector (helpers/injector.py) racing forged DNS answers against the slow resolver
  (helpers/slow_resolver.py, in the internet namespace).
"""

from __future__ import annotations

from tests.lab import topology as T


class Censor:
    def __init__(self, lab: T.Lab):
        self.lab = lab
        self.lies: dict[str, str | None] = {}  # domain -> forged answer (None: NXDOMAIN)
        self._liar_dnat: set[str] = set()  # intercept scopes already DNATed

    # -- plumbing -------------------------------------------------------------------------------
    def _ipt(self, *args: str, table: str = "filter") -> None:
        self.lab.sh("censor", "iptables", "-w", "5", "-t", table, *args)

    def _nft(self, script: str) -> None:
        self.lab.sh("censor", "nft", "-f", "-", input=script)

    @staticmethod
    def _ips(sites=(), ips=()) -> list[str]:
        out = list(ips)
        for key in sites:
            out.extend(T.SITE_BY_KEY[key].ips)
        if not out:
            raise ValueError("no IPs given")
        return out

    @staticmethod
    def _names(sites=(), names=()) -> list[str]:
        out = list(names)
        for key in sites:
            out.extend(T.SITE_BY_KEY[key].names)
        if not out:
            raise ValueError("no names given")
        return out

    def _elements(self, set_name: str, ips: list[str], timeout: float | None) -> None:
        to = f" timeout {int(timeout * 1000)}ms" if timeout else ""
        elems = ", ".join(f"{ip}{to}" for ip in ips)
        self._nft(f"add element ip censor {set_name} {{ {elems} }}\n")

    def install_base(self) -> None:
        self._nft("""table ip censor {
    set open { type ipv4_addr; flags timeout; }
    set blackhole { type ipv4_addr; flags timeout; }
    set rst { type ipv4_addr; flags timeout; }
    set once { type ipv4_addr . inet_service; flags dynamic,timeout; }
    set synrst { type ipv4_addr; flags timeout; }
    chain forward {
        type filter hook forward priority -10; policy accept;
        ip daddr @open accept
        ip saddr @open accept
        ip daddr @blackhole drop
        ip saddr @blackhole drop
        ip daddr @rst tcp flags & psh == psh reject with tcp reset
        ip daddr @synrst tcp flags & (syn | ack) == syn reject with tcp reset
        tcp flags & psh == psh ip daddr . tcp dport @once delete @once { ip daddr . tcp dport } reject with tcp reset
    }
}
""")

    def apply(self, action: str, **args) -> None:
        fn = getattr(self, action, None)
        if fn is None or action.startswith("_") or action in ("apply", "install_base"):
            raise ValueError(f"unknown censor action {action!r}")
        fn(**args)

    # -- no-op ---------------------------------------------------------------------------------------
    def nothing(self) -> None:
        """Control: no censorship at all."""

    def clear(self) -> None:
        """Lift every censorship rule (servers, resolver and links are not touched)."""
        self._nft("flush set ip censor open\nflush set ip censor blackhole\nflush set ip censor rst\n"
                  "flush set ip censor once\nflush set ip censor synrst\n")
        for table in ("filter", "nat", "mangle"):
            self._ipt("-F", table=table)
        self.lab.sh("censor", "tc", "qdisc", "del", "dev", self.lab.if_cv, "root", check=False)
        self.lies.clear()
        self._liar_dnat.clear()
        self.lab.stop("liar")
        self.lab.stop("injector")
        self.lab.stop("slow-resolver")
        self.lab.stop("nginx-mitm")
        self.lab.stop("nginx-foreign-blockpage")

    # -- DNS ------------------------------------------------------------------------------------------
    def _restart_liar(self, intercept: str) -> None:
        self.lab.stop("liar")
        extra = [f"--server={T.RESOLVER_IP}"]
        for domain, answer in sorted(self.lies.items()):
            extra.append(f"--address=/{domain}/{answer or ''}")
        self.lab.spawn("liar", "censor", self.lab.dnsmasq_cmd("liar", T.LIAR_IP, extra),
                       wait_listen=[f"udp:{T.LIAR_IP}:53", f"tcp:{T.LIAR_IP}:53"])
        if intercept not in ("all", "system"):
            raise ValueError(f"intercept must be 'all' or 'system', not {intercept!r}")
        if intercept not in self._liar_dnat:
            dst = ["-d", T.RESOLVER_IP] if intercept == "system" else []
            for proto in ("udp", "tcp"):
                self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-p", proto, *dst, "--dport", "53",
                          "-j", "DNAT", "--to-destination", T.LIAR_IP, table="nat")
            self._liar_dnat.add(intercept)

    def dns_hijack(self, sites=(), names=(), answer: str = T.BLOCKPAGE_IP, intercept: str = "all") -> None:
        """DNS queries from the vantage (udp+tcp/53) are DNATed to a lying dnsmasq on the censor that
        answers ``answer`` for the blocked names and forwards the rest to the real resolver (Iran:
        10.10.34.34). ``intercept="all"``: whatever resolver is asked (Iran); ``"system"``: only
        queries to the vantage's own resolver (an ISP resolver that lies; public resolvers are
        untouched)."""
        for n in self._names(sites, names):
            self.lies[n] = answer
        self._restart_liar(intercept)

    def dns_nxdomain(self, sites=(), names=(), intercept: str = "system") -> None:
        """The lying resolver answers NXDOMAIN for the blocked names (by default only the vantage's
        own resolver lies: a public resolver still knows the names, which is how a probe tells
        censorship from a name that is really gone)."""
        for n in self._names(sites, names):
            self.lies[n] = None
        self._restart_liar(intercept)

    def dns_drop(self, sites=(), names=()) -> None:
        """DNS blocking by silence: every port-53 query naming a blocked name (the name in wire form,
        udp and tcp, to any resolver) is dropped on its way out, so its lookups time out while every
        other name is answered by the same resolvers."""
        for name in self._names(sites, names):
            wire = "".join(f"|{len(label):02x}|{label}" for label in name.split(".")) + "|00|"
            for proto in ("udp", "tcp"):
                self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-p", proto, "--dport", "53",
                          "-m", "string", "--algo", "bm", "--hex-string", wire, "-j", "DROP")

    def dns_bogon(self, sites=(), names=(), answer: str = T.BOGON_IP, intercept: str = "all") -> None:
        """The lying resolver answers a bogon address for the blocked names."""
        self.dns_hijack(sites, names, answer, intercept)

    def dns_inject(self, sites=(), names=(), answer: str = T.INJECTED_IP, delay: float = 0.3) -> None:
        """On-path injection: a scapy injector on the censor forges an answer for each A query of a
        blocked name; the real answer still arrives, ``delay`` seconds later (every resolver is made
        slow by DNATing the vantage's udp/53 to a forwarder that waits before answering)."""
        names = self._names(sites, names)
        self.lab.spawn("slow-resolver", "internet",
                       self.lab.python_helper("slow_resolver.py")
                       + ["--listen", T.SLOW_RESOLVER_IP, "--upstream", T.RESOLVER_IP, "--delay", str(delay)],
                       wait_line="READY", timeout=10)
        self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-p", "udp", "--dport", "53",
                  "-j", "DNAT", "--to-destination", T.SLOW_RESOLVER_IP, table="nat")
        self.lab.spawn("injector", "censor",
                       self.lab.python_helper("injector.py")
                       + ["--iface", self.lab.if_cv, "--answer", answer, *[f"--name={n}" for n in names]],
                       wait_line="READY", timeout=20)

    # -- IP / TCP -------------------------------------------------------------------------------------
    def ip_blackhole(self, sites=(), ips=(), timeout: float | None = None) -> None:
        """Silently drop every packet to (and from) the IPs; with ``timeout`` the kernel lifts it."""
        self._elements("blackhole", self._ips(sites, ips), timeout)

    def ip_unblackhole(self, sites=(), ips=()) -> None:
        self._nft(f"delete element ip censor blackhole {{ {', '.join(self._ips(sites, ips))} }}\n")

    def tcp_rst(self, sites=(), ips=(), timeout: float | None = None) -> None:
        """The TCP handshake completes, then every data segment to the IPs is answered with a RST
        (whatever the SNI: a harmless-SNI handshake is reset too, unlike SNI filtering)."""
        self._elements("rst", self._ips(sites, ips), timeout)

    def tcp_unrst(self, sites=(), ips=()) -> None:
        self._nft(f"delete element ip censor rst {{ {', '.join(self._ips(sites, ips))} }}\n")

    def syn_rst(self, sites=(), ips=()) -> None:
        """Answer every SYN to the IPs with a RST from the censor (nft ``reject with tcp reset``,
        the address spoofed as the server's): the connect is refused, as if nothing listened. The
        forged RST is made one hop from the vantage (TTL 64 on arrival) while the server's own
        packets arrive with TTL WAN_TTL - 1."""
        self._elements("synrst", self._ips(sites, ips), None)

    def rst_once(self, sites=(), ips=(), port: int = 443) -> None:
        """Reset only the first data segment to the IPs' ``port``, then let everything through (the
        set element deletes itself on its first match): a one-off glitch that a retry gets past."""
        self._elements("once", [f"{ip} . {port}" for ip in self._ips(sites, ips)], None)

    def open_window(self, sites=(), ips=(), seconds: float = 20) -> None:
        """Exempt the IPs from the nft-set blocks (blackhole, rst) for ``seconds``; the kernel closes
        the window again by itself (an nft set element with a timeout)."""
        self._elements("open", self._ips(sites, ips), seconds)

    # -- TLS / HTTP -----------------------------------------------------------------------------------
    def sni_block(self, patterns=(), mode: str = "rst") -> None:
        """String-match the TLS ClientHello (SNI) on tcp/443: reset the connection (``rst``) or drop
        the segment and its retransmissions (``drop``)."""
        target = ["REJECT", "--reject-with", "tcp-reset"] if mode == "rst" else ["DROP"]
        for p in patterns:
            self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-p", "tcp", "--dport", "443",
                      "-m", "string", "--algo", "bm", "--string", p, "-j", *target)

    def http_host_block(self, hosts=(), mode: str = "rst") -> None:
        """String-match the HTTP ``Host:`` header on tcp/80 and reset (or drop) the connection."""
        target = ["REJECT", "--reject-with", "tcp-reset"] if mode == "rst" else ["DROP"]
        for h in hosts:
            self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-p", "tcp", "--dport", "80",
                      "-m", "string", "--algo", "bm", "--icase", "--string", f"Host: {h}", "-j", *target)

    def http_blockpage(self, sites=(), ips=()) -> None:
        """DNAT tcp/80 to the IPs onto the blockpage server (Iran's national blockpage)."""
        for ip in self._ips(sites, ips):
            self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-p", "tcp", "-d", ip, "--dport", "80",
                      "-j", "DNAT", "--to-destination", f"{T.BLOCKPAGE_IP}:80", table="nat")

    def tls_mitm(self, sites=(), ips=()) -> None:
        """TLS interception: tcp/443 to the IPs is DNATed to the censor's own TLS server, which
        presents a certificate for facebook's names issued by the censor's CA (not trusted by the
        vantage; the PKI directory's ``mitm`` certificate)."""
        d = self.lab.workdir / "www" / "mitm"
        d.mkdir(parents=True, exist_ok=True)
        (d / "index.html").write_text("<!doctype html><html><head><title>Security gateway</title></head>"
                                      "<body>This connection is inspected.</body></html>\n")
        ca = self.lab.ca_dir
        self.lab.start_nginx("mitm", "censor", f"""    server {{
        listen {T.MITM_IP}:443 ssl default_server;
        server_name _;
        ssl_certificate {ca}/mitm.pem;
        ssl_certificate_key {ca}/mitm.key;
        root {d};
        location / {{ try_files /index.html =404; }}
    }}""", [f"tcp:{T.MITM_IP}:443"])
        for ip in self._ips(sites, ips):
            self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-p", "tcp", "-d", ip, "--dport", "443",
                      "-j", "DNAT", "--to-destination", f"{T.MITM_IP}:443", table="nat")

    def midbody_rst(self, sites=(), ips=(), after: int = 4000) -> None:
        """Reset connections to the IPs in the middle of the response: once the server has sent
        ``after`` bytes on a connection (conntrack byte counters, ``-m connbytes``), the vantage's
        next segment (an ACK of the body) is answered with a RST by the censor. The 16 KiB page
        needs more than TCP's initial window, so the body can never complete. The sites' nginx
        is restarted with 4 KiB TLS records (``ssl_buffer_size 4k``, as CDNs tune it): with
        nginx's default 16 KiB records the response headers would share one record with the whole
        body and the cut would fall before the status line could be read."""
        for key in sites:
            self.lab.stop_site(key)
            self.lab.start_site(key, extra="        ssl_buffer_size 4k;\n")
        for ip in self._ips(sites, ips):
            self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-d", ip, "-p", "tcp",
                      "-m", "connbytes", "--connbytes", f"{after}:", "--connbytes-dir", "reply",
                      "--connbytes-mode", "bytes", "-j", "REJECT", "--reject-with", "tcp-reset")

    def sni_throttle(self, patterns=(), rate: str = "64kbit") -> None:
        """Throttle only the TLS flows whose ClientHello names a pattern: the ClientHello is
        string-matched and its connection marked (CONNMARK); the server's packets of marked
        connections are put in a tc htb class (iptables CLASSIFY) that shapes them on the censor's
        vantage-facing interface. Other SNIs to the same IP, and plain HTTP, are not shaped."""
        dev = self.lab.if_cv
        for p in patterns:
            self._ipt("-A", "FORWARD", "-i", dev, "-p", "tcp", "--dport", "443", "-m", "string", "--algo", "bm",
                      "--string", p, "-j", "CONNMARK", "--set-mark", "0x20", table="mangle")
        # htb puts a packet whose priority names one of its classes straight into it (CLASSIFY); no tc
        # filter is needed (this kernel has neither cls_fw nor u32's mark match)
        self._ipt("-A", "POSTROUTING", "-o", dev, "-m", "connmark", "--mark", "0x20",
                  "-j", "CLASSIFY", "--set-class", "1:20", table="mangle")
        tc = lambda *a: self.lab.sh("censor", "tc", *a)
        tc("qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10", "r2q", "100000")
        tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
        tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate,
           "burst", "4k", "cburst", "4k", "quantum", "1514")

    def foreign_blockpage(self, sites=(), ips=(), page: str = T.FOREIGN_BLOCKPAGE) -> None:
        """Another country's ISP blockpage: tcp/80 to the IPs is DNATed to a server on the censor
        that answers every request with ``page`` (200), read from Citizen Lab's collection in
        ../shared when the action runs (never copied into the repository)."""
        src = T.blockpage_file(page)
        if not src.is_file():
            raise T.LabError(f"blockpage not found: {src} (set REACHPROBE_SHARED)")
        d = self.lab.workdir / "www" / "foreign-blockpage"
        d.mkdir(parents=True, exist_ok=True)
        (d / "index.html").write_bytes(src.read_bytes())
        self.lab.start_nginx("foreign-blockpage", "censor", f"""    server {{
        listen {T.FOREIGN_BLOCKPAGE_IP}:80 default_server;
        server_name _;
        root {d};
        location / {{ try_files /index.html =404; }}
    }}""", [f"tcp:{T.FOREIGN_BLOCKPAGE_IP}:80"])
        for ip in self._ips(sites, ips):
            self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-p", "tcp", "-d", ip, "--dport", "80",
                      "-j", "DNAT", "--to-destination", f"{T.FOREIGN_BLOCKPAGE_IP}:80", table="nat")

    # -- bandwidth and loss ----------------------------------------------------------------------------
    def throttle(self, sites=(), ips=(), rate: str = "256kbit") -> None:
        """Shape the traffic from the IPs towards the vantage to ``rate`` (tc htb + u32 filter)."""
        dev = self.lab.if_cv
        tc = lambda *a: self.lab.sh("censor", "tc", *a)
        tc("qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10", "r2q", "100000")
        tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
        tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", rate, "ceil", rate,
           "burst", "4k", "cburst", "4k", "quantum", "1514")
        for ip in self._ips(sites, ips):
            tc("filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
               "match", "ip", "src", f"{ip}/32", "flowid", "1:20")

    def pages(self, size: int = T.BIG_PAGE_BYTES) -> None:
        """Not censorship: every site serves a page of ``size`` bytes (bandwidth scenarios)."""
        self.lab.write_pages(size)

    def loss(self, probability: float = 0.3) -> None:
        """Drop packets at random in both directions on the vantage link (no censorship)."""
        p = str(probability)
        self._ipt("-A", "PREROUTING", "-i", self.lab.if_cv, "-m", "statistic", "--mode", "random",
                  "--probability", p, "-j", "DROP", table="mangle")
        self._ipt("-A", "POSTROUTING", "-o", self.lab.if_cv, "-m", "statistic", "--mode", "random",
                  "--probability", p, "-j", "DROP", table="mangle")

    # -- outages (not censorship) ----------------------------------------------------------------------
    def vantage_link_down(self) -> None:
        """The vantage's uplink dies: the censor-side end of the vantage link goes down (the vantage
        keeps its interface and routes, its packets go nowhere)."""
        self.lab.sh("censor", "ip", "link", "set", self.lab.if_cv, "down")

    def vantage_link_up(self) -> None:
        self.lab.sh("censor", "ip", "link", "set", self.lab.if_cv, "up")

    def intl_shutdown(self) -> None:
        """International shutdown: nothing crosses to the internet side except DNS to the national
        resolver; domestic servers (on the censor side) stay reachable."""
        self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-o", self.lab.if_ci, "-d", T.RESOLVER_IP,
                  "-p", "udp", "--dport", "53", "-j", "ACCEPT")
        self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-o", self.lab.if_ci, "-d", T.RESOLVER_IP,
                  "-p", "tcp", "--dport", "53", "-j", "ACCEPT")
        self._ipt("-A", "FORWARD", "-i", self.lab.if_cv, "-o", self.lab.if_ci, "-j", "DROP")

    def resolver_down(self) -> None:
        """The vantage's resolver stops (dnsmasq killed)."""
        self.lab.stop_resolver()

    def resolver_up(self) -> None:
        self.lab.start_resolver()

    def site_down(self, sites=()) -> None:
        """The sites' web servers stop (their IPs answer with RST: nothing listens)."""
        for key in sites:
            self.lab.stop_site(key)

    def site_up(self, sites=()) -> None:
        for key in sites:
            self.lab.start_site(key)

    def host_dead(self, sites=(), ips=()) -> None:
        """The sites' host vanishes (no censorship): every packet to its IPs is dropped on the
        internet side (nft set ``wan @dead`` in the internet namespace), so connects time out for
        the vantage and for the outside control alike."""
        self.lab.host_dead(self._ips(sites, ips))

    def site_crash(self, sites=(), after: int = 4096) -> None:
        """The sites' server answers 200 and dies after ``after`` body bytes: a RST from the server
        itself (helpers/bad_server.py in place of nginx, valid certificate)."""
        for key in sites:
            self.lab.replace_site(key, self._bad_server(key, "--mode", "crash", "--crash-after", str(after)))

    def site_trickle(self, sites=(), chunk: int = 1024, interval: float = 0.1) -> None:
        """The sites' server is slow by itself: it sends the page ``chunk`` bytes every ``interval``
        seconds (helpers/bad_server.py in place of nginx); the network is not shaped."""
        for key in sites:
            self.lab.replace_site(key, self._bad_server(key, "--mode", "trickle", "--chunk", str(chunk),
                                                        "--interval", str(interval)))

    def site_reset(self, sites=()) -> None:
        """The sites' own server resets every connection at its first data segment (no censor):
        helpers/bad_server.py --mode reset in place of nginx; the RSTs are the host's own (TTL 55)."""
        for key in sites:
            self.lab.replace_site(key, self._bad_server(key, "--mode", "reset"))

    def _bad_server(self, key: str, *mode: str) -> list[str]:
        lab = self.lab
        return lab.python_helper("bad_server.py") + [
            *(a for ip in T.SITE_BY_KEY[key].ips for a in ("--ip", ip)),
            "--page", str(lab.workdir / "www" / key / "index.html"),
            "--cert", str(lab.ca_dir / "server.pem"), "--key", str(lab.ca_dir / "server.key"), *mode]

    def site_cert(self, sites=(), cert: str = "selfsigned") -> None:
        """The sites' own server presents another certificate of the PKI directory (``selfsigned``:
        a self-signed certificate for facebook's names): the site misconfigured, no censor."""
        for key in sites:
            self.lab.stop_site(key)
            self.lab.start_site(key, cert=cert)

    def site_redirect(self, sites=(), to: str = "https://www.facebook.lab/") -> None:
        """The sites answer every request with a 302 to ``to`` (site A sending its visitors to B)."""
        for key in sites:
            self.lab.stop_site(key)
            self.lab.start_site(key, locations=f"location / {{ return 302 {to}; }}")

    def site_forbidden(self, sites=()) -> None:
        """The sites' own server answers 403 with its own "Access denied" page (no censor)."""
        for key in sites:
            d = self.lab.workdir / "www" / key
            (d / "denied.html").write_text(
                f"<!doctype html><html><head><title>Access denied | {T.PAGE_MARKER} {key}</title></head>"
                f"<body><h1>Access denied</h1><p>You don't have permission to access this page on "
                f"{key}. Reference #{key}-lab-403</p></body></html>\n")
            self.lab.stop_site(key)
            self.lab.start_site(key, locations="error_page 403 /denied.html;\n"
                                               "        location = /denied.html { internal; }\n"
                                               "        location / { return 403; }")

    def name_silent(self, sites=(), names=()) -> None:
        """The names' authoritative server falls silent (no censorship): the real resolver forwards
        them to a server that never answers, so lookups time out on the internet side too."""
        self.lab.silence_names(self._names(sites, names))

    def name_gone(self, sites=(), names=()) -> None:
        """The names disappear from the real resolver (real NXDOMAIN on the internet side)."""
        self.lab.remove_names(self._names(sites, names))
