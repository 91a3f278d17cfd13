"""DNS injection check: send ONE query and collect EVERY response that arrives within a window.

An on-path injector races the real resolver: its forged answer arrives first, the real one later.
An ordinary stub resolver keeps the first and drops the rest, so the forgery is invisible; this check
keeps listening. Two or more different answers, or an answer from an address other than the resolver
asked, is injection evidence (read by ``probe.verdict.injection_evidence``).

    rec = await dns_injection_check("www.facebook.com", "10.0.0.53", window_s=2.0, t_origin=t0)

Two ways to listen, chosen by ``mode`` ("auto" picks the first that can run):

* ``raw`` (needs CAP_NET_RAW): the query is sent from an ordinary UDP socket and every matching UDP
  datagram is read from a raw socket: source, IP TTL, IP ID (IPv4), answers, rcode, delay. The UDP
  socket stays bound to the source port during the window so the kernel does not answer late
  responses with ICMP.
* ``udp`` (no privilege): an unconnected UDP socket (a connected one would drop datagrams from other
  sources) on the asyncio loop, receiving with ``recvmsg`` for the whole window; the IP TTL comes
  from ``IP_RECVTTL`` / ``IPV6_RECVHOPLIMIT`` ancillary data, the IP ID is not available.

When neither can run the record has ``skipped`` set to the reason. The check is bounded: one query,
``window_s`` seconds, at most ``max_responses`` responses kept. ``t_origin`` is the
``time.monotonic()`` value the target's measurement started at (``t0`` is relative to it).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import time
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from probe.failures import GENERIC_TIMEOUT
from probe.measure.dns import ResolverSpec
from probe.measure.step import elapsed_ms, since
from probe.records import InjectAttempt

CAP_NET_RAW = 13


def has_cap_net_raw() -> bool:
    """Whether this process may open raw sockets (CAP_NET_RAW in the effective set)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << CAP_NET_RAW))
    except OSError:
        pass
    return hasattr(os, "geteuid") and os.geteuid() == 0


def parse_resolver(resolver: str) -> tuple[str, int]:
    """(address, port) of the server a resolver spec names ("system": the first nameserver of
    resolv.conf). Raises ValueError for anything that is not an address."""
    servers = ResolverSpec.parse(resolver).servers
    if not servers:
        raise ValueError("no nameserver in the system configuration")
    return servers[0]


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _parse_response(wire: bytes, query: dns.message.Message) -> dict[str, Any] | None:
    try:
        msg = dns.message.from_wire(wire, ignore_trailing=True)
    except Exception:  # noqa: BLE001 - garbage on the port is not a response
        return None
    if msg.id != query.id or not (msg.flags & dns.flags.QR):
        return None
    if msg.question and query.question and msg.question[0].name != query.question[0].name:
        return None
    answers: list[str] = []
    cnames: list[str] = []
    for rrset in msg.answer:
        for rd in rrset:
            if rd.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                answers.append(rd.address)
            elif rd.rdtype == dns.rdatatype.CNAME:
                cnames.append(str(rd.target))
    return {
        "answers": answers,
        "cnames": cnames,
        "rcode": dns.rcode.to_text(msg.rcode()),
        "aa": bool(msg.flags & dns.flags.AA),
        "authority": len(msg.authority),
    }


async def dns_injection_check(
    name: str,
    resolver: str,
    *,
    window_s: float = 2.0,
    attempt: int = 1,
    t_origin: float,
    qtype: str = "A",
    mode: str = "auto",
    max_responses: int = 16,
) -> InjectAttempt:
    start = time.monotonic()
    rec = InjectAttempt(
        attempt=attempt, query=name, resolver=resolver, t0=since(t_origin, start), duration_ms=0.0, failure=None
    )
    window_s = max(0.05, min(float(window_s), 10.0))
    try:
        ip, port = parse_resolver(resolver)
        socket.inet_pton(_family(ip), ip)
    except (ValueError, OSError) as e:
        rec.skipped = f"resolver {resolver!r} is not an address this check can query: {e}"
        return rec
    query = dns.message.make_query(name, qtype)
    query.id = random.randrange(1, 65535)

    modes = ["raw", "udp"] if mode == "auto" else [mode]
    reasons: list[str] = []
    responses: list[dict[str, Any]] | None = None
    used = None
    for m in modes:
        if m == "raw":
            why = _raw_unavailable()
            if why:
                reasons.append(why)
                continue
            try:
                responses = await _raw_collect(ip, port, query, window_s, max_responses)
                used = "raw"
                break
            except Exception as e:  # noqa: BLE001 - fall back to the unprivileged listener
                reasons.append(f"raw capture failed: {type(e).__name__}: {e}")
                continue
        elif m == "udp":
            try:
                responses = await _udp_collect(ip, port, query, window_s, max_responses)
                used = "udp"
                break
            except OSError as e:
                reasons.append(f"UDP socket unavailable: {e}")
        else:
            reasons.append(f"unknown mode {m!r}")
    rec.duration_ms = elapsed_ms(start)
    if responses is None:
        rec.skipped = "; ".join(reasons) or "no listener could run"
        return rec
    for r in responses:
        r["via"] = used
    rec.responses = responses
    if not responses:
        rec.failure = GENERIC_TIMEOUT
    if reasons:
        rec.error_detail = "; ".join(reasons)
    return rec


