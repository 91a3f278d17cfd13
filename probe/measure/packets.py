"""TCP packet evidence: the IP TTL and IP ID of the server's SYN-ACK, FIN and of every RST.

A censor that resets a connection forges the RST from where it sits, usually a few hops from the
vantage, while the server is many hops away: the forged RST arrives with a different IP TTL than the
server's own packets on the same connection (and often an IP ID pattern of its own). Nothing about
this needs an outside control.

One capture runs per run (not per connection), started by the runner and shared through a context
variable; the measurement code registers each connection's 4-tuple with the attempt it belongs to:

    cap = PacketCapture()
    cap.start()                       # None, or the reason it cannot run (then attempts say "skipped")
    with activate(cap):
        ... tcp.connect / tls.handshake / http.fetch register their connections ...
    cap.stop_and_fill()               # fills rec.packets and rec.rst_ttl_mismatch on every attempt

The capture is a scapy ``AsyncSniffer`` over one ``AF_PACKET`` socket per interface (CAP_NET_RAW
needed), each with a classic BPF program that passes only received TCP segments carrying SYN, FIN or
RST: two or three frames per connection reach Python, never the bodies, and they are parsed with
``struct`` rather than dissected into scapy layers. Packets are kept by (server address, server
port, local port) and only looked at when the run ends. Interfaces without an Ethernet-style header
(tun, WireGuard) are not understood by the filter and are effectively not captured.

``rec.packets`` (on TCP, TLS and HTTP attempts)::

    {"synack_ttl": 52, "server_ttls": [52], "server_ip_ids": [0],
     "rst": [{"ttl": 63, "ip_id": 4242, "flags": "RA", "after_bytes": 517, "hops": 1, "ttl_delta": 11}],
     "reference": "connection", "connections": 1}
    {"skipped": "no CAP_NET_RAW (not root): packet capture unavailable"}

``after_bytes`` is the RST's sequence number minus the server's initial one: how many bytes the
server side had sent before it (None without a SYN-ACK). ``hops`` is the distance the TTL implies
(the nearest initial TTL of 32, 64, 128 or 255 above it, minus it). ``ttl_delta`` is the RST's TTL
minus the closest reference TTL (present when there is a reference).

``rec.rst_ttl_mismatch``:

* ``None``: no capture, no RST from the server's address on the attempt's connections, or no
  reference TTL to compare with;
* ``True``: some RST's TTL differs by 2 or more from every reference TTL;
* ``False``: every RST's TTL is within 1 of a reference TTL (routes may change by a hop).

The reference is the server's own SYN-ACK and FIN on the same connection (``"connection"``); for a
RST answering the SYN itself there is none, so the SYN-ACKs the same address sent on any other
connection of the run are used (``"address"``); with neither the mismatch stays None and only
``hops`` is recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import fcntl
import logging
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from probe.measure.inject import has_cap_net_raw

if TYPE_CHECKING:
    from scapy.sendrecv import AsyncSniffer

MISMATCH_TTL = 2  # a TTL this far from the server's is not the server's (1 hop of route change allowed)
MAX_KEYS = 200_000  # bound on connections remembered per run (about 100 bytes each)
_INITIAL_TTLS = (32, 64, 128, 255)

_CAPTURE: contextvars.ContextVar[PacketCapture | None] = contextvars.ContextVar("reachprobe_capture", default=None)
_ATTEMPT: contextvars.ContextVar[Any] = contextvars.ContextVar("reachprobe_attempt", default=None)

# Classic BPF: frames the kernel received (not ones this host sent: the server's packets always
# arrive, and on loopback each segment shows up once as sent and once as received), Ethernet-framed
# IPv4 (unfragmented) or IPv6 (no extension headers), TCP with SYN, FIN or RST set. Equivalent to
#   not outbound and ((ip and tcp and tcp[13] & 7 != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 7 != 0))
# written out so no libpcap is needed.
_BPF = (
    # (code, jt, jf, k); jt/jf count instructions skipped after this one
    (0x20, 0, 0, 0xFFFFF004),  # 0  ld #pkttype            (SKF_AD_OFF + SKF_AD_PKTTYPE)
    (0x15, 14, 0, 4),  # 1  jeq PACKET_OUTGOING ? 16 : 2
    (0x28, 0, 0, 12),  # 2  ldh [12]              ethertype
    (0x15, 0, 7, 0x0800),  # 3  jeq IPv4 ? 4 : 11
    (0x30, 0, 0, 23),  # 4  ldb [23]              IPv4 protocol
    (0x15, 0, 10, 6),  # 5  jeq TCP ? 6 : 16
    (0x28, 0, 0, 20),  # 6  ldh [20]              flags + fragment offset
    (0x45, 8, 0, 0x1FFF),  # 7  jset offset ? 16 : 8  (a later fragment has no TCP header)
    (0xB1, 0, 0, 14),  # 8  ldxb 4*([14]&0xf)     IPv4 header length
    (0x50, 0, 0, 27),  # 9  ldb [x+27]            TCP flags (14 + 13)
    (0x05, 0, 0, 4),  # 10 ja 15
    (0x15, 0, 4, 0x86DD),  # 11 jeq IPv6 ? 12 : 16
    (0x30, 0, 0, 20),  # 12 ldb [20]              IPv6 next header
    (0x15, 0, 2, 6),  # 13 jeq TCP ? 14 : 16
    (0x30, 0, 0, 67),  # 14 ldb [67]              TCP flags (14 + 40 + 13)
    (0x45, 1, 0, 0x07),  # 15 jset FIN|SYN|RST ? 17 : 16
    (0x06, 0, 0, 0),  # 16 ret 0                 drop
    (0x06, 0, 0, 256),  # 17 ret 256               headers only
)


SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SOL_PACKET, PACKET_STATISTICS = 263, 6
RCVBUF = 8 * 1024 * 1024


def attach_bpf(sock: socket.socket) -> None:
    prog = _BPF
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def quiet_scapy() -> None:
    """scapy logs routing and interface warnings ("No route found ...") on import and use; the probe
    must print nothing of its own accord (cron, --quiet)."""
    for name in ("scapy", "scapy.runtime", "scapy.loading", "scapy.interactive"):
        logging.getLogger(name).setLevel(logging.ERROR)


def capture_unavailable() -> str | None:
    if not has_cap_net_raw():
        return "no CAP_NET_RAW (not root): packet capture unavailable"
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET sockets on this system: packet capture unavailable"
    quiet_scapy()
    try:
        import scapy.all  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"scapy unavailable: {e}"
    return None


def hops_from_ttl(ttl: int) -> int:
    initial = next((i for i in _INITIAL_TTLS if ttl <= i), 255)
    return initial - ttl


def _flags_text(flags: int) -> str:
    return "".join(c for bit, c in ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "A")) if flags & bit)


class PacketCapture:
    """One sniffer for a whole run; attempts register their connections, packets are read at the end."""

    def __init__(self, interfaces: list[str] | None = None, *, bpf: bool = True):
        self.interfaces = interfaces
        self.bpf = bpf  # False only to measure what the kernel filter saves (benchmarks/bench_capture.py)
        self.skipped: str | None = None
        self.running = False
        self.packets_seen = 0
        self.drops = 0  # frames the kernel dropped because the capture queue was full
        # (server ip, server port, local port) -> list of (ttl, ip_id, flags, seq, ack)
        self._by_key: dict[tuple[str, int, int], list[tuple[int, int | None, int, int, int]]] = {}
        self._synack_ttls: dict[str, set[int]] = {}  # server ip -> SYN-ACK TTLs seen on any connection
        self._lock = threading.Lock()
        self._registered: list[tuple[Any, tuple[str, int, int]]] = []
        self._sniffer: AsyncSniffer | None = None
        self._sockets: list[Any] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> str | None:
        """Start sniffing; returns None, or the reason the capture cannot run (kept in ``skipped``)."""
        why = capture_unavailable()
        if why is None:
            try:
                self._start()
                self.running = True
            except Exception as e:  # noqa: BLE001 - recorded as the skip reason
                why = f"packet capture failed to start: {type(e).__name__}: {e}"
                self._close_sockets()
        self.skipped = why
        return why

    def _start(self) -> None:
        from scapy.all import AsyncSniffer, conf  # type: ignore[attr-defined]
        from scapy.arch.linux import L2ListenSocket

        names = self.interfaces or [n for _, n in socket.if_nameindex()]
        for name in names[:64]:
            try:
                s = L2ListenSocket(iface=name, promisc=False, nofilter=1)
            except OSError:
                continue  # an interface that vanished or cannot be opened: the others still count
            # Frames are handed over as bytes and parsed below: dissecting every frame into scapy
            # layers would cost several times more CPU than the rest of a target's measurement.
            s.LL = conf.raw_layer
            if self.bpf:
                attach_bpf(s.ins)
            # Room for bursts while the sniffer thread waits for the CPU (a full queue drops frames).
            with contextlib.suppress(OSError):
                s.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            # Frames queued before the filter was attached would pass unfiltered: drop them.
            s.ins.setblocking(False)
            with contextlib.suppress(OSError):
                while s.ins.recv(65535):
                    pass
            s.ins.setblocking(True)
            self._sockets.append(s)
        if not self._sockets:
            raise OSError("no interface could be opened")
        started = threading.Event()
        self._sniffer = AsyncSniffer(
            opened_socket=self._sockets, prn=self._on_packet, store=False, started_callback=started.set
        )
        self._sniffer.start()
        if not started.wait(5):
            raise RuntimeError("sniffer did not start")

    def _close_sockets(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(Exception):
                s.close()
        self._sockets = []

    def _pending(self) -> int:
        """Bytes of frames queued on the capture sockets and not yet read by the sniffer thread."""
        total = 0
        for s in self._sockets:
            try:
                total += struct.unpack("i", fcntl.ioctl(s.ins.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
            except OSError:
                pass
        return total

    def _count_drops(self) -> None:
        for s in self._sockets:
            try:
                _packets, drops = struct.unpack("II", s.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
                self.drops += drops  # reading the statistics resets them
            except OSError:
                pass

    def stop(self, drain_s: float = 2.0) -> None:
        if self._sniffer is not None:
            # The kernel hands a segment to the tap before TCP sees it, but on a loaded machine the
            # sniffer thread may not have read the last ones yet: wait (bounded) until every queue is
            # empty and the count of handled packets has stopped moving.
            deadline = time.monotonic() + drain_s
            last = -1
            while time.monotonic() < deadline:
                seen = self.packets_seen
                if self._pending() == 0 and seen == last:
                    break
                last = seen
                time.sleep(0.02)
            self._count_drops()
            with contextlib.suppress(Exception):
                self._sniffer.stop(join=True)
            self._sniffer = None
        self._close_sockets()
        self.running = False

    # -- the sniffer thread ------------------------------------------------------------------------
    def _on_packet(self, p) -> None:
        parsed = parse_frame(bytes(p))
        if parsed is None:
            return
        src, sport, dport, ttl, ip_id, flags, seq, ack = parsed
        if not flags & 0x07:
            return  # only reaches here without the kernel filter
        key = (src, sport, dport)
        entry = (ttl, ip_id, flags, seq, ack)
        with self._lock:
            self.packets_seen += 1
            lst = self._by_key.get(key)
            if lst is None:
                if len(self._by_key) >= MAX_KEYS:
                    return
                lst = self._by_key[key] = []
            if entry not in lst:  # a retransmission, or a frame seen on two interfaces
                lst.append(entry)
            if flags & 0x12 == 0x12:  # SYN-ACK
                self._synack_ttls.setdefault(src, set()).add(ttl)

    # -- attempts ----------------------------------------------------------------------------------
    def register(self, rec: Any, server: tuple[str, int], local_port: int) -> None:
        self._registered.append((rec, (_norm(server[0]), int(server[1]), int(local_port))))

    def stop_and_fill(self) -> None:
        """Stop the sniffer and write ``packets`` / ``rst_ttl_mismatch`` on every registered attempt."""
        self.stop()
        by_rec: dict[int, tuple[Any, list[tuple[str, int, int]]]] = {}
        for rec, key in self._registered:
            by_rec.setdefault(id(rec), (rec, []))[1].append(key)
        for rec, keys in by_rec.values():
            if self.skipped:
                rec.packets = {"skipped": self.skipped}
                continue
            rec.packets, rec.rst_ttl_mismatch = self.evidence(keys)

    def evidence(self, keys: list[tuple[str, int, int]]) -> tuple[dict[str, Any], bool | None]:
        server_ttls: list[int] = []
        server_ids: list[int] = []
        synack_ttl = None
        rsts: list[dict[str, Any]] = []
        for key in keys:
            pkts = self._by_key.get(key, [])
            isn = next((seq for _, _, fl, seq, _ in pkts if fl & 0x12 == 0x12), None)
            for ttl, ip_id, fl, seq, _ack in pkts:
                if fl & 0x04:
                    after = (seq - isn - 1) % (1 << 32) if isn is not None else None
                    rsts.append(
                        {
                            "ttl": ttl,
                            "ip_id": ip_id,
                            "flags": _flags_text(fl),
                            "after_bytes": after,
                            "hops": hops_from_ttl(ttl),
                        }
                    )
                    continue
                if fl & 0x12 == 0x12 and synack_ttl is None:
                    synack_ttl = ttl
                if ttl not in server_ttls:
                    server_ttls.append(ttl)
                if ip_id is not None and ip_id not in server_ids:
                    server_ids.append(ip_id)
        reference = "connection" if server_ttls else None
        refs = list(server_ttls)
        if not refs and rsts:
            refs = sorted({t for k in keys for t in self._synack_ttls.get(k[0], ())})
            reference = "address" if refs else None
        out: dict[str, Any] = {
            "synack_ttl": synack_ttl,
            "server_ttls": server_ttls,
            "server_ip_ids": server_ids[:8],
            "rst": rsts[:8],
            "reference": reference,
            "connections": len(keys),
        }
        if server_ttls:
            out["server_hops"] = hops_from_ttl(server_ttls[0])
        if self.drops:
            out["capture_drops"] = self.drops  # run-wide: a missing packet may be one of these
        if not rsts or not refs:
            return out, None
        for r in rsts:
            # signed distance to the closest reference: +1 is a RST from one hop nearer than the server
            r["ttl_delta"] = min((r["ttl"] - t for t in refs), key=abs)
        mismatch = any(abs(r["ttl_delta"]) >= MISMATCH_TTL for r in rsts)
        return out, mismatch


def parse_frame(frame: bytes) -> tuple[str, int, int, int, int | None, int, int, int] | None:
    """(src, sport, dport, ttl, ip_id, tcp flags, seq, ack) of an Ethernet-framed TCP segment."""
    if len(frame) < 14 + 20:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800:
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 6 or len(frame) < 14 + ihl + 20:
            return None
        ttl, ip_id = frame[22], int.from_bytes(frame[18:20], "big")
        src = socket.inet_ntop(socket.AF_INET, frame[26:30])
        t = 14 + ihl
    elif ethertype == 0x86DD:
        if frame[20] != 6 or len(frame) < 14 + 40 + 20:
            return None
        ttl, ip_id = frame[21], None
        src = socket.inet_ntop(socket.AF_INET6, frame[22:38])
        t = 54
    else:
        return None
    sport, dport, seq, ack = struct.unpack_from("!HHII", frame, t)
    return src, sport, dport, ttl, ip_id, frame[t + 13], seq, ack


def _norm(ip: str) -> str:
    try:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, ip)) if ":" in ip else ip
    except OSError:
        return ip


# -- hooks for the measurement code --------------------------------------------------------------
@contextlib.contextmanager
def activate(capture: PacketCapture | None) -> Iterator[None]:
    """Make ``capture`` the one attempts register with (tasks created inside inherit it)."""
    token = _CAPTURE.set(capture)
    try:
        yield
    finally:
        _CAPTURE.reset(token)


@contextlib.contextmanager
def attempt(rec: Any) -> Iterator[None]:
    """Connections opened inside belong to ``rec`` (a TCP, TLS or HTTP attempt)."""
    if _CAPTURE.get() is None:
        yield
        return
    token = _ATTEMPT.set(rec)
    try:
        yield
    finally:
        _ATTEMPT.reset(token)


def active() -> bool:
    """Whether a capture (running, or skipped with a reason to record) is collecting connections."""
    return _CAPTURE.get() is not None


def note(server: tuple[str, int] | None, local: tuple | None, rec: Any = None) -> None:
    """Register a connection (server address, local address) with the current or given attempt."""
    cap = _CAPTURE.get()
    rec = rec if rec is not None else _ATTEMPT.get()
    if cap is None or rec is None or not server or not local:
        return
    cap.register(rec, (server[0], server[1]), local[1])


def note_socket(sock: socket.socket | None, rec: Any = None) -> None:
    if sock is None or _CAPTURE.get() is None:
        return
    try:
        note(sock.getpeername(), sock.getsockname(), rec)
    except OSError:
        pass
