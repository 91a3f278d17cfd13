"""DNS injection check: send ONE query and collect EVERY response that arrives within a window.

An on-path injector races the real resolver: its forged answer arrives first, the real one later.
An ordinary stub resolver keeps the first and drops the rest, so the forgery is invisible; this check
keeps listening. Two or more different answers, or an answer from an address other than the resolver
asked, is injection evidence (read by ``probe.verdict.injection_evidence``).

    rec = await dns_injection_check("www.facebook.com", "10.0.0.53", window_s=2.0, t_origin=t0)

Two ways to listen, chosen by ``mode`` ("auto" picks the first that can run):

* ``raw`` (needs CAP_NET_RAW): the query is sent with scapy and every matching UDP datagram is sniffed
  on the outgoing interface: source, IP TTL, IP ID, answers, rcode, delay. A plain UDP socket is bound
  to the source port during the window so the kernel does not answer late responses with ICMP.
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
import threading
import time
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

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
    """"1.2.3.4", "1.2.3.4:5353", "[::1]:53", "::1", or "system" (first nameserver of resolv.conf)."""
    r = resolver.strip()
    if r == "system":
        import dns.resolver

        ns = dns.resolver.Resolver(configure=True).nameservers  # reads resolv.conf; no traffic
        if not ns:
            raise ValueError("no nameserver in the system configuration")
        return str(ns[0]), 53
    if r.startswith("["):
        host, _, rest = r[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if r.count(":") == 1:
        host, port = r.split(":")
        return host, int(port)
    return r, 53


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
    return {"answers": answers, "cnames": cnames, "rcode": dns.rcode.to_text(msg.rcode()),
            "aa": bool(msg.flags & dns.flags.AA), "authority": len(msg.authority)}


async def dns_injection_check(name: str, resolver: str, *, window_s: float = 2.0, attempt: int = 1,
                              t_origin: float, qtype: str = "A", mode: str = "auto",
                              max_responses: int = 16) -> InjectAttempt:
    start = time.monotonic()
    rec = InjectAttempt(attempt=attempt, query=name, resolver=resolver, t0=round(start - t_origin, 6),
                        duration_ms=0.0, failure=None)
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
                responses = await asyncio.to_thread(_raw_collect, ip, port, query, window_s, max_responses)
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
    rec.duration_ms = round((time.monotonic() - start) * 1000, 3)
    if responses is None:
        rec.skipped = "; ".join(reasons) or "no listener could run"
        return rec
    for r in responses:
        r["via"] = used
    rec.responses = responses
    if not responses:
        rec.failure = "generic_timeout_error"
    if reasons:
        rec.error_detail = "; ".join(reasons)
    return rec


# --- unprivileged listener ---------------------------------------------------------------------
async def _udp_collect(ip: str, port: int, query: dns.message.Message, window_s: float,
                       max_responses: int) -> list[dict[str, Any]]:
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
                for level, typ, cdata in anc:
                    if typ == ttl_opt_recv and len(cdata) >= 1:
                        ttl = struct.unpack("i", cdata[:4])[0] if len(cdata) >= 4 else cdata[0]
                parsed.update(src=addr[0], sport=addr[1], ttl=ttl, ip_id=None,
                              delay_ms=round((time.monotonic() - t_send) * 1000, 3))
                out.append(parsed)
            done.set()

        ttl_opt_recv = _ttl_cmsg_type(fam)
        loop.add_reader(sock.fileno(), on_readable)
        try:
            await loop.sock_sendto(sock, wire, (ip, port))
            try:
                await asyncio.wait_for(done.wait(), timeout=window_s)
            except asyncio.TimeoutError:
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


# --- raw listener (scapy) ----------------------------------------------------------------------
def _raw_unavailable() -> str | None:
    if not has_cap_net_raw():
        return "no CAP_NET_RAW (not root): raw capture unavailable"
    import logging

    # scapy's routing/interface warnings ("No route found ...") must never reach a --quiet run.
    for name in ("scapy", "scapy.runtime", "scapy.loading"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import scapy.all  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"scapy unavailable: {e}"
    return None


def _raw_collect(ip: str, port: int, query: dns.message.Message, window_s: float,
                 max_responses: int) -> list[dict[str, Any]]:
    """Blocking (run in a thread): send the query with scapy, sniff every response for the window."""
    from scapy.all import IP, UDP, AsyncSniffer, IPv6, Raw, conf  # type: ignore[attr-defined]
    from scapy.supersocket import L3RawSocket

    fam = _family(ip)
    loopback = ip.startswith("127.") or ip == "::1"
    # The source port is held by an ordinary socket so the kernel stays quiet about late responses.
    holder = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        holder.bind(("::", 0) if fam == socket.AF_INET6 else ("0.0.0.0", 0))
        sport = holder.getsockname()[1]
        if loopback:
            iface = conf.loopback_name
        else:
            route = conf.route6.route(ip) if fam == socket.AF_INET6 else conf.route.route(ip)
            iface = route[0]
        wire = query.to_wire()
        ipl = IPv6(dst=ip) if fam == socket.AF_INET6 else IP(dst=ip)
        pkt = ipl / UDP(sport=sport, dport=port) / Raw(load=wire)
        started = threading.Event()

        def match(p) -> bool:
            return UDP in p and p[UDP].sport == port and p[UDP].dport == sport

        sniffer = AsyncSniffer(iface=iface, lfilter=match, store=True, started_callback=started.set,
                               count=max_responses)
        sniffer.start()
        if not started.wait(2.0):
            sniffer.stop()
            raise RuntimeError(f"sniffer on {iface} did not start")
        t_send = time.monotonic()
        if loopback or fam == socket.AF_INET6:
            s = L3RawSocket(iface=iface) if not fam == socket.AF_INET6 else conf.L3socket6(iface=iface)
            try:
                s.send(pkt)
            finally:
                s.close()
        else:
            s = conf.L3socket(iface=iface)
            try:
                s.send(pkt)
            finally:
                s.close()
        sniffer.join(timeout=window_s)
        pkts = sniffer.stop() if sniffer.running else sniffer.results
    finally:
        holder.close()
    out: list[dict[str, Any]] = []
    seen: dict[tuple, float] = {}
    for p in pkts or []:
        payload = bytes(p[UDP].payload)
        parsed = _parse_response(payload, query)
        if parsed is None:
            continue
        if IP in p:
            src, ttl, ip_id = p[IP].src, p[IP].ttl, p[IP].id
        else:
            src, ttl, ip_id = p[IPv6].src, p[IPv6].hlim, None
        # On the loopback interface a packet is captured twice (out and in): the same datagram
        # seen again within a few milliseconds is one response, not two.
        key = (src, ttl, ip_id, payload)
        if key in seen and abs(float(p.time) - seen[key]) < 0.005:
            continue
        seen[key] = float(p.time)
        parsed.update(src=src, sport=int(p[UDP].sport), ttl=int(ttl), ip_id=ip_id,
                      delay_ms=round((float(p.time) - t_send_wall(t_send)) * 1000, 3))
        out.append(parsed)
    return out[:max_responses]


def t_send_wall(t_send_monotonic: float) -> float:
    """Convert a monotonic send time to wall-clock seconds (scapy timestamps packets in wall time)."""
    return time.time() - (time.monotonic() - t_send_monotonic)