# --- unprivileged listener ---------------------------------------------------------------------
async def _udp_collect(
    ip: str, port: int, query: dns.message.Message, window_s: float, max_responses: int
) -> list[dict[str, Any]]:
    fam = _family(ip)
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    out: list[dict[str, Any]] = []
    done = asyncio.Event()
    try:
        sock.bind(("::", 0) if fam == socket.AF_INET6 else ("0.0.0.0", 0))
        ttl_level, ttl_opt = _ttl_sockopt(fam)
        if ttl_opt is not None:
            try:
                sock.setsockopt(ttl_level, ttl_opt, 1)
            except OSError:
                ttl_opt = None
        wire = query.to_wire()
        t_send = time.monotonic()

        def on_readable() -> None:
            while len(out) < max_responses:
                try:
                    data, anc, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(4))
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return  # e.g. ICMP port unreachable surfaced as ECONNREFUSED
                parsed = _parse_response(data, query)
                if parsed is None:
                    continue
                ttl = None
                for _level, typ, cdata in anc:
                    if typ == ttl_opt_recv and len(cdata) >= 1:
                        ttl = struct.unpack("i", cdata[:4])[0] if len(cdata) >= 4 else cdata[0]
                parsed.update(
                    src=addr[0],
                    sport=addr[1],
                    ttl=ttl,
                    ip_id=None,
                    delay_ms=round((time.monotonic() - t_send) * 1000, 3),
                )
                out.append(parsed)
            done.set()

        ttl_opt_recv = _ttl_cmsg_type(fam)
        loop.add_reader(sock.fileno(), on_readable)
        try:
            await loop.sock_sendto(sock, wire, (ip, port))
            try:
                await asyncio.wait_for(done.wait(), timeout=window_s)
            except TimeoutError:
                pass
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        sock.close()
    return out


def _ttl_sockopt(fam: socket.AddressFamily) -> tuple[int, int | None]:
    if fam == socket.AF_INET6:
        return socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVHOPLIMIT", None)
    # Python does not export IP_RECVTTL; 12 is its value on Linux.
    return socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12 if os.uname().sysname == "Linux" else None)


def _ttl_cmsg_type(fam: socket.AddressFamily) -> int | None:
    if fam == socket.AF_INET6:
        return getattr(socket, "IPV6_HOPLIMIT", None)
    return getattr(socket, "IP_TTL", None)


# --- raw listener -------------------------------------------------------------------------------
# A raw IPPROTO_UDP socket is handed only UDP datagrams by the kernel, each with its IPv4 header (TTL,
# ID), so the check costs a few microseconds per UDP packet on the host. An earlier version sniffed the
# interface with scapy and dissected every packet in Python (all the TCP and TLS traffic of the other
# targets too), in a thread per check: on a 2-core machine that stole hundreds of milliseconds from the
# event loop and inflated every other target's timings.
def _raw_unavailable() -> str | None:
    if not has_cap_net_raw():
        return "no CAP_NET_RAW (not root): raw capture unavailable"
    return None


def _ipv4_datagram(packet: bytes) -> tuple[str, int, int, int, int, bytes] | None:
    """(src, ttl, ip_id, sport, dport, payload) of an IPv4/UDP packet, or None if it is not one."""
    if len(packet) < 28 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or len(packet) < ihl + 8 or packet[9] != socket.IPPROTO_UDP:
        return None
    ip_id = struct.unpack_from("!H", packet, 4)[0]
    sport, dport = struct.unpack_from("!HH", packet, ihl)
    return socket.inet_ntoa(packet[12:16]), packet[8], ip_id, sport, dport, packet[ihl + 8 :]


