"""`reachprobe collector`: the ASGI app (Starlette on uvicorn) that receives bundles.

POST /v1/bundles  body: one bundle (probe.collect.bundle). Answers JSON ``{"id", "status", "lines"}``
                  (200 stored / duplicate) or ``{"error", "detail"}`` with 400 garbage, truncated or
                  inconsistent; 401 bad signature; 403 key not on the allow-list; 413 body or
                  decompressed size over the cap; 422 unsupported format or schema; 429 rate-limited
                  (Retry-After); 503 object store unavailable (Retry-After).
GET  /healthz     liveness.

The body is refused as soon as Content-Length, or the bytes streamed so far, pass the cap: a 1 GB body
costs the collector at most the cap in memory. Client addresses are never logged (uvicorn's access log
is off; our lines name the bundle id and a key prefix only).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from probe.collect.bundle import BundleError, verify
from probe.collect.store import Store, StoreUnavailable

log = logging.getLogger("reachprobe.collector")


@dataclass
class CollectorConfig:
    store: Store
    max_body: int = 16 * 1024 * 1024
    max_lines_bytes: int = 32 * 1024 * 1024
    rate: float = 2.0  # bundles per second per key, sustained
    burst: int = 20
    allowed_keys: frozenset[str] | None = None
    max_inflight: int = 8  # bundles verified and written at once; the rest wait (bounds memory and threads)


class RateLimiter:
    """A token bucket per key (bounded number of keys, least recently seen dropped first)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if allowed, else seconds until the next token."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


class RateLimited(BundleError):
    def __init__(self, wait: float):
        super().__init__(429, "rate_limited", f"too many bundles from this key; retry in {wait:.1f}s")
        self.wait = wait


def _err(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def create_app(cfg: CollectorConfig) -> Starlette:
    limiter = RateLimiter(cfg.rate, cfg.burst)
    inflight = anyio.Semaphore(cfg.max_inflight)

    def check_key(key: str) -> None:
        wait = limiter.take(key)
        if wait:
            raise RateLimited(wait)

    def ingest(data: bytes) -> tuple[str, str, int]:
        v = verify(data, max_lines_bytes=cfg.max_lines_bytes, allowed_keys=cfg.allowed_keys, check_key=check_key)
        if cfg.store.has(v.id):
            return v.id, "duplicate", len(v.records)
        parts = cfg.store.write(v, data)
        log.info(
            "stored bundle %s from key %s…: %d measurement(s) in %s",
            v.id,
            v.key[:10],
            len(v.records),
            ", ".join(sorted(parts)),
        )
        return v.id, "stored", len(v.records)

    async def post_bundle(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return _err(400, "garbage", "Content-Length is not a number")
            if declared > cfg.max_body:
                log.warning("rejected a bundle: 413 too_large (Content-Length %d > cap %d)", declared, cfg.max_body)
                return _err(413, "too_large", f"body of {declared} bytes (cap {cfg.max_body})", {"connection": "close"})
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > cfg.max_body:
                    log.warning("rejected a bundle: 413 too_large (streamed past the cap of %d bytes)", cfg.max_body)
                    return _err(413, "too_large", f"body over the cap of {cfg.max_body} bytes", {"connection": "close"})
        except ClientDisconnect:
            log.warning("rejected a bundle: the client went away mid-body (%d bytes read)", len(body))
            return _err(400, "truncated", "client disconnected")
        if length is not None and len(body) != declared:
            log.warning("rejected a bundle: 400 truncated (%d of %d bytes)", len(body), declared)
            return _err(400, "truncated", f"{len(body)} of {declared} bytes")
        try:
            async with inflight:
                bid, status, n = await run_in_threadpool(ingest, bytes(body))
        except RateLimited as exc:
            log.warning("rejected a bundle: 429 rate_limited (%s)", exc.detail)
            return _err(429, exc.code, exc.detail, {"retry-after": f"{max(1, round(exc.wait))}"})
        except BundleError as exc:
            log.warning("rejected a bundle: %d %s (%s)", exc.status, exc.code, exc.detail)
            return _err(exc.status, exc.code, exc.detail)
        except StoreUnavailable as exc:
            log.error("object store unavailable, bundle not stored (the uploader retries): %s", exc)
            return _err(503, "store_unavailable", "the object store is unavailable; retry later", {"retry-after": "5"})
        return JSONResponse({"id": bid, "status": status, "lines": n})

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/v1/bundles", post_bundle, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
