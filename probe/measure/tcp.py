"""TCP connect to ip:port."""

from __future__ import annotations

import asyncio
import time

from probe.failures import classify_exception, detail
from probe.records import TCPAttempt


async def connect(ip: str, port: int, *, timeout: float, attempt: int, t_origin: float,
                  hostname: str | None = None) -> TCPAttempt:
    started = time.monotonic()
    rec = TCPAttempt(attempt=attempt, ip=ip, port=port, t0=round(started - t_origin, 6),
                     duration_ms=0.0, failure=None, hostname=hostname)
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(ip, port)
    except Exception as exc:
        rec.failure = classify_exception(exc)
        rec.error_detail = detail(exc)
    finally:
        rec.duration_ms = round((time.monotonic() - started) * 1000, 3)
        if writer is not None:
            writer.close()
    return rec
