"""Sending bundles: POST each pending bundle to the collector, mark it sent only on its acknowledgement.

Bounded retries with exponential backoff and full jitter; a 429/5xx/transport error is retried, any other
refusal (bad signature, unknown key, ...) moves the bundle to ``rejected/`` with the collector's reason.
When a bundle exhausts its retries the collector is taken to be unreachable: the rest wait for the next
upload (nothing is lost; the order is kept).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from probe.collect.ledger import MAX_LINES, Ledger

log = logging.getLogger("reachprobe.upload")

CONTENT_TYPE = "application/vnd.reachprobe.bundle"
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class UploadConfigError(ValueError):
    """A bad --collector or --proxy (exit 2)."""


@dataclass
class UploadOptions:
    collector: str
    proxy: str | None = None
    retries: int = 4
    backoff: float = 1.0  # first delay, doubled per retry
    max_backoff: float = 60.0
    timeout: float = 30.0
    ca_bundle: str | None = None


@dataclass
class UploadReport:
    packed: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    pending: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.pending == 0 and not self.rejected


def endpoint(collector: str) -> str:
    """The bundles URL of a collector base URL. Plain http only to loopback or a .onion (Tor)."""
    parts = urlsplit(collector)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UploadConfigError(f"--collector {collector!r}: expected an https:// URL")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        if not (local or host.endswith(".onion")):
            raise UploadConfigError(
                f"--collector {collector!r}: plain http is only for loopback or .onion; use https://"
            )
    base = collector.rstrip("/")
    return base if base.endswith("/v1/bundles") else base + "/v1/bundles"


def check_proxy(proxy: str | None) -> str | None:
    if proxy is None:
        return None
    if urlsplit(proxy).scheme not in ("socks5", "socks5h", "http", "https"):
        raise UploadConfigError(f"--proxy {proxy!r}: expected socks5://HOST:PORT (e.g. Tor's socks5://127.0.0.1:9050)")
    return proxy


def _delay(attempt: int, opts: UploadOptions, retry_after: str | None) -> float:
    cap = min(opts.max_backoff, opts.backoff * (2**attempt))
    delay = random.uniform(cap / 2, cap)  # jitter: many vantages never retry in lockstep
    if retry_after:
        try:
            delay = max(delay, min(float(retry_after), opts.max_backoff))
        except ValueError:
            pass
    return delay


def send_pending(ledger: Ledger, opts: UploadOptions, *, sleep: Callable[[float], None] = time.sleep) -> UploadReport:
    url = endpoint(opts.collector)
    rep = UploadReport()
    pending = ledger.pending()
    verify: str | bool = opts.ca_bundle or True
    with httpx.Client(
        proxy=check_proxy(opts.proxy),
        timeout=opts.timeout,
        verify=verify,
        headers={"content-type": CONTENT_TYPE, "user-agent": "reachprobe"},
    ) as client:
        for i, path in enumerate(pending):
            data = path.read_bytes()
            bid = path.stem
            outcome = None
            retry_after: str | None = None
            for attempt in range(opts.retries + 1):
                if attempt:
                    sleep(_delay(attempt - 1, opts, retry_after))
                    retry_after = None
                try:
                    r = client.post(url, content=data)
                except httpx.HTTPError as exc:
                    rep.error = f"{type(exc).__name__}: {exc}"
                    log.info("bundle %s: %s (attempt %d/%d)", bid[:12], rep.error, attempt + 1, opts.retries + 1)
                    continue
                answer = _json(r)
                if r.status_code in (200, 201) and answer.get("id") == bid:
                    ledger.mark_sent(path, answer)
                    rep.sent += 1
                    rep.duplicates += answer.get("status") == "duplicate"
                    outcome = "sent"
                    break
                reason = answer.get("detail") or answer.get("error") or r.text[:200]
                if r.status_code in RETRYABLE or 200 <= r.status_code < 300:  # 2xx without our id: not an ack
                    retry_after = r.headers.get("retry-after")
                    rep.error = f"collector answered {r.status_code}: {reason}"
                    log.info("bundle %s: %s (attempt %d/%d)", bid[:12], rep.error, attempt + 1, opts.retries + 1)
                    continue
                ledger.mark_rejected(path, r.status_code, str(reason))
                rep.rejected.append(f"{bid}: {r.status_code} {reason}")
                log.warning("bundle %s rejected by the collector: %s %s", bid[:12], r.status_code, reason)
                outcome = "rejected"
                break
            if outcome is None:
                rep.pending = len(pending) - i
                log.warning("collector unreachable (%s): %d bundle(s) wait for the next upload", rep.error, rep.pending)
                return rep
    rep.error = None if rep.sent == len(pending) - len(rep.rejected) else rep.error
    return rep


def _json(r: httpx.Response) -> dict:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def upload(results_dir, key, opts: UploadOptions, *, max_lines: int = MAX_LINES, **kw) -> UploadReport:
    """Pack what is new, then send everything pending (one shot: cron, or the daemon after a run)."""
    with Ledger.open(results_dir) as ledger:
        packed = ledger.pack(key, max_lines=max_lines)
        rep = send_pending(ledger, opts, **kw)
        rep.packed = len(packed)
        return rep
