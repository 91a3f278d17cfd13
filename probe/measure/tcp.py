"""TCP connect to ip:port."""

from __future__ import annotations

import asyncio
import time

from probe.measure.step import recording, since
from probe.records import TCPAttempt


async def connect(ip: str, port: int, *, timeout: float, attempt: int, t_origin: float,
                  hostname: str | None = None) -> TCPAttempt:
    started = time.monotonic()
    rec = TCPAttempt(attempt=attempt, ip=ip, port=port, t0=since(t_origin, started),
                     duration_ms=0.0, failure=None, hostname=hostname)
    with recording(rec, started):
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(ip, port)
        writer.close()
    return rec
