"""What a run is told: :class:`RunConfig`, the same for `reachprobe run` and every daemon run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.fingerprints import FingerprintDB
from probe.records import Vantage

# Seconds a helper gets at most by default (a helper's own --timeout is 15 s per control).
CONTROL_TIMEOUT_CAP = 30.0


@dataclass(slots=True)
class RunConfig:
    vantage: Vantage
    results_dir: Path | None = Path("results")  # where probe.pipeline.run_once writes; the runner never does
    resolvers: tuple[
        str, ...
    ] = ()  # extra resolvers (ResolverSpec forms: IP[:port], https://, tls://) besides the system one
    system_resolver: bool = True
    resolv_conf: str = "/etc/resolv.conf"
    ca_bundle: str | None = None
    concurrency: int = 8
    timeout: float = 10.0  # per step attempt
    target_deadline: float = 90.0  # per target, all steps and retries included
    retries: int = 2  # extra attempts for a failed step
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_ips_per_name: int = 4
    ipv6: bool = False  # connect to IPv6 answers too (DNS always asks AAAA)
    max_redirects: int = 10
    max_body: int = 262144
    control_sni: str = "example.com"
    fingerprints: FingerprintDB = field(default_factory=FingerprintDB.default)
    inject_check: bool = True  # one raw query per name and resolver, every response collected
    inject_window: float = 1.0  # seconds the injection check listens for responses
    bogon_exempt: tuple[Any, ...] = ()  # special-purpose networks that are normal answers here
    packet_capture: bool = True  # one sniffer per run: TTL/IP ID of SYN-ACKs and RSTs (needs CAP_NET_RAW)
    controls: tuple[str, ...] = ()  # test helper URLs (the outside control), tried in order; () = none
    control_timeout: float | None = None  # per helper; None: 3 x the step timeout, at most CONTROL_TIMEOUT_CAP
    control_ca_bundle: str | None = None  # CA bundle for the helpers' own HTTPS (default: the system store)

    @property
    def control_timeout_s(self) -> float:
        if self.control_timeout is not None:
            return self.control_timeout
        return min(self.timeout * 3, CONTROL_TIMEOUT_CAP)
