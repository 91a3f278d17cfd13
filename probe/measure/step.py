"""The bookkeeping every step attempt shares: its start relative to the target's (``t0``), its
duration, and an exception turned into an OONI failure string (a failure is data, never raised)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probe.failures import classify_exception, detail


def since(t_origin: float, now: float) -> float:
    """``t0`` of an attempt: seconds since the target's measurement started."""
    return round(now - t_origin, 6)


def elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def record_failure(rec: Any, exc: BaseException) -> None:
    rec.failure = classify_exception(exc)
    rec.error_detail = detail(exc)


@contextmanager
def recording(rec: Any, started: float) -> Iterator[Any]:
    """Around one attempt: an exception becomes ``rec.failure``/``rec.error_detail`` (cancellation
    still propagates), and ``rec.duration_ms`` is set however the attempt ended."""
    try:
        yield rec
    except Exception as exc:  # recorded, never raised: a failed step is evidence
        record_failure(rec, exc)
    finally:
        rec.duration_ms = elapsed_ms(started)
