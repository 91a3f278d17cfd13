"""Asking a test helper (ours or OONI's) for the outside view of one URL.

``query_control`` tries each helper in order and stops at the first that answers with a control
that parses. It never raises: an unreachable, failing or garbled helper is recorded as such, and the
caller must treat a missing control as *no evidence*, never as evidence of blocking.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from probe import __version__
from probe.control.model import ControlRequest, ControlResponse
from probe.failures import classify_exception

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # oohelperd answers are a few KB; a huge one is not a control
JSON_PARSE_ERROR = "json_parse_error"  # OONI's control_failure for an answer that does not parse
CONTROL_FAILURE_ALL = "all_helpers_failed"


@dataclass
class HelperFailure:
    helper: str
    failure: str
    status_code: int | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"helper": self.helper, "failure": self.failure, "duration_ms": self.duration_ms}
        if self.status_code is not None:
            out["status_code"] = self.status_code
        return out


@dataclass
class ControlResult:
    request: ControlRequest
    response: ControlResponse | None = None
    helper: str | None = None  # the helper that answered
    duration_ms: float | None = None  # of the answered query
    failures: list[HelperFailure] = field(default_factory=list)  # helpers tried before, in order

    @property
    def ok(self) -> bool:
        return self.response is not None

    def to_dict(self) -> dict[str, Any]:
        """The results line's ``control`` field. ``failure`` is OONI's ``control_failure``: null
        when a helper answered, else why not (a failed control is no evidence either way)."""
        return {
            "helper": self.helper,
            "failure": None
            if self.ok
            else (
                self.failures[-1].failure
                if len(self.failures) == 1
                else CONTROL_FAILURE_ALL
                if self.failures
                else "no_helper_configured"
            ),
            "duration_ms": self.duration_ms,
            "failures": [f.to_dict() for f in self.failures],
            "request": self.request.model_dump(mode="json"),
            "response": self.response.to_wire() if self.response is not None else None,
        }


def _headers(headers: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
    return {k: [v] if isinstance(v, str) else list(v) for k, v in (headers or {}).items()}


async def _ask(
    client: httpx.AsyncClient, helper: str, body: bytes
) -> tuple[ControlResponse | None, str | None, int | None]:
    async with client.stream("POST", helper, content=body, headers={"Content-Type": "application/json"}) as resp:
        if resp.status_code != 200:
            return None, f"http_status_{resp.status_code}", resp.status_code
        data = bytearray()
        async for chunk in resp.aiter_bytes():
            data += chunk
            if len(data) > MAX_RESPONSE_BYTES:
                return None, "response_too_large", resp.status_code
    try:
        return ControlResponse.model_validate_json(bytes(data)), None, 200
    except (ValidationError, ValueError):
        return None, JSON_PARSE_ERROR, 200


async def query_control(
    urls: Sequence[str],
    target_url: str,
    headers: Mapping[str, str | Sequence[str]] | None,
    tcp_connect: Sequence[str],
    timeout: float,
    ca_bundle: str | None = None,
) -> ControlResult:
    """POST one control request for ``target_url`` (with the endpoints the probe resolved) to each
    helper in ``urls`` in turn, until one answers. ``timeout`` bounds each helper's attempt."""
    request = ControlRequest(
        http_request=target_url, http_request_headers=_headers(headers), tcp_connect=list(tcp_connect)
    )
    result = ControlResult(request=request)
    body = request.model_dump_json().encode()
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    async with httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        headers={"User-Agent": f"reachprobe/{__version__}"},
    ) as client:
        for helper in urls:
            started = time.monotonic()
            try:
                async with asyncio.timeout(timeout):
                    response, failure, status = await _ask(client, helper, body)
            except Exception as exc:  # never raises: a failed helper is a recorded fact
                response, failure, status = None, classify_exception(exc)[:200], None
            elapsed = round((time.monotonic() - started) * 1000, 3)
            if response is not None:
                result.response, result.helper, result.duration_ms = response, helper, elapsed
                return result
            result.failures.append(HelperFailure(helper, failure or "unknown_failure", status, elapsed))
    return result
