"""A test helper's answer -> the verdict's :class:`~probe.verdict.ControlMeasurement`.

The one conversion for both sources: the probe's own controls (our helper or OONI's, through
``probe.control.client``) and the ``control`` objects of OONI measurements (``analysis.importers.ooni``),
which have the same shape. Helpers from 2016 to today differ in what they fill in, so the rules are:
a field the helper did not send is "not measured" (``None``), never "failed"; ``-1`` for a status code
or a body length is OONI's "failed/unknown", also ``None``; failure words are read in today's df-007
spelling (``connection_refused_error`` -> ``connection_refused``, ...).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from probe.control.client import ControlResult
from probe.control.model import ControlResponse
from probe.failures import (
    GENERIC_TIMEOUT,
    LEGACY_SPELLINGS,
    SSL_INVALID_CERTIFICATE,
    UNKNOWN_FAILURE,
)
from probe.netfacts import parse_ip
from probe.verdict import ControlMeasurement

SOURCE = "control"  # ControlMeasurement.source of a control the probe asked for itself
EMPTY_CONTROL = "empty_control"  # a helper answered {}: nothing measured, no evidence


def normalize_failure(f: Any) -> str | None:
    """A helper's (or OONI's) failure word in today's df-007 spelling; None means success."""
    if f in (None, False, "", "null"):
        return None
    s = str(f)
    low = s.lower()
    if low.startswith("ssl_error") or "certificate verify failed" in low:
        return SSL_INVALID_CERTIFICATE
    if low in LEGACY_SPELLINGS:
        return LEGACY_SPELLINGS[low]
    if low.startswith("generic_timeout") or low == "timeout":
        return GENERIC_TIMEOUT
    return s


def _number(v: Any) -> float | None:
    """A timing extension's value: only a finite, non-negative number counts (old helpers lack it)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        return None
    return float(v)


def _steps(results: dict[str, Any]) -> dict[str, str | None]:
    return {k: None if v.status else (normalize_failure(v.failure) or UNKNOWN_FAILURE) for k, v in results.items()}


def to_measurement(
    response: ControlResponse,
    request_url: str | None = None,
    *,
    source: str = SOURCE,
    control_failure: str | None = None,
) -> ControlMeasurement:
    """Convert one helper answer. ``request_url`` is the URL the control was asked for: for an address
    literal the helper does no DNS, so its empty ``dns`` is "not measured", not "no addresses".
    ``control_failure`` is OONI's field of that name, kept when a control came with one."""
    sent = response.model_fields_set
    if not sent & {"dns", "tcp_connect", "tls_handshake", "http_request"}:
        return ControlMeasurement(source=source, failed=control_failure or EMPTY_CONTROL)

    host = urlsplit(request_url).hostname if request_url is not None else None
    literal = host is not None and parse_ip(host) is not None
    dns = response.dns
    dns_failure = normalize_failure(dns.failure)
    dns_addrs = None
    if "dns" in sent and not literal and (dns_failure is not None or "addrs" in dns.model_fields_set):
        dns_addrs = list(dns.addrs)

    http = response.http_request
    measured_http = "http_request" in sent
    http_failure = normalize_failure(http.failure) if measured_http else None
    status = http.status_code if measured_http and http.status_code > 0 else None
    body_length = http.body_length if measured_http and http.body_length >= 0 else None
    extra = http.model_extra or {}
    return ControlMeasurement(
        source=source,
        failed=str(control_failure) if control_failure else None,
        dns_addrs=dns_addrs,
        dns_failure=dns_failure,
        dns_name=None if literal else host,
        tcp=_steps(response.tcp_connect),
        tls=_steps(response.tls_handshake),
        http_failure=http_failure,
        http_status=status,
        http_body_length=body_length,
        # A failed fetch has no page, so no title; a page without one has "".
        http_title=None if not measured_http or (http_failure is not None and status is None) else http.title,
        http_duration_ms=_number(extra.get("x_duration_ms")) if measured_http else None,
        http_body_bps=_number(extra.get("x_body_bytes_per_s")) if measured_http else None,
    )


def from_result(result: ControlResult | None) -> ControlMeasurement | None:
    """What the verdict gets from a control the probe asked for: ``None`` when none was asked, a
    ``failed`` measurement (no evidence either way) when no helper answered."""
    if result is None:
        return None
    if result.response is None:
        return ControlMeasurement(source=SOURCE, failed=result.to_dict()["failure"])
    return to_measurement(result.response, result.request.http_request)
