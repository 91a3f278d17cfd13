"""Per-client rate limiting for the helper: a token bucket per client, in memory only.

Clients are keyed by a keyed hash of their address (a random key per process), so not even the
helper's memory holds a table of who asked; nothing of it is ever written or logged.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """'5/s', '120/m', '1000/h' -> requests per second. ValueError on anything else."""
    m = _RATE.match(text)
    if not m:
        raise ValueError(f"rate {text!r}: expected N/s, N/m or N/h")
    rate = float(m.group(1)) / _PER[m.group(2).lower()]
    if rate <= 0:
        raise ValueError(f"rate {text!r}: must be positive")
    return rate


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``allow(client)`` takes one token from the client's bucket (``rate`` per second, at most
    ``burst`` saved up). The table is bounded: idle clients, whose buckets are full again, are
    dropped when it grows past ``max_clients``, and if all are busy the oldest go."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = 100_000, clock=time.monotonic):
        self.rate = rate
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self.clock = clock
        self._key = os.urandom(16)
        self._buckets: dict[bytes, _Bucket] = {}

    def _id(self, client: str) -> bytes:
        return hashlib.blake2b(client.encode(), key=self._key, digest_size=16).digest()

    def allow(self, client: str) -> bool:
        now = self.clock()
        key = self._id(client)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_clients:  # dicts keep insertion order: oldest first
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)
