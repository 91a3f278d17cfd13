"""The lab's scenario catalog: censorship (and non-censorship) situations with known ground truth.

A scenario is data:

- ``timeline``: censor actions ``(t_seconds, action, args)``; ``action`` names a method of
  :class:`tests.lab.censor.Censor` (the README lists them).
- ``runs``: when the real probe is run (seconds after t=0), and for each run the expected verdict of
  every target of ``targets.lab.yaml`` plus step-level checks. A timed scenario has several runs
  with different expectations; ``window`` says the interval the run must start and end in for its
  expectation to hold (a run that overflows its window is a lab *timing* failure, reported as such).
- ``expect``: the scenario's headline verdicts (the first run's).

Events run in time order, one at a time: an action or a run at ``t`` starts at ``t`` or when the
previous event finished, whichever is later. Timed *censorship* (unblocking windows, glitches) is a
kernel-side nft set element with a timeout, so it is exact even when a run is slow.

Expectations are ``{"status": ..., "layer": ..., "method": ...}``; a key that is absent is not
asserted, and ``status`` may be a tuple of acceptable values. Checks are tuples
``(kind, target_or_targets, *args)`` evaluated on the recorded steps by :mod:`tests.lab.checks`;
they assert what the probe must record regardless of the verdict engine's rules.

Ground-truth conventions: in single-method scenarios facebook is the censored platform and every
other platform is a control; telegram's DCs are IP endpoints; canary-int sits on the "internet" side
(behind the international gateway, the censor), canary-dom on the domestic side (the censor's own
network).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from probe.failures import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    GENERIC_TIMEOUT,
    SSL_INVALID_CERTIFICATE,
    SSL_UNKNOWN_AUTHORITY,
)

# name -> (platform, kind, site key). Must match targets.lab.yaml (test_catalog checks it).
TARGETS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "facebook-web": ("facebook", "web", "facebook"),
    "facebook-http": ("facebook", "web", "facebook"),
    "twitter-web": ("twitter", "web", "twitter"),
    "telegram-web": ("telegram", "web", "telegram"),
    "telegram-dc1": ("telegram", "endpoint", "telegram-dc"),
    "telegram-dc2": ("telegram", "endpoint", "telegram-dc"),
    "instagram-web": ("instagram", "web", "instagram"),
    "youtube-web": ("youtube", "web", "youtube"),
    "whatsapp-web": ("whatsapp", "web", "whatsapp"),
    "canary-int": ("canary", "canary", "canary-int"),
    "canary-dom": ("canary", "canary", "canary-dom"),
})
ALL = tuple(TARGETS)
CANARIES = ("canary-int", "canary-dom")
FACEBOOK = ("facebook-web", "facebook-http")
TELEGRAM_DCS = ("telegram-dc1", "telegram-dc2")

TIMEOUT = (GENERIC_TIMEOUT,)
BAD_CERT = (SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE)
RESET = (CONNECTION_RESET,)
REFUSED = (CONNECTION_REFUSED,)

OK: Mapping[str, Any] = MappingProxyType({"status": "ok"})


def blocked(layer: str, method: str) -> dict[str, Any]:
    return {"status": "blocked", "layer": layer, "method": method}


def expect(default: Mapping[str, Any] = OK, **by_target: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """Expected verdict for every lab target: ``default`` unless given (use _ for - in names)."""
    given = {k.replace("_", "-"): v for k, v in by_target.items()}
    unknown = set(given) - set(TARGETS)
    if unknown:
        raise KeyError(f"unknown lab targets: {sorted(unknown)}")
    return MappingProxyType({t: MappingProxyType(dict(given.get(t, default))) for t in TARGETS})


def others(*excluded: str) -> tuple[str, ...]:
    return tuple(t for t in TARGETS if t not in excluded)


def reached_except(*excluded: str) -> tuple[tuple, ...]:
    """Every target not excluded reaches its authentic server (the controls of the scenario)."""
    return (("reached", others(*excluded)),)


@dataclass(frozen=True)
class Run:
    at: float
    expect: Mapping[str, Mapping[str, Any]]  # with the outside control (the test helper)
    checks: tuple[tuple, ...] = ()
    window: tuple[float, float] | None = None
    label: str = ""
    # Without the outside control (None: the same as ``expect``). A censored case and its innocent
    # twin look alike from one vantage: without the control the twin must never be blocked nor
    # confirmed, and the censored case may only be as sure as its own evidence allows.
    expect_without_control: Mapping[str, Mapping[str, Any]] | None = None

    def expected(self, control: bool) -> Mapping[str, Mapping[str, Any]]:
        if control or self.expect_without_control is None:
            return self.expect
        return self.expect_without_control


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    timeline: tuple[tuple[float, str, Mapping[str, Any]], ...]
    runs: tuple[Run, ...]
    probe_args: tuple[str, ...] = ()  # appended to the default lab probe arguments
    tags: tuple[str, ...] = field(default=())

    @property
    def expect(self) -> Mapping[str, Mapping[str, Any]]:
        return self.runs[0].expect

    @property
    def timed(self) -> bool:
        return len(self.runs) > 1 or any(t > 0 for t, _, _ in self.timeline)

    @property
    def duration(self) -> float:
        return max([r.at for r in self.runs] + [t for t, _, _ in self.timeline])


def single(name: str, description: str, actions: list[tuple[str, dict]], exp, checks=(), probe_args=(),
           tags=(), without_control=None) -> Scenario:
    """A one-run scenario: every action at t=0, one probe run."""
    return Scenario(name, description, tuple((0.0, a, MappingProxyType(args)) for a, args in actions),
                    (Run(0.0, exp, tuple(checks), expect_without_control=without_control),), tuple(probe_args),
                    tuple(tags))


def _tl(*events: tuple[float, str, dict]) -> tuple:
    return tuple((float(t), a, MappingProxyType(args)) for t, a, args in events)


# An innocent twin (the site itself dead, slow, misconfigured, gone): never blocked, never
# confirmed, with or without the outside control.
TWIN: Mapping[str, Any] = MappingProxyType({"status": ("down", "inconclusive"), "confirmed": False})
# A censored case whose twin looks the same from the vantage alone: without the control it may be
# called blocked only on its own evidence (a censor's TTL, a shaped handshake), else inconclusive.
UNSURE: Mapping[str, Any] = MappingProxyType({"status": ("blocked", "inconclusive")})


def twin(**fields: Any) -> dict[str, Any]:
    return {**TWIN, **fields}


FB = {"sites": ["facebook"]}
FB_BLOCKED_CHECKS = reached_except(*FACEBOOK) + (("not_reached", FACEBOOK),)
FB_BLACKHOLED = expect(facebook_web=blocked("tcp", "ip_blackhole"), facebook_http=blocked("tcp", "ip_blackhole"))
TELEGRAM = ("telegram-web", *TELEGRAM_DCS)
TG = {"sites": ["telegram", "telegram-dc"]}
TG_BLACKHOLED = expect(**{t.replace("-", "_"): blocked("tcp", "ip_blackhole") for t in TELEGRAM})
TG_BLOCKED_CHECKS = reached_except(*TELEGRAM) + (("not_reached", TELEGRAM), ("tcp_failure", TELEGRAM, TIMEOUT))
