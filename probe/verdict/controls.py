"""The controls a verdict is judged against: the run's canaries, the run's own evidence, and the
outside control (a measurement of the same target from elsewhere, OONI's test helper)."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe import netfacts
from probe.failures import DNS_NX
from probe.fingerprints import FingerprintDB
from probe.verdict.finding import Finding, finding
from probe.verdict.params import LOSSY_MIN_EVENTS, LOSSY_MIN_MEASUREMENTS, THROTTLE_RATIO
from probe.verdict.rules import RULES
from probe.vocab import Layer


@dataclass(frozen=True, slots=True)
class CanaryHealth:
    """How the vantage itself fared in this run, from the canaries measured alongside the targets."""

    domestic_ok: int = 0
    domestic_total: int = 0
    international_ok: int = 0
    international_total: int = 0
    # Resolvers (DNSAttempt.resolver ids) that answered no canary query at all (timeouts, SERVFAIL,
    # refused) and resolvers that answered at least one.
    failing_resolvers: frozenset[str] = frozenset()
    answering_resolvers: frozenset[str] = frozenset()
    # A canary was reached (valid TLS / TCP) at a special-purpose address: this network serves real
    # sites from private space (a lab, a split-horizon network), so only sinkhole answers are bogons.
    special_answers_normal: bool = False
    # Every failed canary failed at DNS (no resolver gave it an address).
    dns_only_failures: bool = False
    # Path loss seen by the canaries: attempts that timed out (any step, retried or not), and steps whose
    # timeout did not reproduce (timed out, then succeeded). 0 / 0: the canaries never timed out.
    timeout_attempts: int = 0
    loss_events: int = 0

    @property
    def total(self) -> int:
        return self.domestic_total + self.international_total

    @property
    def ok(self) -> int:
        return self.domestic_ok + self.international_ok

    @property
    def known(self) -> bool:
        return self.total > 0

    @property
    def all_failed(self) -> bool:
        return self.total > 0 and self.ok == 0

    @property
    def international_shutdown(self) -> bool:
        return (
            self.domestic_total > 0
            and self.domestic_ok > 0
            and self.international_total > 0
            and self.international_ok == 0
        )

    @property
    def spotless(self) -> bool:
        """Canaries were measured, every one was reached, and none ever timed out (on any attempt)."""
        return self.total > 0 and self.ok == self.total and self.timeout_attempts == 0

    @property
    def degraded(self) -> bool:
        """More than half the canaries failed (but not all): weak evidence is not trusted."""
        return self.total > 0 and 0 < self.ok and self.ok * 2 < self.total


@dataclass(frozen=True, slots=True)
class RunContext:
    health: CanaryHealth = CanaryHealth()
    canary_throughput_bps: float | None = None
    fingerprints: FingerprintDB | None = None  # None: FingerprintDB.default() (Iran built-ins)
    # Names known to exist from an out-of-band source (a test specification, an earlier DoH run):
    # with a single resolver, NXDOMAIN for one of these is blocking rather than inconclusive.
    known_existing_names: frozenset[str] = frozenset()
    # Special-purpose ranges that are normal answers in this network (e.g. a lab's 10.0.0.0/8).
    bogon_exempt: tuple[netfacts.IPNetwork, ...] = ()
    throttle_ratio: float = THROTTLE_RATIO
    system_resolver: str = "system"
    # Whole-fetch goodput (body bytes / whole HTTP attempt time) of the SLOWEST canary fetch, and the
    # canaries' median TCP connect time: the throttling reference (see run_context()).
    canary_fetch_bps: float | None = None
    canary_rtt_ms: float | None = None
    canary_tls_ms: float | None = None  # canaries' median (non-control, successful) TLS handshake time
    # Addresses that, in this run, reset TLS for the target's SNI and for the harmless SNI alike (after
    # TCP connected): an HTTP reset to one of them is IP-level RST injection, not Host filtering.
    reset_addresses: frozenset[str] = frozenset()
    # The SLOWEST canary's transfer rate: body bytes / (whole fetch time minus its round trips at that
    # canary's own connect time; at most half the fetch time is taken off). The throttling reference.
    canary_transfer_bps: float | None = None
    # Addresses where, in this run, an HTTP body trickled in (>= THROTTLE_MIN_SECONDS after the first byte,
    # >= throttle_ratio below the canaries' transfer rate): bandwidth shaping of that address. It tells a slow
    # HTTPS fetch there (whose small body arrives in one TLS record) from a server that thinks long.
    trickle_addresses: frozenset[str] = frozenset()
    # Path loss in the run (see LOSSY_MIN_EVENTS): steps, over every measurement of the run, whose timeout
    # did not reproduce, and in how many measurements (targets and canaries) they were.
    loss_events: int = 0
    loss_measurements: int = 0

    @property
    def lossy(self) -> bool:
        """The vantage's path lost packets in this run: timeouts that cleared on retry, in several
        measurements. Timeouts are then not blocking evidence (unless the canaries never timed out)."""
        return self.loss_events >= LOSSY_MIN_EVENTS and self.loss_measurements >= LOSSY_MIN_MEASUREMENTS


@dataclass(slots=True)
class ControlMeasurement:
    """A measurement of the same target from an uncensored place (OONI's test helper), when one exists.
    ``None`` fields mean "not measured". ``failed`` means the control itself could not be obtained."""

    source: str = "control"
    failed: str | None = None
    dns_addrs: list[str] | None = None  # addresses (names such as CNAMEs are ignored)
    # The name the control resolved: the host of the URL it was asked about. A target may have several
    # names (an endpoint list, extra `dns:` names); the control's DNS answer speaks for this one only.
    # None: not known (a control from before this field), taken to be the target's own name.
    dns_name: str | None = None
    dns_failure: str | None = None
    tcp: dict[str, str | None] = field(default_factory=dict)  # "ip:port" / "[v6]:port" -> failure
    tls: dict[str, str | None] = field(default_factory=dict)  # "ip:port" -> failure
    http_failure: str | None = None
    http_status: int | None = None
    http_body_length: int | None = None
    http_title: str | None = None
    # Our helper's timing extension (x_duration_ms, x_body_bytes_per_s); OONI's helpers lack it.
    http_duration_ms: float | None = None  # the whole fetch, redirects included
    http_body_bps: float | None = None  # body bytes / first-to-last body byte, when that took >= 0.2 s

    def speaks_for(self, name: str) -> bool:
        """The control's DNS answer (addresses, NXDOMAIN) is about ``name``."""
        return self.dns_name is None or self.dns_name.rstrip(".").lower() == name.rstrip(".").lower()

    def dns_ips(self) -> list[str]:
        return [a for a in (self.dns_addrs or []) if netfacts.parse_ip(a) is not None]

    def dns_says_nx(self) -> bool:
        if self.failed:
            return False
        if self.dns_failure in DNS_NX:
            return True
        # Only a CNAME and no address, and the control's own fetch failed at DNS: the name is gone.
        return self.dns_addrs is not None and not self.dns_ips() and (self.http_failure or "").startswith("dns_")

    def http_ok(self) -> bool:
        return not self.failed and self.http_failure is None and (self.http_status or 0) > 0

    def http_failed(self) -> bool:
        return not self.failed and self.http_failure is not None


def control_agrees(layer: Layer, method: str | None, confidence: float, reason: str) -> Finding:
    """The outside control failed the same way as the vantage: the site, not the network."""
    return finding(RULES["down.control_agrees"], confidence, reason, layer=layer, method=method)
