"""TCP connect to ip:port."""

from __future__ import annotations

import asyncio
import socket
import time

from probe.measure import packets
from probe.measure.step import recording, since
from probe.records import TCPAttempt


async def connect(
    ip: str, port: int, *, timeout: float, attempt: int, t_origin: float, hostname: str | None = None
) -> TCPAttempt:
    started = time.monotonic()
    rec = TCPAttempt(
        attempt=attempt, ip=ip, port=port, t0=since(t_origin, started), duration_ms=0.0, failure=None, hostname=hostname
    )
    writer = None
    sock = None
    with recording(rec, started):
        try:
            async with asyncio.timeout(timeout):
                if packets.active():
                    # Bound before the SYN so the packet capture knows the local port even when the SYN
                    # itself is answered with a RST (the connection then never gets a name of its own).
                    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
                    sock = socket.socket(fam, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    sock.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
                    packets.note((ip, port), sock.getsockname(), rec)
                    await asyncio.get_running_loop().sock_connect(sock, (ip, port))
                else:
                    _, writer = await asyncio.open_connection(ip, port)
        finally:
            if writer is not None:
                writer.close()
            if sock is not None:
                sock.close()
    return rec