# The kernel hands a raw IPPROTO_UDP socket *every* UDP datagram on the host, and at concurrency 64
# every datagram woke 64 listeners, each parsing and dropping it in Python: about 2-3 CPU ms per
# target in benchmarks/bench_probe.py --inject, under 1 ms with the filter. A classic BPF filter (the same test the reader makes:
# from the resolver's port to our query's port) lets the kernel drop the rest before any wake-up.
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)


def _ipv4_port_filter(sport: int, dport: int) -> bytes:
    """struct sock_filter[] accepting IPv4/UDP packets from ``sport`` to ``dport`` (the raw socket's
    packets start at the IP header; X = IP header length)."""
    prog = [
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)
        (0x48, 0, 0, 0),  # ldh [x+0]      UDP source port
        (0x15, 0, 3, sport),  # jeq #sport, else drop
        (0x48, 0, 0, 2),  # ldh [x+2]      UDP destination port
        (0x15, 0, 1, dport),  # jeq #dport, else drop
        (0x06, 0, 0, 0xFFFF),  # ret #65535 (accept)
        (0x06, 0, 0, 0),  # ret #0 (drop)
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


def _attach_port_filter(raw: socket.socket, sport: int, dport: int) -> bool:
    """Best effort: without the filter the reader still drops what is not ours, only at a higher cost."""
    try:
        import ctypes

        insns = _ipv4_port_filter(sport, dport)
        buf = ctypes.create_string_buffer(insns, len(insns))
        fprog = struct.pack("HL", len(insns) // 8, ctypes.addressof(buf))  # struct sock_fprog
        raw.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        return True
    except (OSError, ImportError, struct.error):
        return False


async def _raw_collect(
    ip: str, port: int, query: dns.message.Message, window_s: float, max_responses: int
) -> list[dict[str, Any]]:
    """Send the query from an ordinary UDP socket (which also keeps the kernel from answering late
    responses with ICMP) and read every response from a raw socket for the window."""
    fam = _family(ip)
    raw = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_UDP)
    holder = socket.socket(fam, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    out: list[dict[str, Any]] = []
    done = asyncio.Event()
    try:
        raw.setblocking(False)
        holder.setblocking(False)
        hop_opt = None
        if fam == socket.AF_INET6:
            # An IPv6 raw socket delivers no IP header: the hop limit comes as ancillary data.
            hop_opt = getattr(socket, "IPV6_RECVHOPLIMIT", None)
            if hop_opt is not None:
                raw.setsockopt(socket.IPPROTO_IPV6, hop_opt, 1)
        holder.bind(("::", 0) if fam == socket.AF_INET6 else ("0.0.0.0", 0))
        sport = holder.getsockname()[1]
        if fam == socket.AF_INET:
            _attach_port_filter(raw, port, sport)
        t_send = time.monotonic()
        seen: set[tuple] = set()

        def on_readable() -> None:
            while len(out) < max_responses:
                try:
                    data, anc, _flags, addr = raw.recvmsg(65535, socket.CMSG_SPACE(4))
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                ttl: int | None
                if fam == socket.AF_INET:
                    d = _ipv4_datagram(data)
                    if d is None:
                        continue
                    src, ttl, ip_id, p_s, p_d, payload = d
                else:
                    if len(data) < 8:
                        continue
                    p_s, p_d = struct.unpack_from("!HH", data, 0)
                    src, ip_id, payload = addr[0], None, data[8:]
                    ttl = next(
                        (
                            struct.unpack("i", c[:4])[0]
                            for _l, t, c in anc
                            if t == getattr(socket, "IPV6_HOPLIMIT", -1) and len(c) >= 4
                        ),
                        None,
                    )
                if p_s != port or p_d != sport:
                    continue
                parsed = _parse_response(payload, query)
                if parsed is None:
                    continue
                key = (src, ttl, ip_id, payload)
                if key in seen:
                    continue  # the same datagram delivered twice (e.g. on loopback) is one response
                seen.add(key)
                parsed.update(
                    src=src, sport=p_s, ttl=ttl, ip_id=ip_id, delay_ms=round((time.monotonic() - t_send) * 1000, 3)
                )
                out.append(parsed)
            done.set()

        loop.add_reader(raw.fileno(), on_readable)
        try:
            await loop.sock_sendto(holder, query.to_wire(), (ip, port))
            try:
                await asyncio.wait_for(done.wait(), timeout=window_s)
            except TimeoutError:
                pass
        finally:
            loop.remove_reader(raw.fileno())
    finally:
        raw.close()
        holder.close()
    return out[:max_responses]
