"""The words a verdict is made of, shared by the records, the verdict rules and the analysis.

``StrEnum`` members are ``str``: they compare, hash and serialise (``json.dumps``) exactly as their
values, so a results line reads ``"status":"blocked"`` whether the field holds ``Status.BLOCKED`` or
the plain string read back from a file.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    OK = "ok"
    BLOCKED = "blocked"
    DOWN = "down"
    OUTAGE = "outage"
    FLAKY = "flaky"
    INCONCLUSIVE = "inconclusive"


class Layer(enum.StrEnum):
    """Where the evidence is (a verdict's ``layer``), in the order a connection goes through them."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
