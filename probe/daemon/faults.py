"""What goes wrong on the vantage while the daemon runs, said once: a fault log that writes one line
when a problem starts (or changes kind) and one when it clears, and the diagnosis of a run's
records that names vantage-side problems (network down, a resolver silent); ``check_vantage`` feeds
the one into the other after every run."""

from __future__ import annotations

import logging
import threading
from collections import Counter

log = logging.getLogger("reachprobe.daemon")


def diagnose(results) -> dict[str, tuple[str, str]]:
    """Vantage-side problems visible in one run: {key: (kind, message)} with key 'network' or
    'resolver'. ``results`` are runner TargetResults (with verdicts). Pure."""
    problems: dict[str, tuple[str, str]] = {}
    dns = [a for r in results for a in r.steps.dns]
    tcp = [a for r in results for a in r.steps.tcp]
    by_resolver: dict[str, list] = {}
    for a in dns:
        by_resolver.setdefault(a.resolver, []).append(a)
    silent = sorted(
        label
        for label, atts in by_resolver.items()
        if len(atts) >= 2 and all(a.failure is not None and a.rcode is None for a in atts)
    )
    tcp_ok = any(a.failure is None for a in tcp)
    canaries = [r for r in results if r.target.is_canary]
    canaries_ok = [r for r in canaries if r.verdict is not None and r.verdict.status == "ok"]
    all_silent = bool(by_resolver) and len(silent) == len(by_resolver)
    if all_silent and not tcp_ok:
        problems["network"] = (
            "offline",
            f"network looks down: no resolver answered ({len(dns)} queries) and no "
            f"connection succeeded ({len(tcp)} attempts); measurements are kept as evidence "
            "of an outage",
        )
    elif silent:
        fails = Counter(a.failure for lbl in silent for a in by_resolver[lbl])
        problems["resolver"] = (
            "silent:" + ",".join(silent),
            f"resolver {', '.join(silent)} not answering ({sum(fails.values())} queries, "
            f"{', '.join(f'{k} x{v}' for k, v in fails.most_common(2))}); other paths work",
        )
    if "network" not in problems and canaries and not canaries_ok:
        problems["network"] = (
            "canaries",
            f"all {len(canaries)} canaries failed: the vantage's own connectivity "
            "is broken, measurements are recorded as outage",
        )
    if not by_resolver and tcp and not tcp_ok and "network" not in problems:
        problems["network"] = ("offline", f"network looks down: no connection succeeded ({len(tcp)} attempts)")
    return problems


class FaultLog:
    """One log line when a problem starts (or changes kind), one when it clears."""

    def __init__(self, logger: logging.Logger = log):
        self.logger = logger
        self.active: dict[str, tuple[str, str]] = {}  # key -> (kind, message)
        self.repeats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def problem(self, key: str, kind: str, message: str, level: int = logging.WARNING) -> None:
        with self._lock:
            current = self.active.get(key)
            if current is None or current[0] != kind:
                self.logger.log(level, message)
                self.repeats[key] = 0
            self.repeats[key] += 1
            self.active[key] = (kind, message)

    def clear(self, key: str, message: str) -> None:
        with self._lock:
            if key in self.active:
                n = self.repeats.pop(key, 0)
                del self.active[key]
                self.logger.info("%s (problem seen %d time%s)", message, n, "" if n == 1 else "s")

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return {k: v[1] for k, v in self.active.items()}


def check_vantage(faults: FaultLog, results) -> None:
    """One line when a run shows the vantage's network or resolver failing, one when it recovers."""
    problems = diagnose(results)
    for key, recovered in (
        ("network", "network is back: canaries and connections succeed again"),
        ("resolver", "resolver answers again"),
    ):
        if key in problems:
            kind, message = problems[key]
            faults.problem(key, kind, message)
        else:
            faults.clear(key, recovered)
