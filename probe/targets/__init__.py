"""What to measure: the target model (``model``, plain dataclasses and value checks) and the
targets-file loader (``load``, with its parts ``yaml_lines``, ``schema`` and ``messages``: YAML + pydantic;
they import the model and are never imported by it)."""

from probe.targets.load import load_targets, loads
from probe.targets.model import (
    CANARY_PLATFORM,
    KNOWN_PLATFORMS,
    Endpoint,
    Target,
    TargetsError,
    TargetSet,
    check_dns_name,
    check_host,
    check_url,
    is_ip_literal,
    known_existing_names,
    parse_endpoint,
    parse_prefix,
)

__all__ = [
    "CANARY_PLATFORM",
    "KNOWN_PLATFORMS",
    "Endpoint",
    "Target",
    "TargetSet",
    "TargetsError",
    "check_dns_name",
    "check_host",
    "check_url",
    "is_ip_literal",
    "known_existing_names",
    "load_targets",
    "loads",
    "parse_endpoint",
    "parse_prefix",
]
